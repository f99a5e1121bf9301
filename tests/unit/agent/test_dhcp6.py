"""The native DHCPv6 responder.  Client frames from os-ken; replies decoded here."""

from __future__ import annotations

import ipaddress
import logging
import random
import struct
import time

import pytest
from os_ken.lib.packet import dhcp6 as oken_dhcp6
from os_ken.lib.packet import ethernet, ipv6, packet, udp

from agent.responders import dhcp6
from agent.responders.dhcp6 import Dhcp6Responder, build_udp6_frame
from agent.responders.dispatch import DhcpDispatcher
from quantum_ovs import model
from quantum_ovs.compiler.pipeline import SERVICES

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


# ------------------------------------------------------------ what a guest may cost
def _ia_flood(total, distinct=False):
    """A SOLICIT frame of at most ``total`` bytes: n empty IA_NAs and one
    holding m IAADDRs, n * m maximal; all with one IAID unless ``distinct``
    (was: every IA_NA of the reply repeated every address, n * m of them)."""
    budget = total - 14 - 40 - 8 - 4 - 4 - len(CLIENT_DUID)
    n, m = max(((n, (budget - n * 16 - 16) // 28) for n in range(1, budget // 44)),
               key=lambda nm: nm[0] * nm[1])
    ias = [ia_na(iaid=struct.pack("!I", i) if distinct else IAID) for i in range(n - 1)]
    ias.append(ia_na(iaid=struct.pack("!I", n) if distinct else IAID,
                     addrs=["2001:db8::%x" % (i + 100) for i in range(m)]))
    payload = bytes((SOLICIT,)) + TID + opt(1, CLIENT_DUID) + b"".join(opt(3, v) for v in ias)
    frame = build_udp6_frame(bytes.fromhex("fa163eaabbcc"), b"\x33\x33\x00\x01\x00\x02",
                             ipaddress.IPv6Address(CLIENT_LL).packed,
                             ipaddress.IPv6Address("ff02::1:2").packed, 546, 547, payload)
    assert total - 40 < len(frame) <= total
    return frame


@pytest.mark.parametrize("distinct", [False, True], ids=["one-iaid", "distinct-iaids"])
def test_a_reply_is_never_larger_than_the_mtu(distinct):
    """A 1.4 KB SOLICIT got a 31 KB ADVERTISE (IA_NAs x held addresses)."""
    frame = _ia_flood(14 + NET.mtu, distinct)
    reply = answer(frame)
    assert reply is not None and len(reply) <= 14 + NET.mtu, len(reply)
    r = Reply6(reply)
    ias = r.ia_nas()
    assert ias and all(a[0] == (ADDR, 86400, 86400) for _, _, _, a, _ in ias)
    assert len(ias) == (dhcp6.MAX_IAS if distinct else 1)
    assert all(len(a) <= 1 + dhcp6.MAX_IA_ADDRESSES for _, _, _, a, _ in ias)
    assert r.options[23] == ipaddress.IPv6Address("2001:db8::53").packed  # config kept


def test_held_addresses_are_capped_per_ia_and_trimmed_to_the_mtu():
    held = ["2001:db8::%x" % (i + 100) for i in range(20)]
    f = client_frame(RENEW, [(1, CLIENT_DUID), (2, SERVER_DUID)] +
                     [(3, ia_na(struct.pack("!I", i), held)) for i in range(20)])
    (one,) = Reply6(answer(client_frame(RENEW, [(1, CLIENT_DUID), (2, SERVER_DUID),
                                                (3, ia_na(addrs=held))]))).ia_nas()
    assert one[3] == [(ADDR, 86400, 86400)] + [(a, 0, 0) for a in held[:8]]
    r = Responder6().handle(f, port(), {"sub6": subnet6()},
                            model.Network("small", model.Segment("flat", "phys"), mtu=1280))
    assert len(r) <= 14 + 1280
    ias = Reply6(r).ia_nas()
    assert 1 <= len(ias) <= dhcp6.MAX_IAS
    assert all(a[0] == (ADDR, 86400, 86400) for _, _, _, a, _ in ias)


def test_a_jumbo_solicit_costs_little_and_logs_no_error(caplog):
    """On a 9000-MTU network a 9 KB SOLICIT took ~130 ms of the host's one
    packet-in thread, and logged an ERROR traceback (its 1.2 MB reply
    overflowed the UDP length)."""
    net = model.Network("jumbo", model.Segment("vlan", "phys", 5), mtu=9000)
    frame = _ia_flood(14 + 9000)
    r = Responder6()
    caplog.set_level(logging.DEBUG, logger="agent")
    t0 = time.perf_counter()
    reply = r.handle(frame, port(), {"sub6": subnet6()}, net)
    spent = time.perf_counter() - t0
    assert not [x for x in caplog.records if x.levelno >= logging.WARNING]
    assert reply is not None and len(reply) <= 14 + 9000
    assert spent < 0.02, f"{spent * 1000:.0f} ms"


def test_frames_longer_than_the_mtu_are_dropped_before_parsing():
    """The pipeline punts what a guest sends, however long: a frame past
    the network's MTU (OVS does not check it on ingress) is not parsed."""
    sent, stats = [], {}
    d = DhcpDispatcher(60, lambda ofport: (port(), NET, {"sub6": subnet6()}),
                       lambda data, actions: sent.append(data), stats)
    def sized(n):  # a SOLICIT of n bytes (a vendor class, ignored, pads it)
        f = client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na()), (16, b"")])
        return client_frame(SOLICIT, [(1, CLIENT_DUID), (3, ia_na()), (16, bytes(n - len(f)))])

    big, fits = sized(14 + 4 + NET.mtu + 1), sized(14 + 4 + NET.mtu)
    assert len(big) == len(fits) + 1 == 14 + 4 + NET.mtu + 1
    d.packet_in(_Pin(big))
    assert sent == [] and stats["packet_in_oversized"] == 1
    d.packet_in(_Pin(fits))
    assert len(sent) == 1 and Reply6(sent[0]).type == ADVERTISE


class _Pin:
    def __init__(self, data, in_port=5):
        self.data, self.in_port, self.table, self.reason = data, in_port, SERVICES, 1


def Responder6():  # noqa: N802
    return Dhcp6Responder(server_mac=SERVER_MAC)
