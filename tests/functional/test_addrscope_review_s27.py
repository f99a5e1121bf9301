"""Review s27: address scopes and subnet pools as Neutron has them.
Each test fails on the code reviewed."""

from tests.functional.test_subnetpools import _pool, _scope, _sub


def test_a_project_puts_its_pool_in_a_scope_shared_with_everyone(api):
    """Neutron (db_base_plugin_v2._validate_address_scope_id, since the
    rbac-address-scope change eb6104c0ac, "Allow sharing of address scopes
    via RBAC mechanism", bug 1697925): a pool may join an address scope
    that is AddressScope.is_accessible to the caller -- its owner, an
    admin, or a project the scope is shared with through a policy whose
    target is the project *or '*'* (rbac_db.get_shared_with_project:
    target_project.in_(['*', project_id])).  A scope made shared=True by
    an administrator is therefore joinable by every project (the usual
    deployment: one shared scope for the external network's pool and the
    tenants' pools routed without NAT).  Here only an RBAC policy naming
    the project itself counts: 400 IllegalSubnetPoolAssociationToAddressScope,
    on create and on update."""
    shared = _scope(api, admin=True, project="admin", shared=True)
    assert api.get(f"/v2.0/address-scopes/{shared['id']}", project="p2",
                   status=200).data["address_scope"]["shared"] is True
    r = api.post("/v2.0/subnetpools", {"subnetpool": {
        "name": "mine", "prefixes": ["172.16.0.0/16"], "default_prefixlen": 24,
        "address_scope_id": shared["id"]}}, project="p2")
    assert r.status_int == 201, r.text
    assert r.data["subnetpool"]["address_scope_id"] == shared["id"]
    # joining later, by update, is the same check in Neutron
    later = _pool(api, ["172.17.0.0/16"], project="p2", default_prefixlen=24)
    r = api.put(f"/v2.0/subnetpools/{later['id']}",
                {"subnetpool": {"address_scope_id": shared["id"]}}, project="p2")
    assert r.status_int == 200, r.text
    # and its subnets are in the scope
    net = api.network(project="p2")
    sub = _sub(api, net["id"], project="p2", subnetpool_id=later["id"])
    assert api.get(f"/v2.0/networks/{sub['network_id']}", project="p2", status=200
                   ).data["network"]["ipv4_address_scope"] == shared["id"]


def test_ipv6_pool_quota_counts_fractions_of_a_64(api):
    """Neutron (ipam/subnet_alloc.SubnetAllocator._num_quota_units_in_prefixlen
    = math.pow(2, quota_unit - prefixlen), quota_unit 64 for IPv6; the API
    reference: "For IPv6 subnet pools, default_quota is measured in units
    of /64"): a /65 costs half a unit, so two /65 fit a default_quota of 1
    (0.5 + 0.5 <= 1).  Here every subnet longer than /64 costs a whole
    /64 (prefixes.quota_units: max(1, ...)): the second /65 is 409
    SubnetPoolQuotaExceeded, and a project with a quota of one /64 gets a
    single /126 out of a pool that allows them."""
    p6 = _pool(api, ["2001:db8::/48"], default_prefixlen=65, max_prefixlen=128,
               default_quota=1)
    net = api.network()
    body = {"network_id": net["id"], "ip_version": 6, "subnetpool_id": p6["id"],
            "prefixlen": 65}
    api.post("/v2.0/subnets", {"subnet": body}, status=201)
    r = api.post("/v2.0/subnets", {"subnet": body})
    assert r.status_int == 201, r.text
