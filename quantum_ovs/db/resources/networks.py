"""Networks."""

import uuid

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs import exceptions
from quantum_ovs.db import changelog, models, query, rbac
from quantum_ovs.db.resource import Collection, std_dict

IPV4_MIN_MTU, IPV6_MIN_MTU = 68, 1280


def network_dict(net):
    d = std_dict(net)
    d.update(admin_state_up=net.admin_state_up, status=net.status, shared=net.shared,
             mtu=net.mtu, port_security_enabled=net.port_security_enabled,
             subnets=[s.id for s in net.subnets])
    return d


def check_mtu(net_id, mtu, versions):
    """409 when subnets of these IP versions cannot live with the MTU."""
    if not versions:
        return
    if mtu < IPV4_MIN_MTU:
        raise exceptions.NetworkMTUSubnetConflict(net_id=net_id, mtu=IPV4_MIN_MTU)
    if mtu < IPV6_MIN_MTU and 6 in versions:
        raise exceptions.NetworkMTUSubnetConflict(net_id=net_id, mtu=IPV6_MIN_MTU)


class Networks(Collection):
    collection, resource, model = "networks", "network", models.Network
    not_found = (exceptions.NetworkNotFound, "net_id")

    def to_dict(self, obj):
        return network_dict(obj)

    def network_of(self, obj):
        return obj.id

    def visible_clause(self, ctx):
        # Own, shared with everyone (the wildcard policy's flag), or given
        # to the project by an access_as_shared / access_as_external policy.
        N = models.Network
        return sa.or_(N.project_id == ctx.project_id, N.shared.is_(True),
                      N.id.in_(rbac.granted("network", (rbac.SHARED, rbac.EXTERNAL),
                                            ctx.project_id)))

    def filter_for(self, ctx, attr, values):
        # ``shared`` as the caller reads it: the wildcard, or a policy
        # sharing it with the caller's project (its owner's too, as
        # Neutron's _is_network_shared has it).
        if attr != "shared" or ctx is None or not ctx.project_id:
            return self.filter(attr, values)
        N = models.Network
        shared = sa.or_(N.shared.is_(True),
                        N.id.in_(rbac.granted("network", (rbac.SHARED,), ctx.project_id)))
        return query.flag_filter(shared, values)

    def for_caller(self, s, ctx, rows, dicts):
        # ``shared``: true for the projects a policy shares it with too
        # (the owner among them when a policy names its own project).
        maybe = [r.id for r in rows if not r.shared]
        given = rbac.granted_ids(s, "network", rbac.SHARED, maybe, ctx.project_id)
        for r, d in zip(rows, dicts):
            if r.id in given and "shared" in d:
                d["shared"] = True

    def filter_clause(self, attr, values):
        if attr == "subnets":
            S = models.Subnet
            return models.Network.id.in_(sa.select(S.network_id).where(S.id.in_(values)))
        return None

    def owners(self, s, ids, ctx=None):
        """{id: {project_id, shared, external}} of these networks (the
        policy targets of their subnets and ports; ``shared`` and
        ``external`` as ``ctx`` sees them when given: an external network
        is external to its owner and to the projects a policy makes it
        external to, and to no other: to those it is a network they cannot
        see, whose id answers as an unknown one, review s24b F2); missing
        ones left out."""
        N, X = models.Network, models.ExternalNetwork
        rows = s.execute(sa.select(N.id, N.project_id, N.shared, X.network_id)
                         .outerjoin(X, X.network_id == N.id)
                         .where(N.id.in_(set(ids)))).all()
        given = external = set()
        if ctx is not None:
            others = [r for r in rows if r[1] != ctx.project_id]
            given = rbac.granted_ids(s, "network", rbac.SHARED,
                                     [r[0] for r in others if not r[2]], ctx.project_id)
            external = rbac.granted_ids(s, "network", rbac.EXTERNAL,
                                        [r[0] for r in others if r[3] is not None],
                                        ctx.project_id)
        return {r[0]: {"project_id": r[1], "shared": r[2] or r[0] in given,
                       "external": r[3] is not None and (
                           ctx is None or r[1] == ctx.project_id or r[0] in external)}
                for r in rows}

    def create_all(self, s, ctx, items):
        return [self._create(s, ctx, a) for a in items]

    def _create(self, s, ctx, a):
        conf = self.plugin.conf
        if a.get("mtu") == 0:
            a = dict(a, mtu=None)  # 0: the largest the network allows
        net = models.Network(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
            name=a["name"], description=a["description"],
            admin_state_up=a["admin_state_up"], shared=a["shared"], status="ACTIVE",
            mtu=a["mtu"] if a.get("mtu") is not None else conf.global_physnet_mtu,
            port_security_enabled=a["port_security_enabled"], revision_number=0)
        s.add(net)
        self.plugin.run_hooks("networks", "create", s, ctx, net, a)
        s.flush()
        changelog.record(s, "network", net, "create", net.id)
        net.tags = []
        s.flush()
        s.refresh(net)
        return net

    def update_row(self, s, ctx, net, a):
        id_ = net.id
        if a.get("shared") is False and net.shared:
            # Another project's port (but a DHCP port) or subnet on it: 409
            # (Neutron's _validate_shared_update counts both; it ignores
            # every network:* port, we only the DHCP one and those of no
            # project -- router gateways and floating IPs, which reach an
            # external network by access_as_external, not by sharing --, so
            # that no other project's router interface stays on a network
            # it can no longer see).
            P, S = models.Port, models.Subnet
            kept = sa.select(models.RbacPolicy.target_tenant).where(
                models.RbacPolicy.object_type == "network",
                models.RbacPolicy.object_id == id_,
                models.RbacPolicy.action == rbac.SHARED)
            others = s.execute(sa.select(P.id).where(
                P.network_id == id_, P.project_id != net.project_id,
                P.device_owner != const.DEVICE_OWNER_DHCP, P.project_id != "",
                # (the projects a policy of their own shares it with keep it)
                P.project_id.not_in(kept)).limit(1)).first() or \
                s.execute(sa.select(S.id).where(
                    S.network_id == id_, S.project_id != net.project_id,
                    S.project_id.not_in(kept)).limit(1)).first()
            if others:
                raise exceptions.InvalidSharedSetting(network=net.name or id_)
        # 0 asks for the largest MTU the network allows, like None, but
        # (as in Neutron) no subnet lives with it.
        wanted = a.get("mtu")
        a2 = dict(a, mtu=None) if wanted == 0 else a
        for k in ("name", "description", "admin_state_up", "shared", "mtu",
                  "port_security_enabled"):
            if k in a2:
                setattr(net, k, a2[k] if not (k == "mtu" and a2[k] is None)
                        else self.plugin.conf.global_physnet_mtu)
        self.plugin.run_hooks("networks", "update", s, ctx, net, a2)
        if "mtu" in a:
            versions = set(s.execute(sa.select(models.Subnet.ip_version).where(
                models.Subnet.network_id == id_)).scalars())
            check_mtu(id_, net.mtu if wanted is None else wanted, versions)
        changelog.bump(net)
        if changelog.seen_by_agents(a):
            changelog.record(s, "network", net, "update", net.id)
        s.flush()

    def delete_row(self, s, ctx, net):
        id_ = net.id
        for fn in self.plugin.network_cleanups:
            fn(s, ctx, net)
        ports = s.execute(sa.select(models.Port).where(
            models.Port.network_id == id_)).scalars().all()
        if any(p.device_owner not in const.AUTO_DELETE_PORT_OWNERS for p in ports):
            raise exceptions.NetworkInUse(net_id=id_)
        for p in ports:
            changelog.record(s, "port", p, "delete", id_)
            s.delete(p)
        s.flush()
        subnets = self.plugin.collections["subnets"]
        for sub in s.execute(sa.select(models.Subnet).where(
                models.Subnet.network_id == id_)).scalars():
            subnets.delete_rows(s, sub)
        s.flush()
        self.plugin.run_hooks("networks", "delete", s, ctx, net, None)
        changelog.record(s, "network", net, "delete", id_)
        s.delete(net)
