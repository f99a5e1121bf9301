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


def test_a_gateway_outside_the_cidr_is_on_link(make_api):
    """Neutron's check_gateway_invalid_in_subnet: a gateway outside the
    subnet is accepted (on create and update), the pools are the whole
    subnet; a router cannot take it as an interface address."""
    api = make_api(service_plugins=["router"])
    net = api.network()
    sub = api.subnet(net["id"], "10.4.0.0/24", gateway_ip="192.0.2.1")
    assert sub["gateway_ip"] == "192.0.2.1"
    assert sub["allocation_pools"] == [{"start": "10.4.0.1", "end": "10.4.0.254"}]
    six = api.subnet(net["id"], "2001:db8:4::/64", gateway_ip="2001:db8:ffff::1")
    assert six["gateway_ip"] == "2001:db8:ffff::1"
    got = api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "198.51.100.1"}},
                  status=200).data["subnet"]
    assert got["gateway_ip"] == "198.51.100.1"
    r = api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "2001:db8::1"}},
                status=400)
    assert "does not match the ip_version" in r.data["NeutronError"]["message"]
    router = api.post("/v2.0/routers", {"router": {"name": "r"}}, status=201).data["router"]
    r = api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                {"subnet_id": sub["id"]}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidIpForSubnet", r.data
    assert api.get(f"/v2.0/ports?device_id={router['id']}", status=200).data["ports"] == []
    port = api.port(net["id"])
    assert [x["subnet_id"] for x in port["fixed_ips"]] == [sub["id"], six["id"]]


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
    ({"cidr": "10.0.0.0/24", "gateway_ip": "2001:db8::1"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.0"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.255"}, "InvalidInput"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10",
                                                   "end": "10.0.1.10"}]},
     "OutOfBoundsAllocationPool"),
    # the network and broadcast addresses are out of bounds too (Neutron's
    # validate_allocation_pools: first + 1 to last - 1)
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.0",
                                                   "end": "10.0.0.10"}]},
     "OutOfBoundsAllocationPool"),
    ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.200",
                                                   "end": "10.0.0.255"}]},
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


def test_shared_filters_subnets_by_their_network_and_is_not_shown(api):
    public = api.network(project="admin", admin=True, shared=True)
    shared_sub = api.subnet(public["id"], "10.50.0.0/24", project="admin", admin=True)
    own = api.network()
    own_sub = api.subnet(own["id"], "10.51.0.0/24")

    def ids(query, **kw):
        data = api.get("/v2.0/subnets?" + query, status=200, **kw).data["subnets"]
        assert all("shared" not in s for s in data)  # a filter, not an attribute
        return sorted(s["id"] for s in data)
    assert ids("shared=false") == [own_sub["id"]]
    assert ids("shared=False&fields=id&fields=shared") == [own_sub["id"]]
    assert ids("shared=true") == [shared_sub["id"]]
    assert ids("shared=true&shared=false") == sorted([own_sub["id"], shared_sub["id"]])
    assert ids("shared=true", project="p2") == [shared_sub["id"]]
    assert ids("shared=false", project="admin", admin=True) == [own_sub["id"]]
    assert "shared" not in api.get(f"/v2.0/subnets/{own_sub['id']}",
                                   status=200).data["subnet"]
    api.get("/v2.0/subnets?shared=perhaps", status=400)
    api.get("/v2.0/subnets?sort_key=shared&sort_dir=asc", status=400)
    api.post("/v2.0/subnets", {"subnet": {"network_id": own["id"], "cidr": "10.52.0.0/24",
                                          "ip_version": 4, "shared": True}}, status=400)
    api.put(f"/v2.0/subnets/{own_sub['id']}", {"subnet": {"shared": True}}, status=400)


def test_shared_filter_reads_the_networks_sharing_as_the_caller_does(api):
    """A network p2 shares with p1 alone (an RBAC policy, no wildcard) is
    shared=True for p1 and listed by networks?shared=true; its subnet is
    listed by subnets?shared=true, not by shared=false, as Neutron (the
    per-caller RBAC clause on the subnet's network).  The filter read the
    wildcard column, which told p1 whether p2 had shared with everyone or
    with p1 alone.  For p2 and for p3 it is not shared.  (Review 18a.)"""
    net = api.network(project="p2")
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": "p1"}}, project="p2", status=201)
    sub = api.subnet(net["id"], "10.55.0.0/24", project="p2")
    own = api.subnet(api.network()["id"], "10.56.0.0/24")

    def ids(path, query, project="p1"):
        key = path.rsplit("/", 1)[1]
        return sorted(x["id"] for x in api.get(f"{path}?{query}", project=project,
                                               status=200).data[key])
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["shared"]
    assert ids("/v2.0/networks", "shared=true") == [net["id"]]
    assert ids("/v2.0/subnets", "shared=true") == [sub["id"]]
    assert ids("/v2.0/subnets", "shared=false") == [own["id"]]
    assert ids("/v2.0/subnets", "shared=true&shared=false") == sorted([sub["id"], own["id"]])
    assert ids("/v2.0/subnets", "shared=true", project="p2") == []
    assert ids("/v2.0/subnets", "shared=false", project="p2") == [sub["id"]]
    assert ids("/v2.0/subnets", "shared=true", project="p3") == []


@pytest.mark.parametrize("version, cidr", [("4", "10.53.0.0/24"),
                                           (" 6", "2001:db8:53::/64"),
                                           (6.0, "2001:db8:54::/64")])
def test_ip_version_given_as_a_string_is_converted(api, version, cidr):
    net = api.network()
    sub = api.subnet(net["id"], cidr, ip_version=version)
    assert sub["ip_version"] == int(float(version)) and \
        isinstance(sub["ip_version"], int)
    assert [s["id"] for s in api.get("/v2.0/subnets?ip_version=" + str(int(float(version))),
                                     status=200).data["subnets"]] == [sub["id"]]


@pytest.mark.parametrize("version", ["5", "four", "4.5", 4.5, True, None, ""])
def test_bad_ip_versions_are_400(api, version):
    net = api.network()
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                              "ip_version": version}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("subnets") == 0


def test_subnet_needs_the_mtu_of_its_ip_version(api):
    """IPv6 needs 1280 bytes, IPv4 68: a network below that takes no such
    subnet (409), and one with such a subnet cannot go below it (409)."""
    low = api.network(mtu=1279)
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": low["id"], "cidr": "2001:db8::/64",
                                              "ip_version": 6}}, status=409)
    assert r.data["NeutronError"]["type"] == "NetworkMTUSubnetConflict"
    assert "1280" in r.data["NeutronError"]["message"]
    api.subnet(low["id"], "10.60.0.0/24")  # IPv4 lives with 1279
    tiny = api.network(mtu=67)  # accepted on the network itself, as in Neutron
    assert tiny["mtu"] == 67
    for cidr in ("10.61.0.0/24", "2001:db8:1::/64"):
        r = api.post("/v2.0/subnets", {"subnet": {"network_id": tiny["id"], "cidr": cidr,
                                                  "ip_version": 6 if ":" in cidr else 4}},
                     status=409)
        assert r.data["NeutronError"]["type"] == "NetworkMTUSubnetConflict"
        assert "minimum of 68" in r.data["NeutronError"]["message"]
    assert api.get(f"/v2.0/subnets?network_id={tiny['id']}", status=200).data["subnets"] == []
    api.put(f"/v2.0/networks/{tiny['id']}", {"network": {"mtu": 68}}, status=200)
    api.subnet(tiny["id"], "10.61.0.0/24")


def test_network_mtu_cannot_go_below_what_its_subnets_need(api):
    v6 = api.network(mtu=1400)
    api.subnet(v6["id"], "2001:db8:2::/64")
    r = api.put(f"/v2.0/networks/{v6['id']}", {"network": {"mtu": 1279}}, status=409)
    assert r.data["NeutronError"]["type"] == "NetworkMTUSubnetConflict"
    assert api.get(f"/v2.0/networks/{v6['id']}", status=200).data["network"]["mtu"] == 1400
    api.put(f"/v2.0/networks/{v6['id']}", {"network": {"mtu": "1280"}}, status=200)
    v4 = api.network(mtu=1400)
    api.subnet(v4["id"], "10.62.0.0/24")
    api.put(f"/v2.0/networks/{v4['id']}", {"network": {"mtu": 67}}, status=409)
    api.put(f"/v2.0/networks/{v4['id']}", {"network": {"mtu": 0}}, status=409)
    assert api.put(f"/v2.0/networks/{v4['id']}", {"network": {"mtu": 68}},
                   status=200).data["network"]["mtu"] == 68
    bare = api.network()
    assert api.put(f"/v2.0/networks/{bare['id']}", {"network": {"mtu": 1}},
                   status=200).data["network"]["mtu"] == 1
    # 0: the largest MTU the network's type allows (VXLAN: 1500 less 50)
    assert api.put(f"/v2.0/networks/{bare['id']}", {"network": {"mtu": 0}},
                   status=200).data["network"]["mtu"] == 1450
    assert api.network(mtu=0)["mtu"] == 1450


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_deleting_an_auto_address_subnet_in_use_removes_the_addresses(api, mode):
    """Ports derive their own address on a SLAAC or DHCPv6-stateless
    subnet: deleting it takes those addresses away (and tells the agents)
    instead of answering SubnetInUse."""
    from tests.functional.test_agent_api import HOST_A, _follow, bound_port, register, state
    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    v4 = api.subnet(net["id"], "10.63.0.0/24")
    auto = api.subnet(net["id"], "2001:db8:63::/64", ipv6_ra_mode=mode, ipv6_address_mode=mode)
    port = bound_port(api, net["id"], HOST_A)
    assert {ip["subnet_id"] for ip in port["fixed_ips"]} == {v4["id"], auto["id"]}
    first = state(api, HOST_A)
    api.delete(f"/v2.0/subnets/{auto['id']}", status=204)
    after = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert [ip["subnet_id"] for ip in after["fixed_ips"]] == [v4["id"]]
    assert after["revision_number"] > port["revision_number"]
    got, want = _follow(api, HOST_A, first)
    assert got == want
    seen = {p.id: p for p in got.ports}[port["id"]]
    assert [ip.subnet_id for ip in seen.fixed_ips] == [v4["id"]]
    # The IPv4 subnet the port still uses stays in use.
    r = api.delete(f"/v2.0/subnets/{v4['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SubnetInUse"


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_a_new_auto_address_subnet_addresses_the_ports_already_there(api, mode):
    """As Neutron (add_auto_addrs_on_network_ports): a SLAAC or
    DHCPv6-stateless subnet added to a network gives the ports already on
    it their EUI-64 address there (their hosts and the groups' members
    learn it), not a router's interface nor a port its service types
    leave out; a stateful subnet gives none."""
    from tests.functional.test_agent_api import HOST_A, _follow, bound_port, register, state
    from quantum_ovs.db.addresses import eui64
    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    v4 = api.subnet(net["id"], "10.66.0.0/24")
    port = bound_port(api, net["id"], HOST_A)
    router_port = api.port(net["id"], admin=True, device_owner="network:router_interface")
    first = state(api, HOST_A)
    stateful = api.subnet(net["id"], "2001:db8:66::/64", ipv6_ra_mode="dhcpv6-stateful",
                          ipv6_address_mode="dhcpv6-stateful")
    dhcp_only = api.subnet(net["id"], "2001:db8:68::/64", ipv6_ra_mode=mode,
                           ipv6_address_mode=mode, service_types=["network:dhcp"],
                           admin=True)
    auto = api.subnet(net["id"], "2001:db8:67::/64", ipv6_ra_mode=mode,
                      ipv6_address_mode=mode)
    after = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert [(ip["subnet_id"], ip["ip_address"]) for ip in after["fixed_ips"]] == [
        (v4["id"], port["fixed_ips"][0]["ip_address"]),
        (auto["id"], eui64("2001:db8:67::/64", port["mac_address"]))]
    assert after["revision_number"] > port["revision_number"]
    assert api.get(f"/v2.0/ports/{router_port['id']}", status=200).data["port"][
        "fixed_ips"] == router_port["fixed_ips"]
    assert stateful["id"] and dhcp_only["id"]
    got, want = _follow(api, HOST_A, first)
    assert got == want
    seen = {p.id: p for p in got.ports}[port["id"]]
    assert [ip.subnet_id for ip in seen.fixed_ips] == [v4["id"], auto["id"]]
    # and the subnet can go again, its addresses with it
    api.delete(f"/v2.0/subnets/{auto['id']}", status=204)


def test_stateful_and_router_used_ipv6_subnets_stay_in_use(api):
    net = api.network()
    stateful = api.subnet(net["id"], "2001:db8:64::/64", ipv6_ra_mode="dhcpv6-stateful",
                          ipv6_address_mode="dhcpv6-stateful")
    api.port(net["id"])
    r = api.delete(f"/v2.0/subnets/{stateful['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SubnetInUse"
    other = api.network()
    slaac = api.subnet(other["id"], "2001:db8:65::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    api.port(other["id"], admin=True, device_owner="network:router_interface")
    r = api.delete(f"/v2.0/subnets/{slaac['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SubnetInUse"


@pytest.mark.parametrize("cidr, message", [
    ("224.0.0.0/24", "Multicast IP subnet is not supported if enable_dhcp is True"),
    ("ff05::/64", "Multicast IP subnet is not supported if enable_dhcp is True"),
    ("127.0.0.0/24", "Loopback IP subnet is not supported if enable_dhcp is True"),
    ("0.0.0.0/24", "First IP '0.0.0.0' of network is not supported if enable_dhcp is True."),
    ("10.0.0.0/31", "Subnet has a prefix length that is incompatible with DHCP service "
                    "enabled"),
    ("2001:db8::/127", "Subnet has a prefix length that is incompatible with DHCP service "
                       "enabled"),
])
def test_prefixes_neutron_refuses_with_dhcp(api, cidr, message):
    """Neutron's _validate_subnet: a multicast, loopback, 0.0.0.0-based or
    too small prefix is refused with DHCP (the default), taken without;
    an update turning DHCP on is refused as a create with it."""
    net = api.network()
    body = {"network_id": net["id"], "cidr": cidr, "ip_version": 6 if ":" in cidr else 4}
    e = api.post("/v2.0/subnets", {"subnet": body}, status=400).data["NeutronError"]
    assert e == {"type": "InvalidInput", "detail": "",
                 "message": f"Invalid input for operation: {message}."}, e
    assert api.count("subnets") == 0
    sub = api.subnet(net["id"], cidr, enable_dhcp=False)
    e = api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"enable_dhcp": True}},
                status=400).data["NeutronError"]
    assert e["message"] == f"Invalid input for operation: {message}."
    assert api.get(f"/v2.0/subnets/{sub['id']}").data["subnet"]["enable_dhcp"] is False
    api.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"name": "n"}}, status=200)


def test_ipv6_prefix_at_double_colon_is_refused_and_link_local_taken(api):
    """'::' is Neutron's prefix delegation placeholder: a subnet starting
    there is refused with or without DHCP ("IPv6 subnet '::' is not
    supported").  A link-local prefix is no error in Neutron: taken."""
    net = api.network()
    for dhcp in (True, False):
        e = api.post("/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "::/64", "ip_version": 6,
            "enable_dhcp": dhcp}}, status=400).data["NeutronError"]
        assert e["message"] == "Invalid input for operation: IPv6 subnet '::' is not supported."
    assert api.subnet(net["id"], "fe80::/64")["gateway_ip"] == "fe80::1"


def test_auto_address_subnets_per_network_are_capped(make_api):
    """[DEFAULT] max_auto_address_subnets_per_network: each SLAAC or
    DHCPv6-stateless subnet gives every port of the network an address (a
    member of its groups on every host); past the cap a create is 400 and
    leaves nothing; stateful subnets and other networks are not counted."""
    api = make_api(max_auto_address_subnets_per_network=2)
    net = api.network()
    api.port(net["id"])
    for i, mode in enumerate(["slaac", "dhcpv6-stateless"]):
        api.subnet(net["id"], f"2001:db8:{80 + i}::/64", ipv6_ra_mode=mode,
                   ipv6_address_mode=mode)
    api.subnet(net["id"], "2001:db8:90::/64", ipv6_ra_mode="dhcpv6-stateful",
               ipv6_address_mode="dhcpv6-stateful")
    before = api.count("subnets")
    r = api.post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:82::/64", "ip_version": 6,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert "A network may have at most 2 SLAAC or DHCPv6-stateless subnets, not 3" in \
        r.data["NeutronError"]["message"]
    assert api.count("subnets") == before
    other = api.network()
    api.subnet(other["id"], "2001:db8:83::/64", ipv6_ra_mode="slaac",
               ipv6_address_mode="slaac")
