"""The struct decoder of flow-stats replies gives exactly what os-ken's
parser (followed by encode's conversion) gives, and hands what it does not
know to os-ken.

The replies are built the way a switch answers a dump: every entry's match
and instructions are the bytes of the flow-mod that installed it (Open
vSwitch's own spellings, where they differ, are checked against a real
switch by tests/integration/test_openflow.py, whose dumps go through this
decoder).
"""

from __future__ import annotations

import struct

import pytest
from os_ken.ofproto import ofproto_parser

from agent.openflow import encode as E
from agent.openflow import fastdecode
from agent.openflow.fastdecode import FlowStatsDecoder
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import Field, Flow, Match
from quantum_ovs.compiler.synth import make_host_view, make_large_view
from tests.fixtures.flow_samples import FOREIGN_COOKIE, cookie, sample_flows

_STATS = struct.Struct("!HBxIIHHHH4xQQQ")
_MP_HEADER = struct.Struct("!BBHIHH4x")


def _entry(table, priority, cookie_, match_and_instructions: bytes, n: int = 0) -> bytes:
    """One ofp_flow_stats; durations, timeouts and counters vary with n."""
    return (
        _STATS.pack(
            _STATS.size + len(match_and_instructions),
            table,
            n,
            n * 1000,
            priority,
            n & 0xFF,
            0,
            0,
            cookie_,
            n * 7,
            n * 700,
        )
        + match_and_instructions
    )


def _tail(flow: Flow) -> bytes:
    """The match and instructions of the flow-mod for ``flow``."""
    return E.flow_mod_bytes(flow)[8 + 40 :]  # ofp_header + fixed part of ofp_flow_mod


def _reply(entries, xid=9, more=False) -> bytes:
    body = b"".join(entries)
    return _MP_HEADER.pack(4, 19, 16 + len(body), xid, 1, 1 if more else 0) + body


def _flows_reply(flows, **kw) -> bytes:
    return _reply(
        [_entry(f.table, f.priority, f.cookie, _tail(f), n) for n, f in enumerate(flows)], **kw
    )


def _reference(buf: bytes) -> list:
    """The reply decoded the complete way: os-ken, then encode's conversion.
    (os-ken logs what it cannot parse and returns None.)"""
    msg = ofproto_parser.msg(E.DP, *ofproto_parser.header(buf), buf)
    if msg is None:
        raise ValueError("os-ken could not parse the reply")
    return [E.decode_flow_stats(s) for s in msg.body]


def _decoder() -> FlowStatsDecoder:
    return FlowStatsDecoder(E.oxm_field_info, E.decode_flow_stats_at)


def _decode(dec: FlowStatsDecoder, buf: bytes) -> list:
    return dec.entries(buf, 16, len(buf))


def _slow_expected(flows) -> int:
    """Entries the fast decoder leaves to os-ken: controller2 (userdata)."""
    return sum(any(isinstance(a, F.Controller) and a.userdata for a in f.actions) for f in flows)


def _chunks(flows, n=200):  # a reply holds at most 64 KiB
    return [flows[i : i + n] for i in range(0, len(flows), n)]


# ------------------------------------------------------------ real flow sets
@pytest.fixture(scope="module")
def compiled_flows():
    """What the compiler emits for a host with security groups (conntrack,
    conjunctions, remote-group addresses, IPv6, ARP responder moves) and
    for a plain host with VLAN and flat networks."""
    flows = set(
        Engine.from_view(
            make_large_view(
                local_ports=60,
                networks=6,
                remote_hosts=5,
                remote_ports=300,
                n_groups=6,
                rules_per_group=4,
                max_members=60,
            )
        ).flows()
    )
    for network_type, networks in (("vlan", 2), ("flat", 1), ("gre", 2)):
        flows |= Engine.from_view(
            make_host_view(networks=networks, ports_per_net=3, network_type=network_type)
        ).flows()
    return sorted(flows, key=lambda f: (f.table, f.priority, repr(f.match), f.cookie))


def test_compiled_flows_cover_every_action_type(compiled_flows):
    used = {type(a) for f in compiled_flows for a in f.actions}
    assert {F.Output, F.SetField, F.GotoTable, F.Resubmit, F.Conjunction, F.Ct, F.Move} <= used
    assert any(f.mask is not None for fl in compiled_flows for f in fl.match)


def test_compiled_flows_decode_as_os_ken_does(compiled_flows):
    dec = _decoder()
    for chunk in _chunks(compiled_flows):
        buf = _flows_reply(chunk)
        got = _decode(dec, buf)
        assert got == _reference(buf)
        assert got == chunk
    assert dec.slow == _slow_expected(compiled_flows)
    assert dec.fast == len(compiled_flows) - dec.slow


def test_sample_flows_decode_as_os_ken_does():
    """Every match-field kind (exact and masked; int, MAC, IPv4, IPv6; OXM
    and Nicira) and every action of the vocabulary."""
    flows = sample_flows()
    buf = _flows_reply(flows)
    dec = _decoder()
    got = _decode(dec, buf)
    assert got == _reference(buf) == flows
    assert dec.slow == _slow_expected(flows) > 0


def test_memo_tables_give_the_same_values_warm_and_after_a_clear(compiled_flows, monkeypatch):
    dec = _decoder()
    buf = _flows_reply(compiled_flows[:200])
    first = _decode(dec, buf)
    assert _decode(dec, buf) == first  # from the memo tables
    monkeypatch.setattr(fastdecode, "MEMO_LIMIT", 16)
    small = _decoder()
    assert _decode(small, buf) == first
    assert len(small._fields) <= 16 and len(small._actions) <= 16


def test_parse_takes_the_fast_path_and_keeps_xid_and_more(compiled_flows):
    flows = compiled_flows[:50]
    before = E.FLOW_STATS.fast
    for more in (False, True):
        msg = E.parse(_flows_reply(flows, xid=77, more=more))
        assert (msg.kind, msg.xid, msg.more) == ("flow_stats", 77, more)
        assert msg.flows == tuple(flows)
    assert E.FLOW_STATS.fast - before == 2 * (len(flows) - _slow_expected(flows))


def test_empty_reply():
    assert E.parse(_reply([])).flows == ()


# ------------------------------------------------------------ odd entries
def test_foreign_cookies_are_kept_as_they_are():
    flows = [
        Flow(0, 5, Match(in_port=3), (F.GotoTable(10),), FOREIGN_COOKIE | 1),
        Flow(0, 6, Match(in_port=3), (F.GotoTable(10),), 0),
        Flow(0, 7, Match(in_port=3), (F.GotoTable(10),), (1 << 64) - 1),
    ]
    buf = _flows_reply(flows)
    assert _decode(_decoder(), buf) == _reference(buf) == flows


def test_unusual_but_known_fields_and_actions_decode_fast():
    flows = [
        Flow(
            3,
            9,
            Match(
                Field("eth_dst", "01:00:00:00:00:00", "01:00:00:00:00:00"),
                Field("ipv6_dst", "fe80::", "ffff:ffff:ffff:ffff::"),
                Field("ct_label", 1 << 100),
                eth_type=0x86DD,
                ip_dscp=10,
                vlan_vid=F.OFPVID_PRESENT | 100,
            ),
            (
                F.PopVlan(),
                F.PushVlan(0x88A8),
                F.SetField("vlan_vid", F.OFPVID_PRESENT | 7),
                F.SetField("ipv6_src", "2001:db8::1"),
                F.SetField("eth_src", "fa:16:3e:00:00:01"),
                F.Resubmit(4, in_port=7),
                F.Output(F.OFPP_LOCAL),
                F.Controller(max_len=128),
                F.Ct(commit=True, zone=3),
                F.Ct(zone_src="reg6", table=7),
                F.Move("eth_src", "eth_dst", 48),
                F.Move("reg7", "tunnel_id", 16, src_ofs=8, dst_ofs=4),
            ),
            cookie(3),
        ),
        Flow(1, 0, Match(), (), cookie(4)),  # empty match, drop
    ]
    buf = _flows_reply(flows)
    dec = _decoder()
    assert _decode(dec, buf) == _reference(buf) == flows
    assert (dec.fast, dec.slow) == (2, 0)


def _oxm(cls: int, field: int, value: bytes, mask: bytes = b"") -> bytes:
    header = cls << 16 | field << 9 | (0x100 if mask else 0) | len(value + mask)
    return struct.pack("!I", header) + value + mask


def _match(*oxms: bytes) -> bytes:
    body = b"".join(oxms)
    m = struct.pack("!HH", 1, 4 + len(body)) + body
    return m + bytes(-len(m) % 8)


def _goto(table: int) -> bytes:
    return struct.pack("!HHB3x", 1, 8, table)


def _apply(*actions: bytes) -> bytes:
    body = b"".join(actions)
    return struct.pack("!HH4x", 4, 8 + len(body)) + body


IN_PORT_3 = _oxm(0x8000, 0, struct.pack("!I", 3))
TTL_OUT = struct.pack("!HH4x", 11, 8)  # OFPAT_TTL_OUT: not in our vocabulary


def test_an_entry_the_fast_path_does_not_know_goes_to_os_ken():
    """Controller2 is decoded by os-ken; its neighbours stay on the fast path."""
    flows = [
        Flow(0, 1, Match(in_port=1), (F.GotoTable(2),), cookie(1)),
        Flow(0, 2, Match(in_port=2), (F.Controller(userdata=b"\x01x"),), cookie(1)),
        Flow(0, 3, Match(in_port=3), (F.Output(1),), cookie(1)),
    ]
    buf = _flows_reply(flows)
    dec = _decoder()
    assert _decode(dec, buf) == flows
    assert (dec.fast, dec.slow) == (2, 1)


@pytest.mark.parametrize(
    "match_and_instructions",
    [
        # an OpenFlow-basic field os-ken does not know (field 60)
        _match(IN_PORT_3, _oxm(0x8000, 60, b"\x00\x01")) + _goto(1),
        # an experimenter-class OXM
        _match(IN_PORT_3, struct.pack("!II", 0xFFFF << 16 | 1 << 9 | 8, 0x4F4E4600) + bytes(4))
        + _goto(1),
        # an action outside our vocabulary
        _match(IN_PORT_3) + _apply(TTL_OUT),
        # write-actions (an instruction we never use)
        _match(IN_PORT_3) + struct.pack("!HH4x", 3, 8),
        # ct() with nested actions
        _match(IN_PORT_3)
        + _apply(struct.pack("!HHIHHIHB3xH", 0xFFFF, 32, 0x2320, 35, 1, 0, 0, 0xFF, 0) + TTL_OUT),
    ],
    ids=["unknown-field", "experimenter-oxm", "unknown-action", "write-actions", "ct-nested"],
)
def test_what_os_ken_refuses_is_refused(match_and_instructions):
    """Refused, never guessed: the entry goes to os-ken, which raises (the
    channel then fails the dump; it never sees a partial flow table)."""
    buf = _reply([_entry(0, 1, cookie(1), match_and_instructions)])
    with pytest.raises(Exception):
        _reference(buf)
    dec = _decoder()
    with pytest.raises(Exception):
        _decode(dec, buf)
    assert dec.fast == 0
    with pytest.raises(Exception):
        E.parse(buf)


def test_a_field_with_an_unexpected_length_is_refused():
    # in_port with a 2-byte value
    buf = _reply([_entry(0, 1, cookie(1), _match(_oxm(0x8000, 0, b"\x00\x03")) + _goto(1))])
    with pytest.raises(Exception):
        _reference(buf)
    with pytest.raises(Exception):
        _decode(_decoder(), buf)


def test_reg_move_with_nicira_headers_names_fields_as_os_ken_does():
    """Open vSwitch may spell a move's fields as NXM_OF_* headers (os-ken
    names them eth_src_nxm ...; both decoders say eth_src)."""
    nxm_eth_src = 0x0000 << 16 | 2 << 9 | 6
    nxm_eth_dst = 0x0000 << 16 | 1 << 9 | 6
    move = struct.pack("!HHIHHHHII", 0xFFFF, 24, 0x2320, 6, 48, 0, 0, nxm_eth_src, nxm_eth_dst)
    buf = _reply([_entry(0, 1, cookie(1), _match(IN_PORT_3) + _apply(move) + _goto(4))])
    dec = _decoder()
    got = _decode(dec, buf)
    assert got == _reference(buf)
    assert got[0].actions == (F.Move("eth_src", "eth_dst", 48), F.GotoTable(4))
    assert dec.fast == 1


@pytest.mark.parametrize("cut", [1, 20, 47, 50])
def test_a_truncated_entry_raises(cut):
    flow = Flow(0, 1, Match(in_port=1), (F.GotoTable(2),), cookie(1))
    buf = _flows_reply([flow])
    bad = buf[: len(buf) - cut]
    bad = bad[:2] + struct.pack("!H", len(bad)) + bad[4:]
    with pytest.raises((ValueError, struct.error)):
        E.parse(bad)


def test_both_decoders_agree_on_a_top_level_masked_load():
    """A masked load is ours only inside ct() (Ct.write): outside it both
    decoders refuse it alike (review s24 F5: the fast one made a LoadBits
    action, which is not in the vocabulary)."""
    from os_ken.ofproto import ofproto_v1_3 as o, ofproto_v1_3_parser as p
    from agent.openflow import encode as E
    from quantum_ovs.compiler import cookies
    ck = cookies.cookie_for(cookies.KIND_STATIC, "review")
    m = p.OFPFlowMod(E.DP, cookie=ck, table_id=60, priority=40,
                     match=p.OFPMatch(eth_type=0x800),
                     instructions=[p.OFPInstructionActions(
                         o.OFPIT_APPLY_ACTIONS, [p.NXActionRegLoad2(dst="reg0", value=1,
                                                                     mask=1)])])
    m.serialize()
    buf = _reply([_entry(60, 40, ck, bytes(m.buf)[8 + 40:])])

    def outcome(fn):
        try:
            return fn()
        except ValueError:
            return "ValueError"

    assert outcome(lambda: _decode(_decoder(), buf)) == outcome(lambda: _reference(buf))
