"""Agents' long polls answered in front of the middleware (FastPolls):
the same answer as the whole stack gives, refusals left to it."""

import io
import json
import logging
import threading
import time
import urllib.parse

import pytest

from quantum_ovs.api.agent_api import FastPolls
from quantum_ovs.db import agent_auth
from tests.functional.conftest import SHARED_AGENT_TOKEN

HOST = "hv-fast"
STATE = f"/agent-api/v1/hosts/{HOST}/state"


def _front(api):
    app = api.app.app
    while not isinstance(app, FastPolls):
        app = app.app
    return app


def _environ(path, query="", token=SHARED_AGENT_TOKEN, method="GET", **extra):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "9696",
           "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:9696",
           "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
           "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
           "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
           "wsgi.run_once": False, "HTTP_ACCEPT": "application/json"}
    if token is not None:
        env["HTTP_X_AGENT_TOKEN"] = token
    env.update(extra)
    return env


def _call(app, env):
    got = []
    body = b"".join(app(dict(env, **{"wsgi.input": io.BytesIO(b"")}),
                        lambda status, headers, exc_info=None: got.append((status, headers))))
    status, headers = got[0]
    return status, headers, body


def _same(front, env):
    """The fast path's answer and the whole stack's for ``env``; asserts
    they are the same (but for the request ids); returns (status, body,
    taken by the fast path)."""
    before = front.answered
    fast = _call(front, env)
    taken = front.answered == before + 1
    full = _call(front.app, env)
    assert front.answered == before + taken
    ids = []
    for status, headers, body in (fast, full):
        named = dict(headers)
        ids.append(named.pop("X-OpenStack-Request-Id"))
        assert [k for k, _v in headers] == ["Content-Type", "Content-Length",
                                            "X-OpenStack-Request-Id"]
        assert int(named["Content-Length"]) == len(body)
    assert all(i.startswith("req-") and len(i) == 40 for i in ids) and ids[0] != ids[1]
    assert (fast[0], [h for h in fast[1] if h[0] != "X-OpenStack-Request-Id"], fast[2]) == \
        (full[0], [h for h in full[1] if h[0] != "X-OpenStack-Request-Id"], full[2])
    return fast[0], fast[2], taken


def _setup(api):
    api.post("/agent-api/v1/agents", {"host": HOST, "tunnel_ip": "192.0.2.7",
                                      "configurations": {}, "started": True}, status=200)
    net = api.network()
    api.subnet(net["id"])
    api.post("/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": HOST}},
             admin=True, status=201)
    return net


def test_fast_path_answers_as_the_whole_stack(api):
    _setup(api)
    front = _front(api)
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0"))
    assert taken and status == "200 OK" and json.loads(body)["full"] is True
    rev = json.loads(body)["revision"]
    # The agent's own query (sync_client.poll): the comma percent-encoded.
    agent_query = urllib.parse.urlencode({"since": rev, "timeout": 0.0,
                                          "features": "group_members,group_rules"})
    for query in (agent_query, f"since={rev}&timeout=0", "since=0&timeout=0",
                  f"since={rev}&since=0&timeout=5&timeout=0&features=group_members",
                  f"timeout=0&since={rev}&features=group_rules&features=group_members",
                  f"since=+{rev}&timeout=0;features=x", f"since={rev + 1000}&timeout=0"):
        status, body, taken = _same(front, _environ(STATE, query))
        assert taken and status == "200 OK", query
        assert json.loads(body)["revision"] >= rev


def test_a_hosts_polls_hold_its_slots_only_while_they_wait(api):
    """AgentAPI counts a host's waiting polls (PollSlots.PER_HOST) once
    their credential is checked: plain and streamed, on the fast path and
    the whole stack, each gives its slot back when its answer is closed
    (a slot kept would turn the host's agent away for good); refused polls
    naming the host never take one."""
    from quantum_ovs.api.agent_api import PollSlots
    _setup(api)
    front = _front(api)
    slots = front.api.host_polls
    rev = json.loads(_call(front, _environ(STATE, "since=-1&timeout=0"))[2])["revision"]

    def closed(app, env):
        got = []
        it = app(dict(env, **{"wsgi.input": io.BytesIO(b"")}),
                 lambda status, headers, exc_info=None: got.append(status))
        try:
            body = b"".join(it)
        finally:
            getattr(it, "close", lambda: None)()
        return got[0], body
    for query in (f"since={rev}&timeout=0", f"since={rev}&timeout=0&features=stream"):
        for app in (front, front.app):
            status, _body = closed(app, _environ(STATE, query))
            assert status == "200 OK" and slots.waiting == 0 and not slots.hosts, (query, app)
    for token in (None, "not-a-token"):
        assert closed(front, _environ(STATE, f"since={rev}&timeout=0", token=token))[0][:3] \
            == "401"
    assert slots.waiting == 0
    # a host's polls past its share are 503 at once, in NeutronError form
    for _ in range(PollSlots.PER_HOST):
        assert slots.take(HOST) is None
    try:
        for app in (front, front.app):
            status, body = closed(app, _environ(STATE, f"since={rev}&timeout=5"))
            assert status[:3] == "503", status
            e = json.loads(body)["NeutronError"]
            assert e["type"] == "ServiceUnavailable" and "of this host" in e["message"]
        other = _environ("/agent-api/v1/hosts/hv-other/state", f"since={rev}&timeout=0")
        assert closed(front, other)[0] == "200 OK"
    finally:
        for _ in range(PollSlots.PER_HOST):
            slots.release(HOST)


@pytest.mark.parametrize("case,expected", [
    (dict(token=None), 401), (dict(token="not-a-token"), 401),
    (dict(query="since=x&timeout=0"), 400), (dict(query="since=1&timeout=soon"), 400),
    (dict(query="since=%00&timeout=0"), 400),
    (dict(query="since=1&timeout=0&features=%ff"), 400),
    (dict(path=STATE + "/"), 200), (dict(path="/agent-api/v1/hosts//state"), 404),
    (dict(path="/agent-api/v1/hosts/a/b/state"), 404),
    (dict(path="/agent-api/v1/hosts/h\x00/state"), 400),
    (dict(path="/agent-api/v1/hosts/\xff/state"), 400),
    (dict(method="HEAD"), 405), (dict(method="POST"), 405), (dict(method="DELETE"), 405),
    (dict(CONTENT_LENGTH="2", CONTENT_TYPE="application/json"), 200),
])
def test_anything_but_a_plain_poll_takes_the_whole_stack(api, case, expected):
    """Refusals, bad input and the unusual: answered by the whole stack,
    as before (4xx in NeutronError form)."""
    _setup(api)
    front = _front(api)
    case = dict(case)
    env = _environ(case.pop("path", STATE), case.pop("query", "since=-1&timeout=0"),
                   token=case.pop("token", SHARED_AGENT_TOKEN),
                   method=case.pop("method", "GET"), **case)
    before = front.answered
    got = []
    env["wsgi.input"] = io.BytesIO(b"{}")
    body = b"".join(front(env, lambda s, h, e=None: got.append((s, h))))
    assert front.answered == before
    assert int(got[0][0][:3]) == expected, (got, body)
    if expected >= 400 and env["REQUEST_METHOD"] != "HEAD":
        assert set(json.loads(body)["NeutronError"]) == {"type", "message", "detail"}
    assert any(k == "X-OpenStack-Request-Id" for k, _v in got[0][1])


def test_a_credential_reads_its_own_host_only(make_api):
    api = make_api()
    _setup(api)
    api.plugin.conf.set_override("token", "", group="agent_api")
    front = _front(api)
    _id, mine = agent_auth.create(api.db, HOST)
    _id, other = agent_auth.create(api.db, "hv-other")
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0", token=mine))
    assert taken and status == "200 OK"
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0", token=other))
    assert not taken and status.startswith("403")
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0",
                                                token=SHARED_AGENT_TOKEN))
    assert not taken and status.startswith("401")


def test_a_woken_poll_gets_the_change(api, caplog):
    """A parked poll, woken by a port create in its host's network and
    default group, answers what the whole stack answers from the same
    revision, logged as AccessLog logs it (debug level)."""
    net = _setup(api)
    front = _front(api)
    rev = json.loads(_call(front, _environ(STATE, "since=-1&timeout=0"))[2])["revision"]
    query = f"since={rev}&timeout=20&features=group_members,group_rules"
    out = {}
    with caplog.at_level(logging.DEBUG, logger="quantum_ovs.access"):
        t = threading.Thread(target=lambda: out.update(r=_call(front, _environ(STATE, query))))
        t.start()
        time.sleep(0.3)
        port = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, admin=True,
                        status=201).data["port"]
        t.join(20)
    status, headers, body = out["r"]
    assert status == "200 OK"
    delta = json.loads(body)
    assert delta["full"] is False and delta["revision"] > rev
    assert port["id"] in json.dumps(delta["delta"])
    full = _call(front.app, _environ(STATE, f"since={rev}&timeout=0&features="
                                            "group_members,group_rules"))
    assert json.loads(full[2]) == delta
    lines = [r for r in caplog.records if r.name == "quantum_ovs.access"
             and r.getMessage().startswith(f"GET {STATE}?{query} 200 ")]
    assert [r.levelno for r in lines] == [logging.DEBUG]


def test_errors_are_neutron_faults(api, monkeypatch, caplog):
    """What fails while a poll is answered is a NeutronError, logged at
    info level, as the router and AccessLog answer it."""
    _setup(api)
    front = _front(api)
    from oslo_db import exception as db_exc

    def down(*_a, **_kw):
        raise db_exc.DBConnectionError("gone")
    monkeypatch.setattr(front.api.states, "since", down)
    with caplog.at_level(logging.DEBUG, logger="quantum_ovs.access"):
        status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0"))
    assert taken and status.startswith("503")
    assert json.loads(body)["NeutronError"]["type"] == "ServiceUnavailable"
    assert {r.levelno for r in caplog.records if r.name == "quantum_ovs.access"} == \
        {logging.INFO}
    # The token's check failing (per-host credentials looked up in the
    # database): the whole stack answers.
    monkeypatch.setattr(agent_auth, "host_of", down)
    api.plugin.conf.set_override("token", "", group="agent_api")
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0", token="t"))
    assert not taken and status.startswith("503")
    assert json.loads(body)["NeutronError"]["type"] == "ServiceUnavailable"


def test_keystone_deployment_serves_agent_polls(make_api):
    """Under auth_strategy = keystone agents present their agent token,
    no Keystone token: the fast path answers them as the stack does."""
    api = make_api(auth_strategy="keystone")
    front = _front(api)
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0"))
    assert taken and status == "200 OK" and json.loads(body)["full"] is True
    status, body, taken = _same(front, _environ(STATE, "since=-1&timeout=0", token=None))
    assert not taken and status.startswith("401")
