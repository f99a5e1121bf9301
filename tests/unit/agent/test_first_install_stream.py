"""The agent's first install after a dump is streamed (issue 17): the
engine's table is computed as it is sent.  Against a fake switch (one
bundle, applied only if the stream ran to its end)."""

from __future__ import annotations

import dataclasses

from agent.daemon import Agent
from agent.ovsdb.events import Vif
from agent.settings import Settings
from quantum_ovs import model as m
from quantum_ovs.compiler.desired import CompileError
from quantum_ovs.compiler.engine import compile_flows
from tests.fixtures.scenario import base_view
from tests.unit.agent.test_reconciler import StreamChannel


def _agent(tmp_path, switch, host):
    a = Agent(Settings(host=host, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(tmp_path)))
    a.reconciler.channel = switch
    a.reporter.report = lambda *args: None
    return a


def _first_sync(a, view, *more):
    vifs = [("vif", ("plugged", Vif(f"tap{n}", pid, n + 1)))
            for n, (pid, _) in enumerate(sorted(view.chassis.vif_ofports))]
    a._handle([*vifs, ("full", view.replace(chassis=m.Chassis())), *more])


def _view():
    v = base_view()
    return v.replace(chassis=dataclasses.replace(v.chassis, vif_ofports=tuple(
        (pid, n + 1) for n, (pid, _) in enumerate(sorted(v.chassis.vif_ofports)))))


def test_the_first_install_is_one_bundle_of_the_table_a_load_makes(tmp_path):
    view = _view()
    switch = StreamChannel()
    a = _agent(tmp_path, switch, view.host)
    _first_sync(a, view)
    table = compile_flows(a.engine.view(), a.engine.alloc)
    assert len(switch.bundles) == 1 and a.stats["flow_mods"] == len(table)
    assert frozenset(switch.switch.values()) == table == a.engine.flows()
    assert a.reconciler.installed == switch.switch and a.ready.is_set()
    # a restarted agent (same state file) streams nothing: hitless
    b = _agent(tmp_path, switch, view.host)
    _first_sync(b, view)
    assert len(switch.bundles) == 1 and b.stats["flow_mods"] == 0 and b.ready.is_set()
    assert b.engine.flows() == table


def test_a_full_view_followed_by_a_delta_installs_the_same_in_one_bundle(tmp_path):
    view = _view()
    streamed, loaded = StreamChannel(), StreamChannel()
    a = _agent(tmp_path / "a", streamed, view.host)
    _first_sync(a, view)
    a._handle([("delta", m.Delta(revision=2))])
    b = _agent(tmp_path / "b", loaded, view.host)  # not streamed: a change after the view
    loaded.apply = lambda d: loaded.apply_stream(
        [(f, True) for f in d.deletes] + [(f, False) for f in (*d.modifies, *d.adds)])
    _first_sync(b, view, ("delta", m.Delta(revision=2)))
    assert len(streamed.bundles) == len(loaded.bundles) == 1
    assert streamed.switch == loaded.switch


def test_a_compile_error_midway_applies_nothing_and_keeps_no_view(tmp_path):
    view = _view()
    switch = StreamChannel([])
    a = _agent(tmp_path, switch, view.host)
    real, n = a.engine._computers["port"], []

    def failing(owner):
        n.append(owner)
        if len(n) == 3:
            raise CompileError("boom")
        return real(owner)
    a.engine._computers["port"] = failing
    try:
        _first_sync(a, view)
    except CompileError:
        pass
    else:
        raise AssertionError("the error was swallowed")
    assert switch.bundles == [] and switch.switch == {}
    assert not a.have_view and not a.ready.is_set()  # as when load() failed
