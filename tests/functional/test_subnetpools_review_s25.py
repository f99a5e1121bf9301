"""Review s25: subnet pools, address scopes, IP availability as Neutron
has them (each test failed on the code reviewed, except the two that
keep the relaxed pool affinity safe: a re-scoping and a pool of no
scope)."""

from tests.functional.test_subnetpools import _err, _pool, _scope, _sub


def test_two_pools_of_one_address_scope_share_a_network(api):
    """Neutron (ipam_backend_mixin._validate_network_subnetpools): on a
    network whose subnets are in an address scope, a subnet from another
    pool of that scope is allowed (the NetworkSubnetPoolAffinityError check
    is skipped when the network has a scope); Neutron's own
    test_create_two_subnets_different_subnetpools_same_network."""
    sc = _scope(api)
    a = _pool(api, ["10.10.0.0/16"], address_scope_id=sc["id"], default_prefixlen=24)
    b = _pool(api, ["10.20.0.0/16"], address_scope_id=sc["id"], default_prefixlen=24)
    net = api.network()
    _sub(api, net["id"], subnetpool_id=a["id"])
    got = _sub(api, net["id"], subnetpool_id=b["id"])
    assert got["subnetpool_id"] == b["id"]
    shown = api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]
    assert shown["ipv4_address_scope"] == sc["id"]


def test_a_pool_of_another_scope_on_a_scoped_network_is_scope_affinity_error(api):
    """Neutron: a subnet from a pool of another address scope on a network
    already in one is 400 NetworkAddressScopeAffinityError (checked before
    the pool affinity)."""
    s1, s2 = _scope(api), _scope(api)
    a = _pool(api, ["10.10.0.0/16"], address_scope_id=s1["id"], default_prefixlen=24)
    c = _pool(api, ["10.30.0.0/16"], address_scope_id=s2["id"], default_prefixlen=24)
    net = api.network()
    _sub(api, net["id"], subnetpool_id=a["id"])
    err = _sub(api, net["id"], subnetpool_id=c["id"], status=400)
    assert err["type"] == "NetworkAddressScopeAffinityError"


def test_allocation_pools_only_with_a_specific_pool_request(api):
    """Neutron (ipam_backend_mixin.validate_pools_with_subnetpool): a
    subnet asked of a pool without a cidr may not name allocation_pools:
    400 BadRequest "allocation_pools allowed only for specific subnet
    requests." -- nothing is made."""
    p = _pool(api, ["10.5.0.0/16"], default_prefixlen=24)
    net = api.network()
    err = _sub(api, net["id"], subnetpool_id=p["id"], status=400,
               allocation_pools=[{"start": "10.5.0.10", "end": "10.5.0.20"}])
    assert err["type"] == "BadRequest"
    assert "allocation_pools allowed only for specific subnet requests" in err["message"]
    assert api.get(f"/v2.0/subnets?network_id={net['id']}", status=200).data["subnets"] == []


def test_default_quota_zero_is_no_quota(api):
    """Neutron (subnet_alloc.SubnetAllocator._check_subnetpool_project_quota:
    ``if quota:``): a default_quota of 0 bounds nothing."""
    p = _pool(api, ["10.6.0.0/16"], default_prefixlen=24, default_quota=0)
    assert p["default_quota"] == 0
    got = _sub(api, api.network()["id"], subnetpool_id=p["id"])
    assert got["cidr"] == "10.6.0.0/24"


def test_ip_availability_is_the_services_too(api):
    """Neutron (conf/policies/network_ip_availability.py):
    get_network_ip_availability is ADMIN_OR_SERVICE -- a service user
    (role ``service``, e.g. nova) reads it; a member still does not."""
    net = api.network(name="avail")
    api.subnet(net["id"], "10.30.0.0/24")
    path = "/v2.0/network-ip-availabilities"
    svc = {"X-Roles": "service"}
    listed = api.get(path, project="svc", headers=svc,
                     status=200).data["network_ip_availabilities"]
    assert [x["network_id"] for x in listed] == [net["id"]]
    got = api.get(f"{path}/{net['id']}", project="svc", headers=svc, status=200).data
    assert got["network_ip_availability"]["total_ips"] == 253
    assert api.get(path, project="p2", status=200).data["network_ip_availabilities"] == []


def test_a_pool_cannot_leave_the_scope_of_a_network_it_shares(api):
    """Two pools of one scope on a network: neither may move to another
    scope, or to none (Neutron's _check_subnetpool_address_scope_network_
    affinity; Neutron does not check a move to no scope): the network's
    subnets would be in two scopes, which decide its routers' NAT.  A pool
    alone on its networks may."""
    sc, other = _scope(api), _scope(api)
    a = _pool(api, ["10.10.0.0/16"], address_scope_id=sc["id"], default_prefixlen=24)
    b = _pool(api, ["10.20.0.0/16"], address_scope_id=sc["id"], default_prefixlen=24)
    net = api.network()
    _sub(api, net["id"], subnetpool_id=a["id"])
    _sub(api, net["id"], subnetpool_id=b["id"])
    for target in (other["id"], None):
        assert _err(api, "PUT", f"/v2.0/subnetpools/{b['id']}",
                    {"subnetpool": {"address_scope_id": target}}, 400) == \
            "NetworkAddressScopeAffinityError"
    assert api.get(f"/v2.0/subnetpools/{b['id']}", status=200).data[
        "subnetpool"]["address_scope_id"] == sc["id"]
    lone = _pool(api, ["10.30.0.0/16"], address_scope_id=sc["id"], default_prefixlen=24)
    _sub(api, api.network()["id"], subnetpool_id=lone["id"])
    api.put(f"/v2.0/subnetpools/{lone['id']}", {"subnetpool": {"address_scope_id": other["id"]}},
            status=200)


def test_pools_of_no_scope_still_do_not_share_a_network(api):
    a = _pool(api, ["10.10.0.0/16"], default_prefixlen=24)
    b = _pool(api, ["10.20.0.0/16"], default_prefixlen=24)
    net = api.network()
    _sub(api, net["id"], subnetpool_id=a["id"])
    assert _sub(api, net["id"], subnetpool_id=b["id"], status=400)["type"] == \
        "NetworkSubnetPoolAffinityError"
    assert _sub(api, net["id"], cidr="10.99.0.0/24", status=400)["type"] == \
        "NetworkSubnetPoolAffinityError"
