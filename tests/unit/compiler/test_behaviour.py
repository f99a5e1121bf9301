"""What the compiled network does, asserted through the tracer."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler.flow import CT_EST, CT_INV, CT_NEW, CT_REL, CT_RPL, OFPVID_PRESENT, Field
from quantum_ovs.compiler.synth import default_group, make_host_view, make_port
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.model import AddressPair, Delta, Port, RemoteHost, Rule, SecurityGroup

from tests.fixtures.scenario import (BROADCAST, GRE_OFPORT, PATCH_OFPORT, VXLAN_OFPORT, Scenario,
                                     change)


@pytest.fixture(scope="module")
def two_nets():
    # 2 networks x 3 local ports, 2 remote hosts each holding ports of both
    return Scenario.build(networks=2, ports_per_net=3, remote_hosts=2, remote_ports_per_net=2)


# ----------------------------------------------------------- reachability
def test_ports_on_one_network_reach_each_other(two_nets):
    s = two_nets
    t = s.tcp("port-0-0", "port-0-1")
    assert t.ports == [s.ofport("port-0-1")]
    t = s.tcp("port-0-2", "port-0-0", dport=22)
    assert t.ports == [s.ofport("port-0-0")]
    # the new connection is committed in the network's conntrack zone
    assert t.commits and all(z == s.engine.local_id("net-0") for z, _ in t.commits)


def test_no_leak_between_networks(two_nets):
    s = two_nets
    # port-0-0 addresses port-1-0's MAC and IP: unknown on its network
    t = s.tcp("port-0-0", "port-1-0")
    net1_ports = {s.ofport(f"port-1-{i}") for i in range(3)}
    assert not set(t.ports) & net1_ports
    # and the flood of net-0 carries net-0's VNI only
    for d in t.outputs:
        if d.port == VXLAN_OFPORT:
            assert d.get("tunnel_id") == s.network_of("port-0-0").segment.segmentation_id


def test_remote_port_over_the_tunnel_to_its_host(two_nets):
    s = two_nets
    remote = s.port("port-0-3")  # first remote port of net-0
    host = next(h for h in s.view.remote_hosts if h.name == remote.host)
    t = s.tcp("port-0-0", "port-0-3")
    assert t.ports == [VXLAN_OFPORT]
    out = t.outputs[0]
    assert out.get("tunnel_id") == 1000  # net-0's VNI
    assert out.get("tun_ipv4_dst") == host.tunnel_ip


def test_from_tunnel_to_local_port(two_nets):
    s = two_nets
    src, dst = s.port("port-0-3"), s.port("port-0-1")
    pkt = dict(eth_src=src.mac_address, eth_dst=dst.mac_address, eth_type=0x0800,
               ipv4_src=src.ips[0], ipv4_dst=dst.ips[0], ip_proto=6, tcp_dst=80)
    pkt["tun_ipv4_src"] = s.peer_ip("port-0-3")
    t = s.inject(VXLAN_OFPORT, tunnel_id=1000, **pkt)
    assert t.ports == [s.ofport("port-0-1")]
    # net-1's key keeps the packet in net-1 (flooded there as unknown unicast)
    t = s.inject(VXLAN_OFPORT, tunnel_id=1001, **pkt)
    assert not set(t.ports) & {s.ofport(f"port-0-{i}") for i in range(3)}
    assert set(t.ports) == {s.ofport(f"port-1-{i}") for i in range(3)}
    # an unknown key reaches nothing
    assert s.inject(VXLAN_OFPORT, tunnel_id=4242, **pkt).dropped
    # nor does a GRE packet for a VXLAN network
    assert s.inject(GRE_OFPORT, tunnel_id=1000, **pkt).dropped


def test_tunnel_packets_from_no_known_host_are_dropped(two_nets):
    """The flow-based tunnel ports take packets from any source that
    reaches this host's tunnel address, and what comes from a host skips
    port security and the egress groups (its sender checked them): found
    by review, anyone reaching the underlay put forged ARP on any network.
    Only the known hosts' tunnel addresses are admitted now."""
    s = two_nets
    src, dst = s.port("port-0-3"), s.port("port-0-1")
    forged = dict(tunnel_id=1000, eth_src="fa:16:3e:66:66:66", eth_dst=BROADCAST,
                  eth_type=0x0806, arp_op=2, arp_spa=dst.ips[0], arp_sha="fa:16:3e:66:66:66",
                  arp_tpa=src.ips[0])
    for ip in ("203.0.113.66", "192.168.0.250"):
        for port in (VXLAN_OFPORT, GRE_OFPORT):
            assert s.inject(port, tun_ipv4_src=ip, **forged).dropped, (ip, port)
    # from the host of a port of the network: flooded to the local ports
    t = s.inject(VXLAN_OFPORT, tun_ipv4_src=s.peer_ip("port-0-3"), **forged)
    assert sorted(t.ports) == sorted(s.ofport(f"port-0-{i}") for i in range(3))


def test_a_tunnel_peer_comes_and_goes_with_its_host():
    """A remote host's address is admitted while the view has the host
    (incremental == a full load), whatever its name."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=2, remote_ports_per_net=2)
    e = Engine.from_view(view)
    gone = view.remote_hosts[0]
    mine = [p for p in view.ports if p.host == gone.name]
    assert mine

    def admitted(engine, ip):
        return any(x.name == "tun_ipv4_src" and x.value == ip
                   for f in engine.flows() for x in f.match)
    assert admitted(e, gone.tunnel_ip)
    e.apply(Delta(removed_ports=tuple(p.id for p in mine), removed_remote_hosts=(gone.name,),
                  revision=view.revision + 1))
    assert not admitted(e, gone.tunnel_ip)
    assert e.flows() == Engine.from_view(e.view()).flows()
    # two names at one address (one compromised host copying another's):
    # one admission, and it stays while either is there
    twin = RemoteHost("twin", view.remote_hosts[-1].tunnel_ip)
    e.apply(Delta(remote_hosts=(twin,), revision=view.revision + 2))
    assert e.flows() == Engine.from_view(e.view()).flows()
    e.apply(Delta(removed_remote_hosts=("twin",), revision=view.revision + 3))
    assert admitted(e, twin.tunnel_ip)
    assert e.flows() == Engine.from_view(e.view()).flows()


@pytest.mark.parametrize("ntype", ["vlan", "flat"])
def test_physical_networks(ntype):
    s = Scenario.build(networks=1, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1,
                       network_type=ntype)
    tag = (100 | OFPVID_PRESENT) if ntype == "vlan" else 0
    # to a port elsewhere on the physical network: tagged, out of the patch port
    t = s.tcp("port-0-0", "port-0-2")
    assert t.ports == [PATCH_OFPORT]
    assert t.outputs[0].get("vlan_vid", 0) == tag
    # from the physical network, tagged for us: delivered untagged
    src, dst = s.port("port-0-2"), s.port("port-0-1")
    pkt = dict(eth_src=src.mac_address, eth_dst=dst.mac_address, eth_type=0x0800,
               ipv4_src=src.ips[0], ipv4_dst=dst.ips[0], ip_proto=6, tcp_dst=80)
    t = s.inject(PATCH_OFPORT, vlan_vid=tag, **pkt)
    assert t.ports == [s.ofport("port-0-1")]
    assert t.outputs[0].get("vlan_vid", 0) == 0
    # another tag is not ours
    assert s.inject(PATCH_OFPORT, vlan_vid=(7 | OFPVID_PRESENT), **pkt).dropped


# -------------------------------------------------------------- flooding
def test_broadcast_reaches_exactly_the_network(two_nets):
    s = two_nets
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x88CC)  # not IP, not ARP
    # port security drops unknown ethertypes; use an ARP for someone unknown
    assert t.dropped
    t = s.arp_request("port-0-0", "10.0.0.250")
    local = sorted(t.ports[:-2])
    assert local == [s.ofport("port-0-1"), s.ofport("port-0-2")]
    tunnels = [d for d in t.outputs if d.port == VXLAN_OFPORT]
    assert sorted(d.get("tun_ipv4_dst") for d in tunnels) == ["192.168.0.2", "192.168.0.3"]
    assert all(d.get("tunnel_id") == 1000 for d in tunnels)
    assert len(t.outputs) == 4


def test_flood_from_tunnel_stays_local(two_nets):
    s = two_nets
    src = s.port("port-0-3")
    t = s.inject(VXLAN_OFPORT, tunnel_id=1000, eth_src=src.mac_address, eth_dst=BROADCAST,
                 eth_type=0x0806, arp_op=1, arp_spa=src.ips[0], arp_tpa="10.0.0.99",
                 tun_ipv4_src=s.peer_ip("port-0-3"))
    assert sorted(t.ports) == sorted(s.ofport(f"port-0-{i}") for i in range(3))


def test_unknown_unicast_floods_the_network(two_nets):
    s = two_nets
    t = s.tcp("port-0-0", "port-0-1", eth_dst="fa:16:3e:99:99:99")
    assert s.ofport("port-0-1") in t.ports
    assert s.ofport("port-1-0") not in t.ports


# --------------------------------------------------------- port security
def test_spoofed_mac_is_dropped(two_nets):
    s = two_nets
    assert s.tcp("port-0-0", "port-0-1", eth_src="fa:16:3e:00:00:99").dropped


def test_spoofed_ip_is_dropped(two_nets):
    s = two_nets
    assert s.tcp("port-0-0", "port-0-1", ipv4_src="10.0.0.99").dropped
    assert s.tcp("port-0-0", "port-0-1", ipv4_src=s.port("port-0-1").ips[0]).dropped


def test_spoofed_arp_is_dropped(two_nets):
    s = two_nets
    assert s.arp_request("port-0-0", "10.0.0.250", arp_spa="10.0.0.77").dropped
    assert s.arp_request("port-0-0", "10.0.0.250", arp_sha="fa:16:3e:00:00:99").dropped


def test_dhcp_goes_to_the_controller(two_nets):
    s = two_nets
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x0800, ipv4_src="0.0.0.0",
               ipv4_dst="255.255.255.255", ip_proto=17, udp_src=68, udp_dst=67)
    assert len(t.controller) == 1 and not t.outputs
    # through the meter of the sending port (its ofport), not a shared one
    assert t.meters == [s.ofport("port-0-0")]
    t = s.send("port-1-2", eth_dst=BROADCAST, eth_type=0x0800, ipv4_src="0.0.0.0",
               ipv4_dst="255.255.255.255", ip_proto=17, udp_src=68, udp_dst=67)
    assert len(t.controller) == 1 and t.meters == [s.ofport("port-1-2")]
    # a VM answering DHCP is stopped
    t = s.send("port-0-0", eth_dst=BROADCAST, eth_type=0x0800, ipv4_src=s.port("port-0-0").ips[0],
               ipv4_dst="255.255.255.255", ip_proto=17, udp_src=67, udp_dst=68)
    assert t.dropped


def test_allowed_address_pairs():
    view = make_host_view(networks=1, ports_per_net=2)
    p = view.ports[0]
    vip = AddressPair("10.0.0.200", "fa:16:3e:aa:aa:aa")
    cidr = AddressPair("10.0.5.0/24", p.mac_address)
    ports = (Port(p.id, p.network_id, p.mac_address, p.fixed_ips,
                  security_groups=p.security_groups, host=p.host,
                  allowed_address_pairs=(vip, cidr)),) + view.ports[1:]
    # the server lists pair addresses among the group's members
    members = view.security_groups[0].member_ips | {"10.0.0.200", "10.0.5.0/24"}
    s = Scenario(view.replace(ports=ports, security_groups=(default_group(members=members),)))
    dst = s.port("port-0-1")
    assert s.tcp("port-0-0", "port-0-1", eth_src=vip.mac_address,
                 ipv4_src="10.0.0.200").ports == [s.ofport("port-0-1")]
    assert s.tcp("port-0-0", "port-0-1", ipv4_src="10.0.5.77").ports == [s.ofport("port-0-1")]
    assert s.tcp("port-0-0", "port-0-1", ipv4_src="10.0.6.77").dropped
    assert s.tcp("port-0-0", "port-0-1", eth_src=vip.mac_address,
                 ipv4_src=p.ips[0]).dropped  # the pair's MAC only with the pair's IP
    assert dst  # (receiver unchanged)


def test_port_security_disabled_lets_anything_through():
    view = make_host_view(networks=1, ports_per_net=2)
    p = view.ports[0]
    open_port = Port(p.id, p.network_id, p.mac_address, p.fixed_ips, host=p.host,
                     port_security_enabled=False)
    s = Scenario(view.replace(ports=(open_port,) + view.ports[1:]))
    t = s.tcp("port-0-0", "port-0-1", eth_src="02:00:00:00:00:01", ipv4_src="1.2.3.4")
    assert t.dropped  # the receiver's group still filters: 1.2.3.4 is not a member
    t = s.tcp("port-0-1", "port-0-0", dport=31337)
    assert t.ports == [s.ofport("port-0-0")]  # no ingress filter on the open port


# ---------------------------------------------------------- ARP responder
def test_arp_answered_in_flows(two_nets):
    s = two_nets
    target = s.port("port-0-3")  # a remote port: still answered locally
    t = s.arp_request("port-0-0", target.ips[0])
    assert t.ports == [s.ofport("port-0-0")]
    reply = t.outputs[0]
    assert reply.get("arp_op") == 2
    assert reply.get("eth_src") == target.mac_address
    assert reply.get("arp_sha") == target.mac_address
    assert reply.get("arp_spa") == target.ips[0]
    assert reply.get("eth_dst") == s.port("port-0-0").mac_address
    assert reply.get("arp_tha") == s.port("port-0-0").mac_address
    assert reply.get("arp_tpa") == s.port("port-0-0").ips[0]


def test_arp_probe_and_other_networks_not_answered(two_nets):
    s = two_nets
    # an address of another network is unknown here: flooded, not answered
    t = s.arp_request("port-0-0", s.port("port-1-0").ips[0])
    assert s.ofport("port-0-0") not in t.ports and len(t.ports) == 4
    # a probe (sender 0.0.0.0) is flooded too, never answered
    t = s.arp_request("port-0-0", s.port("port-0-1").ips[0], arp_spa="0.0.0.0")
    assert s.ofport("port-0-0") not in t.ports and s.ofport("port-0-1") in t.ports


# --------------------------------------------------------- admin / deleted
def test_admin_down_port_drops_everything():
    view = make_host_view(networks=1, ports_per_net=3)
    p = view.ports[1]
    down = Port(p.id, p.network_id, p.mac_address, p.fixed_ips,
                security_groups=p.security_groups, host=p.host, admin_state_up=False)
    s = Scenario(view.replace(ports=(view.ports[0], down, view.ports[2])))
    assert s.tcp("port-0-1", "port-0-0").dropped
    t = s.tcp("port-0-0", "port-0-1")
    assert s.ofport("port-0-1") not in t.ports
    t = s.arp_request("port-0-0", "10.0.0.250")
    assert t.ports == [s.ofport("port-0-2")]


def test_deleted_port_is_gone():
    s = Scenario.build(networks=1, ports_per_net=3)
    pid, ofport = "port-0-1", s.ofport("port-0-1")
    change(s.engine, removed_ports=(pid,))
    s2 = Scenario(s.engine.view())
    s2.ofports[pid] = ofport
    s2.ports[pid] = s.port(pid)
    assert s2.tcp(pid, "port-0-0").dropped
    assert ofport not in s2.tcp("port-0-0", pid).ports


# ------------------------------------------------------- security groups
def _with_group(rules, members=(), extra_groups=()):
    """port-0-0 (client) in sg-client (egress all); port-0-1 (server) in
    sg-server with ``rules``."""
    view = make_host_view(networks=1, ports_per_net=3, groups=[])
    client, server, third = view.ports
    ports = (
        Port(client.id, client.network_id, client.mac_address, client.fixed_ips,
             security_groups=("sg-client",), host=client.host),
        Port(server.id, server.network_id, server.mac_address, server.fixed_ips,
             security_groups=("sg-server",), host=server.host),
        Port(third.id, third.network_id, third.mac_address, third.fixed_ips,
             security_groups=("sg-client",), host=third.host),
    )
    client_sg = SecurityGroup("sg-client", (
        Rule("c-eg", "sg-client", "egress", "IPv4"),
        Rule("c-in", "sg-client", "ingress", "IPv4", remote_group_id="sg-server"),
    ), frozenset({client.ips[0], third.ips[0]}))
    server_sg = SecurityGroup("sg-server", tuple(rules) + (
        Rule("s-eg", "sg-server", "egress", "IPv4"),), frozenset({server.ips[0]}))
    return Scenario(view.replace(ports=ports, security_groups=(client_sg, server_sg)
                                 + tuple(extra_groups)))


def _rule(**kw):
    return Rule(kw.pop("id", "r"), "sg-server", kw.pop("direction", "ingress"),
                kw.pop("ethertype", "IPv4"), **kw)


def _server_group(s, **changes):
    """The scenario with sg-server changed (dataclasses.replace)."""
    return Scenario(s.view.replace(security_groups=tuple(
        dataclasses.replace(g, **changes) if g.id == "sg-server" else g
        for g in s.view.security_groups)))


_EGRESS_DNS = _rule(id="eg-dns", direction="egress", protocol=17, port_range_min=53,
                    port_range_max=53)


def reaches(t, s, dst="port-0-1"):
    return s.ofport(dst) in t.ports


def test_tcp_port_range_allows_exactly_the_range():
    s = _with_group([_rule(protocol=6, port_range_min=1000, port_range_max=1999)])
    for port, ok in ((999, False), (1000, True), (1500, True), (1999, True), (2000, False),
                     (80, False)):
        assert reaches(s.tcp("port-0-0", "port-0-1", dport=port), s) is ok, port
    # UDP on an allowed port number is still refused
    assert not reaches(s.udp("port-0-0", "port-0-1", dport=1500), s)


def test_udp_single_port():
    s = _with_group([_rule(protocol=17, port_range_min=53, port_range_max=53)])
    assert reaches(s.udp("port-0-0", "port-0-1", dport=53), s)
    assert not reaches(s.udp("port-0-0", "port-0-1", dport=54), s)
    assert not reaches(s.tcp("port-0-0", "port-0-1", dport=53), s)


@pytest.mark.parametrize("proto", [33, 136], ids=["dccp", "udplite"])
def test_a_port_range_the_switch_cannot_match_opens_nothing(proto):
    """DCCP and UDP-Lite rules take port ranges (as Neutron's API does)
    but the switch has no field for their ports: "dccp 80" must not be
    "every DCCP port"; it matches nothing.  Without a range the rule is
    the protocol, and the range of every port is too."""
    pkt = dict(ip_proto=proto)
    s = _with_group([_rule(protocol=proto, port_range_min=80, port_range_max=80)])
    assert not reaches(s.ip("port-0-0", "port-0-1", **pkt), s)
    s = _with_group([_rule(protocol=proto, port_range_min=80, port_range_max=80),
                     _rule(id="any-port", protocol=proto)])
    assert reaches(s.ip("port-0-0", "port-0-1", **pkt), s)
    s = _with_group([_rule(protocol=proto, port_range_min=1, port_range_max=65535)])
    assert reaches(s.ip("port-0-0", "port-0-1", **pkt), s)
    assert not reaches(s.tcp("port-0-0", "port-0-1", dport=80), s)


def test_sctp_port_range_is_matched():
    s = _with_group([_rule(protocol=132, port_range_min=80, port_range_max=80)])
    assert reaches(s.ip("port-0-0", "port-0-1", ip_proto=132, sctp_src=4000, sctp_dst=80), s)
    assert not reaches(s.ip("port-0-0", "port-0-1", ip_proto=132, sctp_src=4000,
                            sctp_dst=81), s)


def test_icmp_type_and_code():
    s = _with_group([_rule(protocol=1, port_range_min=8, port_range_max=0)])
    echo = dict(ip_proto=1, icmpv4_type=8, icmpv4_code=0)
    assert reaches(s.ip("port-0-0", "port-0-1", **echo), s)
    assert not reaches(s.ip("port-0-0", "port-0-1", ip_proto=1, icmpv4_type=13,
                            icmpv4_code=0), s)


def test_any_protocol_number():
    s = _with_group([_rule(protocol=47)])  # GRE
    assert reaches(s.ip("port-0-0", "port-0-1", ip_proto=47), s)
    assert not reaches(s.ip("port-0-0", "port-0-1", ip_proto=50), s)
    s = _with_group([_rule()])  # any IPv4
    assert reaches(s.ip("port-0-0", "port-0-1", ip_proto=50), s)


def test_remote_ip_prefix():
    s = _with_group([_rule(protocol=6, remote_ip_prefix="10.0.0.10/31")])
    # port-0-0 is 10.0.0.10, port-0-2 is 10.0.0.12
    assert reaches(s.tcp("port-0-0", "port-0-1"), s)
    assert not reaches(s.tcp("port-0-2", "port-0-1"), s)


def test_remote_group_members_only():
    only_a = SecurityGroup("sg-a", (), frozenset({"10.0.0.10"}))  # port-0-0 only
    s = _with_group([_rule(protocol=6, port_range_min=22, port_range_max=22,
                           remote_group_id="sg-a")], extra_groups=[only_a])
    assert reaches(s.tcp("port-0-0", "port-0-1", dport=22), s)
    assert not reaches(s.tcp("port-0-0", "port-0-1", dport=23), s)
    assert not reaches(s.tcp("port-0-2", "port-0-1", dport=22), s)  # not a member


def test_no_rule_no_entry_but_replies_pass():
    s = _with_group([])
    assert not reaches(s.tcp("port-0-0", "port-0-1"), s)
    # an established connection (the server's reply direction) passes
    assert reaches(s.tcp("port-0-0", "port-0-1", ct_state=CT_EST | CT_RPL), s)
    assert reaches(s.tcp("port-0-0", "port-0-1", ct_state=CT_REL), s)
    # invalid is dropped even where a rule would allow
    s = _with_group([_rule()])
    assert reaches(s.tcp("port-0-0", "port-0-1"), s)
    assert not reaches(s.tcp("port-0-0", "port-0-1", ct_state=CT_INV), s)


def _marked(state, mark):
    """A conntrack lookup finding a connection with ``mark``."""
    return lambda zone, packet: (state, mark)


def test_a_connection_no_rule_accepts_any_more_is_cut_both_ways():
    """Neutron's OVS firewall: a later packet of a connection that no rule
    accepts any more (a rule deleted) marks the connection (ct_mark 1) and
    is dropped; every packet of a marked connection is dropped after that,
    the replies too (without the mark, a server could go on sending into a
    connection whose opening rule is gone)."""
    s = _with_group([_rule(protocol=6, port_range_min=80, port_range_max=80)])
    t = s.tcp("port-0-0", "port-0-1", dport=80, ct_state=CT_EST)
    assert reaches(t, s) and not t.marks
    # no rule for port 81 (the rule that opened it deleted): marked, dropped
    t = s.tcp("port-0-0", "port-0-1", dport=81, ct_state=CT_EST)
    assert not reaches(t, s)
    assert [(mark, pkt["tcp_dst"]) for _, mark, pkt in t.marks] == [(1, 81)]
    # a new connection the rules refuse is dropped, never marked (nothing
    # to cut, and no entry is made for it)
    t = s.tcp("port-0-0", "port-0-1", dport=81)
    assert not reaches(t, s) and not t.marks and not t.commits

    def reply(mark):
        return s.tcp("port-0-1", "port-0-0", sport=80, dport=40000,
                     ct_state=_marked(CT_EST | CT_RPL, mark))
    assert reaches(reply(0), s, "port-0-0")
    assert not reaches(reply(1), s, "port-0-0")
    # marked, the opening direction stays cut even where a rule accepts
    assert not reaches(s.tcp("port-0-0", "port-0-1", dport=80,
                             ct_state=_marked(CT_EST, 1)), s)
    # the sender's egress condemns too: sg-server's egress narrowed to DNS
    s = _server_group(s, rules=(_rule(id="in"), _EGRESS_DNS))
    t = s.tcp("port-0-1", "port-0-0", dport=22, ct_state=CT_EST)
    assert not reaches(t, s, "port-0-0") and [m for _, m, _ in t.marks] == [1]
    assert reaches(s.udp("port-0-1", "port-0-0", dport=53, ct_state=CT_EST), s, "port-0-0")


def test_only_a_packet_meant_for_the_port_condemns_its_connection():
    """A copy FLOOD sends every local port (a broadcast, or a unicast to a
    MAC the network does not know) that one port's rules refuse must not
    cut the connection for the port it is for, here or beyond the host;
    nor does a broadcast out of a port (it has no replies to cut)."""
    s = _with_group([_rule(protocol=17, port_range_min=53, port_range_max=53)])
    bcast = dict(eth_dst=BROADCAST, ipv4_dst="10.0.0.255", ct_state=CT_EST)
    # port-0-0 broadcasts UDP 54: the server refuses its copy, no mark
    t = s.udp("port-0-0", "port-0-1", dport=54, **bcast)
    assert not reaches(t, s) and not t.marks
    # to a MAC the network does not know: flooded, the server refuses its
    # copy, the connection is not marked
    t = s.udp("port-0-0", "port-0-1", dport=54, eth_dst="fa:16:3e:99:99:99",
              ipv4_dst="10.0.0.99", ct_state=CT_EST)
    assert not reaches(t, s) and not t.marks
    # the same packet to the server's own MAC condemns
    t = s.udp("port-0-0", "port-0-1", dport=54, ct_state=CT_EST)
    assert not reaches(t, s) and t.marks
    # egress: the server may send nothing but DNS; a broadcast of its is
    # dropped unmarked, a unicast marked
    s = _server_group(s, rules=(_EGRESS_DNS,))
    t = s.udp("port-0-1", "port-0-0", dport=54, **bcast)
    assert t.dropped and not t.marks
    t = s.udp("port-0-1", "port-0-0", dport=54, ct_state=CT_EST)
    assert t.dropped and t.marks


def test_a_connection_to_an_address_pairs_mac_is_cut_both_ways_too():
    """A pair with a MAC of its own (a VRRP virtual MAC) is in no L2
    lookup: what is sent to it is flooded, and a flooded copy never marks.
    The port's own flows mark what reaches it for its pairs' MACs (found by
    review: the connection to a VIP went on one way after its rule was
    deleted)."""
    vmac, vip = "00:00:5e:00:01:07", "10.0.0.200"
    s = _with_group([_rule(protocol=17, port_range_min=53, port_range_max=53)])
    ports = tuple(dataclasses.replace(p, allowed_address_pairs=(AddressPair(vip, vmac),))
                  if p.id == "port-0-1" else p for p in s.view.ports)
    s = Scenario(s.view.replace(ports=ports))
    to_vip = dict(eth_dst=vmac, ipv4_dst=vip, ct_state=CT_EST)
    t = s.udp("port-0-0", "port-0-1", dport=53, **to_vip)
    assert reaches(t, s) and not t.marks
    t = s.udp("port-0-0", "port-0-1", dport=54, **to_vip)
    assert not reaches(t, s) and [m for _, m, _ in t.marks] == [1]
    # the third port (sg-client) refuses its flooded copy: no mark from it
    ports = tuple(dataclasses.replace(p, allowed_address_pairs=()) if p.id == "port-0-1"
                  else p for p in s.view.ports)
    s = Scenario(s.view.replace(ports=ports))
    assert not s.udp("port-0-0", "port-0-1", dport=54, **to_vip).marks


def _stateless(s):
    """The scenario with sg-server stateless."""
    return _server_group(s, stateful=False)


def test_a_stateless_group_lets_in_only_what_its_rules_say_whatever_the_state():
    """Neutron's stateless groups: no connection tracking for their ports,
    so a reply needs a rule of its own, and what a rule admits passes in
    any conntrack state."""
    s = _stateless(_with_group([]))
    for state in (CT_NEW, CT_EST | CT_RPL, CT_REL, CT_INV, CT_EST):
        assert not reaches(s.tcp("port-0-0", "port-0-1", ct_state=state), s), state
    s = _stateless(_with_group([_rule(protocol=6, port_range_min=80, port_range_max=80)]))
    for state in (CT_NEW, CT_EST | CT_RPL, CT_EST):  # (the client is stateful: not INV)
        assert reaches(s.tcp("port-0-0", "port-0-1", dport=80, ct_state=state), s), state
        assert not reaches(s.tcp("port-0-0", "port-0-1", dport=81, ct_state=state), s)
    # a remote group's members, in any state; the server (stateless, egress
    # all) answers, and the client (stateful) takes the answer as a reply
    s = _stateless(_with_group([_rule(remote_group_id="sg-client")]))
    assert reaches(s.tcp("port-0-0", "port-0-1", ct_state=CT_EST), s)
    assert reaches(s.tcp("port-0-1", "port-0-0", ct_state=CT_EST | CT_RPL), s, "port-0-0")
    # what a stateless port accepts is committed (a stateful sender on its
    # host gets its replies as replies); so is IP into a port without port
    # security (found by review: neither was, nothing else commits on the
    # same host)
    s = _stateless(_with_group([_rule(protocol=6, port_range_min=80, port_range_max=80)]))
    t = s.tcp("port-0-0", "port-0-1", dport=80)
    assert reaches(t, s) and t.commits
    # (only what comes from this host, not flooded: a remote sender's host
    # committed it, a broadcast has no replies, and a stateless port's
    # traffic is otherwise left untracked)
    flows = Engine.from_view(s.view).flows()
    commits = [f for f in flows
               if f.table == 62 and any(type(a).__name__ == "Ct" for a in f.actions)]
    assert commits and all(f.match.get("reg4") == Field("reg4", 0, 5) for f in commits)
    open_port = dataclasses.replace(s.view.ports[1], port_security_enabled=False,
                                    security_groups=())
    s = Scenario(s.view.replace(ports=(s.view.ports[0], open_port, s.view.ports[2])))
    t = s.tcp("port-0-0", "port-0-1", dport=22)
    assert reaches(t, s) and t.commits
    # and the stateful group is untouched: replies pass, invalid drops
    s = _with_group([_rule(protocol=6, port_range_min=80, port_range_max=80)])
    assert reaches(s.tcp("port-0-0", "port-0-1", dport=81, ct_state=CT_EST | CT_RPL), s)
    assert not reaches(s.tcp("port-0-0", "port-0-1", dport=80, ct_state=CT_INV), s)


def test_egress_rules_restrict_the_sender():
    s = _server_group(_with_group([_rule()]), rules=(_rule(id="in"), _EGRESS_DNS))
    # the client group accepts ingress from sg-server members on anything
    assert reaches(s.udp("port-0-1", "port-0-0", dport=53), s, "port-0-0")
    assert not reaches(s.udp("port-0-1", "port-0-0", dport=54), s, "port-0-0")
    assert not reaches(s.tcp("port-0-1", "port-0-0", dport=53), s, "port-0-0")


def test_ipv6_rule_does_not_open_ipv4():
    s = _with_group([_rule(ethertype="IPv6")])
    assert not reaches(s.tcp("port-0-0", "port-0-1"), s)


def test_default_group_between_members(two_nets):
    s = two_nets
    assert reaches(s.tcp("port-0-0", "port-0-1", dport=5432), s)
    # from a remote member over the tunnel: allowed in by the group rule
    src, dst = s.port("port-0-3"), s.port("port-0-1")
    t = s.inject(VXLAN_OFPORT, tunnel_id=1000, eth_src=src.mac_address,
                 eth_dst=dst.mac_address, eth_type=0x0800, ipv4_src=src.ips[0],
                 ipv4_dst=dst.ips[0], ip_proto=6, tcp_dst=5432,
                 tun_ipv4_src=s.peer_ip("port-0-3"))
    assert t.ports == [s.ofport("port-0-1")]
    # a non-member source from the tunnel is refused
    t = s.inject(VXLAN_OFPORT, tunnel_id=1000, eth_src=src.mac_address,
                 eth_dst=dst.mac_address, eth_type=0x0800, ipv4_src="10.9.9.9",
                 ipv4_dst=dst.ips[0], ip_proto=6, tcp_dst=5432,
                 tun_ipv4_src=s.peer_ip("port-0-3"))
    assert t.dropped


def test_port_without_groups_is_closed():
    view = make_host_view(networks=1, ports_per_net=2, groups=[default_group(members=[])])
    p = view.ports[1]
    bare = Port(p.id, p.network_id, p.mac_address, p.fixed_ips, host=p.host)
    s = Scenario(view.replace(ports=(view.ports[0], bare)))
    assert s.tcp("port-0-1", "port-0-0").dropped  # no egress rule
    assert s.tcp("port-0-0", "port-0-1", ct_state=CT_NEW).dropped  # and no ingress
    assert make_port(0, 0)  # builders stay usable


# ------------------------------------------------------------------ IPv6
def _v6_scenario():
    from quantum_ovs.model import FixedIP

    view = make_host_view(networks=1, ports_per_net=2, groups=[])
    a, b = view.ports
    a6 = Port(a.id, a.network_id, a.mac_address, (FixedIP("s6", "fd00::a"),),
              security_groups=("sg6",), host=a.host)
    b6 = Port(b.id, b.network_id, b.mac_address, (FixedIP("s6", "fd00::b"),),
              security_groups=("sg6",), host=b.host)
    sg = SecurityGroup("sg6", (Rule("e6", "sg6", "egress", "IPv6"),
                               Rule("i6", "sg6", "ingress", "IPv6", 6, 22, 22)))
    return Scenario(view.replace(ports=(a6, b6), security_groups=(sg,)))


def test_ipv6_rules_and_source_check():
    s = _v6_scenario()
    b = s.port("port-0-1")
    base = dict(eth_dst=b.mac_address, eth_type=0x86DD, ipv6_src="fd00::a",
                ipv6_dst="fd00::b", ip_proto=6, tcp_dst=22)
    assert s.send("port-0-0", **base).ports == [s.ofport("port-0-1")]
    assert s.send("port-0-0", **{**base, "tcp_dst": 23}).dropped
    assert s.send("port-0-0", **{**base, "ipv6_src": "fd00::99"}).dropped


def test_ipv6_neighbour_discovery():
    s = _v6_scenario()
    na = dict(eth_dst="33:33:00:00:00:01", eth_type=0x86DD, ipv6_src="fd00::a",
              ipv6_dst="ff02::1", ip_proto=58, icmpv6_type=136)
    # advertising its own address is fine and reaches the neighbour
    assert s.ofport("port-0-1") in s.send("port-0-0", ipv6_nd_target="fd00::a", **na).ports
    # advertising someone else's is dropped
    assert s.send("port-0-0", ipv6_nd_target="fd00::b", **na).dropped
    # router advertisements from a VM are dropped
    assert s.send("port-0-0", **{**na, "icmpv6_type": 134}).dropped
    # DAD from :: is allowed
    dad = dict(na, ipv6_src="::", icmpv6_type=135, ipv6_nd_target="fd00::a")
    assert s.ofport("port-0-1") in s.send("port-0-0", **dad).ports
    # the link-local address derived from the MAC is the port's own
    from quantum_ovs.compiler.rules.common import link_local
    lla = link_local(s.port("port-0-0").mac_address)
    assert s.ofport("port-0-1") in s.send("port-0-0", **{**na, "ipv6_src": lla,
                                                         "ipv6_nd_target": lla}).ports
