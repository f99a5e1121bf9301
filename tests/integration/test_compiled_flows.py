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
