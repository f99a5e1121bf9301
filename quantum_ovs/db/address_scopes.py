"""The address scope of subnets, for a router's NAT decision: traffic
between two subnets of one address scope is routed, not translated (as
Neutron's).  A subnet is in the scope of the pool it was taken from."""

import sqlalchemy as sa

from quantum_ovs.db import changelog, models


def scopes_of_subnets(s, subnet_ids):
    """{subnet id: address scope id or None} of these subnets."""
    S, P = models.Subnet, models.SubnetPool
    rows = s.execute(sa.select(S.id, P.address_scope_id)
                     .join(P, P.id == S.subnetpool_id, isouter=True)
                     .where(S.id.in_(list(subnet_ids))))
    return {sid: scope for sid, scope in rows}


def same_scope(scope_a, scope_b):
    """Whether two subnets whose scopes are these (None: no scope) are in
    one address scope: traffic between them is routed, not NATed."""
    return scope_a is not None and scope_a == scope_b


def record_routers_of_pool(s, pool_id):
    """A subnet pool's address scope changed: a router change row (per
    network it touches) for each router with an interface or its gateway
    on a subnet of the pool, whose NAT decision may have changed."""
    S, A, RP, RT, PT = (models.Subnet, models.IPAllocation, models.RouterPort,
                        models.Router, models.Port)
    ports = (sa.select(A.port_id).join(S, S.id == A.subnet_id)
             .where(S.subnetpool_id == pool_id))
    ids = set(s.execute(sa.select(RP.router_id).where(RP.port_id.in_(ports))).scalars())
    ids |= set(s.execute(sa.select(RT.id).where(RT.gw_port_id.in_(ports))).scalars())
    for router in s.execute(sa.select(RT).where(RT.id.in_(sorted(ids)))
                            .order_by(RT.id)).scalars():
        nets = set(s.execute(sa.select(PT.network_id).join(RP, RP.port_id == PT.id)
                             .where(RP.router_id == router.id)).scalars())
        if router.gw_network_id:
            nets.add(router.gw_network_id)
        for net_id in sorted(nets):
            changelog.record(s, "router", router, "update", net_id)
