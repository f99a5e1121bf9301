"""Values a host view carries, checked before they become flow terms.

The server validates what the API takes, but a row written before a
validation existed, or a server bug, can still hand an agent a value the
switch cannot take as written: an upper-case MAC, ``10.0.0.300``, a port
of 70000, a VLAN id of 4103.  Left alone, such a value either fails the
OpenFlow encoder at install time (the whole bundle is dropped, and the
next one meets the same flow: nothing is installed on the host again) or,
worse, is silently cut to its field's width (VLAN 4103 is VID 7 on the
wire, VNI 2**24 + 1001 is VNI 1001): another network's traffic.

These checks raise ValueError where an owner's flows are computed, so an
isolating engine holds back that owner alone (fail closed: a held owner
has no flows, it never gets wider ones) and the rest of the host goes on.
They check objects, not flows: a port's addresses once per computation of
the port, not every flow term (the cold start computes tens of thousands
of flows).  They spell out what agent/openflow/encode.check_canonical
refuses, without importing it (the compiler stays pure, and does no I/O:
regular expressions and ipaddress, not the C library's parser).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from quantum_ovs.model import Port, Rule, Segment

# The widest segmentation id each segment type's wire format carries
# (VLAN: 12 bits, 0 and 4095 reserved; VXLAN: a 24-bit VNI; GRE: a 32-bit
# key).  A tunnel key beyond them would be truncated by the datapath.
VLAN_MIN, VLAN_MAX = 1, 4094
SEGMENT_MAX = {"vxlan": (1 << 24) - 1, "gre": (1 << 32) - 1}
# A gateway's redirect key travels as the tunnel id of the gateway hosts'
# tunnels (VXLAN as much as GRE): the narrower range.
REDIRECT_KEY_MAX = (1 << 24) - 1
PORT_MAX = 0xFFFF
PROTOCOL_MAX = 0xFF
ICMP_MAX = 0xFF
# The spellings the switch gives back (one C call each: a cold start
# checks every port's MAC and addresses, every member, every peer).
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}").fullmatch
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}").fullmatch


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def mac(v) -> str:
    """``v`` if it is a lower-case ``aa:bb:cc:dd:ee:ff`` MAC (the spelling
    the switch gives back: any other would never compare equal to the
    installed flow), else ValueError."""
    if not (isinstance(v, str) and _MAC(v) is not None):
        raise ValueError(f"MAC {v!r} is not a lower-case aa:bb:cc:dd:ee:ff")
    return v


@lru_cache(maxsize=1 << 14)
def _ip6_ok(v: str) -> bool:
    if "%" in v:  # (a scope: see parses)
        return False
    try:
        return str(ipaddress.IPv6Address(v)) == v
    except ValueError:
        return False


def _ip_ok(v: str) -> bool:
    """``v`` is an address as ipaddress writes it."""
    if ":" in v:
        return _ip6_ok(v)
    return _V4(v) is not None


def ipv4(v) -> str:
    """``v`` if it is an IPv4 address as ipaddress writes it, else
    ValueError."""
    if not (isinstance(v, str) and _V4(v) is not None):
        raise ValueError(f"{v!r} is not a canonical IPv4 address")
    return v


def ip(v) -> str:
    """``v`` if it is a canonical IPv4 or IPv6 address, else ValueError."""
    if not (isinstance(v, str) and _ip_ok(v)):
        raise ValueError(f"{v!r} is not a canonical IP address")
    return v


def parses(v) -> str:
    """``v`` if it is an IP address at all (for values the rules write
    anew through ipaddress, as the router's IPv6 addresses), else
    ValueError.  Never with an IPv6 scope (``%x``): the switch drops it,
    so that two spellings would be one flow there (review s28)."""
    if not isinstance(v, str) or "%" in v:
        raise ValueError(f"{v!r} is not an IP address")
    ipaddress.ip_address(v)
    return v


def address_or_cidr(v) -> str:
    """``v`` if it is an address (canonical) or a CIDR that parses (no
    IPv6 scope: see parses)."""
    if isinstance(v, str) and "/" in v and "%" not in v:
        ipaddress.ip_network(v, strict=False)  # (ValueError if it does not)
        return v
    return ip(v)


def port_range(lo, hi, what: str = "port", lowest: int = 1) -> None:
    """A range of TCP/UDP ports within lowest..65535, lo <= hi: a wider
    one would be cut to 16 bits by the switch, and walking a hostile one
    (port forwardings: a term per port) would stall the agent."""
    if not (_int(lo) and _int(hi) and lowest <= lo <= hi <= PORT_MAX):
        raise ValueError(f"{what} range {lo!r}-{hi!r} is not within {lowest}-{PORT_MAX}")


def segment(seg: Segment) -> None:
    """A segmentation id the segment's wire format carries as it is."""
    sid = seg.segmentation_id
    if sid is None:
        return
    t = seg.network_type
    if t == "vlan":
        if not (_int(sid) and VLAN_MIN <= sid <= VLAN_MAX):
            raise ValueError(f"VLAN id {sid!r} is not within {VLAN_MIN}-{VLAN_MAX}")
    elif t in SEGMENT_MAX:
        if not (_int(sid) and 0 <= sid <= SEGMENT_MAX[t]):
            raise ValueError(f"{t} segmentation id {sid!r} is not within "
                             f"0-{SEGMENT_MAX[t]}")


def redirect_key(key) -> None:
    if not (_int(key) and 0 <= key <= REDIRECT_KEY_MAX):
        raise ValueError(f"redirect key {key!r} is not within 0-{REDIRECT_KEY_MAX}")


def port(p: Port) -> None:
    """A port's MAC and addresses (fixed IPs, allowed address pairs).
    (Inlined lookups: every port of the host is checked at a cold start.)"""
    m = p.mac_address
    if type(m) is not str or _MAC(m) is None:
        mac(m)
    for f in p.fixed_ips:
        a = f.ip_address
        if type(a) is not str or (_V4(a) is None and not _ip_ok(a)):
            ip(a)
    for ap in p.allowed_address_pairs:
        address_or_cidr(ap.ip_address)
        if ap.mac_address:
            mac(ap.mac_address)


def good_ip(v) -> bool:
    """Whether ``v`` is a canonical IP address (ip() without raising)."""
    return type(v) is str and _ip_ok(v)


@lru_cache(maxsize=1 << 16)
def _member_ok(address: str) -> bool:
    try:
        if "@" in address:
            address, _, m = address.partition("@")
            mac(m)
        address_or_cidr(address)
    except ValueError:
        return False
    return True


def member(address) -> str:
    """A clause-2 address as model.member_address spells it (an address,
    a CIDR, or ``<CIDR>@<mac>``), else ValueError."""
    if type(address) is not str or not _member_ok(address):
        raise ValueError(f"member address {address!r} is not an address, a CIDR or "
                         "<CIDR>@<mac>")
    return address


def rule_problem(r: Rule) -> str | None:
    """Why a security group rule cannot be compiled as written, or None.
    Such a rule is left out (it only ever allows: without it, less is)."""
    proto = r.protocol
    if proto is not None and not (_int(proto) and 0 <= proto <= PROTOCOL_MAX):
        return f"protocol {proto!r} is not within 0-{PROTOCOL_MAX}"
    lo, hi = r.port_range_min, r.port_range_max
    top = ICMP_MAX if proto in (1, 58) else PORT_MAX
    for v in (lo, hi):
        if v is not None and not (_int(v) and 0 <= v <= top):
            return f"port/type/code {v!r} is not within 0-{top}"
    for v in (r.remote_group_id, r.remote_address_group_id):
        if v is not None and type(v) is not str:  # (a key of the engine's indexes)
            return f"remote {v!r} is not an id"
    if r.remote_ip_prefix is not None and not (type(r.remote_ip_prefix) is str
                                               and _prefix_ok(r.remote_ip_prefix)):
        return f"remote_ip_prefix {r.remote_ip_prefix!r} is not an address or a CIDR"
    return None


@lru_cache(maxsize=1 << 12)
def _prefix_ok(v) -> bool:
    # (memoized: a group's rules are checked again at each change of the
    # group, and the same few prefixes recur)
    try:
        address_or_cidr(v)
    except (ValueError, TypeError):
        return False
    return True
