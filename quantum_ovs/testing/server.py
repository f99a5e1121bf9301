"""A real quantum-ovs-server process for tests and benchmarks.

Binds port 0 on loopback and reads the chosen port from its log; stopped
by PID.

No server outlives the process that started it:
  - at exit, every server still running is stopped (atexit);
  - SIGTERM (``timeout``, a CI runner) ends the process through its normal
    exit path instead of killing it outright: SystemExit in a script (its
    finally blocks and atexit run), pytest.exit() inside a pytest test (the
    session ends and fixtures tear down).  The handler is installed only
    over the default one, and a second SIGTERM kills at once;
  - on Linux, started from the main thread, the server gets SIGTERM when
    its parent dies, even by SIGKILL (PR_SET_PDEATHSIG).
"""

import atexit
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref

from quantum_ovs.testing.procs import stop_group

LISTEN_RE = re.compile(r"listening on [\d.]+:(\d+)")

# Runs the server module like ``python -m`` after asking for SIGTERM when
# the parent dies (argv[1]: the parent's PID, in case it died already;
# argv[2]: the module).
_LAUNCHER = """\
import ctypes, os, runpy, signal, sys
prctl = ctypes.CDLL(None, use_errno=True).prctl
prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
if prctl(1, signal.SIGTERM, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
if os.getppid() != int(sys.argv[1]):
    sys.exit("quantum-ovs-server: parent gone before start")
module = sys.argv[2]
sys.argv = [module.rsplit(".", 1)[-1]] + sys.argv[3:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

_live = set()  # servers started and not stopped, of any process
_lock = threading.Lock()
_hooks_pid = None  # the process that installed the hooks below


def stop_all():
    """Stop every server this process started (forked children leave their
    parent's servers alone)."""
    with _lock:
        mine = [s for s in _live if s.owner == os.getpid()]
    for s in mine:
        s.stop()


def _on_sigterm(signum, _frame):
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
    if os.getpid() != _hooks_pid:
        # A forked child (multiprocessing) inherited the handler: it dies
        # of the signal as it would have.
        os.kill(os.getpid(), signum)
        return
    pytest = sys.modules.get("pytest")
    if pytest is not None and os.environ.get("PYTEST_CURRENT_TEST"):
        # SystemExit in a test only fails that test and the run goes on.
        pytest.exit(f"terminated by signal {signum}", returncode=128 + signum)
    raise SystemExit(128 + signum)


def _install_hooks():
    global _hooks_pid
    if _hooks_pid == os.getpid():
        return
    _hooks_pid = os.getpid()
    atexit.register(stop_all)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


class ServerProcess:
    def __init__(self, db_url, workers=1, extra_conf="", log_path=None, ca_file=None,
                 module="quantum_ovs.cmd.server"):
        self.db_url = db_url
        # quantum_ovs.cmd.agent_api: the standalone agent API (its port
        # is [agent_api] bind_port).
        self.module = module
        # Serving TLS (extra_conf sets ssl_cert_file/ssl_key_file): the CA
        # that signed its certificate.
        self.ca_file = ca_file
        self.workers = workers
        self.extra_conf = extra_conf
        self.dir = tempfile.mkdtemp(prefix="qovs-server-")
        # Its config (and log, unless log_path is elsewhere) goes with the
        # object, not at stop(): a stopped server may be started again, and
        # tests read the log of one they stopped.
        weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.conf_path = os.path.join(self.dir, "quantum-ovs.conf")
        self.log_path = log_path or os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None
        self.owner = None  # PID of the process that started it

    @property
    def url(self):
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.port}"

    def agent_credential(self, host, gateway=False):
        """A new credential (token) for ``host``'s agent in this server's
        database (quantum-ovs-agent-credential create [--gateway])."""
        from quantum_ovs.db import agent_auth
        from quantum_ovs.db.session import Database
        db = Database(self.db_url)
        try:
            return agent_auth.create(db, host, gateway=gateway)[1]
        finally:
            db.dispose()

    def start(self, timeout=30):
        with open(self.conf_path, "w") as f:
            # A restart keeps the port the agents and clients know.
            f.write(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port or 0}\n"
                    f"api_workers = {self.workers}\n{self.extra_conf}\n"
                    f"[database]\nconnection = {self.db_url}\n")
            if self.module != "quantum_ovs.cmd.server":
                f.write(f"[agent_api]\nbind_host = 127.0.0.1\n"
                        f"bind_port = {self.port or 0}\n")
        self._log = open(self.log_path, "w")
        args = ["--config-file", self.conf_path]
        if sys.platform.startswith("linux") and \
                threading.current_thread() is threading.main_thread():
            # (PDEATHSIG follows the thread that forked: only the main one
            # lives as long as this process.)
            cmd = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), self.module, *args]
        else:
            cmd = [sys.executable, "-m", self.module, *args]
        _install_hooks()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.owner = os.getpid()
        with _lock:
            _live.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + self.log())
            m = LISTEN_RE.search(self.log())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log())
        # Wait until it answers (workers may still be starting).
        while time.monotonic() < deadline:
            try:
                context = ssl.create_default_context(cafile=self.ca_file) \
                    if self.ca_file else None
                urllib.request.urlopen(self.url + "/", timeout=2, context=context).read()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server does not answer:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        # The workers of a multi-process server are in its session: none
        # outlives it.
        stop_group(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
        with _lock:
            _live.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclasses.dataclass
class Deployment:
    """What ``deployment()`` started: the database URL, the server
    processes on it, the PostgresServer (or None for SQLite) and the
    scratch directory (database file, logs)."""
    url: str
    servers: list
    pg: object
    tmp: str

    @property
    def server(self):
        return self.servers[0]


@contextlib.contextmanager
def deployment(db="sqlite", *, workers=1, extra_conf="", servers=1, pg_max_connections=200,
               keep_log=False, prefix="qovs-bench-", name="bench"):
    """A database (``db``: "sqlite", a file in a scratch directory, or
    "postgresql", a private PostgresServer) and ``servers`` server
    processes on it, each with ``workers`` API workers and ``extra_conf``;
    all stopped and the directory removed on leaving (``keep_log``: the
    directory stays and each server's log path is printed)."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    pg = None
    started = []
    try:
        if db == "postgresql":
            from quantum_ovs.testing.postgres import PostgresServer
            pg = PostgresServer(max_connections=pg_max_connections).start()
            url = pg.url()
        else:
            url = f"sqlite:///{tmp}/{name}.sqlite"
        for i in range(servers):
            log = "server.log" if servers == 1 else f"server{i}.log"
            started.append(ServerProcess(url, workers=workers, extra_conf=extra_conf,
                                         log_path=os.path.join(tmp, log)))
            started[-1].start()
        yield Deployment(url, started, pg, tmp)
    finally:
        for server in started:
            server.stop()
            if keep_log:
                print(f"server log: {server.log_path}")
        if pg is not None:
            pg.stop()
        if not keep_log:
            shutil.rmtree(tmp, ignore_errors=True)
