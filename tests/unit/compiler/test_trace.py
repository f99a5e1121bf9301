"""The tracer's own mechanics, on small hand-written flow sets."""

from __future__ import annotations

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.flow import (
    CT_EST,
    CT_NEW,
    CT_TRK,
    OFPP_IN_PORT,
    Conjunction,
    Controller,
    Ct,
    Field,
    Flow,
    GotoTable,
    Match,
    Move,
    Output,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
)
from quantum_ovs.compiler.trace import (
    AmbiguousMatch,
    BackwardJump,
    parse_packet,
    trace,
)

C = cookies.cookie_for(cookies.KIND_STATIC, "test")


def F(table, prio, match, *actions):
    return Flow(table, prio, match, tuple(actions), C)


def test_priority_and_masks():
    flows = [
        F(0, 10, Match(Field("ipv4_dst", "10.0.0.0", "255.0.0.0"), eth_type=0x800), Output(1)),
        F(0, 20, Match(Field("ipv4_dst", "10.1.0.0", "255.255.0.0"), eth_type=0x800),
          Output(2)),
    ]
    pkt = {"in_port": 9, "eth_type": 0x800}
    assert trace(flows, {**pkt, "ipv4_dst": "10.1.2.3"}).ports == [2]
    assert trace(flows, {**pkt, "ipv4_dst": "10.2.2.3"}).ports == [1]
    t = trace(flows, {**pkt, "ipv4_dst": "11.0.0.1"})
    assert t.dropped and t.steps[-1].flow is None  # table miss


def test_ambiguity_raises_only_for_different_actions():
    a = F(0, 5, Match(in_port=1), Output(2))
    b = F(0, 5, Match(eth_type=0x800), Output(3))
    with pytest.raises(AmbiguousMatch):
        trace([a, b], {"in_port": 1, "eth_type": 0x800})
    same = F(0, 5, Match(eth_type=0x800), Output(2))
    assert trace([a, same], {"in_port": 1, "eth_type": 0x800}).ports == [2]


def test_goto_backwards_raises():
    flows = [F(0, 1, Match(), GotoTable(5)), F(5, 1, Match(), GotoTable(3)),
             F(3, 1, Match(), Output(1))]
    with pytest.raises(BackwardJump):
        trace(flows, {"in_port": 9})
    with pytest.raises(BackwardJump):
        trace([F(0, 1, Match(), Resubmit(0))], {"in_port": 9})


def test_registers_setfield_and_resubmit():
    flows = [
        F(0, 1, Match(in_port=1), SetField("reg7", 5), Resubmit(10), SetField("reg7", 6),
          Resubmit(10)),
        F(10, 1, Match(reg7=5), Output(5)),
        F(10, 1, Match(reg7=6), Output(6)),
    ]
    t = trace(flows, {"in_port": 1})
    assert t.ports == [5, 6]
    assert [s.depth for s in t.steps] == [0, 1, 1]


def test_output_to_in_port_is_dropped_unless_in_port_action():
    flows = [F(0, 1, Match(), Output(1), Output(2))]
    t = trace(flows, {"in_port": 1})
    assert t.ports == [2] and t.dropped_in_port == [1]
    assert trace([F(0, 1, Match(), Output(OFPP_IN_PORT))], {"in_port": 1}).ports == [1]


def test_vlan_push_pop_and_tunnel_fields():
    flows = [
        F(0, 1, Match(in_port=1), PushVlan(), SetField("vlan_vid", 0x1000 | 7), Output(3),
          PopVlan(), SetField("tunnel_id", 99), SetField("tun_ipv4_dst", "192.0.2.1"),
          Output(4)),
    ]
    t = trace(flows, {"in_port": 1})
    vlan, tun = t.outputs
    assert vlan.get("vlan_vid") == 0x1007 and "tunnel_id" not in vlan.fields
    assert tun.get("vlan_vid") == 0 and tun.get("tunnel_id") == 99
    assert tun.get("tun_ipv4_dst") == "192.0.2.1"


def test_move_copies_fields():
    flows = [F(0, 1, Match(), Move("eth_src", "eth_dst", 48), Move("reg1", "reg2", 8, 8, 0),
               Output(2))]
    t = trace(flows, {"in_port": 1, "eth_src": "aa:bb:cc:dd:ee:ff", "reg1": 0xABCD})
    assert t.outputs[0].get("eth_dst") == "aa:bb:cc:dd:ee:ff"
    assert t.outputs[0].get("reg2") == 0xAB


def test_conjunction():
    flows = [
        F(0, 5, Match(reg5=1), Conjunction(7, 0, 2)),
        F(0, 5, Match(reg5=2), Conjunction(7, 0, 2)),
        F(0, 5, Match(tcp_dst=22, ip_proto=6, eth_type=0x800), Conjunction(7, 1, 2)),
        F(0, 5, Match(conj_id=7), Output(9)),
        F(0, 1, Match(), Output(1)),
    ]
    base = {"in_port": 3, "eth_type": 0x800, "ip_proto": 6}
    assert trace(flows, {**base, "reg5": 2, "tcp_dst": 22}).ports == [9]
    assert trace(flows, {**base, "reg5": 3, "tcp_dst": 22}).ports == [1]
    assert trace(flows, {**base, "reg5": 1, "tcp_dst": 23}).ports == [1]


def test_conntrack_state_and_commit():
    flows = [
        F(0, 1, Match(eth_type=0x800), Ct(zone_src="reg6", table=5)),
        F(5, 10, Match(Field("ct_state", CT_TRK | CT_EST, CT_TRK | CT_EST), eth_type=0x800),
          Output(1)),
        F(5, 5, Match(Field("ct_state", CT_TRK | CT_NEW, CT_TRK | CT_NEW), eth_type=0x800),
          Ct(commit=True, zone_src="reg6"), Output(2)),
    ]
    pkt = {"in_port": 9, "eth_type": 0x800, "reg6": 42}
    t = trace(flows, pkt, ct_state=CT_NEW)
    assert t.ports == [2] and [z for z, _ in t.commits] == [42]
    t = trace(flows, pkt, ct_state=CT_EST)
    assert t.ports == [1] and not t.commits
    # the state may depend on the zone
    t = trace(flows, pkt, ct_state=lambda zone, p: CT_EST if zone == 42 else CT_NEW)
    assert t.ports == [1]
    # after a commit without recirculation the packet is untracked, as on
    # the switch: no state, zone or mark
    assert t.outputs[0].get("ct_zone") == 42
    t = trace(flows, pkt, ct_state=lambda zone, p: (CT_NEW, 7))
    (d,) = t.outputs
    assert (d.get("ct_state"), d.get("ct_zone"), d.get("ct_mark")) == (0, None, None)


def test_controller_and_format():
    flows = [F(0, 1, Match(), Controller())]
    t = trace(flows, {"in_port": 1, "eth_type": 0x800})
    assert len(t.controller) == 1 and not t.dropped
    assert "controller" in t.format()


def test_parse_packet():
    p = parse_packet("in_port=5,tcp,eth_src=fa:16:3e:00:00:01,ipv4_dst=10.0.0.1,tcp_dst=22")
    assert p == {"in_port": 5, "eth_type": 0x800, "ip_proto": 6,
                 "eth_src": "fa:16:3e:00:00:01", "ipv4_dst": "10.0.0.1", "tcp_dst": 22}
    with pytest.raises(ValueError):
        parse_packet("in_port=1,bogus")
