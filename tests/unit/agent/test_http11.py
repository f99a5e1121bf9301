"""agent.http11: the agent's HTTP/1.1 client, against a loopback server that
answers with exactly the bytes each test gives it."""

import socket
import threading

import pytest

from agent import http11


class Canned:
    """A loopback server: the n-th connection gets ``answers[n]`` (a list of
    raw answers, one per request read; None: close without answering)."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []  # (connection number, raw request head)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.netloc = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for n, answers in enumerate(self.answers):
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c:
                f = c.makefile("rb")
                for raw in answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = f.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    body = f.read(length) if length else b""
                    self.requests.append((n, head, body))
                    if raw is None:
                        break
                    c.sendall(raw)
                f.close()

    def close(self):
        self.srv.close()
        self.thread.join(5)


@pytest.fixture
def canned():
    made = []

    def make(*answers):
        made.append(Canned(list(answers)))
        return made[-1]
    yield make
    for c in made:
        c.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_a_kept_connection_serves_several_requests(canned):
    srv = canned([OK, b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello"])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/a", headers={"X-Agent-Token": "t"})
    r = conn.getresponse()
    assert (r.status, r.getheader("content-type"), r.read()) == (200, "application/json", b"{}")
    sock = conn.sock
    conn.request("POST", "/b", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (201, b"hello")
    assert conn.sock is sock
    heads = [(n, h.split(b"\r\n")[0], b) for n, h, b in srv.requests]
    assert heads == [(0, b"GET /a HTTP/1.1", b""), (0, b"POST /b HTTP/1.1", b'{"x": 1}')]
    assert b"X-Agent-Token: t\r\n" in srv.requests[0][1]
    assert b"Host: " + srv.netloc.encode() in srv.requests[0][1]
    conn.close()


def test_connection_close_and_http_1_0_open_a_new_connection(canned):
    srv = canned([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na"],
                 [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"], [OK])
    conn = http11.Connection(srv.netloc, timeout=5)
    for want in (b"a", b"b", b"{}"):
        conn.request("GET", "/")
        assert conn.getresponse().read() == want
    assert [n for n, _h, _b in srv.requests] == [0, 1, 2]
    conn.close()


def test_chunked_answers_come_chunk_by_chunk(canned):
    body = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-ndjson\r\n\r\n"
            b"6;ext=1\r\n{\"a\":1\r\n2\r\n}\n\r\n0\r\nTrailer: x\r\n\r\n")
    srv = canned([body, OK])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/stream")
    r = conn.getresponse()
    assert r.chunked and r.length is None
    got = []
    while data := r.read1(4):
        got.append(data)
    assert b"".join(got) == b'{"a":1}\n' and len(got) >= 3  # (4-byte reads)
    assert r.done
    conn.request("GET", "/next")  # the same connection, after the trailers
    assert conn.getresponse().read() == b"{}"
    assert [n for n, _h, _b in srv.requests] == [0, 0]


def test_a_chunked_answer_cut_between_chunks_raises(canned):
    srv = canned([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read1() == b"abc"
    with pytest.raises(http11.ProtocolError):
        r.read1()


def test_a_length_body_cut_short(canned):
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    srv = canned([cut], [cut], [OK])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read1() == b"abc" and r.read1() == b""
    assert r.length == 7  # what poll_stream tells a cut answer by
    conn.request("GET", "/")  # a new connection
    with pytest.raises(http11.ProtocolError):
        conn.getresponse().read()
    conn.close()
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"{}"


def test_read_to_close_informational_and_empty_answers(canned):
    srv = canned([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", OK],
                 [b"HTTP/1.1 200 OK\r\n\r\nall of it"])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("DELETE", "/x")
    r = conn.getresponse()
    assert (r.status, r.read(), r.done) == (204, b"", True)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"{}"
    conn.close()
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read() == b"all of it" and conn.sock is None


def test_a_server_that_closes_a_kept_connection(canned):
    srv = canned([OK, None])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/")
    conn.getresponse().read()
    conn.request("GET", "/")
    with pytest.raises(ConnectionResetError):  # (the caller may send again)
        conn.getresponse()


def test_an_unread_answer_is_not_followed_on_its_connection(canned):
    srv = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", OK], [OK])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/")
    conn.getresponse()  # body left
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"{}"
    assert [n for n, _h, _b in srv.requests] == [0, 1]


@pytest.mark.parametrize("raw", [
    b"SPDY/3 200 OK\r\n\r\n",
    b"HTTP/1.1 abc OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * (http11.MAX_LINE + 10) + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * (http11.MAX_HEADERS + 1) + b"\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    # a size int() takes but HTTP does not (a negative one read on forever)
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabcdefgh\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n" + b"a" * 16
    + b"\r\n0\r\n\r\n",
])
def test_what_is_not_http_is_a_protocol_error(canned, raw):
    srv = canned([raw])
    conn = http11.Connection(srv.netloc, timeout=5)
    conn.request("GET", "/")
    with pytest.raises(http11.ProtocolError):
        conn.getresponse().read()


@pytest.mark.parametrize("netloc, want", [
    ("server", ("server", 80)), ("server:9696", ("server", 9696)),
    ("[::1]", ("::1", 80)), ("[fd00::2]:9697", ("fd00::2", 9697)),
])
def test_netlocs(netloc, want):
    assert http11.split_netloc(netloc, 80) == want


@pytest.mark.parametrize("netloc", ["", ":80", "[::1", "[::1]x", "h:0", "h:70000", "h:x"])
def test_bad_netlocs(netloc):
    with pytest.raises(ValueError):
        http11.split_netloc(netloc, 80)
