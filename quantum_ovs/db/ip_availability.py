"""Network IP availability: totals from the subnets' allocation pools
(one row per pool) and the used addresses as one COUNT per subnet, never
by reading the allocations themselves."""

import collections

import sqlalchemy as sa

from quantum_ovs.db import models


def availabilities(s, filters):
    """[{network_id, network_name, project_id, tenant_id, total_ips,
    used_ips, subnet_ip_availability: [...]}] of the networks that match
    ``filters`` (attribute -> accepted values: network_id, network_name,
    project_id, ip_version), by network id."""
    N, S = models.Network, models.Subnet
    P, A = models.AllocationPool, models.IPAllocation
    nets = sa.select(N.id)
    if filters.get("network_id"):
        nets = nets.where(N.id.in_(filters["network_id"]))
    if filters.get("network_name"):
        nets = nets.where(N.name.in_(filters["network_name"]))
    if filters.get("project_id"):
        nets = nets.where(N.project_id.in_(filters["project_id"]))
    subs = sa.select(S.id).where(S.network_id.in_(nets))
    versions = filters.get("ip_version")
    if versions:
        subs = subs.where(S.ip_version.in_(versions))
        nets = nets.where(N.id.in_(sa.select(S.network_id).where(S.ip_version.in_(versions))))
    total = collections.Counter()
    for sid, first, last in s.execute(
            sa.select(P.subnet_id, P.first_key, P.last_key).where(P.subnet_id.in_(subs))):
        total[sid] += int(last, 16) - int(first, 16) + 1
    used = dict(s.execute(sa.select(A.subnet_id, sa.func.count())
                          .where(A.subnet_id.in_(subs)).group_by(A.subnet_id)).all())
    per_net = collections.defaultdict(list)
    for sub in s.execute(sa.select(S.id, S.name, S.cidr, S.ip_version, S.network_id)
                         .where(S.id.in_(subs)).order_by(S.created_at, S.id)):
        per_net[sub.network_id].append({
            "subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr,
            "ip_version": sub.ip_version, "total_ips": total[sub.id],
            "used_ips": used.get(sub.id, 0)})
    out = []
    for nid, name, project in s.execute(sa.select(N.id, N.name, N.project_id)
                                        .where(N.id.in_(nets)).order_by(N.id)):
        subnets = per_net.get(nid, [])
        out.append({"network_id": nid, "network_name": name, "project_id": project,
                    "tenant_id": project,
                    "total_ips": sum(x["total_ips"] for x in subnets),
                    "used_ips": sum(x["used_ips"] for x in subnets),
                    "subnet_ip_availability": subnets})
    return out
