"""Replies to the agent's neighbour resolution on external networks (issue 14).

When a router's next hop on an external network is not known from the
host view, the agent asks for it: an ARP request (IPv4) or a neighbour
solicitation (IPv6) from the router's gateway address or a floating IP
(agent/responders/neighbours.py).  The answer comes back from the
outside, addressed to that address: these flows hand it to the agent.

  SERVICES  reg6 = the external network, ARP reply to one of our
            addresses (arp_tpa) -> meter, controller
            reg6 = the external network, neighbour advertisement
            -> meter, controller

The meter (one per external network, ``neighbour_meter``) bounds what the
outside world can make the agent read.  Packets from the physical
network must reach SERVICES for these to match (issue 14's classify of
external networks sends ARP and ND there, as it does for the ARP
requests for floating IPs the host answers).
"""

from __future__ import annotations

from typing import Iterable

from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Controller, Field, Flow, Meter
from quantum_ovs.compiler.rules.common import F_ARP, F_IPV6, mk, reg

# Meter ids of the neighbour punts: above the per-port DHCP meters (which
# use the port's ofport, below OFPP_MAX 0xff00).
NEIGHBOUR_METER_BASE = 0x10000
PRIORITY = 110  # above the ARP / ND responders of the same table
ARP_REPLY = 2
ND_NA = 136


def neighbour_meter(local_id: int) -> int:
    return NEIGHBOUR_METER_BASE + local_id


def neighbour_reply_flows(local_id: int, addresses: Iterable[str], cookie: int) -> list[Flow]:
    """Punt the replies to our neighbour requests on the external network
    with local id ``local_id``: ARP replies to any of ``addresses`` (the
    gateway's and the floating IPs' IPv4 addresses), and neighbour
    advertisements if one of them is IPv6.  Owned by whoever owns the
    addresses (the router, ``cookie``)."""
    net = reg(P.REG_NET, local_id)
    acts = (Meter(neighbour_meter(local_id)), Controller())
    out = []
    v6 = False
    for ip in sorted(set(addresses)):
        if ":" in ip:
            v6 = True
            continue
        out.append(Flow(P.SERVICES, PRIORITY,
                        mk(net, F_ARP, Field("arp_op", ARP_REPLY), Field("arp_tpa", ip)),
                        acts, cookie))
    if v6:
        out.append(Flow(P.SERVICES, PRIORITY,
                        mk(net, F_IPV6, Field("ip_proto", 58), Field("icmpv6_type", ND_NA)),
                        acts, cookie))
    return out
