"""Review s28 of the auto-allocated topology and its defaults (default
external network, default subnet pools): each test fails on the code as
reviewed and passes once the defect it names is fixed."""

import threading
import time

import pytest
import sqlalchemy as sa

from tests.functional.test_auto_allocate import ADMIN, T, _external, _owned, _pool

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


@pytest.fixture
def deployment(api):
    """A default external network and default IPv4 and IPv6 pools."""
    ext = _external(api)
    _pool(api, "10.128.0.0/16", 24)
    _pool(api, "2001:db8:8000::/48", 64)
    return ext


def test_concurrent_default_subnetpools_of_one_family_make_one_default(api):
    """F1. "Only one default may exist per IP family" (subnetpools.py
    _check_default) is a plain read of the other pools, unlocked: admins
    (or one admin's retrying client) creating default pools of one family
    at once each see none and all commit, leaving several defaults --
    which pool a project's auto-allocated subnet (and every
    use_default_subnetpool subnet) comes from is then an accident of ids.
    The default external network takes a transaction lock for the same
    rule (auto_allocate._set_default); the default pool does not."""
    if not api.db.is_postgresql:
        pytest.skip("SQLite writes one transaction at a time")
    n = 8
    barrier = threading.Barrier(n)
    statuses = []

    def create(i):
        barrier.wait()
        r = api.post("/v2.0/subnetpools", {"subnetpool": {
            "name": f"default-v4-{i}", "prefixes": [f"10.{100 + i}.0.0/16"],
            "default_prefixlen": 24, "is_default": True, "shared": True}}, **ADMIN)
        statuses.append(r.status_int)
    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    defaults = api.get("/v2.0/subnetpools?is_default=True&ip_version=4", **ADMIN) \
        .data["subnetpools"]
    assert len(defaults) == 1, (sorted(statuses), [p["name"] for p in defaults])
    assert sorted(statuses) == [201] + [400] * (n - 1)


def test_a_delete_that_read_an_old_topology_leaves_the_new_one_recorded(api, deployment):
    """F2. DELETE reads the project's topology record with a plain read
    (s.get, no lock) and then deletes "the project's record" by its key,
    the project id.  When, between the two, another DELETE removed that
    topology and a GET made a new one, the first DELETE deletes the NEW
    topology's record while leaving its network and router: the next GET
    makes a third network and router, and the project keeps an orphaned
    auto_allocated_network/router pair it never asked for (quota used,
    and ``DELETE`` never removes them).  Neutron never deletes the
    record itself: it goes with the network it names (ON DELETE CASCADE,
    neutron/services/auto_allocate/db.py:_cleanup deletes the network,
    ignoring NotFound), so a stale DELETE finds nothing of the new one."""
    if not api.db.is_postgresql:
        pytest.skip("SQLite writes one transaction at a time")
    first = api.get(T + "/None", status=200).data["auto_allocated_topology"]["id"]
    mine = threading.local()
    fired = []
    results = {}

    def others():
        # another DELETE, then a GET that makes a new topology, both
        # committed while the first DELETE has only read the record
        results["delete"] = api.delete(T + "/None").status_int
        results["get"] = api.get(T + "/None").data["auto_allocated_topology"]["id"]

    def after(conn, cursor, statement, params, context, executemany):
        if getattr(mine, "on", False) and not fired and \
                statement.lstrip().upper().startswith("SELECT") and \
                "auto_allocated_topologies" in statement:
            t = threading.Thread(target=others)
            fired.append(t)
            t.start()
            # until they are done -- or wait for a lock this DELETE holds
            # (a DELETE that locks what it read: they go on after it)
            deadline = time.monotonic() + 30
            while t.is_alive() and time.monotonic() < deadline:
                t.join(0.1)
                with api.db.engine.connect() as c:
                    if c.execute(sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE "
                            "wait_event_type = 'Lock' AND datname = current_database()")
                            ).scalar():
                        break
    sa.event.listen(api.db.engine, "after_cursor_execute", after)
    try:
        mine.on = True
        api.delete(T + "/None", status=204)
    finally:
        mine.on = False
        sa.event.remove(api.db.engine, "after_cursor_execute", after)
    if fired:
        fired[0].join(60)
    assert fired and results["delete"] == 204 and results["get"] != first
    # the topology made meanwhile is still the project's
    again = api.get(T + "/None", status=200).data["auto_allocated_topology"]["id"]
    assert again == results["get"]
    assert _owned(api, "p1") == (1, 2, 1, 2)


def test_a_project_id_no_project_can_have_is_the_callers_error_in_the_dry_run_too(
        api, deployment):
    """F3. A project id longer than any project's (255, the column and the
    API's project_id validation) is accepted by the dry run ("dry-run=pass",
    echoed back), while the real call refuses it -- as a 409 "Deployment
    error: Unable to provide project private network", the network's
    BadRequest on project_id being taken for a refusal of the deployment
    (_refused).  A dry run is there to say whether the call would succeed;
    the id is the caller's error (400), in both."""
    long = "a" * 256
    r = api.get(T + f"/{long}?fields=dry-run", **ADMIN)
    assert r.status_int == 400, (r.status, r.text[:300])
    r = api.get(T + f"/{long}", **ADMIN)
    assert r.status_int == 400, (r.status, r.text[:300])
