"""Data-plane isolation between projects, on real Open vSwitch (issue 11).

Two hypervisors (each its own OVS and agent, joined by a tunnel underlay
and a provider underlay, see tests/fixtures/multihost.py) and one server.  Projects A and
B each own a VXLAN network with the SAME CIDR and instances with the SAME
addresses, on the same host and across hosts:

    A: a1 (hv1, .10)  a2 (hv1, .11)  a3 (hv2, .12)
    B: b1 (hv1, .10)  b2 (hv1, .11)  b3 (hv2, .12)

and, for the 802.1Q case, each a VLAN provider network (same CIDR again):
va1 (hv1) and va2 (hv2) on A's, vb1 (hv2) on B's; and A a flat network on
the same physical network, fa1 (hv1).

Every test sends hand-made frames from an instance with an AF_PACKET socket
and asserts on what the other instances' devices (and the provider
underlay) receive, each frame recognised by a random token it carries.  A
test that says "dropped" also sends the same frame made legitimate, the
same way, and checks that one arrives: so each test can fail.
"""

from __future__ import annotations

import ipaddress
import os
import select
import shutil
import socket
import struct
import tempfile
import time

import pytest

from agent.responders.dhcp import build_udp_frame, checksum, mac_bytes
from agent.responders.dhcp6 import build_udp6_frame
from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.multihost import Api, Cluster
from quantum_ovs.testing.ovs import in_netns, missing_prerequisites

CIDR = "10.40.0.0/24"
SERVER_CONF = "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n"
BCAST_MAC = "ff:ff:ff:ff:ff:ff"
PACKET_OUTGOING = 4
SETTLE = 0.6  # seconds to wait for frames after sending


def ip4(addr):
    return socket.inet_aton(addr)


def ip6(addr):
    return ipaddress.IPv6Address(addr).packed


def token():
    return b"QISO" + os.urandom(8)


# ------------------------------------------------------------------ frames
def udp(src, dst_mac, src_ip, dst_ip, payload, sport=40000, dport=40001, src_mac=None,
        vlan=None):
    """A UDP frame from instance ``src`` (its MAC unless ``src_mac``)."""
    return build_udp_frame(mac_bytes(src_mac or src.mac), mac_bytes(dst_mac), ip4(src_ip),
                           ip4(dst_ip), sport, dport, payload,
                           vlan_tci=vlan)


def arp(src_mac, op, sha, spa, tha, tpa, dst_mac=BCAST_MAC):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac_bytes(sha), ip4(spa),
                       mac_bytes(tha), ip4(tpa))
    frame = mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", 0x0806) + body
    return frame + b"\0" * (60 - len(frame))


def arp_padded(inst, target, tok):
    """``inst``'s ARP request for ``target`` with ``tok`` in the padding."""
    f = arp(inst.mac, 1, inst.mac, inst.ip, "00:00:00:00:00:00", target)[:42] + tok
    return f + b"\0" * (60 - len(f))


def link_local(mac):
    b = mac_bytes(mac)
    eui = bytes([b[0] ^ 2, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return b"\xfe\x80" + b"\0" * 6 + eui


def icmp6(src_mac, dst_mac, src, dst, icmp_type, body):
    """An Ethernet/IPv6/ICMPv6 frame (hop limit 255, as ND wants)."""
    msg = struct.pack("!BBH", icmp_type, 0, 0) + body
    pseudo = src + dst + struct.pack("!I3xB", len(msg), 58)
    msg = msg[:2] + struct.pack("!H", checksum(pseudo + msg)) + msg[4:]
    ip = struct.pack("!IHBB", 6 << 28, len(msg), 58, 255) + src + dst
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", 0x86DD) + ip + msg


def dhcp_discover(mac, xid):
    bootp = struct.pack("!BBBB4sHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac_bytes(mac), b"", b"")
    bootp += b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])
    return build_udp_frame(mac_bytes(mac), mac_bytes(BCAST_MAC), ip4("0.0.0.0"),
                           ip4("255.255.255.255"), 68, 67, bootp)


def arp_fields(frame):
    """(op, sha, spa) of an ARP frame (tag or no tag), else None."""
    off = 12
    while frame[off:off + 2] in (b"\x81\x00", b"\x88\xa8"):
        off += 4
    if frame[off:off + 2] != b"\x08\x06" or len(frame) < off + 2 + 28:
        return None
    op, sha, spa = struct.unpack("!6x H 6s 4s", frame[off + 2:off + 2 + 18])
    return op, ":".join(f"{x:02x}" for x in sha), socket.inet_ntoa(spa)


# ------------------------------------------------------------------ sniffing
class Sniff:
    """AF_PACKET sockets on some instances' devices (frames they receive)
    and on the provider underlay (every frame on its bridge ports)."""

    def __init__(self, insts, underlay=None):
        self.socks = {}  # label -> socket
        for label, inst in insts.items():
            self.socks[label] = inst.raw_socket(timeout=0)
        if underlay is not None:
            def make():
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
                s.setblocking(False)
                return s
            self.socks["underlay"] = in_netns(underlay.ns, make)

    def collect(self, settle=SETTLE):
        """{label: [frames]} received until now + settle."""
        time.sleep(settle)
        got = {}
        for label, s in self.socks.items():
            frames = []
            while select.select([s], [], [], 0)[0]:
                data, addr = s.recvfrom(65535)
                if label != "underlay" and addr[2] == PACKET_OUTGOING:
                    continue  # the instance's own sending
                frames.append(data)
            got[label] = frames
            s.close()
        return got


def send(inst, *frames):
    s = inst.raw_socket()
    try:
        for f in frames:
            s.send(f)
    finally:
        s.close()


def with_token(got, tok):
    """Labels of the receivers that got a frame carrying ``tok``."""
    return {label for label, frames in got.items() if any(tok in f for f in frames)}


# ------------------------------------------------------------------ the cloud
class Cloud:
    pass


@pytest.fixture(scope="module")
def cloud():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    cl = Cluster(2)
    server = ServerProcess(f"sqlite:///{tempfile.mkdtemp(prefix='qovs-iso-')}/s.sqlite",
                           extra_conf=SERVER_CONF)
    state = tempfile.mkdtemp(prefix="qovs-iso-state-")
    try:
        cl.start()
        server.start()
        cl.start_agents(server.url, state, server.agent_credential)
        c = Cloud()
        c.cluster, c.server = cl, server
        c.api = {"A": Api(server.url, project="project-a"),
                 "B": Api(server.url, project="project-b")}
        c.vm, c.port, c.net = {}, {}, {}
        ports = []
        for proj in "AB":
            api = c.api[proj]
            net = api.network(CIDR)
            vnet = api.network(CIDR, **{"provider:network_type": "vlan",
                                        "provider:physical_network": "physnet1"})
            c.net[proj], c.net["v" + proj] = net, vnet
            p = proj.lower()
            for i, (host, last) in enumerate((("hv1", 10), ("hv1", 11), ("hv2", 12)), 1):
                ports.append((proj, f"{p}{i}", host, net, f"10.40.0.{last}"))
            vms = ((1, "hv1"), (2, "hv2")) if proj == "A" else ((1, "hv2"),)
            for i, host in vms:
                ports.append((proj, f"v{p}{i}", host, vnet, f"10.40.0.{20 + i}"))
        # A's flat network on the same physical network (untagged there)
        fnet = c.api["A"].network(CIDR, **{"provider:network_type": "flat",
                                           "provider:physical_network": "physnet1"})
        c.net["fA"] = fnet
        ports.append(("A", "fa1", "hv1", fnet, "10.40.0.30"))
        for proj, label, host, (net, sub), ip in ports:
            port = c.api[proj].port(net, host, fixed_ips=[{"subnet_id": sub["id"],
                                                          "ip_address": ip}])
            inst = cl[host].add_instance(port)
            c.port[label], c.vm[label] = port, inst
        for proj, label, *_ in ports:
            assert c.api[proj].wait_status(c.port[label]["id"], "ACTIVE"), label
        # Same-project reachability first (and it warms the tunnels).
        assert c.vm["a1"].ping(c.vm["a3"].ip, count=2, wait=1)
        assert c.vm["b1"].ping(c.vm["b3"].ip, count=2, wait=1)
        assert c.vm["va1"].ping(c.vm["va2"].ip, count=2, wait=1)
        yield c
    finally:
        cl.stop_agents()
        server.stop()
        cl.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


A = ("a1", "a2", "a3")
B = ("b1", "b2", "b3")
EVERYONE = A + B + ("va1", "va2", "vb1", "fa1")


def sniff(cloud, *labels, underlay=False):
    labels = labels or EVERYONE
    return Sniff({x: cloud.vm[x] for x in labels},
                 cloud.cluster.provider if underlay else None)


def others(*exclude):
    return tuple(x for x in EVERYONE if x not in exclude)


# ------------------------------------------------------------------ projects
def test_same_addresses_other_project_unreachable(cloud):
    """a1 talks to .11 and .12 (its project's a2, a3) by IP and to B's
    instances by their MACs: only A's instances ever get anything."""
    vm = cloud.vm
    a1 = vm["a1"]
    # ping by address: the one of a1's own network answers, B's never sees it
    tok = os.urandom(8)
    s = sniff(cloud)
    assert a1.ping(vm["a2"].ip, count=1, wait=1) and a1.ping(vm["a3"].ip, count=1, wait=1)
    a1.exec("ping", "-n", "-c", "1", "-W", "1", "-p", tok.hex(), vm["a2"].ip, check=False)
    a1.exec("ping", "-n", "-c", "1", "-W", "1", "-p", tok.hex(), vm["a3"].ip, check=False)
    got = s.collect()
    assert with_token(got, tok) == {"a1", "a2", "a3"}  # requests, and a1 the replies
    # frames addressed to B's MACs (same IPs as A's): nothing arrives
    for target in B:
        bad, good = token(), token()
        dst = vm[target]
        # A's instance with the same address (b1 has a1's own: then a2)
        mirror = "a" + target[1:] if target != "b1" else "a2"
        s = sniff(cloud)
        send(a1, udp(a1, dst.mac, a1.ip, dst.ip, bad),
             udp(a1, vm[mirror].mac, a1.ip, dst.ip, good))
        got = s.collect()
        # (unknown on A's network, it is flooded there: never to B)
        assert with_token(got, bad) <= {"a2", "a3"}, target
        # (a1 may get the port-unreachable quoting it)
        assert mirror in with_token(got, good) <= {mirror, "a1"}, target
    # and the other way: B's b3 (hv2) and b1 (hv1) to A's MACs
    for src, target in (("b3", "a1"), ("b1", "a2"), ("b1", "a3")):
        bad, good = token(), token()
        s = sniff(cloud)
        mirror = "b" + target[1:] if target[1:] != src[1:] else "b2"
        send(vm[src], udp(vm[src], vm[target].mac, vm[src].ip, vm[target].ip, bad),
             udp(vm[src], vm[mirror].mac, vm[src].ip, vm[target].ip, good))
        got = s.collect()
        assert with_token(got, bad) <= set(B), (src, target)
        assert mirror in with_token(got, good) <= {mirror, src}, (src, target)


def test_arp_between_projects(cloud):
    """ARP from a1 reaches no B instance (same host or not), and a1's
    request for .11 is answered with a2's MAC, never b2's."""
    vm = cloud.vm
    a1 = vm["a1"]
    marker = "02:00:00:00:51:01"  # in tha: recognises these requests
    s = sniff(cloud, *others("a1"), underlay=True)
    # a request for an address nobody has: flooded, on A only
    send(a1, arp(a1.mac, 1, a1.mac, a1.ip, marker, "10.40.0.99"))
    got = s.collect()
    flooded = {label for label, fr in got.items()
               if any(arp_fields(f) == (1, a1.mac, a1.ip) and mac_bytes(marker) in f
                      for f in fr)}
    assert flooded == {"a2", "a3"}, flooded
    # a request for .11 is answered (from the flows) with a2's MAC
    s = sniff(cloud, "a1")
    send(a1, arp(a1.mac, 1, a1.mac, a1.ip, "00:00:00:00:00:00", vm["a2"].ip))
    replies = [arp_fields(f) for f in s.collect()["a1"]]
    assert (2, vm["a2"].mac, vm["a2"].ip) in replies, replies
    assert not any(r and r[1] != vm["a2"].mac for r in replies if r and r[2] == vm["a2"].ip)
    # and the kernel's neighbour entry agrees
    a1.exec("ip", "neigh", "flush", "all")
    assert a1.ping(vm["a2"].ip, count=1, wait=1)
    assert vm["a2"].mac in a1.exec("ip", "neigh", "show", vm["a2"].ip)


def test_broadcasts_stay_in_their_project(cloud):
    """UDP to 255.255.255.255, to the subnet broadcast and to a multicast
    group, from hv1 and from hv2: the sender's project only."""
    vm = cloud.vm
    for proj, src in (("A", "a1"), ("A", "a3"), ("B", "b1"), ("B", "b3")):
        mine = A if proj == "A" else B
        inst = vm[src]
        toks = [token() for _ in range(3)]
        s = sniff(cloud, underlay=True)
        send(inst, udp(inst, BCAST_MAC, inst.ip, "255.255.255.255", toks[0]),
             udp(inst, BCAST_MAC, inst.ip, "10.40.0.255", toks[1]),
             udp(inst, "01:00:5e:00:00:fb", inst.ip, "224.0.0.251", toks[2]))
        got = s.collect()
        want = set(mine) - {src}
        for t in toks:
            assert with_token(got, t) == want, (src, with_token(got, t))


def _dhcp_replies(got, xid):
    """{receiver: [yiaddr]} of the DHCP replies (67 -> 68) carrying ``xid``."""
    out = {}
    for who, frames in got.items():
        for f in frames:
            if f[34:38] == b"\x00\x43\x00\x44" and f[46:50] == xid:
                out.setdefault(who, []).append(socket.inet_ntoa(f[58:62]))
    return out


def test_dhcp_replies_only_to_their_instance(cloud):
    """a1 and b1 (same address, same host) and a3/b3 (the other host) ask
    at once with the broadcast flag: each reply reaches its asker only,
    with its own address."""
    vm = cloud.vm
    xids = {label: os.urandom(4) for label in ("a1", "b1", "a3", "b3")}
    s = sniff(cloud, underlay=True)
    for label, xid in xids.items():
        send(vm[label], dhcp_discover(vm[label].mac, xid))
    got = s.collect(settle=1.0)
    for label, xid in xids.items():
        replies = _dhcp_replies(got, xid)
        assert set(replies) == {label}, (label, replies)
        assert set(replies[label]) == {vm[label].ip}, (label, replies)


def test_dhcp_request_for_another_ports_mac(cloud):
    """a1 asks with a2's (and b1's) MAC in chaddr: nobody gets a2's or b1's
    lease, and nothing reaches anyone but a1; with its own MAC, the same
    frame gets a1 its lease."""
    vm = cloud.vm
    a1 = vm["a1"]
    for other in ("a2", "b1", "a1"):
        xid = os.urandom(4)
        frame = dhcp_discover(a1.mac, xid)
        at = 42 + 28  # chaddr in the BOOTP header
        frame = frame[:at] + mac_bytes(vm[other].mac) + frame[at + 6:]
        frame = frame[:40] + b"\0\0" + frame[42:]  # no UDP checksum (it would be stale)
        s = sniff(cloud, underlay=True)
        send(a1, frame)
        replies = _dhcp_replies(s.collect(settle=1.0), xid)
        if other == "a1":
            assert replies == {"a1": [a1.ip]}, replies
        else:  # (today: no answer at all; a1's own lease at most)
            assert set(replies) <= {"a1"}, (other, replies)
            assert set(replies.get("a1", [])) <= {a1.ip}, (other, replies)


# ------------------------------------------------------------------ spoofing
def _dropped_vs_sent(cloud, src, bad_frames, good_frames):
    """Send ``bad_frames`` ((frame, token)) and ``good_frames`` ((frame,
    token, receivers)) from ``src``: no bad token arrives anywhere, each
    good one reaches its receivers (and no other project's)."""
    s = sniff(cloud, *others(src), underlay=True)
    send(cloud.vm[src], *[f for f, _ in bad_frames], *[g[0] for g in good_frames])
    got = s.collect()
    for frame, tok in bad_frames:
        assert with_token(got, tok) == set(), (frame[:60].hex(), with_token(got, tok))
    for frame, tok, where in good_frames:
        arrived = with_token(got, tok)
        assert set(where) <= arrived, (frame[:60].hex(), arrived)
        assert not arrived & set(B + ("vb1",)), (frame[:60].hex(), arrived)
    return got


def test_spoofed_source_mac_dropped(cloud):
    vm = cloud.vm
    a1, a2 = vm["a1"], vm["a2"]
    bad, good = [], []
    for fake in ("fa:16:3e:de:ad:01", vm["a3"].mac, vm["b1"].mac, vm["b2"].mac):
        for dst_mac, dst_ip in ((a2.mac, a2.ip), (BCAST_MAC, "255.255.255.255")):
            t = token()
            bad.append((udp(a1, dst_mac, a1.ip, dst_ip, t, src_mac=fake), t))
    for dst_mac, dst_ip, where in ((a2.mac, a2.ip, {"a2"}),
                                   (BCAST_MAC, "255.255.255.255", {"a2", "a3"})):
        t = token()
        good.append((udp(a1, dst_mac, a1.ip, dst_ip, t), t, where))
    _dropped_vs_sent(cloud, "a1", bad, good)


def test_spoofed_source_ip_dropped(cloud):
    vm = cloud.vm
    a1, a2, a3 = vm["a1"], vm["a2"], vm["a3"]
    bad, good = [], []
    for fake in (a2.ip, a3.ip, "10.40.0.200", "10.41.0.10", "0.0.0.0"):
        for dst_mac, dst_ip in ((a2.mac, a2.ip), (a3.mac, a3.ip),
                                (BCAST_MAC, "255.255.255.255")):
            t = token()
            bad.append((udp(a1, dst_mac, fake, dst_ip, t), t))
    for dst_mac, dst_ip, where in ((a2.mac, a2.ip, {"a2"}), (a3.mac, a3.ip, {"a3"}),
                                   (BCAST_MAC, "255.255.255.255", {"a2", "a3"})):
        t = token()
        good.append((udp(a1, dst_mac, a1.ip, dst_ip, t), t, where))
    _dropped_vs_sent(cloud, "a1", bad, good)


def test_spoofed_ipv6_source_and_neighbour_advertisements_dropped(cloud):
    """Neighbour solicitations from another port's link-local address and
    neighbour advertisements for another port's address are dropped; the
    same from and for a1's own link-local arrive (ND always passes the
    security groups: only port security can stop these)."""
    vm = cloud.vm
    a1 = vm["a1"]
    mine = link_local(a1.mac)
    group = ("33:33:00:00:00:01", ip6("ff02::1"))

    def ns(src, target):  # random reserved bytes make each one unique
        return icmp6(a1.mac, group[0], src, group[1], 135, os.urandom(4) + target)

    def na(target):  # override flag, target, target link-layer address option
        return icmp6(a1.mac, group[0], mine, group[1], 136,
                     b"\x20" + os.urandom(3) + target + b"\x02\x01" + mac_bytes(a1.mac))

    bad = [ns(link_local(vm[x].mac), link_local(vm["a3"].mac)) for x in ("a2", "b1")]
    bad += [ns(b"\xfe\x80" + b"\0" * 13 + b"\x99", link_local(vm["a3"].mac))]
    bad += [na(link_local(vm[x].mac)) for x in ("a2", "a3", "b1")]
    good = [(ns(mine, link_local(vm["a3"].mac)), {"a2", "a3"}), (na(mine), {"a2", "a3"})]
    # each recognised by its whole IPv6 packet
    _dropped_vs_sent(cloud, "a1", [(f, f[14:]) for f in bad],
                     [(f, f[14:], where) for f, where in good])


def test_arp_for_another_ports_address_dropped(cloud):
    """a1 claims a2's address (replies to a3 and to broadcast, gratuitous
    requests, a2's MAC as sender): none of it arrives anywhere, a3 still
    resolves a2 to a2's MAC; a1's true ARP sent the same way arrives."""
    vm = cloud.vm
    a1, a2, a3 = vm["a1"], vm["a2"], vm["a3"]
    victim = a2.ip
    marker, true_marker = "02:00:00:00:be:ef", "02:00:00:00:be:00"  # in tha
    forged = [
        arp(a1.mac, 2, a1.mac, victim, marker, a3.ip, dst_mac=a3.mac),  # reply to a3
        arp(a1.mac, 2, a1.mac, victim, marker, victim),  # gratuitous reply
        arp(a1.mac, 1, a1.mac, victim, marker, victim),  # gratuitous request
        arp(a1.mac, 1, a1.mac, victim, marker, "10.40.0.98"),  # request from victim's IP
        arp(a1.mac, 2, a2.mac, victim, marker, a3.ip, dst_mac=a3.mac),  # a2's MAC in sha
        arp(a2.mac, 2, a2.mac, victim, marker, a3.ip, dst_mac=a3.mac),  # and as source
        arp(a1.mac, 2, a1.mac, vm["b2"].ip, marker, vm["b1"].ip, dst_mac=vm["b1"].mac),
    ]
    a3.exec("ip", "neigh", "flush", "all")
    assert a3.ping(a2.ip, count=1, wait=1)
    s = sniff(cloud, *others("a1"), underlay=True)
    send(a1, *forged)
    send(a1, arp(a1.mac, 2, a1.mac, a1.ip, true_marker, a3.ip, dst_mac=a3.mac),
         arp(a1.mac, 1, a1.mac, a1.ip, true_marker, "10.40.0.97"))
    got = s.collect()
    seen = {(label, *arp_fields(f)) for label, fr in got.items() for f in fr
            if arp_fields(f) and mac_bytes(marker) in f}
    assert seen == set(), seen
    true = {(label, *arp_fields(f)) for label, fr in got.items() for f in fr
            if arp_fields(f) and mac_bytes(true_marker) in f}
    assert true == {("a3", 2, a1.mac, a1.ip), ("a3", 1, a1.mac, a1.ip),
                    ("a2", 1, a1.mac, a1.ip)}, true
    # the victim's neighbour still has the right MAC
    neigh = a3.exec("ip", "neigh", "show", a2.ip)
    assert a2.mac in neigh and a1.mac not in neigh, neigh
    assert a3.ping(a2.ip, count=1, wait=1)


def test_dhcp_server_replies_from_an_instance_dropped(cloud):
    vm = cloud.vm
    a1, a2, a3 = vm["a1"], vm["a2"], vm["a3"]
    bad, good = [], []
    for dst_mac, dst_ip, where in ((a2.mac, a2.ip, {"a2"}), (a3.mac, a3.ip, {"a3"}),
                                   (BCAST_MAC, "255.255.255.255", {"a2", "a3"})):
        t, g = token(), token()
        bad.append((udp(a1, dst_mac, a1.ip, dst_ip, b"\x02\x01\x06\x00" + t,
                        sport=67, dport=68), t))
        good.append((udp(a1, dst_mac, a1.ip, dst_ip, b"\x02\x01\x06\x00" + g,
                         sport=1067, dport=68), g, where))
    # DHCPv6 replies (547 -> 546) from a1's link-local; a neighbour
    # solicitation between the same addresses arrives (the default group
    # admits no other IPv6 from a link-local address)
    src = link_local(a1.mac)
    for dst_mac, dst, where in (("33:33:00:00:00:01", ip6("ff02::1"), {"a2", "a3"}),
                                (a2.mac, link_local(a2.mac), {"a2"})):
        t, g = token(), token()
        bad.append((build_udp6_frame(mac_bytes(a1.mac), mac_bytes(dst_mac), src, dst, 547,
                                     546, b"\x07" + t), t))
        target = b"\xfe\x80" + b"\0" * 6 + g[4:]
        good.append((icmp6(a1.mac, dst_mac, src, dst, 135, b"\0" * 4 + target), g[4:],
                     where))
    _dropped_vs_sent(cloud, "a1", bad, good)


def test_router_advertisements_from_an_instance_dropped(cloud):
    """An RA (ICMPv6 134) from a1's own link-local address to all nodes is
    dropped; a neighbour solicitation sent the same way arrives."""
    vm = cloud.vm
    a1 = vm["a1"]
    src = link_local(a1.mac)
    all_nodes = ip6("ff02::1")
    bad, good = [], []
    for dst_mac, dst, where in (("33:33:00:00:00:01", all_nodes, {"a2", "a3"}),
                                (vm["a2"].mac, link_local(vm["a2"].mac), {"a2"})):
        t = token()
        # cur hop limit 64, M/O flags, lifetime 1800 s, reachable, retrans; then a prefix-ish tail
        body = struct.pack("!BBHII", 64, 0xC0, 1800, 0, 0) + t
        bad.append((icmp6(a1.mac, dst_mac, src, dst, 134, body), t))
        g = token()
        target = b"\xfe\x80" + b"\0" * 6 + g[4:]
        good.append((icmp6(a1.mac, dst_mac, src, dst, 135, b"\0" * 4 + target), g[4:],
                     where))
    _dropped_vs_sent(cloud, "a1", bad, good)


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8])
def test_vlan_tagged_frames_from_an_instance_dropped(cloud, tpid):
    """Frames from an instance carrying an 802.1Q (or 802.1ad) tag with a VLAN
    id of the provider networks (B's, A's own, and 0) are dropped, on a
    tunnel network, on a VLAN provider network (they left double-tagged)
    and on a flat one (they left with B's tag as they were: B's VLAN
    network on the other host took them in, to vb1); the untagged frame
    arrives."""
    vm = cloud.vm
    vlans = [cloud.net[v][0]["provider:segmentation_id"] for v in ("vA", "vB")] + [0]
    for src, peers, peer, over in (("a1", {"a2", "a3"}, "a2", False),
                                   ("va1", {"va2"}, "va2", True),
                                   ("fa1", set(), "vb1", True)):
        inst = vm[src]
        bad, good = [], []
        for vid in vlans:
            for dst_mac, dst_ip in ((BCAST_MAC, "255.255.255.255"),
                                    (vm[peer].mac, vm[peer].ip)):
                t = token()
                f = udp(inst, dst_mac, inst.ip, dst_ip, t)
                tagged = f[:12] + struct.pack("!HH", tpid, vid) + f[12:]
                bad.append((tagged, t))
            # ARP (no security group stops it), the token in the padding
            t = token()
            f = arp_padded(inst, vm[peer].ip, t)
            bad.append((f[:12] + struct.pack("!HH", tpid, vid) + f[12:], t))
        t = token()
        good.append((udp(inst, BCAST_MAC, inst.ip, "255.255.255.255", t), t, peers))
        t = token()
        good.append((arp_padded(inst, "10.40.0.98", t), t, peers))
        got = _dropped_vs_sent(cloud, src, bad, good)
        if over:  # the untagged frame did leave on the provider underlay
            assert "underlay" in with_token(got, good[0][1])
