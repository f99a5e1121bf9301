"""Distributed routing, traced: a packet to the router's MAC is routed on
the sender's host and leaves it already routed (one host or two), meets
the destination's ingress security groups, and the router answers ARP,
neighbour solicitations and pings in flows."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_EST, CT_NEW, CT_RPL, OFPP_IN_PORT
from quantum_ovs.compiler.synth import (
    default_group,
    make_network,
    make_port,
    make_router,
    make_subnet,
    router_mac,
    slice_for_host,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import (
    Delta,
    FixedIP,
    HostRoute,
    Port,
    Router,
    RouterInterface,
    Rule,
    SecurityGroup,
    Subnet,
)

IPS = {"host-a": "192.168.0.1", "host-b": "192.168.0.2", "host-c": "192.168.0.3"}
VXLAN = 1
NOT_HEADER = ("reg", "ct_", "conj_id", "tun_ipv4_dst", "in_port")


class World:
    """One model, every host compiled from its own slice of it."""

    def __init__(self, networks, subnets, ports, groups, routers):
        self.model = dict(networks=networks, subnets=subnets, ports=ports, groups=groups,
                          routers=routers)
        self.ports = {p.id: p for p in ports}
        self.hosts = {}
        for h in IPS:
            view = slice_for_host(h, IPS, networks, subnets, ports, groups, routers)
            e = Engine.from_view(view)
            self.hosts[h] = (e, Tracer(e.flows()), dict(view.chassis.vif_ofports))

    def engine(self, host) -> Engine:
        return self.hosts[host][0]

    def ofport(self, pid) -> int:
        p = self.ports[pid]
        return self.hosts[p.host][2][pid]

    def send(self, src, ct_state=CT_NEW, **fields):
        p = self.ports[src]
        _, tracer, vif = self.hosts[p.host]
        if fields.get("eth_type") == 0x0800 and "ipv4_src" not in fields:
            fields["ipv4_src"] = p.ips[0]
        return tracer.run({"in_port": vif[src], "eth_src": p.mac_address, **fields}, ct_state)

    def follow(self, src, ct_state=CT_NEW, **fields):
        """Send from ``src``; follow tunnel outputs into the receiving
        hosts.  Returns [(host, port id, Delivery)] of the VIFs reached
        and the traces, in order."""
        first = self.send(src, ct_state, **fields)
        host = self.ports[src].host
        reached, traces = [], [(host, first)]
        for d in first.outputs:
            self._land(host, d, reached)
        for d in first.outputs:
            if d.port == VXLAN:
                dst = next(h for h, ip in IPS.items() if ip == d.fields["tun_ipv4_dst"])
                pkt = {k: v for k, v in d.fields.items() if not k.startswith(NOT_HEADER)}
                # (the switch gives it the sending host's address as tun_src)
                tr = self.hosts[dst][1].run({"in_port": VXLAN, "tun_ipv4_src": IPS[host],
                                             **pkt}, ct_state)
                traces.append((dst, tr))
                for d2 in tr.outputs:
                    self._land(dst, d2, reached)
        return reached, traces

    def _land(self, host, d, reached):
        vif = self.hosts[host][2]
        for pid, ofport in vif.items():
            if ofport == d.port:
                reached.append((host, pid, d))


def tcp_to(dst_ip, via_mac, dport=80, ttl=64):
    return dict(eth_dst=via_mac, eth_type=0x0800, ipv4_dst=dst_ip, ip_proto=6, tcp_src=40000,
                tcp_dst=dport, nw_ttl=ttl)


def ports_and_groups():
    a = make_port(0, 0, "host-a", ("sg-a",))  # 10.0.0.10, egress only
    b_local = make_port(1, 0, "host-a")  # 10.0.1.10
    b_remote = make_port(1, 1, "host-b", ("sg-web",))  # 10.0.1.11, ingress tcp 80 only
    c = make_port(2, 0, "host-c")  # 10.0.2.10, not routed
    ports = [a, b_local, b_remote, c]
    a_ips = [ip for p in ports for ip in p.ips]
    groups = (
        default_group(members=a_ips),
        SecurityGroup("sg-a", (Rule("a-eg", "sg-a", "egress", "IPv4"),), frozenset(a.ips)),
        SecurityGroup("sg-web", (Rule("w-eg", "sg-web", "egress", "IPv4"),
                                 Rule("w-80", "sg-web", "ingress", "IPv4", 6, 80, 80)),
                      frozenset(b_remote.ips)),
    )
    return ports, groups


def world(routes=(), routers=None, network_type="vxlan"):
    ports, groups = ports_and_groups()
    nets = [make_network(n, network_type, n + 1) for n in range(3)]
    subnets = [make_subnet(n) for n in range(3)]
    if routers is None:
        routers = [make_router("router-1", (0, 1), routes)]
    return World(nets, subnets, ports, groups, routers)


@pytest.fixture(scope="module")
def w():
    return world()


R0, R1 = router_mac(0), router_mac(1)


# ----------------------------------------------------------- east-west
def test_same_host_routed_and_never_leaves_the_host(w):
    reached, traces = w.follow("port-0-0", **tcp_to("10.0.1.10", R0))
    assert [(h, p) for h, p, _ in reached] == [("host-a", "port-1-0")]
    (_, tr), = traces
    assert tr.ports == [w.ofport("port-1-0")]  # no tunnel output
    d = reached[0][2]
    assert d.get("eth_src") == R1 and d.get("eth_dst") == w.ports["port-1-0"].mac_address
    assert d.get("nw_ttl") == 63
    assert d.get("ipv4_src") == "10.0.0.10" and d.get("ipv4_dst") == "10.0.1.10"


def test_two_hosts_routed_on_the_sender_and_tunnelled_on_the_egress_network(w):
    reached, traces = w.follow("port-0-0", **tcp_to("10.0.1.11", R0))
    (_, tr_a), (host_b, tr_b) = traces
    out, = tr_a.outputs
    assert out.port == VXLAN
    assert out.get("tunnel_id") == 1001  # net-1's VNI, not net-0's
    assert out.get("tun_ipv4_dst") == IPS["host-b"]
    assert out.get("eth_src") == R1 and out.get("eth_dst") == w.ports["port-1-1"].mac_address
    assert out.get("nw_ttl") == 63
    assert host_b == "host-b"
    assert [(h, p) for h, p, _ in reached] == [("host-b", "port-1-1")]
    # host-b does not route it again
    assert reached[0][2].get("nw_ttl") == 63
    assert not any(s.flow is not None and s.table == P.L3_ROUTE for s in tr_b.steps)


def test_destination_ingress_groups_still_apply(w):
    # port-1-1 (sg-web) takes TCP 80 only, routed or not
    reached, _ = w.follow("port-0-0", **tcp_to("10.0.1.11", R0, dport=22))
    assert reached == []
    reached, _ = w.follow("port-0-0", **tcp_to("10.0.1.11", R0, dport=80))
    assert [p for _, p, _ in reached] == ["port-1-1"]


def test_source_egress_groups_apply_before_routing():
    ports, groups = ports_and_groups()
    groups = tuple(dataclasses.replace(g, rules=()) if g.id == "sg-a" else g for g in groups)
    nets = [make_network(n, "vxlan", n + 1) for n in range(3)]
    w2 = World(nets, [make_subnet(n) for n in range(3)], ports, groups,
               [make_router("router-1", (0, 1))])
    reached, _ = w2.follow("port-0-0", **tcp_to("10.0.1.10", R0))
    assert reached == []


def test_routed_connection_meets_in_the_router_zone_both_ways(w):
    """sg-a has no ingress rule: A receives only what conntrack says is a
    reply.  Conntrack says established only in the router's zone, so the
    reply reaches A only if every lookup of the connection (on host-b and
    on host-a) uses that zone."""
    zone = {h: w.engine(h).router_zone("router-1") for h in ("host-a", "host-b")}
    nets = {w.engine(h).local_id(n) for h in zone for n in ("net-0", "net-1", "net-2")}
    assert not set(zone.values()) & nets  # never a network's zone
    # forward: committed in the router zone on both hosts
    _, traces = w.follow("port-0-0", **tcp_to("10.0.1.11", R0))
    for host, tr in traces:
        assert tr.commits and {z for z, _ in tr.commits} == {zone[host]}

    def est_in_router_zone(z, _pkt):
        return CT_EST | CT_RPL if z in zone.values() else CT_NEW

    reply = dict(eth_dst=R1, eth_type=0x0800, ipv4_dst="10.0.0.10", ip_proto=6, tcp_src=80,
                 tcp_dst=40000, nw_ttl=64)
    reached, _ = w.follow("port-1-1", est_in_router_zone, **reply)
    assert [(h, p) for h, p, _ in reached] == [("host-a", "port-0-0")]
    assert reached[0][2].get("eth_src") == R0
    # a new connection from B to A is refused by A's groups
    reached, _ = w.follow("port-1-1", CT_NEW, **reply)
    assert reached == []


def test_same_host_reply_is_established_in_the_router_zone(w):
    zone = w.engine("host-a").router_zone("router-1")
    tr = w.send("port-0-0", **tcp_to("10.0.1.10", R0))
    assert {z for z, _ in tr.commits} == {zone}
    reply = dict(eth_dst=R1, eth_type=0x0800, ipv4_dst="10.0.0.10", ip_proto=6, tcp_src=80,
                 tcp_dst=40000)
    tr = w.send("port-1-0", lambda z, _p: CT_EST | CT_RPL if z == zone else CT_NEW, **reply)
    assert tr.ports == [w.ofport("port-0-0")]


def test_vlan_egress_network():
    w2 = world(network_type="vlan")
    reached, traces = w2.follow("port-0-0", **tcp_to("10.0.1.11", R0))
    out, = traces[0][1].outputs
    assert out.port == 3 and out.get("vlan_vid") == (101 | 0x1000)  # net-1's VLAN
    assert out.get("eth_src") == R1


@pytest.mark.parametrize("ttl", [0, 1])
def test_ttl_expiry_goes_to_the_controller_through_the_source_ports_meter(w, ttl):
    """Metered before the agent sees it, by the instance's own punt meter
    (its ofport, as its DHCP punts): one instance sending expiring
    packets at line rate fills its own meter, not one the whole host's
    traceroutes share (review F4, session 22: one METER_TTL for all)."""
    tr = w.send("port-0-0", **tcp_to("10.0.1.10", R0, ttl=ttl))
    assert tr.outputs == [] and len(tr.controller) == 1
    assert tr.controller[0]["ipv4_dst"] == "10.0.1.10"
    assert tr.meters == [w.ofport("port-0-0")]
    assert not tr.ttl_expired  # punted before dec_ttl (no unmetered packet-in)
    other = w.send("port-1-0", **tcp_to("10.0.0.10", R1, ttl=ttl))
    assert other.meters == [w.ofport("port-1-0")] != tr.meters and other.controller


def test_a_ports_ttl_punt_sits_between_the_routers_and_the_martian_drops():
    from quantum_ovs.compiler.rules import port, router, static
    assert router.PRIO_TTL < port.PRIO_TTL_PORT < static.PRIO_MARTIAN < router.PRIO_ECHO


def test_ttl_two_is_routed_with_ttl_one(w):
    tr = w.send("port-0-0", **tcp_to("10.0.1.10", R0, ttl=2))
    d, = tr.outputs
    assert d.get("nw_ttl") == 1 and not tr.controller


def test_unknown_destination_on_a_connected_subnet_is_dropped(w):
    tr = w.send("port-0-0", **tcp_to("10.0.1.99", R0))
    assert tr.dropped


def test_off_router_destination_is_dropped(w):
    tr = w.send("port-0-0", **tcp_to("10.0.2.10", R0))  # net-2 is not on the router
    assert tr.dropped


# ------------------------------------------------------ router answers
def test_arp_for_the_gateway_answered_in_flows(w):
    a = w.ports["port-0-0"]
    tr = w.send("port-0-0", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                arp_spa="10.0.0.10", arp_sha=a.mac_address, arp_tpa="10.0.0.1",
                arp_tha="00:00:00:00:00:00")
    d, = tr.outputs
    assert d.port == w.ofport("port-0-0")
    assert d.get("arp_op") == 2 and d.get("arp_sha") == R0 and d.get("arp_spa") == "10.0.0.1"
    assert d.get("eth_src") == R0 and d.get("eth_dst") == a.mac_address
    assert d.get("arp_tpa") == "10.0.0.10" and d.get("arp_tha") == a.mac_address


def test_arp_for_the_gateway_answered_on_the_other_host_too(w):
    b = w.ports["port-1-1"]
    tr = w.send("port-1-1", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                arp_spa="10.0.1.11", arp_sha=b.mac_address, arp_tpa="10.0.1.1")
    d, = tr.outputs
    assert d.get("arp_sha") == R1 and d.port == w.ofport("port-1-1")


@pytest.mark.parametrize("gateway", ["10.0.0.1", "10.0.1.1"])
def test_ping_of_a_router_address_answered_in_flows(w, gateway):
    a = w.ports["port-0-0"]
    tr = w.send("port-0-0", eth_dst=R0, eth_type=0x0800, ipv4_src="10.0.0.10",
                ipv4_dst=gateway, ip_proto=1, icmpv4_type=8, icmpv4_code=0)
    d, = tr.outputs
    assert d.port == w.ofport("port-0-0")
    assert d.get("icmpv4_type") == 0
    assert d.get("ipv4_src") == gateway and d.get("ipv4_dst") == "10.0.0.10"
    assert d.get("eth_src") == R0 and d.get("eth_dst") == a.mac_address


def test_router_mac_from_the_outside_is_not_flooded(w):
    tr = w.hosts["host-a"][1].run({"in_port": VXLAN, "tunnel_id": 1000,
                                   "tun_ipv4_src": IPS["host-b"], "eth_src": R1,
                                   "eth_dst": R0, "eth_type": 0x0806})
    assert tr.dropped


# --------------------------------------------------------- extra routes
def test_extra_route_to_a_next_hop_on_a_connected_subnet():
    w2 = world(routes=(HostRoute("10.9.0.0/16", "10.0.1.10"),))
    reached, _ = w2.follow("port-0-0", **tcp_to("10.9.3.4", R0))
    (host, pid, d), = reached
    assert (host, pid) == ("host-a", "port-1-0")
    assert d.get("eth_dst") == w2.ports["port-1-0"].mac_address and d.get("eth_src") == R1
    assert d.get("ipv4_dst") == "10.9.3.4" and d.get("nw_ttl") == 63


def test_longest_prefix_wins():
    w2 = world(routes=(HostRoute("10.9.0.0/16", "10.0.1.10"),
                       HostRoute("10.9.1.0/24", "10.0.1.11"),
                       HostRoute("0.0.0.0/0", "10.0.1.10")))
    reached, _ = w2.follow("port-0-0", **tcp_to("10.9.1.5", R0))
    assert [p for _, p, _ in reached] == ["port-1-1"]
    reached, _ = w2.follow("port-0-0", **tcp_to("10.9.2.5", R0))
    assert [p for _, p, _ in reached] == ["port-1-0"]
    reached, _ = w2.follow("port-0-0", **tcp_to("172.16.0.1", R0))
    assert [p for _, p, _ in reached] == ["port-1-0"]
    # a connected subnet beats the default route
    reached, _ = w2.follow("port-0-0", **tcp_to("10.0.1.11", R0))
    assert [p for _, p, _ in reached] == ["port-1-1"]


def test_route_to_an_unknown_next_hop_blackholes_rather_than_falling_through():
    w2 = world(routes=(HostRoute("10.9.0.0/16", "10.0.1.10"),
                       HostRoute("10.9.1.0/24", "10.0.1.77")))
    assert w2.send("port-0-0", **tcp_to("10.9.1.5", R0)).dropped
    assert [p for _, p, _ in w2.follow("port-0-0", **tcp_to("10.9.2.5", R0))[0]] == ["port-1-0"]


# ------------------------------------------------------------ isolation
def test_overlapping_address_spaces_on_two_routers_stay_isolated():
    """net-0/net-1 (router-1) and net-3/net-4 (router-2) use the same CIDRs
    and the same addresses."""
    nets = [make_network(n, "vxlan", n + 1) for n in (0, 1, 3, 4)]
    subnets = [make_subnet(0), make_subnet(1),
               Subnet("sub-3", "net-3", "10.0.0.0/24", gateway_ip="10.0.0.1"),
               Subnet("sub-4", "net-4", "10.0.1.0/24", gateway_ip="10.0.1.1")]

    def twin(n, i, host, like):
        p = make_port(n, i, host)
        return dataclasses.replace(p, fixed_ips=(FixedIP(f"sub-{n}", like),))

    ports = [make_port(0, 0, "host-a"), make_port(1, 0, "host-b"),
             twin(3, 0, "host-a", "10.0.0.10"), twin(4, 0, "host-b", "10.0.1.10")]
    r2 = Router("router-2", interfaces=(
        RouterInterface("rif-3", "net-3", "sub-3", "10.0.0.1", 24, router_mac(3)),
        RouterInterface("rif-4", "net-4", "sub-4", "10.0.1.1", 24, router_mac(4))))
    group = default_group(members=["10.0.0.10", "10.0.1.10"])
    w2 = World(nets, subnets, ports, (group,), [make_router("router-1", (0, 1)), r2])
    reached, traces = w2.follow("port-0-0", **tcp_to("10.0.1.10", R0))
    assert [(h, p) for h, p, _ in reached] == [("host-b", "port-1-0")]
    assert traces[0][1].outputs[0].get("tunnel_id") == 1001
    reached, traces = w2.follow("port-3-0", **tcp_to("10.0.1.10", router_mac(3)))
    assert [(h, p) for h, p, _ in reached] == [("host-b", "port-4-0")]
    assert traces[0][1].outputs[0].get("tunnel_id") == 1004
    # router-2's MAC on router-1's network routes nothing
    reached, _ = w2.follow("port-0-0", **tcp_to("10.0.1.10", router_mac(3)))
    assert "port-4-0" not in [p for _, p, _ in reached]
    assert all(d.get("eth_src") != router_mac(4) for _, _, d in reached)
    zones = {w2.engine("host-a").router_zone(r) for r in ("router-1", "router-2")}
    assert len(zones) == 2


def test_detach_cuts_it():
    w2 = world()
    e = w2.engine("host-a")
    assert [p for _, p, _ in w2.follow("port-0-0", **tcp_to("10.0.1.10", R0))[0]] == ["port-1-0"]
    r = e.routers["router-1"]
    e.apply(Delta(revision=1, routers=(dataclasses.replace(r, interfaces=r.interfaces[:1]),)))
    tr = Tracer(e.flows()).run({"in_port": w2.ofport("port-0-0"),
                                "eth_src": w2.ports["port-0-0"].mac_address,
                                **tcp_to("10.0.1.10", R0)})
    assert tr.dropped
    # and the gateway of the detached subnet no longer answers ARP
    b = w2.ports["port-1-0"]
    tr = Tracer(e.flows()).run({"in_port": w2.ofport("port-1-0"), "eth_src": b.mac_address,
                                "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806,
                                "arp_op": 1, "arp_spa": "10.0.1.10",
                                "arp_sha": b.mac_address, "arp_tpa": "10.0.1.1"})
    assert all(d.get("arp_op") != 2 for d in tr.outputs)
    # removing the router altogether leaves none of its flows
    e.apply(Delta(revision=2, removed_routers=("router-1",)))
    assert not any(cookies.kind_of(f.cookie) == cookies.KIND_ROUTER for f in e.flows())


def test_router_admin_down_routes_nothing():
    w2 = world(routers=[dataclasses.replace(make_router("router-1", (0, 1)),
                                            admin_state_up=False)])
    assert w2.send("port-0-0", **tcp_to("10.0.1.10", R0)).dropped


def _router_flows(e):
    return [f for f in e.flows() if cookies.kind_of(f.cookie) == cookies.KIND_ROUTER]


def test_compiled_only_on_hosts_with_a_port_on_its_networks(w):
    assert _router_flows(w.engine("host-a")) and _router_flows(w.engine("host-b"))
    # host-c has only net-2, not on the router: no router, no net-0/net-1
    assert not _router_flows(w.engine("host-c"))
    # a view that holds the router without a local port on its networks
    e = w.engine("host-a")
    view = e.view()
    lonely = view.replace(ports=tuple(p for p in view.ports if p.host != "host-a"))
    assert not _router_flows(Engine.from_view(lonely))
    # the last local port leaving takes the router with it, incrementally
    e2 = Engine.from_view(view)
    e2.apply(Delta(revision=1, removed_ports=("port-0-0",)))
    assert _router_flows(e2)  # port-1-0 is still here
    e2.apply(Delta(revision=2, removed_ports=("port-1-0",)))
    assert not _router_flows(e2)
    e2.apply(Delta(revision=3, ports=(w.ports["port-1-0"],)))
    assert _router_flows(e2) and set(e2.flows()) == set(Engine.from_view(
        e2.view(), e2.alloc).flows())


def test_router_ports_have_no_port_flows():
    """The router interface port itself (device_owner network:router_interface,
    as the host view may list it) is stood for by the router's flows."""
    ports, groups = ports_and_groups()
    rif = Port("rif-0", "net-0", R0, (FixedIP("sub-0", "10.0.0.1"),),
               device_owner="network:router_interface", device_id="router-1", host=None)
    nets = [make_network(n, "vxlan", n + 1) for n in range(3)]
    w2 = World(nets, [make_subnet(n) for n in range(3)], ports + [rif], groups,
               [make_router("router-1", (0, 1))])
    e = w2.engine("host-a")
    assert not e.desired.owner_flows(("port", "rif-0"))
    assert w2.send("port-0-0", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1,
                   arp_spa="10.0.0.10", arp_sha=ports[0].mac_address,
                   arp_tpa="10.0.0.1").outputs[0].get("arp_sha") == R0


def test_router_zones_never_collide_with_network_ids():
    """Compiler-assigned network ids and router zones share one pool."""
    nets = [make_network(n, "vxlan", 0) for n in range(3)]
    ports, groups = ports_and_groups()
    view = slice_for_host("host-a", IPS, nets, [make_subnet(n) for n in range(3)], ports,
                          groups, [make_router("router-1", (0, 1)), make_router("router-2", (2,))])
    e = Engine.from_view(view)
    ids = [e.local_id(n.id) for n in view.networks] + [e.router_zone(r.id) for r in view.routers]
    assert len(set(ids)) == len(ids) and all(0 < i <= 0xFFFF for i in ids)


# ----------------------------------------------------------------- IPv6
def _v6(n, host_part):
    return str(ipaddress.IPv6Address(f"fd00:0:0:{n}::{host_part}"))


def v6_world(routes=(), open_ports=()):
    """``open_ports``: ports without port security (they may send from
    any address)."""
    nets = [make_network(n, "vxlan", n + 1) for n in range(2)]
    subnets = [Subnet(f"sub6-{n}", f"net-{n}", f"fd00:0:0:{n}::/64", 6, gateway_ip=_v6(n, 1),
                      ipv6_ra_mode="slaac", ipv6_address_mode="slaac") for n in range(2)]

    def p6(n, i, host):
        p = make_port(n, i, host)
        return dataclasses.replace(p, fixed_ips=(FixedIP(f"sub6-{n}", _v6(n, 10 + i)),))

    ports = [p6(0, 0, "host-a"), p6(1, 0, "host-a"), p6(1, 1, "host-b")]
    ports = [dataclasses.replace(p, port_security_enabled=False) if p.id in open_ports else p
             for p in ports]
    group = SecurityGroup("sg-default", (
        Rule("eg6", "sg-default", "egress", "IPv6"),
        Rule("in6", "sg-default", "ingress", "IPv6", remote_group_id="sg-default")),
        frozenset(ip for p in ports for ip in p.ips))
    router = Router("router-6", interfaces=tuple(
        RouterInterface(f"rif6-{n}", f"net-{n}", f"sub6-{n}", _v6(n, 1), 64, router_mac(n))
        for n in range(2)), routes=tuple(routes))
    return World(nets, subnets, ports, (group,), [router])


def test_ipv6_routed_same_host_and_two_hosts():
    w6 = v6_world()
    pkt = dict(eth_dst=R0, eth_type=0x86DD, ipv6_src=_v6(0, 10), ip_proto=6, tcp_src=4000,
               tcp_dst=80, nw_ttl=64)
    reached, _ = w6.follow("port-0-0", ipv6_dst=_v6(1, 10), **pkt)
    (h, pid, d), = reached
    assert (h, pid) == ("host-a", "port-1-0") and d.get("eth_src") == R1
    assert d.get("nw_ttl") == 63
    reached, traces = w6.follow("port-0-0", ipv6_dst=_v6(1, 11), **pkt)
    assert [(h, p) for h, p, _ in reached] == [("host-b", "port-1-1")]
    assert traces[0][1].outputs[0].get("tunnel_id") == 1001


@pytest.mark.parametrize("target", ["global", "link-local"])
def test_neighbour_solicitation_for_the_router_answered_in_flows(target):
    from quantum_ovs.compiler.rules.common import link_local

    w6 = v6_world()
    a = w6.ports["port-0-0"]
    tgt = _v6(0, 1) if target == "global" else link_local(R0)
    tr = w6.send("port-0-0", eth_dst="33:33:ff:00:00:01", eth_type=0x86DD,
                 ipv6_src=_v6(0, 10), ipv6_dst="ff02::1:ff00:1", ip_proto=58,
                 icmpv6_type=135, ipv6_nd_target=tgt, ipv6_nd_sll=a.mac_address)
    d, = tr.outputs
    assert d.port == w6.ofport("port-0-0")
    # the solicitation's source link-layer option, turned into the target one
    assert d.get("icmpv6_type") == 136 and d.get("ipv6_nd_sll") == R0
    assert d.get("nd_reserved") == 0xE0000000 and d.get("nd_options_type") == 2
    assert d.get("ipv6_src") == tgt and d.get("ipv6_dst") == _v6(0, 10)
    assert d.get("eth_src") == R0 and d.get("eth_dst") == a.mac_address


def test_dad_for_the_router_address_is_not_answered():
    w6 = v6_world()
    tr = w6.send("port-0-0", eth_dst="33:33:ff:00:00:01", eth_type=0x86DD, ipv6_src="::",
                 ipv6_dst="ff02::1:ff00:1", ip_proto=58, icmpv6_type=135,
                 ipv6_nd_target=_v6(0, 1))
    assert all(d.get("icmpv6_type") != 136 for d in tr.outputs)


def test_ipv6_ping_of_the_router():
    w6 = v6_world()
    tr = w6.send("port-0-0", eth_dst=R0, eth_type=0x86DD, ipv6_src=_v6(0, 10),
                 ipv6_dst=_v6(1, 1), ip_proto=58, icmpv6_type=128)
    d, = tr.outputs
    assert d.get("icmpv6_type") == 129 and d.get("ipv6_src") == _v6(1, 1)
    assert d.get("ipv6_dst") == _v6(0, 10) and d.port == w6.ofport("port-0-0")


# ------------------------------------------------------------- martians
def _v6_routed(w6, src="port-0-0", **kw):
    """IPv6 UDP from ``src`` to the router's MAC: the ports it reaches
    (on any host) and the first trace."""
    a = w6.ports[src]
    pkt = dict(eth_dst=R0, eth_type=0x86DD, ipv6_src=a.ips[0], ipv6_dst=_v6(1, 10),
               ip_proto=17, udp_src=5000, udp_dst=5000, nw_ttl=64)
    pkt.update(kw)
    reached, traces = w6.follow(src, **pkt)
    return [pid for _, pid, _ in reached], traces[0][1]


# a default route (port-1-1 as its next hop): without the martian drops
# every destination below would take it
V6_DEFAULT = (HostRoute("::/0", _v6(1, 11)),)


@pytest.mark.parametrize("dst", ["ff0e::1", "ff02::1", "::1", "::", "fe80::1234"])
def test_martian_ipv6_destinations_are_not_routed(dst):
    """As a Linux router (Neutron's qrouter namespace): multicast, the
    loopback and unspecified addresses and link-local destinations are
    never forwarded."""
    w6 = v6_world(V6_DEFAULT)
    assert _v6_routed(w6)[0] == ["port-1-0"]  # the route is there
    reached, tr = _v6_routed(w6, ipv6_dst=dst)
    assert reached == [] and not tr.outputs, tr.format()


def test_a_link_local_source_is_not_routed_to_another_subnet():
    """RFC 4291 2.5.6: a packet from a link-local address never leaves its
    link; the router's own answers to it (ND, ping) still work."""
    from quantum_ovs.compiler.rules.common import link_local

    w6 = v6_world(V6_DEFAULT)
    a = w6.ports["port-0-0"]
    ll = link_local(a.mac_address)
    for dst in (_v6(1, 10), _v6(1, 11), "2001:db8::1"):
        reached, tr = _v6_routed(w6, ipv6_src=ll, ipv6_dst=dst)
        assert reached == [] and not tr.outputs, (dst, tr.format())
    # a ping of the router from the link-local address is answered ...
    for dst in (_v6(0, 1), link_local(R0)):
        tr = w6.send("port-0-0", eth_dst=R0, eth_type=0x86DD, ipv6_src=ll, ipv6_dst=dst,
                     ip_proto=58, icmpv6_type=128, nw_ttl=64)
        d, = tr.outputs
        assert (d.port, d.get("icmpv6_type"), d.get("ipv6_src"), d.get("ipv6_dst")) == (
            w6.ofport("port-0-0"), 129, dst, ll)
    # ... and the neighbour solicitation of its link-local address
    tr = w6.send("port-0-0", eth_dst="33:33:ff:00:00:01", eth_type=0x86DD, ipv6_src=ll,
                 ipv6_dst="ff02::1:ff00:1", ip_proto=58, icmpv6_type=135,
                 ipv6_nd_target=link_local(R0), ipv6_nd_sll=a.mac_address)
    d, = tr.outputs
    assert d.get("icmpv6_type") == 136 and d.get("ipv6_src") == link_local(R0)
    # the other interface's link-local address is not one of this link's
    tr = w6.send("port-0-0", eth_dst=R0, eth_type=0x86DD, ipv6_src=a.ips[0],
                 ipv6_dst=link_local(R1), ip_proto=58, icmpv6_type=128, nw_ttl=64)
    assert not tr.outputs


@pytest.mark.parametrize("src", ["ff0e::1", "::1"])
def test_martian_ipv6_sources_are_not_routed(src):
    w6 = v6_world(V6_DEFAULT, open_ports=("port-0-0", "port-1-0"))
    assert _v6_routed(w6)[0] == ["port-1-0"]
    reached, tr = _v6_routed(w6, ipv6_src=src)
    assert reached == [] and not tr.outputs, tr.format()


def test_echo_reply_goes_back_out_of_the_in_port():
    w2 = world()
    e = w2.engine("host-a")
    echo = [f for f in _router_flows(e) if f.table == P.L3_ROUTE and f.priority == 1000]
    assert echo and all(f.actions[-1].port == OFPP_IN_PORT for f in echo)


# ------------------------------------------------------- address scopes
def scoped_router(scopes, routes=()):
    """router-1 on networks 0, 1 and 2, network n's interface in address
    scope scopes[n] (None: in none)."""
    r = make_router("router-1", (0, 1, 2), routes)
    return dataclasses.replace(r, interfaces=tuple(
        dataclasses.replace(i, address_scope_id=scopes[n]) for n, i in enumerate(r.interfaces)))


def is_scope_drop(f):
    """An address scope drop: an L3_ROUTE flow on the ingress network."""
    return f is not None and f.table == P.L3_ROUTE and not f.actions and any(
        x.name == P.REG_NET for x in f.match)


def scope_drops(w, host="host-a"):
    return [f for f in w.engine(host).flows() if is_scope_drop(f)]


@pytest.mark.parametrize("scopes", [("s1", "s2", "s1"), ("s1", None, "s1"), (None, "s2", None)])
def test_no_routing_between_address_scopes(scopes):
    """Neutron's rule: a router does not route between subnets of different
    address scopes ("no scope" is one more); within one it routes."""
    w2 = world(routers=[scoped_router(scopes)])
    # net-0 -> net-1 (another scope), both ways, on the sender's host
    for src, dst_ip, via in (("port-0-0", "10.0.1.10", R0), ("port-1-0", "10.0.0.10", R1)):
        tr = w2.send(src, **tcp_to(dst_ip, via))
        assert tr.dropped and tr.outputs == []
        assert is_scope_drop(tr.steps[-1].flow)
    # net-0 -> net-2 (the same scope): routed to host-c
    reached, _ = w2.follow("port-0-0", **tcp_to("10.0.2.10", R0))
    assert [(h, p) for h, p, _ in reached] == [("host-c", "port-2-0")]
    # the router's own address in the other scope still answers a ping
    tr = w2.send("port-0-0", eth_dst=R0, eth_type=0x0800, ipv4_src="10.0.0.10",
                 ipv4_dst="10.0.1.1", ip_proto=1, icmpv4_type=8, icmpv4_code=0)
    assert [d.port for d in tr.outputs] == [w2.ofport("port-0-0")]
    assert tr.outputs[0].get("icmpv4_type") == 0


def test_one_scope_costs_no_flow_and_routes_as_before(w):
    assert scope_drops(w) == []
    one = world(routers=[scoped_router(("s1", "s1", "s1"))])
    assert scope_drops(one) == []
    reached, _ = one.follow("port-0-0", **tcp_to("10.0.1.10", R0))
    assert [p for _, p, _ in reached] == ["port-1-0"]


def test_an_extra_route_through_an_interface_of_another_scope_is_not_taken():
    # 10.9.0.0/16 via port-1-0 (net-1, scope s2)
    w2 = world(routers=[scoped_router(("s1", "s2", "s1"),
                                      (HostRoute("10.9.0.0/16", "10.0.1.10"),))])
    tr = w2.send("port-0-0", **tcp_to("10.9.3.4", R0))
    assert tr.dropped and is_scope_drop(tr.steps[-1].flow)
    # from net-2 (s1) neither; from the route's own scope it is routed
    # (a port of net-1 to its own router interface: hairpinned back to port-1-0)
    reached, _ = w2.follow("port-1-1", **tcp_to("10.9.3.4", R1, dport=80))
    assert [(h, p) for h, p, _ in reached] == [("host-a", "port-1-0")]
    # the drop names the ingress network and the route's destination
    lid0 = w2.engine("host-a").local_id("net-0")
    assert any(("reg6", lid0) in [(x.name, x.value) for x in f.match]
               and "10.9.0.0" in repr(f.match) for f in scope_drops(w2))


def test_address_scopes_are_per_ip_version():
    """The IPv6 interfaces in one scope route among themselves while the
    IPv4 ones of the same networks are in two."""
    v6 = [RouterInterface(f"rif6-{n}", f"net-{n}", f"sub6-{n}", f"fd00:{n}::1", 64,
                          router_mac(n), "s6") for n in (0, 1)]
    r = scoped_router(("s1", "s2", "s1"))
    r = dataclasses.replace(r, interfaces=r.interfaces + tuple(v6))
    w2 = world(routers=[r])
    matches = [dict((x.name, x.value) for x in f.match) for f in scope_drops(w2)]
    assert matches and all(m["eth_type"] == 0x0800 for m in matches)


@pytest.mark.parametrize("destination", ["10.0.0.0/8", "0.0.0.0/0"])
def test_the_longest_prefix_chooses_the_route_before_the_scope_decides(destination):
    """A broad extra route through an interface of another scope does not
    shadow the more specific routes of the sender's own scope (Neutron
    decides by the egress interface, after routing)."""
    w2 = world(routers=[scoped_router(("s1", "s2", "s1"),
                                      (HostRoute(destination, "10.0.1.10"),))])
    reached, _ = w2.follow("port-0-0", **tcp_to("10.0.2.10", R0))  # net-2, same scope
    assert [(h, p) for h, p, _ in reached] == [("host-c", "port-2-0")]
    tr = w2.send("port-0-0", **tcp_to("10.9.3.4", R0))  # only the extra route: net-1's scope
    assert tr.dropped and is_scope_drop(tr.steps[-1].flow)
    # from net-1's own scope the extra route is taken
    reached, _ = w2.follow("port-1-1", **tcp_to("10.9.3.4", R1, dport=80))
    assert [(h, p) for h, p, _ in reached] == [("host-a", "port-1-0")]


def test_ipv6_between_scopes_is_dropped_and_within_one_routed():
    base = v6_world()
    r = base.model["routers"][0]
    for scopes, passes in ((("s6", "t6"), False), (("s6", None), False), (("s6", "s6"), True)):
        r2 = dataclasses.replace(r, interfaces=tuple(
            dataclasses.replace(i, address_scope_id=scopes[n]) for n, i in enumerate(r.interfaces)))
        w6 = World(**{**base.model, "routers": [r2]})
        tr = w6.send("port-0-0", eth_dst=R0, eth_type=0x86DD, ipv6_src=_v6(0, 10),
                     ipv6_dst=_v6(1, 10), ip_proto=6, tcp_src=4000, tcp_dst=80, nw_ttl=64)
        assert [d.port for d in tr.outputs] == ([w6.ofport("port-1-0")] if passes else []), \
            scopes
        if not passes:
            assert is_scope_drop(tr.steps[-1].flow)


def test_scope_changes_applied_as_deltas_equal_a_full_compile():
    w2 = world(routers=[scoped_router((None, None, None))])
    for host in ("host-a", "host-c"):
        e = w2.engine(host)
        for rev, scopes in enumerate((("s1", "s2", "s1"), ("s1", "s1", "s1"), (None, "s2", None),
                                      (None, None, None)), start=1):
            routes = (HostRoute("10.9.0.0/16", "10.0.1.10"),)
            e.apply(Delta(revision=rev, routers=(scoped_router(scopes, routes),)))
            assert e.flows() == Engine.from_view(e.view(), e.alloc).flows(), (host, scopes)
            assert bool([f for f in e.flows() if is_scope_drop(f)]) == \
                (len(set(scopes)) > 1), scopes
