"""Review s28 of the API server process as an operator runs it
(quantum_ovs/cmd/server.py, quantum_ovs/api/middleware.py, wsgi.py,
router.py).  Every test here failed when written."""

import json
import os
import signal
import socket
import time

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_operations import make_ops_api  # noqa: F401 - a fixture


# ------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("wsgi-review")
    with ServerProcess(f"sqlite:///{path}/s.sqlite") as s:
        yield s


SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CALLER = b"Host: x\r\nX-Project-Id: p1\r\nX-Roles: member\r\n"


def _raw(port, data, timeout=10.0):
    """Send ``data`` as is; everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError as e:
        out += f"<<{type(e).__name__}>>".encode()
    finally:
        s.close()
    return out


def _unchecked(api):
    """No OpenAPI drift check on this client: the description has no
    server under a path prefix (tests/fixtures/openapi_check.py)."""
    api.app._qovs_checker = (id(api.app.app), None)
    return api


def _status(answer):
    return answer.split(b"\r\n", 1)[0].decode("latin1")


# ------------------------------------------------------------ W1 links under a prefix
@SQLITE
def test_version_links_keep_the_proxy_prefix(make_ops_api):  # noqa: F811
    """Behind a proxy that publishes the API under a path (X-Forwarded-Prefix,
    oslo's HTTPProxyToWSGI makes it SCRIPT_NAME), the version documents
    must point at that path, as Neutron's (req.application_url); the
    pagination links already do (req.path_url)."""
    api = _unchecked(make_ops_api(oslo_middleware={"enable_proxy_headers_parsing": True}))
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cloud.example.com",
               "X-Forwarded-Prefix": "/networking"}
    api.network(name="a")
    api.network(name="b")
    page = api.get("/v2.0/networks?limit=1", headers=proxied, status=200).data
    assert page["networks_links"][0]["href"].startswith(
        "https://cloud.example.com/networking/v2.0/networks?")
    versions = api.get("/", headers=proxied, status=200).data["versions"]
    assert versions[0]["links"][0]["href"] == "https://cloud.example.com/networking/v2.0/"
    index = api.get("/v2.0/", headers=proxied, status=200).data["resources"]
    for r in index:
        assert r["links"][0]["href"].startswith("https://cloud.example.com/networking/v2.0/")


@SQLITE
def test_version_links_keep_the_mount_point_under_uwsgi(make_ops_api):  # noqa: F811
    """The app mounted at /networking (uWSGI/mod_wsgi: SCRIPT_NAME, the
    way devstack deploys Neutron's API): GET / must send clients (keystoneauth's
    version discovery follows this link) to /networking/v2.0/."""
    api = _unchecked(make_ops_api())
    r = api.app.get("/", extra_environ={"SCRIPT_NAME": "/networking"},
                    headers={"X-Project-Id": "p1"})
    assert r.json["versions"][0]["links"][0]["href"] == "http://localhost/networking/v2.0/"


# ------------------------------------------------------------ W2 graceful shutdown
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish(tmp_path, workers):
    """SIGTERM (systemctl stop/restart) must let a request the server has
    begun finish, as Neutron's API under uWSGI does
    (hook-master-start = unix_signal:15 gracefully_kill_them_all) and as
    this project's own standalone agent API server does; here the process
    (or its workers, SIG_DFL) dies at once and the client of a POST is
    left not knowing whether its network was made."""
    srv = ServerProcess(f"sqlite:///{tmp_path}/q.sqlite", workers=workers)
    with srv:
        body = json.dumps({"network": {"name": "in-flight"}}).encode()
        head = (b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER +
                b"Content-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        answer = b""
        try:
            s.sendall(head + body[:10])
            time.sleep(0.5)  # the head is read: the app is reading the body
            os.kill(srv.proc.pid, signal.SIGTERM)
            time.sleep(0.5)
            s.sendall(body[10:])
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError as e:
            answer += f"<<{type(e).__name__}>>".encode()
        finally:
            s.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


# ------------------------------------------------------------ W3 malformed chunked body
def test_malformed_chunked_body_is_400_not_500(server):
    """A chunk size that is not hex is the client's error: 400 (as this
    project's own threaded server answers), not a 500 with a traceback in
    the error log."""
    answer = _raw(server.port, b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER +
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n5\r\n{\"net\r\nzz\r\n")
    assert _status(answer).startswith("HTTP/1.1 400"), answer[:400]


# ------------------------------------------------------------ W4 log forging
def test_access_log_lines_cannot_be_forged_through_the_url(server):
    """A percent-encoded CR/LF in the path (any client, before
    authentication) must not start a line of its own in the server's
    log: here it writes a whole forged access-log line (an admin's
    DELETE) that log readers and SIEMs take for real."""
    forged = ("2001-01-01 00:00:00.000 1 INFO quantum_ovs.access "
              "[- req-forged admin admin - - -] DELETE /v2.0/networks/x 204 1.0ms")
    path = "/v2.0/networks%0d%0a" + forged.replace(" ", "%20")
    answer = _raw(server.port, f"GET {path} HTTP/1.1\r\n".encode() + CALLER +
                  b"Connection: close\r\n\r\n")
    assert _status(answer).startswith("HTTP/1.1 404"), answer[:300]
    time.sleep(0.3)
    lines = server.log().splitlines()
    assert not [ln for ln in lines if ln.startswith("2001-01-01 00:00:00.000")], \
        [ln for ln in lines if "req-forged" in ln]


# ------------------------------------------------------------ W5 duplicate Content-Length
def test_conflicting_content_lengths_are_400(server):
    """Two Content-Length headers with different values: the body's end is
    ambiguous (request smuggling behind a proxy that takes the other one);
    RFC 9112 6.3 has the server answer 400 and close, as this project's
    threaded server does.  Here the first is taken and the network made."""
    body = b'{"network": {"name": "smuggled"}}'
    answer = _raw(server.port, b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER +
                  b"Content-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 60)
                  + body)
    assert _status(answer).startswith("HTTP/1.1 400"), answer[:400]


# ------------------------------------------------------------ W6 max_request_body_size
@SQLITE
def test_max_request_body_size_above_4_mib_is_honoured(make_ops_api):  # noqa: F811
    """README: ``[oslo_middleware] max_request_body_size`` is the limit
    (4 MiB by default).  An operator who raises it (large bulk requests)
    still gets 413 past 4 MiB: a second, hard-coded limit in the API
    (quantum_ovs.api.wsgi.MAX_BODY) refuses what the option allows."""
    api = make_ops_api(oslo_middleware={"max_request_body_size": 16 * 1024 * 1024})
    big = {"network": {"name": "n", "description": "x" * (5 * 1024 * 1024)}}
    r = api.post("/v2.0/networks", big)
    # read and judged (a description over 255 characters: 400), not 413
    assert r.status_int == 400, (r.status, r.text[:300])


# ------------------------------------------------------------ W7 slow request bodies
def test_a_body_trickled_a_byte_at_a_time_is_cut_off(tmp_path):
    """The head of a request has a deadline (client_header_timeout: no
    slowloris), its body none: client_socket_timeout bounds each read
    only, so a client sending one byte a second keeps its connection (and
    one of max_connections / max_connections_per_client) for as long as it
    likes -- a day for a 100 KB body -- with almost no traffic.  The
    project's own threaded server gives a body a whole deadline
    (quantum_ovs/wsgi/threaded.py MIN_BODY_RATE); here none."""
    conf = "client_header_timeout = 2\nclient_socket_timeout = 3\n"
    with ServerProcess(f"sqlite:///{tmp_path}/s.sqlite", extra_conf=conf) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        try:
            s.sendall(b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER +
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                      b'{"network": {"name": "')
            start = time.monotonic()
            cut = None
            while time.monotonic() - start < 20:
                try:
                    s.sendall(b"a")
                except OSError:
                    cut = time.monotonic() - start
                    break
                s.settimeout(1.0)
                try:
                    s.recv(65536)  # an answer (408, 400...) or the close
                except socket.timeout:
                    continue
                except OSError:
                    pass
                cut = time.monotonic() - start
                break
        finally:
            s.close()
    # (a rate of 64 KiB/s past client_socket_timeout, as threaded.py: ~5 s)
    assert cut is not None and cut < 15, f"still reading a trickled body after {cut or 20:.0f} s"


# ------------------------------------------------------------ added with the fixes
def test_sigterm_answers_waiting_polls_and_refuses_new_connections(tmp_path):
    """(W2, with the fix.)  An agent's parked long poll is a request in
    flight too: answered at once (an empty delta) rather than held for the
    grace period and cut; the listening socket is closed at once (a new
    client is refused, not left in the backlog); the parent of two workers
    exits 0 as soon as they have."""
    conf = "[agent_api]\ntoken = review-s28-token\n"
    srv = ServerProcess(f"sqlite:///{tmp_path}/q.sqlite", workers=2, extra_conf=conf)
    with srv:
        poll = socket.create_connection(("127.0.0.1", srv.port), timeout=1.0)
        try:
            poll.sendall(b"GET /agent-api/v1/hosts/h1/state?since=0&timeout=50 HTTP/1.1\r\n"
                         b"Host: x\r\nX-Agent-Token: review-s28-token\r\n\r\n")
            with pytest.raises(socket.timeout):
                poll.recv(100)  # parked
            poll.settimeout(10)
            started = time.monotonic()
            os.kill(srv.proc.pid, signal.SIGTERM)
            answer = poll.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert time.monotonic() - started < 3
        finally:
            poll.close()
        assert srv.proc.wait(10) == 0
        assert time.monotonic() - started < 5
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_other_framing_conflicts_are_refused(server):
    """(W5, with the fix: the threaded server's framing rules, one copy.)"""
    for head, code in [
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "400"),
            (b"Transfer-Encoding: gzip\r\n", "501"),
            (b"Content-Length: +2\r\n", "400"),
            (b"Content-Length: 2\r\nContent-Length: 2\r\n", "400")]:
        answer = _raw(server.port, b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER + head +
                      b"Content-Type: application/json\r\n\r\n{}")
        assert _status(answer).startswith("HTTP/1.1 " + code), (head, answer[:300])
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["NeutronError"]


def test_a_malformed_chunk_ends_the_connection(server):
    """(W3, with the fix.)  Where the next request would begin is not known:
    what follows a bad chunk is not read as a request."""
    answer = _raw(server.port, b"POST /v2.0/networks HTTP/1.1\r\n" + CALLER +
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\n0\r\n\r\nGET /v2.0/networks HTTP/1.1\r\n" + CALLER + b"\r\n")
    assert _status(answer).startswith("HTTP/1.1 400"), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"Connection: close" in answer
