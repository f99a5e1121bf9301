"""The Database object: an engine, sessions, and retried transactions.

No module-level state: the server builds one Database per process (after
forking, so that no connection crosses a fork).
"""

import contextlib
import logging
import random
import time

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.orm import Session, sessionmaker

from quantum_ovs import exceptions

LOG = logging.getLogger(__name__)


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


class Database:
    def __init__(self, url, pool_size=10, max_overflow=20, max_retries=10,
                 echo=False):
        self.url = sa.engine.make_url(url)
        self.max_retries = max_retries
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if self.url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = sa.pool.StaticPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow,
                          pool_pre_ping=True)
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.is_sqlite:
            self._setup_sqlite(self.engine)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Called after every committed write transaction (e.g. to wake the
        # agent API's change feed at once).
        self.after_write = []
        # Called by dispose(): background readers stop before the engine goes.
        self.on_dispose = []

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
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            if conn.get_execution_options().get("qovs_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    def dispose(self):
        for fn in self.on_dispose:
            fn()
        self.engine.dispose()

    @contextlib.contextmanager
    def reader(self):
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

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
        attempt = 0
        while True:
            try:
                with self._writer_session() as session:
                    result = fn(session, *args, **kwargs)
                for hook in self.after_write:
                    hook()
                return result
            except exceptions.QuantumError:
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                attempt += 1
                if attempt > self.max_retries or not _is_retriable(err):
                    raise
                LOG.debug("retrying transaction (%d): %s", attempt, err)
                time.sleep(random.uniform(0, min(0.005 * 2 ** attempt, 0.25)))
