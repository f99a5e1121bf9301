"""The metadata proxy without a switch: who asks is the port behind the
source address the flows wrote; nova gets the signed headers and nothing
the instance claims; nova's failures are quick 5xx.  Plus the DHCP route
to 169.254.169.254 and project_id on the wire."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import threading
import time

import pytest

from agent.metadata import proxy as proxy_mod
from agent.metadata.proxy import MetadataProxy, Requester, sign
from agent.metadata.service import MetadataService
from agent.metadata.settings import MetadataSettings
from agent.responders.dhcp import DhcpResponder, port_lease
from quantum_ovs import model, wire
from quantum_ovs.compiler.rules import metadata as md
from quantum_ovs.testing.nova_metadata import NovaMetadata

SECRET = "shh"
VM = "6c2e6a8e-0000-4000-8000-000000000001"


def test_signature_is_nova_s():
    want = hmac.new(b"shh", VM.encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, VM) == want


def _service(ports, host="hv1"):
    by_id = {p.id: p for p in ports}
    by_ofport = {5 + i: p.id for i, p in enumerate(ports)}
    return MetadataService(MetadataSettings(shared_secret=SECRET), host, "br-int", None,
                           lambda: (by_ofport, by_id), lambda n: None, threading.Event())


def test_lookup_by_ofport_and_index():
    a = model.Port("pa", "n1", "fa:16:3e:00:00:01", (model.FixedIP("s", "10.0.0.5"),
                                                    model.FixedIP("s", "10.0.0.9")),
                   device_id=VM, host="hv1", project_id="p1")
    b = model.Port("pb", "n2", "fa:16:3e:00:00:02", (model.FixedIP("s2", "10.0.0.5"),),
                   device_id="vm-b", host="hv1", project_id="p2")
    remote = model.Port("pr", "n2", "fa:16:3e:00:00:03", (model.FixedIP("s2", "10.0.0.6"),),
                        device_id="vm-r", host="hv2", project_id="p2")
    svc = _service([a, b, remote])
    assert svc.lookup(md.source_address(5, 0)) == Requester("pa", VM, "p1", "10.0.0.5")
    assert svc.lookup(md.source_address(5, 1)) == Requester("pa", VM, "p1", "10.0.0.9")
    assert svc.lookup("::ffff:" + md.source_address(6, 0)) == \
        Requester("pb", "vm-b", "p2", "10.0.0.5")
    assert svc.lookup(md.source_address(5, 0, 6)).ip.startswith("fe80::")
    assert svc.lookup(md.source_address(5, 2)) is None  # no third address
    assert svc.lookup(md.source_address(7, 0)) is None  # not bound here
    assert svc.lookup(md.source_address(99, 0)) is None  # no such port
    assert svc.lookup("10.0.0.5") is None  # an instance's own address means nothing


@pytest.fixture
def nova():
    with NovaMetadata(SECRET) as n:
        n.add_instance(VM, "p1", "vm-one")
        yield n


def _proxy(nova, lookup, **kw):
    s = MetadataSettings(shared_secret=SECRET, nova_host=nova.host, nova_port=nova.port,
                         timeout=0.5, **kw)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return MetadataProxy(s, lookup).start(sock), sock.getsockname()[1]


def _get(port, path, headers=None, source="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r.status, r.read().decode()


def test_proxy_signs_and_strips_claimed_identity(nova):
    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"))
    try:
        status, body = _get(port, "/openstack/latest/meta_data.json",
                            {"X-Instance-ID": "someone-else", "X-Forwarded-For": "1.2.3.4",
                             "X-Instance-ID-Signature": "forged"})
        assert status == 200
        meta = json.loads(body)
        assert meta["uuid"] == VM and meta["forwarded_for"] == "10.0.0.5"
        assert nova.requests[-1]["instance_id"] == VM
        assert _get(port, "/latest/meta-data/instance-id") == (200, VM)
    finally:
        proxy.stop()


def test_unknown_source_is_404_and_nova_is_not_asked(nova):
    proxy, port = _proxy(nova, lambda addr: None)
    try:
        assert _get(port, "/openstack/latest/meta_data.json")[0] == 404
        assert nova.requests == []
    finally:
        proxy.stop()


def test_wrong_secret_is_refused_by_nova(nova):
    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"))
    proxy.s.shared_secret = "wrong"
    try:
        assert _get(port, "/openstack/latest/meta_data.json")[0] == 403
    finally:
        proxy.stop()


def test_slow_nova_is_504_after_the_timeout_and_others_are_served(nova):
    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"))
    nova.delay = 10.0
    try:
        results = []
        t0 = time.monotonic()
        # (16 instances: each port's share of the requests in flight is 4)
        threads = [threading.Thread(target=lambda i=i: results.append(
            _get(port, "/openstack/latest/meta_data.json", source=f"127.0.0.{10 + i}")[0]))
            for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [504] * 16
        # Concurrently, each after 0.5 s (one after another: 8 s).
        assert time.monotonic() - t0 < 4.0
    finally:
        nova.delay = 0.0
        proxy.stop()


def test_idle_connections_cannot_exhaust_the_proxy(nova):
    """Connections that send nothing hold at most 2 x max_requests threads
    (here from 4 instances: one port's share is half of them); past that a
    connection is closed at once, and once they go a request is served
    again."""
    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"),
                         max_requests=2)
    idle = []
    try:
        for i in range(4):
            idle.append(_connect(port, f"127.0.0.{2 + i}"))
        time.sleep(0.3)
        extra = _connect(port, "127.0.0.6")
        extra.settimeout(3)
        assert extra.recv(1) == b""  # closed without an answer
        extra.close()
        for s in idle:
            s.close()
        deadline = time.monotonic() + 5
        while True:
            try:
                if _get(port, "/latest/meta-data/instance-id") == (200, VM):
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        for s in idle:
            s.close()
        proxy.stop()


# ------------------------------------------------------------ what an instance holds
def _connect(port, src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def _by_source(addr):
    # 127.0.0.2 stands for an instance asking too much, 127.0.0.3 for another
    if addr == "127.0.0.3":
        return Requester("pv", "vm-victim", "p2", "10.1.0.5")
    if addr.startswith("127.0.0."):
        return Requester("pa", VM, "p1", "10.0.0.5")
    return None


def _read_all(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def _cut(s, seconds, every):
    """Whether the proxy closes ``s`` while a header byte is sent every
    ``every`` seconds, within ``seconds``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(every)
        try:
            s.sendall(b"a")
        except OSError:
            return True
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                return True
        except socket.timeout:
            pass
        except OSError:
            return True
    return False


@pytest.fixture
def victim(nova):
    nova.add_instance("vm-victim", "p2", "victim")
    return nova


def test_a_trickling_request_is_cut_at_the_request_deadline(nova, monkeypatch):
    """The timeout is for the whole request, not for each read: a header
    byte every 0.3 s (under the 0.5 s) is cut after 0.5 s.  (10 s and a
    byte every 9 s, scaled down.)"""
    monkeypatch.setattr(proxy_mod._Handler, "timeout", 0.5)
    proxy, port = _proxy(nova, _by_source)
    s = _connect(port, "127.0.0.2")
    try:
        t0 = time.monotonic()
        s.sendall(b"GET /latest/meta-data/instance-id HTTP/1.0\r\nX-Pad: ")
        assert _cut(s, 3.0, 0.3), "a request trickled for 6x the timeout is still read"
        assert time.monotonic() - t0 < 1.5
    finally:
        s.close()
        proxy.stop()


def test_a_slow_body_is_cut_at_the_deadline_and_holds_no_request_slot(victim, monkeypatch):
    """A POST body trickled is read before the request takes a slot (here
    the only one): others are served meanwhile; and it is cut at the
    deadline too."""
    monkeypatch.setattr(proxy_mod._Handler, "timeout", 0.8)
    proxy, port = _proxy(victim, _by_source, max_requests=1)
    s = _connect(port, "127.0.0.2")
    try:
        s.sendall(b"POST /openstack/latest/password HTTP/1.0\r\n"
                  b"Content-Length: 1000\r\n\r\nxx")
        time.sleep(0.2)
        assert _get(port, "/latest/meta-data/instance-id", source="127.0.0.3") == \
            (200, "vm-victim")
        assert _cut(s, 3.0, 0.2), "a body trickled for 4x the timeout is still read"
    finally:
        s.close()
        proxy.stop()


def test_request_headers_are_bounded(nova):
    """Request line and headers past 16 KB are refused with 431 (the
    standard library's parser would take 100 lines of 64 KB: 6.5 MB per
    request); 12 KB of them are served."""
    proxy, port = _proxy(nova, _by_source)
    try:
        s = _connect(port, "127.0.0.2")
        hdrs = b"".join(b"X-P%d: %s\r\n" % (i, b"a" * 60000) for i in range(99))
        s.sendall(b"GET /latest/meta-data/instance-id HTTP/1.0\r\n" + hdrs + b"\r\n")
        data = _read_all(s)
        s.close()
        assert data.startswith(b"HTTP/1.0 431 "), data[:60]
        s = _connect(port, "127.0.0.2")
        s.sendall(b"GET /latest/meta-data/instance-id HTTP/1.0\r\n" + b"X-P: " +
                  b"a" * 12000 + b"\r\n\r\n")
        data = _read_all(s)
        s.close()
        assert data.startswith(b"HTTP/1.0 200 ") and data.endswith(VM.encode())
    finally:
        proxy.stop()


def test_held_requests_do_not_pin_hundreds_of_megabytes(nova):
    """16 instances each sending a POST with ~6 MB of headers and holding
    its body: before, ~300 MB held by the agent; now 431 after 16 KB."""
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 // (1 << 20)
    proxy, port = _proxy(nova, _by_source)
    held = []
    try:
        base = rss_mb()
        hdrs = b"".join(b"X-P%d: %s\r\n" % (i, b"a" * 60000) for i in range(98))
        for i in range(16):
            s = _connect(port, f"127.0.0.{10 + i}")
            s.sendall(b"POST /openstack/latest/password HTTP/1.0\r\n"
                      b"Content-Length: 65536\r\n" + hdrs + b"\r\nx")
            held.append(s)
        time.sleep(1.5)
        grown = rss_mb() - base
        assert grown < 64, f"16 held requests: +{grown} MB"
    finally:
        for s in held:
            s.close()
        proxy.stop()


def test_one_port_cannot_take_every_connection_of_the_proxy(victim):
    """An instance holding its share of connections (2 of 4 here: half the
    proxy's) has the next ones closed at once; another instance is served."""
    proxy, port = _proxy(victim, _by_source, max_requests=2)
    held = []
    try:
        for _ in range(4):
            held.append(_connect(port, "127.0.0.2"))
            held[-1].sendall(b"GET / HTTP/1.0\r\n")  # and then trickle
        time.sleep(0.3)
        assert _read_all(held[-1], 3) == b""  # past its share: closed unanswered
        assert _get(port, "/latest/meta-data/instance-id", source="127.0.0.3") == \
            (200, "vm-victim")
    finally:
        for s in held:
            s.close()
        proxy.stop()


def _flood_then_ask(nova, lookup, sources, **settings):
    """With nova slow, a request from each of ``sources`` at once, then
    one from 127.0.0.3 (the victim's instance): the victim's answer and
    the sorted statuses of the others."""
    proxy, port = _proxy(nova, lookup, **settings)
    proxy.s.timeout = 3.0
    nova.delay = 1.0
    try:
        results = []
        threads = [threading.Thread(target=lambda src=src: results.append(
            _get(port, "/latest/meta-data/instance-id", source=src)[0])) for src in sources]
        for t in threads:
            t.start()
        time.sleep(0.3)
        victim = _get(port, "/latest/meta-data/instance-id", source="127.0.0.3")
        for t in threads:
            t.join()
        return victim, sorted(results)
    finally:
        nova.delay = 0.0
        proxy.stop()


def test_one_port_cannot_take_every_request_slot_of_the_proxy(victim):
    """With nova slow, an instance's requests in flight past its share (2
    of 4 here) are 503; another instance's request is still forwarded."""
    assert _flood_then_ask(victim, _by_source, ["127.0.0.2"] * 4, max_requests=4) == \
        ((200, "vm-victim"), [200, 200, 503, 503])


def test_one_project_cannot_take_every_request_slot_with_many_ports(victim):
    """Four ports of project p1 (127.0.0.4-7), each within its own share
    (1 request), and a pool of 4: p1 gets half (2 forwarded, 2 refused),
    another project's instance is still forwarded."""
    def lookup(addr):
        if addr == "127.0.0.3":
            return Requester("pv", "vm-victim", "p2", "10.1.0.5")
        return Requester("p" + addr, VM, "p1", "10.0.0.5")

    sources = [f"127.0.0.{n}" for n in range(4, 8)]
    assert _flood_then_ask(victim, lookup, sources, max_requests=4, port_max_requests=1) == \
        ((200, "vm-victim"), [200, 200, 503, 503])


def test_shares_count_per_port_per_project_and_in_all():
    shares = proxy_mod._Shares(total=8, each=3)
    assert [shares.take(("p1", "a")) for _ in range(4)] == [True, True, True, False]
    assert shares.take(("p1", "b")) and not shares.take(("p1", "b"))  # p1: 4 of 8
    assert shares.take(("p2", "c")) and shares.take(("p2", "c"))
    shares.give(("p1", "a"))
    assert shares.take(("p1", "b"))
    shares.give(("p9", "x"))  # never taken: nothing changes
    assert shares.take(("p2", "c")) and shares.take(("p2", "d"))  # 8 of 8
    assert not shares.take(("p3", "e"))
    for _ in range(3):
        shares.give(("p2", "c"))
    assert shares.take(("p3", "e"))


def test_the_proxy_counts_a_port_in_its_project():
    a = model.Port("pa", "n1", "fa:16:3e:00:00:01", (model.FixedIP("s", "10.0.0.5"),),
                   device_id=VM, host="hv1", project_id="p1")
    b = model.Port("pb", "n1", "fa:16:3e:00:00:02", (model.FixedIP("s", "10.0.0.6"),),
                   device_id="vm-b", host="hv1", project_id="p1")
    key = _service([a, b]).proxy.key
    assert key(md.source_address(5, 0)) == ("p1", ("ofport", 5))
    assert key(md.source_address(6, 0)) == ("p1", ("ofport", 6))
    assert key(md.source_address(9, 0)) == (("ofport", 9), ("ofport", 9))


def test_a_ports_addresses_share_one_count():
    """Every fixed IP (index) of a port, and its IPv6 address, count as the
    port (its ofport)."""
    key = MetadataService.port_of
    assert key(md.source_address(5, 0)) == key(md.source_address(5, 1)) == \
        key(md.source_address(5, 0, 6)) == key("::ffff:" + md.source_address(5, 3))
    assert key(md.source_address(5, 0)) != key(md.source_address(6, 0))


def test_folded_or_control_characters_are_not_forwarded():
    """A forwarded header (Accept, Content-Type) folded over lines reaches
    nova on one line; with a control character, not at all."""
    assert proxy_mod.clean_header("text/plain,\r\n text/html") == "text/plain, text/html"
    assert proxy_mod.clean_header("text/plain\x00") is None
    assert proxy_mod.clean_header("a\tb") == "a\tb"
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(4)
    seen = []

    def nova():
        c, _ = upstream.accept()
        c.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(4096)
        seen.append(head)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.close()

    t = threading.Thread(target=nova, daemon=True)
    t.start()
    settings = MetadataSettings(shared_secret=SECRET, nova_port=upstream.getsockname()[1],
                                timeout=5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    proxy = MetadataProxy(settings, _by_source).start(sock)
    try:
        s = _connect(sock.getsockname()[1], "127.0.0.2")
        s.sendall(b"GET /latest/meta-data/ HTTP/1.0\r\nAccept: text/plain,\r\n"
                  b" X-Instance-ID: vm-victim\r\n\r\n")
        assert _read_all(s).endswith(b"ok")
        s.close()
        t.join(5)
        lines = seen[0].split(b"\r\n")
        assert b"Accept: text/plain, X-Instance-ID: vm-victim" in lines
        assert b"X-Instance-ID: " + VM.encode() in lines
        assert not any(line.startswith((b" ", b"\t")) for line in lines)
    finally:
        proxy.stop()
        upstream.close()


def test_nova_down_is_503_at_once():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    settings = MetadataSettings(shared_secret=SECRET, nova_port=dead, timeout=5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    proxy = MetadataProxy(settings, lambda a: Requester("pa", VM, "p1", "10.0.0.5")).start(sock)
    try:
        t0 = time.monotonic()
        assert _get(sock.getsockname()[1], "/latest/meta-data/")[0] == 503
        assert time.monotonic() - t0 < 1.0
    finally:
        proxy.stop()


# ------------------------------------------------------------ DHCP option 121
def _routes(subnet, metadata):
    net = ipaddress.ip_network(subnet.cidr)
    gw = ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None
    return DhcpResponder.classless_routes(subnet, gw, net, metadata)


def test_dhcp_routes_metadata_on_link_without_a_gateway():
    isolated = model.Subnet("s", "n", "10.0.0.0/24", gateway_ip=None)
    assert _routes(isolated, False) == b""
    assert _routes(isolated, True) == bytes([32, 169, 254, 169, 254, 0, 0, 0, 0])
    # with host routes too
    routed = model.Subnet("s", "n", "10.0.0.0/24", gateway_ip=None,
                          host_routes=(model.HostRoute("10.9.0.0/16", "10.0.0.254"),))
    assert _routes(routed, True) == bytes([32, 169, 254, 169, 254, 0, 0, 0, 0,
                                           16, 10, 9, 10, 0, 0, 254])
    # a gateway carries it (option 3 alone, as before)
    assert _routes(model.Subnet("s", "n", "10.0.0.0/24", gateway_ip="10.0.0.1"), True) == b""


def _option121(routers, metadata=True):
    """Option 121 of the lease of a port at 10.0.0.5 on subnet s
    (gateway 10.0.0.1) with these routers in the host view."""
    sub = model.Subnet("s", "n", "10.0.0.0/24", gateway_ip="10.0.0.1")
    port = model.Port("p", "n", "fa:16:3e:00:00:05",
                      fixed_ips=(model.FixedIP("s", "10.0.0.5"),))
    r = DhcpResponder(metadata_route=metadata, routers=lambda: routers)
    net = model.Network("n", model.Segment("vxlan", None, 100))
    opts = dict(r.options(port_lease(port, {"s": sub}), net))
    return opts.get(121, b"")


def _ifc(subnet_id="s", ip="10.0.0.1"):
    return model.RouterInterface("rif", "n", subnet_id, ip, 24, "fa:16:3e:00:00:01")


METADATA_ON_LINK = bytes([32, 169, 254, 169, 254, 0, 0, 0, 0])
DEFAULT_VIA_GW = bytes([0, 10, 0, 0, 1])


def test_dhcp_routes_metadata_on_link_when_no_router_holds_the_gateway():
    """A gateway_ip that no router of the view holds (no router, a router
    that is down, a router on the subnet at another address) answers no
    ARP here: 169.254.169.254 on link, the default route kept in 121
    (RFC 3442: option 3 is then ignored).  A router on the gateway keeps
    option 3 alone (the proxy is reached through it); without the
    metadata service nothing changes."""
    want = METADATA_ON_LINK + DEFAULT_VIA_GW
    assert _option121(()) == want
    assert _option121((model.Router("r", admin_state_up=False, interfaces=(_ifc(),)),)) == want
    assert _option121((model.Router("r", interfaces=(_ifc(ip="10.0.0.254"),)),)) == want
    assert _option121((model.Router("r", interfaces=(_ifc(subnet_id="t"),)),)) == want
    assert _option121((model.Router("r", interfaces=(_ifc(),)),)) == b""
    assert _option121((), metadata=False) == b""


def test_project_id_crosses_the_wire():
    p = model.Port("pa", "n1", "fa:16:3e:00:00:01", device_id=VM, project_id="p1", host="hv1")
    v = model.HostView(host="hv1", ports=(p,))
    back = wire.view_from_dict(json.loads(json.dumps(wire.view_to_dict(v))))
    assert back.ports[0].project_id == "p1" and back.ports[0].device_id == VM
