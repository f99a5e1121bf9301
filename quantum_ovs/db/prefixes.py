"""Prefix arithmetic of subnet pools (pure: no database).

A pool's free space is its prefixes less the cidrs of the subnets taken
from it; a request for a prefix length is given the lowest block of the
smallest free run that fits (best fit, as Neutron's allocator: large free
runs stay whole for large requests).  Linear in the pool's prefixes and
subnets, after a sort.
"""

import fractions
import ipaddress

# default_quota counts addresses (IPv4) or /64 networks (IPv6).
QUOTA_UNIT_BITS = {4: 32, 6: 64}


def net(cidr):
    return ipaddress.ip_network(cidr)


def merge(cidrs):
    """The smallest list of prefixes covering ``cidrs`` (one IP version),
    sorted."""
    return sorted(ipaddress.collapse_addresses(net(c) for c in cidrs))


def covered(cidr, prefixes):
    """Whether ``cidr`` lies inside one of ``prefixes``."""
    n = net(cidr)
    return any(n.version == p.version and n.subnet_of(p) for p in map(net, prefixes))


def overlapping(a, b):
    """Whether a prefix of ``a`` overlaps one of ``b``."""
    bs = [net(x) for x in b]
    return any(net(x).overlaps(y) for x in a for y in bs if net(x).version == y.version)


def _ranges(nets):
    return sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)


def free_blocks(prefixes, allocated):
    """The free space of a pool as aligned CIDR blocks."""
    used = _ranges(net(c) for c in allocated)
    out = []
    for p in merge(prefixes):
        lo, hi = int(p.network_address), int(p.broadcast_address)
        cls = type(p.network_address)
        pos = lo
        for a, b in used:
            if b < lo or a > hi:
                continue
            if a > pos:
                out.extend(ipaddress.summarize_address_range(cls(pos), cls(a - 1)))
            pos = max(pos, b + 1)
        if pos <= hi:
            out.extend(ipaddress.summarize_address_range(cls(pos), cls(hi)))
    return out


def find_free(prefixes, allocated, prefixlen):
    """A free prefix of length ``prefixlen`` (an ip_network), or None."""
    fits = [b for b in free_blocks(prefixes, allocated) if b.prefixlen <= prefixlen]
    if not fits:
        return None
    best = min(fits, key=lambda b: (-b.prefixlen, int(b.network_address)))
    return next(best.subnets(new_prefix=prefixlen))


def is_free(cidr, prefixes, allocated):
    """Whether ``cidr`` lies in the pool and overlaps nothing allocated."""
    n = net(cidr)
    return covered(cidr, prefixes) and not any(n.overlaps(net(c)) for c in allocated)


def quota_units(cidr):
    """What a subnet counts against default_quota: its addresses (IPv4) or
    its /64 networks (IPv6: a longer prefix is that part of one, as
    Neutron's _num_quota_units_in_prefixlen; exact, no float)."""
    n = net(cidr)
    return fractions.Fraction(2) ** (QUOTA_UNIT_BITS[n.version] - n.prefixlen)
