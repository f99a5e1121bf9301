"""The br-int pipeline, declared as data, and the contract every flow obeys.

Tables (a packet only ever moves forward; the one way back is a conntrack
recirculation, a new pass: the hairpin of a floating IP served here,
L3_RESOLVE -> ct(nat) -> EXT_DNAT)::

   0 CLASSIFY       in_port (+ tunnel_id | vlan_vid) -> reg6 network, reg5
                    source ofport, reg4 flags; VLAN popped.  Local VIFs go to
                    PORT_SECURITY, tunnels and physical patch ports skip to
                    CT_LOOKUP (they were checked by the sending host); the
                    per-remote BFD tunnel ports (Chassis.gateway_ofports)
                    are classified like the flow-based one; an external
                    network's uplink goes to EXT_ADMIT, and on a gateway
                    host tunnel_id = a router's redirect key is that
                    router's SNAT traffic (reg2/reg3, REDIRECT) -> EXT_ADMIT.
                    The flow-based tunnel ports take packets from any
                    source (remote_ip=flow): only those from a known host's
                    tunnel address (tun_ipv4_src / tun_ipv6_src, one flow
                    per address: rules/network.tunnel_peer_flows) go on,
                    to TUNNEL_CLASSIFY; any other source meets the drop.
   5 TUNNEL_CLASSIFY  the flow-based tunnel ports' classification (in_port +
                    tunnel_id), as CLASSIFY's for the BFD ports.
  10 PORT_SECURITY  egress anti-spoofing per local port: source MAC, IPv4 /
                    IPv6 source, ARP sender, ND target, DHCP from 0.0.0.0,
                    RARP from the port's MACs;
                    rogue DHCP servers and router advertisements dropped;
                    everything else dropped.
  20 SERVICES       ARP requests for known addresses (and the link-local
                    resolver 169.254.0.1) answered in flows (sent back out
                    of IN_PORT); DHCP (v4 68->67, v6 546->547) punted to
                    the controller; the metadata proxy's replies back to
                    the asking port (rules/metadata.py).
  22 EXT_ADMIT      (rules/gateway.py) packets of an external network from
                    the uplink: ARP for a floating IP answered only on the
                    instance's host, for a gateway address only on the
                    active gateway host; IPv4 to a floating / gateway
                    address served here: reg2/reg3 = its router, un-SNAT
                    (ct nat, the router's SNAT zone) -> EXT_DNAT.  SNAT
                    traffic redirected from another host (reg4 REDIRECT,
                    classified by tunnel_id = the router's redirect key):
                    reg0 = next hop, un-DNAT (DNAT zone) -> L3_SNAT.  IPv6
                    (routed, not translated; gateway hosts): NS for the
                    gateway address answered by the active one, IPv6 to
                    the gateway MAC -> EXT_CT.  The rest -> CT_LOOKUP
                    (switched as today).
  24 EXT_DNAT       per router (reg2): a floating IP -> its fixed IP, a
                    port forwarding (FIP, proto, port) -> internal
                    IP:port: ct(commit, nat(dst)) in the DNAT zone -> EXT_CT.
  26 EXT_CT         the translated packet through the router's ACL zone
                    (reg3, the zone routed traffic is tracked in): the
                    security groups see the un-NATed tuple -> L3_ROUTE.
  30 CT_LOOKUP      IPv4/IPv6 sent through conntrack once, recirculating into
                    EGRESS_ACL, in the zone copied into reg3: the network's
                    (reg6), or the router's for a packet to or from one of
                    its interface MACs (routed traffic: both directions of a
                    connection meet in the router's zone on every host).
  40 EGRESS_ACL     security groups of the source port (reg5): replies (of
                    the port's own connections: ct_label, see below) and
                    related pass, invalid drops, the rest (new, and later
                    packets the same way) is matched against the rules
                    (remote groups by conjunction); a stateless port's IP
                    goes to EGRESS_ACL_SL instead.  Nothing is
                    committed here: a commit leaves the packet untracked for
                    the ingress check, and a connection the destination
                    refuses must not exist.
                    Packets from the outside (reg4 FROM_REMOTE) pass (to
                    L2_LOOKUP: they were routed by their sender's host).
                    DHCP client traffic (not punted in SERVICES: no DHCP
                    served here), ND, MLD and RS pass whatever the rules.
  42 EGRESS_ACL_SL  a stateless port's IP (its groups are stateless, see
                    model.SecurityGroup): its rules, whatever the conntrack
                    state, nothing passing otherwise.
  44 L3_ADMIT       what a local port's egress security groups let out
                    to the host's services: TCP to 169.254.169.254:80
                    rewritten to the metadata proxy (rules/metadata.py),
                    DNS to the network's DNS address (UDP 53) punted to
                    the controller.  IP to a router interface MAC (reg6,
                    eth_dst): reg2 = the router, the Ethernet addresses
                    turned around (the interface's MAC as source), on to
                    L3_ROUTE; the rest to L2_LOOKUP.
  46 L3_ROUTE       martians dropped first, for every router (static:
                    to 0/8, 127/8, 224/4, 255.255.255.255, ::, ::1,
                    fe80::/10, ff00::/8; from 0/8, 127/8, 224/4,
                    255.255.255.255, ::1, fe80::/10, ff00::/8), below the
                    echo answers;
                    per router (reg2): ICMP echo to its addresses answered;
                    a packet with TTL 0 or 1 to the controller for ICMP
                    time exceeded, through its local source port's punt
                    meter (reg5: meter = the ofport, shared with the
                    port's DHCP / DNS / RS punts), else (from the outside)
                    the host's TTL meter (METER_TTL);
                    longest prefix first (priority from the prefix length):
                    dec_ttl, source MAC = the egress interface's, reg6 =
                    the egress network; connected subnets on to L3_RESOLVE,
                    extra routes set the next hop's MAC and go to L2_LOOKUP.
                    Routes out of the gateway interface (its subnet, the
                    default route via the subnet's gateway_ip): reg0 = the
                    next hop, the ACL entry committed (pre-NAT tuple, reg3
                    zone), un-DNAT in the DNAT zone -> L3_SNAT.
  47 L3_SNAT        per router (reg2), IPv4 leaving by the gateway: from a
                    floating IP's fixed IP served here: SNAT to the FIP
                    (SNAT zone, eth_src = FIP MAC) -> L3_RESOLVE; already a
                    FIP un-DNATed by the DNAT zone's lookup (a reply:
                    ct_state +snat; the FIP as a VM's own source is not
                    one) -> L3_RESOLVE; else on the
                    active gateway host SNAT to the gateway address, on
                    other hosts tunnel_id = redirect key + bundle
                    active_backup over the gateway hosts' BFD tunnels.
  48 L3_RESOLVE     (reg6, destination IP) -> eth_dst of the port holding
                    it (owned by that port, on routed networks only).  On
                    an external network by the next hop in reg0: a
                    neighbour the agent resolved (Chassis.neighbours), a
                    floating IP served here (hairpin: recirculate into
                    EXT_DNAT as if it came from outside), else punted to
                    the controller through a meter per network.
  50 L2_LOOKUP      (reg6, eth_dst) -> local port (reg7, on to INGRESS_ACL),
                    or a remote port: its host's tun_ipv4_dst (tunnels) on
                    to REMOTE_OUT, one flow per remote port.
                    Broadcast/multicast and unknown unicast -> FLOOD.
  52 REMOTE_OUT     per network (reg6): out to the other hosts, IP
                    committed to conntrack first (egress accepted it: its
                    replies are then established); tunnel_id + output to
                    the tunnel port, or VLAN push + output to the patch
                    port.
  55 FLOOD          per network: every local port (reg4 FLOOD, reg7 +
                    resubmit to INGRESS_CT), then, only for locally
                    originated packets,
                    one tunnel output per remote host / the patch port
                    (IP committed to conntrack first: replies are then
                    established).  A unicast to an address pair's MAC
                    (eth_dst) goes the same way to the ports holding it
                    only: the local ones, the remote hosts of the others
                    (the patch port if another host holds it).
  58 INGRESS_CT     IP that an earlier commit left untracked (a flood to
                    several ports) is looked up again before INGRESS_ACL;
                    a copy for one of a port's address pairs' MACs into
                    that port is no longer a flooded one (FLAG_FLOOD
                    cleared): it is meant for the port.
  60 INGRESS_ACL    security groups of the destination port (reg7), same
                    conntrack state as the egress check; what they accept
                    is committed, as the port's connection (its eth_dst
                    into ct_label) unless it is a flooded copy (nobody's);
                    a stateless port's IP to INGRESS_ACL_SL.
  62 INGRESS_ACL_SL the same as EGRESS_ACL_SL, for the destination port;
                    what it accepts from this host's ports, not flooded, is
                    committed as its connection (a stateful sender on the
                    same host gets its replies as replies).
  70 OUTPUT         reg7 -> output to that ofport.

Registers::

  reg0  IPv4 next hop on an external network (L3_ROUTE / EXT_ADMIT,
        read by L3_RESOLVE; in the packet-in of a resolve punt); for
        IPv6 0 = ipv6_dst itself, 1 = the external subnet's gateway
  reg1  always 0 (no flow may set it): copied into in_port by the hairpin
  reg2  router (its zone number), set by L3_ADMIT, read by L3_ROUTE
  reg3  conntrack zone of the packet (set in CT_LOOKUP, read by every
        ct(); routing changes reg6 but never the zone)
  reg4  flags; bit 0 FROM_REMOTE = arrived over a tunnel or a patch port;
        bit 1 REDIRECT = SNAT traffic redirected to this gateway host
  reg5  source ofport (local VIF), 0 when from the outside
  reg6  network local id (16 bits; the conntrack zone of switched traffic);
        routing sets it to the egress network
  reg7  destination ofport, set by L2_LOOKUP / FLOOD, read by INGRESS_ACL
        and OUTPUT

Conntrack zones: a network's local id (switched traffic); per router
three numbers from the same pool: the ACL zone (reg3, security groups of
routed traffic), and with a gateway a DNAT and an SNAT zone.  Out:
ACL commit (pre-NAT) -> un-DNAT (DNAT zone) -> SNAT (SNAT zone); in:
un-SNAT (SNAT zone) -> DNAT (DNAT zone) -> ACL lookup.  Two NAT zones,
not one: a hairpin connection (a VM to a floating IP of its own router)
is translated both ways, and a conntrack entry takes one NAT per commit.

Whose a connection is (rules/static.py): ct_label bits 0-47 = the MAC a
port's ingress check accepted it for, ct_mark bit 1 = committed by
something else (REMOTE_OUT, FLOOD out, a flooded copy, a gateway route),
bit 0 = condemned; only what is not a reply (ct_state -rpl) is
committed, or writes them.  A reply or related packet passes a stateful
port's egress check freely only for a connection labelled with one of its
MACs, or with neither bit (a connection from before they were written);
another related packet meets the port's rules.

Each table declares what it may match, which fields it may set (SetField
or Move destination), which action kinds it may use and which tables it
may continue to (goto, resubmit, conntrack recirculation).  ``validate``
checks one Flow against that, including OpenFlow match prerequisites
(e.g. tcp_dst needs ip_proto=6 and an IP eth_type), and raises
PipelineError.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.flow import (
    Bundle,
    Conjunction,
    Controller,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
    LoadBits,
    Meter,
    Move,
    Output,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
)

# Meter ids: the per-port DHCP punt uses the port's ofport (below
# OFPP_MAX, 0xff00); OpenFlow reserves 0xffff0000 and up.
METER_MAX = 0xFFFEFFFF
# The host's meter for routed packets whose TTL ran out (ICMP time
# exceeded is the agent's answer): above every ofport.
METER_TTL = 0xFF01

CLASSIFY = 0
TUNNEL_CLASSIFY = 5
PORT_SECURITY = 10
SERVICES = 20
EXT_ADMIT = 22
EXT_DNAT = 24
EXT_CT = 26
CT_LOOKUP = 30
EGRESS_ACL = 40
EGRESS_ACL_SL = 42
L3_ADMIT = 44
L3_ROUTE = 46
L3_SNAT = 47
L3_RESOLVE = 48
L2_LOOKUP = 50
REMOTE_OUT = 52
FLOOD = 55
INGRESS_CT = 58
INGRESS_ACL = 60
INGRESS_ACL_SL = 62
OUTPUT = 70

REG_NEXTHOP = "reg0"
REG_ZERO = "reg1"  # never set: a zero to copy (in_port = 0 for the hairpin)
REG_ROUTER = "reg2"
REG_ZONE = "reg3"
REG_FLAGS = "reg4"
REG_SRC = "reg5"
REG_NET = "reg6"
REG_DST = "reg7"
FLAG_FROM_REMOTE = 0x1
FLAG_REDIRECT = 0x2
# set by FLOOD on the copies it sends through local ports' ingress ACLs: a
# copy that a port's rules refuse does not condemn the connection (static.py)
FLAG_FLOOD = 0x4
# meter of an external network's resolve punt: base + the network's local
# id (above any ofport, which the DHCP punt meters use)
EXT_PUNT_METER_BASE = 0x10000
# ... and of the replies to the agent's own neighbour requests: a meter of
# their own, or a flood of packets to an unresolved next hop (which fills
# the resolve punt's meter) would starve the very answer that ends it.
EXT_REPLY_METER_BASE = 0x20000
# ... and of the network's own gateway's replies (the upstream router the
# default route goes through): a meter of their own again, or any host on
# the network sending replies to our addresses would starve them.
EXT_GW_REPLY_METER_BASE = 0x30000

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD

IP_FAMILY = frozenset({ETH_IP, ETH_IPV6})


class PipelineError(Exception):
    """A flow breaks its table's contract."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    number: int
    name: str
    match: frozenset  # field names a flow may match
    sets: frozenset  # field names SetField / Move may write
    actions: frozenset  # allowed action classes
    next_tables: frozenset  # goto / resubmit / ct(table=) targets
    doc: str = ""


def _fs(*names):
    return frozenset(names)


_ACL_COMMON = _fs(
    "ct_state", "eth_type", "ip_proto", "tcp_dst", "udp_dst", "udp_src", "sctp_dst",
    "icmpv4_type", "icmpv4_code", "icmpv6_type", "icmpv6_code", "conj_id", "reg4",
    "ct_mark",
)

TABLES: dict[int, TableSpec] = {
    t.number: t
    for t in (
        TableSpec(
            CLASSIFY, "classify",
            _fs("in_port", "tunnel_id", "vlan_vid", "tun_ipv4_src", "tun_ipv6_src"),
            _fs(REG_FLAGS, REG_SRC, REG_NET, REG_ROUTER, REG_ZONE),
            frozenset({SetField, PopVlan, GotoTable}),
            _fs(TUNNEL_CLASSIFY, PORT_SECURITY, EXT_ADMIT, CT_LOOKUP),
            "which VIF / tunnel / physical network a packet came from; the flow-based "
            "tunnel ports admit known hosts' tunnel addresses only",
        ),
        TableSpec(
            TUNNEL_CLASSIFY, "tunnel_classify",
            _fs("in_port", "tunnel_id"),
            _fs(REG_FLAGS, REG_NET, REG_ROUTER, REG_ZONE),
            frozenset({SetField, GotoTable}),
            _fs(EXT_ADMIT, CT_LOOKUP),
            "which network (or router redirect) a packet from a known tunnel peer is of",
        ),
        TableSpec(
            PORT_SECURITY, "port_security",
            _fs(REG_SRC, "eth_src", "eth_type", "ipv4_src", "ipv4_dst", "arp_spa", "arp_sha",
                "ipv6_src", "ip_proto", "udp_src", "udp_dst", "icmpv6_type",
                "ipv6_nd_target", "ipv6_nd_tll"),
            _fs(),
            frozenset({GotoTable}),
            _fs(SERVICES),
            "egress anti-spoofing",
        ),
        TableSpec(
            SERVICES, "services",
            _fs(REG_FLAGS, REG_NET, REG_SRC, "eth_src", "eth_type", "arp_op", "arp_spa",
                "arp_tpa", "ip_proto", "udp_src", "udp_dst", "icmpv6_type", "ipv6_nd_target",
                "ipv6_src",
                # the metadata service (rules/metadata.py)
                "ipv4_src", "ipv4_dst", "ipv6_dst", "tcp_dst"),
            _fs("eth_src", "eth_dst", "arp_op", "arp_sha", "arp_tha", "arp_spa", "arp_tpa",
                "ipv6_src", "ipv6_dst", "icmpv6_type", "ipv6_nd_sll", "ipv6_nd_tll", "nd_reserved",
                "nd_options_type", "ipv4_src", "ipv4_dst"),
            # Ct: the NA responder's commit barrier (rules/router.na_reply)
            frozenset({SetField, Move, Output, Controller, Meter, GotoTable, Ct}),
            _fs(CT_LOOKUP),
            "ARP and ND responders, DHCP and DNS punts (metered per source port), metadata "
            "requests to the host's proxy and its replies back",
        ),
        TableSpec(
            EXT_ADMIT, "ext_admit",
            _fs(REG_NET, REG_FLAGS, REG_ROUTER, "eth_type", "eth_dst", "arp_op", "arp_tpa",
                "arp_spa", "ipv4_dst", "ipv6_dst", "ip_proto", "icmpv6_type",
                "ipv6_nd_target"),
            _fs("eth_src", "eth_dst", "arp_op", "arp_sha", "arp_tha", "arp_spa", "arp_tpa",
                REG_ROUTER, REG_ZONE, REG_NEXTHOP, "ipv6_src", "ipv6_dst", "icmpv6_type",
                "ipv6_nd_sll", "nd_reserved", "nd_options_type", "vlan_vid"),
            # PushVlan: answers go back out of a VLAN uplink tagged;
            # Meter + Controller: replies to the agent's neighbour requests
            frozenset({SetField, Move, Output, Ct, GotoTable, PushVlan, Meter, Controller}),
            _fs(EXT_DNAT, EXT_CT, L3_SNAT, CT_LOOKUP),
            "an external network's inbound: ARP for FIP / gateway, un-SNAT, redirected SNAT",
        ),
        TableSpec(
            EXT_DNAT, "ext_dnat",
            # (reg4: a port forwarding address answers echo from the
            # outside only, rules/gateway.py)
            _fs(REG_ROUTER, REG_FLAGS, "eth_type", "ipv4_dst", "ip_proto", "tcp_dst",
                "udp_dst", "icmpv4_type"),
            # echo to the gateway address answered back out of the uplink
            _fs("ipv4_src", "ipv4_dst", "icmpv4_type", "vlan_vid"),
            frozenset({Ct, GotoTable, SetField, Move, Output, PushVlan}),
            _fs(EXT_CT),
            "DNAT of floating IPs and port forwardings (per router)",
        ),
        TableSpec(
            EXT_CT, "ext_ct",
            _fs("eth_type"),
            _fs(),
            frozenset({Ct, GotoTable}),
            _fs(L3_ROUTE),
            "translated inbound packets through the router's ACL zone",
        ),
        TableSpec(
            CT_LOOKUP, "ct_lookup",
            _fs("eth_type", REG_NET, "eth_src", "eth_dst"),
            _fs(REG_ZONE),
            frozenset({Ct, GotoTable, SetField, Move}),
            _fs(EGRESS_ACL),
            "conntrack lookup in the network's or the router's zone",
        ),
        TableSpec(
            EGRESS_ACL, "egress_acl",
            # (ct_label: whose a connection is, the replies' check)
            _ACL_COMMON | _fs(REG_SRC, "ipv4_dst", "ipv6_dst", "eth_dst", "ct_label"),
            _fs(),
            frozenset({Ct, Conjunction, GotoTable}),
            _fs(EGRESS_ACL_SL, L3_ADMIT, L2_LOOKUP),
            "security groups of the source port",
        ),
        TableSpec(
            EGRESS_ACL_SL, "egress_acl_stateless",
            _ACL_COMMON | _fs(REG_SRC, "ipv4_dst", "ipv6_dst", "eth_dst"),
            _fs(),
            frozenset({Conjunction, GotoTable}),
            _fs(L3_ADMIT),
            "stateless security groups of the source port",
        ),
        TableSpec(
            L3_ADMIT, "l3_admit",
            _fs(REG_NET, "eth_dst", "eth_type",
                # the metadata requests and DNS queries of local ports,
                # after their egress security groups
                REG_SRC, "ip_proto", "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst",
                "tcp_dst", "udp_dst"),
            _fs("eth_src", "eth_dst", REG_ROUTER, "ipv4_src", "ipv6_src", "ipv6_dst"),
            frozenset({SetField, Move, GotoTable, Output, Meter, Controller}),
            _fs(L3_ROUTE, L2_LOOKUP),
            "IP to a router interface MAC enters its router; a local port's metadata "
            "requests to the host's proxy and DNS queries to the agent, as its security "
            "groups let them out",
        ),
        TableSpec(
            L3_ROUTE, "l3_route",
            # (reg6, the ingress network: the address scope drops; the
            # sources: martians, rules/static.py; reg5, the local source
            # port: its TTL punt's meter, rules/port.py; ct_state: a reply
            # routed out of a gateway is not committed, rules/gateway.py)
            _fs(REG_ROUTER, REG_NET, REG_SRC, "eth_type", "ipv4_dst", "ipv6_dst", "ip_proto",
                "icmpv4_type", "icmpv6_type", "nw_ttl", "ipv4_src", "ipv6_src", "ct_state"),
            _fs("eth_src", "eth_dst", REG_NET, REG_NEXTHOP, "ipv4_src", "ipv4_dst", "ipv6_src",
                "ipv6_dst", "icmpv4_type", "icmpv6_type", "vlan_vid"),
            # Ct: gateway routes commit the ACL entry and un-DNAT (-> L3_SNAT);
            # Meter + Controller: a TTL that ran out, punted through the
            # source port's meter or METER_TTL; PushVlan: an echo answer
            # back out of a VLAN external network (rules/gateway.py)
            frozenset({DecTtl, SetField, Move, Output, GotoTable, Ct, Meter, Controller,
                       PushVlan}),
            _fs(L3_SNAT, L3_RESOLVE, L2_LOOKUP),
            "longest prefix match per router; echo answers",
        ),
        TableSpec(
            L3_SNAT, "l3_snat",
            # (ct_state: the DNAT zone's lookup, +snat = an un-DNATed reply)
            _fs(REG_ROUTER, REG_FLAGS, "eth_type", "ipv4_src", "ipv6_src", "ipv4_dst",
                "ip_proto", "tcp_src", "udp_src", "ct_state"),
            _fs("eth_src", "tunnel_id"),
            frozenset({SetField, Ct, Bundle, GotoTable}),
            _fs(L3_RESOLVE),
            "SNAT to a floating IP here, to the gateway address, or redirect to the gateway",
        ),
        TableSpec(
            L3_RESOLVE, "l3_resolve",
            _fs(REG_NET, REG_NEXTHOP, "eth_type", "ipv4_dst", "ipv6_dst"),
            _fs("eth_dst", REG_ROUTER, REG_ZONE, "in_port"),
            # Ct: a floating IP served here (hairpin) recirculates into
            # EXT_DNAT after un-SNAT; Meter + Controller: resolve punt
            frozenset({SetField, Move, GotoTable, Ct, Meter, Controller}),
            _fs(L2_LOOKUP, EXT_DNAT),
            "the destination's MAC on the egress network",
        ),
        TableSpec(
            L2_LOOKUP, "l2_lookup",
            _fs(REG_NET, "eth_dst", "eth_type"),
            _fs(REG_DST, "tunnel_id", "tun_ipv4_dst", "vlan_vid"),
            # (no Ct: IP to other hosts is committed in REMOTE_OUT, once per
            # network; tunnel_id, PushVlan, Output: a gateway's neighbours)
            frozenset({SetField, PushVlan, Output, GotoTable}),
            _fs(FLOOD, INGRESS_ACL, REMOTE_OUT),
            "destination MAC lookup",
        ),
        TableSpec(
            REMOTE_OUT, "remote_out",
            _fs(REG_NET, "eth_type", "ct_state"),
            _fs("tunnel_id", "vlan_vid"),
            frozenset({SetField, PushVlan, Output, Ct}),
            _fs(),
            "a network's way out to the other hosts (IP committed first)",
        ),
        TableSpec(
            FLOOD, "flood",
            # (eth_dst: an address pair's MAC, flooded to its holders only)
            _fs(REG_NET, REG_FLAGS, "eth_type", "ct_state", "eth_dst"),
            _fs(REG_DST, REG_FLAGS, "tunnel_id", "tun_ipv4_dst", "vlan_vid"),
            frozenset({SetField, PushVlan, Output, Resubmit, Ct}),
            _fs(INGRESS_CT),
            "broadcast and unknown unicast",
        ),
        TableSpec(
            INGRESS_CT, "ingress_ct",
            # (reg7 and eth_dst: a flooded copy for an address pair's MAC
            # into its port is that port's, FLAG_FLOOD cleared: rules/acl.py)
            _fs("eth_type", "ct_state", REG_DST, "eth_dst"),
            _fs(REG_FLAGS),
            frozenset({Ct, GotoTable, Move}),
            _fs(INGRESS_ACL),
            "conntrack again for IP left untracked by a commit; a pair MAC's copies "
            "are its port's",
        ),
        TableSpec(
            INGRESS_ACL, "ingress_acl",
            _ACL_COMMON | _fs(REG_DST, "ipv4_src", "ipv6_src", "eth_src"),
            _fs(),
            frozenset({Ct, Conjunction, GotoTable}),
            _fs(INGRESS_ACL_SL, OUTPUT),
            "security groups of the destination port",
        ),
        TableSpec(
            INGRESS_ACL_SL, "ingress_acl_stateless",
            _ACL_COMMON | _fs(REG_DST, "ipv4_src", "ipv6_src", "eth_src"),
            _fs(),
            # (Ct: the accept commits, for a stateful sender's sake)
            frozenset({Ct, Conjunction, GotoTable}),
            _fs(OUTPUT),
            "stateless security groups of the destination port",
        ),
        TableSpec(
            OUTPUT, "output",
            _fs(REG_DST),
            _fs(),
            frozenset({Output}),
            _fs(),
            "delivery to a local port",
        ),
    )
}

TABLE_NAMES = {t.number: t.name for t in TABLES.values()}

_REGS = frozenset(f"reg{i}" for i in range(8))

# field -> (prerequisite field, allowed values)
_ETH_PREREQ = {
    "ipv4_src": ETH_IP, "ipv4_dst": ETH_IP,
    "arp_op": ETH_ARP, "arp_spa": ETH_ARP, "arp_tpa": ETH_ARP, "arp_sha": ETH_ARP,
    "arp_tha": ETH_ARP,
    "ipv6_src": ETH_IPV6, "ipv6_dst": ETH_IPV6, "ipv6_nd_target": ETH_IPV6,
    "ipv6_nd_sll": ETH_IPV6, "ipv6_nd_tll": ETH_IPV6,
}
_PROTO_PREREQ = {
    "tcp_src": 6, "tcp_dst": 6, "udp_src": 17, "udp_dst": 17, "sctp_src": 132,
    "sctp_dst": 132, "icmpv4_type": 1, "icmpv4_code": 1, "icmpv6_type": 58,
    "icmpv6_code": 58,
}
_ICMP_ETH = {1: ETH_IP, 58: ETH_IPV6}
# ND fields: which ICMPv6 types carry them (the source link-layer option
# is a solicitation's, the target one an advertisement's).
_ND_PREREQ = {"ipv6_nd_target": (135, 136), "ipv6_nd_sll": (135,), "ipv6_nd_tll": (136,),
              "nd_reserved": (135, 136), "nd_options_type": (135, 136)}


def _need(flow: Flow, ok: bool, what: str) -> None:
    if not ok:
        raise PipelineError(f"table {TABLE_NAMES.get(flow.table, flow.table)}: {what}: {flow}")


def check_prerequisites(flow: Flow, m: dict) -> None:
    """OpenFlow match prerequisites, as a switch would reject them."""
    eth = m.get("eth_type")
    eth_v = eth.value if eth is not None and eth.mask is None else None
    proto = m.get("ip_proto")
    proto_v = proto.value if proto is not None and proto.mask is None else None
    for name in m:
        want = _ETH_PREREQ.get(name)
        if want is not None:
            _need(flow, eth_v == want, f"{name} needs eth_type={want:#06x}")
            if name not in _ND_PREREQ:
                continue
        want = _PROTO_PREREQ.get(name)
        if want is not None:
            _need(flow, proto_v == want, f"{name} needs ip_proto={want}")
            if want in _ICMP_ETH:
                _need(flow, eth_v == _ICMP_ETH[want], f"{name} needs its ICMP family")
            continue
        if name == "ip_proto":
            _need(flow, eth_v in IP_FAMILY, "ip_proto needs an IP eth_type")
        elif name in _ND_PREREQ:
            t = m.get("icmpv6_type")
            _need(flow, t is not None and t.value in _ND_PREREQ[name],
                  f"{name} needs icmpv6_type in {_ND_PREREQ[name]}")


_SET_PREREQ = frozenset(_ETH_PREREQ) | frozenset(_PROTO_PREREQ) | frozenset(_ND_PREREQ)
_VALUED = frozenset({"eth_type", "ip_proto", "icmpv6_type"})
_match_ok: set = set()


def _check_match(flow: Flow, spec: TableSpec) -> None:
    allowed = spec.match
    m = {}
    for f in flow.match:
        if f.name not in allowed:
            raise PipelineError(f"table {spec.name} may not match {f.name}: {flow}")
        m[f.name] = f
    check_prerequisites(flow, m)


def validate(flow: Flow) -> None:
    """Raise PipelineError unless ``flow`` obeys its table's contract.

    The match part is checked once per match *shape* (table, field names
    and the values prerequisites depend on) and remembered; actions are
    checked every time."""
    spec = TABLES.get(flow.table)
    if spec is None:
        raise PipelineError(f"no table {flow.table}: {flow}")
    if not 0 <= flow.priority <= 0xFFFF:
        raise PipelineError(f"priority out of range: {flow}")
    if (flow.cookie & cookies.OURS_MASK) != cookies.OURS_VALUE:
        raise PipelineError(f"cookie without the quantum-ovs marker: {flow}")
    shape = (flow.table, *[(f.name, f.value, f.mask) if f.name in _VALUED else f.name
                           for f in flow.match])
    if shape not in _match_ok:
        _check_match(flow, spec)
        if len(_match_ok) > 100000:
            _match_ok.clear()
        _match_ok.add(shape)
    actions = flow.actions
    # Action tuples are often shared objects (constants, cached tunnel
    # outputs): remember the ones already checked for this table.  The
    # cache holds the tuple itself, so its id cannot be reused.
    seen = _actions_ok.get((flow.table, id(actions)))
    if seen is actions:
        return
    if _check_actions(flow, spec, actions, shape):
        return  # conjunction flows: the check depends on the match too
    if len(_actions_ok) > 100000:
        _actions_ok.clear()
    _actions_ok[(flow.table, id(actions))] = actions


_actions_ok: dict = {}
# (match shape, set field, its value where prerequisites read it) whose
# prerequisites held: per-port actions (an ARP or ND reply's addresses) are
# new tuples each, and their set-fields' checks depend on no more than this.
_set_ok: set = set()


def _check_actions(flow: Flow, spec: TableSpec, actions, shape: tuple) -> bool:
    """Raise unless the actions fit the table; True for conjunction flows.
    ``shape`` is the flow's match shape (see validate)."""
    n = len(actions)
    kinds = spec.actions
    conj = 0
    for i, a in enumerate(actions):
        cls = type(a)
        if cls not in kinds:
            raise PipelineError(f"table {spec.name} may not use {cls.__name__}: {flow}")
        if cls is GotoTable:
            if i != n - 1:
                raise PipelineError(f"goto_table must be the last action: {flow}")
            if a.table not in spec.next_tables:
                raise PipelineError(f"table {spec.name} may not go to {a.table}: {flow}")
        elif cls is Meter:
            if i != 0:
                raise PipelineError(f"a meter must be the first action: {flow}")
            if not 0 < a.id <= METER_MAX:
                raise PipelineError(f"meter id out of range: {flow}")
        elif cls is Conjunction:
            conj += 1
            if not 0 <= a.clause < a.n_clauses or a.n_clauses < 2:
                raise PipelineError(f"bad conjunction clause: {flow}")
        elif cls is SetField:
            if a.name not in spec.sets:
                raise PipelineError(f"table {spec.name} may not set {a.name}: {flow}")
            if a.name in _SET_PREREQ:
                key = (shape, a.name, a.value if a.name in _VALUED else None)
                if key not in _set_ok:
                    # the switch checks a set-field against the flow's
                    # match, not against what earlier actions of the flow
                    # made of it
                    m = flow.match.as_dict()
                    m[a.name] = a
                    check_prerequisites(flow, m)
                    if len(_set_ok) > 100000:
                        _set_ok.clear()
                    _set_ok.add(key)
        elif cls is Resubmit:
            if a.table not in spec.next_tables:
                raise PipelineError(f"table {spec.name} may not resubmit to {a.table}: {flow}")
        elif cls is Ct:
            eth = flow.match.get("eth_type")
            if eth is None or eth.mask is not None or eth.value not in IP_FAMILY:
                raise PipelineError(f"ct() needs eth_type IPv4 or IPv6 in the match: {flow}")
            if a.table is not None and a.table not in spec.next_tables:
                raise PipelineError(f"table {spec.name} may not recirculate to {a.table}")
            if a.zone_src is not None and a.zone_src not in _REGS:
                raise PipelineError(f"ct zone_src must be a register: {flow}")
            if a.nat is not None:
                _check_nat(flow, a)
            if a.mark is not None:
                if not a.commit or a.nat is not None:
                    raise PipelineError(f"ct(mark) needs a commit and no nat: {flow}")
                if not 0 <= a.mark <= 0xFFFFFFFF:
                    raise PipelineError(f"ct_mark out of range: {flow}")
            if a.write is not None:
                _check_write(flow, a)
        elif cls is Move:
            if a.dst == REG_ZERO:
                raise PipelineError(f"{REG_ZERO} stays zero: {flow}")
            if a.dst not in spec.sets:
                raise PipelineError(f"table {spec.name} may not move into {a.dst}: {flow}")
        elif cls is Output:
            if a.port <= 0:
                raise PipelineError(f"bad output port: {flow}")
        elif cls is Bundle:
            if not a.members or any(not 0 < m < 0xFF00 for m in a.members):
                raise PipelineError(f"bundle needs ofports as members: {flow}")
            if a.algorithm not in ("active_backup", "hrw"):
                raise PipelineError(f"bad bundle algorithm: {flow}")
    if conj:
        if conj != n:
            raise PipelineError(f"conjunction flows may carry only conjunctions: {flow}")
        if flow.match.get("conj_id") is not None:
            raise PipelineError(f"a conjunction clause cannot match conj_id: {flow}")
    return bool(conj)


# what a ct() may write into its connection (rules/static.py), as the
# encoder can build it: a move of eth_dst's bits into ct_label; a masked
# load of ct_mark's bits other than CONDEMNED's, bit 0 (os-ken cannot pad
# a masked load of the 128-bit ct_label)
_CT_MOVE_SOURCES = {"eth_dst": 48}
_CT_LOADABLE = 0xFFFFFFFE


def _check_write(flow: Flow, a: Ct) -> None:
    if not a.commit or a.nat is not None or a.mark is not None:
        raise PipelineError(f"ct(write) needs a commit, no nat and no mark: {flow}")
    w = a.write
    if type(w) is Move:
        src = _CT_MOVE_SOURCES.get(w.src)
        if (w.dst != "ct_label" or src is None or w.n_bits <= 0
                or w.src_ofs + w.n_bits > src or w.dst_ofs + w.n_bits > 128):
            raise PipelineError(f"ct(write) moves eth_dst's bits into ct_label: {flow}")
    elif type(w) is LoadBits:
        if w.name != "ct_mark" or not 0 < w.mask <= _CT_LOADABLE or w.mask & ~_CT_LOADABLE \
                or w.value & ~w.mask:
            raise PipelineError(f"ct(write) loads ct_mark's bits 1-31 under a mask: {flow}")
    else:
        raise PipelineError(f"ct(write) is a Move or a LoadBits: {flow}")


def _check_nat(flow: Flow, a: Ct) -> None:
    n = a.nat
    if n.kind not in (None, "src", "dst"):
        raise PipelineError(f"nat kind must be src, dst or None: {flow}")
    if n.kind is None:
        if n.ip_min or n.ip_max or n.port_min is not None or n.port_max is not None:
            raise PipelineError(f"plain nat takes no range: {flow}")
        return
    if not a.commit:
        raise PipelineError(f"nat({n.kind}=...) translates only a committed connection: {flow}")
    if n.ip_min is None:
        raise PipelineError(f"nat({n.kind}) needs an address: {flow}")
    if n.ip_max == n.ip_min or (n.port_max is not None and n.port_max == n.port_min):
        raise PipelineError(f"a range of one is written as its minimum only: {flow}")
    if n.port_max is not None and n.port_min is None:
        raise PipelineError(f"nat port range without a minimum: {flow}")
    eth = flow.match.get("eth_type").value
    if (eth == ETH_IPV6) != (":" in n.ip_min):
        raise PipelineError(f"nat address of the other IP family: {flow}")


def describe() -> str:
    """The pipeline as text (for docs and ``quantum-ovs-trace --pipeline``)."""
    lines = []
    for t in sorted(TABLES.values(), key=lambda t: t.number):
        nxt = ",".join(str(x) for x in sorted(t.next_tables)) or "-"
        lines.append(f"{t.number:3d} {t.name:14s} -> {nxt:10s} {t.doc}")
        lines.append(f"      match: {', '.join(sorted(t.match))}")
        if t.sets:
            lines.append(f"      sets:  {', '.join(sorted(t.sets))}")
    return "\n".join(lines)
