"""ICMP time exceeded and router advertisements from the agent
(agent.responders.router), and their way through the packet-in dispatch.
Frames built and parsed with os-ken's packet library; checksums verified
here."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from os_ken.lib.packet import ethernet, icmp, icmpv6, ipv4, ipv6, packet, udp

from agent.openflow import encode as E
from agent.responders import router as R
from agent.responders.dhcp import checksum
from agent.responders.dispatch import DhcpDispatcher
from quantum_ovs import model
from quantum_ovs.compiler.flow import Field, Match, Output
from quantum_ovs.compiler.pipeline import L3_ROUTE

RMAC4 = "fa:16:3d:00:00:01"
RMAC6 = "fa:16:3d:00:00:02"
VM = "fa:16:3e:00:00:10"
RLL = "fe80::f816:3dff:fe00:2"  # EUI-64 of RMAC6
IFC4 = model.RouterInterface("rp1", "n1", "s1", "10.0.1.1", 24, RMAC4)
IFC4B = model.RouterInterface("rp1", "n1", "s1b", "10.0.9.1", 24, RMAC4)
IFC6 = model.RouterInterface("rp2", "n2", "s6", "fd00:2::1", 64, RMAC6)
ROUTER = model.Router("r1", interfaces=(IFC4B, IFC4, IFC6))
NET2 = model.Network("n2", model.Segment("vxlan", segmentation_id=7), mtu=1450)


def subnet6(mode, sid="s6", cidr="fd00:2::/64"):
    return model.Subnet(sid, "n2", cidr, ip_version=6, gateway_ip=cidr.split("/")[0] + "1",
                        ipv6_ra_mode=mode, ipv6_address_mode=mode)


def _frame(*protos) -> bytes:
    p = packet.Packet()
    for x in protos:
        p.add_protocol(x)
    p.serialize()
    return bytes(p.data)


def udp4(ttl=1, src="10.0.1.5", dst="10.0.2.7", payload=b"x" * 40):
    # as the router's flows leave it: Ethernet turned around by L3_ADMIT
    return _frame(ethernet.ethernet(dst=VM, src=RMAC4, ethertype=0x0800),
                  ipv4.ipv4(src=src, dst=dst, ttl=ttl, proto=17),
                  udp.udp(src_port=40000, dst_port=33434), payload)


def udp6(hlim=1, src="fd00:2::5", dst="fd00:3::7"):
    return _frame(ethernet.ethernet(dst=VM, src=RMAC6, ethertype=0x86DD),
                  ipv6.ipv6(src=src, dst=dst, hop_limit=hlim, nxt=17),
                  udp.udp(src_port=40000, dst_port=33434), b"y" * 20)


def _icmp6_ok(frame: bytes) -> None:
    ip = frame[14:]
    plen = int.from_bytes(ip[4:6], "big")
    pseudo = ip[8:40] + struct.pack("!I3xB", plen, 58)
    assert checksum(pseudo + ip[40:40 + plen]) == 0


# ------------------------------------------------------------ time exceeded
def test_ipv4_time_exceeded_from_the_ingress_interface_quoting_the_packet():
    orig = udp4()
    reply = R.time_exceeded(orig, [ROUTER])
    pkt = packet.Packet(reply)
    eth, ip, ic = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv4.ipv4), \
        pkt.get_protocol(icmp.icmp)
    assert (eth.src, eth.dst) == (RMAC4, VM)
    # the interface on the sender's subnet, not the other address of the port
    assert (ip.src, ip.dst, ip.proto) == ("10.0.1.1", "10.0.1.5", 1)
    assert (ic.type, ic.code) == (11, 0)
    ipb = reply[14:34]
    assert checksum(ipb) == 0
    assert checksum(reply[34:]) == 0
    assert reply[34 + 8:] == orig[14:]  # the whole (short) packet quoted


def test_ipv4_quote_is_bounded():
    reply = R.time_exceeded(udp4(payload=b"z" * 1400), [ROUTER])
    assert len(reply) - 14 <= 576


@pytest.mark.parametrize("frame", [
    _frame(ethernet.ethernet(dst=VM, src=RMAC4), ipv4.ipv4(src="10.0.1.5", dst="10.0.2.7",
                                                            ttl=1, proto=1),
           icmp.icmp(type_=3, code=1, data=icmp.dest_unreach(data=b"q" * 28))),
    udp4(src="0.0.0.0"),
    udp4(src="224.0.0.5"),
    _frame(ethernet.ethernet(dst=VM, src="fa:16:3e:99:99:99"),
           ipv4.ipv4(src="10.0.1.5", dst="10.0.2.7", ttl=1, proto=17), udp.udp(), b"x"),
    b"\x00" * 13,
], ids=["icmp-error", "unspecified-src", "multicast-src", "not-a-router-mac", "runt"])
def test_no_time_exceeded_for(frame):
    assert R.time_exceeded(frame, [ROUTER]) is None


def test_no_time_exceeded_from_a_router_that_is_down():
    down = model.Router("r1", admin_state_up=False, interfaces=ROUTER.interfaces)
    assert R.time_exceeded(udp4(), [down]) is None


def test_ipv6_time_exceeded():
    orig = udp6()
    reply = R.time_exceeded(orig, [ROUTER])
    pkt = packet.Packet(reply)
    ip, ic = pkt.get_protocol(ipv6.ipv6), pkt.get_protocol(icmpv6.icmpv6)
    assert (ip.src, ip.dst, ip.nxt) == ("fd00:2::1", "fd00:2::5", 58)
    assert (ic.type_, ic.code) == (3, 0)
    _icmp6_ok(reply)
    assert reply[14 + 40 + 8:] == orig[14:]


def test_no_ipv6_time_exceeded_for_an_icmpv6_error():
    err = _frame(ethernet.ethernet(dst=VM, src=RMAC6, ethertype=0x86DD),
                 ipv6.ipv6(src="fd00:2::5", dst="fd00:3::7", hop_limit=1, nxt=58),
                 icmpv6.icmpv6(type_=1, code=0, data=b"\0" * 4 + b"r" * 40))
    assert R.time_exceeded(err, [ROUTER]) is None


# ------------------------------------------------------------ advertisements
def _options(raw: bytes) -> dict:
    out = {}
    while raw:
        t, n = raw[0], raw[1] * 8
        assert n >= 8
        out[t] = raw[2:n]
        raw = raw[n:]
    return out


def _ra(frame):
    pkt = packet.Packet(frame)
    return pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv6.ipv6), \
        pkt.get_protocol(icmpv6.icmpv6)


@pytest.mark.parametrize("mode,m,o,a", [
    ("slaac", 0, 0, 1), ("dhcpv6-stateless", 0, 1, 1), ("dhcpv6-stateful", 1, 1, 0)])
def test_advertisement_flags_per_mode(mode, m, o, a):
    subs = {"s6": subnet6(mode)}
    (adv,) = R.advertisers([ROUTER], subs, "n2")
    frame = R.router_advertisement(adv, 1450)
    eth, ip, ic = _ra(frame)
    assert (eth.src, eth.dst) == (RMAC6, "33:33:00:00:00:01")
    assert (ip.src, ip.dst, ip.hop_limit) == (RLL, "ff02::1", 255)
    assert ic.type_ == 134
    _icmp6_ok(frame)
    body = frame[54:]
    assert (body[5] >> 7, body[5] >> 6 & 1) == (m, o)
    assert struct.unpack_from("!H", body, 6)[0] == R.ROUTER_LIFETIME
    opts = _options(body[16:])
    assert opts[1] == bytes.fromhex("fa163d000002")  # source link-layer
    assert struct.unpack("!xxI", opts[5]) == (1450,)  # MTU
    plen, pflags, valid, preferred, _, prefix = struct.unpack("!BBIII16s", opts[3])
    assert (plen, pflags >> 7, pflags >> 6 & 1) == (64, 1, a)
    assert ipaddress.IPv6Address(prefix) == ipaddress.IPv6Address("fd00:2::")
    assert valid >= preferred > 0


def test_no_advertisement_without_ra_mode_or_on_other_networks():
    assert R.advertisers([ROUTER], {"s6": subnet6(None)}, "n2") == []
    assert R.advertisers([ROUTER], {"s6": subnet6("slaac")}, "n1") == []


def _rs(src="fe80::f816:3eff:fe00:10", hlim=255):
    return _frame(ethernet.ethernet(dst="33:33:00:00:00:02", src=VM, ethertype=0x86DD),
                  ipv6.ipv6(src=src, dst="ff02::2", hop_limit=hlim, nxt=58),
                  icmpv6.icmpv6(type_=133, data=icmpv6.nd_router_solicit(
                      option=icmpv6.nd_option_sla(hw_src=VM))))


def test_solicited_advertisement_is_unicast_or_to_all_nodes():
    subs = {"s6": subnet6("slaac")}
    (r,) = R.solicited_advertisements(_rs(), [ROUTER], subs, NET2)
    eth, ip, _ = _ra(r)
    assert (eth.dst, ip.dst) == (VM, "fe80::f816:3eff:fe00:10")
    (r,) = R.solicited_advertisements(_rs("::"), [ROUTER], subs, NET2)
    eth, ip, _ = _ra(r)
    assert (eth.dst, ip.dst) == ("33:33:00:00:00:01", "ff02::1")
    assert R.solicited_advertisements(_rs(hlim=64), [ROUTER], subs, NET2) == []


# ------------------------------------------------------------ dispatch
OFPR_ACTION, OFPR_INVALID_TTL = 1, 2


class _Pin:
    def __init__(self, data, reason=OFPR_ACTION, in_port=5, table=20, match=None):
        self.data, self.reason, self.in_port, self.table = data, reason, in_port, table
        self.match = match if match is not None else Match(Field("in_port", in_port))


def _dispatcher(sent, rate=100.0, burst=50):
    port = model.Port("vm", "n2", VM)
    return DhcpDispatcher(60, lambda ofport: (port, NET2, {"s6": subnet6("slaac")}),
                          lambda data, actions: sent.append((data, actions)), {},
                          routers=lambda: (ROUTER,), icmp_rate=rate, icmp_burst=burst)


def test_ttl_punt_is_answered_out_of_its_port():
    sent = []
    d = _dispatcher(sent)
    d.packet_in(_Pin(udp4(), table=L3_ROUTE))
    assert len(sent) == 1 and sent[0][1] == [Output(5)]
    assert packet.Packet(sent[0][0]).get_protocol(icmp.icmp).type == 11
    assert d.stats["icmp_time_exceeded"] == 1
    d.packet_in(_Pin(udp4()))  # not punted by L3_ROUTE: not answered
    # the switch's own unmetered invalid-TTL packet-ins are not answered
    d.packet_in(_Pin(udp4(), reason=OFPR_INVALID_TTL))
    assert len(sent) == 1


def test_a_hairpinned_ttl_punt_is_answered_out_of_its_source_port():
    """A packet to a floating IP served on this host comes back into the
    router from the hairpin with in_port 0; its TTL punt names the sending
    port in reg5 (review s23b F5: the answer went to Output(0), nowhere,
    and every such sender shared port 0's token bucket)."""
    sent = []
    d = _dispatcher(sent)
    d.packet_in(_Pin(udp4(), table=L3_ROUTE, in_port=0,
                     match=Match(Field("in_port", 0), Field("reg5", 7))))
    assert len(sent) == 1 and sent[0][1] == [Output(7)]
    assert packet.Packet(sent[0][0]).get_protocol(icmp.icmp).type == 11


def test_ttl_punt_of_a_frame_longer_than_9216_is_answered():
    """A network's MTU has no upper bound: a 9,400-byte routed packet whose
    TTL ran out on a 9,500-MTU network gets its time exceeded (found by
    review: the dispatcher's size cap dropped it before the TTL branch);
    only its head is quoted."""
    sent = []
    d = _dispatcher(sent)
    d.packet_in(_Pin(udp4(payload=b"x" * 9400), table=L3_ROUTE))
    assert len(sent) == 1 and len(sent[0][0]) < 700
    assert packet.Packet(sent[0][0]).get_protocol(icmp.icmp).type == 11


def test_router_solicitation_packet_in_is_answered():
    sent = []
    d = _dispatcher(sent)
    d.packet_in(_Pin(_rs()))
    assert len(sent) == 1 and sent[0][1] == [Output(5)]
    assert _ra(sent[0][0])[2].type_ == 134


def test_answers_are_rate_limited():
    """A port gets a quarter of the host's burst, the host its burst."""
    sent = []
    d = _dispatcher(sent, rate=0.0001, burst=8)
    for in_port in (5, 6, 7, 8, 9):
        for _ in range(10):
            d.packet_in(_Pin(udp4(), in_port=in_port, table=L3_ROUTE))
    assert [a[0].port for _, a in sent] == [5, 5, 6, 6, 7, 7, 8, 8]


def test_one_port_cannot_spend_the_hosts_router_solicitation_budget():
    """60 RS from one port (within its meter: 50/s, burst 20) took every
    token of the host's (100/s, burst 50): another port's RS went
    unanswered."""
    sent = []
    ports = {5: model.Port("pa", "n2", VM), 6: model.Port("pv", "n2", VM)}
    d = DhcpDispatcher(60, lambda ofport: (ports[ofport], NET2, {"s6": subnet6("slaac")}),
                       lambda data, actions: sent.append((data, actions)), {},
                       routers=lambda: (ROUTER,))
    for _ in range(60):
        d.packet_in(_Pin(_rs(), in_port=5))
    attacker = len(sent)
    assert 0 < attacker <= 50 // 4
    d.packet_in(_Pin(_rs(), in_port=6))
    assert len(sent) == attacker + 1 and sent[-1][1] == [Output(6)]


def test_per_port_buckets_are_bounded_and_forget_idle_ports():
    from agent.responders.dispatch import PortRateLimit

    now = [0.0]
    limit = PortRateLimit(100.0, 40, max_ports=8, clock=lambda: now[0])
    assert limit.port_rate == 25.0 and limit.port_burst == 10
    for _ in range(10):
        assert limit.allow("busy")
    assert not limit.allow("busy")
    for p in range(100):  # ports come and go: memory stays bounded
        now[0] += 0.5  # (a bucket refills in 0.4 s)
        assert limit.allow(p)
        while limit.allow("busy"):  # ... while one keeps its bucket drained
            pass
        assert len(limit.ports) <= 8
    # the busy port was never forgotten (it would have had a full bucket);
    # the others, refilled, were
    assert "busy" in limit.ports and not limit.allow("busy")
    assert 0 not in limit.ports and 99 in limit.ports


def test_the_switch_sends_no_unmetered_invalid_ttl_packet_ins():
    raw = E.serialize(E.set_async(), 1)
    assert raw[1] == 28  # OFPT_SET_ASYNC
    master_pin = struct.unpack_from("!I", raw, 8)[0]
    assert not master_pin & (1 << OFPR_INVALID_TTL)
    assert master_pin & (1 << OFPR_ACTION)


# ------------------------------------------------------------ periodic (daemon)
def test_periodic_advertisements_go_to_local_ports_of_advertised_networks():
    from agent.daemon import Agent
    from quantum_ovs.compiler.engine import Engine

    net1 = model.Network("n1", model.Segment("vxlan", segmentation_id=6))
    s4 = model.Subnet("s1", "n1", "10.0.1.0/24", gateway_ip="10.0.1.1")
    vm2 = model.Port("vm2", "n2", VM, host="h")
    vm1 = model.Port("vm1", "n1", "fa:16:3e:00:00:11", host="h")
    view = model.HostView(host="h", networks=(net1, NET2), subnets=(s4, subnet6("slaac")),
                          ports=(vm1, vm2), routers=(ROUTER,),
                          chassis=model.Chassis((("vm1", 7), ("vm2", 8))))
    sent = []

    class _Ch:
        def packet_out(self, data, actions):
            sent.append((data, actions))

    agent = Agent.__new__(Agent)
    agent.engine, agent.channel, agent.stats = Engine.from_view(view), _Ch(), {}
    agent.vifs = {"vm1": 7, "vm2": 8}
    assert agent.send_router_advertisements() == 1
    (frame, actions), = sent
    assert actions == [Output(8)]
    eth, ip, ic = _ra(frame)
    assert (ip.src, ip.dst, ic.type_) == (RLL, "ff02::1", 134)
    assert agent.stats["ra_periodic"] == 1
