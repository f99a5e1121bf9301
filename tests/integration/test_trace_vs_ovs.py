"""Our packet tracer agrees with the switch.

A hand-made host view (a VXLAN and a VLAN network; local ports with
different security groups, one without port security, one disabled;
ports on two remote hosts) is compiled and installed on a private
Open vSwitch whose br-int has real ports at the ofports the view names:
internal ports for the VIFs and for the physical network's uplink, a
flow-based VXLAN port whose native tunnelling reaches an underlay bridge.
Then, for a deterministic set of generated packets (ARP, IPv4 ICMP/TCP/
UDP, IPv6, DHCP, spoofed sources, broadcast and unknown unicast, to remote
MACs, from the tunnel with a key, from the physical network with a tag),
the verdict of ``quantum_ovs.compiler.trace`` must equal the one read
from ``ovs-appctl ofproto/trace``'s "Datapath actions:" lines: the set of
outputs (port; VLAN tag; tunnel key and destination), the controller, or
nothing (drop).  Packets that reach conntrack get the same state on both
sides (``--ct-next``).

The view has a router between the two networks (an IPv4 interface on
each, an IPv6 one on the VXLAN network): routed packets (to local ports,
over the tunnel, out of the VLAN uplink), ARP / neighbour solicitations
for the router and pings of it are compared too.  The router's flows use
actions the agent's encoder does not speak yet (dec_ttl, nd_reserved,
nd_options_type), so they are installed with ovs-ofctl, outside our
cookie scope.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import subprocess
from dataclasses import dataclass

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.compile import compile_flows
from quantum_ovs.compiler.flow import (
    CT_EST,
    CT_INV,
    CT_NEW,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Controller,
    Ct,
    DecTtl,
    GotoTable,
    Meter,
    Move,
    Output,
    SetField,
    diff,
    meter_ids,
)
from quantum_ovs.compiler.synth import (
    default_group,
    make_network,
    make_port,
    make_router,
    make_subnet,
    router_mac,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import (
    AddressPair,
    Chassis,
    HostView,
    RemoteHost,
    RouterInterface,
    Rule,
    SecurityGroup,
    Subnet,
)
from quantum_ovs.testing.ovs import rand_name

LOCAL_TUNNEL_IP = "192.168.0.1"
REMOTE_HOSTS = (RemoteHost("host-r0", "192.168.0.2"), RemoteHost("host-r1", "192.168.0.3"))
VXLAN_VNI = 1000  # make_network(0, "vxlan")
VLAN_VID = 101  # make_network(1, "vlan")
BCAST = "ff:ff:ff:ff:ff:ff"
UNKNOWN_MAC = "fa:16:3e:99:99:99"
CT_NAMES = {CT_NEW: "new", CT_EST: "est", CT_INV: "inv"}


# ---------------------------------------------------------------- the view
def build_ports():
    """Local and remote ports of the two networks (synth ids/MACs/IPs)."""
    local = [
        make_port(0, 0, groups=("sg-default",)),
        make_port(0, 1, groups=("sg-web",)),
        make_port(0, 2, groups=("sg-web", "sg-default"),
                  allowed_address_pairs=(AddressPair("10.0.0.200", "fa:16:3e:00:00:c8"),)),
        make_port(0, 3, groups=("sg-default",), admin_state_up=False),
        make_port(1, 0, groups=("sg-default",)),
        make_port(1, 1, groups=(), port_security_enabled=False),
    ]
    remote = [
        make_port(0, 4, host="host-r0", groups=("sg-default",)),
        make_port(0, 5, host="host-r1", groups=("sg-web",)),
        make_port(1, 2, host="host-r0", groups=("sg-default",)),
    ]
    return local, remote


def build_groups(ports):
    def members(gid):
        return [ip for p in ports if gid in p.security_groups for ip in p.ips]

    web = SecurityGroup("sg-web", (
        Rule("web-eg4", "sg-web", "egress", "IPv4"),
        Rule("web-http", "sg-web", "ingress", "IPv4", 6, 80, 80, remote_ip_prefix="0.0.0.0/0"),
        Rule("web-alt", "sg-web", "ingress", "IPv4", 6, 8000, 8080,
             remote_ip_prefix="10.0.0.0/24"),
        Rule("web-icmp", "sg-web", "ingress", "IPv4", 1, remote_group_id="sg-default"),
        Rule("web-dns", "sg-web", "ingress", "IPv4", 17, 53, 53, remote_group_id="sg-web"),
        # Protocols by number only (see test_rule_protocols_on_the_switch).
        Rule("web-ipip", "sg-web", "ingress", "IPv4", 4),
        Rule("web-hopopt", "sg-web", "ingress", "IPv4", 0),
    ), frozenset(members("sg-web")))
    return (default_group(members=members("sg-default")), web)


ROUTER_V6 = "fd00::1"


def build_router():
    r = make_router("router-1", (0, 1))
    v6 = RouterInterface("rif-0", "net-0", "sub6-0", ROUTER_V6, 64, router_mac(0))
    return dataclasses.replace(r, interfaces=r.interfaces + (v6,))


def build_view(vif_ofports, tunnel_ofport, physnet_ofport):
    local, remote = build_ports()
    ports = local + remote
    return HostView(
        host="host-a", tunnel_ip=LOCAL_TUNNEL_IP, routers=(build_router(),),
        networks=(make_network(0, "vxlan", 1), make_network(1, "vlan", 2)),
        subnets=(make_subnet(0), make_subnet(1),
                 Subnet("sub6-0", "net-0", "fd00::/64", 6, gateway_ip=ROUTER_V6)),
        ports=tuple(ports), security_groups=build_groups(ports), remote_hosts=REMOTE_HOSTS,
        chassis=Chassis(tuple(sorted(vif_ofports.items())), (("vxlan", tunnel_ofport),),
                        (("physnet1", physnet_ofport),)),
    )


# ---------------------------------------------------------------- the rig
@dataclass
class Rig:
    ovs: object
    view: HostView
    flows: frozenset
    tracer: Tracer
    ofports: dict  # port id -> ofport
    tunnel: int  # ofport of the VXLAN port
    physnet: int  # ofport of the physical network's uplink
    odp_to_ofport: dict  # datapath port number -> br-int ofport
    ignore_odp: frozenset  # underlay ports (the outer packet of a tunnel push)
    tunnel_odp: int
    channel: object = None  # the agent's OpenFlow channel to br-int (to change the flows)


def _dpif_ports(ovs):
    """{bridge: {name: (ofport, odp port)}} from dpif/show."""
    out, bridge = {}, None
    for line in ovs.appctl("dpif/show").splitlines():
        m = re.match(r"^  (\S+):$", line)
        if m:
            bridge = m.group(1)
            out[bridge] = {}
            continue
        m = re.match(r"^    (\S+) (\d+)/(\d+):", line)
        if m and bridge:
            out[bridge][m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


@contextlib.contextmanager
def switch(ovs, local_port_ids, remote_hosts=None, tunnel_ip=None):
    """br-int on ``ovs`` with an agent's Channel, a VXLAN port, an underlay
    bridge that native tunnelling routes 192.168.0.0/24 through (its own
    address, a neighbour entry per remote host, one port where the outer
    packets leave), an internal port per local port id (the VIFs) and one
    for the physical network's uplink: (channel, {port id: ofport}, tunnel
    ofport, physnet ofport, underlay bridge, tunnel port name)."""
    from agent.openflow import Channel, CookieScope
    from agent.ovsdb import Connection, Ovsdb

    remote_hosts = REMOTE_HOSTS if remote_hosts is None else remote_hosts
    tunnel_ip = tunnel_ip or LOCAL_TUNNEL_IP
    conn = Connection(ovs.db_remote).start()
    ch = Channel(CookieScope.ours(), sock=ovs.listen_socket())
    ch.start()
    underlay = rand_name("ul", 6)
    try:
        api = Ovsdb(conn)
        api.ensure_bridge("br-int", datapath_type="netdev", controller=ch.target,
                          connection_mode="out-of-band")
        ch.wait_connected(timeout=10)
        vx = rand_name("vx", 6)
        api.ensure_tunnel_port("br-int", vx, "vxlan", local_ip=tunnel_ip)
        ovs.add_bridge(underlay)
        wire = rand_name("uw", 6)
        ovs.vsctl("add-port", underlay, wire, "--", "set", "Interface", wire, "type=internal")
        ovs.exec("ip", "addr", "add", f"{tunnel_ip}/24", "dev", underlay)
        ovs.exec("ip", "link", "set", underlay, "up")
        ovs.ofctl("del-flows", underlay)
        ovs.ofctl("add-flow", underlay, f"priority=0,actions=output:{wire}")
        for i, h in enumerate(remote_hosts):
            ovs.appctl("tnl/neigh/set", underlay, h.tunnel_ip, f"aa:55:aa:55:00:{i + 2:02x}")
        names = {pid: rand_name("t", 8) for pid in local_port_ids}
        phys = rand_name("ph", 6)
        args = []
        for name in [*names.values(), phys]:
            args += ["--", "add-port", "br-int", name, "--", "set", "Interface", name,
                     "type=internal"]
        ovs.vsctl(*args)
        ofports = {pid: ovs.ofport(name) for pid, name in names.items()}
        yield ch, ofports, api.wait_ofport(vx), ovs.ofport(phys), underlay, vx
    finally:
        ch.stop()
        conn.stop()
        ovs.vsctl("--if-exists", "del-br", "br-int", check=False)
        ovs.vsctl("--if-exists", "del-br", underlay, check=False)


@pytest.fixture(scope="module")
def rig(module_ovs):
    ovs = module_ovs
    local, _remote = build_ports()
    with switch(ovs, [p.id for p in local]) as (ch, ofports, tunnel, physnet, underlay, vx):
        view = build_view(ofports, tunnel, physnet)
        flows = compile_flows(view)
        routing = {f for f in flows if cookies.kind_of(f.cookie) == cookies.KIND_ROUTER}
        assert routing
        ch.apply(diff(ch.dump_flows(), flows - routing))
        assert diff(ch.dump_flows(), flows - routing).empty
        for mid in meter_ids(routing):  # the TTL punt's meter
            ovs.ofctl("add-meter", "br-int",
                      f"meter={mid},pktps,band=type=drop,rate=50")
        for f in sorted(routing, key=lambda f: (f.table, f.priority)):
            ovs.ofctl("add-flow", "br-int", ofctl_text(f))
        dp = _dpif_ports(ovs)
        odp = {o: ofp for ofp, o in dp["br-int"].values()}
        yield Rig(ovs=ovs, view=view, flows=flows, tracer=Tracer(flows), ofports=ofports,
                  tunnel=tunnel, physnet=physnet, odp_to_ofport=odp,
                  ignore_odp=frozenset(o for _, o in dp[underlay].values()),
                  tunnel_odp=dp["br-int"][vx][1])


# ovs-ofctl syntax of the router's flows (see the module doc).
_OFCTL_MATCH = {"eth_type": "dl_type", "eth_src": "dl_src", "eth_dst": "dl_dst",
                "ip_proto": "nw_proto", "ipv4_src": "nw_src", "ipv4_dst": "nw_dst",
                "icmpv4_type": "icmp_type", "ipv6_nd_target": "nd_target"}
_OFCTL_FIELD = {"ipv4_src": "ip_src", "ipv4_dst": "ip_dst", "icmpv4_type": "icmp_type",
                "ipv6_nd_tll": "nd_tll", "ipv6_nd_sll": "nd_sll"}


def _ofctl_value(v):
    return hex(v) if isinstance(v, int) else v


def ofctl_text(f) -> str:
    match = []
    for t in f.match:
        name = _OFCTL_MATCH.get(t.name, t.name)
        v = _ofctl_value(t.value)
        match.append(f"{name}={v}" if t.mask is None else f"{name}={v}/{_ofctl_value(t.mask)}")
    acts = []
    for a in f.actions:
        if isinstance(a, SetField):
            acts.append(f"set_field:{_ofctl_value(a.value)}->{_OFCTL_FIELD.get(a.name, a.name)}")
        elif isinstance(a, Move):
            src, dst = _OFCTL_FIELD.get(a.src, a.src), _OFCTL_FIELD.get(a.dst, a.dst)
            acts.append(f"move:{src}[{a.src_ofs}..{a.src_ofs + a.n_bits - 1}]->"
                        f"{dst}[{a.dst_ofs}..{a.dst_ofs + a.n_bits - 1}]")
        elif isinstance(a, Output):
            acts.append("in_port" if a.port == OFPP_IN_PORT else f"output:{a.port}")
        elif isinstance(a, DecTtl):
            acts.append("dec_ttl")
        elif isinstance(a, Ct):
            zone = f"{a.zone_src}[0..15]" if a.zone_src else str(a.zone)
            acts.append(f"ct({'commit,' if a.commit else ''}zone={zone}"
                        + (f",table={a.table})" if a.table is not None else ")"))
        elif isinstance(a, GotoTable):
            acts.append(f"goto_table:{a.table}")
        elif isinstance(a, Meter):
            acts.append(f"meter:{a.id}")
        elif isinstance(a, Controller):
            acts.append("controller")
        else:
            raise AssertionError(f"no ovs-ofctl text for {a!r}")
    return (f"table={f.table},priority={f.priority},{','.join(match)},"
            f"actions={','.join(acts) or 'drop'}")


# ---------------------------------------------------------------- packets
@dataclass(frozen=True)
class Case:
    name: str
    packet: dict  # tracer field names
    ct: int = CT_NEW


def _ip4(src_port, dst_mac, dst_ip, proto, **l4):
    p = {"eth_src": src_port.mac_address, "eth_dst": dst_mac, "eth_type": 0x0800,
         "ipv4_src": src_port.ips[0], "ipv4_dst": dst_ip, "ip_proto": proto}
    p.update(l4)
    return p


L4 = {
    "icmp-echo": (1, {"icmpv4_type": 8, "icmpv4_code": 0}),
    "tcp-80": (6, {"tcp_src": 40000, "tcp_dst": 80}),
    "tcp-22": (6, {"tcp_src": 40000, "tcp_dst": 22}),
    "tcp-8080": (6, {"tcp_src": 40000, "tcp_dst": 8080}),
    "udp-53": (17, {"udp_src": 40000, "udp_dst": 53}),
}


# ipip (4) and hopopt (0) are allowed into port-0-1, the neighbours are not.
PROTOCOL_PROBES = {0: True, 3: False, 4: True, 5: False, 47: False}


def generate(rig: Rig) -> list[Case]:
    """About 250 packets, the same every run."""
    view = rig.view
    ports = list(view.ports)
    by_net = {n.id: [p for p in ports if p.network_id == n.id] for n in view.networks}
    local = [p for p in ports if p.id in rig.ofports]
    cases: list[Case] = []

    def add(name, in_port, packet, ct=CT_NEW):
        cases.append(Case(name, dict(packet, in_port=in_port), ct))

    for src in local:
        inp = rig.ofports[src.id]
        peers = [p for p in by_net[src.network_id] if p.id != src.id]
        # IPv4 to every peer (local and remote), new; some established/invalid.
        for dst, (l4name, (proto, l4)) in itertools.product(peers, L4.items()):
            add(f"{src.id}->{dst.id} {l4name}", inp,
                _ip4(src, dst.mac_address, dst.ips[0], proto, **l4))
        for dst, ct in itertools.product(peers[:2], (CT_EST, CT_INV)):
            add(f"{src.id}->{dst.id} tcp-22 {CT_NAMES[ct]}", inp,
                _ip4(src, dst.mac_address, dst.ips[0], 6, tcp_src=40000, tcp_dst=22), ct)
        # ARP requests for every address of the network, and an unknown one.
        subnet_prefix = src.ips[0].rsplit(".", 1)[0]
        for target in [p.ips[0] for p in peers] + [f"{subnet_prefix}.250"]:
            add(f"{src.id} arp who-has {target}", inp, {
                "eth_src": src.mac_address, "eth_dst": BCAST, "eth_type": 0x0806,
                "arp_op": 1, "arp_spa": src.ips[0], "arp_sha": src.mac_address,
                "arp_tpa": target})
        # Spoofing: a foreign source IP, a foreign source MAC, a lying ARP.
        peer = peers[0]
        add(f"{src.id} spoofed ip", inp,
            dict(_ip4(src, peer.mac_address, peer.ips[0], 6, tcp_src=1, tcp_dst=80),
                 ipv4_src=f"{subnet_prefix}.201"))
        add(f"{src.id} spoofed mac", inp,
            dict(_ip4(src, peer.mac_address, peer.ips[0], 6, tcp_src=1, tcp_dst=80),
                 eth_src="fa:16:3e:de:ad:01"))
        add(f"{src.id} spoofed arp", inp, {
            "eth_src": src.mac_address, "eth_dst": BCAST, "eth_type": 0x0806, "arp_op": 1,
            "arp_spa": f"{subnet_prefix}.201", "arp_sha": src.mac_address,
            "arp_tpa": peer.ips[0]})
        # Broadcast and unknown unicast, DHCP discover, IPv6.
        add(f"{src.id} udp broadcast", inp,
            _ip4(src, BCAST, f"{subnet_prefix}.255", 17, udp_src=5000, udp_dst=5000))
        add(f"{src.id} unknown unicast", inp,
            _ip4(src, UNKNOWN_MAC, f"{subnet_prefix}.250", 6, tcp_src=1, tcp_dst=80))
        add(f"{src.id} dhcp discover", inp, {
            "eth_src": src.mac_address, "eth_dst": BCAST, "eth_type": 0x0800,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "255.255.255.255", "ip_proto": 17,
            "udp_src": 68, "udp_dst": 67})
        add(f"{src.id} dhcp server (rogue)", inp,
            _ip4(src, BCAST, "255.255.255.255", 17, udp_src=67, udp_dst=68))
        lla = _link_local(src.mac_address)
        add(f"{src.id} ipv6 tcp from link-local", inp, {
            "eth_src": src.mac_address, "eth_dst": peer.mac_address, "eth_type": 0x86DD,
            "ipv6_src": lla, "ipv6_dst": _link_local(peer.mac_address), "ip_proto": 6,
            "tcp_src": 1, "tcp_dst": 80})
        add(f"{src.id} ipv6 neighbour solicitation", inp, {
            "eth_src": src.mac_address, "eth_dst": "33:33:ff:00:00:01", "eth_type": 0x86DD,
            "ipv6_src": lla, "ipv6_dst": "ff02::1:ff00:1", "ip_proto": 58,
            "icmpv6_type": 135, "icmpv6_code": 0,
            "ipv6_nd_target": _link_local(peer.mac_address)})
    # IP protocols without ports, to a port whose group allows 4 and 0.
    for proto in PROTOCOL_PROBES:
        add(f"port-0-0->port-0-1 ip proto {proto}", rig.ofports["port-0-0"],
            _ip4(by_net["net-0"][0], by_net["net-0"][1].mac_address,
                 by_net["net-0"][1].ips[0], proto))
    # The allowed address pair of port-0-2.
    pair_port = next(p for p in local if p.allowed_address_pairs)
    pair = pair_port.allowed_address_pairs[0]
    target = next(p for p in local if p.network_id == pair_port.network_id and p != pair_port)
    add("address pair source", rig.ofports[pair_port.id], dict(
        _ip4(pair_port, target.mac_address, target.ips[0], 6, tcp_src=1, tcp_dst=80),
        eth_src=pair.mac_address, ipv4_src=pair.ip_address))

    # From the tunnel: the remote ports of the VXLAN network talk to local ones.
    vx_net = view.networks[0]
    hosts = {h.name: h.tunnel_ip for h in view.remote_hosts}
    for src in (p for p in by_net[vx_net.id] if p.host != view.host):
        tun = {"tunnel_id": VXLAN_VNI, "tun_ipv4_src": hosts[src.host],
               "tun_ipv4_dst": LOCAL_TUNNEL_IP}
        for dst in (p for p in by_net[vx_net.id] if p.id in rig.ofports):
            for l4name in ("icmp-echo", "tcp-80", "udp-53"):
                proto, l4 = L4[l4name]
                add(f"tunnel {src.id}->{dst.id} {l4name}", rig.tunnel,
                    dict(_ip4(src, dst.mac_address, dst.ips[0], proto, **l4), **tun))
            add(f"tunnel {src.id}->{dst.id} est", rig.tunnel,
                dict(_ip4(src, dst.mac_address, dst.ips[0], 6, tcp_src=22, tcp_dst=40000),
                     **tun), CT_EST)
        add(f"tunnel {src.id} arp broadcast", rig.tunnel, dict(tun, **{
            "eth_src": src.mac_address, "eth_dst": BCAST, "eth_type": 0x0806, "arp_op": 1,
            "arp_spa": src.ips[0], "arp_sha": src.mac_address, "arp_tpa": "10.0.0.10"}))
    # From a source that is no known host (anyone reaching the tunnel
    # address): a forged ARP reply, dropped on the switch too.
    forger = by_net[vx_net.id][4]
    add("tunnel unknown source", rig.tunnel, {
        "tunnel_id": VXLAN_VNI, "tun_ipv4_src": "203.0.113.66",
        "tun_ipv4_dst": LOCAL_TUNNEL_IP, "eth_src": "fa:16:3e:66:66:66", "eth_dst": BCAST,
        "eth_type": 0x0806, "arp_op": 2, "arp_spa": forger.ips[0],
        "arp_sha": "fa:16:3e:66:66:66", "arp_tpa": "10.0.0.10"})
    add("tunnel unknown key", rig.tunnel, dict(
        _ip4(by_net[vx_net.id][4], by_net[vx_net.id][0].mac_address,
             by_net[vx_net.id][0].ips[0], 6, tcp_src=1, tcp_dst=80),
        tunnel_id=4242, tun_ipv4_src="192.168.0.2", tun_ipv4_dst=LOCAL_TUNNEL_IP))

    # From the physical network: tagged with the VLAN network's id.
    vl_net = view.networks[1]
    rsrc = next(p for p in by_net[vl_net.id] if p.host != view.host)
    tag = {"vlan_vid": OFPVID_PRESENT | VLAN_VID}
    for dst in (p for p in by_net[vl_net.id] if p.id in rig.ofports):
        for l4name in ("icmp-echo", "tcp-80"):
            proto, l4 = L4[l4name]
            add(f"vlan {rsrc.id}->{dst.id} {l4name}", rig.physnet,
                dict(_ip4(rsrc, dst.mac_address, dst.ips[0], proto, **l4), **tag))
    add("vlan arp broadcast", rig.physnet, dict(tag, **{
        "eth_src": rsrc.mac_address, "eth_dst": BCAST, "eth_type": 0x0806, "arp_op": 1,
        "arp_spa": rsrc.ips[0], "arp_sha": rsrc.mac_address, "arp_tpa": "10.0.1.10"}))
    add("vlan foreign tag", rig.physnet, dict(
        _ip4(rsrc, by_net[vl_net.id][0].mac_address, by_net[vl_net.id][0].ips[0], 6,
             tcp_src=1, tcp_dst=80), vlan_vid=OFPVID_PRESENT | 999))
    add("vlan untagged", rig.physnet,
        _ip4(rsrc, by_net[vl_net.id][0].mac_address, by_net[vl_net.id][0].ips[0], 6,
             tcp_src=1, tcp_dst=80))
    return cases


def generate_routed(rig: Rig) -> list[Case]:
    """Packets to the router: routed to every port of the other network
    (local, over the VLAN uplink) and back (local, over the tunnel), pings
    of its addresses, ARP and neighbour solicitations for them, a packet
    to an address nobody holds, an expiring TTL left out (whether the
    switch punts it depends on the controller's async config)."""
    view = rig.view
    by_net = {n.id: [p for p in view.ports if p.network_id == n.id] for n in view.networks}
    cases: list[Case] = []

    def add(name, src, packet, ct=CT_NEW):
        ttl = {"nw_ttl": 64} if packet["eth_type"] == 0x0800 else {}
        cases.append(Case(name, dict(packet, in_port=rig.ofports[src.id], **ttl), ct))

    for src_net, dst_net, rmac in (("net-0", "net-1", router_mac(0)),
                                   ("net-1", "net-0", router_mac(1))):
        src = next(p for p in by_net[src_net] if p.id in rig.ofports and p.admin_state_up)
        for dst in by_net[dst_net]:
            for l4name in ("tcp-80", "icmp-echo"):
                proto, l4 = L4[l4name]
                add(f"routed {src.id}->{dst.id} {l4name}", src,
                    _ip4(src, rmac, dst.ips[0], proto, **l4))
        add(f"routed {src.id}->nobody", src,
            _ip4(src, rmac, dst.ips[0].rsplit(".", 1)[0] + ".250", 6, tcp_src=1, tcp_dst=80))
        add(f"routed {src.id}->{dst.id} est", src,
            _ip4(src, rmac, by_net[dst_net][0].ips[0], 6, tcp_src=80, tcp_dst=40000), CT_EST)
        for gw in ("10.0.0.1", "10.0.1.1"):
            proto, l4 = L4["icmp-echo"]
            add(f"{src.id} ping {gw}", src, _ip4(src, rmac, gw, proto, **l4))
        gw = "10.0.0.1" if src_net == "net-0" else "10.0.1.1"
        add(f"{src.id} arp who-has {gw}", src, {
            "eth_src": src.mac_address, "eth_dst": BCAST, "eth_type": 0x0806, "arp_op": 1,
            "arp_spa": src.ips[0], "arp_sha": src.mac_address, "arp_tpa": gw})
    src = rig.view.ports[0]
    for target in (ROUTER_V6, _link_local(router_mac(0))):
        add(f"{src.id} neighbour solicitation for {target}", src, {
            "eth_src": src.mac_address, "eth_dst": "33:33:ff:00:00:01", "eth_type": 0x86DD,
            "ipv6_src": _link_local(src.mac_address), "ipv6_dst": "ff02::1:ff00:1",
            "ip_proto": 58, "icmpv6_type": 135, "icmpv6_code": 0, "ipv6_nd_target": target})
    return cases


def _link_local(mac: str) -> str:
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xFF, 0xFE00 | b[3], (b[4] << 8) | b[5]]
    return "fe80::" + ":".join(f"{w:x}" for w in words)


# ---------------------------------------------------------------- verdicts
def our_verdict(rig: Rig, case: Case) -> frozenset:
    tr = rig.tracer.run(case.packet, case.ct)
    out = set()
    for d in tr.outputs:
        if d.port == rig.tunnel:
            out.add(("tunnel", d.port, d.get("tunnel_id"), d.get("tun_ipv4_dst")))
        else:
            vid = d.get("vlan_vid", 0)
            out.add(("port", d.port, vid & 0xFFF if vid & OFPVID_PRESENT else None))
    if tr.controller:
        out.add(("controller",))
    return frozenset(out)


OVS_FIELDS = {  # tracer name -> ovs-ofctl flow syntax, in prerequisite order
    "vlan_vid": "dl_vlan", "eth_src": "dl_src", "eth_dst": "dl_dst",
    "tunnel_id": "tun_id", "tun_ipv4_src": "tun_src", "tun_ipv4_dst": "tun_dst",
    "ipv4_src": "nw_src", "ipv4_dst": "nw_dst", "ipv6_src": "ipv6_src", "ipv6_dst": "ipv6_dst",
    "tcp_src": "tcp_src", "tcp_dst": "tcp_dst", "udp_src": "udp_src", "udp_dst": "udp_dst",
    "icmpv4_type": "icmp_type", "icmpv4_code": "icmp_code",
    "icmpv6_type": "icmpv6_type", "icmpv6_code": "icmpv6_code",
    "ipv6_nd_target": "nd_target",
    "arp_op": "arp_op", "arp_spa": "arp_spa", "arp_tpa": "arp_tpa", "arp_sha": "arp_sha",
    "arp_tha": "arp_tha", "nw_ttl": "nw_ttl",
}
SHORTHAND = {(0x0800, 6): "tcp", (0x0800, 17): "udp", (0x0800, 1): "icmp",
             (0x86DD, 6): "tcp6", (0x86DD, 17): "udp6", (0x86DD, 58): "icmp6"}


def ovs_flow(packet: dict) -> str:
    eth, proto = packet.get("eth_type"), packet.get("ip_proto")
    parts = [f"in_port={packet['in_port']}"]
    if (eth, proto) in SHORTHAND:
        parts.append(SHORTHAND[(eth, proto)])
    elif eth == 0x0806:
        parts.append("arp")
    elif eth in (0x0800, 0x86DD):
        parts.append("ip" if eth == 0x0800 else "ipv6")
        if proto is not None:
            parts.append(f"nw_proto={proto}")
    elif eth is not None:
        parts.append(f"dl_type={eth:#06x}")
    for name, ovs_name in OVS_FIELDS.items():
        if name in packet:
            v = packet[name]
            if name == "vlan_vid":
                if not v & OFPVID_PRESENT:
                    continue
                v &= 0xFFF
            parts.append(f"{ovs_name}={v}")
    unknown = set(packet) - set(OVS_FIELDS) - {"in_port", "eth_type", "ip_proto"}
    assert not unknown, f"no ovs-ofctl name for {unknown}"
    return ",".join(parts)


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    items, depth, cur = [], 0, []
    for c in text:
        if c == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        depth += (c == "(") - (c == ")")
        cur.append(c)
    if cur:
        items.append("".join(cur))
    return [i.strip() for i in items if i.strip()]


def ovs_trace(rig: Rig, case: Case) -> str:
    ct = "trk," + CT_NAMES[case.ct]
    flow = ovs_flow(case.packet)
    cmd = ["ovs-appctl", "--target=" + rig.ovs._ctl("ovs-vswitchd"), "ofproto/trace",
           "br-int", flow]
    for _ in range(8):  # one per recirculation (egress, and each ingress)
        cmd += ["--ct-next", ct]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=rig.ovs.env, timeout=20)
    if proc.returncode != 0:
        raise AssertionError(f"ofproto/trace failed for {case.name}: {flow}\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc.stdout


def ovs_verdict(rig: Rig, text: str) -> frozenset:
    """The outputs of every "Datapath actions:" line (the first pass and
    each recirculation), each line starting from the VLAN of the "Flow:"
    line above it (a recirculated packet is forked where ct() was called,
    before any later push_vlan)."""
    sections, vlan = [], None
    for ln in text.splitlines():
        if ln.startswith("Flow: "):
            m = re.search(r"[:,]dl_vlan=(\d+)", ln)
            vlan = int(m.group(1)) if m else None
        elif ln.startswith("Datapath actions:"):
            sections.append((ln.split(":", 1)[1].strip(), vlan))
    assert sections, f"no 'Datapath actions:' line in\n{text}"
    out = set()

    def walk(actions: list[str], st: dict) -> None:
        for a in actions:
            if a.isdigit():
                odp = int(a)
                if odp in rig.ignore_odp:
                    continue  # the outer packet of a tunnel push, on the underlay
                assert odp in rig.odp_to_ofport, f"output to unknown datapath port {a}"
                out.add(("port", rig.odp_to_ofport[odp], st["vlan"]))
            elif a.startswith("tnl_push("):
                m = re.search(r"tnl_port\((\d+)\)", a)
                assert m and int(m.group(1)) == rig.tunnel_odp, a
                vni = re.search(r"vni=(0x[0-9a-f]+|\d+)", a)
                dst = re.search(r"ipv4\(src=[\d.]+,dst=([\d.]+)", a)
                assert vni and dst, a
                out.add(("tunnel", rig.tunnel, int(vni.group(1), 0), dst.group(1)))
            elif a.startswith("clone("):
                walk(_split_top(a[len("clone("):-1]), dict(st))
            elif a.startswith("push_vlan("):
                st["vlan"] = int(re.search(r"vid=(\d+)", a).group(1))
            elif a == "pop_vlan":
                st["vlan"] = None
            elif a.startswith("userspace(") and "controller(" in a:
                out.add(("controller",))
            elif a in ("drop", "ct") or a.startswith(("ct(", "recirc(", "set(", "ct_clear",
                                              "masked_set(", "meter(")):
                continue
            else:
                raise AssertionError(f"unexpected datapath action {a!r} in\n{text}")

    for line, vlan in sections:
        walk(_split_top(line), {"vlan": vlan})
    return frozenset(out)


# ---------------------------------------------------------------- tests
def _compare(rig: Rig, cases: list[Case]):
    mismatches, verdicts = [], []
    for case in cases:
        ours = our_verdict(rig, case)
        text = ovs_trace(rig, case)
        theirs = ovs_verdict(rig, text)
        verdicts.append(ours)
        if ours != theirs:
            mismatches.append((case, ours, theirs, text))
    return mismatches, verdicts


def _describe(mismatches) -> str:
    lines = [f"{len(mismatches)} packet(s) where the tracer and ofproto/trace disagree:"]
    for case, ours, theirs, _text in mismatches[:15]:
        lines.append(f"  {case.name} [{CT_NAMES[case.ct]}]: tracer {sorted(ours)} "
                     f"!= ovs {sorted(theirs)}\n      {ovs_flow(case.packet)}")
    if mismatches:
        lines.append("first ofproto/trace:\n" + mismatches[0][3][-3000:])
    return "\n".join(lines)


def test_tracer_verdicts_equal_ofproto_trace(rig):
    cases = generate(rig)
    assert 100 <= len(cases) <= 300, len(cases)
    mismatches, verdicts = _compare(rig, cases)
    assert not mismatches, _describe(mismatches)
    # The set exercised every kind of verdict, so agreement means something.
    kinds = {v[0] for verdict in verdicts for v in verdict}
    assert {"port", "tunnel", "controller"} <= kinds, kinds
    assert any(not v for v in verdicts), "no packet was dropped"
    assert any(("port", rig.physnet, VLAN_VID) in v for v in verdicts), "no VLAN push"
    assert any(len(v) > 2 for v in verdicts), "no flood"
    arp_replies = [c for c, v in zip(cases, verdicts)
                   if c.packet.get("arp_op") == 1 and ("port", c.packet["in_port"], None) in v]
    assert arp_replies, "no ARP request answered in flows"
    (unknown,) = [v for c, v in zip(cases, verdicts) if c.name == "tunnel unknown source"]
    assert not unknown, "a tunnel packet from no known host was let in"
    assert all(v for c, v in zip(cases, verdicts) if c.name.endswith("arp broadcast")
               and c.name.startswith("tunnel")), "a known host's broadcast was dropped"


def test_routed_packets_agree_with_ofproto_trace(rig):
    cases = generate_routed(rig)
    mismatches, verdicts = _compare(rig, cases)
    assert not mismatches, _describe(mismatches)
    # routed to a local port, out of the VLAN uplink and over the tunnel;
    # answers (ARP, NA, echo) back out of the in_port; the unknown dropped
    kinds = {v[0] for verdict in verdicts for v in verdict}
    assert {"port", "tunnel"} <= kinds, kinds
    assert any(("port", rig.physnet, VLAN_VID) in v for v in verdicts), "no routed VLAN push"
    answered = [c for c, v in zip(cases, verdicts)
                if ("port", c.packet["in_port"], None) in v]
    assert len(answered) >= 8, [c.name for c in answered]
    assert any(not v for c, v in zip(cases, verdicts) if "nobody" in c.name)


def test_comparison_catches_a_wrong_flow_set(rig):
    """The check can fail: a tracer over a flow set that lost the flows of
    one port disagrees with the switch on that port's packets."""
    victim = next(pid for pid in rig.ofports if pid == "port-0-1")
    owner_cookie_flows = {f for f in rig.flows
                          if f.table == 0 and ("in_port", rig.ofports[victim]) in
                          {(t.name, t.value) for t in f.match}}
    assert owner_cookie_flows
    broken = Rig(**{**rig.__dict__, "tracer": Tracer(rig.flows - owner_cookie_flows)})
    cases = [c for c in generate(rig) if c.packet["in_port"] == rig.ofports[victim]][:10]
    mismatches, _ = _compare(broken, cases)
    assert mismatches, "removing a port's classify flow changed no verdict"


def test_rule_protocols_on_the_switch(rig):
    """Rules for protocols named only by number (ipip, hopopt: once read as
    "any protocol") let exactly that protocol through on the real switch."""
    cases = [c for c in generate(rig) if " ip proto " in c.name]
    assert len(cases) == len(PROTOCOL_PROBES)
    dst = ("port", rig.ofports["port-0-1"], None)
    for case in cases:
        proto = case.packet["ip_proto"]
        assert (dst in ovs_verdict(rig, ovs_trace(rig, case))) == PROTOCOL_PROBES[proto], \
            case.name
