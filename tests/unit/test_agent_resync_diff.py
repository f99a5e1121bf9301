"""The agent's diff after a dump (one lookup per desired flow) says what
the compiler's reference diff says."""

from __future__ import annotations

import random

import pytest

from agent.daemon import _diff_all, _diff_keys
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.desired import DesiredFlows
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view


def _desired(flows) -> DesiredFlows:
    d = DesiredFlows()
    for i, f in enumerate(flows):
        d.add_owner(("o", i), [f])
    return d


def _same(a: F.FlowDiff, b: F.FlowDiff) -> bool:
    return (set(a.deletes), set(a.modifies), set(a.adds)) == (
        set(b.deletes),
        set(b.modifies),
        set(b.adds),
    )


@pytest.fixture(scope="module")
def flows():
    return sorted(
        Engine.from_view(make_host_view(networks=3, ports_per_net=4, remote_hosts=2)).flows(),
        key=lambda f: (f.table, f.priority, repr(f.match)),
    )


@pytest.mark.parametrize("seed", range(6))
def test_diff_after_a_dump_equals_the_reference(flows, seed):
    rnd = random.Random(seed)
    want = [f for f in flows if rnd.random() > 0.1]
    have = []
    for f in flows:
        r = rnd.random()
        if r < 0.1:
            continue  # missing on the switch
        if r < 0.2:
            f = F.Flow(f.table, f.priority, f.match, (F.Output(99),), f.cookie)  # other actions
        elif r < 0.25:
            f = F.Flow(f.table, f.priority, f.match, f.actions, f.cookie ^ 1)  # other cookie
        have.append(f)
    installed = F.index(have)
    d = _diff_all(installed, _desired(want))
    assert _same(d, F.diff(installed, want))
    keys = set(installed) | {f.key for f in want}
    assert _same(_diff_keys(keys, installed, _desired(want)), d)


def test_nothing_to_do_when_the_switch_has_it_all(flows):
    assert _diff_all(F.index(flows), _desired(flows)).empty


def test_an_empty_switch_gets_everything_and_an_empty_wish_deletes_everything(flows):
    assert set(_diff_all({}, _desired(flows)).adds) == set(flows)
    assert set(_diff_all(F.index(flows), _desired([])).deletes) == set(flows)
