"""Subnet service types (subnet-service-types), on SQLite and PostgreSQL:
a port's addresses come from the subnets whose service types name its
device owner, then from those without any; never from a subnet that
serves other owners, on every path (one port, a bulk, explicit fixed IPs,
router gateways and interfaces, floating IPs)."""

import ipaddress

ADMIN = dict(project="admin-p", admin=True)


def _error(resp):
    return resp.data["NeutronError"]["type"]


def _in(port, cidr):
    return [ipaddress.ip_address(x["ip_address"]) in ipaddress.ip_network(cidr)
            for x in port["fixed_ips"]]


def test_ports_take_addresses_from_the_subnets_of_their_owner(api):
    net = api.network()
    one = api.subnet(net["id"], cidr="192.168.1.0/24",
                     service_types=["test:type_1", "network:distributed"])
    assert one["service_types"] == ["network:distributed", "test:type_1"]
    api.subnet(net["id"], cidr="192.168.2.0/24", service_types=["test:type_2"])
    assert _in(api.port(net["id"], device_owner="test:type_1"), "192.168.1.0/24") == [True]
    assert _in(api.port(net["id"], device_owner="test:type_2"), "192.168.2.0/24") == [True]
    # every subnet serves other owners: none for a plain port
    before = api.count("ports")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409)
    assert _error(r) == "IpAddressGenerationFailureNoMatchingSubnet"
    assert api.count("ports") == before
    # a subnet without service types serves the others; a typed owner
    # still prefers its own
    api.subnet(net["id"], cidr="192.168.3.0/24")
    assert _in(api.port(net["id"]), "192.168.3.0/24") == [True]
    assert _in(api.port(net["id"], device_owner="compute:nova"), "192.168.3.0/24") == [True]
    assert _in(api.port(net["id"], device_owner="test:type_1"), "192.168.1.0/24") == [True]


def test_asked_for_addresses_must_be_on_a_subnet_of_the_owner(api):
    net = api.network()
    typed = api.subnet(net["id"], cidr="192.168.1.0/24", service_types=["test:a"])
    api.subnet(net["id"], cidr="192.168.3.0/24")
    before = api.count("ports")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "fixed_ips": [{"subnet_id": typed["id"]}]}},
                 status=400)
    assert "fixed_ips included invalid subnet" in r.data["NeutronError"]["message"]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "fixed_ips": [{"ip_address": "192.168.1.50"}]}},
                 status=400)
    assert _error(r) == "InvalidIpForNetwork"
    assert api.count("ports") == before
    port = api.port(net["id"], device_owner="test:a",
                    fixed_ips=[{"ip_address": "192.168.1.50"}])
    assert port["fixed_ips"][0]["ip_address"] == "192.168.1.50"
    # ... and on an update of the port's addresses
    plain = api.port(net["id"])
    r = api.put(f"/v2.0/ports/{plain['id']}", {"port": {
        "fixed_ips": [{"subnet_id": typed["id"]}]}}, status=400)
    assert "fixed_ips included invalid subnet" in r.data["NeutronError"]["message"]


def test_a_bulk_of_mixed_owners(api):
    net = api.network()
    # (the plain subnet made first: a typed owner's subnet comes first anyway)
    api.subnet(net["id"], cidr="192.168.2.0/24")
    api.subnet(net["id"], cidr="192.168.1.0/24", service_types=["test:a"])
    owners = ["test:a", "", "", "test:a", "compute:nova", "test:a"]
    ports = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"], "device_owner": o} for o in owners]},
        status=201).data["ports"]
    assert [_in(p, "192.168.1.0/24") for p in ports] == \
        [[o == "test:a"] for o in owners]
    assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == len(owners)


def test_service_types_are_set_replaced_and_cleared(api):
    net = api.network()
    sub = api.subnet(net["id"], cidr="192.168.1.0/24")
    assert sub["service_types"] == []
    url = f"/v2.0/subnets/{sub['id']}"
    one = api.put(url, {"subnet": {"service_types": ["compute:", "network:foo"]}},
                  status=200).data["subnet"]
    assert one["service_types"] == ["compute:", "network:foo"]
    assert one["revision_number"] > sub["revision_number"]
    two = api.put(url, {"subnet": {"service_types": ["network:foo", "network:bar"]}},
                  status=200).data["subnet"]
    assert two["service_types"] == ["network:bar", "network:foo"]
    for bad in (["nocolon"], [":x"], ["a b:c"], [1], "network:foo", ["x:" + "y" * 254],
                ["network:a", "network:a"]):
        r = api.put(url, {"subnet": {"service_types": bad}}, status=400)
        assert _error(r) == "InvalidInput", (bad, r.data)
    assert api.get(url).data["subnet"]["service_types"] == ["network:bar", "network:foo"]
    three = api.put(url, {"subnet": {"service_types": []}}, status=200).data["subnet"]
    assert three["service_types"] == [] and \
        three["revision_number"] > two["revision_number"]
    api.get("/v2.0/subnets?service_types=network:foo", status=400)


def test_external_subnets_for_gateways_and_floating_ips(make_api):
    api = make_api(service_plugins=["router"])
    ext = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    api.subnet(ext["id"], cidr="203.0.113.0/24", service_types=["network:floatingip"],
               **ADMIN)
    api.subnet(ext["id"], cidr="198.51.100.0/24",
               service_types=["network:router_gateway"], **ADMIN)
    net = api.network()
    sub = api.subnet(net["id"], cidr="10.0.0.0/24")
    router = api.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=201).data["router"]
    [gw] = router["external_gateway_info"]["external_fixed_ips"]
    assert ipaddress.ip_address(gw["ip_address"]) in ipaddress.ip_network("198.51.100.0/24")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
            status=200)
    fip = api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}},
                   status=201).data["floatingip"]
    assert ipaddress.ip_address(fip["floating_ip_address"]) in \
        ipaddress.ip_network("203.0.113.0/24")
    # an interface on a subnet that serves other owners: refused, nothing made
    other = api.network()
    typed = api.subnet(other["id"], cidr="10.1.0.0/24", service_types=["compute:nova"])
    before = api.count("ports")
    r = api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                {"subnet_id": typed["id"]}, status=409)
    assert _error(r) == "IpAddressGenerationFailureNoMatchingSubnet"
    assert api.count("ports") == before
    api.put(f"/v2.0/subnets/{typed['id']}", {"subnet": {
        "service_types": ["compute:nova", "network:router_interface"]}}, status=200)
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
            {"subnet_id": typed["id"]}, status=200)


def test_a_dhcp_port_takes_an_address_on_any_subnet_with_dhcp(api):
    net = api.network()
    api.subnet(net["id"], cidr="192.168.1.0/24", service_types=["test:a"])
    port = api.port(net["id"], device_owner="network:dhcp", admin=True)
    assert _in(port, "192.168.1.0/24") == [True]
    off = api.network()
    api.subnet(off["id"], cidr="192.168.2.0/24", service_types=["test:a"], enable_dhcp=False)
    r = api.post("/v2.0/ports", {"port": {"network_id": off["id"],
                                          "device_owner": "network:dhcp"}},
                 admin=True, status=409)
    assert _error(r) == "IpAddressGenerationFailureNoMatchingSubnet"
