"""Out of a port with port security, ICMPv6 that its egress rules do not
name leaves only as Neutron's OVS firewall lets it without rules
(firewall.ICMPV6_ALLOWED_EGRESS_TYPES: MLD queries, router and neighbour
solicitations; neighbour advertisements for its own addresses): MLD
reports and done (131, 132, 143) meet the port's egress rules, as they
do in Neutron."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import Rule, SecurityGroup
from tests.fixtures.scenario import PATCH_OFPORT, Scenario

MLD_ROUTERS = "33:33:00:00:00:16"  # ff02::16, MLDv2 reports


def _scenario(*rules):
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, network_type="vlan")
    group = SecurityGroup("sg-default", tuple(rules), frozenset())
    subnets = tuple(dataclasses.replace(x, enable_dhcp=False) for x in view.subnets)
    return Scenario(view.replace(subnets=subnets, security_groups=(group,)))


def _send(s, icmpv6_type):
    p = s.port("port-0-0")
    return s.send("port-0-0", eth_dst=MLD_ROUTERS, eth_type=0x86DD,
                  ipv6_src=link_local(p.mac_address), ipv6_dst="ff02::16", ip_proto=58,
                  icmpv6_type=icmpv6_type, nw_ttl=1)


def test_mld_reports_out_of_a_port_need_its_egress_rules():
    closed = _scenario(Rule("i4", "sg-default", "ingress", "IPv4"))
    leaked = [t for t in (131, 132, 143) if PATCH_OFPORT in _send(closed, t).ports]
    assert leaked == [], leaked
    # Neutron's own list still leaves without rules
    assert PATCH_OFPORT in _send(closed, 130).ports
    # and with an egress rule for IPv6 they leave
    opened = _scenario(Rule("e6", "sg-default", "egress", "IPv6"))
    assert [t for t in (131, 132, 143) if PATCH_OFPORT in _send(opened, t).ports] == \
        [131, 132, 143]
