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


def test_a_port_the_compiler_cannot_build_midway_is_held_back_alone(tmp_path):
    """The agent's engine isolates: the port is held (logged, not reported
    up), the rest of the table goes in the one bundle, the host goes on."""
    view = _view()
    switch = StreamChannel([])
    a = _agent(tmp_path, switch, view.host)
    reported = []
    a.reporter.report = lambda local, vifs: reported.append(set(local))
    real, n = a.engine._computers["port"], []

    def failing(owner):
        if a.engine.ports[owner[1]].host == view.host:
            n.append(owner)
            if len(n) == 3:
                raise CompileError("boom")
        return real(owner)
    a.engine._computers["port"] = failing
    _first_sync(a, view)
    bad = n[2][1]
    assert set(a.engine.desired.held) == {("port", bad)} and a.stats["held_owners"] == 1
    assert "boom" in a.held[("port", bad)]
    assert len(switch.bundles) == 1 and frozenset(switch.switch.values()) == a.engine.flows()
    assert not any(o == ("port", bad) for o in a.engine.desired.owners())
    assert a.have_view and a.ready.is_set()
    assert bad not in reported[-1] and reported[-1]
    # the next change builds it (here: the bug is gone) and it is installed
    a.engine._computers["port"] = real
    p = next(p for p in view.ports if p.id == bad)
    a._handle([("delta", m.Delta(ports=(dataclasses.replace(p, dns_name="again"),),
                                 revision=view.revision + 1))])
    assert not a.engine.desired.held and a.stats["held_owners"] == 0
    assert frozenset(switch.switch.values()) == a.engine.flows()
    assert bad in reported[-1]


def test_an_owner_sent_then_held_back_is_taken_off_the_switch(tmp_path):
    """The first install streams owners as they are computed: one that a
    later owner conflicts with was sent already, and is deleted after."""
    view = _view()
    switch = StreamChannel([])
    a = _agent(tmp_path, switch, view.host)
    real, first = a.engine._computers["port"], []

    def clashing(owner):
        flows = real(owner)
        if not first:
            first.append((owner, flows[0]))
        elif len(first) == 1 and owner != first[0][0]:  # the next port: one key of the first's
            first.append(owner)
            flows = [*flows, dataclasses.replace(first[0][1], actions=())]
        return flows
    a.engine._computers["port"] = clashing
    _first_sync(a, view)
    (p0, _), p1 = first
    assert set(a.engine.desired.held) == {p0, p1}
    assert len(switch.bundles) == 1 and len(switch.sent) == 1  # the stream, then the deletes
    assert {f.key for f in a.engine.withdrawn} == {f.key for f in switch.sent[0].deletes}
    assert not switch.sent[0].adds and not switch.sent[0].modifies
    assert switch.switch == {f.key: f for f in a.engine.flows()}
    assert a.reconciler.installed == switch.switch
