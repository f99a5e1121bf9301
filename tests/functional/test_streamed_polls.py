"""Streamed polls (the poll feature ``stream``): each change that concerns
the host is written on the poll's open answer as it comes, one JSON
document per line, until the poll's timeout; no request in between.

Real processes on one SQLite database: quantum-ovs-server (its fast path,
and its whole stack for a poll FastPolls leaves to it), and the
standalone quantum-ovs-agent-api (threads) beside it."""

import contextlib
import http.server
import json
import socket
import threading
import time

import pytest

from agent import sync_client
from quantum_ovs import model as m, wire
from quantum_ovs.db import agent_auth
from quantum_ovs.db.session import Database
from quantum_ovs.testing.server import ServerProcess

HOST = "hv-stream"
FEATURES = "group_members,group_rules,stream"
ORIGIN = "http://dashboard.example"
NDJSON = "application/x-ndjson"


class Http:
    """One raw HTTP connection: what the tests look at is the framing."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rb")

    def send(self, method, path, headers=(), body=None, version="HTTP/1.1"):
        lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers]
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)

    def head(self):
        status = int(self.f.readline().split()[1])
        headers = {}
        while True:
            line = self.f.readline()
            if line in (b"\r\n", b""):
                return status, headers
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()

    def chunk(self):
        """The next chunk's data (b"" for the last one)."""
        size = int(self.f.readline().split(b";")[0], 16)
        data = self.f.read(size)
        assert self.f.read(2) == b"\r\n"
        return data

    def close(self):
        self.f.close()
        self.sock.close()


def _rest(port, method, path, body=None, want=201):
    c = Http(port)
    try:
        c.send(method, path, [("X-Roles", "admin"), ("X-Project-Id", "stream")], body)
        status, headers = c.head()
        data = c.f.read(int(headers.get("content-length", 0)))
        assert status == want, (method, path, status, data)
        return json.loads(data) if data else None
    finally:
        c.close()


def _poll(port, token, since, timeout=0, features="group_members,group_rules"):
    c = Http(port)
    try:
        c.send("GET", f"/agent-api/v1/hosts/{HOST}/state?since={since}&timeout={timeout}"
                      f"&features={features}", [("X-Agent-Token", token)])
        status, headers = c.head()
        return status, json.loads(c.f.read(int(headers["content-length"])))
    finally:
        c.close()


# Where the polls go: quantum-ovs-server's direct path; its whole stack
# (a poll with an Origin its CORS layer acts on is not FastPolls');
# eventlet.wsgi's own path to FastPolls (a head that is not plain: a
# folded header line); the standalone agent API.
WHERE = {"server": [], "server-whole-stack": [("Origin", ORIGIN)],
         "server-eventlet-path": [("X-Folded", "a\r\n b")], "standalone": []}


@contextlib.contextmanager
def _apis(where, url, conf=""):
    """(REST server, agent API server, headers a poll adds)."""
    started = []
    try:
        rest = ServerProcess(url, extra_conf=f"{conf}[cors]\nallowed_origin = {ORIGIN}\n")
        started.append(rest.start())
        agents = rest
        if where == "standalone":
            agents = ServerProcess(url, extra_conf=conf, module="quantum_ovs.cmd.agent_api")
            started.append(agents.start())
        yield rest, agents, WHERE[where]
    finally:
        for s in started:
            s.stop()


@pytest.fixture(params=sorted(WHERE))
def apis(request, tmp_path):
    """(REST server, agent API server, headers a poll adds, db url)."""
    url = f"sqlite:///{tmp_path}/stream.sqlite"
    with _apis(request.param, url) as (rest, agents, extra):
        yield rest, agents, extra, url


@pytest.fixture
def opened(apis):
    """``apis``, a host set up on them (see _setup), and a connection to
    their agent API: (rest, agents, extra, url, token, net, rev, conn)."""
    rest, agents, extra, url = apis
    token, net, rev = _setup(rest, agents, url)
    c = Http(agents.port)
    try:
        yield rest, agents, extra, url, token, net, rev, c
    finally:
        c.close()


def _setup(rest, agents, url):
    """A host with a port on a network; (its token, the network, the
    revision the host's agent is at)."""
    with_db = Database(url)
    try:
        token = agent_auth.create(with_db, HOST)[1]
    finally:
        with_db.dispose()
    c = Http(agents.port)
    c.send("POST", "/agent-api/v1/agents", [("X-Agent-Token", token)],
           {"host": HOST, "tunnel_ip": "192.0.2.40"})
    assert c.head()[0] == 200
    c.close()
    net = _rest(rest.port, "POST", "/v2.0/networks", {"network": {"name": "s"}})["network"]
    _rest(rest.port, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.77.0.0/24", "ip_version": 4}})
    _port(rest, net)
    rev = _poll(agents.port, token, -1)[1]["revision"]
    # The standalone process's feed follows the database (a 50 ms poll on
    # SQLite): catch up with a delta so that the streams start at the head.
    time.sleep(0.5)
    rev = _poll(agents.port, token, rev)[1]["revision"]
    return token, net, rev


def _port(rest, net):
    return _rest(rest.port, "POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "binding:host_id": HOST, "security_groups": []}})["port"]


def _stream(c, token, since, timeout, extra=(), version="HTTP/1.1"):
    """Send a streamed poll on ``c``."""
    c.send("GET", f"/agent-api/v1/hosts/{HOST}/state?since={since}&timeout={timeout}"
                  f"&features={FEATURES}", [("X-Agent-Token", token)] + list(extra),
           version=version)


def _doc(data):
    assert data.endswith(b"\n") and data.count(b"\n") == 1, data[-80:]
    return json.loads(data)


def _ports(doc):
    return [p["id"] for p in doc["delta"]["ports"]]


def test_a_stream_carries_each_change_as_it_comes(opened):
    rest, agents, extra, url, token, net, rev, c = opened
    began = time.monotonic()
    _stream(c, token, rev, 8, extra)
    time.sleep(0.3)  # parked
    seen = []
    for _ in range(2):
        port = _port(rest, net)
        made = time.monotonic()
        if not seen:
            status, headers = c.head()
            assert status == 200, status
            assert headers["content-type"] == NDJSON
            assert headers["transfer-encoding"] == "chunked"
            assert "content-length" not in headers
        doc = _doc(c.chunk())
        # as it comes, not when the poll's 8 s end
        assert time.monotonic() - made < 5.0
        assert doc["full"] is False and port["id"] in _ports(doc)
        assert doc["revision"] > rev
        rev = doc["revision"]
        seen.append(port["id"])
    # Nothing more: the stream ends at its timeout with an empty delta.
    last = _doc(c.chunk())
    ended = time.monotonic() - began
    assert last["full"] is False and not _ports(last) and last["revision"] >= rev
    assert c.chunk() == b""
    assert 7.5 < ended < 20, ended
    # The connection is still good for the next request.
    c.send("GET", f"/agent-api/v1/hosts/{HOST}/state?since={last['revision']}&timeout=0",
           [("X-Agent-Token", token)] + extra)
    status, headers = c.head()
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(c.f.read(int(headers["content-length"])))["full"] is False


def test_an_http10_stream_ends_with_the_connection(opened):
    rest, agents, extra, url, token, net, rev, c = opened
    _stream(c, token, rev, 1, extra, version="HTTP/1.0")
    status, headers = c.head()
    assert status == 200 and headers["content-type"] == NDJSON
    assert "transfer-encoding" not in headers and "content-length" not in headers
    body = c.f.read()  # until the server closes
    assert _doc(body)["delta"]["ports"] == []


def test_a_revoked_credential_ends_the_stream(opened):
    rest, agents, extra, url, token, net, rev, c = opened
    _stream(c, token, rev, 20, extra)
    time.sleep(0.3)
    first = _port(rest, net)
    assert c.head()[0] == 200
    assert first["id"] in _ports(_doc(c.chunk()))
    db = Database(url)
    try:
        assert agent_auth.revoke(db, host=HOST)
    finally:
        db.dispose()
    second = _port(rest, net)
    t = time.monotonic()
    # Ended, without the change the credential no longer may read.
    assert c.chunk() == b"", second["id"]
    assert time.monotonic() - t < 5
    assert _poll(agents.port, token, rev)[0] == 401


def test_a_stream_from_no_view_is_the_full_view_alone(opened):
    rest, agents, extra, url, token, _net, _rev, c = opened
    _stream(c, token, -1, 20, extra)
    t = time.monotonic()
    assert c.head()[0] == 200
    doc = _doc(c.chunk())
    assert doc["full"] is True and doc["view"]["ports"]
    assert c.chunk() == b""
    assert time.monotonic() - t < 5  # not the 20 s of the timeout


@pytest.mark.parametrize("where", ["server", "server-whole-stack", "standalone"])
def test_an_open_stream_counts_as_a_waiting_poll(tmp_path, where):
    """max_long_polls: a stream holds its place until it ends, not only
    until its first answer."""
    url = f"sqlite:///{tmp_path}/held.sqlite"
    with _apis(where, url, "max_long_polls = 1\n") as (rest, agents, extra):
        token, net, rev = _setup(rest, agents, url)
        c = Http(agents.port)
        try:
            _stream(c, token, rev, 3, extra)
            time.sleep(0.3)
            _port(rest, net)
            assert c.head()[0] == 200
            doc = _doc(c.chunk())
            assert _poll(agents.port, token, doc["revision"])[0] == 503  # still held
            while c.chunk():
                pass
            # Let go: once the server's side of the stream has ended too (it
            # writes the last chunk, then releases the place, so a poll
            # made the moment the client reads that chunk may still find
            # the place taken).
            deadline = time.monotonic() + 5
            status = _poll(agents.port, token, doc["revision"])[0]
            while status == 503 and time.monotonic() < deadline:
                time.sleep(0.05)
                status = _poll(agents.port, token, doc["revision"])[0]
            assert status == 200
        finally:
            c.close()


def test_the_agents_client_reads_each_answer_as_it_comes(tmp_path):
    url = f"sqlite:///{tmp_path}/client.sqlite"
    with ServerProcess(url) as rest:
        token, net, rev = _setup(rest, rest, url)
        client = sync_client.SyncClient(rest.url, HOST, token)
        try:
            stream = client.poll_stream(rev, wait=8)
            got = []
            made = threading.Event()

            def change():
                time.sleep(0.3)
                got.append(time.monotonic())
                got.append(_port(rest, net)["id"])
                made.set()

            threading.Thread(target=change).start()
            kind, delta, rev2 = next(stream)
            assert time.monotonic() - got[0] < 5.0  # as it came, not at the end (8 s)
            assert made.wait(10)
            assert kind == "delta" and [p.id for p in delta.ports] == [got[1]]
            assert rev2 > rev
            rest_of = list(stream)  # ends with the poll's timeout: an empty delta
            assert [k for k, _d, _r in rest_of] == ["delta"]
            assert not rest_of[0][1].ports and rest_of[0][2] >= rev2
            # The connection served the whole stream and serves the next poll.
            assert client.poll(rest_of[0][2], 0)[0] == "delta"
        finally:
            client.close()


class _Stub:
    """A server of fixed answers to the agent's polls (raw bytes after
    the status line and headers it is given), over real HTTP."""

    def __init__(self, head, body, keep_alive=False):
        self.asked = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                stub.asked.append((self.path, self.headers.get("Accept")))
                self.wfile.write(head + body)
                self.wfile.flush()
                self.close_connection = not keep_alive

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = sync_client.SyncClient(
            f"http://127.0.0.1:{self.server.server_address[1]}", HOST, "t")

    def close(self):
        self.client.close()
        self.server.shutdown()
        self.server.server_close()


def _answer(revision):
    return json.dumps({"full": False, "revision": revision,
                       "delta": wire.delta_to_dict(m.Delta(revision=revision))}).encode()


def test_the_agents_client_takes_a_server_that_does_not_stream():
    """A server that predates the feature answers the poll once (JSON)."""
    body = _answer(9)
    stub = _Stub(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body), body)
    try:
        assert [(k, r) for k, _d, r in stub.client.poll_stream(3, wait=1)] == [("delta", 9)]
        path, accept = stub.asked[0]
        assert "stream" in path and NDJSON in accept
    finally:
        stub.close()


CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n" \
          b"Transfer-Encoding: chunked\r\n\r\n"


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("body", [
    _chunk(_answer(9) + b"\n"),  # cut after a chunk: no last chunk
    _chunk(_answer(9) + b"\n") + b"40\r\n{\"full\"",  # cut inside one
    _chunk(_answer(9) + b"\n") + _chunk(b"{\"full\": fal") + b"0\r\n\r\n",  # a line cut
    _chunk(_answer(9) + b"\n") + _chunk(b"not json\n") + b"0\r\n\r\n",
    _chunk(_answer(9) + b"\n") + _chunk(b'{"full": false, "revision": 10, "delta": []}\n')
    + b"0\r\n\r\n",
], ids=["no-last-chunk", "cut-in-a-chunk", "line-cut", "not-json", "not-a-delta"])
def test_the_agents_client_refuses_a_stream_cut_short(body):
    """Each answer before the cut is taken (its revision is where the next
    poll starts); the cut is ServerUnavailable (the agent retries), never
    the normal end of a stream."""
    stub = _Stub(CHUNKED, body)
    try:
        got = []
        with pytest.raises(sync_client.ServerUnavailable):
            for kind, _d, rev in stub.client.poll_stream(3, wait=1):
                got.append((kind, rev))
        assert got == [("delta", 9)]
    finally:
        stub.close()


def test_the_agents_client_takes_a_whole_stream():
    stub = _Stub(CHUNKED, _chunk(_answer(9) + b"\n" + _answer(10)[:20]) +
                 _chunk(_answer(10)[20:] + b"\n") + b"0\r\n\r\n")
    try:
        assert [(k, r) for k, _d, r in stub.client.poll_stream(3, wait=1)] == \
            [("delta", 9), ("delta", 10)]
    finally:
        stub.close()


def test_the_agents_client_takes_a_stream_of_known_length():
    """A stream with a Content-Length (a proxy that gathered it): taken
    whole, and the connection serves the next poll; one cut short of its
    length is ServerUnavailable."""
    body = _answer(9) + b"\n" + _answer(10) + b"\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n"
    stub = _Stub(head % len(body), body, keep_alive=True)
    try:
        for _ in range(3):
            assert [(k, r) for k, _d, r in stub.client.poll_stream(3, wait=1)] == \
                [("delta", 9), ("delta", 10)]
    finally:
        stub.close()
    stub = _Stub(head % (len(body) + 10), body)
    try:
        with pytest.raises(sync_client.ServerUnavailable):
            list(stub.client.poll_stream(3, wait=1))
    finally:
        stub.close()
