"""The fixed part of the pipeline: table-miss drops, conntrack plumbing,
the traffic every port may always send or receive (ND, DHCP replies) and
the addresses no router forwards (MARTIANS)."""

from __future__ import annotations

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import (
    CT_EST,
    CT_INV,
    CT_REL,
    CT_RPL,
    CT_TRK,
    Ct,
    Field,
    Flow,
    GotoTable,
    LoadBits,
    Move,
)
from quantum_ovs.compiler.rules.common import F_ARP, F_IP, F_IPV6, FROM_REMOTE, addr_field, mk

COOKIE = cookies.cookie_for(cookies.KIND_STATIC, "pipeline")

# Priorities inside the ACL tables.
PRIO_NO_SECURITY = 150
PRIO_INVALID = 110
PRIO_ESTABLISHED = 100
PRIO_RELATED = 99
PRIO_UNTRACKED = 98
PRIO_ALWAYS = 120  # above the invalid-state drop: ND may be untrackable
PRIO_CONDEMNED = 112  # above the invalid-state drop, below the stateless jump
PRIO_RULE = 50
PRIO_CONJ = 40
PRIO_CONDEMN = 30  # below every rule: what no rule accepts

NET_ZONE = Move(P.REG_NET, P.REG_ZONE, 16)

# What a rule is checked against: every tracked, valid packet in the
# direction that opened its connection, the first (+new) and every later one
# (+est-rpl), so that a rule removed stops the connections it let open, as
# Neutron's OVS firewall does.  Replies (+est+rpl) and related packets pass
# above the rules (PRIO_ESTABLISHED, PRIO_RELATED).
CT_RULE_MATCH = Field("ct_state", CT_TRK, CT_TRK | CT_INV | CT_RPL)

# A later packet of a connection (+est-rpl) that the rules no longer accept
# condemns the connection: it is committed with ct_mark CONDEMNED and
# dropped, and every packet of a condemned connection, replies included, is
# dropped above the reply flows (PRIO_CONDEMNED).  So a rule removed cuts
# its connections in both directions, as Neutron's OVS firewall does with
# its ct_mark.  Only a packet meant for the port condemns: into a port,
# not a copy FLOOD sends every local port (FLAG_FLOOD: a broadcast, or a
# unicast to a MAC the network does not know, that one port refuses says
# nothing of the others); out of a port, a unicast (a broadcast has no
# replies to cut).  An allowed address pair's own MAC is in no L2 lookup
# (several ports may hold it, and it may move between them), so what is
# sent to it goes through FLOOD, to the ports holding it only (their hosts
# for remote ones: rules/network.pair_flood_flows): the port's flows
# condemn what reaches it for that MAC (rules/acl.py).
CONDEMNED = 1
CONDEMN = Ct(commit=True, zone_src=P.REG_ZONE, mark=CONDEMNED)
CT_EST_ORIG = Field("ct_state", CT_TRK | CT_EST, CT_TRK | CT_EST | CT_INV | CT_RPL)
CT_EST_REPLY = Field("ct_state", CT_TRK | CT_EST | CT_RPL, CT_TRK | CT_EST | CT_RPL | CT_INV)
CT_RELATED = Field("ct_state", CT_TRK | CT_REL, CT_TRK | CT_REL | CT_INV | CT_EST)
# related, in the direction that opened the connection / in the other one
CT_RELATED_ORIG = Field("ct_state", CT_TRK | CT_REL,
                        CT_TRK | CT_REL | CT_INV | CT_EST | CT_RPL)
CT_RELATED_REPLY = Field("ct_state", CT_TRK | CT_REL | CT_RPL,
                         CT_TRK | CT_REL | CT_INV | CT_EST | CT_RPL)
# not a reply: what a commit may create a connection with (a reply's
# connection exists; committing it again would only rewrite what it is)
NOT_REPLY = Field("ct_state", 0, CT_RPL)
REPLY = Field("ct_state", CT_RPL, CT_RPL)
# (a mask: bit 0 whatever the rest of the mark)
F_CONDEMNED = Field("ct_mark", CONDEMNED, CONDEMNED)
UNICAST = Field("eth_dst", "00:00:00:00:00:00", "01:00:00:00:00:00")
NOT_FLOODED = Field(P.REG_FLAGS, 0, P.FLAG_FLOOD)
FLOODED = Field(P.REG_FLAGS, P.FLAG_FLOOD, P.FLAG_FLOOD)

# Whose a connection is.  A reply (+est+rpl) passes a port's egress check
# only if the connection is that port's: the port's own ingress check
# accepted a packet of it sent to one of the port's MACs.  Else a port
# could plant a connection between itself and another port that the other
# never saw -- its own packet to that port's address, sent to its own MAC,
# to a third port's or to broadcast, accepted and committed by whichever
# port's rules let it in -- and the other port's later packets (which its
# rules refuse) would pass as "replies" (review s23b F1; Neutron's OVS
# firewall commits the same way).  Two things are written at commits:
#   ct_label bits 0-47  the MAC an ingress check accepted it for (eth_dst):
#                       a port's own, or one of its address pairs' (whose
#                       copies come flooded, then count as the port's:
#                       rules/acl.py)
#   ct_mark bit 1       committed by something else (leaving the host, a
#                       flooded copy a port took, a route out of a
#                       gateway): a connection created there is nobody's
# Bits, not values: a commit writes only its own, so the order of a
# packet's commits does not matter; and only what is not a reply commits
# and writes (a reply's connection exists, and the commit of a reply on
# its way into its port -- a stateless one, or one without port security
# -- would relabel it as that port's, the other's next replies then
# dropped).  A connection with neither is from before these were
# written: its replies pass as they did (an upgrade keeps the established
# ones).  Related packets (ICMP errors) out of a port in the reply
# direction pass the same way, for its own connections (and those from
# before), and meet no rule otherwise; in the original direction they pass
# (the connection's first packet came from this side of the port: no one
# else could plant it).  Ports holding the same MAC (a VRRP pair's) share
# its connections: one could open the other's egress to replies of what
# it took for that MAC.
LABEL_OWNER = (1 << 48) - 1
MARK_UNOWNED = 2
COMMIT_OWNED = Ct(commit=True, zone_src=P.REG_ZONE, write=Move("eth_dst", "ct_label", 48))
UNOWNED = LoadBits("ct_mark", MARK_UNOWNED, MARK_UNOWNED)
COMMIT_UNOWNED = Ct(commit=True, zone_src=P.REG_ZONE, write=UNOWNED)
F_LEGACY = (Field("ct_label", 0, LABEL_OWNER), Field("ct_mark", 0, MARK_UNOWNED))


def owned_by(mac: str) -> Field:
    """A connection accepted for ``mac`` (ct_label bits 0-47)."""
    return Field("ct_label", int(mac.replace(":", ""), 16), LABEL_OWNER)

# L3_ROUTE: what no router forwards (Linux's ip_route_input "martian" and
# ip6_forward's scope checks), above the TTL punt (900, router.PRIO_TTL: a
# martian is not answered with time exceeded) and below the echo answers of
# the router's own addresses (1000): a router's ping from a link-local
# source is answered, not routed.  ND and router solicitations never get
# here (SERVICES and the network's flows answer or punt them first).
PRIO_MARTIAN = 950
MARTIANS = (
    ("ipv4_dst", "0.0.0.0/8"), ("ipv4_dst", "127.0.0.0/8"), ("ipv4_dst", "224.0.0.0/4"),
    ("ipv4_dst", "255.255.255.255/32"),
    ("ipv4_src", "0.0.0.0/8"), ("ipv4_src", "127.0.0.0/8"), ("ipv4_src", "224.0.0.0/4"),
    ("ipv4_src", "255.255.255.255/32"),
    ("ipv6_dst", "::/128"), ("ipv6_dst", "::1/128"), ("ipv6_dst", "fe80::/10"),
    ("ipv6_dst", "ff00::/8"),
    ("ipv6_src", "::1/128"), ("ipv6_src", "fe80::/10"), ("ipv6_src", "ff00::/8"),
)

# ICMPv6 that neighbour discovery needs, whatever the port's groups, as
# Neutron's OVS firewall admits it without rules: out of a port MLD
# queries, RSs, NSs and NAs (firewall.ICMPV6_ALLOWED_EGRESS_TYPES, and NA
# from the port's own addresses, which port security has checked); into
# it MLD queries, RAs, NSs and NAs (ICMPV6_ALLOWED_INGRESS_TYPES and RAs).
# MLD reports and done (131, 132, 143) meet the port's rules both ways
# (review s27 F4).
ND_TYPES_OUT = (130, 133, 135, 136)
ND_TYPES_IN = (130, 134, 135, 136)
# DHCP client traffic out of a port, whatever its egress rules (Neutron's
# OVS firewall: _initialize_egress "DHCP discovery"; iptables: the
# DHCP_CLIENT RETURN ahead of the port's rules).  Where the agent serves
# DHCP the network punts it in SERVICES before it gets here; this is for
# a server elsewhere (enable_dhcp False: a provider network's own).  Its
# source was checked by port security (the port's addresses, a DISCOVER
# from 0.0.0.0 to broadcast, the link-local ones).
DHCP_CLIENT = ((F_IP, 68, 67), (F_IPV6, 546, 547))


def _f(table, prio, match, actions=()):
    return Flow(table, prio, match, tuple(actions), COOKIE)


def static_flows(permitted_ethertypes: tuple = ()) -> list[Flow]:
    """``permitted_ethertypes``: Ethertypes let into ports with port
    security besides ARP (rules/port.check_ethertypes)."""
    out = []
    for t in P.TABLES:
        if t not in (P.SERVICES, P.CT_LOOKUP, P.L3_ADMIT, P.L2_LOOKUP, P.INGRESS_CT,
                     P.EXT_ADMIT, P.EXT_DNAT):
            out.append(_f(t, 0, mk()))  # table miss: drop
    # L3_ROUTE: martian addresses are dropped before any route sees them.
    for name, cidr in MARTIANS:
        out.append(_f(P.L3_ROUTE, PRIO_MARTIAN, mk(*addr_field(name, name, cidr))))
    # L3_ADMIT: what is not for a router interface is switched.
    out.append(_f(P.L3_ADMIT, 0, mk(), [GotoTable(P.L2_LOOKUP)]))
    # SERVICES: anything not answered moves on; ARP probes are never answered.
    out.append(_f(P.SERVICES, 0, mk(), [GotoTable(P.CT_LOOKUP)]))
    out.append(_f(P.SERVICES, 110, mk(F_ARP, Field("arp_spa", "0.0.0.0")),
                  [GotoTable(P.CT_LOOKUP)]))
    # CT_LOOKUP: IP through conntrack in the network's zone (copied into
    # the zone register; routers' flows above choose their own zone).
    ct = (NET_ZONE, Ct(zone_src=P.REG_ZONE, table=P.EGRESS_ACL))
    out.append(_f(P.CT_LOOKUP, 100, mk(F_IP), ct))
    out.append(_f(P.CT_LOOKUP, 100, mk(F_IPV6), ct))
    out.append(_f(P.CT_LOOKUP, 0, mk(), [GotoTable(P.EGRESS_ACL)]))
    # External networks (rules/gateway.py): what no floating IP or gateway
    # takes is switched; what is not DNATed goes through the ACL zone as is.
    out.append(_f(P.EXT_ADMIT, 0, mk(), [GotoTable(P.CT_LOOKUP)]))
    out.append(_f(P.EXT_DNAT, 0, mk(), [GotoTable(P.EXT_CT)]))
    acl_zone = Ct(zone_src=P.REG_ZONE, table=P.L3_ROUTE)
    out.append(_f(P.EXT_CT, 100, mk(F_IP), [acl_zone]))
    out.append(_f(P.EXT_CT, 100, mk(F_IPV6), [acl_zone]))
    # INGRESS_CT: IP left untracked by a commit is looked up again.
    again = Ct(zone_src=P.REG_ZONE, table=P.INGRESS_ACL)
    out.append(_f(P.INGRESS_CT, 100, mk(F_IP, Field("ct_state", 0, CT_TRK)), [again]))
    out.append(_f(P.INGRESS_CT, 100, mk(F_IPV6, Field("ct_state", 0, CT_TRK)), [again]))
    out.append(_f(P.INGRESS_CT, 0, mk(), [GotoTable(P.INGRESS_ACL)]))
    # L2: multicast/broadcast and unknown unicast flood.
    out.append(_f(P.L2_LOOKUP, 100, mk(Field("eth_dst", "01:00:00:00:00:00",
                                             "01:00:00:00:00:00")),
                  [GotoTable(P.FLOOD)]))
    out.append(_f(P.L2_LOOKUP, 0, mk(), [GotoTable(P.FLOOD)]))
    # ACL tables.
    for table, nxt, types in ((P.EGRESS_ACL, P.L3_ADMIT, ND_TYPES_OUT),
                              (P.INGRESS_ACL, P.OUTPUT, ND_TYPES_IN)):
        go = [GotoTable(nxt)]
        out.append(_f(table, PRIO_INVALID, mk(Field("ct_state", CT_TRK | CT_INV,
                                                    CT_TRK | CT_INV))))
        out.append(_f(table, PRIO_CONDEMNED, mk(Field("ct_state", CT_TRK, CT_TRK),
                                                F_CONDEMNED)))
        meant = UNICAST if table == P.EGRESS_ACL else NOT_FLOODED
        for eth in (F_IP, F_IPV6):
            out.append(_f(table, PRIO_CONDEMN, mk(eth, CT_EST_ORIG, meant), [CONDEMN]))
        # (out of a port: replies, and related packets in the reply
        # direction, pass by the flows of the connection's own ports,
        # rules/acl.py; here those of connections from before ct_label was
        # written, and every related packet in a connection's own direction)
        if table == P.INGRESS_ACL:
            out.append(_f(table, PRIO_ESTABLISHED, mk(CT_EST_REPLY), go))
            out.append(_f(table, PRIO_RELATED, mk(CT_RELATED), go))
        else:
            out.append(_f(table, PRIO_ESTABLISHED, mk(CT_EST_REPLY, *F_LEGACY), go))
            out.append(_f(table, PRIO_RELATED, mk(CT_RELATED_REPLY, *F_LEGACY), go))
            out.append(_f(table, PRIO_RELATED, mk(CT_RELATED_ORIG), go))
        # Untracked (not IP): ARP only into a port; any other Ethertype
        # (MPLS carries IP past every IP match) meets the table's drop, as
        # in Neutron's OVS firewall.  (Out of a port with port security
        # nothing else comes: port security dropped it.)
        untracked = mk(Field("ct_state", 0, CT_TRK))
        if table == P.INGRESS_ACL:
            untracked = mk(F_ARP, Field("ct_state", 0, CT_TRK))
            for t in permitted_ethertypes:  # (an operator's choice)
                out.append(_f(table, PRIO_UNTRACKED, mk(Field("eth_type", t),
                                                        Field("ct_state", 0, CT_TRK)), go))
        out.append(_f(table, PRIO_UNTRACKED, untracked, go))
        for t in types:
            out.append(_f(table, PRIO_ALWAYS, mk(F_IPV6, Field("ip_proto", 58),
                                                  Field("icmpv6_type", t)), go))
    # Packets from the outside were checked by their sender's host.
    out.append(_f(P.EGRESS_ACL, 200, mk(FROM_REMOTE), [GotoTable(P.L2_LOOKUP)]))
    # DHCP client requests leave every port (above the stateless jump and
    # the invalid-state drop, as ND; review s27 F2).
    for eth, sport, dport in DHCP_CLIENT:
        out.append(_f(P.EGRESS_ACL, PRIO_ALWAYS, mk(eth, Field("ip_proto", 17),
                                                    Field("udp_src", sport),
                                                    Field("udp_dst", dport)),
                      [GotoTable(P.L3_ADMIT)]))
    # DHCP replies reach every port (servers in VMs are stopped at port security).
    go = [GotoTable(P.OUTPUT)]
    out.append(_f(P.INGRESS_ACL, PRIO_ALWAYS, mk(F_IP, Field("ip_proto", 17),
                                                 Field("udp_src", 67), Field("udp_dst", 68)), go))
    out.append(_f(P.INGRESS_ACL, PRIO_ALWAYS, mk(F_IPV6, Field("ip_proto", 17),
                                                 Field("udp_src", 547), Field("udp_dst", 546)),
                  go))
    return out
