"""Routers survive the wire: host views and deltas to JSON and back."""

import json

from quantum_ovs import model as m
from quantum_ovs import wire


def _router(rid="r1", fip=True):
    return m.Router(
        id=rid, admin_state_up=False,
        interfaces=(m.RouterInterface("p1", "n1", "s1", "10.0.1.1", 24, "fa:16:3e:00:00:01"),
                    m.RouterInterface("p2", "n2", "s2", "fd00:2::1", 64, "fa:16:3e:00:00:02")),
        routes=(m.HostRoute("192.168.0.0/16", "10.0.1.5"),),
        gateway=m.RouterGateway("ext", "gp", "fa:16:3e:00:00:03", ("172.24.4.10",), False,
                                ("h1", "h2"), redirect_key=7001, unnatted=("10.0.1.0/24",)),
        floating_ips=(m.FloatingIP("f1", "172.24.4.11", "ext", "p9", "10.0.1.9",
                                   "fa:16:3e:00:00:09"),
                      m.FloatingIP("f2", "172.24.4.12", "ext", mac_address="fa:16:3e:00:00:03",
                                   port_forwardings=(m.PortForwarding(
                                       "pf1", "tcp", "p8", "10.0.1.8", 2222, 2222, 22, 22),
                                       m.PortForwarding("pf2", "udp", "p9", "10.0.1.9",
                                                        5000, 5009, 6000, 6009)))) if fip else ())


def test_view_round_trip_keeps_routers():
    v = m.HostView(host="h1", routers=(_router(), m.Router(id="r2")))
    d = json.loads(json.dumps(wire.view_to_dict(v)))
    back = wire.view_from_dict(d)
    assert back.routers == v.routers


def test_delta_round_trip_keeps_routers_and_removals():
    dl = m.Delta(revision=3, routers=(_router(fip=False),), removed_routers=("r9",))
    back = wire.delta_from_dict(json.loads(json.dumps(wire.delta_to_dict(dl))))
    assert back.routers == dl.routers
    assert back.removed_routers == ("r9",)


def test_a_gateway_without_unnatted_subnets_is_serialized_as_before():
    gw = m.RouterGateway("ext", "gp", "fa:16:3e:00:00:03", ("172.24.4.10",))
    d = wire.view_to_dict(m.HostView(host="h1", routers=(m.Router(id="r", gateway=gw),)))
    assert "unnatted" not in d["routers"][0]["gateway"]
    assert wire.view_from_dict(d).routers[0].gateway == gw


def test_old_payload_without_routers_reads_as_none():
    assert wire.view_from_dict({"host": "h"}).routers == ()
    assert wire.delta_from_dict({}).removed_routers == ()


def test_apply_delta_upserts_and_removes_routers():
    v = m.HostView(host="h1", routers=(m.Router(id="r1"), m.Router(id="r2")))
    r1 = _router("r1")
    after = wire.apply_delta(v, m.Delta(revision=1, routers=(r1,), removed_routers=("r2",)))
    assert after.routers == (r1,)
