"""The real openstack CLI's floating IP and router gateway commands
against a quantum-ovs-server with the L3 service plugin, on SQLite:
``router set --external-gateway``, ``floating ip create / set --port /
unset --port / delete`` and ``floating ip port forwarding``."""

import json
import urllib.request

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_openstack_cli import OpenStack


@pytest.fixture(scope="module")
def l3_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-fip")
    srv = ServerProcess(f"sqlite:///{d}/qovs.sqlite", extra_conf="service_plugins = router")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _admin_post(url, path, body):
    """As an administrator (the CLI here is a member of the default project)."""
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-Roles": "admin", "X-Project-Id": "admin"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_floating_ip_life_cycle_through_the_cli(l3_server):
    os_ = OpenStack(l3_server.url)
    ext = _admin_post(l3_server.url, "/v2.0/networks", {"network": {
        "name": "public", "router:external": True}})["network"]
    _admin_post(l3_server.url, "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
        "name": "public-sub"}})
    net = os_("network", "create", "cli-fip-net")
    sub = os_("subnet", "create", "--network", net["id"], "--subnet-range", "10.66.0.0/24",
              "cli-fip-sub")
    router = os_("router", "create", "cli-fip-router")
    os_("router", "set", "--external-gateway", "public", "cli-fip-router", parse=False)
    gw = os_("router", "show", "cli-fip-router")["external_gateway_info"]
    assert gw["network_id"] == ext["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("203.0.113.")
    os_("router", "add", "subnet", "cli-fip-router", sub["id"], parse=False)
    port = os_("port", "create", "--network", net["id"], "cli-fip-port")

    fip = os_("floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("203.0.113.")
    assert fip["port_id"] is None and fip["status"] == "DOWN"
    os_("floating", "ip", "set", "--port", port["id"], fip["id"], parse=False)
    shown = os_("floating", "ip", "show", fip["id"])
    assert shown["port_id"] == port["id"] and shown["router_id"] == router["id"]
    assert shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    listed = os_("floating", "ip", "list", "--port", port["id"])
    assert [x["ID"] for x in listed] == [fip["id"]]
    # The interface the floating IP needs cannot be removed.
    res = os_.run("router", "remove", "subnet", "cli-fip-router", sub["id"])
    assert res.returncode != 0 and "floating" in (res.stderr + res.stdout).lower()
    os_("floating", "ip", "unset", "--port", fip["id"], parse=False)
    shown = os_("floating", "ip", "show", fip["id"])
    assert shown["port_id"] is None and shown["router_id"] is None

    # Port forwarding on another floating IP.
    pf_fip = os_("floating", "ip", "create", "public")
    pf = os_("floating", "ip", "port", "forwarding", "create", "--internal-ip-address",
             port["fixed_ips"][0]["ip_address"], "--port", port["id"],
             "--internal-protocol-port", "22", "--external-protocol-port", "2222",
             "--protocol", "tcp", pf_fip["id"])
    assert (pf["internal_port"], pf["external_port"], pf["protocol"]) == (22, 2222, "tcp")
    assert len(os_("floating", "ip", "port", "forwarding", "list", pf_fip["id"])) == 1
    os_("floating", "ip", "port", "forwarding", "delete", pf_fip["id"], pf["id"],
        parse=False)
    assert os_("floating", "ip", "port", "forwarding", "list", pf_fip["id"]) == []

    os_("floating", "ip", "delete", fip["id"], pf_fip["id"], parse=False)
    assert os_("floating", "ip", "list") == []
    os_("router", "unset", "--external-gateway", "cli-fip-router", parse=False)
    assert os_("router", "show", "cli-fip-router")["external_gateway_info"] is None


def test_get_me_a_network_through_the_cli(tmp_path):
    """openstack network auto allocated topology create [--check-resources]
    / delete, on a server with the default service plugins (router,
    auto_allocate), once an admin set the defaults up."""
    srv = ServerProcess(f"sqlite:///{tmp_path}/qovs.sqlite")
    srv.start()
    try:
        os_ = OpenStack(srv.url)
        ext = _admin_post(srv.url, "/v2.0/networks", {"network": {
            "name": "public", "router:external": True, "is_default": True}})["network"]
        _admin_post(srv.url, "/v2.0/subnets", {"subnet": {
            "network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4}})
        aat = ("network", "auto", "allocated", "topology")
        res = os_.run(*aat, "create", "--check-resources")
        assert res.returncode != 0
        assert "Deployment error: No default subnetpools defined." in res.stderr, res.stderr
        _admin_post(srv.url, "/v2.0/subnetpools", {"subnetpool": {
            "name": "default-v4", "prefixes": ["10.100.0.0/16"], "default_prefixlen": 24,
            "is_default": True, "shared": True}})
        assert os_("network", "show", "public")["is_default"] is True
        # (passes; the CLI shows its dry_run column empty whatever the
        # server says, Neutron's "dry-run=pass" included)
        os_(*aat, "create", "--check-resources")
        topo = os_(*aat, "create", "--project", "default")
        assert os_(*aat, "create", "--project", "default")["id"] == topo["id"]
        net = os_("network", "show", topo["id"])
        assert net["name"] == "auto_allocated_network"
        [sub] = os_("subnet", "list", "--network", topo["id"])
        assert sub["Subnet"] == "10.100.0.0/24"
        [router] = os_("router", "list")
        assert router["Name"] == "auto_allocated_router"
        os_(*aat, "delete", "--project", "default", parse=False)
        assert [n["Name"] for n in os_("network", "list")] == ["public"]
        assert os_("router", "list") == []
    finally:
        srv.stop()
