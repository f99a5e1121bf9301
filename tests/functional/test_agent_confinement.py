"""Agents confined to their host: a per-host credential may register and
heartbeat its own host, read its own host's view and report the ports
bound to it, and nothing else (403); no token, an unknown one or a
revoked one is 401.  Against the real API (webtest) on SQLite and
PostgreSQL; no shared token is configured here."""

import json
import logging
import subprocess
import sys
import threading
import time

import pytest

from quantum_ovs.db import agent_auth, models

HOST_A, HOST_B = "hv-a", "hv-b"
AGENTS = "/agent-api/v1/agents"


def state_path(host, since=-1, timeout=0):
    return f"/agent-api/v1/hosts/{host}/state?since={since}&timeout={timeout}" \
           f"&features=group_members"


def ports_path(host):
    return f"/agent-api/v1/hosts/{host}/ports"


class AgentAs:
    """The agent API as one credential sees it."""

    def __init__(self, api, token):
        self.api = api
        self.token = token

    def _h(self):
        return {"X-Agent-Token": self.token}

    def register(self, host, tunnel_ip, status=200, **confs):
        return self.api.post(AGENTS, {"host": host, "tunnel_ip": tunnel_ip, "started": True,
                                      "configurations": {"tunnel_types": ["vxlan"],
                                                         "bridge_mappings": {}, **confs}},
                             headers=self._h(), status=status)

    def state(self, host, since=-1, timeout=0, status=200):
        return self.api.get(state_path(host, since, timeout), headers=self._h(), status=status)

    def report(self, host, status=200, **body):
        return self.api.post(ports_path(host), body, headers=self._h(), status=status)


@pytest.fixture
def cloud(api):
    """Two hosts with a credential each (and no shared token), registered;
    a network shared by both, and one of another project that only B has
    ports on (in the same project, the default group's member addresses
    would reach A, as in Neutron: remote-group rules need them)."""
    api.plugin.conf.set_override("token", "", group="agent_api")
    a = AgentAs(api, agent_auth.create(api.db, HOST_A)[1])
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    a.register(HOST_A, "192.0.2.1")
    b.register(HOST_B, "192.0.2.2")
    shared = api.network(name="shared")
    api.subnet(shared["id"], "10.1.0.0/24")
    b_only = api.network(name="b-only", project="p2")
    api.subnet(b_only["id"], "10.99.0.0/24", project="p2")
    port = {}
    port["a"] = bound_port(api, shared["id"], HOST_A)
    port["b_shared"] = bound_port(api, shared["id"], HOST_B)
    port["b_only"] = bound_port(api, b_only["id"], HOST_B, project_id="p2")
    return api, a, b, shared, b_only, port


def bound_port(api, net_id, host, **kw):
    return api.post("/v2.0/ports", {"port": dict(network_id=net_id,
                                                 **{"binding:host_id": host}, **kw)},
                    admin=True, status=201).data["port"]


def port_status(api, port_id):
    return api.get(f"/v2.0/ports/{port_id}", admin=True, status=200).data["port"]["status"]


def agent_row(api, host):
    (row,) = [x for x in api.get("/v2.0/agents", admin=True, status=200).data["agents"]
              if x["host"] == host]
    return row


def assert_403(resp):
    assert resp.status_int == 403
    assert resp.data["NeutronError"]["type"] == "HTTPForbidden"
    assert "own host" in resp.data["NeutronError"]["message"]


def test_missing_or_garbage_token_is_401(cloud):
    api, a, _b, _shared, _b_only, port = cloud
    for token in ("", "garbage", "x" * 5000, agent_auth.digest(a.token),
                  "functional-tests-shared-agent-token"):
        who = AgentAs(api, token)
        for r in (who.register(HOST_A, "192.0.2.9", status=401),
                  who.state(HOST_A, status=401),
                  who.report(HOST_A, installed=[port["a"]["id"]], status=401)):
            assert "X-Agent-Token" in r.data["NeutronError"]["message"]
            assert port["a"]["id"] not in r.text
    assert port_status(api, port["a"]["id"]) == "DOWN"
    # No header at all (the test client sends one unless told otherwise).
    r = api.app.get(state_path(HOST_A), status=401, expect_errors=True)
    assert "X-Agent-Token" in r.json["NeutronError"]["message"]


def test_host_cannot_register_or_heartbeat_as_another(cloud, caplog):
    api, a, _b, _shared, _b_only, _port = cloud
    before = agent_row(api, HOST_B)
    time.sleep(1.1)  # heartbeats have one-second resolution
    with caplog.at_level(logging.WARNING, logger="quantum_ovs.api.agent_api"):
        assert_403(a.register(HOST_B, "192.0.2.66", status=403))
        r = api.post(AGENTS, {"host": HOST_B, "tunnel_ip": "192.0.2.66"},
                     headers={"X-Agent-Token": a.token}, status=403)  # a heartbeat
        assert_403(r)
        assert_403(a.register("hv-new", "192.0.2.67", status=403))
    after = agent_row(api, HOST_B)
    assert after["configurations"]["tunnel_ip"] == "192.0.2.2"
    assert after["heartbeat_timestamp"] == before["heartbeat_timestamp"]
    assert after["started_at"] == before["started_at"]
    assert "hv-new" not in {x["host"] for x in
                            api.get("/v2.0/agents", admin=True, status=200).data["agents"]}
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(f"'{HOST_A}'" in m and "register as host 'hv-b'" in m for m in logged), logged
    # Its own host is fine.
    assert a.register(HOST_A, "192.0.2.1").data["agent"]["host"] == HOST_A


def test_host_cannot_read_another_hosts_view(cloud, caplog):
    api, a, b, _shared, b_only, port = cloud
    mine = a.state(HOST_A).data
    assert mine["full"] is True
    with caplog.at_level(logging.WARNING, logger="quantum_ovs.api.agent_api"):
        for since, timeout in ((-1, 0), (mine["revision"], 0), (0, 0), (mine["revision"], 1)):
            r = a.state(HOST_B, since, timeout, status=403)
            assert_403(r)
            assert port["b_only"]["id"] not in r.text and b_only["id"] not in r.text
        # Path tricks name the same host or none.
        for path in (f"/agent-api/v1/hosts/{HOST_B}/state?since=-1&host={HOST_A}",
                     "/agent-api/v1/hosts/hv-b%2F../state?since=-1"):
            r = api.get(path, headers={"X-Agent-Token": a.token})
            assert r.status_int in (403, 404), r.status
            assert port["b_only"]["id"] not in r.text
    assert any("read the view of host 'hv-b'" in r.getMessage() for r in caplog.records)
    # B reads its own view, with the port A may not see.
    assert port["b_only"]["id"] in b.state(HOST_B).text


def test_host_cannot_report_another_hosts_ports(cloud):
    api, a, b, _shared, _b_only, port = cloud
    victim = port["b_shared"]["id"]
    # ACTIVE: neither through B's path (403) nor through its own (ignored).
    assert_403(a.report(HOST_B, status=403, plugged=[{"port_id": victim, "ofport": 9}],
                        installed=[victim]))
    assert a.report(HOST_A, plugged=[{"port_id": victim, "ofport": 9}],
                    installed=[victim]).data == {"updated": 0}
    assert port_status(api, victim) == "DOWN"
    # B brings it up; A cannot take it DOWN either.
    assert b.report(HOST_B, plugged=[{"port_id": victim, "ofport": 3}],
                    installed=[victim]).data == {"updated": 1}
    assert port_status(api, victim) == "ACTIVE"
    assert_403(a.report(HOST_B, status=403, unplugged=[victim]))
    assert a.report(HOST_A, unplugged=[victim]).data == {"updated": 0}
    assert port_status(api, victim) == "ACTIVE"
    with api.db.reader() as s:
        assert s.get(models.PortBinding, victim).ofport == 3
    # A's own port: fine.
    assert a.report(HOST_A, installed=[port["a"]["id"]]).data == {"updated": 1}
    assert port_status(api, port["a"]["id"]) == "ACTIVE"


def test_deltas_never_carry_another_hosts_private_ports(cloud):
    """A shares one network with B: its view and deltas carry B's ports
    there, and nothing of the network only B has ports on, whatever
    happens on it."""
    api, a, b, shared, b_only, port = cloud
    full = a.state(HOST_A).data
    secret = {b_only["id"], port["b_only"]["id"], port["b_only"]["mac_address"], "10.99.0."}
    assert not [s for s in secret if s in json.dumps(full)]
    assert port["b_shared"]["id"] in json.dumps(full)  # what it needs it has
    rev = full["revision"]
    # Changes on the network only B has ports on ...
    made = [bound_port(api, b_only["id"], HOST_B, project_id="p2") for _ in range(3)]
    api.put(f"/v2.0/ports/{made[0]['id']}", {"port": {"name": "renamed"}}, admin=True,
            status=200)
    api.delete(f"/v2.0/ports/{made[1]['id']}", admin=True, status=204)
    b.report(HOST_B, installed=[made[2]["id"], port["b_only"]["id"]])
    api.put(f"/v2.0/networks/{b_only['id']}", {"network": {"name": "b-only-2"}},
            admin=True, status=200)
    # ... and one A must learn about.
    newcomer = bound_port(api, shared["id"], HOST_B)
    secret |= {p["id"] for p in made} | {p["mac_address"] for p in made}
    r = a.state(HOST_A, since=rev, timeout=5).data
    assert r["full"] is False
    text = json.dumps(r)
    assert newcomer["id"] in text
    assert not [s for s in secret if s in text], text


def test_another_hosts_ports_come_without_what_only_their_host_uses(cloud):
    """A's view (full, and deltas) holds B's ports on the shared network
    for their flows, without their device_id (another project's instance),
    project_id or extra DHCP options (a boot URL with a password): those
    are for B's metadata proxy and DHCP responder (found by review).  B's
    own view has them whole."""
    import uuid
    api, a, b, shared, _b_only, _port = cloud
    instance = str(uuid.uuid4())
    opts = [{"opt_name": "bootfile-name", "opt_value": "http://user:secret@pxe/boot"}]
    rev = a.state(HOST_A).data["revision"]
    victim = bound_port(api, shared["id"], HOST_B, project_id="p-victim", device_id=instance,
                        device_owner="compute:nova", extra_dhcp_opts=opts)
    secret = (instance, "p-victim", "secret@pxe")

    def seen(view_or_delta):
        (p,) = [p for p in view_or_delta["ports"] if p["id"] == victim["id"]]
        return p
    delta = a.state(HOST_A, since=rev, timeout=5).data
    assert delta["full"] is False
    for got in (seen(delta["delta"]), seen(a.state(HOST_A).data["view"])):
        assert got["mac_address"] == victim["mac_address"] and got["host"] == HOST_B
        assert not [x for x in secret if x in json.dumps(got)], got
    own = seen(b.state(HOST_B).data["view"])
    assert (own["device_id"], own["project_id"]) == (instance, "p-victim")
    assert "secret@pxe" in json.dumps(own["extra_dhcp_opts"])


def test_revoked_credential_stops_at_once(cloud, make_api):
    api, a, _b, _shared, _b_only, port = cloud
    other = make_api()  # a second server process on the same database
    other.plugin.conf.set_override("token", "", group="agent_api")
    a2 = AgentAs(other, a.token)
    a.state(HOST_A)
    a2.state(HOST_A)
    a2.report(HOST_A, plugged=[{"port_id": port["a"]["id"], "ofport": 5}])
    revoked = agent_auth.revoke(api.db, host=HOST_A)
    assert [c["host"] for c in revoked] == [HOST_A]
    for who in (a, a2):
        who.state(HOST_A, status=401)
        who.register(HOST_A, "192.0.2.1", status=401)
        who.report(HOST_A, installed=[port["a"]["id"]], status=401)
    assert port_status(api, port["a"]["id"]) == "DOWN"
    # A new credential for the host works; the old one stays dead.
    cred, token = agent_auth.create(api.db, HOST_A)
    fresh = AgentAs(other, token)
    fresh.state(HOST_A)
    a2.state(HOST_A, status=401)
    creds = agent_auth.list_credentials(api.db, HOST_A, include_revoked=True)
    assert {c["id"]: c["revoked_at"] is not None for c in creds} == {
        revoked[0]["id"]: True, cred["id"]: False}


def test_revocation_ends_a_waiting_long_poll(cloud):
    """A long poll that was waiting when its credential was revoked is
    answered 401, not with the change that wakes it."""
    api, a, _b, shared, _b_only, _port = cloud
    rev = a.state(HOST_A).data["revision"]
    got = {}

    def poll():
        got["r"] = a.state(HOST_A, since=rev, timeout=20, status=None)
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    agent_auth.revoke(api.db, host=HOST_A)
    newcomer = bound_port(api, shared["id"], HOST_B)  # concerns A: wakes the poll
    t.join(25)
    assert not t.is_alive()
    assert got["r"].status_int == 401, got["r"].text
    assert newcomer["id"] not in got["r"].text


def test_one_credential_per_host_at_a_time_is_not_required(cloud):
    """Rotation: two live credentials of one host both work until one is
    revoked by id."""
    api, a, _b, _shared, _b_only, _port = cloud
    cred, token = agent_auth.create(api.db, HOST_A, "rotation")
    a_new = AgentAs(api, token)
    a_new.state(HOST_A)
    a.state(HOST_A)
    (old,) = [c for c in agent_auth.list_credentials(api.db, HOST_A) if c["id"] != cred["id"]]
    agent_auth.revoke(api.db, credential_id=old["id"])
    a.state(HOST_A, status=401)
    a_new.state(HOST_A)
    assert_403(a_new.state(HOST_B, status=403))


def test_shared_token_only_when_set(api, caplog):
    """An operator who sets [agent_api] token gets a warning at start, and
    that token acts for every host."""
    from quantum_ovs.api import agent_api
    api.plugin.conf.set_override("token", "", group="agent_api")
    with caplog.at_level(logging.WARNING, logger="quantum_ovs.api.agent_api"):
        agent_api.AgentAPI(api.plugin.conf, api.plugin)
    assert not [r for r in caplog.records if "shared agent token" in r.getMessage()]
    AgentAs(api, "s3cret-shared").state(HOST_A, status=401)
    api.plugin.conf.set_override("token", "s3cret-shared", group="agent_api")
    with caplog.at_level(logging.WARNING, logger="quantum_ovs.api.agent_api"):
        agent_api.AgentAPI(api.plugin.conf, api.plugin)
    assert any("any hypervisor can read every host's view" in r.getMessage()
               for r in caplog.records)
    shared = AgentAs(api, "s3cret-shared")
    shared.register(HOST_A, "192.0.2.1")
    shared.register(HOST_B, "192.0.2.2")
    shared.state(HOST_B)


def test_same_rules_with_keystone(make_api):
    """With auth_strategy = keystone the agent API (which agents reach
    without a Keystone token) applies the same per-host rules."""
    api = make_api(auth_strategy="keystone")
    api.plugin.conf.set_override("token", "", group="agent_api")
    a = AgentAs(api, agent_auth.create(api.db, HOST_A)[1])
    a.register(HOST_A, "192.0.2.1")
    a.state(HOST_A)
    assert_403(a.state(HOST_B, status=403))
    assert_403(a.register(HOST_B, "192.0.2.2", status=403))
    AgentAs(api, "garbage").state(HOST_A, status=401)
    AgentAs(api, "").register(HOST_A, "192.0.2.1", status=401)


def test_credential_command(db_url, make_api, monkeypatch, capsys):
    """quantum-ovs-agent-credential create / list / revoke against the
    database the server uses.  The first call runs the console script's
    module as a process; the others call its main() here (the same code
    without a second of imports each; its logging set-up left out, which
    would take over this process's)."""
    from quantum_ovs.cmd import agent_credential
    monkeypatch.setattr(agent_credential.log, "setup", lambda *a, **k: None)

    def cli(*args, check=True, process=False):
        argv = ["--database-connection", db_url, *args]
        if process:
            out = subprocess.run([sys.executable, "-m", "quantum_ovs.cmd.agent_credential",
                                  *argv], capture_output=True, text=True, timeout=120)
        else:
            capsys.readouterr()
            try:
                rc = agent_credential.main(argv)
            except SystemExit as e:  # (argparse's errors)
                rc = e.code
            got = capsys.readouterr()
            out = subprocess.CompletedProcess(argv, rc, got.out, got.err)
        assert out.returncode == 0 or not check, out.stderr
        return out
    token = cli("create", "--host", HOST_A, "--description", "rack 3",
                process=True).stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    listed = json.loads(cli("--json", "list").stdout)
    assert [(c["host"], c["description"], c["revoked_at"], c["gateway"]) for c in listed] == [
        (HOST_A, "rack 3", None, False)]
    assert token not in json.dumps(listed) and agent_auth.digest(token) not in json.dumps(listed)
    api = make_api()
    api.plugin.conf.set_override("token", "", group="agent_api")
    a = AgentAs(api, token)
    a.register(HOST_A, "192.0.2.1")
    assert_403(a.state(HOST_B, status=403))
    assert f"revoked {listed[0]['id']}" in cli("revoke", "--host", HOST_A).stdout
    a.state(HOST_A, status=401)
    assert cli("revoke", "--host", HOST_A, check=False).returncode == 1  # nothing live left
    assert json.loads(cli("--json", "list").stdout) == []
    assert len(json.loads(cli("--json", "list", "--all").stdout)) == 1
    assert cli("revoke", check=False).returncode == 2
    # --gateway: the operator grants the gateway role
    gw = AgentAs(api, cli("create", "--host", "gw-1", "--gateway").stdout.strip())
    gw.register("gw-1", "192.0.2.9", gateway=True)
    assert [c["gateway"] for c in json.loads(cli("--json", "list", "--host", "gw-1").stdout)] \
        == [True]
    assert "gateway" in cli("list").stdout.splitlines()[0]
    # a rotation keeps the role unless told otherwise (a gateway host given
    # a credential without it would look dead: its heartbeats refused)
    (old,) = json.loads(cli("--json", "list", "--host", "gw-1").stdout)
    rotated = cli("create", "--host", "gw-1")
    assert "(a gateway host's)" in rotated.stderr
    cli("revoke", "--id", old["id"])
    gw.register("gw-1", "192.0.2.9", gateway=True, status=401)
    AgentAs(api, rotated.stdout.strip()).register("gw-1", "192.0.2.9", gateway=True)
    cli("create", "--host", "gw-1", "--no-gateway")
    # (both made within a second: in no particular order)
    assert sorted(c["gateway"] for c in json.loads(
        cli("--json", "list", "--host", "gw-1").stdout)) == [False, True]
    cli("revoke", "--host", "gw-1")
    assert json.loads(cli("--json", "create", "--host", "gw-1").stdout)["gateway"] is False
    assert cli("create", "--host", "gw-1", "--gateway", "--no-gateway",
               check=False).returncode == 2


def _routed_elsewhere(api):
    """Another project's private network, a port on it bound to B, routed
    out by that project's router (an external network's gateway)."""
    ext = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, project="admin-p", admin=True).data["network"]
    api.subnet(ext["id"], cidr="172.24.4.0/24", project="admin-p", admin=True)
    net = api.network(name="victim", project="p2")
    sub = api.subnet(net["id"], "10.99.0.0/24", project="p2")
    port = bound_port(api, net["id"], HOST_B, project_id="p2")
    r = api.post("/v2.0/routers", {"router": {"name": "r2", "external_gateway_info": {
        "network_id": ext["id"]}}}, project="p2", status=201).data["router"]
    api.put(f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": sub["id"]},
            project="p2", status=200)
    return net, port, r


@pytest.fixture
def l3_cloud(make_api):
    api = make_api(service_plugins=["router"])
    api.plugin.conf.set_override("token", "", group="agent_api")
    return api


def test_only_a_credential_granted_the_gateway_role_registers_a_gateway_host(l3_cloud, caplog):
    """A gateway host serves routers' SNAT and sees the networks behind
    them with every port: a compromised hypervisor must not make itself
    one (found by review: it did, with its own credential, and read
    another project's ports).  The operator grants the role
    (quantum-ovs-agent-credential create --gateway)."""
    from quantum_ovs.db import gateways
    api = l3_cloud
    a = AgentAs(api, agent_auth.create(api.db, HOST_A)[1])
    b = AgentAs(api, agent_auth.create(api.db, HOST_B)[1])
    a.register(HOST_A, "192.0.2.1")
    b.register(HOST_B, "192.0.2.2")
    net, port, r = _routed_elsewhere(api)
    with caplog.at_level(logging.WARNING, "quantum_ovs.api.agent_api"):
        refused = a.register(HOST_A, "192.0.2.1", gateway=True, status=403).data
    assert refused["NeutronError"]["type"] == "HTTPForbidden"
    assert "not issued for a gateway host" in refused["NeutronError"]["message"]
    assert "tried to register as a gateway host" in caplog.text
    seen = json.dumps(a.state(HOST_A).data)
    assert port["id"] not in seen and net["id"] not in seen and port["mac_address"] not in seen
    with api.db.reader() as s:
        assert HOST_A not in gateways.hosts_of(s, r["id"])
    assert not agent_row(api, HOST_A)["configurations"].get("gateway")
    # granted: the same host, a credential issued with the role
    g = AgentAs(api, agent_auth.create(api.db, HOST_A, gateway=True)[1])
    g.register(HOST_A, "192.0.2.1", gateway=True)
    with api.db.reader() as s:
        assert gateways.hosts_of(s, r["id"]) == [HOST_A]
    assert port["id"] in json.dumps(g.state(HOST_A).data)
    # the old credential (no role) may still act for its host, as no gateway
    a.state(HOST_A)


def test_the_migration_keeps_the_role_of_hosts_that_are_gateways(tmp_path):
    """Credentials issued before 0017 carry no role: those of hosts
    registered as gateway hosts get it (an upgrade stops no gateway)."""
    import sqlalchemy as sa

    from quantum_ovs.db import migration
    url = f"sqlite:///{tmp_path}/m.sqlite"
    engine = sa.create_engine(url)
    try:
        migration.upgrade(engine, "0016_default_sg_rules")
        with engine.begin() as c:
            for n, (host, confs) in enumerate([("gw", '{"gateway": true, "x": 1}'),
                                               ("hv", '{"gateway": false}')]):
                c.execute(sa.text(
                    "INSERT INTO agents (id, agent_type, binary, topic, host, admin_state_up, "
                    "description, created_at, started_at, heartbeat_timestamp, configurations) "
                    "VALUES (:id, 'Open vSwitch agent', 'b', 't', :h, 1, '', '2026-01-01', "
                    "'2026-01-01', '2026-01-01', :c)"), {"id": f"a{n}", "h": host, "c": confs})
                c.execute(sa.text(
                    "INSERT INTO agent_credentials (id, host, token_hash, description, "
                    "created_at) VALUES (:id, :h, :t, '', '2026-01-01')"),
                    {"id": f"c{n}", "h": host, "t": f"{n:064d}"})
        migration.upgrade(engine)
        with engine.connect() as c:
            got = dict(c.execute(sa.text("SELECT host, gateway FROM agent_credentials")).all())
        assert {h: bool(v) for h, v in got.items()} == {"gw": True, "hv": False}
    finally:
        engine.dispose()


# ---------------------------------------------------------------- TLS
def test_agent_syncs_over_tls_and_verifies_the_server(tmp_path):
    """A real server process serving HTTPS with a certificate of a CA the
    test makes: the agent's client registers, syncs and reports over it
    with its own credential; against another CA, or the system's CAs, it
    refuses to talk (and sends no token)."""
    from agent import sync_client
    from tests.fixtures import tls
    from quantum_ovs.testing.server import ServerProcess

    ca_path, cert, key = tls.server_certificate(tmp_path)
    other_ca_path = tls.ca(tmp_path, "other-ca")[0]
    with ServerProcess(f"sqlite:///{tmp_path}/tls.sqlite", ca_file=ca_path,
                       extra_conf=f"ssl_cert_file = {cert}\nssl_key_file = {key}\n") as server:
        assert server.url.startswith("https://")
        token = server.agent_credential("hv-tls")
        # A wrong CA, or none (the system's): the handshake fails.
        for ca in (other_ca_path, ""):
            bad = sync_client.SyncClient(server.url, "hv-tls", token, ca_file=ca)
            with pytest.raises(sync_client.ServerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                bad.register(tunnel_ip="192.0.2.7")
            bad.close()
        # The right CA: register, full view, report, long-poll delta.
        client = sync_client.SyncClient(server.url, "hv-tls", token, ca_file=ca_path)
        assert client.register(tunnel_ip="192.0.2.7", started=True)["agent"]["host"] == "hv-tls"
        kind, view, rev = client.poll(-1, 0)
        assert kind == "full" and view.ports == ()
        import urllib.request
        ctx = sync_client.tls_context(ca_path)

        def admin(method, path, body=None):
            req = urllib.request.Request(server.url + path, method=method, headers={
                "Content-Type": "application/json", "X-Roles": "admin", "X-Project-Id": "p"},
                data=json.dumps(body).encode() if body is not None else None)
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return json.loads(r.read())
        net = admin("POST", "/v2.0/networks", {"network": {"name": "tls"}})["network"]
        admin("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"],
                                                   "cidr": "10.5.0.0/24", "ip_version": 4}})
        port = admin("POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                      "binding:host_id": "hv-tls"}})["port"]
        kind, delta, rev = client.poll(rev, 10)
        assert kind == "delta" and [p.id for p in delta.ports] == [port["id"]]
        assert client.report(plugged=[(port["id"], 3)], installed=[port["id"]]) == {
            "updated": 1}
        assert admin("GET", f"/v2.0/ports/{port['id']}")["port"]["status"] == "ACTIVE"
        # Confinement holds over TLS too.
        other = sync_client.SyncClient(server.url, "hv-other", token, ca_file=ca_path)
        with pytest.raises(sync_client.ServerError) as err:
            other.poll(-1, 0)
        assert err.value.status == 403
        # Plain HTTP to the TLS port gets nothing.
        plain = sync_client.SyncClient(server.url.replace("https:", "http:"), "hv-tls", token)
        with pytest.raises((sync_client.ServerUnavailable, sync_client.ServerError)):
            plain.poll(-1, 0)
        for c in (client, other, plain):
            c.close()
        # Failed handshakes did not hurt the server.
        assert sync_client.SyncClient(server.url, "hv-tls", token,
                                      ca_file=ca_path).poll(-1, 0)[0] == "full"
        assert "Traceback" not in server.log(), server.log()[-3000:]


def test_refused_tokens_are_logged_with_a_budget(cloud, caplog):
    """A client retrying a bad token in a loop cannot fill the log: a few
    lines per address and interval, then one line counting the rest."""
    api = cloud[0]
    bad = AgentAs(api, "not-a-credential")
    with caplog.at_level(logging.WARNING, logger="quantum_ovs.api.agent_api"):
        for _ in range(40):
            bad.state(HOST_A, status=401)
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(logged) <= 5, logged


def test_log_budget_counts_what_it_left_out():
    from quantum_ovs.api.agent_api import LogBudget

    now = [0.0]
    b = LogBudget(burst=2, interval=10, max_keys=2, clock=lambda: now[0])
    assert [b.allow("x") for _ in range(5)] == [(True, 0), (True, 0)] + [(False, 0)] * 3
    assert b.allow("y") == (True, 0)  # keys are separate
    now[0] = 10.0
    assert b.allow("x") == (True, 3)  # a new interval, and what was left out
    assert b.allow("x") == (True, 0)
    b.allow("z")  # a third key: the oldest ("y") is forgotten
    assert b.allow("y") == (True, 0) and len(b._keys) == 2
