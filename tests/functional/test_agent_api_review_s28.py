"""What a hostile or buggy agent can do to the server, and what the admin's
agent API does to agents (review of session 28).  Each test fails on the
code it was written against and passes once the defect is fixed."""

import json

from quantum_ovs.db import agent_auth
from tests.functional.test_agent_confinement import (  # noqa: F401 - fixtures
    AGENTS, HOST_A, HOST_B, AgentAs, _routed_elsewhere, bound_port, cloud, l3_cloud,
    ports_path)

ADMIN = {"X-Project-Id": "admin-p", "X-Roles": "admin,member"}


def test_mistyped_configurations_do_not_make_port_bindings_500(cloud):  # noqa: F811
    """register() checks that ``configurations`` is an object and its
    tunnel_ip, nothing else: an agent may store ``tunnel_types`` or
    ``bridge_mappings`` of any JSON type.  bindings.can_serve then does
    ``network_type in 5`` when any port is bound to that host: creating a
    port there (nova), or any tenant's update of its port waiting there
    (binding_failed: rebound on every update), is a 500 with a TypeError.
    Neutron stores what the agent reports too, but a mechanism driver that
    raises in bind_port only fails the binding (managers.py
    MechanismManager._bind_port_level: except Exception -> logged, the
    port ends binding_failed).  Either answer is right here: 400 at
    registration, or the port bound as binding_failed."""
    api, a, _b, shared, _b_only, _port = cloud
    r = api.post(AGENTS, {"host": HOST_A, "tunnel_ip": "192.0.2.1", "started": True,
                          "configurations": {"tunnel_types": 5, "bridge_mappings": 7}},
                 headers={"X-Agent-Token": a.token})
    if r.status_int == 400:
        return
    assert r.status_int == 200, r.text[:300]
    r = api.app.post_json("/v2.0/ports", {"port": {"network_id": shared["id"],
                                                   "binding:host_id": HOST_A}},
                          headers=ADMIN, expect_errors=True)
    assert r.status_int == 201, (r.status, r.text[:300])
    assert r.json["port"]["binding:vif_type"] == "binding_failed"


def test_a_report_naming_every_id_a_body_holds_is_refused(cloud):  # noqa: F811
    """plugged / unplugged / installed are not bounded: one report of the
    4 MiB body names ~450,000 ids, all put in one ``IN (...)`` of one
    query (agents_db.report, then bindings.on_report again).  On SQLite
    that exceeds the bound-parameter limit and the agent is told 503
    "The database is busy; retry the request" (so it retries, forever);
    on PostgreSQL each such request costs about 5 s of the server
    process's CPU (measured 4.7 s; under eventlet every other request of
    the process waits meanwhile), and an agent credential may send them
    back to back.  Every other list a client sends is bounded (fixed IPs,
    address pairs, tags, prefixes: 400); a host holds no such number of
    ports.  Expected: a 4xx naming the limit."""
    api, a, _b, _shared, _b_only, _port = cloud
    ids = [format(i, "x") for i in range(450000)]
    body = json.dumps({"installed": ids})
    assert len(body) < 4 * 1024 * 1024
    r = api.app.post(ports_path(HOST_A), body, content_type="application/json",
                     headers={"X-Agent-Token": a.token}, expect_errors=True)
    assert r.status_int in (400, 413), (r.status, r.text[:300])


def _gw_host(view, router_id):
    (router,) = [x for x in view["routers"] if x["id"] == router_id]
    return router["gateway"]["hosts"]


def test_an_admin_down_gateway_agent_stops_serving_its_routers(l3_cloud):  # noqa: F811
    """Setting a gateway host's agent admin_state_up=False (how an
    operator drains an L3 agent in Neutron) changes nothing the data plane
    sees: the router's gateway hosts in every host's view stay in the same
    order, so the instances' hosts keep sending SNAT to it (the first one
    alive), while GET /v2.0/routers/{id}/l3-agents calls it "standby" and
    the next host "active".  The drained host keeps reading the networks
    behind the routers too.  Neutron: an admin-down L3 agent hosts no
    routers (l3_agentschedulers_db.list_router_ids_on_host and
    list_active_sync_routers_on_active_l3_agent return [] when
    services_available(agent.admin_state_up) is false), so HA fails over
    to the next agent, which the API then reports active."""
    api = l3_cloud
    g1 = AgentAs(api, agent_auth.create(api.db, HOST_A, gateway=True)[1])
    g2 = AgentAs(api, agent_auth.create(api.db, "hv-g2", gateway=True)[1])
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    g1.register(HOST_A, "192.0.2.1", gateway=True)
    g2.register("hv-g2", "192.0.2.3", gateway=True)
    b.register(HOST_B, "192.0.2.2")
    net, port, r = _routed_elsewhere(api)
    assert _gw_host(b.state(HOST_B).data["view"], r["id"])[0] == HOST_A
    (agent,) = [x for x in api.get("/v2.0/agents", admin=True, status=200).data["agents"]
                if x["host"] == HOST_A]
    api.put(f"/v2.0/agents/{agent['id']}", {"agent": {"admin_state_up": False}},
            admin=True, status=200)
    l3 = api.get(f"/v2.0/routers/{r['id']}/l3-agents", admin=True, status=200).data["agents"]
    active = [x["host"] for x in l3 if x["ha_state"] == "active"]
    assert active == ["hv-g2"], l3
    # what the instances' host sends SNAT to: the first live host of the list
    hosts = _gw_host(b.state(HOST_B).data["view"], r["id"])
    assert hosts[:1] == active, hosts


def test_gateway_role_taken_in_the_readme_order_stops_the_view(l3_cloud):  # noqa: F811
    """README: to take a host's gateway role, create its new credential
    with --no-gateway, restart the agent with it, then revoke the old one;
    "once no live credential of a host has the role, its first poll with a
    plain one takes it out of every router gateway".  The check
    (AgentAPI._check_gateway_role) runs once per credential and per
    process: the plain credential's first poll comes while the old one is
    still live (nothing to drop), its id is remembered in ``_plain``, and
    after the revocation no poll of it is checked again.  The host, which
    need never register again (a heartbeat saying gateway would be
    refused, one saying no gateway would drop it, so it sends none; a dead
    gateway host is not removed), keeps reading every port of another
    project's network behind the router (the s26 review's test revokes
    first and polls after, the order that works)."""
    api = l3_cloud
    g_dict, g_token = agent_auth.create(api.db, HOST_A, gateway=True)
    g = AgentAs(api, g_token)
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    g.register(HOST_A, "192.0.2.1", gateway=True)
    b.register(HOST_B, "192.0.2.2")
    net, port, r = _routed_elsewhere(api)
    # the new credential, without the role; the agent restarted with it polls
    plain = AgentAs(api, agent_auth.create(api.db, HOST_A, gateway=False)[1])
    first = plain.state(HOST_A).data
    # then the old one is revoked, as README says
    agent_auth.revoke(api.db, credential_id=g_dict["id"])
    plain.state(HOST_A, since=first["revision"])
    seen = json.dumps(plain.state(HOST_A).data)
    assert port["id"] not in seen and port["mac_address"] not in seen, \
        "the demoted host still reads another project's port behind the router"
