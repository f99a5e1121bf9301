"""DNS from a local port to its network's DNS address (the DHCP server
address: the subnet's gateway, 169.254.0.1 without one) reaches the agent
through the port's DHCP meter; DNS to any other address goes on as
traffic, and the network's other flows are unchanged."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer


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


def test_dns_to_the_gateway_is_punted_metered():
    v = _view()
    gw = v.subnets[0].gateway_ip
    tracer = Tracer(Engine.from_view(v).flows())
    ofport, tr = _dns(tracer, v, gw)
    assert tr.controller and tr.meters == [ofport] and not tr.outputs


def test_dns_elsewhere_and_other_ports_are_not_punted():
    v = _view()
    tracer = Tracer(Engine.from_view(v).flows())
    _, tr = _dns(tracer, v, "8.8.8.8")
    assert not tr.controller
    _, tr = _dns(tracer, v, v.subnets[0].gateway_ip, dport=54)
    assert not tr.controller


def test_gatewayless_subnet_uses_the_dhcp_fallback_address():
    v = _view(gateway_ip=None)
    tracer = Tracer(Engine.from_view(v).flows())
    _, tr = _dns(tracer, v, "169.254.0.1")
    assert tr.controller


def test_link_local_dns_address_answers_arp():
    v = _view(gateway_ip=None)
    tracer = Tracer(Engine.from_view(v).flows())
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    tr = tracer.run({"in_port": ofport, "eth_src": port.mac_address,
                     "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
                     "arp_spa": port.ips[0], "arp_sha": port.mac_address,
                     "arp_tpa": "169.254.0.1"})
    [reply] = [d for d in tr.outputs if d.get("arp_op") == 2]
    assert reply.get("arp_spa") == "169.254.0.1" and reply.get("arp_sha") == "02:71:6f:76:73:01"
    assert reply.port == ofport
    # ... not on a subnet with a gateway (the router answers for that).
    v = _view()
    tr = Tracer(Engine.from_view(v).flows()).run({
        "in_port": ofport, "eth_src": port.mac_address, "eth_dst": "ff:ff:ff:ff:ff:ff",
        "eth_type": 0x0806, "arp_op": 1, "arp_spa": port.ips[0],
        "arp_sha": port.mac_address, "arp_tpa": "169.254.0.1"})
    assert all(d.get("arp_op") != 2 for d in tr.outputs)


def test_no_dhcp_no_dns_punt():
    v = _view(enable_dhcp=False)
    tracer = Tracer(Engine.from_view(v).flows())
    _, tr = _dns(tracer, v, v.subnets[0].gateway_ip)
    assert not tr.controller
