"""The agent's OpenFlow 1.3 channel to its integration bridge.

A passive listener (the bridge's ``Controller`` row points at it, e.g.
``tcp:127.0.0.1:6633``) that accepts the switch's connection and speaks
OpenFlow over a plain socket with native threads; os-ken is used only to
encode and parse messages (in :mod:`agent.openflow.encode`), not as an
application framework, so there is no eventlet, no app_manager, no global
registry.

Threads:
    ``of-accept``   accepts the switch, runs the handshake (hello,
                    features, set-config, barrier) and publishes the
                    connection.  A new connection replaces the old one
                    (ovs-vswitchd restarted).
    ``of-read``     one per connection: reads messages, answers echo
                    requests, completes the futures of requests by xid,
                    queues packet-ins and connection events.
    ``of-events``   runs the callbacks (connect, disconnect, packet-in) in
                    order; they may call back into the channel (dump,
                    apply) without deadlocking the reader.
Callers' threads block in :meth:`apply`, :meth:`dump_flows`,
:meth:`barrier` until the switch answered; :meth:`apply` is serialized
(one bundle at a time).

Ownership: a :class:`CookieScope` (value, mask) says which cookies are
ours.  Dumps ask only for those (cookie/mask in the request), deletes are
strict (table, priority, match) and carry the same cookie/mask, and
apply() refuses flows whose cookie is outside the scope, so the channel
never reads, changes or removes anyone else's flows.
"""

from __future__ import annotations

import itertools
import logging
import queue
import select
import socket
import struct
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from agent.openflow import encode as E
from agent.settings import DHCP_PACKET_BURST, DHCP_PACKET_RATE, PACKET_IN_QUEUE
from quantum_ovs.compiler.flow import Flow, FlowDiff, Meter, meter_ids

LOG = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHI")
SEND_CHUNK = 1 << 20
# Bundle-adds are sent this many bytes at a time as they are encoded.
BUNDLE_CHUNK = 64 << 10
OFPT_PACKET_IN = 10  # OpenFlow 1.3
# A bundle's answers may take this much longer for each flow in it.
_PER_FLOW_S = 1 / 2000


class ChannelError(Exception):
    pass


class NotConnected(ChannelError):
    pass


class ConnectionLost(ChannelError):
    pass


class OpenFlowError(ChannelError):
    """The switch answered a request with an error message."""

    def __init__(self, error: "E.OFError", what: str = ""):
        super().__init__(f"{what}: {error}" if what else str(error))
        self.error = error


class BundleRejected(ChannelError):
    """The bundle was refused as a whole; nothing was applied.

    ``errors`` lists (Flow or None, OFError): the messages the switch
    complained about (None for the bundle control message itself).
    """

    def __init__(self, errors):
        self.errors = list(errors)
        detail = "; ".join(f"{e} <- {f}" for f, e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"bundle rejected: {detail}{more}")


@dataclass(frozen=True, slots=True)
class CookieScope:
    """Cookies ``c`` with ``c & mask == value`` are ours."""

    value: int
    mask: int

    def __post_init__(self):
        if self.mask == 0:
            raise ValueError("a cookie scope needs a non-zero mask (else every flow is ours)")
        if self.value & ~self.mask:
            raise ValueError("cookie scope value has bits outside its mask")

    @classmethod
    def ours(cls) -> "CookieScope":
        """The scope the compiler's cookies use (quantum_ovs.compiler.cookies)."""
        from quantum_ovs.compiler import cookies

        return cls(cookies.OURS_VALUE, cookies.OURS_MASK)

    def owns(self, cookie: int) -> bool:
        return cookie & self.mask == self.value


class _Request:
    __slots__ = ("kind", "future", "parts")

    def __init__(self, kind: str):
        self.kind = kind
        self.future: Future = Future()
        self.parts: list = []


class _Conn:
    """One accepted switch connection."""

    def __init__(self, sock: socket.socket, peer, generation: int):
        self.sock = sock
        self.peer = peer
        self.generation = generation
        self.datapath_id: Optional[int] = None
        self.send_lock = threading.Lock()
        self.pending: dict[int, _Request] = {}
        self.error_sinks: dict[int, tuple[list, object]] = {}
        self.meters: set[int] = set()  # meter ids made (or found) on this connection
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.reader: Optional[threading.Thread] = None

    def send(self, data: bytes) -> None:
        if self.closed.is_set():
            raise ConnectionLost("switch connection closed")
        try:
            with self.send_lock:
                view = memoryview(data)
                for i in range(0, len(view), SEND_CHUNK):
                    self.sock.sendall(view[i : i + SEND_CHUNK])
        except OSError as e:
            raise ConnectionLost(f"send failed: {e}") from e

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            pending, self.pending = self.pending, {}
        err = ConnectionLost("switch connection lost")
        for req in pending.values():
            if not req.future.done():
                req.future.set_exception(err)


class _InlineMeters:
    """The meters an apply_stream() makes as it goes: each is added (a
    meter-mod outside the bundle) just before the first flow naming it
    is sent; :meth:`settle`, once the switch has answered every add, sets
    those that existed already to our rate (an earlier agent made them)
    and raises BundleRejected if any could not be made."""

    def __init__(self, channel: "Channel", conn: _Conn):
        self.channel = channel
        self.conn = conn
        self.sent: set[int] = set()
        self.errors: list = []
        self.xids: list[int] = []

    def add(self, mid: int) -> None:
        ch, conn = self.channel, self.conn
        self.sent.add(mid)
        xid = ch._xid()
        self.xids.append(xid)
        conn.error_sinks[xid] = (self.errors, mid)
        conn.send(E.serialize(E.meter_mod(mid, ch.meter_rate, ch.meter_burst), xid))

    def release(self) -> None:
        sinks = self.conn.error_sinks
        for xid in self.xids:
            sinks.pop(xid, None)
        self.xids = []

    def settle(self, wait: float) -> None:
        conn = self.conn
        self.release()
        if not self.sent:
            return
        self.channel.stats["meters_created"] += len(self.sent) - len(self.errors)
        exists = {mid for mid, err in self.errors if E.is_meter_exists(err)}
        if len(exists) != len(self.errors):
            raise BundleRejected([(None, err) for _, err in self.errors
                                  if not E.is_meter_exists(err)])
        conn.meters.update(self.sent - exists)
        if exists:  # (tried once more: found, then set to our rate)
            self.channel._ensure_meters(conn, exists, wait)


class Channel:
    """OpenFlow 1.3 controller endpoint for one bridge.

    :param cookie: the CookieScope of the flows this agent owns (required)
    :param listen: (host, port) to listen on (ignored if ``sock`` is given)
    :param sock: an already bound, listening socket (e.g. created inside
        another network namespace)
    :param connect: ``unix:<path>`` of a socket the switch listens on (the
        bridge's management socket, ``<rundir>/<bridge>.mgmt``): the channel
        connects to the switch instead of waiting for it, and connects again
        at once when the connection drops; ``listen`` and ``sock`` are then
        not used.  A switch whose controller went away waits a second or
        more before it tries again; a connecting agent does not wait for it.
    :param timeout: default seconds to wait for the switch's answers
    :param datapath_id: accept only the switch with this datapath id (the
        integration bridge's, from OVSDB); None accepts any switch, and a
        newer connection always replaces an older one
    :param echo_interval: seconds of silence before we probe the switch;
        no answer within another interval closes the connection
    :param meter_rate: packets per second each meter a flow names lets
        through (the per-port DHCP punt); ``meter_burst`` packets above it
    :param packet_in_queue: packet-ins waiting for the handler; more are
        dropped (and counted in ``stats``) instead of queued
    """

    def __init__(
        self,
        cookie: CookieScope,
        listen: tuple[str, int] = ("127.0.0.1", 6633),
        sock: Optional[socket.socket] = None,
        timeout: float = 10.0,
        echo_interval: float = 5.0,
        datapath_id: Optional[int] = None,
        meter_rate: int = DHCP_PACKET_RATE,
        meter_burst: int = DHCP_PACKET_BURST,
        packet_in_queue: int = PACKET_IN_QUEUE,
        connect: Optional[str] = None,
    ):
        if connect is not None and not connect.startswith("unix:"):
            raise ValueError(f"connect: unix:<path> expected, not {connect!r}")
        self.connect_path = connect[5:] if connect is not None else None
        self.cookie = cookie
        self.meter_rate = meter_rate
        self.meter_burst = meter_burst
        self.stats = {"packet_in": 0, "packet_in_dropped": 0, "meters_created": 0}
        self._packet_ins: "queue.Queue" = queue.Queue(maxsize=packet_in_queue)
        self.listen_addr = listen
        self._listener = sock
        self.timeout = timeout
        self.echo_interval = echo_interval
        self.expected_datapath_id = datapath_id
        self._xids = itertools.count(1)
        self._bundle_ids = itertools.count(1)
        self._generations = itertools.count(1)
        self._conn: Optional[_Conn] = None
        self._conn_cv = threading.Condition()
        self._apply_lock = threading.Lock()
        self._events: "queue.Queue" = queue.Queue()
        self._connect_handlers: list[Callable[[int, int], None]] = []
        self._disconnect_handlers: list[Callable[[int], None]] = []
        self._packet_in_handler: Optional[Callable[["E.PacketIn"], None]] = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ life cycle
    def start(self) -> "Channel":
        if self.connect_path is not None:
            self.listen_addr = None
            self._start_threads(("of-connect", self._connect_loop))
            return self
        if self._listener is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(self.listen_addr)
            s.listen(8)
            self._listener = s
        if self._listener.family == socket.AF_UNIX:
            self.listen_addr = ("unix", self._listener.getsockname())
        else:
            self.listen_addr = self._listener.getsockname()[:2]
        self._start_threads(("of-accept", self._accept_loop))
        return self

    def _start_threads(self, *more) -> None:
        for name, target in (*more, ("of-events", self._event_loop),
                             ("of-packet-in", self._packet_in_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._conn_cv:
            conn, self._conn = self._conn, None
            self._conn_cv.notify_all()
        if conn is not None:
            conn.close()
        self._events.put(None)
        self._put_packet_in(None, block=True)
        for t in self._threads:
            t.join(5)
        self._threads.clear()

    def __enter__(self) -> "Channel":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.listen_addr[1]

    @property
    def target(self) -> Optional[str]:
        """The Controller target for OVSDB, e.g. ``tcp:127.0.0.1:6633`` or
        ``unix:/run/quantum-ovs/br-int.sock`` (a unix socket reaches a switch
        in another network namespace); None when the channel connects to the
        switch (the bridge then needs no Controller)."""
        if self.listen_addr is None:
            return None
        if self.listen_addr[0] == "unix":
            return f"unix:{self.listen_addr[1]}"
        return f"tcp:{self.listen_addr[0]}:{self.listen_addr[1]}"

    # ------------------------------------------------------------ events
    def on_connect(self, handler: Callable[[int, int], None]) -> None:
        """``handler(datapath_id, generation)`` after every (re)connection.

        The switch may have lost its flows (ovs-vswitchd restarted): dump
        and re-apply.  ``generation`` increases with every connection.
        """
        self._connect_handlers.append(handler)

    def on_disconnect(self, handler: Callable[[int], None]) -> None:
        self._disconnect_handlers.append(handler)

    def on_packet_in(self, handler: Callable[["E.PacketIn"], None]) -> None:
        self._packet_in_handler = handler

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed.is_set()

    @property
    def datapath_id(self) -> Optional[int]:
        conn = self._conn
        return None if conn is None else conn.datapath_id

    @property
    def generation(self) -> int:
        conn = self._conn
        return 0 if conn is None else conn.generation

    def wait_connected(self, timeout: Optional[float] = None, after_generation: int = 0) -> int:
        """Block until a switch is connected (with a generation greater
        than ``after_generation``); return the generation."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._conn_cv:
            while True:
                conn = self._conn
                if (
                    conn is not None
                    and not conn.closed.is_set()
                    and conn.generation > after_generation
                ):
                    return conn.generation
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    raise NotConnected("no switch connected")
                self._conn_cv.wait(left)

    # ------------------------------------------------------------ operations
    def apply(self, diff: FlowDiff, timeout: Optional[float] = None) -> None:
        """Apply ``diff`` in one atomic bundle; raise BundleRejected (and
        change nothing) if the switch refuses any part of it."""
        if diff.empty:
            return
        owns = self.cookie.owns
        for f in diff.deletes:
            if not owns(f.cookie):
                raise ValueError(f"flow cookie {f.cookie:#x} is outside our scope: {f}")
        # One pass over the flows sent: scope, and the meters they name
        # that this connection has not made yet (a meter flow per port
        # among tens of thousands; a resync sends them all).  They are
        # encoded as the bundle is sent (_bundle).
        known = self._conn.meters if self._conn is not None else frozenset()
        meters = set()
        for f in (*diff.modifies, *diff.adds):
            if not owns(f.cookie):
                raise ValueError(f"flow cookie {f.cookie:#x} is outside our scope: {f}")
            if f.actions and type(f.actions[0]) is Meter and f.actions[0].id not in known:
                meters.add(f.actions[0].id)
        base = self.timeout if timeout is None else timeout
        wait = base + len(diff) * _PER_FLOW_S
        with self._apply_lock:
            conn = self._require()
            if conn.meters is not known:
                # Another connection since: what it has made is not known.
                meters = meter_ids(diff.modifies) | meter_ids(diff.adds)
            if meters - conn.meters:
                self._ensure_meters(conn, meters - conn.meters, wait)
            self._bundle(conn, self._flow_mods(diff), base)

    def apply_stream(self, entries: Iterable[tuple[Flow, bool]],
                     timeout: Optional[float] = None) -> int:
        """Send flow-mods as ``entries`` yields them, in one atomic bundle:
        ``(flow, False)`` adds ``flow`` (replacing the flow with its key),
        ``(flow, True)`` deletes it (strict, within our cookie scope).  The
        switch takes them in while later ones are still being made (a
        cold start's table is computed as it is sent, issue 17); the
        bundle is opened at the first entry (none: nothing is sent) and
        committed once ``entries`` is exhausted.

        If ``entries`` raises, or yields a flow outside our cookie scope
        (ValueError), or the switch refuses any part (BundleRejected), the
        bundle is discarded: nothing is applied.  A meter a flow names that
        this connection has not made is made just before that flow is sent
        (outside the bundle; a meter that exists is set to our rate before
        the commit), as apply() makes them before its bundle.  Returns the
        number of flow-mods committed."""
        base = self.timeout if timeout is None else timeout
        owns, mask = self.cookie.owns, self.cookie.mask
        with self._apply_lock:
            conn = self._require()
            meters = _InlineMeters(self, conn)

            def flow_mods():
                known, made = conn.meters, meters.sent
                for f, delete in entries:
                    if not owns(f.cookie):
                        raise ValueError(f"flow cookie {f.cookie:#x} is outside our scope: {f}")
                    if delete:
                        yield f, E.flow_mod_bytes(f, E.DELETE, mask)
                        continue
                    a = f.actions
                    if a and type(a[0]) is Meter and a[0].id not in known \
                            and a[0].id not in made:
                        meters.add(a[0].id)
                    yield f, E.flow_mod_bytes(f, E.ADD)
            try:
                return self._bundle(conn, flow_mods(), base, before_commit=meters.settle)
            finally:
                meters.release()

    def _flow_mods(self, diff: FlowDiff):
        """(Flow, flow-mod bytes) of every flow ``diff`` sends, encoded as
        they are asked for (ValueError: a flow the encoder refuses)."""
        mask = self.cookie.mask
        for f in diff.deletes:
            yield f, E.flow_mod_bytes(f, E.DELETE, mask)
        for f in (*diff.modifies, *diff.adds):
            yield f, E.flow_mod_bytes(f, E.ADD)

    def install(self, flows: Iterable[Flow], timeout: Optional[float] = None) -> None:
        self.apply(FlowDiff(adds=tuple(flows)), timeout)

    def dump_flows(
        self, table: Optional[int] = None, timeout: Optional[float] = None
    ) -> list[Flow]:
        """Our flows (by cookie scope) as the switch has them."""
        conn = self._require()
        req = E.flow_stats_request(
            cookie=self.cookie.value,
            cookie_mask=self.cookie.mask,
            table=E.OFPTT_ALL if table is None else table,
        )
        parts = self._call(conn, req, "flow_stats", timeout)
        return [f for part in parts for f in part.flows]

    def barrier(self, timeout: Optional[float] = None) -> None:
        self._call(self._require(), E.barrier_request(), "barrier_reply", timeout)

    def packet_out(self, data: bytes, actions: Iterable, in_port: int = E.OFPP_CONTROLLER) -> None:
        """Send a packet through the switch (fire and forget; errors are logged)."""
        conn = self._require()
        conn.send(E.serialize(E.packet_out(data, tuple(actions), in_port), self._xid()))

    # ------------------------------------------------------------ internals
    def _xid(self) -> int:
        return next(self._xids) & 0xFFFFFFFF or next(self._xids) & 0xFFFFFFFF

    def _require(self) -> _Conn:
        conn = self._conn
        if conn is None or conn.closed.is_set():
            raise NotConnected("no switch connected")
        return conn

    def _request(self, conn: _Conn, msg, kind: str) -> tuple[int, Future]:
        xid = self._xid()
        req = _Request(kind)
        with conn.lock:
            if conn.closed.is_set():
                raise ConnectionLost("switch connection closed")
            conn.pending[xid] = req
        conn.send(E.serialize(msg, xid))
        return xid, req.future

    def _call(self, conn: _Conn, msg, kind: str, timeout: Optional[float] = None):
        xid, fut = self._request(conn, msg, kind)
        try:
            return fut.result(self.timeout if timeout is None else timeout)
        except FutureTimeout:
            with conn.lock:
                conn.pending.pop(xid, None)
            raise ChannelError(f"no {kind} from the switch within the timeout") from None

    def _bundle(self, conn: _Conn, entries: Iterable, timeout: float,
                before_commit: Optional[Callable[[float], None]] = None) -> int:
        """Open a bundle, add ``entries`` ((Flow, flow-mod bytes), made
        as they are taken), commit; return how many were added.  The
        bundle is opened once the first entry is made (no entries: nothing
        is sent).  The adds go out in chunks of BUNDLE_CHUNK bytes while
        the next ones are made, so the switch takes them in while the
        agent encodes (and computes: apply_stream) them; a cold start's
        table is megabytes.  If ``entries`` raises, the bundle is
        discarded and the error raised: nothing is applied.
        ``before_commit(wait)`` runs once the switch has checked every add
        (it may raise to discard the bundle).  ``timeout``: seconds to
        wait for an answer, plus _PER_FLOW_S for each flow sent."""
        it = iter(entries)
        first = next(it, None)  # (raises: nothing was opened)
        if first is None:
            return 0
        bid = next(self._bundle_ids) & 0xFFFFFFFF
        errors: list = []
        try:
            self._call(conn, E.bundle_ctrl(bid, E.BUNDLE_OPEN), "bundle_ctrl", timeout)
        except OpenFlowError as e:
            raise BundleRejected([(None, e.error)]) from None
        add_xids = []
        try:
            buf = bytearray()
            try:
                for f, inner in itertools.chain((first,), it):
                    xid = self._xid()
                    add_xids.append(xid)
                    conn.error_sinks[xid] = (errors, f)
                    buf += E.bundle_add_bytes(bid, inner, xid)
                    if len(buf) >= BUNDLE_CHUNK:
                        conn.send(buf)
                        buf = bytearray()
            except ChannelError:
                raise
            except Exception:
                self._discard(conn, bid)  # a flow refused by the encoder
                raise
            if buf:
                conn.send(buf)
            wait = timeout + len(add_xids) * _PER_FLOW_S
            # Adds are checked as they arrive; the barrier reply comes after
            # every error they caused.
            self._call(conn, E.barrier_request(), "barrier_reply", wait)
            if errors:
                self._discard(conn, bid)
                raise BundleRejected(errors)
            if before_commit is not None:
                try:
                    before_commit(wait)
                except ChannelError as e:
                    if not isinstance(e, ConnectionLost):
                        self._discard(conn, bid)
                    raise
            try:
                self._call(conn, E.bundle_ctrl(bid, E.BUNDLE_COMMIT), "bundle_ctrl", wait)
            except OpenFlowError as e:
                raise BundleRejected(errors + [(None, e.error)]) from None
        finally:
            for xid in add_xids:
                conn.error_sinks.pop(xid, None)
        return len(add_xids)

    def _ensure_meters(self, conn: _Conn, ids: set, timeout: float) -> None:
        """Create the meters ``ids`` before flows that use them are sent
        (a flow naming a missing meter is refused).  One that exists (an
        earlier agent made it; the switch keeps meters as it keeps flows)
        is set to our rate instead.  Meters are never deleted: deleting
        one deletes the flows that use it, and an unused one costs
        nothing."""
        for command in (E.METER_ADD, E.METER_MODIFY):
            errors: list = []
            xids = []
            buf = bytearray()
            try:
                for mid in sorted(ids):
                    xid = self._xid()
                    xids.append(xid)
                    conn.error_sinks[xid] = (errors, mid)
                    buf += E.serialize(E.meter_mod(mid, self.meter_rate, self.meter_burst,
                                                   command), xid)
                conn.send(bytes(buf))
                self._call(conn, E.barrier_request(), "barrier_reply", timeout)
            finally:
                for xid in xids:
                    conn.error_sinks.pop(xid, None)
            if command == E.METER_ADD:
                self.stats["meters_created"] += len(ids) - len(errors)
            exists = {mid for mid, err in errors if E.is_meter_exists(err)}
            if len(exists) != len(errors):
                raise BundleRejected([(None, err) for _, err in errors
                                      if not E.is_meter_exists(err)])
            conn.meters.update(ids - exists)
            if not exists:
                return
            ids = exists
        conn.meters.update(ids)

    def _discard(self, conn: _Conn, bid: int) -> None:
        try:
            self._call(conn, E.bundle_ctrl(bid, E.BUNDLE_DISCARD), "bundle_ctrl")
        except ChannelError as e:
            LOG.warning("discarding bundle %d: %s", bid, e)

    def _post(self, fn, *args) -> None:
        self._events.put((fn, args))

    def _put_packet_in(self, item, block: bool = False) -> None:
        try:
            self._packet_ins.put(item, block=block, timeout=1.0 if block else None)
        except queue.Full:
            self.stats["packet_in_dropped"] += 1

    def _packet_in_loop(self) -> None:
        """Packet-ins are parsed and handled here, apart from the reader
        (which must keep up with barriers and flow-stats) and from
        connection events: a flood of them fills a bounded queue and the
        excess is dropped unparsed."""
        while True:
            raw = self._packet_ins.get()
            if raw is None:
                return
            handler = self._packet_in_handler
            if handler is None:
                continue
            try:
                msg = E.parse(raw)
                if msg.kind == "packet_in":
                    handler(msg.packet_in)
            except Exception:
                LOG.exception("packet-in handler %r failed", handler)

    def _event_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                LOG.exception("OpenFlow event handler %r failed", fn)

    # ------------------------------------------------------------ accept
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.1)
                continue
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._adopt(sock, peer)

    def _connect_loop(self) -> None:
        """Connect to the switch; once connected, wait for the connection
        to end, then connect again at once (and back off while that fails:
        50 ms doubling up to 1 s)."""
        delay = 0.0
        while not self._stopping.is_set():
            if delay:
                self._stopping.wait(delay)
                if self._stopping.is_set():
                    return
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn = None
            try:
                sock.connect(self.connect_path)
            except OSError as e:
                sock.close()
                if not delay:
                    LOG.info("cannot connect to the switch at %s (%s); trying again",
                             self.connect_path, e)
            else:
                conn = self._adopt(sock, self.connect_path)
            if conn is None:
                delay = min(max(delay * 2, 0.05), 1.0)
                continue
            delay = 0.0
            conn.closed.wait()

    def _adopt(self, sock, peer) -> Optional[_Conn]:
        """A new connection to the switch: handshake, then it replaces the
        current one and the connect handlers run.  None if the handshake
        failed (the socket is closed)."""
        conn = _Conn(sock, peer, next(self._generations))
        conn.reader = threading.Thread(
            target=self._read_loop, args=(conn,), name=f"of-read-{conn.generation}", daemon=True
        )
        conn.reader.start()
        try:
            self._handshake(conn)
        except ChannelError as e:
            LOG.warning("OpenFlow handshake with %s failed: %s", peer, e)
            conn.close()
            return None
        with self._conn_cv:
            old, self._conn = self._conn, conn
            self._conn_cv.notify_all()
        if old is not None and not old.closed.is_set():
            old.close()
        LOG.info(
            "switch %016x connected from %s (generation %d)",
            conn.datapath_id or 0,
            peer,
            conn.generation,
        )
        for h in self._connect_handlers:
            self._post(h, conn.datapath_id, conn.generation)
        return conn

    def _handshake(self, conn: _Conn) -> None:
        conn.send(E.serialize(E.hello(), self._xid()))
        feats = self._call(conn, E.features_request(), "features_reply")
        conn.datapath_id = feats.datapath_id
        want = self.expected_datapath_id
        if want is not None and feats.datapath_id != want:
            raise ChannelError(f"switch {feats.datapath_id:016x} is not the bridge {want:016x}")
        conn.send(E.serialize(E.set_config(), self._xid()))
        conn.send(E.serialize(E.set_async(), self._xid()))  # no invalid-TTL packet-ins
        self._call(conn, E.barrier_request(), "barrier_reply")

    # ------------------------------------------------------------ read
    def _read_loop(self, conn: _Conn) -> None:
        buf = bytearray()
        sock = conn.sock
        probing = False
        try:
            while not conn.closed.is_set():
                readable, _, _ = select.select([sock], [], [], self.echo_interval)
                if not readable:
                    if probing:
                        LOG.warning(
                            "switch %s silent for %.1fs, closing", conn.peer, 2 * self.echo_interval
                        )
                        break
                    probing = True
                    conn.send(E.serialize(E.echo_request(), self._xid()))
                    continue
                data = sock.recv(1 << 16)
                if not data:
                    break
                probing = False
                buf += data
                while len(buf) >= 8:
                    length = _HEADER.unpack_from(buf)[2]
                    if length < 8:
                        raise ChannelError(f"bad OpenFlow length {length}")
                    if len(buf) < length:
                        break
                    msg = bytes(buf[:length])
                    del buf[:length]
                    self._handle(conn, msg)
        except (OSError, ChannelError) as e:
            if not conn.closed.is_set():
                LOG.info("switch connection %s: %s", conn.peer, e)
        finally:
            conn.close()
            was_current = False
            with self._conn_cv:
                if self._conn is conn:
                    self._conn = None
                    was_current = True
                self._conn_cv.notify_all()
            if was_current:
                LOG.info("switch disconnected (generation %d)", conn.generation)
                for h in self._disconnect_handlers:
                    self._post(h, conn.generation)

    def _handle(self, conn: _Conn, raw: bytes) -> None:
        if raw[1] == OFPT_PACKET_IN:
            self.stats["packet_in"] += 1
            if self._packet_in_handler is not None:
                self._put_packet_in(raw)
            return
        try:
            msg = E.parse(raw)
        except Exception:
            LOG.exception("cannot parse an OpenFlow message from the switch")
            xid = _HEADER.unpack_from(raw)[3]
            self._fail(conn, xid, ChannelError("unparseable reply from the switch"))
            return
        kind = msg.kind
        if kind == "echo_request":
            conn.send(E.serialize(E.echo_reply(msg.data), msg.xid))
            return
        if kind == "error":
            sink = conn.error_sinks.get(msg.xid)
            if sink is not None:
                sink[0].append((sink[1], msg.error))
                return
            with conn.lock:
                req = conn.pending.pop(msg.xid, None)
            if req is not None:
                req.future.set_exception(OpenFlowError(msg.error, req.kind))
            else:
                LOG.warning("OpenFlow error from the switch (xid %d): %s", msg.xid, msg.error)
            return
        with conn.lock:
            req = conn.pending.get(msg.xid)
            if req is None or req.kind != kind:
                if kind not in ("hello", "port_status", "echo_reply", "other"):
                    LOG.debug("unsolicited %s (xid %d)", kind, msg.xid)
                return
            if kind == "flow_stats":
                req.parts.append(msg)
                if msg.more:
                    return
                result = req.parts
            else:
                result = msg
            del conn.pending[msg.xid]
        req.future.set_result(result)

    def _fail(self, conn: _Conn, xid: int, exc: Exception) -> None:
        with conn.lock:
            req = conn.pending.pop(xid, None)
        if req is not None:
            req.future.set_exception(exc)
