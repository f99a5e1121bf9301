"""What HostStates keeps of a delta memo from one revision to the next:
the routers' topology only, only when no router change (nor a gap given
up, which may have been one) lies between, and nothing of a memo whose
build failed half way."""

import contextlib

import pytest

from quantum_ovs.db import changefeed, host_view
from quantum_ovs.db.changefeed import Change, HostStates

TOPO = {("net_routers", "n1"): {"r1"}, ("router_nets", "r1"): {"n1", "n2"},
        ("gateway_routers",): {"hv": {"r1"}}, ("gateway_hosts", "r1"): {"hv"}}
OTHER = {("ports", frozenset({"p1"})): ["a port"], ("tunnel_ip", "hv"): "192.0.2.1"}


class Feed:
    def __init__(self, items, floor=0, given_up=0):
        self.items, self.floor, self.given_up = items, floor, given_up

    def since(self, revision):
        return None if revision < self.floor else [c for c in self.items if c.seq > revision]


class Db:
    @contextlib.contextmanager
    def reader(self):
        yield None


def _states(items, **feed):
    hs = HostStates(Db())
    hs._feed = Feed(items, **feed)
    hs._memo = (10, {**TOPO, **OTHER})
    return hs


def _change(seq, resource):
    return Change(seq, resource, "x", "n1", None, "update", None)


def test_the_topology_is_carried_when_no_router_changed():
    hs = _states([_change(11, "port"), _change(12, "router")])
    assert hs._carried(11) == TOPO  # the router change is after 11
    assert _states([_change(11, "port"), _change(12, "router")])._carried(12) == {}


@pytest.mark.parametrize("case", ["older-memo", "below-floor", "gap-given-up", "empty"])
def test_nothing_is_carried_when_it_cannot_be_known(case):
    hs = _states([_change(11, "port")], floor=11 if case == "below-floor" else 0)
    if case == "older-memo":
        assert hs._carried(9) == {}
    elif case == "gap-given-up":
        hs._feed.given_up = 1
        assert hs._carried(11) == {}
        hs._memo = (11, dict(TOPO))
        assert hs._carried(12) == TOPO  # (counted from then on)
    elif case == "empty":
        hs._memo = (10, {})
        assert hs._carried(11) == {}
    else:
        assert hs._carried(11) == {}


def test_a_memo_whose_build_failed_is_dropped(monkeypatch):
    hs = _states([_change(11, "port")])

    def failing(s, host, changes, revision, memo, **kw):
        memo[("net_routers", "n9")] = set()  # put in before its read, as routed does
        raise RuntimeError("the database went away")

    monkeypatch.setattr(host_view, "delta", failing)
    with pytest.raises(RuntimeError):
        hs._delta("hv", [_change(11, "port")], 11)
    assert hs._memo == (None, {})
    assert changefeed.HostStates.TOPOLOGY >= {k[0] for k in TOPO}
