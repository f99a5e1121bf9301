"""The pipeline contract and the cookie layout."""

from __future__ import annotations

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.desired import CompileError
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import (
    Conjunction,
    Ct,
    Field,
    Flow,
    Controller,
    GotoTable,
    LoadBits,
    Match,
    Meter,
    Move,
    Output,
    SetField,
)
from quantum_ovs.compiler.synth import make_host_view, make_large_view

C = cookies.cookie_for(cookies.KIND_PORT, "p1")


def ok(flow):
    P.validate(flow)


def _commit(write):
    return Flow(P.INGRESS_ACL, 40, Match(conj_id=3, eth_type=0x800),
                (Ct(commit=True, zone_src="reg3", write=write), GotoTable(P.OUTPUT)), C)


@pytest.mark.parametrize("flow, why", [
    (Flow(P.CLASSIFY, 1, Match(eth_dst="fa:16:3e:00:00:01"), (), C), "may not match"),
    (Flow(P.CLASSIFY, 1, Match(in_port=1), (SetField("reg7", 1),), C), "may not set"),
    (Flow(P.CLASSIFY, 1, Match(in_port=1), (GotoTable(P.OUTPUT),), C), "may not go"),
    (Flow(P.CLASSIFY, 1, Match(in_port=1), (GotoTable(P.PORT_SECURITY), Output(1)), C),
     "last"),
    (Flow(P.OUTPUT, 1, Match(reg7=1), (Output(1),), 0x1234), "marker"),
    (Flow(P.PORT_SECURITY, 1, Match(reg5=1, ipv4_src="10.0.0.1"), (), C), "eth_type"),
    (Flow(P.EGRESS_ACL, 1, Match(Field("tcp_dst", 22), eth_type=0x800), (), C), "ip_proto"),
    (Flow(P.EGRESS_ACL, 1, Match(conj_id=5), (Ct(commit=True, zone_src="reg6"),), C),
     "ct()"),
    (Flow(P.EGRESS_ACL, 1, Match(reg5=1), (Conjunction(1, 0, 2), GotoTable(P.L2_LOOKUP)), C),
     "only conjunctions"),
    (Flow(P.EGRESS_ACL, 1, Match(reg5=1), (Conjunction(1, 2, 2),), C), "clause"),
    (Flow(99, 1, Match(), (), C), "no table"),
    (Flow(P.OUTPUT, 70000, Match(reg7=1), (), C), "priority"),
    (Flow(P.SERVICES, 100, Match(reg5=3), (Controller(), Meter(3)), C), "first"),
    (Flow(P.SERVICES, 100, Match(reg5=3), (Meter(0), Controller()), C), "meter id"),
    (Flow(P.OUTPUT, 100, Match(reg7=3), (Meter(3), Output(3)), C), "may not use Meter"),
    # IP to other hosts is committed once per network, in REMOTE_OUT
    (Flow(P.L2_LOOKUP, 51, Match(reg6=1, eth_type=0x800),
          (Ct(commit=True, zone_src="reg3"), Output(9)), C), "may not use Ct"),
    (Flow(P.REMOTE_OUT, 10, Match(reg6=1), (SetField("tun_ipv4_dst", "192.0.2.1"), Output(9)),
          C), "may not set"),
    # what a ct() writes into its connection: only what the encoder can
    # build (os-ken cannot pad a masked load of ct_label), and never the
    # condemned bit by a load (review s24 F4)
    (_commit(LoadBits("ct_label", 1, 1)), "loads ct_mark"),
    (_commit(LoadBits("ct_mark", 1, 1)), "loads ct_mark"),
    (_commit(LoadBits("ct_mark", 4, 2)), "loads ct_mark"),
    (_commit(Move("eth_dst", "ct_mark", 32)), "moves eth_dst"),
    (_commit(Move("eth_src", "ct_label", 48)), "moves eth_dst"),
    (_commit(Move("eth_dst", "ct_label", 48, 0, 100)), "moves eth_dst"),
    (Flow(P.INGRESS_ACL, 40, Match(conj_id=3, eth_type=0x800),
          (Ct(commit=True, zone_src="reg3", mark=1, write=LoadBits("ct_mark", 2, 2)),), C),
     "no mark"),
])
def test_contract_violations_raise(flow, why):
    with pytest.raises(P.PipelineError, match=why):
        P.validate(flow)


def test_valid_flows_pass():
    ok(Flow(P.CLASSIFY, 100, Match(in_port=5), (SetField("reg5", 5),
                                                  GotoTable(P.PORT_SECURITY)), C))
    ok(Flow(P.EGRESS_ACL, 40, Match(conj_id=5, eth_type=0x800),
            (Ct(commit=True, zone_src="reg6"), GotoTable(P.L2_LOOKUP)), C))
    ok(Flow(P.SERVICES, 100, Match(reg5=3), (Meter(3), Controller()), C))


@pytest.mark.parametrize("ntype", ["vxlan", "gre", "vlan", "local"])
def test_every_compiled_flow_obeys_the_contract(ntype):
    e = Engine.from_view(make_host_view(2, 3, 2, 2, network_type=ntype), validate=False)
    flows = e.flows()
    assert len(flows) > 50
    for f in flows:
        P.validate(f)
        assert cookies.is_ours(f.cookie)


def test_cookies_name_their_owner():
    a = cookies.cookie_for(cookies.KIND_PORT, "port-1")
    assert cookies.is_ours(a)
    assert cookies.kind_of(a) == cookies.KIND_PORT
    assert a != cookies.cookie_for(cookies.KIND_PORT, "port-2")
    assert a != cookies.cookie_for(cookies.KIND_NETWORK, "port-1")
    assert a == cookies.cookie_for(cookies.KIND_PORT, "port-1")  # stable
    assert not cookies.is_ours(0) and not cookies.is_ours(0x1234)
    assert a & cookies.OURS_MASK == cookies.OURS_VALUE
    assert a < 1 << 64


def test_port_flows_carry_the_port_cookie():
    view = make_host_view(1, 2)
    e = Engine.from_view(view)
    c = cookies.cookie_for(cookies.KIND_PORT, "port-0-0")
    mine = [f for f in e.flows() if f.cookie == c]
    assert mine and {f.table for f in mine} >= {P.CLASSIFY, P.PORT_SECURITY, P.L2_LOOKUP,
                                                 P.OUTPUT}


def test_two_networks_on_one_flat_physnet_is_a_compile_error():
    with pytest.raises(CompileError):
        Engine.from_view(make_host_view(2, 1, network_type="flat"))


def test_duplicate_explicit_local_ids_rejected():
    view = make_host_view(2, 1)
    n0, n1 = view.networks
    import dataclasses
    with pytest.raises(CompileError):
        Engine.from_view(view.replace(networks=(n0, dataclasses.replace(n1, local_id=1))))


def test_flows_grow_linearly():
    """Flows per unit of (ports + rules + members) stay flat as the view grows."""
    counts = []
    for n in (100, 400):
        view = make_large_view(local_ports=n, networks=n // 10, remote_hosts=10,
                               remote_ports=n, n_groups=10, max_members=n)
        size = len(view.ports) + sum(len(g.rules) + len(g.member_ips)
                                     for g in view.security_groups)
        counts.append(len(Engine.from_view(view)) / size)
    assert counts[1] < counts[0] * 1.2


def test_pipeline_describes_itself():
    text = P.describe()
    for t in P.TABLES.values():
        assert t.name in text


def test_set_field_prerequisites_follow_the_match():
    """As on the switch: setting nd_tll in a flow that matches a
    solicitation is refused even if an earlier action made it an
    advertisement (ovs-ofctl: OFPBAC_MATCH_INCONSISTENT)."""
    from quantum_ovs.compiler.flow import Field, Flow, Output, OFPP_IN_PORT, SetField
    from quantum_ovs.compiler.pipeline import SERVICES, PipelineError, validate
    from quantum_ovs.compiler.rules.common import mk

    cookie = cookies.cookie_for(cookies.KIND_ROUTER, "r")
    ns = mk(Field("eth_type", 0x86DD), Field("ip_proto", 58), Field("icmpv6_type", 135))
    bad = Flow(SERVICES, 100, ns, (SetField("icmpv6_type", 136),
                                   SetField("ipv6_nd_tll", "fa:16:3e:00:00:01"),
                                   Output(OFPP_IN_PORT)), cookie)
    with pytest.raises(PipelineError, match="ipv6_nd_tll needs icmpv6_type"):
        validate(bad)
    good = Flow(SERVICES, 100, ns, (SetField("ipv6_nd_sll", "fa:16:3e:00:00:01"),
                                    SetField("icmpv6_type", 136), Output(OFPP_IN_PORT)), cookie)
    validate(good)


def test_set_field_checks_remembered_per_match_shape():
    """The set-field prerequisite checks are remembered per (match shape,
    field, value where it matters): another address passes on what was
    checked, while a flow whose match lacks the prerequisite, or sets a
    field its match does not allow, is refused however many like it passed
    before (each flow its own new action tuple, as per-port replies are)."""
    from quantum_ovs.compiler.flow import Field, Flow, OFPP_IN_PORT, SetField
    from quantum_ovs.compiler.pipeline import SERVICES, PipelineError, validate
    from quantum_ovs.compiler.rules.common import arp_reply, mk

    cookie = cookies.cookie_for(cookies.KIND_ROUTER, "r")
    arp = mk(Field("eth_type", 0x0806), Field("arp_op", 1), Field("arp_tpa", "10.0.0.1"))

    def reply(match, ip, field="arp_spa"):
        actions = arp_reply(f"fa:16:3e:00:00:{len(ip):02x}", "10.0.0.1")
        return Flow(SERVICES, 100, match,
                    actions[:-2] + (SetField(field, ip), actions[-1]), cookie)

    for i in range(3):
        validate(reply(arp, f"10.0.0.{i + 1}"))
    ip4 = mk(Field("eth_type", 0x0800), Field("ipv4_dst", "10.0.0.1"))
    with pytest.raises(PipelineError, match="needs eth_type"):
        validate(Flow(SERVICES, 100, ip4, (SetField("arp_spa", "10.0.0.9"),
                                           Output(OFPP_IN_PORT)), cookie))
    with pytest.raises(PipelineError, match="ipv6_src needs eth_type"):
        validate(reply(arp, "fe80::1", field="ipv6_src"))
    ns = mk(Field("eth_type", 0x86DD), Field("ip_proto", 58), Field("icmpv6_type", 135))
    validate(Flow(SERVICES, 100, ns, (SetField("icmpv6_type", 136),
                                      SetField("ipv6_nd_sll", "fa:16:3e:00:00:01"),
                                      Output(OFPP_IN_PORT)), cookie))
    with pytest.raises(PipelineError, match="ipv6_nd_tll needs icmpv6_type"):
        validate(Flow(SERVICES, 100, ns, (SetField("icmpv6_type", 136),
                                          SetField("ipv6_nd_tll", "fa:16:3e:00:00:02"),
                                          Output(OFPP_IN_PORT)), cookie))
