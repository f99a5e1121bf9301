"""quantum-ovs-agent-api's front (quantum_ovs/cmd/agent_api.py): only the
agent API and ``/``, and a cap on waiting long polls."""

import json
import threading

import webob

from quantum_ovs.cmd.agent_api import AgentOnly

STATE = "/agent-api/v1/hosts/h1/state?since=5&timeout=30"  # a long poll


def _inner():
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ, start_response):
        if environ["PATH_INFO"].endswith("/state") and "since=5" in environ["QUERY_STRING"]:
            entered.release()
            release.wait(10)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]
    return app, release, entered


def test_only_the_agent_api_and_the_root_are_served():
    app, release, _ = _inner()
    release.set()
    front = AgentOnly(app, limit=4)
    for path in ("/", "/agent-api/v1/agents", STATE):
        assert webob.Request.blank(path).get_response(front).status_int == 200, path
    resp = webob.Request.blank("/v2.0/networks").get_response(front)
    assert resp.status_int == 404
    assert json.loads(resp.body)["NeutronError"]["type"] == "HTTPNotFound"


def test_one_poll_past_the_limit_is_503_at_once_and_reports_still_pass():
    app, release, entered = _inner()
    front = AgentOnly(app, limit=2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        webob.Request.blank(STATE).get_response(front).status_int)) for _ in range(2)]
    for t in threads:
        t.start()
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)  # both waiting
    resp = webob.Request.blank(STATE).get_response(front)
    assert resp.status_int == 503 and resp.headers["Retry-After"] == "1"
    assert json.loads(resp.body)["NeutronError"]["type"] == "ServiceUnavailable"
    post = webob.Request.blank("/agent-api/v1/hosts/h1/ports", method="POST")
    assert post.get_response(front).status_int == 200  # not a poll: not capped
    full = webob.Request.blank("/agent-api/v1/hosts/h1/state?since=-1")
    assert full.get_response(front).status_int == 200  # a full view never waits
    release.set()
    for t in threads:
        t.join(5)
    assert results == [200, 200] and front.waiting == 0
    assert webob.Request.blank(STATE).get_response(front).status_int == 200

