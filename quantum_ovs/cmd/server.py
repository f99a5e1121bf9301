"""quantum-ovs-server: the API server.

The only module that imports eventlet.  With api_workers > 1 the parent
binds the socket, forks the workers and supervises them; each worker
opens its own database connections after the fork.  SIGTERM stops it
gracefully: no new connections, the requests in progress finished (for
up to client_socket_timeout), exit 0 (_GracefulStop, _supervise).
"""

import eventlet

eventlet.monkey_patch()

import collections  # noqa: E402
import ctypes  # noqa: E402
import http.client  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import mmap  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402 (green: eventlet patched it)
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
import urllib.parse  # noqa: E402

import eventlet.hubs  # noqa: E402
import eventlet.patcher  # noqa: E402
from eventlet.support import greenlets as greenlet  # noqa: E402
import eventlet.semaphore  # noqa: E402
import eventlet.wsgi  # noqa: E402

from oslo_db import exception as db_exc  # noqa: E402

from quantum_ovs import config, exceptions, log, service  # noqa: E402
from quantum_ovs.api import agent_api  # noqa: E402
from quantum_ovs.db import changefeed, migration  # noqa: E402
from quantum_ovs.wsgi import threaded  # noqa: E402

LOG = logging.getLogger("quantum_ovs.server")
_select = eventlet.patcher.original("select")  # poll(0) on the listening socket
_os = eventlet.patcher.original("os")  # a write from a signal handler (never a switch)


class _WsgiLog:
    """eventlet.wsgi writes its own access lines; we log ours instead."""

    def write(self, msg):
        msg = msg.rstrip()
        if msg and "Traceback" in msg:
            LOG.error(msg)

    def flush(self):
        pass


class _Replay:
    """A request's head read already, then the connection's stream."""

    def __init__(self, lines, fp):
        self.lines, self.fp = collections.deque(lines), fp

    def readline(self, size=-1):
        if self.lines:
            return self.lines.popleft()
        return self.fp.readline(size)


# A header line the standard library's parser takes as it is: a name of
# the characters it allows (without ':'), the value to the end of the line.
_HEADER_LINE = re.compile(rb"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n")
_VERSIONS = ("HTTP/1.1", "HTTP/1.0")


class _Protocol(eventlet.wsgi.HttpProtocol):
    """A client that fails the TLS handshake (wrong CA, plain HTTP on the
    HTTPS port) is one log line, not a traceback from the hub.

    A request's head is parsed without the email package when it is
    plain (a printable request line of three words, HTTP/1.x, header
    lines "Name: value" and no Expect header): the same command, path,
    version, headers and keep-alive decision as the standard library's
    parse_request makes (which takes any other head, read again), at a
    fraction of its cost (~25 us of the ~120 us eventlet spends on each
    request; every woken agent's next poll is one)."""

    def handle(self):
        try:
            super().handle()
        except ssl.SSLError as e:
            LOG.info("TLS connection from %s failed: %s", self.client_address[0], e)

    def parse_request(self):
        return self._parse_head() and self._framed()

    def _framed(self):
        """Whether the request's framing headers say one thing, by the
        rules of this project's threaded server (threaded.framing:
        Content-Length and Transfer-Encoding once at most, a length of
        digits, no other coding than chunked...); else its 400 (or 413,
        417, 501) is answered and the connection closed.  eventlet takes
        the first of two Content-Length headers: a proxy in front that
        takes the other would read another request out of the body
        (RFC 9112 6.3: 400 and close)."""
        req = types.SimpleNamespace(
            headers=[(k, v.strip(" \t")) for k, v in self.headers._headers],
            version=self.request_version)
        try:
            threaded.framing(req)
        except threaded.HttpError as e:
            self.close_connection = 1
            self.wfile.write(threaded.error_answer(e.code, e.message))
            self.wfile.flush()
            LOG.info("%s: answered %d (%s)", self.client_address[0], e.code, e.message)
            return False
        return True

    def _parse_head(self):
        # (What the standard library sets first, whatever follows.)
        self.plain_head = False
        self.command = None
        self.request_version = self.default_request_version
        self.close_connection = True
        raw = self.raw_requestline
        if not raw.isascii():
            return super().parse_request()
        requestline = raw.decode("ascii").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in _VERSIONS or words[1].startswith("//") or \
                not requestline.isprintable():
            return super().parse_request()
        self.command, self.path, self.request_version = words
        self.requestline = requestline
        self.close_connection = not (words[2] == "HTTP/1.1" and
                                     self.protocol_version >= "HTTP/1.1")
        lines, fields = [], []
        while True:
            line = self.rfile.readline(http.client._MAXLINE + 1)
            lines.append(line)
            m = None
            if len(line) <= http.client._MAXLINE and len(lines) <= http.client._MAXHEADERS:
                if line in (b"\r\n", b"\n"):
                    break
                m = _HEADER_LINE.fullmatch(line)
            if m is None:
                # Anything else (continuation lines, the end of the stream,
                # what the standard library refuses): its way, from the start.
                self.rfile = _Replay(lines, self.rfile)
                return super().parse_request()
            fields.append((m.group(1).decode("ascii"), m.group(2).decode("iso-8859-1")))
        headers = self.MessageClass()
        headers._headers = fields  # what email's parser stores (compat32)
        headers.set_payload("")
        if "Expect" in headers:
            self.rfile = _Replay(lines, self.rfile)
            return super().parse_request()
        self.headers = headers
        conntype = headers.get("Connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        self.plain_head = True
        return True

    # ------------------------------------------------------------ agents' polls
    # A plain agent poll (GET /agent-api/v1/hosts/<host>/state, a plain head,
    # that FastPolls takes: see FastPolls.plain_poll) is answered here
    # without eventlet.wsgi's per-request machinery: the app gets an environ
    # of the request's own keys (its line and headers, as get_environ makes
    # them; no wsgi.input: such a poll has no body), and its answer (a list)
    # is written as eventlet.wsgi's handle_one_response writes a complete
    # answer: the same status line, headers (capitalized), Date, Connection
    # and body.  Anything else, and a poll FastPolls does not take (it
    # would go on to the whole stack), goes eventlet's way.

    fast_polls = None  # the app's FastPolls (serve() sets it)

    max_body = threaded.MAX_BODY  # the body limit (serve() sets it from the option)

    def get_environ(self):
        self.direct = False
        fast = self.fast_polls
        if fast is not None and self.plain_head and self.command == "GET" and \
                self.path.startswith(fast.PREFIX):
            env = self._poll_environ()
            try:
                args = fast.plain_poll(env)
            except Exception:  # noqa: BLE001 - the whole stack answers (see FastPolls)
                args = None
            if args is not None:
                env[fast.PLAIN_POLL] = args
                self.direct = True
                return env
        env = super().get_environ()
        body = env["eventlet.input"]
        if body.chunked_input or body.content_length:
            env["wsgi.input"] = _Body(self, body)
        return env

    def _poll_environ(self):
        """The keys eventlet.wsgi's get_environ makes of the request line
        and its headers (but Content-Type: FastPolls answers no body)."""
        path, sep, query = self.path.partition("?")
        env = {"REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "RAW_PATH_INFO": path,
               "PATH_INFO": urllib.parse.unquote(path, encoding="latin1"),
               "SERVER_PROTOCOL": "HTTP/1.0", "REMOTE_ADDR": self._remote_addr()}
        if sep:
            env["QUERY_STRING"] = query
        length = self.headers.get("content-length")
        if length:
            env["CONTENT_LENGTH"] = length
        for k, v in self.headers._headers:
            if "_" in k:
                continue
            k = "HTTP_" + k.replace("-", "_").upper()
            if k in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            v = v.strip(" \t\n\r")
            env[k] = env[k] + "," + v if k in env else v
        return env

    def _remote_addr(self):
        return eventlet.wsgi.addr_to_host_port(self.client_address)[0]

    def handle_one_response(self):
        if not self.direct:
            try:
                return super().handle_one_response()
            except exceptions.RequestTimeout:
                # The app answered without reading the body; what eventlet
                # reads of it then (to reach the next request) took too long.
                self.close_connection = 1
                return None
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return self._no_write

        try:
            result = self.server.app(self.environ, start_response)
            try:
                if isinstance(result, agent_api.Stream):
                    return self._stream(answer, result)
                body = b"".join(x.encode("ascii") if isinstance(x, str) else x
                                for x in result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = answer
        except Exception:  # noqa: BLE001 - as eventlet.wsgi: a bare 500, logged
            self.close_connection = 1
            self.server.log.info(traceback.format_exc())
            status, headers, body = "500 Internal Server Error", [
                ("Content-type", "text/plain"), ("Content-length", 0)], b""
        self.wfile.write(self._head(status, headers, len(body)) + body)
        self.wfile.flush()

    def _stream(self, answer, stream):
        """Write a streamed poll's answers (agent_api.Stream) as they come:
        as chunks (HTTP/1.0: until the connection closes, as eventlet.wsgi
        does).  An error after the head can only end the connection."""
        status, headers = answer
        chunked = self.request_version == "HTTP/1.1"
        if not chunked:
            self.close_connection = 1
        head = self._head(status, headers + ([("Transfer-Encoding", "chunked")] if chunked
                                             else []), None)

        def write(data):
            self.wfile.write(data)
            self.wfile.flush()

        try:
            write(head + (b"%x\r\n%s\r\n" % (len(stream.first), stream.first)
                          if chunked else stream.first))
            for body in stream.later:
                write(b"%x\r\n%s\r\n" % (len(body), body) if chunked else body)
            if chunked:
                write(b"0\r\n\r\n")
        except Exception as e:  # noqa: BLE001 - the head may be out: only the connection ends
            self.close_connection = 1
            if not isinstance(e, (BrokenPipeError, ConnectionResetError)):
                LOG.exception("agent poll %s: answer cut", self.path.split("?")[0])

    @staticmethod
    def _no_write(data):
        raise AssertionError("a plain agent poll is answered with a list")

    def _head(self, status, headers, length):
        """The status line and headers eventlet.wsgi writes before a
        complete answer of ``length`` bytes to a GET (its start_response,
        handle_one_response and write, in that order); ``length`` None:
        a stream's (chunked, or HTTP/1.0 until the connection closes)."""
        code = int(status.split(" ", 1)[0])
        if self.capitalize_response_headers:
            headers = [(_capitalized(k), v) for k, v in headers]
        bodyless = code in (204, 304) or 100 <= code < 200
        if not bodyless and length is not None and \
                "Content-Length" not in [k for k, _v in headers]:
            headers.append(("Content-Length", str(length)))
        out = [("%s %s\r\n" % (self.protocol_version, status)).encode()]
        out += [eventlet.wsgi._encode_header_line(h) for h in headers]
        names = [k.lower() for k, _v in headers]
        if "date" not in names:
            out.append(_date_line())
        client_conn = self.headers.get("Connection", "").lower()
        keep_alive = False
        if self.close_connection == 0 and self.server.keepalive and (
                client_conn == "keep-alive" or
                self.request_version == "HTTP/1.1" and client_conn != "close"):
            keep_alive = client_conn == "keep-alive"
        else:
            self.close_connection = 1
        if "content-length" not in names and not bodyless and length is not None:
            raise AssertionError("an agent poll's answer has a Content-Length")
        if self.close_connection:
            out.append(b"Connection: close\r\n")
        elif keep_alive:
            out.append(b"Connection: keep-alive\r\n")
        out.append(b"\r\n")
        return b"".join(out)


_caps = {}  # header name -> as eventlet.wsgi capitalizes it


def _capitalized(name):
    cap = _caps.get(name)
    if cap is None:
        cap = "-".join(x.encode("latin1").capitalize().decode("latin1")
                       for x in name.split("-"))
        if len(_caps) < 1000:
            _caps[name] = cap
    return cap


_date = [None, b""]  # (second, its Date line)


def _date_line():
    """eventlet.wsgi's Date header line, made once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, ("Date: %s\r\n" % eventlet.wsgi.format_date_time(now)).encode()]
    return _date[1]


class _Body:
    """A request's body as the application reads it (``wsgi.input``):
    eventlet's Input, with

    - a deadline for the whole body, counted from its first read: the
      client_socket_timeout and the time the length it declares takes at
      threaded.MIN_BODY_RATE (a chunked body: the body limit's), as the
      project's threaded server has it.  Each read has client_socket_timeout;
      without it a client sending a byte now and then would hold its
      connection (and its place under max_connections_per_client) for as
      long as it likes.  Past it: 408;
    - a chunk size that is not hexadecimal (eventlet's ChunkReadError) the
      client's error: 400, not a 500 with a traceback.

    Either ends the connection: where the next request would begin is
    not known.  (The deadline is on the connection's reads themselves, so
    it also bounds what eventlet reads of a body the application left.)"""

    def __init__(self, protocol, body):
        self._protocol, self._body = protocol, body
        size = protocol.max_body if body.chunked_input else body.content_length
        body.rfile = _Deadline(body.rfile, (protocol.server.socket_timeout or 0.0) +
                               size / threaded.MIN_BODY_RATE, self._expired)

    def _expired(self):
        self._protocol.close_connection = 1
        LOG.info("%s: the request body did not arrive in time (%s %s)",
                 self._protocol.client_address[0], self._protocol.command,
                 self._protocol.path.split("?", 1)[0][:200])

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except eventlet.wsgi.ChunkReadError:
            self._protocol.close_connection = 1
            raise exceptions.MalformedRequestBody(
                reason="a chunk size that is not hexadecimal") from None

    def read(self, length=None):
        return self._read(self._body.read, length)

    def readline(self, size=None):
        return self._read(self._body.readline, size)

    def readlines(self, hint=None):
        return self._read(self._body.readlines, hint)

    def __iter__(self):
        return iter(self.read, b"")

    def __getattr__(self, name):  # (the rest of eventlet's Input)
        return getattr(self._body, name)


class _Deadline:
    """The reads of a request's body (eventlet's Input reads its
    connection through this) within ``seconds`` of the first: past them,
    ``expired()`` and exceptions.RequestTimeout."""

    def __init__(self, rfile, seconds, expired):
        self._rfile, self._seconds, self._expired = rfile, seconds, expired
        self._at = None  # the deadline (time.monotonic())

    def _read(self, fn, arg):
        now = time.monotonic()
        if self._at is None:
            self._at = now + self._seconds
        if now < self._at:
            timer = eventlet.Timeout(self._at - now)
            try:
                return fn(arg) if arg is not None else fn()
            except eventlet.Timeout as e:
                if e is not timer:
                    raise
            finally:
                timer.cancel()
        self._expired()
        raise exceptions.RequestTimeout()

    def read(self, size=None):
        return self._read(self._rfile.read, size)

    def readline(self, size=None):
        return self._read(self._rfile.readline, size)

    def readlines(self, hint=None):
        return self._read(self._rfile.readlines, hint)


def _chunked_input(app):
    """eventlet's server decodes chunked request bodies: say so, as the
    WSGI convention has it, so that they are read (webob otherwise takes a
    body without Content-Length for none)."""
    def wrapped(environ, start_response):
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and \
                "CONTENT_LENGTH" not in environ:
            environ["wsgi.input_terminated"] = True
        return app(environ, start_response)
    return wrapped


# ---------------------------------------------------------------- capacity
# Every connection holds a green thread for as long as it is open, idle or
# not, and an agent's long poll holds one for up to [agent_api] max_wait.
# So that neither idle clients nor waiting agents can take the room other
# requests need: a deadline for each request's head (which also ends idle
# keep-alive connections), a cap on connections per process and per client
# address, a cap on waiting long polls, and a 503 at once past a cap (not
# a client left hanging unaccepted in the backlog).

def _busy_body(what):
    return json.dumps({"NeutronError": {
        "type": "ServiceUnavailable", "detail": "",
        "message": f"The server is busy ({what}); retry the request."}}).encode()


def _refuse(sock, what):
    """Answer 503 on a connection we do not serve, before reading it."""
    body = _busy_body(what)
    try:
        sock.settimeout(1.0)
        sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\n"
                     b"Content-Type: application/json\r\nRetry-After: 1\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        sock.shutdown(socket.SHUT_WR)
        # Read what the client sent (up to a bound) so that closing does
        # not reset the connection before it has read the answer.
        deadline = time.monotonic() + 1.0
        got = 0
        while got < 65536 and time.monotonic() < deadline:
            chunk = sock.recv(16384)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass
    finally:
        sock.close()


class _Admission(eventlet.GreenPool):
    """The pool eventlet's server spawns each accepted connection into:
    at most ``limit`` connections at once and ``per_client`` from one
    address (0: any number); one more is answered 503 and closed."""

    SPARE = 256  # green threads for the 503s themselves

    def __init__(self, limit, per_client, shares=None):
        super().__init__(limit + self.SPARE)
        self.limit, self.per_client = limit, per_client
        self.open = 0
        self.by_client = collections.Counter()
        self.shares = shares  # _Shares of this worker, or None

    def spawn(self, fn, connection, *args):
        addr, sock = connection[0], connection[1]
        client = addr[0] if isinstance(addr, tuple) else str(addr)
        if self.open >= self.limit:
            return super().spawn(_refuse, sock, "too many connections")
        if self.per_client and self.by_client[client] >= self.per_client:
            return super().spawn(_refuse, sock, "too many connections from one address")
        self.open += 1
        if self.shares is not None:
            self.shares.set(self.open)
        self.by_client[client] += 1
        gt = super().spawn(fn, connection, *args)
        gt.link(self._closed, client)
        return gt

    def _closed(self, _gt, client):
        self.open -= 1
        if self.shares is not None:
            self.shares.set(self.open)
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]


class _Shares:
    """How many connections each of the api_workers workers holds, in
    memory they share (mapped by the parent before it forks them): each
    writes its own count, and reads the others'."""

    SLACK = 2  # connections a worker may hold above the fewest before it defers

    def __init__(self, workers):
        self._mem = mmap.mmap(-1, 8 * workers)  # MAP_SHARED: seen by the forked workers
        self.counts = memoryview(self._mem).cast("q")
        self.slot = None

    def take(self, slot):
        """In a worker: its slot (a worker started again takes the slot of
        the one it replaces)."""
        self.slot = slot
        self.counts[slot] = 0

    def set(self, n):
        self.counts[self.slot] = n

    def over(self):
        """Whether this worker holds more than its share."""
        return self.counts[self.slot] > min(self.counts) + self.SLACK


class _Balanced:
    """A worker's listening socket (shared with the other workers, all
    woken by each connection) that takes a waiting connection at once
    only while this worker holds no more than its share of connections
    (_Shares); over it, it leaves the connection DEFER seconds to a worker
    holding fewer, and takes it if it is still there.

    Without it a worker busy answering when agents connected took fewer
    of them, and the others more: at 1,000 agents one of four workers held
    about two thirds of them, and a change waking every agent waited for
    that one worker's share (~one core) instead of being spread over all."""

    DEFER = 0.002  # seconds

    def __init__(self, sock, shares):
        self._sock, self._shares = sock, shares
        self._fileno = sock.fileno()

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def accept(self):
        while self._shares.over():
            eventlet.hubs.trampoline(self._fileno, read=True)  # one waits (not taken)
            eventlet.sleep(self.DEFER)
            if _pending(self._fileno):
                break  # the others are busy: ours
        return self._sock.accept()


def _pending(fileno):
    """Whether a connection waits on the listening socket ``fileno``."""
    p = _select.poll()
    p.register(fileno, _select.POLLIN)
    return bool(p.poll(0))


class _LongPolls:
    """At most ``limit`` agent long polls wait at once in this process, and
    at most a few of one host (agent_api.PollSlots); one more is answered
    503 at once (agents retry with a back-off).

    A burst of polls (every agent reconnecting at once, or polling again
    after a change that woke them all) starts a few at a time: each costs
    some CPU before it waits, and started together they would hold every
    other request until the last had started.  A poll yields at a gate,
    alone, unless one did less than YIELD_EVERY seconds ago, so that
    whatever else is ready (a REST request) runs at least that often.
    (Yielding at every poll went around the hub once for each: ~5% of the
    server's CPU when a default-group change wakes every agent.)"""

    PATH = re.compile(r"^/agent-api/v1/hosts/[^/]+/state/?$")
    YIELD_EVERY = 0.001  # seconds

    def __init__(self, app, limit):
        self.app, self.limit = app, limit
        self.slots = agent_api.PollSlots(limit)  # (per host: AgentAPI, once authenticated)
        self.gate = eventlet.semaphore.Semaphore(1)
        self.yielded = 0.0  # when a poll last yielded (monotonic)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or \
                not self.PATH.match(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        busy = self.slots.take()
        if busy is not None:
            body = _busy_body(busy)
            start_response("503 Service Unavailable", [
                ("Content-Type", "application/json"), ("Retry-After", "1"),
                ("Content-Length", str(len(body)))])
            return [body]
        result = None
        try:
            if self.gate.locked() or time.monotonic() - self.yielded >= self.YIELD_EVERY:
                with self.gate:
                    eventlet.sleep(0)
                    self.yielded = time.monotonic()
            result = self.app(environ, start_response)
            if isinstance(result, agent_api.Stream):
                # Each of its answers written as it comes (eventlet.wsgi's
                # own path would gather 4 KB).
                environ["eventlet.minimum_write_chunk_size"] = 0
            return result
        finally:  # a Stream: when it ends
            agent_api.release_when_answered(result, self.slots.release)

    @property
    def waiting(self):
        return self.slots.waiting


def _header_deadline(protocol, seconds):
    """``protocol`` with a deadline on each request's line and headers,
    counted from the moment the connection waits for it: a client that
    sends nothing, or a byte now and then (slowloris), is closed after
    ``seconds`` instead of holding its green thread forever."""

    class Protocol(protocol):
        def handle_one_request(self):
            self._deadline = eventlet.Timeout(
                seconds, socket.timeout("no complete request head in time"))
            try:
                return super().handle_one_request()
            finally:
                self._deadline.cancel()

        def parse_request(self):
            if self.conn_state[2] == eventlet.wsgi.STATE_REQUEST:
                # (eventlet's state once the request line is in.)  Not in
                # flight until its head is in: a stopping server closes a
                # connection still sending its head as it closes an idle
                # one, at once (_GracefulStop).
                self.conn_state[2] = eventlet.wsgi.STATE_IDLE
            if not super().parse_request():
                return False
            if self.conn_state[2] == eventlet.wsgi.STATE_CLOSE:
                # The server began stopping while the head came: the head
                # ended where the connection was cut (the standard library
                # takes the end of the stream for the end of a head), not
                # where the client would have ended it -- not served.
                self.close_connection = 1
                return False
            return True

        def get_environ(self):
            self._deadline.cancel()  # the head is in: the app takes its time
            if self.conn_state[2] == eventlet.wsgi.STATE_IDLE:
                self.conn_state[2] = eventlet.wsgi.STATE_REQUEST  # in flight
            return super().get_environ()

    return Protocol


class _GreenEvent:
    """What a waiting long poll waits on (changefeed.ChangeFeed.event_factory):
    threading.Event's set, clear, is_set and wait for the one green thread
    that waits on it, in one hub timer per wait.  (threading.Event, green
    under monkey_patch, takes a Condition, two green locks, an
    eventlet.Timeout and their timers for each wait; a default-group
    change wakes every waiting agent at once.)  Set and waited on in green
    threads of one hub only.

    The threads set are resumed in the order they were set (the change
    feed sets the most concerned first), BATCH at a time: the hub looks at
    its sockets between two batches (a host whose delta needs the
    database gets each reply after at most BATCH others, ~1 ms).  (Resumed all at once, every one of
    a thousand woken polls ran before any reply was read: a woken host
    waiting for the database to build its delta, or a request, waited for
    all of them.)"""

    __slots__ = ("_flag", "_waiting", "_late")
    BATCH = 4
    _ready = collections.deque()  # (event, thread) set and not resumed yet
    _later = collections.deque()  # the same, by set_later()
    _draining = [False]

    def __init__(self):
        self._flag = False
        self._waiting = None  # the green thread in wait(), if any
        self._late = False  # set by set_later, its thread not resumed yet

    def is_set(self):
        return self._flag

    def set(self):
        if self._late and self._waiting is not None:
            # Set later already, and now a change concerns it directly:
            # resumed with those.  (The entry left in _later finds the
            # thread gone: _resume checks.)
            self._flag = False
        self._set(_GreenEvent._ready)

    def set_later(self):
        """set(), for a thread resumed after those set() (whenever they
        were set): the change feed wakes the hosts a change does not
        concern directly (a default group's members changed) this way,
        so that the next change's own hosts do not wait for the last
        change's thousand."""
        self._set(_GreenEvent._later)

    def _set(self, queue):
        if not self._flag:
            self._flag = True
            g = self._waiting
            if g is not None:
                self._late = queue is _GreenEvent._later
                queue.append((self, g))
                if not self._draining[0]:
                    self._draining[0] = True
                    eventlet.hubs.get_hub().schedule_call_global(0, _GreenEvent._drain)

    @classmethod
    def _drain(cls):
        """(In the hub: a timer.)  Resume the next BATCH threads set (those
        set() first); the rest after the hub's next look at its sockets."""
        ready, later = cls._ready, cls._later
        try:
            for _ in range(cls.BATCH):
                if ready:
                    event, g = ready.popleft()
                elif later:
                    event, g = later.popleft()
                else:
                    break
                event._resume(g)
        finally:
            if ready or later:
                eventlet.hubs.get_hub().schedule_call_global(0, cls._drain)
            else:
                cls._draining[0] = False

    def clear(self):
        self._flag = False

    def _resume(self, g):
        # Only a thread still waiting here (a wake-up and the timeout may
        # both be due: whichever comes second finds it gone).
        if self._waiting is g:
            self._waiting = None
            self._late = False
            g.switch()

    def wait(self, timeout=None):
        if self._flag:
            return True
        hub = eventlet.hubs.get_hub()
        g = greenlet.getcurrent()
        timer = None if timeout is None else hub.schedule_call_global(
            max(0.0, timeout), self._resume, g)
        self._waiting = g
        try:
            hub.switch()
        finally:
            self._waiting = None
            self._late = False
            if timer is not None:
                timer.cancel()
        return self._flag


# ---------------------------------------------------------------- stopping
class _Cut(Exception):
    """The grace period of a stopping process is over."""


class _GracefulStop:
    """SIGTERM (systemctl stop or restart; to a worker, its parent's):
    no new connection is accepted (the listening socket is closed: a
    client is refused at once, not left in the backlog), idle connections
    and those still sending a request's head are closed, the agents'
    waiting long polls are answered now (an empty delta: they poll again,
    elsewhere), and the requests in flight are finished -- a POST whose
    body is being read gets its answer -- for up to ``grace`` seconds
    (client_socket_timeout: as long as the server waits on a client for
    one read or write); then serve() returns and the process exits 0.
    ``second_cuts``: a second signal ends the wait at once (one process
    under a terminal: Ctrl-C twice); a worker ignores it (systemd sends
    SIGTERM to every process of the unit, and the parent forwards its own).

    The handler only writes the signal's number to a pipe; a green thread
    does the rest (a handler runs wherever the main thread is, in the hub
    or in a request, where raising or switching would break it).  Closing
    idle connections and waiting for the others is eventlet.wsgi.server's
    own way out of its accept loop (on SystemExit)."""

    def __init__(self, sock, grace, states=None, second_cuts=True):
        self.sock, self.grace, self.states = sock, grace, states
        self.second_cuts = second_cuts
        self.main = greenlet.getcurrent()  # the green thread in eventlet.wsgi.server
        self.timer = self.watcher = None
        self.signals = ()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def install(self, signals):
        self.signals = tuple(signals)
        for signum in self.signals:
            signal.signal(signum, self._signalled)
        self.watcher = eventlet.spawn(self._watch)

    def _signalled(self, signum, _frame):
        try:
            _os.write(self._w, bytes([signum]))
        except OSError:  # (full: a stop is under way)
            pass

    def _next(self):
        """The number of the next signal (waiting for it)."""
        while True:
            eventlet.hubs.trampoline(self._r, read=True)
            try:
                return _os.read(self._r, 1)[0]
            except BlockingIOError:
                continue

    def _watch(self):
        signum = self._next()
        LOG.info("signal %d: accepting no more connections; finishing the requests in "
                 "progress (for up to %g s)", signum, self.grace)
        hub = eventlet.hubs.get_hub()
        self.timer = hub.schedule_call_global(self.grace, self._cut)
        hub.schedule_call_global(0, self._stop_accepting)
        if self.states is not None:
            self.states.stop()  # the waiting polls answered now
        if self.second_cuts:
            signum = self._next()
            LOG.warning("signal %d again: not waiting for the requests in progress", signum)
            hub.schedule_call_global(0, self._cut)

    def _stop_accepting(self):
        # (In the hub.)  The main green thread leaves eventlet's accept
        # loop, closes the idle connections and waits for the others; back
        # here once it waits, the listening socket is closed.
        self.main.throw(SystemExit(0))
        self.sock.close()

    def _cut(self):
        if not self.main.dead:
            self.main.throw(_Cut())

    def close(self):
        """(serve() is over.)  A signal from now on has its default effect."""
        for signum in self.signals:
            signal.signal(signum, signal.SIG_DFL)
        if self.timer is not None:
            self.timer.cancel()
        if self.watcher is not None:
            self.watcher.kill()  # (out of its wait on the pipe first)
        os.close(self._r)
        os.close(self._w)


def serve(conf, sock, shares=None, signals=(signal.SIGTERM, signal.SIGINT), worker=False):
    """Serve ``conf``'s app on ``sock`` (in a worker: with ``shares``)
    until one of ``signals`` (see _GracefulStop)."""
    changefeed.ChangeFeed.event_factory = _GreenEvent
    _db, _plugin, app = service.build(conf, migrate=False)
    service.freeze_startup()
    fast = agent_api.fast_polls_of(app)
    app = _LongPolls(_chunked_input(app), conf.max_long_polls)
    pool = _Admission(conf.max_connections, conf.max_connections_per_client, shares)
    if shares is not None:
        sock = _Balanced(sock, shares)
    protocol = _header_deadline(_Protocol, conf.client_header_timeout)
    protocol.fast_polls = fast
    protocol.max_body = conf.oslo_middleware.max_request_body_size
    stop = _GracefulStop(sock, conf.client_socket_timeout,
                         fast.api.states if fast is not None else None,
                         second_cuts=not worker)
    stop.install(signals)
    # debug=False: an error that escapes the app is a bare 500, never a
    # traceback sent to the client.  keepalive: the head deadline ends
    # idle connections; client_socket_timeout bounds each read and write
    # of bodies (and _Body a whole body).
    try:
        eventlet.wsgi.server(sock, app, custom_pool=pool, log=_WsgiLog(),
                             log_output=False, keepalive=True,
                             socket_timeout=conf.client_socket_timeout, debug=False,
                             protocol=protocol)
    except _Cut:
        LOG.warning("stopping with %d connection(s) still open: their requests are cut",
                    pool.open)
    finally:
        stop.close()
    LOG.info("stopped")


def _loopback_only(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def warn_unsafe(conf):
    """A loud warning when anyone who can reach the port is admin."""
    if conf.auth_strategy != "noauth" or _loopback_only(conf.bind_host):
        return False
    for line in (
            "*" * 72,
            f"auth_strategy = noauth and bind_host = {conf.bind_host}: ANY client that "
            "can reach",
            f"port {conf.bind_port} may act as ANY project, or as admin (X-Roles: admin), "
            "without",
            "credentials. Use auth_strategy = keystone, or bind_host = 127.0.0.1.",
            "*" * 72):
        LOG.warning(line)
    return True


PR_SET_PDEATHSIG = 1


def _pdeathsig():
    """prctl(2) from libc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    return prctl


def _die_with_parent(prctl, parent):
    """In a forked worker: SIGTERM when the parent dies, even by SIGKILL,
    so that no worker keeps serving (and holding the socket) on its own."""
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        LOG.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # it died before we asked
        os._exit(0)


def main(argv=None):
    conf = config.make_conf(sys.argv[1:] if argv is None else argv)
    log.setup(conf, "quantum-ovs-server")
    warn_unsafe(conf)
    service.raise_fd_limit(conf.max_connections + _Admission.SPARE + 256)
    db = service.make_database(conf)
    try:
        if conf.database.auto_migrate:
            # A database not up yet is waited for here, as build() would.
            db.wait_until_reachable(conf.database.max_retries, conf.database.retry_interval)
            migration.upgrade(db.engine)
    except db_exc.DBConnectionError as e:
        return _unreachable(conf, e)
    finally:
        db.dispose()
    sock = eventlet.listen((conf.bind_host, conf.bind_port), backlog=4096)
    if conf.ssl_cert_file:
        # Each connection's handshake runs in its own green thread (on its
        # first read), never in the accept loop.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(conf.ssl_cert_file, conf.ssl_key_file or None)
        sock = tls.wrap_socket(sock, server_side=True)
        LOG.info("serving HTTPS with %s", conf.ssl_cert_file)
    LOG.info("quantum-ovs-server listening on %s:%s with %d worker(s)",
             conf.bind_host, sock.getsockname()[1], conf.api_workers)
    sys.stdout.flush()
    if conf.api_workers <= 1:
        try:
            serve(conf, sock)
        except KeyboardInterrupt:
            pass
        except db_exc.DBConnectionError as e:
            return _unreachable(conf, e)
        return 0
    return _supervise(conf, sock)


def _unreachable(conf, err):
    """The database could not be reached in [database] max_retries
    attempts: one error line (no traceback) and exit status 1."""
    LOG.error("the database cannot be reached (%s) after %s attempt(s); exiting",
              str(err).splitlines()[0] if str(err) else type(err).__name__,
              "unlimited" if conf.database.max_retries < 0 else conf.database.max_retries + 1)
    return 1


def _supervise(conf, sock):
    """Fork ``conf.api_workers`` workers serving ``sock``, start another
    when one dies; on SIGTERM (or SIGINT) stop them (each stops
    gracefully, see _GracefulStop) and wait for each, by PID, up to its
    grace period and a little more (a worker stuck past it is killed)."""
    children = {}  # pid -> its slot in shares
    shares = _Shares(conf.api_workers)
    prctl = _pdeathsig()
    parent = os.getpid()

    def spawn():
        slot = min(set(range(conf.api_workers)) - set(children.values()))
        pid = os.fork()
        if pid == 0:
            shares.take(slot)
            # A hub of its own: monkey_patch() made the parent's, and its
            # epoll instance, inherited, would be one for every worker --
            # a worker woken for another's socket leaves its own request
            # waiting for its next timer (up to a minute when idle).
            eventlet.hubs.use_hub()
            # SIGTERM: at once until serve() serves (and stops gracefully
            # from then on).  SIGINT (a Ctrl-C reaches the whole process
            # group): the parent's to act on, by a SIGTERM to each worker.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _die_with_parent(prctl, parent)
            try:
                serve(conf, sock, shares, signals=(signal.SIGTERM,), worker=True)
            finally:
                os._exit(0)
        children[pid] = slot

    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(conf.api_workers):
        spawn()
    while children and not stopping:
        try:
            pid, _status = os.wait()  # (a signal's handler runs, the wait goes on)
        except ChildProcessError:
            break
        if children.pop(pid, None) is None:
            continue  # (not a worker)
        if not stopping:
            LOG.warning("worker %d exited; starting another", pid)
            time.sleep(0.1)
            spawn()
    if stopping:
        LOG.info("signal %d: stopping %d worker(s)", stopping[0], len(children))
        sock.close()  # (the workers' copies are closed as they stop)
        _reap(children, conf.client_socket_timeout + 5.0)
    return 0


def _reap(children, seconds):
    """SIGTERM to each of ``children`` (again: one forked as the signal came
    may have missed it; a stopping worker ignores another), then wait for
    each by PID; SIGKILL to any still there after ``seconds``."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + seconds
    for pid in list(children):
        while True:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() >= deadline:
                LOG.warning("worker %d did not stop in time: killed", pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
                break
            time.sleep(0.05)
        children.pop(pid, None)


if __name__ == "__main__":
    sys.exit(main())
