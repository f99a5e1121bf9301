"""quantum-ovs-server parses a plain request head without the email
package (cmd/server.py _Protocol.parse_request): for any head, the same
outcome as the standard library's parse_request.  In a subprocess (the
module monkey-patches the process with eventlet)."""

import json
import subprocess
import sys

HEADS = [
    b"GET /agent-api/v1/hosts/h1/state?since=3&timeout=30.0 HTTP/1.1\r\nHost: x:9696\r\n"
    b"Accept-Encoding: identity\r\nAccept: application/json\r\nX-Agent-Token: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    b"POST /v2.0/ports HTTP/1.1\r\nContent-Length: 2\r\nContent-Type: application/json"
    b"\r\n\r\n{}",
    b"GET / HTTP/1.1\nHost: x\n\n",  # bare newlines
    b"GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   a b  \r\nX-Tab:\tv\r\nX-Dup: 1\r\nx-dup: 2"
    b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Latin: caf\xe9\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n",  # continuation line
    b"GET / HTTP/1.1\r\nBad Header: x\r\nHost: y\r\n\r\n",  # not a header line
    b"GET / HTTP/1.1\r\n: no name\r\nHost: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColon\r\nHost: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-CR: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: y\r\n",  # the stream ends in the head
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    b"GET //evil HTTP/1.1\r\nHost: y\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET /caf\xe9 HTTP/1.1\r\n\r\n",
    b"GET /a\tb HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(99)) + b"\r\n",
    b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
]

SCRIPT = r"""
import io, json, sys
import eventlet.wsgi
from quantum_ovs.cmd import server

class Log:
    def info(self, *a, **k): pass
    error = debug = info
    def write(self, *a): pass

def parse(cls, raw):
    line, _, rest = raw.partition(b"\n")
    h = object.__new__(cls)
    h.raw_requestline = line + b"\n"
    h.rfile = orig = eventlet.wsgi.FileObjectForHeaders(io.BufferedReader(io.BytesIO(rest)))
    h.wfile = io.BytesIO()
    h.server = type("S", (), {"log": Log(), "log_format": "", "pid": 0})()
    h.client_address = ("127.0.0.1", 1)
    h.request_version = "HTTP/1.1"
    h.handle_expect_100 = lambda: True
    try:
        ok = h.parse_request()
    except Exception as e:
        ok = "raised " + type(e).__name__
    headers = getattr(h, "headers", None)
    return {"ok": ok, "command": h.command, "path": getattr(h, "path", None),
            "version": h.request_version, "close": h.close_connection,
            "requestline": getattr(h, "requestline", None),
            "headers": None if headers is None else repr(sorted(
                (k, repr(v)) for k, v in vars(headers).items())),
            "get": None if headers is None else [headers.get(n) for n in (
                "host", "connection", "content-length", "x-dup", "expect")],
            "ctype": None if headers is None else headers.get_content_type(),
            "written": h.wfile.getvalue().decode("latin-1"),
            "left": (b"".join(getattr(h.rfile, "lines", ())) + orig.fp.read()).decode("latin-1")}

out = []
for raw in json.loads(sys.stdin.read()):
    raw = raw.encode("latin-1")
    out.append([parse(server._Protocol, raw), parse(eventlet.wsgi.HttpProtocol, raw)])
print(json.dumps(out))
"""


def test_plain_heads_parse_as_the_standard_library_parses_them():
    got = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=120, check=True,
                         input=json.dumps([h.decode("latin-1") for h in HEADS])).stdout
    results = json.loads(got.splitlines()[-1])
    assert len(results) == len(HEADS)
    for head, (ours, stdlib) in zip(HEADS, results):
        assert ours == stdlib, head
    # The plain ones did parse (the comparison is not between two failures).
    assert [r[0]["ok"] for r in results[:8]] == [True] * 8
    assert results[0][0]["get"][0] == "x:9696" and results[6][0]["get"][3] == "1"
