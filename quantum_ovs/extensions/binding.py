"""Port binding (binding:*): which host serves a port, and how; and the
port bindings API (alias ``binding-extended``) that nova's live migration
uses.

``binding:vif_type`` is ``unbound`` without a host, ``ovs`` when a live
agent on the host can serve the port's network (its tunnel types or
bridge mappings cover the segment), ``binding_failed`` otherwise.  Ports
are bound again when an agent on their host registers.

Bindings API (admin only by default)::

    GET    /v2.0/ports/{id}/bindings                  the port's bindings
    POST   /v2.0/ports/{id}/bindings                  {"binding": {"host": ...}}
    GET    /v2.0/ports/{id}/bindings/{host}
    PUT    /v2.0/ports/{id}/bindings/{host}           {"binding": {"vnic_type", "profile"}}
    DELETE /v2.0/ports/{id}/bindings/{host}           not the active one (409)
    PUT    /v2.0/ports/{id}/bindings/{host}/activate

A port has one ACTIVE binding (``port_bindings``: what ``binding:*`` of the
port show, what agents and host views follow) and any number of INACTIVE
ones (``port_inactive_bindings``), one per host; only compute ports
(``device_owner`` ``compute:*``) have this API, as in Neutron.  A binding
made for an unbound port binds it (ACTIVE); on a bound port it is INACTIVE
and *pending*: the destination of a move.  Its host's view gets the port's
network, subnets, security groups (with members) and peers at once, and
the port itself as local until the host's agent has installed its flows
for the plugged VIF and reported it (which tells nova the VIF is plugged,
as nova waits for before a live migration); from then until activation
the port shows on its active host again there, so that the destination's
other ports keep reaching the VM where it runs while nova copies it.
Other hosts see the port where it is active.  Activation swaps the rows:
the pending binding becomes the active one (with what its agent reported:
a port whose flows were installed there stays ACTIVE), the old active one
becomes an INACTIVE, no longer pending binding (nova deletes it, or
activates it again to roll back); every host then only recompiles the
port's own flows.
"""

import functools
import json
import logging

import sqlalchemy as sa

from quantum_ovs import exceptions, policy
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.api.controller import RESERVED_PARAMS
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import changelog, models
from quantum_ovs.db.plugin import child_filter

LOG = logging.getLogger(__name__)

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

POLICY_RULES = policy.crud("port", "/ports", {
    "create_port:binding:host_id": (policy.ADMIN_OR_SERVICE,
                                    "Give ``binding:host_id`` when creating a port"),
    "create_port:binding:profile": (policy.SERVICE,
                                    "Give ``binding:profile`` when creating a port"),
    "create_port:binding:vnic_type": (policy.any_of(policy.ADMIN_OR_PROJECT_MEMBER,
                                                    policy.SERVICE),
                                      "Give ``binding:vnic_type`` when creating a port"),
    "get_port:binding:host_id": (policy.ADMIN_OR_SERVICE, "See ``binding:host_id`` of a port"),
    "get_port:binding:profile": (policy.ADMIN_OR_SERVICE, "See ``binding:profile`` of a port"),
    "get_port:binding:vif_type": (policy.ADMIN_OR_SERVICE, "See ``binding:vif_type`` of a port"),
    "get_port:binding:vif_details": (policy.ADMIN_OR_SERVICE,
                                     "See ``binding:vif_details`` of a port"),
    "update_port:binding:host_id": (policy.ADMIN_OR_SERVICE,
                                    "Update ``binding:host_id`` of a port"),
    "update_port:binding:profile": (policy.SERVICE, "Update ``binding:profile`` of a port"),
    "update_port:binding:vnic_type": (policy.any_of(policy.ADMIN_OR_SERVICE,
                                                    policy.PROJECT_MEMBER),
                                      "Update ``binding:vnic_type`` of a port"),
})
# The bindings API: Neutron's rule names and defaults (admin, or nova's
# service user).
_BINDINGS = "/ports/{port_id}/bindings"
POLICY_RULES += [
    policy.rule("get_port_binding", policy.ADMIN_OR_SERVICE, "Get the bindings of a port",
                operations=[("GET", _BINDINGS), ("GET", _BINDINGS + "/{host}")]),
    policy.rule("create_port_binding", policy.ADMIN_OR_SERVICE,
                "Create a binding of a port on a host", method="POST", path=_BINDINGS),
    policy.rule("delete_port_binding", policy.ADMIN_OR_SERVICE,
                "Delete an inactive binding of a port", method="DELETE",
                path=_BINDINGS + "/{host}"),
    policy.rule("activate", policy.ADMIN_OR_SERVICE, "Activate a binding of a port",
                method="PUT", path=_BINDINGS + "/{host}/activate"),
]

ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
COMPUTE_PREFIX = "compute:"


# ------------------------------------------------------------------ errors
class PortBindingNotFound(exceptions.NotFound):
    message = "Binding for port %(port_id)s for host %(host)s could not be found."


class PortBindingAlreadyActive(exceptions.Conflict):
    message = "Binding for port %(port_id)s on host %(host)s is already active."


class PortBindingAlreadyExists(exceptions.Conflict):
    message = "Binding for port %(port_id)s on host %(host)s already exists."


class PortBindingError(exceptions.Conflict):
    # Neutron answers 500; no agent on the host can serve the port's
    # network (or its vnic type) is a conflict with the cloud's state.
    message = ("Binding for port %(port_id)s on host %(host)s could not be created or "
               "updated.")


class PortBindingActive(exceptions.Conflict):
    message = ("Binding for port %(port_id)s on host %(host)s is the active one: activate "
               "another binding first, or unbind the port (binding:host_id '').")


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
                changelog.record(s, "port", port, "update", port.network_id, host=b.host,
                                 members=False)
            b.host = a[HOST]
            b.flows_installed = False
            b.ofport = None
            port.status = "DOWN"
            changed = True
            # An inactive binding on the new host is superseded by the
            # active one (one binding per host); what its agent reported
            # holds (it reports a port once).
            gone = s.get(models.InactivePortBinding, (port.id, b.host)) if b.host else None
            if gone is not None:
                b.ofport, b.flows_installed = gone.ofport, gone.flows_installed
                if b.flows_installed and port.admin_state_up:
                    port.status = ACTIVE
                s.delete(gone)
        if VNIC in a and a[VNIC] != b.vnic_type:
            b.vnic_type = a[VNIC]
            changed = True
        if PROFILE in a:
            b.profile = json.dumps(a[PROFILE] or {})
        if changed or b.vif_type in ("binding_failed", "unbound"):
            bind(s, plugin, port, b)
        # Hosts preparing the port for a move see it as theirs: they must
        # learn of its changes as its own host does.
        _record_pending(s, plugin, port, "update")

    def on_delete(s, ctx, port, a):
        _record_pending(s, plugin, port, "delete")

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

    plugin.add_hook("ports", "create", on_create)
    plugin.add_hook("ports", "update", on_update)
    plugin.add_hook("ports", "delete", on_delete)
    plugin.add_dict_extender("ports", extend_dict)
    P, B = models.Port, models.PortBinding

    for attr, column in ((VNIC, B.vnic_type), (VIF_TYPE, B.vif_type)):
        plugin.add_filter("ports", attr, child_filter(P.id, B.port_id, column))
    # As Neutron: a host filter matches any binding of the port (a port
    # being moved is listed for both hosts).
    IB = models.InactivePortBinding
    active_on = child_filter(P.id, B.port_id, B.host)
    inactive_on = child_filter(P.id, IB.port_id, IB.host)
    plugin.add_filter("ports", HOST, lambda values: sa.or_(active_on(values),
                                                           inactive_on(values)))
    plugin.report_hooks.append(functools.partial(on_report, plugin))


# ------------------------------------------------------------------ storage side
# What a binding is: moved as a whole between port_bindings (the active
# one) and port_inactive_bindings.
_FIELDS = ("host", "vnic_type", "profile", "vif_type", "vif_details", "ofport",
           "flows_installed")


def _record_pending(s, plugin, port, op):
    """A change of ``port`` for each host that has a pending binding of it."""
    IB = models.InactivePortBinding
    for host in s.execute(sa.select(IB.host).where(IB.port_id == port.id,
                                                   IB.pending.is_(True))).scalars():
        changelog.record(s, "port", port, op, port.network_id, host=host, members=False)


def on_report(plugin, s, host, ofports, installed, unplugged, handled):
    """An agent's report about ports it holds through an inactive binding
    (see agent_api.report; ``handled``: the ports whose active binding is
    on ``host``).  What it says is kept on the binding, for its activation.
    A pending binding whose flows the agent installed tells nova that the
    VIF is plugged (what nova waits for before a live migration, as Neutron
    does for an inactive binding), and the host's view shows the port on
    its active host again until activation (see host_view.pending_ports).
    Returns (rows updated, status events)."""
    ids = (set(ofports) | set(map(str, installed)) | set(map(str, unplugged))) - set(handled)
    if not ids:
        return 0, []
    IB, P = models.InactivePortBinding, models.Port
    rows = s.execute(sa.select(IB, P).join(P, P.id == IB.port_id)
                     .where(IB.host == host, IB.port_id.in_(sorted(ids)))).all()
    events = []
    for row, port in rows:
        was = row.flows_installed
        if row.port_id in ofports:
            row.ofport = ofports[row.port_id]
        if row.port_id in installed:
            row.flows_installed = True
        if row.port_id in unplugged:
            row.flows_installed = False
            row.ofport = None
        if row.pending and row.flows_installed != was:
            # The host's view of the port changes (see above).
            changelog.record(s, "port", port, "update", port.network_id, host=host,
                             members=False)
            if row.flows_installed and (port.device_owner or "").startswith(COMPUTE_PREFIX):
                events.append((port.id, port.device_id, port.device_owner, ACTIVE))
    return len(rows), events


def binding_dict(b, status):
    """Neutron's body of one binding."""
    return {"host": b.host, "vif_type": b.vif_type, "vnic_type": b.vnic_type,
            "status": status, "profile": json.loads(b.profile or "{}"),
            "vif_details": json.loads(b.vif_details or "{}")}


def bindings_of(s, port):
    """The port's bindings: the active one first (none while the port has
    no host), then the others by host."""
    out = []
    if port.binding is not None and port.binding.host:
        out.append(binding_dict(port.binding, ACTIVE))
    IB = models.InactivePortBinding
    for row in s.execute(sa.select(IB).where(IB.port_id == port.id).order_by(IB.host)
                         ).scalars():
        out.append(binding_dict(row, INACTIVE))
    return out


BINDING_FILTERS = ("host", "vif_type", "vnic_type", "status")
POST_ATTRS = ("host", "vnic_type", "profile", "project_id", "tenant_id")


def parse_binding(body):
    """The attributes of a POST .../bindings body (400 on anything wrong)."""
    b = body.get("binding")
    if not isinstance(b, dict):
        raise exceptions.BadRequest(resource="binding",
                                    msg="Resource body required: {'binding': {'host': ...}}")
    unknown = sorted(k for k in b if k not in POST_ATTRS)
    if unknown:
        raise exceptions.BadRequest(
            resource="binding",
            msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    if "host" not in b:
        raise exceptions.BadRequest(
            resource="binding",
            msg="Failed to parse request. Required attribute 'host' not specified")
    host = v.string(255)(b["host"], "host")
    if not host.strip():
        raise v.bad("'host' must be a host name, not empty")
    for k in ("project_id", "tenant_id"):
        if k in b:
            v.string(255)(b[k], k)
    vnic = v.choices(*VNIC_TYPES, allow_none=False)(b.get("vnic_type", "normal"), VNIC)
    return {"host": host, "vnic_type": vnic, "profile": _profile(b.get("profile"))}


def _query(req):
    """(fields, filters) of a bindings read; 400 on an unknown filter."""
    fields = set(req.GET.getall("fields")) - {""}
    filters = {}
    for key in req.GET:
        if key in RESERVED_PARAMS:
            continue
        if key not in BINDING_FILTERS:
            raise exceptions.BadRequest(resource="binding",
                                        msg=f"[{key}] is invalid attribute for filtering")
        filters[key] = set(req.GET.getall(key))
    return fields, filters


def _shown(d, fields):
    return {k: val for k, val in d.items() if not fields or k in fields}


# ------------------------------------------------------------------ routes
def routes(api):
    plugin, db = api.plugin, api.plugin.db
    IB = models.InactivePortBinding

    def port_for(s, ctx, port_id, action, lock=False):
        """The port (404 unless the caller sees it), the caller allowed to
        ``action`` it (403), a compute port (400)."""
        port = plugin.row(s, ctx, "ports", port_id, lock=lock)
        api.policy.enforce(action, ctx, {"id": port.id, "port_id": port.id,
                                         "project_id": port.project_id,
                                         "tenant_id": port.project_id,
                                         "network_id": port.network_id})
        if not (port.device_owner or "").startswith(COMPUTE_PREFIX):
            raise exceptions.BadRequest(
                resource="port",
                msg=f"Invalid port {port_id}. Operation only valid on compute ports")
        return port

    def active_of(port):
        """The port's active binding (made, unbound, if it has none)."""
        if port.binding is None:
            port.binding = models.PortBinding(host="", vnic_type="normal", profile="{}",
                                              vif_type="unbound", vif_details="{}")
        return port.binding

    def index(req, ctx, port_id, **kw):
        fields, filters = _query(req)
        with db.reader() as s:
            found = bindings_of(s, port_for(s, ctx, port_id, "get_port_binding"))
        found = [d for d in found if all(str(d[k]) in vals for k, vals in filters.items())]
        return json_response({"bindings": [_shown(d, fields) for d in found]})

    def show(req, ctx, port_id, host, **kw):
        fields = set(req.GET.getall("fields")) - {""}
        with db.reader() as s:
            found = bindings_of(s, port_for(s, ctx, port_id, "get_port_binding"))
        for d in found:
            if d["host"] == host:
                return json_response({"binding": _shown(d, fields)})
        raise PortBindingNotFound(port_id=port_id, host=host)

    def create(req, ctx, port_id, **kw):
        a = parse_binding(read_json(req))
        host = a["host"]

        def txn(s):
            port = port_for(s, ctx, port_id, "create_port_binding", lock=True)
            b = active_of(port)
            if b.host == host or s.get(IB, (port.id, host)) is not None:
                raise PortBindingAlreadyExists(port_id=port.id, host=host)
            if not b.host:
                # The port's first binding: it binds the port.
                b.host, b.vnic_type, b.profile = host, a["vnic_type"], json.dumps(a["profile"])
                b.ofport, b.flows_installed = None, False
                port.status = "DOWN"
                bind(s, plugin, port, b)
                if b.vif_type != "ovs":
                    raise PortBindingError(port_id=port.id, host=host)
                changelog.bump(port)
                changelog.record(s, "port", port, "update", port.network_id, members=False)
                s.flush()
                return binding_dict(b, ACTIVE)
            row = IB(port_id=port.id, host=host, vnic_type=a["vnic_type"],
                     profile=json.dumps(a["profile"]), pending=True, flows_installed=False)
            bind(s, plugin, port, row)
            if row.vif_type != "ovs":
                raise PortBindingError(port_id=port.id, host=host)
            s.add(row)
            changelog.bump(port)
            # The destination host prepares the port.
            changelog.record(s, "port", port, "update", port.network_id, host=host,
                             members=False)
            s.flush()
            return binding_dict(row, INACTIVE)
        return json_response({"binding": db.write(txn)}, status=201)

    def update(req, ctx, port_id, host, **kw):
        """Neutron's update of a binding: its vnic type and profile (the
        host is the binding's name).  Allowed by create_port_binding's rule
        (Neutron registers none for it)."""
        body = read_json(req).get("binding")
        if not isinstance(body, dict):
            raise exceptions.BadRequest(resource="binding",
                                        msg="Resource body required: {'binding': {...}}")
        unknown = sorted(k for k in body if k not in ("host", "vnic_type", "profile"))
        if unknown:
            raise exceptions.BadRequest(
                resource="binding", msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        if "host" in body and body["host"] != host:
            raise v.bad("the host of a binding cannot change: create one on the other host")
        a = {}
        if "vnic_type" in body:
            a["vnic_type"] = v.choices(*VNIC_TYPES, allow_none=False)(body["vnic_type"], VNIC)
        if "profile" in body:
            a["profile"] = json.dumps(_profile(body["profile"]))

        def txn(s):
            port = port_for(s, ctx, port_id, "create_port_binding", lock=True)
            if port.binding is not None and port.binding.host == host:
                target, status = port.binding, ACTIVE
            else:
                target, status = s.get(IB, (port.id, host)), INACTIVE
                if target is None:
                    raise PortBindingNotFound(port_id=port.id, host=host)
            rebind = a.get("vnic_type", target.vnic_type) != target.vnic_type
            for k, val in a.items():
                setattr(target, k, val)
            if rebind:
                bind(s, plugin, port, target)
                if target.vif_type != "ovs":
                    raise PortBindingError(port_id=port.id, host=host)
            if status == ACTIVE:
                changelog.bump(port)
                changelog.record(s, "port", port, "update", port.network_id, members=False)
            s.flush()
            return binding_dict(target, status)
        return json_response({"binding": db.write(txn)})

    def delete(req, ctx, port_id, host, **kw):
        def txn(s):
            port = port_for(s, ctx, port_id, "delete_port_binding", lock=True)
            if port.binding is not None and port.binding.host == host:
                raise PortBindingActive(port_id=port.id, host=host)
            row = s.get(IB, (port.id, host))
            if row is None:
                raise PortBindingNotFound(port_id=port.id, host=host)
            pending = row.pending
            s.delete(row)
            changelog.bump(port)
            if pending:  # the host drops what it prepared
                changelog.record(s, "port", port, "update", port.network_id, host=host,
                                 members=False)
        db.write(txn)
        return json_response(None, status=204)

    def activate(req, ctx, port_id, host, **kw):
        changed = []

        def txn(s):
            changed.clear()
            port = port_for(s, ctx, port_id, "activate", lock=True)
            b = active_of(port)
            if b.host == host:
                raise PortBindingAlreadyActive(port_id=port.id, host=host)
            row = s.get(IB, (port.id, host))
            if row is None:
                raise PortBindingNotFound(port_id=port.id, host=host)
            old = {f: getattr(b, f) for f in _FIELDS}
            for f in _FIELDS:
                setattr(b, f, getattr(row, f))
            s.delete(row)
            s.flush()
            if old["host"]:
                # Kept (no longer pending) until deleted or activated again.
                s.add(IB(port_id=port.id, pending=False, **old))
            before = port.status
            # What the new host's agent reported while the binding was
            # pending holds: flows installed there, the port stays up.
            port.status = ACTIVE if b.flows_installed and port.admin_state_up else "DOWN"
            changelog.bump(port)
            if old["host"]:
                changelog.record(s, "port", port, "update", port.network_id, host=old["host"],
                                 members=False)
            changelog.record(s, "port", port, "update", port.network_id, members=False)
            if port.status != before:
                changed.append((port.id, port.device_id, port.device_owner, port.status))
            s.flush()
            return binding_dict(b, ACTIVE)
        out = db.write(txn)
        for fn in plugin.status_listeners:
            try:
                fn(list(changed))
            except Exception:  # noqa: BLE001 - a listener never fails the call
                LOG.exception("port status listener failed")
        return json_response({"binding": out})

    fmt = "{fmt:(\\.json)?}"
    base = "/v2.0/ports/{port_id}/bindings"
    api.add_route(base + fmt, {"GET": index, "POST": create})
    api.add_route(base + "/{host}/activate" + fmt, {"PUT": activate})
    api.add_route(base + "/{host}" + fmt, {"GET": show, "PUT": update, "DELETE": delete})
