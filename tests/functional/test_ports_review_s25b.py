"""Review of 72a289d: regressions found (each test failed on that
commit): a /31's second address, a distributed router's SNAT port and
SLAAC addresses."""


def _err(r):
    return r.data["NeutronError"]["type"]


def test_slash31_second_address_may_be_given(api):
    """Neutron's check_subnet_ip uses netaddr, whose /31 has no broadcast
    address (IPNetwork('10.0.0.0/31').broadcast is None): 10.0.0.1 is a
    valid fixed IP there (RFC 3021 point-to-point).  Before 72a289d
    take_specific only refused network/broadcast for prefixlen <= 30."""
    net = api.network()
    sub = api.subnet(net["id"], "10.0.0.0/31", enable_dhcp=False, gateway_ip=None)
    port = api.port(net["id"], fixed_ips=[{"subnet_id": sub["id"],
                                           "ip_address": "10.0.0.1"}])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]


def test_slash31_second_address_by_ip_alone(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.0.0.0/31", enable_dhcp=False, gateway_ip=None)
    port = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.1"}])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]


def test_a_dvr_snat_port_gets_no_automatic_address(api):
    """Neutron's _get_auto_address_ips skips ROUTER_INTERFACE_OWNERS_SNAT
    (router_interface*, ha replicated and router_centralized_snat): a
    SNAT port created with fixed_ips gets no SLAAC address."""
    net = api.network()
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    api.subnet(net["id"], "2001:db8:9::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = api.port(net["id"], admin=True, device_owner="network:router_centralized_snat",
                    fixed_ips=[{"subnet_id": v4["id"]}])
    assert [x["subnet_id"] for x in port["fixed_ips"]] == [v4["id"]]


def test_a_dvr_snat_port_update_drops_the_unnamed_slaac_address(api):
    """Neutron's _is_ip_required_by_subnet: for ROUTER_INTERFACE_OWNERS_SNAT
    an address not named by the update is removed, SLAAC too."""
    net = api.network()
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    slaac = api.subnet(net["id"], "2001:db8:9::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    port = api.port(net["id"], admin=True, device_owner="network:router_centralized_snat",
                    fixed_ips=[{"subnet_id": v4["id"]}, {"subnet_id": slaac["id"]}])
    assert len(port["fixed_ips"]) == 2
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": v4["id"]}]}}, admin=True, status=200).data["port"]
    assert [x["subnet_id"] for x in upd["fixed_ips"]] == [v4["id"]]

