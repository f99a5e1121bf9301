"""A WSGI server on plain OS threads, one per open connection, for
quantum-ovs-agent-api.

Agents long-poll: each holds a connection that waits, most of the time,
for a change.  Here each connection is a thread blocked in its own read
or on the change feed's event, so a change that wakes a thousand agents
costs a thousand short answers and nothing per connection that is not
woken.  (Under waitress, whose one event loop visited every open
connection at each of its turns, the same change cost about ten seconds
of CPU at 1,000 agents: bench/fanout.py --agent-api standalone.)

HTTP/1.1 (and 1.0), read strictly: a request line of exactly three parts,
header lines ``name: value`` with a token for a name (no space before
the colon, no line folding), lines ending in CRLF, at most one
Content-Length (digits only) and at most one Transfer-Encoding (only
``chunked``, never with a Content-Length), chunk sizes of hex digits,
each chunk followed by its CRLF.  Anything else is a 400 (505 for
another HTTP version, 501 for another transfer coding) and the
connection is closed: no two readings of one request's framing.  Bodies
are read whole before the application is called (so that a bad or
too large body is this server's 400 / 413, not an error inside the
application).  Keep-alive, pipelined requests, ``Expect: 100-continue``
and HEAD work as the protocol has them.

Limits: at most ``max_connections`` open connections (one more is answered
503 at once and closed), a request head of at most MAX_HEAD bytes and
MAX_HEADERS lines (431) read before ``header_timeout`` has passed (which
also ends idle keep-alive connections), ``socket_timeout`` for reading a
body and for sending an answer, a body of at most ``max_body`` bytes
(413).  Errors this server answers itself are NeutronError bodies, as
the API's.  Proxy headers are dropped (nothing here trusts a proxy), and
so are header names with an underscore (which could pass for a dash)."""

from __future__ import annotations

import errno
import io
import json
import logging
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate

LOG = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # bytes
MAX_HEAD = 64 * 1024  # bytes: the request line and the headers together
MAX_HEADERS = 100
MAX_CHUNKS = 100000  # in one chunked body
MIN_BODY_RATE = 64 * 1024  # bytes/s: a body's whole deadline (beyond socket_timeout)
_PROXY_HEADERS = frozenset({"HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
                            "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
                            "HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_PREFIX"})
_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 408: "Request Timeout",
            413: "Payload Too Large", 417: "Expectation Failed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable",
            505: "HTTP Version Not Supported"}
_ERROR_TYPES = {400: "HTTPBadRequest", 408: "RequestTimeout", 413: "HTTPRequestEntityTooLarge",
                417: "HTTPExpectationFailed", 431: "RequestHeaderFieldsTooLarge",
                500: "HTTPInternalServerError", 501: "HTTPNotImplemented",
                503: "ServiceUnavailable", 505: "HTTPVersionNotSupported"}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)\Z")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(;[^\r\n]*)?\r\n\Z")
_STATUS = re.compile(r"[1-5][0-9][0-9] [^\r\n]*\Z")
_HEADER_VALUE = re.compile(r"[^\r\n\x00]*\Z")


def error_body(code: int, message: str) -> bytes:
    return json.dumps({"NeutronError": {"type": _ERROR_TYPES.get(code, "HTTPError"),
                                        "message": message, "detail": ""}}).encode()


def error_answer(code: int, message: str, extra: str = "") -> bytes:
    """A whole answer of this server's own (a NeutronError body), after
    which the connection closes; ``extra``: more header lines."""
    body = error_body(code, message)
    return (f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}\r\n"
            f"Content-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nDate: {formatdate(usegmt=True)}\r\n"
            "Server: quantum-ovs\r\nConnection: close\r\n\r\n").encode() + body


class HttpError(Exception):
    """A request this server answers ``code`` itself (and then closes)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def framing(req):
    """Length, transfer coding, keep-alive and Expect of ``req`` (its
    ``headers``, a list of (name, value) with values stripped, and its
    ``version``): each framing header once at most, spelled one way only;
    else HttpError.  (quantum-ovs-server frames the requests eventlet reads
    by the same rules.)"""
    seen = {}
    for name, value in req.headers:
        low = name.lower()
        if low in ("content-length", "transfer-encoding"):
            if low in seen:
                raise HttpError(400, f"{name} is given more than once.")
            seen[low] = value
        elif low in ("connection", "expect"):
            seen[low] = (seen[low] + "," + value) if low in seen else value
    length, te = seen.get("content-length"), seen.get("transfer-encoding")
    if te is not None:
        if length is not None:
            raise HttpError(400, "Content-Length and Transfer-Encoding together.")
        if te.lower() != "chunked":
            raise HttpError(501, "Only the chunked transfer coding is served.")
        if req.version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request.")
    if length is not None and (not length.isdigit() or not length.isascii()):
        raise HttpError(400, "Bad Content-Length.")
    if length is not None and len(length) > 18:  # (int() of thousands of digits raises)
        raise HttpError(413, "The request body is too large.")
    req.length = int(length) if length is not None else 0
    req.chunked = te is not None
    conn = {t.strip().lower() for t in seen.get("connection", "").split(",")}
    req.close = "close" in conn or (req.version == "HTTP/1.0" and "keep-alive" not in conn)
    expect = seen.get("expect")
    if expect is not None and expect.strip().lower() != "100-continue":
        raise HttpError(417, "Only Expect: 100-continue is served.")
    req.expect = expect is not None and req.version == "HTTP/1.1"


class _Closed(Exception):
    """The client went away, or a read timed out: nothing to answer."""


class _Reader(io.RawIOBase):
    """The connection's socket, read with a deadline over a whole request
    head (``deadline``, time.monotonic()) or ``timeout`` per read."""

    def __init__(self, sock, timeout):
        self.sock, self.timeout, self.deadline = sock, timeout, None

    def readable(self):
        return True

    def readinto(self, b):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("request head deadline")
            self.sock.settimeout(left)
        else:
            self.sock.settimeout(self.timeout)
        return self.sock.recv_into(b)


class _Request:
    __slots__ = ("method", "target", "path", "query", "version", "headers", "close", "length",
                 "chunked", "expect")


class _Handler(socketserver.BaseRequestHandler):
    """One connection: its requests, one after the other."""

    def setup(self):
        self.sock = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = _Reader(self.sock, self.server.socket_timeout)
        self.rfile = io.BufferedReader(self.raw, 65536)

    def handle(self):
        server = self.server
        while True:
            self.raw.deadline = time.monotonic() + server.header_timeout
            try:
                req = self._head()
                if req is None:
                    return
                body = self._body(req)  # (under a deadline of its own)
            except HttpError as e:
                self._error(e.code, e.message)
                return
            except (_Closed, socket.timeout, OSError):
                return
            self.raw.deadline = None
            if self._serve(req, body) or req.close or server.stopping:
                return

    # ------------------------------------------------------------ reading
    def _line(self, budget):
        """One CRLF-ended line of the head, within ``budget`` bytes."""
        line = self.rfile.readline(budget + 1)
        if not line:
            raise _Closed()
        if len(line) > budget:
            raise HttpError(431, "The request head is too large.")
        if not line.endswith(b"\r\n"):
            if not line.endswith(b"\n"):
                raise _Closed()  # (it ended before the line did)
            raise HttpError(400, "Request lines end with CRLF.")
        return line

    def _head(self):
        budget = MAX_HEAD
        line = b""
        for _ in range(4):  # (a client may send CRLFs between requests)
            try:
                line = self._line(budget)
            except _Closed:
                return None
            budget -= len(line)
            if line != b"\r\n":
                break
        else:
            raise HttpError(400, "No request line.")
        parts = line[:-2].split(b" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] \
                or _BAD_VALUE.search(parts[1]):
            raise HttpError(400, "Bad request line.")
        version = _VERSION.match(parts[2])
        if version is None:
            raise HttpError(400, "Bad request line.")
        if version.group(1) != b"1":
            raise HttpError(505, "Only HTTP/1.0 and HTTP/1.1 are served.")
        req = _Request()
        req.method = parts[0].decode("ascii")
        req.target = target = parts[1].decode("latin-1")
        if target.startswith(("http://", "https://")):
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        if not target.startswith("/"):
            raise HttpError(400, "Bad request target.")
        req.path, _, req.query = target.partition("?")
        req.version = parts[2].decode("ascii")
        headers = []
        while True:
            line = self._line(budget)
            budget -= len(line)
            if line == b"\r\n":
                break
            if len(headers) >= MAX_HEADERS:
                raise HttpError(431, "Too many request headers.")
            if line[:1] in (b" ", b"\t"):
                raise HttpError(400, "Folded header lines are not accepted.")
            name, colon, value = line[:-2].partition(b":")
            if not colon or not _TOKEN.match(name):
                raise HttpError(400, "Bad header line.")
            value = value.strip(b" \t")
            if _BAD_VALUE.search(value):
                raise HttpError(400, "Bad header value.")
            headers.append((name.decode("ascii"), value.decode("latin-1")))
        req.headers = headers
        framing(req)
        return req

    def _body(self, req):
        limit = self.server.max_body
        if not req.chunked and req.length > limit:
            raise HttpError(413, "The request body is too large.")
        if req.expect and (req.chunked or req.length):
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        # The whole body within a deadline too (a byte now and then would
        # otherwise hold the connection's thread without end).
        size = limit if req.chunked else req.length
        self.raw.deadline = time.monotonic() + self.server.socket_timeout + \
            size / MIN_BODY_RATE
        if not req.chunked:
            body = self.rfile.read(req.length) if req.length else b""
            if len(body) != req.length:
                raise _Closed()
            return body
        body, chunks = bytearray(), 0
        while True:
            chunks += 1
            if chunks > MAX_CHUNKS:
                raise HttpError(400, "Too many chunks.")
            line = self.rfile.readline(1026)
            size = _CHUNK_SIZE.match(line)
            if size is None:
                if not line or not line.endswith(b"\n"):
                    raise _Closed()
                raise HttpError(400, "Bad chunk size line.")
            n = int(size.group(1), 16)
            if n == 0:
                break
            if len(body) + n > limit:
                raise HttpError(413, "The request body is too large.")
            data = self.rfile.read(n)
            if len(data) != n:
                raise _Closed()
            body += data
            if self.rfile.read(2) != b"\r\n":
                raise HttpError(400, "A chunk must end with CRLF.")
        budget = MAX_HEAD
        while True:  # trailers: read and dropped
            line = self._line(budget)
            budget -= len(line)
            if line == b"\r\n":
                break
            if line[:1] in (b" ", b"\t") or not _TOKEN.match(line.partition(b":")[0]):
                raise HttpError(400, "Bad trailer line.")
        return bytes(body)

    # ------------------------------------------------------------ answering
    def _environ(self, req, body):
        server = self.server
        env = {
            "REQUEST_METHOD": req.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(req.path, "latin-1"),
            "QUERY_STRING": req.query,
            "SERVER_NAME": server.server_name,
            "SERVER_PORT": str(server.server_port),
            "SERVER_PROTOCOL": req.version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if body or req.length or req.chunked:
            env["CONTENT_LENGTH"] = str(len(body))
        for name, value in req.headers:
            if "_" in name:
                continue
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH" or key == "TRANSFER_ENCODING":
                continue  # (framed above: the body's length is CONTENT_LENGTH)
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
                if key in _PROXY_HEADERS:
                    continue
            env[key] = env[key] + "," + value if key in env else value
        return env

    def _serve(self, req, body):
        """Answer ``req``; True if the connection is to be closed."""
        env = self._environ(req, body)
        answer, written = [], []

        def start_response(status, headers, exc_info=None):
            if answer and not exc_info:
                raise AssertionError("start_response called twice without exc_info")
            answer[:] = [status, list(headers)]
            return written.append

        server = self.server
        with server.busy:
            server.in_app += 1
        try:
            result = server.app(env, start_response)
            try:
                if isinstance(result, (list, tuple)):
                    out = b"".join(written) + b"".join(result)
                else:
                    items = iter(result)
                    first = b"".join(written) + next(items, b"")  # (start_response called)
                    status, headers = answer
                    if self._streamed(req, status, headers):
                        return self._stream(req, status, headers, first, items)
                    out = first + b"".join(items)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = answer
            head, close = self._head_bytes(req, status, headers, len(out))
            if req.method == "HEAD" or status[:3] in ("204", "304") or status[0] == "1":
                out = b""
        except Exception:  # noqa: BLE001 - a bare 500, logged; never a traceback sent
            LOG.exception("%s %s: no answer", req.method, req.target)
            self._error(500, "The server could not answer the request.")
            close = True
        else:
            close = self._send(head + out) or close
        finally:
            # (after the answer is sent: close(grace) waits for it)
            with server.busy:
                server.in_app -= 1
                server.busy.notify_all()
        return close

    @staticmethod
    def _streamed(req, status, headers):
        """Whether an answer of unknown length (not a list) is written as
        it is yielded: one with a body and no Content-Length (a streamed
        agent poll); otherwise it is gathered first."""
        return req.method != "HEAD" and status[:3] not in ("204", "304") and \
            status[0] != "1" and not any(k.lower() == "content-length" for k, _v in headers)

    def _stream(self, req, status, headers, first, items):
        """Write ``first`` and each of ``items`` as it comes: as chunks
        (HTTP/1.0: until the connection closes); True (close) after an
        error, which can only end the connection once the head is out."""
        chunked = req.version == "HTTP/1.1"
        head, close = self._head_bytes(req, status, headers, None, chunked)

        def framed(body):  # (an empty chunk would end the answer: none)
            return b"%x\r\n%s\r\n" % (len(body), body) if chunked and body else body

        try:
            if self._send(head + framed(first)):
                return True
            for body in items:
                if body and self._send(framed(body)):
                    return True
        except Exception:  # noqa: BLE001 - the head is out: end the connection, logged
            LOG.exception("%s %s: answer cut", req.method, req.target)
            return True
        return (chunked and self._send(b"0\r\n\r\n")) or close

    def _head_bytes(self, req, status, headers, length, chunked=False):
        """The answer's status line and headers; and whether the
        connection closes after it.  ``length`` None: a stream's
        (``chunked``, or until the connection closes)."""
        if not isinstance(status, str) or not _STATUS.match(status):
            raise ValueError(f"bad status {status!r}")
        names = set()
        lines = [f"HTTP/1.1 {status}\r\n"]
        close = req.close or self.server.stopping
        for k, v in headers:
            if not isinstance(k, str) or not _TOKEN.match(k.encode("latin-1")) or \
                    not isinstance(v, str) or not _HEADER_VALUE.match(v):
                raise ValueError(f"bad header {k!r}: {v!r}")
            low = k.lower()
            names.add(low)
            if low == "connection":
                close = close or "close" in v.lower()
                continue
            lines.append(f"{k}: {v}\r\n")
        if length is None:
            if chunked:
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                close = True
        elif "content-length" not in names and status[:3] not in ("204", "304"):
            lines.append(f"Content-Length: {length}\r\n")
        if "date" not in names:
            lines.append(f"Date: {formatdate(usegmt=True)}\r\n")
        lines.append("Server: quantum-ovs\r\n")
        if close:
            lines.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1"), close

    def _error(self, code, message):
        self._send(error_answer(code, message))
        LOG.info("%s: answered %d (%s)", self.client_address[0], code, message)

    def _send(self, data):
        """Send ``data``; True if that failed (the connection is over)."""
        try:
            self.sock.settimeout(self.server.socket_timeout)
            self.sock.sendall(data)
            return False
        except OSError:
            return True


class ThreadedServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """``app`` on ``host``:``port``, a thread per open connection, at most
    ``max_connections`` open at once."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 4096

    def __init__(self, app, host, port, max_connections, header_timeout, socket_timeout,
                 max_body=MAX_BODY):
        self.app = app
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.socket_timeout = socket_timeout
        self.max_body = max_body
        self.open = 0
        self.in_app = 0  # requests inside the application now
        self.busy = threading.Condition()
        self.stopping = False
        self._lock = threading.Lock()
        self._accept_errors = 0
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def effective_port(self):
        return self.server_address[1]

    def get_request(self):
        try:
            return super().get_request()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of descriptors: try again a little later (at once
                # would spin), and say so now and then.
                if self._accept_errors % 100 == 0:
                    LOG.warning("cannot accept a connection: %s", e)
                self._accept_errors += 1
                time.sleep(0.05)
            raise

    def process_request(self, request, client_address):
        with self._lock:
            full = self.open >= self.max_connections
            if not full:
                self.open += 1
        if full:
            _refuse(request, "too many connections")
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            LOG.warning("cannot serve a connection from %s", client_address[0], exc_info=True)
            self._closed()
            _refuse(request, "no thread for the connection")

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def _closed(self):
        with self._lock:
            self.open -= 1

    def handle_error(self, request, client_address):
        LOG.warning("a connection from %s ended with an error", client_address[0],
                    exc_info=True)

    def run(self):
        self.serve_forever(poll_interval=0.5)

    def close(self, grace=0.0):
        """Stop accepting; then wait up to ``grace`` seconds for the
        requests inside the application to be answered (keep-alive
        connections close after their answer)."""
        self.stopping = True
        self.server_close()
        deadline = time.monotonic() + grace
        with self.busy:
            while self.in_app and time.monotonic() < deadline:
                self.busy.wait(deadline - time.monotonic())


def _refuse(sock, what):
    """503 at once on a connection that is not served, and close it
    (after reading what the client sent already: closing a socket with
    unread data would reset the connection, and the 503 with it)."""
    try:
        sock.settimeout(0.01)
        sock.sendall(error_answer(503, f"The server is busy ({what}); retry the request.",
                                  "Retry-After: 1\r\n"))
        sock.shutdown(socket.SHUT_WR)
        # (bounded: a client that keeps sending must not hold the accept loop)
        deadline, left = time.monotonic() + 0.05, 65536
        while left > 0 and time.monotonic() < deadline:
            data = sock.recv(left)
            if not data:
                break
            left -= len(data)
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
