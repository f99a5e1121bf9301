"""A real DHCP client (ISC dhclient) configures itself from the native responder.

No Open vSwitch here: two network namespaces joined by a veth pair stand in
for the pipeline.  In the "server" namespace a harness thread reads every
frame from a raw AF_PACKET socket on its veth end, answers ARP for the
server identifier (as the pipeline's ARP responder would for the gateway),
passes everything else to :meth:`DhcpResponder.handle` with the port, its
subnets and its network, and writes the reply back: exactly what the agent
does with a packet-in and a packet-out.  In the "instance" namespace
dhclient runs with a script of ours that records the variables dhclient
passes it (new_ip_address, new_routers, ...) and configures the address,
so the test can assert both what the client understood and what ends up
on its interface.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from agent.responders.dhcp import DhcpResponder
from quantum_ovs import model

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAC = "fa:16:3e:12:34:56"
SERVER_MAC = "fa:16:3e:00:00:fe"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths)"
    for tool in ("ip", "dhclient"):
        if shutil.which(tool) is None:
            return f"needs {tool} (isc-dhcp-client, iproute2)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def run(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def packet_socket_in(ns: str, ifname: str) -> socket.socket:
    """A raw AF_PACKET socket on ``ifname`` inside namespace ``ns``.

    The socket is opened by a short-lived thread that joins the namespace
    (setns changes only the calling thread), so the test process itself
    never leaves its own namespace."""
    box: dict = {}

    def opener():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((ifname, 0))
            box["sock"] = s
        except BaseException as exc:  # reported in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=opener)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def _dhcp_type(frame: bytes) -> int | None:
    """Option 53 of a DHCP message in an untagged Ethernet/IPv4/UDP frame."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    payload = frame[14 + ihl + 8 :]
    if payload[236:240] != b"\x63\x82\x53\x63":
        return None
    i = 240
    while i < len(payload) and payload[i] != 255:
        if payload[i] == 0:
            i += 1
            continue
        if payload[i] == 53:
            return payload[i + 2]
        i += 2 + payload[i + 1]
    return None


class Harness:
    """The agent's side of the wire: DHCP through the responder, plus ARP
    for the server identifier.  ``port`` may be replaced at any time."""

    def __init__(self, sock, responder, port, subnets, network, server_ip):
        self.sock = sock
        self.responder = responder
        self.port = port
        self.subnets = subnets
        self.network = network
        self.server_ip = socket.inet_aton(server_ip)
        self.log: list[tuple[int | None, int | None]] = []  # (request type, reply type)
        self.requests: list[tuple[int, str, str]] = []  # (type, IP destination, ciaddr)
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dhcp-harness", daemon=True)

    def start(self):
        self.sock.settimeout(0.1)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def types(self) -> list[tuple[int | None, int | None]]:
        return list(self.log)

    def _loop(self):
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            try:
                self._frame(frame)
            except BaseException as exc:  # surfaced by the test
                self.errors.append(exc)

    def _frame(self, frame: bytes):
        if frame[12:14] == b"\x08\x06":
            self._arp(frame)
            return
        reply = self.responder.handle(frame, self.port, self.subnets, self.network)
        mtype = _dhcp_type(frame)
        if mtype is not None:
            self.log.append((mtype, _dhcp_type(reply) if reply else None))
            ihl = (frame[14] & 0x0F) * 4
            self.requests.append(
                (
                    mtype,
                    socket.inet_ntoa(frame[30:34]),
                    socket.inet_ntoa(frame[14 + ihl + 8 + 12 : 14 + ihl + 8 + 16]),
                )
            )
        if reply is not None:
            self.sock.send(reply)

    def _arp(self, frame: bytes):
        if len(frame) < 42:
            return
        op = struct.unpack_from("!H", frame, 20)[0]
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if op != 1 or tpa != self.server_ip:
            return
        mac = bytes.fromhex(SERVER_MAC.replace(":", ""))
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + tpa + sha + spa
        self.sock.send(sha + mac + b"\x08\x06" + arp)


SCRIPT = """#!/bin/sh
# Record what dhclient tells us, then configure the address (no routes, no resolv.conf).
{{
  printf '{{"reason": "%s", "interface": "%s", "ip": "%s", "mask": "%s", "routers": "%s", '  \\
    "$reason" "$interface" "$new_ip_address" "$new_subnet_mask" "$new_routers"
  printf '"dns": "%s", "mtu": "%s", "routes": "%s", "broadcast": "%s", "domain": "%s", '  \\
    "$new_domain_name_servers" "$new_interface_mtu" "$new_rfc3442_classless_static_routes" \\
    "$new_broadcast_address" "$new_domain_name"
  printf '"lease": "%s", "server": "%s", "old_ip": "%s"}}\\n' \\
    "$new_dhcp_lease_time" "$new_dhcp_server_identifier" "$old_ip_address"
}} >> {events}
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" broadcast "$new_broadcast_address" \\
      dev "$interface"
    ;;
  EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface"
    ;;
esac
exit 0
"""

CONF = """option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, rfc3442-classless-static-routes;
initial-interval 1;
backoff-cutoff 2;
timeout 15;
retry 1;
"""


class Instance:
    """dhclient in the instance namespace, with our script and files."""

    def __init__(self, ns: str, ifname: str, tmp_path):
        self.ns = ns
        self.ifname = ifname
        self.events = tmp_path / "events.jsonl"
        self.script = tmp_path / "dhclient-script.sh"
        self.conf = tmp_path / "dhclient.conf"
        self.leases = tmp_path / "dhclient.leases"
        self.pidfile = tmp_path / "dhclient.pid"
        self.log = tmp_path / "dhclient.log"
        self.script.write_text(SCRIPT.format(events=self.events))
        self.script.chmod(0o755)
        self.conf.write_text(CONF)
        self.proc: subprocess.Popen | None = None

    def start(self):
        """dhclient -d: stays in the foreground (and keeps renewing) after
        binding, so that its PID is ours to stop."""
        assert self.proc is None
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                "dhclient",
                "-4",
                "-d",
                "-1",
                "-v",
                "-sf",
                str(self.script),
                "-cf",
                str(self.conf),
                "-lf",
                str(self.leases),
                "-pf",
                str(self.pidfile),
                self.ifname,
            ],
            stdout=self._logf,
            stderr=subprocess.STDOUT,
        )

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self._logf.close()

    def events_list(self) -> list[dict]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line]

    def wait_for(self, predicate, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events_list():
                if predicate(ev):
                    return ev
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"dhclient never reported the expected event; events: {self.events_list()}\n"
            f"dhclient log:\n{self.log.read_text() if self.log.exists() else ''}"
        )

    def addresses(self) -> list[str]:
        out = run("ip", "-n", self.ns, "-4", "-j", "addr", "show", "dev", self.ifname)
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(out)
            for a in link.get("addr_info", [])
        ]


@pytest.fixture
def wire(request):
    """Two fresh namespaces joined by a veth pair: (server ns, server end,
    instance ns, instance end).  Deleted at teardown."""
    tag = secrets.token_hex(3)
    srv_ns, cli_ns = f"qdhcp-s-{tag}", f"qdhcp-c-{tag}"
    srv_if, cli_if = f"qds-{tag}", f"qdc-{tag}"
    created = []

    def cleanup():
        for ns in created:
            run("ip", "netns", "del", ns, check=False)

    request.addfinalizer(cleanup)
    for ns in (srv_ns, cli_ns):
        run("ip", "netns", "add", ns)
        created.append(ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
    run(
        "ip",
        "-n",
        srv_ns,
        "link",
        "add",
        srv_if,
        "type",
        "veth",
        "peer",
        "name",
        cli_if,
        "netns",
        cli_ns,
    )
    run("ip", "-n", cli_ns, "link", "set", cli_if, "address", MAC)
    run("ip", "-n", srv_ns, "link", "set", srv_if, "up")
    run("ip", "-n", cli_ns, "link", "set", cli_if, "up")
    return srv_ns, srv_if, cli_ns, cli_if


NET = model.Network("net-1", model.Segment("vxlan", segmentation_id=1001), mtu=1450)
SUBNET = model.Subnet(
    "sub-1",
    "net-1",
    "10.20.30.0/24",
    gateway_ip="10.20.30.1",
    dns_nameservers=("10.20.30.2", "192.0.2.53"),
    host_routes=(
        model.HostRoute("172.16.0.0/12", "10.20.30.254"),
        model.HostRoute("192.168.7.0/24", "10.20.30.253"),
    ),
)


def make_port(ip: str) -> model.Port:
    return model.Port("port-1", "net-1", MAC, fixed_ips=(model.FixedIP("sub-1", ip),))


@pytest.fixture
def harness_factory(wire, request):
    srv_ns, srv_if, _, _ = wire
    made = []

    def make(port, lease_time=86400, subnet=SUBNET):
        responder = DhcpResponder(
            lease_time=lease_time, server_mac=SERVER_MAC, domain="example.test"
        )
        h = Harness(
            packet_socket_in(srv_ns, srv_if),
            responder,
            port,
            {subnet.id: subnet},
            NET,
            subnet.gateway_ip or "169.254.0.1",
        )
        made.append(h)
        return h.start()

    yield make
    for h in made:
        h.stop()
        assert not h.errors, h.errors


@pytest.fixture
def instance_factory(wire, tmp_path):
    _, _, cli_ns, cli_if = wire
    made = []

    def make(name="a"):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        inst = Instance(cli_ns, cli_if, d)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.stop()


def bound(ev):
    return ev["reason"] in ("BOUND", "REBOOT", "RENEW", "REBIND")


def test_dhclient_takes_the_ports_configuration(harness_factory, instance_factory):
    harness = harness_factory(make_port("10.20.30.40"))
    inst = instance_factory()
    inst.start()
    ev = inst.wait_for(bound)

    assert ev["reason"] == "BOUND"
    assert ev["ip"] == "10.20.30.40"
    assert ev["mask"] == "255.255.255.0"
    assert ev["broadcast"] == "10.20.30.255"
    assert ev["routers"] == "10.20.30.1"
    assert ev["dns"] == "10.20.30.2 192.0.2.53"
    assert ev["domain"] == "example.test"
    assert ev["mtu"] == "1450"
    assert ev["server"] == "10.20.30.1"
    assert ev["lease"] == "86400"
    # dhclient prints option 121 as its raw octets, RFC 3442 encoded.
    assert ev["routes"].split() == [
        "12",
        "172",
        "16",
        "10",
        "20",
        "30",
        "254",
        "24",
        "192",
        "168",
        "7",
        "10",
        "20",
        "30",
        "253",
        "0",
        "10",
        "20",
        "30",
        "1",
    ]
    assert inst.addresses() == ["10.20.30.40/24"]
    assert harness.types()[:2] == [(1, 2), (3, 5)]  # DISCOVER->OFFER, REQUEST->ACK

    lease = inst.leases.read_text()
    assert "fixed-address 10.20.30.40;" in lease
    assert "option subnet-mask 255.255.255.0;" in lease
    assert "option routers 10.20.30.1;" in lease
    assert "option domain-name-servers 10.20.30.2,192.0.2.53;" in lease
    assert "option interface-mtu 1450;" in lease
    assert "option dhcp-server-identifier 10.20.30.1;" in lease


def test_renewal_picks_up_a_new_fixed_ip(harness_factory, instance_factory):
    """A short lease: dhclient renews by unicast to the server identifier
    (the gateway) with ciaddr set; once the port's address has changed the
    renewal is NAKed and the client starts over with the new address."""
    harness = harness_factory(make_port("10.20.30.40"), lease_time=4)
    inst = instance_factory()
    inst.start()
    inst.wait_for(bound)
    assert inst.addresses() == ["10.20.30.40/24"]
    # A renewal of the unchanged port is ACKed.
    inst.wait_for(lambda ev: ev["reason"] == "RENEW" and ev["ip"] == "10.20.30.40")
    # ... and it came by unicast to the server identifier, from the bound address.
    assert (3, "10.20.30.1", "10.20.30.40") in harness.requests, harness.requests

    harness.port = make_port("10.20.30.77")
    ev = inst.wait_for(lambda ev: bound(ev) and ev["ip"] == "10.20.30.77")
    assert ev["reason"] == "BOUND"
    assert ev["mask"] == "255.255.255.0" and ev["routers"] == "10.20.30.1"
    assert inst.addresses() == ["10.20.30.77/24"]
    assert (3, 6) in harness.types()  # the stale REQUEST was NAKed


def test_reboot_with_a_stale_lease_is_naked(harness_factory, instance_factory):
    """dhclient restarted with its lease file asks for its old address
    (INIT-REBOOT); after the port's address changed it gets a NAK, then the
    new address through DISCOVER/OFFER/REQUEST/ACK."""
    harness = harness_factory(make_port("10.20.30.40"))
    inst = instance_factory()
    inst.start()
    inst.wait_for(bound)
    inst.stop()

    harness.port = make_port("10.20.30.41")
    before = len(harness.types())
    again = Instance(inst.ns, inst.ifname, inst.leases.parent)
    again.events.unlink()
    try:
        again.start()
        ev = again.wait_for(lambda ev: bound(ev) and ev["ip"] == "10.20.30.41")
    finally:
        again.stop()
    assert ev["reason"] == "BOUND"
    assert again.addresses() == ["10.20.30.41/24"]
    seen = harness.types()[before:]
    assert seen[0] == (3, 6), seen  # REQUEST for 10.20.30.40 -> NAK
    assert (1, 2) in seen and seen[-1] == (3, 5), seen


def test_subnet_without_gateway(harness_factory, instance_factory):
    """No router option, no default route in 121; the server identifier is
    the responder's link-local fallback."""
    subnet = model.Subnet(
        "sub-1", "net-1", "10.20.30.0/24", gateway_ip=None, dns_nameservers=("10.20.30.2",)
    )
    harness_factory(make_port("10.20.30.40"), subnet=subnet)
    inst = instance_factory()
    inst.start()
    ev = inst.wait_for(bound)
    assert ev["ip"] == "10.20.30.40"
    assert ev["routers"] == ""
    assert ev["routes"] == ""
    assert ev["server"] == "169.254.0.1"
    assert inst.addresses() == ["10.20.30.40/24"]
