"""An HTTP client of the REST API for tests and benchmarks: one keep-alive
HTTP/1.1 connection to a server on loopback, speaking JSON as one project
(the noauth identity headers).

    c = Client(server.port, project="p1", roles="member")
    status, body = c.request("POST", "/v2.0/networks", {"network": {}})  # parsed
    status, raw = c.call("GET", "/v2.0/ports", want=200)     # bytes; raises otherwise
    net = c.json("POST", "/v2.0/networks", {...}, want=201)  # parsed; raises otherwise
"""

import http.client
import json
import time

# A connection idle this long is opened anew: the server closes idle
# keep-alive connections after [DEFAULT] client_header_timeout (20 s).
IDLE_CLOSE = 10.0


class Client:
    """One keep-alive connection; ``roles`` None sends no X-Roles (the
    server's noauth default: a member)."""

    def __init__(self, port, project="test", roles=None, timeout=60, host="127.0.0.1"):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.used = time.monotonic()
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "X-Project-Id": project}
        if roles:
            self.headers["X-Roles"] = roles

    def call(self, method, path, body=None, want=None):
        """(status, raw body); with ``want``, another status raises."""
        data = None if body is None else json.dumps(body).encode()
        if time.monotonic() - self.used > IDLE_CLOSE:
            self.conn.close()  # reconnects on the next request
        self.conn.request(method, path, body=data, headers=self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.used = time.monotonic()
        if want is not None and resp.status != want:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:2000]!r}")
        return resp.status, raw

    def request(self, method, path, body=None):
        """(status, parsed JSON body, or its text when it is not JSON, or
        None when empty)."""
        status, raw = self.call(method, path, body)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed

    def json(self, method, path, body=None, want=200):
        """The parsed body of an answer with status ``want`` (else raises)."""
        return json.loads(self.call(method, path, body, want)[1])

    def close(self):
        self.conn.close()
