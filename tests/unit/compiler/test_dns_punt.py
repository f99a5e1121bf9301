"""DNS from a local port to its network's DNS address (IPv4: the
link-local 169.254.0.1, the DHCP fallback server address, whose ARP the
pipeline answers) reaches the agent through the port's DHCP meter; DNS to
any other address (the gateway included) goes on as traffic."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import FixedIP, Subnet


def _view(**subnet_changes):
    v = make_host_view(networks=1, ports_per_net=2)
    if subnet_changes:
        v = v.replace(subnets=tuple(dataclasses.replace(s, **subnet_changes)
                                    for s in v.subnets))
    return v


def _dns(tracer, v, dst, dport=53):
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    return ofport, tracer.run({
        "in_port": ofport, "eth_src": port.mac_address, "eth_dst": "fa:16:3e:00:00:01",
        "eth_type": 0x0800, "ipv4_src": port.ips[0], "ipv4_dst": dst, "ip_proto": 17,
        "udp_src": 33333, "udp_dst": dport})


def test_dns_to_the_link_local_resolver_is_punted_metered():
    v = _view()
    tracer = Tracer(Engine.from_view(v).flows())
    ofport, tr = _dns(tracer, v, "169.254.0.1")
    assert tr.controller and tr.meters == [ofport] and not tr.outputs


def test_dns_elsewhere_is_not_punted():
    v = _view()
    tracer = Tracer(Engine.from_view(v).flows())
    for dst in ("8.8.8.8", v.subnets[0].gateway_ip):
        _, tr = _dns(tracer, v, dst)
        assert not tr.controller
    _, tr = _dns(tracer, v, "169.254.0.1", dport=54)
    assert not tr.controller


def test_gatewayless_subnet_too():
    v = _view(gateway_ip=None)
    tracer = Tracer(Engine.from_view(v).flows())
    _, tr = _dns(tracer, v, "169.254.0.1")
    assert tr.controller


@pytest.mark.parametrize("gateway", [None, "10.0.0.1"])
def test_link_local_dns_address_answers_arp(gateway):
    v = _view(gateway_ip=gateway)
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    reply = _arp_reply(Tracer(Engine.from_view(v).flows()), port, ofport, "169.254.0.1")
    assert reply.get("arp_spa") == "169.254.0.1" and reply.get("arp_sha") == "02:71:6f:76:73:01"
    assert reply.port == ofport


def _arp_reply(tracer, port, ofport, target):
    """The ARP reply the pipeline makes to ``port`` asking for ``target``."""
    tr = tracer.run({"in_port": ofport, "eth_src": port.mac_address,
                     "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
                     "arp_spa": port.ips[0], "arp_sha": port.mac_address,
                     "arp_tpa": target})
    [reply] = [d for d in tr.outputs if d.get("arp_op") == 2]
    return reply


def test_no_dhcp_no_dns_punt():
    v = _view(enable_dhcp=False)
    tracer = Tracer(Engine.from_view(v).flows())
    _, tr = _dns(tracer, v, v.subnets[0].gateway_ip)
    assert not tr.controller


def test_a_port_at_the_dns_address_does_not_stop_the_compile():
    """A tenant's 169.254.0.0/16 subnet may give a port 169.254.0.1, the
    link-local DNS address: the service's ARP answer wins (the two answers
    were one flow twice, a CompileError that stopped every change on the
    host); incrementally too."""
    from quantum_ovs.compiler.engine import compile_flows
    from quantum_ovs.model import Delta, FixedIP, Subnet
    v = _view()
    sub = Subnet("sub-ll", v.networks[0].id, "169.254.0.0/16", gateway_ip=None)
    other, squatter = v.local_ports()[0], v.local_ports()[1]
    moved = dataclasses.replace(squatter, fixed_ips=squatter.fixed_ips + (
        FixedIP("sub-ll", "169.254.0.1"),))
    e = Engine.from_view(v)
    e.apply(Delta(revision=e.revision + 1, subnets=(sub,), ports=(moved,)))
    assert e.flows() == compile_flows(e.view(), e.alloc)
    v2 = e.view()
    Engine.from_view(v2)  # (raised CompileError)
    ofport = dict(v2.chassis.vif_ofports)[other.id]
    reply = _arp_reply(Tracer(e.flows()), other, ofport, "169.254.0.1")
    assert reply.get("arp_sha") == "02:71:6f:76:73:01"


@pytest.mark.parametrize("servers", [(), ("192.0.2.53",)])
def test_dhcpv6_subnet_dns_to_its_gateway_is_punted(servers):
    v = _v6_view(servers)
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    tr = Tracer(Engine.from_view(v).flows()).run(_dns6(port, ofport, "fd00:1::1"))
    assert tr.controller and tr.meters == [ofport] and not tr.outputs


def test_dhcpv6_subnet_with_its_own_resolvers_leaves_its_gateway_alone():
    """A DHCPv6 subnet naming IPv6 resolvers: DHCPv6 hands out those, not
    the gateway, so DNS to the gateway address is for whatever answers
    there (a router instance's resolver) and goes on as traffic (found by
    review: the agent took it all the same)."""
    v = _v6_view(("2001:db8::53",))
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    tr = Tracer(Engine.from_view(v).flows()).run(_dns6(port, ofport, "fd00:1::1"))
    assert not tr.controller


def _v6_view(servers):
    v = make_host_view(networks=1, ports_per_net=2)
    net = v.networks[0].id
    sub6 = Subnet("sub6", net, "fd00:1::/64", 6, "fd00:1::1", ipv6_address_mode="dhcpv6-stateful",
                  ipv6_ra_mode="dhcpv6-stateful", dns_nameservers=servers)
    ports = tuple(dataclasses.replace(
        p, fixed_ips=p.fixed_ips + (FixedIP("sub6", f"fd00:1::{i + 10}"),))
        for i, p in enumerate(v.ports))
    return v.replace(subnets=v.subnets + (sub6,), ports=ports)


def _dns6(port, ofport, dst):
    return {"in_port": ofport, "eth_src": port.mac_address, "eth_dst": "fa:16:3e:00:00:01",
            "eth_type": 0x86DD, "ipv6_src": next(ip for ip in port.ips if ":" in ip),
            "ipv6_dst": dst, "ip_proto": 17, "udp_src": 33333, "udp_dst": 53}
