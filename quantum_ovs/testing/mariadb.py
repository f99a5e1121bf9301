"""A throwaway MariaDB server that the tests start themselves.

Debian's ``mariadb-server`` binaries run a fresh data directory made by
``mariadb-install-db`` in a private temporary directory; the server
listens on a unix socket in that directory only (``--skip-networking``)
and reads no option file (``--no-defaults``).  Its root account has an
empty password and the ordinary password plugin (not ``unix_socket``), so
the launcher and the tests connect as root whoever runs them.  When run
as root the server drops to the ``mysql`` user (``--user``).  Character
set and collation are Debian's defaults (utf8mb4, case-insensitive
``utf8mb4_general_ci``): what an operator's server has.  Durability is
traded for speed (no doublewrite, no flush at commit, no binary log).

    with MariaDBServer() as my:
        url = my.create_database("test_x")   # a SQLAlchemy URL
        ...
        my.drop_database("test_x")

The tests' session-scoped ``mariadb_server`` fixture is in
tests/fixtures/mariadb.py.  It is stopped by the PID of ``mariadbd``,
children first; on a failed start the error log is in the exception.
"""

import atexit
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from quantum_ovs.testing.procs import alive, children

SERVER_CANDIDATES = ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")
INSTALL_DB_CANDIDATES = ("/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db")
RUN_AS = "mysql"  # when started by root
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MariaDBNotAvailable(RuntimeError):
    pass


def _first(paths):
    for p in paths:
        if os.access(p, os.X_OK):
            return p
    return None


def missing_prerequisites():
    """Why a server cannot be started here, or None."""
    if _first(SERVER_CANDIDATES) is None or _first(INSTALL_DB_CANDIDATES) is None:
        return "MariaDB server binaries not found (apt-get install mariadb-server)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"the system user {RUN_AS!r} does not exist (apt-get install mariadb-server)"
    try:
        import pymysql  # noqa: F401
    except ImportError:
        return "PyMySQL is not installed (pip install PyMySQL)"
    return None


def available():
    """True when ``MariaDBServer().start()`` can work on this machine."""
    return missing_prerequisites() is None


class MariaDBServer:
    """One MariaDB server over a temporary data directory, stopped by the
    PID of ``mariadbd``."""

    def __init__(self, max_connections=300, extra_settings=None):
        self.max_connections = max_connections
        self.extra_settings = dict(extra_settings or {})
        self.dir = None
        self.proc = None
        self.default_db = None

    # -------------------------------------------------------------- paths
    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_path(self):
        return os.path.join(self.dir, "mysqld.sock")

    @property
    def log_path(self):
        return os.path.join(self.dir, "mariadb.log")

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, dbname=None):
        """The SQLAlchemy URL of a database on this server."""
        dbname = dbname or self.default_db
        return (f"mysql+pymysql://root@localhost/{dbname}"
                f"?unix_socket={self.socket_path}&charset=utf8mb4")

    def connect(self, dbname=None):
        import pymysql
        return pymysql.connect(unix_socket=self.socket_path, user="root", password="",
                               database=dbname, charset="utf8mb4", connect_timeout=5,
                               autocommit=True)

    # -------------------------------------------------------------- life cycle
    def _user_args(self):
        return [f"--user={RUN_AS}"] if os.geteuid() == 0 else []

    def start(self, timeout=60, dbname="qovs"):
        reason = missing_prerequisites()
        if reason:
            raise MariaDBNotAvailable(reason)
        self.dir = tempfile.mkdtemp(prefix="qovs-my-")
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam(RUN_AS)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            res = subprocess.run(
                [_first(INSTALL_DB_CANDIDATES), "--no-defaults", f"--datadir={self.data_dir}",
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 "--skip-name-resolve", *self._user_args()],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
            if res.returncode != 0:
                raise RuntimeError(
                    f"mariadb-install-db failed ({res.returncode}):\n{res.stdout}")
            settings = {
                "datadir": self.data_dir,
                "socket": self.socket_path,
                "pid-file": os.path.join(self.dir, "mariadbd.pid"),
                "log-error": self.log_path,
                "character-set-server": "utf8mb4",
                "collation-server": "utf8mb4_general_ci",
                "max-connections": str(self.max_connections),
                "innodb-buffer-pool-size": "64M",
                "innodb-log-file-size": "32M",
                "innodb-flush-log-at-trx-commit": "0",
                "innodb-doublewrite": "0",
                "sync-binlog": "0",
                "skip-log-bin": None,
                "skip-networking": None,
                "skip-name-resolve": None,
            }
            settings.update(self.extra_settings)
            argv = [_first(SERVER_CANDIDATES), "--no-defaults", *self._user_args()]
            argv += [f"--{k}" if v is None else f"--{k}={v}" for k, v in settings.items()]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            self._wait_ready(timeout)
            self.default_db = dbname
            self.create_database(dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        import pymysql
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited ({self.proc.returncode}):\n{self.log()}")
            if os.path.exists(self.socket_path):
                try:
                    self.connect().close()
                    return
                except pymysql.err.MySQLError as e:
                    last = e
            time.sleep(0.05)
        raise RuntimeError(f"mariadbd is not ready after {timeout}s ({last}):\n{self.log()}")

    def _processes(self):
        """``mariadbd`` and every process under it (there are normally
        none: its connections are threads)."""
        if self.proc is None:
            return []
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children(pid))
        return out

    def stop(self, timeout=30):
        """SIGTERM (a clean shutdown), children first; SIGKILL past
        ``timeout``; then remove the directory.  Safe to call more than
        once."""
        if self.proc is not None:
            pids = self._processes()
            for pid in reversed(pids):  # children first, mariadbd last
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(pids):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(10)
            deadline = time.monotonic() + 5
            while any(alive(p) for p in pids[1:]) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.proc = None
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
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name=None):
        """Create an empty database; returns its SQLAlchemy URL."""
        name = name or "qovs_" + uuid.uuid4().hex[:12]
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self._admin(f"CREATE DATABASE `{name}`")
        return self.url(name)

    def drop_database(self, name):
        """Drop a database, first ending the connections still using it
        (a pooled connection left open would hold metadata locks)."""
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist "
                            "WHERE db = %s AND id <> CONNECTION_ID()", (name,))
                for (cid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL CONNECTION {int(cid)}")
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()

    def copy_schema(self, source, target):
        """Make in ``target`` (an empty database) the tables of ``source``
        with their rows: a schema migrated once (its rows are those the
        migrations write: alembic_version, the default security group
        rules), copied for each test (a migration run costs seconds of
        DDL in InnoDB; the copy a fraction of it)."""
        for name in (source, target):
            if not _NAME_RE.match(name):
                raise ValueError(f"invalid database name {name!r}")
        conn = self.connect(target)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION foreign_key_checks = 0")
                cur.execute(f"SHOW FULL TABLES FROM `{source}` WHERE Table_type = 'BASE TABLE'")
                tables = [row[0] for row in cur.fetchall()]
                for table in tables:
                    cur.execute(f"SHOW CREATE TABLE `{source}`.`{table}`")
                    cur.execute(cur.fetchone()[1])
                for table in tables:
                    cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{source}`.`{table}`")
                cur.execute("SET SESSION foreign_key_checks = 1")
        finally:
            conn.close()
