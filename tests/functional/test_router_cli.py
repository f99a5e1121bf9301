"""The real openstack CLI's router commands against a quantum-ovs-server
with the L3 service plugin (``service_plugins = router``), on SQLite."""


import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_openstack_cli import OpenStack


@pytest.fixture(scope="module")
def l3_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-l3")
    srv = ServerProcess(f"sqlite:///{d}/qovs.sqlite", extra_conf="service_plugins = router")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_router_create_add_subnet_routes_remove_delete(l3_server):
    os_ = OpenStack(l3_server.url)
    router = os_("router", "create", "cli-router")
    assert router["name"] == "cli-router"
    assert router["status"] == "ACTIVE"
    assert router["admin_state_up"] is True
    net = os_("network", "create", "cli-l3-net")
    sub = os_("subnet", "create", "--network", net["id"], "--subnet-range", "10.88.0.0/24",
              "cli-l3-sub")

    os_("router", "add", "subnet", "cli-router", sub["id"], parse=False)
    ports = os_("port", "list", "--router", router["id"])
    assert len(ports) == 1
    port = os_("port", "show", ports[0]["ID"])
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == router["id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.88.0.1"}]
    # (the port is the router's: the ports API cannot delete it)
    res = os_.run("port", "delete", port["id"])
    assert res.returncode != 0

    os_("router", "set", "--route", "destination=192.168.50.0/24,gateway=10.88.0.50",
        "cli-router", parse=False)
    shown = os_("router", "show", "cli-router")
    assert shown["routes"] == [{"destination": "192.168.50.0/24", "nexthop": "10.88.0.50"}]
    # extraroute-atomic through the CLI
    os_("router", "add", "route", "--route", "destination=192.168.51.0/24,gateway=10.88.0.51",
        "cli-router", parse=False)
    assert len(os_("router", "show", "cli-router")["routes"]) == 2
    os_("router", "remove", "route", "--route",
        "destination=192.168.51.0/24,gateway=10.88.0.51", "cli-router", parse=False)
    os_("router", "unset", "--route", "destination=192.168.50.0/24,gateway=10.88.0.50",
        "cli-router", parse=False)
    assert os_("router", "show", "cli-router")["routes"] == []
    # a next hop on no connected subnet is refused
    res = os_.run("router", "set", "--route", "destination=192.168.52.0/24,gateway=10.99.0.1",
                  "cli-router")
    assert res.returncode != 0 and "nexthop" in (res.stderr + res.stdout)

    os_("router", "set", "--name", "cli-router-2", "--disable", "cli-router", parse=False)
    shown = os_("router", "show", "cli-router-2")
    assert shown["admin_state_up"] is False
    assert [r["Name"] for r in os_("router", "list")] == ["cli-router-2"]

    os_("router", "remove", "subnet", "cli-router-2", sub["id"], parse=False)
    assert os_("port", "list", "--router", router["id"]) == []
    os_("router", "delete", "cli-router-2", parse=False)
    assert os_("router", "list") == []
    os_("subnet", "delete", sub["id"], parse=False)
    os_("network", "delete", net["id"], parse=False)
