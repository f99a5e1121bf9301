"""agent.ovsdb against a private ovsdb-server + ovs-vswitchd."""

from __future__ import annotations

import threading
import time

import pytest

from agent.ovsdb import Connection, InterfaceWatcher, NotFound, Ovsdb, Vif

BRIDGE_COLUMNS = (
    "datapath_type",
    "fail_mode",
    "protocols",
    "controller",
    "other_config",
    "external_ids",
    "ports",
)


@pytest.fixture
def api(ovs):
    conn = Connection(ovs.db_remote, timeout=10).start()
    try:
        yield Ovsdb(conn)
    finally:
        conn.stop()


def bridge_state(ovs, name="br-int"):
    return {c: ovs.vsctl("get", "Bridge", name, c).strip() for c in BRIDGE_COLUMNS}


class Recorder:
    """Collects watcher events and lets a test wait for one."""

    def __init__(self):
        self.events: list[tuple[float, str, Vif, object]] = []
        self.cv = threading.Condition()

    def __call__(self, event, vif, old):
        with self.cv:
            self.events.append((time.monotonic(), event, vif, old))
            self.cv.notify_all()

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching event; got {[(e[1], e[2]) for e in self.events]}"
                    )
                self.cv.wait(left)


def test_ensure_bridge_is_idempotent(ovs, api):
    kw = dict(
        datapath_type="netdev",
        controller="tcp:127.0.0.1:6633",
        connection_mode="out-of-band",
        other_config={"hwaddr": "fa:16:3e:aa:bb:cc"},
        external_ids={"owner": "quantum-ovs"},
    )
    uuid1 = api.ensure_bridge("br-int", **kw)
    first = bridge_state(ovs)
    uuid2 = api.ensure_bridge("br-int", **kw)
    assert uuid1 == uuid2
    assert bridge_state(ovs) == first
    assert ovs.vsctl("list-br").split() == ["br-int"]
    assert ovs.vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "secure"
    assert ovs.vsctl("get", "Bridge", "br-int", "datapath_type").strip() == "netdev"
    assert ovs.vsctl("get", "Bridge", "br-int", "protocols").strip() == "[OpenFlow13]"
    assert ovs.vsctl("get-controller", "br-int").split() == ["tcp:127.0.0.1:6633"]
    assert ovs.vsctl("get", "Controller", "br-int", "connection_mode").strip() == "out-of-band"
    assert len(ovs.vsctl("--columns=_uuid", "list", "Controller").split()) == 3  # one row


def test_ensure_bridge_repairs_drift_and_keeps_foreign_keys(ovs, api):
    api.ensure_bridge(
        "br-int", datapath_type="netdev", controller="tcp:127.0.0.1:6633", other_config={"a": "1"}
    )
    ovs.vsctl(
        "set",
        "Bridge",
        "br-int",
        "fail_mode=standalone",
        "protocols=OpenFlow10",
        "other_config:foreign=yes",
        "other_config:a=2",
    )
    ovs.vsctl("set-controller", "br-int", "tcp:127.0.0.1:9999")
    api.ensure_bridge(
        "br-int", datapath_type="netdev", controller="tcp:127.0.0.1:6633", other_config={"a": "1"}
    )
    assert ovs.vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "secure"
    assert ovs.vsctl("get", "Bridge", "br-int", "protocols").strip() == "[OpenFlow13]"
    assert ovs.vsctl("get-controller", "br-int").split() == ["tcp:127.0.0.1:6633"]
    assert ovs.vsctl("get", "Bridge", "br-int", "other_config:a").strip() == '"1"'
    assert ovs.vsctl("get", "Bridge", "br-int", "other_config:foreign").strip() == "yes"


def test_tunnel_and_patch_ports(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    api.ensure_bridge("br-phys", datapath_type="netdev")
    for _ in range(2):  # idempotent
        api.ensure_tunnel_port("br-int", "vxlan-tun", "vxlan", local_ip="192.0.2.1")
        api.ensure_tunnel_port("br-int", "gre-tun", "gre", local_ip="192.0.2.1")
        api.ensure_patch_ports("br-int", "br-phys", "int-phys", "phys-int")
    assert api.list_ports("br-int") == ["gre-tun", "int-phys", "vxlan-tun"]
    assert api.list_ports("br-phys") == ["phys-int"]
    assert ovs.vsctl("get", "Interface", "vxlan-tun", "type").strip() == "vxlan"
    opts = ovs.vsctl("get", "Interface", "vxlan-tun", "options").strip()
    assert opts == '{key=flow, local_ip="192.0.2.1", remote_ip=flow}'
    assert ovs.vsctl("get", "Interface", "int-phys", "options:peer").strip() == "phys-int"
    assert ovs.vsctl("get", "Interface", "phys-int", "options:peer").strip() == "int-phys"
    # ovs-vswitchd accepted them all: each has an OpenFlow port.
    ofports = {
        name: api.wait_ofport(name, timeout=5) for name in ("vxlan-tun", "gre-tun", "int-phys")
    }
    assert len(set(ofports.values())) == 3
    assert ofports["vxlan-tun"] == ovs.ofport("vxlan-tun")
    # Changing the local IP updates the port in place.
    api.ensure_tunnel_port("br-int", "vxlan-tun", "vxlan", local_ip="192.0.2.9")
    assert ovs.vsctl("get", "Interface", "vxlan-tun", "options:local_ip").strip() == '"192.0.2.9"'
    assert api.get_ofport("vxlan-tun") == ofports["vxlan-tun"]


def test_port_on_another_bridge_is_an_error(api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    api.ensure_bridge("br-ex", datapath_type="netdev")
    api.ensure_port("br-ex", "p1")
    with pytest.raises(Exception, match="another bridge"):
        api.ensure_port("br-int", "p1")


def test_delete_port_and_external_ids(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    api.ensure_port("br-int", "p1", "internal", external_ids={"a": "1"})
    api.set_external_ids("Interface", "p1", {"b": "2"})
    assert ovs.vsctl("get", "Interface", "p1", "external_ids").strip() == '{a="1", b="2"}'
    api.set_external_ids("Interface", "p1", {"c": "3"}, replace=True)
    assert ovs.vsctl("get", "Interface", "p1", "external_ids").strip() == '{c="3"}'
    api.del_port("p1")
    api.del_port("p1")  # if_exists
    assert api.list_ports("br-int") == []
    assert ovs.vsctl("--if-exists", "get", "Interface", "p1", "name").strip() == ""
    with pytest.raises(NotFound):
        api.del_port("p1", if_exists=False)
    with pytest.raises(NotFound):
        api.set_external_ids("Interface", "nope", {"a": "b"})
    api.del_bridge("br-int")
    assert ovs.vsctl("list-br").strip() == ""


def test_concurrent_writers_do_not_clobber_each_other(ovs, api):
    """Our port additions and nova's (ovs-vsctl) interleave without loss."""
    api.ensure_bridge("br-int", datapath_type="netdev")
    errors = []

    def ours():
        try:
            for i in range(10):
                api.ensure_port("br-int", f"q{i}", "internal")
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=ours)
    t.start()
    for i in range(10):
        ovs.vsctl("add-port", "br-int", f"n{i}", "--", "set", "Interface", f"n{i}", "type=internal")
    t.join()
    assert not errors
    assert sorted(api.list_ports("br-int")) == sorted(
        [f"q{i}" for i in range(10)] + [f"n{i}" for i in range(10)]
    )


def test_watcher_sees_plugged_port_quickly(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    rec = Recorder()
    InterfaceWatcher(api.conn, rec)
    inst = ovs.add_instance("10.0.0.1", plug=False)
    t0 = time.monotonic()
    ovs.plug(inst)
    t_plugged = time.monotonic()
    plugged = rec.wait(lambda e: e[1] == "plugged" and e[2].iface_id == inst.iface_id)
    ready = rec.wait(lambda e: e[2].iface_id == inst.iface_id and e[2].ofport is not None)
    vif = ready[2]
    assert vif.name == inst.port
    assert vif.attached_mac == inst.mac
    assert vif.iface_status == "active"
    assert vif.vm_uuid == inst.vm_uuid
    assert vif.ofport == ovs.ofport(inst.port)
    assert vif.row == ovs.vsctl("get", "Interface", inst.port, "_uuid").strip()
    # ovs-vsctl returns once ovs-vswitchd has reconfigured, so the
    # notification may even precede its return.
    print(
        f"\nwatcher: iface-id seen {plugged[0] - t0:.3f}s after add-port started "
        f"(vsctl took {t_plugged - t0:.3f}s), ofport seen after {ready[0] - t0:.3f}s"
    )
    assert ready[0] - t0 < 2.0
    assert api.conn.on_idl_thread is False

    ovs.unplug(inst)
    gone = rec.wait(lambda e: e[1] == "unplugged" and e[2].iface_id == inst.iface_id)
    assert gone[2].name == inst.port
    assert inst.iface_id not in InterfaceWatcher(api.conn, lambda *a: None).vifs()


def test_watcher_reports_existing_vifs_and_changes(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    a = ovs.add_instance("10.0.0.1")
    ovs.ofport(a.port)
    rec = Recorder()
    w = InterfaceWatcher(api.conn, rec)  # created after the port: reports it
    rec.wait(lambda e: e[1] == "plugged" and e[2].iface_id == a.iface_id and e[2].ofport)
    assert w.vifs()[a.iface_id].name == a.port
    # A non-VIF port (no iface-id) is not reported.
    api.ensure_port("br-int", "plain", "internal")
    # The iface-id is rewritten (port rebound): old one unplugged, new one plugged.
    ovs.vsctl("set", "Interface", a.port, 'external_ids:iface-id="other-id"')
    rec.wait(lambda e: e[1] == "unplugged" and e[2].iface_id == a.iface_id)
    rec.wait(lambda e: e[1] == "plugged" and e[2].iface_id == "other-id")
    ovs.vsctl("set", "Interface", a.port, "external_ids:iface-status=inactive")
    rec.wait(
        lambda e: (
            e[1] == "changed" and e[2].iface_status == "inactive" and e[3].iface_status == "active"
        )
    )
    assert set(w.vifs()) == {"other-id"}
    assert all(e[2].name != "plain" for e in rec.events)


def test_a_replug_in_one_transaction_is_another_row(ovs, api):
    """libvirt's and os-vif's re-plug (del-port and add-port in one
    transaction) makes a new Interface row with the same iface-id: the
    old row's "unplugged" names the old row (what the agent compares with
    the row it holds, Agent._vif_changed)."""
    api.ensure_bridge("br-int", datapath_type="netdev")
    inst = ovs.add_instance("10.0.0.1")
    rec = Recorder()
    InterfaceWatcher(api.conn, rec)
    old = rec.wait(lambda e: e[2].iface_id == inst.iface_id and e[2].ofport)[2]
    ovs.vsctl("--", "--if-exists", "del-port", "br-int", inst.port,
              "--", "add-port", "br-int", inst.port,
              "--", "set", "Interface", inst.port, f'external_ids:iface-id="{inst.iface_id}"')
    gone = rec.wait(lambda e: e[1] == "unplugged" and e[2].iface_id == inst.iface_id)[2]
    new = rec.wait(lambda e: e[2].iface_id == inst.iface_id and e[2].ofport
                   and e[2].row != old.row)[2]
    assert gone.row == old.row and new.row == ovs.vsctl(
        "get", "Interface", inst.port, "_uuid").strip()


def test_execute_from_an_event_handler_is_refused(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    seen = []

    def handler(event, row, old):
        try:
            api.list_ports("br-int")
        except RuntimeError as e:
            seen.append(e)

    api.conn.add_row_handler(handler, table="Port")
    api.ensure_port("br-int", "p1", "internal")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen and "IDL thread" in str(seen[0])


def test_watcher_resyncs_after_ovsdb_server_restart(ovs, api):
    """Rows removed while we were disconnected still produce 'unplugged'."""
    api.ensure_bridge("br-int", datapath_type="netdev")
    a = ovs.add_instance("10.0.0.1")
    b = ovs.add_instance("10.0.0.2")
    rec = Recorder()
    InterfaceWatcher(api.conn, rec)
    rec.wait(lambda e: e[1] == "plugged" and e[2].iface_id == b.iface_id)
    ovs.stop_ovsdb()
    ovs.start_ovsdb()
    # The IDL reconnects with a back-off, so this change usually lands
    # before it is back: a full reload without a delete notification.
    ovs.vsctl("del-port", "br-int", a.port)
    rec.wait(lambda e: e[1] == "unplugged" and e[2].iface_id == a.iface_id, timeout=15)
    api.ensure_port("br-int", "p-after", "internal")  # the connection works again
    assert "p-after" in api.list_ports("br-int")


def test_command_timed_out_while_disconnected_never_runs(ovs, api):
    api.ensure_bridge("br-int", datapath_type="netdev")
    ovs.stop_ovsdb()
    time.sleep(0.2)  # let the IDL notice
    with pytest.raises(Exception, match="timed out"):
        api.execute(api.cmd.EnsurePort("br-int", "ghost", "internal"), timeout=0.5)
    ovs.start_ovsdb()
    # Runs after the IDL has reconnected (it backs off up to a few seconds).
    api.execute(api.cmd.EnsurePort("br-int", "alive", "internal"), timeout=15)
    assert api.list_ports("br-int") == ["alive"]
