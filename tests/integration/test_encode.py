"""Flow -> os-ken message -> bytes -> os-ken parse -> Flow, without a switch.

(These need no OVS; they live here because encode.py is the agent's
OpenFlow edge and they share their fixture flows with the switch tests.)
"""

from __future__ import annotations

import struct

import pytest

from agent.openflow import encode as E
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.flow import Field, Flow, FlowKey, Match
from tests.fixtures.flow_samples import cookie, sample_flows

ACTION_TYPES = {
    F.Output,
    F.SetField,
    F.PushVlan,
    F.PopVlan,
    F.GotoTable,
    F.Resubmit,
    F.Controller,
    F.Conjunction,
    F.Ct,
}


def test_samples_cover_every_action_type():
    used = {type(a) for f in sample_flows() for a in f.actions}
    wanted = set(ACTION_TYPES)
    if hasattr(F, "Move"):
        wanted.add(F.Move)
    wanted.add(F.Bundle)
    assert wanted <= used
    assert any(isinstance(a, F.Ct) and a.nat is not None for f in sample_flows()
               for a in f.actions)


@pytest.mark.parametrize(
    "flow", sample_flows(), ids=lambda f: f"t{f.table}p{f.priority}{f.match!r}"[:60]
)
def test_flow_mod_round_trip(flow):
    wire = E.serialize(E.flow_mod(flow), xid=7)
    assert E.parse_header(wire)[3] == 7
    back = E.parse_flow_mod(wire)
    assert back == flow
    assert back.key == flow.key
    assert hash(back) == hash(flow)


def _flow_stats_reply(flows, xid=9, more=False) -> bytes:
    """A multipart flow-stats reply as a switch would send it (os-ken can
    parse these but not build them): each entry's match and instructions
    are the bytes of the corresponding flow-mod."""
    body = b""
    for flow in flows:
        fm = E.serialize(E.flow_mod(flow), 1)
        tail = fm[8 + 40 :]  # ofp_header + the fixed part of ofp_flow_mod
        body += (
            struct.pack(
                "!HBxIIHHHH4xQQQ",
                48 + len(tail),
                flow.table,
                1,
                0,
                flow.priority,
                0,
                0,
                0,
                flow.cookie,
                3,
                300,
            )
            + tail
        )
    header = struct.pack("!BBHIHH4x", 4, 19, 16 + len(body), xid, 1, 1 if more else 0)
    return header + body


@pytest.mark.parametrize("more", [False, True])
def test_flow_stats_reply_decodes_to_flows(more):
    """A flow dump from the switch decodes to the Flows we installed."""
    flows = sample_flows()
    msg = E.parse(_flow_stats_reply(flows, more=more))
    assert msg.kind == "flow_stats" and msg.xid == 9 and msg.more is more
    assert msg.flows == tuple(flows)


def test_delete_is_strict_and_cookie_scoped():
    flow = sample_flows()[0]
    wire = E.serialize(E.flow_mod(flow, E.DELETE, cookie_mask=0xFFFF << 48), 1)
    from os_ken.ofproto import ofproto_parser, ofproto_v1_3 as ofp

    msg = ofproto_parser.msg(E.DP, *E.parse_header(wire), wire)
    assert msg.command == ofp.OFPFC_DELETE_STRICT
    assert msg.cookie == flow.cookie and msg.cookie_mask == 0xFFFF << 48
    assert (msg.table_id, msg.priority) == (flow.table, flow.priority)
    assert E.decode_match(msg.match) == flow.match


@pytest.mark.parametrize(
    "bad",
    [
        Flow(0, 1, Match(Field("reg0", 5, 0xFFFFFFFF)), (), cookie(1)),  # all-ones mask
        Flow(0, 1, Match(Field("reg0", 5, 0)), (), cookie(1)),  # zero mask
        Flow(0, 1, Match(Field("reg0", 5, 4)), (), cookie(1)),  # value outside mask
        Flow(
            0,
            1,
            Match(Field("ipv4_src", "10.0.0.1", "255.255.255.0"), eth_type=0x800),
            (),
            cookie(1),
        ),
        Flow(0, 1, Match(), (F.Output(F.OFPP_CONTROLLER),), cookie(1)),
        Flow(0, 1, Match(), (F.GotoTable(3), F.Output(1)), cookie(1)),
    ],
)
def test_non_canonical_flows_are_refused(bad):
    with pytest.raises(ValueError):
        E.flow_mod(bad)


def test_unknown_action_is_refused():
    with pytest.raises(ValueError):
        E.flow_mod(Flow(0, 1, Match(), (F.Learn(table=3),), cookie(1)))


def test_match_order_is_canonical_after_decode():
    flow = Flow(0, 5, Match(reg6=1, in_port=3, eth_type=0x800), (), cookie(1))
    back = E.parse_flow_mod(E.serialize(E.flow_mod(flow), 1))
    assert [f.name for f in back.match] == sorted(f.name for f in flow.match)
    assert back.key == FlowKey(0, 5, flow.match)


@pytest.mark.parametrize(
    "match",
    [
        Match(eth_src="FA:16:3E:00:00:01"),
        Match(eth_type=0x86DD, ipv6_src="2001:DB8::1"),
        Match(eth_type=0x86DD, ipv6_src="2001:db8:0:0::1"),
        Match(Field("ipv4_dst", "10.0.0.0", "255.255.255.00"), eth_type=0x800),
    ],
)
def test_non_canonical_spellings_are_refused(match):
    """The switch hands back canonical strings; a different spelling would
    make the desired and the installed flow differ forever."""
    with pytest.raises(ValueError):
        E.flow_mod(Flow(0, 1, match, (), cookie(1)))


def test_bundle_add_framing_matches_os_ken():
    """Our hand-framed bundle-add (around a memoized flow-mod) is byte for
    byte what os-ken builds."""
    for flow in sample_flows()[:5]:
        for cmd, mask in ((E.ADD, None), (E.DELETE, 0xFFFF << 48)):
            ours = E.bundle_add_bytes(7, E.flow_mod_bytes(flow, cmd, mask), xid=1234)
            theirs = E.serialize(E.bundle_add(7, E.flow_mod(flow, cmd, mask)), 1234)
            assert ours == theirs
