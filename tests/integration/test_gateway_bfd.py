"""BFD tunnels to gateway hosts (issue 14), on three real Open vSwitch hosts.

hv1 is a compute host with an instance port on a router's network; hv2 and
hv3 are the router's gateway hosts (in that order).  The agents run
in-process with no server: each is handed its host view directly (what
the server would send), so this checks the agent alone -- ports made with
BFD, sessions up, a killed switch seen as down by the others within a
second, back when it restarts, and the ports gone with the router.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from agent import gateways
from quantum_ovs import model as m
from quantum_ovs.testing.ovs import missing_prerequisites
from tests.fixtures.multihost import PHY_BRIDGE, Cluster, wait_for

NET = "11111111-1111-4111-8111-111111111111"
EXT = "22222222-2222-4222-8222-222222222222"
ROUTER = "33333333-3333-4333-8333-333333333333"
VM_PORT = "44444444-4444-4444-8444-444444444444"
GW_PORT = "55555555-5555-4555-8555-555555555555"
RIF_PORT = "66666666-6666-4666-8666-666666666666"
NO_SERVER = "http://127.0.0.1:9"  # nothing listens: the views come from the test


@pytest.fixture(scope="module")
def cluster():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    c = Cluster(3, subnet="172.31.44")
    state = tempfile.mkdtemp(prefix="qovs-gw-state-")
    try:
        c.start()
        for h in c.hosts:
            h.start_agent(NO_SERVER, os.path.join(state, h.name))
        yield c
    finally:
        c.stop()
        shutil.rmtree(state, ignore_errors=True)


def _router(hosts=("hv2", "hv3")):
    return m.Router(
        id=ROUTER,
        interfaces=(m.RouterInterface(RIF_PORT, NET, "sub-in", "10.0.0.1", 24,
                                      "fa:16:3e:00:00:01"),),
        gateway=m.RouterGateway(EXT, GW_PORT, "fa:16:3e:00:00:02", ("203.0.113.10",),
                                hosts=hosts, redirect_key=5000))


def _view(cluster, host, with_router=True, revision=1):
    others = tuple(m.RemoteHost(h.name, h.tunnel_ip) for h in cluster.hosts if h.name != host)
    net = m.Network(NET, m.Segment("vxlan", segmentation_id=1001))
    return m.HostView(
        host=host, tunnel_ip=cluster[host].tunnel_ip, revision=revision,
        networks=(net,),
        subnets=(m.Subnet("sub-in", NET, "10.0.0.0/24", gateway_ip="10.0.0.1"),),
        ports=(m.Port(VM_PORT, NET, "fa:16:3e:00:00:10",
                      (m.FixedIP("sub-in", "10.0.0.10"),), host="hv1"),),
        remote_hosts=others,
        routers=(_router(),) if with_router else ())


def _bfd_up(agent, hosts):
    ports = agent.gw_monitor.ports()
    return all(h in ports and ports[h].up for h in hosts)


def _peer_ports(h):
    return sorted(p for p in h.ovs.vsctl("list-ports", "br-int").split()
                  if p.startswith(gateways.PORT_PREFIX))


def _revive(h):
    """Start a killed ovs-vswitchd again; its netdev tap (br-phy) died with
    it, so give br-phy its tunnel address back (as Hypervisor.start)."""
    h.ovs.start_vswitchd()
    wait_for(lambda: "br-phy" in h.ovs.exec("ip", "-o", "link", "show"), 10)
    h.ovs.exec("ip", "addr", "replace", f"{h.tunnel_ip}/{h.prefixlen}", "dev", PHY_BRIDGE)
    h.ovs.exec("ip", "link", "set", PHY_BRIDGE, "up")
    h._ensure_tunnel_route()


def test_bfd_tunnels_follow_gateway_liveness(cluster):
    hv1, hv2, hv3 = cluster.hosts
    for h in cluster.hosts:
        h.agent.events.put(("full", _view(cluster, h.name)))
    # Every host has BFD tunnels to the ones it needs: the compute host to
    # both gateways, each gateway to the compute host and the other gateway.
    want = {"hv1": {"hv2", "hv3"}, "hv2": {"hv1", "hv3"}, "hv3": {"hv1", "hv2"}}
    for h in cluster.hosts:
        assert wait_for(lambda h=h: {p for p, _ in h.agent.chassis.gateway_ofports}
                        == want[h.name], 10), (h.name, h.agent.chassis)
        assert len(_peer_ports(h)) == 2
    cluster.prime_arp()
    # The port as OVSDB has it: a tunnel to that peer, keyed by flow, BFD on.
    name = gateways.port_name(hv2.tunnel_ip)
    assert hv1.ovs.vsctl("get", "Interface", name, "type").strip() == "vxlan"
    opts = hv1.ovs.vsctl("get", "Interface", name, "options").strip()
    assert f'remote_ip="{hv2.tunnel_ip}"' in opts and 'key=flow' in opts
    assert f'local_ip="{hv1.tunnel_ip}"' in opts
    bfd = hv1.ovs.vsctl("get", "Interface", name, "bfd").strip()
    assert 'enable="true"' in bfd and 'min_tx="100"' in bfd
    # The ofports handed to the engine are the switch's.
    assert dict(hv1.agent.chassis.gateway_ofports)["hv2"] == hv1.ovs.ofport(name)

    for h in cluster.hosts:
        assert wait_for(lambda h=h: _bfd_up(h.agent, want[h.name]), 15), \
            (h.name, h.agent.gw_monitor.ports())
    assert hv1.agent.chassis.gateways_down == ()
    time.sleep(1.0)  # sessions settle at 100 ms intervals

    # A restarted agent takes the ports over as they are: same rows, no
    # BFD flap.
    before = [hv1.ovs.vsctl("get", "Interface", n, "_uuid", "bfd_status:flap_count").split()
              for n in _peer_ports(hv1)]
    state = os.path.dirname(hv1.agent.s.state_path)
    hv1.stop_agent()
    hv1.start_agent(NO_SERVER, os.path.join(state, "hv1"))
    hv1.agent.events.put(("full", _view(cluster, "hv1")))
    assert hv1.agent.ready.wait(10)
    assert wait_for(lambda: len(hv1.agent.chassis.gateway_ofports) == 2, 5)
    after = [hv1.ovs.vsctl("get", "Interface", n, "_uuid", "bfd_status:flap_count").split()
             for n in _peer_ports(hv1)]
    assert after == before
    assert hv1.agent.chassis.gateways_down == ()

    # Kill the active gateway's switch: the compute host and the other
    # gateway see it down within a second.
    hv2.ovs.stop_vswitchd()
    t0 = time.monotonic()
    assert wait_for(lambda: "hv2" in hv1.agent.chassis.gateways_down, 5, 0.01)
    detected = time.monotonic() - t0
    assert wait_for(lambda: "hv2" in hv3.agent.chassis.gateways_down, 5, 0.01)
    detected3 = time.monotonic() - t0
    print(f"\nBFD: hv2 (gateway) killed -> down in hv1's chassis after {detected:.3f} s, "
          f"in hv3's after {detected3:.3f} s")
    assert detected < 1.0
    assert hv1.agent.chassis.gateways_down == ("hv2",)
    assert gateways.active_gateway(_router().gateway, hv1.agent.chassis.gateways_down) == "hv3"

    # Restarted, it comes back.
    _revive(hv2)
    cluster.prime_arp()
    t0 = time.monotonic()
    assert wait_for(lambda: hv1.agent.chassis.gateways_down == (), 20, 0.02), \
        hv1.agent.gw_monitor.ports()
    print(f"BFD: hv2 back up in hv1's chassis {time.monotonic() - t0:.3f} s after restart")
    assert wait_for(lambda: _bfd_up(hv3.agent, {"hv1", "hv2"}), 20)

    # The router goes: so do the BFD tunnels.
    for h in cluster.hosts:
        h.agent.events.put(("full", _view(cluster, h.name, with_router=False, revision=2)))
    for h in cluster.hosts:
        assert wait_for(lambda h=h: _peer_ports(h) == [], 10), (h.name, _peer_ports(h))
        assert wait_for(lambda h=h: h.agent.chassis.gateway_ofports == (), 5)
