"""The HTTP/1.1 the agent speaks to its server, on a plain socket.

The agent API is one server, JSON bodies, keep-alive, and one streamed
answer (chunked).  http.client does all that and more, but importing it
(with the email package it parses headers with) was ~25 ms of a starting
agent, before its first poll could go out (issue 17).  This is the part
of HTTP/1.1 the agent needs, for a server that speaks it: requests with a
Content-Length body, answers with a Content-Length, chunked, or
read-to-close body, 1xx answers skipped, a connection kept for the next
request unless the server or the answer says otherwise.

Every failure is an OSError: ``RemoteDisconnected`` (a kept connection the
server closed before answering: the caller may send again) is a
ConnectionResetError, as http.client's is; ``ProtocolError`` the rest (an
answer that is not HTTP/1.x, too long a header, a body cut short).
"""

from __future__ import annotations

import socket

MAX_LINE = 65536
MAX_HEADERS = 100


class ProtocolError(OSError):
    pass


class RemoteDisconnected(ConnectionResetError):
    pass


def split_netloc(netloc: str, default_port: int) -> tuple[str, int]:
    """(host, port) of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    host, port = netloc, default_port
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise ValueError(f"bad address {netloc!r}")
        host, rest = netloc[1:end], netloc[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {netloc!r}")
            port = int(rest[1:])
    elif netloc.count(":") == 1:
        host, _, p = netloc.partition(":")
        port = int(p)
    if not host or not 0 < port < 65536:
        raise ValueError(f"bad address {netloc!r}")
    return host, port


class Connection:
    """One connection to ``netloc`` (TLS with ``context``); opened by
    :meth:`connect` or the first request, opened again by the request after
    an answer that closed it.  ``sock`` is None while closed (another
    thread may shut it down to wake a read)."""

    def __init__(self, netloc: str, timeout: float | None = None, context=None):
        self.netloc = netloc
        self.host, self.port = split_netloc(netloc, 443 if context is not None else 80)
        self.timeout = timeout
        self.context = context
        self.sock = None
        self._rfile = None
        self._answer: Response | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._rfile = sock.makefile("rb")

    def close(self) -> None:
        sock, rfile = self.sock, self._rfile
        self.sock = self._rfile = self._answer = None
        if rfile is not None:
            rfile.close()
        if sock is not None:
            sock.close()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> None:
        if self._answer is not None and not self._answer.done:
            self.close()  # the last answer was left unread: not reusable
        if self.sock is None:
            self.connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._method = method
        self.sock.sendall(head + body if body else head)

    def getresponse(self) -> Response:
        if self._rfile is None:
            raise ProtocolError("no request sent")
        answer = self._answer = Response(self, self._rfile, self._method)
        return answer

    def _answered(self, answer: Response) -> None:
        """``answer``'s body is read: close if it says so."""
        if answer.will_close and self._answer is answer:
            self.close()


class Response:
    """An answer: ``status``, headers (:meth:`getheader`), and its body by
    :meth:`read` (all of it) or :meth:`read1` (what comes next, b"" at its
    end).  ``length``: what is left of a Content-Length body (None for a
    chunked or read-to-close one)."""

    def __init__(self, conn: Connection, rfile, method: str):
        self._conn = conn
        self._rfile = rfile
        while True:
            status, headers = self._head()
            if not 100 <= status < 200:
                break
        self.status = status
        self.headers = headers
        conn_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self.will_close = "close" in conn_tokens or (
            self.version == "HTTP/1.0" and "keep-alive" not in conn_tokens)
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.length = None
        self._chunk_left = 0
        self.done = False
        if method == "HEAD" or status in (204, 304):
            self.length = 0
        elif not self.chunked:
            cl = headers.get("content-length")
            if cl is not None:
                try:
                    self.length = int(cl)
                except ValueError:
                    raise ProtocolError(f"bad Content-Length {cl!r}") from None
                if self.length < 0:
                    raise ProtocolError(f"bad Content-Length {cl!r}")
            else:
                self.will_close = True  # the body ends where the connection does
        if self.length == 0:
            self._finish()

    def _line(self) -> bytes:
        line = self._rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError("header line too long")
        return line

    def _head(self):
        line = self._line()
        if not line:
            raise RemoteDisconnected("the server closed the connection without answering")
        parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise ProtocolError(f"bad status line: {line[:100]!r}") from None
        self.version = parts[0]
        self.reason = parts[2] if len(parts) > 2 else ""
        headers: dict = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return status, headers
            if not line:
                raise ProtocolError("the connection closed inside the headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"bad header line: {line[:100]!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise ProtocolError("too many headers")

    def getheader(self, name: str, default=None):
        return self.headers.get(name.lower(), default)

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self._conn._answered(self)

    def read(self) -> bytes:
        """The rest of the body."""
        if self.done:
            return b""
        if self.chunked:
            parts = []
            while data := self.read1(MAX_LINE):
                parts.append(data)
            return b"".join(parts)
        if self.length is None:
            data = self._rfile.read()
            self._finish()
            return data
        data = self._rfile.read(self.length)
        if len(data) < self.length:
            self.length -= len(data)
            raise ProtocolError(f"the body ended {self.length} bytes short")
        self.length = 0
        self._finish()
        return data

    def read1(self, n: int = MAX_LINE) -> bytes:
        """Some of the body (at most ``n`` bytes, at least one unless it has
        ended: b"").  A Content-Length body the connection cuts short ends
        early, ``length`` left above 0; a chunked one raises."""
        if self.done:
            return b""
        if self.chunked:
            if self._chunk_left == 0:
                size = self._chunk_size()
                if size == 0:
                    while self._line() not in (b"\r\n", b"\n", b""):
                        pass  # (trailers)
                    self._finish()
                    return b""
                self._chunk_left = size
            data = self._rfile.read1(min(n, self._chunk_left))
            if not data:
                raise ProtocolError("the connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0 and self._rfile.read(2) not in (b"\r\n",):
                raise ProtocolError("a chunk not ended by CRLF")
            return data
        if self.length is None:
            data = self._rfile.read1(n)
            if not data:
                self._finish()
            return data
        data = self._rfile.read1(min(n, self.length))
        self.length -= len(data)
        if not data:
            self.will_close = True  # (cut short: the connection is done)
        if self.length == 0 or not data:
            self._finish()
        return data

    def _chunk_size(self) -> int:
        line = self._line()
        if not line:
            raise ProtocolError("the connection closed between chunks")
        digits = line.split(b";", 1)[0].strip()
        # hex digits only: int() would also take a sign, "0x" and "_"
        if not digits or digits.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError(f"bad chunk size line: {line[:100]!r}")
        return int(digits, 16)

    def close(self) -> None:
        """Leave the rest of the body: the connection is closed unless the
        body was all read."""
        if not self.done:
            self.done = True
            self._conn.close()
