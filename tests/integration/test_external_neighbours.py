"""Neighbour resolution and announcements on an external network (issue 14),
on real Open vSwitch hosts with an "upstream router" namespace on the
provider network.

hv1 holds an instance port with a floating IP; hv2 and hv3 are the
router's gateway hosts (in that order).  The agents run in-process without
a server: each is handed its host view directly.  Neighbours are learned
through the compiled flows only, from an instance's packet to the punted
answer (the first tests stood in for the router's punts by hand, before
the router's flows punted anything).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

import pytest

from quantum_ovs import model as m
from quantum_ovs.testing.ovs import missing_prerequisites, netns_exec, rand_name, run
from tests.fixtures.multihost import Cluster, wait_for

NET = "11111111-1111-4111-8111-111111111111"
EXT = "22222222-2222-4222-8222-222222222222"
ROUTER = "33333333-3333-4333-8333-333333333333"
VM_PORT = "44444444-4444-4444-8444-444444444444"
GW_PORT = "55555555-5555-4555-8555-555555555555"
RIF_PORT = "66666666-6666-4666-8666-666666666666"
FIP = "77777777-7777-4777-8777-777777777777"
GW_MAC, FIP_MAC, VM_MAC = "fa:16:3e:00:00:02", "fa:16:3e:00:00:20", "fa:16:3e:00:00:10"
GW_IP, FIP_IP, UPSTREAM_IP = "203.0.113.10", "203.0.113.20", "203.0.113.1"
NO_SERVER = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def cloud():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    c = Cluster(3, subnet="172.31.45")
    state = tempfile.mkdtemp(prefix="qovs-nb-state-")
    upstream = rand_name("qup-", 6)
    try:
        c.start()
        # The upstream router: a namespace on the provider network.
        run("ip", "netns", "add", upstream)
        dev = c.provider.attach("upstream", upstream)
        netns_exec(upstream, "ip", "addr", "add", f"{UPSTREAM_IP}/24", "dev", dev)
        netns_exec(upstream, "ip", "link", "set", "lo", "up")
        for h in c.hosts:
            h.start_agent(NO_SERVER, os.path.join(state, h.name))
        yield c, upstream, dev
    finally:
        c.stop()
        run("ip", "netns", "del", upstream, check=False)
        shutil.rmtree(state, ignore_errors=True)


def _router(hosts=("hv2", "hv3"), fip_port=VM_PORT):
    return m.Router(
        id=ROUTER,
        interfaces=(m.RouterInterface(RIF_PORT, NET, "sub-in", "10.0.0.1", 24,
                                      "fa:16:3e:00:00:01"),),
        gateway=m.RouterGateway(EXT, GW_PORT, GW_MAC, (GW_IP,), hosts=hosts, redirect_key=5000),
        floating_ips=(m.FloatingIP(FIP, FIP_IP, EXT, fip_port, "10.0.0.5", FIP_MAC),)
        if fip_port else ())


def _view(cloud, host, vm_host="hv1", revision=1, port_security=True, **kw):
    c = cloud[0]
    return m.HostView(
        host=host, tunnel_ip=c[host].tunnel_ip, revision=revision,
        networks=(m.Network(NET, m.Segment("vxlan", segmentation_id=1001)),
                  m.Network(EXT, m.Segment("flat", "physnet1"))),
        subnets=(m.Subnet("sub-in", NET, "10.0.0.0/24", gateway_ip="10.0.0.1"),
                 m.Subnet("sub-ext", EXT, "203.0.113.0/24", gateway_ip=UPSTREAM_IP)),
        ports=(m.Port(VM_PORT, NET, VM_MAC, (m.FixedIP("sub-in", "10.0.0.5"),),
                      host=vm_host, port_security_enabled=port_security),),
        remote_hosts=tuple(m.RemoteHost(h.name, h.tunnel_ip) for h in c.hosts
                           if h.name != host),
        routers=(_router(**kw),))


def _load(cloud, host, view):
    agent = cloud[0][host].agent
    agent.events.put(("full", view))
    assert wait_for(lambda: agent.nb_context.nets.get(EXT) is not None, 10)
    return agent


def _upstream_neigh(cloud, ip):
    out = netns_exec(cloud[1], "ip", "neigh", "show", ip, "dev", cloud[2])
    found = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return found.group(1) if found else None


def _stale(cloud, ip, mac="02:00:00:00:00:99"):
    netns_exec(cloud[1], "ip", "neigh", "replace", ip, "lladdr", mac, "dev", cloud[2],
               "nud", "stale")
    assert _upstream_neigh(cloud, ip) == mac


def _learn_from_an_instance(cloud, h, view, dst):
    """An instance on ``h`` (the port of ``view``) sends IPv4 to ``dst``
    through the router until ``h``'s agent has learned the upstream
    router's MAC from the ARP reply the compiled flows punt to it."""
    c, upstream, dev = cloud
    upstream_mac = netns_exec(upstream, "cat", f"/sys/class/net/{dev}/address").strip()
    inst = h.ovs.add_instance("10.0.0.5", 24, mac=VM_MAC, iface_id=VM_PORT)
    try:
        inst.exec("ip", "route", "add", "default", "via", "10.0.0.1")
        for name in ("hv1", "hv2", "hv3"):
            _load(cloud, name, view(name))
        assert wait_for(lambda: VM_PORT in h.agent.engine.vif_ofports, 10)
        want = m.Neighbour(EXT, UPSTREAM_IP, upstream_mac)

        def learned():
            inst.exec("ping", "-c", "1", "-W", "1", dst, check=False)
            return want in h.agent.chassis.neighbours
        t0 = time.monotonic()
        assert wait_for(learned, 10, 0.1), (h.agent.stats, h.agent.chassis.neighbours)
        return time.monotonic() - t0
    finally:
        h.ovs.remove_instance(inst)


def test_resolve_upstream_from_gateway_and_from_fip(cloud):
    """The router's own flows punt a packet whose next hop is unknown and
    the ARP reply that answers the agent's request: no stand-in flow."""
    c = cloud[0]
    hv1, hv2 = c["hv1"], c["hv2"]
    # An instance without a floating IP on the active gateway host, hv2:
    # SNAT there, and the agent asks from the gateway's address.
    took = _learn_from_an_instance(
        cloud, hv2, lambda name: _view(cloud, name, vm_host="hv2", revision=10,
                                       port_security=False, fip_port=None),
        "198.51.100.7")
    print(f"\nneighbour: upstream resolved from the gateway in {took:.3f} s")
    assert hv2.agent.resolver._table[(EXT, UPSTREAM_IP)].src_ip == GW_IP
    assert hv2.agent.stats["neighbour_requests"] >= 1
    # On the floating IP's host, hv1, the instance's traffic goes out from
    # the floating IP, and the agent asks from it.
    _learn_from_an_instance(
        cloud, hv1, lambda name: _view(cloud, name, vm_host="hv1", revision=11,
                                       port_security=False),
        UPSTREAM_IP)
    assert hv1.agent.resolver._table[(EXT, UPSTREAM_IP)].src_ip == FIP_IP


def test_garp_for_a_floating_ip_that_moves_here(cloud):
    c, upstream, dev = cloud
    hv1, hv3 = c["hv1"], c["hv3"]
    # The upstream has the floating IP at some old MAC; the port moves to
    # hv3 (a new view there): hv3 announces the floating IP with its MAC.
    hv1.agent.events.put(("full", _view(cloud, "hv1", vm_host="hv3", revision=2)))
    assert wait_for(lambda: not hv1.agent.announcer._due, 5)  # hv1 is quiet
    _stale(cloud, FIP_IP)
    sent = hv3.agent.stats.get("garp_sent", 0)
    hv3.agent.events.put(("full", _view(cloud, "hv3", vm_host="hv3", revision=2)))
    t0 = time.monotonic()
    assert wait_for(lambda: _upstream_neigh(cloud, FIP_IP) == FIP_MAC, 5, 0.02)
    print(f"\nGARP: floating IP's MAC in the upstream's cache "
          f"{time.monotonic() - t0:.3f} s after the view moved the port")
    # A few, spaced.
    assert wait_for(lambda: hv3.agent.stats.get("garp_sent", 0) >= sent + 3, 5)


def test_garp_when_this_host_becomes_the_active_gateway(cloud):
    c, upstream, dev = cloud
    hv2, hv3 = c["hv2"], c["hv3"]
    c.prime_arp()
    assert wait_for(lambda: hv3.agent.chassis.gateways_down == () and
                    "hv2" in hv3.agent.gw_monitor.ports() and
                    hv3.agent.gw_monitor.ports()["hv2"].up, 15), hv3.agent.gw_monitor.ports()
    assert wait_for(lambda: not hv2.agent.announcer._due, 5)  # hv2 is quiet
    _stale(cloud, GW_IP)
    sent = hv3.agent.stats.get("garp_sent", 0)
    hv2.ovs.stop_vswitchd()
    t0 = time.monotonic()
    assert wait_for(lambda: _upstream_neigh(cloud, GW_IP) == GW_MAC, 5, 0.02)
    print(f"GARP: gateway address announced by hv3 {time.monotonic() - t0:.3f} s after "
          f"hv2's switch was killed")
    assert "hv2" in hv3.agent.chassis.gateways_down
    assert hv3.agent.stats.get("garp_sent", 0) > sent


GW_IP6, UPSTREAM_IP6 = "2001:db8:e::10", "2001:db8:e::1"


def _view6(cloud, host, revision):
    """IPv6 routed out of the router's gateway (not translated), the
    instance and the active gateway on ``host``: the compiled flows only,
    no stand-in."""
    c = cloud[0]
    rmac = "fa:16:3e:00:00:01"
    router = m.Router(
        id=ROUTER,
        interfaces=(m.RouterInterface(RIF_PORT, NET, "sub-in", "10.0.0.1", 24, rmac),
                    m.RouterInterface(RIF_PORT, NET, "sub-in6", "fd00::1", 64, rmac)),
        gateway=m.RouterGateway(EXT, GW_PORT, GW_MAC, (GW_IP, GW_IP6), hosts=(host,),
                                redirect_key=5000))
    return m.HostView(
        host=host, tunnel_ip=c[host].tunnel_ip, revision=revision,
        networks=(m.Network(NET, m.Segment("vxlan", segmentation_id=1001)),
                  m.Network(EXT, m.Segment("flat", "physnet1"))),
        subnets=(m.Subnet("sub-in", NET, "10.0.0.0/24", gateway_ip="10.0.0.1"),
                 m.Subnet("sub-in6", NET, "fd00::/64", ip_version=6, gateway_ip="fd00::1",
                          enable_dhcp=False),
                 m.Subnet("sub-ext", EXT, "203.0.113.0/24", gateway_ip=UPSTREAM_IP),
                 m.Subnet("sub-ext6", EXT, "2001:db8:e::/64", ip_version=6,
                          gateway_ip=UPSTREAM_IP6, enable_dhcp=False)),
        ports=(m.Port(VM_PORT, NET, VM_MAC, (m.FixedIP("sub-in", "10.0.0.5"),
                                             m.FixedIP("sub-in6", "fd00::5")),
                      host=host, port_security_enabled=False),),
        remote_hosts=tuple(m.RemoteHost(h.name, h.tunnel_ip) for h in c.hosts
                           if h.name != host),
        routers=(router,))


def test_an_ipv6_next_hop_is_learned_from_the_compiled_punts(cloud):
    """An instance's IPv6 packet to the outside, routed through the active
    gateway host: the agent asks for the upstream router from the
    gateway's IPv6 address, and learns it from the neighbour advertisement
    that the compiled flows (not a stand-in) punt to it -- the unit test
    test_neighbour_answers.test_an_ipv6_next_hop_is_asked_from_an_address_
    answered_here on a real switch and a real neighbour."""
    c, upstream, dev = cloud
    hv3 = c["hv3"]
    netns_exec(upstream, "ip", "-6", "addr", "add", f"{UPSTREAM_IP6}/64", "dev", dev, "nodad")
    upstream_mac = netns_exec(upstream, "cat", f"/sys/class/net/{dev}/address").strip()
    inst = hv3.ovs.add_instance("10.0.0.5", 24, mac=VM_MAC, iface_id=VM_PORT)
    try:
        inst.exec("ip", "-6", "addr", "add", "fd00::5/64", "dev", inst.dev, "nodad")
        inst.exec("ip", "-6", "route", "add", "default", "via", "fd00::1")
        hv3.agent.events.put(("full", _view6(cloud, "hv3", revision=20)))
        assert wait_for(lambda: VM_PORT in hv3.agent.engine.vif_ofports
                        and hv3.agent.nb_context.nets.get(EXT) is not None, 10)
        asked = hv3.agent.stats.get("neighbour_requests", 0)
        want = m.Neighbour(EXT, UPSTREAM_IP6, upstream_mac)

        def learned():
            inst.exec("ping", "-6", "-c", "1", "-W", "1", "2001:db8:99::1", check=False)
            return want in hv3.agent.chassis.neighbours
        assert wait_for(learned, 10, 0.1), (hv3.agent.stats, hv3.agent.chassis.neighbours)
        assert hv3.agent.stats.get("neighbour_requests", 0) > asked
        assert hv3.agent.resolver._table[(EXT, UPSTREAM_IP6)].src_ip == GW_IP6
        # the upstream learned the gateway's address from the solicitation
        out = netns_exec(upstream, "ip", "-6", "neigh", "show", GW_IP6, "dev", dev)
        assert GW_MAC in out, out
    finally:
        hv3.ovs.remove_instance(inst)
