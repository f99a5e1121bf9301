"""The fixes of the session 28 review of the agent API, beyond the
reviewer's tests (test_agent_api_review_s28.py): each key of an agent's
configurations is checked, and a bad row stored before fails a binding,
never a request; a report's queries fit any backend's parameter limit;
an admin-down gateway agent leaves its routers and comes back; revoking a
host's last gateway credential drops its role at once, and a poll after
a revocation checks again."""

import json
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from quantum_ovs import wire
from quantum_ovs.db import agent_auth, gateways, models
from quantum_ovs.timeutils import utcnow
from tests.functional.test_agent_confinement import (  # noqa: F401 - fixtures
    AGENTS, HOST_A, HOST_B, AgentAs, _routed_elsewhere, bound_port, cloud, l3_cloud,
    ports_path)

ADMIN = {"X-Project-Id": "admin-p", "X-Roles": "admin,member"}


# ------------------------------------------------------------ F1
@pytest.mark.parametrize("key,value", [
    ("tunnel_types", 5), ("tunnel_types", "vxlan"), ("tunnel_types", [5]),
    ("tunnel_types", None), ("bridge_mappings", 7), ("bridge_mappings", ["physnet1"]),
    ("bridge_mappings", {"physnet1": 3}), ("integration_bridge", 1),
    ("datapath_type", ["netdev"]), ("gateway", "yes"), ("devices", -1), ("devices", True),
    ("of_connect", 5), ("of_listen", "127.0.0.1")])
def test_a_mistyped_configuration_is_refused_naming_its_key(cloud, key, value):  # noqa: F811
    api, a, _b, _shared, _b_only, _port = cloud
    r = api.post(AGENTS, {"host": HOST_A, "tunnel_ip": "192.0.2.1", "started": True,
                          "configurations": {"tunnel_types": ["vxlan"], key: value}},
                 headers={"X-Agent-Token": a.token})
    assert r.status_int == 400, (r.status, r.text[:300])
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert repr(key) in r.data["NeutronError"]["message"]


def test_what_the_agent_sends_is_taken(cloud):  # noqa: F811
    api, a, _b, _shared, _b_only, _port = cloud
    confs = {"integration_bridge": "br-int", "datapath_type": "netdev",
             "tunnel_types": ["vxlan", "gre"], "bridge_mappings": {"physnet1": "br-ex"},
             "tunnel_ip": "192.0.2.1", "devices": 3, "gateway": False,
             "of_listen": ["127.0.0.1", 6633], "of_connect": None, "anything": {"else": 1}}
    api.post(AGENTS, {"host": HOST_A, "tunnel_ip": "192.0.2.1", "started": True,
                      "configurations": confs},
             headers={"X-Agent-Token": a.token}, status=200)


def test_a_bad_configurations_row_stored_before_fails_bindings_not_requests(cloud):  # noqa: F811
    """A row written before the agent API checked configurations: the
    port is binding_failed (Neutron: a mechanism driver raising in
    bind_port fails the binding, logged), on create and on every update
    that binds it again."""
    api, a, _b, shared, _b_only, _port = cloud
    physnet = api.app.post_json("/v2.0/networks", {"network": {
        "name": "flat", "provider:network_type": "flat",
        "provider:physical_network": "physnet1"}}, headers=ADMIN).json["network"]
    api.app.post_json("/v2.0/subnets", {"subnet": {
        "network_id": physnet["id"], "cidr": "10.7.0.0/24", "ip_version": 4}},
        headers=ADMIN)
    for bad in ({"tunnel_types": 5, "bridge_mappings": 7}, ["not", "an", "object"],
                {"tunnel_types": ["vxlan"], "bridge_mappings": {"physnet1": "br-ex"},
                 "integration_bridge": 7}):
        def store(s, bad=bad):
            s.execute(sa.update(models.Agent).where(models.Agent.host == HOST_A)
                      .values(configurations=json.dumps(bad)))
        api.db.write(store)
        for net in (shared, physnet):
            r = api.app.post_json("/v2.0/ports", {"port": {"network_id": net["id"],
                                                           "binding:host_id": HOST_A}},
                                  headers=ADMIN, expect_errors=True)
            assert r.status_int == 201, (r.status, r.text[:300])
            port = r.json["port"]
            assert port["binding:vif_type"] == "binding_failed"
            r = api.app.put_json(f"/v2.0/ports/{port['id']}", {"port": {"name": "again"}},
                                 headers=ADMIN, expect_errors=True)
            assert r.status_int == 200, (r.status, r.text[:300])
            assert r.json["port"]["binding:vif_type"] == "binding_failed"
    # The agent's next heartbeat stores a good one: its waiting ports bind.
    a.register(HOST_A, "192.0.2.1", bridge_mappings={"physnet1": "br-ex"})
    ports = api.app.get(f"/v2.0/ports?binding:host_id={HOST_A}", headers=ADMIN).json["ports"]
    assert ports and {p["binding:vif_type"] for p in ports} == {"ovs"}


# ------------------------------------------------------------ F2
def test_a_report_of_many_ports_fits_a_small_parameter_limit(cloud):  # noqa: F811
    """SQLite builds before 3.32 (and some distributions') take 999 bound
    parameters per statement: a legal report (up to REPORT_MAX_ENTRIES
    in each list) is read in chunks, never one ``IN`` of every id."""
    api, a, _b, _shared, _b_only, port = cloud
    if api.db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's limit")

    @sa.event.listens_for(api.db.engine, "connect")
    def small(dbapi_conn, _record):
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    api.db.engine.dispose()  # every connection made again, with the limit
    try:
        ids = [f"{i:08x}-0000-0000-0000-000000000000" for i in range(3000)]
        r = a.report(HOST_A, installed=ids + [port["a"]["id"]], unplugged=ids,
                     plugged=[{"port_id": x, "ofport": 1} for x in ids],
                     floatingips=ids)
        assert r.data == {"updated": 1}
    finally:
        sa.event.remove(api.db.engine, "connect", small)
        api.db.engine.dispose()


def test_a_list_at_the_limit_is_taken_one_beyond_is_refused(cloud):  # noqa: F811
    api, a, _b, _shared, _b_only, _port = cloud
    n = wire.REPORT_MAX_ENTRIES
    ids = [f"{i:08x}-0000-0000-0000-000000000000" for i in range(n + 1)]
    for name in ("unplugged", "installed", "floatingips", "plugged"):
        def body(k):
            items = ids[:k]
            return {name: [{"port_id": x, "ofport": 1} for x in items]
                    if name == "plugged" else items}
        a.report(HOST_A, status=200, **body(n))
        r = a.report(HOST_A, status=400, **body(n + 1))
        msg = r.data["NeutronError"]["message"]
        assert name in msg and str(n) in msg, msg


# ------------------------------------------------------------ F3
def _gw_hosts(view, router_id):
    (router,) = [x for x in view["routers"] if x["id"] == router_id]
    return router["gateway"]["hosts"]


def _gateways(api):
    g1 = AgentAs(api, agent_auth.create(api.db, HOST_A, gateway=True)[1])
    g2 = AgentAs(api, agent_auth.create(api.db, "hv-g2", gateway=True)[1])
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    g1.register(HOST_A, "192.0.2.1", gateway=True)
    g2.register("hv-g2", "192.0.2.3", gateway=True)
    b.register(HOST_B, "192.0.2.2")
    return g1, g2, b


def _agent_id(api, host):
    (agent,) = [x for x in api.get("/v2.0/agents", admin=True, status=200).data["agents"]
                if x["host"] == host]
    return agent["id"]


def test_a_drained_gateway_host_leaves_its_routers_and_comes_back(l3_cloud):  # noqa: F811
    api = l3_cloud
    g1, _g2, b = _gateways(api)
    net, port, r = _routed_elsewhere(api)
    seen_b = b.state(HOST_B).data
    assert _gw_hosts(seen_b["view"], r["id"]) == [HOST_A, "hv-g2"]
    seen_a = g1.state(HOST_A).data
    assert port["id"] in json.dumps(seen_a)
    agent_id = _agent_id(api, HOST_A)

    api.put(f"/v2.0/agents/{agent_id}", {"agent": {"admin_state_up": False}},
            admin=True, status=200)
    # the instances' host learns it by a delta: its SNAT goes to hv-g2
    delta = b.state(HOST_B, since=seen_b["revision"]).data
    assert not delta["full"]
    assert _gw_hosts(delta["delta"], r["id"]) == ["hv-g2"]
    # the drained host is told too, and reads nothing behind the router
    delta = g1.state(HOST_A, since=seen_a["revision"]).data
    assert r["id"] in delta["delta"]["removed_routers"], delta
    assert net["id"] in delta["delta"]["removed_networks"]
    full = json.dumps(g1.state(HOST_A).data)
    assert port["id"] not in full and port["mac_address"] not in full
    # a heartbeat of the drained agent does not bring it back
    g1.register(HOST_A, "192.0.2.1", gateway=True)
    assert _gw_hosts(b.state(HOST_B).data["view"], r["id"]) == ["hv-g2"]
    # nor does a floating IP's status rule take it as the active gateway
    with api.db.reader() as s:
        fips = api.plugin.collections["floatingips"]
        assert fips._active_gateway(s, r["id"]) == "hv-g2"
        assert gateways.routers_of_host(s, HOST_A) == set()

    seen_b = b.state(HOST_B).data
    api.put(f"/v2.0/agents/{agent_id}", {"agent": {"admin_state_up": True}},
            admin=True, status=200)
    # back, after the host that took over (its SNAT connections stay)
    delta = b.state(HOST_B, since=seen_b["revision"]).data
    assert _gw_hosts(delta["delta"], r["id"]) == ["hv-g2", HOST_A]
    assert port["id"] in json.dumps(g1.state(HOST_A).data)
    l3 = api.get(f"/v2.0/routers/{r['id']}/l3-agents", admin=True, status=200).data["agents"]
    assert [(x["host"], x["ha_state"]) for x in l3] == [("hv-g2", "active"),
                                                        (HOST_A, "standby")]


def test_admin_down_before_the_router_exists_gives_it_no_such_host(l3_cloud):  # noqa: F811
    api = l3_cloud
    _g1, _g2, b = _gateways(api)
    api.put(f"/v2.0/agents/{_agent_id(api, HOST_A)}", {"agent": {"admin_state_up": False}},
            admin=True, status=200)
    _net, _port, r = _routed_elsewhere(api)
    assert _gw_hosts(b.state(HOST_B).data["view"], r["id"]) == ["hv-g2"]


# ------------------------------------------------------------ F4
def _demoted(api):
    g_dict, g_token = agent_auth.create(api.db, HOST_A, gateway=True)
    g = AgentAs(api, g_token)
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    g.register(HOST_A, "192.0.2.1", gateway=True)
    b.register(HOST_B, "192.0.2.2")
    net, port, r = _routed_elsewhere(api)
    plain = AgentAs(api, agent_auth.create(api.db, HOST_A, gateway=False)[1])
    return g_dict, plain, b, net, port, r


def test_revoking_the_last_gateway_credential_wakes_the_host_without_the_router(
        l3_cloud):  # noqa: F811
    """At once: the plain credential's waiting poll is answered with the
    router and the networks behind it removed, and the instances' hosts
    lose it from the router's gateway hosts."""
    api = l3_cloud
    g_dict, plain, b, net, port, r = _demoted(api)
    first = plain.state(HOST_A).data
    assert port["id"] in json.dumps(first)  # the old credential still holds the role
    seen_b = b.state(HOST_B).data
    got = {}

    def poll():
        got["r"] = plain.state(HOST_A, since=first["revision"], timeout=20)
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    (revoked,) = agent_auth.revoke(api.db, credential_id=g_dict["id"])
    assert revoked["gateway"] is True
    t.join(25)
    assert not t.is_alive() and time.monotonic() - started < 10
    delta = got["r"].data["delta"]
    assert r["id"] in delta["removed_routers"] and net["id"] in delta["removed_networks"]
    assert port["id"] not in got["r"].text and port["mac_address"] not in got["r"].text
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == []
        (agent,) = s.execute(sa.select(models.Agent).where(models.Agent.host == HOST_A)
                             ).scalars().all()
        assert not gateways.is_gateway(agent)
    delta = b.state(HOST_B, since=seen_b["revision"]).data["delta"]
    assert _gw_hosts(delta, r["id"]) == []


def test_a_revocation_that_left_the_role_is_checked_again_on_the_next_poll(
        l3_cloud):  # noqa: F811
    """A host left a gateway by a revocation that did not drop its role
    (one made before revocations did): the next poll of its plain
    credential checks again, though the same credential was checked while
    the old one held the role."""
    api = l3_cloud
    g_dict, plain, _b, _net, port, r = _demoted(api)
    plain.state(HOST_A)

    def revoke_only(s):
        s.execute(sa.update(models.AgentCredential)
                  .where(models.AgentCredential.id == g_dict["id"])
                  .values(revoked_at=utcnow()))
    api.db.write(revoke_only)
    seen = json.dumps(plain.state(HOST_A).data)
    assert port["id"] not in seen and port["mac_address"] not in seen
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == []


def test_the_role_stays_while_a_gateway_credential_is_live(l3_cloud):  # noqa: F811
    """Revoking a plain credential, or one gateway credential of two (a
    rotation that keeps the role), leaves the host a gateway."""
    api = l3_cloud
    g_dict, plain, _b, _net, port, r = _demoted(api)
    other, _token = agent_auth.create(api.db, HOST_A)  # keeps the role (as live ones)
    assert other["gateway"] is True
    agent_auth.revoke(api.db, credential_id=g_dict["id"])
    assert port["id"] in json.dumps(plain.state(HOST_A).data)
    spare_dict, spare_token = agent_auth.create(api.db, HOST_A, gateway=False)
    spare = AgentAs(api, spare_token)
    spare.state(HOST_A)
    third, _token = agent_auth.create(api.db, HOST_A, gateway=False)
    agent_auth.revoke(api.db, credential_id=third["id"])
    assert port["id"] in json.dumps(spare.state(HOST_A).data)
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == [HOST_A]
    # the last one revoked: dropped
    agent_auth.revoke(api.db, credential_id=other["id"])
    assert port["id"] not in json.dumps(spare.state(HOST_A).data)


def test_a_gateway_heartbeat_authenticated_before_the_revocation_is_refused(
        l3_cloud):  # noqa: F811
    """A heartbeat saying gateway, authenticated just before its
    credential was revoked and written after: the registration checks the
    credential again in its own transaction and is refused, so the host
    does not become a gateway again after the revocation dropped it."""
    from quantum_ovs import exceptions
    from quantum_ovs.db import agents as agents_db

    api = l3_cloud
    g_dict, plain, _b, _net, port, r = _demoted(api)
    agent_auth.revoke(api.db, credential_id=g_dict["id"])
    with pytest.raises(exceptions.NotAuthorized):
        agents_db.register_agent(api.plugin, HOST_A,
                                 {"tunnel_types": ["vxlan"], "gateway": True},
                                 tunnel_ip="192.0.2.1", credential_id=g_dict["id"])
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == []
        (agent,) = s.execute(sa.select(models.Agent).where(models.Agent.host == HOST_A)
                             ).scalars().all()
        assert not gateways.is_gateway(agent)
    assert port["id"] not in json.dumps(plain.state(HOST_A).data)
