"""Replies to the agent's neighbour resolution on external networks (issue 14).

When a router's next hop on an external network is not known from the
host view, the agent asks for it: an ARP request (IPv4) or a neighbour
solicitation (IPv6) from the router's gateway address or a floating IP
(agent/responders/neighbours.py).  The answer comes back from the
outside, addressed to that address: these flows hand it to the agent.

  EXT_ADMIT (SERVICES before that table exists)
            reg6 = the external network, ARP reply (to one of our
            ``addresses`` if given: arp_tpa) -> meter, controller;
            from one of the network's ``gateways`` (arp_spa) -> its own
            meter, controller;
            with ``ipv6``: neighbour advertisements -> meter, controller

The meter (one per external network, ``neighbour_meter``; not the resolve
punt's, which a flood of packets to the unresolved next hop fills) bounds
what the outside world can make the agent read; the network's gateways,
whose answer every router of the host needs, have one of their own
(``gateway_meter``), which no instance on the network can fill (port
security lets an instance answer for its own addresses only), or an
instance flooding ARP replies would starve the gateway's refresh.  The
agent learns only answers to what it asked.  Owner: the external network
(the same flows whatever its routers and floating IPs are).
"""

from __future__ import annotations

from typing import Iterable, Optional

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


def neighbour_meter(local_id: int) -> int:
    return NEIGHBOUR_METER_BASE + local_id


def gateway_meter(local_id: int) -> int:
    return GATEWAY_METER_BASE + local_id


def neighbour_reply_flows(local_id: int, cookie: int, gateways: Iterable[str] = (),
                          addresses: Optional[Iterable[str]] = None,
                          ipv6: bool = False) -> list[Flow]:
    """Punt the replies to the agent's neighbour requests on the external
    network with local id ``local_id``: ARP replies (to any of
    ``addresses``, the gateways' and floating IPs' IPv4 addresses, if
    given; else all), those from its subnets' ``gateways`` through a
    meter of their own, and with ``ipv6`` neighbour advertisements."""
    net = reg(P.REG_NET, local_id)
    acts = (Meter(neighbour_meter(local_id)), Controller())
    base = (net, F_ARP, Field("arp_op", ARP_REPLY))
    if addresses is None:
        out = [Flow(TABLE, PRIORITY, mk(*base), acts, cookie)]
    else:
        out = [Flow(TABLE, PRIORITY, mk(*base, Field("arp_tpa", ip)), acts, cookie)
               for ip in sorted(set(addresses)) if ":" not in ip]
    gw_acts = (Meter(gateway_meter(local_id)), Controller())
    out += [Flow(TABLE, PRIORITY + 1, mk(*base, Field("arp_spa", ip)), gw_acts, cookie)
            for ip in sorted(set(gateways)) if ":" not in ip]
    if ipv6:
        out.append(Flow(TABLE, PRIORITY,
                        mk(net, F_IPV6, Field("ip_proto", 58), Field("icmpv6_type", ND_NA)),
                        acts, cookie))
    return out
