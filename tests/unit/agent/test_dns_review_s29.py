"""The agent's DNS resolver, review of session 29."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode

from agent.responders import dns as R
from agent.responders import dns_wire as W
from quantum_ovs import model
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer

RESOLVER, RESOLVER_MAC = "169.254.0.1", "02:71:6f:76:73:01"


# ------------------------------------------------------------------ F3
def test_tcp_to_the_resolver_after_a_truncated_answer_is_not_flooded_to_neighbours():
    """Answers bigger than a client takes (512 bytes without EDNS, which
    glibc's stub resolver does not send by default) go out empty with TC
    set (dns_wire.build_response: "the client asks again over TCP").  A
    name shared by 40 ports is one.  The client then opens TCP to the
    resolver, 169.254.0.1:53, as it would to Neutron's dnsmasq (which
    serves TCP as well as UDP).  Nothing here serves it: the pipeline
    punts UDP 53 only, and TCP to the resolver's (virtual, never learnt)
    MAC is flooded as unknown unicast to the other ports of the network
    -- delivered to the neighbours, answered by no one (or by a neighbour
    that impersonates the resolver).  The instance cannot resolve the
    name.  DNS over TCP is not served (yet): the query is dropped, not
    flooded (the test asked for an answer at first; changed by the lead
    to what is fixed)."""
    net = model.Network("net", model.Segment("vxlan", segmentation_id=42))
    sub = model.Subnet("sub", "net", "10.0.0.0/24", gateway_ip="10.0.0.1")
    ports = [model.Port(f"p{i}", "net", "fa:16:3e:00:00:10",
                        fixed_ips=(model.FixedIP("sub", f"10.0.0.{i + 10}"),), dns_name="web")
             for i in range(40)]
    zone = R.build_zone(net, ports, [sub], "openstacklocal.")
    q = dns.message.make_query("web.openstacklocal.", "A")  # no EDNS, as glibc
    r = dns.message.from_wire(R.answer(W.parse_query(q.to_wire()), zone))
    assert r.flags & dns.flags.TC and not r.answer  # (precondition: go to TCP)

    v = make_host_view(networks=1, ports_per_net=2)
    tracer = Tracer(Engine.from_view(v).flows())
    port = v.local_ports()[0]
    ofports = dict(v.chassis.vif_ofports)
    ofport = ofports[port.id]
    tr = tracer.run({"in_port": ofport, "eth_src": port.mac_address, "eth_dst": RESOLVER_MAC,
                     "eth_type": 0x0800, "ipv4_src": port.ips[0], "ipv4_dst": RESOLVER,
                     "ip_proto": 6, "tcp_src": 33333, "tcp_dst": 53, "tcp_flags": 0x02})
    neighbours = [d.port for d in tr.outputs if d.port in ofports.values()]
    assert neighbours == [], f"TCP to the resolver flooded to the ports {neighbours}"
    assert not tr.outputs and not tr.controller, tr
    # (UDP to the resolver is still the agent's)
    tr = tracer.run({"in_port": ofport, "eth_src": port.mac_address, "eth_dst": RESOLVER_MAC,
                     "eth_type": 0x0800, "ipv4_src": port.ips[0], "ipv4_dst": RESOLVER,
                     "ip_proto": 17, "udp_src": 33333, "udp_dst": 53})
    assert tr.controller and not tr.outputs, tr


# ------------------------------------------------------------------ F2
def test_the_owners_neutron_leaves_out_are_not_named_and_their_ptr_is_forwarded():
    """As Neutron's DHCP agent (DHCP_CONFIG_NOT_REQUIRED_OWNERS): no name
    for a floating IP's, a DHCP, an HA router or a distributed port; a
    router's interface and gateway keep theirs.  The reverse name of a
    floating IP is forwarded (None: not ours), not NXDOMAIN: the
    operator's DNS may name it."""
    net = model.Network("net", model.Segment("flat", physical_network="ext"))
    sub = model.Subnet("sub", "net", "203.0.113.0/24", gateway_ip="203.0.113.1")

    def port(i, owner):
        return model.Port(f"p{i}", "net", f"fa:16:3e:00:00:{i:02x}", device_owner=owner,
                          fixed_ips=(model.FixedIP("sub", f"203.0.113.{i}"),))

    owners = {10: "network:floatingip", 11: "network:dhcp", 12: "network:router_ha_interface",
              13: "network:distributed", 14: "network:router_interface",
              15: "network:router_gateway", 16: "compute:nova"}
    zone = R.build_zone(net, [port(i, o) for i, o in owners.items()], [sub], "openstacklocal.")
    named = {ip for ips in zone.names.values() for ip in ips}
    assert named == {"203.0.113.14", "203.0.113.15", "203.0.113.16"}, named
    q = dns.message.make_query(R.reverse_name("203.0.113.10"), "PTR")
    assert R.answer(W.parse_query(q.to_wire()), zone) is None  # forwarded
    q = dns.message.make_query(R.reverse_name("203.0.113.99"), "PTR")  # no port's
    r = dns.message.from_wire(R.answer(W.parse_query(q.to_wire()), zone))
    assert r.rcode() == dns.rcode.NXDOMAIN
    q = dns.message.make_query("host-203-0-113-14.openstacklocal.", "A")
    r = dns.message.from_wire(R.answer(W.parse_query(q.to_wire()), zone))
    assert [str(rr) for rrset in r.answer for rr in rrset] == ["203.0.113.14"]
