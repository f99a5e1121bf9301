"""The metadata service in flows, through the tracer: requests to
169.254.169.254:80 reach the host's proxy port with a source address
that names the asking port (its ofport), replies go back to that port
only, and a forged source gets nothing."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.rules import metadata as md
from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import default_group, make_network, make_port, make_subnet
from quantum_ovs.compiler.trace import trace
from quantum_ovs.model import Chassis, FixedIP, HostView

PROXY = 900
GW_MAC = "fa:16:3e:ff:ff:01"


def _view(proxy=PROXY):
    a = make_port(0, 0)
    # b: the same address as a, on another network
    b = dataclasses.replace(make_port(1, 0), fixed_ips=(FixedIP("sub-1", a.ips[0]),
                                                         FixedIP("sub-1", "10.0.1.77")))
    c = make_port(0, 1)
    ports = (a, b, c)
    return HostView(
        host="host-a", networks=(make_network(0), make_network(1)),
        subnets=(make_subnet(0), make_subnet(1)), ports=ports,
        security_groups=(default_group(members=[ip for p in ports for ip in p.ips]),),
        chassis=Chassis(vif_ofports=(("port-0-0", 5), ("port-0-1", 7), ("port-1-0", 6)),
                        metadata_ofport=proxy))


@pytest.fixture(scope="module")
def engine():
    return Engine.from_view(_view())


def _req(engine, pid, src_ip=None, mac=None, dst=md.METADATA_IP, dport=80, in_port=None):
    p = engine.ports[pid]
    return trace(engine.flows(), {
        "in_port": in_port or engine.vif_ofports[pid], "eth_src": mac or p.mac_address,
        "eth_dst": GW_MAC, "eth_type": 0x0800, "ip_proto": 6,
        "ipv4_src": src_ip or p.ips[0], "ipv4_dst": dst, "tcp_src": 40000, "tcp_dst": dport})


def _reply(engine, to):
    return trace(engine.flows(), {
        "in_port": PROXY, "eth_src": md.METADATA_MAC, "eth_dst": md.GATEWAY_MAC,
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": md.METADATA_IP, "ipv4_dst": to,
        "tcp_src": 80, "tcp_dst": 40000})


def test_request_reaches_the_proxy_named_by_its_port(engine):
    for pid, ofport in (("port-0-0", 5), ("port-1-0", 6)):
        t = _req(engine, pid)
        assert t.ports == [PROXY]
        d = t.outputs[0]
        src = d.get("ipv4_src")
        assert md.parse_source(src) == (ofport, 0, 4)
        assert d.get("ipv4_dst") == md.METADATA_IP and d.get("eth_dst") == md.METADATA_MAC
    # same fixed IP on two networks: two different sources
    assert _req(engine, "port-0-0").outputs[0].get("ipv4_src") != \
        _req(engine, "port-1-0").outputs[0].get("ipv4_src")
    # the second fixed IP of a port is index 1
    t = _req(engine, "port-1-0", src_ip="10.0.1.77")
    assert md.parse_source(t.outputs[0].get("ipv4_src")) == (6, 1, 4)


def test_reply_goes_back_to_the_asking_port_only(engine):
    t = _reply(engine, md.source_address(6, 1))
    assert t.ports == [6]
    d = t.outputs[0]
    assert d.get("ipv4_dst") == "10.0.1.77" and d.get("ipv4_src") == md.METADATA_IP
    assert d.get("eth_dst") == engine.ports["port-1-0"].mac_address
    # nobody on an unknown source address; nothing else from the proxy
    assert _reply(engine, md.source_address(99, 0)).dropped
    t = trace(engine.flows(), {"in_port": PROXY, "eth_src": md.METADATA_MAC,
                               "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
                               "arp_spa": md.METADATA_IP, "arp_tpa": "10.0.0.10"})
    assert t.dropped


def test_forged_source_gets_nothing(engine):
    # c (port-0-1, ofport 7) claims a's address (and MAC): port security
    a = engine.ports["port-0-0"]
    assert _req(engine, "port-0-1", src_ip=a.ips[0]).ports != [PROXY]
    assert _req(engine, "port-0-1", src_ip=a.ips[0], mac=a.mac_address).ports != [PROXY]
    # without port security c's forged address still matches only c's own
    # flows: it does not reach the proxy as a
    open_c = dataclasses.replace(engine.ports["port-0-1"], port_security_enabled=False)
    e = Engine.from_view(_view().replace(ports=tuple(
        open_c if p.id == open_c.id else p for p in _view().ports)))
    t = _req(e, "port-0-1", src_ip=a.ips[0], mac=a.mac_address)
    assert PROXY not in t.ports
    t = _req(e, "port-0-1")
    assert [md.parse_source(d.get("ipv4_src"))[0] for d in t.outputs] == [7]


def test_other_destinations_and_ports_are_not_steered(engine):
    assert PROXY not in _req(engine, "port-0-0", dport=443).ports
    assert PROXY not in _req(engine, "port-0-0", dst="169.254.169.253").ports


def test_arp_and_nd_for_the_metadata_address(engine):
    a = engine.ports["port-0-0"]
    t = trace(engine.flows(), {"in_port": 5, "eth_src": a.mac_address,
                               "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806,
                               "arp_op": 1, "arp_sha": a.mac_address, "arp_spa": a.ips[0],
                               "arp_tpa": md.METADATA_IP})
    assert t.ports == [5] and t.outputs[0].get("arp_sha") == md.METADATA_MAC
    ll = link_local(a.mac_address)
    t = trace(engine.flows(), {"in_port": 5, "eth_src": a.mac_address,
                               "eth_dst": "33:33:ff:fe:a9:fe", "eth_type": 0x86DD,
                               "ip_proto": 58, "icmpv6_type": 135, "ipv6_src": ll,
                               "ipv6_dst": "ff02::1:fffe:a9fe",
                               "ipv6_nd_target": md.METADATA_IPV6})
    assert t.ports == [5] and t.outputs[0].get("icmpv6_type") == 136


def test_ipv6_link_local_request_and_reply(engine):
    a = engine.ports["port-0-0"]
    ll = link_local(a.mac_address)
    t = trace(engine.flows(), {"in_port": 5, "eth_src": a.mac_address, "eth_dst": md.METADATA_MAC,
                               "eth_type": 0x86DD, "ip_proto": 6, "ipv6_src": ll,
                               "ipv6_dst": md.METADATA_IPV6, "tcp_src": 4000, "tcp_dst": 80})
    assert t.ports == [PROXY]
    d = t.outputs[0]
    assert md.parse_source(d.get("ipv6_src")) == (5, 0, 6)
    assert d.get("ipv6_dst") == md.PROXY_IPV6
    t = trace(engine.flows(), {"in_port": PROXY, "eth_src": md.METADATA_MAC,
                               "eth_dst": md.GATEWAY_MAC, "eth_type": 0x86DD, "ip_proto": 6,
                               "ipv6_src": md.PROXY_IPV6, "ipv6_dst": d.get("ipv6_src"),
                               "tcp_src": 80, "tcp_dst": 4000})
    assert t.ports == [5]
    assert t.outputs[0].get("ipv6_src") == md.METADATA_IPV6
    assert t.outputs[0].get("ipv6_dst") == ll


def test_no_proxy_no_flows():
    e = Engine.from_view(_view(proxy=0))
    assert not [f for f in e.flows() if f.cookie == md.COOKIE]
    assert PROXY not in _req(e, "port-0-0").ports
    # the proxy appears: its flows and the ports' come incrementally
    e.stats.reset()
    e.set_chassis(dataclasses.replace(e.chassis(), metadata_ofport=PROXY))
    assert e.stats.full_recomputes == 0
    assert _req(e, "port-0-0").ports == [PROXY]
    assert e.flows() == Engine.from_view(_view()).flows()


def test_source_addresses_are_canonical():
    """Written by hand; what ipaddress (and the switch's dump) would write."""
    for ofport in (1, 9, 0x10, 0xFF, 0x100, 0x1234, md.MAX_OFPORT):
        for i in (0, 1, 0x3F):
            v4 = md.source_address(ofport, i)
            assert v4 == str(md.SOURCE_NET.network_address + ((ofport << md.INDEX_BITS) | i))
            assert ipaddress.ip_address(v4) in md.SOURCE_NET
        v6 = md.source_address(ofport, 0, 6)
        assert v6 == str(md.SOURCE_NET6.network_address + (ofport << 16))


def test_source_address_round_trip():
    for ofport in (1, 2, 300, md.MAX_OFPORT):
        for i in (0, 1, 63):
            assert md.parse_source(md.source_address(ofport, i)) == (ofport, i, 4)
        assert md.parse_source(md.source_address(ofport, 0, 6)) == (ofport, 0, 6)
    assert md.parse_source("10.0.0.1") is None
    assert md.parse_source("::ffff:" + md.source_address(5, 2)) == (5, 2, 4)
    with pytest.raises(ValueError):
        md.source_address(0xFF00, 0)
