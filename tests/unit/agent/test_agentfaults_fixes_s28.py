"""The s28 agent-fault fixes beyond the reviewer's cases
(test_agentfaults_review_s28): the other order of a re-plug, a new
interface row without an ofport yet, admin down reported, a removed port,
a cold start reporting once, the state file's checks and a save failing
and recovering."""

from __future__ import annotations

import json
import logging

import pytest

from agent.daemon import Agent
from agent.ovsdb.events import InterfaceWatcher
from agent.settings import Settings
from agent.state import StateFile
from quantum_ovs import model as m
from tests.unit.agent.test_agentfaults_review_s28 import (
    HOST, NET, VM, _agent, _Conn, _drain, _flows_on, _port, _Row, _vif, _view)
from tests.unit.agent.test_reconciler import StreamChannel as FakeChannel


def _plugged_agent(tmp_path):
    switch = FakeChannel()
    a = _agent(tmp_path, switch)
    conn = _Conn()
    InterfaceWatcher(conn, a._on_vif)
    old = _Row("row-a", "tap0", VM, 5)
    conn.update(("insert", old))
    a.events.put(("full", _view()))
    _drain(a)
    assert a.reporter.client.reports[-1]["installed"] == [VM]
    return a, switch, conn, old


def test_a_replug_whose_old_row_goes_first_ends_plugged_at_the_new_ofport(tmp_path):
    a, switch, conn, old = _plugged_agent(tmp_path)
    reports = a.reporter.client.reports
    n = len(reports)
    conn.update(("delete", old), ("insert", _Row("row-b", "tap0", VM, 7)))
    _drain(a)
    assert a.vifs == {VM: 7} and _flows_on(switch, 7) and not _flows_on(switch, 5)
    # one batch: the unplug is superseded by the plug, and the new ofport reported
    assert [r["unplugged"] for r in reports[n:]] == [[]]
    assert reports[-1]["installed"] == [VM] and reports[-1]["plugged"] == [(VM, 7)]


def test_a_new_row_without_an_ofport_does_not_unplug_the_old_one(tmp_path):
    """The new row of a re-plug has no ofport until ovs-vswitchd gives it
    one; its "plugged" (ofport None) may come before the old row's
    delete, and the old row's delete is what unplugs."""
    a, switch, conn, old = _plugged_agent(tmp_path)
    new = _Row("row-b", "tap0", VM, [])
    conn.update(("insert", new))
    _drain(a)
    assert a.vifs == {VM: 5} and _flows_on(switch, 5)
    conn.update(("delete", old))
    _drain(a)
    assert a.vifs == {} and a.reporter.client.reports[-1]["unplugged"] == [VM]
    new.ofport = 5  # ovs-vswitchd: the same ofport again
    conn.update(("modify", new))
    _drain(a)
    assert a.vifs == {VM: 5} and _flows_on(switch, 5)
    assert a.reporter.client.reports[-1]["installed"] == [VM]


def test_the_held_row_losing_its_ofport_unplugs(tmp_path):
    a, switch, conn, old = _plugged_agent(tmp_path)
    old.ofport = -1  # the interface failed
    conn.update(("modify", old))
    _drain(a)
    assert a.vifs == {} and not _flows_on(switch, 5)
    assert a.reporter.client.reports[-1]["unplugged"] == [VM]


def test_an_active_port_set_admin_down_is_reported_again(tmp_path):
    a, switch, conn, old = _plugged_agent(tmp_path)
    reports = a.reporter.client.reports
    n = len(reports)
    down = m.Port(VM, NET, "fa:16:3e:00:00:10", (m.FixedIP("s", "10.0.0.5"),), host=HOST,
                  admin_state_up=False)
    a.events.put(("delta", m.Delta(ports=(down,), revision=2)))
    _drain(a)
    assert not _flows_on(switch, 5)
    assert [r["installed"] for r in reports[n:]] == [[VM]]  # the server: DOWN


def test_other_changes_of_a_port_and_a_full_view_again_are_not_reported(tmp_path):
    """Reports stay cheap: one per port on a cold start, none for a change
    the server does not reset (a new name, the same view again)."""
    a, switch, conn, old = _plugged_agent(tmp_path)
    reports = a.reporter.client.reports
    assert sum(r["installed"].count(VM) for r in reports) == 1
    n = len(reports)
    renamed = m.Port(VM, NET, "fa:16:3e:00:00:10", (m.FixedIP("s", "10.0.0.5"),), host=HOST,
                     dns_name="vm")
    a.events.put(("delta", m.Delta(ports=(renamed,), revision=2)))
    a.events.put(("full", _view(3, (renamed,))))
    _drain(a)
    assert not any(r["installed"] for r in reports[n:])


@pytest.mark.parametrize("how", ["removed_ports", "removed_networks", "full"])
def test_a_port_removed_from_the_view_and_back_is_reported_again(tmp_path, how):
    a, switch, conn, old = _plugged_agent(tmp_path)
    reports = a.reporter.client.reports
    if how == "full":
        a.events.put(("full", _view(2, ())))
    else:
        a.events.put(("delta", m.Delta(revision=2, **{how: (VM if how == "removed_ports"
                                                            else NET,)})))
    _drain(a)
    assert not _flows_on(switch, 5)
    n = len(reports)
    a.events.put(("full", _view(3, (_port(HOST),))))
    _drain(a)
    assert _flows_on(switch, 5) and [r["installed"] for r in reports[n:]] == [[VM]]


def test_bound_away_and_back_in_one_batch_is_reported_again(tmp_path):
    a, switch, conn, old = _plugged_agent(tmp_path)
    reports = a.reporter.client.reports
    n = len(reports)
    a.events.put(("delta", m.Delta(ports=(_port("hv2"),), revision=2)))
    a.events.put(("delta", m.Delta(ports=(_port(HOST),), revision=3)))
    _drain(a)
    assert [r["installed"] for r in reports[n:]] == [[VM]]


# ------------------------------------------------------------ the state file

NET2 = "44444444-4444-4444-4444-444444444444"


@pytest.mark.parametrize("raw", [
    {"local_ids": {NET: 3}},  # explicit ids are never saved; below the compiler's range
    {"local_ids": {NET: 0x10000}},
    {"local_ids": {NET: "32768"}},
    {"local_ids": {NET: True}},
    {"local_ids": [[NET, 0x8000]]},
    {"conj_ids": [[["g", "ingress", None], 3], [["h", "ingress", None], 3]], "next_conj": 4},
    {"conj_ids": [[["g", "ingress", None], 3]], "next_conj": 3},  # would give 3 again
    {"conj_ids": [[["g", "ingress", None], 0]], "next_conj": 1},
    {"conj_ids": [[["g", "ingress", None], 3], [["g", "ingress", None], 4]], "next_conj": 5},
    {"conj_ids": [[{"g": 1}, 3]], "next_conj": 4},
    {"conj_ids": [[["g"], 3, 4]], "next_conj": 5},
    {"conj_ids": {}, "next_conj": 1},
    {"next_conj": 2 ** 32 + 1},
])
def test_an_invalid_state_file_is_ignored_whole(tmp_path, raw, caplog):
    st = StateFile(str(tmp_path), HOST)
    with open(st.path, "w") as f:
        json.dump(raw, f)
    with caplog.at_level(logging.WARNING, "agent.state"):
        assert st.load() is None
    assert "ignoring the state file" in caplog.text


def test_a_valid_state_file_is_taken(tmp_path):
    st = StateFile(str(tmp_path), HOST)
    with open(st.path, "w") as f:
        json.dump({"local_ids": {NET: 0x8000, "router:r": 0xFFFF},
                   "conj_ids": [[["g", "ingress", None], 1], [["g", "egress", "h"], 2]],
                   "next_conj": 3}, f)
    a = st.load()
    assert a.local_ids == {NET: 0x8000, "router:r": 0xFFFF}
    assert a.conj_ids == {("g", "ingress", None): 1, ("g", "egress", "h"): 2}
    assert a.next_conj == 3


def test_a_failing_save_is_logged_once_and_retried_until_it_works(tmp_path, caplog):
    blocker = tmp_path / "blocked"
    blocker.write_text("")
    switch = FakeChannel()
    a = Agent(Settings(host=HOST, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(blocker / "state")))
    a.reconciler.channel = switch
    from tests.unit.agent.test_agentfaults_review_s28 import _Client
    a.reporter.client = _Client()
    with caplog.at_level(logging.WARNING, "agent.state"):
        a.events.put(("vif", ("plugged", _vif(5))))
        a.events.put(("full", _view()))
        _drain(a)
        a.events.put(("vif", ("plugged", _vif(6, "tap1", "other"))))  # flows move: a save
        _drain(a)
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert a.state.failed is not None
        blocker.unlink()  # the disk has room again
        a.events.put(("tick", None))  # nothing moves: saved all the same
        _drain(a)
    assert a.state.failed is None and "written again" in caplog.text
    back = a.state.load()
    assert back is not None and back.local_ids == a.engine.alloc.local_ids
