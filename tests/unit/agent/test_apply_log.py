"""The agent's log names the server revision each applied change came from."""

from __future__ import annotations

import logging

from agent.daemon import Agent
from agent.settings import Settings
from quantum_ovs import model as m
from quantum_ovs.compiler.flow import FlowDiff

NET = m.Network("n1", m.Segment("vxlan", segmentation_id=5))
VM = m.Port("vm1", "n1", "fa:16:3e:00:00:10", host="hv1")


def _agent(tmp_path, diffs):
    a = Agent(Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(tmp_path / "state.json")))

    class _Switch:  # the reconciler of a connected switch, answering ``diffs``
        need_dump = False

        def install(self, desired, touched):
            return diffs.pop(0)

    a.reconciler = _Switch()
    a.reporter.report = lambda *args: None
    return a


def test_each_applied_change_is_logged_with_its_revision(tmp_path, caplog):
    flow_diffs = [FlowDiff(adds=(object(),) * 3), FlowDiff(deletes=(object(),))]
    a = _agent(tmp_path, flow_diffs)
    caplog.set_level(logging.INFO, logger="agent.daemon")
    view = m.HostView(host="hv1", networks=(NET,), ports=(VM,), revision=41)
    a._handle([("full", view)])
    a._handle([("delta", m.Delta(revision=42, removed_ports=("vm1",))),
               ("delta", m.Delta(revision=43))])
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.daemon"]
    assert "applied full view and 0 delta(s) up to revision 41: 3 flow(s) added, " \
           "0 modified, 0 deleted" in lines
    assert "applied 2 delta(s) up to revision 43: 0 flow(s) added, 0 modified, " \
           "1 deleted" in lines


def test_a_change_the_switch_does_not_hold_yet_is_logged_too(tmp_path, caplog):
    a = _agent(tmp_path, [None])  # not connected: nothing installed
    caplog.set_level(logging.INFO, logger="agent.daemon")
    a._handle([("full", m.HostView(host="hv1", networks=(NET,), revision=7))])
    assert any("up to revision 7" in r.getMessage() and "not installed" in r.getMessage()
               for r in caplog.records)
