"""The agent's DNS responder: the wire format (checked with dnspython, not
the code under test), names of a network's ports, truncation, forwarding
and refusal, malformed queries; a hypothesis fuzz of the parser; and the
DHCP side (resolver, domain, extra options)."""

from __future__ import annotations

import dataclasses
import logging
import socket
import struct
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import dns.flags
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from os_ken.lib.packet import ethernet, ipv4, ipv6, packet, udp

from agent.responders import dns as R
from agent.responders import dns_wire as W
from agent.responders.dhcp_options import extra_options
from quantum_ovs import model
from tests.unit.agent import test_dhcp as d4
from tests.unit.agent.test_fuzz_parsers import OPS, mutate

NET = model.Network("net", model.Segment("vxlan", segmentation_id=42))
NET_B = model.Network("net-b", model.Segment("vxlan", segmentation_id=43))
SUB = model.Subnet("sub", "net", "10.0.0.0/24", gateway_ip="10.0.0.1")
SUB6 = model.Subnet("sub6", "net", "fd00::/64", 6, gateway_ip="fd00::1",
                    ipv6_address_mode="dhcpv6-stateful")
SUB_B = model.Subnet("sub-b", "net-b", "10.1.0.0/24", gateway_ip="10.1.0.1")
SUBNETS = {s.id: s for s in (SUB, SUB6, SUB_B)}
MAC = "fa:16:3e:00:00:10"
GW_MAC = "fa:16:3e:00:00:01"


def port(pid, ips, name="", net="net", mac=MAC, subnet="sub"):
    return model.Port(pid, net, mac, fixed_ips=tuple(
        model.FixedIP("sub6" if ":" in ip else subnet, ip) for ip in ips), dns_name=name)


PORTS = [
    port("a", ["10.0.0.10", "fd00::10"], "vm-a"),
    port("b", ["10.0.0.11"], "web"),
    port("c", ["10.0.0.12"], "web"),  # names are not unique
    port("d", ["10.0.0.13"]),  # host-10-0-0-13
    port("e", ["10.0.0.14"], "db.example.org."),
    port("x", ["10.1.0.10"], "other", net="net-b", subnet="sub-b"),
]


def zone(network=NET, domain="openstacklocal."):
    return R.build_zone(network, PORTS, SUBNETS.values(), domain)


def query(name, rdtype="A", edns=False, rd=True, qid=None):
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else None)
    if qid is not None:
        q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    return q


def ask(q, z=None):
    out = R.answer(W.parse_query(q.to_wire()), z or zone())
    return None if out is None else dns.message.from_wire(out)


def addrs(resp):
    return sorted(str(r) for rr in resp.answer for r in rr)


# ------------------------------------------------------------------ names
def test_a_and_aaaa_of_a_port():
    r = ask(query("vm-a.openstacklocal."))
    assert r.rcode() == dns.rcode.NOERROR and addrs(r) == ["10.0.0.10"]
    assert r.flags & dns.flags.AA and r.flags & dns.flags.QR
    r = ask(query("VM-A.OpenStackLocal.", "AAAA"))
    assert addrs(r) == ["fd00::10"]
    assert ask(query("vm-a.", "A")).answer  # bare host name


def test_shared_name_answers_all_addresses():
    assert addrs(ask(query("web.openstacklocal."))) == ["10.0.0.11", "10.0.0.12"]


def test_port_without_name_and_fqdn_name():
    assert addrs(ask(query("host-10-0-0-13.openstacklocal."))) == ["10.0.0.13"]
    # A fully qualified name outside the domain is not published (it would
    # be answered to every instance on the network): the port is known by
    # its address, as Neutron names it with the default domain.
    assert ask(query("db.example.org.")) is None  # not ours: forwarded
    assert addrs(ask(query("host-10-0-0-14.openstacklocal."))) == ["10.0.0.14"]


def test_network_domain_wins_over_the_default():
    z = zone(model.Network("net", NET.segment, dns_domain="corp.test."))
    assert addrs(ask(query("vm-a.corp.test."), z)) == ["10.0.0.10"]
    assert ask(query("vm-a.openstacklocal."), z) is None  # not ours: forwarded


def test_ptr():
    r = ask(query(dns.reversename.from_address("10.0.0.10"), "PTR"))
    assert [str(x) for rr in r.answer for x in rr] == ["vm-a.openstacklocal."]
    r = ask(query(dns.reversename.from_address("fd00::10"), "PTR"))
    assert [str(x) for rr in r.answer for x in rr] == ["vm-a.openstacklocal."]
    r = ask(query(dns.reversename.from_address("10.0.0.13"), "PTR"))
    assert [str(x) for rr in r.answer for x in rr] == ["host-10-0-0-13.openstacklocal."]


def test_unknown_names_of_the_network_and_other_networks():
    r = ask(query("nope.openstacklocal."))
    assert r.rcode() == dns.rcode.NXDOMAIN
    # Another network's port is not a name of this one.
    assert ask(query("other.openstacklocal.")).rcode() == dns.rcode.NXDOMAIN
    assert addrs(ask(query("other.openstacklocal."), zone(NET_B))) == ["10.1.0.10"]
    # A free address of the network's subnets: NXDOMAIN; outside them: not ours.
    assert ask(query(dns.reversename.from_address("10.0.0.99"), "PTR")).rcode() == \
        dns.rcode.NXDOMAIN
    assert ask(query(dns.reversename.from_address("8.8.8.8"), "PTR")) is None
    assert ask(query("example.com.")) is None


# The reviewer's cases (security review: DNS poisoning on a shared network,
# forwarding to a tenant's choice of upstream).
class Capture:
    """A forwarder that records where it was told to send."""

    def __init__(self):
        self.resolvers = None

    def submit(self, query, payload, resolvers, reply, max_size=None, key=None):
        self.resolvers = tuple(resolvers)
        return True


def test_tenant_chosen_nameserver_is_not_the_agents_upstream():
    sub = model.Subnet("sub", "net", "10.0.0.0/24", gateway_ip="10.0.0.1",
                       dns_nameservers=("127.0.0.53", "fd00::53"))
    fwd = Capture()
    resp = responder(resolvers=("192.0.2.53",), forwarder=fwd)
    # to 169.254.0.1, where the pipeline punts whatever DHCP handed out
    resp.handle(frame4(query("controller.mgmt.internal.").to_wire(), dst="169.254.0.1"),
                PORTS[0], {"sub": sub, "sub6": SUB6}, NET, lambda f: None)
    assert fwd.resolvers == ("192.0.2.53",)
    # The instance gets the subnet's own nameservers from DHCP and asks them.
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), subnets={"sub4": d4.subnet(
        dns_nameservers=("127.0.0.53",))}, advertise_dns=True))
    assert r.options[6] == d4.ip4("127.0.0.53")


def shared_zone(*named, network=NET, domain="openstacklocal."):
    victim = port("victim", ["10.0.0.10"])
    others = [port(f"p{i}", [f"10.0.0.{66 + i}"], name) for i, name in enumerate(named)]
    return R.build_zone(network, [victim] + others, SUBNETS.values(), domain)


def test_a_port_name_outside_the_domain_is_not_answered():
    """A tenant's port on a shared network named pypi.org. (a fully
    qualified name) or www.python.org (relative, with dots) answered the
    other tenants' instances for those names."""
    z = shared_zone("pypi.org.", "www.python.org", "PyPI.Org.")
    for name in ("pypi.org.", "www.python.org.", "python.org.", "org."):
        assert ask(query(name), z) is None, name  # forwarded upstream
        assert ask(query(name, "AAAA"), z) is None, name
    # The relative name is in the domain, and only there; the fully
    # qualified ones are known by their addresses.
    assert addrs(ask(query("www.python.org.openstacklocal."), z)) == ["10.0.0.67"]
    assert addrs(ask(query("host-10-0-0-66.openstacklocal."), z)) == ["10.0.0.66"]
    r = ask(query(dns.reversename.from_address("10.0.0.66"), "PTR"), z)
    assert [str(x) for rr in r.answer for x in rr] == ["host-10-0-0-66.openstacklocal."]
    assert all(R.under(n, "openstacklocal.") or "." not in n[:-1] for n in z.names)


def test_names_in_the_networks_domain():
    net = model.Network("net", NET.segment, dns_domain="corp.test.")
    z = shared_zone("db.corp.test.", "www.python.org", "api.other.test.", "corp.test.",
                    "vm1", network=net)
    assert addrs(ask(query("db.corp.test."), z)) == ["10.0.0.66"]
    assert addrs(ask(query("www.python.org.corp.test."), z)) == ["10.0.0.67"]
    assert addrs(ask(query("host-10-0-0-68.corp.test."), z)) == ["10.0.0.68"]
    assert addrs(ask(query("host-10-0-0-69.corp.test."), z)) == ["10.0.0.69"]
    assert addrs(ask(query("vm1."), z)) == ["10.0.0.70"]  # a single label: also bare
    for name in ("db.", "www.python.org.", "api.other.test.", "corp.test."):
        assert ask(query(name), z) is None, name
    # Without any domain, only single labels are names.
    z = shared_zone("www.python.org", "vm1", domain="")
    assert ask(query("www.python.org."), z) is None
    assert addrs(ask(query("host-10-0-0-66."), z)) == ["10.0.0.66"]
    assert addrs(ask(query("vm1."), z)) == ["10.0.0.67"]


def test_other_names_in_a_domain_the_owner_chose_are_forwarded():
    """A network's owner setting dns_domain com. hid every other .com name
    from the instances on it (NXDOMAIN); they are forwarded now.  The
    operator's domain (and those under it) stays the responder's own."""
    own = R.build_zone(NET, PORTS, SUBNETS.values(), "openstacklocal.")
    assert ask(query("nope.openstacklocal."), own).rcode() == dns.rcode.NXDOMAIN
    com = R.build_zone(model.Network("net", NET.segment, dns_domain="com."), PORTS,
                       SUBNETS.values(), "openstacklocal.")
    assert addrs(ask(query("web.com."), com)) == ["10.0.0.11", "10.0.0.12"]
    assert ask(query("example.com."), com) is None
    assert ask(query("com.", "SOA"), com) is None
    # the network's own addresses are still its own
    assert ask(query(dns.reversename.from_address("10.0.0.99"), "PTR"), com).rcode() == \
        dns.rcode.NXDOMAIN
    sub = R.build_zone(model.Network("net", NET.segment, dns_domain="Proj.OpenStackLocal"),
                       PORTS, SUBNETS.values(), "openstacklocal.")
    assert ask(query("nope.proj.openstacklocal."), sub).rcode() == dns.rcode.NXDOMAIN
    fwd = Capture()
    out = []
    R.DnsResponder(lambda n: com, resolvers=("192.0.2.53",), forwarder=fwd).handle(
        frame4(query("example.com.").to_wire()), PORTS[0], SUBNETS, NET, out.append)
    assert out == [] and fwd.resolvers == ("192.0.2.53",)


def test_known_name_other_type_is_nodata():
    r = ask(query("web.openstacklocal.", "MX"))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = ask(query("web.openstacklocal.", "AAAA"))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer


def test_rename_shows_in_a_new_zone():
    renamed = [p if p.id != "b" else model.Port("b", "net", MAC, p.fixed_ips, dns_name="api")
               for p in PORTS]
    z = R.build_zone(NET, renamed, SUBNETS.values(), "openstacklocal.")
    assert addrs(ask(query("web.openstacklocal."), z)) == ["10.0.0.12"]
    assert addrs(ask(query("api.openstacklocal."), z)) == ["10.0.0.11"]


def test_truncation_without_edns_and_room_with_it():
    many = [port(f"p{i}", [f"10.0.0.{i + 20}"], "big") for i in range(60)]
    z = R.build_zone(NET, many, SUBNETS.values(), "openstacklocal.")
    r = ask(query("big.openstacklocal."), z)  # 60 * 16 bytes > 512
    assert r.flags & dns.flags.TC and not r.answer
    r = ask(query("big.openstacklocal.", edns=True), z)
    assert not r.flags & dns.flags.TC and len(addrs(r)) == 60
    assert r.edns == 0


def test_answers_fit_the_networks_mtu():
    many = [port(f"p{i}", [f"fd00::{i + 20:x}"], "big") for i in range(100)]
    small = model.Network("net", NET.segment, mtu=1450)
    z = R.build_zone(small, many, SUBNETS.values(), "openstacklocal.")
    zones = {"net": z}
    resp = R.DnsResponder(lambda n: zones[n.id])
    out = []
    q = query("big.openstacklocal.", "AAAA", edns=True)  # 100 * 28 bytes > 1450
    resp.handle(frame4(q.to_wire()), PORTS[0], SUBNETS, small, out.append)
    r = dns.message.from_wire(out[0][42:])
    assert r.flags & dns.flags.TC and not r.answer and len(out[0]) <= 1450 + 14


def test_response_echoes_id_question_and_rd():
    q = query("vm-a.openstacklocal.", qid=4242, rd=False)
    raw = R.answer(W.parse_query(q.to_wire()), zone())
    r = dns.message.from_wire(raw)
    assert r.id == 4242 and not r.flags & dns.flags.RD
    assert r.question == q.question
    assert q.is_response(r)


# ------------------------------------------------------------------ wire
def test_parse_compressed_name_and_edns():
    q = query("vm-a.openstacklocal.", edns=True)
    p = W.parse_query(q.to_wire())
    assert (p.qname, p.qtype, p.edns_size) == ("vm-a.openstacklocal.", 1, q.payload)
    # A question name that ends with a pointer back into itself is a loop.
    hdr = struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0)
    looped = hdr + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(W.Malformed):
        W.parse_query(looped)
    forward = hdr + b"\xc0\x20" + b"\x00\x01\x00\x01" + b"\x00" * 30
    with pytest.raises(W.Malformed):
        W.parse_query(forward)
    # A pointer backwards into the header is followed: there, the id's
    # first byte (0) ends the name.
    assert W.parse_query(hdr + b"\xc0\x00" + b"\x00\x01\x00\x01").qname == "."
    # A chain of backward pointers is bounded (read_name on its own: a
    # query has no room for one before its question).
    buf = b"\x01a\x00" + b"".join(struct.pack("!H", 0xC000 | (0 if i == 0 else 3 + 2 * (i - 1)))
                                  for i in range(40))
    assert W.read_name(buf, 3 + 2 * 10)[0] == (b"a",)
    with pytest.raises(W.Malformed):
        W.read_name(buf, 3 + 2 * 39)


@pytest.mark.parametrize("raw", [
    b"", b"\x00" * 11,
    struct.pack("!HHHHHH", 1, 0x8100, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",  # a response
    struct.pack("!HHHHHH", 1, 0x100, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01",  # 2 questions
    struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x05ab",  # label past the end
    struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
    struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\x00" +
    b"\x00\x01\x00\x01",  # name > 255
    struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 1) + b"\x00\x00\x01\x00\x01" + b"\x00\x00\x29",
])
def test_malformed_queries_raise_malformed(raw):
    with pytest.raises(W.Malformed):
        W.parse_query(raw)


# ------------------------------------------------------------------ frames
def frame4(payload, src="10.0.0.10", dst="10.0.0.1", dport=53, vlan_id=None):
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=GW_MAC, src=MAC))
    p.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17))
    p.add_protocol(udp.udp(src_port=40000, dst_port=dport))
    p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def frame6(payload, src="fd00::10", dst="fd00::1"):
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=GW_MAC, src=MAC, ethertype=0x86DD))
    p.add_protocol(ipv6.ipv6(src=src, dst=dst, nxt=17))
    p.add_protocol(udp.udp(src_port=40000, dst_port=53))
    p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def responder(resolvers=(), forwarder=None):
    zones = {n.id: R.build_zone(n, PORTS, SUBNETS.values(), "openstacklocal.")
             for n in (NET, NET_B)}
    return R.DnsResponder(lambda n: zones[n.id], resolvers=resolvers, forwarder=forwarder)


def handle(resp, frame, p=PORTS[0]):
    out = []
    resp.handle(frame, p, SUBNETS, NET, out.append)
    return out


def test_frame_round_trip_v4_and_v6():
    q = query("web.openstacklocal.")
    assert R.is_dns_query(frame4(q.to_wire()))
    [reply] = handle(responder(), frame4(q.to_wire()))
    pkt = packet.Packet(reply)
    eth, ip, u = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4), \
        pkt.get_protocol(udp.udp)
    assert (eth.src, eth.dst) == (GW_MAC, MAC)
    assert (ip.src, ip.dst, u.src_port, u.dst_port) == ("10.0.0.1", "10.0.0.10", 53, 40000)
    assert d4.inet_sum(reply[14:34]) == 0xFFFF
    assert addrs(dns.message.from_wire(reply[42:])) == ["10.0.0.11", "10.0.0.12"]
    q6 = query("vm-a.openstacklocal.", "AAAA")
    assert R.is_dns_query(frame6(q6.to_wire()))
    [reply] = handle(responder(), frame6(q6.to_wire()))
    pkt = packet.Packet(reply)
    assert pkt.get_protocol(ipv6.ipv6).src == "fd00::1"
    assert addrs(dns.message.from_wire(reply[62:])) == ["fd00::10"]
    assert not R.is_dns_query(d4.client_frame(d4.DISCOVER))


def test_other_names_refused_without_resolvers():
    [reply] = handle(responder(), frame4(query("example.com.").to_wire()))
    assert dns.message.from_wire(reply[42:]).rcode() == dns.rcode.REFUSED


def test_admin_down_port_gets_nothing_and_malformed_is_dropped(caplog):
    down = model.Port("a", "net", MAC, PORTS[0].fixed_ips, admin_state_up=False)
    assert handle(responder(), frame4(query("web.openstacklocal.").to_wire()), down) == []
    with caplog.at_level(logging.ERROR, logger="agent"):
        assert handle(responder(), frame4(b"\x00\x01garbage")) == []
    assert not caplog.records


class Upstream:
    """A UDP DNS server on loopback answering every name with 192.0.2.1
    (and slowly, or never, when told: ``silent`` is True or a test of
    the query's name)."""

    def __init__(self, delay=0.0, silent=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.delay, self.silent, self.seen = delay, silent, []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            q = dns.message.from_wire(data)
            self.seen.append(q)
            if self.silent is True or (callable(self.silent) and
                                       self.silent(str(q.question[0].name))):
                continue
            time.sleep(self.delay)
            r = dns.message.make_response(q)
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A",
                                                "192.0.2.1"))
            self.sock.sendto(r.to_wire(), peer)

    def close(self):
        self.sock.close()


def _wait(out, n=1, timeout=5.0):
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        time.sleep(0.01)
    return out


def test_forwarded_to_upstream_without_blocking():
    up = Upstream(delay=0.3)
    fwd = R.Forwarder(workers=2, timeout=5.0, budget=5.0)
    try:
        resp = responder(resolvers=(up.addr,), forwarder=fwd)
        out = []
        resp.handle(frame4(query("example.com.", qid=777).to_wire()), PORTS[0], SUBNETS, NET,
                    out.append)
        # The packet-in path returned before the upstream (0.3 s) answered.
        assert out == []
        _wait(out)
        r = dns.message.from_wire(out[0][42:])
        assert r.id == 777 and addrs(r) == ["192.0.2.1"]
    finally:
        fwd.stop()
        up.close()


def test_dead_upstream_servfails():
    dead = Upstream(silent=True)
    fwd = R.Forwarder(workers=1, timeout=0.2, budget=0.5)
    try:
        resp = responder(resolvers=(dead.addr,), forwarder=fwd)
        out = []
        resp.handle(frame4(query("example.com.").to_wire()), PORTS[0], SUBNETS, NET,
                    out.append)
        _wait(out)
        assert dns.message.from_wire(out[0][42:]).rcode() == dns.rcode.SERVFAIL
        assert dead.seen
    finally:
        fwd.stop()
        dead.close()


def test_subnet_nameservers_are_never_asked_by_the_agent():
    """A subnet's dns_nameservers are its owner's to choose (127.0.0.53,
    a management network's server); the agent would ask them from the
    hypervisor's namespace.  Only the operator's resolvers are asked."""
    tenant = Upstream()
    operator = Upstream()
    fwd = R.Forwarder(workers=1, timeout=1.0, budget=2.0)
    try:
        sub = model.Subnet("sub", "net", "10.0.0.0/24", gateway_ip="10.0.0.1",
                           dns_nameservers=(tenant.addr,))
        subnets = {"sub": sub}
        out = []
        responder(resolvers=(operator.addr,), forwarder=fwd).handle(
            frame4(query("example.com.").to_wire()), PORTS[0], subnets, NET, out.append)
        _wait(out)
        assert addrs(dns.message.from_wire(out[0][42:])) == ["192.0.2.1"]
        assert operator.seen and not tenant.seen
        # Without the operator's: refused, the subnet's are still not asked.
        out = []
        responder(forwarder=fwd).handle(frame4(query("example.com.").to_wire()), PORTS[0],
                                        subnets, NET, out.append)
        assert dns.message.from_wire(out[0][42:]).rcode() == dns.rcode.REFUSED
        time.sleep(0.2)
        assert not tenant.seen
    finally:
        fwd.stop()
        tenant.close()
        operator.close()


def test_forwarder_queue_is_bounded():
    fwd = R.Forwarder(workers=0, max_pending=2)
    q = W.parse_query(query("example.com.").to_wire())
    # (three ports of no project: each a project of its own, under its share)
    assert [fwd.submit(q, b"", ("127.0.0.1",), lambda p: None, key=("", f"p{i}"))
            for i in range(3)] == [True, True, False]
    assert fwd.stats["dns_forward_dropped"] == 1


def _rcode(frame):
    return dns.message.from_wire(frame[42:]).rcode()


def test_one_port_cannot_starve_the_hosts_dns_forwarding():
    """Security review: the forwarder's workers and queue are the host's.
    One instance asking, within its punt meter (a burst of 70), for names
    whose servers never answer held every worker and queued ahead of
    everyone: another network's instance asking for a name its upstream
    answers at once got SERVFAIL.  Now a port has 8 queries outstanding
    (the rest SERVFAIL at once), 2 of the 4 workers, and waits its turn."""
    up = Upstream(silent=lambda name: name.endswith(".slow.attacker."))
    fwd = R.Forwarder(stats={}, timeout=0.3, budget=0.75)  # the daemon's, faster
    attacker, victim = PORTS[0], PORTS[5]
    mine, theirs = [], []
    try:
        resp = responder(resolvers=(up.addr,), forwarder=fwd)
        for i in range(70):
            resp.handle(frame4(query(f"x{i}.slow.attacker.").to_wire()), attacker, SUBNETS,
                        NET, mine.append)
        at_once = list(mine)
        t0 = time.monotonic()
        resp.handle(frame4(query("www.fast.example.").to_wire(), src="10.1.0.10",
                           dst="10.1.0.1"), victim, SUBNETS, NET_B, theirs.append)
        _wait(theirs, timeout=2.0)
        elapsed = time.monotonic() - t0
        assert theirs, "the victim's query was dropped"
        assert _rcode(theirs[0]) == dns.rcode.NOERROR
        assert addrs(dns.message.from_wire(theirs[0][42:])) == ["192.0.2.1"]
        # on a worker the attacker cannot take: not after its 0.3 s queries
        assert elapsed < 0.25, elapsed
        # past its 8: SERVFAIL at once, on the packet-in path
        assert len(at_once) == 62 and {_rcode(f) for f in at_once} == {dns.rcode.SERVFAIL}
        assert fwd.stats["dns_forward_limited"] == 62
        # the attacker's 8 are still resolved (here: SERVFAIL, upstream silent)
        _wait(mine, 70, timeout=3.0)
        assert len(mine) == 70 and fwd.stats["dns_forward_failed"] == 8
    finally:
        fwd.stop()
        up.close()


class _Gated(R.Forwarder):
    """Resolves nothing: records the order of the queries (their port
    and name), the first held until ``gate`` is set."""

    def __init__(self, **kw):
        self.gate, self.order = threading.Event(), []
        super().__init__(**kw)

    def resolve(self, job):
        if not self.order:
            self.order.append(None)
            self.gate.wait(5)
            self.order[0] = (job.key, job.query.qname)
        else:
            self.order.append((job.key, job.query.qname))
        return W.build_response(job.query, W.NOERROR)


def test_forwarder_serves_the_ports_in_turn():
    fwd = _Gated(workers=1, per_port=4)
    out = []

    def ask(key, name):
        return fwd.submit(W.parse_query(query(name).to_wire()), b"", ("127.0.0.1",),
                          out.append, key=key)
    try:
        assert [ask("a", f"a{i}.") for i in range(5)] == [True] * 4 + [False]
        first = dns.message.from_wire(out[0])
        assert str(first.question[0].name) == "a4." and first.rcode() == dns.rcode.SERVFAIL
        assert ask("b", "b0.") and ask("b", "b1.") and ask("c", "c0.")
        fwd.gate.set()
        _wait(out, 1 + 7)
        assert [name for _, name in fwd.order] == \
            ["a0.", "b0.", "c0.", "a1.", "b1.", "a2.", "a3."]
        # a port's share is free again once its queries are answered
        assert ask("a", "a5.")
        _wait(out, 1 + 8)
        assert fwd.order[-1] == ("a", "a5.")
    finally:
        fwd.gate.set()
        fwd.stop()


def _project_ports(project, n, port=PORTS[0]):
    return [dataclasses.replace(port, id=f"{project}-{i}", project_id=project)
            for i in range(n)]


def _flood(resp, ports, mine):
    """Each of ``ports`` asks 8 names whose servers never answer (its
    share)."""
    frames = [frame4(query(f"x{i}.slow.attacker.").to_wire()) for i in range(8)]
    for p in ports:
        for f in frames:
            resp.handle(f, p, SUBNETS, NET, mine.append)


def _victim_asks(resp, theirs, project="good"):
    """Another project's instance asks a name its upstream answers at
    once; the seconds until the answer (None: none within 2 s)."""
    victim = dataclasses.replace(PORTS[5], project_id=project)
    t0 = time.monotonic()
    resp.handle(frame4(query("www.fast.example.").to_wire(), src="10.1.0.10",
                       dst="10.1.0.1"), victim, SUBNETS, NET_B, theirs.append)
    _wait(theirs, timeout=2.0)
    if not theirs:
        return None
    assert _rcode(theirs[0]) == dns.rcode.NOERROR
    assert addrs(dns.message.from_wire(theirs[0][42:])) == ["192.0.2.1"]
    return time.monotonic() - t0


def test_one_project_with_many_ports_cannot_delay_anothers_dns_forwarding():
    """Per-port shares bound one instance, not one project: 12 instances
    of one project, each within its share (8 queries, 2 workers), asking
    for names whose servers never answer, held all 4 workers, and another
    project's query waited its port's turn behind the 12 (here until
    their queued queries' 0.75 s budget ran out).  Now a project holds at
    most half the workers: the other's query finds a free one."""
    up = Upstream(silent=lambda name: name.endswith(".slow.attacker."))
    fwd = R.Forwarder(stats={}, timeout=0.3, budget=0.75)  # the daemon's, faster
    mine, theirs = [], []
    try:
        resp = responder(resolvers=(up.addr,), forwarder=fwd)
        _flood(resp, _project_ports("evil", 12), mine)
        assert mine == []  # all within the shares: queued
        _wait(up.seen, 2)
        elapsed = _victim_asks(resp, theirs)
        assert elapsed is not None and elapsed < 0.25, elapsed
    finally:
        fwd.stop()
        up.close()


def test_busy_projects_delay_anothers_query_by_one_job_at_most():
    """Two projects with many instances asking for names that never
    resolve take all 4 workers between them (2 each); a third project's
    query waits for the first worker to free (one job: 0.5 s here), not
    for the turns of their 24 ports (until their queries' 2 s budget ran
    out)."""
    up = Upstream(silent=lambda name: name.endswith(".slow.attacker."))
    fwd = R.Forwarder(stats={}, timeout=0.5, budget=2.0)
    mine, theirs = [], []
    try:
        resp = responder(resolvers=(up.addr,), forwarder=fwd)
        _flood(resp, _project_ports("evil", 12) + _project_ports("worse", 12), mine)
        _wait(up.seen, 4)  # every worker taken
        elapsed = _victim_asks(resp, theirs)
        assert elapsed is not None and elapsed < 0.5 + 0.3, elapsed
    finally:
        fwd.stop()
        up.close()


def test_one_project_cannot_fill_the_dns_forwarding_queue():
    """40 instances of one project, 8 queries each (within their
    shares), asking again as room freed, filled the host's 256 waiting
    queries: another project's query was dropped.  Now a project has at
    most half of them waiting (the rest SERVFAIL at once)."""
    up = Upstream(silent=lambda name: name.endswith(".slow.attacker."))
    fwd = R.Forwarder(stats={}, timeout=0.3, budget=0.75)
    mine, theirs = [], []
    try:
        resp = responder(resolvers=(up.addr,), forwarder=fwd)
        evil = _project_ports("evil", 40)
        _flood(resp, evil, mine)
        _wait(up.seen, 2)  # on the workers it may take
        _flood(resp, evil, mine)  # and again, into the room they left
        at_once = list(mine)
        elapsed = _victim_asks(resp, theirs)
        assert elapsed is not None, "the other project's query was dropped"
        assert elapsed < 0.25, elapsed
        assert "dns_forward_dropped" not in fwd.stats
        # 128 wait, 2 are on a worker: (about) the rest answered at once
        assert len(at_once) >= 640 - 128 - 4
        assert {_rcode(f) for f in at_once} == {dns.rcode.SERVFAIL}
    finally:
        fwd.stop()
        up.close()


def test_forwarder_serves_the_projects_in_turn():
    """Projects take turns, then the ports within a project: project p's
    three ports get the turns of project q's one."""
    fwd = _Gated(workers=1)
    out = []

    def ask(project, port, name):
        return fwd.submit(W.parse_query(query(name).to_wire()), b"", ("127.0.0.1",),
                          out.append, key=(project, port))
    try:
        for port in "abc":
            assert ask("p", port, f"{port}0.") and ask("p", port, f"{port}1.")
        assert all(ask("q", "x", f"x{i}.") for i in range(3))
        fwd.gate.set()
        _wait(out, 9)
        assert [name for _, name in fwd.order] == \
            ["a0.", "x0.", "b0.", "x1.", "c0.", "x2.", "a1.", "b1.", "c1."]
        assert fwd.order[1] == (("q", "x"), "x0.")
    finally:
        fwd.gate.set()
        fwd.stop()


def test_a_projects_waiting_queries_are_bounded_by_half_the_queue():
    fwd = R.Forwarder(workers=0, max_pending=8)
    out = []

    def ask(key):
        return fwd.submit(W.parse_query(query("example.com.").to_wire()), b"",
                          ("127.0.0.1",), out.append, key=key)
    # p's 6 ports, one query each: 4 wait, the others are answered SERVFAIL
    assert [ask(("p", i)) for i in range(6)] == [True] * 4 + [False] * 2
    assert [dns.message.from_wire(f).rcode() for f in out] == [dns.rcode.SERVFAIL] * 2
    # while q's still find room, up to the host's bound
    assert [ask(("q", i)) for i in range(4)] == [True] * 4
    assert not ask(("r", 0)) and fwd.stats["dns_forward_dropped"] == 1
    assert fwd.stats["dns_forward_limited"] == 2 and len(out) == 2
    # ports of no known project: each a project of its own
    fwd = R.Forwarder(workers=0, max_pending=8)
    assert [ask(("", "u1")) for _ in range(5)] == [True] * 4 + [False]
    assert [ask(("", "u2")) for _ in range(4)] == [True] * 4


# ------------------------------------------------------------------ fuzz
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = [query("vm-a.openstacklocal.").to_wire(), query("web.openstacklocal.", edns=True).to_wire(),
         query(dns.reversename.from_address("10.0.0.10"), "PTR").to_wire()]


def _check(raw):
    try:
        q = W.parse_query(raw)
    except W.Malformed:
        return
    out = R.answer(q, zone())
    if out is not None:
        r = dns.message.from_wire(out)  # well-formed for an independent parser
        assert len(out) <= q.max_size
        for rr in r.answer:
            for x in rr:
                assert "10.1.0.10" not in str(x)  # never another network's port


@SETTINGS
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(raw):
    _check(raw)


@SETTINGS
@given(st.sampled_from(SEEDS), OPS)
def test_fuzz_mutated_queries(raw, ops):
    _check(mutate(raw, ops))


@SETTINGS
@given(st.sampled_from(SEEDS), OPS)
def test_fuzz_frames_never_log_errors(raw, ops):
    h = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = h.append
    logging.getLogger("agent").addHandler(handler)
    try:
        handle(responder(), mutate(frame4(raw), ops))
    finally:
        logging.getLogger("agent").removeHandler(handler)
    assert not h


# ------------------------------------------------------------------ DHCP side
def test_dhcp_advertises_the_resolver_and_network_domain():
    sub = d4.subnet(dns_nameservers=())
    net = model.Network("net", NET.segment, dns_domain="corp.test.")
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), subnets={"sub4": sub}, network=net,
                           advertise_dns=True, domain="openstacklocal"))
    assert r.options[6] == d4.ip4("169.254.0.1") and r.options[15] == b"corp.test"
    # On link, and the default route that option 121 must then carry.
    assert r.options[121] == bytes((32, 169, 254, 0, 1, 0, 0, 0, 0, 0)) + d4.ip4(d4.GW)
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), advertise_dns=True,
                           domain="openstacklocal"))
    assert r.options[6] == bytes((8, 8, 8, 8, 192, 168, 1, 2))
    assert r.options[15] == b"openstacklocal"


def test_dhcp_gatewayless_subnet_gets_an_on_link_route_to_the_resolver():
    sub = d4.subnet(dns_nameservers=(), gateway_ip=None)
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), subnets={"sub4": sub},
                           advertise_dns=True))
    assert r.options[6] == d4.ip4("169.254.0.1")
    assert r.options[121] == bytes((32, 169, 254, 0, 1, 0, 0, 0, 0))
    assert 3 not in r.options


def _opts(*items):
    return tuple(model.DhcpOption(n, v, ver) for n, v, ver in items)


def test_dhcp_extra_options_pxe():
    p = d4.port(extra_dhcp_opts=_opts(("bootfile-name", "pxelinux.0", 4),
                                      ("tftp-server", "192.168.1.5", 4),
                                      ("server-ip-address", "192.168.1.5", 4),
                                      ("mtu", "9000", 4), ("42", "192.168.1.7", 4),
                                      ("dns-server", "1.1.1.1,1.0.0.1", 4),
                                      ("bootfile-url", "http://x/y", 6)))
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), p))
    o = r.options
    assert o[67] == b"pxelinux.0" and o[66] == b"192.168.1.5"
    assert r.siaddr == d4.ip4("192.168.1.5")
    assert o[26] == struct.pack("!H", 9000)  # replaces the network's
    assert o[42] == d4.ip4("192.168.1.7")
    assert o[6] == d4.ip4("1.1.1.1") + d4.ip4("1.0.0.1")
    assert r.frame[42 + 108:42 + 118] == b"pxelinux.0"  # BOOTP file field
    assert [c for c, _ in r.option_list].count(26) == 1


def test_dhcp_extra_options_ipxe_tags_and_bad_values():
    p = d4.port(extra_dhcp_opts=_opts(("tag:!ipxe,67", "undionly.kpxe", 4),
                                      ("tag:ipxe,67", "http://boot/boot.ipxe", 4),
                                      ("tag:other,66", "x", 4),
                                      ("mtu", "not-a-number", 4), ("nonsense", "1", 4),
                                      ("router", "", 4)))
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), p))
    assert r.options[67] == b"undionly.kpxe" and 66 not in r.options
    assert r.options[26] == struct.pack("!H", 1450)  # a bad value is left out
    assert 3 not in r.options  # an empty router: none
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER, options=[(77, b"iPXE")]), p))
    assert r.options[67] == b"http://boot/boot.ipxe"


def test_dhcp6_extra_options():
    p = model.Port("p", "net", MAC, extra_dhcp_opts=_opts(
        ("bootfile-url", "tftp://[fd00::5]/boot", 6), ("dns-server", "fd00::53", 6),
        ("bootfile-name", "v4only", 4)))
    e = extra_options(p, 6)
    assert dict(e.options) == {59: b"tftp://[fd00::5]/boot",
                               23: bytes.fromhex("fd00" + "00" * 12 + "0053")}


PXE_PORT = d4.port(extra_dhcp_opts=_opts(("tag:!ipxe,67", "undionly.kpxe", 4),
                                         ("tag:ipxe,bootfile-name", "http://x/boot.ipxe", 4),
                                         ("tftp-server", "192.168.1.5", 4),
                                         ("server-ip-address", "192.168.1.5", 4),
                                         ("classless-static-route", "10.9.0.0/16,192.168.1.1",
                                          4),
                                         ("119", "a.test,b.test", 4)))


@SETTINGS
@given(st.sampled_from([d4.client_frame(d4.DISCOVER),
                        d4.client_frame(d4.DISCOVER, options=[(77, b"iPXE")]),
                        d4.client_frame(d4.REQUEST, options=[(50, d4.ip4(d4.IP)),
                                                             (54, d4.ip4(d4.GW))])]), OPS)
def test_fuzz_dhcp_with_extra_options(frame, ops):
    h = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = h.append
    logging.getLogger("agent").addHandler(handler)
    try:
        reply = d4.answer(mutate(frame, ops), PXE_PORT, advertise_dns=True)
    finally:
        logging.getLogger("agent").removeHandler(handler)
    assert not h
    if reply is not None:
        r = d4.Reply(reply)
        assert r.options.get(67) in (b"undionly.kpxe", b"http://x/boot.ipxe")
