"""A port's extra DHCP options are resolved once, not per DHCP request
(review 18b: a port with 11,500 options cost 158 ms of CPU and 2,085
warning lines a request)."""

import dataclasses
import ipaddress
import logging

import pytest

from agent.responders import dhcp_options as O
from quantum_ovs import model
from tests.unit.agent import test_dhcp as d4


def _port(*opts, port_id="p-resolve"):
    return dataclasses.replace(d4.port(), id=port_id,
                               extra_dhcp_opts=tuple(model.DhcpOption(*o) for o in opts))


OPTS = (("bootfile-name", "pxelinux.0", 4), ("tag:ipxe,67", "http://boot/x.ipxe", 4),
        ("mtu", "not-a-number", 4), ("server-ip-address", "192.168.1.5", 4),
        ("bootfile-url", "tftp://[fd00::5]/boot", 6))


def _count_encodes(monkeypatch):
    calls = []
    real = O.encode

    def counting(kind, value, version):
        calls.append(value)
        return real(kind, value, version)
    monkeypatch.setattr(O, "encode", counting)
    return calls


def test_a_ports_options_are_resolved_once_not_per_request(monkeypatch, caplog):
    calls = _count_encodes(monkeypatch)
    p = _port(*OPTS)
    caplog.set_level(logging.WARNING, logger="agent.responders.dhcp_options")
    for _ in range(50):
        r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), p))
        assert r.options[67] == b"pxelinux.0" and r.siaddr == d4.ip4("192.168.1.5")
        r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER, options=[(77, b"iPXE")]), p))
        assert r.options[67] == b"http://boot/x.ipxe"
        assert dict(O.extra_options(p, 6).options) == {59: b"tftp://[fd00::5]/boot"}
    # each option encoded once (the v4 ones and the v6 one), the bad one logged once
    assert len(calls) == 4, calls
    bad = [r for r in caplog.records if "not-a-number" in r.getMessage()]
    assert len(bad) == 1, [r.getMessage() for r in caplog.records]


def test_a_new_view_with_the_same_options_is_not_resolved_again(monkeypatch):
    calls = _count_encodes(monkeypatch)
    p = _port(*OPTS, port_id="p-same")
    O.extra_options(p, 4)
    # the next view's port: an equal but new object
    p2 = dataclasses.replace(p, extra_dhcp_opts=tuple(dataclasses.replace(o)
                                                      for o in p.extra_dhcp_opts))
    O.extra_options(p2, 4)
    O.extra_options(p2, 4)
    assert len(calls) == 3


def test_changed_options_are_resolved_again():
    p = _port(("bootfile-name", "a.0", 4), port_id="p-change")
    assert dict(O.extra_options(p, 4).options)[67] == b"a.0"
    p = _port(("bootfile-name", "b.0", 4), port_id="p-change")
    assert dict(O.extra_options(p, 4).options)[67] == b"b.0"
    p = _port(port_id="p-change")
    assert O.extra_options(p, 4).options == ()


def test_the_resolved_ports_are_bounded(monkeypatch):
    monkeypatch.setattr(O, "_RESOLVED_MAX", 3)
    monkeypatch.setattr(O, "_RESOLVED", {})
    for i in range(10):
        O.extra_options(_port(("mtu", "1400", 4), port_id=f"p-{i}"), 4)
    assert list(O._RESOLVED) == ["p-7", "p-8", "p-9"]


def _big_port():
    """A port whose own options alone are about 2,000 bytes (the API
    bounds each value, not their sum)."""
    return _port(*[(f"{224 + i}", "x" * 250, 4) for i in range(8)], port_id="p-big")


def test_a_reply_never_exceeds_the_networks_mtu_and_keeps_the_lease():
    """DHCPv4 replies are capped as DHCPv6's are (observation of the
    session 22 responders review): the port's own options go first, the
    lease's essentials stay."""
    p = _big_port()
    for mtype in (d4.DISCOVER, d4.REQUEST):
        r = d4.Reply(d4.answer(d4.client_frame(mtype, options=[(50, d4.ip4(d4.IP))]), p))
        assert len(r.frame) - 14 <= d4.NET.mtu, len(r.frame)
        assert r.yiaddr == d4.ip4(d4.IP)
        assert {53, 54, 51, 1} <= set(r.options), sorted(r.options)
        assert 3 in r.options and 6 in r.options  # ours come before the port's own
        kept = [c for c in range(224, 232) if c in r.options]
        assert kept == list(range(224, 224 + len(kept))) and len(kept) < 8  # the last ones went
    # a 9000-byte network takes all of them
    big = dataclasses.replace(d4.NET, mtu=9000)
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER), p, network=big))
    assert all(c in r.options for c in range(224, 232))


def test_a_reply_respects_the_clients_maximum_message_size():
    p = _big_port()
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER, options=[(57, (576).to_bytes(2, "big"))]),
                           p))
    assert len(r.frame) - 14 <= 576 and r.yiaddr == d4.ip4(d4.IP)
    # below RFC 2132's minimum: not believed
    r = d4.Reply(d4.answer(d4.client_frame(d4.DISCOVER, options=[(57, (100).to_bytes(2, "big"))]),
                           p))
    assert 576 < len(r.frame) - 14 <= d4.NET.mtu


def test_a_trimmed_reply_keeps_what_the_client_asked_for():
    """A port's own router option (replacing ours) sits after its big
    unrequested ones: trimming drops those first and keeps the router the
    client asked for (option 55; RFC 2132 9.8). Review s23b F4: trimmed
    from the last only, the reply had no option 3 at all."""
    opts = [(f"{224 + i}", "x" * 250, 4) for i in range(6)] + [("router", "192.168.1.254", 4)]
    p = _port(*opts, port_id="p-s23b-router")
    frame = d4.client_frame(d4.DISCOVER, options=[(55, bytes([1, 3, 6, 15, 26, 121]))])
    r = d4.Reply(d4.answer(frame, p))
    assert len(r.frame) - 14 <= d4.NET.mtu
    assert r.options.get(3) == d4.ip4("192.168.1.254"), sorted(r.options)
    assert 26 in r.options  # ours, asked for, kept too


def test_dhcpv6_option_encodings_as_dnsmasq_takes_them():
    """s28 D2 / D3, the cases around the reviewer's: bracketed IPv6
    addresses also for an option known by number only; DHCPv6 ntp-server
    (56) as RFC 5908 sub-options: 1 a server address, 2 a multicast one,
    3 a name (DNS wire form); an IPv4 or a broken address is no value;
    iPXE is 'ipxe6' for DHCPv6 only."""
    a, b = (ipaddress.IPv6Address(x).packed for x in ("2001:db8::1", "ff05::101"))
    assert O.encode(None, "[2001:db8::1],[ff05::101]", 6) == a + b
    assert O.encode(O.ADDRS, "[2001:db8::1]", 6) == a
    assert O.encode(O.NTP6, "[2001:db8::1], ff05::101,ntp.example.org", 6) == (
        b"\x00\x01\x00\x10" + a + b"\x00\x02\x00\x10" + b
        + b"\x00\x03\x00\x11\x03ntp\x07example\x03org\x00")
    for bad in ("10.0.0.1", "2001:db8::zz", "[2001:db8::1"):
        with pytest.raises(ValueError):
            O.encode(O.NTP6, bad, 6)
    with pytest.raises(ValueError):
        O.encode(O.ADDRS, "[10.0.0.1]", 4)  # brackets are IPv6's only
    assert O.client_tags6(b"\x00\x04iPXE") == {"ipxe6"}
    assert O.client_tags4({77: b"iPXE"}) == {"ipxe"}
