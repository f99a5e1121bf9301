"""quantum-ovs-server answers a plain agent poll without eventlet.wsgi's
per-request machinery (cmd/server.py _Protocol.get_environ and
handle_one_response): the bytes on the wire are those eventlet.wsgi
writes for the same request (but the Date and the request id), and
anything the fast path does not take goes eventlet's way.  In a
subprocess (the module monkey-patches the process with eventlet): one
app on SQLite, served twice, with and without the direct path."""

import json
import re
import subprocess
import sys

import pytest

TOKEN = "direct-polls-token"
STATE = "/agent-api/v1/hosts/hv-1/state"


def _head(line, *headers, token=TOKEN):
    lines = [line, "Host: 127.0.0.1"] + ([f"X-Agent-Token: {token}"] if token else [])
    return ("\r\n".join(lines + list(headers)) + "\r\n\r\n").encode("latin-1")


# (requests sent one after the other on one connection, whether the first
# is expected to take the direct path)
CASES = [
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1"),
      _head(f"GET {STATE}?since=-1&timeout=0&features=group_members HTTP/1.1")], True),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", "Connection: keep-alive")], True),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", "Connection: close")], True),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.0")], True),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.0", "Connection: Keep-Alive"),
      _head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.0")], True),
    ([_head(f"GET {STATE}?timeout=0&since=-1 HTTP/1.1",
            "X-OpenStack-Request-Id: req-12345678-1234-1234-1234-123456789012",
            "Accept: application/json", "X_Agent_Token: other", "Content-Length: 0")], True),
    ([_head("GET /agent-api/v1/hosts/hv%2D1/state?since=-1&timeout=0 HTTP/1.1")], True),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", token="wrong")], False),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", token=None)], False),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", f"X-Agent-Token: {TOKEN}")], False),
    ([_head(f"GET {STATE}?since=abc HTTP/1.1")], False),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", "Content-Length: 2") + b"{}"], False),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", "Transfer-Encoding: chunked")
      + b"0\r\n\r\n"], False),
    ([_head(f"HEAD {STATE}?since=-1&timeout=0 HTTP/1.1")], False),
    ([_head(f"GET {STATE}/?since=-1&timeout=0 HTTP/1.1")], False),
    ([_head(f"GET {STATE}?since=-1&timeout=0 HTTP/1.1", "X-Folded: a\r\n b")], False),
    ([_head("GET /agent-api/v1/hosts/other/state?since=-1&timeout=0 HTTP/1.1")], True),
]

SCRIPT = r"""
import json, os, sys
import eventlet
from quantum_ovs.cmd import server
from quantum_ovs import config, service

cases = json.loads(sys.stdin.read())
tmp = os.environ["DIRECT_TMP"]
with open(os.path.join(tmp, "q.conf"), "w") as f:
    f.write("[DEFAULT]\nauth_strategy = noauth\n[database]\n"
            f"connection = sqlite:///{tmp}/q.db\n[agent_api]\ntoken = "
            + os.environ["TOKEN"] + "\n")
conf = config.make_conf(["--config-file", os.path.join(tmp, "q.conf")])
_db, _plugin, app = service.build(conf, migrate=True)
fast = app
while not isinstance(fast, server.agent_api.FastPolls):
    fast = fast.app
taken = []

def protocol(direct):
    class P(server._Protocol):
        fast_polls = fast if direct else None

        def handle_one_response(self):
            taken.append(self.direct)
            return super().handle_one_response()
    return P

ports = []
for direct in (True, False):
    sock = eventlet.listen(("127.0.0.1", 0))
    ports.append(sock.getsockname()[1])
    eventlet.spawn(eventlet.wsgi.server, sock, server._LongPolls(app, 100),
                   log=server._WsgiLog(), log_output=False, keepalive=True, debug=False,
                   protocol=protocol(direct))

def complete(data):
    # Whether data ends with a whole answer (by its Content-Length).
    head, sep, body = data.rpartition(b"HTTP/1.")[2].partition(b"\r\n\r\n")
    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-length:")]
    return sep and length and len(body) >= length[0]

def exchange(port, requests):
    s = eventlet.connect(("127.0.0.1", port))
    s.settimeout(2)
    out = b""
    for r in requests:
        s.sendall(r.encode("latin-1"))
        got = b""
        while not complete(got):
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        out += got
    s.settimeout(0.05)  # nothing more comes
    try:
        out += s.recv(65536)
    except OSError:
        pass
    s.close()
    return out.decode("latin-1")

results = []
for requests, _direct in cases:
    row = []
    for port in ports:
        del taken[:]
        row.append([exchange(port, requests), list(taken)])
    results.append(row)
print(json.dumps(results))
"""


def _normal(raw):
    raw = re.sub(r"Date: [^\r]*\r\n", "Date: -\r\n", raw)
    return re.sub(r"X-Openstack-Request-Id: req-[0-9a-f-]{36}", "X-Openstack-Request-Id: -",
                  raw)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("direct")
    cases = [([r.decode("latin-1") for r in reqs], d) for reqs, d in CASES]
    out = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(cases), text=True,
                         capture_output=True, timeout=120,
                         env={**__import__("os").environ, "DIRECT_TMP": str(tmp),
                              "TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("i", range(len(CASES)))
def test_direct_answer_is_eventlets(answers, i):
    (direct_raw, direct_taken), (full_raw, full_taken) = answers[i]
    assert full_taken and not any(full_taken)
    expect_direct = CASES[i][1]
    assert direct_taken[0] is expect_direct
    assert direct_raw.startswith("HTTP/1.1 ")
    assert _normal(direct_raw) == _normal(full_raw)
    if expect_direct:
        assert "X-Openstack-Request-Id: req-" in direct_raw
        assert direct_raw.count("HTTP/1.1 200 OK") == len(CASES[i][0])
