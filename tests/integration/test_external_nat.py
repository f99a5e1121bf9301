"""External connectivity on real Open vSwitch (issue 14), through the
agent's encoder: floating IPs translated on the instance's host, SNAT on a
gateway host reached by the bundle(active_backup) redirect, a port
forwarding, hairpin.

Two hypervisors (tests/fixtures/multihost.py: a tunnel underlay and a
provider underlay, netdev datapath): hv1 holds the instances, hv2 is the
router's gateway host.  The "internet" is a namespace on the provider
underlay (the external flat network), routed nowhere else.  The flows are
the compiler's for hand-built host views (fipapi makes the real ones),
installed with the agent's channel and dumped back equal.  The per-remote
BFD tunnel ports gwagent's plumbing makes are made here with ovs-vsctl, and
the internet's MAC is put into Chassis.neighbours by hand (gwagent's
resolver does it for real).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time

import pytest

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import diff
from quantum_ovs.compiler.synth import make_network, make_port, make_router, make_subnet
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import (
    Chassis,
    FloatingIP,
    HostView,
    Neighbour,
    FixedIP,
    Network,
    PortForwarding,
    RemoteHost,
    RouterGateway,
    RouterInterface,
    Rule,
    SecurityGroup,
    Segment,
    Subnet,
)
from quantum_ovs.testing.ovs import missing_prerequisites, netns_exec, rand_name, run

pytestmark = pytest.mark.skipif(bool(missing_prerequisites()),
                                reason=str(missing_prerequisites()))

EXT = "ext-net"
EXT_CIDR = "172.24.4.0/24"
INET_IP = "172.24.4.100"
INET_MAC = "52:54:00:aa:bb:cc"
GW_IP = "172.24.4.10"
GW_MAC = "fa:16:3e:ee:00:01"
FIP_A = "172.24.4.50"
FIP_C = "172.24.4.52"
FIP_PF = "172.24.4.60"
REDIRECT_KEY = 7777
# IPv6: routed, not translated, through the active gateway host
EXT6_CIDR = "2001:db8:24::/64"
INET6 = "2001:db8:24::100"
GW6 = "2001:db8:24::10"
INT6_CIDR = "fd00:0:0:1::/64"
RIF6 = "fd00:0:0:1::1"
B6 = "fd00:0:0:1::b"

SERVER_PY = r"""
import socket, sys
proto, port = sys.argv[1], int(sys.argv[2])
if proto == "tcp":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept(); c.sendall(("from:%s\n" % peer[0]).encode()); c.close()
"""
CLIENT_PY = r"""
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((ip, port), timeout=2); print(s.recv(100).decode().strip())
except OSError as e:
    print("fail", type(e).__name__)
"""


class Listener:
    def __init__(self, ns, port):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                      SERVER_PY, "tcp", str(port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)


def connect(ns, ip, port) -> str:
    """The peer address the server saw ("from:<ip>"), or "fail ..."."""
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT_PY, ip,
                          str(port)], capture_output=True, text=True, timeout=20)
    return out.stdout.strip()


def ping(ns, ip, count=1, wait=2) -> bool:
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-W",
                        str(wait), ip], capture_output=True, text=True)
    return r.returncode == 0


def eventually(fn, timeout=15.0, step=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(step)
    return bool(fn())


@dataclasses.dataclass
class Rig:
    hosts: dict  # name -> Hypervisor
    channels: dict  # name -> Channel
    engines: dict  # name -> Engine
    inst: dict  # a, b, c -> Instance
    inet: str  # the internet namespace


def _group():
    g = "sg-open"
    return SecurityGroup(g, (Rule("eg", g, "egress", "IPv4"),
                             Rule("eg6", g, "egress", "IPv6"),
                             Rule("in-tcp", g, "ingress", "IPv4", 6),
                             Rule("in-icmp", g, "ingress", "IPv4", 1),
                             Rule("in-icmp6", g, "ingress", "IPv6", 58)), frozenset())


def _views(ports, ofports, tunnel_ips, gateways=("hv2",)):
    """Host name -> view: one router, net-0 (VXLAN) and the flat external
    network; a and c have floating IPs, port forwardings FIP_PF:2222 ->
    b:22 and FIP_PF:8000-8015 -> b:8000-8015 (masked flows, the port kept);
    ``gateways`` are the router's gateway hosts, in priority order;
    the instances are on hv1."""
    net0 = make_network(0, "vxlan", 1)
    ext = Network(EXT, Segment("flat", "physnet1"))
    subs = (make_subnet(0), Subnet("ext-sub", EXT, EXT_CIDR, 4, "172.24.4.1", enable_dhcp=False),
            Subnet("ext-sub6", EXT, EXT6_CIDR, 6, "2001:db8:24::1", enable_dhcp=False),
            Subnet("sub6-0", "net-0", INT6_CIDR, 6, RIF6, enable_dhcp=False))
    a, b, c = ports
    gw = RouterGateway(EXT, "gw-port", GW_MAC, (GW_IP, GW6), True, tuple(gateways),
                       REDIRECT_KEY)
    fips = (FloatingIP("fip-a", FIP_A, EXT, a.id, None, a.mac_address),
            FloatingIP("fip-c", FIP_C, EXT, c.id, None, c.mac_address),
            FloatingIP("fip-pf", FIP_PF, EXT, None, None, GW_MAC,
                       (PortForwarding("pf-1", "tcp", b.id, b.ips[0], 2222, 2222, 22, 22),
                        PortForwarding("pf-2", "tcp", b.id, b.ips[0], 8000, 8015, 8000,
                                       8015),
                        PortForwarding("pf-3", "tcp", b.id, b.ips[0], 9000, 9003, 22, 22))))
    router = make_router("router-1", (0,))
    rif6 = RouterInterface(router.interfaces[0].port_id, "net-0", "sub6-0", RIF6, 64,
                           router.interfaces[0].mac_address)
    router = dataclasses.replace(router, interfaces=router.interfaces + (rif6,), gateway=gw,
                                 floating_ips=fips)
    group = _group()
    views = {}
    for host in tunnel_ips:
        o = ofports[host]
        others = [h for h in tunnel_ips if h != host]
        nbrs = [Neighbour(EXT, INET_IP, INET_MAC)]
        if host == "hv1":
            nbrs.append(Neighbour(EXT, GW_IP, GW_MAC))  # the active gateway answers ARP
        else:
            nbrs.append(Neighbour(EXT, FIP_A, a.mac_address))
            nbrs.append(Neighbour(EXT, INET6, INET_MAC))
        views[host] = HostView(
            host=host, tunnel_ip=tunnel_ips[host], networks=(net0, ext), subnets=subs,
            ports=tuple(ports), security_groups=(group,),
            remote_hosts=tuple(RemoteHost(h, tunnel_ips[h]) for h in others),
            routers=(router,),
            chassis=Chassis(tuple(sorted(o["vifs"].items())), (("vxlan", o["vxlan"]),),
                            (("physnet1", o["patch"]),),
                            tuple((h, o["bfd"][h]) for h in others), (), tuple(nbrs)))
    return views


def _build(n_hosts, gateways, subnet):
    """A started cluster with our flows, the internet namespace and the
    instances on hv1; yields the Rig, then takes everything down."""
    from agent.openflow import Channel, CookieScope
    from tests.fixtures.multihost import Cluster

    cluster = Cluster(n=n_hosts, subnet=subnet).start()
    inet = rand_name("qinet-", 6)
    channels = {}
    try:
        run("ip", "netns", "add", inet)
        dev = cluster.provider.attach("inet", inet)
        netns_exec(inet, "ip", "link", "set", "lo", "up")
        netns_exec(inet, "ip", "link", "set", dev, "address", INET_MAC)
        netns_exec(inet, "ip", "addr", "add", f"{INET_IP}/24", "dev", dev)
        netns_exec(inet, "ethtool", "-K", dev, "tx", "off", check=False)
        netns_exec(inet, "ip", "-6", "addr", "add", f"{INET6}/64", "dev", dev, "nodad")
        # the upstream router's route to the tenant prefix (IPv6 is routed)
        netns_exec(inet, "ip", "-6", "route", "add", INT6_CIDR, "via", GW6)
        tunnel_ips = {h.name: h.tunnel_ip for h in cluster.hosts}
        ports = [make_port(0, i, "hv1", ("sg-open",)) for i in range(3)]
        ports[1] = dataclasses.replace(ports[1], fixed_ips=ports[1].fixed_ips + (
            FixedIP("sub6-0", B6),))
        ofports = {}
        for h in cluster.hosts:
            ovs = h.ovs
            ch = Channel(CookieScope.ours(), sock=ovs.listen_socket())
            ch.start()
            channels[h.name] = ch
            ovs.vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                      "datapath_type=netdev", "fail_mode=secure",
                      "other_config:disable-in-band=true")
            ovs.vsctl("set-controller", "br-int", ch.target)
            ch.wait_connected(timeout=10)
            ovs.vsctl("add-port", "br-int", "vxlan-flow", "--", "set", "Interface",
                      "vxlan-flow", "type=vxlan", "options:remote_ip=flow", "options:key=flow",
                      f"options:local_ip={h.tunnel_ip}")
            bfd = {}
            # per-remote tunnel ports with BFD (gwagent's plumbing makes these)
            for other in cluster.hosts:
                if other is h:
                    continue
                name = f"bfd-{other.name}"
                ovs.vsctl("add-port", "br-int", name, "--", "set", "Interface", name,
                          "type=vxlan", f"options:remote_ip={other.tunnel_ip}",
                          "options:key=flow", f"options:local_ip={h.tunnel_ip}",
                          "bfd:enable=true", "bfd:min_rx=100", "bfd:min_tx=100")
                bfd[other.name] = ovs.ofport(name)
            ovs.vsctl("add-port", "br-int", "int-phys", "--", "set", "Interface", "int-phys",
                      "type=patch", "options:peer=phys-int", "--", "add-port", "br-phys1",
                      "phys-int", "--", "set", "Interface", "phys-int", "type=patch",
                      "options:peer=int-phys")
            ofports[h.name] = {"vxlan": ovs.ofport("vxlan-flow"), "bfd": bfd,
                               "patch": ovs.ofport("int-phys"), "vifs": {}}
        cluster.prime_arp()
        hv1 = cluster["hv1"]
        inst = {}
        for name, p in zip("abc", ports):
            i = hv1.ovs.add_instance(p.ips[0], 24, mac=p.mac_address, iface_id=p.id)
            i.exec("ip", "route", "add", "default", "via", "10.0.0.1")
            inst[name] = i
            ofports["hv1"]["vifs"][p.id] = hv1.ovs.ofport(i.port)
        b6 = inst["b"]
        b6.exec("ip", "-6", "addr", "add", f"{B6}/64", "dev", b6.dev, "nodad")
        b6.exec("ip", "-6", "route", "add", "default", "via", RIF6)
        views = _views(ports, ofports, tunnel_ips, gateways)
        engines = {}
        for name, v in views.items():
            e = engines[name] = Engine.from_view(v)
            ch = channels[name]
            ch.apply(diff(ch.dump_flows(), e.flows()))
        # BFD up everywhere before the bundles pick a gateway
        for h in cluster.hosts:
            for other in cluster.hosts:
                if other is not h:
                    port = f"bfd-{other.name}"
                    assert eventually(lambda h=h, port=port: "state=up" in h.ovs.vsctl(
                        "get", "Interface", port, "bfd_status").replace('"', ""), 20), \
                        h.ovs.vsctl("get", "Interface", port, "bfd_status")
        yield Rig({h.name: h for h in cluster.hosts}, channels, engines, inst, inet)
    finally:
        for ch in channels.values():
            ch.stop()
        run("ip", "netns", "del", inet, check=False)
        cluster.stop()


@pytest.fixture(scope="module")
def rig():
    yield from _build(2, ("hv2",), "172.31.9")


def test_installed_flows_dump_back_equal(rig):
    """ct(nat(...)), bundle(active_backup) and the rest survive the switch:
    the reconciler sees installed == desired."""
    for name, ch in rig.channels.items():
        d = diff(ch.dump_flows(), rig.engines[name].flows())
        assert d.empty, (name, d)


def test_internet_reaches_an_instance_through_its_floating_ip(rig):
    lst = Listener(rig.inst["a"].ns, 8080)
    try:
        assert eventually(lambda: ping(rig.inet, FIP_A), 10)
        # the instance sees the internet's own address (DNAT only)
        assert connect(rig.inet, FIP_A, 8080) == f"from:{INET_IP}"
    finally:
        lst.stop()


def test_instance_with_a_floating_ip_goes_out_as_its_floating_ip(rig):
    lst = Listener(rig.inet, 8081)
    try:
        assert eventually(lambda: ping(rig.inst["a"].ns, INET_IP), 10)
        assert connect(rig.inst["a"].ns, INET_IP, 8081) == f"from:{FIP_A}"
    finally:
        lst.stop()


UDP_ECHO_PY = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(100); s.sendto(b"pong", peer)
"""


def udp_ask(ns, ip, port=5353) -> str:
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.settimeout(1.5); s.sendto(b'x', (%r, %d))\n"
            "try: print(s.recvfrom(100)[0].decode())\n"
            "except OSError: print('none')") % (ip, port)
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def test_security_groups_still_apply_to_floating_ip_traffic(rig):
    """a's group has no UDP ingress rule: a UDP server in a is not reached
    through the floating IP, and the refused connection leaves no entry in
    the router's ACL zone (where the allowed ping's entry is)."""
    proc = subprocess.Popen(["ip", "netns", "exec", rig.inst["a"].ns, sys.executable, "-c",
                             UDP_ECHO_PY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert udp_ask(rig.inet, FIP_A) == "none"
        assert ping(rig.inet, FIP_A)  # ICMP is allowed: the FIP itself works
        zone = rig.engines["hv1"].router_zone("router-1")
        ct = rig.hosts["hv1"].ovs.appctl("dpctl/dump-conntrack", "zone=%d" % zone)
        assert "dport=5353" not in ct, ct
        assert f"icmp,orig=(src={INET_IP}" in ct, ct
    finally:
        proc.kill()
        proc.wait(5)


def test_snat_through_the_gateway_host(rig):
    """b has no floating IP: its packets are redirected to hv2 and leave
    there as the gateway port's address."""
    lst = Listener(rig.inet, 8082)
    try:
        assert eventually(lambda: ping(rig.inst["b"].ns, INET_IP), 15)
        assert connect(rig.inst["b"].ns, INET_IP, 8082) == f"from:{GW_IP}"
    finally:
        lst.stop()
    ct = rig.hosts["hv2"].ovs.appctl("dpctl/dump-conntrack")
    assert "10.0.0.11" in ct  # translated on the gateway host
    assert ping(rig.inet, GW_IP)  # the gateway address answers from the outside
    # net-0's subnet in the external subnet's address scope: no SNAT, both
    # ways (the upstream routes the tenant prefix to the gateway address)
    _set_unnatted(rig, ("10.0.0.0/24",))
    netns_exec(rig.inet, "ip", "route", "add", "10.0.0.0/24", "via", GW_IP)
    out, inb = Listener(rig.inet, 8083), Listener(rig.inst["b"].ns, 8084)
    try:
        assert eventually(lambda: connect(rig.inst["b"].ns, INET_IP, 8083) == "from:10.0.0.11",
                          10)
        assert connect(rig.inet, "10.0.0.11", 8084) == f"from:{INET_IP}"
    finally:
        out.stop()
        inb.stop()
        netns_exec(rig.inet, "ip", "route", "del", "10.0.0.0/24", check=False)
        _set_unnatted(rig, ())
    assert connect(rig.inst["b"].ns, INET_IP, 8083) != "from:10.0.0.11"


def _set_unnatted(rig, cidrs):
    _set_router(rig, lambda r: dataclasses.replace(
        r, gateway=dataclasses.replace(r.gateway, unnatted=cidrs)))


def _set_router(rig, change):
    """router-1 changed by ``change`` on every host, flows applied."""
    from quantum_ovs.model import Delta

    for name, e in rig.engines.items():
        e.apply(Delta(revision=e.revision, routers=(change(e.routers["router-1"]),)))
        ch = rig.channels[name]
        ch.apply(diff(ch.dump_flows(), e.flows()))


def _set_scopes(rig, ipv6_interfaces, gateway_v6):
    """The address scope of router-1's IPv6 interfaces and of its
    gateway's IPv6 subnet."""
    _set_router(rig, lambda r: dataclasses.replace(
        r, gateway=dataclasses.replace(r.gateway, address_scope_v6=gateway_v6),
        interfaces=tuple(dataclasses.replace(i, address_scope_id=ipv6_interfaces)
                         if i.ip_version == 6 else i for i in r.interfaces)))


@pytest.mark.parametrize("port, past", [(2222, 2221), (9002, 9004)])
def test_port_forwarding_reaches_the_right_instance(rig, port, past):
    """FIP_PF:2222 -> b:22, and FIP_PF:9000-9003 -> b:22 (1-N, as Neutron's
    port ranges allow): a port past the forwarding reaches nothing."""
    lst = Listener(rig.inst["b"].ns, 22)
    try:
        assert eventually(lambda: connect(rig.inet, FIP_PF, port) == f"from:{INET_IP}", 15)
        assert connect(rig.inet, FIP_PF, past).startswith("fail")
    finally:
        lst.stop()


def test_a_port_forwarding_range_keeps_the_port(rig):
    """FIP_PF:8000-8015 -> b:8000-8015, masked: 8009 reaches b's 8009, 8016
    (past the range) nothing."""
    lst = Listener(rig.inst["b"].ns, 8009)
    past = Listener(rig.inst["b"].ns, 8016)
    try:
        assert eventually(lambda: connect(rig.inet, FIP_PF, 8009) == f"from:{INET_IP}", 15)
        assert connect(rig.inet, FIP_PF, 8016).startswith("fail")
    finally:
        lst.stop()
        past.stop()


def test_hairpin_between_floating_ips_of_one_router(rig):
    """a -> c's floating IP: SNAT to a's FIP, then DNAT to c, on hv1."""
    lst = Listener(rig.inst["c"].ns, 8083)
    try:
        assert eventually(lambda: connect(rig.inst["a"].ns, FIP_C, 8083) == f"from:{FIP_A}",
                          10)
    finally:
        lst.stop()


def test_hairpin_from_an_instance_without_floating_ip(rig):
    """b (SNAT on hv2) -> a's floating IP: out of hv2 as the gateway
    address, over the external network back to hv1, DNAT to a."""
    lst = Listener(rig.inst["a"].ns, 8084)
    try:
        assert eventually(lambda: connect(rig.inst["b"].ns, FIP_A, 8084) == f"from:{GW_IP}",
                          15)
    finally:
        lst.stop()



# ------------------------------------------------ the tracer vs ofproto/trace
_OVS_NAMES = {"eth_src": "dl_src", "eth_dst": "dl_dst", "ipv4_src": "nw_src",
              "ipv4_dst": "nw_dst", "tcp_src": "tp_src", "tcp_dst": "tp_dst"}


def _ovs_verdict(ovs, packet: dict):
    """(OpenFlow output ports, the last pass's final fields) of ofproto/trace
    (--ct-next trk,new for every pass: our tracer's default, a new
    connection everywhere)."""
    text = "tcp," + ",".join(f"{_OVS_NAMES.get(k, k)}={v}" for k, v in packet.items()
                             if k not in ("eth_type", "ip_proto")) + ",nw_ttl=64"
    out = ovs.appctl("ofproto/trace", "br-int", text, "--ct-next", "trk,new",
                     "--ct-next", "trk,new", "--ct-next", "trk,new", "--ct-next", "trk,new")
    ports = [int(m) for m in re.findall(r"^\s+output:(\d+)$", out, re.M)]
    # a bundle's choice is not printed: the rig's bundles have one member
    ports += [int(m) for m in re.findall(r"^\s+bundle\(.*members:(\d+)\)\n\s+-> output",
                                         out, re.M)]
    ports.sort()
    final = re.findall(r"^Final flow: (.*)$", out, re.M)[-1]
    fields = dict(kv.split("=", 1) for kv in final.split(",") if "=" in kv)
    return ports, {k: fields.get(v) for k, v in _OVS_NAMES.items()}, out


def _our_verdict(engine, packet: dict):
    tr = Tracer(engine.flows()).run(packet)
    ports = sorted(tr.ports)
    last = tr.outputs[-1].fields if tr.outputs else {}
    return ports, {k: (str(last[k]) if k in last else None) for k in _OVS_NAMES}, tr


def test_tracer_follows_nat_as_ofproto_trace_does(rig):
    """Inbound to a floating IP, outbound from it, the hairpin between two
    floating IPs (hv1); a redirected SNAT packet and a port forwarding
    (hv2): the same output ports and the same translated packet."""
    hv1, hv2 = rig.hosts["hv1"].ovs, rig.hosts["hv2"].ovs
    a, b, c = (rig.inst[k] for k in "abc")
    patch1, patch2 = hv1.ofport("int-phys"), hv2.ofport("int-phys")
    rmac = "fa:16:3d:00:00:01"  # the router's interface on net-0
    tcp = {"eth_type": 0x0800, "ip_proto": 6, "tcp_src": 40000}
    cases = [
        (hv1, "hv1", dict(in_port=patch1, eth_src=INET_MAC, eth_dst=a.mac, ipv4_src=INET_IP,
                          ipv4_dst=FIP_A, tcp_dst=8080, **tcp)),
        (hv1, "hv1", dict(in_port=hv1.ofport(a.port), eth_src=a.mac, eth_dst=rmac,
                          ipv4_src=a.ip, ipv4_dst=INET_IP, tcp_dst=80, **tcp)),
        (hv1, "hv1", dict(in_port=hv1.ofport(a.port), eth_src=a.mac, eth_dst=rmac,
                          ipv4_src=a.ip, ipv4_dst=FIP_C, tcp_dst=80, **tcp)),
        (hv1, "hv1", dict(in_port=hv1.ofport(b.port), eth_src=b.mac, eth_dst=rmac,
                          ipv4_src=b.ip, ipv4_dst=INET_IP, tcp_dst=80, **tcp)),
        (hv2, "hv2", dict(in_port=hv2.ofport("bfd-hv1"), tunnel_id=REDIRECT_KEY,
                          eth_src=GW_MAC, eth_dst=rmac, ipv4_src=b.ip, ipv4_dst=INET_IP,
                          tcp_dst=80, **tcp)),
        (hv2, "hv2", dict(in_port=patch2, eth_src=INET_MAC, eth_dst=GW_MAC, ipv4_src=INET_IP,
                          ipv4_dst=FIP_PF, tcp_dst=2222, **tcp)),
    ]
    for ovs, host, packet in cases:
        ours = _our_verdict(rig.engines[host], packet)
        theirs = _ovs_verdict(ovs, packet)
        assert ours[0], (host, packet, ours[2].format())
        assert ours[:2] == theirs[:2], (host, packet, ours[2].format(), theirs[2])
    # the translations seen: DNAT to a, SNAT to a's FIP, hairpin, gateway SNAT, forwarding
    got = [_our_verdict(rig.engines[h], p)[1] for _, h, p in cases]
    assert got[0]["ipv4_dst"] == a.ip
    assert got[1]["ipv4_src"] == FIP_A and got[1]["eth_dst"] == INET_MAC
    assert (got[2]["ipv4_src"], got[2]["ipv4_dst"]) == (FIP_A, c.ip)
    assert got[4]["ipv4_src"] == GW_IP
    assert (got[5]["ipv4_dst"], got[5]["tcp_dst"]) == (b.ip, "22")


def ping6(ns, ip) -> bool:
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-6", "-n", "-c", "1", "-W", "2", ip],
                       capture_output=True, text=True)
    return r.returncode == 0


def test_ipv6_is_routed_without_nat_through_the_gateway_host(rig):
    """b's IPv6 address reaches the internet and is reached from it, as it
    is (no NAT), through hv2; the gateway's IPv6 address answers pings."""
    b = rig.inst["b"]
    assert eventually(lambda: ping6(b.ns, INET6), 15)
    assert eventually(lambda: ping6(rig.inet, B6), 10)
    assert ping6(rig.inet, GW6)
    ct = rig.hosts["hv2"].ovs.appctl("dpctl/dump-conntrack")
    assert f"src={B6}" in ct or f"dst={B6}" in ct  # routed on the gateway host, untranslated
    # Neutron's address scope rule: b's IPv6 subnet in a scope the
    # external subnet is not in goes neither out nor in; both in it, again
    try:
        _set_scopes(rig, "scope-a", None)
        assert not ping6(b.ns, INET6) and not ping6(rig.inet, B6)
        assert ping6(rig.inet, GW6)  # the gateway itself still answers
        _set_scopes(rig, "scope-a", "scope-a")
        assert eventually(lambda: ping6(b.ns, INET6), 10)
        assert eventually(lambda: ping6(rig.inet, B6), 10)
    finally:
        _set_scopes(rig, None, None)



def test_hairpin_to_its_own_floating_ip(rig):
    """a -> a's own floating IP: out and back in on hv1, the translated
    packet leaving by the port it came in on."""
    lst = Listener(rig.inst["a"].ns, 8090)
    try:
        assert eventually(lambda: connect(rig.inst["a"].ns, FIP_A, 8090) == f"from:{FIP_A}", 10)
        assert ping(rig.inst["a"].ns, FIP_A)
    finally:
        lst.stop()


FIP_VIP = "172.24.4.70"
VIP = "10.0.0.70"


def test_an_unbound_vips_floating_ip_reaches_the_instance_holding_the_vip(rig):
    """An Octavia-style VIP: a port bound to no host holds VIP, instance b
    (on hv1) has it as an allowed address pair and on its interface, and
    FIP_VIP is associated with the VIP port.  The router's active gateway
    host (hv2) answers for FIP_VIP and DNATs it to VIP, routed over the
    tunnel to b; b's replies, redirected to hv2 as all of the router's
    outbound traffic is, leave as FIP_VIP."""
    from quantum_ovs.model import AddressPair, Delta, Port

    b = rig.engines["hv1"].ports[rig.inst["b"].iface_id]
    vip = Port(id="vip-port", network_id="net-0", mac_address="fa:16:3e:00:00:70",
               fixed_ips=(FixedIP("subnet-0", VIP),), host=None, security_groups=("sg-open",))
    fip = FloatingIP("fip-vip", FIP_VIP, EXT, vip.id, VIP, vip.mac_address)
    holder = dataclasses.replace(b, allowed_address_pairs=(AddressPair(VIP, b.mac_address),))

    def apply(ports, removed=(), fips=None):
        for name, e in rig.engines.items():
            r = e.routers["router-1"]
            e.apply(Delta(revision=e.revision, ports=ports, removed_ports=removed,
                          routers=(dataclasses.replace(r, floating_ips=fips(r)),)))
            ch = rig.channels[name]
            ch.apply(diff(ch.dump_flows(), e.flows()))

    inst = rig.inst["b"]
    inst.exec("ip", "addr", "add", f"{VIP}/32", "dev", inst.dev)
    apply((vip, holder), fips=lambda r: r.floating_ips + (fip,))
    lst = Listener(inst.ns, 8070)
    try:
        assert rig.engines["hv2"].desired.owner_flows(("floating-ip", fip.id))
        assert not rig.engines["hv1"].desired.owner_flows(("floating-ip", fip.id))
        assert eventually(lambda: connect(rig.inet, FIP_VIP, 8070) == f"from:{INET_IP}", 15)
    finally:
        lst.stop()
        inst.exec("ip", "addr", "del", f"{VIP}/32", "dev", inst.dev)
        apply((b,), removed=(vip.id,),
              fips=lambda r: tuple(f for f in r.floating_ips if f.id != fip.id))
