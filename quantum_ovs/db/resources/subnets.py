"""Subnets: their address pools live in db/ipam.py."""

import ipaddress
import uuid

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs import exceptions
from quantum_ovs.db import addresses, changelog, ipam, models, rbac
from quantum_ovs.db.addresses import AUTO_ADDRESS_MODES
from quantum_ovs.db.resource import Collection, std_dict
from quantum_ovs.db.resources.networks import check_mtu
from quantum_ovs.db.session import is_sqlite

ROUTER_INTERFACE_OWNERS = const.ROUTER_INTERFACE_OWNERS
# The ports a new SLAAC / DHCPv6-stateless subnet gives no address to: a
# router's interfaces (an interface is added per subnet), its gateway and
# the floating IPs' holders (their addresses are the L3 plugin's).
NO_AUTO_ADDRESS_OWNERS = ROUTER_INTERFACE_OWNERS + ("network:router_gateway",
                                                    "network:floatingip")


def subnet_dict(sub):
    d = std_dict(sub)
    d.update(network_id=sub.network_id, cidr=sub.cidr, ip_version=sub.ip_version,
             gateway_ip=sub.gateway_ip, enable_dhcp=sub.enable_dhcp,
             ipv6_ra_mode=sub.ipv6_ra_mode, ipv6_address_mode=sub.ipv6_address_mode,
             allocation_pools=[{"start": p.first_ip, "end": p.last_ip}
                               for p in sub.allocation_pools],
             dns_nameservers=[d.address for d in sub.dns_nameservers],
             host_routes=[{"destination": r.destination, "nexthop": r.nexthop}
                          for r in sub.host_routes],
             subnetpool_id=sub.subnetpool_id, segment_id=None)
    return d


class Subnets(Collection):
    collection, resource, model = "subnets", "subnet", models.Subnet
    not_found = (exceptions.SubnetNotFound, "subnet_id")

    def to_dict(self, obj):
        return subnet_dict(obj)

    def network_of(self, obj):
        return obj.network_id

    def visible_clause(self, ctx):
        # (as get_subnet: those of shared, external and own networks)
        N, S = models.Network, models.Subnet
        nets = sa.select(N.id).where(sa.or_(
            N.shared.is_(True), N.project_id == ctx.project_id,
            N.id.in_(rbac.granted("network", (rbac.SHARED, rbac.EXTERNAL),
                                  ctx.project_id))))
        return sa.or_(S.project_id == ctx.project_id, S.network_id.in_(nets))

    def filter_for(self, ctx, attr, values):
        # ``shared``: their network's, as the caller reads it (the
        # networks' own filter: the wildcard or a policy for its project).
        if attr != "shared":
            return self.filter(attr, values)
        nets = self.plugin.collections["networks"]
        return models.Subnet.network_id.in_(
            sa.select(models.Network.id).where(nets.filter_for(ctx, attr, values)))

    # ------------------------------------------------------------ create
    def create_all(self, s, ctx, items):
        return [self._create(s, ctx, a) for a in items]

    def _create(self, s, ctx, a):
        net = self.plugin.collections["networks"].row(s, ctx, a["network_id"], lock=True)
        requested = a.get("cidr")
        allocate = self.plugin.subnet_allocator or _own_cidr
        cidr, version, pool_id = allocate(s, ctx, net, a)
        a = dict(a, cidr=cidr, ip_version=version)
        if net.mtu:
            check_mtu(net.id, net.mtu, {a["ip_version"]})
        netobj = ipaddress.ip_network(cidr)
        if netobj.version != a["ip_version"]:
            raise exceptions.InvalidInput(
                error_message=f"Cidr {cidr} does not match ip_version {a['ip_version']}")
        if requested is not None:  # (as Neutron, not one a pool chose)
            _check_cidr(netobj, a["enable_dhcp"])
        self._check_overlap(s, net, netobj)
        _check_v6_modes(a)
        if a.get("ipv6_address_mode") in AUTO_ADDRESS_MODES or \
                a.get("ipv6_ra_mode") in AUTO_ADDRESS_MODES:
            if netobj.prefixlen != 64:
                # (as Neutron's _validate_eui64_applicable; a pool's prefix
                # too: a MAC's 64 bits would not fit in a longer one)
                raise exceptions.InvalidInput(
                    error_message=f"Invalid CIDR {cidr} for IPv6 address mode: an address "
                                  "made from a MAC (EUI-64) needs a /64 prefix")
            # (each gives every port of the network an address: a member of
            # its groups on every host; the network's row is locked above)
            S = models.Subnet
            have = s.execute(sa.select(sa.func.count()).select_from(S).where(
                S.network_id == net.id, addresses.automatic_clause(S))).scalar()
            exceptions.check_cap("A network", "SLAAC or DHCPv6-stateless subnets",
                                 self.plugin.conf.max_auto_address_subnets_per_network,
                                 have + 1)
        if "gateway_ip" in a:
            gw = a["gateway_ip"]
        else:
            gw = str(next(iter(netobj.hosts()), netobj.network_address)) \
                if netobj.num_addresses > 2 else None
        if gw is not None:
            ipam.validate_gateway(cidr, gw)
        if a.get("allocation_pools") is not None:
            pools = ipam.validate_pools(cidr, a["allocation_pools"], gw)
        else:
            pools = ipam.default_pools(cidr, gw)
        self._check_dns_routes(a, netobj.version)
        sub = models.Subnet(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
            name=a["name"], description=a["description"], network_id=net.id, cidr=cidr,
            ip_version=a["ip_version"], gateway_ip=gw, enable_dhcp=a["enable_dhcp"],
            ipv6_ra_mode=a.get("ipv6_ra_mode"), ipv6_address_mode=a.get("ipv6_address_mode"),
            subnetpool_id=pool_id, revision_number=0)
        sub.dns_nameservers = [models.DNSNameServer(address=x, order=i)
                               for i, x in enumerate(a.get("dns_nameservers") or [])]
        sub.host_routes = [models.SubnetRoute(destination=r["destination"], nexthop=r["nexthop"],
                                              order=i)
                           for i, r in enumerate(a.get("host_routes") or [])]
        s.add(sub)
        s.flush()
        ipam.set_pools(s, sub, pools)  # (before the hooks: l3's gives gateways addresses)
        self.plugin.run_hooks("subnets", "create", s, ctx, sub, a)
        sub.tags = []
        changelog.bump(net)
        changelog.record(s, "subnet", sub, "create", net.id)
        if addresses.automatic(sub):
            self._address_existing_ports(s, net, sub)
        s.flush()
        return sub

    @staticmethod
    def _address_existing_ports(s, net, sub):
        """A new SLAAC / DHCPv6-stateless subnet gives the network's ports
        their address on it, as Neutron does (add_auto_addrs_on_network_
        ports): those its service types allow, routers' and floating IPs'
        aside; each port's change is recorded (its groups' members too)."""
        P = models.Port
        ports = s.execute(sa.select(P).where(
            P.network_id == net.id, P.device_owner.not_in(NO_AUTO_ADDRESS_OWNERS))
            .order_by(P.id)).scalars().all()
        allowed = {}  # device owner -> whether the subnet's service types give it one
        for port in ports:
            owner = port.device_owner
            if owner not in allowed:
                try:
                    allowed[owner] = bool(addresses.service_subnets(s, net.id, [sub], owner))
                except exceptions.IpAddressGenerationFailureNoMatchingSubnet:
                    allowed[owner] = False  # (the subnet is for other owners)
            if not allowed[owner]:
                continue
            before = changelog.port_membership(port)
            # (one flush for all of them, by the caller)
            addresses.append(port, sub.id, addresses.eui64(sub.cidr, port.mac_address))
            changelog.bump(port)
            changelog.record(s, "port", port, "update", net.id, before=before)

    def _check_overlap(self, s, net, netobj):
        # (as Neutron's _validate_subnet_cidr, for every subnet, a pool's
        # choice too, DHCP or not: bug 1362651, a /0 overlaps everything)
        if netobj.prefixlen == 0:
            raise exceptions.InvalidInput(
                error_message="0 is not allowed as CIDR prefix length")
        q = sa.select(models.Subnet.cidr)
        if self.plugin.conf.allow_overlapping_ips:
            q = q.where(models.Subnet.network_id == net.id)
        for (other,) in s.execute(q):
            if ipaddress.ip_network(other).overlaps(netobj):
                raise exceptions.InvalidInput(
                    error_message=f"Requested subnet with cidr: {netobj} for network: "
                                  f"{net.id} overlaps with another subnet")

    def _check_dns_routes(self, a, version):
        conf = self.plugin.conf
        dns = a.get("dns_nameservers") or []
        if len(dns) > conf.max_dns_nameservers:
            raise exceptions.InvalidInput(
                error_message=f"Number of DNS nameservers exceeds the limit "
                              f"{conf.max_dns_nameservers}")
        for x in dns:  # (Neutron's _validate_ip_version, 'dns_nameserver')
            if ipaddress.ip_address(x).version != version:
                raise exceptions.InvalidInput(
                    error_message=f"dns_nameserver '{x}' does not match the ip_version "
                                  f"'{version}'")
        routes = a.get("host_routes") or []
        if len(routes) > conf.max_subnet_host_routes:
            raise exceptions.InvalidInput(
                error_message=f"Number of host routes exceeds the limit "
                              f"{conf.max_subnet_host_routes}")
        for r in routes:
            if ipaddress.ip_network(r["destination"]).version != version or \
                    ipaddress.ip_address(r["nexthop"]).version != version:
                raise exceptions.InvalidInput(
                    error_message=f"Host route {r['destination']} via {r['nexthop']} "
                                  f"does not match the subnet's IP version {version}")

    def row(self, s, ctx, id_, lock=False, bare=False, share=False):
        """As Collection.row; locked (a subnet update or delete), its
        network's row is locked first: level 1 of db/ipam.py's lock order,
        before the subnet's (level 3), as a network delete takes them (the
        subnet write then writes the network's revision: in the other order
        the two deadlocked every time they met).  FOR NO KEY UPDATE, as
        that write would: port creates holding the network go on."""
        if lock and not is_sqlite(s):
            net_id = s.execute(sa.select(models.Subnet.network_id)
                               .where(models.Subnet.id == id_)).scalar()
            if net_id is not None:
                s.execute(sa.select(models.Network.id).where(models.Network.id == net_id)
                          .with_for_update(key_share=True))
        return super().row(s, ctx, id_, lock=lock, bare=bare, share=share)

    # ------------------------------------------------------------ update
    def update_row(self, s, ctx, sub, a):
        net = s.get(models.Network, sub.network_id)
        _check_cidr(ipaddress.ip_network(sub.cidr), a.get("enable_dhcp") and not sub.enable_dhcp)
        if "enable_dhcp" in a and not a["enable_dhcp"] and \
                (sub.ipv6_ra_mode or sub.ipv6_address_mode):
            # (Neutron's _validate_ipv6_update_dhcp: the modes are not
            # updatable, and they mean DHCP/RA service for the subnet)
            raise exceptions.InvalidInput(
                error_message="Cannot disable enable_dhcp with ipv6 attributes set")
        a2 = dict(a, ip_version=sub.ip_version)
        self._check_dns_routes(a2, sub.ip_version)
        gw = a["gateway_ip"] if "gateway_ip" in a else sub.gateway_ip
        if "gateway_ip" in a and gw is not None:
            ipam.validate_gateway(sub.cidr, gw)
            if gw != sub.gateway_ip and "allocation_pools" not in a and ipam.in_pools(sub, gw):
                raise exceptions.GatewayConflictWithAllocationPools(
                    ip_address=gw, pool=", ".join(
                        f"{p.first_ip}-{p.last_ip}" for p in sub.allocation_pools))
        if "allocation_pools" in a:
            pools = ipam.validate_pools(sub.cidr, a["allocation_pools"], gw)
            ipam.set_pools(s, sub, pools)
        self.plugin.run_hooks("subnets", "update", s, ctx, sub, a)
        if "gateway_ip" in a:
            sub.gateway_ip = gw
        for k in ("name", "description", "enable_dhcp"):
            if k in a:
                setattr(sub, k, a[k])
        if "dns_nameservers" in a:
            sub.dns_nameservers = []
            s.flush()
            sub.dns_nameservers = [models.DNSNameServer(address=x, order=i)
                                   for i, x in enumerate(a["dns_nameservers"])]
        if "host_routes" in a:
            sub.host_routes = []
            s.flush()
            sub.host_routes = [models.SubnetRoute(destination=r["destination"],
                                                  nexthop=r["nexthop"], order=i)
                               for i, r in enumerate(a["host_routes"])]
        changelog.bump(sub)
        changelog.bump(net)
        if changelog.seen_by_agents(a):
            changelog.record(s, "subnet", sub, "update", sub.network_id)
        s.flush()

    # ------------------------------------------------------------ delete
    def delete_rows(self, s, sub):
        """The subnet's rows, its addresses' and its change."""
        s.execute(sa.delete(models.IPAllocation).where(models.IPAllocation.subnet_id == sub.id))
        s.execute(sa.delete(models.IPAvailabilityRange)
                  .where(models.IPAvailabilityRange.subnet_id == sub.id))
        changelog.record(s, "subnet", sub, "delete", sub.network_id)
        s.delete(sub)

    def delete_row(self, s, ctx, sub):
        id_ = sub.id
        A, P = models.IPAllocation, models.Port
        # Addresses a port derived itself (SLAAC, DHCPv6-stateless) go
        # with the subnet, except a router's; others keep it in use.
        q = sa.select(sa.func.count()).select_from(A).join(
            P, P.id == A.port_id).where(A.subnet_id == id_,
                                        P.device_owner.not_in(const.AUTO_DELETE_PORT_OWNERS))
        if addresses.automatic(sub):
            q = q.where(P.device_owner.in_(ROUTER_INTERFACE_OWNERS))
        if s.execute(q).scalar():
            raise exceptions.SubnetInUse(subnet_id=id_)
        # The ports that lose their address on it: a change of each.
        losing = s.execute(sa.select(P).join(A, A.port_id == P.id)
                           .where(A.subnet_id == id_).distinct()).scalars().all()
        before = {p.id: changelog.port_membership(p) for p in losing}
        self.plugin.run_hooks("subnets", "delete", s, ctx, sub, None)
        net = s.get(models.Network, sub.network_id)
        changelog.bump(net)
        self.delete_rows(s, sub)
        for p in losing:
            s.expire(p, ["fixed_ips"])
            changelog.bump(p)
            changelog.record(s, "port", p, "update", p.network_id, before=before[p.id])


def _own_cidr(s, ctx, net, a):
    """The cidr and IP version a subnet gives itself (no subnet pools)."""
    for k in ("cidr", "ip_version"):
        if a.get(k) is None:
            raise exceptions.InvalidInput(
                error_message=f"Failed to parse request. Required attribute '{k}' not "
                              "specified")
    return a["cidr"], a["ip_version"], None


def _check_cidr(net, dhcp):
    """The prefixes Neutron's _validate_subnet refuses (400 InvalidInput):
    the IPv6 one starting at '::' (prefix delegation's placeholder), and,
    when DHCP is being enabled (a create with it, an update turning it on),
    those too small for a DHCP port, multicast and loopback ones and an
    IPv4 one starting at 0.0.0.0.  A link-local (fe80::/10) prefix is no
    error there: a subnet of it is taken."""
    def bad(msg):
        return exceptions.InvalidInput(error_message=msg)
    if net.version == 6 and int(net.network_address) == 0:
        raise bad("IPv6 subnet '::' is not supported")
    if not dhcp:
        return
    if net.prefixlen > (30 if net.version == 4 else 126):
        raise bad("Subnet has a prefix length that is incompatible with DHCP service "
                  "enabled")
    if net.is_multicast:
        raise bad("Multicast IP subnet is not supported if enable_dhcp is True")
    if net.is_loopback:
        raise bad("Loopback IP subnet is not supported if enable_dhcp is True")
    if net.version == 4 and int(net.network_address) == 0:
        raise bad("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")


def _check_v6_modes(a):
    ra, addr = a.get("ipv6_ra_mode"), a.get("ipv6_address_mode")
    if (ra or addr) and a["ip_version"] != 6:
        raise exceptions.InvalidInput(
            error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when "
                          "enable_dhcp is set to False or ip_version is 4")
    if (ra or addr) and not a["enable_dhcp"]:
        # (Neutron's _validate_ipv6_dhcp: the modes describe a DHCP/RA
        # service the subnet would not have)
        raise exceptions.InvalidInput(
            error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when "
                          "enable_dhcp is set to False")
    if ra and addr and ra != addr:
        raise exceptions.InvalidInput(
            error_message=f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                          f"'{addr}' is not valid. If both attributes are set, they "
                          "must be the same value")
