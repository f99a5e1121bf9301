"""Values of a host view the switch cannot take as written are refused
where their owner is computed (rules/checks.py), never widened: the
pieces behind tests/unit/agent/test_agent_view_review_s27.py."""

from __future__ import annotations

import dataclasses
import time

import pytest

from quantum_ovs.compiler.engine import REFUSED_RULE, Engine
from quantum_ovs.compiler.rules import checks
from quantum_ovs.compiler.rules.gateway import forwarded_ports
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import AddressGroup, Delta, PortForwarding, Rule, Segment


def _pf(lo, hi, ilo, ihi):
    return PortForwarding("pf", "tcp", "port-0-0", "10.0.0.10", lo, hi, ilo, ihi)


@pytest.mark.parametrize("lo,hi,ilo,ihi", [
    (70000, 70000, 22, 22),        # beyond 16 bits: another port on the wire
    (1, 10 ** 12, 1, 10 ** 12),    # a hostile range: no term per port
    (1, 10 ** 9, 2, 10 ** 9 + 1),  # shifted: would walk a billion ports
    (0, 10, 1, 11),                # port 0 is no external port
    (100, 90, 100, 90),            # upside down
    (100, 200, 1000, 1050),        # ranges of other lengths
])
def test_forwarded_ports_refuses_a_range_outside_the_port_space(lo, hi, ilo, ihi):
    t = time.monotonic()
    with pytest.raises(ValueError):
        forwarded_ports(_pf(lo, hi, ilo, ihi))
    assert time.monotonic() - t < 0.1  # refused, not walked


def test_forwarded_ports_still_takes_a_whole_range():
    (terms, iport), = forwarded_ports(_pf(1, 65535, 1, 65535))
    assert iport is None and len(terms) == 16


@pytest.mark.parametrize("net_type,sid,ok", [
    ("vlan", 1, True), ("vlan", 4094, True), ("vlan", 0, False), ("vlan", 4095, False),
    ("vlan", 4103, False), ("vlan", -1, False), ("vxlan", 2 ** 24 - 1, True),
    ("vxlan", 2 ** 24, False), ("gre", 2 ** 32 - 1, True), ("gre", 2 ** 32, False),
    ("flat", None, True),
])
def test_segment_ids_outside_their_wire_format_are_refused(net_type, sid, ok):
    seg = Segment(net_type, "physnet1" if net_type in ("vlan", "flat") else None, sid)
    if ok:
        checks.segment(seg)
    else:
        with pytest.raises(ValueError):
            checks.segment(seg)


def test_a_refused_rule_is_noted_and_forgotten_once_corrected():
    view = make_host_view(networks=1, ports_per_net=2)
    g = view.security_groups[0]
    bad = Rule("bad", g.id, "ingress", "IPv4", remote_ip_prefix="10.0.0.0/33")
    e = Engine.from_view(view, isolate=True)
    e.apply(Delta(revision=2, security_groups=(dataclasses.replace(g, rules=g.rules + (bad,)),)))
    assert set(e.refused) == {(REFUSED_RULE, g.id, "bad")}
    e.apply(Delta(revision=3, security_groups=(g,)))
    assert e.refused == {}
    # and the table is what a fresh engine computes from the corrected view
    assert e.flows() == Engine.from_view(e.view(), e.alloc, isolate=True).flows()


def test_an_address_group_cidr_that_does_not_parse_matches_nothing():
    view = make_host_view(networks=1, ports_per_net=2)
    g = view.security_groups[0]
    rule = Rule("from-ag", g.id, "ingress", "IPv4", remote_address_group_id="ag")
    view = view.replace(security_groups=(dataclasses.replace(g, rules=g.rules + (rule,)),),
                        address_groups=(AddressGroup("ag", frozenset({"10.9.0.0/33",
                                                                       "10.8.0.0/16"})),))
    e = Engine.from_view(view, isolate=True)
    srcs = {f.value for fl in e.flows() for f in fl.match if f.name == "ipv4_src"}
    assert "10.8.0.0" in srcs and not any(str(s).startswith("10.9.") for s in srcs)


@pytest.mark.parametrize("kw", [
    {"remote_ip_prefix": "10.0.0.0/33"}, {"remote_ip_prefix": ["10.0.0.0/8"]},
    {"remote_group_id": ["sg"]}, {"protocol": "6"}, {"protocol": 300},
    {"protocol": 6, "port_range_min": 1, "port_range_max": 70000},
    {"protocol": 1, "port_range_min": 8, "port_range_max": 256},
])
def test_rule_problem_names_what_cannot_be_compiled(kw):
    assert checks.rule_problem(Rule("r", "sg", "ingress", "IPv4", **kw)) is not None


def test_rule_problem_passes_what_can():
    for kw in ({}, {"protocol": 6, "port_range_min": 22, "port_range_max": 22,
                    "remote_ip_prefix": "0.0.0.0/0"},
               {"protocol": 58, "port_range_min": 128, "port_range_max": 0,
                "remote_ip_prefix": "fd00::/8"}, {"remote_group_id": "sg"}):
        assert checks.rule_problem(Rule("r", "sg", "ingress", "IPv4", **kw)) is None
