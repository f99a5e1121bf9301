"""A private Open vSwitch: for tests, benchmarks and the demo.

Each :class:`PrivateOVS` gets its own network namespace (the netdev
datapath creates host devices named ``ovs-netdev``, ``br-int``..., so two
instances in one namespace collide), its own run directory, database,
ovsdb-server and ovs-vswitchd.  Every process is stopped by the PID from
its pidfile; the namespace and the run directory are removed at teardown.

Instances (VMs) are network namespaces with one end of a veth pair; the
other end is moved into the OVS namespace and plugged into br-int with the
external_ids nova sets (iface-id, attached-mac, iface-status, vm-uuid).

Nothing here imports the agent: the fixture talks to OVS through its own
command-line tools, so that tests can check the agent against them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BINARIES = (
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "ip",
)
CLONE_NEWNET = 0x40000000


def missing_prerequisites() -> str | None:
    """Why a private OVS cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, veths)"
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return "missing binaries: " + ", ".join(missing)
    if not os.path.exists(SCHEMA):
        return f"missing OVS schema {SCHEMA}"
    if not os.path.exists("/dev/net/tun"):
        return "missing /dev/net/tun (the netdev datapath needs tap devices)"
    return None


def rand_name(prefix: str, n: int = 6) -> str:
    """A device/namespace name unlikely to collide (device names <= 15 chars)."""
    return prefix + secrets.token_hex(n // 2 + 1)[:n]


def run(*cmd: str, check: bool = True, timeout: float = 20, env=None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    return proc.stdout


def netns_exec(ns: str, *cmd: str, **kw) -> str:
    return run("ip", "netns", "exec", ns, *cmd, **kw)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs.  A zombie counts as gone: detached daemons
    are reparented to PID 1, which may take its time to reap them."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_pid(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Stop one process by PID and wait until it is gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _pid_alive(pid):
        time.sleep(0.02)


def in_netns(ns: str, fn, *args, **kwargs):
    """Run ``fn`` on a fresh thread that has entered network namespace ``ns``.

    setns() affects only the calling thread, and sockets keep the namespace
    they were created in, so this is how a test creates a listening socket
    that an ovs-vswitchd inside ``ns`` can reach on 127.0.0.1.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    result: dict = {}

    def target():
        try:
            with open(f"/var/run/netns/{ns}") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the caller
            result["error"] = e

    t = threading.Thread(target=target, name=f"netns-{ns}")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@dataclass
class Instance:
    """A 'VM': a namespace with one veth end, the other end on br-int."""

    ns: str
    dev: str  # device inside the instance namespace
    port: str  # device (and OVS port name) inside the OVS namespace
    mac: str
    ip: str
    prefixlen: int
    iface_id: str
    vm_uuid: str

    def exec(self, *cmd: str, **kw) -> str:
        return netns_exec(self.ns, *cmd, **kw)

    def raw_socket(self, timeout: float = 2.0) -> socket.socket:
        """An AF_PACKET socket on the instance's device (all ethertypes)."""

        def make():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            s.bind((self.dev, 0))
            s.settimeout(timeout)
            return s

        return in_netns(self.ns, make)

    def ping(self, ip: str, count: int = 1, wait: float = 1) -> bool:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, "ping", "-n", "-c", str(count), "-W", str(wait), ip],
            capture_output=True,
            text=True,
            timeout=count * wait + 10,
        )
        return proc.returncode == 0


@dataclass
class PrivateOVS:
    """ovsdb-server + ovs-vswitchd in their own namespace and run directory."""

    ns: str = field(default_factory=lambda: rand_name("qovs-", 8))
    rundir: str = ""
    instances: list[Instance] = field(default_factory=list)
    _started: bool = False

    # ------------------------------------------------------------ paths
    @property
    def db_path(self) -> str:
        return os.path.join(self.rundir, "conf.db")

    @property
    def db_sock(self) -> str:
        return os.path.join(self.rundir, "db.sock")

    @property
    def db_remote(self) -> str:
        return "unix:" + self.db_sock

    def _pidfile(self, daemon: str) -> str:
        return os.path.join(self.rundir, daemon + ".pid")

    def _ctl(self, daemon: str) -> str:
        return os.path.join(self.rundir, daemon + ".ctl")

    def pid(self, daemon: str) -> int | None:
        try:
            with open(self._pidfile(daemon)) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            OVS_RUNDIR=self.rundir,
            OVS_DBDIR=self.rundir,
            OVS_LOGDIR=self.rundir,
            OVS_SYSCONFDIR=self.rundir,
            OVS_PKGDATADIR="/usr/share/openvswitch",
        )
        return env

    # ------------------------------------------------------------ life cycle
    def start(self) -> "PrivateOVS":
        self.rundir = tempfile.mkdtemp(prefix="qovs-")
        self._started = True
        run("ip", "netns", "add", self.ns)
        netns_exec(self.ns, "ip", "link", "set", "lo", "up")
        run("ovsdb-tool", "create", self.db_path, SCHEMA)
        self.start_ovsdb()
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()
        return self

    def start_ovsdb(self) -> None:
        netns_exec(
            self.ns,
            "ovsdb-server",
            self.db_path,
            "--remote=punix:" + self.db_sock,
            "--pidfile=" + self._pidfile("ovsdb-server"),
            "--unixctl=" + self._ctl("ovsdb-server"),
            "--log-file=" + os.path.join(self.rundir, "ovsdb-server.log"),
            "--detach",
            "--no-chdir",
            env=self.env,
        )

    def stop_ovsdb(self) -> None:
        pid = self.pid("ovsdb-server")
        if pid is not None:
            kill_pid(pid)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pidfile("ovsdb-server"))

    def start_vswitchd(self) -> None:
        netns_exec(
            self.ns,
            "ovs-vswitchd",
            self.db_remote,
            "--pidfile=" + self._pidfile("ovs-vswitchd"),
            "--unixctl=" + self._ctl("ovs-vswitchd"),
            "--log-file=" + os.path.join(self.rundir, "ovs-vswitchd.log"),
            "--detach",
            "--no-chdir",
            "-vconsole:off",
            env=self.env,
            timeout=30,
        )

    def stop_vswitchd(self, sig: int = signal.SIGTERM) -> None:
        pid = self.pid("ovs-vswitchd")
        if pid is not None:
            kill_pid(pid, sig=sig)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pidfile("ovs-vswitchd"))

    def restart_vswitchd(self, sig: int = signal.SIGKILL) -> None:
        """Kill ovs-vswitchd by PID (like a crash) and start it again."""
        self.stop_vswitchd(sig=sig)
        self.start_vswitchd()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for inst in self.instances:
            run("ip", "netns", "del", inst.ns, check=False)
        self.instances.clear()
        self.stop_vswitchd()
        self.stop_ovsdb()
        run("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.rundir, ignore_errors=True)

    def __enter__(self) -> "PrivateOVS":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ tools
    def vsctl(self, *args: str, **kw) -> str:
        return run("ovs-vsctl", "--db=" + self.db_remote, "--timeout=10", *args, env=self.env, **kw)

    def ofctl(self, *args: str, **kw) -> str:
        # ovs-ofctl finds br-int's management socket in OVS_RUNDIR.
        return run("ovs-ofctl", "-O", "OpenFlow13", *args, env=self.env, **kw)

    def appctl(self, *args: str, target: str = "ovs-vswitchd", **kw) -> str:
        return run("ovs-appctl", "--target=" + self._ctl(target), *args, env=self.env, **kw)

    def exec(self, *cmd: str, **kw) -> str:
        return netns_exec(self.ns, *cmd, **kw)

    def purge_datapath_flows(self) -> None:
        """Drop the datapath's cached flows. ovs-vswitchd revalidates them in
        the background after an OpenFlow change, so for a moment after a flow
        delete (even past a barrier) a packet can still take the old path. A
        test asserting a cut right after its own flow-mod purges first, so the
        next packet meets the OpenFlow tables."""
        self.appctl("revalidator/purge")

    def flow_count(self, bridge: str = "br-int", timeout: float = 120) -> int:
        """How many flows ``bridge`` holds (ovs-ofctl dump-aggregate)."""
        out = self.ofctl("dump-aggregate", bridge, timeout=timeout)
        return int(re.search(r"flow_count=(\d+)", out).group(1))

    def dump_flows(self, bridge: str = "br-int", *extra: str) -> list[str]:
        """Flow lines without the volatile counters, for comparisons."""
        out = self.ofctl("--no-stats", "dump-flows", bridge, *extra)
        return [line.strip() for line in out.splitlines() if line.strip() and "reply" not in line]

    def add_bridge(self, name: str = "br-int") -> None:
        """A netdev bridge set up by the fixture itself (not by the agent)."""
        self.vsctl(
            "--may-exist",
            "add-br",
            name,
            "--",
            "set",
            "Bridge",
            name,
            "datapath_type=netdev",
            "protocols=OpenFlow13",
        )

    def listen_socket(self, host: str = "127.0.0.1", port: int = 0) -> socket.socket:
        """A listening TCP socket inside this OVS's namespace."""

        def make():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(8)
            return s

        return in_netns(self.ns, make)

    def ofport(self, iface: str, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while True:
            out = self.vsctl("--if-exists", "get", "Interface", iface, "ofport").strip()
            if out and out not in ("[]", "-1"):
                return int(out)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ofport for {iface}: {out!r}")
            time.sleep(0.05)

    # ------------------------------------------------------------ instances
    def add_instance(
        self,
        ip: str,
        prefixlen: int = 24,
        mac: str | None = None,
        bridge: str = "br-int",
        iface_id: str | None = None,
        plug: bool = True,
    ) -> Instance:
        """A namespace with a veth whose peer is (optionally) plugged on ``bridge``."""
        mac = mac or "fa:16:3e:%02x:%02x:%02x" % tuple(secrets.token_bytes(3))
        inst = Instance(
            ns=rand_name("qvm-", 8),
            dev=rand_name("vme", 8),
            port=rand_name("tap", 8),
            mac=mac,
            ip=ip,
            prefixlen=prefixlen,
            iface_id=iface_id or str(uuid.uuid4()),
            vm_uuid=str(uuid.uuid4()),
        )
        run("ip", "netns", "add", inst.ns)
        self.instances.append(inst)
        run(
            "ip",
            "link",
            "add",
            inst.dev,
            "netns",
            inst.ns,
            "type",
            "veth",
            "peer",
            "name",
            inst.port,
            "netns",
            self.ns,
        )
        inst.exec("ip", "link", "set", "lo", "up")
        inst.exec("ip", "link", "set", inst.dev, "address", mac)
        inst.exec("ip", "addr", "add", f"{ip}/{prefixlen}", "dev", inst.dev)
        inst.exec("ip", "link", "set", inst.dev, "up")
        self.exec("ip", "link", "set", inst.port, "up")
        # The userspace datapath gets the kernel's partial (offloaded)
        # TCP/UDP checksums from a veth, and its conntrack then calls the
        # packets invalid: let the instance compute full checksums.
        if shutil.which("ethtool"):
            inst.exec("ethtool", "-K", inst.dev, "tx", "off", check=False)
        if plug:
            self.plug(inst, bridge)
        return inst

    def plug(self, inst: Instance, bridge: str = "br-int") -> None:
        """Add the instance's port the way nova's os-vif does."""
        self.vsctl(
            "--may-exist",
            "add-port",
            bridge,
            inst.port,
            "--",
            "set",
            "Interface",
            inst.port,
            f'external_ids:iface-id="{inst.iface_id}"',
            f'external_ids:attached-mac="{inst.mac}"',
            "external_ids:iface-status=active",
            f'external_ids:vm-uuid="{inst.vm_uuid}"',
        )

    def unplug(self, inst: Instance, bridge: str = "br-int") -> None:
        self.vsctl("--if-exists", "del-port", bridge, inst.port)

    def remove_instance(self, inst: Instance) -> None:
        self.unplug(inst)
        run("ip", "netns", "del", inst.ns, check=False)
        self.instances.remove(inst)
