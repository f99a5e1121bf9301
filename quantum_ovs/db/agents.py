"""Agent operations, the storage side of the agent API (api/agent_api.py):
register and heartbeat an agent, report the ports it plugged and
installed.  What a host sees since a revision is db.changefeed.HostStates.

Each operation is one write transaction of ``plugin.db``; ``plugin``
brings the extensions' hooks.
"""

import json
import uuid

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.db import bindings, changelog, models
from quantum_ovs.db.query import chunks
from quantum_ovs.db.session import is_sqlite
from quantum_ovs.timeutils import utcnow

AGENT_TYPE = "Open vSwitch agent"
BINARY = "quantum-ovs-agent"


def alive(agent, down_time):
    """Whether ``agent`` sent a heartbeat in the last ``down_time`` seconds."""
    return (utcnow(precise=True) - agent.heartbeat_timestamp).total_seconds() < down_time


def live_agent(s, host, down_time):
    """The agent of ``host`` if it is alive and administratively up."""
    A = models.Agent
    agent = s.execute(sa.select(A).where(A.agent_type == AGENT_TYPE, A.host == host)
                      ).scalars().first()
    if agent is None or not agent.admin_state_up or not alive(agent, down_time):
        return None
    return agent


CONFIGURATIONS_MAX = models.Agent.configurations.property.columns[0].type.length


def register(s, down_time, host, configurations, tunnel_ip=None, started=False):
    """Insert or refresh the agent row of ``host``; returns it and whether
    its tunnel IP changed (its peers must learn the new one)."""
    text = json.dumps(configurations, sort_keys=True)
    if len(text) > CONFIGURATIONS_MAX:
        # (the column's size, on every backend: SQLite would keep any size,
        # and every peer's view and agent listing reads it back)
        raise exceptions.InvalidInput(
            error_message=f"'configurations' is longer than {CONFIGURATIONS_MAX} "
                          "characters as JSON")
    A = models.Agent
    agent = s.execute(sa.select(A).where(A.agent_type == AGENT_TYPE, A.host == host)
                      ).scalars().first()
    now = utcnow()
    if agent is None:
        agent = A(id=str(uuid.uuid4()), agent_type=AGENT_TYPE, binary=BINARY,
                  topic="N/A", host=host, admin_state_up=True, created_at=now,
                  started_at=now)
        s.add(agent)
    if started:
        agent.started_at = now
    agent.heartbeat_timestamp = now
    agent.configurations = text
    moved = agent.tunnel_ip != tunnel_ip
    agent.tunnel_ip = tunnel_ip
    s.flush()
    s.info.pop(bindings.LIVE_AGENTS, None)  # what bind() looked up is stale
    return agent, moved


def register_agent(plugin, host, configurations, tunnel_ip=None, started=False,
                   credential_id=None):
    """Register (``started``: the agent (re)started) or heartbeat the agent
    of ``host``, and bind the host's ports that waited for it; returns the
    agent row.  ``credential_id``: the credential a gateway agent comes
    with, checked live again here (403 if revoked meanwhile)."""
    def txn(s):
        if configurations.get("gateway") and credential_id is not None:
            # (share-locked: a revocation waits for this registration and
            # then takes the role it gives away, or went first and is seen
            # here -- never a gateway registered after its role was dropped)
            C = models.AgentCredential
            if s.execute(sa.select(C.id).where(C.id == credential_id, C.revoked_at.is_(None))
                         .with_for_update(read=True)).first() is None:
                raise exceptions.NotAuthorized()
        agent, moved = register(s, plugin.agents.down_time, host, configurations,
                                tunnel_ip=tunnel_ip, started=started)
        bindings.bind_waiting(s, plugin, host)
        for hook in getattr(plugin, "register_hooks", ()):
            hook(s, agent)
        # Other hosts care about this host's address (it is in their
        # tunnels), not about its restarts: a restart (``started``) with
        # the same address changes nothing for them, and waking every
        # agent of the cloud for each restarted one would not scale.
        if moved:
            changelog.record(s, "agent", agent, "update", host=host)
        return agent
    return plugin.db.write(txn)


def _update(s, table, key, params, **values):
    """One UPDATE statement for the rows of ``params`` (dicts with the row's
    key as ``pid``), executed for all of them at once."""
    if params:
        s.execute(sa.update(table).where(key == sa.bindparam("pid")).values(**values), params)


def report(plugin, host, ofports, unplugged, installed):
    """What the agent of ``host`` did: plugged the ports of ``ofports``
    (port id -> OpenFlow port or None), unplugged those of ``unplugged``,
    installed the flows of those of ``installed``.  Only ports bound to
    ``host`` (actively, or through an inactive binding: a move, see
    ``plugin.report_hooks``) change.  Returns (ports updated, status
    changes as (port id, device id, device owner, status))."""
    ids = set(ofports) | set(map(str, unplugged)) | set(map(str, installed))
    changed_status = []

    P, B = models.Port.__table__, models.PortBinding.__table__

    def txn(s):
        changed_status.clear()
        if not ids:
            return 0
        # Each chunk's ports locked before they are read, as every write of
        # a binding locks its port (a move, an activation, a binding
        # deleted): what is read is then what such a write committed, and a
        # report that lost the race (the port moved off this host
        # meanwhile) leaves the port alone, never taking down its new
        # host's binding, nor writing an inactive binding deleted
        # meanwhile.  Plain rows, and only the rows that change are
        # written: an agent that starts again reports every port it holds,
        # and nearly nothing changes.  (In chunks, in id order: a report
        # may name tens of thousands of ports.)
        lock = not is_sqlite(s)
        rows = []
        for chunk in chunks(sorted(ids)):
            if lock:
                s.execute(sa.select(P.c.id).where(P.c.id.in_(chunk)).order_by(P.c.id)
                          .with_for_update())
            rows += s.execute(
                sa.select(P.c.id, P.c.status, P.c.admin_state_up, P.c.revision_number,
                          P.c.device_id, P.c.device_owner, B.c.ofport, B.c.flows_installed)
                .join(B, B.c.port_id == P.c.id)
                .where(P.c.id.in_(chunk), B.c.host == host)).all()
        bindings, ports = [], []
        for pid, old, admin_up, revision, device_id, owner, old_ofport, old_flows in rows:
            status, ofport, flows = old, old_ofport, old_flows
            if pid in ofports:
                ofport = ofports[pid]
            if pid in installed:
                flows = True
                status = "ACTIVE" if admin_up else "DOWN"
            if pid in unplugged:
                flows, ofport, status = False, None, "DOWN"
            if (ofport, flows) != (old_ofport, old_flows):
                bindings.append({"pid": pid, "v_ofport": ofport, "v_flows": flows})
            if status != old:
                ports.append({"pid": pid, "v_status": status, "v_revision": revision + 1})
                changed_status.append((pid, device_id, owner, status))
        _update(s, B, B.c.port_id, bindings, ofport=sa.bindparam("v_ofport"),
                flows_installed=sa.bindparam("v_flows"))
        _update(s, P, P.c.id, ports, status=sa.bindparam("v_status"),
                revision_number=sa.bindparam("v_revision"))
        n = len(rows)
        for hook in getattr(plugin, "report_hooks", ()):
            more, events = hook(s, host, ofports, installed, unplugged,
                                {r[0] for r in rows})
            n += more
            changed_status.extend(events)
        return n
    return plugin.db.write(txn), changed_status
