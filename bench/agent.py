"""Agent benchmark: how fast ports come up, and how fast the agent resyncs.

A real quantum-ovs-server (SQLite) in the root namespace, a private Open
vSwitch in its own namespace (quantum_ovs/testing/ovs.py), the agent
in this process (as tests/integration/test_agent.py runs it).  Prints
medians and ends with one JSON line:

    port_ready_ms        POST /v2.0/ports (bound to the host) until the API
                         says ACTIVE *and* an instance already running on
                         the network gets an ICMP echo reply from the new
                         one (median of ``ready_runs``).  The new
                         instance's namespace and veth exist before the
                         clock starts (with the MAC and IP given in the
                         create); it is plugged into br-int (ovs-vsctl
                         add-port with iface-id, as nova does) right
                         after the create returns.
    port_active_ms       the create -> ACTIVE part alone (median)
    ports_1000_up_s      first create call until all N ports are ACTIVE:
                         N ports created in bulks of ``batch``, each bulk
                         followed by one ovs-vsctl call that plugs its
                         ports as internal ports with iface-id
                         (ports_1000_create_s: the time spent in the
                         creates; ports_1000_plugged_to_active_s: from the
                         last plug to all ACTIVE, the agent's lag)
    resync_1000_s        with the N ports up: stop the agent, start a new
                         one (same state_path); until it is ready and has
                         reported every plugged port (its flow_mods must
                         stay 0: a hitless restart changes nothing);
                         resync_start_s: the part spent in Agent.start();
                         start_to_flows_s: from the new Agent's creation
                         until its first full sync is installed (ready:
                         the flows checked, zero flow-mods); stop_s: the
                         old agent's Agent.stop()
                         (median of 3 restarts; resync_flow_mods: the
                         most of them)
    resync_1000_connect_s  the same (and resync_connect_start_s,
                         start_to_flows_connect_s, stop_connect_s,
                         resync_flow_mods_connect) with the agent connecting
                         to br-int's management socket ([ovs]
                         of_connect_unix) instead of waiting for
                         ovs-vswitchd to connect to it
    vswitchd_restart_flows_s   ovs-vswitchd killed (SIGKILL) and started
                         again: until br-int holds the same number of
                         flows again
    vswitchd_restart_active_s  ... and until all ports are ACTIVE again
    ovsdb_sync_s         with the N ports plugged: the agent's first OVSDB
                         sync (Connection.start with the agent's tables),
                         median of 5; ovsdb_sync_library_parser_s: the
                         same with the ovs library's own JSON parser
                         instead of agent/ovsdb/streamjson.py (alternated,
                         same run)
    import_s             ``import agent.main`` in a fresh interpreter, the
                         fixed cost a started quantum-ovs-agent pays before
                         Agent() exists (start_to_flows_s does not see it:
                         this process imported the agent long before);
                         CPU seconds (process_time) of the import, median
                         of 5 interpreters

``--quick`` shrinks the counts for a smoke run (the keys stay; the counts
are in the JSON).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import logging
import os
import secrets
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent import startup  # noqa: E402
from agent.daemon import Agent, Settings  # noqa: E402
from quantum_ovs.testing.server import ServerProcess  # noqa: E402
from quantum_ovs.testing.ovs import PrivateOVS, in_netns, rand_name  # noqa: E402

HOST = "bench-hv1"
PROJECT = "bench"
FULL = dict(ready_runs=20, ports=1000, batch=100)
QUICK = dict(ready_runs=5, ports=100, batch=50)
READY_TIMEOUT = 10.0
UP_TIMEOUT = 600.0


class Client:
    """One keep-alive HTTP connection to the server's REST API (admin)."""

    def __init__(self, port: int, timeout: float = 600):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "X-Project-Id": PROJECT, "X-Roles": "admin"}

    def call(self, method: str, path: str, body=None, want: int = 200):
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != want:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:2000]!r}")
        return json.loads(raw) if raw else None

    def network(self, cidr: str):
        net = self.call("POST", "/v2.0/networks", {"network": {"name": "bench"}}, 201)["network"]
        sub = self.call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4}}, 201)["subnet"]
        return net, sub

    def status(self, port_id: str) -> str:
        return self.call("GET", f"/v2.0/ports/{port_id}?fields=status")["port"]["status"]

    def count_active(self, network_id: str) -> int:
        out = self.call("GET", f"/v2.0/ports?network_id={network_id}&status=ACTIVE&fields=id")
        return len(out["ports"])

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- ping
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Pinger:
    """ICMP echo from inside an instance's namespace (a raw socket created
    there): ``first_reply(ip)`` sends one echo request every ``interval``
    until a reply from ``ip`` arrives, and returns its arrival time."""

    def __init__(self, ns: str, interval: float = 0.002):
        self.sock = in_netns(ns, socket.socket, socket.AF_INET, socket.SOCK_RAW,
                             socket.IPPROTO_ICMP)
        self.interval = interval
        self.ident = os.getpid() & 0xFFFF

    def first_reply(self, ip: str, timeout: float, stop: threading.Event | None = None):
        deadline = time.monotonic() + timeout
        seq = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            seq = (seq + 1) & 0xFFFF
            hdr = struct.pack("!BBHHH", 8, 0, 0, self.ident, seq)
            payload = b"qovs-bench" + bytes(22)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), self.ident, seq) + payload
            try:
                self.sock.sendto(pkt, (ip, 0))
            except OSError:  # EHOSTUNREACH while ARP fails: just try again
                pass
            until = time.monotonic() + self.interval
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    break
                data, addr = self.sock.recvfrom(2048)
                ihl = (data[0] & 0x0F) * 4
                if addr[0] != ip or len(data) < ihl + 8:
                    continue
                typ, _code, _ck, ident, _seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if typ == 0 and ident == self.ident:
                    return time.monotonic()
        return None

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- the bench
class Bench:
    def __init__(self, counts, tmp: str, out=print, workers: int = 1):
        self.c = counts
        self.workers = workers
        self.tmp = tmp
        self.out = out
        self.result: dict = {}
        self.mode = "listen"  # how the agent reaches the switch (resyncs)
        self.ovs = None
        self.server = None
        self.agent = None
        self.client = None

    # ------------------------------------------------------------ plumbing
    def start(self):
        self.server = ServerProcess(f"sqlite:///{self.tmp}/bench.sqlite",
                                    workers=self.workers,
                                    extra_conf="[quotas]\nquota_port = -1\n",
                                    log_path=os.path.join(self.tmp, "server.log")).start()
        self.ovs = PrivateOVS().start()
        self.client = Client(self.server.port)
        self.agent = self.new_agent()
        if not self.agent.ready.wait(30):
            raise RuntimeError("agent not ready")

    def settings(self) -> Settings:
        if not getattr(self, "token", None):
            self.token = self.server.agent_credential(HOST)
        connect = self.mode == "connect"
        return Settings(host=HOST, server_url=self.server.url, ovsdb=self.ovs.db_remote,
                        token=self.token,
                        of_connect=(f"unix:{os.path.join(self.ovs.rundir, 'br-int.mgmt')}"
                                    if connect else None),
                        datapath_type="netdev", local_ip="192.0.2.1", tunnel_types=("vxlan",),
                        of_socket=self.ovs.listen_socket(),
                        state_path=os.path.join(self.tmp, "state"), report_interval=30,
                        polling_interval=25)

    def new_agent(self) -> Agent:
        return Agent(self.settings()).start()

    def stop(self):
        if self.agent is not None:
            self.agent.stop()
        if self.client is not None:
            self.client.close()
        if self.ovs is not None:
            self.ovs.stop()
        if self.server is not None:
            self.server.stop()

    def flow_count(self) -> int:
        return self.ovs.flow_count(timeout=30)

    @staticmethod
    def _fast_arp(inst):
        # The kernel retries an unanswered ARP request once a second; a
        # port whose flows are not in yet would cost a whole second.
        inst.exec("sysctl", "-qw", f"net.ipv4.neigh.{inst.dev}.retrans_time_ms=10")

    # ------------------------------------------------------------ port ready
    def port_ready(self):
        runs = self.c["ready_runs"]
        net, sub = self.client.network("10.40.0.0/24")
        first = self.client.call("POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST}}, 201)["port"]
        src = self.ovs.add_instance(first["fixed_ips"][0]["ip_address"], 24,
                                    mac=first["mac_address"], iface_id=first["id"])
        self._fast_arp(src)
        deadline = time.monotonic() + 15
        while self.client.status(first["id"]) != "ACTIVE":
            if time.monotonic() > deadline:
                raise RuntimeError("the pinging instance never became ACTIVE")
            time.sleep(0.05)
        pinger = Pinger(src.ns)
        ready, active, reach, plug = [], [], [], []
        try:
            for i in range(runs):
                ip = f"10.40.0.{100 + i}"
                mac = "fa:16:3e:%02x:%02x:%02x" % tuple(secrets.token_bytes(3))
                inst = self.ovs.add_instance(ip, 24, mac=mac, plug=False)
                self._fast_arp(inst)
                body = {"port": {"network_id": net["id"], "binding:host_id": HOST,
                                 "mac_address": mac,
                                 "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}]}}
                got: dict = {}
                stop = threading.Event()

                def probe():
                    got["reply"] = pinger.first_reply(ip, READY_TIMEOUT, stop)

                t0 = time.monotonic()
                port = self.client.call("POST", "/v2.0/ports", body, 201)["port"]
                prober = threading.Thread(target=probe, daemon=True)
                prober.start()
                inst.iface_id = port["id"]
                self.ovs.plug(inst)
                t_plug = time.monotonic()
                t_active = None
                while time.monotonic() - t0 < READY_TIMEOUT:
                    if self.client.status(port["id"]) == "ACTIVE":
                        t_active = time.monotonic()
                        break
                    time.sleep(0.005)
                if t_active is None:
                    stop.set()
                prober.join()
                if t_active is None or got.get("reply") is None:
                    raise RuntimeError(f"run {i}: port {port['id']} not ACTIVE/reachable "
                                       f"within {READY_TIMEOUT}s (active={t_active}, "
                                       f"reply={got.get('reply')})")
                plug.append(t_plug - t0)
                active.append(t_active - t0)
                reach.append(got["reply"] - t0)
                ready.append(max(t_active, got["reply"]) - t0)
        finally:
            pinger.close()
            self._remove_instances()

        def ms(xs):
            return round(statistics.median(xs) * 1000, 1)

        self.result["port_ready_ms"] = ms(ready)
        self.result["port_active_ms"] = ms(active)
        self.result["port_reachable_ms"] = ms(reach)
        self.out(f"port ready (ACTIVE and answering ping) after create: median {ms(ready)} ms "
                 f"(min {min(ready) * 1000:.1f}, max {max(ready) * 1000:.1f}, n={runs}); "
                 f"ACTIVE alone median {ms(active)} ms, first echo reply median {ms(reach)} ms, "
                 f"create+plug calls median {ms(plug)} ms")
        self.out(f"agent after the port-ready runs: {self.agent.stats}")

    def _remove_instances(self):
        """Unplug and delete the port-ready runs' instances, and wait until
        the agent has reported their ports down: the next part brings its
        ports up on a bridge that holds only them.  (Left there, these
        freshly booted namespaces' own traffic and VIFs slowed the agent's
        first few hundred ports of the next part: 200 ACTIVE after 2.6 s
        instead of 0.9 s, in one run here.)"""
        ids = [inst.iface_id for inst in self.ovs.instances]
        for inst in list(self.ovs.instances):
            self.ovs.remove_instance(inst)
        deadline = time.monotonic() + 30
        while ids and time.monotonic() < deadline:
            ids = [i for i in ids if self.client.status(i) == "ACTIVE"]
            time.sleep(0.05)
        if ids:
            raise RuntimeError(f"{len(ids)} unplugged ports still ACTIVE after 30 s")

    # ------------------------------------------------------------ N ports up
    def ports_up(self):
        n, batch = self.c["ports"], self.c["batch"]
        net, _ = self.client.network("10.64.0.0/20")
        prefix = rand_name("b", 4)
        poller = Client(self.server.port)
        marks: dict = {}
        done = threading.Event()
        counts = []

        def poll():
            while not done.is_set():
                k = poller.count_active(net["id"])
                now = time.monotonic()
                counts.append((now, k))
                for mark in (1, 200, n):
                    if k >= mark and mark not in marks:
                        marks[mark] = now
                if k >= n:
                    done.set()
                    return
                done.wait(0.1)

        t0 = time.monotonic()
        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        made = 0
        create_s = plug_s = 0.0
        while made < n:
            k = min(batch, n - made)
            t = time.monotonic()
            ports = self.client.call("POST", "/v2.0/ports", {"ports": [
                {"network_id": net["id"], "binding:host_id": HOST} for _ in range(k)]},
                201)["ports"]
            t1 = time.monotonic()
            args = []
            for j, p in enumerate(ports):
                name = f"{prefix}{made + j}"
                args += ["--", "add-port", "br-int", name, "--", "set", "Interface", name,
                         "type=internal", f"external_ids:iface-id={p['id']}",
                         "external_ids:iface-status=active",
                         f"external_ids:attached-mac={p['mac_address']}"]
            self.ovs.vsctl(*args, timeout=120)
            create_s += t1 - t
            plug_s += time.monotonic() - t1
            made += k
        t_plugged = time.monotonic()
        if not done.wait(UP_TIMEOUT):
            raise RuntimeError(f"only {counts[-1][1]} of {n} ports ACTIVE after {UP_TIMEOUT}s")
        watcher.join()
        poller.close()
        up = marks[n] - t0
        self.result["ports_1000_up_s"] = round(up, 2)
        self.result["ports_1000_create_s"] = round(create_s, 2)
        self.result["ports_1000_plugged_to_active_s"] = round(marks[n] - t_plugged, 2)
        self.result["ports_200_up_s"] = round(marks[200] - t0, 2) if 200 in marks else None
        self.out(f"{n} ports up (created, plugged, ACTIVE): {up:.2f}s; creates took "
                 f"{create_s:.2f}s, plugs {plug_s:.2f}s, all plugged at "
                 f"{t_plugged - t0:.2f}s; first ACTIVE at {marks[1] - t0:.2f}s"
                 + (f", 200 ACTIVE at {marks[200] - t0:.2f}s" if 200 in marks else ""))
        self.out(f"agent after the bring-up: {self.agent.stats}, last apply "
                 f"{self.agent.last_apply_ms:.0f} ms, {self.flow_count()} flows on br-int")
        self.net_id = net["id"]

    # ------------------------------------------------------------ resync
    def wait_all_active(self, timeout: float) -> float | None:
        n = self.c["ports"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.count_active(self.net_id) >= n:
                return time.monotonic()
            time.sleep(0.05)
        return None

    def resyncs(self, runs: int = 3):
        """``runs`` restarts with the agent connecting to the switch, then
        ``runs`` with it listening for the switch (the first of each changes
        the mode; the agent is left listening, as it started); medians."""
        for mode, suffix in (("connect", "_connect"), ("listen", "")):
            self.mode = mode
            got = [self.resync() for _ in range(runs)]
            for key in got[0]:
                vals = [g[key] for g in got]
                if key == "resync_flow_mods":
                    self.result[key + suffix] = max(vals)
                else:
                    self.result[key[:-2] + suffix + "_s"] = round(statistics.median(vals), 3)
            self.out(f"restarts ({mode}): resync_1000_s {sorted(g['resync_1000_s'] for g in got)}")

    def resync(self) -> dict:
        n = self.c["ports"]
        flows = self.flow_count()
        plugged = len(self.agent.vifs)
        t_stop = time.monotonic()
        self.agent.stop()
        stop_s = time.monotonic() - t_stop
        self.agent = None
        # As a restart is in production: the old agent's memory goes with
        # its process (collected here, before the clock), and the new
        # process pauses the collector until its first flows are in
        # (agent.main -> startup.pause_gc; the agent resumes it).  Without
        # both, this process's heap (the bench's and the old agent's) is
        # scanned over and over while the new agent starts: ~0.3-0.4 s more
        # at 1,000 ports, which no real restart pays.
        gc.collect()
        startup.pause_gc()
        t0 = time.monotonic()
        agent = self.agent = self.new_agent()
        t_started = time.monotonic()
        deadline = t0 + 120
        t_ready = None
        while time.monotonic() < deadline:
            if t_ready is None and agent.ready.is_set():
                t_ready = time.monotonic()
            if t_ready is not None and len(agent.reported) >= plugged:
                break
            time.sleep(0.002)
        else:
            raise RuntimeError(f"new agent: ready={agent.ready.is_set()}, reported "
                               f"{len(agent.reported)} of {plugged} within 120s")
        t_done = time.monotonic()
        time.sleep(1.0)  # anything still pending would show up now
        mods = agent.stats["flow_mods"]
        active = self.client.count_active(self.net_id)
        after = self.flow_count()
        got = {"resync_1000_s": round(t_done - t0, 3),
               "resync_start_s": round(t_started - t0, 3),
               "start_to_flows_s": round(t_ready - t0, 3),
               "stop_s": round(stop_s, 3), "resync_flow_mods": mods}
        self.out(f"agent restart ({self.mode}) with {n} ports: ready after "
                 f"{t_ready - t0:.3f}s (start() returned after {t_started - t0:.3f}s), "
                 f"all {plugged} ports reported after "
                 f"{t_done - t0:.3f}s; flow_mods {mods} (want 0), flows {after} (before "
                 f"{flows}), {active} of {n} ACTIVE; stats {agent.stats}")
        if mods or after != flows or active < n:
            self.out("WARNING: the agent restart was not a no-op")
        return got

    def vswitchd_restart(self):
        n = self.c["ports"]
        flows = self.flow_count()
        mods0 = self.agent.stats["flow_mods"]
        t0 = time.monotonic()
        self.ovs.restart_vswitchd()
        t_started = time.monotonic()
        t_flows = None
        deadline = t0 + 300
        while time.monotonic() < deadline:
            try:
                if self.flow_count() >= flows:
                    t_flows = time.monotonic()
                    break
            except RuntimeError:  # br-int not there yet
                pass
            time.sleep(0.02)
        if t_flows is None:
            raise RuntimeError(f"flows not back within {deadline - t0:.0f}s")
        t_active = self.wait_all_active(120)
        self.result["vswitchd_restart_flows_s"] = round(t_flows - t0, 2)
        self.result["vswitchd_restart_active_s"] = (round(t_active - t0, 2)
                                                    if t_active else None)
        self.out(f"ovs-vswitchd restart (SIGKILL) with {n} ports: started again after "
                 f"{t_started - t0:.2f}s, {flows} flows back after {t_flows - t0:.2f}s, "
                 f"all ports ACTIVE after "
                 + (f"{t_active - t0:.2f}s" if t_active else "TIMEOUT")
                 + f"; {self.agent.stats['flow_mods'] - mods0} flow-mods, "
                 f"stats {self.agent.stats}")

    def ovsdb_sync(self, runs: int = 5):
        import ovs.jsonrpc

        from agent.ovsdb import streamjson
        from agent.ovsdb.connection import Connection
        from agent.plumbing import AGENT_TABLES
        ours = ovs.jsonrpc.Connection
        library = next(c for c in ours.__mro__ if c.__module__ == "ovs.jsonrpc")
        got = {"ovsdb_sync_s": [], "ovsdb_sync_library_parser_s": []}
        try:
            for _ in range(runs):
                for key, cls in (("ovsdb_sync_library_parser_s", library),
                                 ("ovsdb_sync_s", ours)):
                    ovs.jsonrpc.Connection = cls
                    t0 = time.monotonic()
                    conn = Connection(self.ovs.db_remote, tables=AGENT_TABLES).start()
                    got[key].append(time.monotonic() - t0)
                    rows = len(conn.idl.tables["Interface"].rows)
                    conn.stop()
        finally:
            ovs.jsonrpc.Connection = ours
        for key, vals in got.items():
            self.result[key] = round(statistics.median(vals), 3)
        installed = "yes" if ours is not library else "no (the library has its C parser)"
        self.out(f"first OVSDB sync, {rows} interfaces: {self.result['ovsdb_sync_s']}s "
                 f"(library parser {self.result['ovsdb_sync_library_parser_s']}s; "
                 f"{streamjson.__name__} installed: {installed})")

    def run(self):
        self.port_ready()
        self.ports_up()
        self.ovsdb_sync()
        self.resyncs()
        self.vswitchd_restart()
        return self.result


def import_cost(runs: int = 5) -> float:
    """import_s: CPU seconds of ``import agent.main`` in a new interpreter."""
    probe = "import time; t = time.process_time(); import agent.main; " \
            "print(time.process_time() - t)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this tree's agent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    return round(statistics.median(
        float(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                             text=True, env=env).stdout) for _ in range(runs)), 3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    p.add_argument("--ports", type=int, help="ports to bring up (default 1000; quick 100)")
    p.add_argument("--runs", type=int, help="port-ready runs (default 20; quick 5)")
    p.add_argument("--only", choices=["ready", "up"], help="run only one part")
    p.add_argument("--workers", type=int, default=1, help="api_workers of the server")
    p.add_argument("--keep-log", action="store_true", help="keep the server log")
    p.add_argument("-v", "--verbose", action="store_true", help="agent INFO logs")
    args = p.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    if args.ports:
        counts["ports"] = args.ports
    if args.runs:
        counts["ready_runs"] = args.runs
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    tmp = tempfile.mkdtemp(prefix="qovs-bench-agent-")
    bench = Bench(counts, tmp, out=lambda s: print(s, flush=True), workers=args.workers)
    import_s = import_cost()
    print(f"import agent.main: {import_s * 1000:.0f} ms CPU (median of 5)", flush=True)
    t0 = time.monotonic()
    try:
        bench.start()
        print(f"bench/agent.py: {'quick' if args.quick else 'full'} run {counts}; "
              f"{args.workers} API worker(s); server pid "
              f"{bench.server.proc.pid}, OVS in netns {bench.ovs.ns}", flush=True)
        if args.only == "ready":
            bench.port_ready()
        elif args.only == "up":
            bench.ports_up()
        else:
            bench.run()
    finally:
        bench.stop()
        if args.keep_log:
            print(f"server log: {os.path.join(tmp, 'server.log')}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"total {time.monotonic() - t0:.0f}s", flush=True)
    line = {"bench": "agent", "quick": args.quick, "workers": args.workers}
    line.update(bench.result)
    line["import_s"] = import_s
    line["counts"] = counts
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
