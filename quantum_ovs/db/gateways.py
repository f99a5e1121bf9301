"""Router gateways, the storage side: the tunnel key of a gateway's SNAT
redirect and the gateway hosts that serve it.

``redirect_key``: the key (VNI) that instances' hosts put on SNAT traffic
they tunnel to a gateway host.  It comes from the tenant networks' tunnel
ranges and is reserved as a segment (a row of ``segment_allocations`` for
``vxlan`` and one for ``gre``, on the gateway's network): no network can
take it, nor another gateway, under any concurrency (the primary key), and
it is freed with the gateway.

Gateway hosts: the hosts whose agent says ``"gateway": true`` in its
configurations (agent option ``[agent] gateway``).  Each router gateway
gets all the live ones that can carry its external network's segment (a
bridge for a flat or VLAN network's physnet, the tunnel type of a
tunnelled one: db/bindings.can_serve, what a port binding asks too), in
an order of its own: the first choice rotates across routers (the host
that is first for the fewest routers comes first), the others follow in
name order from there.  A host that cannot put anything on the network
must not be one: first, it would be the active host (BFD to it is up, so
every host redirects the router's SNAT to it) and drop everything; OVN
likewise schedules a gateway chassis only among those with the physnet's
bridge mapping.  The order is kept (moving a router's active gateway
would cut its SNAT connections): a gateway host that appears later is
appended to every list it can serve; the data plane skips the dead ones
(BFD), so a dead host is not removed.  A host leaves every list when it
is a gateway no more: its agent says so, its agent is deleted, the
operator revokes its last credential with the role (``drop_unheld``), or
an admin sets its agent's admin_state_up false (a drained L3 agent hosts
no routers in Neutron); it is appended again when it is back.  It leaves
the lists of the routers whose network it can carry no more when it
registers with other bridge mappings or tunnel types; a router whose
gateway moves to another network gets the hosts of that one (``assign``).
"""

import json

import sqlalchemy as sa

from quantum_ovs.db import agents as agents_db, bindings, changelog, models

TUNNEL_TYPES = ("vxlan", "gre")
ROUTER = "router"  # the routers' change rows (l3's resource name)
AGENT_TYPE = agents_db.AGENT_TYPE


# ------------------------------------------------------------ redirect keys
def allocate_redirect_key(s, segments, network_id):
    """A free tunnel key, reserved for a gateway on ``network_id``; None
    when every key of the ranges is in use."""
    A = models.SegmentAllocation
    ranges = (segments.vxlan or segments.gre) if segments is not None else [(1, 10000)]
    for lo, hi in ranges:
        start = lo
        while start <= hi:
            key = segments._free_from(s, "vxlan", "", start, hi) if segments is not None \
                else _free_from(s, start, hi)
            if key is None or key > hi:
                break
            if all(s.get(A, (t, "", key)) is None for t in TUNNEL_TYPES):
                for t in TUNNEL_TYPES:
                    s.add(A(network_type=t, physical_network="", segmentation_id=key,
                            network_id=network_id))
                s.flush()
                return key
            start = key + 1
    return None


def _free_from(s, start, hi):
    A = models.SegmentAllocation
    used = set(s.execute(sa.select(A.segmentation_id).where(
        A.network_type == "vxlan", A.segmentation_id.between(start, hi))).scalars())
    return next((k for k in range(start, hi + 1) if k not in used), None)


def free_redirect_key(s, key):
    if key is None:
        return
    A = models.SegmentAllocation
    s.execute(sa.delete(A).where(A.network_type.in_(TUNNEL_TYPES),
                                 A.physical_network == "", A.segmentation_id == key))


# ------------------------------------------------------------ gateway hosts
def is_gateway(agent):
    try:
        return bool(json.loads(agent.configurations or "{}").get("gateway"))
    except ValueError:
        return False


def role_held(s, host):
    """Whether a live credential of ``host`` carries the gateway role."""
    C = models.AgentCredential
    return s.execute(sa.select(C.id).where(C.host == host, C.revoked_at.is_(None),
                                           C.gateway.is_(True)).limit(1)).first() is not None


def _agent_of(s, host):
    A = models.Agent
    return s.execute(sa.select(A).where(A.agent_type == agents_db.AGENT_TYPE,
                                        A.host == host)).scalars().first()


def drop_role(s, host):
    """In a write transaction: ``host`` is a gateway no more if none of
    its live credentials carries the role (the operator revoked it): its
    agent row says so, and it leaves every router gateway (recorded, as
    for an agent that registers as no gateway).  Its agent need not
    register again for that, nor ever.  Returns whether it was one."""
    agent = _agent_of(s, host)
    if agent is None or not is_gateway(agent) or role_held(s, host):
        return False
    confs = json.loads(agent.configurations or "{}")
    confs["gateway"] = False
    agent.configurations = json.dumps(confs, sort_keys=True)
    leave_all(s, host)
    return True


def drop_unheld(db, host):
    """drop_role in a transaction of its own (none when there is nothing
    to drop).  Returns whether ``host`` was a gateway."""
    # (read first: most hosts are no gateway, and their poll need not take
    # a write transaction; the write checks again, as anything may have
    # changed between the two)
    with db.reader() as s:
        agent = _agent_of(s, host)
        if agent is None or not is_gateway(agent) or role_held(s, host):
            return False
    return db.write(lambda s: drop_role(s, host))


def gateway_agents(s, down_time, alive_only=True):
    """The gateway agents (admin up; alive ones only unless told), by host."""
    AG = models.Agent
    rows = s.execute(sa.select(AG).where(AG.agent_type == AGENT_TYPE,
                                         AG.admin_state_up.is_(True))
                     .order_by(AG.host)).scalars().all()
    return [a for a in rows if is_gateway(a) and
            (not alive_only or agents_db.alive(a, down_time))]


def hosts_of(s, router_id):
    GH = models.RouterGatewayHost
    return list(s.execute(sa.select(GH.host).where(GH.router_id == router_id)
                          .order_by(GH.priority, GH.host)).scalars())


def _first_choice_load(s):
    GH = models.RouterGatewayHost
    return dict(s.execute(sa.select(GH.host, sa.func.count()).where(GH.priority == 0)
                          .group_by(GH.host)).all())


def _configurations(agent):
    """The agent's configurations as a dict; an empty one when they cannot
    be read (a row stored before the agent API checked them)."""
    try:
        conf = json.loads(agent.configurations or "{}")
    except (ValueError, RecursionError):
        return {}
    return conf if isinstance(conf, dict) else {}


def _segment_of(s, network_id):
    NS = models.NetworkSegment
    return s.execute(sa.select(NS).where(NS.network_id == network_id)).scalars().first()


def assign(s, router_id, down_time):
    """Give the router's gateway its ordered gateway hosts (replacing any):
    the live gateway hosts that can carry its external network's segment;
    returns them."""
    clear(s, router_id)
    router = s.get(models.Router, router_id)
    segment = _segment_of(s, router.gw_network_id) \
        if router is not None and router.gw_network_id else None
    hosts = [a.host for a in gateway_agents(s, down_time)
             if bindings.can_serve(_configurations(a), segment)]
    if not hosts:
        return []
    load = _first_choice_load(s)
    first = min(range(len(hosts)), key=lambda i: (load.get(hosts[i], 0), i))
    ordered = hosts[first:] + hosts[:first]
    for i, h in enumerate(ordered):
        s.add(models.RouterGatewayHost(router_id=router_id, host=h, priority=i))
    s.flush()
    return ordered


def clear(s, router_id):
    """Drop the router's gateway hosts; returns those it had."""
    old = hosts_of(s, router_id)
    GH = models.RouterGatewayHost
    s.execute(sa.delete(GH).where(GH.router_id == router_id))
    return old


def _servable_networks(s, conf):
    """The routers' external gateway networks that an agent with the
    configurations ``conf`` can carry."""
    RT, NS = models.Router, models.NetworkSegment
    # (the external networks of gateways are few: one query for them and
    # one for their segments keep a heartbeat cheap however many routers)
    nets = set(s.execute(sa.select(RT.gw_network_id).where(RT.gw_port_id.is_not(None))
                         .distinct()).scalars())
    if not nets:
        return set()
    segments = {x.network_id: x for x in s.execute(
        sa.select(NS).where(NS.network_id.in_(sorted(nets)))).scalars()}
    return {n for n in nets if bindings.can_serve(conf, segments.get(n))}


def add_host(s, host):
    """A gateway host (new, newly a gateway, or registering again): appended
    to every router gateway that lacks it and whose external network its
    agent can carry (first for those that had none), removed from those it
    can carry no more (its bridge mappings or tunnel types changed).
    Returns the ids of the routers changed."""
    GH, RT = models.RouterGatewayHost, models.Router
    agent = _agent_of(s, host)
    ok = _servable_networks(s, _configurations(agent) if agent is not None else {})
    has = sa.select(GH.router_id).where(GH.host == host)
    # (a router whose gateway was removed has no gateway hosts: clear)
    unservable = list(s.execute(sa.select(RT.id).where(RT.id.in_(has),
                                                       RT.gw_network_id.not_in(sorted(ok)))
                                .order_by(RT.id)).scalars())
    if unservable:
        s.execute(sa.delete(GH).where(GH.host == host, GH.router_id.in_(unservable)))
    missing = list(s.execute(sa.select(RT.id).where(RT.gw_port_id.is_not(None),
                                                    RT.gw_network_id.in_(sorted(ok)),
                                                    RT.id.not_in(has))
                             .order_by(RT.id)).scalars())
    if missing:
        last = dict(s.execute(sa.select(GH.router_id, sa.func.max(GH.priority))
                              .where(GH.router_id.in_(missing)).group_by(GH.router_id)).all())
        for rid in missing:
            s.add(GH(router_id=rid, host=host, priority=last.get(rid, -1) + 1))
    s.flush()
    return sorted(set(unservable) | set(missing))


def remove_host(s, host):
    """A gateway host gone for good (its agent deleted, or no longer a
    gateway): removed from every router gateway.  Returns the ids of the
    routers changed."""
    GH = models.RouterGatewayHost
    ids = list(s.execute(sa.select(GH.router_id).where(GH.host == host)
                         .order_by(GH.router_id)).scalars())
    if ids:
        s.execute(sa.delete(GH).where(GH.host == host))
    return ids


def routers_of_host(s, host):
    """The routers whose gateway ``host`` serves."""
    GH = models.RouterGatewayHost
    return set(s.execute(sa.select(GH.router_id).where(GH.host == host)).scalars())


def record_assignment(s, router_ids, host):
    """Change rows for routers whose gateway ``host`` joined or left: one
    per network each router touches (its interfaces' and its gateway's:
    every host that routes through it learns its new host list) and one
    for ``host`` (its view gains or loses the routers and the networks
    behind them).  What the routers' own record does for such a change."""
    P, RP, RT = models.Port, models.RouterPort, models.Router
    for rid in router_ids:
        router = s.get(RT, rid)
        if router is None:
            continue
        nets = set(s.execute(sa.select(P.network_id).join(RP, RP.port_id == P.id)
                             .where(RP.router_id == rid)).scalars())
        if router.gw_network_id:
            nets.add(router.gw_network_id)
        for net_id in sorted(nets):
            changelog.record(s, ROUTER, router, "update", net_id)
        changelog.record(s, ROUTER, router, "update", None, host=host)


def leave_all(s, host):
    """``host`` taken out of every router gateway, recorded; returns the
    ids of the routers changed."""
    ids = remove_host(s, host)
    record_assignment(s, ids, host)
    return ids


def join_all(s, host):
    """``host`` appended to every router gateway that lacks it and whose
    network it can carry (first where there was none), taken out of those
    it can carry no more, recorded; returns the ids of the routers
    changed."""
    ids = add_host(s, host)
    record_assignment(s, ids, host)
    return ids
