"""The Database object: an engine, sessions, and retried transactions.

No module-level state: the server builds one Database per process (after
forking, so that no connection crosses a fork).
"""

import contextlib
import hashlib
import logging
import os
import random
import select
import socket
import threading
import time

import sqlalchemy as sa
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import exc_filters
from sqlalchemy import event, exc
from sqlalchemy.orm import Session, sessionmaker

from quantum_ovs import exceptions

LOG = logging.getLogger(__name__)

# Errors are classified by oslo.db's exception filters (registered on
# every engine, see Database): a deadlock (or MySQL's lock wait timeout)
# is DBDeadlock, a unique key taken DBDuplicateEntry, a foreign key
# violated DBReferenceError, a value the column cannot hold DBDataError,
# a lost connection DBConnectionError; what they do not name (a NOT NULL
# violation, for one) is a plain DBError wrapping SQLAlchemy's error.
# Other OperationalErrors (SQLite's "database is locked", PostgreSQL's
# serialization failure or cancelled statement) stay SQLAlchemy's.

# PostgreSQL SQLSTATEs of a transaction the server rolled back for
# another's sake: serialization failure, deadlock detected.
_PG_ROLLED_BACK = ("40001", "40P01")


def _sa_error(err):
    """SQLAlchemy's exception under an oslo.db one (or ``err`` itself)."""
    if isinstance(err, db_exc.DBError) and isinstance(err.inner_exception, exc.SQLAlchemyError):
        return err.inner_exception
    return err


def _sqlite_locked(err):
    err = _sa_error(err)
    return isinstance(err, exc.OperationalError) and any(
        s in str(err.orig).lower() for s in ("database is locked", "database table is locked",
                                             "database is busy"))


def _is_retriable(err):
    """Worth another try: what a concurrent transaction caused and a new
    attempt, reading the state again, can get around -- a deadlock or
    serialization failure (the server rolled us back), a lock wait that
    timed out, and a unique key a concurrent writer took first (every
    unique key of the schema is an allocation: an address, a MAC, a
    segment, a project's default group, a binding, a tag; the code checks
    for a taken key before it inserts, so the next attempt answers the
    conflict itself).  Never retried: a foreign key or NOT NULL violation,
    a value the column cannot hold, or any other error."""
    if isinstance(err, exceptions.RetryRequest):
        return True
    if isinstance(err, db_exc.DBDeadlock):
        # oslo.db counts MySQL's lock wait timeout (1205) as a deadlock;
        # it is a lock held too long (as PostgreSQL's cancelled statement),
        # and waiting for it again would hold the request for as long again
        return not _is_lock_wait_timeout(err)
    if isinstance(err, db_exc.DBDuplicateEntry):
        return True
    if isinstance(err, db_exc.DBError):
        return False
    if isinstance(err, exc.OperationalError):
        if getattr(err.orig, "pgcode", None) in _PG_ROLLED_BACK:
            return True
        text = str(err.orig).lower()
        return any(s in text for s in ("deadlock", "database is locked", "database is busy",
                                       "could not serialize"))
    return False


def _is_lock_wait_timeout(err):
    inner = _sa_error(err)
    if isinstance(inner, db_exc.DBError):  # wrapping the driver's own error
        inner = inner.inner_exception
    orig = getattr(inner, "orig", inner)
    args = getattr(orig, "args", ())
    return bool(args) and args[0] == 1205


def classify(err):
    """The QuantumError a database error is answered with when it is not
    (or no longer) retried, or None (then it is a server fault or an
    unreachable database: the API decides).  A foreign key violated is a
    conflict with a concurrent change (the row referred to went away, or a
    row still refers to what was deleted): 409.  A duplicate key past the
    retries: 409.  A NOT NULL violation or a value the column cannot hold
    is bad input: 400."""
    if isinstance(err, db_exc.DBReferenceError):
        return exceptions.Conflict(
            message="The request refers to a resource that was changed or deleted "
                    "concurrently, or one still in use; retry it.")
    if isinstance(err, db_exc.DBDuplicateEntry):
        return exceptions.Conflict(
            message="The request conflicts with the current state of the resource; "
                    "retry it.")
    if isinstance(err, (db_exc.DBDataError, db_exc.DBInvalidUnicodeParameter)) or (
            isinstance(err, db_exc.DBError) and isinstance(err.inner_exception, exc.DataError)):
        # (PostgreSQL's "value too long" is a DataError oslo.db leaves unnamed)
        return exceptions.BadRequest(
            message="A value of the request cannot be stored (too long, out of range "
                    "or not valid text).")
    if isinstance(err, db_exc.DBConstraintError) or (
            isinstance(err, db_exc.DBError) and not isinstance(err, db_exc.DBConnectionError)
            and isinstance(err.inner_exception, exc.IntegrityError)):
        # NOT NULL (PostgreSQL 23502, MySQL 1048, SQLite), CHECK
        return exceptions.BadRequest(
            message="The request lacks a required value or holds an invalid one.")
    return None


# A write transaction that sets this key in ``session.info`` wakes the
# other server processes' change feeds when it commits (NOTIFY on
# PostgreSQL; elsewhere they poll).
NOTIFY = "qovs_notify"
CHANNEL = "qovs_changes"
# Callables fn(session) that a write transaction appends to
# ``session.info[BEFORE_COMMIT]``: run after its work, just before it
# commits (the quota check: the last lock a transaction takes).
BEFORE_COMMIT = "qovs_before_commit"
# Callables fn(session) run after those, last before the commit: the
# change log's rows are inserted there (db/changelog.py), so that no lock
# is waited for between a change row taking its sequence number and the
# commit, and a write refused before (a quota) takes no number.
AT_COMMIT = "qovs_at_commit"
# session.info: the MySQL named locks (GET_LOCK) a write transaction took
# through transaction_lock, released when it ends; and how long one may
# be waited for.
_MYSQL_LOCKS = "qovs_mysql_locks"
_LOCK_WAIT = "qovs_lock_wait"


def after_commit(session, fn, *args):
    """Run ``fn(*args)`` once ``session``'s transaction is committed (never
    for one rolled back: a retried write registers again)."""
    event.listen(session, "after_commit", lambda _s: fn(*args), once=True)


def is_sqlite(session):
    """Whether ``session`` works on SQLite (one writer at a time: no row
    locks to take)."""
    return session.get_bind().dialect.name == "sqlite"


def transaction_lock(session, name):
    """An exclusive lock on ``name`` held until the write transaction
    ends, whether or not any row exists to lock: PostgreSQL's advisory
    transaction lock; on MySQL/MariaDB a named lock (GET_LOCK) released by
    Database.write when the transaction ends -- InnoDB's locks on a row
    that does not exist (gap locks) do not exclude each other, and READ
    COMMITTED takes none; nothing on SQLite (a write transaction holds the
    database's write lock)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return
    digest = hashlib.sha256(name.encode()).digest()
    if dialect == "postgresql":
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        return
    held = session.info.setdefault(_MYSQL_LOCKS, set())
    lock = "qovs_" + digest.hex()[:40]  # at most 64 characters
    if lock in held:
        return
    got = session.execute(sa.text("SELECT GET_LOCK(:n, :t)"),
                          {"n": lock, "t": session.info.get(_LOCK_WAIT, 50)}).scalar()
    if got != 1:
        raise exceptions.ServiceUnavailable(
            message="The database is busy; retry the request.")
    held.add(lock)


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
UNHURRIED = 7 * 24 * 3600.0


@contextlib.contextmanager
def unhurried():
    """While in it, this thread's waits for the database are not cut at
    the wait callback's deadline (statement_timeout + 1): for schema
    migrations, whose statements, and the wait for another process's
    migration, may take long.  (Enter it with the connection checked out:
    the ping of a pooled connection sets its own deadline and clears it.)"""
    before = getattr(_waits, "limit", None)
    _waits.limit = UNHURRIED
    try:
        yield
    finally:
        _waits.limit = before


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
                if state not in (ext.POLL_READ, ext.POLL_WRITE):
                    raise psycopg2.OperationalError(f"bad poll state {state}")
                ready = _ready(conn.fileno(), state == ext.POLL_WRITE, left)
            if not ready:
                _cut(conn)
                raise psycopg2.OperationalError(
                    f"the database did not answer within {limit:g} s")
    return wait


def _ready(fd, write, seconds):
    """Whether ``fd`` became readable (writable) within ``seconds``.  poll,
    not select, where there is one: select refuses a descriptor above 1023,
    and quantum-ovs-agent-api holds a socket per waiting agent (a thousand
    agents: its new database connections get such descriptors).  Under
    eventlet (quantum-ovs-server) select is eventlet's, cooperative and
    without that limit, and poll is gone."""
    poll = getattr(select, "poll", None)
    if poll is None:
        return bool(select.select([], [fd], [], seconds)[1] if write
                    else select.select([fd], [], [], seconds)[0])
    p = poll()
    p.register(fd, select.POLLOUT if write else select.POLLIN)
    return bool(p.poll(seconds * 1000))


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
    def __init__(self, url, pool_size=10, max_overflow=20, db_max_retries=10,
                 echo=False, connect_timeout=None, statement_timeout=None,
                 sqlite_lock_wait=SQLITE_LOCK_WAIT, connection_recycle_time=3600,
                 mysql_sql_mode="TRADITIONAL"):
        """``db_max_retries``: how many times a write transaction is tried
        again after a deadlock or a lost race (see _is_retriable).
        ``connection_recycle_time``: seconds after which a pooled
        connection is replaced (-1 never; MySQL drops connections idle for
        its wait_timeout).  ``mysql_sql_mode``: the sql_mode of every
        MySQL connection (TRADITIONAL: a value the column cannot hold is an
        error, not silently cut).
        ``connect_timeout``, ``statement_timeout`` (seconds, PostgreSQL;
        on MySQL the connect timeout, the lock wait and the socket timeout):
        how long a new connection and one statement may take; past them
        the request fails (503) instead of waiting for the database.  The
        server cancels a statement at ``statement_timeout`` (a long lock
        wait); a server that does not answer at all (paused, or gone
        without closing its connections) is given up one second later."""
        self.url = sa.engine.make_url(url)
        self.max_retries = db_max_retries
        self.sqlite_lock_wait = sqlite_lock_wait
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.is_postgresql = self.url.get_backend_name() == "postgresql"
        self.is_mysql = self.url.get_backend_name() in ("mysql", "mariadb")
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
                          pool_use_lifo=True, pool_recycle=connection_recycle_time)
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
            elif self.is_mysql:
                # READ COMMITTED, as PostgreSQL's default: a plain read sees
                # what was committed before it, not a snapshot of the
                # transaction's first read (REPEATABLE READ), and InnoDB
                # takes no gap locks (fewer deadlocks between allocators).
                kwargs["isolation_level"] = "READ COMMITTED"
                args = {}
                if connect_timeout:
                    args["connect_timeout"] = max(1, int(round(connect_timeout)))
                if statement_timeout:
                    # a server that does not answer (PyMySQL's socket
                    # timeout): given up one second past statement_timeout
                    args["read_timeout"] = args["write_timeout"] = \
                        max(1, int(round(statement_timeout + 1)))
                kwargs["connect_args"] = args
        self.engine = sa.create_engine(self.url, **kwargs)
        # oslo.db's exception filters: errors raised as oslo_db.exception's
        # (see _is_retriable and classify).
        exc_filters.register_engine(self.engine)
        if self.is_sqlite:
            self._setup_sqlite(self.engine)
        else:
            self._setup_ping(self.engine)
        if self.is_mysql:
            self._setup_mysql(self.engine, mysql_sql_mode, statement_timeout)
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
        self._lock_wait = max(1, int(round(statement_timeout))) if statement_timeout else 50

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
        if isinstance(err, db_exc.DBConnectionError):
            err = _sa_error(err)
            if not isinstance(err, exc.DBAPIError):
                LOG.warning("database unreachable: %s", str(err).splitlines()[0])
                self._down_until = time.monotonic() + DOWN_HOLD
                return
        err = _sa_error(err)
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
    def _setup_mysql(engine, sql_mode, statement_timeout):
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            if sql_mode:
                cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
            if statement_timeout:
                # a lock held by another transaction is waited for this
                # long (InnoDB's default is 50 s); then 503, not retried
                # (as PostgreSQL's statement_timeout)
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s",
                            (max(1, int(round(statement_timeout))),))
            cur.close()

    def wait_until_reachable(self, max_retries=10, retry_interval=10):
        """At start: try to connect, ``max_retries`` more times (-1: for
        ever) ``retry_interval`` seconds apart while the database cannot be
        reached (oslo.db's meaning of [database] max_retries)."""
        attempt = 0
        while True:
            try:
                conn = self.engine.connect()
            except (db_exc.DBConnectionError, exc.OperationalError) as err:
                # (oslo.db's filters know libpq's old "could not connect to
                # server", not its newer 'connection to server at ...
                # failed: Connection refused': any failure to connect
                # counts)
                if 0 <= max_retries <= attempt:
                    if isinstance(err, db_exc.DBConnectionError):
                        raise
                    raise db_exc.DBConnectionError(err) from err
                attempt += 1
                LOG.warning("database not reachable (%s); attempt %d of %s in %g s",
                            str(err).splitlines()[0], attempt + 1,
                            "unlimited" if max_retries < 0 else max_retries + 1,
                            retry_interval)
                time.sleep(retry_interval)
                continue
            with conn:
                conn.exec_driver_sql("SELECT 1")
            return

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
        except (exc.DBAPIError, exc.TimeoutError, db_exc.DBError) as err:
            self._note(err)
            mapped = classify(err)
            if mapped is not None:
                raise mapped from err
            raise
        finally:
            session.close()
            conn.close()

    @contextlib.contextmanager
    def _writer_session(self):
        conn = self.engine.connect().execution_options(qovs_write=True)
        session = Session(bind=conn, expire_on_commit=False)
        session.info[_LOCK_WAIT] = self._lock_wait
        try:
            with session.begin():
                yield session
        finally:
            if session.info.get(_MYSQL_LOCKS):
                # named locks belong to the connection, not the transaction
                try:
                    conn.exec_driver_sql("DO RELEASE_ALL_LOCKS()")
                except Exception:  # noqa: BLE001 - then the connection goes
                    conn.invalidate()
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
                    for last in session.info.pop(AT_COMMIT, ()):
                        last(session)
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
                    mapped = classify(err)
                    if mapped is not None:
                        LOG.info("database refused the transaction: %s",
                                 str(err).splitlines()[0])
                        raise mapped from err
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
