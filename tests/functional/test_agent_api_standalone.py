"""quantum-ovs-agent-api: the agent API in a process of its own (threads,
no eventlet) beside quantum-ovs-server's REST API, on one database.  A
change made through the REST process wakes the agent parked on the agent
API process (PostgreSQL: LISTEN/NOTIFY; SQLite: the feed's poll), and
only the agents it concerns; credentials are confined as on the server."""

import http.client
import json
import subprocess
import sys
import threading
import time

import pytest

from quantum_ovs.testing.procs import alive
from quantum_ovs.testing.server import ServerProcess

HOST_A, HOST_B = "sa-a", "sa-b"


def call(port, method, path, body=None, token=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json", "X-Roles": "admin",
               "X-Project-Id": "standalone"}
    if token:
        headers["X-Agent-Token"] = token
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def ok(port, method, path, body=None, token=None, want=200):
    status, data = call(port, method, path, body, token)
    assert status == want, (method, path, status, data)
    return data


@pytest.fixture
def rest_and_agent_api(db_url):
    started = []
    try:
        started.append(ServerProcess(db_url).start())
        started.append(ServerProcess(db_url, module="quantum_ovs.cmd.agent_api").start())
        yield started
    finally:
        for s in started:
            s.stop()


def test_rest_change_wakes_agent_parked_on_standalone_agent_api(rest_and_agent_api):
    rest, agents = rest_and_agent_api
    assert agents.proc.pid != rest.proc.pid and alive(agents.proc.pid)
    assert agents.port != rest.port
    tok_a, tok_b = rest.agent_credential(HOST_A), rest.agent_credential(HOST_B)

    # Authentication and confinement, as on the server.
    assert call(agents.port, "GET", f"/agent-api/v1/hosts/{HOST_A}/state")[0] == 401
    assert call(agents.port, "GET", f"/agent-api/v1/hosts/{HOST_A}/state",
                token="not-a-credential")[0] == 401
    status, err = call(agents.port, "GET", f"/agent-api/v1/hosts/{HOST_B}/state",
                       token=tok_a)
    assert status == 403 and err["NeutronError"]["type"] == "HTTPForbidden"
    assert call(agents.port, "POST", "/agent-api/v1/agents",
                {"host": HOST_B, "tunnel_ip": "192.0.2.2"}, token=tok_a)[0] == 403
    # The REST API is not served there.
    status, err = call(agents.port, "GET", "/v2.0/networks")
    assert status == 404 and "NeutronError" in err

    for host, tok, ip in ((HOST_A, tok_a, "192.0.2.1"), (HOST_B, tok_b, "192.0.2.2")):
        ok(agents.port, "POST", "/agent-api/v1/agents", {"host": host, "tunnel_ip": ip},
           token=tok)
    nets = []
    for i in range(2):
        net = ok(rest.port, "POST", "/v2.0/networks", {"network": {"name": f"sa{i}"}},
                 want=201)["network"]
        ok(rest.port, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": f"10.72.{i}.0/24", "ip_version": 4}}, want=201)
        nets.append(net)
    # HOST_A holds network 0, HOST_B network 1.
    for host, net in ((HOST_A, nets[0]), (HOST_B, nets[1])):
        ok(rest.port, "POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": host, "security_groups": []}},
           want=201)
    revs = {h: ok(agents.port, "GET", f"/agent-api/v1/hosts/{h}/state?since=-1&timeout=0",
                  token=t)["revision"] for h, t in ((HOST_A, tok_a), (HOST_B, tok_b))}
    # The full view may be newer than the revision this process's change
    # feed had read (it follows the database: a 50 ms poll on SQLite): catch
    # up with one delta each, so that the polls below start from the head.
    time.sleep(0.5)
    for h, t in ((HOST_A, tok_a), (HOST_B, tok_b)):
        revs[h] = ok(agents.port, "GET", f"/agent-api/v1/hosts/{h}/state?since={revs[h]}"
                                         f"&timeout=0&features=group_members",
                     token=t)["revision"]

    latencies = []
    for _round in range(2):
        replies = {}

        def poll(host, token, since):
            # HOST_A's poll ends when the change reaches it; HOST_B's, that
            # the change does not concern, runs out after 6 s.
            wait = 20 if host == HOST_A else 6
            r = ok(agents.port, "GET", f"/agent-api/v1/hosts/{host}/state?since={since}"
                                       f"&timeout={wait}&features=group_members", token=token)
            replies[host] = (time.monotonic(), r)

        threads = [threading.Thread(target=poll, args=(h, t, revs[h]))
                   for h, t in ((HOST_A, tok_a), (HOST_B, tok_b))]
        for t in threads:
            t.start()
        time.sleep(0.3)  # both parked
        assert not replies, replies
        port = ok(rest.port, "POST", "/v2.0/ports", {"port": {
            "network_id": nets[0]["id"], "binding:host_id": HOST_A,
            "security_groups": []}}, want=201)["port"]
        t0 = time.monotonic()
        for t in threads:
            t.join(10)
        woke, reply = replies[HOST_A]
        assert reply["full"] is False
        assert port["id"] in [p["id"] for p in reply["delta"]["ports"]]
        assert woke - t0 < 5.0, woke - t0  # woken by the change, not the timeout
        latencies.append(woke - t0)
        # HOST_B holds nothing of network 0: its poll, parked over the
        # change, ran out empty.
        assert replies[HOST_B][0] > woke
        other = replies[HOST_B][1]["delta"]
        assert not other["ports"] and not other["networks"], other
        revs = {h: replies[h][1]["revision"] for h in replies}
    print(f"cross-process wake-ups (s): {[round(x, 3) for x in latencies]}")


def test_standalone_agent_api_does_not_load_eventlet(tmp_path):
    """The process builds the whole app (extensions, hooks) and binds its
    port without importing eventlet."""
    code = (
        "import sys\n"
        "from quantum_ovs import config, service\n"
        "from quantum_ovs.cmd import agent_api\n"
        "from quantum_ovs.db import migration\n"
        f"conf = config.make_conf(['--config-file', {str(tmp_path / 'c.conf')!r}])\n"
        "migration.upgrade(service.make_database(conf).engine)\n"
        "server, app = agent_api.make_server(conf)\n"
        "assert int(server.effective_port) > 0\n"
        "server.close()\n"
        "print('eventlet' in sys.modules)\n")
    (tmp_path / "c.conf").write_text(
        "[agent_api]\nbind_port = 0\nthreads = 40\n"
        f"[database]\nconnection = sqlite:///{tmp_path}/x.sqlite\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_stopping_process_answers_the_poll_it_holds(rest_and_agent_api):
    """SIGTERM: no new connection is taken, and a parked poll gets its
    answer (an empty delta) at once, not when its wait or the process's
    STOP_GRACE ends, and before the process exits (as quantum-ovs-server's
    _GracefulStop does)."""
    import os
    import signal

    rest, agents = rest_and_agent_api
    tok = rest.agent_credential(HOST_A)
    ok(agents.port, "POST", "/agent-api/v1/agents", {"host": HOST_A, "tunnel_ip": "192.0.2.1"},
       token=tok)
    rev = ok(agents.port, "GET", f"/agent-api/v1/hosts/{HOST_A}/state?since=-1&timeout=0",
             token=tok)["revision"]
    got = []

    def poll():
        got.append(call(agents.port, "GET",
                        f"/agent-api/v1/hosts/{HOST_A}/state?since={rev}&timeout=20", token=tok))
        got.append(time.monotonic())

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)  # parked
    os.kill(agents.proc.pid, signal.SIGTERM)
    sent = time.monotonic()
    t.join(25)
    assert got and got[0][0] == 200, got
    # (STOP_GRACE is 5 s, the poll's wait 20 s: an answer within 3 s is
    # the stop's)
    assert got[1] - sent < 3.0, got[1] - sent
    assert agents.proc.wait(15) == 0
