"""Review s28 (address groups, stateless groups, remote_address_group_id):
data-plane findings.  Each test fails on the code reviewed.  The API
refuses an IPv6 scope now; these are about rows stored before, compiled by
the agent's engine (isolating: a value it cannot compile holds its owner,
fail closed)."""

from __future__ import annotations

import collections
import dataclasses

from agent.openflow import encode
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import AddressGroup, Rule, SecurityGroup

MEMBER = "2001:db8::5"  # a port of project A's remote group, on another host


def compile_flows(view):
    return Engine.from_view(view, isolate=True).flows()  # as agent/daemon.py makes it


def _two_projects(b_address):
    """port-0-0 (project A): TCP 22 from the members of sg-src (one of
    them 2001:db8::5).  port-0-1 (project B): TCP 80 from B's address
    group, which holds ``b_address``."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, groups=[])
    a, b = view.ports[0], view.ports[1]
    src = SecurityGroup("sg-src", (), frozenset({MEMBER}))
    sga = SecurityGroup("sg-a", (Rule("a-in", "sg-a", "ingress", "IPv6", 6, 22, 22,
                                      remote_group_id="sg-src"),), frozenset(a.ips))
    sgb = SecurityGroup("sg-b", (Rule("b-in", "sg-b", "ingress", "IPv6", 6, 80, 80,
                                      remote_address_group_id="ag-b"),), frozenset(b.ips))
    ports = (dataclasses.replace(a, security_groups=("sg-a",)),
             dataclasses.replace(b, security_groups=("sg-b",))) + view.ports[2:]
    return view.replace(ports=ports, security_groups=(src, sga, sgb),
                        address_groups=(AddressGroup("ag-b", frozenset({b_address})),))


def _switch_collisions(flows):
    """Desired flows that the switch holds as one (same table, priority
    and match as encoded on the wire): a later add replaces the other's
    actions, a delete of one removes both."""
    seen = collections.defaultdict(list)
    for f in flows:
        seen[(f.table, f.priority, encode.FAST.match_bytes(f.match))].append(f)
    return [fs for fs in seen.values() if len(fs) > 1]


def test_a_scoped_address_of_one_project_is_not_the_switch_flow_of_anothers_member():
    """F1 (data plane): project B's address group holds "2001:db8::5%x/128"
    (the API takes it: Python's ipaddress reads a scope id, Neutron's
    netaddr does not).  The engine keys it by its spelling, so it makes its
    own clause-2 flow "ipv6_src=2001:db8::5%x" beside project A's
    "ipv6_src=2001:db8::5" (a member of A's remote group): two desired
    flows, one on the switch (the encoder drops the scope).  Whichever is
    added last carries only its own conjunction (A's rule, or B's, stops
    admitting 2001:db8::5), and B removing the address deletes A's flow.
    The engine's own one-owner-per-flow check (the s25 F1 fix) cannot see
    it: the strings differ."""
    flows = compile_flows(_two_projects("2001:db8::5%x/128"))
    assert _switch_collisions(flows) == []


def test_a_scoped_address_group_cidr_is_matched_as_the_switch_spells_it():
    """(the same, alone) Every IPv6 term the engine makes is one the switch
    hands back as it was sent (check_canonical's promise): the reconciler
    compares a dump with these, and "2001:db8:1::%1" never compares equal
    to what the switch holds."""
    flows = compile_flows(_two_projects("2001:db8:1::%1/64"))
    for f in flows:
        for t in f.match:
            if t.name.startswith("ipv6_"):
                assert "%" not in str(t.value), f


def _as_the_switch_holds(flows, last_wins):
    """The table the switch ends with when every flow is added (an add of
    a match and priority it has replaces that flow); ``last_wins``: the
    order the colliding flows come in."""
    table = {}
    flows = list(flows)
    for f in (flows if last_wins else flows[::-1]):
        table[(f.table, f.priority, encode.FAST.match_bytes(f.match))] = f
    return list(table.values())


def test_each_projects_rule_admits_the_address_whatever_order_the_switch_got_them():
    """F1, what it costs: with the two flows above the switch keeps one;
    then either project A's rule (TCP 22 from its remote group's member
    2001:db8::5) or project B's (TCP 80 from its address group's
    2001:db8::5%x) no longer admits 2001:db8::5.  Now the scoped address
    is held (no flow): A's rule admits it whatever the order, and B's
    admits nothing through the address it cannot compile (fail closed)."""
    from quantum_ovs.compiler.trace import Tracer
    from quantum_ovs.model import FixedIP
    from tests.fixtures.scenario import VXLAN_OFPORT

    view = _two_projects("2001:db8::5%x/128")
    v6 = {"port-0-0": "fd00::a", "port-0-1": "fd00::b"}
    view = view.replace(ports=tuple(
        dataclasses.replace(p, fixed_ips=p.fixed_ips + (FixedIP("sub-0", v6[p.id]),))
        if p.id in v6 else p for p in view.ports))
    ofports = dict(view.chassis.vif_ofports)
    ports = {p.id: p for p in view.ports}
    flows = compile_flows(view)

    def admitted(tracer, port_id, dport):
        p = ports[port_id]
        pkt = dict(in_port=VXLAN_OFPORT, tunnel_id=1000,
                   tun_ipv4_src=view.remote_hosts[0].tunnel_ip,
                   eth_src="fa:16:3e:99:99:99", eth_dst=p.mac_address, eth_type=0x86DD,
                   ipv6_src=MEMBER, ipv6_dst=v6[port_id], ip_proto=6, tcp_src=40000,
                   tcp_dst=dport)
        return ofports[port_id] in tracer.run(pkt).ports

    for last_wins in (True, False):
        t = Tracer(_as_the_switch_holds(flows, last_wins))
        assert admitted(t, "port-0-0", 22), ("project A's rule", last_wins)
        assert not admitted(t, "port-0-1", 80), ("project B's rule", last_wins)


def test_a_scoped_stateless_rule_prefix_is_not_the_switch_flow_of_anothers_member():
    """F2 (rules): the API also takes remote_ip_prefix "2001:db8::5%x/128"
    (Neutron: InvalidCIDR).  In a stateless table a rule with no protocol
    and that prefix is clause 1 "ipv6_src=2001:db8::5%x", while project
    A's member 2001:db8::5 is clause 2 "ipv6_src=2001:db8::5": the review
    s25 F1 collision (one owner per switch flow, acl.address_at) is back,
    because address_at sees two different addresses."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, groups=[])
    a, b = view.ports[0], view.ports[1]
    src = SecurityGroup("sg-src", (), frozenset({MEMBER}))
    sga = SecurityGroup("sg-a", (Rule("a-in", "sg-a", "ingress", "IPv6", 6, 22, 22,
                                      remote_group_id="sg-src"),),
                        frozenset(a.ips), stateful=False)
    sgb = SecurityGroup("sg-b", (Rule("b-in", "sg-b", "ingress", "IPv6",
                                      remote_ip_prefix="2001:db8::5%x/128"),),
                        frozenset(b.ips), stateful=False)
    ports = (dataclasses.replace(a, security_groups=("sg-a",)),
             dataclasses.replace(b, security_groups=("sg-b",))) + view.ports[2:]
    flows = compile_flows(view.replace(ports=ports, security_groups=(src, sga, sgb)))
    assert _switch_collisions(flows) == []
