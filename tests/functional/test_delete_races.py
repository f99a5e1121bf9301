"""Races between deleting (un-sharing, changing) an object and another
request using it, through a real server process with 2 API workers (two
processes), on SQLite, PostgreSQL (and MariaDB with QOVS_TEST_MYSQL=all).
Found by review 19 (every "never both" test here failed on PostgreSQL and
MariaDB before the fix: the user read what it relied on without a lock; it
now holds it, db/resource.hold, and reads it again).

Each test runs ROUNDS rounds of one pair of requests released together by a
barrier and checks the invariant after every round: no 5xx, and never both
requests succeeding when one of them must refuse while the other's result
exists.  (Before the fix the bad outcome came in 8-28 rounds of 30 on each
database: 12 rounds miss the rarest, 8 in 30, with a chance of about 2%.)"""

import os
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from quantum_ovs.testing.client import Client
from quantum_ovs.testing.server import ServerProcess
from tests.functional.conftest import SERVER_FIXTURES

ROUNDS = 12
ADMIN = dict(project="p1", roles="admin,member")


@pytest.fixture(scope="module", params=[
    "sqlite", "postgresql",
    pytest.param("mysql", marks=pytest.mark.skipif(
        os.environ.get("QOVS_TEST_MYSQL") != "all", reason="MariaDB: QOVS_TEST_MYSQL=all"))])
def served(request, tmp_path_factory):
    """One server process (2 API workers) per database for the module
    (each test makes objects of its own): (the server, its database URL)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('races')}/races.sqlite"
    else:
        dbs = request.getfixturevalue(SERVER_FIXTURES[request.param])
        name = "races" + uuid.uuid4().hex[:10]
        url = dbs.create_database(name)
        request.addfinalizer(lambda: dbs.drop_database(name))
    srv = ServerProcess(url, workers=2, extra_conf=(
        "service_plugins = router\n"
        "[quotas]\nquota_port = -1\nquota_network = -1\nquota_subnet = -1\n"
        "quota_floatingip = -1\nquota_rbac_policy = -1\nquota_router = -1\n"
        "quota_security_group = -1\n"))
    srv.start()
    try:
        yield srv, url
    finally:
        srv.stop()
        print(srv.log()[-20000:])


@pytest.fixture
def server(served):
    return served[0]


@pytest.fixture
def server_db(served):
    return served[1]


def pair(port, a, b):
    """Run a(client) and b(client) at once (each its own connection, so
    each may land on either worker); returns their (status, body)."""
    out = [None, None]
    barrier = threading.Barrier(2)

    def run(i, fn, who):
        c = Client(port, **who)
        try:
            barrier.wait(30)
            out[i] = fn(c)
        except Exception as e:  # noqa: BLE001
            out[i] = (-1, repr(e))
        finally:
            c.close()
    ts = [threading.Thread(target=run, args=(0, a[0], a[1])),
          threading.Thread(target=run, args=(1, b[0], b[1]))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


def no_5xx(results):
    bad = [r for r in results if r[0] >= 500 or r[0] < 0]
    assert not bad, bad


def counted_pair(server, tally, a, b):
    """One round: pair(a, b), no 5xx, its outcome (the two statuses)
    counted in ``tally``; returns pair()'s."""
    r = pair(server.port, a, b)
    no_5xx(r)
    key = (r[0][0], r[1][0])
    tally[key] = tally.get(key, 0) + 1
    return r


# ---------------------------------------------------------------- RBAC
def unshare_vs_use(server, object_type, object_id, use, made):
    """Rounds of p1 deleting the access_as_shared policy giving p2 the
    object against p2's ``use(client, round)`` of it (a create; ``made``:
    the path of what it made, from its answer); returns the rounds where
    both succeeded (the delete must be refused, 409 RbacPolicyInUse, once
    p2 uses the object) and the outcomes."""
    admin = Client(server.port, **ADMIN)
    p1 = Client(server.port, project="p1", roles="member")
    both, tally = [], {}
    for i in range(ROUNDS):
        pol = p1.json("POST", "/v2.0/rbac-policies", {"rbac_policy": {
            "object_type": object_type, "object_id": object_id,
            "action": "access_as_shared", "target_tenant": "p2"}}, want=201)["rbac_policy"]
        r = counted_pair(server, tally,
                         (lambda c: c.request("DELETE", f"/v2.0/rbac-policies/{pol['id']}"),
                          dict(project="p1", roles="member")),
                         (lambda c: use(c, i), dict(project="p2", roles="member")))
        if r[1][0] == 201:
            if r[0][0] == 204:
                both.append(made(r[1][1]))
            admin.call("DELETE", made(r[1][1]), want=204)
        if r[0][0] != 204:
            p1.call("DELETE", f"/v2.0/rbac-policies/{pol['id']}", want=204)
    print(f"outcomes (delete {object_type} policy, use):", tally)
    return both, tally


def _port_path(body):
    return f"/v2.0/ports/{body['port']['id']}"


def test_rbac_unshare_vs_port_create(server):
    """p2 creating a port on p1's network shared with it by a policy."""
    p1 = Client(server.port, project="p1", roles="member")
    net = p1.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
    p1.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.1.0.0/16", "ip_version": 4}}, want=201)
    both, tally = unshare_vs_use(server, "network", net["id"], lambda c, i: c.request(
        "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}), _port_path)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: the policy was deleted AND p2's port "
                      f"was made on the network no longer shared with p2; outcomes {tally}")


def test_rbac_unshare_security_group_vs_port_create(server):
    """p2 creating a port that uses p1's security group shared with it."""
    p1 = Client(server.port, project="p1", roles="member")
    p2 = Client(server.port, project="p2", roles="member")
    net = p2.json("POST", "/v2.0/networks", {"network": {"name": "n2"}}, want=201)["network"]
    sg = p1.json("POST", "/v2.0/security-groups", {"security_group": {"name": "g"}},
                 want=201)["security_group"]
    both, tally = unshare_vs_use(server, "security_group", sg["id"], lambda c, i: c.request(
        "POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                         "security_groups": [sg["id"]]}}), _port_path)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: the group's policy was deleted AND "
                      f"p2's port using it was made; outcomes {tally}")


def test_rbac_unshare_address_group_vs_rule_create(server):
    """p2 creating a rule naming p1's address group shared with it."""
    p1 = Client(server.port, project="p1", roles="member")
    p2 = Client(server.port, project="p2", roles="member")
    ag = p1.json("POST", "/v2.0/address-groups", {"address_group": {
        "name": "a", "addresses": ["10.7.0.0/24"]}}, want=201)["address_group"]
    sg = p2.json("POST", "/v2.0/security-groups", {"security_group": {"name": "g"}},
                 want=201)["security_group"]

    def rule(c, i):
        return c.request("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 1000 + i, "port_range_max": 1000 + i,
            "remote_address_group_id": ag["id"]}})
    both, tally = unshare_vs_use(server, "address_group", ag["id"], rule, lambda body: (
        f"/v2.0/security-group-rules/{body['security_group_rule']['id']}"))
    assert not both, (f"{len(both)}/{ROUNDS} rounds: the address group's policy was "
                      f"deleted AND p2's rule naming it was made; outcomes {tally}")


# ---------------------------------------------------------------- routers / FIPs
def _associate(fip, port):
    """The request (for pair) associating ``fip`` with ``port``."""
    return (lambda cl: cl.request("PUT", f"/v2.0/floatingips/{fip['id']}",
                                  {"floatingip": {"port_id": port["id"]}}), ADMIN)


def _l3(c):
    ext = c.json("POST", "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}}, want=201)["network"]
    c.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "172.24.0.0/22", "ip_version": 4}}, want=201)
    net = c.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
    sub = c.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
        want=201)["subnet"]
    router = c.json("POST", "/v2.0/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["id"]}}}, want=201)["router"]
    port = c.json("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}},
                  want=201)["port"]
    fip = c.json("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext["id"]}}, want=201)["floatingip"]
    return ext, net, sub, router, port, fip


def test_remove_interface_vs_fip_associate(server):
    """remove_router_interface (subnet) against associating a floating IP
    with a port of that subnet: the removal must be refused (409
    RouterInterfaceInUseByFloatingIP) once the association exists, and the
    association refused (404 ExternalGatewayForFloatingIPNotFound) once the
    interface is gone; never both."""
    c = Client(server.port, **ADMIN)
    ext, net, sub, router, port, fip = _l3(c)
    both, tally = [], {}
    for i in range(ROUNDS):
        c.json("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
               {"subnet_id": sub["id"]})
        r = counted_pair(server, tally,
                         (lambda cl: cl.request(
                             "PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                             {"subnet_id": sub["id"]}), ADMIN),
                         _associate(fip, port))
        if r[0][0] == 200 and r[1][0] == 200:
            f = c.json("GET", f"/v2.0/floatingips/{fip['id']}")["floatingip"]
            ifaces = c.json("GET", f"/v2.0/ports?device_id={router['id']}"
                               f"&device_owner=network:router_interface")["ports"]
            both.append((f["router_id"], f["port_id"], len(ifaces)))
        c.json("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
        if r[0][0] != 200:
            c.json("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                   {"subnet_id": sub["id"]})
    print("outcomes (remove, associate):", tally)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: the interface was removed AND the "
                      f"floating IP associated through it (router_id, port_id, "
                      f"interfaces left): {both[:3]}; outcomes {tally}")


def test_gateway_clear_vs_fip_associate(server):
    """Clearing the router's external gateway against associating a
    floating IP through it: the clear must be refused (409
    RouterExternalGatewayInUseByFloatingIp) once the association exists;
    never both."""
    c = Client(server.port, **ADMIN)
    ext, net, sub, router, port, fip = _l3(c)
    c.json("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
           {"subnet_id": sub["id"]})
    both, tally = [], {}
    for i in range(ROUNDS):
        r = counted_pair(server, tally,
                         (lambda cl: cl.request("PUT", f"/v2.0/routers/{router['id']}", {
                             "router": {"external_gateway_info": {}}}), ADMIN),
                         _associate(fip, port))
        if r[0][0] == 200 and r[1][0] == 200:
            f = c.json("GET", f"/v2.0/floatingips/{fip['id']}")["floatingip"]
            rt = c.json("GET", f"/v2.0/routers/{router['id']}")["router"]
            both.append((f["router_id"], rt["external_gateway_info"]))
        c.json("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
        c.json("PUT", f"/v2.0/routers/{router['id']}",
               {"router": {"external_gateway_info": {"network_id": ext["id"]}}})
    print("outcomes (clear gateway, associate):", tally)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: the gateway was cleared AND the "
                      f"floating IP associated through the router (fip router_id, router "
                      f"gateway): {both[:3]}; outcomes {tally}")


# ---------------------------------------------------------------- pools / scopes
def delete_vs_use(server, rounds, make, use, made):
    """Rounds of deleting what ``make(client, i)`` made (its path; its id
    last) against ``use(client, i, id)`` making something with it
    (``made``: the path of that, from its answer): no 5xx, the loser a
    4xx.  Returns the outcomes."""
    c = Client(server.port, **ADMIN)
    tally, fivexx = {}, []
    for i in range(rounds):
        path = make(c, i)
        r = pair(server.port, (lambda cl: cl.request("DELETE", path), ADMIN),
                 (lambda cl: use(cl, i, path.rsplit("/", 1)[1]), ADMIN))
        key = (r[0][0], r[1][0])
        tally[key] = tally.get(key, 0) + 1
        fivexx += [x for x in r if x[0] >= 500 or x[0] < 0]
        if r[1][0] == 201:
            c.call("DELETE", made(r[1][1]), want=204)
        if r[0][0] != 204:
            c.call("DELETE", path, want=204)
    print("outcomes (delete, use):", tally)
    assert not fivexx, (f"{len(fivexx)} server errors; outcomes {tally}; first: "
                        f"{fivexx[:2]}")
    return tally


def test_subnetpool_delete_vs_subnet_create(server):
    """DELETE of a subnet pool against a subnet create from it (a 500 when
    the pool went while the create waited for its lock)."""
    c = Client(server.port, **ADMIN)
    net = c.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]

    def pool(cl, i):
        return "/v2.0/subnetpools/" + cl.json("POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": f"p{i}", "prefixes": ["10.128.0.0/16"], "default_prefixlen": 24}},
            want=201)["subnetpool"]["id"]
    delete_vs_use(server, ROUNDS, pool, lambda cl, i, pool_id: cl.request(
        "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "subnetpool_id": pool_id,
                                             "ip_version": 4}}),
        lambda body: f"/v2.0/subnets/{body['subnet']['id']}")


def test_address_scope_delete_vs_subnetpool_create(server):
    """DELETE of an address scope against a subnet pool create joining it
    (a 500 as the pool's)."""
    def scope(cl, i):
        return "/v2.0/address-scopes/" + cl.json("POST", "/v2.0/address-scopes", {
            "address_scope": {"name": f"s{i}", "ip_version": 4}}, want=201)[
            "address_scope"]["id"]
    # (the rarest before the fix: 7-9 rounds in 30)
    delete_vs_use(server, 2 * ROUNDS, scope, lambda cl, i, scope_id: cl.request(
        "POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": f"p{i}", "prefixes": [f"10.{i}.0.0/16"], "address_scope_id": scope_id}}),
        lambda body: f"/v2.0/subnetpools/{body['subnetpool']['id']}")


# ---------------------------------------------------------------- networks / subnets
def test_network_delete_vs_port_create(server):
    """DELETE of a network against a port create on it: no 5xx, never
    both (no port left on a missing network)."""
    def network(cl, i):
        net = cl.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
        cl.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}, want=201)
        return f"/v2.0/networks/{net['id']}"
    tally = delete_vs_use(server, ROUNDS, network, lambda cl, i, net_id: cl.request(
        "POST", "/v2.0/ports", {"port": {"network_id": net_id}}), _port_path)
    assert (204, 201) not in tally, tally


def test_subnet_delete_vs_port_create(server):
    """DELETE of a subnet against a port create asking for an address on
    it: no 5xx, never both."""
    c = Client(server.port, **ADMIN)
    net = c.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]

    def subnet(cl, i):
        return "/v2.0/subnets/" + cl.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}},
            want=201)["subnet"]["id"]
    tally = delete_vs_use(server, ROUNDS, subnet, lambda cl, i, sub_id: cl.request(
        "POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                         "fixed_ips": [{"subnet_id": sub_id}]}}), _port_path)
    assert (204, 201) not in tally, tally


# ---------------------------------------------------------------- changes
def test_network_unshare_update_vs_port_create(server):
    """PUT shared=false on p1's network against p2 creating a port on it:
    the update must be refused (409 InvalidSharedSetting) when p2's port
    exists, so both must never succeed."""
    admin = Client(server.port, **ADMIN)
    p1 = Client(server.port, project="p1", roles="admin,member")
    net = p1.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
    both, tally = [], {}
    for i in range(ROUNDS):
        p1.json("PUT", f"/v2.0/networks/{net['id']}", {"network": {"shared": True}})
        r = counted_pair(server, tally,
                         (lambda c: c.request("PUT", f"/v2.0/networks/{net['id']}",
                                              {"network": {"shared": False}}), ADMIN),
                         (lambda c: c.request("POST", "/v2.0/ports", {"port": {
                             "network_id": net["id"]}}), dict(project="p2", roles="member")))
        if r[0][0] == 200 and r[1][0] == 201:
            both.append(r[1][1]["port"]["id"])
        if r[1][0] == 201:
            admin.call("DELETE", f"/v2.0/ports/{r[1][1]['port']['id']}", want=204)
    print("outcomes (unshare, create):", tally)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: shared=false succeeded AND p2's port "
                      f"was made on it; outcomes {tally}")


def test_network_unexternal_vs_router_gateway_set(server):
    """PUT router:external=false against setting a router's gateway on the
    network: the update must be refused (409 ExternalNetworkInUse) when the
    gateway exists, the gateway refused (400) when the network is not
    external; never both."""
    c = Client(server.port, **ADMIN)
    ext = c.json("POST", "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}}, want=201)["network"]
    c.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "172.24.0.0/22", "ip_version": 4}}, want=201)
    router = c.json("POST", "/v2.0/routers", {"router": {"name": "r"}}, want=201)["router"]
    both, tally = [], {}
    for i in range(ROUNDS):
        c.json("PUT", f"/v2.0/networks/{ext['id']}", {"network": {"router:external": True}})
        r = counted_pair(server, tally,
                         (lambda cl: cl.request("PUT", f"/v2.0/networks/{ext['id']}",
                                                {"network": {"router:external": False}}), ADMIN),
                         (lambda cl: cl.request("PUT", f"/v2.0/routers/{router['id']}", {"router": {
                             "external_gateway_info": {"network_id": ext["id"]}}}), ADMIN))
        if r[0][0] == 200 and r[1][0] == 200:
            n = c.json("GET", f"/v2.0/networks/{ext['id']}")["network"]
            rt = c.json("GET", f"/v2.0/routers/{router['id']}")["router"]
            both.append((n["router:external"], rt["external_gateway_info"]["network_id"]))
        c.json("PUT", f"/v2.0/routers/{router['id']}",
               {"router": {"external_gateway_info": {}}})
    print("outcomes (unexternal, set gateway):", tally)
    assert not both, (f"{len(both)}/{ROUNDS} rounds: router:external=false succeeded AND a "
                      f"router's gateway was set on it: {both[:2]}; outcomes {tally}")


def test_slaac_subnet_create_vs_port_create(server):
    """A SLAAC subnet created on a network gives the ports already on it
    their EUI-64 address there (3d2fc8c): a port created at the same time
    must end up with it too (either the port create sees the subnet, or
    the subnet create sees the port)."""
    c = Client(server.port, **ADMIN)
    missing, tally = [], {}
    for i in range(ROUNDS):
        net = c.json("POST", "/v2.0/networks", {"network": {"name": "n"}}, want=201)["network"]
        r = counted_pair(server, tally,
                         (lambda cl: cl.request("POST", "/v2.0/subnets", {"subnet": {
                             "network_id": net["id"], "cidr": "2001:db8::/64", "ip_version": 6,
                             "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"}}), ADMIN),
                         (lambda cl: cl.request("POST", "/v2.0/ports", {"port": {
                             "network_id": net["id"]}}), ADMIN))
        if r[0][0] == 201 and r[1][0] == 201:
            p = c.json("GET", f"/v2.0/ports/{r[1][1]['port']['id']}")["port"]
            if not any(x["subnet_id"] == r[0][1]["subnet"]["id"] for x in p["fixed_ips"]):
                missing.append(p["id"])
            c.call("DELETE", f"/v2.0/ports/{p['id']}", want=204)
        c.call("DELETE", f"/v2.0/networks/{net['id']}", want=204)
    print("outcomes (subnet, port):", tally)
    assert not missing, (f"{len(missing)}/{ROUNDS} rounds: the port has no address on the "
                         f"SLAAC subnet created with it; outcomes {tally}")


# ---------------------------------------------------------------- lock order
DEADLOCK_ROUNDS = 8


def deadlocks(db_url):
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as c:
            if eng.dialect.name == "postgresql":
                c.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
                return c.exec_driver_sql(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                ).scalar()
            if eng.dialect.name in ("mysql", "mariadb"):
                return int(c.exec_driver_sql(
                    "SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").first()[1])
    finally:
        eng.dispose()
    return 0


def test_router_gateway_restate_vs_external_subnet_create(server, server_db):
    """PUT a router's gateway (same network, enable_snat toggled) against a
    new IPv6 subnet on that external network (which gives the gateway port
    an address): no deadlock (found by review 19: the subnet create bumped
    the router's row after locking the network, the router update held the
    network after locking the router; each collision cost PostgreSQL's 1 s
    deadlock detection and a retry)."""
    if server_db.startswith("sqlite"):
        pytest.skip("one writer")
    c = Client(server.port, **ADMIN)
    ext = c.json("POST", "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}}, want=201)["network"]
    c.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "172.24.0.0/22", "ip_version": 4}}, want=201)
    router = c.json("POST", "/v2.0/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["id"]}}}, want=201)["router"]
    time.sleep(1.5)  # (the statistics' own delay)
    before = deadlocks(server_db)
    slow = []
    for i in range(DEADLOCK_ROUNDS):
        t0 = time.monotonic()
        r = pair(server.port,
                 (lambda cl: cl.request("PUT", f"/v2.0/routers/{router['id']}", {"router": {
                     "external_gateway_info": {"network_id": ext["id"],
                                               "enable_snat": bool(i % 2)}}}), ADMIN),
                 (lambda cl: cl.request("POST", "/v2.0/subnets", {"subnet": {
                     "network_id": ext["id"], "cidr": f"2001:db8:{i + 1:x}::/64",
                     "ip_version": 6, "ipv6_address_mode": "slaac",
                     "ipv6_ra_mode": "slaac"}}), ADMIN))
        no_5xx(r)
        slow.append(round(time.monotonic() - t0, 2))
        c.call("DELETE", f"/v2.0/subnets/{r[1][1]['subnet']['id']}", want=204)
    time.sleep(1.5)
    after = deadlocks(server_db)
    print("round times:", slow)
    assert after == before, f"{after - before} deadlocks in {DEADLOCK_ROUNDS} rounds; times {slow}"


def test_router_gateway_clear_vs_external_subnet_create(server, server_db):
    """Clearing a router's gateway against a new IPv6 subnet on its
    external network (which gives the gateway port an address): no 5xx,
    no deadlock, and the gateway is gone or holds its address."""
    c = Client(server.port, **ADMIN)
    ext = c.json("POST", "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}}, want=201)["network"]
    c.json("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "172.24.0.0/22", "ip_version": 4}}, want=201)
    router = c.json("POST", "/v2.0/routers", {"router": {"name": "r"}}, want=201)["router"]
    if not server_db.startswith("sqlite"):
        time.sleep(1.5)  # (the statistics' own delay)
    before = deadlocks(server_db)
    for i in range(DEADLOCK_ROUNDS):
        c.json("PUT", f"/v2.0/routers/{router['id']}", {"router": {
            "external_gateway_info": {"network_id": ext["id"]}}})
        r = pair(server.port,
                 (lambda cl: cl.request("PUT", f"/v2.0/routers/{router['id']}", {"router": {
                     "external_gateway_info": {}}}), ADMIN),
                 (lambda cl: cl.request("POST", "/v2.0/subnets", {"subnet": {
                     "network_id": ext["id"], "cidr": f"2001:db8:{i + 1:x}::/64",
                     "ip_version": 6, "ipv6_address_mode": "slaac",
                     "ipv6_ra_mode": "slaac"}}), ADMIN))
        no_5xx(r)
        assert (r[0][0], r[1][0]) == (200, 201), r
        c.call("DELETE", f"/v2.0/subnets/{r[1][1]['subnet']['id']}", want=204)
    if not server_db.startswith("sqlite"):
        time.sleep(1.5)
    assert deadlocks(server_db) == before


@pytest.mark.parametrize("subnet_write", ["delete", "update"])
def test_subnet_write_vs_network_delete(server, server_db, subnet_write):
    """Deleting (or updating) a subnet against deleting its network, which
    deletes its subnets: no 5xx, no deadlock (the subnet write locked the
    subnet, then wrote the network's revision; the network delete locks the
    network, then the subnets: db/ipam.py's lock order, network first)."""
    if server_db.startswith("sqlite"):
        pytest.skip("one writer")
    c = Client(server.port, **ADMIN)
    time.sleep(1.5)  # (the statistics' own delay)
    before = deadlocks(server_db)
    for i in range(4):  # (before the fix: a deadlock every round)
        net = c.json("POST", "/v2.0/networks", {"network": {"name": f"n{i}"}},
                     want=201)["network"]
        sub = c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.77.0.0/24", "ip_version": 4}},
            want=201)["subnet"]
        if subnet_write == "delete":
            first = (lambda cl: cl.request("DELETE", f"/v2.0/subnets/{sub['id']}"), ADMIN)
        else:
            first = (lambda cl: cl.request("PUT", f"/v2.0/subnets/{sub['id']}", {"subnet": {
                "name": f"s{i}"}}), ADMIN)
        r = pair(server.port, first,
                 (lambda cl: cl.request("DELETE", f"/v2.0/networks/{net['id']}"), ADMIN))
        no_5xx(r)
        assert r[1][0] == 204, r
    time.sleep(1.5)
    assert deadlocks(server_db) == before


# ---------------------------------------------------------------- v1.x
def test_two_ports_plugging_one_interface_at_once_one_wins(server):
    """v1.1: two ports of a project plugging the same interface id at once:
    one plug is taken, the other is 409 AlreadyAttached (the attachment's
    transaction lock; before, on MariaDB only PostgreSQL's was taken: both
    could be taken)."""
    c = Client(server.port, project="p1", roles="member")
    base = "/v1.1/tenants/p1/networks"
    net = c.json("POST", base, {"network": {"name": "plugs"}}, want=202)["network"]["id"]
    tally = {}
    for i in range(ROUNDS):
        ports = [c.json("POST", f"{base}/{net}/ports", None, want=202)["port"]["id"]
                 for _ in range(2)]
        vif = f"vif-{i}-{uuid.uuid4().hex[:6]}"

        def plug(pid):
            return (lambda cl: cl.request("PUT", f"{base}/{net}/ports/{pid}/attachment",
                                          {"attachment": {"id": vif}}),
                    dict(project="p1", roles="member"))
        r = counted_pair(server, tally, plug(ports[0]), plug(ports[1]))
        assert sorted(s for s, _ in r) == [204, 409], (i, r, tally)
    c.close()
