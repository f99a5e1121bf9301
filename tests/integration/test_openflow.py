"""agent.openflow's channel against a real ovs-vswitchd (netdev datapath)."""

from __future__ import annotations

import threading
import time

import pytest

from agent.openflow import BundleRejected
from quantum_ovs.compiler.flow import (
    Controller,
    Field,
    Flow,
    FlowDiff,
    GotoTable,
    Meter,
    Match,
    Output,
    SetField,
    diff,
)
from tests.fixtures.flow_samples import FOREIGN_COOKIE, cookie, sample_flows, simple_flows


def test_installed_flows_show_up_in_ovs_ofctl(switch):
    flows = [
        Flow(0, 10, Match(in_port=1), (Output(2),), cookie(1)),
        Flow(
            0,
            10,
            Match(Field("reg6", 0x10, 0xF0), eth_type=0x0800, ipv4_dst="10.0.0.2"),
            (Output(1),),
            cookie(2),
        ),
    ]
    switch.channel.apply(diff([], flows))
    assert switch.ovs.dump_flows() == [
        "cookie=0x5157000000000001, priority=10,in_port=1 actions=output:2",
        "cookie=0x5157000000000002, priority=10,ip,reg6=0x10/0xf0,nw_dst=10.0.0.2 actions=output:1",
    ]


def test_sample_flows_survive_the_switch(switch):
    """Every action and match type: installed, dumped back, equal."""
    flows = sample_flows()
    switch.channel.install(flows)
    dumped = switch.channel.dump_flows()
    assert sorted(dumped, key=lambda f: f.key) == sorted(flows, key=lambda f: f.key)
    assert len(switch.ovs.dump_flows()) == len(flows)
    # Nothing left to do: the diff against the dump is empty.
    assert diff(dumped, flows).empty


def test_bundle_with_a_bad_flow_changes_nothing(switch):
    base = simple_flows(20)
    switch.channel.install(base)
    before = switch.ovs.dump_flows()
    bad = Flow(
        5, 200, Match(ipv4_src="10.9.9.9"), (Output(1),), cookie(3)
    )  # no eth_type: bad prereq
    change = FlowDiff(
        deletes=tuple(base[:10]),
        modifies=(
            Flow(base[10].table, base[10].priority, base[10].match, (Output(7),), base[10].cookie),
        ),
        adds=(Flow(5, 300, Match(in_port=4), (Output(5),), cookie(4)), bad),
    )
    with pytest.raises(BundleRejected) as err:
        switch.channel.apply(change)
    assert [f for f, _ in err.value.errors] == [bad]
    assert "BAD_PREREQ" in str(err.value)
    assert switch.ovs.dump_flows() == before
    assert sorted(switch.channel.dump_flows(), key=lambda f: f.key) == sorted(
        base, key=lambda f: f.key
    )
    # The channel is still usable and the same change without the bad flow applies.
    good = FlowDiff(change.deletes, change.modifies, change.adds[:1])
    switch.channel.apply(good)
    want = {f.key: f for f in base[10:]} | {f.key: f for f in good.modifies + good.adds}
    assert {f.key: f for f in switch.channel.dump_flows()} == want


def test_bundle_failing_at_commit_changes_nothing(switch):
    """Errors the switch only finds at commit time (a full table) also
    leave everything as it was."""
    ovs = switch.ovs
    ovs.vsctl(
        "--",
        "--id=@ft",
        "create",
        "Flow_Table",
        "flow_limit=10",
        "overflow_policy=refuse",
        "--",
        "set",
        "Bridge",
        "br-int",
        "flow_tables:5=@ft",
    )
    base = simple_flows(8)
    switch.channel.install(base)
    before = ovs.dump_flows()
    more = simple_flows(12)[8:]
    with pytest.raises(BundleRejected) as err:
        switch.channel.apply(FlowDiff(deletes=(base[0],), adds=tuple(more)))
    assert "TABLE_FULL" in str(err.value) or "MSG_FAILED" in str(err.value)
    assert ovs.dump_flows() == before
    # Within the limit it goes through.
    switch.channel.apply(FlowDiff(deletes=tuple(base[:2]), adds=tuple(more)))
    assert len(switch.channel.dump_flows()) == 10


def test_dump_ignores_foreign_flows_and_apply_never_deletes_them(switch):
    ovs = switch.ovs
    ours = [
        Flow(0, 50, Match(in_port=1), (Output(2),), cookie(1)),
        Flow(0, 40, Match(in_port=2), (Output(1),), cookie(2)),
    ]
    switch.channel.install(ours)
    ovs.ofctl(
        "add-flow",
        "br-int",
        f"cookie={FOREIGN_COOKIE:#x},table=0,priority=60,in_port=3,actions=output:1",
    )
    assert sorted(switch.channel.dump_flows(), key=lambda f: f.key) == sorted(
        ours, key=lambda f: f.key
    )
    # Removing all of ours leaves the foreign flow alone.
    switch.channel.apply(diff(switch.channel.dump_flows(), []))
    assert switch.channel.dump_flows() == []
    assert ovs.dump_flows() == [
        f"cookie={FOREIGN_COOKIE:#x}, priority=60,in_port=3 actions=output:1"
    ]
    # A strict delete of the foreign flow's exact key, scoped by our cookie,
    # does not touch it either.
    switch.channel.apply(FlowDiff(deletes=(Flow(0, 60, Match(in_port=3), (), cookie(9)),)))
    assert len(ovs.dump_flows()) == 1
    # And we refuse to write flows outside our cookie scope at all.
    with pytest.raises(ValueError):
        switch.channel.install([Flow(0, 1, Match(), (), FOREIGN_COOKIE)])


def test_only_the_expected_bridge_is_accepted(switch, caplog):
    api, ch = switch.api, switch.channel
    dpid = api.get_bridge("br-int")["datapath_id"]
    assert dpid == ch.datapath_id
    ch.expected_datapath_id = dpid
    gen = ch.generation
    # A second bridge pointed at our listener is turned away ...
    api.ensure_bridge("br-ex", datapath_type="netdev", controller=ch.target)
    deadline = time.monotonic() + 10
    while "is not the bridge" not in caplog.text:
        assert ch.generation == gen and ch.datapath_id == dpid
        assert time.monotonic() < deadline, "br-ex never tried to connect"
        time.sleep(0.05)
    assert ch.generation == gen and ch.datapath_id == dpid
    # ... while br-int stays in service.
    ch.barrier()


def test_modify_replaces_actions_and_cookie(switch):
    old = Flow(0, 10, Match(in_port=1), (Output(2),), cookie(1))
    new = Flow(0, 10, Match(in_port=1), (Output(3), Output(4)), cookie(2))
    switch.channel.install([old])
    d = diff([old], [new])
    assert d.modifies == (new,)
    switch.channel.apply(d)
    assert switch.channel.dump_flows() == [new]
    assert switch.ovs.dump_flows() == [
        "cookie=0x5157000000000002, priority=10,in_port=1 actions=output:3,output:4"
    ]


def test_reconnect_after_vswitchd_restart(switch):
    ch = switch.channel
    events = []
    connected = threading.Event()
    ch.on_disconnect(lambda gen: events.append(("down", gen)))

    def on_connect(dpid, gen):
        events.append(("up", gen, ch.dump_flows()))  # a handler may talk to the switch
        connected.set()

    ch.on_connect(on_connect)
    flows = simple_flows(50)
    ch.install(flows)
    gen = ch.generation
    t0 = time.monotonic()
    switch.ovs.restart_vswitchd()  # SIGKILL by PID, start again
    new_gen = ch.wait_connected(timeout=15, after_generation=gen)
    print(f"\nreconnected {time.monotonic() - t0:.2f}s after the kill")
    assert connected.wait(5)
    assert events[0] == ("down", gen)
    assert events[1] == ("up", new_gen, [])  # a restarted switch has no flows
    installed = ch.dump_flows()
    ch.apply(diff(installed, flows))
    assert sorted(ch.dump_flows(), key=lambda f: f.key) == sorted(flows, key=lambda f: f.key)


def test_a_hung_switch_is_dropped_and_comes_back(switch):
    """No answer to our echo within two intervals closes the connection;
    when the switch wakes up it reconnects."""
    import os
    import signal

    ch = switch.channel
    gen = ch.generation
    down = threading.Event()
    ch.on_disconnect(lambda g: down.set())
    pid = switch.ovs.pid("ovs-vswitchd")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert down.wait(3 * ch.echo_interval + 2)
    finally:
        os.kill(pid, signal.SIGCONT)
    ch.wait_connected(timeout=15, after_generation=gen)
    ch.barrier()


def test_packet_in_and_packet_out(switch):
    ovs = switch.ovs
    a = ovs.add_instance("10.0.0.1")
    port = ovs.ofport(a.port)
    got = []
    seen = threading.Event()

    def packet_in(pin):
        got.append(pin)
        seen.set()

    switch.channel.on_packet_in(packet_in)
    switch.channel.install(
        [
            Flow(
                0,
                10,
                Match(in_port=port, eth_type=0x0806),
                (SetField("reg6", 0x42), GotoTable(3)),
                cookie(1),
            ),
            Flow(3, 10, Match(reg6=0x42), (Controller(),), cookie(2)),
        ]
    )
    a.ping("10.0.0.99", wait=1)  # triggers an ARP request
    assert seen.wait(5)
    pin = got[0]
    assert pin.in_port == port
    assert pin.cookie == cookie(2) and pin.table == 3
    assert pin.match.get("reg6").value == 0x42  # pipeline registers come along
    assert pin.data[12:14] == b"\x08\x06"
    assert pin.data[6:12] == bytes.fromhex(a.mac.replace(":", ""))

    # packet-out: a frame sent to the instance's port arrives in its namespace.
    sock = a.raw_socket()
    try:
        frame = (
            bytes.fromhex(a.mac.replace(":", ""))
            + bytes.fromhex("fa163e000099")
            + b"\x88\xb5"
            + b"quantum-ovs".ljust(46, b"\0")
        )
        switch.channel.packet_out(frame, [Output(port)])
        deadline = time.monotonic() + 5
        while True:
            data = sock.recv(2048)
            if data[12:14] == b"\x88\xb5":
                break
            assert time.monotonic() < deadline
        assert data[14:25] == b"quantum-ovs"
    finally:
        sock.close()


def test_dump_by_table_and_barrier(switch):
    flows = simple_flows(5, table=5) + simple_flows(3, table=7)
    switch.channel.install(flows)
    switch.channel.barrier()
    assert len(switch.channel.dump_flows(table=7)) == 3
    assert {f.table for f in switch.channel.dump_flows(table=5)} == {5}


@pytest.mark.parametrize("n", [1000])
def test_large_bundle(switch, n):
    flows = simple_flows(n)
    t0 = time.monotonic()
    switch.channel.install(flows)
    t1 = time.monotonic()
    dumped = switch.channel.dump_flows()
    t2 = time.monotonic()
    assert len(dumped) == n
    assert diff(dumped, flows).empty
    print(f"\n{n} flows: bundle {t1 - t0:.2f}s, dump+decode {t2 - t1:.2f}s")
    assert t1 - t0 < 30


def test_a_flow_the_encoder_refuses_late_in_a_big_bundle_changes_nothing(switch):
    # The adds are sent in chunks while later ones are encoded: a flow
    # refused after several chunks went out discards the bundle.
    base = simple_flows(10)
    switch.channel.install(base)
    before = switch.ovs.dump_flows()
    bad = Flow(5, 300, Match(eth_src="AA:BB:CC:DD:EE:FF"), (Output(1),), cookie(7))
    with pytest.raises(ValueError, match="lower-case"):
        switch.channel.apply(FlowDiff(deletes=tuple(base[:5]),
                                      adds=(*simple_flows(3000)[10:], bad)))
    assert switch.ovs.dump_flows() == before
    switch.channel.apply(FlowDiff(deletes=tuple(base[:5])))
    assert len(switch.channel.dump_flows()) == 5


# ---------------------------------------------------------------- apply_stream
# A streamed install (issue 17): flows sent in one bundle as they are made.

def _metered(n, first=1):
    return [Flow(5, 200, Match(in_port=first + i), (Meter(first + i), Output(1)),
                 cookie(2000 + i)) for i in range(n)]


def _stream(flows, deletes=()):
    yield from ((f, False) for f in flows)
    yield from ((f, True) for f in deletes)


def _meters(switch):
    return sorted(line.split()[0] for line in switch.ovs.ofctl("dump-meters", "br-int")
                  .splitlines() if line.strip().startswith("meter="))


def test_a_streamed_install_leaves_what_the_bundle_of_the_same_diff_leaves(switch):
    base = sample_flows() + simple_flows(10)
    switch.channel.install(base[:-3])
    # Compared as sets of lines: the switch lists flows of one table and
    # priority in its classifier's order, which a reinstall may change.
    before = sorted(switch.ovs.dump_flows())
    want = base[3:] + _metered(4)  # 3 deletes, 3 adds, 4 metered adds
    d = diff(switch.channel.dump_flows(), want)
    assert switch.channel.apply_stream(_stream((*d.modifies, *d.adds), d.deletes)) == 10
    streamed = (sorted(switch.ovs.dump_flows()), _meters(switch))
    assert streamed[1] == ["meter=1", "meter=2", "meter=3", "meter=4"]
    # the same, in one apply() of the diff, from the same start
    switch.ovs.ofctl("del-flows", "br-int")
    switch.channel.install(base[:-3])
    assert sorted(switch.ovs.dump_flows()) == before
    switch.channel.apply(diff(switch.channel.dump_flows(), want))
    assert (sorted(switch.ovs.dump_flows()), _meters(switch)) == streamed
    assert diff(switch.channel.dump_flows(), want).empty


def test_a_stream_with_nothing_to_send_opens_no_bundle(switch):
    sent = []
    real = switch.channel._call
    switch.channel._call = lambda conn, msg, kind, timeout=None: (
        sent.append(kind), real(conn, msg, kind, timeout))[1]
    assert switch.channel.apply_stream(iter(())) == 0
    assert sent == []


@pytest.mark.parametrize("where", ["encoder", "generator", "scope"])
def test_a_stream_failing_after_chunks_went_out_changes_nothing(switch, where):
    # Several 64 KB chunks (and a meter) are on the switch when the stream
    # fails: the bundle is discarded, nothing is applied.
    base = simple_flows(10)
    switch.channel.install(base)
    before = switch.ovs.dump_flows()
    many = simple_flows(3000)[10:] + _metered(1, first=50)

    def entries():
        yield from _stream(many, base[:5])
        if where == "generator":
            raise RuntimeError("compile failed")
        bad = (Flow(5, 300, Match(eth_src="AA:BB:CC:DD:EE:FF"), (Output(1),), cookie(7))
               if where == "encoder" else
               Flow(5, 300, Match(in_port=9), (Output(1),), FOREIGN_COOKIE))
        yield bad, False
    with pytest.raises((ValueError, RuntimeError)):
        switch.channel.apply_stream(entries())
    assert switch.ovs.dump_flows() == before
    # the channel goes on: the next stream is applied
    assert switch.channel.apply_stream(_stream((), base[:5])) == 5
    assert len(switch.channel.dump_flows()) == 5


def test_a_stream_the_switch_refuses_changes_nothing(switch):
    base = simple_flows(10)
    switch.channel.install(base)
    before = switch.ovs.dump_flows()
    bad = Flow(5, 200, Match(ipv4_src="10.9.9.9"), (Output(1),), cookie(3))  # no eth_type
    with pytest.raises(BundleRejected):
        switch.channel.apply_stream(_stream([*simple_flows(2000)[10:], bad], base[:5]))
    assert switch.ovs.dump_flows() == before


def test_a_stream_sets_meters_an_earlier_agent_made_to_our_rate(switch):
    switch.ovs.ofctl("add-meter", "br-int",
                     "meter=7,pktps,burst,bands=type=drop,rate=1,burst_size=1")
    assert switch.channel.apply_stream(_stream(_metered(2, first=7))) == 2
    out = switch.ovs.ofctl("dump-meters", "br-int")
    assert "rate=1," not in out.replace(" ", "") and _meters(switch) == ["meter=7", "meter=8"]
    assert switch.channel.stats["meters_created"] == 1
