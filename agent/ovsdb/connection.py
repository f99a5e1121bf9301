"""One thread owns the OVSDB IDL.

:class:`Connection` starts a thread that runs ``idl.run()`` and sleeps in
an ``ovs.poller.Poller`` until the database socket, a transaction or the
wake-up pipe needs it.  Everything that touches IDL rows runs on that
thread: other threads submit :class:`Command` batches with
:meth:`Connection.execute` (a future under the hood) and get results back;
row events (create/update/delete, from the IDL's monitor) are dispatched to
handlers on the same thread, so handlers must be quick and must never call
:meth:`Connection.execute` themselves (that would wait for the very thread
they are running on; it raises instead).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Iterable, Optional


def _import_ovs_poller_without_eventlet() -> None:
    """Import ``ovs.poller`` without letting it import eventlet.

    The ovs library's poller tries ``from eventlet import patcher`` (to
    detect a monkey-patched ``select``) whenever eventlet is installed,
    which it is for quantum-ovs-server; that import costs a starting agent
    ~120 ms, and the agent never runs under eventlet.  A ``None`` entry in
    ``sys.modules`` makes that one import fail at once (the poller catches
    it and uses plain ``select``); the entry is removed right after, so
    eventlet stays importable for anything else (the optional checks of
    oslo libraries, server code in the same process).  A process that has
    already imported eventlet, or ovs.poller, gets the library as before.
    Module imports run on the importing thread before the agent starts any
    other thread, so no other import can see the entry.
    """
    if "ovs.poller" in sys.modules or "eventlet" in sys.modules:
        return
    sys.modules["eventlet"] = None
    try:
        import ovs.poller  # noqa: F401
    finally:
        if "eventlet" in sys.modules and sys.modules["eventlet"] is None:
            del sys.modules["eventlet"]


_import_ovs_poller_without_eventlet()

import ovs.db.idl  # noqa: E402 (after the poller, above)
import ovs.jsonrpc  # noqa: E402
import ovs.poller  # noqa: E402
import ovs.stream  # noqa: E402
from ovs.db.idl import Transaction  # noqa: E402

from agent.ovsdb import streamjson  # noqa: E402

streamjson.install()

LOG = logging.getLogger(__name__)

DEFAULT_TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller")
MAX_RETRIES = 10


class OVSDBError(Exception):
    """A transaction failed (the server said no, or a command raised)."""


class NotConnected(OVSDBError):
    pass


class Command:
    """A unit of work run on the IDL thread inside a transaction.

    ``run(ctx)`` reads rows through ``ctx.idl`` and writes through
    ``ctx.txn``; it must be safe to re-run (a transaction that loses a
    race is rebuilt from scratch).  ``result`` is what execute() returns;
    ``post_commit(txn)`` may translate provisional UUIDs.
    """

    result = None

    def run(self, ctx: "TxnContext") -> None:
        raise NotImplementedError

    def post_commit(self, txn: Transaction) -> None:
        pass


class TxnContext:
    """What a command sees: the IDL, the open transaction, row lookups."""

    def __init__(self, idl: ovs.db.idl.Idl, txn: Transaction):
        self.idl = idl
        self.txn = txn

    def rows(self, table: str):
        return self.idl.tables[table].rows.values()

    def find(self, table: str, column: str, value) -> Optional[ovs.db.idl.Row]:
        for row in self.idl.tables[table].rows.values():
            if getattr(row, column) == value:
                return row
        return None

    def by_name(self, table: str, name: str) -> Optional[ovs.db.idl.Row]:
        return self.find(table, "name", name)

    def root(self) -> ovs.db.idl.Row:
        for row in self.idl.tables["Open_vSwitch"].rows.values():
            return row
        raise OVSDBError("the Open_vSwitch table is empty (ovs-vsctl init not run?)")


def fetch_schema(remote: str, database: str = "Open_vSwitch", timeout: float = 10.0):
    """Ask the server for its schema (so we never drift from its version),
    within ``timeout`` seconds: a server that takes the connection and
    never answers is NotConnected then, not a wait for ever."""
    deadline = time.monotonic() + timeout
    while True:
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        err, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), left_ms)
        if not err:
            break
        if time.monotonic() > deadline:
            raise NotConnected(f"cannot connect to {remote}: {os.strerror(err)}")
        time.sleep(0.1)
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        req = ovs.jsonrpc.Message.create_request("get_schema", [database])
        err, reply = _transact(rpc, req, deadline)
        if err:
            raise NotConnected(f"get_schema from {remote}: {os.strerror(err)}")
        if reply.error:
            raise OVSDBError(f"get_schema from {remote}: {reply.error}")
        return ovs.db.idl.SchemaHelper(None, reply.result)
    finally:
        rpc.close()


def _transact(rpc, request, deadline):
    """(error, reply) of ``request`` on ``rpc``, as its transact_block,
    with ETIMEDOUT once ``deadline`` (time.monotonic()) has passed."""
    error = rpc.send(request)
    while not error:
        error, reply = rpc.recv()
        if error == errno.EAGAIN:
            left = deadline - time.monotonic()
            if left <= 0:
                return errno.ETIMEDOUT, None
            rpc.run()
            poller = ovs.poller.Poller()
            rpc.wait(poller)
            rpc.recv_wait(poller)
            poller.timer_wait(max(1, int(left * 1000)))
            poller.block()
            error = 0
            continue
        if not error and reply.type in (ovs.jsonrpc.Message.T_REPLY,
                                        ovs.jsonrpc.Message.T_ERROR) \
                and reply.id == request.id:
            return 0, reply
    return error, None


class _Idl(ovs.db.idl.Idl):
    """An IDL that forwards row notifications to its Connection."""

    def __init__(self, remote, helper, dispatch, probe_interval):
        super().__init__(remote, helper, probe_interval=probe_interval)
        self._dispatch = dispatch

    def notify(self, event, row, updates=None):
        self._dispatch(event, row, updates)


class _Pending:
    __slots__ = ("commands", "future", "txn", "tries", "baseline")

    def __init__(self, commands, future):
        self.commands = commands
        self.future = future
        self.txn: Optional[Transaction] = None
        self.tries = 0
        self.baseline = -1  # change_seqno to wait past before a retry


RowHandler = Callable[[str, ovs.db.idl.Row, Optional[ovs.db.idl.Row]], None]


class Connection:
    """An OVSDB client whose IDL lives on one thread.

    :param remote: e.g. ``unix:/var/run/openvswitch/db.sock`` or ``tcp:127.0.0.1:6640``
    :param tables: tables to replicate (all their columns), or
        ``(table, columns)`` pairs to replicate only some columns
    :param timeout: default seconds for execute() and wait_for()
    :param probe_interval: inactivity probe in ms (None = OVS default)
    """

    def __init__(
        self,
        remote: str,
        tables: Iterable[str] = DEFAULT_TABLES,
        timeout: float = 10.0,
        probe_interval: Optional[int] = None,
    ):
        self.remote = remote
        self.tables = tuple(tables)
        self.timeout = timeout
        self.probe_interval = probe_interval
        self.idl: Optional[_Idl] = None
        self._queue: "queue.Queue[_Pending]" = queue.Queue()
        self._inflight: list[_Pending] = []
        self._handlers: list[tuple[Optional[str], RowHandler]] = []
        self._seqno_handlers: list[Callable[[], None]] = []
        self._reconnect_handlers: list[Callable[[], None]] = []
        self._waiters: list[tuple[Callable, Future]] = []
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._session_seqno = None

    # ------------------------------------------------------------ life cycle
    def start(self, wait: bool = True) -> "Connection":
        helper = fetch_schema(self.remote, timeout=self.timeout)
        for table in self.tables:
            if isinstance(table, tuple):
                # (table, columns): replicate only those columns (e.g. not
                # the statistics vswitchd rewrites on every interface)
                helper.register_columns(table[0], list(table[1]))
            else:
                helper.register_table(table)
        self.idl = _Idl(self.remote, helper, self._dispatch, self.probe_interval)
        self._thread = threading.Thread(target=self._loop, name="ovsdb-idl", daemon=True)
        self._thread.start()
        if wait and not self._ready.wait(self.timeout):
            raise NotConnected(f"no initial OVSDB contents from {self.remote}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.idl is not None:
            self.idl.close()
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._rfd = self._wfd = -1

    def __enter__(self) -> "Connection":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def on_idl_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # ------------------------------------------------------------ API
    def execute(self, commands, timeout: Optional[float] = None):
        """Run one Command, or a list of them in ONE transaction; block for it.

        Returns the command's result (or a list of results).
        """
        single = isinstance(commands, Command)
        cmds = [commands] if single else list(commands)
        fut = self.submit(cmds)
        try:
            results = fut.result(self.timeout if timeout is None else timeout)
        except FutureTimeout:
            # Not started yet (e.g. waiting for a reconnection)? Then it never will.
            started = not fut.cancel()
            raise OVSDBError(
                "OVSDB transaction timed out" + (" (it may still complete)" if started else "")
            ) from None
        return results[0] if single else results

    def submit(self, commands: list[Command]) -> Future:
        """Queue commands as one transaction; the future yields their results."""
        if self.on_idl_thread:
            raise RuntimeError("execute() called from the IDL thread (an event handler?)")
        if self._thread is None or self._stop.is_set():
            raise NotConnected("connection not started")
        fut: Future = Future()
        self._queue.put(_Pending(commands, fut))
        self._wake()
        return fut

    def call(self, fn: Callable[[ovs.db.idl.Idl], object], timeout: Optional[float] = None):
        """Run a read-only ``fn(idl)`` on the IDL thread and return its value."""

        class _Read(Command):
            def run(self, ctx):
                self.result = fn(ctx.idl)

        return self.execute(_Read(), timeout)

    def wait_for(
        self, predicate: Callable[[ovs.db.idl.Idl], object], timeout: Optional[float] = None
    ):
        """Block until ``predicate(idl)`` (run on the IDL thread after every
        change) returns something truthy; return that value."""
        fut: Future = Future()
        with self._lock:
            self._waiters.append((predicate, fut))
        self._wake()
        try:
            return fut.result(self.timeout if timeout is None else timeout)
        finally:
            with self._lock:
                self._waiters = [(p, f) for p, f in self._waiters if f is not fut]

    def add_row_handler(self, handler: RowHandler, table: Optional[str] = None) -> None:
        """``handler(event, row, old)`` on the IDL thread for rows of ``table``.

        ``event`` is "create", "update" or "delete" (the IDL's ROW_* names).
        """
        self._handlers.append((table, handler))

    def add_change_handler(self, handler: Callable[[], None]) -> None:
        """Called on the IDL thread after every run() that changed the replica."""
        self._seqno_handlers.append(handler)

    def add_reconnect_handler(self, handler: Callable[[], None]) -> None:
        """Called on the IDL thread once the replica is complete again after a
        (re)connection: rows deleted while we were away produce no delete
        event, so handlers that keep state should resynchronise here."""
        self._reconnect_handlers.append(handler)

    # ------------------------------------------------------------ the thread
    def _wake(self) -> None:
        try:
            os.write(self._wfd, b"x")
        except (BlockingIOError, OSError):
            pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _dispatch(self, event, row, updates) -> None:
        table = row._table.name
        for want, handler in self._handlers:
            if want is None or want == table:
                try:
                    handler(event, row, updates)
                except Exception:
                    LOG.exception("OVSDB row handler %r failed", handler)

    def _loop(self) -> None:
        self._last_change = self.idl.change_seqno
        self._resync_pending = True
        while not self._stop.is_set():
            try:
                self._iterate()
            except Exception:
                # Never let the IDL thread die: everyone's futures hang on it.
                LOG.exception("OVSDB IDL loop failed; continuing")
                time.sleep(0.1)
        err = NotConnected("OVSDB connection stopped")
        for p in self._inflight:
            if not p.future.done():
                p.future.set_exception(err)
        while not self._queue.empty():
            fut = self._queue.get_nowait().future
            if not fut.done():
                fut.set_exception(err)

    def _iterate(self) -> None:
        idl = self.idl
        self._drain_wake()
        idl.run()
        session_seqno = idl._session.get_seqno()
        if session_seqno != self._session_seqno:
            self._session_seqno = session_seqno
            self._resync_pending = True
        monitoring = idl.state == idl.IDL_S_MONITORING and idl._session.is_connected()
        if monitoring and self._resync_pending:
            self._resync_pending = False
            self._ready.set()
            for h in self._reconnect_handlers:
                self._safe(h)
        if idl.change_seqno != self._last_change:
            self._last_change = idl.change_seqno
            for h in self._seqno_handlers:
                self._safe(h)
        self._check_waiters()
        self._progress_inflight(monitoring)
        if monitoring:
            self._start_queued()
        poller = ovs.poller.Poller()
        idl.wait(poller)
        for p in self._inflight:
            if p.txn is not None:
                p.txn.wait(poller)
            elif monitoring and idl.change_seqno != p.baseline:
                poller.immediate_wake()
        poller.fd_wait(self._rfd, ovs.poller.POLLIN)
        poller.timer_wait(1000)
        poller.block()

    @staticmethod
    def _safe(fn) -> None:
        try:
            fn()
        except Exception:
            LOG.exception("OVSDB handler %r failed", fn)

    def _check_waiters(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for pred, fut in waiters:
            if fut.done():
                continue
            try:
                value = pred(self.idl)
            except Exception as e:  # the caller sees it
                fut.set_exception(e)
                continue
            if value:
                fut.set_result(value)

    def _start_queued(self) -> None:
        while True:
            try:
                p = self._queue.get_nowait()
            except queue.Empty:
                return
            if p.future.set_running_or_notify_cancel() and self._begin(p):
                self._inflight.append(p)

    def _begin(self, p: _Pending) -> bool:
        """Build and commit a transaction for ``p``; False if it already failed."""
        p.tries += 1
        p.baseline = self.idl.change_seqno
        txn = Transaction(self.idl)
        ctx = TxnContext(self.idl, txn)
        try:
            for cmd in p.commands:
                cmd.run(ctx)
        except Exception as e:
            txn.abort()
            p.future.set_exception(e)
            return False
        txn.commit()  # sends it; the status is read in _progress_inflight
        p.txn = txn
        return True

    def _progress_inflight(self, monitoring: bool) -> None:
        still = []
        for p in self._inflight:
            if p.txn is None:
                # Waiting to retry after a TRY_AGAIN: only once the replica
                # moved and is complete again.
                if not monitoring or self.idl.change_seqno == p.baseline:
                    still.append(p)
                elif self._begin(p):
                    still.append(p)
                continue
            status = p.txn.commit()
            if status == Transaction.INCOMPLETE:
                still.append(p)
            elif status in (Transaction.SUCCESS, Transaction.UNCHANGED):
                try:
                    for cmd in p.commands:
                        cmd.post_commit(p.txn)
                    p.future.set_result([cmd.result for cmd in p.commands])
                except Exception as e:
                    p.future.set_exception(e)
            elif status == Transaction.TRY_AGAIN and p.tries < MAX_RETRIES:
                LOG.debug("OVSDB transaction: try again (%d)", p.tries)
                p.txn = None
                still.append(p)
            else:
                p.future.set_exception(
                    OVSDBError(
                        f"transaction {Transaction.status_to_string(status)}: {p.txn.get_error()}"
                    )
                )
        self._inflight = still
