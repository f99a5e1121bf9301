"""The native DHCPv6 responder.  Client frames from os-ken; replies decoded here."""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest
from os_ken.lib.packet import dhcp6 as oken_dhcp6
from os_ken.lib.packet import ethernet, ipv6, packet, udp

from agent.responders.dhcp6 import Dhcp6Responder
from quantum_ovs import model

MAC = "fa:16:3e:aa:bb:cc"
SERVER_MAC = "fa:16:3e:00:00:01"
CLIENT_LL = "fe80::f816:3eff:feaa:bbcc"
SERVER_LL = "fe80::f816:3eff:fe00:1"  # EUI-64 of SERVER_MAC
ADDR = "2001:db8::10"
CLIENT_DUID = bytes.fromhex("00010001") + bytes.fromhex("2a3b4c5d") + bytes.fromhex("fa163eaabbcc")
SERVER_DUID = bytes.fromhex("00030001fa163e000001")
IAID = b"\x00\x00\x00\x07"
TID = b"\xab\xcd\xef"

SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE = range(1, 10)
INFO_REQUEST = 11

NET = model.Network("net", model.Segment("vxlan", segmentation_id=42), mtu=1450)


def subnet6(mode="dhcpv6-stateful", **kw):
    base = dict(id="sub6", network_id="net", cidr="2001:db8::/64", ip_version=6,
                gateway_ip="2001:db8::1", dns_nameservers=("2001:db8::53", "8.8.8.8"),
                ipv6_ra_mode=mode, ipv6_address_mode=mode)  # fmt: skip
    base.update(kw)
    return model.Subnet(**base)


def port(addr=ADDR, mac=MAC):
    return model.Port("port", "net", mac, fixed_ips=(model.FixedIP("sub6", addr),))


def opt(code, value):
    return struct.pack("!HH", code, len(value)) + value


def ia_na(iaid=IAID, addrs=()):
    inner = b"".join(opt(5, ipaddress.IPv6Address(a).packed + bytes(8)) for a in addrs)
    return iaid + bytes(8) + inner


def client_frame(mtype, options, src=CLIENT_LL, eth_src=MAC, sport=546, dport=547):
    ol = [oken_dhcp6.option(code, value, len(value)) for code, value in options]
    msg = oken_dhcp6.dhcp6(mtype, oken_dhcp6.options(option_list=ol),
                           transaction_id=int.from_bytes(TID, "big"))  # fmt: skip
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst="33:33:00:01:00:02", src=eth_src, ethertype=0x86DD))
    p.add_protocol(ipv6.ipv6(src=src, dst="ff02::1:2", nxt=17))
    p.add_protocol(udp.udp(src_port=sport, dst_port=dport))
    p.add_protocol(msg)
    p.serialize()
    return bytes(p.data)


def parse_opts(data):
    out = []
    i = 0
    while i < len(data):
        code, n = struct.unpack_from("!HH", data, i)
        assert i + 4 + n <= len(data)
        out.append((code, data[i + 4 : i + 4 + n]))
        i += 4 + n
    return out


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


class Reply6:
    def __init__(self, frame):
        self.eth_dst, self.eth_src = frame[:6], frame[6:12]
        assert frame[12:14] == b"\x86\xdd"
        ip = frame[14:54]
        assert ip[0] >> 4 == 6 and ip[6] == 17
        plen = struct.unpack_from("!H", ip, 4)[0]
        assert 54 + plen == len(frame)
        self.ip_src = ipaddress.IPv6Address(ip[8:24])
        self.ip_dst = ipaddress.IPv6Address(ip[24:40])
        u = frame[54:]
        self.sport, self.dport, ulen, c = struct.unpack_from("!HHHH", u)
        assert ulen == len(u) and c != 0
        pseudo = ip[8:40] + struct.pack("!I3xB", ulen, 17)
        assert csum(pseudo + u) == 0xFFFF, "UDP checksum"
        m = u[8:]
        self.type, self.tid = m[0], m[1:4]
        self.option_list = parse_opts(m[4:])
        self.options = dict(self.option_list)

    def ia_nas(self):
        """[(iaid, t1, t2, [(address, preferred, valid)], status)]"""
        out = []
        for code, v in self.option_list:
            if code != 3:
                continue
            t1, t2 = struct.unpack_from("!II", v, 4)
            addrs, status = [], None
            for c, w in parse_opts(v[12:]):
                if c == 5:
                    pref, valid = struct.unpack_from("!II", w, 16)
                    addrs.append((str(ipaddress.IPv6Address(w[:16])), pref, valid))
                elif c == 13:
                    status = struct.unpack_from("!H", w)[0]
            out.append((v[:4], t1, t2, addrs, status))
        return out


def answer(frame, p=None, subnets=None, **kw):
    r = Dhcp6Responder(server_mac=SERVER_MAC, **kw)
    return r.handle(frame, p or port(), {"sub6": subnet6()} if subnets is None else subnets, NET)


def test_solicit_gets_an_advertise_with_the_ports_address():
    f = client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na()), (8, b"\x00\x00"), (6, b"\x00\x17")])
    r = Reply6(answer(f, lease_time=3600))
    assert r.type == ADVERTISE and r.tid == TID
    assert r.eth_src == bytes.fromhex("fa163e000001") and r.eth_dst == bytes.fromhex("fa163eaabbcc")
    assert str(r.ip_src) == SERVER_LL and str(r.ip_dst) == CLIENT_LL
    assert (r.sport, r.dport) == (547, 546)
    assert r.options[1] == CLIENT_DUID and r.options[2] == SERVER_DUID
    assert r.ia_nas() == [(IAID, 1800, 2880, [(ADDR, 3600, 3600)], None)]
    assert r.options[23] == ipaddress.IPv6Address("2001:db8::53").packed  # IPv4 DNS left out
    assert 14 not in r.options and 24 not in r.options


def test_solicit_with_rapid_commit_gets_a_reply():
    f = client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na()), (14, b"")])
    r = Reply6(answer(f))
    assert r.type == REPLY and r.options[14] == b""
    assert r.ia_nas()[0][3] == [(ADDR, 86400, 86400)]


def test_request_and_renew_are_replied():
    for mtype in (REQUEST, RENEW):
        f = client_frame(mtype, [(1, CLIENT_DUID), (2, SERVER_DUID), (3, ia_na(addrs=[ADDR]))])
        r = Reply6(answer(f, domain="example.test"))
        assert r.type == REPLY
        assert r.ia_nas() == [(IAID, 43200, 69120, [(ADDR, 86400, 86400)], None)]
        assert r.options[24] == b"\x07example\x04test\x00"


def test_renew_of_an_old_address_returns_it_with_zero_lifetimes():
    f = client_frame(RENEW, [(1, CLIENT_DUID), (2, SERVER_DUID),
                             (3, ia_na(addrs=["2001:db8::99"]))])  # fmt: skip
    r = Reply6(answer(f))
    assert r.ia_nas()[0][3] == [(ADDR, 86400, 86400), ("2001:db8::99", 0, 0)]


def test_rebind_has_no_server_id_and_is_replied():
    f = client_frame(REBIND, [(1, CLIENT_DUID), (3, ia_na(addrs=[ADDR]))])
    assert Reply6(answer(f)).type == REPLY


def test_messages_for_another_server_are_ignored():
    other = bytes.fromhex("00030001020000000001")
    for mtype in (REQUEST, RENEW, RELEASE, INFO_REQUEST):
        f = client_frame(mtype, [(1, CLIENT_DUID), (2, other), (3, ia_na(addrs=[ADDR]))])
        assert answer(f) is None, mtype
    # a REQUEST must name a server; a SOLICIT must not
    assert answer(client_frame(REQUEST, [(1, CLIENT_DUID), (3, ia_na())])) is None
    f = client_frame(SOLICIT, [(1, CLIENT_DUID), (2, SERVER_DUID), (3, ia_na())])
    assert answer(f) is None


def test_information_request_stateless():
    f = client_frame(INFO_REQUEST, [(1, CLIENT_DUID), (6, b"\x00\x17")])
    sub = {"sub6": subnet6("dhcpv6-stateless")}
    r = Reply6(answer(f, subnets=sub))
    assert r.type == REPLY and r.options[1] == CLIENT_DUID and r.options[2] == SERVER_DUID
    assert r.options[23] == ipaddress.IPv6Address("2001:db8::53").packed
    assert 3 not in r.options
    # ... and stateless subnets hand out no address
    assert answer(client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na())]), subnets=sub) is None


def test_slaac_and_dhcp_disabled_subnets_get_nothing():
    f = client_frame(INFO_REQUEST, [(1, CLIENT_DUID)])
    assert answer(f, subnets={"sub6": subnet6("slaac")}) is None
    assert answer(f, subnets={"sub6": subnet6(enable_dhcp=False)}) is None
    assert answer(f, subnets={}) is None


def test_confirm():
    ok = client_frame(CONFIRM, [(1, CLIENT_DUID), (3, ia_na(addrs=["2001:db8::77"]))])
    r = Reply6(answer(ok))
    assert r.type == REPLY and struct.unpack_from("!H", r.options[13])[0] == 0
    off = client_frame(CONFIRM, [(1, CLIENT_DUID), (3, ia_na(addrs=["2001:db9::1"]))])
    assert struct.unpack_from("!H", Reply6(answer(off)).options[13])[0] == 4  # NotOnLink


def test_release_gets_success():
    f = client_frame(RELEASE, [(1, CLIENT_DUID), (2, SERVER_DUID), (3, ia_na(addrs=[ADDR]))])
    r = Reply6(answer(f))
    assert r.type == REPLY and r.options[13] == b"\x00\x00"


def test_solicit_for_prefixes_only_gets_no_addrs_avail():
    f = client_frame(SOLICIT, [(1, CLIENT_DUID), (25, IAID + bytes(8)), (14, b"")])
    r = Reply6(answer(f))
    assert r.type == ADVERTISE and struct.unpack_from("!H", r.options[13])[0] == 2


def test_other_mac_is_ignored():
    f = client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na())], eth_src="fa:16:3e:00:00:99")
    assert answer(f) is None


@pytest.mark.parametrize("frame", [
    client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na())], sport=547, dport=546),
    client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na())], sport=1000, dport=53),
    bytes.fromhex("ffffffffffff" "fa163eaabbcc" "0800") + bytes(300),
], ids=["server-ports", "other-udp", "ipv4"])  # fmt: skip
def test_not_dhcp6_client_messages_get_nothing(frame):
    assert answer(frame) is None


def test_truncations_and_garbage_never_raise():
    f = client_frame(REQUEST, [(1, CLIENT_DUID), (2, SERVER_DUID), (3, ia_na(addrs=[ADDR]))])
    assert answer(f) is not None
    for n in range(len(f)):
        assert answer(f[:n]) is None, n
    rnd = random.Random(99)
    for _ in range(3000):
        g = bytearray(f)
        for _ in range(rnd.randint(1, 6)):
            g[rnd.randrange(len(g))] = rnd.randrange(256)
        out = answer(bytes(g))
        if out is not None:
            Reply6(out)
