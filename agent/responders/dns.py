"""The agent's DNS resolver for instances (dns-integration), in the
packet-in path like DHCP.

The pipeline punts UDP 53 from a local port to its network's DNS address
(compiler/rules/network.py ``dns_address``: the subnet's DHCP server
address, which DHCP hands out as the resolver when the subnet names
none).  The responder answers from the host view:

- A / AAAA for the names of the ports of the asking port's network, all
  in the network's domain (its dns_domain, else the agent's ``[DEFAULT]
  dns_domain``): ``<dns_name>.<domain>`` for a relative ``dns_name``; a
  fully qualified ``dns_name`` only when it ends in the domain; else
  (a name outside the domain, or no name) ``host-<address>.<domain>``
  for each address.  No port publishes a name outside its network's
  domain: the network may be shared, and its ports' names are answered
  to every instance on it.  Names are not unique: a name shared by
  several ports answers with all their addresses.  A single-label name
  is also answered on its own (``vm1.``) for clients without a search
  list.
- PTR for the addresses of those ports (in-addr.arpa, ip6.arpa).
- Not the ports Neutron's DHCP agent leaves out of its hosts file
  (``DHCP_CONFIG_NOT_REQUIRED_OWNERS``: floating IPs, DHCP, HA router
  and distributed ports); their reverse names are forwarded, not
  NXDOMAIN, so that a floating IP's is what the operator's DNS says.
- NXDOMAIN for addresses of the network's subnets that no port holds,
  and for other names in the domain when it is the operator's (the
  agent's domain or one under it): a name on another network does not
  resolve.  Other names under a domain the network's owner chose are
  forwarded, so that its owner cannot hide a public domain's names from
  others on the network.  NOERROR without answers (no data) for a known
  name and a type it has none of.
- Anything else is forwarded (``Forwarder``) to the operator's ``[agent]
  dns_resolvers`` and the upstream answer relayed; without any: REFUSED.
  Never to a subnet's ``dns_nameservers``: the agent asks from the
  hypervisor's network namespace, and those addresses are the tenant's
  to choose (127.0.0.53, a management network).  DHCP hands a subnet's
  own nameservers to its instances, which ask them themselves.
  The forwarder's workers are the host's, so each asking port, and each
  project (all its ports on the host), gets a bounded share of them,
  served in turn with the others: an instance, or a project's many
  instances, asking for names that never resolve delays its own
  queries, not its neighbours' (in Neutron only its network's dnsmasq
  would).

Answers bigger than the client takes (512 bytes without EDNS) are sent
empty with TC set.  Replies come from the address and MAC the query was
sent to.  ``handle`` never raises on a frame; malformed queries are
dropped.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Optional

from agent.responders import dns_wire as W
from agent.responders.dhcp import build_udp_frame
from agent.responders.dhcp6 import build_udp6_frame
from quantum_ovs import model
from quantum_ovs.constants import DHCP_CONFIG_NOT_REQUIRED_OWNERS
from quantum_ovs.dnsnames import normalize_domain, published_name, under

LOG = logging.getLogger(__name__)

DEFAULT_DOMAIN = "openstacklocal."
TTL = 0  # names follow the ports: no caching in the instances
ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q = 0x0800, 0x86DD, 0x8100
_IPV4 = struct.Struct("!BBHHHBBH4s4s")


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


# ------------------------------------------------------------------ frames
@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram of a punted frame (IPv4 or IPv6)."""

    vlan_tci: Optional[int]
    eth_src: bytes
    eth_dst: bytes
    version: int
    ip_src: bytes
    ip_dst: bytes
    sport: int
    dport: int
    payload: bytes


def parse_udp_frame(frame: bytes) -> Datagram:
    """The UDP datagram of an Ethernet frame; ValueError otherwise (IPv4
    fragments and IPv6 extension headers included)."""
    frame = bytes(frame)
    if len(frame) < 14:
        raise ValueError("short frame")
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    off, tci = 14, None
    if ethertype == ETH_P_8021Q:
        if len(frame) < 18:
            raise ValueError("short 802.1Q header")
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        off = 18
    if ethertype == ETH_P_IP:
        if len(frame) < off + 20:
            raise ValueError("short IPv4 header")
        vihl, _tos, total, _id, frag, _ttl, proto, _c, src, dst = _IPV4.unpack_from(frame, off)
        ihl = (vihl & 0xF) * 4
        if vihl >> 4 != 4 or ihl < 20 or total < ihl + 8 or off + total > len(frame):
            raise ValueError("bad IPv4 header")
        if frag & 0x3FFF or proto != 17:
            raise ValueError("not an unfragmented UDP datagram")
        u, end, version = off + ihl, off + total, 4
    elif ethertype == ETH_P_IPV6:
        if len(frame) < off + 48:
            raise ValueError("short IPv6 header")
        plen, nxt = struct.unpack_from("!HB", frame, off + 4)
        if frame[off] >> 4 != 6 or nxt != 17 or off + 40 + plen > len(frame):
            raise ValueError("not a UDP IPv6 packet")
        src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
        u, end, version = off + 40, off + 40 + plen, 6
    else:
        raise ValueError("not IP")
    sport, dport, ulen, _ = struct.unpack_from("!HHHH", frame, u)
    if ulen < 8 or u + ulen > end:
        raise ValueError("bad UDP length")
    return Datagram(tci, frame[6:12], frame[0:6], version, src, dst, sport, dport,
                    frame[u + 8:u + ulen])


def is_dns_query(frame: bytes) -> bool:
    """Is this frame (untagged or 802.1Q) UDP to port 53?  A cheap test
    before the parse."""
    off = 18 if frame[12:14] == b"\x81\x00" else 14
    et = frame[off - 2:off]
    if et == b"\x08\x00" and len(frame) >= off + 28:
        ihl = (frame[off] & 0xF) * 4
        return frame[off + 9] == 17 and frame[off + ihl + 2:off + ihl + 4] == b"\x00\x35"
    if et == b"\x86\xdd" and len(frame) >= off + 48:
        return frame[off + 6] == 17 and frame[off + 42:off + 44] == b"\x00\x35"
    return False


def reply_frame(d: Datagram, payload: bytes) -> bytes:
    """``payload`` back to the sender of ``d``, from where it was sent to."""
    if d.version == 4:
        return build_udp_frame(d.eth_dst, d.eth_src, d.ip_dst, d.ip_src, d.dport, d.sport,
                               payload, d.vlan_tci)
    return build_udp6_frame(d.eth_dst, d.eth_src, d.ip_dst, d.ip_src, d.dport, d.sport,
                            payload, d.vlan_tci)


# ------------------------------------------------------------------ names
@dataclass(frozen=True, slots=True)
class Zone:
    """The names of one network's ports."""

    domain: str  # with a trailing dot
    names: Mapping[str, tuple[str, ...]]  # fqdn (and bare single label) -> addresses
    reverse: Mapping[str, tuple[str, ...]]  # reverse name -> fqdns
    cidrs: tuple  # the network's subnets (ip_network)
    # the domain is the operator's: other names in it are NXDOMAIN, not
    # forwarded
    authoritative: bool = True
    # the addresses of the ports given no name (ip_address): their reverse
    # names are forwarded, not NXDOMAIN
    unnamed: frozenset = frozenset()

    def in_domain(self, qname: str) -> bool:
        return bool(self.domain) and under(qname, self.domain)

    def owns_reverse(self, qname: str) -> bool:
        ip = address_of_reverse(qname)
        return ip is not None and ip not in self.unnamed and \
            any(ip in c for c in self.cidrs)


def address_of_reverse(qname: str):
    """The address a full reverse name names, or None."""
    try:
        if qname.endswith(".in-addr.arpa."):
            parts = qname[:-len(".in-addr.arpa.")].split(".")
            if len(parts) != 4:
                return None
            return ipaddress.IPv4Address(".".join(reversed(parts)))
        if qname.endswith(".ip6.arpa."):
            parts = qname[:-len(".ip6.arpa.")].split(".")
            if len(parts) != 32 or any(len(p) != 1 for p in parts):
                return None
            return ipaddress.IPv6Address(int("".join(reversed(parts)), 16))
    except ValueError:
        return None
    return None


def build_zone(network: model.Network, ports, subnets, default_domain: str) -> Zone:
    """The names of ``ports`` (those of ``network``)."""
    own = normalize_domain(default_domain)
    domain = normalize_domain(network.dns_domain) or own
    names: dict[str, list[str]] = {}
    reverse: dict[str, list[str]] = {}

    def add(name, ip):
        lst = names.setdefault(name, [])
        if ip not in lst:
            lst.append(ip)

    unnamed = set()
    for p in ports:
        if p.network_id != network.id:
            continue
        if p.device_owner in DHCP_CONFIG_NOT_REQUIRED_OWNERS:
            unnamed.update(ipaddress.ip_address(ip) for ip in p.ips)
            continue
        for ip in p.ips:
            # (what the server's dns_assignment shows: a name too long for
            # the wire, or one that fitted until the network's domain grew,
            # is host-<address>; "" when that does not fit either)
            fqdn, bare = published_name(p.dns_name, ip, domain)
            if not fqdn:
                continue
            add(fqdn, ip)
            if bare is not None:
                add(bare, ip)
            rev = reverse.setdefault(reverse_name(ip), [])
            if fqdn not in rev:
                rev.append(fqdn)
    cidrs = tuple(ipaddress.ip_network(s.cidr, strict=False) for s in subnets
                  if s.network_id == network.id)
    return Zone(domain, {k: tuple(v) for k, v in names.items()},
                {k: tuple(v) for k, v in reverse.items()}, cidrs,
                authoritative=bool(own) and under(domain, own), unnamed=frozenset(unnamed))


def _records(name, qtype, addresses):
    out = []
    for ip in addresses:
        a = ipaddress.ip_address(ip)
        if (qtype in (W.TYPE_A, W.TYPE_ANY) and a.version == 4) or \
                (qtype in (W.TYPE_AAAA, W.TYPE_ANY) and a.version == 6):
            out.append(W.Record(name, W.TYPE_A if a.version == 4 else W.TYPE_AAAA, TTL,
                                a.packed))
    return out


def answer(query: W.Query, zone: Zone, max_size: Optional[int] = None) -> Optional[bytes]:
    """The response from ``zone``, or None: not ours to answer (forward).
    ``max_size``: the largest response to send (default: what the client
    takes); a bigger one goes out empty with TC set."""
    if query.opcode != 0:
        return W.build_response(query, W.NOTIMP)
    if query.qclass not in (W.CLASS_IN, W.TYPE_ANY):
        return None
    qname = query.qname
    if qname in zone.names:
        return W.build_response(query, W.NOERROR, _records(qname, query.qtype,
                                                           zone.names[qname]),
                                max_size=max_size)
    if qname in zone.reverse:
        if query.qtype not in (W.TYPE_PTR, W.TYPE_ANY):
            return W.build_response(query, W.NOERROR)
        return W.build_response(query, W.NOERROR, [
            W.Record(qname, W.TYPE_PTR, TTL, W.encode_name(f)) for f in zone.reverse[qname]],
            max_size=max_size)
    if (zone.authoritative and zone.in_domain(qname)) or zone.owns_reverse(qname):
        return W.build_response(query, W.NXDOMAIN)
    return None


# ------------------------------------------------------------------ forwarding
@dataclass(frozen=True, slots=True)
class _Job:
    query: W.Query
    payload: bytes
    resolvers: tuple[str, ...]
    reply: Callable[[bytes], None]  # sends a response payload to the client
    deadline: float
    max_size: int  # the largest response the client (and the link) takes
    key: Hashable = None  # the asking port: (its project, its port)


def _add(counts: dict, key: Hashable, n: int) -> None:
    """Adds ``n`` to ``counts[key]``; a count of 0 is no entry."""
    left = counts.get(key, 0) + n
    if left:
        counts[key] = left
    else:
        counts.pop(key, None)


class Forwarder:
    """Relays queries to upstream resolvers on worker threads, so that a
    slow or dead upstream never holds the packet-in path.  At most
    ``max_pending`` queries wait (more are dropped: the client asks
    again); each resolver gets ``timeout`` seconds, a query ``budget`` in
    all (from its arrival); a resolver that does not answer gets SERVFAIL
    to the client.

    The workers are shared by every port of the host, so no port may
    hold them: a port has at most ``per_port`` queries waiting or being
    resolved (more are answered SERVFAIL at once), at most
    ``per_port_workers`` of them (half the workers by default) on a
    worker at a time.  Nor may one project with many instances on the
    host: the ports of a project together have at most half the workers
    on its queries and half of ``max_pending`` waiting (more are
    answered SERVFAIL at once, so the others' still find room).  A
    query's ``key`` is (its project, its port); a port of no known
    project is a project of its own.  The workers serve the projects
    with waiting queries in turn, and within a project its ports in
    turn, not in arrival order: a project with many ports gets the turns
    of one.  A project asking for names whose servers never answer slows
    its own queries: the others' find a worker it cannot take, and with
    several such projects a query waits for its project's turn, not
    behind their queues."""

    def __init__(self, workers: int = 4, max_pending: int = 256, timeout: float = 1.0,
                 budget: float = 2.5, stats: Optional[dict] = None, per_port: int = 8,
                 per_port_workers: Optional[int] = None):
        self.timeout = timeout
        self.budget = budget
        self.stats = stats if stats is not None else {}
        self.max_pending = max_pending
        self.per_port = max(1, per_port)
        self.per_port_workers = max(1, per_port_workers if per_port_workers is not None
                                    else workers // 2)
        self.per_project_workers = max(1, workers // 2)
        self.per_project_pending = max(1, max_pending // 2)
        self._lock = threading.Condition()
        self._waiting: dict[Hashable, deque[_Job]] = {}  # per port, in arrival order
        self._running: dict[Hashable, int] = {}  # per port, on a worker
        self._project_waiting: dict[Hashable, int] = {}
        self._project_running: dict[Hashable, int] = {}
        # The turns: the projects a worker may serve, and of each project
        # with waiting queries the ports it may serve (a project at its
        # share of workers keeps its ports but is out of the turns).
        self._turns: deque[Hashable] = deque()
        self._ports: dict[Hashable, deque[Hashable]] = {}
        self._queued = 0
        self._threads = []
        self._stopped = threading.Event()
        for i in range(workers):
            t = threading.Thread(target=self._work, name=f"dns-forward-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _count(self, name):
        self.stats[name] = self.stats.get(name, 0) + 1

    @staticmethod
    def project_of(key: Hashable) -> Hashable:
        """The project of a query's ``key`` (project, port); a port of no
        known project, or a key that is no such pair, is a project of its
        own (never equal to a project's id)."""
        if isinstance(key, tuple) and len(key) == 2 and key[0]:
            return key[0]
        return (None, key)

    def submit(self, query: W.Query, payload: bytes, resolvers, reply,
               max_size: Optional[int] = None, key: Hashable = None) -> bool:
        """Queue a query of ``key`` (its project, its port); False when it
        is not: dropped (all ``max_pending`` taken) or, past the port's or
        the project's share, answered SERVFAIL here."""
        job = _Job(query, payload, tuple(resolvers), reply, time.monotonic() + self.budget,
                   query.max_size if max_size is None else max_size, key)
        project = self.project_of(key)
        with self._lock:
            waiting = self._waiting.get(key)
            if (len(waiting) if waiting else 0) + self._running.get(key, 0) >= self.per_port \
                    or self._project_waiting.get(project, 0) >= self.per_project_pending:
                limited = True
            elif self._queued >= self.max_pending:
                self._count("dns_forward_dropped")
                return False
            else:
                limited = False
                self._waiting.setdefault(key, deque()).append(job)
                self._queued += 1
                _add(self._project_waiting, project, 1)
                self._in_turn(project, key)
                self._lock.notify()
        if limited:
            self._count("dns_forward_limited")
            reply(W.build_response(query, W.SERVFAIL, authoritative=False))
        return not limited

    def _in_turn(self, project, key):
        """Puts port ``key`` at the end of its project's turns if it may be
        served (it has a waiting query and is under its share of workers)
        and is not there, and so its project at the end of the host's.
        Called after every change of either's counts, under the lock: an
        entry leaves the turns only when a worker takes it (``_next``)."""
        ports = self._ports.setdefault(project, deque())
        if key in self._waiting and self._running.get(key, 0) < self.per_port_workers \
                and key not in ports:
            ports.append(key)
        if not ports:
            del self._ports[project]
        elif self._project_running.get(project, 0) < self.per_project_workers \
                and project not in self._turns:
            self._turns.append(project)

    def _next(self) -> Optional[_Job]:
        """The oldest query of the next port of the next project (None:
        stopping)."""
        with self._lock:
            while not self._turns:
                if self._stopped.is_set():
                    return None
                self._lock.wait()
            if self._stopped.is_set():
                return None
            project = self._turns.popleft()
            key = self._ports[project].popleft()
            waiting = self._waiting[key]
            job = waiting.popleft()
            if not waiting:
                del self._waiting[key]
            self._queued -= 1
            _add(self._project_waiting, project, -1)
            _add(self._running, key, 1)
            _add(self._project_running, project, 1)
            self._in_turn(project, key)  # its next after the others'
            return job

    def _done(self, key):
        project = self.project_of(key)
        with self._lock:
            _add(self._running, key, -1)
            _add(self._project_running, project, -1)
            self._in_turn(project, key)  # it may have been out of turns at a share
            if self._turns:
                self._lock.notify()

    def stop(self):
        self._stopped.set()
        with self._lock:
            self._lock.notify_all()
        for t in self._threads:
            t.join(2)

    def _work(self):
        while True:
            job = self._next()
            if job is None:
                return
            try:
                job.reply(self.resolve(job))
            except Exception:  # noqa: BLE001 - one query never stops the worker
                LOG.exception("DNS forwarding failed")
            finally:
                self._done(job.key)

    def resolve(self, job: _Job) -> bytes:
        """The upstream response (its id set back to the client's), or
        SERVFAIL."""
        for server in job.resolvers:
            left = job.deadline - time.monotonic()
            if left <= 0:
                break
            got = self._ask(server, job.payload, min(self.timeout, left))
            if got is not None:
                self.stats["dns_forwarded"] = self.stats.get("dns_forwarded", 0) + 1
                if len(got) > job.max_size:
                    return W.truncated(job.query, got[3] & 0xF)
                return struct.pack("!H", job.query.id) + got[2:]
        self.stats["dns_forward_failed"] = self.stats.get("dns_forward_failed", 0) + 1
        return W.build_response(job.query, W.SERVFAIL, authoritative=False)

    @staticmethod
    def _ask(server: str, payload: bytes, timeout: float) -> Optional[bytes]:
        host, port = server, 53
        if server.startswith("[") and "]:" in server:
            host, _, p = server[1:].partition("]:")
            port = int(p)
        elif server.count(":") == 1:
            host, _, p = server.partition(":")
            port = int(p)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        qid = random.getrandbits(16)
        out = struct.pack("!H", qid) + payload[2:]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((host, port))
                sock.send(out)
                end = time.monotonic() + timeout
                while True:
                    sock.settimeout(max(0.01, end - time.monotonic()))
                    data = sock.recv(W.MAX_UDP_SIZE)
                    if len(data) >= W.HEADER.size and data[:2] == out[:2] and data[2] & 0x80:
                        return data
                    if time.monotonic() >= end:
                        return None
            except OSError:
                return None


# ------------------------------------------------------------------ responder
class DnsResponder:
    """Answers DNS queries punted from local ports.

    ``zone_of(network)`` gives the Zone of a network (the agent caches it
    per view revision); ``resolvers`` are ``[agent] dns_resolvers``, the
    only upstreams (never a subnet's dns_nameservers: see the module's
    doc); ``forwarder`` relays other names (None, or no resolvers: they
    are refused); ``send``
    sends a reply frame out of the asking port (given the frame and
    in_port)."""

    def __init__(self, zone_of, resolvers=(), forwarder: Optional[Forwarder] = None,
                 stats: Optional[dict] = None):
        self.zone_of = zone_of
        self.resolvers = tuple(resolvers)
        self.forwarder = forwarder
        self.stats = stats if stats is not None else {}

    def handle(self, frame: bytes, port: model.Port, subnets: Mapping[str, model.Subnet],
               network: model.Network, send: Callable[[bytes], None]) -> None:
        try:
            d = parse_udp_frame(frame)
            if d.dport != 53:
                return
            query = W.parse_query(d.payload)
        except (ValueError, struct.error, IndexError) as exc:
            LOG.debug("port %s: dropping a malformed DNS query: %s", port.id, exc)
            self.stats["dns_malformed"] = self.stats.get("dns_malformed", 0) + 1
            return
        try:
            self._answer(d, query, port, subnets, network, send)
        except Exception:  # noqa: BLE001 - bad model data must not take the agent down
            LOG.exception("port %s: cannot answer DNS query for %s", port.id, query.qname)

    def _answer(self, d, query, port, subnets, network, send):
        if not port.admin_state_up:
            return
        # What fits in one frame of the network (IPv6 and UDP headers off).
        limit = min(query.max_size, max(W.CLASSIC_UDP_SIZE, (network.mtu or 1500) - 48))
        reply = answer(query, self.zone_of(network), limit)
        if reply is not None:
            self.stats["dns_answers"] = self.stats.get("dns_answers", 0) + 1
            send(reply_frame(d, reply))
            return
        resolvers = self.resolvers
        if not resolvers or self.forwarder is None:
            self.stats["dns_refused"] = self.stats.get("dns_refused", 0) + 1
            send(reply_frame(d, W.build_response(query, W.REFUSED, authoritative=False,
                                                  recursion_available=False)))
            return
        self.forwarder.submit(query, d.payload, resolvers,
                              lambda payload: send(reply_frame(d, payload)), limit,
                              key=(port.project_id, port.id))
