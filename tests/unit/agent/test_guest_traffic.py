"""The agent facing what instances send (responders, neighbour
resolution, metadata), found by a review (session 22); each test failed
before its fix:

- two learned external neighbours made every reconcile batch raise (the
  values were sorted, and Neighbour has no order): no flow change was
  applied any more, and the idle path killed the reconcile thread;
- a neighbour table full of learned entries evicted each new request's
  own entry at once, so no new next hop could be learned;
- a PTR name over 255 bytes (a network's domain grown after its ports'
  names were checked) logged a traceback per query and got no answer;
- a metadata request path with a control character or a byte beyond
  ASCII was answered 502 and logged as nova being unreachable.
"""

from __future__ import annotations

import logging

import dns.message
import dns.rcode
import dns.reversename
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.responders import dns as R
from quantum_ovs import model
from quantum_ovs.compiler import pipeline as P
from tests.unit.agent import test_dns as T
from tests.unit.agent import test_neighbours as N


# --------------------------------------------------------------------------
# NeighbourResolver.neighbours() sorts model.Neighbour values, which are
# not orderable: with two learned external neighbours it raises TypeError.
# The agent calls it in _chassis_wanted() on every reconcile batch
# (_sync_vifs) and on the idle path of _reconcile_loop (outside its try):
# one packet from an instance to an on-link external address that answers
# ARP (another router's gateway, a floating IP on another host), next to
# the learned external gateway, stops the host from applying any change.
def _two_learned():
    r, sent, changes, clock = N._resolver()
    # the external gateway (north-south traffic) ...
    assert r.packet_in(N._pin(N._ip_frame("203.0.113.10", "198.51.100.1")))
    r.packet_in(N._pin(N._arp_reply("203.0.113.1", N.UP_MAC, "203.0.113.10"),
                       table=P.SERVICES))
    # ... and one on-link address of the external subnet an instance sent to
    assert r.packet_in(N._pin(N._ip_frame("203.0.113.10", "203.0.113.77")))
    r.packet_in(N._pin(N._arp_reply("203.0.113.77", "52:54:00:00:00:77", "203.0.113.10"),
                       table=P.SERVICES))
    assert changes == [1, 1]  # each learned entry wakes the reconcile thread
    return r


def test_two_learned_external_neighbours_are_handed_to_the_engine():
    r = _two_learned()
    assert sorted(n.ip_address for n in r.neighbours()) == ["203.0.113.1", "203.0.113.77"]


@given(st.sets(st.integers(2, 250), max_size=6))
@settings(max_examples=30, deadline=None, derandomize=True)
def test_any_number_of_learned_neighbours_is_handed_to_the_engine(hosts):
    r, sent, _changes, clock = N._resolver()
    for h in sorted(hosts):
        ip = f"203.0.113.{h}"
        r.ask(N.EXT, ip, "203.0.113.10", N.GW_MAC)
        r.packet_in(N._pin(N._arp_reply(ip, f"52:54:00:00:02:{h:02x}", "203.0.113.10"),
                           table=P.SERVICES))
    assert {n.ip_address for n in r.neighbours()} == {f"203.0.113.{h}" for h in hosts}


def _idle_reconcile_loop(resolver):
    """The agent's reconcile loop on its idle path (nothing queued) with
    ``resolver``, for 1.6 s: (alive, the batches it handled)."""
    import queue
    import threading
    import time

    from agent.daemon import Agent

    agent = Agent.__new__(Agent)
    agent.stop_event, agent.events = threading.Event(), queue.Queue()
    agent.have_view, agent.gw_monitor, agent.vifs, agent.metadata_ofport = True, None, {}, 0
    agent.base_chassis = agent.chassis = model.Chassis()
    agent.resolver = resolver
    handled = []
    agent._handle = handled.append  # (the batch handling itself is not under test)
    t = threading.Thread(target=agent._reconcile_loop, daemon=True)
    t.start()
    time.sleep(1.6)  # the loop's idle timeout is 1 s without BFD
    alive = t.is_alive()
    agent.stop_event.set()
    agent.events.put(("stop", None))
    t.join(3)
    return alive, handled


def test_the_reconcile_thread_survives_two_learned_external_neighbours():
    alive, _ = _idle_reconcile_loop(_two_learned())
    assert alive, "the agent's reconcile thread died: no flow change is applied any more"


def test_the_reconcile_thread_survives_any_failure_of_its_idle_check():
    """Whatever the idle check raises, the loop logs it and resyncs
    instead of dying (it was outside the loop's try)."""
    class Broken:
        def neighbours(self):
            raise RuntimeError("broken")
    alive, handled = _idle_reconcile_loop(Broken())
    assert alive and [("resync", None)] in handled


def test_a_reconcile_batch_survives_two_learned_external_neighbours():
    """Every batch (a view, a delta, a plugged port) goes through
    _sync_vifs -> _chassis_wanted: with the TypeError the loop logs
    "reconcile failed; will dump and resync" and starts over every 0.2 s,
    installing nothing (new ports, removed rules and ports stay as they
    were on the switch)."""
    from agent.daemon import Agent
    from quantum_ovs.compiler.flow import FlowDiff

    agent = Agent.__new__(Agent)
    agent.gw_monitor, agent.vifs, agent.metadata_ofport = None, {}, 0
    agent.base_chassis = agent.chassis = model.Chassis()
    agent.resolver = _two_learned()
    given = []

    class _Engine:
        def set_chassis(self, ch):
            given.append(ch)
            return FlowDiff()

    agent.engine = _Engine()
    agent._sync_vifs()
    assert len(given) == 1 and len(given[0].neighbours) == 2


# --------------------------------------------------------------------------
# once the neighbour table holds max_entries learned neighbours, a new
# request's pending entry is the one _bound() evicts (pending before
# learned), at once: its answer finds no entry and is never learned.  An
# instance that makes the agent learn max_entries on-link external
# addresses (hosts that answer ARP; each refreshed while it answers) leaves
# every other next hop of the host unresolvable.
def _learned(r):
    return {ip: e.mac for (_net, ip), e in r._table.items() if e.mac}


def test_a_table_full_of_an_instances_neighbours_still_learns_a_new_next_hop():
    r, sent, _changes, clock = N._resolver(max_entries=4)  # (4096 by default)
    # An instance behind the router sends to on-link external addresses;
    # each is a host of the provider network that answers the agent's ARP.
    for i in range(4):
        clock.t += 1
        dst = f"203.0.113.{100 + i}"
        # (at L3_RESOLVE the packet is already SNATed to the gateway address)
        assert r.packet_in(N._pin(N._ip_frame("203.0.113.10", dst)))
        r.packet_in(N._pin(N._arp_reply(dst, f"52:54:00:00:01:{i:02x}", "203.0.113.10"),
                           table=P.SERVICES))
    assert len(_learned(r)) == 4
    # Another router's (another tenant's) first north-south packet: the
    # external gateway is asked for and answers.
    clock.t += 1
    assert r.packet_in(N._pin(N._ip_frame("203.0.113.10", "198.51.100.1")))
    assert N.packet.Packet(sent[-1][0]).get_protocol(N.arp.arp).dst_ip == "203.0.113.1"
    r.packet_in(N._pin(N._arp_reply("203.0.113.1", N.UP_MAC, "203.0.113.10"),
                       table=P.SERVICES))
    assert "203.0.113.1" in _learned(r), (
        "the external gateway answered but was not learned: the table is full of the "
        "neighbours an instance had the agent resolve, and the new request's own entry "
        "was evicted")


# --------------------------------------------------------------------------
# a PTR answer for a port whose published name is longer than 255
# bytes raises in encode_name; the DNS responder logs a full traceback at
# ERROR for every such query, unthrottled (the dispatcher's rate-limited
# traceback is bypassed), and the instance gets no answer.
class _Records(logging.Handler):
    """The log records at ``level`` or above."""

    def __init__(self, level):
        super().__init__(level)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_ptr_of_a_published_name_over_255_bytes_is_answered_without_a_traceback():
    # A 239-byte relative name is accepted with the default domain
    # (openstacklocal.: 239 + 1 + 15 = 255); the network's owner then sets a
    # long dns_domain (a network update does not check its ports' names).
    name = ".".join(["a" * 59] * 4)
    domain = ".".join(["b" * 60] * 3) + "."
    net = model.Network("net", T.NET.segment, dns_domain=domain)
    p = T.port("a", ["10.0.0.10"], name)
    z = R.build_zone(net, [p], T.SUBNETS.values(), "openstacklocal.")
    resp = R.DnsResponder(lambda n: z)
    q = dns.message.make_query(dns.reversename.from_address("10.0.0.10"), "PTR")
    errors = _Records(logging.ERROR)
    log = logging.getLogger("agent")
    log.addHandler(errors)
    out = []
    try:
        for _ in range(20):
            resp.handle(T.frame4(q.to_wire()), p, T.SUBNETS, net, out.append)
    finally:
        log.removeHandler(errors)
    assert errors.records == [], (
        f"{len(errors.records)} tracebacks at ERROR for 20 PTR queries: "
        f"{errors.records[0].getMessage()[:80]}... {errors.records[0].exc_info[1]!r:.60}")
    assert len(out) == 20  # each query is answered (NOERROR, NXDOMAIN or SERVFAIL)
    assert dns.message.from_wire(out[0][42:]).rcode() in (
        dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL)


# --------------------------------------------------------------------------
# a request path that http.client refuses (a control character: its
# InvalidURL is an HTTPException) is answered 502 and logged at WARNING as
# "nova metadata API ... unreachable", counted in upstream_errors, without
# nova being asked; a non-ASCII path (UnicodeEncodeError) gets no answer at
# all.  One instance can write thousands of false "nova unreachable"
# warnings a second (5,614 in 3 s from one sequential client here).
from tests.unit.agent.test_metadata_proxy import VM, _proxy, nova  # noqa: E402,F401


def _raw(port, data):
    import socket

    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


def test_a_bad_request_path_is_the_instances_error_not_novas(nova):  # noqa: F811
    from agent.metadata.proxy import Requester

    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"))
    warnings = _Records(logging.WARNING)
    log = logging.getLogger("agent")
    log.addHandler(warnings)
    try:
        answers = [_raw(port, b"GET /openstack/\x01 HTTP/1.0\r\n\r\n") for _ in range(50)]
        answers.append(_raw(port, b"GET /openstack/\xff HTTP/1.0\r\n\r\n"))
    finally:
        log.removeHandler(warnings)
        proxy.stop()
    assert nova.requests == []
    statuses = sorted({a.split(b" ", 2)[1] if a.startswith(b"HTTP/") else b"(none)"
                       for a in answers})
    assert statuses == [b"400"], f"answered {statuses}"
    assert proxy.stats["upstream_errors"] == 0
    assert [r.getMessage() for r in warnings.records] == []
