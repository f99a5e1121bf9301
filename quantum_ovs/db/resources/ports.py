"""Ports: their addresses come from db/addresses.py."""

import uuid

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.db import addresses, changelog, ipam, models
from quantum_ovs.db.resource import Collection, std_dict


def port_dict(port):
    d = std_dict(port)
    d.update(network_id=port.network_id, admin_state_up=port.admin_state_up,
             mac_address=port.mac_address, status=port.status,
             device_id=port.device_id, device_owner=port.device_owner,
             port_security_enabled=port.port_security_enabled,
             fixed_ips=[{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                        for a in port.fixed_ips],
             allowed_address_pairs=[{"ip_address": p.ip_address,
                                     "mac_address": p.mac_address}
                                    for p in port.allowed_address_pairs])
    return d


class Ports(Collection):
    collection, resource, model = "ports", "port", models.Port
    not_found = (exceptions.PortNotFound, "port_id")

    def __init__(self, plugin):
        super().__init__(plugin)
        self.base_mac = [int(x, 16) for x in plugin.conf.base_mac.split(":")]

    def to_dict(self, obj):
        return port_dict(obj)

    def network_of(self, obj):
        return obj.network_id

    def visible_clause(self, ctx):
        N, P = models.Network, models.Port
        owned = sa.select(N.id).where(N.project_id == ctx.project_id)
        return sa.or_(P.project_id == ctx.project_id, P.network_id.in_(owned))

    def filter_clause(self, attr, values):
        if attr != "fixed_ips":
            return None
        A = models.IPAllocation
        clauses = []
        for v in values:
            c = []
            if "ip_address" in v:
                c.append(A.ip_address == v["ip_address"])
            if "subnet_id" in v:
                c.append(A.subnet_id == v["subnet_id"])
            if "ip_address_substr" in v:
                c.append(A.ip_address.contains(v["ip_address_substr"], autoescape=True))
            clauses.append(sa.and_(*c))
        return models.Port.id.in_(sa.select(A.port_id).where(sa.or_(*clauses)))

    def check(self, a):
        """Neutron's per-port limits: addresses and address pairs cost
        allocations and flows on the port's host."""
        conf = self.plugin.conf
        fixed = a.get("fixed_ips")
        if fixed is not None and len(fixed) > conf.max_fixed_ips_per_port:
            raise exceptions.InvalidInput(
                error_message=f"A port may have at most {conf.max_fixed_ips_per_port} "
                              f"fixed IPs, not {len(fixed)}")
        pairs = a.get("allowed_address_pairs")
        if pairs is not None and len(pairs) > conf.max_allowed_address_pair:
            raise exceptions.AllowedAddressPairExhausted(quota=conf.max_allowed_address_pair)

    # ------------------------------------------------------------ create
    def create_all(self, s, ctx, items):
        cache = {}  # a bulk on one network looks it up once
        ports = [self._new_port(s, ctx, a, cache) for a in items]
        # The addresses last, all subnets locked at once (the lock order
        # of ipam.py): on a busy subnet, creators wait for each other only
        # from their allocation to their commit.
        if len({p.network_id for p in ports}) > 1:
            ipam.lock_subnets(s, [p.network_id for p in ports])
        for port, a in zip(ports, items):
            subnets = cache.get(("subnets", port.network_id))
            if subnets is None:
                subnets = cache[("subnets", port.network_id)] = addresses.subnets_of(
                    s, port.network_id)
            allocs = addresses.allocate(s, port.network_id, port, a.get("fixed_ips"),
                                        a["device_owner"], subnets=subnets)
            port.fixed_ips = [models.IPAllocation(subnet_id=sub.id, ip_address=ip,
                                                  network_id=port.network_id, order=i)
                              for i, (sub, ip) in enumerate(allocs)]
        s.flush()
        for port in ports:
            changelog.record(s, "port", port, "create", port.network_id)
        return ports

    def _new_port(self, s, ctx, a, cache):
        """The port's row and what the hooks add, without its addresses."""
        net = cache.get(("net", a["network_id"]))
        if net is None:
            net = cache[("net", a["network_id"])] = self.plugin.collections["networks"].row(
                s, ctx, a["network_id"], bare=True)
        port_id = a.get("id") or str(uuid.uuid4())
        if a.get("mac_address") is not None:
            mac = a["mac_address"]
            if addresses.mac_in_use(s, net.id, mac):
                raise exceptions.MacAddressInUse(net_id=net.id, mac=mac)
        else:
            mac = addresses.generate_mac(s, net.id, self.base_mac,
                                         self.plugin.conf.mac_generation_retries)
        pse = a.get("port_security_enabled")
        if pse is None:
            pse = net.port_security_enabled
        pairs = a.get("allowed_address_pairs") or []
        if pairs and not pse:
            raise exceptions.AddressPairAndPortSecurityRequired()
        port = models.Port(
            id=port_id, project_id=a["project_id"], name=a["name"],
            description=a["description"], network_id=net.id, mac_address=mac,
            admin_state_up=a["admin_state_up"], status="DOWN", device_id=a["device_id"],
            device_owner=a["device_owner"], port_security_enabled=pse, revision_number=0)
        port.allowed_address_pairs = [
            models.AllowedAddressPair(ip_address=p["ip_address"],
                                      mac_address=p.get("mac_address") or mac, order=i)
            for i, p in enumerate(pairs)]
        port.tags = []
        port.fixed_ips = []  # set by create_all (no load of the empty list)
        s.add(port)
        self.plugin.run_hooks("ports", "create", s, ctx, port, a)
        s.flush()
        return port

    # ------------------------------------------------------------ update
    def update_row(self, s, ctx, port, a):
        before = changelog.port_membership(port)
        if "mac_address" in a and a["mac_address"] != port.mac_address:
            if addresses.mac_in_use(s, port.network_id, a["mac_address"]):
                raise exceptions.MacAddressInUse(net_id=port.network_id,
                                                 mac=a["mac_address"])
            port.mac_address = a["mac_address"]
        if "fixed_ips" in a:
            addresses.reallocate(s, port, a["fixed_ips"])
        pse = a.get("port_security_enabled", port.port_security_enabled)
        pairs = a["allowed_address_pairs"] if "allowed_address_pairs" in a else \
            [{"ip_address": p.ip_address, "mac_address": p.mac_address}
             for p in port.allowed_address_pairs]
        if pairs and not pse:
            raise exceptions.AddressPairAndPortSecurityRequired()
        if "allowed_address_pairs" in a:
            port.allowed_address_pairs = []
            s.flush()
            port.allowed_address_pairs = [
                models.AllowedAddressPair(ip_address=p["ip_address"],
                                          mac_address=p.get("mac_address") or port.mac_address,
                                          order=i)
                for i, p in enumerate(pairs)]
        for k in ("name", "description", "admin_state_up", "device_id", "device_owner",
                  "port_security_enabled"):
            if k in a:
                setattr(port, k, a[k])
        self.plugin.run_hooks("ports", "update", s, ctx, port, a)
        changelog.bump(port)
        changelog.record(s, "port", port, "update", port.network_id, before=before)
        s.flush()

    # ------------------------------------------------------------ delete
    def delete_row(self, s, ctx, port):
        held = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
        self.plugin.run_hooks("ports", "delete", s, ctx, port, None)
        changelog.record(s, "port", port, "delete", port.network_id)
        s.delete(port)
        s.flush()
        # The addresses last: the subnet locks are held from here to the
        # commit only.
        addresses.release(s, port.network_id, held)
