"""Which BFD tunnels a host needs, and when BFD says a gateway is down."""

from __future__ import annotations

import logging

from types import SimpleNamespace

from agent import gateways as g
from agent.ovsdb.connection import OVSDBError
from quantum_ovs import model as m

NET, NET2, EXT = "net-a", "net-b", "ext"


def _router(rid, nets, hosts):
    return m.Router(
        id=rid,
        interfaces=tuple(m.RouterInterface(f"rif-{n}", n, f"sub-{n}", "10.0.0.1", 24,
                                           "fa:16:3e:00:00:01") for n in nets),
        gateway=m.RouterGateway(EXT, f"gw-{rid}", "fa:16:3e:00:00:02", ("203.0.113.1",),
                                hosts=hosts) if hosts is not None else None)


REMOTES = tuple(m.RemoteHost(f"h{i}", f"192.0.2.{i}") for i in range(1, 7))


def _port(pid, net, host):
    return m.Port(pid, net, "fa:16:3e:00:00:10", host=host)


def test_compute_host_needs_the_gateway_hosts_of_its_routers():
    routers = [_router("r1", [NET], ("h2", "h3")), _router("r2", [NET2], ("h3", "h4"))]
    ports = [_port("p1", NET, "h1"), _port("p2", NET, "h5")]
    assert g.gateway_peers("h1", routers, ports, REMOTES) == {
        "h2": "192.0.2.2", "h3": "192.0.2.3", "h4": "192.0.2.4"}


def test_gateway_host_needs_the_hosts_with_ports_on_its_routers_networks():
    routers = [_router("r1", [NET], ("h2", "h3")), _router("r2", [NET2], ("h4",))]
    ports = [_port("p1", NET, "h1"), _port("p2", NET, "h5"), _port("p3", NET2, "h6"),
             _port("p4", NET, None), _port("p5", NET, "h2")]
    # h2 serves r1: h1 and h5 (ports on r1's network), h3 (r1's other
    # gateway), h4 (r2's gateway, in its view); not h6 (r2 is not its).
    assert g.gateway_peers("h2", routers, ports, REMOTES) == {
        "h1": "192.0.2.1", "h3": "192.0.2.3", "h4": "192.0.2.4", "h5": "192.0.2.5"}


def test_no_gateway_no_peers_and_unknown_hosts_left_out():
    assert g.gateway_peers("h1", [_router("r1", [NET], None)],
                           [_port("p", NET, "h2")], REMOTES) == {}
    assert g.gateway_peers("h1", [_router("r1", [NET], ("h9", "h2"))], [], REMOTES) == {
        "h2": "192.0.2.2"}


def test_port_names_fit_an_interface_name_and_are_stable():
    a, b = g.port_name("192.0.2.1"), g.port_name("2001:db8::1")
    assert a == g.port_name("192.0.2.1") and a != b
    assert a.startswith(g.PORT_PREFIX) and len(a) <= 15 and len(b) <= 15


def test_active_gateway_is_the_first_not_down():
    gw = m.RouterGateway(EXT, "p", "fa:16:3e:00:00:02", hosts=("h2", "h3", "h4"))
    assert g.active_gateway(gw, ()) == "h2"
    assert g.active_gateway(gw, ("h2",)) == "h3"
    assert g.active_gateway(gw, ("h2", "h3", "h4")) is None


class _Conn:
    """What BfdMonitor needs of a Connection (no IDL: rows fed by hand)."""

    idl = None

    def __init__(self):
        self.handlers = []

    def add_row_handler(self, fn, table=None):
        self.handlers.append(fn)

    def add_reconnect_handler(self, fn):
        pass


def _row(uuid, host, ofport=7, state=None, forwarding=False, name="qgw-1"):
    status = {} if state is None else {"state": state,
                                       "forwarding": "true" if forwarding else "false"}
    return SimpleNamespace(uuid=uuid, name=name, ofport=[ofport] if ofport else [],
                           external_ids={g.PEER_KEY: host} if host else {},
                           options={"remote_ip": "192.0.2.2"}, bfd_status=status)


def test_monitor_grace_then_down_and_up_again():
    now = [100.0]
    changes = []
    conn = _Conn()
    mon = g.BfdMonitor(conn, lambda: changes.append(1), grace=5.0, clock=lambda: now[0])
    feed = conn.handlers[0]
    feed("create", _row("u1", "h2"), None)
    feed("create", _row("u9", None), None)  # not ours: ignored
    assert mon.ofports() == (("h2", 7),)
    assert len(changes) == 1
    # New, no session yet: alive during the grace period, down after it.
    assert mon.down() == () and mon.next_deadline() == 105.0
    now[0] = 105.0
    assert mon.down() == ("h2",)
    feed("update", _row("u1", "h2", state="up", forwarding=True), None)
    assert mon.down() == () and mon.next_deadline() is None
    # Once seen up, down means down at once; forwarding false is down.
    feed("update", _row("u1", "h2", state="up", forwarding=False), None)
    assert mon.down() == ("h2",)
    feed("update", _row("u1", "h2", state="down"), None)
    assert mon.down() == ("h2",)
    assert [up for _, _, up in mon.transitions] == [True, False]
    # A peer with no port at all is down.
    assert mon.down(["h2", "h3"]) == ("h2", "h3")
    feed("delete", _row("u1", "h2"), None)
    assert mon.ports() == {} and mon.ofports() == ()
    # Made again: a new grace period.
    feed("create", _row("u2", "h2"), None)
    assert mon.down() == ()


class _Ovsdb:
    def __init__(self):
        self.sent = []

    def execute(self, commands):
        self.sent.append(commands)


def test_tunnels_sync_makes_wanted_and_removes_stale():
    conn = _Conn()
    mon = g.BfdMonitor(conn, lambda: None)
    stale = g.port_name("192.0.2.9")
    conn.handlers[0]("create", _row("u1", "h9", name=stale), None)
    db = _Ovsdb()
    t = g.GatewayTunnels(db, "br-int", "vxlan", "192.0.2.1", mon)
    assert t.sync({"h2": "192.0.2.2"})
    (cmds,) = db.sent
    dels = [c for c in cmds if type(c).__name__ == "DelPort"]
    ens = [c for c in cmds if type(c).__name__ == "EnsurePort"]
    assert [c.name for c in dels] == [stale]
    assert [(c.name, c.type, c.options, c.bfd["enable"]) for c in ens] == [
        (g.port_name("192.0.2.2"), "vxlan",
         {"remote_ip": "192.0.2.2", "local_ip": "192.0.2.1", "key": "flow"}, "true")]
    assert ens[0].external_ids == {g.PEER_KEY: "h2"}
    # Nothing changed: no transaction.
    conn.handlers[0]("delete", _row("u1", "h9", name=stale), None)
    assert not t.sync({"h2": "192.0.2.2"})
    # No tunnel type (no local_ip): nothing is wanted.
    t2 = g.GatewayTunnels(db, "br-int", None, None, mon)
    assert not t2.sync({"h2": "192.0.2.2"})


def _gateway_agent(tunnel_type, local_ip):
    """An agent on h3, second gateway host of a router whose first is h2
    (with a tunnel IP in the view), as it starts: no BFD port made yet."""
    from agent.daemon import Agent
    from agent.settings import Settings

    a = Agent(Settings(host="h3", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent"))
    a.gw_monitor = g.BfdMonitor(_Conn(), lambda: None)
    a.gw_tunnels = g.GatewayTunnels(_Ovsdb(), "br-int", tunnel_type, local_ip, a.gw_monitor)
    a.metadata_ofport = 0
    a.engine.load(m.HostView(host="h3", routers=(_router("r1", [NET], ("h2", "h3")),),
                             remote_hosts=REMOTES))
    a._sync_gateway_tunnels()
    return a


def test_a_gateway_host_that_makes_no_tunnels_never_takes_over(caplog):
    """Review s29 HA-2: a peer whose BFD port is being made is not down
    (the engine keeps this host standby behind it).  A host with no tunnel
    type or local IP makes no port, ever: it has no BFD to tell that a
    host before it is dead, so it never takes over (the session's final
    review: counting them down made it claim every router's gateway
    address beside the live active host, and announce it)."""
    a = _gateway_agent("vxlan", "192.0.2.3")
    assert a.gw_peers == {"h2": "192.0.2.2"}
    assert a._chassis_wanted().gateways_down == ()  # being made: not down
    with caplog.at_level(logging.ERROR, "agent.daemon"):
        a = _gateway_agent(None, None)
    assert "never takes over" in caplog.text
    ch = a._chassis_wanted()
    assert ch.gateways_down == ()
    assert g.active_gateway(a.engine.routers["r1"].gateway, ch.gateways_down) == "h2"
    a.engine.set_chassis(ch)
    assert a.engine._gateway_role(a.engine.routers["r1"].gateway) == "standby"


class _FailingOvsdb:
    def __init__(self):
        self.calls = 0

    def execute(self, commands):
        self.calls += 1
        raise OVSDBError("OVSDB transaction timed out")


def test_a_peer_whose_port_was_never_made_is_down_after_the_grace_period(monkeypatch):
    """The session's final review: a BFD port whose transaction failed kept
    its peer "being made", alive for ever (this host standby behind a dead
    one, compute hosts' redirect stopped at it).  Now it is down once the
    grace period from when it was first wanted is over, and the port is
    made again on the next tick."""
    now = [1000.0]
    monkeypatch.setattr("agent.daemon.time.monotonic", lambda: now[0])
    a = _gateway_agent("vxlan", "192.0.2.3")
    failing = _FailingOvsdb()
    a.gw_tunnels.ovsdb = failing
    a.gw_tunnels.applied = None
    a.gw_peers, a.gw_wanted_since = {}, {}
    a._sync_gateway_tunnels()  # the transaction fails: logged, not raised
    assert failing.calls == 1 and a.gw_retry
    assert a._chassis_wanted().gateways_down == ()  # within the grace period
    assert 0 < a._idle_timeout() <= a.gw_monitor.grace + 0.01
    now[0] += a.gw_monitor.grace
    ch = a._chassis_wanted()
    assert ch.gateways_down == ("h2",)
    a.engine.set_chassis(ch)
    assert a.engine._gateway_role(a.engine.routers["r1"].gateway) == "active"
    # The next tick makes the port again.
    a.gw_tunnels.ovsdb = _Ovsdb()
    a.have_view = True
    a._handle([("tick", None)])
    assert not a.gw_retry and a.gw_tunnels.ovsdb.sent
