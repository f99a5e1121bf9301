"""Port binding (binding:*): which host serves a port, and how.

``binding:vif_type`` is ``unbound`` without a host, ``ovs`` when a live
agent on the host can serve the port's network (its tunnel types or
bridge mappings cover the segment), ``binding_failed`` otherwise.  Ports
are bound again when an agent on their host registers.
"""

import json


from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.db import models
from quantum_ovs.db.plugin import child_filter

ALIASES = [
    {"alias": "binding", "name": "Port Binding",
     "description": "Expose port bindings of a virtual port to external application"},
    {"alias": "binding-extended", "name": "Port Bindings Extended",
     "description": "Expose port bindings of a virtual port to external application"},
]

HOST = "binding:host_id"
VNIC = "binding:vnic_type"
PROFILE = "binding:profile"
VIF_TYPE = "binding:vif_type"
VIF_DETAILS = "binding:vif_details"

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed")

POLICY_DEFAULTS = {
    "create_port:binding:host_id": "rule:admin_only",
    "update_port:binding:host_id": "rule:admin_only",
    "create_port:binding:profile": "rule:admin_only",
    "update_port:binding:profile": "rule:admin_only",
    "get_port:binding:host_id": "rule:admin_only",
    "get_port:binding:profile": "rule:admin_only",
    "get_port:binding:vif_type": "rule:admin_only",
    "get_port:binding:vif_details": "rule:admin_only",
    "create_port:binding:vnic_type": "rule:admin_or_owner",
    "update_port:binding:vnic_type": "rule:admin_or_owner",
}


def _profile(value, name=PROFILE):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise v.bad(f"'{value}' is not a dictionary")
    text = json.dumps(value)
    if len(text) > 4000:
        raise v.bad("binding:profile is too large")
    return value


def _host(value, name=HOST):
    return "" if value is None else v.string(255)(value, name)


def extend_resources(resources):
    resources["ports"].update({
        HOST: Attr(_host, allow_put=True, default="", convert_filter=v.string(255),
                   enforce_policy=True, is_sort_key=False),
        VNIC: Attr(v.choices(*VNIC_TYPES, allow_none=False), allow_put=True,
                   default="normal", convert_filter=v.string(64), enforce_policy=True,
                   is_sort_key=False),
        PROFILE: Attr(_profile, allow_put=True, default={}, is_filter=False,
                      enforce_policy=True, is_sort_key=False),
        VIF_TYPE: Attr(None, allow_post=False, convert_filter=v.string(64),
                       is_sort_key=False),
        VIF_DETAILS: Attr(None, allow_post=False, is_filter=False, is_sort_key=False),
    })


def can_serve(agent_conf, segment):
    """Can an OVS agent with this configuration carry the segment?"""
    if segment is None or segment.network_type == "local":
        return True
    if segment.network_type in ("vxlan", "gre"):
        return segment.network_type in agent_conf.get("tunnel_types", [])
    return segment.physical_network in agent_conf.get("bridge_mappings", {})


def bind(s, plugin, port, binding):
    """Set vif_type and vif_details from the host's live agent."""
    if not binding.host:
        binding.vif_type, binding.vif_details = "unbound", "{}"
        return
    if binding.vnic_type != "normal":
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    agent = plugin.live_agent(s, binding.host)
    net = s.get(models.Network, port.network_id)
    if agent is None:
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    conf = json.loads(agent.configurations or "{}")
    if not can_serve(conf, net.segment):
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    binding.vif_type = "ovs"
    binding.vif_details = json.dumps({
        "port_filter": True, "connectivity": "l2",
        "bridge_name": conf.get("integration_bridge", "br-int"),
        "datapath_type": conf.get("datapath_type", "system"),
        "ovs_hybrid_plug": False})


def setup(plugin, conf):
    def on_create(s, ctx, port, a):
        port.binding = models.PortBinding(
            host=a.get(HOST) or "", vnic_type=a.get(VNIC) or "normal",
            profile=json.dumps(a.get(PROFILE) or {}))
        s.flush()
        bind(s, plugin, port, port.binding)

    def on_update(s, ctx, port, a):
        b = port.binding
        if b is None:
            b = port.binding = models.PortBinding(host="", vnic_type="normal", profile="{}")
        changed = False
        if HOST in a and a[HOST] != b.host:
            if b.host:
                # The old host must learn that the port left it.
                plugin._record(s, "port", port, "update", port.network_id, host=b.host,
                               members=False)
            b.host = a[HOST]
            b.flows_installed = False
            b.ofport = None
            port.status = "DOWN"
            changed = True
        if VNIC in a and a[VNIC] != b.vnic_type:
            b.vnic_type = a[VNIC]
            changed = True
        if PROFILE in a:
            b.profile = json.dumps(a[PROFILE] or {})
        if changed or b.vif_type in ("binding_failed", "unbound"):
            bind(s, plugin, port, b)

    def extend_dict(port, d):
        b = port.binding
        if b is None:
            d.update({HOST: "", VNIC: "normal", PROFILE: {}, VIF_TYPE: "unbound",
                      VIF_DETAILS: {}})
            return
        d[HOST] = b.host
        d[VNIC] = b.vnic_type
        d[PROFILE] = json.loads(b.profile or "{}")
        d[VIF_TYPE] = b.vif_type
        d[VIF_DETAILS] = json.loads(b.vif_details or "{}")

    plugin.hooks.setdefault(("ports", "create"), []).append(on_create)
    plugin.hooks.setdefault(("ports", "update"), []).append(on_update)
    plugin.dict_extenders["ports"].append(extend_dict)
    P, B = models.Port, models.PortBinding

    for attr, column in ((HOST, B.host), (VNIC, B.vnic_type), (VIF_TYPE, B.vif_type)):
        plugin.filter_hooks[("ports", attr)] = child_filter(P.id, B.port_id, column)
