"""The agent encodes and decodes the router's flows itself: dec_ttl and
the set-fields of nd_reserved / nd_options_type (Open vSwitch's ERICOXM
fields, unknown to os-ken), through a flow-mod and through a flow-stats
dump (fast decoder and os-ken's), so the installed table diffs to nothing."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from os_ken.ofproto import ofproto_parser

from agent.openflow import encode as E
from agent.openflow.fastdecode import FlowStatsDecoder
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view, make_router, make_router_interface
from quantum_ovs.model import RouterInterface, Subnet

_STATS = struct.Struct("!HBxIIHHHH4xQQQ")
_MP_HEADER = struct.Struct("!BBHIHH4x")


def _routed_flows():
    v = make_host_view(networks=3, ports_per_net=2)
    v6 = Subnet("sub6-2", "net-2", "fd00:2::/64", ip_version=6, gateway_ip="fd00:2::1",
                ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    router = make_router("r1", [0, 1])
    ifc6 = RouterInterface("rif6", "net-2", "sub6-2", "fd00:2::1", 64,
                           make_router_interface(2).mac_address)
    router = dataclasses.replace(router, interfaces=router.interfaces + (ifc6,))
    v = v.replace(subnets=v.subnets + (v6,), routers=(router,))
    return sorted(Engine.from_view(v).flows(),
                  key=lambda f: (f.table, f.priority, repr(f.match), f.cookie))


@pytest.fixture(scope="module")
def flows():
    return _routed_flows()


def _dump(flows) -> bytes:
    entries = []
    for n, f in enumerate(flows):
        tail = E.flow_mod_bytes(f)[8 + 40:]
        entries.append(_STATS.pack(_STATS.size + len(tail), f.table, n, 0, f.priority, 0, 0, 0,
                                   f.cookie, 0, 0) + tail)
    body = b"".join(entries)
    return _MP_HEADER.pack(4, 19, 16 + len(body), 7, 1, 0) + body


def test_router_flows_use_the_actions_os_ken_lacks(flows):
    names = {a.name for f in flows for a in f.actions if isinstance(a, F.SetField)}
    assert {"nd_reserved", "nd_options_type"} <= names
    assert any(isinstance(a, F.DecTtl) for f in flows for a in f.actions)


def test_flow_mod_round_trip(flows):
    for f in flows:
        assert E.parse_flow_mod(E.flow_mod_bytes(f)) == f


def test_wire_bytes_are_open_vswitch_ones():
    fl = F.Flow(3, 1, F.Match(), (F.SetField("nd_reserved", 0xE0000000),
                                  F.SetField("nd_options_type", 2), F.DecTtl()))
    raw = E.flow_mod_bytes(fl)
    # set_field: type 25, len 16, OXM class 0x1000 field 1 (nd_reserved) len 4
    assert bytes.fromhex("0019001010000204e0000000 00000000".replace(" ", "")) in raw
    assert bytes.fromhex("0019001010000401 0200000000000000".replace(" ", "")) in raw
    assert bytes.fromhex("0018000800000000") in raw  # OFPAT_DEC_NW_TTL


def test_dump_decodes_fast_and_as_os_ken_does(flows):
    buf = _dump(flows)
    dec = FlowStatsDecoder(E.oxm_field_info, E.decode_flow_stats_at)
    fast = dec.entries(buf, 16, len(buf))
    msg = ofproto_parser.msg(E.DP, *ofproto_parser.header(buf), buf)
    slow = [E.decode_flow_stats(s) for s in msg.body]
    assert fast == flows
    assert slow == flows
    assert dec.slow == sum(any(isinstance(a, F.Controller) and a.userdata for a in f.actions)
                           for f in flows)
