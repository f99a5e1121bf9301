"""Review s27, data plane L3 (routing and NAT against Neutron's L3 agent):
each test fails on the code as reviewed and passes once its finding is
fixed.  Unit tests: host views compiled and packets traced, no OVS."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import OFPVID_PRESENT
from quantum_ovs.compiler.synth import EXT_NET, router_mac
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, HostRoute, Segment
from tests.fixtures.scenario import HOST, PATCH_OFPORT, change
from tests.unit.compiler.test_external import INET_MAC, INTERNET, _engine, _v6, _view

def _vif(e, pid):
    return dict(e.chassis().vif_ofports)[pid]


def _replace_ports(view, pid, **changes):
    return view.replace(ports=tuple(dataclasses.replace(p, **changes) if p.id == pid else p
                                    for p in view.ports))


def _vlan_external(view, tag=300):
    return view.replace(networks=tuple(
        dataclasses.replace(n, segment=Segment("vlan", "physnet1", tag)) if n.id == EXT_NET
        else n for n in view.networks))


# ------------------------------------------------------------------ F1
@pytest.mark.parametrize("sender", ["internet", "instance"])
def test_f1_an_unforwarded_port_of_a_port_forwarding_ip_is_not_routed_round_and_round(sender):
    """A floating IP that carries port forwardings only is served on the
    router's active gateway host (host-a).  A packet to it on a port no
    forwarding names (TCP 23; the forwarding is TCP 2222) must stop there,
    as in Neutron, where the address sits on the router's qg- device
    (port_forwarding.py _process_create: add_floating_ip) and only the
    forwarded ports are DNATed (_get_fip_rules): the kernel answers it
    locally, nothing is forwarded.  Here EXT_DNAT has no flow for it (the
    gateway address has its PRIO_GW_LOCAL drop, the forwarding's address
    nothing), so it goes on to L3_ROUTE as a packet to the external
    subnet, is SNATed to the gateway address, and L3_RESOLVE hairpins it
    (next hop = the floating IP served here) back into EXT_DNAT: round
    and round, a conntrack commit in two zones per pass, until its TTL
    runs out (the sender sets it: up to 255 passes).  One unsolicited
    packet from anywhere on the internet costs the gateway host ~2 x TTL
    conntrack entries and as many recirculations."""
    e = _engine(_view(hosts=(HOST, "gw-2")))
    fip = next(f for f in e.routers["router-1"].floating_ips if f.port_forwardings)
    assert fip.port_forwardings[0].external_port_lo == 2222
    t = Tracer(e.flows())
    if sender == "internet":
        out = t.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
                     "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 6,
                     "ipv4_src": INTERNET, "ipv4_dst": fip.floating_ip_address,
                     "tcp_src": 40000, "tcp_dst": 23, "nw_ttl": 64})
    else:
        p = e.ports["port-1-1"]
        out = t.run({"in_port": _vif(e, p.id), "vlan_vid": 0, "eth_src": p.mac_address,
                     "eth_dst": router_mac(1), "eth_type": 0x0800, "ip_proto": 6,
                     "ipv4_src": p.ips[0], "ipv4_dst": fip.floating_ip_address,
                     "tcp_src": 40000, "tcp_dst": 23, "nw_ttl": 64})
    passes = sum(1 for s in out.steps if s is not None and s.table == P.EXT_DNAT)
    assert passes <= 1, f"{passes} passes through ext_dnat, {len(out.commits)} commits\n" + \
        "\n".join(out.format().splitlines()[:12])
    assert not out.ttl_expired and not [c for c in out.controller if c.get("nw_ttl", 64) <= 1]


def _pf_fip(e):
    return next(f for f in e.routers["router-1"].floating_ips if f.port_forwardings)


@pytest.mark.parametrize("vlan", [False, True])
def test_f1_a_port_forwarding_address_answers_echo_from_the_outside(vlan):
    """... as the gateway address does (Neutron: the address is on the
    qg- device), back out of the uplink, tagged on a VLAN external
    network; and once: not DNATed, not routed."""
    v = _view(hosts=(HOST, "gw-2"))
    e = _engine(_vlan_external(v) if vlan else v)
    fip = _pf_fip(e)
    tag = (300 | OFPVID_PRESENT) if vlan else 0
    out = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": tag, "eth_src": INET_MAC,
        "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 1, "icmpv4_type": 8,
        "ipv4_src": INTERNET, "ipv4_dst": fip.floating_ip_address})
    assert [(d.port, d.get("vlan_vid"), d.get("icmpv4_type"), d.get("ipv4_src"),
             d.get("ipv4_dst")) for d in out.outputs] == \
        [(PATCH_OFPORT, tag, 0, fip.floating_ip_address, INTERNET)], out.format()
    assert not out.commits, out.format()


@pytest.mark.parametrize("host", [HOST, "host-b"])
def test_f1_a_port_forwarding_address_answers_echo_from_behind_the_router(host):
    """From the router's own subnets, on its active gateway host or any
    other host of the router: answered in L3_ROUTE, as the gateway
    address is."""
    v = _view(hosts=(HOST, "gw-2"))
    if host != HOST:
        v = _replace_ports(v, "port-1-1", host=host)
    e = Engine.from_view(v.replace(host=host)) if host != HOST else _engine(v)
    if host != HOST:
        ch = e.chassis()
        e.set_chassis(dataclasses.replace(ch, vif_ofports=(("port-1-1", 103),)))
    fip = _pf_fip(e)
    p = e.ports["port-1-1"]
    out = Tracer(e.flows()).run({
        "in_port": _vif(e, p.id), "vlan_vid": 0, "eth_src": p.mac_address,
        "eth_dst": router_mac(1), "eth_type": 0x0800, "ip_proto": 1, "icmpv4_type": 8,
        "ipv4_src": p.ips[0], "ipv4_dst": fip.floating_ip_address})
    assert [(d.port, d.get("icmpv4_type"), d.get("ipv4_src")) for d in out.outputs] == \
        [(_vif(e, p.id), 0, fip.floating_ip_address)], out.format()


def test_f1_the_echo_answer_follows_the_forwardings():
    """The gateway's L3_ROUTE answer for a forwarding's address comes and
    goes with the forwardings (incremental = from scratch)."""
    e = _engine(_view(hosts=(HOST, "gw-2")))
    r = e.routers["router-1"]
    fip = _pf_fip(e)

    def with_pfs(pfs):
        return dataclasses.replace(r, floating_ips=tuple(
            dataclasses.replace(f, port_forwardings=pfs) if f.id == fip.id else f
            for f in r.floating_ips))

    def echo_flows():
        return [f for f in e.flows() if f.table == P.L3_ROUTE
                and dict((x.name, x.value) for x in f.match).get("ipv4_dst")
                == fip.floating_ip_address]

    assert len(echo_flows()) == 1
    change(e, routers=(with_pfs(()),))
    assert echo_flows() == []
    assert e.flows() == Engine.from_view(e.view(), e.alloc).flows()
    change(e, routers=(with_pfs(fip.port_forwardings),))
    assert len(echo_flows()) == 1
    assert e.flows() == Engine.from_view(e.view(), e.alloc).flows()


# ------------------------------------------------------------------ F2
def _with_vip(view, holder="port-1-0", vip="10.0.1.100"):
    """``holder`` may use ``vip`` (an allowed address pair: keepalived /
    VRRP, a firewall appliance)."""
    h = next(p for p in view.ports if p.id == holder)
    return _replace_ports(view, holder,
                          allowed_address_pairs=(AddressPair(vip, h.mac_address),))


def test_f2_a_routed_packet_reaches_an_allowed_address_pair_address():
    """Neutron's router (a Linux namespace; OVN's logical router too)
    resolves any address of a connected subnet by ARP, so an instance
    behind the router reaches a VRRP address held through allowed address
    pairs (the use the extension is documented for).  Here L3_RESOLVE
    knows only the fixed IPs of ports bound to a known host: the packet
    is routed, then silently dropped (l3_resolve miss)."""
    e = _engine(_with_vip(_view(fips=0, forwardings=False)))
    a = e.ports["port-0-0"]
    out = Tracer(e.flows()).run({
        "in_port": _vif(e, a.id), "vlan_vid": 0, "eth_src": a.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
        "ipv4_dst": "10.0.1.100", "tcp_src": 40000, "tcp_dst": 80})
    holder = _vif(e, "port-1-0")
    # delivered to the holder, or asked about (resolution through the
    # agent, as on an external network): not dropped
    assert out.ports == [holder] or out.controller, out.format()


def test_f2_an_extra_route_via_an_allowed_address_pair_address_is_not_a_blackhole():
    """An extra route whose next hop is a VIP (a firewall / VPN appliance
    pair behind the router: nexthop = the pair's VRRP address) is taken by
    Neutron (router_info.routes_updated: ``ip route replace ... via``,
    resolved by ARP).  Here the engine looks the next hop up among fixed
    IPs only (engine._compute_router) and installs a blackhole."""
    v = _with_vip(_view(fips=0, forwardings=False))
    r = v.routers[0]
    r = dataclasses.replace(r, routes=r.routes + (HostRoute("10.8.0.0/16", "10.0.1.100"),))
    e = _engine(v.replace(routers=(r,) + v.routers[1:]))
    a = e.ports["port-0-0"]
    out = Tracer(e.flows()).run({
        "in_port": _vif(e, a.id), "vlan_vid": 0, "eth_src": a.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
        "ipv4_dst": "10.8.0.5", "tcp_src": 40000, "tcp_dst": 80})
    assert out.ports == [_vif(e, "port-1-0")] or out.controller, out.format()


def _to_vip(e, vip="10.0.1.100"):
    a = e.ports["port-0-0"]
    return Tracer(e.flows()).run({
        "in_port": _vif(e, a.id), "vlan_vid": 0, "eth_src": a.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
        "ipv4_dst": vip, "tcp_src": 40000, "tcp_dst": 80})


def test_f2_an_address_pair_of_its_own_mac_is_reached_by_that_mac():
    """A pair with a MAC of its own (not the port's) resolves to that MAC,
    which reaches the holder as the network's L2 does for pair MACs."""
    v = _view(fips=0, forwardings=False)
    v = _replace_ports(v, "port-1-0", allowed_address_pairs=(
        AddressPair("10.0.1.100/32", "fa:16:3e:99:00:01"),))
    e = _engine(v)
    out = _to_vip(e)
    assert _vif(e, "port-1-0") in out.ports, out.format()
    assert {d.get("eth_dst") for d in out.outputs} == {"fa:16:3e:99:00:01"}, out.format()


def test_f2_an_address_several_ports_hold_is_left_unresolved_incrementally():
    """Two ports holding the VIP (both members of a VRRP pair list it):
    which one is master is not in the model, so neither gets it (and an
    extra route via it stays a blackhole); when one lets it go, the other
    has it.  Incremental = from scratch at every step."""
    v = _with_vip(_view(fips=0, forwardings=False))
    r = v.routers[0]
    v = v.replace(routers=(dataclasses.replace(
        r, routes=r.routes + (HostRoute("10.8.0.0/16", "10.0.1.100"),)),) + v.routers[1:])
    e = _engine(v)
    holder, other = _vif(e, "port-1-0"), _vif(e, "port-1-1")
    assert _to_vip(e).ports == [holder]
    both = e.ports["port-1-1"]
    change(e, ports=(dataclasses.replace(both, allowed_address_pairs=(
        AddressPair("10.0.1.100", both.mac_address),)),))
    assert e.flows() == Engine.from_view(e.view(), e.alloc).flows()
    assert _to_vip(e).ports == [] and _to_vip(e, "10.8.0.5").ports == []
    first = e.ports["port-1-0"]
    change(e, ports=(dataclasses.replace(first, allowed_address_pairs=()),))
    assert e.flows() == Engine.from_view(e.view(), e.alloc).flows()
    assert _to_vip(e).ports == [other] and _to_vip(e, "10.8.0.5").ports == [other]


def test_f2_a_range_of_addresses_is_not_resolved():
    """A pair that names a CIDR (more than one address) is not resolved:
    which of them are in use is not known."""
    v = _replace_ports(_view(fips=0, forwardings=False), "port-1-0", allowed_address_pairs=(
        AddressPair("10.0.1.96/28", "fa:16:3e:00:01:00"),))
    assert _to_vip(_engine(v)).ports == []


# ------------------------------------------------------------------ F5
def test_f5_the_routers_echo_answer_to_the_outside_keeps_the_vlan_tag_ipv6():
    """IPv6 is routed in from the outside through the gateway MAC; a ping
    of the router's internal address (fd00::1, a traceroute's hop) is
    answered by router.py's L3_ROUTE echo flow with a plain
    output:IN_PORT.  CLASSIFY popped the external network's VLAN tag, so
    on a VLAN external network the answer leaves the uplink untagged (onto
    the trunk's native VLAN, another network, or nowhere).  The gateway's
    own answers push the tag again (gateway.ExtNet.reply, tested in
    test_answers_on_a_vlan_external_network_go_back_tagged); Neutron's
    qrouter answers on its qg- port, on the network's VLAN."""
    v = _vlan_external(_v6(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False), ()))
    e = _engine(v)
    gw = e.routers["router-1"].gateway
    tag = 300 | OFPVID_PRESENT
    out = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": tag, "eth_src": INET_MAC,
        "eth_dst": gw.mac_address, "eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 128,
        "ipv6_src": "2001:db8:99::5", "ipv6_dst": "fd00::1"})
    assert [(d.port, d.get("vlan_vid"), d.get("icmpv6_type")) for d in out.outputs] == \
        [(PATCH_OFPORT, tag, 129)], out.format()


def test_f5_the_routers_echo_answer_to_the_outside_keeps_the_vlan_tag_without_snat():
    """The same for IPv4 with enable_snat off (tenant addresses routed in
    through the gateway MAC): a ping of the router's interface 10.0.0.1
    from the outside is answered untagged on a VLAN external network."""
    v = _vlan_external(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False))
    r = v.routers[0]
    v = v.replace(routers=(dataclasses.replace(
        r, gateway=dataclasses.replace(r.gateway, enable_snat=False)),) + v.routers[1:])
    e = _engine(v)
    gw = e.routers["router-1"].gateway
    tag = 300 | OFPVID_PRESENT
    out = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": tag, "eth_src": INET_MAC,
        "eth_dst": gw.mac_address, "eth_type": 0x0800, "ip_proto": 1, "icmpv4_type": 8,
        "ipv4_src": INTERNET, "ipv4_dst": "10.0.0.1"})
    assert [(d.port, d.get("vlan_vid"), d.get("icmpv4_type")) for d in out.outputs] == \
        [(PATCH_OFPORT, tag, 0)], out.format()
