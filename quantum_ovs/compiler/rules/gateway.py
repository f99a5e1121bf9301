"""Flows of external connectivity (issue 14): router gateways, floating
IPs, port forwardings, the external network's neighbours.

The gateway port is one more router interface, on an external network
(flat or VLAN, reached through the physical bridge of ``bridge_mappings``).
IPv4 only is translated.  IPv6 is routed as it is (as Neutron does), and
only through the active gateway host, both ways: the gateway's MAC must
be seen in one place on the external network, and the upstream router
routes the tenant prefixes to the gateway's IPv6 address.  Out: the
route (reg0 = 0 direct, 1 via the external subnet's gateway) commits the
ACL entry and L3_SNAT redirects like SNAT traffic; in: neighbour
solicitations for the gateway's address (and its link-local one)
answered by the active gateway host, IPv6 to the gateway MAC through the
ACL zone (EXT_CT) and routed.

Zones (per router; numbers from the pool of network local ids): the ACL
zone Zr (reg3, where the security groups of routed traffic are tracked),
the DNAT zone Zd and the SNAT zone Zs.  Out: commit in Zr on the pre-NAT
tuple, un-DNAT in Zd, SNAT in Zs.  In: un-SNAT in Zs, DNAT in Zd, then the
lookup in Zr that the ingress security groups read, so a reply is +est in
Zr and a refused new connection leaves no Zr entry (NAT entries it may
leave expire by themselves).

Owner "gateway" (a router with a gateway, on every host that compiles the
router: a port on one of its networks, or a gateway host of it):

  L3_ROUTE   the external subnet (connected) and the default route via
             its gateway_ip (priority 199: a user's 0.0.0.0/0 extra route
             wins): dec_ttl, eth_src = gateway MAC, reg6 = external
             network, reg0 = next hop, ct(commit) in Zr, ct(nat) in Zd ->
             L3_SNAT.  Echo to the gateway address answered, and to
             the addresses of the router's port forwardings (floating
             IPs with forwardings and no port: forwarding_addresses).
             On gateway hosts of a VLAN external network, echo routed
             in from the outside to one of the router's interface
             addresses is answered here (priority 1001, above
             router.py's answer), back out of the uplink tagged.
  L3_SNAT    IPv4 not from a floating IP served here (priority 100): on
             the active gateway host SNAT to the gateway address in Zs;
             elsewhere tunnel_id = the router's redirect key and
             bundle(active_backup) over Chassis.gateway_ofports in
             RouterGateway.hosts order (the switch skips members whose
             BFD says down: failover without the agent).  Redirected
             packets a standby gateway host receives (reg4 REDIRECT) are
             SNATed there (priority 110), never bounced.  From a subnet
             of RouterGateway.unnatted (in the external subnet's address
             scope; Neutron does not NAT within a scope): on a gateway
             host, active or receiving it redirected, on untranslated
             (priority 150).
             What goes untranslated (IPv6; IPv4 with SNAT off) from a
             subnet in another address scope than the gateway's subnet of
             its IP version ("no scope" is one more: foreign_subnets) is
             dropped (priority 160, below the floating IPs' 200), on any
             host, as Neutron's scope rule; but to one of the router's
             floating IPs (170, 171 redirected: Neutron translates those
             inside the router, whatever the scopes), and a port
             forwarding's replies on a host other than the active
             gateway host (165: redirected there, where they are
             un-DNATed, as a floating IP's would be; 166 on a standby
             gateway host: redirected ones dropped, never bounced).
  CLASSIFY   (gateway hosts) in_port = a per-remote tunnel port (or, in
             TUNNEL_CLASSIFY, the flow-based one), tunnel_id = redirect
             key -> reg6 = external network, reg2 / reg3 = Zr, reg4 =
             FROM_REMOTE | REDIRECT -> EXT_ADMIT.
  EXT_ADMIT  (gateway hosts) redirected: reg0 = next hop, un-DNAT in Zd
             -> L3_SNAT; ARP for the gateway address answered by the
             active gateway host only (the first of hosts not in
             Chassis.gateways_down); IPv4 to it: un-SNAT in Zs -> EXT_DNAT.
             With enable_snat off, IPv4 to the gateway MAC (a tenant
             address, routed untranslated) -> EXT_CT -> L3_ROUTE, as IPv6;
             with it on, the same for ipv4_dst in a RouterGateway.unnatted
             subnet only.  Untranslated to a subnet of another address
             scope (foreign_subnets): dropped (priority 95).
  EXT_DNAT   (gateway hosts) still to the gateway address after un-SNAT
             (no connection of ours): echo on (answered in L3_ROUTE), the
             rest dropped.

Owner "floating-ip" (on the host of its port only; a floating IP with
port forwardings and no port: on the router's active gateway host, since
only one host may answer ARP for an address and the forwardings' internal
ports may be on many hosts):

  EXT_ADMIT  ARP for the FIP answered with FloatingIP.mac_address; IPv4
             to it: eth turned around, reg2 / reg3 = Zr, un-SNAT in Zs ->
             EXT_DNAT.
  EXT_DNAT   FIP -> fixed IP (or FIP:proto:port -> internal IP:port per
             forwarding) committed in Zd -> EXT_CT -> L3_ROUTE.  A
             forwarding's address is the router's for the rest, as the
             gateway address: echo from the outside answered, anything
             else dropped (priority 50), never routed on (it would be
             SNATed, hairpinned back here by L3_RESOLVE, until its TTL
             ran out).
  L3_SNAT    from the fixed IP: eth_src = FIP MAC, SNAT to the FIP in Zs
             (priority 200); from the FIP itself and un-DNATed by the
             lookup in Zd that led here (ct_state +snat: a reply of a
             DNAT connection): eth_src = FIP MAC, on as is.  The FIP as
             the source of anything else (a VM sending from it: an
             allowed address pair, no port security) is SNATed or
             redirected as any other source (priority 100).
  L3_RESOLVE next hop = the FIP (a VM of this host to a FIP served here,
             of its own router or another): reg2 / reg3 = the FIP's
             router, un-SNAT in its Zs recirculating into EXT_DNAT, as if
             the packet came from the outside (hairpin).  A FIP served on
             another host is reached over the physical network.

Owner "external" (an external network with a local id here):

  L3_RESOLVE (reg6, reg0 = a neighbour's address from Chassis.neighbours)
             -> eth_dst; any other next hop -> meter (EXT_PUNT_METER_BASE
             + the network's local id) + controller: the agent reads reg0
             from the packet-in, resolves it (ARP from the gateway or FIP
             address) and hands the answer back as a Neighbour.
  L2_LOOKUP  a neighbour's MAC -> the network's uplink (priority 45).

A floating IP costs 6 flows on its host (ARP, un-SNAT, DNAT, SNAT, the
un-DNATed pass, hairpin) and none elsewhere; a port
forwarding one flow per external port in its range (its address two
more: the echo answer and the drop, and an echo answer in L3_ROUTE
wherever the router's gateway is compiled), and (SNAT off, its
internal address in another scope than the gateway's) up to 30 masked
ones for its replies on each other host of the router (two on standby
gateway hosts).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import (
    CT_SNAT,
    CT_TRK,
    OFPVID_PRESENT,
    Bundle,
    Controller,
    Ct,
    DecTtl,
    Field,
    Flow,
    GotoTable,
    Meter,
    Move,
    Nat,
    PushVlan,
    SetField,
)
from quantum_ovs.compiler.rules import checks
from quantum_ovs.compiler.rules.common import (
    F_ARP,
    F_IP,
    F_IPV6,
    addr_field,
    link_local,
    mk,
    port_masks,
    reg,
)
from quantum_ovs.compiler.rules.neighbours import neighbour_reply_flows
from quantum_ovs.compiler.rules.static import NOT_REPLY, REPLY, UNOWNED
from quantum_ovs.compiler.rules.port import arp_reply
from quantum_ovs.compiler.rules.router import (
    _OUT_IN_PORT,
    _SWAP_IP4,
    _SWAP_IP6,
    F_ARP_REQ,
    F_ICMP4,
    F_ICMP6,
    F_NS,
    na_reply,
    route_egress,
    route_priority,
)
from quantum_ovs.model import FloatingIP, RouterGateway

PRIO_GW_ECHO = 1000
PRIO_GW_LOCAL = 300  # the gateway address itself: not routed anywhere
# a port forwarding address, what no forwarding names: not routed anywhere
# (below the forwardings' own DNAT, PRIO_ADMIT)
PRIO_FIP_LOCAL = 50
PRIO_EXT_ECHO = 1001  # from the outside, above router.py's echo answers
PRIO_DEFAULT_ROUTE = 199
PRIO_FIP_SNAT = 200
PRIO_UNNATTED = 150  # below floating IPs, above the redirected SNAT
PRIO_SCOPE_OUT = 160  # untranslated from another address scope: below floating IPs
PRIO_SCOPE_HAIRPIN = 170  # ... but to one of the router's floating IPs
PRIO_SCOPE_FORWARDED = 165  # ... and a port forwarding's replies (redirected)
PRIO_SCOPE_IN = 95  # above the untranslated admission, below the gateway's own
PRIO_REDIRECTED = 110
PRIO_SNAT = 100
PRIO_ADMIT = 100
PRIO_ADMIT_V6 = 90
PRIO_REDIRECT_CONNECTED = 200
PRIO_REDIRECT_DEFAULT = 190
PRIO_HAIRPIN = 110
PRIO_NEIGHBOUR = 100
PRIO_PUNT = 10
PRIO_L2_NEIGHBOUR = 45

F_REDIRECT = Field(P.REG_FLAGS, P.FLAG_REDIRECT, P.FLAG_REDIRECT)
# un-DNATed by the DNAT zone's ct(nat) that led to L3_SNAT: the reverse
# of a destination NAT rewrites the reply's source (+snat)
F_UNDNATED = Field("ct_state", CT_TRK | CT_SNAT, CT_TRK | CT_SNAT)
# in from the external network itself (not redirected, nor a hairpin from
# a local port: those have no way back out of the port they came in by)
F_FROM_OUTSIDE = Field(P.REG_FLAGS, P.FLAG_FROM_REMOTE, P.FLAG_FROM_REMOTE | P.FLAG_REDIRECT)
_TURN_ETH = Move("eth_src", "eth_dst", 48)
_DST_TO_NEXTHOP = Move("ipv4_dst", P.REG_NEXTHOP, 32)
_UNNAT = Nat()
_PROTOS = {"tcp": (6, "tcp_dst"), "udp": (17, "udp_dst")}


@dataclass(frozen=True, slots=True)
class Zones:
    acl: int  # Zr: the router's zone (reg3 / reg2)
    dnat: int
    snat: int


@dataclass(frozen=True, slots=True)
class ExtNet:
    """The router's side of its external network on this host."""

    local_id: int
    cidr: str  # the IPv4 subnet of the gateway address
    gateway_ip: str | None  # the subnet's gateway (the default route's next hop)
    uplink: bool  # this host reaches the network (its physnet is mapped)
    cidr6: str | None = None  # the IPv6 subnet of the gateway's IPv6 address
    gateway_ip6: str | None = None  # that subnet's gateway
    # how an answer (ARP, NA, echo) goes back out of the uplink it came in
    # by: a VLAN network's tag is pushed again (CLASSIFY popped it)
    reply: tuple = (_OUT_IN_PORT,)


def reply_actions(vlan: int | None) -> tuple:
    if vlan is None:
        return (_OUT_IN_PORT,)
    return (PushVlan(), SetField("vlan_vid", vlan | OFPVID_PRESENT), _OUT_IN_PORT)


def gateway_v6(gw: RouterGateway) -> str | None:
    return next((a for a in gw.ip_addresses if ":" in a), None)


def _ip(addr: str) -> int:
    return int(ipaddress.IPv4Address(addr))


def gateway_v4(gw: RouterGateway) -> str | None:
    return next((a for a in gw.ip_addresses if ":" not in a), None)


def _to_snat(zones: Zones, table: int) -> Ct:
    return Ct(zone=zones.dnat, nat=_UNNAT, table=table)


def forwarding_addresses(router, gw: RouterGateway) -> tuple[str, ...]:
    """The router's floating IPs that carry port forwardings and no port
    (Engine._fip_served serves them on the active gateway host): in
    Neutron, addresses of the router's gateway device, answering echo as
    the gateway address does (what no forwarding names is the router's,
    never routed on).  Addresses that do not parse are left out (their
    floating IP's flows are held)."""
    if router is None:
        return ()
    out = set()
    for f in router.floating_ips:
        if f.port_id or not f.port_forwardings or not f.mac_address or \
                f.floating_network_id != gw.network_id:
            continue
        try:
            out.add(checks.ipv4(f.floating_ip_address))
        except ValueError:
            continue
    return tuple(sorted(out))


def foreign_subnets(router, gw: RouterGateway) -> tuple[str, ...]:
    """The CIDRs behind the router that may not go out or come in
    untranslated (Neutron's address scope rule, "no scope" being one
    more): IPv6 subnets in another scope than the gateway's IPv6 subnet,
    and with SNAT off, IPv4 subnets in another than its IPv4 subnet's;
    and the destinations of extra routes through their interfaces (but a
    default route's).  (With SNAT on, IPv4 leaves translated, and only
    RouterGateway.unnatted comes in untranslated.)"""
    if router is None:
        return ()

    def foreign(ifc) -> bool:
        if ifc.ip_version == 6:
            return ifc.address_scope_id != gw.address_scope_v6
        return not gw.enable_snat and ifc.address_scope_id != gw.address_scope_v4

    out = {i.cidr for i in router.interfaces if foreign(i)}
    for route in router.routes:
        egress = route_egress(route, router.interfaces)
        if egress is None:
            continue
        dest, via = egress
        if dest.prefixlen > 0 and foreign(via):  # not a default route
            out.add(str(dest))
    return tuple(sorted(out))


def forwarded_ports(pf) -> list[tuple[list, int | None]]:
    """The external ports of a port forwarding, as (value, mask) pairs,
    each with the internal port they go to (None: the same port).  Ranges
    that are the same on both sides (and single ports) are masked terms,
    at most 30 for any range, the port kept by the NAT; a range moved to
    other internal ports is one term per port, as the NAT cannot add an
    offset (the API bounds those: max_port_forwarding_shifted_ports).
    ValueError for a range outside 1-65535 or of another length than its
    internal one: a port of 70000 is another port on the wire, and a
    hostile range walked port by port would stall the agent."""
    lo, hi = pf.external_port_lo, pf.external_port_hi
    checks.port_range(lo, hi, "external port")
    checks.port_range(pf.internal_port_lo, pf.internal_port_hi, "internal port")
    if pf.internal_port_lo != pf.internal_port_hi and \
            pf.internal_port_hi - pf.internal_port_lo != hi - lo:
        raise ValueError(f"port forwarding {pf.id}: ranges of other lengths")
    if pf.internal_port_lo == pf.internal_port_hi:
        return [(port_masks(lo, hi), pf.internal_port_lo)]
    if (pf.internal_port_lo, pf.internal_port_hi) == (lo, hi):
        return [(port_masks(lo, hi), None)]
    shift = pf.internal_port_lo - lo
    return [([(port, None)], port + shift) for port in range(lo, hi + 1)]


def forwarded_replies(router, foreign) -> list[tuple[Field, ...]]:
    """The matches (source address, protocol, source ports) of the
    replies of the router's port forwardings whose internal address is in
    one of the ``foreign`` CIDRs (foreign_subnets): a range of internal
    ports as masked terms (at most 30 for any range)."""
    nets = [ipaddress.ip_network(c) for c in foreign if ":" not in c]
    out = set()
    for fip in router.floating_ips:
        for pf in fip.port_forwardings:
            proto = _PROTOS.get(pf.protocol)
            try:  # (a bad one: its floating IP's flows are held, floating_ip_flows)
                addr = ipaddress.ip_address(checks.ip(pf.internal_ip_address))
                checks.port_range(pf.internal_port_lo, pf.internal_port_hi, lowest=0)
            except ValueError:
                continue
            if proto is None or not any(addr in n for n in nets):
                continue
            num, fname = proto
            head = (Field("ipv4_src", pf.internal_ip_address), Field("ip_proto", num))
            masks = port_masks(pf.internal_port_lo, pf.internal_port_hi)
            for port, mask in masks:
                out.add(head + (Field(fname.replace("_dst", "_src"), port, mask),))
            if not masks:  # every port
                out.add(head)
    return sorted(out, key=lambda m: [(f.name, f.value, f.mask or 0) for f in m])


def gateway_flows(router_id: str, zones: Zones, gw: RouterGateway, ext: ExtNet,
                  role: str, redirect_members: tuple, classify_ofports: tuple,
                  router=None) -> list[Flow]:
    """``role``: "active" (this host is the router's first live gateway
    host), "standby" (a gateway host, not the first live one) or "compute"
    (not a gateway host); ``redirect_members``: ofports of the per-remote
    tunnels to the other gateway hosts in priority order;
    ``classify_ofports``: (ofport, table) of the tunnel ports redirected
    packets may arrive on (gateway hosts): a per-remote port's in CLASSIFY,
    a flow-based one's in TUNNEL_CLASSIFY (its source admitted first,
    network.tunnel_peer_flows); ``router``: the Router (its interfaces' address
    scopes, routes and floating IPs: foreign_subnets)."""
    gw_ip = gateway_v4(gw)
    if gw_ip is None:
        return []
    cookie = cookies.cookie_for(cookies.KIND_GATEWAY, router_id)
    out: list[Flow] = []

    def add(table, prio, match, actions):
        out.append(Flow(table, prio, match, tuple(actions), cookie))

    rid = reg(P.REG_ROUTER, zones.acl)
    rext = reg(P.REG_NET, ext.local_id)
    # (a connection created by a route out is nobody's; a reply is not
    # committed: static.py)
    commit_acl = Ct(commit=True, zone=zones.acl, write=UNOWNED)
    leave = (DecTtl(), SetField("eth_src", gw.mac_address), SetField(P.REG_NET, ext.local_id))

    def route_out(prio, match, hop, after):
        add(P.L3_ROUTE, prio, mk(*match, NOT_REPLY), leave + hop + (commit_acl,) + after)
        add(P.L3_ROUTE, prio, mk(*match, REPLY), leave + hop + after)
    eth, net = addr_field("ipv4_dst", "ipv6_dst", ext.cidr)
    prefixlen = int(ext.cidr.rsplit("/", 1)[1])
    # routes out of the gateway interface
    route_out(route_priority(prefixlen, True), (rid, F_IP, net), (_DST_TO_NEXTHOP,),
              (_to_snat(zones, P.L3_SNAT),))
    if ext.gateway_ip:
        route_out(PRIO_DEFAULT_ROUTE, (rid, F_IP), (SetField(P.REG_NEXTHOP, _ip(ext.gateway_ip)),),
                  (_to_snat(zones, P.L3_SNAT),))
    f_gw = Field("ipv4_dst", gw_ip)
    add(P.L3_ROUTE, PRIO_GW_ECHO, mk(rid, F_IP, F_ICMP4, Field("icmpv4_type", 8), f_gw),
        (_SWAP_IP4, SetField("ipv4_src", gw_ip), SetField("icmpv4_type", 0),
         _OUT_IN_PORT))
    # ... and to a port forwarding's address (the router's too)
    for addr in forwarding_addresses(router, gw):
        add(P.L3_ROUTE, PRIO_GW_ECHO,
            mk(rid, F_IP, F_ICMP4, Field("icmpv4_type", 8), Field("ipv4_dst", addr)),
            (_SWAP_IP4, SetField("ipv4_src", addr), SetField("icmpv4_type", 0), _OUT_IN_PORT))
    gw6 = gateway_v6(gw)
    v6 = gw6 is not None and ext.cidr6 is not None
    if v6:
        # IPv6: routed, not translated, centralized on the active gateway
        # host (the gateway MAC answers from one place on the external
        # network): reg0 = 0 direct, 1 via the subnet's gateway
        _, net6 = addr_field("ipv4_dst", "ipv6_dst", ext.cidr6)
        plen6 = int(ext.cidr6.rsplit("/", 1)[1])
        to_snat = (GotoTable(P.L3_SNAT),)
        route_out(route_priority(plen6, True), (rid, F_IPV6, net6),
                  (SetField(P.REG_NEXTHOP, 0),), to_snat)
        if ext.gateway_ip6:
            route_out(PRIO_DEFAULT_ROUTE, (rid, F_IPV6), (SetField(P.REG_NEXTHOP, 1),), to_snat)
        add(P.L3_ROUTE, PRIO_GW_ECHO, mk(rid, F_IPV6, F_ICMP6, Field("icmpv6_type", 128),
                                         Field("ipv6_dst", gw6)),
            (_SWAP_IP6, SetField("ipv6_src", gw6), SetField("icmpv6_type", 129),
             _OUT_IN_PORT))
    # SNAT
    gateway_here = role in ("active", "standby") and ext.uplink
    if gw.enable_snat:
        snat = (Ct(commit=True, zone=zones.snat, nat=Nat("src", gw_ip), table=P.L3_RESOLVE),)
    else:
        snat = (GotoTable(P.L3_RESOLVE),)
    redirect = ()
    if redirect_members and gw.redirect_key:
        redirect = (SetField("tunnel_id", gw.redirect_key), Bundle(tuple(redirect_members)))
    # the subnets in the gateway subnet's address scope are routed out
    # with their own addresses (on the active gateway host; elsewhere
    # redirected to it like the rest)
    unnatted = [c for c in gw.unnatted if not c.endswith("/0")] if gw.enable_snat else []
    if role == "active" and ext.uplink:
        add(P.L3_SNAT, PRIO_SNAT, mk(rid, F_IP), snat)
        for cidr in unnatted:
            add(P.L3_SNAT, PRIO_UNNATTED, mk(rid, F_IP, addr_field("ipv4_src", "", cidr)[1]),
                (GotoTable(P.L3_RESOLVE),))
        if v6:
            add(P.L3_SNAT, PRIO_SNAT, mk(rid, F_IPV6), (GotoTable(P.L3_RESOLVE),))
    else:
        add(P.L3_SNAT, PRIO_SNAT, mk(rid, F_IP), redirect)  # () = drop: no gateway
        if v6:
            add(P.L3_SNAT, PRIO_SNAT, mk(rid, F_IPV6), redirect)
    # untranslated from a subnet of another address scope: not out (a
    # floating IP's own SNAT, above, still is; and so is the way to one
    # of the router's floating IPs, which Neutron translates inside the
    # router: the hairpin)
    foreign = foreign_subnets(router, gw)
    for cidr in foreign:
        eth, src = addr_field("ipv4_src", "ipv6_src", cidr)
        if eth == F_IPV6 and not v6:
            continue
        add(P.L3_SNAT, PRIO_SCOPE_OUT, mk(rid, eth, *([src] if src is not None else [])), ())
    if any(":" not in c for c in foreign):
        as_before = snat if role == "active" and ext.uplink else redirect
        for addr in sorted({f.floating_ip_address for f in router.floating_ips}):
            f_fip = Field("ipv4_dst", addr)
            add(P.L3_SNAT, PRIO_SCOPE_HAIRPIN, mk(rid, F_IP, f_fip), as_before)
            if gateway_here:
                add(P.L3_SNAT, PRIO_SCOPE_HAIRPIN + 1, mk(rid, F_IP, F_REDIRECT, f_fip), snat)
        if not (role == "active" and ext.uplink):
            # ... nor the replies of a port forwarding to an address of
            # another scope: they go to the active gateway host like the
            # rest, where the forwarding's connection is un-DNATed (a
            # forwarding, like a floating IP, is translated whatever the
            # scopes; there a reply left un-DNATed is dropped, as here)
            for match in forwarded_replies(router, foreign):
                add(P.L3_SNAT, PRIO_SCOPE_FORWARDED, mk(rid, F_IP, *match), redirect)
                if gateway_here:  # (a standby: never bounced, dropped as before)
                    add(P.L3_SNAT, PRIO_SCOPE_FORWARDED + 1,
                        mk(rid, F_IP, F_REDIRECT, *match), ())
    if not gateway_here:
        return out
    # echo from the outside (routed in: IPv6, IPv4 untranslated) to one of
    # the router's interface addresses: router.py answers it out of the
    # port it came in by, after CLASSIFY popped a VLAN external network's
    # tag: here it goes back tagged, as the gateway's own answers (a flat
    # network needs nothing more)
    if ext.reply != (_OUT_IN_PORT,) and router is not None:
        routed_in_v4 = not gw.enable_snat or bool(unnatted)
        for ifc in sorted(router.interfaces, key=lambda i: (i.network_id, i.ip_address)):
            if ifc.ip_version == 4 and routed_in_v4:
                echo = (F_IP, F_ICMP4, Field("icmpv4_type", 8), Field("ipv4_dst", ifc.ip_address))
                answer = (_SWAP_IP4, SetField("ipv4_src", ifc.ip_address),
                          SetField("icmpv4_type", 0))
            elif ifc.ip_version == 6 and v6:
                echo = (F_IPV6, F_ICMP6, Field("icmpv6_type", 128),
                        Field("ipv6_dst", ifc.ip_address))
                answer = (_SWAP_IP6, SetField("ipv6_src", ifc.ip_address),
                          SetField("icmpv6_type", 129))
            else:
                continue
            add(P.L3_ROUTE, PRIO_EXT_ECHO, mk(rid, rext, *echo), answer + ext.reply)
    # the answers to the agent's neighbour requests from the gateway's
    # addresses (which it asks from on the router's gateway hosts only:
    # Engine.neighbour_sources)
    out.extend(neighbour_reply_flows(ext.local_id, cookie, gw_ip, ext.gateway_ip))
    if v6:
        out.extend(neighbour_reply_flows(ext.local_id, cookie, gw6, ext.gateway_ip6))
    add(P.L3_SNAT, PRIO_REDIRECTED, mk(rid, F_IP, F_REDIRECT), snat)
    for cidr in unnatted:
        add(P.L3_SNAT, PRIO_UNNATTED,
            mk(rid, F_IP, F_REDIRECT, addr_field("ipv4_src", "", cidr)[1]),
            (GotoTable(P.L3_RESOLVE),))
    if v6:
        add(P.L3_SNAT, PRIO_REDIRECTED, mk(rid, F_IPV6, F_REDIRECT),
            (GotoTable(P.L3_RESOLVE),))
        if gw.redirect_key:
            add(P.EXT_ADMIT, PRIO_REDIRECT_CONNECTED, mk(F_REDIRECT, rid, F_IPV6, net6),
                (SetField(P.REG_NEXTHOP, 0), GotoTable(P.L3_SNAT)))
            if ext.gateway_ip6:
                add(P.EXT_ADMIT, PRIO_REDIRECT_DEFAULT, mk(F_REDIRECT, rid, F_IPV6),
                    (SetField(P.REG_NEXTHOP, 1), GotoTable(P.L3_SNAT)))
        # in: to the gateway MAC from the outside -> the ACL zone -> routed
        add(P.EXT_ADMIT, PRIO_ADMIT_V6, mk(rext, F_IPV6, Field("eth_dst", gw.mac_address)),
            (_TURN_ETH, SetField("eth_src", gw.mac_address), SetField(P.REG_ROUTER, zones.acl),
             SetField(P.REG_ZONE, zones.acl), GotoTable(P.EXT_CT)))
        add(P.EXT_ADMIT, PRIO_ADMIT, mk(rext, F_IPV6, F_ICMP6, Field("icmpv6_type", 128),
                                        Field("ipv6_dst", gw6)),
            (_TURN_ETH, SetField("eth_src", gw.mac_address), _SWAP_IP6,
             SetField("ipv6_src", gw6), SetField("icmpv6_type", 129)) + ext.reply)
        if role == "active":
            for target in (gw6, link_local(gw.mac_address)):
                add(P.EXT_ADMIT, PRIO_ADMIT,
                    mk(rext, F_IPV6, F_ICMP6, F_NS, Field("ipv6_nd_target", target)),
                    na_reply(gw.mac_address, target)[:-1] + ext.reply)
    if gw.redirect_key:
        enter = (SetField(P.REG_NET, ext.local_id), SetField(P.REG_ROUTER, zones.acl),
                 SetField(P.REG_ZONE, zones.acl),
                 SetField(P.REG_FLAGS, P.FLAG_FROM_REMOTE | P.FLAG_REDIRECT),
                 GotoTable(P.EXT_ADMIT))
        for ofport, table in sorted(set(classify_ofports)):
            add(table, 100, mk(Field("in_port", ofport),
                               Field("tunnel_id", gw.redirect_key)), enter)
        add(P.EXT_ADMIT, PRIO_REDIRECT_CONNECTED, mk(F_REDIRECT, rid, F_IP, net),
            (_DST_TO_NEXTHOP, _to_snat(zones, P.L3_SNAT)))
        if ext.gateway_ip:
            add(P.EXT_ADMIT, PRIO_REDIRECT_DEFAULT, mk(F_REDIRECT, rid, F_IP),
                (SetField(P.REG_NEXTHOP, _ip(ext.gateway_ip)), _to_snat(zones, P.L3_SNAT)))
    if role == "active":
        add(P.EXT_ADMIT, PRIO_ADMIT, mk(rext, F_ARP, F_ARP_REQ, Field("arp_tpa", gw_ip)),
            arp_reply(gw.mac_address, gw_ip)[:-1] + ext.reply)
    add(P.EXT_ADMIT, PRIO_ADMIT, mk(rext, F_IP, f_gw), _admit(zones, gw.mac_address))
    # no SNAT (all of the router's addresses, or those of its subnets in
    # the gateway's address scope): the tenant addresses are routed as
    # they are, so the outside sends to them through the gateway MAC (the
    # upstream routes the tenant prefixes to the gateway address): into
    # the ACL zone and routed, as IPv6 is (the gateway address itself and
    # the floating IPs keep their own flows, above)
    routed_in = (_TURN_ETH, SetField("eth_src", gw.mac_address),
                 SetField(P.REG_ROUTER, zones.acl), SetField(P.REG_ZONE, zones.acl),
                 GotoTable(P.EXT_CT))
    f_gw_mac = Field("eth_dst", gw.mac_address)
    # ... nor in, to a subnet of another address scope
    for cidr in foreign:
        eth, dst = addr_field("ipv4_dst", "ipv6_dst", cidr)
        if eth == F_IPV6 and not v6:
            continue
        add(P.EXT_ADMIT, PRIO_SCOPE_IN,
            mk(rext, eth, f_gw_mac, *([dst] if dst is not None else [])), ())
    if not gw.enable_snat:
        add(P.EXT_ADMIT, PRIO_ADMIT_V6, mk(rext, F_IP, f_gw_mac), routed_in)
    for cidr in unnatted:
        add(P.EXT_ADMIT, PRIO_ADMIT_V6,
            mk(rext, F_IP, f_gw_mac, addr_field("ipv4_dst", "", cidr)[1]), routed_in)
    # still to the gateway address after un-SNAT: no connection of ours;
    # echo is answered (back out of the uplink), the rest dropped
    add(P.EXT_DNAT, PRIO_GW_LOCAL, mk(rid, F_IP, f_gw), ())
    add(P.EXT_DNAT, PRIO_GW_ECHO, mk(rid, F_IP, F_ICMP4, Field("icmpv4_type", 8), f_gw),
        (_SWAP_IP4, SetField("ipv4_src", gw_ip), SetField("icmpv4_type", 0)) + ext.reply)
    return out


def _admit(zones: Zones, mac: str) -> tuple:
    """An external packet to one of the router's NAT addresses: the
    Ethernet addresses turned around (an echo reply is then right), into
    the router, un-SNAT -> EXT_DNAT."""
    return (_TURN_ETH, SetField("eth_src", mac), SetField(P.REG_ROUTER, zones.acl),
            SetField(P.REG_ZONE, zones.acl), Ct(zone=zones.snat, nat=_UNNAT, table=P.EXT_DNAT))


# in_port = 0 (copied from reg1, which no flow sets: a set-field of 0
# is refused, a port number 0 being invalid in OpenFlow 1.3)
_CLEAR_IN_PORT = Move(P.REG_ZERO, "in_port", 32)


def _hairpin(zones: Zones) -> tuple:
    """Back in as if from the outside.  in_port = 0: a VM to its own
    floating IP is delivered out of the port it came in on, which the
    switch allows only to a packet whose in_port is another."""
    return (SetField(P.REG_ROUTER, zones.acl), SetField(P.REG_ZONE, zones.acl),
            _CLEAR_IN_PORT, Ct(zone=zones.snat, nat=_UNNAT, table=P.EXT_DNAT))


def floating_ip_flows(fip: FloatingIP, zones: Zones, ext_local_id: int,
                      fixed_ip: str | None, forwarding: bool,
                      reply: tuple = (_OUT_IN_PORT,),
                      ext_gateway: str | None = None) -> list[Flow]:
    """A floating IP served on this host: associated with a port bound
    here (``fixed_ip`` its address), or, ``forwarding``, its port
    forwardings on the router's active gateway host.  ``ext_gateway``:
    its subnet's gateway (whose answers to the agent have a meter of
    their own)."""
    addr = fip.floating_ip_address
    mac = fip.mac_address
    if ":" in addr or not mac or (fixed_ip is None and not forwarding):
        return []
    cookie = cookies.cookie_for(cookies.KIND_FLOATING_IP, fip.id)
    out: list[Flow] = []

    def add(table, prio, match, actions):
        out.append(Flow(table, prio, match, tuple(actions), cookie))

    rid = reg(P.REG_ROUTER, zones.acl)
    rext = reg(P.REG_NET, ext_local_id)
    add(P.EXT_ADMIT, PRIO_ADMIT, mk(rext, F_ARP, F_ARP_REQ, Field("arp_tpa", addr)),
        arp_reply(mac, addr)[:-1] + reply)
    # the answers to the agent's ARP requests from the floating IP
    out.extend(neighbour_reply_flows(ext_local_id, cookie, addr, ext_gateway))
    add(P.EXT_ADMIT, PRIO_ADMIT, mk(rext, F_IP, Field("ipv4_dst", addr)), _admit(zones, mac))
    f_dst = Field("ipv4_dst", addr)
    if forwarding:
        for pf in fip.port_forwardings:
            proto = _PROTOS.get(pf.protocol)
            if proto is None:
                continue
            num, fname = proto
            head = (rid, F_IP, f_dst, Field("ip_proto", num))
            for ports, iport in forwarded_ports(pf):
                nat = Nat("dst", pf.internal_ip_address, port_min=iport)
                # (no term: every port)
                for term in [(Field(fname, port, mask),) for port, mask in ports] or [()]:
                    add(P.EXT_DNAT, PRIO_ADMIT, mk(*head, *term),
                        (Ct(commit=True, zone=zones.dnat, nat=nat, table=P.EXT_CT),))
        # what no forwarding names is the router's own, as at the gateway
        # address (Neutron: the address is on the gateway device, only the
        # forwarded ports are DNATed): echo from the outside answered (from
        # the router's own subnets: L3_ROUTE, gateway_flows), the rest
        # dropped -- not routed on to the external subnet, where
        # L3_RESOLVE would hairpin it back here until its TTL ran out
        add(P.EXT_DNAT, PRIO_FIP_LOCAL, mk(rid, F_IP, f_dst), ())
        add(P.EXT_DNAT, PRIO_GW_ECHO,
            mk(rid, F_IP, F_ICMP4, Field("icmpv4_type", 8), f_dst, F_FROM_OUTSIDE),
            (_SWAP_IP4, SetField("ipv4_src", addr), SetField("icmpv4_type", 0)) + reply)
    else:
        add(P.EXT_DNAT, PRIO_ADMIT, mk(rid, F_IP, f_dst),
            (Ct(commit=True, zone=zones.dnat, nat=Nat("dst", fixed_ip), table=P.EXT_CT),))
        add(P.L3_SNAT, PRIO_FIP_SNAT, mk(rid, F_IP, Field("ipv4_src", fixed_ip)),
            (SetField("eth_src", mac),
             Ct(commit=True, zone=zones.snat, nat=Nat("src", addr), table=P.L3_RESOLVE)))
    # a reply the DNAT zone un-DNATed (L3_ROUTE's or EXT_ADMIT's ct(nat)
    # just before: +snat) leaves as it is; the FIP as the source of
    # anything else (a VM's allowed address pair, no port security) is
    # not this connection's, and is SNATed like any other address
    add(P.L3_SNAT, PRIO_FIP_SNAT, mk(rid, F_IP, Field("ipv4_src", addr), F_UNDNATED),
        (SetField("eth_src", mac), GotoTable(P.L3_RESOLVE)))
    add(P.L3_RESOLVE, PRIO_HAIRPIN, mk(rext, F_IP, reg(P.REG_NEXTHOP, _ip(addr))),
        _hairpin(zones))
    return out


def external_flows(network_id: str, local_id: int, neighbours, send: tuple,
                   gateways6=()) -> list[Flow]:
    """``neighbours``: (IP address, MAC) the agent resolved on the
    network; ``send``: the actions that put a packet on its uplink;
    ``gateways6``: the gateway addresses of its IPv6 subnets (the next hop
    of IPv6 packets with reg0 = 1)."""
    cookie = cookies.cookie_for(cookies.KIND_EXTERNAL, network_id)
    rext = reg(P.REG_NET, local_id)
    punt = (Meter(P.EXT_PUNT_METER_BASE + local_id), Controller())
    out = [Flow(P.L3_RESOLVE, PRIO_PUNT, mk(rext, eth), punt, cookie) for eth in (F_IP, F_IPV6)]
    macs = set()
    direct, via = reg(P.REG_NEXTHOP, 0), reg(P.REG_NEXTHOP, 1)
    for ip, mac in sorted(neighbours):
        acts = (SetField("eth_dst", mac), GotoTable(P.L2_LOOKUP))
        if ":" in ip:
            out.append(Flow(P.L3_RESOLVE, PRIO_NEIGHBOUR,
                            mk(rext, F_IPV6, direct, Field("ipv6_dst", ip)), acts, cookie))
            if ip in gateways6:
                out.append(Flow(P.L3_RESOLVE, PRIO_NEIGHBOUR, mk(rext, F_IPV6, via), acts,
                                cookie))
        else:
            out.append(Flow(P.L3_RESOLVE, PRIO_NEIGHBOUR,
                            mk(rext, F_IP, reg(P.REG_NEXTHOP, _ip(ip))), acts, cookie))
        macs.add(mac)
    if send:
        for mac in sorted(macs):
            out.append(Flow(P.L2_LOOKUP, PRIO_L2_NEIGHBOUR, mk(rext, Field("eth_dst", mac)),
                            send, cookie))
    # (the replies to the agent's own requests: by the address they are
    # sent to, the gateways' and floating IPs' flows)
    return out
