"""auth_strategy = keystone against a real Keystone, driven by the real
openstack CLI with password authentication (clouds.yaml).

Keystone runs from its own virtualenv (tests/fixtures/keystone.py); the
network endpoint in its catalog is a quantum-ovs-server process whose
keystonemiddleware validates the tokens.
"""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.fixtures import keystone
from tests.fixtures.keystone import REGION, KeystoneServer
from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.openstack_cli import openstack_bin

pytest.importorskip("keystonemiddleware", reason="keystonemiddleware is a test "
                                                 "requirement (test-requirements.txt)")

SERVICE_PASSWORD = "quantum-" + os.urandom(4).hex()
USERS = {"alice": ("proj-a", "alice-" + os.urandom(4).hex()),
         "bob": ("proj-b", "bob-" + os.urandom(4).hex())}


class Cloud:
    """The openstack CLI as one of the clouds of our clouds.yaml."""

    def __init__(self, config_file, name):
        self.name = name
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env["OS_CLIENT_CONFIG_FILE"] = config_file
        self.env["OS_CLOUD"] = name

    def run(self, *args, parse=True, check=True):
        argv = [openstack_bin(), *args] + (["-f", "json"] if parse else [])
        res = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=180)
        if check:
            assert res.returncode == 0, (f"[{self.name}] {' '.join(args)} exited "
                                         f"{res.returncode}:\n{res.stderr}\n{res.stdout}")
        if not check:
            return res
        return json.loads(res.stdout) if parse and res.stdout.strip() else res.stdout

    __call__ = run


def _clouds_yaml(path, url, admin_password):
    def cloud(user, project, password):
        return {"auth": {"auth_url": url, "username": user, "password": password,
                         "project_name": project, "user_domain_name": "Default",
                         "project_domain_name": "Default"},
                "region_name": REGION, "identity_api_version": 3,
                "interface": "public"}
    clouds = {"admin": cloud("admin", "admin", admin_password)}
    for user, (project, password) in USERS.items():
        clouds[user] = cloud(user, project, password)
    with open(path, "w") as f:
        json.dump({"clouds": clouds}, f)  # JSON is YAML


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    d = tmp_path_factory.mktemp("keystone")
    ks = KeystoneServer()
    ks.start()
    server = None
    try:
        config = str(d / "clouds.yaml")
        _clouds_yaml(config, ks.url, ks.admin_password)
        admin = Cloud(config, "admin")
        admin("project", "create", "--domain", "default", "service")
        admin("user", "create", "--domain", "default", "--password", SERVICE_PASSWORD,
              "quantum")
        admin("role", "add", "--project", "service", "--user", "quantum", "admin",
              parse=False)
        for user, (project, password) in USERS.items():
            admin("project", "create", "--domain", "default", project)
            admin("user", "create", "--domain", "default", "--password", password, user)
            admin("role", "add", "--project", project, "--user", user, "member",
                  parse=False)
        server = ServerProcess(f"sqlite:///{d}/qovs.sqlite",
                               extra_conf=keystone.server_conf(ks.url, SERVICE_PASSWORD))
        server.start()
        admin("service", "create", "--name", "quantum", "network")
        for interface in ("public", "internal", "admin"):
            admin("endpoint", "create", "--region", REGION, "network", interface,
                  server.url)
        yield {"keystone": ks, "server": server, "config": config,
               "admin": admin, "alice": Cloud(config, "alice"), "bob": Cloud(config, "bob")}
    finally:
        if server is not None:
            server.stop()
            print("--- quantum-ovs server log\n" + server.log()[-20000:])
        ks.stop()
        print(ks.log())


def _http(url, token=None, method="GET"):
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None, resp.headers
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        return e.code, parsed, e.headers


def _token(c):
    return c("token", "issue")["id"]


def test_versions_need_no_token_and_the_api_does(cloud):
    url = cloud["server"].url
    status, body, _ = _http(url + "/")
    assert status == 200 and body["versions"][0]["id"] == "v2.0"
    for path in ("/v2.0/networks", "/v2.0/", "/v1.1/tenants/x/networks"):
        status, _, headers = _http(url + path)
        assert status == 401, path
        assert cloud["keystone"].url.rsplit("/v3", 1)[0] in \
            headers.get("WWW-Authenticate", ""), headers
    status, _, _ = _http(url + "/v2.0/networks", token="not-a-real-token")
    assert status == 401
    # A real token works.
    status, body, _ = _http(url + "/v2.0/networks", token=_token(cloud["alice"]))
    assert status == 200 and "networks" in body


def test_projects_are_isolated(cloud):
    alice, bob = cloud["alice"], cloud["bob"]
    net = alice("network", "create", "alice-net")
    assert net["name"] == "alice-net"
    assert "alice-net" in {n["Name"] for n in alice("network", "list")}
    assert "alice-net" not in {n["Name"] for n in bob("network", "list")}
    res = bob("network", "show", net["id"], check=False)
    assert res.returncode != 0
    res = bob("network", "delete", net["id"], parse=False, check=False)
    assert res.returncode != 0
    assert alice("network", "show", net["id"])["id"] == net["id"]
    bob_net = bob("network", "create", "bob-net")
    # Each network belongs to its creator's Keystone project.
    admin = cloud["admin"]
    projects = {p["Name"]: p["ID"] for p in admin("project", "list")}
    assert net["project_id"] == projects["proj-a"]
    assert bob_net["project_id"] == projects["proj-b"]
    alice("subnet", "create", "--network", "alice-net", "--subnet-range",
          "10.7.0.0/24", "alice-sub")
    port = alice("port", "create", "--network", "alice-net", "alice-port")
    assert "10.7.0.2" in json.dumps(port["fixed_ips"])
    assert "alice-port" not in {p["Name"] for p in bob("port", "list")}
    alice("port", "delete", port["id"], parse=False)
    bob("network", "delete", bob_net["id"], parse=False)


def test_admin_only_attributes(cloud):
    alice, admin = cloud["alice"], cloud["admin"]
    net = alice("network", "create", "attr-net")
    as_admin = admin("network", "show", net["id"])
    assert as_admin["provider:network_type"] == "vxlan"
    assert as_admin["provider:segmentation_id"] is not None
    as_member = alice("network", "show", net["id"])
    assert as_member.get("provider:network_type") is None
    # On the wire: the member's answer does not carry them at all.
    url = cloud["server"].url + f"/v2.0/networks/{net['id']}"
    status, body, _ = _http(url, token=_token(alice))
    assert status == 200 and "provider:network_type" not in body["network"]
    status, body, _ = _http(url, token=_token(admin))
    assert status == 200 and body["network"]["provider:network_type"] == "vxlan"
    # A member cannot set them.
    res = alice("network", "create", "--provider-network-type", "vxlan", "nope",
                check=False)
    assert res.returncode != 0
    assert "nope" not in {n["Name"] for n in admin("network", "list")}
    # The admin sees every project's networks.
    assert "attr-net" in {n["Name"] for n in admin("network", "list")}


def test_quotas_and_security_groups_through_the_cli(cloud):
    admin, alice, bob = cloud["admin"], cloud["alice"], cloud["bob"]
    admin("quota", "set", "--networks", "1", "proj-b", parse=False)
    shown = admin("quota", "show", "--network", "proj-b")
    flat = json.dumps(shown)
    assert '"networks"' in flat or '"network"' in flat, shown
    bob("network", "create", "bob-only")
    res = bob("network", "create", "bob-too-many", check=False)
    assert res.returncode != 0 and "Quota exceeded" in res.stderr, res.stderr
    # Security groups: each project has its own default group.
    mine = alice("security", "group", "list")
    theirs = bob("security", "group", "list")
    assert [g["Name"] for g in mine] == ["default"] == [g["Name"] for g in theirs]
    assert mine[0]["ID"] != theirs[0]["ID"]
    web = alice("security", "group", "create", "web")
    alice("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port",
          "22:22", "--remote-ip", "10.0.0.0/8", "web")
    res = alice("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port",
                "22:22", "--remote-ip", "10.0.0.0/8", "web", check=False)
    assert res.returncode != 0 and "already exists" in res.stderr
    res = bob("security", "group", "show", web["id"], check=False)
    assert res.returncode != 0
    res = bob("security", "group", "delete", web["id"], parse=False, check=False)
    assert res.returncode != 0
    alice("security", "group", "delete", "web", parse=False)


def test_keystone_without_www_authenticate_uri_refuses_to_start(tmp_path):
    """Without it keystonemiddleware would look the URL up at the first
    unauthenticated request and answer 500; the server says so at start."""
    from quantum_ovs.service import build
    from tests.functional.conftest import make_conf

    conf = make_conf(f"sqlite:///{tmp_path}/k.sqlite", auth_strategy="keystone")
    conf.clear_override("www_authenticate_uri", group="keystone_authtoken")
    with pytest.raises(RuntimeError, match="www_authenticate_uri"):
        build(conf)
    conf.set_override("www_authenticate_uri", "http://127.0.0.1:9/v3",
                      group="keystone_authtoken")
    db, _plugin, app = build(conf)
    db.dispose()
    assert callable(app)


def _system_token(ks):
    """A token of the bootstrap administrator scoped to the system (no
    project): what keystonemiddleware passes on without X-Project-Id."""
    body = json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ks.admin_password}}},
        "scope": {"system": {"all": True}}}}).encode()
    req = urllib.request.Request(ks.url.rstrip("/") + "/auth/tokens", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert "project" not in json.loads(resp.read())["token"]
        return resp.headers["X-Subject-Token"]


def test_a_system_scoped_admin_writes_default_rules(cloud):
    # Default security group rules belong to no project: an administrator
    # whose token has none makes and deletes them, as in Neutron.
    url = cloud["server"].url + "/v2.0/default-security-group-rules"
    token = _system_token(cloud["keystone"])
    req = urllib.request.Request(url, method="POST", headers={
        "X-Auth-Token": token, "Content-Type": "application/json"}, data=json.dumps(
            {"default_security_group_rule": {"direction": "ingress", "protocol": "tcp",
                                             "port_range_min": 2222,
                                             "port_range_max": 2222}}).encode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        rule = json.loads(resp.read())["default_security_group_rule"]
    assert "project_id" not in rule and "tenant_id" not in rule
    status, body, _ = _http(f"{url}/{rule['id']}", token=_token(cloud["alice"]))
    assert status == 200 and body["default_security_group_rule"]["port_range_min"] == 2222
    status, _, _ = _http(f"{url}/{rule['id']}", token=token, method="DELETE")
    assert status == 204


def test_healthcheck_needs_no_token_and_is_detailed_for_admins(cloud):
    # A load balancer probes without a token: the simple answer comes
    # before keystonemiddleware; with a token the detailed one is an
    # administrator's only (the database included).
    url = cloud["server"].url + "/healthcheck"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {"detailed": False, "reasons": []}
    status, body, _ = _http(url, token=_token(cloud["alice"]))
    assert status == 403 and body["NeutronError"]["type"] == "HTTPForbidden"
    status, body, _ = _http(url, token="not-a-token")
    assert status == 401
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "X-Auth-Token": _token(cloud["admin"])})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert body["detailed"] is True
    assert any(r["reason"] == "database OK" for r in body["reasons"])
