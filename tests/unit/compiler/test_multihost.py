"""Two hosts compiled from one model: a packet leaves host A over the
tunnel and is traced on into host B."""

from __future__ import annotations

import pytest

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_NEW, OFPVID_PRESENT
from quantum_ovs.compiler.synth import (
    default_group,
    make_network,
    make_port,
    make_subnet,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import Chassis, HostView, RemoteHost

IPS = {"host-a": "192.168.0.1", "host-b": "192.168.0.2", "host-c": "192.168.0.3"}


def world(network_type="vxlan"):
    """net-0 and net-1; net-0 has a port on each of hosts a, b, c; net-1 one
    port on a and one on b."""
    nets = [make_network(0, network_type, 1), make_network(1, network_type, 2)]
    ports = [make_port(0, 0, "host-a"), make_port(0, 1, "host-b"), make_port(0, 2, "host-c"),
             make_port(1, 0, "host-a"), make_port(1, 1, "host-b")]
    group = default_group(members=[ip for p in ports for ip in p.ips])
    return nets, ports, group


def host_view(host, nets, ports, group):
    mine = [p for p in ports if p.host == host]
    my_nets = {p.network_id for p in mine}
    seen = [p for p in ports if p.network_id in my_nets]
    remote = sorted({p.host for p in seen if p.host != host})
    vif = tuple((p.id, 10 + i) for i, p in enumerate(mine))
    return HostView(
        host=host, tunnel_ip=IPS[host],
        networks=tuple(n for n in nets if n.id in my_nets),
        subnets=tuple(make_subnet(int(n.id[-1])) for n in nets if n.id in my_nets),
        ports=tuple(seen), security_groups=(group,),
        remote_hosts=tuple(RemoteHost(h, IPS[h]) for h in remote),
        chassis=Chassis(vif, (("vxlan", 1),), (("physnet1", 3),)),
    )


@pytest.fixture(scope="module")
def hosts():
    nets, ports, group = world()
    out = {}
    for h in IPS:
        view = host_view(h, nets, ports, group)
        out[h] = (view, Tracer(Engine.from_view(view).flows()))
    return out, {p.id: p for p in ports}


def deliver(hosts, ports, src_id, dst_mac, dst_ip, **extra):
    """Send from src (on its host); follow tunnel outputs to the receiving
    hosts.  Returns {(host, ofport)} reached by VIFs."""
    views, _ = hosts, None
    src = ports[src_id]
    view, tracer = views[src.host]
    pkt = {"in_port": dict(view.chassis.vif_ofports)[src_id], "eth_src": src.mac_address,
           "eth_dst": dst_mac, "eth_type": 0x0800, "ipv4_src": src.ips[0], "ipv4_dst": dst_ip,
           "ip_proto": 6, "tcp_dst": 22}
    pkt.update(extra)
    reached = set()
    first = tracer.run(pkt, CT_NEW)
    by_ip = {ip: h for h, ip in IPS.items()}
    for d in first.outputs:
        if d.port == 1:  # the tunnel port
            h = by_ip[d.get("tun_ipv4_dst")]
            rview, rtracer = views[h]
            inner = {k: v for k, v in d.fields.items()
                     if k.startswith(("eth_", "ipv4_", "ip_proto", "tcp_", "arp_"))}
            t = rtracer.run({"in_port": 1, "tunnel_id": d.get("tunnel_id"),
                             "tun_ipv4_src": IPS[src.host], **inner}, CT_NEW)
            reached.update((h, p) for p in t.ports)
        else:
            reached.add((src.host, d.port))
    return reached


def ofport_of(hosts, ports, pid):
    p = ports[pid]
    return (p.host, dict(hosts[p.host][0].chassis.vif_ofports)[pid])


def test_unicast_across_hosts(hosts):
    views, ports = hosts
    dst = ports["port-0-1"]
    reached = deliver(views, ports, "port-0-0", dst.mac_address, dst.ips[0])
    assert reached == {ofport_of(views, ports, "port-0-1")}


def test_broadcast_reaches_every_port_of_the_network_once(hosts):
    views, ports = hosts
    reached = deliver(views, ports, "port-0-0", "ff:ff:ff:ff:ff:ff", "10.0.0.255",
                      ip_proto=17, udp_dst=9999, tcp_dst=0)
    assert reached == {ofport_of(views, ports, "port-0-1"), ofport_of(views, ports, "port-0-2")}


def test_no_leak_across_hosts_between_networks(hosts):
    views, ports = hosts
    other = ports["port-1-1"]  # net-1 on host-b
    reached = deliver(views, ports, "port-0-0", other.mac_address, other.ips[0])
    assert ofport_of(views, ports, "port-1-1") not in reached


def test_vlan_between_hosts_keeps_the_tag():
    nets, ports, group = world("vlan")
    a = host_view("host-a", nets, ports, group)
    t = Tracer(Engine.from_view(a).flows())
    src, dst = ports[0], ports[1]
    out = t.run({"in_port": 10, "eth_src": src.mac_address, "eth_dst": dst.mac_address,
                 "eth_type": 0x0800, "ipv4_src": src.ips[0], "ipv4_dst": dst.ips[0],
                 "ip_proto": 6, "tcp_dst": 22}, CT_NEW)
    assert out.ports == [3] and out.outputs[0].get("vlan_vid") == 100 | OFPVID_PRESENT
