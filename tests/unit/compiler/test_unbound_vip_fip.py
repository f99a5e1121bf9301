"""A floating IP of a port bound to no host (an Octavia or keepalived VIP
port: the address is on an amphora's interface, which lists it as an
allowed address pair) is served by the router's active gateway host, as
Neutron's DVR routers leave it to the central SNAT router: DNAT there to
the VIP, routed to the port that holds the pair; its replies, redirected
to the gateway host like any outbound traffic of the router, are turned
back to the floating IP there."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.flow import CT_EST, CT_RPL
from quantum_ovs.compiler.synth import EXT_NET, router_mac
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, FixedIP, FloatingIP, Port
from tests.fixtures.scenario import HOST, PATCH_OFPORT, change
from tests.unit.compiler.test_external import INET_MAC, INTERNET, _engine, _undnat, _view

VIP = "10.0.0.50"
FIP_ADDR = "172.24.1.50"
VIP_MAC = "fa:16:3e:00:00:50"


def _octavia(hosts, holder="port-0-2", vip_host=None):
    """The VIP port (no host), ``holder`` (the amphora) with the VIP as
    an address pair, a floating IP on the VIP port."""
    v = _view(hosts=hosts)
    vip = Port(id="vip-port", network_id="net-0", mac_address=VIP_MAC,
               fixed_ips=(FixedIP("subnet-0", VIP),), host=vip_host,
               security_groups=("sg-default",))
    ports = tuple(dataclasses.replace(p, allowed_address_pairs=(AddressPair(VIP, p.mac_address),))
                  if p.id == holder else p for p in v.ports) + (vip,)
    r = v.routers[0]
    fip = FloatingIP("fip-vip", FIP_ADDR, EXT_NET, vip.id, VIP, VIP_MAC)
    return v.replace(ports=ports, routers=(dataclasses.replace(
        r, floating_ips=r.floating_ips + (fip,)),))


def _inbound(e):
    return Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC, "eth_dst": VIP_MAC,
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": INTERNET, "ipv4_dst": FIP_ADDR,
        "tcp_src": 40000, "tcp_dst": 80, "nw_ttl": 64})


def test_the_active_gateway_host_dnats_an_unbound_vips_floating_ip_to_its_holder():
    e = _engine(_octavia((HOST, "gw-2")))
    holder = e.ports["port-0-2"]  # on host-r0
    out = _inbound(e)
    (d,) = out.outputs
    assert (d.get("ipv4_dst"), d.get("eth_dst")) == (VIP, holder.mac_address), out.format()
    assert d.get("tun_ipv4_dst") == "192.168.0.2"  # host-r0's tunnel
    assert d.get("eth_src") == router_mac(0)
    # and it answers ARP for the floating IP with the VIP port's MAC
    arp = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
        "arp_spa": INTERNET, "arp_sha": INET_MAC, "arp_tpa": FIP_ADDR})
    assert [o.get("arp_sha") for o in arp.outputs] == [VIP_MAC]


def test_the_vips_replies_redirected_to_the_gateway_leave_as_the_floating_ip():
    e = _engine(_octavia((HOST, "gw-2")))
    gw = e.routers["router-1"].gateway
    holder = e.ports["port-0-2"]
    out = Tracer(e.flows()).run({
        "in_port": 21, "tunnel_id": gw.redirect_key, "eth_src": holder.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": VIP,
        "ipv4_dst": INTERNET, "tcp_src": 80, "tcp_dst": 40000, "nw_ttl": 63},
        ct_state=CT_EST | CT_RPL, nat=_undnat((VIP,), FIP_ADDR))
    (d,) = out.outputs
    assert (d.port, d.get("ipv4_src"), d.get("eth_src")) == (PATCH_OFPORT, FIP_ADDR, VIP_MAC), \
        out.format()


def test_only_the_active_gateway_host_serves_it_until_the_port_is_bound():
    for hosts in (("gw-1", HOST), ("gw-1", "gw-2")):  # standby, compute
        e = _engine(_octavia(hosts))
        assert not e.desired.owner_flows(("floating-ip", "fip-vip")), hosts
        assert not _inbound(e).outputs
    # bound (to another host): the active gateway host lets it go, incrementally
    e = _engine(_octavia((HOST, "gw-2")))
    assert e.desired.owner_flows(("floating-ip", "fip-vip"))
    vip = dataclasses.replace(e.ports["vip-port"], host="host-r1")
    change(e, ports=(vip,))
    assert not e.desired.owner_flows(("floating-ip", "fip-vip"))
    assert e.flows() == _engine(_octavia((HOST, "gw-2"), vip_host="host-r1")).flows()
    # and unbound again, it comes back
    change(e, ports=(dataclasses.replace(vip, host=None),))
    assert e.flows() == _engine(_octavia((HOST, "gw-2"))).flows()
