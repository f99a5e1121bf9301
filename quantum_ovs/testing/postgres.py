"""A throwaway PostgreSQL server that the tests start themselves.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) run a
fresh cluster in a private temporary directory, as the ``postgres`` user
(root may not run the server), listening on a unix socket in that
directory only (no TCP).  Durability is traded for speed: fsync,
synchronous_commit and full_page_writes are off.

    with PostgresServer() as pg:
        url = pg.create_database("test_x")   # a SQLAlchemy URL
        ...
        pg.drop_database("test_x")

The tests' session-scoped ``postgres_server`` fixture over the same class
is in tests/fixtures/postgres.py; the benchmarks use the class.  Callers
that want to decide for themselves ask ``available()``.
"""

import atexit
import glob
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

PG_GLOB = "/usr/lib/postgresql/*/bin"
RUN_AS = "postgres"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotAvailable(RuntimeError):
    pass


def _version_key(path):
    ver = os.path.basename(os.path.dirname(path))
    return tuple(int(x) if x.isdigit() else 0 for x in ver.split("."))


def find_bin_dir():
    """The newest Debian PostgreSQL bin directory with initdb and postgres,
    or None."""
    cands = [d for d in glob.glob(PG_GLOB)
             if all(os.access(os.path.join(d, b), os.X_OK)
                    for b in ("initdb", "postgres", "pg_ctl"))]
    if not cands:
        return None
    return max(cands, key=_version_key)


def missing_prerequisites():
    """Why a server cannot be started here, or None."""
    if find_bin_dir() is None:
        return (f"PostgreSQL server binaries not found under {PG_GLOB} "
                "(apt-get install postgresql)")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        return f"the system user {RUN_AS!r} does not exist (apt-get install postgresql)"
    if os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root (runuser)"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) not found"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    return None


def available():
    """True when ``PostgresServer().start()`` can work on this machine."""
    return missing_prerequisites() is None


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, stopped by the
    postmaster's PID."""

    def __init__(self, bin_dir=None, max_connections=200, extra_settings=None):
        self.bin_dir = bin_dir
        self.max_connections = max_connections
        self.extra_settings = dict(extra_settings or {})
        self.dir = None
        self.port = None
        self.proc = None
        self.postmaster_pid = None
        self.default_db = None

    # -------------------------------------------------------------- paths
    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_dir(self):
        return self.dir

    @property
    def log_path(self):
        return os.path.join(self.dir, "postgres.log")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, dbname=None):
        """The SQLAlchemy URL of a database on this server."""
        dbname = dbname or self.default_db
        return (f"postgresql+psycopg2://{RUN_AS}@/{dbname}"
                f"?host={self.socket_dir}&port={self.port}")

    def connect(self, dbname="postgres"):
        import psycopg2
        return psycopg2.connect(host=self.socket_dir, port=self.port,
                                user=RUN_AS, dbname=dbname, connect_timeout=5)

    # -------------------------------------------------------------- life cycle
    def _run_as(self, *argv, **kwargs):
        return subprocess.run(["runuser", "-u", RUN_AS, "--", *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, **kwargs)

    def start(self, timeout=60, dbname="qovs"):
        reason = missing_prerequisites()
        if reason:
            raise PostgresNotAvailable(reason)
        self.bin_dir = self.bin_dir or find_bin_dir()
        pw = pwd.getpwnam(RUN_AS)
        self.dir = tempfile.mkdtemp(prefix="qovs-pg-")
        atexit.register(self.stop)
        try:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            res = self._run_as(os.path.join(self.bin_dir, "initdb"), "-D", self.data_dir,
                               "-U", RUN_AS, "--auth=trust", "-E", "UTF8",
                               "--locale=C", "--no-sync", timeout=120)
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}")
            # A socket lives at <dir>/.s.PGSQL.<port>; the directory is
            # ours alone, so any number will do.
            self.port = random.randint(20000, 60000)
            settings = {
                "listen_addresses": "",
                "unix_socket_directories": self.socket_dir,
                "port": str(self.port),
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": str(self.max_connections),
                "shared_buffers": "64MB",
                "log_min_messages": "warning",
                "log_min_error_statement": "panic",
            }
            settings.update(self.extra_settings)
            argv = [os.path.join(self.bin_dir, "postgres"), "-D", self.data_dir]
            for k, val in settings.items():
                argv += ["-c", f"{k}={val}"]
            self._argv = argv
            self._launch(timeout, mode="w")
            self.default_db = dbname
            self.create_database(dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, timeout, mode="a"):
        pw = pwd.getpwnam(RUN_AS)
        log = open(self.log_path, mode)
        os.chown(self.log_path, pw.pw_uid, pw.pw_gid)
        try:
            self.proc = subprocess.Popen(
                ["runuser", "-u", RUN_AS, "--", *self._argv], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        self._wait_ready(timeout)

    # -------------------------------------------------------------- faults
    def _processes(self, pid=None):
        """``runuser`` (or ``pid``, or the postmaster) and every process
        under it: the postmaster and its backends (each backend is a
        process group of its own)."""
        from quantum_ovs.testing.procs import children
        root = pid or (self.proc.pid if self.proc is not None else self.postmaster_pid)
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children(pid))
        return out

    def pause(self):
        """Freeze the server and all its backends (SIGSTOP): connections
        stay open and nothing answers.  (``runuser`` stops itself when its
        child stops, and goes on, continuing it, when continued.)"""
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass  # a short-lived child (a finished backend) is gone

    def resume(self, pid=None):
        """Let a paused server go on: SIGCONT to every process under
        ``runuser`` (or ``pid``), then to it.  Children first: ``runuser``
        continued while its child is still stopped stops itself again,
        and then cannot reap the postmaster when it exits."""
        for p in reversed(self._processes(pid)):
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def _continue_runuser(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def shut_down(self, timeout=30):
        """Stop the server (fast shutdown), keeping its data for start_again."""
        pid = self.postmaster_pid
        if pid is not None and _alive(pid):
            self.resume()  # a stopped process would keep SIGINT pending
            os.kill(pid, signal.SIGINT)
            _wait_gone(pid, timeout)
        self._continue_runuser()
        self.proc.wait(10)
        self.postmaster_pid = None

    def start_again(self, timeout=60):
        """Start the server shut down by shut_down, same data, same socket."""
        self._launch(timeout)

    def _read_postmaster_pid(self):
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                first = f.readline().strip()
            return int(first) if first else None
        except (OSError, ValueError):
            return None

    def _wait_ready(self, timeout):
        import psycopg2
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}):\n{self.log()}")
            if self.postmaster_pid is None:
                self.postmaster_pid = self._read_postmaster_pid()
            if self.postmaster_pid is not None:
                try:
                    self.connect().close()
                    return
                except psycopg2.OperationalError as e:
                    last = e
            time.sleep(0.05)
        raise RuntimeError(f"postgres is not ready after {timeout}s ({last}):\n{self.log()}")

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT to the postmaster; a paused server is
        resumed first), then remove the directory.  Safe to call more than
        once."""
        pid = self.postmaster_pid or (self._read_postmaster_pid() if self.dir else None)
        if pid is not None and _alive(pid):
            # A paused server must run to act on SIGINT (a stopped process
            # keeps it pending), runuser to reap it, and SIGKILL to the
            # postmaster alone would leave its stopped backends behind.
            self.resume(None if self.proc is not None else pid)
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            if not _wait_gone(pid, timeout):
                try:
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                except ProcessLookupError:
                    pass
                if not _wait_gone(pid, 10):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _wait_gone(pid, 5)
        if self.proc is not None:
            # runuser returns once its child, the postmaster, is gone; it
            # may have stopped itself again after it was continued (it
            # follows its child's stops), so continue it once more.
            self._continue_runuser()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        self.postmaster_pid = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        try:
            atexit.unregister(self.stop)
        except Exception:  # noqa: BLE001 - interpreter shutting down
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -------------------------------------------------------------- databases
    def _admin(self, sql):
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name=None, template=None):
        """Create an empty database, or a copy of ``template`` (a database
        nobody is connected to); returns its SQLAlchemy URL."""
        name = name or "qovs_" + uuid.uuid4().hex[:12]
        for n in (name, template or name):
            if not _NAME_RE.match(n):
                raise ValueError(f"invalid database name {n!r}")
        copy = f' TEMPLATE "{template}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name):
        """Drop a database, closing its remaining connections."""
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)
