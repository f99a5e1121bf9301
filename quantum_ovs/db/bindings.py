"""Port binding, the storage side: whether a host's live agent can serve a
port (``binding:vif_type`` and ``binding:vif_details``), and what an
agent's report changes on the inactive bindings it holds (a port being
moved to its host).  The API of bindings is extensions/binding.py.
"""

import json
import logging

import sqlalchemy as sa

from quantum_ovs.db import changelog, models
from quantum_ovs.db.query import chunks

LOG = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
COMPUTE_PREFIX = "compute:"
# A port whose binding is one of these has no NIC using its MAC yet (and
# is bound again when an agent on its host registers).
UNPLUGGED_VIF_TYPES = ("unbound", "binding_failed")


def can_serve(agent_conf, segment):
    """Can an OVS agent with this configuration carry the segment?  (A
    configuration of the wrong shape, stored before the agent API checked
    it, carries nothing: never a TypeError.)"""
    if segment is None or segment.network_type == "local":
        return True
    if segment.network_type in ("vxlan", "gre"):
        types = agent_conf.get("tunnel_types", [])
        return isinstance(types, list) and segment.network_type in types
    mappings = agent_conf.get("bridge_mappings", {})
    return isinstance(mappings, dict) and segment.physical_network in mappings


def _vif_details(agent, segment):
    """The vif_details of a port that ``agent`` can serve on ``segment``,
    or None (binding_failed)."""
    conf = json.loads(agent.configurations or "{}")
    if not isinstance(conf, dict) or not can_serve(conf, segment):
        return None
    bridge = conf.get("integration_bridge", "br-int")
    datapath = conf.get("datapath_type", "system")
    if not isinstance(bridge, str) or not isinstance(datapath, str):
        return None
    return json.dumps({"port_filter": True, "connectivity": "l2", "bridge_name": bridge,
                       "datapath_type": datapath, "ovs_hybrid_plug": False})


LIVE_AGENTS = "qovs_live_agents"  # session.info: host -> live agent row or None


def bind(s, plugin, port, binding):
    """Set vif_type and vif_details from the host's live agent."""
    if not binding.host:
        binding.vif_type, binding.vif_details = "unbound", "{}"
        return
    if binding.vnic_type != "normal":
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    # A bulk binds its ports to one host: the agent is looked up once per
    # transaction (a query per port would flush each new port on its own).
    known = s.info.setdefault(LIVE_AGENTS, {})
    if binding.host in known:
        agent = known[binding.host]
    else:
        agent = known[binding.host] = plugin.live_agent(s, binding.host)
    net = s.get(models.Network, port.network_id)
    if agent is None:
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    try:
        details = _vif_details(agent, net.segment)
    except (ValueError, RecursionError):
        # An agent row whose configurations are not JSON (written before
        # the registration checked them; can_serve takes any other shape)
        # fails the binding, not the request, as Neutron's
        # MechanismManager does when a driver's bind_port raises: logged,
        # the port left binding_failed.  (A database error is not caught:
        # the write retries or fails.)
        LOG.exception("binding port %s to host %r: the agent's configurations cannot be "
                      "read; binding failed", port.id, binding.host)
        details = None
    if details is None:
        binding.vif_type, binding.vif_details = "binding_failed", "{}"
        return
    binding.vif_type, binding.vif_details = "ovs", details


def bind_waiting(s, plugin, host):
    """Bind the ports of ``host`` that wait for an agent there (unbound or
    failed); record those that are now bound."""
    waiting = s.execute(
        sa.select(models.Port).join(models.PortBinding)
        .where(models.PortBinding.host == host,
               models.PortBinding.vif_type.in_(UNPLUGGED_VIF_TYPES))
    ).scalars().all()
    for port in waiting:
        bind(s, plugin, port, port.binding)
        if port.binding.vif_type == "ovs":
            changelog.bump(port)
            changelog.record(s, "port", port, "update", port.network_id)


def on_report(plugin, s, host, ofports, installed, unplugged, handled):
    """An agent's report about ports it holds through an inactive binding
    (see db.agents.report; ``handled``: the ports whose active binding is
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
    rows = [r for chunk in chunks(sorted(ids)) for r in s.execute(
        sa.select(IB, P).join(P, P.id == IB.port_id)
        .where(IB.host == host, IB.port_id.in_(chunk))).all()]
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
