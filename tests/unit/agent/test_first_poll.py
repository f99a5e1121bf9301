"""The agent's first poll of the server, sent before the agent is imported
and started (agent.main; issue 17), is the sync loop's first answer."""

from __future__ import annotations

import threading
import time

import pytest

from agent import sync_client
from agent.daemon import Agent
from agent.settings import Settings


class _Client:
    """A SyncClient's poll: answers (or errors) in order, then Closed
    (decoded: ("decoded", answer))."""

    def __init__(self, answers, first_gate=None):
        self.answers = list(answers)
        self.calls = []
        self.dropped = 0
        self.decoded_on = []  # threads that decoded answers
        self.first_gate = first_gate

    def poll(self, since, wait=30.0):
        return self.decode_state(self.poll_raw(since, wait))

    def poll_stream(self, since, wait=30.0):
        yield self.poll(since, wait)  # a stream of one answer

    def decoded(self, raw):
        return self.decode_state(raw)

    def decode_state(self, raw):
        self.decoded_on.append(threading.current_thread().name)
        return raw[0], ("decoded", raw[1]), raw[2]

    def poll_raw(self, since, wait=30.0):
        self.calls.append((since, wait))
        if len(self.calls) == 1 and self.first_gate is not None:
            self.first_gate.wait(5)
        if not self.answers:
            raise sync_client.Closed("client closed")
        out = self.answers.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    def _drop(self):
        self.dropped += 1

    def close(self):
        pass


def _agent(tmp_path, client):
    s = Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                 state_path=str(tmp_path / "state.json"), polling_interval=25)
    return Agent(s, first_poll=sync_client.FirstPoll(client))


def _events(agent):
    out = []
    while not agent.events.empty():
        out.append(agent.events.get_nowait())
    return out


def test_the_first_poll_is_sent_at_once_and_is_the_loops_first_answer(tmp_path):
    gate = threading.Event()
    client = _Client([("full", "view", 7), ("delta", "d", 8)], first_gate=gate)
    a = _agent(tmp_path, client)
    assert a.client is client
    loop = threading.Thread(target=a._sync_loop, name="sync")
    loop.start()
    # sent before the loop runs, and the loop waits for its answer
    deadline = time.monotonic() + 5
    while not client.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert client.calls == [(-1, 0)]
    gate.set()
    loop.join(5)
    assert not loop.is_alive()  # Closed after the answers: the loop ends
    assert client.calls == [(-1, 0), (7, 25), (8, 25)]
    assert _events(a) == [("full", ("decoded", "view")), ("delta", ("decoded", "d"))]
    assert a.revision == 8
    assert client.dropped == 1  # the first poll's own connection
    # decoded by the loop (not while the agent is still importing)
    assert client.decoded_on == ["sync", "sync"]


def test_a_failed_first_poll_is_polled_again(tmp_path):
    client = _Client([sync_client.ServerUnavailable("connection refused"),
                      ("full", "view", 3)])
    a = _agent(tmp_path, client)
    loop = threading.Thread(target=a._sync_loop)
    loop.start()
    loop.join(5)
    assert client.calls == [(-1, 0), (-1, 0), (3, 25)]
    assert _events(a) == [("full", ("decoded", "view"))]


def test_first_poll_result_raises_what_the_poll_raised():
    fp = sync_client.FirstPoll(_Client([sync_client.ServerError(500, "boom")]))
    with pytest.raises(sync_client.ServerError, match="boom"):
        fp.result()


def test_decode_state_reads_what_the_server_writes():
    """decode_state (orjson, with the standard library for what orjson
    refuses) gives the views and deltas json.loads gave."""
    import json

    from quantum_ovs import model as m
    from quantum_ovs import wire
    view = m.HostView(host="hv1", tunnel_ip="192.0.2.1", revision=7, networks=(
        m.Network(id="n1", mtu=1450, segment=m.Segment("vxlan", None, 5)),), ports=(
        m.Port(id="p1", network_id="n1", mac_address="fa:16:3e:00:00:01",
               fixed_ips=(m.FixedIP("s1", "10.0.0.5"),), host="hv1",
               dns_name="vm-é"),))
    raw = json.dumps({"full": True, "revision": 7, "view": wire.view_to_dict(view)}).encode()
    kind, got, rev = sync_client.SyncClient.decode_state(raw)
    assert (kind, got, rev) == ("full", view, 7)
    # An integer beyond 64 bits (orjson refuses it) still decodes.
    raw = json.dumps({"full": False, "revision": 2 ** 70,
                      "delta": wire.delta_to_dict(m.Delta(revision=2 ** 70))}).encode()
    kind, got, rev = sync_client.SyncClient.decode_state(raw)
    assert kind == "delta" and rev == 2 ** 70 and got == m.Delta(revision=2 ** 70)
    with pytest.raises(ValueError):
        sync_client.SyncClient.decode_state(b"{not json")


def test_an_ovsdb_started_early_that_fails_fails_the_start_and_stop_returns(tmp_path):
    from agent import startup

    early = startup.EarlyOvsdb("unix:" + str(tmp_path / "no-db.sock"), timeout=0.3)
    s = Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                 state_path=str(tmp_path / "state.json"), polling_interval=25)
    a = Agent(s, first_poll=sync_client.FirstPoll(_Client([("full", "view", 7)])), ovsdb=early)
    try:
        a.start()
    except Exception as e:  # noqa: BLE001
        err = e
    else:
        raise AssertionError("started without OVSDB")
    assert "no-db.sock" in str(err), err
    t = time.monotonic()
    a.stop()
    assert time.monotonic() - t < 5 and a.early_ovsdb is None


def test_stop_does_not_wait_for_an_ovsdb_still_starting(tmp_path):
    """An ovsdb-server that takes the connection and never answers: the
    agent stops at once; the connection is stopped once its start ends."""
    import socket

    from agent import startup

    path = str(tmp_path / "mute.sock")
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen(4)
    try:
        early = startup.EarlyOvsdb("unix:" + path, timeout=3)
        s = Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:" + path,
                     state_path=str(tmp_path / "state.json"), polling_interval=25)
        a = Agent(s, first_poll=sync_client.FirstPoll(_Client([])), ovsdb=early)
        t = time.monotonic()
        a.stop()
        assert time.monotonic() - t < 2.5 and a.early_ovsdb is None
        with pytest.raises(TimeoutError):
            early.result(timeout=0)
    finally:
        mute.close()


def test_an_ovsdb_server_that_never_answers_fails_the_start_in_its_timeout(tmp_path):
    """Connection.start() asks for the schema first: against a server that
    takes the connection and never answers, NotConnected once the
    connection's timeout has passed (it used to wait for ever)."""
    import socket
    import threading

    from agent.ovsdb.connection import Connection, NotConnected

    path = str(tmp_path / "mute.sock")
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen(4)
    outcome = []

    def start():
        try:
            Connection("unix:" + path, timeout=0.5).start()
            outcome.append("started")
        except NotConnected as e:
            outcome.append(e)

    t = threading.Thread(target=start, daemon=True)
    try:
        t.start()
        t.join(30)  # (far past the timeout: it waited for ever before)
        assert not t.is_alive(), "start() still waits"
        assert len(outcome) == 1 and isinstance(outcome[0], NotConnected), outcome
        assert "get_schema" in str(outcome[0])
    finally:
        mute.close()
