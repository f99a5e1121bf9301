"""The address scope of subnets, for a router's NAT decision: traffic
between two subnets of one address scope is routed, not translated (as
Neutron's).  A subnet is in the scope of the pool it was taken from."""

import sqlalchemy as sa

from quantum_ovs.db import models


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
