"""Neighbours on external networks: resolved by the agent, announced by it
(issue 14).

Resolution.  A router's next hop on an external network (the external
subnet's gateway, or a host of the outside world on that subnet) is not a
port of the model, so no flow knows its MAC.  The flows punt a packet
with such a next hop to the agent (table L3_RESOLVE, one of our cookies --
the external network's or the router's --, reg6 = the external network,
reg0 = the IPv4 next hop when the route set it; metered per network; the
packet already translated to the floating IP or gateway address it
leaves from).  The agent then asks from an address this host serves on
that network (``Context.sources``, from ``Engine.neighbour_sources``):
the floating IP or gateway address the packet leaves from, else one of the
punting router's, else the best one -- the gateway address of a router
this host is the active gateway host of, a standby's, a floating IP held
here; never a router's gateway address on a host that is not one of its
gateway hosts (it would take the gateway's MAC away from the active host
on the wire).  The request is an ARP request (IPv4) or a neighbour
solicitation (IPv6) sent straight out of the patch port to the network's
physical bridge (802.1Q-tagged on a VLAN network).  The reply comes back
addressed to that address and is punted, as the answers to exactly the
addresses in ``sources`` are (quantum_ovs/compiler/rules/neighbours.py);
only replies for addresses the agent asked for are learned.  Learned entries are handed to the
engine as ``Chassis.neighbours`` (L3_RESOLVE flows), asked again before
they expire, and forgotten if nobody answers; the table is bounded.

Announcements.  When a floating IP becomes local to this host (its port
is bound here, or moved here, or it got a new MAC) and when this host
becomes the active gateway of a router (the first of its gateway hosts
that BFD does not see down), the agent sends a few gratuitous ARPs (IPv6:
unsolicited neighbour advertisements) for that address with its MAC, so
that the outside world's caches follow at once.

Frames are built and parsed by pure functions; the two classes keep the
state and take the I/O (``send(frame, actions)``) and the clock as
arguments.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional

from agent.responders.dhcp import checksum, mac_bytes
from agent.responders.router import RateLimit
from quantum_ovs import model as m
from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Output
from quantum_ovs.compiler.rules.neighbours import RANK_FLOATING_IP, NeighbourSource

LOG = logging.getLogger(__name__)

ETH_ARP = 0x0806
ETH_IP = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ARP_REQUEST, ARP_REPLY = 1, 2
ND_NS, ND_NA = 135, 136
ND_OPT_SLL, ND_OPT_TLL = 1, 2
NA_FLAG_ROUTER, NA_FLAG_SOLICITED, NA_FLAG_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1").packed
ALL_NODES_MAC = bytes.fromhex("333300000001")
OFPR_INVALID_TTL = 2


# ------------------------------------------------------------------ frames
def _eth(dst: bytes, src: bytes, ethertype: int, vlan: Optional[int]) -> bytes:
    head = dst + src
    if vlan is not None:
        head += struct.pack("!HH", ETH_VLAN, vlan & 0x0FFF)
    return head + struct.pack("!H", ethertype)


def _arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return struct.pack("!HHBBH", 1, ETH_IP, 6, 4, op) + sha + spa + tha + tpa


def arp_request(src_mac: str, src_ip: str, target_ip: str, vlan: Optional[int] = None,
                dst_mac: bytes = BROADCAST) -> bytes:
    """Who has ``target_ip``? Tell ``src_ip`` (at ``src_mac``)."""
    sha = mac_bytes(src_mac)
    return _eth(dst_mac, sha, ETH_ARP, vlan) + _arp(
        ARP_REQUEST, sha, ipaddress.IPv4Address(src_ip).packed, b"\x00" * 6,
        ipaddress.IPv4Address(target_ip).packed)


def gratuitous_arp(mac: str, ip: str, vlan: Optional[int] = None) -> bytes:
    """A broadcast ARP request for our own address (sender = target): every
    host that has ``ip`` in its cache takes the new MAC."""
    return arp_request(mac, ip, ip, vlan)


def solicited_node(ip: str) -> tuple[bytes, bytes]:
    """(IPv6 solicited-node multicast address, its MAC) of ``ip``."""
    low = ipaddress.IPv6Address(ip).packed[-3:]
    return (ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + low,
            b"\x33\x33\xff" + low)


def _icmp6(eth: bytes, src: bytes, dst: bytes, icmp: bytes) -> bytes:
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    return eth + struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst + icmp


def neighbour_solicitation(src_mac: str, src_ip: str, target_ip: str,
                           vlan: Optional[int] = None) -> bytes:
    """An NS for ``target_ip`` to its solicited-node group, with our
    link-layer address."""
    sha = mac_bytes(src_mac)
    dst, dst_mac = solicited_node(target_ip)
    icmp = struct.pack("!BBHI", ND_NS, 0, 0, 0) + ipaddress.IPv6Address(target_ip).packed + \
        struct.pack("!BB", ND_OPT_SLL, 1) + sha
    return _icmp6(_eth(dst_mac, sha, ETH_IPV6, vlan), ipaddress.IPv6Address(src_ip).packed,
                  dst, icmp)


def unsolicited_advertisement(mac: str, ip: str, vlan: Optional[int] = None,
                              router: bool = True) -> bytes:
    """An NA for our own ``ip`` to all nodes, override flag set (RFC 4861
    7.2.6): the IPv6 gratuitous ARP."""
    sha = mac_bytes(mac)
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    addr = ipaddress.IPv6Address(ip).packed
    icmp = struct.pack("!BBHI", ND_NA, 0, 0, flags) + addr + struct.pack("!BB", ND_OPT_TLL, 1) + sha
    return _icmp6(_eth(ALL_NODES_MAC, sha, ETH_IPV6, vlan), addr, ALL_NODES, icmp)


def request_for(src_mac: str, src_ip: str, target_ip: str, vlan: Optional[int] = None) -> bytes:
    if ":" in target_ip:
        return neighbour_solicitation(src_mac, src_ip, target_ip, vlan)
    return arp_request(src_mac, src_ip, target_ip, vlan)


def announcement(mac: str, ip: str, vlan: Optional[int] = None) -> bytes:
    if ":" in ip:
        return unsolicited_advertisement(mac, ip, vlan)
    return gratuitous_arp(mac, ip, vlan)


def _fmt_mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _payload(frame: bytes) -> tuple[int, int]:
    """(ethertype, offset of the payload), past one 802.1Q tag if any."""
    if len(frame) < 14:
        return 0, len(frame)
    etype = int.from_bytes(frame[12:14], "big")
    if etype == ETH_VLAN and len(frame) >= 18:
        return int.from_bytes(frame[16:18], "big"), 18
    return etype, 14


@dataclass(frozen=True, slots=True)
class Reply:
    """A neighbour's answer: ``ip`` is at ``mac``; ``to`` is the address
    it was sent to (the ARP target / the IPv6 destination)."""

    ip: str
    mac: str
    to: Optional[str]


def parse_reply(frame: bytes) -> Optional[Reply]:
    """An ARP reply or a neighbour advertisement, else None."""
    etype, off = _payload(frame)
    if etype == ETH_ARP:
        if len(frame) < off + 28:
            return None
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, off)
        if (htype, ptype, hlen, plen, op) != (1, ETH_IP, 6, 4, ARP_REPLY):
            return None
        sha = frame[off + 8:off + 14]
        spa = frame[off + 14:off + 18]
        tpa = frame[off + 24:off + 28]
        if sha[0] & 1 or sha == b"\x00" * 6:
            return None
        return Reply(str(ipaddress.IPv4Address(spa)), _fmt_mac(sha),
                     str(ipaddress.IPv4Address(tpa)))
    if etype == ETH_IPV6:
        if len(frame) < off + 40 + 24 or frame[off + 6] != 58 or frame[off + 40] != ND_NA:
            return None
        if frame[off + 7] != 255:  # RFC 4861 7.1.2: hop limit 255, else not on-link
            return None
        dst = ipaddress.IPv6Address(frame[off + 24:off + 40])
        target = ipaddress.IPv6Address(frame[off + 48:off + 64])
        mac = None
        opt = off + 64
        while opt + 2 <= len(frame):
            kind, units = frame[opt], frame[opt + 1]
            if units == 0:
                break
            if kind == ND_OPT_TLL and units == 1 and opt + 8 <= len(frame):
                mac = frame[opt + 2:opt + 8]
            opt += units * 8
        mac = mac or frame[6:12]
        if mac[0] & 1:
            return None
        return Reply(str(target), _fmt_mac(mac), None if dst.is_multicast else str(dst))
    return None


def parse_ip(frame: bytes) -> Optional[tuple[int, str, str]]:
    """(version, source, destination) of an IPv4 / IPv6 frame."""
    etype, off = _payload(frame)
    if etype == ETH_IP and len(frame) >= off + 20:
        return 4, str(ipaddress.IPv4Address(frame[off + 12:off + 16])), \
            str(ipaddress.IPv4Address(frame[off + 16:off + 20]))
    if etype == ETH_IPV6 and len(frame) >= off + 40:
        return 6, str(ipaddress.IPv6Address(frame[off + 8:off + 24])), \
            str(ipaddress.IPv6Address(frame[off + 24:off + 40]))
    return None


# ------------------------------------------------------------------ context
@dataclass(frozen=True, slots=True)
class ExternalNet:
    """An external network as this host reaches it: the patch port to its
    physical bridge and the VLAN tag (None: flat)."""

    network_id: str
    local_id: int
    ofport: int
    vlan: Optional[int]
    subnets: tuple[m.Subnet, ...]


@dataclass(frozen=True, slots=True)
class Context:
    """What the resolver reads of the host view (rebuilt on each change)."""

    nets: Mapping[str, ExternalNet]  # network id ->
    by_local_id: Mapping[int, str]
    routers: Mapping[int, m.Router]  # router cookie -> router (with a gateway)
    # network id -> the addresses the agent may ask from, best first
    # (Engine.neighbour_sources: the answers to exactly these are punted;
    # those of RANK_FLOATING_IP are the floating IPs served here)
    sources: Mapping[str, tuple[NeighbourSource, ...]] = field(default_factory=dict)
    # a router's ACL zone (reg2 of what its flows punt) -> its id
    zone_routers: Mapping[int, str] = field(default_factory=dict)


EMPTY = Context({}, {}, {})


def build_context(host: str, routers: Iterable[m.Router], networks: Mapping[str, m.Network],
                  subnets: Iterable[m.Subnet], ports: Mapping[str, m.Port],
                  local_id: Callable[[str], Optional[int]],
                  physnet_ofports: Mapping[str, int],
                  sources: Optional[Mapping[str, tuple[NeighbourSource, ...]]] = None,
                  zone_routers: Optional[Mapping[int, str]] = None) -> Context:
    routers = [r for r in routers if r.gateway is not None]
    by_net: dict[str, list] = {}
    for s in subnets:
        by_net.setdefault(s.network_id, []).append(s)
    nets, by_local = {}, {}
    for nid in sorted({r.gateway.network_id for r in routers}):
        net = networks.get(nid)
        lid = local_id(nid) if net is not None else None
        seg = net.segment if net is not None else None
        if seg is None or lid is None or seg.network_type not in ("flat", "vlan"):
            continue
        ofport = physnet_ofports.get(seg.physical_network)
        if ofport is None:
            continue
        vlan = seg.segmentation_id if seg.network_type == "vlan" else None
        nets[nid] = ExternalNet(nid, lid, ofport, vlan,
                                tuple(sorted(by_net.get(nid, ()), key=lambda s: s.id)))
        by_local[lid] = nid
    return Context(nets, by_local,
                   {cookies.cookie_for(cookies.KIND_ROUTER, r.id): r for r in routers},
                   {n: tuple(v) for n, v in (sources or {}).items() if n in nets},
                   dict(zone_routers or {}))


def next_hop(dst: str, subnets: Iterable[m.Subnet]) -> Optional[str]:
    """``dst`` itself if it is on one of the external subnets, else the
    gateway of one of them (same IP version), else None."""
    addr = ipaddress.ip_address(dst)
    subnets = [s for s in subnets if s.ip_version == addr.version]
    for s in subnets:
        if addr in ipaddress.ip_network(s.cidr, strict=False):
            return dst
    return next((s.gateway_ip for s in subnets if s.gateway_ip), None)


def source_for(sources: Iterable[NeighbourSource], version: int, src: str,
               router_id: Optional[str] = None) -> Optional[tuple[str, str]]:
    """(IP, MAC) to ask from, of ``sources`` (one network's, best first):
    the one the packet comes from (a floating IP, by its translated or
    its fixed address; a gateway address the packet was SNATed to), else
    the first of the punting router ``router_id``, else the first; of
    the packet's IP version.  None: this host asks from no address there
    (it does not route out there)."""
    six = version == 6
    cands = [s for s in sources if (":" in s.ip) == six]
    pick = next((s for s in cands if src in (s.ip, s.fixed)), None) if src else None
    if pick is None and router_id is not None:
        pick = next((s for s in cands if s.router_id == router_id), None)
    if pick is None and cands:
        pick = cands[0]
    return None if pick is None else (pick.ip, pick.mac)


# ------------------------------------------------------------------ resolver
@dataclass(slots=True)
class _Entry:
    mac: Optional[str]  # None: asked, no answer yet
    src_ip: str
    src_mac: str
    learned: float  # when answered (or asked, for a pending one)
    asked: float  # last request sent
    tries: int = 0  # requests since the last answer
    router_id: Optional[str] = None  # the router whose packet asked first


class NeighbourResolver:
    """Asks for, learns, refreshes and forgets external neighbours.

    ``send(frame, actions)`` is a packet-out; ``on_change()`` is called
    (from the packet-in or the timer thread) when ``neighbours()`` changed.
    """

    def __init__(self, send, on_change: Callable[[], None], stats: dict,
                 reachable: float = 300.0, retry: float = 1.0, tries: int = 3,
                 max_entries: int = 4096, rate: float = 100.0, burst: int = 50,
                 clock=time.monotonic):
        self.send = send
        self.on_change = on_change
        self.stats = stats
        self.reachable = reachable  # seconds an answer is good for
        self.refresh_at = reachable * 0.75  # asked again from then on
        self.retry = retry  # seconds between requests for one address
        self.tries = tries  # unanswered requests before giving up
        self.max_entries = max_entries
        self.clock = clock
        self.limit = RateLimit(rate, burst, clock)
        self.ctx = EMPTY
        self._lock = threading.Lock()
        self._table: "OrderedDict[tuple[str, str], _Entry]" = OrderedDict()

    def _count(self, key, n=1):
        self.stats[key] = self.stats.get(key, 0) + n

    # ------------------------------------------------------------ state
    def set_context(self, ctx: Context) -> None:
        """The view changed: forget the neighbours of networks gone; an
        entry asked from an address no longer ours here (a floating IP
        that moved away) is refreshed from the network's gateway instead."""
        changed = False
        with self._lock:
            self.ctx = ctx
            for key, e in list(self._table.items()):
                sources = ctx.sources.get(key[0], ())
                if key[0] not in ctx.nets:
                    changed |= self._table.pop(key).mac is not None
                    continue
                if (e.src_ip, e.src_mac) not in {(s.ip, s.mac) for s in sources}:
                    src = source_for(sources, 6 if ":" in key[1] else 4, "", e.router_id)
                    if src is None:
                        changed |= self._table.pop(key).mac is not None
                    else:
                        e.src_ip, e.src_mac = src
        if changed:
            self.on_change()

    def neighbours(self) -> tuple[m.Neighbour, ...]:
        with self._lock:
            # (sorted as tuples: Neighbour values have no order)
            return tuple(m.Neighbour(net, ip, mac) for net, ip, mac in sorted(
                (net, ip, e.mac) for (net, ip), e in self._table.items() if e.mac))

    # ------------------------------------------------------------ packet-ins
    def packet_in(self, pin) -> bool:
        """Handle a punt or a reply; False if the packet is not for us."""
        if len(pin.data) < 14 or pin.reason == OFPR_INVALID_TTL:
            return False
        reply = parse_reply(pin.data)
        if reply is not None:
            return self._learn(reply, pin)
        if pin.table == P.L3_RESOLVE and cookies.is_ours(pin.cookie):
            return self._resolve(pin)
        return False

    def _reg(self, pin, name) -> Optional[int]:
        f = pin.match.get(name) if pin.match is not None else None
        return None if f is None else f.value

    def _resolve(self, pin) -> bool:
        """A punted packet: ask for its next hop.  False if it is not on
        an external network (another punt of these tables)."""
        ctx = self.ctx
        ip = parse_ip(pin.data)
        if ip is None:
            return False
        version, src, dst = ip
        router = ctx.routers.get(pin.cookie)
        net_id = ctx.by_local_id.get(self._reg(pin, P.REG_NET))
        if net_id is None and router is not None:
            net_id = router.gateway.network_id
        net = ctx.nets.get(net_id)
        if net is None:
            return False
        hop = self._reg(pin, "reg0") if version == 4 else None  # the route's next hop
        hop = str(ipaddress.IPv4Address(hop)) if hop else next_hop(dst, net.subnets)
        # the punting router: by the cookie of its flows, else by the ACL
        # zone its flows set (the resolve punt is the network's)
        router_id = router.id if router is not None else \
            ctx.zone_routers.get(self._reg(pin, P.REG_ROUTER))
        source = source_for(ctx.sources.get(net_id, ()), version, src, router_id)
        if hop is None or source is None:
            self._count("neighbour_unresolvable")
            return True
        self.ask(net_id, hop, *source, router_id=router_id)
        return True

    def ask(self, net_id: str, ip: str, src_ip: str, src_mac: str,
            router_id: Optional[str] = None) -> bool:
        """Send a request for ``ip`` on ``net_id`` (unless one went out
        less than ``retry`` ago, or it is known); True if sent."""
        now = self.clock()
        key = (net_id, ip)
        with self._lock:
            net = self.ctx.nets.get(net_id)
            e = self._table.get(key)
            if net is None or (e is not None and (e.mac or now - e.asked < self.retry)):
                return False
            if not self.limit.allow():
                self._count("neighbour_rate_limited")
                return False
            if e is None:
                e = _Entry(None, src_ip, src_mac, now, now, router_id=router_id)
                self._table[key] = e
                self._bound(keep=key)
            e.src_ip, e.src_mac, e.asked = src_ip, src_mac, now
            e.tries += 1
        self._send_request(net, ip, src_ip, src_mac)
        return True

    def _send_request(self, net: ExternalNet, ip, src_ip, src_mac) -> None:
        self.send(request_for(src_mac, src_ip, ip, net.vlan), [Output(net.ofport)])
        self._count("neighbour_requests")

    def _bound(self, keep=None) -> None:
        """Keep at most max_entries: pending requests go first, then the
        oldest answers; never ``keep``, the request being made (in a table
        full of answers it would go at once, and no new next hop could be
        learned while the old ones keep answering)."""
        while len(self._table) > self.max_entries:
            victim = min((k for k in self._table if k != keep),
                         key=lambda k: (self._table[k].mac is not None,
                                        self._table[k].learned))
            del self._table[victim]
            self._count("neighbour_evicted")

    def _learn(self, reply: Reply, pin) -> bool:
        """An answer to one of our requests (same address, sent to the
        address we asked from): learned.  Any other reply is not ours."""
        net_hint = self.ctx.by_local_id.get(self._reg(pin, P.REG_NET))
        now = self.clock()
        changed = False
        ours = False
        with self._lock:
            for (net_id, ip), e in self._table.items():
                if ip != reply.ip or (net_hint is not None and net_id != net_hint):
                    continue
                if reply.to is not None and reply.to != e.src_ip:
                    continue
                ours = True
                changed |= e.mac != reply.mac
                e.mac, e.learned, e.tries = reply.mac, now, 0
        if ours:
            self._count("neighbour_replies")
            if changed:
                LOG.info("external neighbour %s is at %s", reply.ip, reply.mac)
                self.on_change()
        return ours

    # ------------------------------------------------------------ timer
    def tick(self) -> None:
        """Ask again for entries about to expire; forget expired ones and
        unanswered requests."""
        now = self.clock()
        again, changed = [], False
        with self._lock:
            for key, e in list(self._table.items()):
                net = self.ctx.nets.get(key[0])
                if e.mac is None:
                    if net is None or now - e.learned >= self.retry * self.tries:
                        del self._table[key]  # never answered
                    continue
                if net is None or now - e.learned >= self.reachable:
                    del self._table[key]
                    changed = True
                    self._count("neighbour_expired")
                elif now - e.learned >= self.refresh_at and now - e.asked >= self.retry:
                    e.asked = now
                    e.tries += 1
                    again.append((net, key[1], e.src_ip, e.src_mac))
        for args in again:
            self._send_request(*args)
        if changed:
            self.on_change()


# ------------------------------------------------------------------ GARP
@dataclass(frozen=True, slots=True)
class Announce:
    """An address this host owns on an external network."""

    network_id: str
    ip: str
    mac: str


def announcements(host: str, ctx: Context, routers: Iterable[m.Router],
                  gateways_down: Iterable[str]) -> frozenset[Announce]:
    """What this host must announce: the floating IPs it serves (those of
    its ports, and on a router's active gateway host those of ports bound
    nowhere and with port forwardings only: the context's sources, from
    Engine.served_floating_ips, with the MAC their ARP answers give), and
    the gateway addresses of the routers it is the active gateway of.
    A takeover thus moves every address the new host answers for, as
    keepalived's master or OVN's chassis claiming a gateway port do."""
    down = frozenset(gateways_down)
    out = {Announce(nid, s.ip, s.mac) for nid, sources in ctx.sources.items()
           for s in sources if s.rank == RANK_FLOATING_IP and s.mac}
    for r in routers:
        gw = r.gateway
        if gw is None or gw.network_id not in ctx.nets:
            continue
        active = next((h for h in gw.hosts if h not in down), None)
        if active == host:
            out.update(Announce(gw.network_id, ip, gw.mac_address) for ip in gw.ip_addresses)
    return frozenset(out)


class Announcer:
    """Sends ``count`` announcements ``spacing`` seconds apart for every
    address that became ours (new, or with a new MAC)."""

    def __init__(self, send, stats: dict, count: int = 3, spacing: float = 1.0,
                 clock=time.monotonic):
        self.send = send
        self.stats = stats
        self.count = count
        self.spacing = spacing
        self.clock = clock
        self.current: frozenset = frozenset()
        self._due: dict[Announce, tuple[float, int]] = {}  # -> (next time, left)
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Announce every address again at the next update."""
        with self._lock:
            self.current = frozenset()

    def update(self, wanted: frozenset, ctx: Context) -> None:
        """The addresses this host owns now; the new ones are announced at
        once (and again from tick())."""
        with self._lock:
            new = wanted - self.current
            self.current = wanted
            for a in list(self._due):
                if a not in wanted:
                    del self._due[a]
            now = self.clock()
            for a in new:
                self._due[a] = (now, self.count)
        self.tick(ctx)

    def tick(self, ctx: Context) -> None:
        now = self.clock()
        out = []
        with self._lock:
            for a, (when, left) in list(self._due.items()):
                if when > now:
                    continue
                net = ctx.nets.get(a.network_id)
                if net is not None:
                    out.append((net, a))
                if left <= 1 or net is None:
                    del self._due[a]
                else:
                    self._due[a] = (now + self.spacing, left - 1)
        for net, a in out:
            self.send(announcement(a.mac, a.ip, net.vlan), [Output(net.ofport)])
            self.stats["garp_sent"] = self.stats.get("garp_sent", 0) + 1
