"""What a router says that flows cannot: ICMP time exceeded, and IPv6
router advertisements.

Time exceeded.  The router's flows decrement the TTL with dec_ttl; a
packet that arrives with TTL 0 or 1 is not forwarded but sent to the
controller (packet-in reason "invalid TTL"), as the router flows left it:
Ethernet addresses already turned around by L3_ADMIT (destination = the
sender, source = the MAC of the interface it reached).  The answer is
ICMP time exceeded (IPv4 type 11, IPv6 type 3, code 0) from that
interface's address, quoting the packet (RFC 1812: as much as fits in
576 bytes; RFC 4443: in the IPv6 minimum MTU), out of the port it came
from.  Never for an ICMP error, a fragment other than the first, or a
source that is not a unicast address (RFC 1122, RFC 4443 2.4).

Router advertisements.  A router interface on an IPv6 subnet with an
``ipv6_ra_mode`` advertises, from its EUI-64 link-local address with its
MAC in a source link-layer option, on its network:

  slaac             prefix with the autonomous flag (A)
  dhcpv6-stateless  prefix with A, "other configuration" flag (O)
  dhcpv6-stateful   prefix without A, "managed" (M) and O flags

with the network's MTU.  Solicited (a router solicitation punted by the
router's flows) and periodic (the agent sends them to its local ports).

Everything here is pure: frames in, frames out.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from agent.responders.dhcp import checksum, mac_bytes
from quantum_ovs import model
from quantum_ovs.compiler.rules.common import link_local

ETH_IP = 0x0800
ETH_IPV6 = 0x86DD
ICMP4_TIME_EXCEEDED = 11
ICMP6_TIME_EXCEEDED = 3
ICMP6_RS = 133
ICMP6_RA = 134
# ICMPv4 errors (not to be answered with an error)
_ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
_IP4_QUOTE_MAX = 576 - 20 - 8
_IP6_QUOTE_MAX = 1280 - 40 - 8
REPLY_TTL = 64

RA_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
RA_FLAG_MANAGED = 0x80
RA_FLAG_OTHER = 0x40
PREFIX_ON_LINK = 0x80
PREFIX_AUTONOMOUS = 0x40
ROUTER_LIFETIME = 1800  # s (3 x the longest interval radvd uses by default)
PREFIX_VALID = 86400
PREFIX_PREFERRED = 14400
CUR_HOP_LIMIT = 64
ALL_NODES = "ff02::1"
ALL_NODES_MAC = bytes.fromhex("333300000001")


class RateLimit:
    """A token bucket: ``rate`` answers a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# ----------------------------------------------------------- time exceeded
def _interface_for(routers: Iterable[model.Router], macs: tuple, version: int,
                   source: str) -> Optional[model.RouterInterface]:
    """The interface (of an admin-up router) with one of ``macs`` and IP
    ``version``; the one whose subnet holds ``source`` first."""
    found = []
    for r in routers:
        if not r.admin_state_up:
            continue
        for ifc in r.interfaces:
            if ifc.mac_address in macs and ifc.ip_version == version:
                found.append(ifc)
    if not found:
        return None
    src = ipaddress.ip_address(source)
    for ifc in found:
        if src in ipaddress.ip_network(ifc.cidr):
            return ifc
    return found[0]


def _macs(frame: bytes) -> tuple[str, str]:
    return frame[0:6].hex(":"), frame[6:12].hex(":")


def time_exceeded(frame: bytes, routers: Iterable[model.Router]) -> Optional[bytes]:
    """The ICMP time exceeded answering ``frame`` (a packet the router
    could not forward, its TTL spent), or None when there is nothing to
    answer."""
    if len(frame) < 14:
        return None
    routers = tuple(routers)
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == ETH_IP:
        return _time_exceeded4(frame, routers)
    if ethertype == ETH_IPV6:
        return _time_exceeded6(frame, routers)
    return None


def _reply_macs(frame: bytes, ifc: model.RouterInterface) -> bytes:
    """Ethernet destination + source of the answer: back to the sender."""
    dst, src = _macs(frame)
    sender = dst if src == ifc.mac_address else src
    return mac_bytes(sender) + mac_bytes(ifc.mac_address)


def _time_exceeded4(frame: bytes, routers) -> Optional[bytes]:
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = int.from_bytes(ip[2:4], "big")
    if ihl < 20 or len(ip) < ihl or total < ihl:
        return None
    if int.from_bytes(ip[6:8], "big") & 0x1FFF:
        return None  # not the first fragment
    if ip[9] == 1 and len(ip) > ihl and ip[ihl] in _ICMP4_ERRORS:
        return None
    src = ipaddress.IPv4Address(ip[12:16])
    if src.is_multicast or src.is_unspecified or src == ipaddress.IPv4Address("255.255.255.255") \
            or src.is_loopback:
        return None
    ifc = _interface_for(routers, _macs(frame), 4, str(src))
    if ifc is None:
        return None
    quote = ip[: min(len(ip), total, _IP4_QUOTE_MAX)]
    icmp = struct.pack("!BBHI", ICMP4_TIME_EXCEEDED, 0, 0, 0) + quote
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(icmp), 0, 0, REPLY_TTL, 1, 0,
                      ipaddress.IPv4Address(ifc.ip_address).packed, src.packed)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return _reply_macs(frame, ifc) + struct.pack("!H", ETH_IP) + hdr + icmp


def icmp6_frame(eth: bytes, src: bytes, dst: bytes, icmp: bytes, hop_limit: int) -> bytes:
    """An Ethernet + IPv6 + ICMPv6 frame (``icmp`` with a zero checksum;
    filled in here)."""
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    csum = checksum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, hop_limit) + src + dst
    return eth + struct.pack("!H", ETH_IPV6) + ip6 + icmp


def _time_exceeded6(frame: bytes, routers) -> Optional[bytes]:
    ip = frame[14:]
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return None
    plen = int.from_bytes(ip[4:6], "big")
    if ip[6] == 58 and len(ip) > 40 and ip[40] < 128:
        return None  # an ICMPv6 error
    src = ipaddress.IPv6Address(ip[8:24])
    if src.is_multicast or src.is_unspecified or src.is_loopback:
        return None
    ifc = _interface_for(routers, _macs(frame), 6, str(src))
    if ifc is None:
        return None
    quote = ip[: min(len(ip), 40 + plen, _IP6_QUOTE_MAX)]
    icmp = struct.pack("!BBHI", ICMP6_TIME_EXCEEDED, 0, 0, 0) + quote
    return icmp6_frame(_reply_macs(frame, ifc), ipaddress.IPv6Address(ifc.ip_address).packed,
                       src.packed, icmp, REPLY_TTL)


# ----------------------------------------------------------- advertisements
@dataclass(frozen=True)
class Advertiser:
    """One router interface port advertising on a network: its MAC and
    the subnets (with an RA mode) of its addresses there."""

    router_id: str
    mac_address: str
    subnets: tuple[model.Subnet, ...]


def advertisers(routers: Iterable[model.Router], subnets: Mapping[str, model.Subnet],
                network_id: str) -> list[Advertiser]:
    """The router interfaces that advertise on ``network_id``."""
    out = []
    for r in sorted(routers, key=lambda r: r.id):
        if not r.admin_state_up:
            continue
        by_mac: dict[str, list] = {}
        for ifc in r.interfaces:
            if ifc.network_id != network_id or ifc.ip_version != 6:
                continue
            s = subnets.get(ifc.subnet_id)
            if s is None or s.ipv6_ra_mode not in RA_MODES:
                continue
            by_mac.setdefault(ifc.mac_address, []).append(s)
        for mac, subs in sorted(by_mac.items()):
            out.append(Advertiser(r.id, mac, tuple(sorted(subs, key=lambda s: s.cidr))))
    return out


def router_advertisement(adv: Advertiser, mtu: int, dst_mac: bytes = ALL_NODES_MAC,
                         dst_ip: str = ALL_NODES) -> bytes:
    """The advertisement of ``adv`` (RFC 4861 4.2) to ``dst_ip``."""
    modes = {s.ipv6_ra_mode for s in adv.subnets}
    flags = 0
    if "dhcpv6-stateful" in modes:
        flags |= RA_FLAG_MANAGED | RA_FLAG_OTHER
    if "dhcpv6-stateless" in modes:
        flags |= RA_FLAG_OTHER
    mac = mac_bytes(adv.mac_address)
    icmp = struct.pack("!BBHBBHII", ICMP6_RA, 0, 0, CUR_HOP_LIMIT, flags, ROUTER_LIFETIME, 0, 0)
    icmp += struct.pack("!BB6s", 1, 1, mac)  # source link-layer address
    if mtu:
        icmp += struct.pack("!BBHI", 5, 1, 0, mtu)
    for s in adv.subnets:
        net = ipaddress.IPv6Network(s.cidr)
        pflags = PREFIX_ON_LINK
        if s.ipv6_ra_mode in ("slaac", "dhcpv6-stateless"):
            pflags |= PREFIX_AUTONOMOUS
        icmp += struct.pack("!BBBBIII16s", 3, 4, net.prefixlen, pflags, PREFIX_VALID,
                            PREFIX_PREFERRED, 0, net.network_address.packed)
    src = ipaddress.IPv6Address(link_local(adv.mac_address)).packed
    return icmp6_frame(dst_mac + mac, src, ipaddress.IPv6Address(dst_ip).packed, icmp, 255)


def is_router_solicitation(frame: bytes) -> bool:
    """An RS (RFC 4861 6.1.1: hop limit 255, ICMPv6 type 133 code 0),
    without extension headers."""
    return (len(frame) >= 14 + 40 + 8
            and int.from_bytes(frame[12:14], "big") == ETH_IPV6
            and frame[14] >> 4 == 6 and frame[14 + 6] == 58 and frame[14 + 7] == 255
            and frame[54] == ICMP6_RS and frame[55] == 0)


def solicited_advertisements(frame: bytes, routers, subnets, network: model.Network) -> list:
    """The advertisements answering the router solicitation ``frame``
    from a port on ``network``: unicast to the soliciting address, or to
    all nodes when it solicited from ``::``."""
    if not is_router_solicitation(frame):
        return []
    src = ipaddress.IPv6Address(frame[22:38])
    if src.is_unspecified:
        dst_mac, dst_ip = ALL_NODES_MAC, ALL_NODES
    elif src.is_multicast:
        return []
    else:
        dst_mac, dst_ip = frame[6:12], str(src)
    return [router_advertisement(a, network.mtu, dst_mac, dst_ip)
            for a in advertisers(routers, subnets, network.id)]
