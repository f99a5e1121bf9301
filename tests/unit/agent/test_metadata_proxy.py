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

from agent.metadata.proxy import MetadataProxy, Requester, sign
from agent.metadata.service import MetadataService
from agent.metadata.settings import MetadataSettings
from agent.responders.dhcp import DhcpResponder
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


def _get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
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
        threads = [threading.Thread(target=lambda: results.append(
            _get(port, "/openstack/latest/meta_data.json")[0])) for _ in range(16)]
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
    """Connections that send nothing hold at most 2 x max_requests threads;
    past that a connection is closed at once, and once they go a request
    is served again."""
    proxy, port = _proxy(nova, lambda addr: Requester("pa", VM, "p1", "10.0.0.5"),
                         max_requests=2)
    idle = []
    try:
        for _ in range(4):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port))
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


def test_nova_down_is_502_at_once():
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
        assert _get(sock.getsockname()[1], "/latest/meta-data/")[0] == 502
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


def test_project_id_crosses_the_wire():
    p = model.Port("pa", "n1", "fa:16:3e:00:00:01", device_id=VM, project_id="p1", host="hv1")
    v = model.HostView(host="hv1", ports=(p,))
    back = wire.view_from_dict(json.loads(json.dumps(wire.view_to_dict(v))))
    assert back.ports[0].project_id == "p1" and back.ports[0].device_id == VM
