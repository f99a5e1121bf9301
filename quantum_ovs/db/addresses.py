"""A port's addresses: its MAC address and its fixed IPs (the pools and
their locks are db/ipam.py's)."""

import ipaddress
import random

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs import constants as const
from quantum_ovs import exceptions
from quantum_ovs.db import ipam, models

# Address modes where every port derives its own address (EUI-64).
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def generate_mac(s, network_id, base_mac, retries):
    """A MAC address free on the network: ``base_mac``'s first three
    octets (a list of ints) and three random ones."""
    for _ in range(retries):
        octets = base_mac[:3] + [random.randint(0, 255) for _ in range(3)]
        mac = ":".join(f"{o:02x}" for o in octets)
        if not mac_in_use(s, network_id, mac):
            return mac
    raise exceptions.MacAddressGenerationFailure(net_id=network_id)


def generate_macs(s, network_id, base_mac, n, retries, taken=()):
    """``n`` distinct MAC addresses free on the network and not in
    ``taken`` (the bulk's own): candidates are checked against the
    database in a few queries, not one per port; ``retries`` rounds
    replace those found in use."""
    macs, have = [], set(taken)
    for _ in range(retries):
        want = n - len(macs)
        cands = {}
        for _ in range(want * 4):
            if len(cands) == want:
                break
            octets = base_mac[:3] + [random.randint(0, 255) for _ in range(3)]
            mac = ":".join(f"{o:02x}" for o in octets)
            if mac not in have:
                cands[mac] = None
        used = macs_in_use(s, network_id, list(cands))
        for mac in cands:
            if mac not in used:
                macs.append(mac)
                have.add(mac)
        if len(macs) == n:
            return macs
    raise exceptions.MacAddressGenerationFailure(net_id=network_id)


def macs_in_use(s, network_id, macs, chunk=500):
    """Those of ``macs`` that ports of the network hold."""
    P = models.Port
    used = set()
    with s.no_autoflush:
        for i in range(0, len(macs), chunk):
            used.update(s.execute(sa.select(P.mac_address).where(
                P.network_id == network_id, P.mac_address.in_(macs[i:i + chunk]))).scalars())
    return used


def mac_in_use(s, network_id, mac):
    return s.execute(sa.select(models.Port.id).where(
        models.Port.network_id == network_id,
        models.Port.mac_address == mac)).first() is not None


def subnets_of(s, network_id):
    """The network's subnets, locked: their addresses are about to change
    (the lock order in ipam.py)."""
    q = (sa.select(models.Subnet).where(models.Subnet.network_id == network_id)
         .order_by(models.Subnet.created_at, models.Subnet.id)
         .options(orm.lazyload("*")))
    return s.execute(ipam.locking_subnets(s, q, [network_id])).scalars().all()


def service_subnets(s, net_id, subnets, device_owner):
    """Which of the network's ``subnets`` give addresses to a port of
    ``device_owner`` (subnet-service-types, as Neutron): those whose
    service types name it, first, then those without any (a DHCP port:
    also any with DHCP enabled).  A network with subnets, none of them for
    this owner: 409 IpAddressGenerationFailureNoMatchingSubnet."""
    if not subnets:
        return subnets
    T = models.SubnetServiceType
    types = {}
    for sid, kind in s.execute(sa.select(T.subnet_id, T.service_type).where(
            T.subnet_id.in_([x.id for x in subnets]))):
        types.setdefault(sid, set()).add(kind)
    if not types:
        return subnets
    out = [x for x in subnets if x.id in types and (
        device_owner in types[x.id] or (device_owner == const.DEVICE_OWNER_DHCP and x.enable_dhcp))]
    out += [x for x in subnets if x.id not in types]
    if not out:
        raise exceptions.IpAddressGenerationFailureNoMatchingSubnet(
            net_id=net_id, service_type=device_owner)
    return out


def allocate(s, net_id, port, requested, device_owner, subnets=None, auto=False):
    """[(subnet, ip)] for the port; ``requested`` None = automatic (from
    the subnets its owner may use, either way: service_subnets).  ``auto``:
    a new port given addresses also gets its EUI-64 one on each automatic
    subnet the request does not name, unless it is a router's interface
    (Neutron's _get_auto_address_ips)."""
    if subnets is None:
        subnets = subnets_of(s, net_id)
    subnets = service_subnets(s, net_id, subnets, device_owner)
    by_id = {x.id: x for x in subnets}
    allocs = []
    if requested is None:
        v4 = [x for x in subnets if x.ip_version == 4]
        v6 = [x for x in subnets if x.ip_version == 6]
        for family in (v4, v6):
            # Every SLAAC subnet gives an address; of the others, the
            # first with a free address gives one.
            auto = [x for x in family if automatic(x)]
            for sub in auto:
                allocs.append((sub, eui64(sub.cidr, port.mac_address)))
            pooled = [x for x in family if x not in auto]
            for sub in pooled:
                ip = ipam.allocate_next(s, sub.id, sub.ip_version)
                if ip is not None:
                    allocs.append((sub, ip))
                    break
            else:
                if pooled and not auto:
                    raise exceptions.IpAddressGenerationFailure(net_id=net_id)
    else:
        # The given addresses first (as Neutron): an entry with a subnet
        # only must not take the address a later entry asks for.
        slots = [None] * len(requested)
        for n in sorted(range(len(requested)),
                        key=lambda i: requested[i].get("ip_address") is None):
            req = requested[n]
            ip = req.get("ip_address")
            sid = req.get("subnet_id")
            if sid is not None:
                sub = by_id.get(sid)
                if sub is None:
                    raise exceptions.InvalidInput(
                        error_message=f"Failed to create port on network {net_id}, "
                                      f"because fixed_ips included invalid subnet {sid}")
                if ip is not None and not ip_on_subnet(sub.cidr, ip, device_owner):
                    raise exceptions.InvalidIpForSubnet(ip_address=ip)
            elif ip is not None:
                sub = next((x for x in subnets if ip_on_subnet(x.cidr, ip, device_owner)), None)
                if sub is None:
                    raise exceptions.InvalidIpForNetwork(ip_address=ip)
            else:
                raise exceptions.InvalidInput(
                    error_message="fixed_ips entries need a subnet_id or an ip_address")
            if ip is None:
                if automatic(sub):
                    ip = eui64(sub.cidr, port.mac_address)
                else:
                    ip = ipam.allocate_next(s, sub.id, sub.ip_version)
                    if ip is None:
                        raise exceptions.IpAddressGenerationFailure(net_id=net_id)
            elif automatic(sub) and device_owner not in const.ROUTER_INTERFACE_OWNERS \
                    and ipaddress.ip_address(ip) != ipaddress.ip_address(
                        eui64(sub.cidr, port.mac_address)):
                # (as Neutron: the instance takes its EUI-64 address itself;
                # another would be some other MAC's, or not the one it uses)
                raise exceptions.AllocationOnAutoAddressSubnet(ip=ip, subnet_id=sub.id)
            elif any(x is not None and x[1] == ip for x in slots):
                # (the API refuses it first; taken twice it would look
                # like a concurrent release, retried in vain)
                raise exceptions.InvalidInput(error_message=f"Duplicate IP address '{ip}'")
            else:
                take_specific(s, sub, ip, device_owner)
            slots[n] = (sub, ip)
        allocs = slots
        if auto:
            allocs += _missing_automatic(subnets, {sub.id for sub, _ in allocs}, port,
                                         device_owner)
    seen = set()
    for sub, ip in allocs:
        if (sub.id, ip) in seen:
            raise exceptions.InvalidInput(
                error_message=f"IP address {ip} requested twice")
        seen.add((sub.id, ip))
    return allocs


def allocate_auto(s, net_id, ports, subnets):
    """[[(subnet, ip)]] for ports (of one network) that ask for no
    particular address: what ``allocate(..., None, ...)`` gives each in
    turn, the pooled addresses taken in one go per subnet."""
    out = [[] for _ in ports]
    for version in (4, 6):
        family = [x for x in subnets if x.ip_version == version]
        auto = [x for x in family if automatic(x)]
        for sub in auto:
            for allocs, port in zip(out, ports):
                allocs.append((sub, eui64(sub.cidr, port.mac_address)))
        pooled = [x for x in family if x not in auto]
        waiting = list(range(len(ports)))
        for sub in pooled:
            if not waiting:
                break
            ips = ipam.allocate_many(s, sub.id, sub.ip_version, len(waiting))
            for i, ip in zip(waiting, ips):
                out[i].append((sub, ip))
            waiting = waiting[len(ips):]
        if pooled and waiting and not auto:
            raise exceptions.IpAddressGenerationFailure(net_id=net_id)
    return out


def echoed_as_automatic(requested, held):
    """``requested`` fixed IPs, each entry that names one of ``held``
    ((subnet id, address) on automatic-address subnets: what a port had
    there) turned into its subnet alone: the port's own EUI-64 address
    there.  For a request that echoes the addresses it was shown while
    the MAC they were made from changes (a port's new MAC, a router's
    gateway port made anew): as Neutron, that is not an address of
    choice."""
    if not held or not requested:
        return requested
    out = []
    for req in requested:
        ip, sid = req.get("ip_address"), req.get("subnet_id")
        match = next((h for h in held if ip is not None and
                      ipaddress.ip_address(h[1]) == ipaddress.ip_address(ip)
                      and sid in (None, h[0])), None)
        out.append({"subnet_id": match[0]} if match is not None else req)
    return out


def held_automatic(s, port) -> set:
    """(subnet id, address) of the port's addresses on automatic-address
    subnets."""
    return {(a.subnet_id, a.ip_address) for a in port.fixed_ips
            if automatic(s.get(models.Subnet, a.subnet_id))}


def automatic(sub) -> bool:
    """Whether the subnet's hosts make their own addresses (Neutron's
    is_auto_address_subnet: either mode; an ``ipv6_ra_mode`` of slaac
    alone tells instances to make one, so their port gets it)."""
    return sub.ipv6_address_mode in AUTO_ADDRESS_MODES or \
        sub.ipv6_ra_mode in AUTO_ADDRESS_MODES


def automatic_clause(S=models.Subnet):
    """``automatic`` as a condition on the subnets' table."""
    return sa.or_(S.ipv6_address_mode.in_(AUTO_ADDRESS_MODES),
                  S.ipv6_ra_mode.in_(AUTO_ADDRESS_MODES))


def ip_on_subnet(cidr, ip, device_owner="") -> bool:
    """Whether a port of ``device_owner`` may hold ``ip`` on the subnet
    (Neutron's check_subnet_ip): an IPv4 subnet's network and broadcast
    addresses never, an IPv6 subnet's network address (its subnet-router
    anycast address) a router's port only (or one of no owner, which
    Neutron lets through as one it cannot tell)."""
    net = ipaddress.ip_network(cidr)
    addr = ipaddress.ip_address(ip)
    if addr.version != net.version or addr not in net:
        return False
    if net.version == 4:  # (a /31 has no broadcast address: RFC 3021, netaddr)
        return addr != net.network_address and (
            net.prefixlen >= 31 or addr != net.broadcast_address)
    return addr != net.network_address or device_owner in const.ROUTER_PORT_OWNERS + ("",)


def take_specific(s, sub, ip, device_owner):
    # (the subnet's gateway address too, when no router holds it: as
    # Neutron, whose IPAM only keeps it out of the pools)
    net = ipaddress.ip_network(sub.cidr)
    addr = ipaddress.ip_address(ip)
    if net.version == 4 and net.prefixlen <= 30 and addr in (
            net.network_address, net.broadcast_address):
        raise exceptions.InvalidIpForSubnet(ip_address=ip)
    if not ipam.take_specific(s, sub.id, ip):
        # (Written first: a bulk's earlier port may hold it, unflushed.)
        s.flush()
        taken = s.execute(sa.select(models.IPAllocation.port_id).where(
            models.IPAllocation.subnet_id == sub.id,
            models.IPAllocation.ip_address == ip)).first()
        if taken is not None:
            raise exceptions.IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
        if ipam.in_pools(sub, ip):
            # In a pool, neither free nor allocated: a concurrent release
            # was committing between our two reads.  Read again once it
            # has settled.
            raise exceptions.RetryRequest()
        # Outside every pool but inside the subnet: allowed, as in Neutron.


def _missing_automatic(subnets, named, port, device_owner):
    """[(subnet, EUI-64 address)] on the automatic subnets (of those the
    owner may use) that ``named`` (subnet ids) leaves out; none for a
    router's interface."""
    if device_owner in const.ROUTER_INTERFACE_OWNERS_SNAT:
        return []
    return [(x, eui64(x.cidr, port.mac_address)) for x in subnets
            if automatic(x) and x.id not in named]


def reallocate(s, port, requested):
    """The port's fixed IPs become ``requested``: the ones it keeps stay,
    the others are released, the new ones allocated.  As Neutron: an entry
    naming an address keeps it when the port has it; then an entry naming
    only a subnet keeps an address the port has there and no entry named
    (the last of them), else gets a new one.  A port's address on an
    automatic subnet stays unless it is a router's interface (the instance
    makes it itself, whatever the request says: Neutron's
    _is_ip_required_by_subnet), and one it lacks there is added."""
    current = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
    unmatched = list(current)
    keep, new, by_subnet = [], [], []
    for req in requested:
        ip = req.get("ip_address")
        if ip is None:
            by_subnet.append(req)
            continue
        match = next((x for x in unmatched
                      if x[1] == ip and req.get("subnet_id", x[0]) == x[0]), None)
        if match is None:
            new.append(req)
        else:
            unmatched.remove(match)
            keep.append(match)
    for req in by_subnet:
        sid = req.get("subnet_id")
        match = next((x for x in reversed(unmatched) if x[0] == sid), None) \
            if sid is not None else None
        if match is None:
            new.append(req)
        else:
            unmatched.remove(match)
            keep.append(match)
    subnets = {x.id: x for x in subnets_of(s, port.network_id)}
    if port.device_owner not in const.ROUTER_INTERFACE_OWNERS_SNAT:
        for x in [x for x in unmatched if x[0] in subnets and automatic(subnets[x[0]])]:
            unmatched.remove(x)
            keep.append(x)
    for sid, ip in unmatched:  # (released)
        if sid in subnets:
            ipam.release(s, subnets[sid], ip)
    allocs = allocate(s, port.network_id, port, new, port.device_owner) if new else []
    if any(automatic(x) for x in subnets.values()):
        named = {sid for sid, _ in keep} | {sub.id for sub, _ in allocs}
        allocs += _missing_automatic(
            service_subnets(s, port.network_id, list(subnets.values()), port.device_owner),
            named, port, port.device_owner)
    port.fixed_ips = []
    s.flush()
    entries = sorted(keep, key=current.index) + [(sub.id, ip) for sub, ip in allocs]
    port.fixed_ips = [models.IPAllocation(subnet_id=sid, ip_address=ip,
                                          network_id=port.network_id, order=i)
                      for i, (sid, ip) in enumerate(entries)]


def append(port, subnet_id, ip):
    """The port's fixed IPs gain ``ip`` on ``subnet_id``, after those it
    has (numbered from 0, as everywhere).  Not flushed: a caller that
    addresses many ports flushes once."""
    last = max((x.order for x in port.fixed_ips), default=-1)
    port.fixed_ips.append(models.IPAllocation(subnet_id=subnet_id, ip_address=ip,
                                              network_id=port.network_id, order=last + 1))


def release(s, network_id, addresses):
    """[(subnet_id, ip)] back to their pools."""
    subnets = {x.id: x for x in subnets_of(s, network_id)}
    for subnet_id, ip in addresses:
        if subnet_id in subnets:
            ipam.release(s, subnets[subnet_id], ip)


def eui64(cidr, mac):
    net = ipaddress.ip_network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    suffix = int.from_bytes(bytes(eui), "big")
    return str(ipaddress.IPv6Address(int(net.network_address) | suffix))
