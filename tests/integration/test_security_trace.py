"""The data plane's enforcement of Neutron's security semantics, checked
with ``ovs-appctl ofproto/trace`` on a real private Open vSwitch (found by
a review of the data plane, session 20).

A hand-made host view is compiled and installed on br-int (internal ports
at the VIFs' ofports, a VXLAN port with an underlay, a physnet uplink), as
tests/integration/test_trace_vs_ovs.py does.  Every check states the
verdict Neutron's API semantics (and its OVS firewall) require and reads
the switch's verdict from "Datapath actions:".

The ``test_sanity_*`` checks show the rig tells a pass from a drop; the
others failed before the fixes they name.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from quantum_ovs.compiler.compile import Engine, compile_flows
from quantum_ovs.compiler.flow import OFPVID_PRESENT, diff
from quantum_ovs.compiler.synth import make_network, make_port, make_subnet
from quantum_ovs.model import (
    AddressPair,
    Chassis,
    FixedIP,
    HostView,
    RemoteHost,
    Rule,
    SecurityGroup,
    Subnet,
    member_address,
)
from tests.integration.test_trace_vs_ovs import (
    Rig,
    _dpif_ports,
    _link_local,
    ovs_flow,
    ovs_verdict,
    switch,
)

LOCAL_TUNNEL_IP = "192.168.0.1"
REMOTE_HOSTS = (RemoteHost("host-r0", "192.168.0.2"),)
BCAST = "ff:ff:ff:ff:ff:ff"
PAIR_MAC = "fa:16:3e:aa:bb:cc"
V6 = "fd00::/64"
VLAN_VID = 101


def _v6(port, i):
    return dataclasses.replace(port, fixed_ips=port.fixed_ips + (
        FixedIP("sub6-0", f"fd00::{10 + i:x}"),))


def build_ports():
    local = [
        # attacker: egress everything, no ingress
        _v6(make_port(0, 0, groups=("sg-client",)), 0),
        # victim: ingress TCP 80 from anywhere, ICMP echo only (type 8)
        _v6(make_port(0, 1, groups=("sg-web",)), 1),
        # allowed address pairs: a CIDR (own MAC) and an address with another MAC
        make_port(0, 2, groups=("sg-client",), allowed_address_pairs=(
            AddressPair("10.0.0.64/28", "fa:16:3e:00:00:02"),
            AddressPair("10.0.0.200", PAIR_MAC))),
        # port security off
        make_port(0, 3, groups=(), port_security_enabled=False),
        # a VLAN network's port (victim on a provider network)
        make_port(1, 0, groups=("sg-web",)),
        # a member of a default-like group (ingress only from the group)
        make_port(0, 6, groups=("sg-def",)),
    ]
    remote = [make_port(0, 5, host="host-r0", groups=("sg-client",)),
              # another member of that group, a router-like VM: it may send
              # from any address (allowed address pair 0.0.0.0/0)
              make_port(0, 7, host="host-r0", groups=("sg-def",), allowed_address_pairs=(
                  AddressPair("0.0.0.0/0", "fa:16:3e:00:00:07"),))]
    return local, remote


def build_groups(ports):
    def members(gid):
        return frozenset([ip for p in ports if gid in p.security_groups for ip in p.ips]
                         + [member_address(a.ip_address, a.mac_address) for p in ports
                            if gid in p.security_groups for a in p.allowed_address_pairs])

    client = SecurityGroup("sg-client", (
        Rule("cl-eg4", "sg-client", "egress", "IPv4"),
        Rule("cl-eg6", "sg-client", "egress", "IPv6"),
    ), members("sg-client"))
    web = SecurityGroup("sg-web", (
        Rule("web-eg4", "sg-web", "egress", "IPv4"),
        Rule("web-eg6", "sg-web", "egress", "IPv6"),
        Rule("web-http", "sg-web", "ingress", "IPv4", 6, 80, 80, remote_ip_prefix="0.0.0.0/0"),
        Rule("web-echo", "sg-web", "ingress", "IPv4", 1, 8, 0),
    ), members("sg-web"))
    default = SecurityGroup("sg-def", (
        Rule("def-eg4", "sg-def", "egress", "IPv4"),
        Rule("def-in4", "sg-def", "ingress", "IPv4", remote_group_id="sg-def"),
    ), members("sg-def"))
    return (client, web, default)


def build_view(vif_ofports, tunnel_ofport, physnet_ofport):
    local, remote = build_ports()
    ports = local + remote
    return HostView(
        host="host-a", tunnel_ip=LOCAL_TUNNEL_IP,
        networks=(make_network(0, "vxlan", 1), make_network(1, "vlan", 2)),
        subnets=(make_subnet(0), make_subnet(1), Subnet("sub6-0", "net-0", V6, 6)),
        ports=tuple(ports), security_groups=build_groups(ports), remote_hosts=REMOTE_HOSTS,
        chassis=Chassis(tuple(sorted(vif_ofports.items())), (("vxlan", tunnel_ofport),),
                        (("physnet1", physnet_ofport),)),
    )


@pytest.fixture(scope="module")
def rig(module_ovs):
    ovs = module_ovs
    local, _ = build_ports()
    with switch(ovs, [p.id for p in local], REMOTE_HOSTS, LOCAL_TUNNEL_IP) as (
            ch, ofports, tunnel, physnet, underlay, vx):
        view = build_view(ofports, tunnel, physnet)
        flows = compile_flows(view)
        ch.apply(diff(ch.dump_flows(), flows))
        dp = _dpif_ports(ovs)
        odp = {o: ofp for ofp, o in dp["br-int"].values()}
        yield Rig(ovs=ovs, view=view, flows=flows, tracer=None, ofports=ofports,
                  tunnel=tunnel, physnet=physnet, odp_to_ofport=odp,
                  ignore_odp=frozenset(o for _, o in dp[underlay].values()),
                  tunnel_odp=dp["br-int"][vx][1], channel=ch)


def trace(rig, packet: dict, ct: str = "trk,new", flow_text: str | None = None) -> frozenset:
    """The switch's verdict for ``packet`` (tracer field names), every
    conntrack lookup answering ``ct``."""
    flow = flow_text or ovs_flow(packet)
    cmd = ["ovs-appctl", "--target=" + rig.ovs._ctl("ovs-vswitchd"), "ofproto/trace",
           "br-int", flow]
    for _ in range(8):
        cmd += ["--ct-next", ct]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=rig.ovs.env, timeout=20)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rig.last_trace = proc.stdout
    return ovs_verdict(rig, proc.stdout)


def port(rig, pid):
    return next(p for p in rig.view.ports if p.id == pid)


def delivered(rig, verdict, pid):
    return ("port", rig.ofports[pid], None) in verdict


def ip4(src, dst, proto, ipv4_src=None, eth_src=None, **l4):
    p = {"eth_src": eth_src or src.mac_address, "eth_dst": dst.mac_address, "eth_type": 0x0800,
         "ipv4_src": ipv4_src or src.ips[0], "ipv4_dst": dst.ips[0], "ip_proto": proto}
    p.update(l4)
    return p


def inp(rig, pid, packet):
    return dict(packet, in_port=rig.ofports[pid])


# ------------------------------------------------------------------ sanity
def test_sanity_the_rig_sees_pass_and_drop(rig):
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    ok = trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=40000, tcp_dst=80)))
    assert delivered(rig, ok, "port-0-1"), rig.last_trace[-3000:]
    no = trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=40000, tcp_dst=22)))
    assert not no, rig.last_trace[-3000:]
    # a reply of an established connection passes (+est+rpl)
    rep = trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=22, tcp_dst=40000)),
                ct="trk,est,rpl")
    assert delivered(rig, rep, "port-0-1")


def test_sanity_anti_spoofing(rig):
    """IP / MAC / ARP / ND / link-local spoofing, rogue DHCP and RA: dropped."""
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    i = rig.ofports["port-0-0"]
    cases = {
        "foreign source IP": ip4(a, v, 6, ipv4_src="10.0.0.99", tcp_src=1, tcp_dst=80),
        "victim's source IP": ip4(a, v, 6, ipv4_src=v.ips[0], tcp_src=1, tcp_dst=80),
        "foreign MAC": ip4(a, v, 6, eth_src="fa:16:3e:de:ad:01", tcp_src=1, tcp_dst=80),
        "arp spa": {"eth_src": a.mac_address, "eth_dst": BCAST, "eth_type": 0x0806,
                    "arp_op": 2, "arp_spa": v.ips[0], "arp_sha": a.mac_address,
                    "arp_tpa": v.ips[0]},
        "arp sha": {"eth_src": a.mac_address, "eth_dst": BCAST, "eth_type": 0x0806,
                    "arp_op": 2, "arp_spa": a.ips[0], "arp_sha": v.mac_address,
                    "arp_tpa": v.ips[0]},
        "dhcp server": ip4(a, v, 17, udp_src=67, udp_dst=68),
        "ipv6 foreign link-local": {
            "eth_src": a.mac_address, "eth_dst": v.mac_address, "eth_type": 0x86DD,
            "ipv6_src": _link_local(v.mac_address), "ipv6_dst": _link_local(v.mac_address),
            "ip_proto": 6, "tcp_src": 1, "tcp_dst": 80},
        "ipv6 foreign global": {
            "eth_src": a.mac_address, "eth_dst": v.mac_address, "eth_type": 0x86DD,
            "ipv6_src": "fd00::99", "ipv6_dst": "fd00::b", "ip_proto": 6,
            "tcp_src": 1, "tcp_dst": 80},
        "na target spoof": {
            "eth_src": a.mac_address, "eth_dst": "33:33:00:00:00:01", "eth_type": 0x86DD,
            "ipv6_src": _link_local(a.mac_address), "ipv6_dst": "ff02::1", "ip_proto": 58,
            "icmpv6_type": 136, "icmpv6_code": 0, "ipv6_nd_target": "fd00::b"},
        "na target spoof link-local": {
            "eth_src": a.mac_address, "eth_dst": "33:33:00:00:00:01", "eth_type": 0x86DD,
            "ipv6_src": _link_local(a.mac_address), "ipv6_dst": "ff02::1", "ip_proto": 58,
            "icmpv6_type": 136, "icmpv6_code": 0,
            "ipv6_nd_target": _link_local(v.mac_address)},
        "router advertisement": {
            "eth_src": a.mac_address, "eth_dst": "33:33:00:00:00:01", "eth_type": 0x86DD,
            "ipv6_src": _link_local(a.mac_address), "ipv6_dst": "ff02::1", "ip_proto": 58,
            "icmpv6_type": 134, "icmpv6_code": 0},
        "dhcpv6 server": {
            "eth_src": a.mac_address, "eth_dst": v.mac_address, "eth_type": 0x86DD,
            "ipv6_src": _link_local(a.mac_address), "ipv6_dst": _link_local(v.mac_address),
            "ip_proto": 17, "udp_src": 547, "udp_dst": 546},
        "pair mac with fixed ip": ip4(port(rig, "port-0-2"), v, 6, eth_src=PAIR_MAC,
                                     tcp_src=1, tcp_dst=80),
        "pair cidr outside": ip4(port(rig, "port-0-2"), v, 6, ipv4_src="10.0.0.80",
                                 tcp_src=1, tcp_dst=80),
    }
    leaked = []
    for name, pkt in cases.items():
        src = "port-0-2" if name.startswith("pair") else "port-0-0"
        verdict = trace(rig, dict(pkt, in_port=rig.ofports[src]))
        if verdict:
            leaked.append((name, sorted(verdict)))
    assert not leaked, leaked
    # and the legitimate ones pass
    good = {
        "own na": ({"eth_src": a.mac_address, "eth_dst": "33:33:00:00:00:01",
                    "eth_type": 0x86DD, "ipv6_src": _link_local(a.mac_address),
                    "ipv6_dst": "ff02::1", "ip_proto": 58, "icmpv6_type": 136,
                    "icmpv6_code": 0, "ipv6_nd_target": "fd00::a"}, "port-0-0"),
        "pair cidr inside": (ip4(port(rig, "port-0-2"), v, 6, ipv4_src="10.0.0.70",
                                 tcp_src=1, tcp_dst=80), "port-0-2"),
        "pair mac": (ip4(port(rig, "port-0-2"), v, 6, ipv4_src="10.0.0.200",
                         eth_src=PAIR_MAC, tcp_src=1, tcp_dst=80), "port-0-2"),
    }
    del i
    for name, (pkt, src) in good.items():
        assert trace(rig, dict(pkt, in_port=rig.ofports[src])), name


def test_sanity_rule_semantics(rig):
    """Protocol, ports, ICMP type, ethertype: only what the rules say."""
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    f = lambda pkt: trace(rig, inp(rig, "port-0-0", pkt))  # noqa: E731
    assert delivered(rig, f(ip4(a, v, 1, icmpv4_type=8, icmpv4_code=0)), "port-0-1")
    assert not f(ip4(a, v, 1, icmpv4_type=13, icmpv4_code=0))
    assert not f(ip4(a, v, 17, udp_src=1, udp_dst=80))
    assert not f(ip4(a, v, 6, tcp_src=1, tcp_dst=81))
    # IPv6 TCP 80: the rule is IPv4 only
    assert not f({"eth_src": a.mac_address, "eth_dst": v.mac_address, "eth_type": 0x86DD,
                  "ipv6_src": "fd00::a", "ipv6_dst": "fd00::b", "ip_proto": 6,
                  "tcp_src": 1, "tcp_dst": 80})


# ------------------------------------------------------------------ fixed
def test_an_established_connection_meets_the_rules_again(rig):
    """Neutron's OVS firewall re-checks every packet of an established
    connection in its original direction (ct_state=+est-rel-rpl) against
    the port's rules (rules.CT_STATES), and marks the connection invalid
    (ct_mark=1) when no rule allows it: deleting a rule cuts the
    connections it allowed.  Here port-0-1's group has no rule for TCP 22
    (say it was deleted); a packet of an established TCP 22 connection
    to it (not a reply) must be dropped, one to TCP 80 passes."""
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    verdict = trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=40000, tcp_dst=22)),
                    ct="trk,est")
    assert not delivered(rig, verdict, "port-0-1"), (
        "an established (non-reply) TCP 22 packet reaches a port whose rules do not "
        "allow TCP 22:\n" + rig.last_trace[-2500:])
    ok = trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=40000, tcp_dst=80)),
               ct="trk,est")
    assert delivered(rig, ok, "port-0-1"), rig.last_trace[-2500:]


def _raw(src_mac, dst_mac, ethertype, in_port):
    return f"in_port={in_port},dl_src={src_mac},dl_dst={dst_mac},dl_type={ethertype:#06x}"


def test_non_ip_frames_meet_ingress_security_groups(rig):
    """Neutron's OVS firewall lets into a port with port security only ARP,
    IP (through conntrack and the rules), the ND/MLD ICMPv6 and DHCP
    replies (plus the operator's [securitygroup] permitted_ethertypes);
    any other Ethertype meets the drop (_initialize_ingress: non-IP is
    never tracked, so no flow of RULES_INGRESS_TABLE takes it).  Here a
    frame of an arbitrary Ethertype (0x88b5, local experimental; also
    MPLS, which carries IP past every IP match) from a port without port
    security, or from the VLAN provider network, reaches a port whose
    group allows only TCP 80 and ICMP echo."""
    v, o, vl = port(rig, "port-0-1"), port(rig, "port-0-3"), port(rig, "port-1-0")
    leaked = []
    for ethertype in (0x88B5, 0x8847):
        flow = _raw(o.mac_address, v.mac_address, ethertype, rig.ofports["port-0-3"])
        if delivered(rig, trace(rig, {}, flow_text=flow), "port-0-1"):
            leaked.append(("port-0-3 -> port-0-1", hex(ethertype)))
        flow = (_raw("fa:16:3e:77:77:77", vl.mac_address, ethertype, rig.physnet)
                + f",dl_vlan={VLAN_VID}")
        if delivered(rig, trace(rig, {}, flow_text=flow), "port-1-0"):
            leaked.append(("physnet vlan -> port-1-0", hex(ethertype)))
    assert not leaked, leaked


def test_sanity_vlan_uplink_ip_is_filtered(rig):
    """(the same provider-network path for IP does meet the rules)"""
    vl = port(rig, "port-1-0")
    pkt = {"eth_src": "fa:16:3e:77:77:77", "eth_dst": vl.mac_address, "eth_type": 0x0800,
           "ipv4_src": "10.0.1.77", "ipv4_dst": vl.ips[0], "ip_proto": 6, "tcp_src": 1,
           "tcp_dst": 22, "in_port": rig.physnet, "vlan_vid": OFPVID_PRESENT | VLAN_VID}
    assert not trace(rig, pkt)
    pkt["tcp_dst"] = 80
    assert delivered(rig, trace(rig, pkt), "port-1-0")


def test_sanity_remote_group_members_only(rig):
    """Members of sg-def reach port-0-6 (any protocol); others do not."""
    v, m = port(rig, "port-0-6"), port(rig, "port-0-7")
    tun = {"tunnel_id": 1000, "tun_ipv4_src": "192.168.0.2", "tun_ipv4_dst": LOCAL_TUNNEL_IP,
           "in_port": rig.tunnel}
    assert delivered(rig, trace(rig, dict(ip4(m, v, 6, tcp_src=1, tcp_dst=22), **tun)),
                     "port-0-6")


def test_an_any_address_pair_does_not_open_its_group_to_everyone(rig):
    """Neutron bug 1867119 ("[Security] fix allowed-address-pair 0.0.0.0/0
    issue", neutron 00298fe6e8): a member with an allowed address pair
    0.0.0.0/0 is matched in remote-group rules by its MAC (rules.py
    create_flows_for_ip_address_and_mac: any_src_ip -> dl_src), so the
    group admits that VM sending from any address, not the whole world.
    Here port-0-7 (a member of sg-def, on another host) has the pair
    0.0.0.0/0; port-0-0 (sg-client, not a member), a VM on the same host
    and a stranger reaching the port over the tunnel from another source
    must still not reach port-0-6, whose group admits only sg-def."""
    v, a, o = port(rig, "port-0-6"), port(rig, "port-0-0"), port(rig, "port-0-5")
    leaked = []
    if delivered(rig, trace(rig, inp(rig, "port-0-0", ip4(a, v, 6, tcp_src=1, tcp_dst=22))),
                 "port-0-6"):
        leaked.append("port-0-0 (same host, not a member) -> port-0-6 tcp 22")
    tun = {"tunnel_id": 1000, "tun_ipv4_src": "192.168.0.2", "tun_ipv4_dst": LOCAL_TUNNEL_IP,
           "in_port": rig.tunnel}
    if delivered(rig, trace(rig, dict(ip4(o, v, 6, tcp_src=1, tcp_dst=22), **tun)),
                 "port-0-6"):
        leaked.append("port-0-5 (remote, not a member) -> port-0-6 tcp 22")
    assert not leaked, leaked
    # the member itself, from any address (its MAC), is admitted
    m = port(rig, "port-0-7")
    assert delivered(rig, trace(rig, dict(ip4(m, v, 6, ipv4_src="203.0.113.9", tcp_src=1,
                                              tcp_dst=22), **tun)), "port-0-6")


def test_sanity_tagged_and_non_ip_from_a_secured_port(rig):
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    i = rig.ofports["port-0-0"]
    tagged = (f"in_port={i},dl_vlan=5,dl_src={a.mac_address},dl_dst={v.mac_address},"
              f"tcp,nw_src={a.ips[0]},nw_dst={v.ips[0]},tcp_dst=80")
    assert not trace(rig, {}, flow_text=tagged)
    assert not trace(rig, {}, flow_text=_raw(a.mac_address, v.mac_address, 0x88B5, i))
    # a port without port security sends what it likes (and IP still meets
    # the destination's rules)
    o = port(rig, "port-0-3")
    assert delivered(rig, trace(rig, inp(rig, "port-0-3", ip4(
        o, v, 6, ipv4_src="10.0.0.99", eth_src="fa:16:3e:de:ad:02", tcp_src=1,
        tcp_dst=80))), "port-0-1")
    assert not trace(rig, inp(rig, "port-0-3", ip4(o, v, 6, tcp_src=1, tcp_dst=22)))


def test_permitted_ethertypes_pass_between_secured_ports_from_their_own_macs(rig):
    """[securitygroup] permitted_ethertypes (Neutron's option): the
    operator's Ethertypes pass out of and into ports with port security,
    whatever their groups; here the flows compiled with 0x88b5 permitted
    replace the rig's for this test (and are put back after)."""
    a, v = port(rig, "port-0-0"), port(rig, "port-0-1")
    frame = _raw(a.mac_address, v.mac_address, 0x88B5, rig.ofports["port-0-0"])
    spoofed = _raw("fa:16:3e:00:de:ad", v.mac_address, 0x88B5, rig.ofports["port-0-0"])
    mpls = _raw(a.mac_address, v.mac_address, 0x8847, rig.ofports["port-0-0"])
    assert not delivered(rig, trace(rig, {}, flow_text=frame), "port-0-1")  # (not yet)
    permitted = Engine.from_view(rig.view, permitted_ethertypes=(0x88B5,)).flows()
    ch = rig.channel
    ch.apply(diff(ch.dump_flows(), permitted))
    try:
        assert delivered(rig, trace(rig, {}, flow_text=frame), "port-0-1"), rig.last_trace
        assert not delivered(rig, trace(rig, {}, flow_text=spoofed), "port-0-1")
        assert not delivered(rig, trace(rig, {}, flow_text=mpls), "port-0-1")
    finally:
        ch.apply(diff(ch.dump_flows(), rig.flows))
