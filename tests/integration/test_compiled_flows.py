"""The compiler's output on a real switch: it must install (OVS checks
prerequisites the Python tracer cannot: this is how ct(commit) on a
conj_id flow without eth_type was found), dump back unchanged, and carry
traffic between two instances."""

from __future__ import annotations

import pytest

from agent.openflow import CookieScope
from quantum_ovs.compiler.compile import compile_flows
from quantum_ovs.compiler.flow import diff
from quantum_ovs.compiler.synth import (
    default_group,
    make_host_view,
    make_network,
    make_port,
    make_subnet,
)
from quantum_ovs.model import Chassis, HostView


@pytest.mark.parametrize("network_type", ["vxlan", "gre", "vlan", "flat", "local"])
def test_compiled_flow_set_installs_and_dumps_back(switch, network_type):
    view = make_host_view(
        networks=1 if network_type == "flat" else 2,
        ports_per_net=3,
        remote_hosts=2,
        remote_ports_per_net=2,
        network_type=network_type,
    )
    flows = compile_flows(view)
    ch = switch.channel
    ch.cookie = CookieScope.ours()  # the compiler's cookies, not the test scope
    ch.apply(diff(ch.dump_flows(), flows))
    dumped = ch.dump_flows()
    assert diff(dumped, flows).empty
    assert len(dumped) == len(flows)


def test_compiled_pipeline_carries_traffic(switch):
    """Two ports of one VXLAN network on this host, default security
    group: they ping each other through classify, port security,
    conntrack, the ARP responder and L2 lookup as compiled."""
    ovs, api, ch = switch.ovs, switch.api, switch.channel
    ch.cookie = CookieScope.ours()
    api.ensure_tunnel_port("br-int", "vxlan0", "vxlan", local_ip="192.168.0.1")
    ports = [make_port(0, 0), make_port(0, 1)]
    insts = [ovs.add_instance(p.ips[0], mac=p.mac_address, iface_id=p.id) for p in ports]
    ofports = tuple((p.id, ovs.ofport(i.port)) for p, i in zip(ports, insts))
    view = HostView(
        host="host-a",
        tunnel_ip="192.168.0.1",
        networks=(make_network(0, "vxlan", 1),),
        subnets=(make_subnet(0),),
        ports=tuple(ports),
        security_groups=(default_group(members=[p.ips[0] for p in ports]),),
        chassis=Chassis(ofports, (("vxlan", api.wait_ofport("vxlan0")),), ()),
    )
    flows = compile_flows(view)
    a, b = insts
    assert not a.ping(b.ip)  # nothing installed yet
    ch.apply(diff(ch.dump_flows(), flows))
    assert a.ping(b.ip, count=2)
    assert b.ping(a.ip)


@pytest.mark.parametrize("hosts", [("gw-1", "gw-2"), ("gw-1", "host-a")])
def test_scoped_port_forwarding_reply_flows_install_and_dump_back(switch, hosts):
    # SNAT off, a port forwarding range to a subnet of another address
    # scope: its replies are matched by masked source ports (udp_src /
    # tcp_src with a mask, L3_SNAT), on a compute host and on a standby
    # gateway host (the redirected ones dropped there)
    import dataclasses

    from quantum_ovs.compiler.engine import Engine
    from quantum_ovs.compiler.synth import add_external
    from quantum_ovs.model import PortForwarding
    from tests.fixtures.scenario import base_view

    v = add_external(base_view(), hosts=hosts, fips=0)
    r = v.routers[0]
    (fip,) = [f for f in r.floating_ips if f.port_forwardings]
    pfs = (PortForwarding("pf-u", "udp", "port-0-0", "10.0.0.10", 1000, 1999, 1000, 1999),
           PortForwarding("pf-t", "tcp", "port-0-0", "10.0.0.10", 2222, 2222, 22, 22))
    ifcs = tuple(dataclasses.replace(i, address_scope_id="s1" if i.network_id == "net-0"
                                     else None) for i in r.interfaces)
    r = dataclasses.replace(r, interfaces=ifcs,
                            gateway=dataclasses.replace(r.gateway, enable_snat=False),
                            floating_ips=(dataclasses.replace(fip, port_forwardings=pfs),))
    flows = Engine.from_view(v.replace(routers=(r,) + v.routers[1:])).flows()
    masked = [f for f in flows if f.table == 47 and f.priority in (165, 166)
              and any(m.name == "udp_src" and m.mask for m in f.match)]
    assert len(masked) == (14 if hosts[1] == "host-a" else 7)
    ch = switch.channel
    ch.cookie = CookieScope.ours()
    ch.apply(diff(ch.dump_flows(), flows))
    dumped = ch.dump_flows()
    assert diff(dumped, flows).empty
    assert len(dumped) == len(flows)
