"""Review s28 (agent faults): the agent against a switch, OVSDB, a state
file and a server that misbehave.  Fakes only at the edges (the OpenFlow
switch: tests.unit.agent.test_reconciler's channels; OVSDB rows; the
server's client).  Each test fails on the code it was written against."""

from __future__ import annotations

import json

from agent.daemon import Agent
from agent.ovsdb.events import InterfaceWatcher
from agent.settings import Settings
from quantum_ovs import model as m
from tests.unit.agent.test_reconciler import StreamChannel as FakeChannel

HOST = "hv1"
NET = "11111111-1111-1111-1111-111111111111"
VM = "22222222-2222-2222-2222-222222222222"
VM2 = "33333333-3333-3333-3333-333333333333"


def _view(revision=1, ports=None):
    if ports is None:
        ports = (m.Port(VM, NET, "fa:16:3e:00:00:10",
                        (m.FixedIP("s", "10.0.0.5"),), host=HOST),)
    return m.HostView(
        host=HOST, networks=(m.Network(NET, m.Segment("vxlan", segmentation_id=5)),),
        subnets=(m.Subnet("s", NET, "10.0.0.0/24"),), ports=tuple(ports), revision=revision)


class _Client:
    """The server's side of the reports (what the agent said)."""

    def __init__(self):
        self.reports = []

    def report(self, plugged=(), unplugged=(), installed=(), floatingips=()):
        self.reports.append({"plugged": list(plugged), "unplugged": list(unplugged),
                             "installed": list(installed)})

    def close(self):
        pass


def _agent(tmp_path, switch=None):
    a = Agent(Settings(host=HOST, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(tmp_path)))
    a.reconciler.channel = switch if switch is not None else FakeChannel()
    a.reporter.client = _Client()
    return a


def _drain(a):
    """Hand the reconcile thread's queue to _handle as one batch."""
    batch = []
    while not a.events.empty():
        batch.append(a.events.get_nowait())
    if batch:
        a._handle(batch)


class _Row:
    def __init__(self, uuid, name, iface_id, ofport):
        self.uuid, self.name, self.ofport = uuid, name, ofport
        self.external_ids = {"iface-id": iface_id, "attached-mac": "fa:16:3e:00:00:10"}


class _Conn:
    """Enough of agent.ovsdb.connection.Connection for InterfaceWatcher."""

    idl = None

    def __init__(self):
        self.row_handlers = []

    def add_row_handler(self, fn, table=None):
        self.row_handlers.append(fn)

    def add_reconnect_handler(self, fn):
        pass

    def update(self, *events):
        """One OVSDB update: its row events in the order the IDL gives them
        (the rows of a table update are a JSON object keyed by row uuid:
        their order is the server's, not the transaction's)."""
        for ev, row in events:
            for fn in self.row_handlers:
                fn(ev, row, None)


def _flows_on(switch, ofport):
    """The flows that take packets in from ``ofport`` somewhere (a drop
    flow for it is not one)."""
    return [f for f in switch.switch.values()
            if (t := f.match.get("in_port")) is not None and t.value == ofport and f.actions]


# --------------------------------------------------------------------------
# F1: an interface replaced by another with the same iface-id


def test_a_vif_replaced_in_one_ovsdb_update_keeps_its_flows_and_its_status(tmp_path):
    """``ovs-vsctl -- --if-exists del-port tap0 -- add-port br-int tap0 --
    set Interface tap0 external_ids:iface-id=P`` (libvirt's and os-vif's
    way of (re)plugging a VIF: a hard reboot, a re-plug) is one OVSDB
    transaction: the old Interface row goes, a new row (same name, maybe a
    new ofport) comes.  The IDL hands the agent the new row's
    insert before the old row's delete when the server lists them so.  The
    port is plugged (at the new ofport) once the update is processed: its
    flows must be on the switch for that ofport and the server must not be
    told it was unplugged.  Here the old row's delete drops the port from
    the agent's VIFs (Agent._vif_changed deletes by iface-id whatever
    ofport the event names): no flows for the new ofport, the port
    reported unplugged (DOWN), and it stays so for ever (nothing else
    changes on the switch)."""
    switch = FakeChannel()
    a = _agent(tmp_path, switch)
    conn = _Conn()
    watcher = InterfaceWatcher(conn, a._on_vif)
    old = _Row("row-a", "tap0", VM, 5)
    conn.update(("insert", old))
    a.events.put(("full", _view()))
    _drain(a)
    assert a.vifs == {VM: 5} and _flows_on(switch, 5)
    assert a.reporter.client.reports[-1]["installed"] == [VM]

    new = _Row("row-b", "tap0", VM, 7)
    conn.update(("insert", new), ("delete", old))  # one transaction, the IDL's order
    _drain(a)
    assert watcher.vifs()[VM].ofport == 7  # OVSDB: the port is plugged at 7
    assert a.vifs == {VM: 7}, f"the agent's VIFs after the replug: {a.vifs}"
    assert _flows_on(switch, 7), "no flows for the port's new ofport"
    assert not _flows_on(switch, 5)
    assert not any(VM in r["unplugged"] for r in a.reporter.client.reports), \
        f"reported unplugged while plugged: {a.reporter.client.reports}"


# --------------------------------------------------------------------------
# F2: a port whose binding leaves this host and comes back is never reported


def _port(host):
    return m.Port(VM, NET, "fa:16:3e:00:00:10", (m.FixedIP("s", "10.0.0.5"),), host=host)


def test_a_port_bound_away_and_back_while_plugged_is_reported_installed_again(tmp_path):
    """A VIF stays plugged here while its binding:host_id goes to another
    host and comes back (nova's rollback of a live migration without
    multiple bindings sets binding:host_id back to the source; an admin's
    PUT does the same).  The server resets the binding on every host change
    (binding.py: flows_installed False, status DOWN) and waits for this
    host's agent to say the flows are in again, as Neutron's OVS agent does
    on the port_update (treat_devices_added_or_updated ->
    update_device_list up).  The agent removes the port's flows when it
    leaves and installs them when it comes back, but never reports it: it
    is still in PortReporter.reported from the first time, so the port
    stays DOWN (nova never gets network-vif-plugged) until the VIF is
    re-plugged or the agent restarts."""
    switch = FakeChannel()
    a = _agent(tmp_path, switch)
    a.events.put(("vif", ("plugged", _vif(5))))
    a.events.put(("full", _view(1, (_port(HOST),))))
    _drain(a)
    reports = a.reporter.client.reports
    assert reports[-1]["installed"] == [VM] and _flows_on(switch, 5)
    a.events.put(("delta", m.Delta(ports=(_port("hv2"),), revision=2)))  # bound away
    _drain(a)
    assert not _flows_on(switch, 5)
    n = len(reports)
    a.events.put(("delta", m.Delta(ports=(_port(HOST),), revision=3)))  # and back
    _drain(a)
    assert _flows_on(switch, 5)  # the flows are back...
    assert any(VM in r["installed"] for r in reports[n:]), \
        f"...but the server was never told so: reports after the return {reports[n:]}"


def _vif(ofport, name="tap0", iface_id=VM):
    from agent.ovsdb.events import Vif
    return Vif(name, iface_id, ofport)


# --------------------------------------------------------------------------
# F3: a state file that is JSON but not the agent's shape


def test_a_state_file_of_the_wrong_shape_is_ignored_not_fatal(tmp_path):
    """StateFile.load promises None for "an unreadable" file (and logs a
    warning), catching OSError/ValueError/TypeError.  A file that holds
    JSON of another shape (a list, null: a file overwritten by a tool or
    an editor, a disk block of another file) raises AttributeError out of
    load(): Agent() fails, and the agent cannot start again until an
    operator finds and removes the file."""
    for content in ("[]", "null", '"x"'):
        (tmp_path / f"agent-{HOST}.json").write_text(content)
        a = _agent(tmp_path)  # AttributeError: 'list' object has no attribute 'get'
        assert a.engine.alloc.local_ids == {}


NET2 = "44444444-4444-4444-4444-444444444444"


def test_a_state_file_giving_two_networks_one_local_id_does_not_merge_them(tmp_path):
    """The local id of a network is its VLAN on br-int and its conntrack
    zone: two networks with one id are one broadcast domain.  The state
    file's ids are taken as they are written, without checking that they
    are distinct (or in the compiler's range, or integers): a state file
    that holds one id twice (hand-edited, restored from another host of
    the same name, corrupted) joins two tenants' networks on this host."""
    (tmp_path / f"agent-{HOST}.json").write_text(json.dumps(
        {"local_ids": {NET: 40000, NET2: 40000}, "conj_ids": [], "next_conj": 1}))
    a = _agent(tmp_path)
    view = _view(1, (_port(HOST), m.Port(VM2, NET2, "fa:16:3e:00:00:20",
                                         (m.FixedIP("s2", "10.0.0.6"),), host=HOST)))
    view = view.replace(networks=view.networks + (m.Network(NET2, m.Segment("vxlan",
                                                                         segmentation_id=6)),),
                        subnets=view.subnets + (m.Subnet("s2", NET2, "10.0.0.0/24"),))
    a.engine.load(view)
    assert a.engine.local_id(NET) != a.engine.local_id(NET2), \
        f"both networks compiled with local id {a.engine.local_id(NET)}"


# --------------------------------------------------------------------------
# F4: a state file that cannot be written fails the batch


def test_a_state_file_that_cannot_be_written_is_not_a_failed_install(tmp_path):
    """The flows are in the switch; only the state file's save fails (a
    full /var/lib on a hypervisor, where instance disks grow; a file
    system remounted read-only).  Agent._install saves the state before it
    reports, and the OSError goes up to the reconcile loop, which takes it
    for a failed install ("reconcile failed; will dump and resync", with a
    traceback): the batch's reports are not sent, the loop sleeps 0.2 s,
    dumps every flow of the switch again and only then reports (the diff
    is empty, so no save is tried).  For as long as the disk stays full,
    every change that moves a flow costs a full dump and an ERROR, and
    every port waits for it before it goes ACTIVE.  The save's failure
    should be logged (the next restart is not hitless) and the batch go
    on.  Here the state path's parent is a regular file, so that every
    save raises a real OSError."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    switch = FakeChannel()
    a = Agent(Settings(host=HOST, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(blocker / "state")))
    a.reconciler.channel = switch
    a.reporter.client = _Client()
    a.events.put(("vif", ("plugged", _vif(5))))
    a.events.put(("full", _view()))
    try:
        _drain(a)
    except OSError as e:  # what the reconcile loop would log, then dump and retry
        raise AssertionError(f"the batch failed on the state file: {e!r}; "
                             f"reports sent: {a.reporter.client.reports}") from None
    assert _flows_on(switch, 5)
    assert a.reporter.client.reports and a.reporter.client.reports[-1]["installed"] == [VM]


# --------------------------------------------------------------------------
# F5: admin_state_up changes of a plugged port are never reported


def test_an_admin_state_change_of_a_plugged_port_is_reported(tmp_path):
    """A port created with admin_state_up False and plugged is reported
    installed once (the server then sets it DOWN: db/agents.report takes
    admin_state_up into account).  When it is set up again the agent
    installs its flows but never reports it again (it is in
    PortReporter.reported), and nothing else on the server moves its
    status: the port stays DOWN for ever, nova never gets
    network-vif-plugged.  The other way round (ACTIVE, then set down: the
    agent removes its flows, every packet dropped), it stays ACTIVE.
    Neutron's OVS agent reports each such port_update (_bind_devices:
    update_device_list with the port in devices_up or devices_down by
    admin_state_up)."""
    switch = FakeChannel()
    a = _agent(tmp_path, switch)
    down = m.Port(VM, NET, "fa:16:3e:00:00:10", (m.FixedIP("s", "10.0.0.5"),), host=HOST,
                  admin_state_up=False)
    a.events.put(("vif", ("plugged", _vif(5))))
    a.events.put(("full", _view(1, (down,))))
    _drain(a)
    reports = a.reporter.client.reports
    assert reports[-1]["installed"] == [VM]  # (the server: DOWN, admin_state_up False)
    assert not _flows_on(switch, 5)
    n = len(reports)
    a.events.put(("delta", m.Delta(ports=(_port(HOST),), revision=2)))  # admin up
    _drain(a)
    assert _flows_on(switch, 5)
    assert any(VM in r["installed"] for r in reports[n:]), \
        f"set up, flows in, never reported: reports since {reports[n:]}"
