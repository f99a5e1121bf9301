"""The Database object: an engine, sessions, and retried transactions.

No module-level state: the server builds one Database per process (after
forking, so that no connection crosses a fork).
"""

import contextlib
import logging
import os
import random
import select
import socket
import threading
import time

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.orm import Session, sessionmaker

from quantum_ovs import exceptions

LOG = logging.getLogger(__name__)


def _sqlite_locked(err):
    return isinstance(err, exc.OperationalError) and any(
        s in str(err.orig).lower() for s in ("database is locked", "database table is locked",
                                             "database is busy"))


def _is_retriable(err):
    """Deadlocks, serialization failures, lock timeouts and duplicate keys
    raised by a concurrent writer are worth another try."""
    if isinstance(err, exceptions.RetryRequest):
        return True
    if isinstance(err, exc.IntegrityError):
        return True
    if isinstance(err, exc.OperationalError):
        text = str(err.orig).lower()
        return any(s in text for s in ("deadlock", "locked", "busy",
                                       "could not serialize", "lock wait"))
    if isinstance(err, exc.DBAPIError):
        code = getattr(err.orig, "pgcode", None)
        return code in ("40001", "40P01", "23505")
    return False


# A write transaction that sets this key in ``session.info`` wakes the
# other server processes' change feeds when it commits (NOTIFY on
# PostgreSQL; elsewhere they poll).
NOTIFY = "qovs_notify"
CHANNEL = "qovs_changes"
# Callables fn(session) that a write transaction appends to
# ``session.info[BEFORE_COMMIT]``: run after its work, just before it
# commits (the quota check: the last lock a transaction takes).
BEFORE_COMMIT = "qovs_before_commit"
# After the database failed to answer (or to take a connection), requests
# fail at once (503) for this long, then one of them tries it again.
DOWN_HOLD = 1.0
_UNREACHABLE = ("did not answer within", "could not connect", "connection refused",
                "no such file or directory", "server closed the connection",
                "terminating connection", "connection not open", "the database system is")
# A pooled connection idle for longer than this is pinged before use.
PING_AFTER = 2.0
# SQLite: how long one statement of a request may wait for a lock held by
# another connection.  SQLite waits inside the C library, which holds up
# every green thread of the process; so the wait is kept short and a
# write transaction that finds the database locked is tried again after
# a green sleep, for SQLITE_LOCK_WAIT seconds in all (then 503).  Other
# callers (migrations, command-line tools) keep a long wait.
SQLITE_BUSY_MS = 50
SQLITE_TOOL_BUSY_MS = 30000
SQLITE_LOCK_WAIT = 5.0
SQLITE_LOCK_POLL = 0.05


# Per thread (green thread in the server): a shorter deadline for the
# wait callback, for the ping of a pooled connection.
_waits = threading.local()
PING_DEADLINE = 1.0


def _deadline_wait(timeout):
    """A psycopg2 wait callback (its green mode: eventlet installs one of
    its own; this one replaces it and waits the same cooperative way, as
    ``select`` is eventlet's in the server) that gives up after
    ``timeout`` seconds of one operation: a paused or unreachable server
    cannot hold a request, or every green thread of a process, for ever.
    The connection is broken off (a half-done exchange cannot be reused);
    the pool then throws it away (a closed psycopg2 connection counts as a
    disconnect)."""
    import psycopg2
    from psycopg2 import extensions as ext

    def wait(conn):
        limit = getattr(_waits, "limit", None) or timeout
        deadline = time.monotonic() + limit
        while True:
            state = conn.poll()
            if state == ext.POLL_OK:
                return
            left = deadline - time.monotonic()
            ready = None
            if left > 0:
                fd = conn.fileno()
                if state == ext.POLL_READ:
                    ready, _, _ = select.select([fd], [], [], left)
                elif state == ext.POLL_WRITE:
                    _, ready, _ = select.select([], [fd], [], left)
                else:
                    raise psycopg2.OperationalError(f"bad poll state {state}")
            if not ready:
                _cut(conn)
                raise psycopg2.OperationalError(
                    f"the database did not answer within {limit:g} s")
    return wait


def _cut(conn):
    """Break a connection in the middle of an exchange: shut its socket
    down (closing it through psycopg2 would wait for the exchange to end)
    and let psycopg2 see it (it then counts as closed: a disconnect)."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
        conn.poll()
    except Exception:  # noqa: BLE001 - broken is what we want
        pass


class Database:
    def __init__(self, url, pool_size=10, max_overflow=20, max_retries=10,
                 echo=False, connect_timeout=None, statement_timeout=None,
                 sqlite_lock_wait=SQLITE_LOCK_WAIT):
        """``connect_timeout``, ``statement_timeout`` (seconds, PostgreSQL):
        how long a new connection and one statement may take; past them
        the request fails (503) instead of waiting for the database.  The
        server cancels a statement at ``statement_timeout`` (a long lock
        wait); a server that does not answer at all (paused, or gone
        without closing its connections) is given up one second later."""
        self.url = sa.engine.make_url(url)
        self.max_retries = max_retries
        self.sqlite_lock_wait = sqlite_lock_wait
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.is_postgresql = self.url.get_backend_name() == "postgresql"
        kwargs = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if self.url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = sa.pool.StaticPool
        else:
            # LIFO keeps the busy connections busy and lets the rest idle;
            # only a connection idle for PING_AFTER is pinged (pool_pre_ping
            # would cost a round trip on every checkout).
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow,
                          pool_use_lifo=True)
            if connect_timeout or statement_timeout:
                # Waiting for a pooled connection is bounded alike (every
                # connection may be stuck on a hung database).
                kwargs["pool_timeout"] = (connect_timeout or 0) + (statement_timeout or 0)
            if self.is_postgresql:
                args = {}
                if connect_timeout:
                    args["connect_timeout"] = max(1, int(round(connect_timeout)))
                if statement_timeout:
                    args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
                kwargs["connect_args"] = args
                if connect_timeout or statement_timeout:
                    import psycopg2.extensions
                    psycopg2.extensions.set_wait_callback(_deadline_wait(
                        max(connect_timeout or 0, (statement_timeout or 0) + 1)))
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.is_sqlite:
            self._setup_sqlite(self.engine)
        else:
            self._setup_ping(self.engine)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Callables fn() registered by whoever follows the change log (the
        # change feeds of db/changefeed.py): called after every committed
        # write transaction that recorded a change (session.info[NOTIFY]).
        self.after_write = []
        # Called by dispose(): background readers stop before the engine goes.
        self.on_dispose = []
        # monotonic time until which the database counts as unreachable
        self._down_until = 0.0
        self._probe_for = (connect_timeout or 0) + (statement_timeout or 0) + 1

    def _gate(self):
        """Fail at once while the database is known not to answer; past
        DOWN_HOLD, let one caller find out (the others keep failing fast
        until it does)."""
        if not self._down_until:
            return
        now = time.monotonic()
        if now < self._down_until:
            raise exceptions.ServiceUnavailable(
                message="The database is not answering; retry the request later.")
        self._down_until = now + self._probe_for

    def _note(self, err):
        if isinstance(err, exc.TimeoutError) or (
                isinstance(err, exc.DBAPIError) and (
                    err.connection_invalidated
                    or any(s in str(err.orig).lower() for s in _UNREACHABLE))):
            LOG.warning("database unreachable: %s", str(err).splitlines()[0])
            self._down_until = time.monotonic() + DOWN_HOLD

    @staticmethod
    def _setup_sqlite(engine):
        # Take transactions into our own hands so that writers start with
        # BEGIN IMMEDIATE: a deferred transaction that later needs to write
        # can fail to upgrade its lock, and SQLite's busy handler does not
        # retry that.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # Requests (reader(), write()) wait briefly in SQLite; the rest
            # (migrations, tools) as long as they need.
            opts = conn.get_execution_options()
            short = opts.get("qovs_write") or opts.get("qovs_read")
            conn.exec_driver_sql(
                f"PRAGMA busy_timeout={SQLITE_BUSY_MS if short else SQLITE_TOOL_BUSY_MS}")
            if opts.get("qovs_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    @staticmethod
    def _setup_ping(engine):
        @event.listens_for(engine, "checkin")
        def _checkin(_dbapi_conn, record):
            record.info["qovs_used"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_conn, record, _proxy):
            used = record.info.get("qovs_used")
            if used is None or time.monotonic() - used < PING_AFTER:
                return
            _waits.limit = PING_DEADLINE
            try:
                cur = dbapi_conn.cursor()
                cur.execute("SELECT 1")
                cur.close()
                dbapi_conn.rollback()
            except Exception as err:  # noqa: BLE001 - any failure: a new connection
                # The pool discards this connection and checks out another.
                raise exc.DisconnectionError(str(err)) from err
            finally:
                _waits.limit = None

    def listener(self):
        """A Listener woken by write transactions of any process that set
        ``session.info[NOTIFY]`` (PostgreSQL), or None (others poll)."""
        return Listener(self.engine) if self.is_postgresql else None

    def dispose(self):
        for fn in self.on_dispose:
            fn()
        self.engine.dispose()

    @contextlib.contextmanager
    def reader(self):
        self._gate()
        conn = self.engine.connect().execution_options(qovs_read=True)
        session = Session(bind=conn, expire_on_commit=False)
        try:
            with session.begin():
                yield session
            self._down_until = 0.0
        except (exc.DBAPIError, exc.TimeoutError) as err:
            self._note(err)
            raise
        finally:
            session.close()
            conn.close()

    @contextlib.contextmanager
    def _writer_session(self):
        conn = self.engine.connect().execution_options(qovs_write=True)
        session = Session(bind=conn, expire_on_commit=False)
        try:
            with session.begin():
                yield session
        finally:
            session.close()
            conn.close()

    def write(self, fn, *args, **kwargs):
        """Run ``fn(session, *args, **kwargs)`` in one write transaction,
        retried on deadlocks and concurrent-insert conflicts.  ``fn`` may
        raise QuantumError (not retried) or RetryRequest (retried)."""
        self._gate()
        attempt = 0
        locked_until = None
        while True:
            try:
                with self._writer_session() as session:
                    result = fn(session, *args, **kwargs)
                    for check in session.info.pop(BEFORE_COMMIT, ()):
                        check(session)
                    changed = bool(session.info.get(NOTIFY))
                    if changed and self.is_postgresql:
                        # Delivered at commit, to every listening process.
                        session.execute(sa.text(f"NOTIFY {CHANNEL}"))
                self._down_until = 0.0
                if changed:
                    for hook in self.after_write:
                        hook()
                return result
            except exceptions.QuantumError:
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                self._note(err)
                if self.is_sqlite and _sqlite_locked(err):
                    # Another connection holds the lock: wait for it here,
                    # in a (green) sleep, not in SQLite's busy handler.
                    now = time.monotonic()
                    if locked_until is None:
                        locked_until = now + self.sqlite_lock_wait
                    if now < locked_until:
                        time.sleep(min(SQLITE_LOCK_POLL * random.uniform(0.5, 1.5),
                                       locked_until - now))
                        continue
                    raise
                attempt += 1
                if attempt > self.max_retries or not _is_retriable(err):
                    raise
                LOG.debug("retrying transaction (%d): %s", attempt, err)
                time.sleep(random.uniform(0, min(0.005 * 2 ** attempt, 0.25)))


class Listener:
    """One connection of its own that LISTENs for committed changes.

    ``fileno()`` becomes readable on a notification (or when the
    connection breaks); ``drain()`` consumes them.  On any failure the
    connection is dropped and ``fileno()`` returns None until
    ``connect()`` succeeds again: the caller polls meanwhile."""

    RETRY = 5.0  # seconds between attempts to (re)connect

    def __init__(self, engine):
        self.engine = engine
        self._conn = None
        self._next_try = 0.0

    def connect(self):
        """Listen (again); False while the database cannot be reached."""
        if self._conn is not None:
            return True
        if time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + self.RETRY
        try:
            raw = self.engine.raw_connection()
            conn = raw.driver_connection
            raw.detach()  # ours for good: never returned to the pool
        except Exception as err:  # noqa: BLE001 - the caller polls meanwhile
            LOG.warning("cannot listen for changes (%s); polling", err)
            return False
        try:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute(f"LISTEN {CHANNEL}")
            cur.close()
        except Exception as err:  # noqa: BLE001
            LOG.warning("cannot listen for changes (%s); polling", err)
            self._close(conn)
            return False
        self._conn = conn
        return True

    def fileno(self):
        return self._conn.fileno() if self._conn is not None else None

    def drain(self):
        """Consume pending notifications (a broken connection is dropped)."""
        conn = self._conn
        if conn is None:
            return
        try:
            ready, _, _ = select.select([conn], [], [], 0)
            if ready:
                conn.poll()
            conn.notifies.clear()
        except Exception:  # noqa: BLE001 - reconnect later
            LOG.warning("change listener connection lost; polling until it is back")
            self.close()

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)

    @staticmethod
    def _close(conn):
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
