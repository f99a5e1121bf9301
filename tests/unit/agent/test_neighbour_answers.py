"""The agent's neighbour requests on external networks and the flows that
bring their answers back, together: these tests drive the real resolver
with the packet the compiled flows punt, take the address it asks from,
and trace the answer to that address through the same host's flows.  (A
change that punted answers by the address they are sent to, reverted in
session 22, broke each of these: the agent may ask from an address whose
answers this host does not take.)"""

from __future__ import annotations

import dataclasses

from os_ken.lib.packet import arp, ethernet, icmpv6, ipv4, ipv6, packet, tcp, udp

from agent.openflow.encode import PacketIn
from agent.responders import neighbours as nb
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_EST, CT_RPL, Field, Match
from quantum_ovs.compiler.synth import (
    EXT_GATEWAY_IP,
    EXT_NET,
    add_external,
    make_host_view,
    make_router,
    router_mac,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import FixedIP, RouterInterface, Subnet
from tests.fixtures.scenario import HOST, PATCH_OFPORT

INTERNET = "198.51.100.7"
UP_MAC = "52:54:00:12:34:56"


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _context(e: Engine, host=HOST):
    """As the daemon builds it (agent/daemon.py)."""
    return nb.build_context(host, e.routers.values(), e.networks, e.subnets.values(), e.ports,
                            e.local_id, dict(e.chassis().physnet_ofports), e.neighbour_sources(),
                            {e.router_zone(rid): rid for rid in e.routers})


def _resolver(e: Engine, **kw):
    sent, clock = [], _Clock()
    r = nb.NeighbourResolver(lambda d, a: sent.append((d, a)), lambda: None, {}, clock=clock,
                             **kw)
    r.set_context(_context(e))
    return r, sent, clock


def _frame(pkt: dict) -> bytes:
    """The punted packet's bytes (what the switch hands the agent)."""
    p = packet.Packet()
    if "ipv6_src" in pkt:
        p.add_protocol(ethernet.ethernet(pkt["eth_dst"], pkt["eth_src"], 0x86DD))
        p.add_protocol(ipv6.ipv6(src=pkt["ipv6_src"], dst=pkt["ipv6_dst"], nxt=17))
        p.add_protocol(udp.udp(pkt.get("udp_src", 1), pkt.get("udp_dst", 1)))
    else:
        p.add_protocol(ethernet.ethernet(pkt["eth_dst"], pkt["eth_src"], 0x0800))
        p.add_protocol(ipv4.ipv4(src=pkt["ipv4_src"], dst=pkt["ipv4_dst"], proto=6))
        p.add_protocol(tcp.tcp(pkt.get("tcp_src", 1), pkt.get("tcp_dst", 1)))
    p.serialize()
    return bytes(p.data)


def _punt_to_agent(resolver, out):
    """Hand the resolver the packet-in the switch makes of ``out``'s
    resolve punt (cookie of the punting flow, reg6 / reg0)."""
    (pkt,) = out.controller
    step = next(s for s in reversed(out.steps) if s.flow is not None)
    assert step.table == P.L3_RESOLVE, out.format()
    regs = [Field(r, pkt[r]) for r in ("reg0", "reg2", "reg6") if pkt.get(r)]
    data = _frame(pkt)
    return resolver.packet_in(PacketIn(1, P.L3_RESOLVE, step.flow.cookie, pkt["in_port"],
                                       Match(Field("in_port", pkt["in_port"]), *regs),
                                       data, len(data)))


def _asked_from(sent):
    """(source IP, source MAC, target) of the last request sent."""
    pkt = packet.Packet(sent[-1][0])
    a = pkt.get_protocol(arp.arp)
    if a is not None:
        return a.src_ip, a.src_mac, a.dst_ip
    ip6, icmp = pkt.get_protocol(ipv6.ipv6), pkt.get_protocol(icmpv6.icmpv6)
    return ip6.src, pkt.get_protocol(ethernet.ethernet).src, icmp.data.dst


def _answer(tracer, target, src_ip, src_mac):
    """The neighbour's answer to a request from (src_ip, src_mac), as it
    comes in from the uplink."""
    if ":" in target:
        return tracer.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": UP_MAC,
                           "eth_dst": src_mac, "eth_type": 0x86DD, "ip_proto": 58,
                           "ipv6_src": target, "ipv6_dst": src_ip, "nw_ttl": 255,
                           "icmpv6_type": 136, "icmpv6_code": 0, "ipv6_nd_target": target,
                           "ipv6_nd_tll": UP_MAC})
    return tracer.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": UP_MAC,
                       "eth_dst": src_mac, "eth_type": 0x0806, "arp_op": 2,
                       "arp_spa": target, "arp_sha": UP_MAC, "arp_tpa": src_ip,
                       "arp_tha": src_mac})


def _two_routers(v6=False):
    """host-a is the active gateway host of router-b (a port forwarding
    172.24.0.250:2222 -> port-0-0:22; net-0) and a standby gateway host of
    router-a (net-1), two routers on one external network -- the usual
    spread of routers over gateway hosts.  router-a's cookie sorts before
    router-b's.  No neighbour is known yet.  ``v6``: both gateways have an
    IPv6 address on an IPv6 external subnet, net-0 an IPv6 subnet."""
    v = make_host_view(networks=2, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1)
    v = v.replace(routers=(make_router("router-b", (0,)), make_router("router-a", (1,))))
    v = add_external(v, fips=0, forwardings=True, hosts=(HOST, "gw-2"))
    routers = []
    for k, r in enumerate(v.routers):
        gw = r.gateway
        if r.id == "router-a":
            gw = dataclasses.replace(gw, hosts=("gw-2", HOST))
        ifs = r.interfaces
        if v6:
            gw = dataclasses.replace(gw, ip_addresses=gw.ip_addresses + (f"2001:db8:e::{10 + k}",))
            if r.id == "router-b":
                ifs = ifs + (RouterInterface(ifs[0].port_id, "net-0", "sub6-0", "fd00::1", 64,
                                             ifs[0].mac_address),)
        routers.append(dataclasses.replace(r, gateway=gw, interfaces=ifs))
    v = v.replace(routers=tuple(routers), chassis=dataclasses.replace(v.chassis, neighbours=()))
    if v6:
        subs = (Subnet("ext-sub6", EXT_NET, "2001:db8:e::/64", 6, "2001:db8:e::1",
                       enable_dhcp=False),
                Subnet("sub6-0", "net-0", "fd00::/64", 6, "fd00::1", enable_dhcp=False))
        v6_ip = (FixedIP("sub6-0", "fd00::7"),)
        ports = tuple(dataclasses.replace(p, fixed_ips=p.fixed_ips + v6_ip)
                      if p.id == "port-0-0" else p for p in v.ports)
        v = v.replace(subnets=v.subnets + subs, ports=ports)
    e = Engine.from_view(v)
    from quantum_ovs.compiler import cookies
    assert cookies.cookie_for(cookies.KIND_ROUTER, "router-a") < \
        cookies.cookie_for(cookies.KIND_ROUTER, "router-b")
    return e


def test_a_port_forwardings_next_hop_is_asked_from_an_address_answered_here():
    """A reply of router-b's port forwarding leaves from its floating IP
    (172.24.0.250) on the active gateway host, and its next hop is
    punted.  The forwarding's floating IP has no port (not in
    Context.local_fips) and is none of the gateways' addresses, so
    source_for falls back to "the first router's gateway address" --
    router-a's (by cookie), whose reply punt exists only on router-a's
    active gateway host.  The ARP reply to 172.24.0.11 is not punted here:
    the next hop is never learned and the forwarding's replies never
    leave.  (39022c6, reverted, punted only the answers to the active gateway's
    and served floating IPs' addresses.)"""
    e = _two_routers()
    t = Tracer(e.flows())
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]

    def undnat(zone, pkt):
        if pkt.get("ipv4_src") == port.ips[0] and pkt.get("tcp_src") == 22:
            return {"ipv4_src": "172.24.0.250", "tcp_src": 2222}
        return {}
    out = t.run({"in_port": vif, "eth_src": port.mac_address, "eth_dst": router_mac(0),
                 "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": port.ips[0],
                 "ipv4_dst": INTERNET, "tcp_src": 22, "tcp_dst": 40000},
                ct_state=CT_EST | CT_RPL, nat=undnat)
    assert out.controller and out.controller[0]["ipv4_src"] == "172.24.0.250", out.format()
    r, sent, _ = _resolver(e)
    assert _punt_to_agent(r, out) and sent
    src_ip, src_mac, target = _asked_from(sent)
    assert target == EXT_GATEWAY_IP
    answer = _answer(t, target, src_ip, src_mac)
    assert answer.controller, (
        f"asked from {src_ip} ({src_mac}); its answer is not punted here:\n{answer.format()}")


def test_an_ipv6_next_hop_is_asked_from_an_address_answered_here():
    """IPv6 from router-b's tenant (fd00::7), routed through its active
    gateway host (host-a), is punted for its next hop.  The packet's
    source is the tenant's (IPv6 is not translated): the agent must ask
    from router-b's own IPv6 gateway address, whose neighbour
    advertisement is punted here before anything routes it (hop limit
    still 255).  (Before: "the first router's" -- router-a's, by cookie.)"""
    e = _two_routers(v6=True)
    t = Tracer(e.flows())
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]
    out = t.run({"in_port": vif, "eth_src": port.mac_address, "eth_dst": router_mac(0),
                 "eth_type": 0x86DD, "ip_proto": 17, "ipv6_src": "fd00::7",
                 "ipv6_dst": "2001:db8:99::1", "udp_src": 5000, "udp_dst": 53},
                ct_state=CT_EST)
    assert out.controller, out.format()
    r, sent, _ = _resolver(e)
    assert _punt_to_agent(r, out) and sent
    src_ip, src_mac, target = _asked_from(sent)
    assert target == "2001:db8:e::1"
    assert (src_ip, src_mac) == ("2001:db8:e::10", e.routers["router-b"].gateway.mac_address)
    answer = _answer(t, target, src_ip, src_mac)
    assert answer.controller, (
        f"asked from {src_ip} ({src_mac}); its answer is not punted here:\n{answer.format()}")
    punted = answer.controller[0]
    assert punted.get("nw_ttl") == 255, answer.format()
    # ... and the agent learns it from what the switch hands it
    na = packet.Packet()
    na.add_protocol(ethernet.ethernet(src_mac, UP_MAC, 0x86DD))
    na.add_protocol(ipv6.ipv6(src=target, dst=src_ip, nxt=58, hop_limit=punted["nw_ttl"]))
    na.add_protocol(icmpv6.icmpv6(type_=136, data=icmpv6.nd_neighbor(
        res=0x6, dst=target, option=icmpv6.nd_option_tla(hw_src=UP_MAC))))
    na.serialize()
    raw = bytes(na.data)
    assert r.packet_in(PacketIn(1, P.EXT_ADMIT, 0, PATCH_OFPORT,
                                Match(Field("in_port", PATCH_OFPORT),
                                      Field("reg6", punted["reg6"])), raw, len(raw)))
    assert [(n.ip_address, n.mac_address) for n in r.neighbours()] == [(target, UP_MAC)]


def _everything(e: Engine) -> set:
    """Every (IP, MAC) of the routers' gateways and floating IPs."""
    out = set()
    for r in e.routers.values():
        if r.gateway is None:
            continue
        out |= {(a, r.gateway.mac_address) for a in r.gateway.ip_addresses}
        out |= {(f.floating_ip_address, f.mac_address) for f in r.floating_ips
                if f.mac_address}
    return out


def _answered_here(tracer, ip, mac):
    return bool(_answer(tracer, "2001:db8:e::1" if ":" in ip else EXT_GATEWAY_IP, ip,
                        mac).controller)


def test_the_sources_are_exactly_the_addresses_whose_answers_are_punted():
    """On every kind of host -- active and standby gateway host, a compute
    host with floating IPs, a host with none --, each address the agent
    may ask from has its answers punted, and the answers to every other
    address of the external network (another router's gateway on a host
    that is not its gateway host, floating IPs served elsewhere) go on:
    the two sides are compiled under the same conditions.  A router's
    gateway address is never asked from on a compute host (its MAC
    belongs to the active gateway host on the wire)."""
    from tests.fixtures.scenario import base_view
    cases = []
    for v6 in (False, True):
        cases += [(f"two routers v6={v6}", _two_routers(v6=v6))]
    for hosts in (("gw-1", "gw-2"), (HOST, "gw-2"), ("gw-2", HOST)):
        v = add_external(base_view(), hosts=hosts, forwardings=True)
        cases.append((f"gateway hosts {hosts}", Engine.from_view(v)))
    seen_compute_fip = False
    for name, e in cases:
        t = Tracer(e.flows())
        sources = e.neighbour_sources().get(EXT_NET, ())
        asked = {(s.ip, s.mac) for s in sources}
        everything = _everything(e)
        assert asked <= everything, name
        for ip, mac in sorted(everything):
            assert _answered_here(t, ip, mac) == ((ip, mac) in asked), (name, ip, mac)
        for r in e.routers.values():
            if r.gateway is not None and e._gateway_role(r.gateway) == "compute":
                assert not asked & {(a, r.gateway.mac_address) for a in r.gateway.ip_addresses}
                seen_compute_fip |= any(s.rank == 2 for s in sources)
    assert seen_compute_fip  # (the cases cover a compute host's floating IPs)


def test_an_entry_of_a_fip_that_left_is_refreshed_from_an_address_answered_here():
    """A compute host (router-1's gateway hosts are gw-1, gw-2) with two
    floating IPs.  The external gateway was learned from port-0-0's
    floating IP; port-0-0 then moves away.  set_context refreshes the
    entry "from the network's gateway" (source_for with no source) --
    although port-0-1's floating IP is still served here -- so the
    refresh goes out from the router's gateway address and MAC (a MAC the
    active gateway host owns on the wire) and its answer is not punted on
    this host when only the active gateway host punts it (39022c6, reverted).  The entry
    expires after `reachable` and the floating IP's traffic is punted
    again."""
    from tests.fixtures.scenario import base_view
    v = add_external(base_view(), hosts=("gw-1", "gw-2"), forwardings=False)
    e = Engine.from_view(v)
    fips = {f.port_id: f for f in e.routers["router-1"].floating_ips}
    assert {"port-0-0", "port-0-1"} <= set(fips)
    r, sent, clock = _resolver(e, reachable=100.0)
    f0 = fips["port-0-0"]
    r.ask(EXT_NET, EXT_GATEWAY_IP, f0.floating_ip_address, f0.mac_address)
    t = Tracer(e.flows())
    answer = _answer(t, EXT_GATEWAY_IP, f0.floating_ip_address, f0.mac_address)
    assert answer.controller  # punted: the FIP is served here
    # (the agent learns it from the packet-in)
    data = packet.Packet()
    data.add_protocol(ethernet.ethernet(f0.mac_address, UP_MAC, 0x0806))
    data.add_protocol(arp.arp(opcode=2, src_mac=UP_MAC, src_ip=EXT_GATEWAY_IP,
                              dst_mac=f0.mac_address, dst_ip=f0.floating_ip_address))
    data.serialize()
    raw = bytes(data.data)
    lid = e.local_id(EXT_NET)
    assert r.packet_in(PacketIn(1, P.EXT_ADMIT, 0, PATCH_OFPORT,
                                Match(Field("in_port", PATCH_OFPORT), Field("reg6", lid)),
                                raw, len(raw)))
    assert r.neighbours()
    # port-0-0 moves to another host; port-0-1 and its floating IP stay
    moved = dataclasses.replace(e.ports["port-0-0"], host="host-r0")
    v2 = e.view()
    v2 = v2.replace(ports=tuple(moved if p.id == moved.id else p for p in v2.ports))
    e2 = Engine.from_view(v2)
    r.set_context(_context(e2))
    clock.t += 80  # past the refresh point
    r.tick()
    src_ip, src_mac, _ = _asked_from(sent)
    answer = _answer(Tracer(e2.flows()), EXT_GATEWAY_IP, src_ip, src_mac)
    assert answer.controller, (
        f"refreshed from {src_ip} ({src_mac}) on a compute host; its answer is not punted "
        f"here (port-0-1's floating IP {fips['port-0-1'].floating_ip_address} is):\n"
        f"{answer.format()}")


def test_a_standby_gateway_snating_redirected_traffic_can_learn_its_next_hop():
    """A compute host whose BFD session to the active gateway host (gw-1)
    went down redirects router-1's SNAT traffic to the standby (host-a),
    which SNATs it to the gateway address (PRIO_REDIRECTED: "SNATed there,
    never bounced") while it still sees gw-1 alive (role "standby").  The
    next hop is punted and the agent asks from the gateway address; the
    answer is punted only on the host whose role is "active", so the
    standby never learns it and the redirected traffic is dropped for as
    long as the partial failure lasts, when only the active gateway host
    punts it (39022c6, reverted)."""
    from tests.fixtures.scenario import VXLAN_OFPORT, base_view
    v = add_external(base_view(), hosts=("gw-1", HOST), forwardings=False, fips=0)
    v = v.replace(chassis=dataclasses.replace(v.chassis, neighbours=()))
    e = Engine.from_view(v)
    gw = e.routers["router-1"].gateway
    assert e._gateway_role(gw) == "standby"
    t = Tracer(e.flows())
    out = t.run({"in_port": VXLAN_OFPORT, "tun_ipv4_src": v.remote_hosts[0].tunnel_ip,
                 "tunnel_id": gw.redirect_key, "eth_src": gw.mac_address,
                 "eth_dst": "52:54:00:00:00:01", "eth_type": 0x0800, "ip_proto": 6,
                 "ipv4_src": "10.0.0.10", "ipv4_dst": INTERNET, "tcp_src": 40000,
                 "tcp_dst": 80})
    assert out.controller and out.controller[0]["ipv4_src"] == gw.ip_addresses[0], out.format()
    r, sent, _ = _resolver(e)
    assert _punt_to_agent(r, out) and sent
    src_ip, src_mac, target = _asked_from(sent)
    assert (src_ip, target) == (gw.ip_addresses[0], EXT_GATEWAY_IP)
    answer = _answer(t, target, src_ip, src_mac)
    assert answer.controller, (
        f"asked from {src_ip} ({src_mac}); its answer is not punted here:\n{answer.format()}")


def test_the_agent_asks_from_what_its_gateway_role_serves_now():
    """The addresses the agent may ask from follow the host's gateway role,
    not only the view: a standby gateway host that becomes the active one
    (the first gateway host's BFD session went down; no view change) serves
    the router's port forwardings, whose floating IP it may then ask from,
    and its gateway address comes first (agent/daemon.py rebuilds the
    resolver's context once the engine has the new chassis)."""
    import types

    from agent.daemon import Agent
    from tests.fixtures.scenario import base_view
    v = add_external(base_view(), hosts=("gw-1", HOST), forwardings=True, fips=0)
    e = Engine.from_view(v)
    agent = Agent.__new__(Agent)
    agent.s = types.SimpleNamespace(host=HOST)
    agent.engine, agent.base_chassis = e, e.chassis()
    agent.resolver = nb.NeighbourResolver(lambda d, a: None, lambda: None, {})
    agent._nb_roles, agent._nb_stale = None, True
    agent._neighbour_context()
    gw = e.routers["router-1"].gateway
    fwd = {f.floating_ip_address for f in e.routers["router-1"].floating_ips
           if f.port_forwardings}
    assert fwd

    def sources():
        return [(s.ip, s.rank) for s in agent.nb_context.sources[EXT_NET]]
    assert sources() == [(gw.ip_addresses[0], 1)]  # standby: no forwarding here
    e.set_chassis(dataclasses.replace(e.chassis(), gateways_down=("gw-1",)))
    agent._neighbour_context()
    assert sources() == [(gw.ip_addresses[0], 0)] + sorted((ip, 2) for ip in fwd)
    assert agent.resolver.ctx is agent.nb_context
