"""Review s29 (router gateway high availability), the server side: which
hosts a router's gateway gets.

Neutron/OVN schedule a router's gateway only on chassis that can reach
its external network: ovn_client.OVNClient.get_candidates_for_scheduling
keeps the gateway chassis "with proper bridge mappings only (that means
these gateway chassis with the requested physical network)"; the legacy
L3 agent scheduler likewise only picks agents that can serve the external
network.  quantum-ovs already knows what an agent can carry
(db/bindings.can_serve, from the bridge_mappings it reports), but
db/gateways.assign and add_host give every gateway host to every router,
whatever its physnets.  A gateway host that has no bridge to the external
network's physnet is then a router's first (active) gateway host: BFD to
it is up, so every compute host redirects the router's SNAT traffic to
it, and there the gateway flows (rules/gateway.gateway_flows, ext.uplink
false) drop it -- SNAT is black-holed while a host that can reach the
network stands by.
"""

import pytest

from tests.functional.test_agent_api import register
from tests.functional.test_floatingips import ADMIN, R

NT, PN = "provider:network_type", "provider:physical_network"


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _flat_external(api, physnet):
    net = api.post("/v2.0/networks", {"network": {
        "name": "public", "router:external": True, NT: "flat", PN: physnet}},
        status=201, **ADMIN).data["network"]
    api.subnet(net["id"], cidr="172.24.4.0/24", **ADMIN)
    return net


def _hosts(api, router_id):
    return [a["host"] for a in
            api.get(f"{R}/{router_id}/l3-agents", **ADMIN, status=200).data["agents"]]


def test_a_gateway_host_without_the_external_physnet_serves_no_router_gateway(l3):
    # gw-a reaches physnet "public"; gw-b only "other" (a different
    # external network's physnet, or none at all)
    register(l3, "gw-a", "192.0.2.11", gateway=True, bridge_mappings={"public": "br-ex"})
    register(l3, "gw-b", "192.0.2.12", gateway=True, bridge_mappings={"other": "br-other"})
    ext = _flat_external(l3, "public")
    routers = [l3.post(R, {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                       status=201).data["router"] for _ in range(2)]
    for r in routers:
        # (rotation puts gw-b first for one of the two routers today)
        assert _hosts(l3, r["id"]) == ["gw-a"]


def test_a_gateway_host_that_joins_later_without_the_physnet_is_not_appended(l3):
    register(l3, "gw-a", "192.0.2.11", gateway=True, bridge_mappings={"public": "br-ex"})
    ext = _flat_external(l3, "public")
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                status=201).data["router"]
    assert _hosts(l3, r["id"]) == ["gw-a"]
    # drained: gw-a leaves; a host with no path to "public" registers
    gw_a = l3.get("/v2.0/agents?host=gw-a", **ADMIN, status=200).data["agents"][0]
    l3.put(f"/v2.0/agents/{gw_a['id']}", {"agent": {"admin_state_up": False}}, **ADMIN,
           status=200)
    register(l3, "gw-b", "192.0.2.12", gateway=True, bridge_mappings={"other": "br-other"})
    # gw-b cannot put anything on "public": it must not become the
    # router's (only, hence active) gateway host
    assert "gw-b" not in _hosts(l3, r["id"])


def test_a_gateway_host_leaves_the_routers_it_can_no_longer_serve_and_hosts_follow_a_move(l3):
    """(fixer) The same rule when a host registers again with other bridge
    mappings, and when a router's gateway moves to another network."""
    register(l3, "gw-a", "192.0.2.11", gateway=True, bridge_mappings={"public": "br-ex"})
    register(l3, "gw-b", "192.0.2.12", gateway=True,
             bridge_mappings={"public": "br-ex", "other": "br-other"})
    ext = _flat_external(l3, "public")
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                status=201).data["router"]
    assert sorted(_hosts(l3, r["id"])) == ["gw-a", "gw-b"]
    # gw-b's operator takes br-ex away: it registers without "public"
    register(l3, "gw-b", "192.0.2.12", gateway=True, bridge_mappings={"other": "br-other"})
    assert _hosts(l3, r["id"]) == ["gw-a"]
    # the router's gateway moves to a network on "other": gw-b only
    other = l3.post("/v2.0/networks", {"network": {
        "name": "public2", "router:external": True, NT: "flat", PN: "other"}},
        status=201, **ADMIN).data["network"]
    l3.subnet(other["id"], cidr="172.24.5.0/24", **ADMIN)
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": other["id"]}}}, status=200)
    assert _hosts(l3, r["id"]) == ["gw-b"]
    # gw-b gets "public" back: it may serve that network again, and this
    # router still has it (nothing else changes)
    register(l3, "gw-b", "192.0.2.12", gateway=True,
             bridge_mappings={"public": "br-ex", "other": "br-other"})
    assert _hosts(l3, r["id"]) == ["gw-b"]
