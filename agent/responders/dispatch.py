"""Packet-ins to the responders, answered out of the port they came in
on: a DHCP request from a local VIF (the pipeline punts it) from the
port's own data; a packet whose TTL ran out in a router (punted by the
router's flows in L3_ROUTE, through its port's or the host's TTL meter) with ICMP time
exceeded, and a router solicitation with the
routers' advertisements (agent.responders.router).

One thread answers every port of the host, so what one port may take of
it is bounded: a frame longer than its network's MTU (plus an Ethernet
and an 802.1Q header) is dropped unparsed, and answers to TTL punts and
router solicitations come from a token bucket of the packet's port (a
quarter of the host's rate and burst) as well as the host's."""

from __future__ import annotations

import logging
import time

from agent.responders.dhcp import DhcpResponder
from agent.responders.dhcp6 import Dhcp6Responder
from agent.responders.dns import is_dns_query
from agent.responders.router import RateLimit, solicited_advertisements, time_exceeded
from quantum_ovs.compiler.flow import Output
from quantum_ovs.compiler.pipeline import L3_ADMIT, L3_ROUTE, REG_SRC, SERVICES

LOG = logging.getLogger(__name__)

ETH_OVERHEAD = 14 + 4  # Ethernet and one 802.1Q header on top of the MTU
MAX_FRAME = 9216 + ETH_OVERHEAD  # before the network (and its MTU) is known
PORT_SHARE = 4  # a port's bucket: 1/PORT_SHARE of the host's rate and burst
MAX_PORT_BUCKETS = 1024  # past that, the buckets of idle ports are forgotten


class PortRateLimit:
    """A token bucket per port under a host-wide one: an answer needs a
    token of both, so no port can spend more than its share of the
    host's.  A port's bucket that has refilled is as good as a new one:
    those are dropped when there are ``max_ports`` (then, if all are in
    use, the least recently used half)."""

    def __init__(self, rate: float, burst: int, share: int = PORT_SHARE,
                 max_ports: int = MAX_PORT_BUCKETS, clock=time.monotonic):
        self.host = RateLimit(rate, burst, clock)
        self.port_rate = rate / share
        self.port_burst = max(1, burst // share)
        self.max_ports = max_ports
        self.clock = clock
        self.ports: dict = {}

    def allow(self, port) -> bool:
        bucket = self.ports.pop(port, None)  # (and back last: least recent first)
        if bucket is None:
            if len(self.ports) >= self.max_ports:
                self._forget_idle()
            bucket = RateLimit(self.port_rate, self.port_burst, self.clock)
        self.ports[port] = bucket
        if not bucket.allow():
            return False
        if self.host.allow():
            return True
        bucket.tokens += 1  # not answered: the port keeps its token
        return False

    def _forget_idle(self):
        now, rate, burst = self.clock(), self.port_rate, self.port_burst
        self.ports = {p: b for p, b in self.ports.items()
                      if b.tokens + (now - b.last) * rate < burst}
        if len(self.ports) >= self.max_ports:  # all busy: keep the recent half
            self.ports = dict(list(self.ports.items())[self.max_ports // 2:])


class DhcpDispatcher:
    def __init__(self, lease_time, lookup, send, stats: dict, routers=None,
                 icmp_rate: float = 100.0, icmp_burst: int = 50, neighbours=None,
                 metadata_route: bool = False, dns=None, domain: str | None = None):
        """``lookup(ofport)`` answers (port, network, subnets by id) of the
        local port on that ofport, or None; ``send(data, actions)`` sends a
        packet-out; replies are counted in ``stats["dhcp_replies"]``.
        ``routers()`` gives the routers of the host view (time exceeded
        and advertisements, counted in ``stats["icmp_time_exceeded"]`` and
        ``stats["ra_solicited"]``), at most ``icmp_rate`` a second (bursts
        of ``icmp_burst``) for the host, a quarter of that for one port.
        ``neighbours``: a NeighbourResolver (agent.responders.neighbours),
        given first the packets it may want (a packet for an unknown next
        hop on an external network, a neighbour's reply); its
        ``packet_in(pin)`` says whether the packet was its.
        ``metadata_route``: DHCP gives subnets without a router on their
        gateway the on-link route to 169.254.169.254.
        ``dns``: the DNS responder (agent.responders.dns) of the queries
        the pipeline punts; ``domain``: the DHCP domain of networks without
        a dns_domain."""
        self.routers = routers or (lambda: ())
        self.dhcp4 = DhcpResponder(lease_time=lease_time, metadata_route=metadata_route,
                                   domain=domain, advertise_dns=dns is not None,
                                   routers=self.routers)
        self.dhcp6 = Dhcp6Responder(lease_time=lease_time, domain=domain,
                                    advertise_dns=dns is not None)
        self.dns = dns
        self.lookup = lookup
        self.send = send
        self.stats = stats
        self.icmp_limit = PortRateLimit(icmp_rate, icmp_burst)
        self.trace_limit = RateLimit(1 / 60, 5)  # tracebacks logged
        self.neighbours = neighbours

    def packet_in(self, pin) -> None:
        try:
            self._answer(pin)
        except Exception:  # noqa: BLE001 - a bad packet never stops the agent
            if self.trace_limit.allow():  # a guest's packets never flood the log
                LOG.exception("packet-in handler failed")
            else:
                LOG.debug("packet-in handler failed", exc_info=True)

    def _count(self, key):
        self.stats[key] = self.stats.get(key, 0) + 1

    def _answer(self, pin):
        if pin.in_port is None or len(pin.data) < 14:
            return
        if pin.table == L3_ROUTE:  # the TTL punt (the only one of that table)
            # (any size a network's MTU allows, which has no upper bound:
            # only its head is read and quoted).  Back to the sending port:
            # reg5 when it is local (a hairpin to a floating IP served here
            # comes with in_port 0), else where it came in.
            src = pin.match.get(REG_SRC) if pin.match is not None else None
            port = src.value if src is not None and src.value else pin.in_port
            if self.icmp_limit.allow(port):
                reply = time_exceeded(pin.data, self.routers())
                if reply is not None:
                    self.send(reply, [Output(port)])
                    self._count("icmp_time_exceeded")
            return
        if len(pin.data) > MAX_FRAME:
            return
        if self.neighbours is not None and self.neighbours.packet_in(pin):
            return
        found = self.lookup(pin.in_port)
        if found is None:
            return
        port, network, subnets = found
        if len(pin.data) > (network.mtu or MAX_FRAME - ETH_OVERHEAD) + ETH_OVERHEAD:
            self._count("packet_in_oversized")
            LOG.debug("port %s: a %d-byte frame on a network of MTU %s: dropped",
                      port.id, len(pin.data), network.mtu)
            return
        # Only what the service punts sent: DHCP and router solicitations
        # from SERVICES, DNS to the network's resolver address from
        # L3_ADMIT.  A routed packet the neighbour resolver did not take
        # (L3_RESOLVE: a query to 8.8.8.8, a DHCP request to an outside
        # server) is nobody's here: answered, it would be forged in the
        # name of the address it went to.
        if pin.table == L3_ADMIT:
            if self.dns is not None and is_dns_query(pin.data):
                in_port = pin.in_port
                self.dns.handle(pin.data, port, subnets, network,
                                lambda frame: self.send(frame, [Output(in_port)]))
            return
        if pin.table != SERVICES:
            return
        if pin.data[12:14] == b"\x86\xdd" and len(pin.data) > 54 and pin.data[54] == 133:
            if self.icmp_limit.allow(pin.in_port):
                for reply in solicited_advertisements(pin.data, self.routers(), subnets,
                                                      network):
                    self.send(reply, [Output(pin.in_port)])
                    self._count("ra_solicited")
            return
        ethertype = int.from_bytes(pin.data[12:14], "big")
        responder = self.dhcp4 if ethertype == 0x0800 else \
            self.dhcp6 if ethertype == 0x86DD else None
        if responder is None:
            return
        reply = responder.handle(pin.data, port, subnets, network)
        if reply is not None:
            self.send(reply, [Output(pin.in_port)])
            self.stats["dhcp_replies"] = self.stats.get("dhcp_replies", 0) + 1
