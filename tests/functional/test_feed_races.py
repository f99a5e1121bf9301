"""Host views and deltas while writes commit out of sequence order
(PostgreSQL, MariaDB), found by review 19: a write took its change rows'
sequence numbers before waiting for its quota lock, so a later number
could commit first; a feed started meanwhile never read it (a port lost
for good), a feed that had given its gap up neither (the same), and a
refused write left a hole every agent waited gap_timeout for.  Change
rows are now inserted last before the commit (db/changelog.py), and a new
feed takes the numbers missing below the newest as gaps
(ChangeFeed._start_at_tail)."""

import threading
import time

import pytest
import sqlalchemy as sa

from quantum_ovs import wire
from quantum_ovs.db import models
from quantum_ovs.db.session import transaction_lock
from tests.fixtures.views import canon
from tests.functional.test_agent_api import HOST_A, HOST_B, bound_port, register, state

SERVER_DBS = pytest.mark.parametrize("db_url", ["postgresql", "mysql"], indirect=True)


def _hold_quota_lock(api, project, resource, held, release):
    """What a concurrent create of ``resource`` by ``project`` holds
    between its count and its commit: the quota lock."""
    def fn(s):
        transaction_lock(s, f"quota:{project}:{resource}")
        held.set()
        assert release.wait(30)
    t = threading.Thread(target=api.db.write, args=(fn,), daemon=True)
    t.start()
    assert held.wait(10)
    return t


def _max_seq(api):
    with api.db.reader() as s:
        return s.execute(sa.select(sa.func.max(models.Change.seq))).scalar() or 0


def _wait_for_lock_waiter(api):
    if api.db.is_postgresql:
        q = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    else:
        q = ("SELECT count(*) FROM information_schema.processlist "
             "WHERE state LIKE '%lock%' AND info LIKE '%GET_LOCK%'")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with api.db.reader() as s:
            if s.execute(sa.text(q)).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the port create never waited for the quota lock")


def _port_create_behind_quota_lock(api, net_id):
    """p1's port create on ``net_id`` (bound to HOST_A), in a thread,
    waiting for p1's quota lock, which another write holds: (a dict that
    gets its "port", a function that lets both finish)."""
    held, release = threading.Event(), threading.Event()
    locker = _hold_quota_lock(api, "p1", "port", held, release)
    out = {}

    def create():
        out["port"] = bound_port(api, net_id, HOST_A)
    writer = threading.Thread(target=create, daemon=True)
    writer.start()
    _wait_for_lock_waiter(api)

    def finish():
        release.set()
        writer.join(20)
        locker.join(20)
    return out, finish


def _follow(api, host, view, rev, polls=3, timeout=1):
    """(the view, the revision) of an agent of ``host`` at ``view`` and
    ``rev`` after ``polls`` more polls."""
    for _ in range(polls):
        reply = state(api, host, since=rev, timeout=timeout)
        if reply["full"]:
            view = wire.view_from_dict(reply["view"])
        else:
            view = wire.apply_delta(view, wire.delta_from_dict(reply["delta"]))
        rev = reply["revision"]
    return view, rev


@SERVER_DBS
@pytest.mark.parametrize("warm", [False, True], ids=["cold_worker", "control_warm_worker"])
def test_a_worker_whose_feed_starts_during_a_write_gets_that_write(make_api, db_url, warm):
    """A server worker makes its change feed on its first agent poll,
    while a port create of p1 waits for p1's quota lock and a later write
    commits: the agent following the new worker gets the port (it lost it
    for good when the create had numbered its change row before the
    lock)."""
    api = make_api()
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net = api.network()
    api.subnet(net["id"])
    bound_port(api, net["id"], HOST_A)
    # worker 1 has been serving agents for a while
    state(api, HOST_A)

    api2 = make_api()  # a second worker (its feed: made on its first poll)
    assert api2.plugin is not api.plugin
    if warm:  # control: worker 2's feed exists before the slow write
        state(api2, HOST_B)
    before = _max_seq(api)
    # the port create waits for the quota lock
    out, finish = _port_create_behind_quota_lock(api, net["id"])
    # another write commits meanwhile, with a higher sequence number
    other = api.network(project="p2")
    assert _max_seq(api) > before

    # a second worker gets its first agent poll now
    full2 = state(api2, HOST_A)
    assert full2["full"]

    finish()
    assert "port" in out
    pid = out["port"]["id"]

    # the agent follows worker 2 from its full view
    view, _ = _follow(api2, HOST_A, wire.view_from_dict(full2["view"]), full2["revision"])
    # ... or worker 1, which did see the gap
    reply1 = state(api, HOST_A, since=full2["revision"], timeout=1)
    want = wire.view_from_dict(state(api2, HOST_A)["view"])
    assert pid in {p.id for p in want.ports}
    info = (f"max seq before the slow write={before}, "
            f"worker-2 full view revision={full2['revision']}, "
            f"other={other['id']}, worker-1 reply ports="
            f"{[p['id'] for p in (reply1.get('delta') or {}).get('ports', [])]}")
    assert pid in {p.id for p in view.ports}, "port lost by the agent: " + info
    assert canon(view) == canon(want), info


def _api(make_api, db_url, **database):
    """A server worker with [database] options."""
    from tests.functional.conftest import Client, make_conf
    from quantum_ovs.service import build
    make_api()  # (the fixture's schema copy on MariaDB)
    conf = make_conf(db_url)
    for k, v in database.items():
        conf.set_override(k, v, group="database")
    db, plugin, app = build(conf)
    return Client(app, plugin, db)


@SERVER_DBS
def test_a_write_waiting_past_gap_timeout_for_its_quota_is_delivered(make_api, db_url):
    """A port create waits for its project's quota lock (held by another
    create of the project) longer than [agent_api] gap_timeout (5 s),
    within [database] statement_timeout (here 10 s), while agents poll:
    the agent learns of the port (when its change row was numbered before
    the wait, the feed gave it up and the agent never did)."""
    api = _api(make_api, db_url, statement_timeout=10.0)
    try:
        register(api, HOST_A, "192.0.2.1")
        net = api.network()
        api.subnet(net["id"])
        bound_port(api, net["id"], HOST_A)
        first = state(api, HOST_A)
        view, rev = wire.view_from_dict(first["view"]), first["revision"]

        out, finish = _port_create_behind_quota_lock(api, net["id"])
        t0 = time.monotonic()
        api.network(project="p2")  # commits a higher sequence number
        # the agent keeps polling while the create waits
        while time.monotonic() - t0 < 6.5:
            view, rev = _follow(api, HOST_A, view, rev, polls=1, timeout=0.5)
        finish()
        assert "port" in out, "the port create failed"
        view, rev = _follow(api, HOST_A, view, rev, polls=3, timeout=1)
        want = wire.view_from_dict(state(api, HOST_A)["view"])
        pid = out["port"]["id"]
        assert pid in {p.id for p in want.ports}
        assert pid in {p.id for p in view.ports}, (
            f"port {pid} lost by the agent (feed gaps given up: "
            f"{api.plugin and _given_up(api)})")
        assert canon(view) == canon(want)
    finally:
        api.db.dispose()


def _given_up(api):
    from quantum_ovs.api import agent_api
    import gc
    for o in gc.get_objects():
        if isinstance(o, agent_api.AgentAPI) and o.db is api.db:
            return o.states.feed.given_up
    return "?"


@SERVER_DBS
def test_an_over_quota_create_does_not_stall_the_agents(make_api, db_url):
    """A create refused for its quota takes no change number: when it
    did, the rolled-back row left a hole the feed waited gap_timeout (5 s)
    for, and a tenant at its port quota retrying every few seconds delayed
    every agent's updates by up to 5 s, all the time."""
    api = make_api()
    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    api.subnet(net["id"])
    first = state(api, HOST_A)
    rev = first["revision"]
    other = api.network(project="p2")
    api.subnet(other["id"], "10.9.0.0/24", project="p2")
    api.put("/v2.0/quotas/p2", {"quota": {"port": 0}}, admin=True, status=200)
    rev = state(api, HOST_A, since=rev, timeout=0)["revision"]
    r = api.post("/v2.0/ports", {"port": {"network_id": other["id"]}}, project="p2")
    assert r.status_int == 409, r.text  # over quota, rolled back
    t0 = time.monotonic()
    port = bound_port(api, net["id"], HOST_A)
    reply = state(api, HOST_A, since=rev, timeout=10)
    took = time.monotonic() - t0
    got = [p["id"] for p in (reply.get("delta") or {}).get("ports", [])]
    assert port["id"] in got
    assert took < 1.0, f"the agent learned of its new port after {took:.1f} s"


def _numbered_not_committed(api):
    """A write that has inserted a change row (network "late-net") and
    waits to commit until the returned event is set: (its thread, the
    event)."""
    inserted, release = threading.Event(), threading.Event()

    def slow(s):
        s.execute(sa.insert(models.Change.__table__).values(
            resource="network", resource_id="late-net", op="create", network_id="late-net",
            host=None, detail=None, revision_number=0))
        inserted.set()
        assert release.wait(30)
    t = threading.Thread(target=api.db.write, args=(slow,), daemon=True)
    t.start()
    assert inserted.wait(10)
    return t, release


@SERVER_DBS
def test_a_feed_started_between_a_numbered_write_and_its_commit_reads_it(make_api, db_url):
    """The window that remains (a change row numbered, not yet committed,
    a later number committed) at a feed's start: the feed waits for the
    number and reads the row once it commits."""
    from quantum_ovs.db.changefeed import ChangeFeed
    api = make_api()
    register(api, HOST_A, "192.0.2.1")
    before = _max_seq(api)
    t, release = _numbered_not_committed(api)
    api.network(project="p2")  # a later number commits first
    feed = ChangeFeed(api.db)  # not started: refreshed by hand
    try:
        assert feed.latest > before + 1 and feed.watermark == before
        release.set()
        t.join(10)
        feed.refresh()
        assert "late-net" in {c.resource_id for c in feed.since(before)}
        assert feed.watermark == feed.latest
    finally:
        feed.stop()


@SERVER_DBS
def test_a_row_committing_after_its_gap_was_given_up_is_recorded_again(make_api, db_url):
    """A commit slower than gap_timeout after its row was numbered (now
    only the commit itself): the feed gives the number up, then finds the
    row and records it again under a new number, which hosts past the old
    one read as any change."""
    from quantum_ovs.db.changefeed import ChangeFeed
    api = make_api()
    register(api, HOST_A, "192.0.2.1")
    before = _max_seq(api)
    t, release = _numbered_not_committed(api)
    feed = ChangeFeed(api.db, gap_timeout=0.2)  # not started: refreshed by hand
    try:
        api.network(project="p2")  # a later number commits first
        feed.refresh()
        assert feed.gaps
        time.sleep(0.3)
        feed.refresh()  # given up: hosts move past it
        assert not feed.gaps and feed.given_up >= 1
        passed = feed.watermark
        assert passed > before + 1
        release.set()
        t.join(10)
        feed.refresh()  # the row turns up: recorded again
        feed.refresh()  # ... and the copy read
        assert "late-net" in {c.resource_id for c in feed.since(passed)}
        assert feed.relayed == 1
    finally:
        feed.stop()
