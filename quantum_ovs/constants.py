"""Shared vocabulary: the one place each of these words is defined.

Pure values and small total functions over them (standard library only),
so that the API, the database side, the compiler and the agent can all
use them.  Neutron's spelling is ours (neutron-lib's ``constants`` is the
reference for names and numbers).
"""

from __future__ import annotations

# ------------------------------------------------------------------ ethertypes
IPv4 = "IPv4"
IPv6 = "IPv6"
ETHERTYPES = (IPv4, IPv6)
ETH_TYPE = {IPv4: 0x0800, IPv6: 0x86DD}

# ------------------------------------------------------------------ directions
INGRESS = "ingress"
EGRESS = "egress"
DIRECTIONS = (INGRESS, EGRESS)

# ------------------------------------------------------------------ device owners
# The owner of a network's DHCP port (neutron-lib's DEVICE_OWNER_DHCP).
DEVICE_OWNER_DHCP = "network:dhcp"
# A router's interfaces on its subnets (neutron-lib's ROUTER_INTERFACE_OWNERS).
ROUTER_INTERFACE_OWNERS = ("network:router_interface",
                           "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
# ... and a distributed router's SNAT port (ROUTER_INTERFACE_OWNERS_SNAT):
# no address on an automatic (SLAAC) subnet unless asked.
ROUTER_INTERFACE_OWNERS_SNAT = ROUTER_INTERFACE_OWNERS + ("network:router_centralized_snat",)
# Every port of a router (neutron-lib's ROUTER_PORT_OWNERS): may hold an
# IPv6 subnet's anycast address (its network address).
ROUTER_PORT_OWNERS = ROUTER_INTERFACE_OWNERS_SNAT + ("network:router_gateway",)
# Ports deleted with their network (Neutron's AUTO_DELETE_PORT_OWNERS).
AUTO_DELETE_PORT_OWNERS = (DEVICE_OWNER_DHCP, "network:distributed",
                           "network:floatingip_agent_gateway")
# Ports whose addresses the agents' resolver gives no name (neutron-lib's
# DHCP_CONFIG_NOT_REQUIRED_OWNERS: Neutron's DHCP agent writes no hosts
# entry for them).  A floating IP's address is the instance's on the
# outside, named, if at all, by the operator's DNS; router interfaces and
# gateways keep their names (a traceroute through them resolves quickly).
DHCP_CONFIG_NOT_REQUIRED_OWNERS = ("network:router_ha_interface", "network:floatingip",
                                   DEVICE_OWNER_DHCP, "network:distributed")

# ------------------------------------------------------------------ IP protocols
PROTO_NUM_HOPOPT = 0
PROTO_NUM_ICMP = 1
PROTO_NUM_TCP = 6
PROTO_NUM_UDP = 17
PROTO_NUM_DCCP = 33
PROTO_NUM_IPV6_ENCAP = 41
PROTO_NUM_IPV6_ROUTE = 43
PROTO_NUM_IPV6_FRAG = 44
PROTO_NUM_IPV6_ICMP = 58
PROTO_NUM_IPV6_NONXT = 59
PROTO_NUM_IPV6_OPTS = 60
PROTO_NUM_SCTP = 132
PROTO_NUM_UDPLITE = 136

# Every IP protocol name a security-group rule may use, with its IANA
# number: Neutron's IP_PROTOCOL_MAP, plus "ggp" (3), which this service
# has always accepted (rules stored with it must keep their meaning).
# The legacy "icmpv6" is an alias of "ipv6-icmp" (see IP_PROTOCOL_ALIASES).
IP_PROTOCOL_MAP: dict[str, int] = {
    "ah": 51,
    "dccp": PROTO_NUM_DCCP,
    "egp": 8,
    "esp": 50,
    "ggp": 3,
    "gre": 47,
    "hopopt": PROTO_NUM_HOPOPT,
    "icmp": PROTO_NUM_ICMP,
    "icmpv6": PROTO_NUM_IPV6_ICMP,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipv6-encap": PROTO_NUM_IPV6_ENCAP,
    "ipv6-frag": PROTO_NUM_IPV6_FRAG,
    "ipv6-icmp": PROTO_NUM_IPV6_ICMP,
    "ipv6-nonxt": PROTO_NUM_IPV6_NONXT,
    "ipv6-opts": PROTO_NUM_IPV6_OPTS,
    "ipv6-route": PROTO_NUM_IPV6_ROUTE,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": PROTO_NUM_SCTP,
    "tcp": PROTO_NUM_TCP,
    "udp": PROTO_NUM_UDP,
    "udplite": PROTO_NUM_UDPLITE,
    "vrrp": 112,
}
# Legacy name -> the name it stands for.
IP_PROTOCOL_ALIASES = {"icmpv6": "ipv6-icmp"}
# The word a rule may use for "every protocol" (stored as no protocol).
PROTO_NAME_ANY = "any"
IP_PROTOCOL_MAX = 255

# Protocols that only exist in IPv6 (an IPv4 rule naming one is refused).
IPV6_ONLY_PROTOCOLS = frozenset({PROTO_NUM_IPV6_ENCAP, PROTO_NUM_IPV6_ROUTE,
                                 PROTO_NUM_IPV6_FRAG, PROTO_NUM_IPV6_ICMP,
                                 PROTO_NUM_IPV6_NONXT, PROTO_NUM_IPV6_OPTS})
# Protocols whose rules may carry a port range, and the ICMPs (type/code).
PORT_PROTOCOLS = frozenset({PROTO_NUM_TCP, PROTO_NUM_UDP, PROTO_NUM_DCCP,
                            PROTO_NUM_SCTP, PROTO_NUM_UDPLITE})
ICMP_PROTOCOLS = frozenset({PROTO_NUM_ICMP, PROTO_NUM_IPV6_ICMP})


class UnknownProtocol(ValueError):
    """Not an IP protocol name of IP_PROTOCOL_MAP nor a number 0-255."""


def ip_protocol_number(value) -> int | None:
    """The IP protocol number ``value`` names: None (or "any") for every
    protocol, an int or decimal string 0-255, or a name of IP_PROTOCOL_MAP
    (any case).  Anything else raises UnknownProtocol: an unknown word is
    never read as "every protocol"."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UnknownProtocol(value)
    if isinstance(value, int):
        num = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == PROTO_NAME_ANY:
            return None
        if text in IP_PROTOCOL_MAP:
            return IP_PROTOCOL_MAP[text]
        if not (text.isascii() and text.isdigit()):
            raise UnknownProtocol(value)
        num = int(text)
    else:
        raise UnknownProtocol(value)
    if not 0 <= num <= IP_PROTOCOL_MAX:
        raise UnknownProtocol(value)
    return num
