"""Provider networks and quotas as Neutron serves them: the quotas API's
project/tenant collection actions, a 404 DELETE of limits never set, the
subnetpool quota, quotas counted on API creates only (a router interface's
port is not), no physnet on a tunnel network, and provider attributes on
update (the current values taken back as no change, a project's PUT a
policy 403)."""

NT, PN, SID = "provider:network_type", "provider:physical_network", "provider:segmentation_id"


def _vlan_api(make_api):
    api = make_api()
    api.plugin.conf.set_override("network_vlan_ranges", ["physnet1:100:101"],
                                 group="ml2_type_vlan")
    api.plugin.segments.__init__(api.plugin.conf)
    return api


# ------------------------------------------------------------------ quotas
def test_quota_project_and_tenant_collection_actions(api):
    """neutron/extensions/quotasv2.py: collection_actions {'tenant': 'GET',
    'project': 'GET'} -> QuotaSetsController._project: the caller's own
    project id (python-neutronclient's quota-show without --tenant-id asks
    GET /quotas/tenant)."""
    r = api.get("/v2.0/quotas/project", status=200)
    assert r.data == {"project": {"project_id": "p1"}}
    r = api.get("/v2.0/quotas/tenant", status=200)
    assert r.data == {"tenant": {"tenant_id": "p1"}}
    # (an admin too: not the limits of a project called "project")
    r = api.get("/v2.0/quotas/project", admin=True, project="adm", status=200)
    assert r.data == {"project": {"project_id": "adm"}}
    # GET only: a PUT or DELETE there is no project's limits.
    for name in ("project", "tenant"):
        api.put(f"/v2.0/quotas/{name}", {"quota": {"network": 5}}, admin=True, status=405)
        api.delete(f"/v2.0/quotas/{name}", admin=True, status=405)
    assert api.get("/v2.0/quotas", admin=True, status=200).data["quotas"] == []


def test_delete_quota_of_a_project_without_limits_is_404(api):
    """neutron/db/quota/driver.py DbQuotaDriver.delete_project_quota: no
    row deleted -> TenantQuotaNotFound (404)."""
    r = api.delete("/v2.0/quotas/never-set", admin=True, status=404)
    assert r.data["NeutronError"]["type"] == "TenantQuotaNotFound"
    api.put("/v2.0/quotas/p1", {"quota": {"network": 5}}, admin=True, status=200)
    api.delete("/v2.0/quotas/p1", admin=True, status=204)
    api.delete("/v2.0/quotas/p1", admin=True, status=404)


def test_subnetpool_quota_is_served_and_enforced(api):
    """Subnet pools are served (subnet_allocation): Neutron's ML2 tracks
    subnetpool (plugin.py tracked_resources(subnetpool=...)), its limit
    the [quotas] default_quota (-1), shown by GET /quotas/{p} and settable
    by PUT, enforced on POST /subnetpools."""
    q = api.get("/v2.0/quotas/p1", status=200).data["quota"]
    assert q.get("subnetpool") == -1
    api.put("/v2.0/quotas/p1", {"quota": {"subnetpool": 1}}, admin=True, status=200)
    api.post("/v2.0/subnetpools", {"subnetpool": {"name": "a", "prefixes": ["10.10.0.0/16"]}},
             status=201)
    r = api.post("/v2.0/subnetpools", {"subnetpool": {"name": "b",
                                                      "prefixes": ["10.20.0.0/16"]}},
                 status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"


def test_router_interface_port_is_not_refused_by_the_port_quota(api):
    """Neutron enforces quotas at the API (pecan QuotaEnforcementHook) only:
    l3_db._add_interface_by_subnet makes its port with
    plugin_utils.create_port, no quota check, so a project at its port
    limit can still attach its subnet to its router."""
    net = api.network()
    sub = api.subnet(net["id"])
    router = api.post("/v2.0/routers", {"router": {"name": "r"}}, status=201).data["router"]
    api.put("/v2.0/quotas/p1", {"quota": {"port": 0}}, admin=True, status=200)
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
            status=200)


# ------------------------------------------------------------------ provider
def test_tunnel_network_with_empty_physnet_shows_null(api):
    """TunnelTypeDriver.reserve_provider_segment returns
    physical_network None: a VXLAN/GRE network never shows a physnet
    (here the "" given is stored and shown)."""
    for ntype in ("vxlan", "gre"):
        net = api.post("/v2.0/networks", {"network": {"name": "t", NT: ntype, PN: ""}},
                       admin=True, status=201).data["network"]
        assert net[PN] is None
        shown = api.get(f"/v2.0/networks/{net['id']}", admin=True, status=200).data["network"]
        assert shown[PN] is None


def test_update_with_unchanged_provider_attributes_is_accepted(make_api):
    """ml2 plugin._update_provider_network_attributes: network_type /
    physical_network equal to the current values are no change (clients
    that PUT back what they read); only a different value is a 400."""
    api = _vlan_api(make_api)
    net = api.post("/v2.0/networks", {"network": {"name": "v", NT: "vlan", PN: "physnet1",
                                                  SID: 2000}}, admin=True,
                   status=201).data["network"]
    out = api.put(f"/v2.0/networks/{net['id']}",
                  {"network": {"name": "w", NT: "vlan", PN: "physnet1"}},
                  admin=True, status=200).data["network"]
    assert out["name"] == "w" and (out[NT], out[PN], out[SID]) == ("vlan", "physnet1", 2000)


def test_project_update_of_provider_attribute_is_a_policy_403(api):
    """In Neutron the provider attributes allow PUT (neutron-lib
    provider_net: allow_put True) and update_network:provider:* is
    admin-only policy: a project's PUT is 403 PolicyNotAuthorized, not a
    400 'read-only attribute'."""
    net = api.network()
    r = api.put(f"/v2.0/networks/{net['id']}", {"network": {SID: 5}}, status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
