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
from agent.responders.dhcp6 import Dhcp6Responder
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


def _dhcp6_type(frame: bytes) -> int | None:
    """The message type of a DHCPv6 message in an untagged frame (no
    extension headers: neither dhclient nor the responder sends them)."""
    if len(frame) < 14 + 40 + 8 + 4 or frame[12:14] != b"\x86\xdd" or frame[20] != 17:
        return None
    return frame[14 + 40 + 8]


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
        self.responder6: Dhcp6Responder | None = None
        self.log6: list[tuple[int | None, int | None]] = []
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
        if frame[12:14] == b"\x86\xdd":
            self._frame6(frame)
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

    def _frame6(self, frame: bytes):
        if self.responder6 is None:
            return
        reply = self.responder6.handle(frame, self.port, self.subnets, self.network)
        mtype = _dhcp6_type(frame)
        if mtype is not None:
            self.log6.append((mtype, _dhcp6_type(reply) if reply else None))
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
# Configure the address (no routes, no resolv.conf), then record what dhclient told us:
# the test reads the record only once the interface is configured.
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
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ]; then
      ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface"
    fi
    ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" nodad
    ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" \\
      dev "$interface"
    ;;
esac
{{
  printf '{{"reason": "%s", "interface": "%s", "ip": "%s", "mask": "%s", "routers": "%s", '  \\
    "$reason" "$interface" "$new_ip_address" "$new_subnet_mask" "$new_routers"
  printf '"dns": "%s", "mtu": "%s", "routes": "%s", "broadcast": "%s", "domain": "%s", '  \\
    "$new_domain_name_servers" "$new_interface_mtu" "$new_rfc3442_classless_static_routes" \\
    "$new_broadcast_address" "$new_domain_name"
  printf '"lease": "%s", "server": "%s", "old_ip": "%s", ' \\
    "$new_dhcp_lease_time" "$new_dhcp_server_identifier" "$old_ip_address"
  printf '"ip6": "%s", "prefixlen6": "%s", "old_ip6": "%s", "dns6": "%s", "search6": "%s", ' \\
    "$new_ip6_address" "$new_ip6_prefixlen" "$old_ip6_address" "$new_dhcp6_name_servers" \\
    "$new_dhcp6_domain_search"
  printf '"life6": "%s", "host_name": "%s"}}\\n' "$new_max_life" "$new_host_name"
}} >> {events}
exit 0
"""

CONF = """option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, rfc3442-classless-static-routes, host-name,
        dhcp6.name-servers, dhcp6.domain-search;
initial-interval 1;
backoff-cutoff 2;
timeout 15;
retry 1;
"""


class Instance:
    """dhclient in the instance namespace, with our script and files."""

    def __init__(self, ns: str, ifname: str, tmp_path, flags=("-4",)):
        self.flags = tuple(flags)
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
        if "-6" in self.flags:
            self.wait_link_local()
        self._logf = open(self.log, "ab")
        cmd = ["ip", "netns", "exec", self.ns, "dhclient", *self.flags, "-d", "-1", "-v"]
        cmd += ["-sf", self.script, "-cf", self.conf, "-lf", self.leases, "-pf", self.pidfile]
        self.proc = subprocess.Popen(
            [str(c) for c in cmd] + [self.ifname],
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
        """The script's records so far (a line still being written is left out)."""
        if not self.events.exists():
            return []
        lines = self.events.read_text().split("\n")[:-1]
        return [json.loads(line) for line in lines if line]

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

    def wait_link_local(self, timeout: float = 5.0):
        """dhclient -6 refuses to start before the interface has a link-local
        address (assigned once the veth has carrier)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = run("ip", "-n", self.ns, "-6", "-j", "addr", "show", "dev", self.ifname)
            infos = [a for link in json.loads(out) for a in link.get("addr_info", [])]
            if any(a.get("scope") == "link" and not a.get("tentative") for a in infos):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.ifname} has no usable IPv6 link-local address")

    def addresses(self, family="-4", scope="global") -> list[str]:
        out = run("ip", "-n", self.ns, family, "-j", "addr", "show", "dev", self.ifname,
                  "scope", scope)  # fmt: skip
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in json.loads(out)
            for a in link.get("addr_info", [])
            if "local" in a
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
    # No duplicate address detection: dhclient -6 needs a usable link-local at once.
    run("ip", "netns", "exec", cli_ns, "sysctl", "-qw", f"net.ipv6.conf.{cli_if}.accept_dad=0")
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

    def make(port, lease_time=86400, subnet=SUBNET, subnet6=None):
        kw = dict(lease_time=lease_time, server_mac=SERVER_MAC, domain="example.test")
        subnets = {s.id: s for s in (subnet, subnet6) if s is not None}
        server_ip = subnet.gateway_ip or "169.254.0.1"
        sock = packet_socket_in(srv_ns, srv_if)
        h = Harness(sock, DhcpResponder(**kw), port, subnets, NET, server_ip)
        h.responder6 = Dhcp6Responder(**kw)
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

    def make(name="a", flags=("-4",)):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        inst = Instance(cli_ns, cli_if, d, flags)
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
    assert ev["host_name"] == "host-10-20-30-40"  # (no dns_name: Neutron's hosts file)
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


# ------------------------------------------------------------------ DHCPv6
def subnet6(mode):
    return model.Subnet(
        "sub-6", "net-1", "2001:db8:20::/64", ip_version=6, gateway_ip="2001:db8:20::1",
        dns_nameservers=("2001:db8:20::53", "2001:db8:ff::53"),
        ipv6_ra_mode=mode, ipv6_address_mode=mode,
    )  # fmt: skip


def make_port6(ip4: str, ip6: str) -> model.Port:
    return model.Port("port-1", "net-1", MAC, fixed_ips=(
        model.FixedIP("sub-1", ip4), model.FixedIP("sub-6", ip6)))  # fmt: skip


def bound6(ev):
    return ev["reason"] in ("BOUND6", "RENEW6", "REBIND6", "REBOOT6")


def test_dhclient6_stateful(harness_factory, instance_factory):
    """dhclient -6: SOLICIT/ADVERTISE/REQUEST/REPLY gives the port's IPv6
    address and DNS; after the port's address changes, the next RENEW's
    REPLY moves the client to the new address."""
    harness = harness_factory(make_port6("10.20.30.40", "2001:db8:20::40"), lease_time=4,
                              subnet6=subnet6("dhcpv6-stateful"))  # fmt: skip
    inst = instance_factory("v6", flags=("-6",))
    inst.start()
    ev = inst.wait_for(bound6)
    assert ev["reason"] == "BOUND6"
    assert ev["ip6"] == "2001:db8:20::40"
    assert ev["dns6"] == "2001:db8:20::53 2001:db8:ff::53"
    assert ev["search6"].rstrip(".") == "example.test"
    assert ev["life6"] == "4"
    assert inst.addresses("-6") == ["2001:db8:20::40/128"]
    assert harness.log6[:2] == [(1, 2), (3, 7)]  # SOLICIT->ADVERTISE, REQUEST->REPLY

    inst.wait_for(lambda ev: ev["reason"] == "RENEW6" and ev["ip6"] == "2001:db8:20::40")
    harness.port = make_port6("10.20.30.40", "2001:db8:20::77")
    ev = inst.wait_for(lambda ev: bound6(ev) and ev["ip6"] == "2001:db8:20::77")
    deadline = time.monotonic() + 5
    while inst.addresses("-6") != ["2001:db8:20::77/128"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inst.addresses("-6") == ["2001:db8:20::77/128"]
    # The old address came back with zero lifetimes, and dhclient let it go.
    inst.wait_for(lambda ev: ev["reason"] == "EXPIRE6" and ev["old_ip6"] == "2001:db8:20::40")
    assert harness.log6.count((5, 7)) >= 2, harness.log6  # RENEW -> REPLY, before and after


def test_dhclient6_stateless(harness_factory, instance_factory):
    """dhclient -6 -S: INFORMATION-REQUEST gets the DNS servers, no address."""
    harness = harness_factory(make_port6("10.20.30.40", "2001:db8:20::40"),
                              subnet6=subnet6("dhcpv6-stateless"))  # fmt: skip
    inst = instance_factory("v6s", flags=("-6", "-S"))
    inst.start()
    ev = inst.wait_for(lambda ev: ev["dns6"] != "")
    assert ev["dns6"] == "2001:db8:20::53 2001:db8:ff::53"
    assert ev["ip6"] == ""
    assert harness.log6[0] == (11, 7)  # INFORMATION-REQUEST -> REPLY
