"""quantum-ovs agent in its own process, for the side-by-side benchmark.

Runs the project's Agent (agent/daemon.py, unmodified) exactly like
quantum-ovs-agent does, plus a tiny stats endpoint on a unix socket so the
driver can tell *when* a change was applied without polling OVS:

  - for every reconcile batch (_handle) the wall time it finished (the
    flows of that batch are committed in OVS by then: Channel.apply waits
    for the bundle commit), which port / rule ids it carried, and whether
    it changed flows;
  - when the set of reported (ACTIVE) ports last grew;
  - a start-up timeline: the wall time of the first occurrence of each
    step (process start, imports done, OVSDB synced, OpenFlow connected,
    registered, full view received, compiled, flows dumped and sent,
    ports reported), for phase (b)'s breakdown.

The hooks only record timestamps around the parent's methods (wrapped on
the instance or, for the start-up steps, on the classes in this process);
the agent's behaviour is unchanged.  Like quantum-ovs-agent (agent/main.py),
it sends the first poll of the server (sync_client.FirstPoll, when the
agent's tree has it, and NO_FIRST_POLL is not set) before it imports the
rest of the agent, pauses the cyclic GC until the agent is ready
(agent/startup.py) and makes its dataclasses from compiled code kept
between runs (quantum_ovs/codecache.py).

Adapted from ../shared/peers/ovn-side/qagent.py (the shared harness).

usage: qagent.py SETTINGS_JSON STATS_SOCK
"""

import time

T_PROCESS = time.time()  # before the imports (the interpreter's own start is not seen)

try:  # the cyclic GC paused until ready, as agent/main.py does (issue 17)
    from agent import startup as _startup
except ImportError:  # (a tree before that)
    _startup = None
else:
    _startup.pause_gc()
try:  # the dataclasses' methods compiled once, as agent/main.py does (issue 17)
    from quantum_ovs import codecache as _codecache
except ImportError:  # (a tree before that)
    _codecache = None
else:
    _codecache.enable()

import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from agent import sync_client  # noqa: E402
from agent.settings import Settings  # noqa: E402

TIMELINE = {"process": T_PROCESS}
_lock = threading.Lock()


def mark(name, t=None):
    """The first time ``name`` happened (later ones are ignored)."""
    with _lock:
        TIMELINE.setdefault(name, t if t is not None else time.time())


def _timed(cls, method, begin=None, end=None, when=None):
    """Wrap cls.method: mark ``begin`` when it is entered and ``end`` when
    it returns (``when(result)``: only results that count)."""
    orig = getattr(cls, method)

    @functools.wraps(orig)
    def wrapper(*a, **kw):
        if begin:
            mark(begin)
        out = orig(*a, **kw)
        if end and (when is None or when(out)):
            mark(end)
        return out
    setattr(cls, method, wrapper)


def hook_sync_client():
    _timed(sync_client.SyncClient, "register", "register_sent", "registered")
    _timed(sync_client.SyncClient, "poll", "view_requested", "view_received",
           when=lambda out: out[0] == "full")
    if hasattr(sync_client.SyncClient, "poll_raw"):  # the first poll (FirstPoll)
        _timed(sync_client.SyncClient, "poll_raw", "view_requested", "view_answered")
        decode = sync_client.SyncClient.decode_state

        def decode_state(raw):
            out = decode(raw)
            if out[0] == "full":
                mark("view_received")
            return out
        sync_client.SyncClient.decode_state = staticmethod(decode_state)
    _timed(sync_client.SyncClient, "report", "report_sent", "report_done")


def hook_ovsdb(connection):
    if not getattr(connection.Connection.start, "qagent_hooked", False):
        _timed(connection.Connection, "start", "ovsdb_connect", "ovsdb_synced")
        connection.Connection.start.qagent_hooked = True


def hook_startup():
    from agent import plumbing, reconciler
    from agent.openflow import channel
    from agent.ovsdb import connection
    from quantum_ovs.compiler import engine

    hook_ovsdb(connection)
    _timed(plumbing, "ensure_integration_bridge", None, "bridge_ready")
    _timed(plumbing, "plumb", None, "plumbed")
    _timed(engine.Engine, "load", "compile_start", "compile_done")
    _timed(reconciler.Reconciler, "install", "install_start", "install_done",
           when=lambda d: d is not None)
    _timed(channel.Channel, "dump_flows", "dump_start", "dump_done")
    _timed(channel.Channel, "apply", "apply_start", "apply_done")
    if hasattr(engine.Engine, "load_model"):  # (a streamed first install, issue 17)
        # compile_start: the view's model taken; compile_done: its last
        # flow computed (the install goes on meanwhile)
        _timed(engine.Engine, "load_model", "compile_start")
        load_flows = engine.Engine.load_flows

        def streamed_flows(self, *a, **kw):
            yield from load_flows(self, *a, **kw)
            mark("compile_done")
        engine.Engine.load_flows = streamed_flows
        _timed(reconciler.Reconciler, "install_stream", "install_start", "install_done",
               when=lambda d: d is not None)
    if hasattr(channel.Channel, "apply_stream"):
        _timed(channel.Channel, "apply_stream", "apply_start", "apply_done",
               when=lambda sent: sent)
    # Inside a bundle: the bundle opened, every add sent and answered by
    # the switch (the barrier after them: "adds_done"), the commit.
    orig_call = channel.Channel._call

    def _call(self, conn, msg, kind, timeout=None):
        name = type(msg).__name__
        ctrl = getattr(msg, "type", None) if name == "ONFBundleCtrlMsg" else None
        if ctrl == channel.E.BUNDLE_OPEN:
            mark("bundle_open")
        elif ctrl == channel.E.BUNDLE_COMMIT:
            mark("commit_start")
        elif kind == "barrier_reply" and "bundle_open" in TIMELINE:
            mark("adds_sent")
        out = orig_call(self, conn, msg, kind, timeout)
        if ctrl == channel.E.BUNDLE_COMMIT:
            mark("commit_done")
        elif kind == "barrier_reply" and "bundle_open" in TIMELINE:
            mark("adds_done")
        return out
    channel.Channel._call = _call
    orig_start = channel.Channel.start

    def start(self):
        self.on_connect(lambda dpid, gen: mark("of_connected"))
        return orig_start(self)
    channel.Channel.start = start


hook_sync_client()


def bench_agent_class():
    """BenchAgent (agent.daemon imported now, and the start-up hooked)."""
    from agent.daemon import Agent

    hook_startup()
    mark("imports")
    if _startup is not None:
        _startup.freeze_imports()
    if _codecache is not None:
        _codecache.save()

    class BenchAgent(_BenchAgent, Agent):
        pass
    return BenchAgent


class _BenchAgent:
    def __init__(self, settings, **kw):
        super().__init__(settings, **kw)
        mark("agent_created")
        self.b_lock = threading.Lock()
        self.b_seen = {}  # object id -> wall time its batch finished
        self.b_handles = 0
        self.b_busy_s = 0.0
        self.b_last_handle_end = None
        self.b_last_flow_change_end = None  # end of the last batch that sent flow mods
        self.b_last_report_growth = None
        self.b_full_view_end = None
        self.b_first_install_end = None
        report = self.reporter.report

        def timed_report(local, vifs):
            n0 = len(self.reporter.reported)
            report(local, vifs)
            if len(self.reporter.reported) > n0:
                with self.b_lock:
                    self.b_last_report_growth = time.time()
        self.reporter.report = timed_report

    def start(self):
        out = super().start()
        mark("agent_started")
        return out

    def _handle(self, batch):
        t0 = time.time()
        mods0 = self.stats["flow_mods"]
        super()._handle(batch)
        t1 = time.time()
        with self.b_lock:
            self.b_handles += 1
            self.b_busy_s += t1 - t0
            self.b_last_handle_end = t1
            if self.stats["flow_mods"] != mods0:
                self.b_last_flow_change_end = t1
                if self.b_first_install_end is None:
                    self.b_first_install_end = t1
            for kind, value in batch:
                if kind == "full":
                    self.b_full_view_end = t1
                elif kind == "delta":
                    for p in value.ports:
                        self.b_seen.setdefault(p.id, t1)
                    # A rule change: the group whole, or (lean deltas,
                    # issue 17) only its rules.
                    for g in value.security_groups:
                        for r in g.rules:
                            self.b_seen.setdefault(r.id, t1)
                    for gr in value.group_rules:
                        for r in gr.rules:
                            self.b_seen.setdefault(r.id, t1)
                    for gm in value.group_members:
                        for a in gm.members:
                            self.b_seen.setdefault("member:" + a, t1)

    def snapshot(self, ids=()):
        with self.b_lock:
            return {
                "pid": os.getpid(),
                "ready": self.ready.is_set(),
                "stats": dict(self.stats),
                "reported": len(self.reported),
                "vifs": len(self.vifs),
                "installed": len(self.reconciler.installed),
                "qsize": self.events.qsize(),
                "revision": self.revision,
                "handles": self.b_handles,
                "busy_s": round(self.b_busy_s, 4),
                "last_handle_end": self.b_last_handle_end,
                "last_flow_change_end": self.b_last_flow_change_end,
                "last_report_growth": self.b_last_report_growth,
                "full_view_end": self.b_full_view_end,
                "first_install_end": self.b_first_install_end,
                "last_apply_ms": self.last_apply_ms,
                "seen": {i: self.b_seen.get(i) for i in ids},
                "engine_ports": len(self.engine.ports),
                "timeline": dict(TIMELINE),
            }


def serve(agent, path):
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                try:
                    ids = json.loads(data or b"[]")
                    out = agent.snapshot(ids)
                except Exception as e:  # noqa: BLE001
                    out = {"error": repr(e)}
                c.sendall(json.dumps(out).encode())

    threading.Thread(target=loop, name="bench-stats", daemon=True).start()
    return srv


def main():
    conf = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    # of_connect (the bridge's management socket, [ovs] of_connect_unix):
    # the agent connects to the switch instead of waiting for it (a tree
    # without that option runs in listen mode only).
    extra = {"of_connect": "unix:" + conf["of_connect"]} if conf.get("of_connect") else {}
    s = Settings(host=conf["host"], server_url=conf["server_url"], ovsdb=conf["ovsdb"],
                 token=conf["token"], datapath_type="netdev", local_ip=conf["local_ip"],
                 tunnel_types=tuple(conf.get("tunnel_types", ["vxlan"])),
                 of_listen="unix:" + conf["of_sock"], state_path=conf["state_path"],
                 report_interval=30, polling_interval=25, **extra)
    first = {}
    # (a tree before issue 17's has no FirstPoll; NO_FIRST_POLL=1: the first
    # poll from the sync thread, as before, for A/B runs)
    if hasattr(sync_client, "FirstPoll") and not os.environ.get("NO_FIRST_POLL"):
        first["first_poll"] = sync_client.FirstPoll(sync_client.SyncClient(
            s.server_url, s.host, s.token, ca_file=s.ca_file, insecure=s.insecure))
    # The OVSDB connection started before the rest is imported, as
    # agent/main.py does (a tree that has startup.EarlyOvsdb, unless
    # NO_EARLY_OVSDB is set)
    if hasattr(_startup, "EarlyOvsdb") and not os.environ.get("NO_EARLY_OVSDB"):
        from agent.ovsdb import connection
        hook_ovsdb(connection)
        first["ovsdb"] = _startup.EarlyOvsdb(s.ovsdb)
    agent = bench_agent_class()(s, **first)
    srv = serve(agent, sys.argv[2])
    agent.start()
    done = []
    signal.signal(signal.SIGTERM, lambda *a: done.append(1))
    signal.signal(signal.SIGINT, lambda *a: done.append(1))
    while not done:
        signal.pause()
    srv.close()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
