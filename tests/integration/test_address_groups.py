"""Address groups on the real data plane: a rule naming a group lets
exactly its addresses through, and an address removed through the API is
cut at once (the time it took is printed: ``-s`` shows it)."""

import time

import pytest

from tests.integration.test_agent import Api, make_agent, vm  # noqa: F401 (fixtures)
from tests.integration.test_agent import api, server  # noqa: F401
from tests.integration.test_security_groups import eventually, group


@pytest.fixture
def agent(ovs, server, tmp_path):  # noqa: F811
    a = make_agent(ovs, server, tmp_path)
    yield a
    a.stop()


def test_rule_naming_an_address_group(ovs, api, agent):  # noqa: F811
    net, _ = api.network("10.22.0.0/24")
    cli_g, _ = group(api, "clients", [])
    srv_g, _ = group(api, "servers", [])
    p_srv, srv = vm(ovs, api, net, security_groups=[srv_g])
    p_a, a = vm(ovs, api, net, security_groups=[cli_g])
    p_b, b = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_srv, p_a, p_b):
        assert api.wait_status(p["id"], "ACTIVE")
    # a's address, and a prefix holding neither a nor b
    ag = api("POST", "/v2.0/address-groups", {"address_group": {
        "name": "admins", "addresses": [f"{a.ip}/32", "10.22.0.240/29"]}})["address_group"]
    api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": srv_g, "direction": "ingress", "ethertype": "IPv4",
        "protocol": "icmp", "remote_address_group_id": ag["id"]}})
    assert eventually(lambda: a.ping(srv.ip))
    assert not b.ping(srv.ip, count=2)
    # b's address added: b passes too
    api("PUT", f"/v2.0/address-groups/{ag['id']}/add_addresses",
        {"addresses": [f"{b.ip}/32"]})
    assert eventually(lambda: b.ping(srv.ip, wait=0.5))
    assert a.ping(srv.ip)
    # a's address removed: a is cut, b still passes
    started = time.monotonic()
    api("PUT", f"/v2.0/address-groups/{ag['id']}/remove_addresses",
        {"addresses": [a.ip]})
    answered = time.monotonic()
    cut = None
    deadline = started + 10
    while time.monotonic() < deadline:
        if not a.ping(srv.ip, wait=0.2):
            cut = time.monotonic()
            break
    assert cut is not None, "a's pings still pass 10 s after its address was removed"
    print(f"\naddress removed -> cut: {cut - started:.3f} s after the request "
          f"({cut - answered:.3f} s after the API answered)")
    assert not a.ping(srv.ip, count=2, wait=0.5)
    assert b.ping(srv.ip)
