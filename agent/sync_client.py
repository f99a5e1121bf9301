"""The agent's side of the agent API: register, long-poll, report.

HTTP/1.1 (agent.http11) over one keep-alive connection per caller thread;
no eventlet.  A server that is away raises ServerUnavailable: the agent keeps
its data plane as it is and tries again with backoff.

close() (from any thread) shuts down every connection's socket, so a
thread blocked in a long poll wakes at once with Closed instead of
waiting out the poll.
"""

import json
import logging
import socket
import threading
import time
import urllib.parse

from agent import http11

LOG = logging.getLogger(__name__)

FEATURES = "group_members,group_rules"  # what this agent applies (see the agent API)
NDJSON = "application/x-ndjson"  # a streamed poll's answer: a JSON document per line


class ServerUnavailable(Exception):
    pass


class Closed(ServerUnavailable):
    """The client was closed (the agent is stopping)."""


class ServerError(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body[:500]}")
        self.status = status
        self.body = body


def tls_context(ca_file="", insecure=False):
    """The client side of the server's TLS: its certificate verified
    against ``ca_file`` (or the system's CAs), host name included."""
    import ssl  # (here: only the agent of a TLS server needs it)

    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        LOG.warning("not verifying the server's TLS certificate ([server] insecure)")
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SyncClient:
    @classmethod
    def for_settings(cls, s):
        """The client of the agent whose Settings are ``s``."""
        return cls(s.server_url, s.host, s.token, ca_file=s.ca_file, insecure=s.insecure)

    def __init__(self, url, host, token="", timeout=90.0, ca_file="", insecure=False):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"server URL must be http(s): {url}")
        self.tls = tls_context(ca_file, insecure) if parsed.scheme == "https" else None
        self.scheme = parsed.scheme
        self.netloc = parsed.netloc
        self.prefix = parsed.path.rstrip("/")
        self.host = host
        self.token = token
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns = set()  # every thread's connection, for close()
        self._closed = False

    # ------------------------------------------------------------ transport
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http11.Connection(self.netloc, timeout=self.timeout, context=self.tls)
            with self._lock:
                if self._closed:
                    raise Closed("client closed")
                self._conns.add(conn)
            self._local.conn = conn
        return conn

    def _connect(self, conn):
        """Open the socket now (the request would) so that close()
        can reach it: a close() that came before this sees the flag, one
        that comes after sees the socket."""
        if conn.sock is None:
            conn.connect()
        with self._lock:
            if self._closed:
                raise Closed("client closed")

    def _drop(self, conn=None):
        """Close ``conn`` (by default this thread's connection) and forget
        it; this thread's next request opens another."""
        mine = getattr(self._local, "conn", None)
        conn = mine if conn is None else conn
        if conn is not None:
            conn.close()
            with self._lock:
                self._conns.discard(conn)
        if conn is mine:
            self._local.conn = None

    def close(self):
        """Fail every call in progress or to come with Closed, now.

        Only shuts the sockets down (which wakes a blocked recv); each
        socket is closed by the thread that owns it."""
        with self._lock:
            self._closed = True
            for conn in self._conns:
                sock = conn.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    @property
    def closed(self):
        return self._closed

    def request(self, method, path, body=None, timeout=None, raw_body=False):
        """The JSON answer (``raw_body``: its bytes, not decoded)."""
        resp = self._open(method, path, body, timeout)
        raw = self._read(resp.read)
        if raw_body:
            return raw
        return json.loads(raw) if raw else None

    def _open(self, method, path, body=None, timeout=None, accept="application/json"):
        """The answer (an http11.Response, its body not read yet) to
        a request; ServerError / ServerUnavailable (body read) for an
        error status."""
        headers = {"Accept": accept, "X-Agent-Token": self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):  # one retry on a stale keep-alive connection
            conn = self._conn()
            conn.timeout = timeout or self.timeout
            try:
                self._connect(conn)
                conn.sock.settimeout(conn.timeout)
                conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
            except Closed:
                self._drop()
                raise
            except OSError as e:
                self._drop()
                if self._closed:
                    raise Closed("client closed") from e
                if attempt == 0 and isinstance(e, (ConnectionResetError, BrokenPipeError)):
                    continue
                raise ServerUnavailable(str(e)) from e
            if resp.status < 400:
                return resp
            raw = self._read(resp.read)
            if resp.status == 503:
                raise ServerUnavailable(raw.decode(errors="replace"))
            if resp.status in (401, 403):
                LOG.error("the server refused this agent's credential for host %s (%d %s %s): "
                          "check [server] token", self.host, resp.status, method,
                          path.split("?")[0])
            raise ServerError(resp.status, raw.decode(errors="replace"))
        raise ServerUnavailable("unreachable")

    def _read(self, read):
        """``read()`` of an answer's body; a connection that fails
        meanwhile is dropped (ServerUnavailable, or Closed)."""
        try:
            return read()
        except OSError as e:
            self._drop()
            if self._closed:
                raise Closed("client closed") from e
            raise ServerUnavailable(str(e)) from e

    # ------------------------------------------------------------ calls
    def register(self, tunnel_ip=None, configurations=None, started=False):
        return self.request("POST", "/agent-api/v1/agents", {
            "host": self.host, "tunnel_ip": tunnel_ip,
            "configurations": configurations or {}, "started": started})

    def poll(self, since, wait=30.0):
        """("full", HostView) or ("delta", Delta), and the new revision."""
        return self.decoded(self.poll_raw(since, wait))

    def poll_raw(self, since, wait=30.0) -> bytes:
        """The server's answer to a poll, not decoded (decode_state)."""
        return self.request("GET", self._state_path(since, wait, FEATURES),
                            timeout=wait + 30, raw_body=True)

    def _state_path(self, since, wait, features):
        q = urllib.parse.urlencode({"since": since, "timeout": wait, "features": features})
        return f"/agent-api/v1/hosts/{urllib.parse.quote(self.host)}/state?{q}"

    def poll_stream(self, since, wait=30.0):
        """What poll returns, for each answer of one streamed poll (the
        feature ``stream``: the server writes each change as it comes for
        up to ``wait`` seconds, see quantum_ovs.api.agent_api); a server
        that does not stream answers once.  The revision of each is where
        the next poll starts, whatever happens to the rest.  An answer cut
        short (no last chunk, a line cut) or one that does not decode is
        ServerUnavailable, as for poll."""
        resp = self._open("GET", self._state_path(since, wait, FEATURES + ",stream"),
                          timeout=wait + 30, accept=NDJSON + ", application/json")
        conn = self._local.conn  # (the stream's: the caller's thread's)
        if resp.getheader("Content-Type", "").split(";")[0].strip() != NDJSON:
            yield self.decoded(self._read(resp.read))
            return
        done = False
        try:
            buf, start = bytearray(), 0
            while True:
                # Each read waits at most the connection's timeout (the
                # server ends the stream after ``wait``); read1 (not
                # readline) tells a stream cut between two chunks from
                # one that ended.
                data = self._read(lambda: resp.read1(65536))
                if not data:
                    if buf.strip() or resp.length:
                        raise ServerUnavailable("a streamed answer ended inside a line")
                    resp.close()  # (read1 leaves an answer of known length open)
                    done = True
                    return
                buf += data
                while (end := buf.find(b"\n", start)) >= 0:
                    line = bytes(buf[:end + 1])
                    del buf[:end + 1]
                    start = 0
                    if line.strip():
                        yield self.decoded(line)
                start = len(buf)
        finally:
            if not done:  # left in the middle: the connection is not reusable
                self._drop(conn)

    def decoded(self, raw):
        """decode_state(raw); ServerUnavailable for an answer that does
        not decode as one (the sync loop retries those: nothing else may
        end it)."""
        try:
            return self.decode_state(raw)
        except Exception as e:  # noqa: BLE001 - whatever a malformed answer raises
            raise ServerUnavailable(f"an answer that does not decode: {e!r}") from e

    @staticmethod
    def decode_state(raw: bytes):
        """What poll returns, from poll_raw's bytes."""
        # Here, not at the top: a starting agent's first poll goes out
        # before the model is imported (FirstPoll), and orjson's own
        # imports (dataclasses, inspect...) are the model's.
        import orjson

        from quantum_ovs import wire
        try:
            # A full view of 10,000 ports is 5 MB: ~70 ms for json.loads.
            out = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out = json.loads(raw)  # what orjson refuses (integers beyond 64 bits)
        if out["full"]:
            return "full", wire.view_from_dict(out["view"], refuse=_refused), out["revision"]
        return "delta", wire.delta_from_dict(out["delta"], refuse=_refused), out["revision"]

    def report(self, plugged=(), unplugged=(), installed=(), floatingips=()):
        body = {"plugged": [{"port_id": p, "ofport": o} for p, o in plugged],
                "unplugged": list(unplugged), "installed": list(installed)}
        if floatingips:  # floating IPs this host applies, installed (issue 14)
            body["floatingips"] = list(floatingips)
        return self.request("POST", f"/agent-api/v1/hosts/{urllib.parse.quote(self.host)}/ports",
                            body)


class FirstPoll:
    """The agent's first poll of its host's state (the full view), sent at
    once on a thread of its own: a starting agent asks the server as soon
    as it has its settings, and imports and starts the rest of itself while
    the server builds the view (issue 17).  The agent's sync loop takes
    :meth:`result` as the answer to its first poll, errors included (the
    loop then polls again as usual).  The answer is decoded there too, by
    the thread that takes it: not while the agent is still importing.
    ``client`` is the agent's: closing it wakes a wait here too."""

    def __init__(self, client: SyncClient):
        self.client = client
        self._done = threading.Event()
        self._result = self._error = None
        threading.Thread(target=self._run, name="first-poll", daemon=True).start()

    def _run(self):
        try:
            self._result = self.client.poll_raw(-1, 0)
        except BaseException as e:  # noqa: BLE001 - handed to the sync loop
            self._error = e
        finally:
            self.client._drop()  # this thread's connection (the loop has its own)
            self._done.set()

    def result(self):
        """("full", HostView, revision), as SyncClient.poll(-1, 0) gives
        (or raises)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self.client.decoded(self._result)


def backoff(attempt, base=0.2, cap=5.0):
    return min(cap, base * (2 ** min(attempt, 10)))


def sleep_backoff(attempt, stop_event=None):
    delay = backoff(attempt)
    if stop_event is not None:
        stop_event.wait(delay)
    else:
        time.sleep(delay)


# Items of the server's answers left out as malformed (decode_state), each
# logged once: a bad row comes back in every full view and in every delta
# that touches it, and the agent must not flood its log with it.  Bounded:
# a server that sends ever new bad items is logged, not kept.
_REFUSED_SEEN: dict = {}
_REFUSED_KEEP = 1024


def _refused(kind: str, item, exc: Exception) -> None:
    from quantum_ovs import wire  # imported already: _refused is wire's callback
    ident = wire.item_id(kind, item)
    key = (kind, repr(ident) if ident is not None else repr(item)[:200], repr(exc))
    if key in _REFUSED_SEEN:
        return
    if len(_REFUSED_SEEN) >= _REFUSED_KEEP:
        _REFUSED_SEEN.clear()
    _REFUSED_SEEN[key] = True
    LOG.error("the server sent a malformed %s (%s), left out, the rest applied: %r",
              kind, key[1], exc)
