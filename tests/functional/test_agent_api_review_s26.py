"""What one hypervisor's credential can do to others (review of session
26): a tunnel address named only in its configurations is checked like the
top-level one; a host whose gateway role was revoked stops reading the
gateway's view; configurations are bounded on every backend.  Each test
failed before its fix."""

import json

import pytest

from quantum_ovs.db import agent_auth, changelog, gateways
from tests.functional.test_agent_confinement import (  # noqa: F401 - fixtures
    AGENTS, HOST_A, HOST_B, AgentAs, _routed_elsewhere, bound_port, cloud, l3_cloud,
    ports_path)


def _remote_hosts(view):
    return {h["name"]: h["tunnel_ip"] for h in view["remote_hosts"]}


def test_unvalidated_tunnel_ip_in_configurations_reaches_other_hosts_views(cloud):  # noqa: F811
    """The top-level ``tunnel_ip`` of a registration is validated, but
    host_view._with_tunnel_ips falls back to ``configurations.tunnel_ip``
    when it is absent, and that one is stored as given: host A's agent
    puts any string (or a number) into the view of every host that shares
    a network with it (B's compiler makes a tun_ipv4_src match of it /
    does ``":" in 12345``)."""
    api, a, b, _shared, _b_only, _port = cloud
    for bad in ("not-an-ip,actions=output:1", 12345):
        r = api.post(AGENTS, {"host": HOST_A, "started": True,
                              "configurations": {"tunnel_types": ["vxlan"],
                                                 "tunnel_ip": bad}},
                     headers={"X-Agent-Token": a.token})
        assert r.status_int in (200, 400), r.status
        seen = _remote_hosts(b.state(HOST_B).data["view"])
        assert seen.get(HOST_A) in (None, "192.0.2.1"), seen
    # A valid one there is taken, canonical, as the top-level one is.
    r = api.post(AGENTS, {"host": HOST_A, "started": True,
                          "configurations": {"tunnel_ip": "2001:DB8::0001"}},
                 headers={"X-Agent-Token": a.token})
    assert r.status_int == 200, r.text[:300]
    assert _remote_hosts(b.state(HOST_B).data["view"]).get(HOST_A) == "2001:db8::1"
    # A row written before the check (the text as sent) reaches nobody.
    from quantum_ovs.db import models

    def forge(s):
        row = s.query(models.Agent).filter_by(host=HOST_A).one()
        row.tunnel_ip = None
        row.configurations = json.dumps({"tunnel_ip": "not-an-ip,actions=output:1"})
        changelog.record(s, "agent", row, "update", host=HOST_A)
    api.db.write(forge)
    assert _remote_hosts(b.state(HOST_B).data["view"]).get(HOST_A) is None


def test_gateway_view_survives_revocation_of_the_gateway_grant(l3_cloud):  # noqa: F811
    """The gateway role is checked only when the agent registers; the
    view (every port of every network behind the routers the host serves,
    other projects' included) is given by router_gateway_hosts rows, which
    stay after the operator revokes the host's gateway credential.  With
    the --no-gateway credential the operator rotates it to (README), the
    host keeps reading the other project's ports (its agent need never
    register again: a dead gateway host is not removed either)."""
    api = l3_cloud
    g_dict, g_token = agent_auth.create(api.db, HOST_A, gateway=True)
    g = AgentAs(api, g_token)
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    g.register(HOST_A, "192.0.2.1", gateway=True)
    b.register(HOST_B, "192.0.2.2")
    net, port, r = _routed_elsewhere(api)
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == [HOST_A]
    # the operator takes the role away as README says: a new credential
    # created with --no-gateway, the old one revoked
    plain_dict, plain_token = agent_auth.create(api.db, HOST_A, gateway=False)
    agent_auth.revoke(api.db, credential_id=g_dict["id"])
    assert plain_dict["gateway"] is False
    plain = AgentAs(api, plain_token)
    seen = json.dumps(plain.state(HOST_A).data)
    assert port["id"] not in seen and port["mac_address"] not in seen


def test_configurations_beyond_the_column_are_refused_on_every_backend(cloud):  # noqa: F811
    """agents.configurations is String(8191): PostgreSQL refuses a longer
    one, SQLite stores what the agent sends (up to the 4 MiB body), and
    every peer's view computation (host_view._with_tunnel_ips) and every
    agent listing json.loads it again.  Same answer on every backend: 400."""
    api, a, _b, _shared, _b_only, _port = cloud
    if api.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses it already (DataError -> 400)")
    r = api.post(AGENTS, {"host": HOST_A, "tunnel_ip": "192.0.2.1", "started": True,
                          "configurations": {"tunnel_types": ["vxlan"],
                                             "junk": "x" * 200000}},
                 headers={"X-Agent-Token": a.token})
    assert r.status_int == 400, (r.status, r.text[:300])
