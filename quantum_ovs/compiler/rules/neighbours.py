"""Replies to the agent's neighbour resolution on external networks (issue 14).

When a router's next hop on an external network is not known from the
host view, the agent asks for it: an ARP request (IPv4) or a neighbour
solicitation (IPv6) from an address this host serves there -- a router's
gateway address on one of its gateway hosts, or a floating IP served here
(``Engine.neighbour_sources``; agent/responders/neighbours.py).  The
answer comes back from the outside, addressed to that address: these
flows hand it to the agent.

  EXT_ADMIT reg6 = the external network, ARP reply to ``address``
            (arp_tpa) or neighbour advertisement to it (ipv6_dst)
            -> meter, controller; from the network's own gateway (arp_spa,
            or the advertised ipv6_nd_target) -> its own meter, controller

Only replies to the addresses the agent asks from are taken: every other
reply from the uplink goes on to whom it is for (an instance plugged into
the external network), and an advertisement is taken before anything
routes it (its hop limit still 255).  The meters (one per external
network, ``neighbour_meter``; not the resolve punt's, which a flood of
packets to the unresolved next hop fills) bound what the outside world
can make the agent read; the network's gateway, whose answer every router
of the host needs, has one of its own (``gateway_meter``), which no
instance can fill: port security lets an instance answer only for its own
addresses.  The agent learns only answers to what it asked.  Owner: the
address's (the router's gateway, the floating IP), compiled exactly where
``Engine.neighbour_sources`` names the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Controller, Field, Flow, Meter
from quantum_ovs.compiler.rules.common import F_ARP, F_IPV6, mk, reg

# Meter ids of the reply punts: above the per-port DHCP meters (which use
# the port's ofport, below OFPP_MAX 0xff00) and apart from the resolve
# punt's (pipeline.EXT_PUNT_METER_BASE).
NEIGHBOUR_METER_BASE = P.EXT_REPLY_METER_BASE
GATEWAY_METER_BASE = P.EXT_GW_REPLY_METER_BASE
# Where packets of an external network from its uplink are admitted.
TABLE = getattr(P, "EXT_ADMIT", P.SERVICES)
PRIORITY = 110  # above the ARP / ND responders of the same table
ARP_REPLY = 2
ND_NA = 136
# NeighbourSource.rank of a floating IP served here
RANK_FLOATING_IP = 2


@dataclass(frozen=True, slots=True)
class NeighbourSource:
    """An address the agent may ask from on an external network: ``ip``
    at ``mac``, of router ``router_id``; ``fixed``: a floating IP's fixed
    address (a packet from it leaves as ``ip``); ``rank``: 0 the gateway
    of a router this host is the active gateway host of, 1 a standby's,
    RANK_FLOATING_IP (2) a floating IP served here, at the MAC its ARP
    answers give."""

    ip: str
    mac: str
    router_id: str
    fixed: Optional[str]
    rank: int


def neighbour_meter(local_id: int) -> int:
    return NEIGHBOUR_METER_BASE + local_id


def gateway_meter(local_id: int) -> int:
    return GATEWAY_METER_BASE + local_id


def neighbour_reply_flows(local_id: int, cookie: int, address: str,
                          gateway: Optional[str] = None) -> list[Flow]:
    """Punt the replies to the agent's neighbour requests from ``address``
    (IPv4: ARP replies; IPv6: neighbour advertisements) on the external
    network with local id ``local_id``; those of ``gateway`` (the
    address's subnet's gateway, same family) through a meter of their
    own."""
    net = reg(P.REG_NET, local_id)
    acts = (Meter(neighbour_meter(local_id)), Controller())
    if ":" in address:
        base = (net, F_IPV6, Field("ip_proto", 58), Field("icmpv6_type", ND_NA),
                Field("ipv6_dst", address))
        by_gateway = Field("ipv6_nd_target", gateway) if gateway and ":" in gateway else None
    else:
        base = (net, F_ARP, Field("arp_op", ARP_REPLY), Field("arp_tpa", address))
        by_gateway = Field("arp_spa", gateway) if gateway and ":" not in gateway else None
    out = [Flow(TABLE, PRIORITY, mk(*base), acts, cookie)]
    if by_gateway is not None:
        out.append(Flow(TABLE, PRIORITY + 1, mk(*base, by_gateway),
                        (Meter(gateway_meter(local_id)), Controller()), cookie))
    return out
