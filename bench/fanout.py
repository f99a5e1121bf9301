"""Fan-out benchmark: how fast a change reaches the agents that need it, and
only those, with many agents long-polling one server.

A real quantum-ovs-server (PostgreSQL, ``api_workers`` 4 by default; or
SQLite with 1 worker; ``--servers 2``: two server processes on the same
database, the agents spread over both and the changes made through each
in turn) and N simulated agents: lightweight clients of the
real agent API, spread over a few processes, each process an asyncio
loop holding one keep-alive HTTP/1.1 connection per agent:

    POST /agent-api/v1/agents                       register (by the driver)
    GET  /agent-api/v1/hosts/{host}/state?since=-1  the full view, once
    GET  /agent-api/v1/hosts/{host}/state?since=R&timeout=S   long-poll, forever
         (&features=...,stream as the agent: the answers of each poll
         streamed on it; ``--no-stream``: one answer per poll)

Setup (as admin, through the REST API): ``networks`` networks with a
subnet each; every agent owns one port on each of ``nets_per_agent``
networks picked at random (``binding:host_id`` = the agent's host), so a
network has about agents * nets_per_agent / networks interested hosts.
Ports are created without security groups, so that a port's only audience
is its network (with the default group every port create is also a
membership change for every host using that group: ``--default-group``
measures that case).

Measured, for ``changes`` port creates made one at a time, each on a
network picked in turn and bound to a host that already holds it:

    p50_ms / p99_ms      from the create's response to the moment the last
                         interested agent has read the delta (per change)
    slowest_ms           the five slowest changes, so measured
    agent_p50_ms /
    agent_p99_ms         the same per (change, agent) pair
    receivers_ok         every change reached exactly its interested agents
    uninvolved_wakeups   non-empty replies to agents that hold none of the
                         reply's networks (must be 0; with --default-group
                         every change's group_members reply to each host
                         outside its network is one, by design: the agent
                         processes count those without ports and send
                         sums, not a message each, so that the queue to
                         this driver does not take the CPU the server
                         needs)
    server_cpu_ms_per_change
                         utime+stime of the server process and its workers
                         (from /proc/<pid>/stat) over the series, divided
                         by the number of changes; idle_server_cpu_ms_per_s
                         is the same server's cost with nothing changing
                         (the change feeds' polling), measured beforehand,
                         and server_cpu_ms_per_change_net subtracts it
    db_cpu_ms_per_change PostgreSQL's processes, the same way

``--agent-api standalone``: the agents long-poll a quantum-ovs-agent-api
process (the agent API alone, on threads, without eventlet) on the same
database, while the changes are made through the REST API of
quantum-ovs-server: every wake-up crosses processes through the
database.  ``--agent-api both``: the same series against the server
(eventlet) and then against the standalone process, in one run, one
result each (fresh agents for each, the standalone process first).  server_cpu_* then counts both
processes.

Ends with ONE JSON line.  ``--quick``: 100 agents, 20 networks, 10
changes (a smoke run).
"""

import argparse
import asyncio
import collections
import json
import multiprocessing as mp
import os
import queue
import random
import resource
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.api import Client  # noqa: E402
from quantum_ovs.testing.procs import children, stat_fields  # noqa: E402
from quantum_ovs.testing.server import ServerProcess, deployment  # noqa: E402

PROJECT = "fanout"
FULL = dict(agents=1000, networks=100, nets_per_agent=3, changes=50, procs=4)
QUICK = dict(agents=100, networks=20, nets_per_agent=3, changes=10, procs=2)
SUMS_EVERY = 0.2  # seconds between an agent process's sums of uninvolved replies
POLL_TIMEOUT = 50  # seconds per long-poll (the server caps at max_wait, 55)
BULK = 200
CHANGE_DEADLINE = 10.0  # seconds to wait for one change's receivers
START_DEADLINE = 900  # seconds for every agent to have its full view
# The driver, and the simulated agents unless --per-host-credentials, use
# one shared token (an operator's explicit [agent_api] token).
AGENT_TOKEN = "fanout-bench-shared-agent-token"


def host_name(i):
    return f"fan-{i:05d}"


# ---------------------------------------------------------------- agents
class HttpConn:
    """One keep-alive HTTP/1.1 connection over asyncio streams."""

    def __init__(self, port, token=AGENT_TOKEN):
        self.port = port
        self.token = token
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def _head(self):
        """An answer's status, Content-Length and whether it is chunked."""
        status = int((await self.reader.readline()).split()[1])
        length, chunked = None, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        return status, length, chunked

    async def get(self, path):
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"X-Agent-Token: {self.token}\r\n"
                          f"Accept: application/json\r\n\r\n".encode())
        status, length, chunked = await self._head()
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(parts)
        else:
            body = await self.reader.readexactly(length or 0)
        return status, body

    async def stream(self, path):
        """Each answer (status, body) of a GET: a streamed answer's
        documents (chunks of one JSON line each, as the agent API writes
        them) as they come; any other answer once."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"X-Agent-Token: {self.token}\r\n"
                          f"Accept: application/json\r\n\r\n".encode())
        status, length, chunked = await self._head()
        if not chunked:
            yield status, await self.reader.readexactly(length or 0)
            return
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return
            body = await self.reader.readexactly(size)
            await self.reader.readline()
            yield status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()


def _delta_summary(delta):
    """(port ids, network ids, other non-empty keys) of a delta."""
    ports = [p["id"] for p in delta.get("ports", ())] + list(delta.get("removed_ports", ()))
    nets = {p["network_id"] for p in delta.get("ports", ())}
    nets |= {n["id"] for n in delta.get("networks", ())}
    nets |= set(delta.get("removed_networks", ()))
    other = sorted(k for k, v in delta.items()
                   if isinstance(v, list) and v and k not in ("ports", "removed_ports"))
    return ports, sorted(nets), other


async def _agent(host, port, out, ready, counters, token=AGENT_TOKEN, stream=True):
    conn = HttpConn(port, token)
    await conn.open()
    quoted = urllib.parse.quote(host)
    status, body = await conn.get(f"/agent-api/v1/hosts/{quoted}/state?since=-1&timeout=0")
    for _ in range(30):  # as an agent: retry a busy server
        if status != 503:
            break
        await asyncio.sleep(1 + random.random())
        status, body = await conn.get(f"/agent-api/v1/hosts/{quoted}/state?since=-1&timeout=0")
    if status != 200:
        raise RuntimeError(f"{host}: full view: HTTP {status}: {body[:300]!r}")
    reply = json.loads(body)
    rev = reply["revision"]
    if "view" not in reply:
        raise RuntimeError(f"{host}: since=-1 answered without a full view: {body[:300]!r}")
    held = sorted(n["id"] for n in reply["view"]["networks"])
    out.put(("held", host, held))
    held = set(held)
    ready()
    features = "group_members,group_rules" + (",stream" if stream else "")
    while True:
        async for status, body in conn.stream(
                f"/agent-api/v1/hosts/{quoted}/state?since={rev}"
                f"&timeout={POLL_TIMEOUT}&features={features}"):
            t = time.monotonic()
            if status != 200:
                out.put(("error", host, status, body[:300].decode(errors="replace")))
                await asyncio.sleep(1)
                break
            reply = json.loads(body)
            rev = reply["revision"]
            counters["replies"] += 1
            if reply["full"]:
                out.put(("full", host, t))
                continue
            ports, nets, other = _delta_summary(reply["delta"])
            if not (ports or nets or other):
                counters["empty"] += 1
            elif not ports and not held & set(nets):
                # Uninvolved (a group's members, for a host holding none of
                # the reply's networks): counted here, sent in sums (a
                # default-group change makes a thousand of them, and the
                # queue to the driver would take the CPU the server needs).
                counters["uninvolved"] += 1
                counters["uninvolved_kinds"].update(other or ["ports"])
            else:
                out.put(("delta", host, t, ports, nets, other, len(body)))


def agent_process(hosts, port, out, tokens=None, stream=True):
    """One process: an asyncio loop with one long-polling client per host."""
    async def main():
        left = [len(hosts)]
        counters = {"replies": 0, "empty": 0, "uninvolved": 0,
                    "uninvolved_kinds": collections.Counter()}

        async def sums():
            sent = None
            while True:
                await asyncio.sleep(SUMS_EVERY)
                now = (counters["uninvolved"], dict(counters["uninvolved_kinds"]))
                if now != sent:
                    out.put(("uninvolved", os.getpid()) + now)
                    sent = now

        def ready():
            left[0] -= 1
            if left[0] == 0:
                out.put(("ready", os.getpid(), len(hosts)))

        tasks = [asyncio.ensure_future(sums())]
        for h in hosts:
            tasks.append(asyncio.ensure_future(_agent(h, port, out, ready, counters,
                                                      (tokens or {}).get(h, AGENT_TOKEN),
                                                      stream)))
            await asyncio.sleep(0.002)  # connect gradually
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------- driver
def cpu_ticks(root):
    """CPU ticks of ``root`` and its live children (utime + stime), plus
    what its reaped children used (cutime + cstime of ``root``): PostgreSQL
    backends and server workers come and go."""
    total = 0
    for pid in tree(root):
        try:
            fields = stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
            if pid == root:
                total += int(fields[13]) + int(fields[14])
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree(pid):
    return [pid] + children(pid)


class Driver:
    def __init__(self, servers, counts, default_group=False, log=print, py_spy=None,
                 stream=True):
        self.py_spy = py_spy
        self.stream = stream
        self.servers = servers
        server = servers[0]
        self.c = counts
        self.default_group = default_group
        self.log = log
        self.client = Client(server.port)
        self.client.headers["X-Roles"] = "admin"
        self.client.headers["X-Agent-Token"] = AGENT_TOKEN
        self.writers = [self.client] + [Client(s.port) for s in servers[1:]]
        # Where the agents long-poll (the servers, or standalone agent API
        # processes: --agent-api).
        self.agent_servers = list(servers)
        for w in self.writers[1:]:
            w.headers = self.client.headers  # shared: the project is set later
        self.hosts = [host_name(i) for i in range(counts["agents"])]
        self.nets = []  # network ids
        self.holders = {}  # network id -> set of hosts
        self.out = mp.get_context("fork").Queue()
        self.procs = []
        self.replies = []
        self.sums = {}  # agent process -> (uninvolved replies, their kinds) so far
        self.tokens = None  # host -> its credential (--per-host-credentials)

    # ------------------------------------------------------------ setup
    def setup(self):
        c, cl = self.c, self.client
        t0 = time.monotonic()
        for i, h in enumerate(self.hosts):
            cl.json("POST", "/agent-api/v1/agents", {
                "host": h, "tunnel_ip": f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}",
                "configurations": {"tunnel_types": ["vxlan"], "bridge_mappings": {}},
                "started": False})
        for i in range(c["networks"]):
            net = cl.json("POST", "/v2.0/networks", {"network": {"name": f"fan{i}"}},
                          201)["network"]
            cl.json("POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["id"], "cidr": f"10.{i // 64}.{(i % 64) * 4}.0/22",
                "ip_version": 4}}, 201)
            self.nets.append(net["id"])
            self.holders[net["id"]] = set()
        rnd = random.Random(7)
        body = []
        for h in self.hosts:
            for nid in rnd.sample(self.nets, c["nets_per_agent"]):
                body.append(self._port_body(nid, h))
                self.holders[nid].add(h)
        for i in range(0, len(body), BULK):
            cl.json("POST", "/v2.0/ports", {"ports": body[i:i + BULK]}, 201)
        self.log(f"setup: {len(self.hosts)} agents, {len(self.nets)} networks, "
                 f"{len(body)} ports in {time.monotonic() - t0:.1f}s")

    def _port_body(self, nid, host):
        body = {"network_id": nid, "binding:host_id": host}
        if not self.default_group:
            body["security_groups"] = []
        return body

    def start_agents(self):
        ctx = mp.get_context("fork")
        n = self.c["procs"]
        shares = [self.hosts[i::n] for i in range(n)]
        t0 = time.monotonic()
        self.procs = []
        for i, share in enumerate(shares):
            port = self.agent_servers[i % len(self.agent_servers)].port
            p = ctx.Process(target=agent_process,
                            args=(share, port, self.out, self.tokens, self.stream), daemon=True)
            p.start()
            self.procs.append(p)
        ready, held = 0, {}
        deadline = time.monotonic() + START_DEADLINE
        while ready < n:
            msg = self.out.get(timeout=max(1, deadline - time.monotonic()))
            if msg[0] == "ready":
                ready += 1
            elif msg[0] == "held":
                held[msg[1]] = set(msg[2])
            elif msg[0] == "error":
                raise RuntimeError(f"agent error: {msg}")
        # The agents' own view of what they hold must match the setup.
        for h in self.hosts:
            want = {nid for nid, hs in self.holders.items() if h in hs}
            if held.get(h) != want:
                raise RuntimeError(f"{h}: view holds {held.get(h)}, expected {want}")
        self.log(f"{len(self.hosts)} agents long-polling ({n} processes) after "
                 f"{time.monotonic() - t0:.1f}s")

    def stop_agents(self):
        for p in self.procs:
            if p.is_alive():
                p.terminate()  # by PID
        for p in self.procs:
            p.join(10)
        list(self._drain(time.monotonic() + 0.5))  # what they sent last
        self.replies = []

    # ------------------------------------------------------------ measure
    def _drain(self, until):
        """Collect agent messages until monotonic time ``until``."""
        while True:
            left = until - time.monotonic()
            try:
                msg = self.out.get(timeout=max(0.0, left)) if left > 0 else \
                    self.out.get_nowait()
            except queue.Empty:
                return
            if msg[0] == "uninvolved":  # an agent process's running sums
                self.sums[msg[1]] = msg[2:]
                continue
            self.replies.append(msg)
            yield msg

    def _uninvolved(self):
        """(uninvolved replies, Counter of their kinds) that the agent
        processes summed up so far."""
        kinds = collections.Counter()
        for _n, k in self.sums.values():
            kinds.update(k)
        return sum(n for n, _k in self.sums.values()), kinds

    def measure(self):
        c = self.c
        pg = getattr(self, "pg", None)
        db_root = pg.postmaster_pid if pg is not None else None
        roots = [s.proc.pid for s in self.servers] + [
            s.proc.pid for s in self.agent_servers if s not in self.servers]
        workers = [p for r in roots for p in (tree(r)[1:] or [r])]

        def server_ticks():
            return sum(cpu_ticks(r) for r in roots)
        hz = os.sysconf("SC_CLK_TCK")
        prof = Profiler(self.py_spy, self.log) if self.py_spy else None

        # Idle cost first: nothing changes, every agent is waiting.
        list(self._drain(time.monotonic() + 1.0))
        before = self._uninvolved()
        idle_s = 5.0
        if prof:
            prof.start(workers, "idle")
        i0 = server_ticks()
        list(self._drain(time.monotonic() + idle_s))
        idle = (server_ticks() - i0) * 1000 / hz / idle_s
        if prof:
            prof.stop()
        stray = list(self.replies)
        self.replies.clear()

        per_change, per_agent = [], []
        receivers_ok = True
        counts = []
        if prof:
            prof.start(workers, "series")
        s0 = server_ticks()
        d0 = cpu_ticks(db_root) if db_root else 0
        x0 = self.db_xacts()
        w0 = time.monotonic()
        rnd = random.Random(11)
        delta_bytes = []
        for i in range(c["changes"]):
            nid = self.nets[i % len(self.nets)]
            interested = set(self.holders[nid])
            host = rnd.choice(sorted(interested))
            writer = self.writers[i % len(self.writers)]
            port = writer.json("POST", "/v2.0/ports",
                                    {"port": self._port_body(nid, host)}, 201)["port"]
            t0 = time.monotonic()
            got = {}
            deadline = t0 + CHANGE_DEADLINE
            for msg in self._drain(deadline):
                if msg[0] == "delta" and port["id"] in msg[3]:
                    got.setdefault(msg[1], msg[2])
                    delta_bytes.append(msg[6])
                if interested <= set(got):
                    break
            # Late or stray receivers of this change.
            for msg in self._drain(time.monotonic() + 0.1):
                if msg[0] == "delta" and port["id"] in msg[3]:
                    got.setdefault(msg[1], msg[2])
            if set(got) != interested:
                receivers_ok = False
            counts.append((len(interested), len(got)))
            lat = [(got[h] - t0) * 1000 for h in interested if h in got]
            per_agent.extend(lat)
            per_change.append(max(lat) if len(lat) == len(interested) else
                              CHANGE_DEADLINE * 1000)
        w1 = time.monotonic()
        s1 = server_ticks()
        d1 = cpu_ticks(db_root) if db_root else 0
        x1 = self.db_xacts()
        if prof:
            prof.stop()
        list(self._drain(time.monotonic() + 0.5 + 2 * SUMS_EVERY))

        # Uninvolved: any non-empty reply for a network the agent does not
        # hold (those without ports summed up by the agent processes).
        held = {h: {nid for nid, hs in self.holders.items() if h in hs} for h in self.hosts}
        full_views = 0
        after = self._uninvolved()
        uninvolved = after[0] - before[0]
        uninvolved_kinds = after[1] - before[1]
        for msg in stray + self.replies:
            if msg[0] == "delta":
                host, nets, other = msg[1], set(msg[4]), msg[5]
                if not nets & held[host]:
                    uninvolved += 1
                    uninvolved_kinds.update(other or ["ports"])
            elif msg[0] == "full":
                full_views += 1
        n = c["changes"]
        server_ms = (s1 - s0) * 1000 / hz
        wall = w1 - w0
        return {
            "agents": len(self.hosts), "networks": len(self.nets),
            "nets_per_agent": c["nets_per_agent"], "changes": n,
            "interested_per_change": round(statistics.mean(a for a, _ in counts), 1),
            "received_per_change": round(statistics.mean(b for _, b in counts), 1),
            "receivers_ok": receivers_ok,
            "p50_ms": round(statistics.median(per_change), 1),
            "p99_ms": round(_pct(per_change, 99), 1),
            "slowest_ms": sorted(round(x) for x in per_change)[-5:],
            "max_ms": round(max(per_change), 1),
            "agent_p50_ms": round(statistics.median(per_agent), 1) if per_agent else None,
            "agent_p99_ms": round(_pct(per_agent, 99), 1) if per_agent else None,
            "uninvolved_wakeups": uninvolved,
            "uninvolved_kinds": dict(uninvolved_kinds),
            "full_views": full_views,
            "server_cpu_ms_per_change": round(server_ms / n, 1),
            "idle_server_cpu_ms_per_s": round(idle, 1),
            "server_cpu_ms_per_change_net": round((server_ms - idle * wall) / n, 1),
            "db_cpu_ms_per_change": round((d1 - d0) * 1000 / hz / n, 1) if db_root else None,
            "db_xacts_per_change": round((x1 - x0) / n, 1) if x0 is not None else None,
            "series_s": round(wall, 2),
            "delta_bytes": round(statistics.mean(delta_bytes)) if delta_bytes else None,
        }

    def db_xacts(self):
        """Transactions committed or rolled back in our database so far
        (every server query runs in one: a count of round trips)."""
        pg = getattr(self, "pg", None)
        if pg is None:
            return None
        conn = pg.connect(pg.default_db)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                            "WHERE datname = current_database()")
                return cur.fetchone()[0]
        finally:
            conn.close()

    def db_sizes(self):
        """Bytes per port of the port tables (PostgreSQL, with indexes)."""
        pg = getattr(self, "pg", None)
        if pg is None:
            return {}
        tables = ("ports", "ipallocations", "port_bindings", "securitygroupportbindings",
                  "changes", "allowed_address_pairs")
        conn = pg.connect(pg.default_db)
        try:
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
                cur.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                            "WHERE relname = ANY(%s) AND relkind = 'r'", (list(tables),))
                sizes = dict(cur.fetchall())
                cur.execute("SELECT count(*) FROM ports")
                ports = cur.fetchone()[0]
                cur.execute("SELECT count(*) FROM changes")
                changes = cur.fetchone()[0]
        finally:
            conn.close()
        port_bytes = sum(v for k, v in sizes.items() if k != "changes")
        return {"db_ports": ports, "db_bytes_per_port": round(port_bytes / max(ports, 1)),
                "db_table_bytes": sizes, "db_changes_rows": changes,
                "db_bytes_per_change_row": round(sizes.get("changes", 0) / max(changes, 1))}



class Profiler:
    """py-spy on the server's workers: where their CPU goes (collapsed
    stacks, summed into the top functions by own and by total samples)."""

    def __init__(self, binary, log):
        self.binary = binary
        self.log = log
        self.dir = tempfile.mkdtemp(prefix="qovs-fanout-prof-")
        self.procs = []

    def start(self, pids, label):
        import subprocess
        self.label = label
        self.files = []
        for pid in pids:
            out = os.path.join(self.dir, f"{label}-{pid}.txt")
            self.files.append(out)
            self.procs.append(subprocess.Popen(
                [self.binary, "record", "-p", str(pid), "-r", "200", "-f", "raw",
                 "-o", out, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)

    def stop(self, top=12):
        import signal
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # by PID: py-spy writes its file
        for p in self.procs:
            try:
                p.wait(30)
            except Exception:  # noqa: BLE001
                p.kill()
        self.procs = []
        own, total, samples = collections.Counter(), collections.Counter(), 0
        for path in self.files:
            try:
                lines = open(path).read().splitlines()
            except OSError:
                continue
            for line in lines:
                stack, _, n = line.rpartition(" ")
                if not n.isdigit():
                    continue
                n = int(n)
                frames = [f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
                          for f in stack.split(";") if f]
                samples += n
                if frames:
                    own[frames[-1]] += n
                for f in set(frames):
                    total[f] += n
        self.log(f"py-spy {self.label}: {samples} samples over {len(self.files)} workers")
        for name, n in own.most_common(top):
            self.log(f"  own {100 * n / max(samples, 1):5.1f}%  {name}")
        for name, n in total.most_common(top * 2):
            self.log(f"  tot {100 * n / max(samples, 1):5.1f}%  {name}")


def _pct(values, p):
    v = sorted(values)
    if not v:
        return 0.0
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    p.add_argument("--workers", type=int, default=None,
                   help="api_workers (default 4 on PostgreSQL, 1 on SQLite)")
    p.add_argument("--quick", action="store_true", help="100 agents, 10 changes")
    p.add_argument("--agents", type=int)
    p.add_argument("--networks", type=int)
    p.add_argument("--nets-per-agent", type=int)
    p.add_argument("--changes", type=int)
    p.add_argument("--procs", type=int, help="agent processes")
    p.add_argument("--default-group", action="store_true",
                   help="ports in the project's default security group")
    p.add_argument("--servers", type=int, default=1,
                   help="server processes on the same database (each with --workers)")
    p.add_argument("--keep-log", action="store_true")
    p.add_argument("--agent-api", choices=["server", "standalone", "both"], default="server",
                   help="where the agents long-poll: quantum-ovs-server (eventlet), a "
                        "quantum-ovs-agent-api process (threads) on the same database, "
                        "or both in turn (one result each)")
    p.add_argument("--agent-api-threads", type=int, default=1100,
                   help="[agent_api] threads of the standalone process")
    p.add_argument("--per-host-credentials", action="store_true",
                   help="each agent presents its own host's credential (looked up in "
                        "the database on every request) instead of the shared token")
    p.add_argument("--no-stream", dest="stream", action="store_false",
                   help="one answer per poll (agents before streamed polls) instead of "
                        "the feature stream (each change written on the open poll)")
    p.add_argument("--py-spy", metavar="PATH",
                   help="profile the server's workers with this py-spy binary")
    args = p.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    for k in ("agents", "networks", "nets_per_agent", "changes", "procs"):
        if getattr(args, k) is not None:
            counts[k] = getattr(args, k)
    workers = args.workers or (4 if args.db == "postgresql" else 1)

    # 1,000 sockets per process are over the usual soft limit of 1,024
    # files; raise it for us and the server we start.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # Every simulated agent connects from 127.0.0.1: no cap per client.
    conf = ("agent_down_time = 86400\nmax_connections = 8000\n"
            "max_connections_per_client = 0\nmax_long_polls = 8000\n"
            "[quotas]\nquota_port = -1\nquota_network = -1\nquota_subnet = -1\n"
            f"[agent_api]\ntoken = {AGENT_TOKEN}\n")
    driver = standalone = None
    with deployment(args.db, workers=workers, extra_conf=conf, servers=args.servers,
                    pg_max_connections=300, keep_log=args.keep_log, prefix="qovs-fanout-",
                    name="fanout") as dep:
        servers, pg, url = dep.servers, dep.pg, dep.url
        try:
            print(f"bench/fanout.py: db={args.db} servers={args.servers} workers={workers} "
                  f"{counts}; server pids {[s.proc.pid for s in servers]}", flush=True)
            driver = Driver(servers, counts, args.default_group,
                            log=lambda s: print(s, flush=True), py_spy=args.py_spy,
                            stream=args.stream)
            driver.pg = pg
            driver.client.headers["X-Project-Id"] = PROJECT
            driver.setup()
            if args.per_host_credentials:
                from quantum_ovs.db import agent_auth
                from quantum_ovs.db.session import Database
                db = Database(url)
                try:
                    driver.tokens = {h: agent_auth.create(db, h)[1] for h in driver.hosts}
                finally:
                    db.dispose()
            modes = ["standalone", "server"] if args.agent_api == "both" else [args.agent_api]
            results = {}
            for mode in modes:
                if mode == "standalone" and standalone is None:
                    standalone = ServerProcess(
                        url, extra_conf=conf + f"threads = {args.agent_api_threads}\n",
                        log_path=os.path.join(dep.tmp, "agent-api.log"),
                        module="quantum_ovs.cmd.agent_api").start(timeout=120)
                    print(f"quantum-ovs-agent-api pid {standalone.proc.pid} port "
                          f"{standalone.port}", flush=True)
                driver.agent_servers = [standalone] if mode == "standalone" else servers
                driver.start_agents()
                results[mode] = driver.measure()
                driver.stop_agents()
                print(f"{mode}: {json.dumps(results[mode])}", flush=True)
            result = results[modes[0]] if len(modes) == 1 else dict(
                zip(("p99_ms_" + m for m in modes), (results[m]["p99_ms"] for m in modes)),
                **{m: results[m] for m in modes})
            result.update(driver.db_sizes())
        finally:
            if driver is not None:
                driver.stop_agents()
            if standalone is not None:
                standalone.stop()
                if args.keep_log:
                    print(f"agent API log: {standalone.log_path}")
    line = {"bench": "fanout", "db": args.db, "servers": args.servers, "workers": workers,
            "quick": args.quick, "agent_api": args.agent_api,
            "default_group": args.default_group, "stream": args.stream,
            "agent_auth": "per-host" if args.per_host_credentials else "shared"}
    line.update(result)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
