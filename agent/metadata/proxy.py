"""The metadata proxy: an HTTP server on a socket it is given (opened in
the proxy's namespace), one thread per connection, forwarding to nova's
metadata API with the headers nova's handler checks when
``[neutron] service_metadata_proxy = True``:

    X-Instance-ID             the asking port's device_id
    X-Tenant-ID               the port's project
    X-Instance-ID-Signature   HMAC-SHA256(shared secret, instance id), hex
    X-Forwarded-For           the instance's fixed IP

The asking instance is ``lookup(peer address)``: the address is the one
the flows wrote (the port's ofport and fixed IP index), never one the
instance chose.  Headers of the request that could claim another identity
are not forwarded; only the method, the path and query, a body (POST,
e.g. the password) and its Content-Type are (and Accept; a value with a
control character, a folded line's CR LF included, is not).

An instance is untrusted, so what it can hold is bounded:

* the whole request (request line, headers and body; the wait for it
  included) must arrive within ``_Handler.timeout`` seconds of the
  connection, else the connection is closed unanswered;
* the request line and headers are read by our own reader, at most
  ``MAX_HEAD`` bytes (past that: 431), the body at most ``MAX_BODY`` (413);
  the body is read before the request takes one of the slots below;
* more than ``max_requests`` requests in flight (to nova) are refused with
  503, and more than twice as many connections are closed at once;
* each port (``key(peer address)``: the ofport behind the address, so all
  of a port's addresses count together) has a share of both: at most
  ``port_max_connections`` connections and ``port_max_requests`` requests
  in flight, and never more than half of either pool, so one instance
  cannot leave the others of the host without metadata; and all the ports
  of one project together at most half of either pool, so neither can one
  project with many instances on the host.

As Neutron's proxy: nova down answers 503 at once; nova's 200, 400, 403,
404, 409, 502, 503 and 504 are passed on, anything else is a 500.  Nova
slower than ``timeout`` is a 504 after it (Neutron waits 60 s, then
500).  Nothing here takes a lock of the agent: ``lookup`` reads snapshots
the agent publishes.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import logging
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable, Hashable, Optional

from agent.metadata.settings import MetadataSettings

LOG = logging.getLogger(__name__)
MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 64 * 1024
FORWARDED_HEADERS = ("Content-Type", "Accept")
# What nova answers that reaches the instance as it is (Neutron's
# _proxy_request); any other status is a 500.
PASSED_STATUSES = frozenset({200, 400, 403, 404, 409, 502, 503, 504})
LINGER = 2.0  # seconds spent discarding what follows a request refused early


@dataclass(frozen=True)
class Requester:
    """Who asks: from the port the request entered by."""

    port_id: str
    instance_id: str
    project_id: str
    ip: str


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def clean_header(value: str) -> Optional[str]:
    """A request header value fit to pass on: a folded line unfolded, None
    when a control character remains."""
    if "\r" in value or "\n" in value:
        value = " ".join(value.split())
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        return None
    return value


class _Shares:
    """Counts per key (a port) and per group of keys (a project): at most
    ``total`` over all, ``each`` per key and half of ``total`` per group.
    A key is (group, key)."""

    def __init__(self, total: int, each: int):
        self.total = total
        self.each = max(1, min(each, total // 2))
        self.group_max = max(self.each, total // 2)
        self._used = 0
        self._by_key: dict = {}
        self._lock = threading.Lock()

    def take(self, key: tuple) -> bool:
        group = (None, key[0])  # (a group is never a key: no (group, key) is None-led)
        with self._lock:
            n = self._by_key.get(key, 0)
            g = self._by_key.get(group, 0)
            if self._used >= self.total or n >= self.each or g >= self.group_max:
                return False
            self._by_key[key] = n + 1
            self._by_key[group] = g + 1
            self._used += 1
            return True

    def give(self, key: tuple) -> None:
        with self._lock:
            n = self._by_key.get(key, 0)
            if not n:
                return
            for k in (key, (None, key[0])):
                left = self._by_key.get(k, 0) - 1
                if left > 0:
                    self._by_key[k] = left
                else:
                    self._by_key.pop(k, None)
            self._used -= 1


class _Deadline(Exception):
    """The request did not arrive in time (or the instance went away)."""


class _Reader:
    """Reads one request from the socket before a deadline: every recv
    waits at most what is left of it."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()

    def _recv(self, n: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Deadline("deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(n)
        except (socket.timeout, TimeoutError):
            raise _Deadline("deadline") from None
        except OSError as e:
            raise _Deadline(str(e)) from None
        if not data:
            raise _Deadline("closed")
        return data

    def head(self, limit: int) -> Optional[bytes]:
        """The request line and headers (with the empty line ending them),
        or None when more than ``limit`` bytes come without that end."""
        seen = 0
        while True:
            i = self.buf.find(b"\n\r\n", max(0, seen - 2))
            j = self.buf.find(b"\n\n", max(0, seen - 1))
            ends = [k for k in (i + 3 if i >= 0 else -1, j + 2 if j >= 0 else -1) if k >= 0]
            if ends:
                end = min(ends)
                if end > limit:
                    return None
                head = bytes(self.buf[:end])
                del self.buf[:end]
                return head
            if len(self.buf) > limit:
                return None
            seen = len(self.buf)
            self.buf += self._recv(4096)

    def body(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv(min(65536, n - len(self.buf)))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def drain(self, until: float) -> None:
        """Discard what the instance still sends (so that closing does not
        reset the connection before it reads the answer), until it closes
        or ``until``."""
        self.buf = bytearray()
        self.deadline = min(self.deadline, until)
        try:
            while True:
                self._recv(16384)
        except _Deadline:
            pass


class _Server(socketserver.TCPServer):
    def __init__(self, sock: socket.socket, handler, proxy: "MetadataProxy"):
        socketserver.TCPServer.__init__(self, sock.getsockname()[:2], handler,
                                        bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family
        self.proxy = proxy

    def process_request(self, request, client_address):
        """Each connection in a thread of its own, if its port's share of
        the connections (idle ones included) and the host's allow."""
        proxy = self.proxy
        key = proxy.key(client_address[0])
        if not proxy.conns.take(key):
            proxy.stats["busy"] += 1
            self.shutdown_request(request)
            return
        t = threading.Thread(target=self._serve, args=(request, client_address, key),
                             name="metadata-request", daemon=True)
        try:
            t.start()
        except Exception:
            proxy.conns.give(key)
            self.shutdown_request(request)
            raise

    def _serve(self, request, client_address, key):
        try:
            self.RequestHandlerClass(request, client_address, self, key)
        except Exception:  # noqa: BLE001 - one request's failure, logged
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.proxy.conns.give(key)

    def handle_error(self, request, client_address):
        LOG.debug("metadata request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "quantum-ovs-metadata"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # Seconds an instance may take to send its whole request (from the
    # connection on: waiting included), whatever the pace.
    timeout = 10

    def __init__(self, request, client_address, server, key: Hashable):
        self.key = key
        super().__init__(request, client_address, server)

    def setup(self):
        super().setup()
        self.rfile.close()  # the socket is read by our reader only
        self.rfile = io.BytesIO()
        self.reader = _Reader(self.connection, time.monotonic() + self.timeout)
        # Until a request line is parsed (for the access log and answers).
        self.requestline, self.request_version, self.command = "", "HTTP/1.0", None
        self.close_connection = True

    def handle(self):
        try:
            head = self.reader.head(MAX_HEAD)
        except _Deadline as e:
            LOG.debug("metadata request from %s not received: %s", self.client_address[0], e)
            return
        if head is None:
            self.server.proxy.stats["too_large"] += 1
            self.refuse(431, b"Request header fields too large\n")
            return
        # What the standard library parses is bounded by now.
        self.rfile = io.BytesIO(head)
        self.handle_one_request()

    def read_body(self, n: int) -> Optional[bytes]:
        try:
            return self.reader.body(n)
        except _Deadline as e:
            LOG.debug("metadata request body from %s not received: %s",
                      self.client_address[0], e)
            return None

    def refuse(self, status: int, data: bytes) -> None:
        """Answer before the request was read whole, then discard the rest
        for a while."""
        self.answer(status, data)
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            return
        self.reader.drain(time.monotonic() + LINGER)

    def answer(self, status, data, ctype="text/plain", head=False):
        self.connection.settimeout(self.timeout)  # the whole of each write
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except OSError:
            pass  # the instance went away (or reads too slowly)

    def send_error(self, code, message=None, explain=None):
        # The standard library's parse errors: answered as ours, and the
        # request's rest (if any) discarded rather than reset.
        self.refuse(code, ((message or "Bad Request") + "\n").encode("latin-1", "replace"))

    def log_message(self, fmt, *args):  # the access log at debug, not stderr
        LOG.debug("metadata %s: " + fmt, self.client_address[0], *args)

    def do_GET(self):
        self.server.proxy.serve(self, with_body=False)

    def do_HEAD(self):
        self.server.proxy.serve(self, with_body=False)

    def do_POST(self):
        self.server.proxy.serve(self, with_body=True)


class MetadataProxy:
    def __init__(self, settings: MetadataSettings,
                 lookup: Callable[[str], Optional[Requester]],
                 key: Optional[Callable[[str], Hashable]] = None):
        """``key(peer address)``: whose share a connection counts in (the
        port behind it); the address itself by default."""
        self.s = settings
        self.lookup = lookup
        self.port_key = key or (lambda address: address)
        self.stats = {"requests": 0, "unknown": 0, "upstream_errors": 0, "timeouts": 0,
                      "busy": 0, "too_large": 0}
        self.slots = _Shares(settings.max_requests, settings.port_max_requests)
        self.conns = _Shares(2 * settings.max_requests, settings.port_max_connections)
        self._ssl = self._ssl_context() if settings.nova_protocol == "https" else None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ life
    def start(self, sock: socket.socket) -> "MetadataProxy":
        """Serve on ``sock`` (bound and listening) from a thread of its own."""
        self._server = _Server(sock, _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="metadata-proxy", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def key(self, address: str) -> tuple:
        """The shares a connection from ``address`` counts in: (its
        project, its port); a port of no known project is a project of
        its own."""
        port = self.port_key(address)
        who = self.lookup(address)
        return (who.project_id if who is not None and who.project_id else port), port

    # ------------------------------------------------------------ requests
    def serve(self, h: _Handler, with_body: bool) -> None:
        self.stats["requests"] += 1
        body = None
        if with_body:
            # Read whole (within the request's deadline) before it takes a
            # slot: a slow body holds its connection only.
            try:
                n = int(h.headers.get("Content-Length") or 0)
            except ValueError:
                n = -1
            if n < 0:
                return h.refuse(400, b"Bad Content-Length\n")
            if n > MAX_BODY:
                return h.refuse(413, b"Request body too large\n")
            body = h.read_body(n)
            if body is None:
                return None  # not sent in time: closed unanswered
        who = self.lookup(h.client_address[0])
        if who is None or not who.instance_id:
            self.stats["unknown"] += 1
            LOG.info("metadata request from %s: no instance on that port", h.client_address[0])
            return h.answer(404, b"Not Found\n")
        if not self.slots.take(h.key):
            self.stats["busy"] += 1
            return h.answer(503, b"Too many metadata requests in flight\n")
        try:
            status, ctype, data = self._forward(h.command, h.path, who, body, h.headers)
        finally:
            self.slots.give(h.key)
        return h.answer(status, data, ctype, head=h.command == "HEAD")

    def headers_for(self, who: Requester) -> dict:
        return {"X-Forwarded-For": who.ip, "X-Instance-ID": who.instance_id,
                "X-Tenant-ID": who.project_id,
                "X-Instance-ID-Signature": sign(self.s.shared_secret, who.instance_id)}

    def _forward(self, method, path, who, body, in_headers):
        # (a control character, a space or a byte beyond ASCII is the
        # instance's error: nova is not asked, and it is not nova's failure)
        if not path.startswith("/") or not all(" " < c < "\x7f" for c in path):
            return 400, "text/plain", b"Bad Request\n"
        headers = self.headers_for(who)
        for name in FORWARDED_HEADERS:
            value = clean_header(in_headers.get(name) or "")
            if value:
                headers[name] = value
        s = self.s
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(s.nova_host, s.nova_port, timeout=s.timeout,
                                               context=self._ssl)
        else:
            conn = http.client.HTTPConnection(s.nova_host, s.nova_port, timeout=s.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "text/plain")
            status = resp.status
        except (socket.timeout, TimeoutError):
            self.stats["timeouts"] += 1
            LOG.warning("nova metadata API at %s:%s timed out (%ss)", s.nova_host, s.nova_port,
                        s.timeout)
            return 504, "text/plain", b"Metadata server timed out\n"
        except (OSError, http.client.HTTPException) as e:
            self.stats["upstream_errors"] += 1
            LOG.warning("nova metadata API at %s:%s unreachable: %s", s.nova_host, s.nova_port, e)
            return 503, "text/plain", (b"The remote metadata server is temporarily "
                                       b"unavailable\n")
        finally:
            conn.close()
        if status not in PASSED_STATUSES:
            self.stats["upstream_errors"] += 1
            LOG.warning("nova metadata API answered %s for instance %s", status, who.instance_id)
            return 500, "text/plain", b"Remote metadata server error\n"
        if status == 403:
            LOG.warning("nova refused the signature for instance %s: check "
                        "[metadata] metadata_proxy_shared_secret", who.instance_id)
        return status, ctype, data

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.s
        ctx = ssl.create_default_context(cafile=s.ca_cert or None)
        if s.nova_insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.client_cert:
            ctx.load_cert_chain(s.client_cert, s.client_key or None)
        return ctx
