"""Floating IPs and router gateways under concurrent clients, against a
real server process (2 API workers), on SQLite and PostgreSQL: clients
racing to associate their floating IPs with one fixed IP get one 200 and
409s; routers whose gateways are set at once get distinct redirect keys,
none a network's.  The database is consistent afterwards."""

import threading

import sqlalchemy as sa

from quantum_ovs.db import models
from quantum_ovs.testing.client import Client
from quantum_ovs.testing.server import ServerProcess
from tests.fixtures import consistency

N = 8


def _race(fn, n=N):
    out, barrier = [None] * n, threading.Barrier(n)

    def run(i):
        c = Client(srv_port[0], project="p1", roles="admin,member")
        barrier.wait()
        out[i] = fn(c, i)
        c.close()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


srv_port = [None]


def test_concurrent_associations_and_gateways(db_url):
    srv = ServerProcess(db_url, workers=2, extra_conf="service_plugins = router\n")
    srv.start()
    try:
        srv_port[0] = srv.port
        c = Client(srv.port, project="p1", roles="admin,member")
        ext = c.json("POST", "/v2.0/networks", {"network": {
            "name": "public", "router:external": True}}, want=201)["network"]
        c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": ext["id"], "cidr": "172.24.0.0/22", "ip_version": 4}}, want=201)
        net = c.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
        sub = c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
            want=201)["subnet"]
        router = c.json("POST", "/v2.0/routers", {"router": {"external_gateway_info": {
            "network_id": ext["id"]}}}, want=201)["router"]
        c.json("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
               {"subnet_id": sub["id"]})
        port = c.json("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}},
                      want=201)["port"]
        fips = [c.json("POST", "/v2.0/floatingips", {"floatingip": {
            "floating_network_id": ext["id"]}}, want=201)["floatingip"] for _ in range(N)]

        got = _race(lambda cl, i: cl.request("PUT", f"/v2.0/floatingips/{fips[i]['id']}",
                                             {"floatingip": {"port_id": port["id"]}}))
        statuses = sorted(s for s, _ in got)
        assert statuses == [200] + [409] * (N - 1), got
        assert all(b["NeutronError"]["type"] == "FloatingIPPortAlreadyAssociated"
                   for s, b in got if s == 409)
        listed = c.json("GET", f"/v2.0/floatingips?port_id={port['id']}")["floatingips"]
        assert len(listed) == 1

        routers = [c.json("POST", "/v2.0/routers", {"router": {"name": f"r{i}"}},
                          want=201)["router"] for i in range(N)]
        got = _race(lambda cl, i: cl.request("PUT", f"/v2.0/routers/{routers[i]['id']}", {
            "router": {"external_gateway_info": {"network_id": ext["id"]}}}))
        assert [s for s, _ in got] == [200] * N, got
        c.close()
    finally:
        srv.stop()
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            keys = [r[0] for r in conn.execute(sa.select(models.Router.redirect_key))]
            segs = {r[0] for r in conn.execute(sa.select(
                models.NetworkSegment.segmentation_id))}
        assert len(keys) == N + 1 and None not in keys and len(set(keys)) == N + 1
        assert not set(keys) & segs
    finally:
        engine.dispose()
    consistency.assert_consistent(db_url)
