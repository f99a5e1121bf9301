"""Review s27 of the packet-in responders (DHCP, DNS, neighbours,
dispatch): hostile or unusual frames from instances, crafted here and
handed to the responders' entry points (no OVS)."""

from __future__ import annotations

import dns.message
from os_ken.lib.packet import ethernet, ipv4, packet, udp

from agent.openflow.encode import PacketIn
from agent.responders import neighbours as nb
from agent.responders.dispatch import DhcpDispatcher
from agent.responders.dns import DnsResponder, build_zone
from quantum_ovs import model
from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Field, Match
from tests.unit.agent import test_dhcp as d4

VM_MAC = "fa:16:3e:00:00:10"
ROUTER_MAC = "fa:16:3e:00:00:01"
NET = model.Network("net", model.Segment("vxlan", segmentation_id=42), mtu=1450)
SUB = model.Subnet("sub", "net", "10.0.0.0/24", gateway_ip="10.0.0.1")
VM = model.Port("a", "net", VM_MAC, fixed_ips=(model.FixedIP("sub", "10.0.0.10"),),
                dns_name="vm-a")
VM_OFPORT = 5


def _udp_frame(src, dst, dport, payload, ttl=64):
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=ROUTER_MAC, src=VM_MAC))
    p.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17, ttl=ttl))
    p.add_protocol(udp.udp(src_port=40000, dst_port=dport))
    p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def _dispatcher(sent):
    zone = build_zone(NET, [VM], [SUB], "openstacklocal.")
    resolver = nb.NeighbourResolver(lambda d, a: None, lambda: None, {})
    return DhcpDispatcher(60, lambda ofport: (VM, NET, {"sub": SUB}) if ofport == VM_OFPORT
                          else None,
                          lambda data, actions: sent.append((data, actions)), {},
                          neighbours=resolver, dns=DnsResponder(lambda n: zone))


# ---------------------------------------------------------------- finding 1
def test_a_routed_packet_to_an_outside_dns_server_is_not_answered_by_the_agent():
    """A packet an instance routes to an outside DNS server (8.8.8.8:53)
    whose next hop on the external network is not known is punted from
    L3_RESOLVE (gateway.external_flows installs that punt for every
    external network with routers here, tunnel-typed ones and those
    without a bridge mapping on this host included, which the neighbour
    resolver's context leaves out -- and at start, before the first
    context).  The resolver then says "not mine" and the dispatcher
    takes the routed packet for a query to the agent's own resolver: it
    answers it, from 8.8.8.8, with the network's zone (or the operator's
    upstream's answer).  Only the DNS punt of L3_ADMIT (to the network's
    DNS address) is a query to the agent."""
    sent = []
    d = _dispatcher(sent)
    query = dns.message.make_query("vm-a.openstacklocal.", "A").to_wire()
    frame = _udp_frame("10.0.0.10", "8.8.8.8", 53, query, ttl=63)
    cookie = cookies.cookie_for(cookies.KIND_EXTERNAL, "ext-net")
    pin = PacketIn(1, P.L3_RESOLVE, cookie, VM_OFPORT,
                   Match(Field("in_port", VM_OFPORT), Field("reg6", 9)), frame, len(frame))
    d.packet_in(pin)
    spoofed = [packet.Packet(f).get_protocol(ipv4.ipv4).src for f, _ in sent]
    assert sent == [], f"the agent answered a routed packet as its DNS, from {spoofed}"


# ---------------------------------------------------------------- finding 2
def _asked_hostname(p):
    frame = d4.client_frame(d4.DISCOVER, options=((55, bytes((1, 3, 6, 12, 15, 28))),))
    reply = d4.answer(frame, p=p)
    assert reply is not None
    return d4.Reply(reply).options


def test_dhcp_gives_the_ports_hostname_when_asked():
    """Neutron's dnsmasq has every port as ``mac,<hostname>[.domain],ip``
    in its hosts file (neutron/agent/linux/dhcp.py Dnsmasq._output_hosts_file,
    the name from the port's dns_assignment, _get_dns_assignment:
    ``host-<address>`` for a port without a dns_name); dnsmasq answers a
    client that asks for option 12 with that host name.  An image
    without cloud-init names itself so; here option 12 is never sent."""
    named = d4.port(dns_name="vm1")
    assert 12 in _asked_hostname(named), "no host name (option 12) for a port named vm1"
    assert _asked_hostname(named)[12].split(b".")[0] == b"vm1"
    unnamed = _asked_hostname(d4.port())
    assert unnamed.get(12, b"").split(b".")[0] == b"host-192-168-1-10"
