"""Routers as Neutron's l3_db.py has them (review of session 26): a
subnet that takes its advertisements from an outside router is no
interface; a new gateway address keeps the gateway port; a gateway port
given addresses gets its automatic ones; a port with an owner and no
device is attached.  Each test failed before its fix."""

import pytest

from tests.functional.test_routers import ADMIN, R, _add, _external, _router


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _ports_of(api, rid):
    return api.get(f"/v2.0/ports?device_id={rid}", status=200, **ADMIN).data["ports"]


def test_ipv6_subnet_with_address_mode_but_no_ra_mode_is_refused(l3):
    """Neutron's _validate_subnet_address_mode (add by subnet and by port):
    an IPv6 subnet with ipv6_address_mode set and ipv6_ra_mode None gets
    its RAs from an external router and cannot be a router interface (400)."""
    r = _router(l3)
    net = l3.network()
    sub = l3.subnet(net["id"], cidr="2001:db8:1::/64", ipv6_address_mode="slaac")
    e = _add(l3, r["id"], 400, subnet_id=sub["id"])
    assert "receive RAs from an external router" in e["message"]
    assert _ports_of(l3, r["id"]) == []


def test_changing_external_fixed_ips_keeps_the_gateway_port(l3):
    """Neutron's _update_current_gw_port updates the fixed_ips of the
    existing gateway port (same id, same MAC) when only the addresses on
    the same external network change; here the port is replaced."""
    ext, ext_sub = _external(l3)
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                status=201, **ADMIN).data["router"]
    [before] = _ports_of(l3, r["id"])
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"],
        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "172.24.4.50"}]}}},
        status=200, **ADMIN)
    [after] = _ports_of(l3, r["id"])
    assert after["fixed_ips"] == [{"subnet_id": ext_sub["id"], "ip_address": "172.24.4.50"}]
    assert (after["id"], after["mac_address"]) == (before["id"], before["mac_address"])


def test_gateway_with_explicit_v4_fixed_ip_also_gets_its_slaac_address(l3):
    """Neutron creates the gateway port through the core plugin, whose IPAM
    (_allocate_ips_for_port / _get_auto_address_ips) adds the SLAAC and
    DHCPv6-stateless subnets to any port but a router interface, even
    when fixed_ips are given; an ordinary port here does so too."""
    ext, ext_sub = _external(l3)
    v6 = l3.subnet(ext["id"], cidr="2001:db8:ff::/64", ipv6_ra_mode="slaac",
                   ipv6_address_mode="slaac", **ADMIN)
    r = l3.post(R, {"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"subnet_id": ext_sub["id"]}]}}},
        status=201, **ADMIN).data["router"]
    subs = {x["subnet_id"] for x in r["external_gateway_info"]["external_fixed_ips"]}
    assert subs == {ext_sub["id"], v6["id"]}


def test_interface_by_port_with_device_owner_but_no_device_id(l3):
    """Neutron's _check_router_port(context, port_id, '') only compares the
    port's device_id: a port with a device_owner but no device_id (e.g.
    pre-created as network:router_interface by an orchestrator) can be
    attached; here it is 409 PortInUse."""
    r = _router(l3)
    net = l3.network()
    sub = l3.subnet(net["id"], cidr="10.0.0.0/24")
    p = l3.port(net["id"], device_owner="network:router_interface",
                fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}])
    info = _add(l3, r["id"], port_id=p["id"])
    assert info["port_id"] == p["id"]
