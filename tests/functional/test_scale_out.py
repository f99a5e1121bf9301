"""Two server processes, each with several API workers, on one database:
a change committed through either wakes the agents long-polling any worker
of either, at once (PostgreSQL: LISTEN/NOTIFY; SQLite: the change feed's
50 ms poll), and only the agents it concerns."""

import http.client
import json
import threading
import time

import pytest

from quantum_ovs.testing.server import ServerProcess

HOSTS = ["so-a", "so-b", "so-c"]
ROUNDS = 8  # (every combination of poll and write server twice)
SHARED_AGENT_TOKEN = "scale-out-shared-agent-token"  # one token for the three hosts


def call(port, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", "X-Roles": "admin",
                              "X-Project-Id": "scaleout",
                              "X-Agent-Token": SHARED_AGENT_TOKEN})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status < 300, (method, path, resp.status, data[:500])
        return json.loads(data) if data else None
    finally:
        conn.close()


@pytest.fixture
def two_servers(db_url):
    servers = []
    try:
        for _ in range(2):
            servers.append(ServerProcess(
                db_url, workers=2,
                extra_conf=f"[agent_api]\ntoken = {SHARED_AGENT_TOKEN}\n").start())
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_a_change_through_either_server_wakes_agents_on_both(two_servers):
    a, b = two_servers
    for i, h in enumerate(HOSTS):
        call(a.port, "POST", "/agent-api/v1/agents",
             {"host": h, "tunnel_ip": f"192.0.2.{i + 1}",
              "configurations": {"tunnel_types": ["vxlan"], "bridge_mappings": {}}})
    shared = call(b.port, "POST", "/v2.0/networks", {"network": {"name": "shared"}})["network"]
    call(a.port, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": shared["id"], "cidr": "10.70.0.0/24", "ip_version": 4}})
    other = call(a.port, "POST", "/v2.0/networks", {"network": {"name": "other"}})["network"]
    call(b.port, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": other["id"], "cidr": "10.71.0.0/24", "ip_version": 4}})
    # so-a and so-b hold the shared network; so-c holds only the other one.
    for h, net in (("so-a", shared), ("so-b", shared), ("so-c", other)):
        call(a.port, "POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": h, "security_groups": []}})
    revs = {h: call(b.port, "GET", f"/agent-api/v1/hosts/{h}/state?since=-1&timeout=0")
            ["revision"] for h in HOSTS}

    latencies = []
    for rnd in range(ROUNDS):
        poll_server = (a, b)[rnd % 2]
        write_server = (a, b)[(rnd // 2) % 2]  # all four combinations
        replies = {}

        def poll(host, since, server=poll_server):
            # A new connection each time: any worker of that server.  The
            # hosts the change concerns wait up to 20 s (an answer before
            # that is the change's), the other one 1.5 s.
            wait = 1.5 if host == "so-c" else 20
            sent = time.monotonic()
            r = call(server.port, "GET",
                     f"/agent-api/v1/hosts/{host}/state?since={since}&timeout={wait}",
                     timeout=wait + 10)
            replies[host] = (time.monotonic(), r, sent)

        threads = [threading.Thread(target=poll, args=(h, revs[h])) for h in HOSTS]
        for t in threads:
            t.start()
        time.sleep(0.3)  # all three are waiting in the server
        port = call(write_server.port, "POST", "/v2.0/ports", {"port": {
            "network_id": shared["id"], "binding:host_id": "so-a",
            "security_groups": []}})["port"]
        committed = time.monotonic()
        for t in threads:
            t.join(35)
        for h in ("so-a", "so-b"):
            at, reply, sent = replies[h]
            assert not reply["full"]
            assert port["id"] in {p["id"] for p in reply["delta"]["ports"]}, (rnd, h, reply)
            assert at - sent < 15, (rnd, h, at - sent)  # woken, not timed out
            latencies.append(max(0.0, at - committed) * 1000)
        # The host that shares nothing waited out its timeout, empty-handed.
        at, reply, sent = replies["so-c"]
        # (A full view is a valid answer to a poll the worker's feed can no
        # longer serve by delta -- a worker that started after ``since`` --
        # but it must come at the timeout too, not be woken by the change.)
        assert (reply["full"] or not reply["delta"]["ports"]) and at - sent > 1.4, \
            (rnd, reply, at - sent)
        revs = {h: replies[h][1]["revision"] for h in HOSTS}

    latencies.sort()
    # Woken by the change (checked above against the 20 s timeout).  How
    # fast is a figure for bench/fanout.py (--servers 2), not a test: timed
    # thresholds here failed on a loaded CI machine.
    print(f"wake-up after the create's response, ms: {[round(x, 1) for x in latencies]}")
