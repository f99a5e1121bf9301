"""Routing on real Open vSwitch through the agent's own encoder: two
subnets on one router, instances in namespaces on this host.

The flows are the compiler's for a synthetic host view with a router
(the routers API is not serving host views yet), installed with the
agent's channel (dec_ttl, nd_reserved, nd_options_type included) and
dumped back equal (the agent would not re-install them).  Packet-ins go
to the agent's dispatcher, as in the daemon: ICMP time exceeded for a
TTL-1 packet, router advertisements for a solicitation, from which a
namespace's kernel SLAAC takes its address and default route.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import subprocess
import time

import pytest

from agent.responders.dispatch import DhcpDispatcher
from agent.responders.router import advertisers, router_advertisement
from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import DecTtl, Output, SetField, diff
from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import (
    default_group,
    make_network,
    make_port,
    make_router,
    make_router_interface,
    make_subnet,
    port_ip,
)
from quantum_ovs.model import Chassis, FixedIP, HostView, RouterInterface, Subnet
from tests.integration.test_security_groups import Listener, reach

V6_CIDR = "fd00:2::/64"
V6_GW = "fd00:2::1"
B6 = "fd00:1::10"  # b's static address on a subnet without RA


def _slaac(mac: str) -> str:
    suffix = int(ipaddress.IPv6Address(link_local(mac))) & ((1 << 64) - 1)
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Network(V6_CIDR).network_address)
                                     | suffix))


def eventually(fn, timeout=10.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return bool(fn())


@dataclasses.dataclass
class Rig:
    ovs: object
    channel: object
    view: HostView
    flows: frozenset
    inst: dict  # name -> Instance
    ofports: dict  # port id -> ofport
    stats: dict


def _view(ports, ofports):
    v6 = Subnet("sub6-2", "net-2", V6_CIDR, 6, gateway_ip=V6_GW, ipv6_ra_mode="slaac",
                ipv6_address_mode="slaac")
    v6b = Subnet("sub6-1", "net-1", "fd00:1::/64", 6, gateway_ip="fd00:1::1")
    router = make_router("router-1", (0, 1, 2))
    ifc6 = RouterInterface("rif-2", "net-2", "sub6-2", V6_GW, 64,
                           make_router_interface(2).mac_address)
    ifc6b = RouterInterface("rif-1", "net-1", "sub6-1", "fd00:1::1", 64,
                            make_router_interface(1).mac_address)
    router = dataclasses.replace(router, interfaces=router.interfaces + (ifc6, ifc6b))
    return HostView(
        host="host-a", tunnel_ip="192.168.0.1", routers=(router,),
        networks=tuple(make_network(n, "vxlan", n + 1) for n in range(3)),
        subnets=(make_subnet(0), make_subnet(1), make_subnet(2), v6, v6b),
        ports=tuple(ports),
        security_groups=(default_group(members=[ip for p in ports for ip in p.ips]),),
        chassis=Chassis(tuple(sorted(ofports.items())), (), ()),
    )


@pytest.fixture(scope="module")
def rig(module_ovs):
    from agent.openflow import Channel, CookieScope
    from agent.ovsdb import Connection, Ovsdb

    ovs = module_ovs
    conn = Connection(ovs.db_remote).start()
    ch = Channel(CookieScope.ours(), sock=ovs.listen_socket())
    ch.start()
    try:
        Ovsdb(conn).ensure_bridge("br-int", datapath_type="netdev", controller=ch.target,
                                  connection_mode="out-of-band")
        ch.wait_connected(timeout=10)
        a, b = make_port(0, 0), make_port(1, 0)
        b = dataclasses.replace(b, fixed_ips=b.fixed_ips + (FixedIP("sub6-1", B6),))
        c = make_port(2, 0)
        c = dataclasses.replace(c, fixed_ips=c.fixed_ips + (FixedIP("sub6-2",
                                                                     _slaac(c.mac_address)),))
        inst = {}
        for name, p, n in (("a", a, 0), ("b", b, 1), ("c", c, 2)):
            i = ovs.add_instance(port_ip(n, 0), 24, mac=p.mac_address, iface_id=p.id)
            i.exec("ip", "route", "add", "default", "via", f"10.0.{n}.1")
            inst[name] = i
        inst["b"].exec("ip", "-6", "addr", "add", f"{B6}/64", "dev", inst["b"].dev, "nodad")
        inst["b"].exec("ip", "-6", "route", "add", "default", "via", "fd00:1::1")
        # c: kernel SLAAC (accept_ra=2: even if it forwarded)
        dev = inst["c"].dev
        inst["c"].exec("sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_ra=2")
        ofports = {p.id: ovs.ofport(inst[k].port) for k, p in (("a", a), ("b", b), ("c", c))}
        view = _view([a, b, c], ofports)
        engine = Engine.from_view(view)
        flows = engine.flows()
        stats: dict = {}
        by_port = {ofports[p.id]: p for p in (a, b, c)}
        nets = {n.id: n for n in view.networks}
        subs = {s.id: s for s in view.subnets}

        def lookup(ofport):
            p = by_port.get(ofport)
            return None if p is None else (p, nets[p.network_id], subs)

        dispatcher = DhcpDispatcher(60, lookup, ch.packet_out, stats,
                                    routers=lambda: view.routers)
        ch.on_packet_in(dispatcher.packet_in)
        ch.apply(diff(ch.dump_flows(), flows))
        yield Rig(ovs, ch, view, flows, inst, ofports, stats)
    finally:
        ch.stop()
        conn.stop()
        ovs.vsctl("--if-exists", "del-br", "br-int", check=False)


def test_router_flows_installed_by_the_agent_dump_back_equal(rig):
    routing = {f for f in rig.flows if cookies.kind_of(f.cookie) == cookies.KIND_ROUTER}
    acts = [a for f in routing for a in f.actions]
    assert any(isinstance(a, DecTtl) for a in acts)
    assert {"nd_reserved", "nd_options_type"} <= {a.name for a in acts
                                                 if isinstance(a, SetField)}
    assert diff(rig.channel.dump_flows(), rig.flows).empty


def test_ping_and_tcp_across_subnets(rig):
    a, b = rig.inst["a"], rig.inst["b"]
    assert eventually(lambda: a.ping(b.ip))
    assert b.ping(a.ip)
    assert a.ping("10.0.0.1") and a.ping("10.0.1.1")  # router addresses, in flows
    srv = Listener(b, "tcp", 8080)
    try:
        # the default group admits members (a's address is one)
        assert reach(a, "tcp", b.ip, 8080)
    finally:
        srv.stop()


def test_ttl_1_gets_time_exceeded_from_the_router(rig):
    a, b = rig.inst["a"], rig.inst["b"]
    assert eventually(lambda: a.ping(b.ip))
    out = subprocess.run(["ip", "netns", "exec", a.ns, "ping", "-n", "-c", "1", "-W", "2",
                          "-t", "1", b.ip], capture_output=True, text=True, timeout=15).stdout
    assert "From 10.0.0.1" in out and "Time to live exceeded" in out, out
    assert eventually(lambda: rig.stats.get("icmp_time_exceeded", 0) >= 1, timeout=2)
    # TTL 2 is routed (decremented to 1) and answered by b
    out = subprocess.run(["ip", "netns", "exec", a.ns, "ping", "-n", "-c", "1", "-W", "2",
                          "-t", "2", b.ip], capture_output=True, text=True, timeout=15)
    assert out.returncode == 0, out.stdout


def test_a_flood_of_expiring_packets_is_metered_in_the_switch(rig):
    """TTL-1 packets are punted through the sending port's own punt meter
    (its ofport): a flood of them reaches the agent at the meter's rate,
    not the sender's, and another instance's expiring packets still get
    their answers meanwhile (one host-wide meter let one instance starve
    every traceroute on the host: review F4, session 22)."""
    from tests.integration.test_dhcp_flood import meter_drops

    a, b = rig.inst["a"], rig.inst["b"]
    assert eventually(lambda: a.ping(b.ip))
    meter = rig.ovs.ofport(a.port)
    before_in = rig.channel.stats["packet_in"]
    before_drops = meter_drops(rig.ovs, meter)
    sent = 3000
    started = time.monotonic()
    flood = subprocess.Popen(["ip", "netns", "exec", a.ns, "ping", "-n", "-q", "-f", "-l", "64",
                              "-c", str(sent), "-W", "1", "-t", "1", b.ip],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)  # the flood under way
        answered = 0
        for _ in range(3):  # b's traceroute towards a, while a floods
            out = subprocess.run(["ip", "netns", "exec", b.ns, "ping", "-n", "-c", "1", "-W",
                                  "1", "-t", "1", a.ip], capture_output=True, text=True,
                                 timeout=15).stdout
            answered += "Time to live exceeded" in out
        still_flooding = flood.poll() is None
    finally:
        flood.wait(60)
    took = time.monotonic() - started
    time.sleep(0.5)
    got = rig.channel.stats["packet_in"] - before_in
    drops = meter_drops(rig.ovs, meter) - before_drops
    print(f"{sent} TTL-1 pings in {took:.2f} s: {got} packet-ins, {drops} dropped by a's "
          f"meter; b's 3 TTL-1 pings meanwhile: {answered} answered "
          f"(flood still running after them: {still_flooding})")
    assert drops > 0
    assert got < sent / 2
    assert answered == 3
    # and the meter still lets expiring packets through afterwards
    out = subprocess.run(["ip", "netns", "exec", a.ns, "ping", "-n", "-c", "1", "-W", "2",
                          "-t", "1", b.ip], capture_output=True, text=True, timeout=15).stdout
    assert "Time to live exceeded" in out, out


def test_kernel_slaac_from_our_router_advertisement(rig):
    c = rig.inst["c"]
    rll = link_local(make_router_interface(2).mac_address)
    want = _slaac(c.mac)
    # a link flap: the kernel solicits again now that the flows are there
    c.exec("ip", "link", "set", c.dev, "down")
    c.exec("ip", "link", "set", c.dev, "up")

    def configured():
        addrs = c.exec("ip", "-6", "addr", "show", "dev", c.dev)
        route = c.exec("ip", "-6", "route", "show", "default")
        return want in addrs and rll in route

    assert eventually(configured, timeout=20), (
        c.exec("ip", "-6", "addr"), c.exec("ip", "-6", "route"), rig.stats)
    assert eventually(lambda: rig.stats.get("ra_solicited", 0) >= 1, timeout=2)
    # the address works: the router's IPv6 address answers (NA and echo in flows)
    assert eventually(lambda: _ping6(c, V6_GW).returncode == 0, timeout=10)
    # and routes: b on the other subnet (static address, default via fd00:1::1)
    assert eventually(lambda: _ping6(c, B6).returncode == 0, timeout=10)
    # hop limit 1: time exceeded (ICMPv6 type 3) from the router's address on c's subnet
    out = _ping6(c, B6, "-t", "1").stdout
    assert f"From {V6_GW}" in out and "Time exceeded" in out, out


def _ping6(inst, ip, *extra):
    return subprocess.run(["ip", "netns", "exec", inst.ns, "ping", "-6", "-n", "-c", "1",
                           "-W", "2", *extra, ip], capture_output=True, text=True, timeout=15)


def test_periodic_advertisement_frames_reach_the_port(rig):
    c = rig.inst["c"]
    subs = {s.id: s for s in rig.view.subnets}
    (adv,) = advertisers(rig.view.routers, subs, "net-2")
    sock = c.raw_socket(timeout=3)
    try:
        rig.channel.packet_out(router_advertisement(adv, 1450),
                               [Output(rig.ofports[make_port(2, 0).id])])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            frame = sock.recv(2048)
            if frame[12:14] == b"\x86\xdd" and frame[54] == 134:
                break
        else:
            pytest.fail("no router advertisement on the port")
    finally:
        sock.close()
