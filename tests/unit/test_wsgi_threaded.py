"""quantum_ovs.wsgi.threaded: the thread-per-connection WSGI server of
quantum-ovs-agent-api, over real sockets on loopback."""

import contextlib
import json
import socket
import threading
import time

import pytest

from quantum_ovs.wsgi import threaded


def echo_app(environ, start_response):
    """Answers what it was asked: method, path, query, headers, body."""
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/wait":
        time.sleep(float(environ["QUERY_STRING"] or 0.5))
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    out = json.dumps({
        "method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"], "body": body.decode("latin-1"),
        "headers": sorted(k for k in environ if k.startswith("HTTP_")),
        "length": environ.get("CONTENT_LENGTH"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


@pytest.fixture
def serve():
    servers = []

    def start(app=echo_app, **kw):
        opts = dict(max_connections=50, header_timeout=2.0, socket_timeout=5.0)
        opts.update(kw)
        server = threaded.ThreadedServer(app, "127.0.0.1", 0, **opts)
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True)
        t.start()
        servers.append((server, t))
        return server

    yield start
    for server, t in servers:
        server.shutdown()
        server.close()
        t.join(5)


def connect(server):
    s = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
    s.settimeout(10)
    return s


class Reader:
    """HTTP/1.1 responses read off one connection, one after the other."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", 0))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


@contextlib.contextmanager
def trickling(sock, data, every):
    """``data`` sent on ``sock`` every ``every`` seconds meanwhile (until
    the connection fails)."""
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                sock.sendall(data)
            except OSError:
                return
            stop.wait(every)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


def test_keep_alive_and_pipelined_requests(serve):
    server = serve()
    s = connect(server)
    r = Reader(s)
    s.sendall(b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, body = r.response()
    assert status == 200 and "connection" not in headers
    assert json.loads(body)["query"] == "x=1"
    # Three at once on the same connection: answered in order.
    s.sendall(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
              b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
              b"GET /d%20e HTTP/1.1\r\nHost: h\r\n\r\n")
    got = [json.loads(r.response()[2]) for _ in range(3)]
    assert [g["path"] for g in got] == ["/b", "/c", "/d e"]
    assert got[1]["body"] == "hello" and got[1]["method"] == "POST"
    s.sendall(b"GET /f HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers["connection"] == "close"
    assert r.closed()


def test_chunked_body_and_a_body_left_unread(serve):
    def unread(environ, start_response):  # never reads its body
        start_response("204 No Content", [])
        return []

    server = serve()
    s = connect(server)
    r = Reader(s)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n")
    assert json.loads(r.response()[2])["body"] == "abcdefg"
    server2 = serve(unread)
    s2 = connect(server2)
    r2 = Reader(s2)
    s2.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
               b"POST /y HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
    assert r2.response()[0] == 204 and r2.response()[0] == 204


H = b"POST /x HTTP/1.1\r\nHost: h\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


@pytest.mark.parametrize("request_bytes, status", [
    (H + b"Content-Length: 99999999\r\n\r\n", 413),
    (H + b"Content-Length: -1\r\n\r\n", 400),
    (H + b"Content-Length: +5\r\n\r\nhello", 400),
    (H + b"Content-Length: 1x\r\n\r\n", 400),
    (H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /x\r\n\r\n", 400),  # HTTP/0.9
    (b"GET /x HTTP/2.0\r\n\r\n", 505),
    (b"GET  /x HTTP/1.1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET /x HTTP/1.1\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n", 500),
    (b"GET /x HTTP/1.1\nHost: h\n\n", 400),  # bare LF
    # Framing read one way only (request smuggling): each of these is refused
    (H + b"garbage\r\nContent-Length: 38\r\n\r\n" + SMUGGLED, 400),
    (H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    (H + b"Content-Length: 5\r\nContent-Length: 20\r\n\r\nhello" + SMUGGLED, 400),
    (H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    (H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    (H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),  # folded
    (H + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n+a\r\nhellohello\r\n0\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400),
    (H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (H + b"Content-Length: 2\r\nExpect: something\r\n\r\nok", 417),
    (H + b"Content-Length: " + b"1" * 5000 + b"\r\n\r\n", 413),
])
def test_bad_requests_get_a_neutron_error(serve, request_bytes, status):
    server = serve(max_body=1000)
    s = connect(server)
    s.sendall(request_bytes)
    r = Reader(s)
    got, headers, body = r.response()
    assert got == status, body
    err = json.loads(body)["NeutronError"]
    assert err["type"] and err["message"] and "Traceback" not in body.decode()
    assert headers["connection"] == "close"
    assert r.buf == b"" and r.closed()  # nothing more is read off that connection


def test_chunked_body_over_the_limit(serve):
    server = serve(max_body=10)
    s = connect(server)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    assert Reader(s).response()[0] == 413


def test_proxy_headers_and_underscored_names_are_dropped(serve):
    server = serve()
    s = connect(server)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n"
              b"Forwarded: for=1.2.3.4\r\nX_Agent_Token: t\r\nX-Agent-Token: u\r\n\r\n")
    headers = json.loads(Reader(s).response()[2])["headers"]
    assert headers == ["HTTP_HOST", "HTTP_X_AGENT_TOKEN"]


def test_head_has_no_body_and_expect_continue(serve):
    server = serve()
    s = connect(server)
    r = Reader(s)
    s.sendall(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n")
    while r.buf.count(b"\r\n\r\n") < 2:
        r._fill()
    head, rest = r.buf.split(b"\r\n\r\n", 1)
    # HEAD: the length the answer would have, and no body: the next answer follows
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 0" not in head
    assert rest.startswith(b"HTTP/1.1 200")
    r.buf = rest
    assert json.loads(r.response()[2])["path"] == "/y"
    s.sendall(b"POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
              b"Expect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in r.buf:
        r._fill()
    assert r.buf.startswith(b"HTTP/1.1 100")
    r.buf = r.buf.split(b"\r\n\r\n", 1)[1]
    s.sendall(b"ok")
    assert json.loads(r.response()[2])["body"] == "ok"


def test_idle_and_slow_heads_are_cut_at_the_deadline(serve):
    """An idle connection and one that sends its head a byte at a time
    (each byte well within a read's timeout) are both closed once the
    head's deadline has passed."""
    server = serve(header_timeout=0.5, socket_timeout=60.0)
    idle = connect(server)
    slow = connect(server)
    with trickling(slow, b"G", 0.1):
        idle.settimeout(10)
        slow.settimeout(10)
        assert Reader(idle).closed()
        assert Reader(slow).closed()  # while the bytes still came


def test_connections_past_the_cap_get_503_at_once(serve):
    server = serve(max_connections=3, header_timeout=5.0)
    held = [connect(server) for _ in range(3)]
    deadline = time.monotonic() + 5
    while server.open < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    extra = connect(server)
    status, headers, body = Reader(extra).response()
    assert status == 503 and headers["connection"] == "close"
    assert json.loads(body)["NeutronError"]["type"] == "ServiceUnavailable"
    held.pop().close()
    deadline = time.monotonic() + 5
    while server.open >= 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    s = connect(server)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert Reader(s).response()[0] == 200


def test_many_waiting_requests_each_on_its_thread(serve):
    """200 requests that each wait for all of them to be in the app are
    answered: each runs on its own thread (one after the other, the first
    would wait for ever)."""
    inside, go, lock = [0], threading.Event(), threading.Lock()

    def gate(environ, start_response):
        with lock:
            inside[0] += 1
        go.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"in" if go.is_set() else b"timed out"]

    server = serve(gate, max_connections=300)
    socks = [connect(server) for _ in range(200)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    deadline = time.monotonic() + 30
    while inside[0] < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert inside[0] == 200
    go.set()
    assert all(Reader(s).response()[2] == b"in" for s in socks)


def test_the_application_sees_the_framing_it_was_sent_with(serve):
    """CONTENT_LENGTH is the body's; an underscored Content_Length is dropped."""
    server = serve()
    s = connect(server)
    s.sendall(H + b"Content_Length: 99\r\nContent-Length: 5\r\n\r\nhello")
    got = json.loads(Reader(s).response()[2])
    assert got["length"] == "5" and got["body"] == "hello"


def test_write_callable_status_checks_and_connection_close(serve):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"ab")
            return [b"cd"]
        if path == "/badstatus":
            start_response("OK", [])
            return [b""]
        if path == "/badheader":
            start_response("200 OK", [("X-A", "a\r\nX-B: b")])
            return [b""]
        start_response("200 OK", [("Connection", "close")])
        return [b"bye"]

    server = serve(app)
    s = connect(server)
    r = Reader(s)
    s.sendall(b"GET /write HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.response()[2] == b"abcd"
    s.sendall(b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, body = r.response()
    assert body == b"bye" and headers["connection"] == "close" and r.closed()
    for path in (b"/badstatus", b"/badheader"):
        s = connect(server)
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        status, _headers, body = Reader(s).response()
        assert status == 500 and b"X-B" not in body, body


def test_close_waits_for_the_requests_being_answered(serve):
    """close(grace): no new connection is taken, and a request already in
    the application gets its answer."""
    inside, release = threading.Event(), threading.Event()

    def slow(environ, start_response):
        inside.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = serve(slow)
    s = connect(server)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert inside.wait(10)
    closer = threading.Thread(target=server.close, kwargs={"grace": 10})
    closer.start()
    # Stops listening (once the accept loop lets the closed socket go).
    deadline = time.monotonic() + 5
    while True:
        try:
            connect(server).close()
        except OSError:
            break
        assert time.monotonic() < deadline, "still listening"
        time.sleep(0.05)
    assert closer.is_alive()  # waiting for the request
    release.set()
    status, headers, body = Reader(s).response()
    assert (status, body, headers["connection"]) == (200, b"done", "close")
    closer.join(10)
    assert not closer.is_alive()


def test_chunk_count_and_slow_bodies_are_bounded(serve, monkeypatch):
    monkeypatch.setattr(threaded, "MAX_CHUNKS", 3)
    server = serve()
    s = connect(server)
    s.sendall(H + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 5 + b"0\r\n\r\n")
    assert Reader(s).response()[0] == 400
    # A body sent a byte at a time, each well within a read's timeout: cut
    # at the body's deadline (socket_timeout + size / MIN_BODY_RATE).
    monkeypatch.setattr(threaded, "MIN_BODY_RATE", 10 ** 9)
    server = serve(socket_timeout=1.0)
    slow = connect(server)
    slow.sendall(H + b"Content-Length: 1000\r\n\r\n")
    with trickling(slow, b"x", 0.3):
        assert Reader(slow).closed()  # while the bytes still came


FLOOD = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("connected", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        s.sendall(b"x" * 1024)
    except OSError:
        break
    time.sleep(0.001)
"""


def test_a_refused_client_that_keeps_sending_does_not_hold_the_accept_loop(serve):
    import subprocess
    import sys

    server = serve(max_connections=1, header_timeout=30.0)
    held = connect(server)
    deadline = time.monotonic() + 5
    while server.open < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    # refused, and sends all the same (a process of its own: steadily)
    pump = subprocess.Popen([sys.executable, "-c", FLOOD, str(server.effective_port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert pump.stdout.readline().strip() == "connected"
        time.sleep(0.3)
        held.close()
        # its thread sees the close first (a connection made before that
        # is refused: 503, rightly)
        deadline = time.monotonic() + 5
        while server.open > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        s = connect(server)
        s.settimeout(5)  # (the pump stops by itself after 20 s)
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        assert Reader(s).response()[0] == 200
    finally:
        pump.kill()
        pump.wait(10)


def test_close_returns_once_a_large_answer_is_sent(serve):
    inside, release = threading.Event(), threading.Event()
    big = b"y" * (32 * 1024 * 1024)  # (more than the sockets' buffers hold)

    def app(environ, start_response):
        inside.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [big]

    server = serve(app, socket_timeout=30.0)
    s = connect(server)
    s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert inside.wait(10)
    closer = threading.Thread(target=server.close, kwargs={"grace": 20})
    closer.start()
    release.set()
    time.sleep(0.5)  # the answer is stuck in a full socket: not all sent
    assert closer.is_alive()
    status, _headers, body = Reader(s).response()
    assert status == 200 and body == big
    closer.join(10)
    assert not closer.is_alive()
