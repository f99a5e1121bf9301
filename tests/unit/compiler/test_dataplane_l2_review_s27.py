"""Data-plane L2 security review (session 27): what the compiled flows let
through or stop, compared with Neutron's OVS firewall
(neutron/agent/linux/openvswitch_firewall/firewall.py) and its iptables
firewall (neutron/agent/linux/iptables_firewall.py) for the same model.

Each test fails on the code it was written against and passes once the
finding it names is fixed.  Packets are walked through the compiled flows
with the tracer (no Open vSwitch).
"""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import AddressPair, FixedIP, Rule, SecurityGroup, Subnet

from tests.fixtures.scenario import BROADCAST, PATCH_OFPORT, Scenario

PAIR_MAC = "fa:16:3e:aa:bb:cc"
PAIR_IP = "10.0.0.100"


def _group(*rules) -> SecurityGroup:
    return SecurityGroup("sg-default", tuple(rules), frozenset())


# --------------------------------------------------------------------- F1
def test_unicast_to_an_address_pairs_mac_reaches_only_its_port():
    """F1: a frame sent to the MAC of port A's allowed address pair (a
    VRRP/keepalived virtual MAC, a nested container's MAC) is flooded to
    every port of the network, and every port whose ingress rules admit it
    gets a copy of traffic meant for A (a third port of the network -- of
    another project on a shared network -- sniffs it in promiscuous mode).
    Neutron's OVS firewall sends what is for one of a port's allowed MACs
    to that port (firewall.py _initialize_egress: ACCEPT_OR_INGRESS_TABLE,
    dl_dst=mac for mac in port.all_allowed_macs -> reg_port = the port,
    BASE_INGRESS_TABLE), and its learning switch delivers to the port the
    MAC was seen on; no other port of the network gets it."""
    view = make_host_view(networks=1, ports_per_net=3)
    ports = list(view.ports)
    ports[0] = dataclasses.replace(ports[0],
                                   allowed_address_pairs=(AddressPair(PAIR_IP, PAIR_MAC),))
    group = _group(Rule("e4", "sg-default", "egress", "IPv4"),
                   Rule("i80", "sg-default", "ingress", "IPv4", 6, 80, 80))
    s = Scenario(view.replace(ports=tuple(ports), security_groups=(group,)))
    src = s.port("port-0-1")
    t = s.send("port-0-1", eth_dst=PAIR_MAC, eth_type=0x0800, ipv4_src=src.ips[0],
               ipv4_dst=PAIR_IP, ip_proto=6, tcp_src=40000, tcp_dst=80)
    assert s.ofport("port-0-0") in t.ports  # the pair's own port gets it
    # ... and no one else: port-0-2 holds neither the MAC nor the address
    assert s.ofport("port-0-2") not in t.ports, t.format()


# --------------------------------------------------------------------- F2
def _no_dhcp_vlan_scenario(egress_rules=()):
    """A VLAN (provider) network whose subnets leave DHCP to a server on
    the physical network (enable_dhcp False), its ports in a group with no
    egress rule (or ``egress_rules``)."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, network_type="vlan")
    sub6 = Subnet("sub6-0", "net-0", "2001:db8::/64", 6, "2001:db8::1",
                  enable_dhcp=False)
    subnets = tuple(dataclasses.replace(x, enable_dhcp=False) for x in view.subnets) + (sub6,)
    group = _group(Rule("i22", "sg-default", "ingress", "IPv4", 6, 22, 22), *egress_rules)
    return Scenario(view.replace(subnets=subnets, security_groups=(group,)))


def test_dhcpv4_client_traffic_leaves_whatever_the_egress_rules():
    """F2 (IPv4): a DHCP client's DISCOVER (0.0.0.0:68 -> 255.255.255.255:67)
    of a port whose group has no egress rule is dropped by EGRESS_ACL when
    the network's subnets do not have the agent serve DHCP (a provider
    network with an external DHCP server): the instance never gets an
    address.  Both Neutron firewalls let DHCP client traffic out before and
    whatever the security group rules: firewall.py _initialize_egress
    ("DHCP discovery", priority 80, udp 68->67 from 0.0.0.0 and the port's
    addresses -> ACCEPT_OR_INGRESS_TABLE), iptables_firewall.py
    _spoofing_rule ('-p udp -m udp --sport 68 --dport 67 -j RETURN',
    comment DHCP_CLIENT, ahead of the port's rules)."""
    s = _no_dhcp_vlan_scenario()
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x0800, ipv4_src="0.0.0.0",
               ipv4_dst="255.255.255.255", ip_proto=17, udp_src=68, udp_dst=67)
    assert PATCH_OFPORT in t.ports, t.format()


def test_dhcpv6_client_traffic_leaves_whatever_the_egress_rules():
    """F2 (IPv6): the same for a DHCPv6 SOLICIT (link-local:546 ->
    ff02::1:2:547): Neutron's firewalls let it out whatever the rules
    (firewall.py _initialize_egress, udp 546->547 from the port's IPv6
    addresses, its link-local one included; iptables_firewall.py
    '-p udp -m udp --sport 546 --dport 547 -j RETURN')."""
    s = _no_dhcp_vlan_scenario()
    p = s.port("port-0-0")
    t = s.send("port-0-0", eth_dst="33:33:00:01:00:02", eth_type=0x86DD,
               ipv6_src=link_local(p.mac_address), ipv6_dst="ff02::1:2", ip_proto=17,
               udp_src=546, udp_dst=547)
    assert PATCH_OFPORT in t.ports, t.format()


# --------------------------------------------------------------------- F3
def test_rarp_from_the_ports_own_mac_leaves_the_port():
    """F3: a RARP frame (Ethertype 0x8035) from the port's own MAC is
    dropped by port security.  QEMU announces a live-migrated guest with
    RARP broadcasts from the guest's MAC (qemu_announce_self, for NICs
    without guest announce) so that the physical switches of a VLAN/flat
    network move the MAC to the new hypervisor; dropped, the instance stays
    unreachable from the physical network until it sends something itself.
    Neutron's OVS firewall lets RARP out from each of the port's allowed
    MACs, whatever the security groups (firewall.py _initialize_egress:
    priority 95, dl_type=ETHERTYPE_RARP, dl_src=mac ->
    ACCEPTED_EGRESS_TRAFFIC_NORMAL_TABLE); the iptables firewall filters
    no non-IP Ethertype.  doc/api/known-differences.md says only ARP of
    what is not IP is let through "as with Neutron's OVS firewall's
    defaults", which RARP contradicts."""
    s = Scenario.build(networks=1, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1,
                       network_type="vlan")
    p = s.port("port-0-0")
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x8035, arp_op=3,
               arp_sha=p.mac_address, arp_tha=p.mac_address)
    assert PATCH_OFPORT in t.ports, t.format()
    # (from a MAC that is not the port's: still dropped, as in Neutron)
    t = s.send("port-0-0", eth_src="fa:16:3e:66:66:66", eth_dst=BROADCAST, eth_type=0x8035,
               arp_op=3)
    assert t.dropped


# --------------------------------------------------------------------- F4
def test_mld_reports_into_a_port_need_its_rules():
    """F4: ICMPv6 types 131, 132 and 143 (MLD reports and done) enter a
    port with port security whatever its groups (static.ND_TYPES_IN, at
    PRIO_ALWAYS above every rule), from any source, even unicast to the
    port's own MAC and address.  Neutron lets in, without rules, only
    MLD queries (130), router advertisements (134), neighbour
    solicitations (135) and advertisements (136): firewall.py
    _initialize_ingress_ipv6_icmp (firewall.ICMPV6_ALLOWED_INGRESS_TYPES +
    RA), iptables_firewall.py _accept_inbound_icmpv6
    (ICMPV6_ALLOWED_INGRESS_TYPES); the others meet the security group
    rules."""
    view = make_host_view(networks=1, ports_per_net=2)
    ports = list(view.ports)
    ports = [dataclasses.replace(p, fixed_ips=p.fixed_ips + (
        FixedIP("sub6-0", f"2001:db8::{10 + i}"),)) for i, p in enumerate(ports)]
    sub6 = Subnet("sub6-0", "net-0", "2001:db8::/64", 6, "2001:db8::1",
                  ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    # every egress; no IPv6 ingress at all
    group = _group(Rule("e6", "sg-default", "egress", "IPv6"),
                   Rule("i4", "sg-default", "ingress", "IPv4"))
    s = Scenario(view.replace(ports=tuple(ports), subnets=view.subnets + (sub6,),
                              security_groups=(group,)))
    dst = s.port("port-0-1")
    base = dict(eth_dst=dst.mac_address, eth_type=0x86DD, ipv6_src="2001:db8::10",
                ipv6_dst="2001:db8::11", ip_proto=58)
    # (Neutron's own list still passes here)
    assert s.send("port-0-0", icmpv6_type=135, ipv6_nd_target="2001:db8::11",
                  **base).ports == [s.ofport("port-0-1")]
    # an echo request is refused by the rules, as it should be
    assert s.send("port-0-0", icmpv6_type=128, **base).dropped
    leaked = [t for t in (131, 132, 143) if s.send("port-0-0", icmpv6_type=t, **base).ports]
    assert leaked == [], f"ICMPv6 types {leaked} passed a group with no IPv6 ingress rule"
