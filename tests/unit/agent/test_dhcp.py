"""The native DHCPv4 responder, byte for byte.

Client frames are built with os-ken's packet library (not with the code
under test); replies are decoded by a small parser written here and
cross-checked with os-ken's, and every checksum is recomputed.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import struct

import pytest
from os_ken.lib.packet import dhcp as oken_dhcp
from os_ken.lib.packet import ethernet, ipv4, packet, udp, vlan

from agent.responders.dhcp import DEFAULT_FALLBACK_SERVER_IP, DhcpResponder
from quantum_ovs import model

MAC = "fa:16:3e:aa:bb:cc"
OTHER_MAC = "fa:16:3e:00:00:99"
SERVER_MAC = "fa:16:3e:00:00:01"
IP = "192.168.1.10"
GW = "192.168.1.1"

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)

NET = model.Network("net", model.Segment("vxlan", segmentation_id=42), mtu=1450)


def subnet(**kw) -> model.Subnet:
    base = dict(
        id="sub4",
        network_id="net",
        cidr="192.168.1.0/24",
        gateway_ip=GW,
        dns_nameservers=("8.8.8.8", "192.168.1.2"),
    )
    base.update(kw)
    return model.Subnet(**base)


def port(ip=IP, mac=MAC, subnet_id="sub4", **kw) -> model.Port:
    return model.Port("port", "net", mac, fixed_ips=(model.FixedIP(subnet_id, ip),), **kw)


SUBNETS = {"sub4": subnet()}


# ------------------------------------------------------------ client side
def client_frame(
    msg_type,
    *,
    chaddr=MAC,
    eth_src=None,
    xid=0x1234ABCD,
    flags=0,
    ciaddr="0.0.0.0",
    src="0.0.0.0",
    dst="255.255.255.255",
    options=(),
    sport=68,
    dport=67,
    op=1,
    vlan_id=None,
) -> bytes:
    opts = [oken_dhcp.option(53, bytes((msg_type,)))]
    opts += [oken_dhcp.option(code, value) for code, value in options]
    msg = oken_dhcp.dhcp(
        op=op,
        chaddr=chaddr,
        xid=xid,
        flags=flags,
        ciaddr=ciaddr,
        options=oken_dhcp.options(option_list=opts),
    )
    p = packet.Packet()
    if vlan_id is None:
        p.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=eth_src or chaddr))
    else:
        p.add_protocol(
            ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=eth_src or chaddr, ethertype=0x8100)
        )
        p.add_protocol(vlan.vlan(vid=vlan_id, ethertype=0x0800))
    p.add_protocol(ipv4.ipv4(src=src, dst=dst, proto=17))
    p.add_protocol(udp.udp(src_port=sport, dst_port=dport))
    p.add_protocol(msg)
    p.serialize()
    return bytes(p.data)


def ip4(a: str) -> bytes:
    return ipaddress.IPv4Address(a).packed


# ------------------------------------------------- an independent parser
def inet_sum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s > 0xFFFF:
        s = (s >> 16) + (s & 0xFFFF)
    return s


class Reply:
    """A DHCP server frame, decoded here with every length checked."""

    def __init__(self, frame: bytes):
        self.frame = frame
        self.eth_dst, self.eth_src = frame[0:6], frame[6:12]
        off, self.vlan_tci = 14, None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x8100:
            self.vlan_tci, ethertype = struct.unpack_from("!HH", frame, 14)
            off = 18
        assert ethertype == 0x0800
        ip = frame[off : off + 20]
        assert ip[0] == 0x45 and ip[9] == 17
        total = struct.unpack_from("!H", ip, 2)[0]
        assert off + total == len(frame), "no trailing bytes after the IP datagram"
        assert inet_sum(ip) == 0xFFFF, "IPv4 header checksum"
        self.ip_src, self.ip_dst = ip[12:16], ip[16:20]
        self.ttl = ip[8]
        u = frame[off + 20 :]
        self.sport, self.dport, ulen, ucsum = struct.unpack_from("!HHHH", u)
        assert ulen == len(u)
        assert ucsum != 0, "UDP checksum is filled in"
        pseudo = self.ip_src + self.ip_dst + struct.pack("!BBH", 0, 17, ulen)
        assert inet_sum(pseudo + u) == 0xFFFF, "UDP checksum"
        b = u[8:]
        self.bootp_len = len(b)
        self.op, self.htype, self.hlen = b[0], b[1], b[2]
        self.xid, _secs, self.flags = struct.unpack_from("!IHH", b, 4)
        self.ciaddr, self.yiaddr, self.siaddr, self.giaddr = b[12:16], b[16:20], b[20:24], b[24:28]
        self.chaddr = b[28:44]
        assert b[236:240] == b"\x63\x82\x53\x63"
        self.option_list: list[tuple[int, bytes]] = []
        i = 240
        while True:
            code = b[i]
            if code == 255:
                break
            if code == 0:
                i += 1
                continue
            n = b[i + 1]
            assert i + 2 + n <= len(b)
            self.option_list.append((code, b[i + 2 : i + 2 + n]))
            i += 2 + n
        assert all(x == 0 for x in b[i + 1 :]), "only padding after END"

    @property
    def options(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for code, value in self.option_list:
            out[code] = out.get(code, b"") + value
        return out

    @property
    def type(self) -> int:
        return self.options[53][0]


def answer(frame, p=None, subnets=None, network=NET, **kw) -> bytes | None:
    responder = DhcpResponder(server_mac=SERVER_MAC, **kw)
    return responder.handle(frame, p or port(), SUBNETS if subnets is None else subnets, network)


# ----------------------------------------------------------------- tests
def test_discover_gets_an_offer_of_the_ports_address():
    r = Reply(answer(client_frame(DISCOVER)))
    assert r.type == OFFER
    assert (r.eth_src, r.eth_dst) == (bytes.fromhex("fa163e000001"), bytes.fromhex("fa163eaabbcc"))
    assert (r.ip_src, r.ip_dst) == (ip4(GW), ip4(IP))
    assert (r.sport, r.dport) == (67, 68)
    assert (r.op, r.htype, r.hlen) == (2, 1, 6)
    assert r.xid == 0x1234ABCD and r.flags == 0
    assert r.yiaddr == ip4(IP) and r.ciaddr == bytes(4) and r.giaddr == bytes(4)
    assert r.chaddr == bytes.fromhex("fa163eaabbcc") + bytes(10)
    assert r.bootp_len >= 300
    o = r.options
    assert o[54] == ip4(GW)
    assert o[51] == struct.pack("!I", 86400)
    assert o[58] == struct.pack("!I", 43200)
    assert o[59] == struct.pack("!I", 75600)
    assert o[1] == bytes((255, 255, 255, 0))
    assert o[28] == ip4("192.168.1.255")
    assert o[3] == ip4(GW)
    assert o[6] == bytes((8, 8, 8, 8, 192, 168, 1, 2))
    assert o[26] == bytes((0x05, 0xAA))  # 1450
    assert 121 not in o, "no host routes, gateway on the subnet: option 3 is enough"
    assert 15 not in o and 12 not in o and 249 not in o
    assert len(r.option_list) == len(o), "no option appears twice"


def test_offer_parses_with_os_ken_too():
    frame = answer(client_frame(DISCOVER))
    pkt = packet.Packet(frame)
    msg = pkt.get_protocol(oken_dhcp.dhcp)
    assert msg.op == 2 and msg.yiaddr == IP and msg.chaddr == MAC
    tags = {o.tag: o.value for o in msg.options.option_list}
    assert tags[53] == bytes((OFFER,)) and tags[1] == b"\xff\xff\xff\x00"
    assert pkt.get_protocol(ipv4.ipv4).dst == IP


def test_broadcast_flag_gets_a_broadcast_reply():
    r = Reply(answer(client_frame(DISCOVER, flags=0x8000)))
    assert r.eth_dst == b"\xff" * 6 and r.ip_dst == b"\xff" * 4
    assert r.flags == 0x8000
    assert r.yiaddr == ip4(IP)


def test_request_in_selecting_state_is_acked():
    f = client_frame(REQUEST, options=[(50, ip4(IP)), (54, ip4(GW))])
    r = Reply(answer(f))
    assert r.type == ACK
    assert r.yiaddr == ip4(IP) and r.ip_dst == ip4(IP)
    o = r.options
    assert o[54] == ip4(GW) and o[1] == b"\xff\xff\xff\x00" and o[3] == ip4(GW)
    assert o[51] == struct.pack("!I", 86400)


def test_request_for_another_server_gets_no_reply():
    f = client_frame(REQUEST, options=[(50, ip4(IP)), (54, ip4("192.168.1.3"))])
    assert answer(f) is None


@pytest.mark.parametrize("wanted", ["192.168.1.11", "10.0.0.10"])
def test_request_for_another_address_is_naked(wanted):
    r = Reply(answer(client_frame(REQUEST, options=[(50, ip4(wanted))])))
    assert r.type == NAK
    assert r.yiaddr == bytes(4) and r.ciaddr == bytes(4)
    assert r.ip_dst == b"\xff" * 4 and r.eth_dst == b"\xff" * 6
    assert r.ip_src == ip4(GW)
    assert set(r.options) <= {53, 54, 56}, "a NAK carries no configuration"
    assert r.options[54] == ip4(GW)


def test_renewal_is_acked_by_unicast_to_ciaddr():
    f = client_frame(REQUEST, ciaddr=IP, src=IP, dst=GW)
    r = Reply(answer(f))
    assert r.type == ACK
    assert r.ciaddr == ip4(IP) and r.yiaddr == ip4(IP)
    assert r.ip_dst == ip4(IP) and r.eth_dst == bytes.fromhex("fa163eaabbcc")


def test_renewal_of_an_old_address_is_naked():
    old = "192.168.1.99"
    r = Reply(answer(client_frame(REQUEST, ciaddr=old, src=old, dst=GW)))
    assert r.type == NAK and r.ip_dst == b"\xff" * 4


def test_request_without_address_is_naked():
    assert Reply(answer(client_frame(REQUEST))).type == NAK


def test_inform_gets_options_without_a_lease():
    r = Reply(answer(client_frame(INFORM, ciaddr=IP, src=IP)))
    assert r.type == ACK
    assert r.yiaddr == bytes(4) and r.ciaddr == ip4(IP)
    assert r.ip_dst == ip4(IP)
    o = r.options
    assert o[1] == b"\xff\xff\xff\x00" and o[3] == ip4(GW)
    assert o[6] == bytes((8, 8, 8, 8, 192, 168, 1, 2))
    assert not {51, 58, 59} & set(o), "RFC 2131 3.4: no lease time in an INFORM's ACK"


@pytest.mark.parametrize("mtype", [RELEASE, DECLINE, OFFER, ACK, NAK, 42])
def test_release_decline_and_server_messages_get_nothing(mtype):
    assert answer(client_frame(mtype, ciaddr=IP, src=IP, options=[(54, ip4(GW))])) is None


def test_spoofed_chaddr_is_ignored_and_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="agent.responders.dhcp")
    assert answer(client_frame(DISCOVER, chaddr=OTHER_MAC, eth_src=MAC)) is None
    assert answer(client_frame(REQUEST, chaddr=OTHER_MAC, options=[(50, ip4(IP))])) is None
    assert any(OTHER_MAC in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_mac_case_in_the_model_does_not_matter():
    assert answer(client_frame(DISCOVER), p=port(mac=MAC.upper())) is not None


def test_dhcp_disabled_gets_nothing():
    assert answer(client_frame(DISCOVER), subnets={"sub4": subnet(enable_dhcp=False)}) is None
    f = client_frame(REQUEST, options=[(50, ip4(IP))])
    assert answer(f, subnets={"sub4": subnet(enable_dhcp=False)}) is None


def test_port_without_ipv4_or_unknown_subnet_gets_nothing():
    v6 = model.Subnet("sub6", "net", "2001:db8::/64", ip_version=6, gateway_ip="2001:db8::1")
    assert (
        answer(
            client_frame(DISCOVER), p=port("2001:db8::10", subnet_id="sub6"), subnets={"sub6": v6}
        )
        is None
    )
    assert answer(client_frame(DISCOVER), subnets={}) is None
    assert answer(client_frame(DISCOVER), p=model.Port("port", "net", MAC)) is None


def test_admin_down_port_gets_nothing():
    assert answer(client_frame(DISCOVER), p=port(admin_state_up=False)) is None


def test_first_dhcp_enabled_ipv4_address_is_offered():
    subnets = {
        "off": subnet(id="off", cidr="10.9.0.0/16", gateway_ip="10.9.0.1", enable_dhcp=False),
        "v6": model.Subnet("v6", "net", "2001:db8::/64", ip_version=6),
        "sub4": subnet(),
    }
    p = model.Port(
        "port",
        "net",
        MAC,
        fixed_ips=(
            model.FixedIP("off", "10.9.0.5"),
            model.FixedIP("v6", "2001:db8::5"),
            model.FixedIP("sub4", IP),
            model.FixedIP("sub4", "192.168.1.11"),
        ),
    )
    r = Reply(answer(client_frame(DISCOVER), p=p, subnets=subnets))
    assert r.yiaddr == ip4(IP) and r.options[54] == ip4(GW)


def test_subnet_without_gateway():
    subnets = {"sub4": subnet(gateway_ip=None)}
    r = Reply(answer(client_frame(DISCOVER), subnets=subnets))
    assert 3 not in r.options and 121 not in r.options
    fallback = ip4(DEFAULT_FALLBACK_SERVER_IP)
    assert r.options[54] == fallback and r.ip_src == fallback
    # ... and the client that accepted it is ACKed when naming that server
    f = client_frame(REQUEST, options=[(50, ip4(IP)), (54, fallback)])
    assert Reply(answer(f, subnets=subnets)).type == ACK
    # the fallback is configurable
    r = Reply(answer(client_frame(DISCOVER), subnets=subnets, fallback_server_ip="169.254.9.9"))
    assert r.options[54] == ip4("169.254.9.9")


def test_no_dns_servers_no_option_6():
    r = Reply(answer(client_frame(DISCOVER), subnets={"sub4": subnet(dns_nameservers=())}))
    assert 6 not in r.options


def routes_of(host_routes, **kw) -> bytes | None:
    subnets = {
        "sub4": subnet(host_routes=tuple(model.HostRoute(d, n) for d, n in host_routes), **kw)
    }
    return Reply(answer(client_frame(DISCOVER), subnets=subnets)).options.get(121)


def test_classless_routes_rfc3442_encoding():
    got = routes_of(
        [
            ("10.0.0.0/8", "192.168.1.1"),
            ("10.1.2.0/24", "192.168.1.254"),
            ("172.16.5.4/32", "192.168.1.5"),
            ("10.128.0.0/9", "192.168.1.6"),
            ("10.0.0.128/25", "192.168.1.7"),
        ]
    )
    assert got == bytes(
        [8, 10, 192, 168, 1, 1]
        + [24, 10, 1, 2, 192, 168, 1, 254]
        + [32, 172, 16, 5, 4, 192, 168, 1, 5]
        + [9, 10, 128, 192, 168, 1, 6]
        + [25, 10, 0, 0, 128, 192, 168, 1, 7]
        + [0, 192, 168, 1, 1]  # the default route via the gateway (RFC 3442)
    )


def test_classless_routes_keep_an_explicit_default_and_skip_ipv6():
    got = routes_of([("0.0.0.0/0", "192.168.1.254"), ("2001:db8::/64", "2001:db8::1")])
    assert got == bytes([0, 192, 168, 1, 254]), "one default route only: the host route's"


def test_classless_routes_without_gateway_have_no_default():
    got = routes_of([("10.0.0.0/8", "192.168.1.1")], gateway_ip=None)
    assert got == bytes([8, 10, 192, 168, 1, 1])


def test_gateway_outside_the_subnet_gets_an_on_link_route():
    got = routes_of([], gateway_ip="10.255.0.1")
    assert got == bytes([32, 10, 255, 0, 1, 0, 0, 0, 0, 0, 10, 255, 0, 1])


def test_ms_classless_routes_only_when_asked():
    sub = {"sub4": subnet(host_routes=(model.HostRoute("10.0.0.0/8", "192.168.1.1"),))}
    plain = Reply(answer(client_frame(DISCOVER), subnets=sub)).options
    asked = Reply(
        answer(client_frame(DISCOVER, options=[(55, bytes([1, 3, 121, 249]))]), subnets=sub)
    ).options
    assert 249 not in plain
    assert asked[249] == asked[121] == plain[121]


def test_long_route_lists_are_split_per_rfc3396():
    routes = [(f"10.{i}.0.0/16", "192.168.1.1") for i in range(60)]  # 60 * 7 + 5 bytes
    frame = answer(
        client_frame(DISCOVER),
        subnets={"sub4": subnet(host_routes=tuple(model.HostRoute(d, n) for d, n in routes))},
    )
    r = Reply(frame)
    parts = [v for c, v in r.option_list if c == 121]
    assert [len(p) for p in parts] == [255, 170]
    assert r.options[121][:7] == bytes([16, 10, 0, 192, 168, 1, 1])
    assert r.options[121][-5:] == bytes([0, 192, 168, 1, 1])


def test_domain_mtu_and_lease_settings():
    net = model.Network("net", model.Segment("vlan", "physnet1", 100), mtu=9000)
    r = Reply(
        answer(client_frame(DISCOVER), network=net, domain="openstack.local.", lease_time=600)
    )
    o = r.options
    assert o[15] == b"openstack.local"
    assert o[26] == struct.pack("!H", 9000)
    assert (o[51], o[58], o[59]) == (
        struct.pack("!I", 600),
        struct.pack("!I", 300),
        struct.pack("!I", 525),
    )


def test_infinite_lease():
    o = Reply(answer(client_frame(DISCOVER), lease_time=None)).options
    assert o[51] == b"\xff\xff\xff\xff" and 58 not in o and 59 not in o


def test_bad_lease_time_is_refused():
    with pytest.raises(ValueError):
        DhcpResponder(lease_time=0)


def test_vlan_tag_is_kept():
    r = Reply(answer(client_frame(DISCOVER, vlan_id=101)))
    assert r.vlan_tci & 0x0FFF == 101 and r.type == OFFER


def test_ip_options_and_ethernet_padding_are_tolerated():
    f = client_frame(DISCOVER)
    # Insert a 4-byte IP option (NOP x3 + EOL), fix lengths and checksum.
    ip = bytearray(f[14:34])
    ip[0] = 0x46
    struct.pack_into("!H", ip, 2, struct.unpack_from("!H", ip, 2)[0] + 4)
    struct.pack_into("!H", ip, 10, 0)
    hdr = bytes(ip) + b"\x01\x01\x01\x00"
    struct.pack_into("!H", ip, 10, 0xFFFF - inet_sum(hdr))
    f2 = f[:14] + bytes(ip) + b"\x01\x01\x01\x00" + f[34:] + bytes(16)
    assert Reply(answer(f2)).type == OFFER


@pytest.mark.parametrize(
    "frame",
    [
        client_frame(DISCOVER, sport=1234, dport=53),  # some other UDP
        client_frame(DISCOVER, sport=67, dport=68),  # a server's packet
        client_frame(DISCOVER, op=2),  # BOOTREPLY on the client ports
        bytes.fromhex("fffffffffffffa163eaabbcc0806") + bytes(28),  # ARP
        bytes.fromhex("333300000001fa163eaabbcc86dd") + bytes(60),  # IPv6
    ],
    ids=["udp-dns", "server-ports", "bootreply", "arp", "ipv6"],
)
def test_frames_that_are_not_dhcp_requests_get_nothing(frame):
    assert answer(frame) is None


def test_bootp_without_dhcp_message_type_gets_nothing():
    f = bytearray(client_frame(DISCOVER))
    i = f.index(b"\x63\x82\x53\x63") + 4
    assert f[i] == 53
    f[i] = 0xFE  # unknown option 254 instead of 53
    assert answer(bytes(f)) is None


@pytest.mark.parametrize("frag", [0x2000, 0x0001, 0x2005])
def test_ip_fragments_get_nothing(frag):
    f = bytearray(client_frame(DISCOVER))
    struct.pack_into("!H", f, 14 + 6, frag)
    assert answer(bytes(f)) is None
    struct.pack_into("!H", f, 14 + 6, 0x4000)  # DF alone is fine
    assert answer(bytes(f)) is not None


def test_every_truncation_gets_nothing():
    f = client_frame(REQUEST, options=[(50, ip4(IP)), (54, ip4(GW))])
    assert answer(f) is not None
    for n in range(len(f)):
        assert answer(f[:n]) is None, n


def test_garbage_never_raises():
    rnd = random.Random(1234)
    good = client_frame(REQUEST, options=[(50, ip4(IP)), (55, bytes([1, 3, 6, 121, 249]))])
    answered = 0
    for _ in range(3000):
        f = bytearray(good)
        for _ in range(rnd.randint(1, 6)):
            f[rnd.randrange(len(f))] = rnd.randrange(256)
        out = answer(bytes(f))
        if out is not None:
            Reply(out)  # whatever is answered is well formed
            answered += 1
    for n in (0, 1, 13, 14, 42, 300, 600):
        assert answer(bytes(rnd.randrange(256) for _ in range(n))) is None
    assert answered > 0, "random flips outside the checked fields still get answers"


def test_options_overloaded_into_the_file_field_are_read():
    f = bytearray(client_frame(DISCOVER, options=[(52, b"\x01")]))
    off = 14 + 20 + 8
    # 'file' starts at 108 in the BOOTP message: put option 55 asking for 249 there.
    f[off + 108 : off + 108 + 5] = bytes([55, 2, 121, 249, 255])
    sub = {"sub4": subnet(host_routes=(model.HostRoute("10.0.0.0/8", "192.168.1.1"),))}
    assert 249 in Reply(answer(bytes(f), subnets=sub)).options


def test_bad_model_data_does_not_raise(caplog):
    bad = {"sub4": subnet(dns_nameservers=("not-an-address",))}
    assert answer(client_frame(DISCOVER), subnets=bad) is None
