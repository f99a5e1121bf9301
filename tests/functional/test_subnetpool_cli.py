"""The real openstack CLI's address scope, subnet pool, subnet from a
pool and IP availability commands against a quantum-ovs-server (SQLite)."""

import ipaddress

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_openstack_cli import OpenStack


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-pools")
    # IP availability is the administrators' and the CLI here is a member:
    # the operator's override lets members read it.
    (d / "policy.yaml").write_text('"get_network_ip_availability": "role:member"\n')
    srv = ServerProcess(f"sqlite:///{d}/qovs.sqlite",
                        extra_conf=f"[oslo_policy]\npolicy_file = {d}/policy.yaml\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_scope_pool_subnet_and_ip_availability(cli_server):
    os_ = OpenStack(cli_server.url)
    scope = os_("address", "scope", "create", "--ip-version", "4", "cli-scope")
    assert (scope["name"], scope["ip_version"], scope["shared"]) == ("cli-scope", 4, False)
    pool = os_("subnet", "pool", "create", "--pool-prefix", "10.90.0.0/16",
               "--default-prefix-length", "24", "--address-scope", "cli-scope", "cli-pool")
    assert pool["prefixes"] == ["10.90.0.0/16"]
    assert pool["address_scope_id"] == scope["id"]
    assert pool["default_prefixlen"] == 24

    net = os_("network", "create", "cli-pool-net")
    sub = os_("subnet", "create", "--network", net["id"], "--subnet-pool", "cli-pool",
              "--prefix-length", "26", "cli-pool-sub")
    assert sub["subnetpool_id"] == pool["id"]
    assert ipaddress.ip_network(sub["cidr"]) == ipaddress.ip_network("10.90.0.0/26")
    default = os_("subnet", "create", "--network", net["id"], "--subnet-pool", "cli-pool",
                  "cli-pool-sub2")
    assert default["cidr"].endswith("/24")

    port = os_("port", "create", "--network", net["id"], "cli-pool-port")
    listed = os_("ip", "availability", "list")
    mine = [x for x in listed if x["Network ID"] == net["id"]]
    assert len(mine) == 1
    shown = os_("ip", "availability", "show", net["id"])
    assert shown["used_ips"] == 1
    assert shown["total_ips"] == 61 + 253

    os_("port", "delete", port["id"], parse=False)
    os_("network", "delete", net["id"], parse=False)  # (and its subnets)
    os_("subnet", "pool", "delete", "cli-pool", parse=False)
    os_("address", "scope", "delete", "cli-scope", parse=False)
    assert os_("address", "scope", "list") == []
