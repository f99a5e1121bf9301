"""Flows owned by a router: distributed routing between its subnets.

Every host with a port on one of the router's networks has these flows,
so a packet is routed on the host of the instance that sends it and
leaves that host already routed (no network node, no second hop):

  SERVICES     ARP requests for an interface IPv4 address, neighbour
               solicitations for an interface IPv6 address (and the
               interface's link-local address) answered in flows, from
               local ports only.
  CT_LOOKUP    IP to or from an interface MAC is tracked in the router's
               zone (reg3): the two directions of a routed connection are
               seen on different networks, so the network zones would
               never pair them.  The zone number comes from the same pool
               as the networks' local ids and cannot collide with them.
  L3_ADMIT     IP to an interface MAC (after the sender's egress security
               groups): reg2 = the router, the Ethernet addresses turned
               around (eth_dst = sender, eth_src = that interface's MAC:
               already right for an echo reply), on to L3_ROUTE.
  L3_ROUTE     ICMP echo to any interface address answered (to an
               interface's link-local address, from its own network only);
               martians dropped (rules/static.py); then routes,
               priority 200 + 4 x prefix length (+2 for connected subnets,
               so a connected subnet wins over an extra route of the same
               prefix; +1 is the route's address scope drop, below):
               dec_ttl, eth_src = the egress interface's MAC, reg6 = the
               egress network; connected -> L3_RESOLVE (the
               destination port's MAC, owned by that port), extra route ->
               eth_dst = the next hop's MAC -> L2_LOOKUP.  L2_LOOKUP then
               delivers on the egress network as for any switched packet:
               the destination's ingress security groups, or the tunnel /
               VLAN of the egress network to the destination's host.
  L2_LOOKUP    anything else to an interface MAC is dropped (never flooded).

Address scopes (Neutron's rule): a router does not route between its
subnets of different address scopes; a subnet in no scope is in "no
scope", one more.  When a router's interfaces of one IP version are in
more than one scope, L3_ROUTE drops IP from an interface's network
(reg6, still the ingress network there) to the connected subnet of an
interface of another scope, or to an extra route through one, each drop
one priority above the route it stands for: the longest prefix still
chooses the route, and the egress interface's scope then decides, as
Neutron's marks do after its routing.  Its own addresses still answer
pings (as the router's, not routed).  The way out
through the gateway (SNAT, or untranslated within the external subnet's
scope) and floating IPs are rules/gateway.py's: a packet DNATed from a
floating IP comes back to L3_ROUTE from the external network, which these
drops do not match.

TTL expiry: a packet to route with TTL 0 or 1 is punted from L3_ROUTE
before any route sees it: from a local port through that port's own punt
meter (rules/port.ttl_punt_flows, one priority above), else through the
host's TTL meter (pipeline.METER_TTL), so a flood of expiring packets
costs the agent at most the meters' rate and one instance's flood starves
no other instance's answers; the agent answers it with ICMP time exceeded
(agent/responders/router.py).  dec_ttl never meets an expired TTL, and
the switch's own unmetered "invalid TTL" packet-ins stay off.  Router solicitations are
punted by the network's flows (rules/network.py) and answered by the agent
with the router advertisements.
A destination on a connected (internal) subnet without a port in the
model is dropped (no ARP for unknown neighbours there); an address that
one port alone holds through a single-address allowed address pair (a
VRRP / keepalived VIP) is resolved to the pair's MAC (pair_resolve_flows,
owned by that port), as is an extra route via it; one that several ports
hold is not (which is master is not in the model).  The router's
gateway on an external network is not one of these interfaces: its
routes, NAT and the resolution of unknown external neighbours (punted to
the agent) are rules/gateway.py's.
"""

from __future__ import annotations

import ipaddress

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import (
    OFPP_IN_PORT,
    Controller,
    Ct,
    DecTtl,
    Field,
    Flow,
    GotoTable,
    Meter,
    Move,
    Output,
    SetField,
)
from quantum_ovs.compiler.rules.common import (
    F_ARP,
    F_IP,
    F_IPV6,
    FROM_LOCAL,
    addr_field,
    link_local,
    mk,
    reg,
)
from quantum_ovs.compiler.rules.port import arp_reply
from quantum_ovs.model import HostRoute, Router, RouterInterface

PRIO_ECHO = 1000
PRIO_TTL = 900
PRIO_ROUTE_BASE = 200
PRIO_ADMIT = 100
PRIO_CT_ROUTER = 110
PRIO_L2_DROP = 60
PRIO_NS = 100
PRIO_NS_DAD = 105
PRIO_RESOLVE_PAIR = 90  # an allowed address pair's address (below fixed IPs', 100)

NA_FLAGS = 0xE0000000  # router, solicited, override
F_ICMP6 = Field("ip_proto", 58)
F_ICMP4 = Field("ip_proto", 1)
F_NS = Field("icmpv6_type", 135)
F_ARP_REQ = Field("arp_op", 1)
_DAD_SRC = Field("ipv6_src", "::")
_SWAP_ETH = Move("eth_src", "eth_dst", 48)
_SWAP_IP4 = Move("ipv4_src", "ipv4_dst", 32)
_SWAP_IP6 = Move("ipv6_src", "ipv6_dst", 128)
_OUT_IN_PORT = Output(OFPP_IN_PORT)
_ND_BARRIER = Ct()  # see na_reply
_TTL_PUNT = (Meter(P.METER_TTL), Controller())


def route_priority(prefixlen: int, connected: bool) -> int:
    """A route's L3_ROUTE priority (its address scope drop: + 1)."""
    return PRIO_ROUTE_BASE + 4 * prefixlen + (2 if connected else 0)


def na_reply(mac: str, ip: str) -> tuple:
    """Turn a neighbour solicitation for ``ip`` into the advertisement
    from ``mac`` (router, solicited, override).  The switch checks a
    set-field against the match (a solicitation), so the target
    link-layer option is made from the solicitation's source one: its
    address rewritten (nd_sll), then its type (1 -> 2).  Open vSwitch
    would write the option's type before its address (set(nd_ext) before
    set(nd) in the datapath actions, where the address is then written
    only into a source option, which is gone): the NA would carry the
    solicitor's own MAC.  A ct() without recirculation (nothing
    committed) in between makes the switch write the address first."""
    return (
        _SWAP_ETH,
        SetField("eth_src", mac),
        _SWAP_IP6,
        SetField("ipv6_src", ip),
        SetField("ipv6_nd_sll", mac),
        _ND_BARRIER,
        SetField("nd_options_type", 2),
        SetField("nd_reserved", NA_FLAGS),
        SetField("icmpv6_type", 136),
        _OUT_IN_PORT,
    )


def _route_match(rid_field, destination: str):
    """(eth field, match fields) for a destination CIDR."""
    eth, af = addr_field("ipv4_dst", "ipv6_dst", destination)
    fields = [rid_field, eth] + ([af] if af is not None else [])
    return mk(*fields)


def router_flows(
    router: Router,
    zone: int,
    interfaces: list[tuple[RouterInterface, int]],
    routes: list[tuple[HostRoute, RouterInterface, int, str | None]],
) -> list[Flow]:
    """``interfaces``: the router's interfaces this host can use, each with
    its network's local id; ``routes``: the extra routes whose next hop is
    on one of them: (route, egress interface, its local id, the next hop's
    MAC or None when no port holds that address)."""
    if not router.admin_state_up or not interfaces:
        return []
    cookie = cookies.cookie_for(cookies.KIND_ROUTER, router.id)
    rid = reg(P.REG_ROUTER, zone)
    flows: dict = {}

    def add(table, prio, match, actions):
        flows.setdefault((table, prio, match), Flow(table, prio, match, tuple(actions), cookie))

    set_zone = SetField(P.REG_ZONE, zone)
    ct = Ct(zone_src=P.REG_ZONE, table=P.EGRESS_ACL)
    for eth in (F_IP, F_IPV6):
        for ttl in (0, 1):
            add(P.L3_ROUTE, PRIO_TTL, mk(rid, eth, Field("nw_ttl", ttl)), _TTL_PUNT)
    for ifc, lid in sorted(interfaces, key=lambda x: (x[0].network_id, x[0].ip_address)):
        rnet = reg(P.REG_NET, lid)
        mac = ifc.mac_address
        ip = ifc.ip_address
        f_mac_dst = Field("eth_dst", mac)
        # neighbour answers, for local senders only
        if ifc.ip_version == 4:
            m = mk(F_ARP_REQ, Field("arp_tpa", ip), F_ARP, FROM_LOCAL, rnet)
            add(P.SERVICES, 100, m, arp_reply(mac, ip))
        else:
            for target in (ip, link_local(mac)):
                base = (rnet, FROM_LOCAL, F_IPV6, F_ICMP6, F_NS,
                        Field("ipv6_nd_target", target))
                add(P.SERVICES, PRIO_NS, mk(*base), na_reply(mac, target))
                # duplicate address detection (from ::) is not answered
                add(P.SERVICES, PRIO_NS_DAD, mk(*base, _DAD_SRC), (GotoTable(P.CT_LOOKUP),))
        for eth in (F_IP, F_IPV6):
            # the router's conntrack zone, both ways
            add(P.CT_LOOKUP, PRIO_CT_ROUTER, mk(rnet, eth, f_mac_dst), (set_zone, ct))
            add(P.CT_LOOKUP, PRIO_CT_ROUTER, mk(rnet, eth, Field("eth_src", mac)),
                (set_zone, ct))
            # admission
            add(P.L3_ADMIT, PRIO_ADMIT, mk(rnet, eth, f_mac_dst),
                (_SWAP_ETH, SetField("eth_src", mac), SetField(P.REG_ROUTER, zone),
                 GotoTable(P.L3_ROUTE)))
        add(P.L2_LOOKUP, PRIO_L2_DROP, mk(rnet, f_mac_dst), ())
        # echo to this address, from any of the router's subnets
        if ifc.ip_version == 4:
            m = mk(rid, F_IP, F_ICMP4, Field("icmpv4_type", 8), Field("ipv4_dst", ip))
            add(P.L3_ROUTE, PRIO_ECHO, m,
                (_SWAP_IP4, SetField("ipv4_src", ip), SetField("icmpv4_type", 0), _OUT_IN_PORT))
        else:
            m = mk(rid, F_IPV6, F_ICMP6, Field("icmpv6_type", 128), Field("ipv6_dst", ip))
            add(P.L3_ROUTE, PRIO_ECHO, m,
                (_SWAP_IP6, SetField("ipv6_src", ip), SetField("icmpv6_type", 129),
                 _OUT_IN_PORT))
            # ... and to its link-local address, from its own link only
            # (elsewhere a link-local destination is a martian: static.py)
            ll = link_local(mac)
            m = mk(rid, rnet, F_IPV6, F_ICMP6, Field("icmpv6_type", 128), Field("ipv6_dst", ll))
            add(P.L3_ROUTE, PRIO_ECHO, m,
                (_SWAP_IP6, SetField("ipv6_src", ll), SetField("icmpv6_type", 129),
                 _OUT_IN_PORT))
        # the connected subnet
        add(P.L3_ROUTE, route_priority(ifc.prefixlen, True), _route_match(rid, ifc.cidr),
            (DecTtl(), SetField("eth_src", mac), SetField(P.REG_NET, lid),
             GotoTable(P.L3_RESOLVE)))
    for lid, destination, connected in scope_drops(interfaces, routes):
        eth, af = addr_field("ipv4_dst", "ipv6_dst", destination)
        add(P.L3_ROUTE, route_priority(_prefixlen(destination), connected) + 1,
            mk(rid, reg(P.REG_NET, lid), eth, *([af] if af is not None else [])), ())
    for route, ifc, lid, nh_mac in sorted(routes, key=lambda r: (r[0].destination,
                                                                 r[0].nexthop)):
        prio = route_priority(int(_prefixlen(route.destination)), False)
        m = _route_match(rid, route.destination)
        if nh_mac is None:
            add(P.L3_ROUTE, prio, m, ())  # next hop unknown: blackhole
        else:
            add(P.L3_ROUTE, prio, m,
                (DecTtl(), SetField("eth_src", ifc.mac_address), SetField(P.REG_NET, lid),
                 SetField("eth_dst", nh_mac), GotoTable(P.L2_LOOKUP)))
    return list(flows.values())


def pair_resolve_flows(pairs, local_id: int, cookie: int) -> list[Flow]:
    """L3_RESOLVE (owned by a port, on a routed network): a packet routed
    to one of the port's allowed address pair addresses that only it holds
    (``pairs``: (address, MAC), Engine._pair_resolution) gets that MAC, as
    Neutron's router would learn by ARP.  Below the fixed IPs' own
    (port.resolve_flows, 100): a bound port's fixed IP wins."""
    rnet = reg(P.REG_NET, local_id)
    out = []
    for ip, mac in pairs:
        eth, af = addr_field("ipv4_dst", "ipv6_dst", ip)
        out.append(Flow(P.L3_RESOLVE, PRIO_RESOLVE_PAIR, mk(rnet, eth, af),
                        (SetField("eth_dst", mac), GotoTable(P.L2_LOOKUP)), cookie))
    return out


def route_egress(route: HostRoute, interfaces) -> tuple | None:
    """(destination network, egress interface) of an extra route: the
    first of ``interfaces`` whose subnet holds the next hop.  None when
    the route is not taken: an address does not parse, the destination
    and the next hop are of different IP versions, or none of
    ``interfaces`` is on the next hop's subnet (the API refuses all
    three, but a caller may leave interfaces out: the engine those whose
    network is down)."""
    try:
        nexthop = ipaddress.ip_address(route.nexthop)
        dest = ipaddress.ip_network(route.destination, strict=False)
    except ValueError:
        return None
    if dest.version != nexthop.version:
        return None
    via = next((i for i in interfaces if i.ip_version == nexthop.version
                and nexthop in ipaddress.ip_network(i.cidr)), None)
    return None if via is None else (dest, via)


def scope_drops(interfaces, routes) -> list[tuple[int, str, bool]]:
    """(ingress network's local id, destination CIDR, connected) of what
    the router must not route: from a network of one address scope to a
    connected subnet, or an extra route's destination, through an
    interface of another (same IP version).  Nothing for a version whose
    interfaces share one scope (the common case costs no flow)."""
    out = set()
    for version in (4, 6):
        ifcs = [(i, lid) for i, lid in interfaces if i.ip_version == version]
        if len({i.address_scope_id for i, _ in ifcs}) < 2:
            continue
        to = {(i.address_scope_id or "", i.cidr, True) for i, _ in ifcs}
        to |= {(ifc.address_scope_id or "", route.destination, False)
               for route, ifc, _lid, _mac in routes if ifc.ip_version == version}
        for lid, scope in {(lid, i.address_scope_id or "") for i, lid in ifcs}:
            out |= {(lid, cidr, connected) for other, cidr, connected in to if other != scope}
    return sorted(out)


def _prefixlen(cidr: str) -> int:
    if "/" in cidr:
        return int(cidr.rsplit("/", 1)[1])
    return 128 if ":" in cidr else 32
