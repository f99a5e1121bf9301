"""Subnet create/update checks that follow Neutron's: a nameserver of the
subnet's IP version only, null nameservers/host routes as empty lists,
IPv6 ra/address modes only with DHCP enabled (and DHCP kept on while they
are set), no IPv6 allocation pool holding the subnet-router anycast
address, no /0 prefix.  Each test's docstring names the Neutron code it
follows; each refused request leaves no row behind.
"""

S = "/v2.0/subnets"


def _create(api, net_id, status, **attrs):
    attrs.setdefault("network_id", net_id)
    attrs.setdefault("ip_version", 6 if ":" in attrs["cidr"] else 4)
    return api.post(S, {"subnet": attrs}, status=status)


def _err(resp):
    return resp.data["NeutronError"]["type"]


# ------------------------------------------------------------ dns_nameservers
def test_a_nameserver_of_the_other_ip_version_is_refused(api):
    """Neutron's _validate_subnet (db_base_plugin_v2.py) checks each
    nameserver with _validate_ip_version: an IPv6 nameserver on an IPv4
    subnet (and the reverse) is a 400, on create and on update
    (test_create_subnet_inconsistent_ipv6_dns_v4,
    test_update_subnet_inconsistent_ipv4_dns_v6)."""
    net = api.network()
    r = _create(api, net["id"], 400, cidr="10.0.0.0/24", dns_nameservers=["2001:4860::8888"])
    assert _err(r) == "InvalidInput"
    r = _create(api, net["id"], 400, cidr="2001:db8::/64", dns_nameservers=["8.8.8.8"])
    assert _err(r) == "InvalidInput"
    sub = api.subnet(net["id"], cidr="10.0.1.0/24")
    r = api.put(f"{S}/{sub['id']}", {"subnet": {"dns_nameservers": ["2001:4860::8888"]}},
                status=400)
    assert _err(r) == "InvalidInput"
    assert api.get(f"{S}/{sub['id']}", status=200).data["subnet"]["dns_nameservers"] == []


def test_null_nameservers_and_host_routes_are_empty_lists(api):
    """neutron-lib's subnet definition converts ``dns_nameservers`` and
    ``host_routes`` with convert_none_to_empty_list: null is [] on create
    and clears them on update (clients such as Heat and Terraform send
    null for an unset list)."""
    net = api.network()
    sub = _create(api, net["id"], 201, cidr="10.0.0.0/24", dns_nameservers=None,
                  host_routes=None).data["subnet"]
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
    sub = api.subnet(net["id"], cidr="10.0.1.0/24", dns_nameservers=["8.8.8.8"],
                     host_routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.1.5"}])
    r = api.put(f"{S}/{sub['id']}", {"subnet": {"dns_nameservers": None,
                                                "host_routes": None}}, status=200)
    assert r.data["subnet"]["dns_nameservers"] == []
    assert r.data["subnet"]["host_routes"] == []


# ------------------------------------------------------------ IPv6 modes
def test_ipv6_modes_need_dhcp_enabled_on_create(api):
    """Neutron's _validate_ipv6_dhcp: "ipv6_ra_mode or ipv6_address_mode
    cannot be set when enable_dhcp is set to False" (400;
    test_create_subnet_ipv6_attributes_no_dhcp_enabled)."""
    net = api.network()
    for i, attrs in enumerate([dict(ipv6_ra_mode="slaac", ipv6_address_mode="slaac"),
                               dict(ipv6_address_mode="slaac"),
                               dict(ipv6_ra_mode="dhcpv6-stateful")]):
        r = _create(api, net["id"], 400, cidr=f"2001:db8:{i}::/64", enable_dhcp=False,
                    **attrs)
        assert _err(r) == "InvalidInput"
    assert api.get(f"/v2.0/subnets?network_id={net['id']}", status=200).data["subnets"] == []


def test_ipv6_subnet_with_modes_cannot_disable_dhcp(api):
    """Neutron's _validate_ipv6_update_dhcp: "Cannot disable enable_dhcp
    with ipv6 attributes set" (400; test_update_subnet_ipv6_cannot_disable_dhcp)."""
    net = api.network()
    sub = api.subnet(net["id"], cidr="2001:db8::/64", ipv6_ra_mode="slaac",
                     ipv6_address_mode="slaac")
    r = api.put(f"{S}/{sub['id']}", {"subnet": {"enable_dhcp": False}}, status=400)
    assert _err(r) == "InvalidInput"
    assert api.get(f"{S}/{sub['id']}", status=200).data["subnet"]["enable_dhcp"] is True


# ------------------------------------------------------------ allocation pools / cidr
def test_an_ipv6_pool_may_not_hold_the_subnet_router_anycast_address(api):
    """Neutron's IpamBackendMixin.validate_allocation_pools: an IPv6
    subnet's first usable address is ``net.first + 1`` (the network
    address is the subnet-router anycast address, RFC 4291 2.6.1), and a
    pool starting before it is OutOfBoundsAllocationPool (400) -- on
    create and update.  Here the pool is taken and a port is given the
    anycast address."""
    net = api.network()
    r = _create(api, net["id"], 400, cidr="2001:db8:5::/64", gateway_ip="2001:db8:5::ffff",
                allocation_pools=[{"start": "2001:db8:5::", "end": "2001:db8:5::2"}])
    assert _err(r) == "OutOfBoundsAllocationPool"
    sub = api.subnet(net["id"], cidr="2001:db8:7::/64", gateway_ip="2001:db8:7::ffff")
    r = api.put(f"{S}/{sub['id']}", {"subnet": {"allocation_pools": [
        {"start": "2001:db8:7::", "end": "2001:db8:7::5"}]}}, status=400)
    assert _err(r) == "OutOfBoundsAllocationPool"


def test_a_zero_prefix_length_is_refused(api):
    """Neutron's IpamBackendMixin._validate_subnet_cidr: "0 is not allowed
    as CIDR prefix length" (400, bug 1362651), DHCP or not."""
    net = api.network()
    r = _create(api, net["id"], 400, cidr="0.0.0.0/0", enable_dhcp=False)
    assert _err(r) == "InvalidInput"
    assert api.get(f"/v2.0/subnets?network_id={net['id']}", status=200).data["subnets"] == []
    # A subnet pool's choice too (Neutron checks every subnet it saves):
    # a pool of 0.0.0.0/0 taking /0 requests gives no such subnet.
    pool = api.post("/v2.0/subnetpools", {"subnetpool": {
        "name": "all", "prefixes": ["0.0.0.0/0"], "min_prefixlen": 0,
        "default_prefixlen": 24}}, status=201).data["subnetpool"]
    r = api.post(S, {"subnet": {"network_id": net["id"], "ip_version": 4,
                                "subnetpool_id": pool["id"], "prefixlen": 0,
                                "enable_dhcp": False}}, status=400)
    assert _err(r) == "InvalidInput"
    assert api.get(f"/v2.0/subnets?network_id={net['id']}", status=200).data["subnets"] == []
    # (a pool-chosen prefix of another length is still taken)
    api.post(S, {"subnet": {"network_id": net["id"], "ip_version": 4,
                            "subnetpool_id": pool["id"]}}, status=201)
