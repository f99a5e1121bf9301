"""The agent's reconciler, port reporter and state file against fakes (no
switch, no server): what reaches the switch, what the reconciler then
believes is installed, what is reported and retried, what is kept."""

from __future__ import annotations

import threading

from agent import sync_client
from agent.reconciler import Reconciler
from agent.reporting import PortReporter
from agent.state import StateFile
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.desired import DesiredFlows
from quantum_ovs.compiler.engine import Allocations


def _flow(n, actions=(), cookie=1):
    return F.Flow(10, 100, F.Match(reg0=n), actions, cookie)


def _table(*flows):
    d = DesiredFlows()
    for f in flows:
        d.add_owner(("o", f.match), [f])
    return d


class FakeChannel:
    def __init__(self, flows=()):
        self.connected = True
        self.generation = 1
        self.switch = {f.key: f for f in flows}
        self.dumps = 0
        self.sent = []

    def dump_flows(self):
        self.dumps += 1
        return list(self.switch.values())

    def apply(self, d):
        self.sent.append(d)
        for f in d.deletes:
            del self.switch[f.key]
        for f in (*d.modifies, *d.adds):
            self.switch[f.key] = f


class StreamChannel(FakeChannel):
    """apply_stream() as the real channel does it: one bundle, opened at
    the first entry, applied only once the entries ran to their end."""

    def __init__(self, flows=()):
        super().__init__(flows)
        self.bundles = []  # the entries of each bundle committed

    def apply_stream(self, entries):
        bundle = []
        for f, delete in entries:  # (an exception: nothing applied)
            bundle.append((f, delete))
        if bundle:
            for f, delete in bundle:
                if delete:
                    del self.switch[f.key]
                else:
                    self.switch[f.key] = f
            self.bundles.append(bundle)
        return len(bundle)


def _reconciler(channel):
    r = Reconciler({"applies": 0, "flow_mods": 0, "resyncs": 0})
    r.channel = channel
    return r


def test_first_install_dumps_and_sends_only_the_difference():
    a, b, c = _flow(1), _flow(2), _flow(3)
    ch = FakeChannel([a, F.Flow(10, 100, b.match, (F.Output(9),), 1), _flow(4)])
    r = _reconciler(ch)
    d = r.install(_table(a, b, c), touched=set())
    assert ch.dumps == 1
    assert (set(d.deletes), set(d.modifies), set(d.adds)) == ({_flow(4)}, {b}, {c})
    assert set(ch.switch.values()) == {a, b, c}
    assert r.installed == ch.switch
    assert r.stats == {"applies": 1, "flow_mods": 3, "resyncs": 1}


def test_later_installs_diff_only_the_touched_keys_without_a_dump():
    a, b = _flow(1), _flow(2)
    ch = FakeChannel()
    r = _reconciler(ch)
    r.install(_table(a), set())
    d = r.install(_table(a, b), {b.key})
    assert ch.dumps == 1 and d.adds == (b,) and not d.deletes
    # an untouched key is not looked at: the switch is not told
    assert r.install(_table(b), {b.key}).empty
    assert set(ch.switch.values()) == {a, b}


def test_a_resync_or_a_new_connection_dumps_again_the_same_one_does_not():
    ch = FakeChannel()
    r = _reconciler(ch)
    r.install(_table(_flow(1)), set())
    r.connected(ch.generation)  # the connection we dumped on
    r.install(_table(_flow(1)), set())
    assert ch.dumps == 1
    ch.generation = 2
    r.connected(2)
    ch.switch.clear()  # a restarted switch lost its flows
    r.install(_table(_flow(1)), set())
    assert ch.dumps == 2 and set(ch.switch.values()) == {_flow(1)}
    r.resync()
    assert r.install(_table(_flow(1)), set()).empty and ch.dumps == 3


def _prefetch(r, generation):
    r.prefetch(generation)
    r._prefetched[2].result(5)  # the dump thread is done


def test_a_dump_taken_when_the_switch_connects_is_used_by_the_first_install():
    a = _flow(1)
    ch = FakeChannel([a, _flow(2)])
    r = _reconciler(ch)
    _prefetch(r, ch.generation)
    r.connected(ch.generation)
    d = r.install(_table(a), set())
    assert ch.dumps == 1 and d.deletes == (_flow(2),) and not d.adds
    assert r.installed == ch.switch


def test_a_dump_taken_ahead_is_not_used_once_out_of_date():
    a, b = _flow(1), _flow(2)
    # flows sent since: the dump taken ahead lacks b
    ch = FakeChannel()
    r = _reconciler(ch)
    r.install(_table(a), set())
    ch.generation = 2
    _prefetch(r, 2)
    r.install(_table(a, b), {b.key})
    r.connected(2)
    assert r.install(_table(a, b), set()).empty and ch.dumps == 3
    # a resync asked for since (the switch may have changed under us)
    _prefetch(r, 2)
    ch.switch.pop(a.key)
    r.resync()
    assert r.install(_table(a, b), set()).adds == (a,) and ch.dumps == 5
    # another connection since
    _prefetch(r, 2)
    ch.generation = 3
    ch.switch.clear()
    r.connected(3)
    assert set(r.install(_table(a, b), set()).adds) == {a, b} and ch.dumps == 7


def test_a_failed_dump_ahead_is_taken_again():
    ch = FakeChannel([_flow(1)])
    r = _reconciler(ch)
    real, ch.dump_flows = ch.dump_flows, None  # calling it raises TypeError
    r.prefetch(ch.generation)
    try:
        r._prefetched[2].exception(5)
    finally:
        ch.dump_flows = real
    assert r.install(_table(_flow(1)), set()).empty and ch.dumps == 1


def _owners(*flows):
    """The engine's load_flows(): the table owner by owner."""
    return iter([flows[i:i + 2] for i in range(0, len(flows), 2)])


def test_a_streamed_install_sends_only_the_difference_deletes_last():
    a, b, c = _flow(1), _flow(2), _flow(3)
    ch = StreamChannel([a, F.Flow(10, 100, b.match, (F.Output(9),), 1), _flow(4)])
    r = _reconciler(ch)
    d = r.install_stream(_owners(a, b, c))
    assert ch.dumps == 1
    assert (d.deletes, d.modifies, d.adds) == ((_flow(4),), (b,), (c,))
    assert ch.bundles == [[(b, False), (c, False), (_flow(4), True)]]
    assert set(ch.switch.values()) == {a, b, c} and r.installed == ch.switch
    assert r.stats == {"applies": 1, "flow_mods": 3, "resyncs": 1}
    # later changes are diffed by key, without a dump
    assert r.install(_table(a, b, c), {c.key}).empty and ch.dumps == 1


def test_a_streamed_install_of_what_is_there_sends_nothing():
    # a hitless restart: the switch holds the table already
    flows = [_flow(n) for n in range(7)]
    ch = StreamChannel(flows)
    r = _reconciler(ch)
    d = r.install_stream(_owners(*flows))
    assert d.empty and ch.bundles == [] and r.stats["flow_mods"] == 0
    assert r.installed == ch.switch


def test_a_streamed_install_that_fails_midway_applies_nothing():
    a, b = _flow(1), _flow(2)
    ch = StreamChannel([_flow(9)])
    r = _reconciler(ch)

    def failing():
        yield (a, b)
        raise RuntimeError("compile failed")
    try:
        r.install_stream(failing())
    except RuntimeError:
        pass
    else:
        raise AssertionError("the error was swallowed")
    assert set(ch.switch.values()) == {_flow(9)} and ch.bundles == []
    assert r.installed == ch.switch  # what the dump said
    assert r.stats["flow_mods"] == 0


def test_a_streamed_install_while_disconnected_takes_the_table_to_its_end():
    ch = StreamChannel()
    ch.connected = False
    r = _reconciler(ch)
    batches = _owners(_flow(1), _flow(2), _flow(3))
    assert r.install_stream(batches) is None
    assert list(batches) == [] and ch.dumps == 0 and r.need_dump


def test_nothing_is_sent_while_disconnected():
    ch = FakeChannel()
    ch.connected = False
    r = _reconciler(ch)
    assert r.install(_table(_flow(1)), set()) is None
    assert ch.dumps == 0 and ch.sent == []


class FakeClient:
    def __init__(self, fail=0):
        self.fail = fail
        self.calls = []

    def report(self, plugged, unplugged, installed):
        self.calls.append((plugged, unplugged, installed))
        if self.fail:
            self.fail -= 1
            raise sync_client.ServerUnavailable("down")


def test_ports_are_reported_once_and_a_failed_report_is_retried():
    retried = threading.Event()
    client = FakeClient(fail=1)
    rep = PortReporter(client, threading.Event(), retried.set)
    vifs = {"p1": 5, "p2": 6, "elsewhere": 7}
    rep.report({"p1", "p2"}, vifs)
    assert retried.wait(5)
    assert rep.reported == set()
    rep.report({"p1", "p2"}, vifs)
    assert client.calls[-1] == ([("p1", 5), ("p2", 6)], [], ["p1", "p2"])
    rep.report({"p1", "p2"}, vifs)  # nothing new: no call
    assert len(client.calls) == 2
    rep.unplugged("p1")
    rep.plugged("p2")  # moved to another ofport: reported again
    del vifs["p1"]
    vifs["p2"] = 8
    rep.report({"p1", "p2"}, vifs)
    assert client.calls[-1] == ([("p2", 8)], ["p1"], ["p2"])


def test_no_retry_once_the_agent_stops():
    stop = threading.Event()
    stop.set()
    called = []
    rep = PortReporter(FakeClient(fail=1), stop, lambda: called.append(1))
    rep.report({"p1"}, {"p1": 5})
    assert called == [] and rep.reported == set()


def test_the_state_file_keeps_allocations(tmp_path):
    st = StateFile(str(tmp_path / "state"), "hv1")
    assert st.load() is None
    alloc = Allocations(local_ids={"net-a": 0x8003}, conj_ids={("g", ("x", 1)): 7}, next_conj=8)
    st.save(alloc)
    back = StateFile(str(tmp_path / "state"), "hv1").load()
    assert (back.local_ids, back.conj_ids, back.next_conj) == (
        {"net-a": 0x8003}, {("g", ("x", 1)): 7}, 8)
    with open(st.path, "w") as f:
        f.write("{not json")
    assert st.load() is None  # unreadable: start afresh
    assert StateFile(None, "hv1").load() is None
