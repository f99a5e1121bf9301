"""Rules naming an address group (remote_address_group_id), asserted with
the packet tracer: exactly the group's addresses pass, IPv4 and IPv6;
flows grow with rules + addresses, not their product; an address change
recomputes that address's flows only."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.engine import compile_flows
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressGroup, FixedIP, Rule, SecurityGroup

from tests.fixtures.scenario import VXLAN_OFPORT, Scenario, change

AG = AddressGroup("ag-1", frozenset({"10.9.0.0/24", "10.8.0.7/32", "2001:db8:9::/64",
                                     "2001:db8:8::7/128"}))
SERVER = "port-0-1"
VNI = 1000  # net-0's


def _view(rules, groups=(AG,), server_v6="fd00::11"):
    """port-0-1 (the server, sg-server with ``rules`` and egress all) has
    an IPv4 and an IPv6 address; packets come to it over the tunnel."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, groups=[])
    ports = []
    for p in view.ports:
        if p.id == SERVER:
            p = dataclasses.replace(p, security_groups=("sg-server",), fixed_ips=p.fixed_ips
                                    + (FixedIP("sub-0", server_v6),))
        ports.append(p)
    sg = SecurityGroup("sg-server", tuple(rules) + (
        Rule("eg4", "sg-server", "egress", "IPv4"), Rule("eg6", "sg-server", "egress", "IPv6")))
    return view.replace(ports=tuple(ports), security_groups=(sg,), address_groups=tuple(groups))


def _rule(rid="ag4", ether="IPv4", ag="ag-1", **kw):
    return Rule(rid, "sg-server", kw.pop("direction", "ingress"), ether,
                remote_address_group_id=ag, **kw)


def _in(s, src, dport=22):
    """A TCP SYN to the server from ``src`` (over the tunnel): delivered?"""
    server = s.port(SERVER)
    v6 = ":" in src
    peer = s.view.remote_hosts[0].tunnel_ip  # (a host of the view sends it)
    pkt = dict(tunnel_id=VNI, tun_ipv4_src=peer, eth_src="fa:16:3e:99:99:99",
               eth_dst=server.mac_address,
               eth_type=0x86DD if v6 else 0x0800, ip_proto=6, tcp_src=40000, tcp_dst=dport)
    if v6:
        pkt.update(ipv6_src=src, ipv6_dst=server.ips[1])
    else:
        pkt.update(ipv4_src=src, ipv4_dst=server.ips[0])
    return s.ofport(SERVER) in s.inject(VXLAN_OFPORT, **pkt).ports


def test_exactly_the_groups_addresses_pass_ipv4_and_ipv6():
    s = Scenario(_view([_rule(protocol=6, port_range_min=22, port_range_max=22),
                        _rule("ag6", "IPv6", protocol=6, port_range_min=22, port_range_max=22)]))
    for src, ok in (("10.9.0.1", True), ("10.9.0.254", True), ("10.9.1.1", False),
                    ("10.8.0.7", True), ("10.8.0.8", False), ("10.0.0.10", False),
                    ("2001:db8:9::1", True), ("2001:db8:9:0:ffff::1", True),
                    ("2001:db8:9:1::1", False), ("2001:db8:8::7", True),
                    ("2001:db8:8::8", False)):
        assert _in(s, src) is ok, src
    # the rule's own match still applies
    assert not _in(s, "10.9.0.1", dport=23)


def test_a_family_rule_lets_only_that_familys_addresses_through():
    s = Scenario(_view([_rule()]))  # IPv4 only
    assert _in(s, "10.9.0.1") and not _in(s, "2001:db8:9::1")


def test_egress_to_a_group():
    s = Scenario(_view([_rule("eg-ag", direction="egress", protocol=6)]).replace(
        security_groups=(SecurityGroup("sg-server", (
            _rule("eg-ag", direction="egress", protocol=6),)),)))
    server = s.port(SERVER)

    def out(dst):
        t = s.send(SERVER, eth_dst="fa:16:3e:00:00:0b", eth_type=0x0800,
                   ipv4_src=server.ips[0], ipv4_dst=dst, ip_proto=6, tcp_src=4000, tcp_dst=80)
        return bool(t.outputs)
    assert out("10.9.0.5") and out("10.8.0.7")
    assert not out("10.9.2.5") and not out("10.0.0.10")


def test_unknown_or_empty_group_lets_nothing_through():
    assert not _in(Scenario(_view([_rule(ag="ag-missing")])), "10.9.0.1")
    assert not _in(Scenario(_view([_rule()], groups=(AddressGroup("ag-1"),))), "10.9.0.1")


def test_flows_linear_in_rules_plus_addresses():
    addrs = frozenset(f"10.{i // 200}.{i % 200}.0/24" for i in range(400))
    ag = AddressGroup("ag-1", addrs)

    def rules_of(n):
        return [_rule(f"r{i}", protocol=6, port_range_min=1000 + i, port_range_max=1000 + i)
                for i in range(n)]

    def n_flows(n_rules):
        return len(compile_flows(_view(rules_of(n_rules), groups=(ag,))))

    one, eleven, twentyone = n_flows(1), n_flows(11), n_flows(21)
    # 10 more rules (one port each) cost one flow each, not 400 (one per address)
    assert eleven - one == twentyone - eleven == 10
    empty = len(compile_flows(_view(rules_of(1), groups=(AddressGroup("ag-1"),))))
    assert one - empty == 400  # one flow per address


def test_address_shared_with_a_remote_group_member_is_one_flow():
    """10.0.0.10 is port-0-0's address (a member of sg-server's remote
    group) and a /32 of the address group: one clause-2 flow, both keys."""
    ag = AddressGroup("ag-1", frozenset({"10.0.0.10/32"}))
    rules = [_rule(protocol=6, port_range_min=22, port_range_max=22),
             Rule("rg", "sg-server", "ingress", "IPv4", 6, 80, 80,
                  remote_group_id="sg-server")]
    view = _view(rules, groups=(ag,))
    sg = dataclasses.replace(view.security_groups[0], member_ips=frozenset({"10.0.0.10"}))
    s = Scenario(view.replace(security_groups=(sg,)))
    assert _in(s, "10.0.0.10", 22) and _in(s, "10.0.0.10", 80)
    assert not _in(s, "10.0.0.11", 22)


def test_address_change_is_incremental_and_cuts_at_once():
    s = Scenario(_view([_rule(protocol=6), _rule("ag6", "IPv6", protocol=6)]))
    e = s.engine
    assert _in(s, "10.8.0.7") and _in(s, "2001:db8:9::1")
    e.stats.reset()
    smaller = AddressGroup("ag-1", AG.addresses - {"10.8.0.7/32", "2001:db8:9::/64"}
                           | {"10.7.0.0/16"})
    diff = change(e, address_groups=(smaller,))
    assert e.stats.full_recomputes == 0
    # the two addresses that went, the one that came: nothing else
    assert dict(e.stats.owner_recomputes) == {"address": 3}
    kinds = {cookies.kind_of(f.cookie) for f in diff.adds + diff.deletes + diff.modifies}
    assert kinds == {cookies.KIND_ADDRESS}
    assert e.flows() == compile_flows(e.view(), e.alloc)
    s.tracer = Tracer(e.flows())
    assert not _in(s, "10.8.0.7") and not _in(s, "2001:db8:9::1")
    assert _in(s, "10.7.3.3") and _in(s, "10.9.0.1") and _in(s, "2001:db8:8::7")
    # A full group set without it (groups_complete): its flows go.
    change(e, security_groups=e.view().security_groups, groups_complete=True)
    assert e.address_groups == {}
    s.tracer = Tracer(e.flows())
    assert not _in(s, "10.9.0.1")
    assert e.flows() == compile_flows(e.view(), e.alloc)
