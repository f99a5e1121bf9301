"""External neighbours: the frames (checked with os-ken's independent
parser), the resolver's decisions and its table, and the announcements."""

from __future__ import annotations

from os_ken.lib.packet import arp, ethernet, icmpv6, ipv4, ipv6, packet, vlan

from agent.openflow.encode import PacketIn
from agent.responders import neighbours as nb
from quantum_ovs import model as m
from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Field, Match, Output
from quantum_ovs.compiler.rules.neighbours import (
    RANK_FLOATING_IP,
    NeighbourSource,
    neighbour_reply_flows,
)

EXT = "ext-net"
GW_MAC, FIP_MAC, UP_MAC = "fa:16:3e:00:00:02", "fa:16:3e:00:00:10", "52:54:00:aa:bb:cc"


# ------------------------------------------------------------------ frames
def test_arp_request_tagged():
    frame = nb.arp_request(GW_MAC, "203.0.113.10", "203.0.113.1", vlan=42)
    pkt = packet.Packet(frame)
    eth, tag, a = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(vlan.vlan), \
        pkt.get_protocol(arp.arp)
    assert eth.dst == "ff:ff:ff:ff:ff:ff" and eth.src == GW_MAC
    assert tag.vid == 42
    assert (a.opcode, a.src_mac, a.src_ip, a.dst_ip) == (1, GW_MAC, "203.0.113.10",
                                                         "203.0.113.1")


def test_gratuitous_arp_says_its_own_address():
    a = packet.Packet(nb.gratuitous_arp(FIP_MAC, "203.0.113.20")).get_protocol(arp.arp)
    assert (a.opcode, a.src_mac, a.src_ip, a.dst_ip) == (1, FIP_MAC, "203.0.113.20",
                                                         "203.0.113.20")


def _check_icmp6(frame):
    """os-ken parses it and the checksum is right (recomputed equal)."""
    pkt = packet.Packet(frame)
    ip6, icmp = pkt.get_protocol(ipv6.ipv6), pkt.get_protocol(icmpv6.icmpv6)
    raw = frame[14 + 40:]
    zeroed = raw[:2] + b"\0\0" + raw[4:]
    from agent.responders.dhcp import checksum
    import ipaddress
    import struct
    pseudo = ipaddress.IPv6Address(ip6.src).packed + ipaddress.IPv6Address(ip6.dst).packed + \
        struct.pack("!I3xB", len(raw), 58)
    assert checksum(pseudo + zeroed) == icmp.csum
    assert ip6.hop_limit == 255
    return pkt, ip6, icmp


def test_neighbour_solicitation():
    pkt, ip6, icmp = _check_icmp6(nb.neighbour_solicitation(GW_MAC, "2001:db8::10",
                                                            "2001:db8::1"))
    eth = pkt.get_protocol(ethernet.ethernet)
    assert eth.dst == "33:33:ff:00:00:01" and ip6.dst == "ff02::1:ff00:1"
    assert icmp.type_ == 135 and icmp.data.dst == "2001:db8::1"
    assert icmp.data.option.hw_src == GW_MAC


def test_unsolicited_advertisement_overrides():
    _, ip6, icmp = _check_icmp6(nb.unsolicited_advertisement(FIP_MAC, "2001:db8::20"))
    assert ip6.dst == "ff02::1" and icmp.type_ == 136
    assert icmp.data.dst == "2001:db8::20" and icmp.data.option.hw_src == FIP_MAC
    assert icmp.data.res & 0x1  # O flag (os-ken keeps R S O in the 3 bits)


def _arp_reply(spa, sha, tpa, tha=GW_MAC, vid=None):
    e = ethernet.ethernet(tha, sha, 0x8100 if vid else 0x0806)
    pkt = packet.Packet()
    pkt.add_protocol(e)
    if vid:
        pkt.add_protocol(vlan.vlan(vid=vid, ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=2, src_mac=sha, src_ip=spa, dst_mac=tha, dst_ip=tpa))
    pkt.serialize()
    return bytes(pkt.data)


def _na(target, mac, dst="2001:db8::10", hop=255, eth_dst=GW_MAC, src=None, tll=None):
    """A neighbour advertisement for ``target`` from ``mac`` (its target
    link-layer address ``tll``, by default ``mac``)."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(eth_dst, mac, 0x86DD))
    pkt.add_protocol(ipv6.ipv6(src=src or target, dst=dst, nxt=58, hop_limit=hop))
    pkt.add_protocol(icmpv6.icmpv6(type_=136, data=icmpv6.nd_neighbor(
        res=3, dst=target, option=icmpv6.nd_option_tla(hw_src=tll or mac))))
    pkt.serialize()
    return bytes(pkt.data)


def test_parse_replies():
    assert nb.parse_reply(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.10", vid=42)) == \
        nb.Reply("203.0.113.1", UP_MAC, "203.0.113.10")
    assert nb.parse_reply(_na("2001:db8::1", UP_MAC)) == \
        nb.Reply("2001:db8::1", UP_MAC, "2001:db8::10")
    assert nb.parse_reply(_na("2001:db8::1", UP_MAC, hop=64)) is None  # not on-link
    assert nb.parse_reply(nb.arp_request(GW_MAC, "203.0.113.10", "203.0.113.1")) is None
    assert nb.parse_reply(b"\x00" * 20) is None
    assert nb.parse_reply(_arp_reply("203.0.113.1", "01:00:5e:00:00:01", "203.0.113.10")) \
        is None  # a multicast MAC is nobody's


# ------------------------------------------------------------------ resolver
ROUTER = m.Router(
    id="r1",
    interfaces=(m.RouterInterface("rif", "in", "sub-in", "10.0.0.1", 24, "fa:16:3e:00:00:01"),),
    gateway=m.RouterGateway(EXT, "gwp", GW_MAC, ("203.0.113.10", "2001:db8::10"),
                            hosts=("hv2", "hv3")),
    floating_ips=(m.FloatingIP("fip1", "203.0.113.20", EXT, "vm1", "10.0.0.5", FIP_MAC),
                  m.FloatingIP("fip2", "203.0.113.21", EXT, "vm2", "10.0.0.6",
                               "fa:16:3e:00:00:11")))
NETWORKS = {EXT: m.Network(EXT, m.Segment("vlan", "physnet1", 42), local_id=7),
            "in": m.Network("in", m.Segment("vxlan", None, 100), local_id=8)}
SUBNETS = (m.Subnet("s4", EXT, "203.0.113.0/24", gateway_ip="203.0.113.1"),
           m.Subnet("s6", EXT, "2001:db8::/64", 6, gateway_ip="2001:db8::1"),
           m.Subnet("sub-in", "in", "10.0.0.0/24"))
PORTS = {"vm1": m.Port("vm1", "in", FIP_MAC, host="hv1"),
         "vm2": m.Port("vm2", "in", "fa:16:3e:00:00:11", host="hv9")}
COOKIE = cookies.cookie_for(cookies.KIND_ROUTER, "r1")


# hv1 as one of the router's gateway hosts (the active one), with fip1's
# port: where the resolver tests run
ROUTER_HERE = m.Router(ROUTER.id, interfaces=ROUTER.interfaces,
                       gateway=m.RouterGateway(EXT, "gwp", GW_MAC,
                                               ("203.0.113.10", "2001:db8::10"),
                                               hosts=("hv1", "hv3")),
                       floating_ips=ROUTER.floating_ips)


def _sources(host, router, ports=PORTS):
    """As Engine.neighbour_sources names them (the engine's own are
    checked against its flows in test_neighbour_answers): the gateway's
    addresses on its gateway hosts, the floating IPs whose port is here."""
    gw = router.gateway
    out = []
    if host in gw.hosts:
        rank = 0 if gw.hosts[0] == host else 1
        out += [NeighbourSource(a, gw.mac_address, router.id, None, rank)
                for a in gw.ip_addresses]
    out += [NeighbourSource(f.floating_ip_address, f.mac_address, router.id,
                            f.fixed_ip_address, 2)
            for f in router.floating_ips if ports[f.port_id].host == host]
    return {EXT: tuple(out)} if out else {}


def _ctx(host="hv1", router=ROUTER, subnets=SUBNETS, ports=PORTS):
    return nb.build_context(host, [router], NETWORKS, subnets, ports,
                            lambda nid: NETWORKS[nid].local_id if nid in NETWORKS else None,
                            {"physnet1": 3}, _sources(host, router, ports))


def test_context():
    ctx = _ctx()
    assert ctx.nets[EXT] == nb.ExternalNet(EXT, 7, 3, 42, SUBNETS[:2])
    assert ctx.by_local_id == {7: EXT}
    assert ctx.routers == {COOKIE: ROUTER}
    # the floating IPs served here: fip1 (fip2's port is on hv9)
    assert [s.ip for s in ctx.sources[EXT] if s.rank == RANK_FLOATING_IP] == ["203.0.113.20"]
    # No patch port for the physnet: nothing to resolve on.
    assert nb.build_context("hv1", [ROUTER], NETWORKS, SUBNETS, PORTS, lambda n: 7, {}).nets == {}


def test_next_hop_and_source():
    assert nb.next_hop("203.0.113.77", SUBNETS) == "203.0.113.77"
    assert nb.next_hop("198.51.100.1", SUBNETS) == "203.0.113.1"
    assert nb.next_hop("2001:db9::1", SUBNETS) == "2001:db8::1"
    assert nb.next_hop("198.51.100.1", SUBNETS[1:]) is None
    G2 = "fa:16:3e:00:00:77"
    sources = (NeighbourSource("203.0.113.10", GW_MAC, "r1", None, 0),
               NeighbourSource("2001:db8::10", GW_MAC, "r1", None, 0),
               NeighbourSource("203.0.113.77", G2, "r2", None, 1),
               NeighbourSource("203.0.113.20", FIP_MAC, "r1", "10.0.0.5", 2),
               NeighbourSource("203.0.113.78", "fa:16:3e:00:00:78", "r2", "10.1.0.5", 2))
    # The packet already left a gateway's SNAT or a floating IP: that address.
    assert nb.source_for(sources, 4, "203.0.113.77") == ("203.0.113.77", G2)
    assert nb.source_for(sources, 4, "203.0.113.20") == ("203.0.113.20", FIP_MAC)
    # ... or a floating IP's fixed address (not translated yet)
    assert nb.source_for(sources, 4, "10.0.0.5") == ("203.0.113.20", FIP_MAC)
    # Else the punting router's first, else the best.
    assert nb.source_for(sources, 4, "10.0.0.6", "r2") == ("203.0.113.77", G2)
    assert nb.source_for(sources, 4, "10.0.0.6") == ("203.0.113.10", GW_MAC)
    assert nb.source_for(sources, 4, "10.0.0.6", "r9") == ("203.0.113.10", GW_MAC)
    assert nb.source_for(sources, 6, "2001:db8::99", "r2") == ("2001:db8::10", GW_MAC)
    # Nothing of that IP version served here: nothing to ask from.
    assert nb.source_for(sources[3:], 6, "2001:db8::99") is None
    assert nb.source_for((), 4, "203.0.113.77") is None


def test_the_context_keeps_the_sources_of_the_networks_it_resolves_on():
    ctx = _ctx("hv1", ROUTER_HERE)
    assert [s.ip for s in ctx.sources[EXT]] == ["203.0.113.10", "2001:db8::10", "203.0.113.20"]
    # A compute host (not a gateway host) asks from its floating IPs only.
    assert [s.ip for s in _ctx("hv1").sources[EXT]] == ["203.0.113.20"]
    # No patch port for the physnet: no network, no sources.
    ctx = nb.build_context("hv1", [ROUTER_HERE], NETWORKS, SUBNETS, PORTS, lambda n: 7, {},
                           _sources("hv1", ROUTER_HERE))
    assert ctx.sources == {}


def _ip_frame(src, dst):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet("00:00:00:00:00:00", GW_MAC, 0x0800))
    pkt.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17))
    pkt.serialize()
    return bytes(pkt.data)


def _pin(data, table=P.L3_RESOLVE, cookie=COOKIE, reg6=7, in_port=5, reason=1):
    match = Match(Field("in_port", in_port), *([Field("reg6", reg6)] if reg6 else []))
    return PacketIn(reason, table, cookie, in_port, match, data, len(data))


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _resolver(**kw):
    sent, changes, clock = [], [], _Clock()
    r = nb.NeighbourResolver(lambda d, a: sent.append((d, a)), lambda: changes.append(1), {},
                             clock=clock, **kw)
    r.set_context(_ctx("hv1", ROUTER_HERE))
    return r, sent, changes, clock


def test_punt_asks_learns_and_hands_the_neighbour():
    r, sent, changes, clock = _resolver()
    assert r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1")))
    (frame, actions), = sent
    assert actions == [Output(3)]
    a = packet.Packet(frame).get_protocol(arp.arp)
    assert (a.src_ip, a.src_mac, a.dst_ip) == ("203.0.113.10", GW_MAC, "203.0.113.1")
    assert packet.Packet(frame).get_protocol(vlan.vlan).vid == 42
    # More packets for it within a second: no more requests.
    assert r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.2")))
    assert len(sent) == 1 and r.neighbours() == ()
    # A reply from someone we did not ask, or to another address: not learned.
    assert not r.packet_in(_pin(_arp_reply("203.0.113.99", UP_MAC, "203.0.113.10"),
                                table=P.SERVICES))
    assert not r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.55"),
                                table=P.SERVICES))
    assert r.neighbours() == () and changes == []
    assert r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.10", vid=42),
                            table=P.SERVICES, reg6=None))
    assert r.neighbours() == (m.Neighbour(EXT, "203.0.113.1", UP_MAC),)
    assert changes == [1]
    # Known: a punt (before its flow is in) sends nothing.
    r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1")))
    assert len(sent) == 1


def test_external_network_punt_with_the_next_hop_in_reg0():
    """As the compiler punts: the external network's cookie, reg6, reg0 =
    the IPv4 next hop (an integer)."""
    r, sent, _, _ = _resolver()
    cookie = cookies.cookie_for(0x0B, EXT)  # KIND_EXTERNAL (issue 14's compiler)
    data = _ip_frame("203.0.113.10", "198.51.100.1")
    pin = PacketIn(1, P.L3_RESOLVE, cookie, 5,
                   Match(Field("in_port", 5), Field("reg6", 7), Field("reg0", 0xCB007163)),
                   data, len(data))
    assert r.packet_in(pin)
    a = packet.Packet(sent[0][0]).get_protocol(arp.arp)
    assert (a.src_ip, a.src_mac, a.dst_ip) == ("203.0.113.10", GW_MAC, "203.0.113.99")
    # A punt of these tables on a network that is not external: not ours.
    pin = PacketIn(1, P.L3_RESOLVE, cookie, 5, Match(Field("in_port", 5), Field("reg6", 8)),
                   data, len(data))
    assert not r.packet_in(pin)


def test_fip_traffic_asks_from_the_fip_and_on_link_destinations_directly():
    r, sent, _, _ = _resolver()
    r.packet_in(_pin(_ip_frame("203.0.113.20", "203.0.113.77")))
    a = packet.Packet(sent[0][0]).get_protocol(arp.arp)
    assert (a.src_ip, a.src_mac, a.dst_ip) == ("203.0.113.20", FIP_MAC, "203.0.113.77")


def test_not_ours_and_unresolvable():
    r, sent, _, _ = _resolver()
    # A TTL punt, a DHCP punt (SERVICES): not the resolver's.
    assert not r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1"), reason=2))
    assert not r.packet_in(_pin(_ip_frame("10.0.0.5", "255.255.255.255"), table=P.SERVICES,
                                cookie=cookies.cookie_for(cookies.KIND_NETWORK, "in")))
    # An unknown router's punt on an unknown network: not ours, nothing sent.
    assert not r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1"),
                                cookie=cookies.cookie_for(cookies.KIND_ROUTER, "r9"), reg6=99))
    # The router's TTL punt (L3_ROUTE): not the resolver's.
    assert not r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1"), table=P.L3_ROUTE))
    # A foreign cookie: not ours.
    assert not r.packet_in(_pin(_ip_frame("10.0.0.6", "198.51.100.1"), cookie=0x1234))
    # No IPv6 subnet with a gateway: nothing to ask.
    r.set_context(_ctx("hv1", ROUTER_HERE, SUBNETS[:1]))
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet("00:00:00:00:00:00", GW_MAC, 0x86DD))
    pkt.add_protocol(ipv6.ipv6(src="fd00::5", dst="2001:db9::1", nxt=17))
    pkt.serialize()
    assert r.packet_in(_pin(bytes(pkt.data)))
    assert sent == [] and r.stats["neighbour_unresolvable"] == 1


def test_ipv6_resolution():
    r, sent, _, _ = _resolver()
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet("00:00:00:00:00:00", GW_MAC, 0x86DD))
    pkt.add_protocol(ipv6.ipv6(src="fd00::5", dst="2001:db9::1", nxt=17))
    pkt.serialize()
    assert r.packet_in(_pin(bytes(pkt.data)))
    icmp = packet.Packet(sent[0][0]).get_protocol(icmpv6.icmpv6)
    assert icmp.type_ == 135 and icmp.data.dst == "2001:db8::1"
    assert r.packet_in(_pin(_na("2001:db8::1", UP_MAC), table=P.SERVICES))
    assert r.neighbours() == (m.Neighbour(EXT, "2001:db8::1", UP_MAC),)


def test_refresh_before_expiry_then_forget():
    r, sent, changes, clock = _resolver(reachable=100.0)
    r.ask(EXT, "203.0.113.1", "203.0.113.10", GW_MAC)
    r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.10"), table=P.SERVICES))
    clock.t += 74
    r.tick()
    assert len(sent) == 1
    clock.t += 2  # past 75 % of the lifetime: asked again
    r.tick()
    assert len(sent) == 2
    r.tick()
    assert len(sent) == 2  # not more than once a second
    # Answered: good for another lifetime.
    r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.10"), table=P.SERVICES))
    clock.t += 99
    r.tick()
    assert r.neighbours() != ()
    # Unanswered to the end: forgotten.
    clock.t += 2
    r.tick()
    assert r.neighbours() == () and len(changes) == 2


def test_unanswered_requests_are_dropped_and_the_table_is_bounded():
    r, sent, _, clock = _resolver(max_entries=3)
    for i in range(5):
        r.ask(EXT, f"203.0.113.{100 + i}", "203.0.113.10", GW_MAC)
    assert len(r._table) == 3
    clock.t += 10
    r.tick()
    assert len(r._table) == 0


def test_view_change_forgets_networks_gone():
    r, _, changes, _ = _resolver()
    r.ask(EXT, "203.0.113.1", "203.0.113.10", GW_MAC)
    r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, "203.0.113.10"), table=P.SERVICES))
    r.set_context(nb.EMPTY)
    assert r.neighbours() == () and len(changes) == 2


def test_reply_punt_flows_validate():
    """The table that admits the external network's packets must let the
    punt through (Meter + Controller)."""
    (one,) = neighbour_reply_flows(7, COOKIE, "203.0.113.10")
    P.validate(one)
    assert one.match.get("arp_op").value == 2 and one.match.get("arp_tpa").value == \
        "203.0.113.10"
    assert one.actions[0].id == P.EXT_REPLY_METER_BASE + 7  # not the resolve punt's meter
    (na,) = neighbour_reply_flows(7, COOKIE, "2001:db8::10", "203.0.113.1")
    P.validate(na)
    assert na.match.get("icmpv6_type").value == 136 and na.match.get("ipv6_dst").value == \
        "2001:db8::10"
    # the network's gateway's replies: above, through a meter of their own
    (_, gw) = neighbour_reply_flows(7, COOKIE, "203.0.113.10", "203.0.113.1")
    P.validate(gw)
    assert gw.match.get("arp_spa").value == "203.0.113.1" and gw.priority > one.priority
    assert gw.actions[0].id == P.EXT_GW_REPLY_METER_BASE + 7
    (_, gw6) = neighbour_reply_flows(7, COOKIE, "2001:db8::10", "2001:db8::1")
    P.validate(gw6)
    assert gw6.match.get("ipv6_nd_target").value == "2001:db8::1"
    assert gw6.actions[0].id == P.EXT_GW_REPLY_METER_BASE + 7


# ------------------------------------------------------------------ GARP
def test_announcements_local_fips_and_active_gateway():
    ctx = _ctx("hv1")
    assert nb.announcements("hv1", ctx, [ROUTER], ()) == {
        nb.Announce(EXT, "203.0.113.20", FIP_MAC)}
    ctx2 = _ctx("hv2")
    gw = {nb.Announce(EXT, "203.0.113.10", GW_MAC), nb.Announce(EXT, "2001:db8::10", GW_MAC)}
    assert nb.announcements("hv2", ctx2, [ROUTER], ()) == gw
    assert nb.announcements("hv3", _ctx("hv3"), [ROUTER], ()) == set()
    assert nb.announcements("hv3", _ctx("hv3"), [ROUTER], ("hv2",)) == gw


def test_announcer_sends_a_few_spaced_for_new_addresses_only():
    sent, clock = [], _Clock()
    ann = nb.Announcer(lambda d, a: sent.append(d), {}, count=3, spacing=1.0, clock=clock)
    ctx = _ctx()
    a = nb.Announce(EXT, "203.0.113.20", FIP_MAC)
    ann.update(frozenset({a}), ctx)
    assert len(sent) == 1
    ann.tick(ctx)
    assert len(sent) == 1
    for _ in range(4):
        clock.t += 1.0
        ann.tick(ctx)
    assert len(sent) == 3
    ann.update(frozenset({a}), ctx)  # nothing new
    assert len(sent) == 3
    b = nb.Announce(EXT, "203.0.113.20", "fa:16:3e:99:99:99")  # a new MAC: announced
    ann.update(frozenset({b}), ctx)
    assert len(sent) == 4
    g = packet.Packet(sent[-1]).get_protocol(arp.arp)
    assert g.src_mac == "fa:16:3e:99:99:99" and g.src_ip == g.dst_ip == "203.0.113.20"


def test_an_entry_asked_from_a_fip_that_left_is_refreshed_from_an_address_still_here():
    r, sent, changes, clock = _resolver(reachable=100.0)
    r.ask(EXT, "203.0.113.1", FIP_IP_, FIP_MAC)
    r.packet_in(_pin(_arp_reply("203.0.113.1", UP_MAC, FIP_IP_, tha=FIP_MAC), table=P.SERVICES))
    moved = dict(PORTS, vm1=m.Port("vm1", "in", FIP_MAC, host="hv9"))
    r.set_context(_ctx("hv1", ROUTER_HERE, ports=moved))  # vm1 (fip1's port) left
    assert r.neighbours() != ()
    clock.t += 80
    r.tick()
    a = packet.Packet(sent[-1][0]).get_protocol(arp.arp)
    assert (a.src_ip, a.src_mac) == ("203.0.113.10", GW_MAC)  # a gateway host: its gateway
    # On a compute host, from another floating IP served there (never from
    # the gateway, whose MAC the active gateway host holds on the wire) ...
    r.set_context(_ctx("hv9", ROUTER_HERE, ports=moved))
    clock.t += 2
    r.tick()
    a = packet.Packet(sent[-1][0]).get_protocol(arp.arp)
    assert (a.src_ip, a.src_mac) == (FIP_IP_, FIP_MAC)  # (vm1 and vm2 are both on hv9)
    # ... and with none, the entry goes.
    r.set_context(_ctx("hv8", ROUTER_HERE, ports=moved))
    assert r.neighbours() == () and changes[-1] == 1


def test_forget_announces_again():
    sent = []
    ann = nb.Announcer(lambda d, a: sent.append(d), {}, count=1)
    a = frozenset({nb.Announce(EXT, "203.0.113.10", GW_MAC)})
    ann.update(a, _ctx())
    ann.update(a, _ctx())
    assert len(sent) == 1
    ann.forget()
    ann.update(a, _ctx())
    assert len(sent) == 2


FIP_IP_ = "203.0.113.20"
