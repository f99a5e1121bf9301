"""The real openstack CLI (python-openstackclient) against a running
quantum-ovs-server on SQLite, without Keystone (--os-auth-type none)."""

import ipaddress
import json
import os
import subprocess

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.openstack_cli import openstack_bin


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    srv = ServerProcess(f"sqlite:///{d}/qovs.sqlite")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class OpenStack:
    def __init__(self, endpoint):
        self.argv = [openstack_bin(), "--os-auth-type", "none", "--os-endpoint", endpoint]
        # Nothing from the caller's cloud configuration may leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}

    def run(self, *args):
        """The command's CompletedProcess, whatever its exit status."""
        return subprocess.run(self.argv + list(args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)

    def __call__(self, *args, parse=True):
        argv = self.argv + list(args) + (["-f", "json"] if parse else [])
        res = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=120)
        assert res.returncode == 0, (
            f"{' '.join(args)} exited {res.returncode}:\n{res.stderr}\n{res.stdout}")
        return json.loads(res.stdout) if parse else res.stdout


def test_network_subnet_port_life_cycle(cli_server):
    os_ = OpenStack(cli_server.url)

    net = os_("network", "create", "cli-net-a")
    assert net["name"] == "cli-net-a"
    assert net["status"] == "ACTIVE"
    assert net["admin_state_up"] is True
    other = os_("network", "create", "cli-net-b")
    assert other["id"] != net["id"]

    sub = os_("subnet", "create", "--network", net["id"], "--subnet-range", "10.77.0.0/24",
              "cli-sub-a")
    assert sub["name"] == "cli-sub-a"
    assert sub["cidr"] == "10.77.0.0/24"
    assert sub["network_id"] == net["id"]
    assert sub["gateway_ip"] == "10.77.0.1"

    port = os_("port", "create", "--network", net["id"], "cli-port-a")
    assert port["name"] == "cli-port-a"
    assert port["network_id"] == net["id"]
    assert len(port["fixed_ips"]) == 1
    fixed = port["fixed_ips"][0]
    assert fixed["subnet_id"] == sub["id"]
    assert ipaddress.ip_address(fixed["ip_address"]) in ipaddress.ip_network(sub["cidr"])
    assert fixed["ip_address"] != sub["gateway_ip"]

    os_("network", "set", "--name", "cli-net-renamed", "cli-net-a", parse=False)
    shown = os_("network", "show", net["id"])
    assert shown["name"] == "cli-net-renamed"
    assert shown["subnets"] == [sub["id"]]
    assert shown["revision_number"] > net["revision_number"]

    ports = os_("port", "list", "--network", net["id"])
    assert [(p["ID"], p["Name"], p["MAC Address"]) for p in ports] == \
        [(port["id"], "cli-port-a", port["mac_address"])]
    assert ports[0]["Fixed IP Addresses"] == port["fixed_ips"]

    os_("network", "delete", other["id"], parse=False)
    names = {n["ID"]: n["Name"] for n in os_("network", "list")}
    assert other["id"] not in names
    assert names == {net["id"]: "cli-net-renamed"}

    os_("port", "delete", "cli-port-a", parse=False)
    assert os_("port", "list") == []


def test_security_group_rules(cli_server):
    """Rules through the CLI (remote_address_group_id: None without one)."""
    os_ = OpenStack(cli_server.url)
    sg = os_("security", "group", "create", "cli-sg")
    ipip = os_("security", "group", "rule", "create", "--ingress", "--protocol", "ipip",
               sg["id"])
    assert ipip["protocol"] == "ipip" and ipip["remote_address_group_id"] is None
    ssh = os_("security", "group", "rule", "create", "--ingress", "--protocol", "tcp",
              "--dst-port", "22", "--remote-ip", "10.0.0.0/8", sg["id"])
    assert (ssh["port_range_min"], ssh["port_range_max"]) == (22, 22)
    rules = {r["ID"]: r for r in os_("security", "group", "rule", "list", sg["id"])}
    assert {ipip["id"], ssh["id"]} <= set(rules)
    assert rules[ipip["id"]]["IP Protocol"] == "ipip"
    assert rules[ssh["id"]]["IP Range"] == "10.0.0.0/8"
    assert os_("security", "group", "rule", "show", ssh["id"])["protocol"] == "tcp"
    os_("security", "group", "rule", "delete", ipip["id"], parse=False)
    assert ipip["id"] not in {r["ID"] for r in os_("security", "group", "rule", "list",
                                                    sg["id"])}
    os_("security", "group", "delete", sg["id"], parse=False)


def test_address_group_and_rule_naming_it(cli_server):
    """openstack address group create/set --address/unset --address, and
    security group rule create --remote-address-group."""
    os_ = OpenStack(cli_server.url)
    ag = os_("address", "group", "create", "--address", "10.1.2.3",
             "--address", "10.9.0.0/16", "--description", "admins", "cli-ag")
    assert sorted(ag["addresses"]) == ["10.1.2.3/32", "10.9.0.0/16"]
    os_("address", "group", "set", "--address", "2001:db8::1", "--name", "cli-ag2", ag["id"],
        parse=False)
    os_("address", "group", "unset", "--address", "10.9.0.0/16", ag["id"], parse=False)
    shown = os_("address", "group", "show", ag["id"])
    assert shown["name"] == "cli-ag2"
    assert sorted(shown["addresses"]) == ["10.1.2.3/32", "2001:db8::1/128"]
    assert ag["id"] in {x["ID"] for x in os_("address", "group", "list")}
    sg = os_("security", "group", "create", "cli-ag-sg")
    rule = os_("security", "group", "rule", "create", "--ingress", "--protocol", "tcp",
               "--dst-port", "22", "--remote-address-group", "cli-ag2", sg["id"])
    assert rule["remote_address_group_id"] == ag["id"]
    assert os_("security", "group", "rule", "show", rule["id"])[
        "remote_address_group_id"] == ag["id"]
    os_("security", "group", "rule", "delete", rule["id"], parse=False)
    os_("address", "group", "delete", ag["id"], parse=False)
    assert ag["id"] not in {x["ID"] for x in os_("address", "group", "list")}


def test_default_security_group_rules(cli_server):
    """openstack default security group rule list/show (the CLI is a
    member: create is an administrator's, 403), and a group the CLI makes
    gets the template an administrator added (security-groups-default-rules)."""
    import json
    import urllib.request

    def admin(method, path, body=None):
        req = urllib.request.Request(
            cli_server.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Roles": "admin",
                     "X-Project-Id": "admin"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    os_ = OpenStack(cli_server.url)
    denied = os_.run("default", "security", "group", "rule", "create", "--protocol", "tcp",
                     "--dst-port", "2222")
    assert denied.returncode != 0 and "403" in denied.stderr
    t = admin("POST", "/v2.0/default-security-group-rules", {"default_security_group_rule": {
        "direction": "ingress", "protocol": "tcp", "port_range_min": 2222,
        "port_range_max": 2222, "used_in_non_default_sg": True,
        "description": "cli ssh"}})["default_security_group_rule"]
    try:
        listed = {x["ID"] for x in os_("default", "security", "group", "rule", "list")}
        assert t["id"] in listed and len(listed) == 5  # the legacy four and this one
        shown = os_("default", "security", "group", "rule", "show", t["id"])
        assert (shown["id"], shown["description"]) == (t["id"], "cli ssh")
        sg = os_("security", "group", "create", "cli-from-templates")
        rules = os_("security", "group", "rule", "list", sg["id"])
        assert any(r["Port Range"] == "2222:2222" for r in rules), rules
    finally:
        admin("DELETE", f"/v2.0/default-security-group-rules/{t['id']}")
    assert t["id"] not in {x["ID"] for x in os_("default", "security", "group", "rule", "list")}
