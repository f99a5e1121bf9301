"""Edges of the review s27 fixes (test_dataplane_l2_review_s27.py): an
address pair's MAC flooded to its holders only (F1), DHCP client traffic
past the egress rules only (F2), RARP out of a port but not into one (F3)."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import AddressPair, Rule, SecurityGroup

from tests.fixtures.scenario import BROADCAST, PATCH_OFPORT, VXLAN_OFPORT, Scenario

VIP_MAC = "00:00:5e:00:01:07"
VIP = "10.0.0.200"


def _vrrp(holders, network_type="vxlan", vip_mac=VIP_MAC):
    """Three local ports and three remote ones (two remote hosts), every
    IPv4 allowed both ways; ``holders`` hold the pair (VIP, vip_mac)."""
    view = make_host_view(networks=1, ports_per_net=3, remote_hosts=2,
                          remote_ports_per_net=3, network_type=network_type)
    ports = [dataclasses.replace(p, allowed_address_pairs=(AddressPair(VIP, vip_mac),))
             if p.id in holders else p for p in view.ports]
    group = SecurityGroup("sg-default", (Rule("e4", "sg-default", "egress", "IPv4"),
                                          Rule("i4", "sg-default", "ingress", "IPv4")),
                          frozenset())
    return Scenario(view.replace(ports=tuple(ports), security_groups=(group,)))


def _tcp_to_vip(s, src="port-0-2", **kw):
    return s.send(src, eth_dst=VIP_MAC, eth_type=0x0800, ipv4_src=s.port(src).ips[0],
                  ipv4_dst=VIP, ip_proto=6, tcp_src=40000, tcp_dst=80, **kw)


def _tunnel_dsts(t):
    return sorted(d.get("tun_ipv4_dst") for d in t.outputs if d.port == VXLAN_OFPORT)


def test_a_vrrp_mac_held_by_two_local_ports_reaches_both_and_no_other():
    s = _vrrp({"port-0-0", "port-0-1"})
    t = _tcp_to_vip(s)
    assert sorted(t.ports) == sorted([s.ofport("port-0-0"), s.ofport("port-0-1")]), t.format()


def test_a_pair_mac_held_on_one_remote_host_goes_to_that_host_only():
    s = _vrrp({"port-0-0", "port-0-3"})  # port-0-3: on host-r0
    t = _tcp_to_vip(s)
    assert s.ofport("port-0-0") in t.ports and s.ofport("port-0-1") not in t.ports
    assert _tunnel_dsts(t) == [s.peer_ip("port-0-3")], t.format()
    # (a broadcast still goes everywhere)
    b = s.send("port-0-2", eth_dst=BROADCAST, eth_type=0x0806, arp_op=1,
               arp_spa=s.port("port-0-2").ips[0], arp_tpa="10.0.0.250",
               arp_sha=s.port("port-0-2").mac_address)
    assert len(_tunnel_dsts(b)) == 2 and s.ofport("port-0-1") in b.ports


def test_a_pair_mac_from_another_host_reaches_its_local_holders_only():
    s = _vrrp({"port-0-0", "port-0-3"})
    src = s.port("port-0-4")
    t = s.inject(VXLAN_OFPORT, tunnel_id=s.view.networks[0].segment.segmentation_id,
                 tun_ipv4_src=s.peer_ip("port-0-4"), eth_src=src.mac_address,
                 eth_dst=VIP_MAC, eth_type=0x0800, ipv4_src=src.ips[0], ipv4_dst=VIP,
                 ip_proto=6, tcp_src=40000, tcp_dst=80)
    assert t.ports == [s.ofport("port-0-0")], t.format()


def test_a_pair_mac_whose_holders_are_unreachable_is_not_flooded():
    view_s = _vrrp({"port-0-0"})
    # the holder unplugged: nobody gets what is sent to its pair's MAC
    ports = dict(view_s.view.chassis.vif_ofports)
    ports.pop("port-0-0")
    s = Scenario(view_s.view.replace(chassis=dataclasses.replace(
        view_s.view.chassis, vif_ofports=tuple(ports.items()))))
    assert _tcp_to_vip(s).ports == []


def test_a_pair_mac_on_a_vlan_goes_out_only_when_another_host_holds_it():
    s = _vrrp({"port-0-0"}, network_type="vlan")
    assert _tcp_to_vip(s).ports == [s.ofport("port-0-0")]
    s = _vrrp({"port-0-0", "port-0-5"}, network_type="vlan")
    assert sorted(_tcp_to_vip(s).ports) == sorted([s.ofport("port-0-0"), PATCH_OFPORT])


def test_a_multicast_pair_mac_is_left_to_the_flood():
    s = _vrrp({"port-0-0"}, vip_mac="01:00:5e:00:00:12")
    t = _tcp_to_vip(s)
    assert s.ofport("port-0-1") in t.ports and len(_tunnel_dsts(t)) == 2


def _no_egress(enable_dhcp: bool):
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1,
                          remote_ports_per_net=1, network_type="vlan")
    subnets = tuple(dataclasses.replace(x, enable_dhcp=enable_dhcp) for x in view.subnets)
    group = SecurityGroup("sg-default", (Rule("i22", "sg-default", "ingress", "IPv4", 6, 22,
                                              22),), frozenset())
    return Scenario(view.replace(subnets=subnets, security_groups=(group,)))


def test_only_dhcp_client_traffic_passes_a_group_without_egress_rules():
    s = _no_egress(False)
    p = s.port("port-0-0")
    base = dict(eth_dst=BROADCAST, eth_type=0x0800, ipv4_src=p.ips[0],
                ipv4_dst="255.255.255.255", ip_proto=17)
    assert PATCH_OFPORT in s.send("port-0-0", udp_src=68, udp_dst=67, **base).ports
    assert s.send("port-0-0", udp_src=68, udp_dst=68, **base).dropped
    assert s.send("port-0-0", udp_src=67, udp_dst=67, **base).dropped
    # spoofed source: still port security's drop
    spoofed = dict(base, ipv4_src="10.0.0.99")
    assert s.send("port-0-0", udp_src=68, udp_dst=67, **spoofed).dropped


def test_dhcp_served_here_is_still_punted_not_sent_out():
    s = _no_egress(True)
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x0800, ipv4_src="0.0.0.0",
               ipv4_dst="255.255.255.255", ip_proto=17, udp_src=68, udp_dst=67)
    assert t.controller and not t.ports


def test_rarp_leaves_but_enters_no_port():
    s = _vrrp({"port-0-0"}, network_type="vlan")
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x8035, arp_op=3)
    assert t.ports == [PATCH_OFPORT], t.format()
    t = s.send("port-0-0", eth_src=VIP_MAC, eth_dst=BROADCAST, eth_type=0x8035, arp_op=3)
    assert t.ports == [PATCH_OFPORT], t.format()
