"""Tagged frames from an instance never enter the network (issue 11).

Open vSwitch matches ``eth_type`` (and the L3/L4 fields) on what follows an
802.1Q/802.1ad header, so port security's "this MAC, this address" flows
alone let a tagged copy of a legitimate frame through: delivered tagged to
the network's other ports, over the tunnels, double-tagged out of a VLAN
uplink, and out of a flat network's uplink with its tag as it was -- where
the other hosts took it in on the VLAN network of that id (another
project's).  Found on real OVS by tests/integration/test_isolation.py.
"""

from __future__ import annotations

import pytest

from quantum_ovs.compiler.flow import OFPVID_PRESENT
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import Port

from tests.fixtures.scenario import BROADCAST, PATCH_OFPORT, Scenario

TAGS = [100 | OFPVID_PRESENT, 7 | OFPVID_PRESENT, 0 | OFPVID_PRESENT]  # 0: priority tag


@pytest.fixture(scope="module")
def tunnel_net():
    return Scenario.build(networks=1, ports_per_net=3, remote_hosts=1, remote_ports_per_net=1)


@pytest.fixture(scope="module")
def vlan_net():
    return Scenario.build(networks=1, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1,
                          network_type="vlan")


def _broadcast(s, src, **kw):
    p = s.port(src)
    return s.send(src, eth_dst=BROADCAST, eth_type=0x0800, ipv4_src=p.ips[0],
                  ipv4_dst="255.255.255.255", ip_proto=17, udp_src=40000, udp_dst=40001, **kw)


@pytest.fixture(scope="module")
def flat_net():
    return Scenario.build(networks=1, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1,
                          network_type="flat")


def test_untagged_frames_pass(tunnel_net, vlan_net, flat_net):
    s = tunnel_net
    assert s.udp("port-0-0", "port-0-1").ports == [s.ofport("port-0-1")]
    t = _broadcast(s, "port-0-0")
    assert {s.ofport("port-0-1"), s.ofport("port-0-2")} <= set(t.ports)
    assert PATCH_OFPORT in _broadcast(vlan_net, "port-0-0").ports
    assert PATCH_OFPORT in _broadcast(flat_net, "port-0-0").ports


@pytest.mark.parametrize("tag", TAGS)
def test_tagged_frames_are_dropped(tunnel_net, vlan_net, flat_net, tag):
    s = tunnel_net
    assert s.udp("port-0-0", "port-0-1", vlan_vid=tag).dropped
    assert _broadcast(s, "port-0-0", vlan_vid=tag).dropped
    assert s.arp_request("port-0-0", "10.0.0.250", vlan_vid=tag).dropped
    # DHCP is not punted either
    t = s.send("port-0-0", vlan_vid=tag, eth_dst=BROADCAST, eth_type=0x0800,
               ipv4_src="0.0.0.0", ipv4_dst="255.255.255.255", ip_proto=17, udp_src=68,
               udp_dst=67)
    assert t.dropped and not t.controller
    # on a VLAN provider network: not out of the uplink (double-tagged)
    assert _broadcast(vlan_net, "port-0-0", vlan_vid=tag).dropped
    # nor out of a flat network's uplink with its tag as it was
    assert _broadcast(flat_net, "port-0-0", vlan_vid=tag).dropped
    assert flat_net.arp_request("port-0-0", "10.0.0.250", vlan_vid=tag).dropped


def test_tagged_frames_dropped_without_port_security():
    view = make_host_view(networks=1, ports_per_net=2)
    p = view.ports[0]
    open_port = Port(p.id, p.network_id, p.mac_address, p.fixed_ips, host=p.host,
                     port_security_enabled=False)
    s = Scenario(view.replace(ports=(open_port,) + view.ports[1:]))
    assert s.udp("port-0-0", "port-0-1").ports == [s.ofport("port-0-1")]
    assert s.udp("port-0-0", "port-0-1", vlan_vid=5 | OFPVID_PRESENT).dropped
    assert _broadcast(s, "port-0-0", vlan_vid=5 | OFPVID_PRESENT).dropped
