"""The one flow diff (compiler/flow.py): the full diff against a flow table
(the agent after a dump, one lookup per desired flow), against mappings
and lists, and the diff restricted to keys, all say the same as a
set-based reference; the desired table's batch diff too."""

from __future__ import annotations

import random

import pytest

from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.desired import DesiredFlows
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view


def _desired(flows) -> DesiredFlows:
    d = DesiredFlows()
    for i, f in enumerate(flows):
        d.add_owner(("o", i), [f])
    return d


def _reference(installed: dict, want: list) -> F.FlowDiff:
    """The definition, with sets: only installed = delete, only desired =
    add, both with other actions or cookie = modify."""
    desired = F.index(want)
    return F.FlowDiff(
        tuple(f for k, f in installed.items() if k not in desired),
        tuple(f for k, f in desired.items() if k in installed
              and (installed[k].actions, installed[k].cookie) != (f.actions, f.cookie)),
        tuple(f for k, f in desired.items() if k not in installed),
    )


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
    ref = _reference(installed, want)
    assert not ref.empty
    d = F.diff(installed, _desired(want))
    assert _same(d, ref)
    assert _same(F.diff(installed, want), ref)
    assert _same(F.diff(have, F.index(want)), ref)
    keys = set(installed) | {f.key for f in want}
    assert _same(F.diff_keys(keys, installed, _desired(want)), ref)
    assert F.diff_key_set(ref) <= keys
    # restricted to some keys: only their part of the full diff
    some = set(rnd.sample(sorted(keys), len(keys) // 3))
    part = F.diff_keys(some, installed, _desired(want))
    assert _same(part, F.FlowDiff(*(tuple(f for f in fs if f.key in some) for fs in
                                    (ref.deletes, ref.modifies, ref.adds))))


@pytest.mark.parametrize("seed", range(4))
def test_a_desired_batch_diffs_as_the_reference(flows, seed):
    """DesiredFlows.end(): the batch's diff equals the diff of the tables
    before and after it."""
    rnd = random.Random(seed)
    d = DesiredFlows()
    for i, f in enumerate(flows):
        d.add_owner(("o", i), [f])
    before = d.by_key()
    d.begin()
    for i, f in enumerate(flows):
        r = rnd.random()
        if r < 0.1:
            d.remove_owner(("o", i))
        elif r < 0.2:
            d.replace_owner(("o", i), [F.Flow(f.table, f.priority, f.match, (F.Output(99),))])
        elif r < 0.25:
            d.replace_owner(("o", i), [f])  # the same again: no change
        elif r < 0.3:
            d.remove_owner(("o", i))
            d.add_owner(("p", i), [f])  # another owner, the same flow: no change
    d.add_owner(("new",), [F.Flow(200, 1, F.Match(reg0=seed))])
    got = d.end()
    ref = _reference(before, list(d))
    assert not ref.empty
    assert _same(got, ref)


def test_nothing_to_do_when_the_switch_has_it_all(flows):
    assert F.diff(F.index(flows), _desired(flows)).empty


def test_an_empty_switch_gets_everything_and_an_empty_wish_deletes_everything(flows):
    assert set(F.diff({}, _desired(flows)).adds) == set(flows)
    assert set(F.diff(F.index(flows), _desired([])).deletes) == set(flows)
    assert set(F.diff_keys(F.index(flows), F.index(flows), _desired([])).deletes) == set(flows)
