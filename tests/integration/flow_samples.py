"""A fixture set of flows covering every action and every kind of match
field the vocabulary has (exact/masked, int/MAC/IPv4/IPv6, OXM and Nicira).

Every flow is valid for Open vSwitch (prerequisites present), so the same
set serves the pure encode/decode round trip and the install-and-dump
round trip through a real switch.
"""

from __future__ import annotations

from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.flow import (
    CT_EST,
    CT_INV,
    CT_NEW,
    CT_TRK,
    OFPP_IN_PORT,
    OFPP_LOCAL,
    OFPVID_PRESENT,
    Conjunction,
    Controller,
    Ct,
    Field,
    Flow,
    GotoTable,
    Match,
    Output,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
)

COOKIE_BASE = 0x5157 << 48  # "QW"
COOKIE_MASK = 0xFFFF << 48
FOREIGN_COOKIE = 0x0BAD << 48


def cookie(n: int) -> int:
    return COOKIE_BASE | n


IP = 0x0800
IPV6 = 0x86DD
ARP = 0x0806


def sample_flows() -> list[Flow]:
    flows = [
        # classify: in_port, VLAN tags, tunnels
        Flow(
            0,
            100,
            Match(in_port=1),
            (SetField("reg6", 1), SetField("metadata", 7), GotoTable(10)),
            cookie(1),
        ),
        Flow(
            0,
            100,
            Match(in_port=2, vlan_vid=OFPVID_PRESENT | 100),
            (PopVlan(), SetField("reg6", 2), GotoTable(10)),
            cookie(2),
        ),
        Flow(
            0,
            90,
            Match(Field("vlan_vid", OFPVID_PRESENT, OFPVID_PRESENT), in_port=2),
            (),
            cookie(2),
        ),
        Flow(
            0,
            100,
            Match(in_port=3, tunnel_id=0x1234, tun_ipv4_src="192.0.2.2"),
            (SetField("reg6", 3), GotoTable(10)),
            cookie(3),
        ),
        Flow(0, 0, Match(), (), cookie(0)),
        # port security: MACs, IPs (masked), ARP
        Flow(
            10,
            100,
            Match(reg6=1, eth_src="fa:16:3e:00:00:01", eth_type=IP, ipv4_src="10.0.0.1"),
            (GotoTable(20),),
            cookie(1),
        ),
        Flow(
            10,
            90,
            Match(Field("ipv4_src", "10.0.1.0", "255.255.255.0"), reg6=1, eth_type=IP),
            (GotoTable(20),),
            cookie(1),
        ),
        Flow(
            10,
            100,
            Match(reg6=1, eth_type=ARP, arp_spa="10.0.0.1", arp_sha="fa:16:3e:00:00:01", arp_op=1),
            (GotoTable(30),),
            cookie(1),
        ),
        Flow(
            10,
            100,
            Match(Field("eth_dst", "01:00:00:00:00:00", "01:00:00:00:00:00"), reg6=2),
            (GotoTable(40),),
            cookie(2),
        ),
        Flow(
            10,
            80,
            Match(reg6=1, eth_type=IPV6, ipv6_src="fe80::f816:3eff:fe00:1"),
            (GotoTable(20),),
            cookie(1),
        ),
        Flow(
            10,
            70,
            Match(Field("ipv6_dst", "2001:db8::", "ffff:ffff:ffff:ffff::"), reg6=1, eth_type=IPV6),
            (GotoTable(20),),
            cookie(1),
        ),
        Flow(
            10,
            100,
            Match(
                reg6=1,
                eth_type=IPV6,
                ip_proto=58,
                icmpv6_type=136,
                icmpv6_code=0,
                ipv6_nd_target="2001:db8::1",
                ipv6_nd_tll="fa:16:3e:00:00:01",
            ),
            (GotoTable(20),),
            cookie(1),
        ),
        Flow(
            10,
            100,
            Match(
                reg6=1,
                eth_type=IPV6,
                ip_proto=58,
                icmpv6_type=135,
                icmpv6_code=0,
                ipv6_nd_sll="fa:16:3e:00:00:01",
            ),
            (GotoTable(20),),
            cookie(1),
        ),
        # security groups: conntrack, conjunctions, L4 ports
        Flow(20, 100, Match(eth_type=IP), (Ct(zone_src="reg6", table=21),), cookie(4)),
        Flow(20, 100, Match(eth_type=IPV6), (Ct(zone=5, table=21),), cookie(4)),
        Flow(
            21,
            100,
            Match(Field("ct_state", CT_TRK | CT_EST, CT_TRK | CT_EST | CT_INV), eth_type=IP),
            (GotoTable(30),),
            cookie(4),
        ),
        Flow(
            21,
            90,
            Match(
                Field("ct_state", CT_TRK | CT_NEW, CT_TRK | CT_NEW | CT_INV),
                ct_zone=5,
                eth_type=IP,
                ip_proto=6,
                tcp_dst=22,
            ),
            (Ct(commit=True, zone_src="reg6"), GotoTable(30)),
            cookie(5),
        ),
        Flow(
            21,
            90,
            Match(Field("tcp_src", 0x400, 0xFC00), eth_type=IP, ip_proto=6),
            (Ct(commit=True, zone=7), GotoTable(30)),
            cookie(5),
        ),
        Flow(
            21,
            90,
            Match(eth_type=IP, ip_proto=17, udp_src=68, udp_dst=67),
            (Controller(),),
            cookie(6),
        ),
        Flow(
            21,
            80,
            Match(eth_type=IP, ip_proto=1, icmpv4_type=8, icmpv4_code=0),
            (GotoTable(30),),
            cookie(5),
        ),
        Flow(
            21,
            70,
            Match(eth_type=IP, ipv4_src="10.0.0.5"),
            (Conjunction(id=9, clause=0, n_clauses=2),),
            cookie(5),
        ),
        Flow(
            21,
            70,
            Match(eth_type=IP, ip_proto=6, tcp_dst=80),
            (Conjunction(id=9, clause=1, n_clauses=2),),
            cookie(5),
        ),
        Flow(21, 70, Match(conj_id=9, eth_type=IP), (GotoTable(30),), cookie(5)),
        Flow(21, 60, Match(Field("ct_mark", 1, 1), eth_type=IP), (), cookie(5)),
        # ARP/DHCP and L2: controller with userdata, set fields, resubmit
        Flow(
            30,
            100,
            Match(eth_type=ARP, arp_op=1, arp_tpa="10.0.0.2"),
            (Controller(max_len=256, userdata=b"\x01arp"),),
            cookie(7),
        ),
        Flow(30, 90, Match(eth_type=ARP, arp_tha="00:00:00:00:00:00"), (GotoTable(40),), cookie(7)),
        Flow(
            40,
            100,
            Match(metadata=7, eth_dst="fa:16:3e:00:00:02"),
            (SetField("reg7", 2), Resubmit(50), Resubmit(60, in_port=2)),
            cookie(8),
        ),
        Flow(
            40,
            90,
            Match(Field("metadata", 0x100, 0xFF00), eth_dst="fa:16:3e:00:00:03"),
            (SetField("tunnel_id", 0x1234), SetField("tun_ipv4_dst", "192.0.2.3"), Output(3)),
            cookie(8),
        ),
        Flow(
            40,
            80,
            Match(reg7=4, eth_type=IP),
            (
                PushVlan(),
                SetField("vlan_vid", OFPVID_PRESENT | 100),
                SetField("eth_src", "fa:16:3e:00:00:09"),
                SetField("ipv4_dst", "10.0.0.9"),
                Output(2),
            ),
            cookie(8),
        ),
        Flow(
            40,
            70,
            Match(Field("reg5", 0x10, 0xF0)),
            (Output(OFPP_LOCAL), Output(1), Output(2)),
            cookie(8),
        ),
        Flow(50, 100, Match(reg7=2), (SetField("reg0", 0xFFFFFFFF), Output(1)), cookie(9)),
        Flow(
            60,
            100,
            Match(Field("reg1", 0, 1), reg2=0xDEADBEEF, reg3=1, reg4=2),
            (Output(1),),
            cookie(9),
        ),
    ]
    if hasattr(F, "Move"):
        # An ARP responder turning a request around in flows.
        flows.append(
            Flow(
                30,
                95,
                Match(eth_type=ARP, arp_op=1, arp_tpa="10.0.0.3"),
                (
                    F.Move("eth_src", "eth_dst", 48),
                    SetField("eth_src", "fa:16:3e:00:00:03"),
                    SetField("arp_op", 2),
                    F.Move("arp_sha", "arp_tha", 48),
                    F.Move("arp_spa", "arp_tpa", 32),
                    SetField("arp_sha", "fa:16:3e:00:00:03"),
                    SetField("arp_spa", "10.0.0.3"),
                    F.Move("reg6", "reg7", 16, 0, 16),
                    Output(OFPP_IN_PORT),
                ),
                cookie(7),
            )
        )
    return flows


def simple_flows(n: int, table: int = 5) -> list[Flow]:
    """``n`` distinct, cheap flows (for timing)."""
    return [
        Flow(
            table,
            100,
            Match(eth_type=IP, ipv4_dst=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"),
            (Output(1),),
            cookie(1000 + i % 1000),
        )
        for i in range(n)
    ]
