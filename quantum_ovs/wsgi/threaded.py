"""A WSGI server on plain OS threads, one per open connection (the
standard library's http.server), for quantum-ovs-agent-api.

Agents long-poll: each holds a connection that waits, most of the time,
for a change.  Here each connection is a thread blocked in its own read
or on the change feed's event, so a change that wakes a thousand agents
costs a thousand short answers and nothing per connection that is not
woken.  (Under waitress, whose one event loop visited every open
connection at each of its turns, the same change cost about ten seconds
of CPU at 1,000 agents: bench/fanout.py --agent-api standalone.)

What it keeps from the HTTP/1.1 it speaks: keep-alive (and pipelined
requests), bodies with a Content-Length or chunked, ``Expect:
100-continue``, HEAD.  Its limits: at most ``max_connections`` open
connections (one more is answered 503 at once and closed), a deadline for
each request's head (``header_timeout``: it also ends idle keep-alive
connections), ``socket_timeout`` for each read and write of a body, a
request body of at most ``max_body`` bytes (413), the standard library's
limits on the request line and headers (414, 431).  Errors it answers
itself are NeutronError bodies, as the API's.  Proxy headers are dropped:
nothing here trusts a proxy (X-Forwarded-*, Forwarded)."""

from __future__ import annotations

import http.server
import io
import json
import logging
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

LOG = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # bytes
_PROXY_HEADERS = frozenset({"HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
                            "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
                            "HTTP_X_FORWARDED_BY", "HTTP_X_FORWARDED_PREFIX"})
_ERROR_TYPES = {400: "HTTPBadRequest", 408: "RequestTimeout", 411: "HTTPLengthRequired",
                413: "HTTPRequestEntityTooLarge", 414: "HTTPRequestURITooLong",
                431: "RequestHeaderFieldsTooLarge", 500: "HTTPInternalServerError",
                501: "HTTPNotImplemented", 503: "ServiceUnavailable",
                505: "HTTPVersionNotSupported"}


def error_body(code: int, message: str) -> bytes:
    return json.dumps({"NeutronError": {"type": _ERROR_TYPES.get(code, "HTTPError"),
                                        "message": message, "detail": ""}}).encode()


class _HeadDeadline(io.RawIOBase):
    """The connection's socket, read with a deadline over a whole request
    head (set by ``start``) and ``timeout`` per read otherwise."""

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


class _Body(io.RawIOBase):
    """A request body of ``length`` bytes, or a chunked one (length None)
    decoded as it is read; more than ``limit`` bytes raise _TooLarge."""

    def __init__(self, rfile, length, limit):
        self.rfile, self.left, self.limit = rfile, length, limit
        self.chunked = length is None
        self.chunk_left, self.done, self.total = 0, False, 0

    def readable(self):
        return True

    def readinto(self, b):
        want = len(b)
        if not self.chunked:
            n = min(want, self.left)
            if n <= 0:
                return 0
            data = self.rfile.read(n)
            if not data:
                raise _BadBody("the body ended early")
            self.left -= len(data)
            b[:len(data)] = data
            return len(data)
        if self.done:
            return 0
        if self.chunk_left == 0:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadBody("bad chunk size") from None
            if size < 0:
                raise _BadBody("bad chunk size")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.done = True
                return 0
            self.total += size
            if self.total > self.limit:
                raise _TooLarge()
            self.chunk_left = size
        data = self.rfile.read(min(want, self.chunk_left))
        if not data:
            raise _BadBody("the body ended early")
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.rfile.readline(2)  # the chunk's CRLF
        b[:len(data)] = data
        return len(data)

    def drain(self):
        """Read what the application left, so that the next request on the
        connection starts where it should."""
        while self.readinto(bytearray(65536)):
            pass


class _BadBody(Exception):
    pass


class _TooLarge(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "quantum-ovs"
    sys_version = ""

    def setup(self):
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._raw = _HeadDeadline(self.connection, self.server.socket_timeout)
        self.rfile = io.BufferedReader(self._raw, 65536)
        self.wfile = self.connection.makefile("wb", 0)  # (the stdlib's 100 Continue)

    def handle_one_request(self):
        self._raw.deadline = time.monotonic() + self.server.header_timeout
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (socket.timeout, ConnectionError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        try:
            ok = self.parse_request()  # the headers, under the same deadline
        except (socket.timeout, ConnectionError, OSError):
            self.close_connection = True
            return
        self._raw.deadline = None
        if not ok:
            return
        self._serve()

    def handle_expect_100(self):
        # (after the head: the body's reads have their own timeout)
        self._raw.deadline = None
        return super().handle_expect_100()

    def send_error(self, code, message=None, explain=None):
        try:
            short, _long = self.responses[code]
        except KeyError:
            short = "Error"
        self._respond(f"{code} {short}", [("Content-Type", "application/json")],
                      error_body(code, message or short), close=code >= 400)

    def log_message(self, fmt, *args):
        LOG.debug("%s " + fmt, self.address_string(), *args)

    def _environ(self, body):
        path, _, query = self.path.partition("?")
        if path.startswith(("http://", "https://")):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        server = self.server
        env = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": server.server_name,
            "SERVER_PORT": str(server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                env[key] = value
                continue
            key = "HTTP_" + key
            if key in _PROXY_HEADERS or "_" in name:  # (X_Foo could pass for X-Foo)
                continue
            env[key] = env[key] + "," + value if key in env else value
        return env

    def _serve(self):
        te = self.headers.get("Transfer-Encoding", "").strip().lower()
        length = self.headers.get("Content-Length")
        if te and te != "chunked" or te and length is not None:
            return self.send_error(400, "Unsupported Transfer-Encoding.")
        if te == "chunked":
            body = _Body(self.rfile, None, self.server.max_body)
        else:
            try:
                n = int(length) if length is not None else 0
            except ValueError:
                n = -1
            if n < 0 or (length is not None and not length.strip().isdigit()):
                return self.send_error(400, "Bad Content-Length.")
            if n > self.server.max_body:
                return self.send_error(413, "The request body is too large.")
            body = _Body(self.rfile, n, self.server.max_body)
        env = self._environ(io.BufferedReader(body))
        if te == "chunked":
            env["wsgi.input_terminated"] = True
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [status, list(headers)]
            return self._no_write

        try:
            result = self.server.app(env, start_response)
            try:
                out = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = answer
            body.drain()
        except _TooLarge:
            return self.send_error(413, "The request body is too large.")
        except _BadBody as e:
            return self.send_error(400, f"Bad request body: {e}.")
        except (socket.timeout, ConnectionError):
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - a bare 500, logged; never a traceback sent
            LOG.exception("%s %s", self.command, self.path)
            return self.send_error(500, "The server could not answer the request.")
        self._respond(status, headers, out)

    @staticmethod
    def _no_write(data):
        raise RuntimeError("write() is not supported: return the body")

    def _respond(self, status, headers, body, close=False):
        if close:
            self.close_connection = True
        names = {k.lower() for k, _ in headers}
        code = int(status.split(" ", 1)[0])
        lines = [f"{self.protocol_version} {status}\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in headers]
        if "content-length" not in names and code not in (204, 304):
            lines.append(f"Content-Length: {len(body)}\r\n")
        if "date" not in names:
            lines.append(f"Date: {self.date_time_string()}\r\n")
        lines.append(f"Server: {self.server_version}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        if self.command == "HEAD" or code in (204, 304) or 100 <= code < 200:
            body = b""
        try:
            self.connection.settimeout(self.server.socket_timeout)
            self.connection.sendall(head + body)
        except OSError:
            self.close_connection = True
        if code >= 400 or self.close_connection:
            LOG.debug("%s %s -> %s", self.command, getattr(self, "path", ""), code)


class ThreadedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """``app`` on ``host``:``port``, a thread per open connection, at most
    ``max_connections`` open at once."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 4096

    def __init__(self, app, host, port, max_connections, header_timeout, socket_timeout,
                 max_body=MAX_BODY):
        self.app = app
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.socket_timeout = socket_timeout
        self.max_body = max_body
        self.open = 0
        self._lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self):
        # (http.server's would look the host name up in the DNS)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def effective_port(self):
        return self.server_address[1]

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
            self._closed()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def _closed(self):
        with self._lock:
            self.open -= 1

    def handle_error(self, request, client_address):
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)

    def run(self):
        self.serve_forever(poll_interval=0.5)

    def close(self):
        self.server_close()


def _refuse(sock, what):
    """503 at once on a connection that is not served, and close it."""
    body = error_body(503, f"The server is busy ({what}); retry the request.")
    try:
        sock.settimeout(0)
        sock.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Retry-After: 1\r\nConnection: close\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
