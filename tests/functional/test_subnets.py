"""Subnets: IPAM defaults, validation, in-use rules."""

import pytest


def test_default_gateway_and_pool(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.1.0.0/24", dns_nameservers=["8.8.8.8"],
                     host_routes=[{"destination": "10.9.0.0/16", "nexthop": "10.1.0.254"}])
    assert sub["gateway_ip"] == "10.1.0.1"
    assert sub["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert sub["enable_dhcp"] is True and sub["ip_version"] == 4
    assert sub["dns_nameservers"] == ["8.8.8.8"]
    assert sub["host_routes"] == [{"destination": "10.9.0.0/16", "nexthop": "10.1.0.254"}]
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["subnets"] == \
        [sub["id"]]


def test_gateway_inside_pool_range_is_excluded(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.2.0.0/24", gateway_ip="10.2.0.100")
    assert sub["allocation_pools"] == [{"start": "10.2.0.1", "end": "10.2.0.99"},
                                       {"start": "10.2.0.101", "end": "10.2.0.254"}]


def test_null_gateway(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.3.0.0/29", gateway_ip=None)
    assert sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.3.0.1", "end": "10.3.0.6"}]


def test_ipv6_subnet(api):
    net = api.network()
    sub = api.subnet(net["id"], "2001:db8::/64")
    assert sub["gateway_ip"] == "2001:db8::1"
    assert sub["allocation_pools"][0]["start"] == "2001:db8::2"
    slaac = api.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:11:22:33")
    ips = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert ips[slaac["id"]] == "2001:db8:1:0:f816:3eff:fe11:2233"
    assert ips[sub["id"]] == "2001:db8::2"


@pytest.mark.parametrize("attrs, err_type", [
    ({"cidr": "10.0.0.5/24"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/33"}, "InvalidInput"),
    ({"cidr": "not-a-cidr"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "ip_version": 6}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "ip_version": 5}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.1.1"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.255"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10",
                                                   "end": "10.0.1.10"}]},
     "OutOfBoundsAllocationPool"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.20",
                                                   "end": "10.0.0.10"}]},
     "InvalidAllocationPool"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [
        {"start": "10.0.0.10", "end": "10.0.0.20"},
        {"start": "10.0.0.15", "end": "10.0.0.30"}]}, "OverlappingAllocationPools"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.1",
                                                   "end": "10.0.0.20"}]},
     "GatewayConflictWithAllocationPools"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.2"}]}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "dns_nameservers": ["dns.example"]}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "host_routes": [{"destination": "10.1.0.0/16"}]},
     "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "ipv6_ra_mode": "slaac"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "enable_dhcp": "sometimes"}, "InvalidInput"),
])
def test_invalid_subnets_are_400(api, attrs, err_type):
    net = api.network()
    body = dict({"network_id": net["id"], "ip_version": 4}, **attrs)
    r = api.post("/v2.0/subnets", {"subnet": body}, status=400)
    assert r.data["NeutronError"]["type"] == err_type, r.data
    assert api.count("subnets") == 0


def test_missing_required_attribute(api):
    net = api.network()
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"]}}, status=400)
    assert "Required attribute 'cidr'" in r.data["NeutronError"]["message"]


def test_subnet_on_unknown_network_is_404(api):
    r = api.post("/v2.0/subnets", {"subnet": {
        "network_id": "7d1c3fb8-8d2b-4c35-9a2b-1a1a1a1a1a1a", "cidr": "10.0.0.0/24",
        "ip_version": 4}}, status=404)
    assert r.data["NeutronError"]["type"] == "NetworkNotFound"


def test_overlapping_subnets_in_one_network_rejected(api):
    net = api.network()
    api.subnet(net["id"], "10.0.0.0/16")
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"],
                                              "cidr": "10.0.5.0/24", "ip_version": 4}},
                 status=400)
    assert "overlaps" in r.data["NeutronError"]["message"]
    other = api.network()
    api.subnet(other["id"], "10.0.5.0/24")  # allow_overlapping_ips across networks


def test_overlap_across_networks_when_disallowed(make_api):
    api = make_api(allow_overlapping_ips=False)
    a, b = api.network(), api.network()
    api.subnet(a["id"], "10.0.0.0/24")
    api.post("/v2.0/subnets", {"subnet": {"network_id": b["id"], "cidr": "10.0.0.128/25",
                                          "ip_version": 4}}, status=400)


def test_update_subnet(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.4.0.0/24")
    upd = api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {
        "name": "s", "dns_nameservers": ["1.1.1.1", "9.9.9.9"], "enable_dhcp": False,
        "allocation_pools": [{"start": "10.4.0.10", "end": "10.4.0.20"}]}},
        status=200).data["subnet"]
    assert upd["dns_nameservers"] == ["1.1.1.1", "9.9.9.9"]
    assert upd["allocation_pools"] == [{"start": "10.4.0.10", "end": "10.4.0.20"}]
    assert upd["revision_number"] > sub["revision_number"]
    port = api.port(net["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.4.0.10"
    for body in ({"cidr": "10.5.0.0/24"}, {"network_id": net["id"]}, {"ip_version": 6},
                 {"gateway_ip": "10.4.0.15"}):
        api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": body}, status=400)


def test_subnet_in_use(api):
    net = api.network()
    sub = api.subnet(net["id"])
    port = api.port(net["id"])
    r = api.delete(f"/v2.0/subnets/{sub['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SubnetInUse"
    api.delete(f"/v2.0/ports/{port['id']}", status=204)
    api.delete(f"/v2.0/subnets/{sub['id']}", status=204)
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["subnets"] == []
