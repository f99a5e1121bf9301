"""In a stateless table a rule with no protocol has no conntrack term: its
clause-1 flow can be the very flow of an address's clause 2 (a member or
an address group CIDR of a remote key).  Two owners of one flow: tests
raised CompileError, and the agent held both owners, so one project's
stateless rule cut another project's rules on the host (review s25 F1).
One owner, the rule match, now gives the flow with both clauses
(acl.address_at); the address owner gives none.  These tests failed
before, and incrementally the table stays a full compile's."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.compiler.flow import CT_NEW
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressGroup, GroupMembers, Rule, SecurityGroup
from tests.fixtures.scenario import change


def _three_ports():
    view = make_host_view(networks=1, ports_per_net=3, groups=[], remote_hosts=0,
                          remote_ports_per_net=0)
    return view, view.ports[:3]


def _tcp(a, b, ofport_a, dport):
    return {"in_port": ofport_a, "eth_src": a.mac_address, "eth_dst": b.mac_address,
            "eth_type": 0x0800, "ipv4_src": a.ips[0], "ipv4_dst": b.ips[0],
            "ip_proto": 6, "tcp_src": 40000, "tcp_dst": dport}


def _stateless_collision_view(third_group: bool, how: str = "prefix"):
    """port-0-0 (10.0.0.10, project Y's stateless sg-src) talks to
    port-0-1 (project Y's stateless sg-y: TCP 22 from the members of
    sg-src, or from an address group).  ``third_group``: port-0-2, of
    another project X, is in X's stateless sg-x, whose one rule lets in
    what comes from 10.0.0.10/32 (``how`` "prefix"), or every IPv4
    packet (``how`` "any", against Y's address group of 0.0.0.0/0)."""
    view, (a, b, c) = _three_ports()
    src = SecurityGroup("sg-src", (Rule("s-eg", "sg-src", "egress", "IPv4"),),
                        frozenset({a.ips[0]}), stateful=False)
    if how == "prefix":
        y_rule = Rule("y-in", "sg-y", "ingress", "IPv4", 6, 22, 22, remote_group_id="sg-src")
        x_rule = Rule("x-in", "sg-x", "ingress", "IPv4", remote_ip_prefix=f"{a.ips[0]}/32")
        ags = ()
    else:
        y_rule = Rule("y-in", "sg-y", "ingress", "IPv4", 6, 22, 22,
                      remote_address_group_id="ag-all")
        x_rule = Rule("x-in", "sg-x", "ingress", "IPv4")
        ags = (AddressGroup("ag-all", frozenset({"0.0.0.0/0"})),)
    y = SecurityGroup("sg-y", (y_rule,), frozenset({b.ips[0]}), stateful=False)
    x = SecurityGroup("sg-x", (x_rule,), frozenset({c.ips[0]}), stateful=False)
    groups = (src, y, x) if third_group else (src, y)
    ports = (dataclasses.replace(a, security_groups=("sg-src",)),
             dataclasses.replace(b, security_groups=("sg-y",)),
             dataclasses.replace(c, security_groups=("sg-x",) if third_group else ()))
    return view.replace(ports=ports, security_groups=groups, address_groups=ags), (a, b, c)


@pytest.mark.parametrize("how", ["prefix", "any"])
def test_a_stateless_rule_does_not_collide_with_another_groups_remote_addresses(how):
    """F1: in the stateless tables a plain rule's clause-1 flow (its
    remote_ip_prefix, no conntrack term) and a remote group member's (or
    address group CIDR's) clause-2 flow can be the same (table, priority,
    match).  The engine sees two owners of one flow: CompileError in
    tests; in the agent (isolate=True) both owners are held, so project
    X's new rule silently cuts project Y's remote-group rule on this host
    (and X's own rule never works).  Neutron's OVS firewall gives each
    rule its own flows and conj_ids: both rules work."""
    view, (a, b, c) = _stateless_collision_view(third_group=True, how=how)
    for isolate in (False, True):
        e = Engine.from_view(view, isolate=isolate)
        assert not e.desired.held, e.desired.held
        tr = Tracer(e.flows())
        ofs = dict(view.chassis.vif_ofports)
        t = tr.run(_tcp(a, b, ofs[a.id], 22), CT_NEW)
        assert ofs[b.id] in t.ports, t.format()  # Y's rule: TCP 22 from sg-src
        t = tr.run(_tcp(a, c, ofs[a.id], 80), CT_NEW)
        assert ofs[c.id] in t.ports, t.format()  # X's rule: anything from 10.0.0.10


def test_the_collision_scenario_works_without_the_other_projects_group():
    """(control: without sg-x, project Y's rule lets TCP 22 in)"""
    view, (a, b, c) = _stateless_collision_view(third_group=False)
    e = Engine.from_view(view, isolate=True)
    ofs = dict(view.chassis.vif_ofports)
    assert ofs[b.id] in Tracer(e.flows()).run(_tcp(a, b, ofs[a.id], 22), CT_NEW).ports


def test_an_address_group_of_everything_does_not_cut_every_stateless_ports_egress():
    """F1, its widest form: project Y's stateless group has an egress rule
    to an address group holding 0.0.0.0/0 (clause 2: eth_type=IPv4 in
    EGRESS_ACL_SL); project X's stateless group has the egress rule every
    new group is given (IPv4 to anywhere: clause 1, the same match).  In
    the agent both owners are held: every stateless port on the host whose
    groups allow egress to anywhere can send no IPv4 at all."""
    view, (a, b, c) = _three_ports()
    x = SecurityGroup("sg-x", (Rule("x-eg", "sg-x", "egress", "IPv4"),
                               Rule("x-in", "sg-x", "ingress", "IPv4")),
                      frozenset({a.ips[0], b.ips[0]}), stateful=False)
    y = SecurityGroup("sg-y", (Rule("y-eg", "sg-y", "egress", "IPv4", 6, 443, 443,
                                    remote_address_group_id="ag-all"),),
                      frozenset({c.ips[0]}), stateful=False)
    ports = (dataclasses.replace(a, security_groups=("sg-x",)),
             dataclasses.replace(b, security_groups=("sg-x",)),
             dataclasses.replace(c, security_groups=("sg-y",)))
    view = view.replace(ports=ports, security_groups=(x, y),
                        address_groups=(AddressGroup("ag-all", frozenset({"0.0.0.0/0"})),))
    e = Engine.from_view(view, isolate=True)
    ofs = dict(view.chassis.vif_ofports)
    t = Tracer(e.flows()).run(_tcp(a, b, ofs[a.id], 80), CT_NEW)
    assert ofs[b.id] in t.ports, (e.desired.held, t.format())


def _steps(view, a, c):
    """Changes, each of one input, that make and unmake the shared flow
    (-> the new view)."""
    def member(e, v, ip, on):
        g = next(x for x in v.security_groups if x.id == "sg-src")
        now = frozenset({ip}) if on else frozenset()
        change(e, group_members=(GroupMembers("sg-src", frozenset({ip}), now),))
        g = dataclasses.replace(g, member_ips=(g.member_ips - {ip}) | now)
        return v.replace(security_groups=tuple(g if x.id == g.id else x
                                               for x in v.security_groups))

    def rule(e, v, on):
        x = next(g for g in v.security_groups if g.id == "sg-x")
        r = Rule("x-in", "sg-x", "ingress", "IPv4", remote_ip_prefix=f"{a.ips[0]}/32")
        x = dataclasses.replace(x, rules=(r,) if on else ())
        change(e, security_groups=(x,))
        return v.replace(security_groups=tuple(x if g.id == x.id else g
                                               for g in v.security_groups))

    def stateful(e, v, gid):
        g = next(x for x in v.security_groups if x.id == gid)
        g = dataclasses.replace(g, stateful=not g.stateful)
        change(e, security_groups=(g,))
        return v.replace(security_groups=tuple(g if x.id == gid else x
                                               for x in v.security_groups))

    def ag(e, v, on):
        addrs = frozenset({"0.0.0.0/0", f"{c.ips[0]}/32"}) if on else frozenset({"10.99.0.0/16"})
        new = AddressGroup("ag-all", addrs)
        change(e, address_groups=(new,))
        return v.replace(address_groups=(new,))

    return {
        "member off": lambda e, v: member(e, v, a.ips[0], False),
        "member on": lambda e, v: member(e, v, a.ips[0], True),
        "rule off": lambda e, v: rule(e, v, False),
        "rule on": lambda e, v: rule(e, v, True),
        "x stateful": lambda e, v: stateful(e, v, "sg-x"),
        "y stateful": lambda e, v: stateful(e, v, "sg-y"),
        "ag": lambda e, v: ag(e, v, False),
        "ag back": lambda e, v: ag(e, v, True),
    }


@pytest.mark.parametrize("order", list(itertools.permutations(
    ["member off", "rule off", "x stateful", "ag", "member on", "rule on"], 4)))
def test_incremental_changes_keep_the_shared_flow_right(order):
    """Every order of four changes that make, unmake or move the shared
    flow: after each, the engine's table is a full compile's, and no owner
    is held."""
    view, (a, b, c) = _stateless_collision_view(third_group=True)
    view = view.replace(address_groups=(AddressGroup("ag-all", frozenset({"0.0.0.0/0"})),))
    # (y's group also admits TCP 80 from the address group: its 0.0.0.0/0
    # is the flow of x's rule with no prefix when x has one)
    groups = []
    for g in view.security_groups:
        if g.id == "sg-y":
            g = dataclasses.replace(g, rules=g.rules + (Rule(
                "y-ag", "sg-y", "ingress", "IPv4", 6, 80, 80, remote_address_group_id="ag-all"),))
        if g.id == "sg-x":
            g = dataclasses.replace(g, rules=g.rules + (Rule("x-any", "sg-x", "ingress",
                                                               "IPv4"),))
        groups.append(g)
    view = view.replace(security_groups=tuple(groups))
    e = Engine.from_view(view)
    steps = _steps(view, a, c)
    for name in order:
        view = steps[name](e, view)
        assert not e.desired.held, (name, e.desired.held)
        assert e.flows() == compile_flows(view, e.alloc), name
