"""Engine.load_model() + load_flows(): the table of load(), owner by owner
(the agent sends it while it is computed, issue 17)."""

from __future__ import annotations

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantum_ovs.compiler.desired import CompileError
from quantum_ovs.compiler.engine import Engine, compile_flows
from tests.fixtures.scenario import base_view
from tests.unit.compiler.test_incremental import OPS


def _streamed(view, alloc, chassis=None):
    e = Engine(view.host, alloc)
    e.load_model(view)
    batches = list(e.load_flows(chassis))
    return e, [f for b in batches for f in b]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_streamed_table_is_the_loaded_one(data):
    view = base_view()
    e = Engine.from_view(view)
    for _ in range(data.draw(st.integers(0, 6))):
        view = data.draw(st.sampled_from(OPS))(e, view, data)
    view = e.view()
    loaded = Engine.from_view(view, e.alloc)
    streamed, flows = _streamed(view, e.alloc)
    # every flow once, and exactly the table load() makes
    assert len(flows) == len({f.key for f in flows}) == len(loaded)
    assert frozenset(flows) == loaded.flows() == streamed.flows()
    assert streamed.view() == loaded.view() and streamed.alloc == loaded.alloc
    assert streamed.stats.full_recomputes == 1


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_chassis_given_to_load_flows_replaces_the_views(data):
    # the agent loads the model, then computes with the chassis it wants
    base = base_view()
    e = Engine.from_view(base)
    view = base
    for _ in range(data.draw(st.integers(1, 4))):
        view = data.draw(st.sampled_from(OPS))(e, view, data)
    want = e.chassis()
    model = e.view().replace(chassis=base.chassis)
    streamed, flows = _streamed(model, e.alloc, want)
    assert frozenset(flows) == compile_flows(e.view(), e.alloc) == e.flows()
    assert streamed.chassis() == want


def test_until_the_flows_are_all_made_the_old_table_stays():
    view = base_view()
    e = Engine.from_view(view)
    old = e.desired
    e.load_model(view)
    it = e.load_flows()
    next(it)
    assert e.desired is old
    for _ in it:
        pass
    assert e.desired is not old and e.flows() == old.flows()


def test_a_compile_error_midway_leaves_the_old_table():
    view = base_view()
    e = Engine.from_view(view)
    old = e.desired
    e.load_model(view)
    calls = []
    real = e._computers["port"]

    def failing(owner):
        calls.append(owner)
        if len(calls) == 2:
            raise CompileError("boom")
        return real(owner)
    e._computers["port"] = failing
    with pytest.raises(CompileError):
        for _ in e.load_flows():
            pass
    assert e.desired is old
