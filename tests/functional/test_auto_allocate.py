"""Auto-allocated topology (auto-allocated-topology) and networks'
is_default, on SQLite, PostgreSQL and MariaDB: what the first GET makes,
that later ones give the same, the dry run, DELETE, who may, and that a
failure anywhere on the way leaves no row behind."""

import threading

import pytest
import sqlalchemy as sa

from quantum_ovs.db import models

T = "/v2.0/auto-allocated-topology"
ADMIN = dict(project="admin-p", admin=True)


def _error(resp):
    return resp.data["NeutronError"]["type"]


def _external(api, default=True, cidr="172.24.4.0/24"):
    net = api.post("/v2.0/networks", {"network": {
        "name": "public", "router:external": True, "is_default": default}},
        status=201, **ADMIN).data["network"]
    api.subnet(net["id"], cidr=cidr, **ADMIN)
    return net


def _pool(api, prefix, plen, **attrs):
    body = {"name": f"default-v{6 if ':' in prefix else 4}", "prefixes": [prefix],
            "default_prefixlen": plen, "is_default": True, "shared": True}
    return api.post("/v2.0/subnetpools", {"subnetpool": body | attrs}, status=201,
                    **ADMIN).data["subnetpool"]


@pytest.fixture
def deployment(api):
    """A default external network and default IPv4 and IPv6 pools."""
    ext = _external(api)
    _pool(api, "10.128.0.0/16", 24)
    _pool(api, "2001:db8:8000::/48", 64)
    return ext


def _rows(api, model, **where):
    with api.db.reader() as s:
        q = sa.select(sa.func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.execute(q).scalar()


def _owned(api, project):
    """(networks, subnets, routers, ports) of ``project``."""
    return tuple(_rows(api, m, project_id=project)
                 for m in (models.Network, models.Subnet, models.Router, models.Port))


def test_the_dry_run_names_what_the_deployment_lacks(api):
    r = api.get(T + "/None?fields=dry-run", status=409)
    assert r.data["NeutronError"] == {
        "type": "AutoAllocationFailure", "detail": "",
        "message": "Deployment error: No default router:external network."}
    _external(api)
    r = api.get(T + "/None?fields=dry-run", status=409)
    assert r.data["NeutronError"]["message"] == \
        "Deployment error: No default subnetpools defined."
    # ... and a real call says why too, and makes nothing
    assert _error(api.get(T + "/None", status=409)) == "AutoAllocationFailure"
    assert _owned(api, "p1") == (0, 0, 0, 0)
    _pool(api, "10.128.0.0/16", 24)
    r = api.get(T + "/None?fields=dry-run", status=200)
    assert r.data == {"auto_allocated_topology": {
        "id": "dry-run=pass", "project_id": "p1", "tenant_id": "p1"}}
    assert _owned(api, "p1") == (0, 0, 0, 0)  # a dry run makes nothing
    assert _error(api.get(T + "/None?fields=id", status=400)) == "BadRequest"


def test_the_first_call_makes_the_topology_and_later_ones_give_it(api, deployment):
    r = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    assert set(r) == {"id", "project_id", "tenant_id"} and r["project_id"] == "p1"
    net = api.get(f"/v2.0/networks/{r['id']}", status=200).data["network"]
    assert (net["name"], net["admin_state_up"], net["shared"], net["project_id"]) == \
        ("auto_allocated_network", True, False, "p1")
    assert "is_default" not in net  # (shown on external networks only, as Neutron)
    subnets = api.get(f"/v2.0/subnets?network_id={r['id']}").data["subnets"]
    assert sorted((x["name"], x["ip_version"], x["cidr"]) for x in subnets) == [
        ("auto_allocated_subnet_v4", 4, "10.128.0.0/24"),
        ("auto_allocated_subnet_v6", 6, "2001:db8:8000::/64")]
    [router] = api.get("/v2.0/routers").data["routers"]
    assert router["name"] == "auto_allocated_router" and router["project_id"] == "p1"
    assert router["external_gateway_info"]["network_id"] == deployment["id"]
    assert router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] \
        .startswith("172.24.4.")
    ifaces = api.get(f"/v2.0/ports?device_id={router['id']}"
                     "&device_owner=network:router_interface").data["ports"]
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in ifaces) == \
        ["10.128.0.1", "2001:db8:8000::1"]
    assert {p["status"] for p in ifaces} == {"ACTIVE"}
    before = _owned(api, "p1")
    assert before == (1, 2, 1, 2)
    # the same network after, as the project's id or as "None"
    for path in (T + "/p1", T + "/None", T + "/p1.json"):
        assert api.get(path, status=200).data["auto_allocated_topology"]["id"] == r["id"]
    assert _owned(api, "p1") == before
    # each project its own
    r2 = api.get(T + "/None", project="p2", status=200).data["auto_allocated_topology"]
    assert r2["id"] != r["id"] and _owned(api, "p2") == (1, 2, 1, 2)
    sub2 = api.get(f"/v2.0/subnets?network_id={r2['id']}&ip_version=4",
                   project="p2").data["subnets"][0]
    assert sub2["cidr"] == "10.128.1.0/24"


def test_a_project_asks_for_its_own_an_admin_for_any(api, deployment):
    r = api.get(T + "/p2", project="p1", status=403)
    assert _error(r) == "NotAuthorized"
    r = api.delete(T + "/p2", project="p1", status=403)
    assert _error(r) == "NotAuthorized"
    assert _owned(api, "p2") == (0, 0, 0, 0)
    made = api.get(T + "/p2", status=200, **ADMIN).data["auto_allocated_topology"]
    assert made["project_id"] == "p2"
    # made as p2's: p2 sees it as its own
    assert api.get(T + "/None", project="p2", status=200) \
        .data["auto_allocated_topology"]["id"] == made["id"]
    assert _owned(api, "p2") == (1, 2, 1, 2) and _owned(api, "admin-p")[0] == 1
    # a reader may read (and so make) it, as Neutron's rule says; only a
    # member may delete it
    reader = {"X-Roles": "reader"}
    assert api.get(T + "/None", project="p3", headers=reader, status=200)
    assert _error(api.delete(T + "/None", project="p3", headers=reader, status=403)) == \
        "PolicyNotAuthorized"


def test_delete_removes_everything_it_made(api, deployment):
    made = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    routers = _rows(api, models.RouterPort)
    api.delete(T + "/None", status=204)
    assert _owned(api, "p1") == (0, 0, 0, 0)
    assert _rows(api, models.AutoAllocatedTopology) == 0
    assert _rows(api, models.RouterPort) == routers - 3  # gateway and 2 interfaces
    api.get(f"/v2.0/networks/{made['id']}", status=404)
    api.delete(T + "/None", status=204)  # nothing to delete: 204
    # and a new one after
    again = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    assert again["id"] != made["id"] and _owned(api, "p1") == (1, 2, 1, 2)


def test_delete_of_a_topology_in_use_is_a_409_that_removes_nothing(api, deployment):
    made = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    vm = api.port(made["id"], device_owner="compute:nova", device_id="vm-1")
    before = _owned(api, "p1")
    r = api.delete(T + "/None", status=409)
    assert _error(r) == "NetworkInUse"
    assert _owned(api, "p1") == before and _rows(api, models.AutoAllocatedTopology) == 1
    assert api.get(T + "/None", status=200).data["auto_allocated_topology"]["id"] == \
        made["id"]
    api.delete(f"/v2.0/ports/{vm['id']}", status=204)
    api.delete(T + "/None", status=204)
    assert _owned(api, "p1") == (0, 0, 0, 0)


def test_what_the_project_removed_by_hand_is_not_in_the_way(api, deployment):
    made = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    [router] = api.get("/v2.0/routers").data["routers"]
    v6 = api.get(f"/v2.0/subnets?network_id={made['id']}&ip_version=6").data["subnets"][0]
    api.put(f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": v6["id"]},
            status=200)
    api.delete(T + "/None", status=204)
    assert _owned(api, "p1") == (0, 0, 0, 0)
    # the network deleted by hand takes the record with it
    made = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    [router] = api.get("/v2.0/routers").data["routers"]
    for sub in api.get(f"/v2.0/subnets?network_id={made['id']}").data["subnets"]:
        api.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                {"subnet_id": sub["id"]}, status=200)
    api.delete(f"/v2.0/routers/{router['id']}", status=204)
    api.delete(f"/v2.0/networks/{made['id']}", status=204)
    assert _rows(api, models.AutoAllocatedTopology) == 0
    assert api.get(T + "/None", status=200).data["auto_allocated_topology"]["id"] != \
        made["id"]


def test_a_failure_on_the_way_leaves_no_row_behind(api):
    _external(api)
    _pool(api, "10.128.0.0/24", 24)  # room for one project's subnet
    # the router over its quota: the network and subnet made before it go
    # too, and the pool's room with them
    api.put("/v2.0/quotas/p3", {"quota": {"router": 0}}, status=200, **ADMIN)
    r = api.get(T + "/None", project="p3", status=409)
    assert _error(r) == "OverQuota"
    assert _owned(api, "p3") == (0, 0, 0, 0)
    api.get(T + "/None", project="p1", status=200)
    # the pool used up
    r = api.get(T + "/None", project="p2", status=409)
    assert r.data["NeutronError"]["message"] == \
        "Deployment error: Unable to provide project private network."
    assert _owned(api, "p2") == (0, 0, 0, 0)
    assert _rows(api, models.AutoAllocatedTopology) == 1


def test_only_the_default_pools_the_project_sees_are_its_defaults(api):
    """As Neutron: a default pool that is not shared with the project is
    not one of its defaults (the dry run says so, and the topology has a
    subnet from each default pool it sees)."""
    _external(api)
    v4 = _pool(api, "10.128.0.0/16", 24, shared=False)
    r = api.get(T + "/None?fields=dry-run", status=409)
    assert r.data["NeutronError"]["message"] == \
        "Deployment error: No default subnetpools defined."
    r = api.get(T + "/None", status=409)
    assert _error(r) == "AutoAllocationFailure"
    assert r.data["NeutronError"]["message"] == \
        "Deployment error: Unable to provide project private network."
    assert _owned(api, "p1") == (0, 0, 0, 0)
    # shared with p1 alone (RBAC): p1's default, not p2's
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "subnetpool", "object_id": v4["id"], "action": "access_as_shared",
        "target_tenant": "p1"}}, status=201, **ADMIN)
    api.get(T + "/None?fields=dry-run", status=200)
    api.get(T + "/None?fields=dry-run", project="p2", status=409)
    _pool(api, "2001:db8:8000::/48", 64, shared=False)  # seen by nobody but its owner
    made = api.get(T + "/None", status=200).data["auto_allocated_topology"]
    assert [(x["name"], x["cidr"]) for x in api.get(
        f"/v2.0/subnets?network_id={made['id']}").data["subnets"]] == \
        [("auto_allocated_subnet_v4", "10.128.0.0/24")]
    # an admin's call for a project picks its defaults as the admin sees them
    made = api.get(T + "/p3", status=200, **ADMIN).data["auto_allocated_topology"]
    assert len(api.get(f"/v2.0/subnets?network_id={made['id']}", **ADMIN)
               .data["subnets"]) == 2


def test_an_uplink_without_a_free_address_leaves_no_row_behind(api):
    net = api.post("/v2.0/networks", {"network": {
        "name": "public", "router:external": True, "is_default": True}},
        status=201, **ADMIN).data["network"]
    api.subnet(net["id"], cidr="172.24.4.0/24", allocation_pools=[
        {"start": "172.24.4.10", "end": "172.24.4.10"}], **ADMIN)
    _pool(api, "10.128.0.0/16", 24)
    api.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": net["id"]}}}, project="p9", status=201)  # takes the one address
    r = api.get(T + "/None", status=409)
    assert _error(r) == "IpAddressGenerationFailure"  # (as Neutron: not its failure)
    assert _owned(api, "p1") == (0, 0, 0, 0)


def test_concurrent_first_calls_make_one_topology(api, deployment):
    got, errors = [], []

    def call():
        try:
            r = api.get(T + "/None", project="p1")
            got.append((r.status_int, r.data))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {s for s, _ in got} == {200}, got
    assert len({d["auto_allocated_topology"]["id"] for _, d in got}) == 1
    assert _owned(api, "p1") == (1, 2, 1, 2)


# ------------------------------------------------------------------ is_default
def test_is_default_is_the_administrators_and_one_network_has_it(api):
    r = api.post("/v2.0/networks", {"network": {"router:external": True, "is_default": True}},
                 status=403)
    assert _error(r) == "PolicyNotAuthorized"
    first = _external(api)
    assert first["is_default"] is True
    r = api.post("/v2.0/networks", {"network": {
        "name": "other", "router:external": True, "is_default": True}}, status=409, **ADMIN)
    assert r.data["NeutronError"] == {
        "type": "DefaultExternalNetworkExists", "detail": "",
        "message": f"A default external network already exists: {first['id']}."}
    assert [n["name"] for n in api.get("/v2.0/networks", **ADMIN).data["networks"]] == \
        ["public"]  # (nothing left of the refused one)
    other = _external(api, default=False, cidr="172.24.5.0/24")
    assert other["is_default"] is False
    assert _error(api.put(f"/v2.0/networks/{other['id']}", {"network": {"is_default": True}},
                          status=409, **ADMIN)) == "DefaultExternalNetworkExists"
    assert _error(api.put(f"/v2.0/networks/{first['id']}", {"network": {
        "is_default": False}}, status=403)) == "PolicyNotAuthorized"
    # the default moves: off one, then on the other
    api.put(f"/v2.0/networks/{first['id']}", {"network": {"is_default": False}}, status=200,
            **ADMIN)
    net = api.put(f"/v2.0/networks/{other['id']}", {"network": {"is_default": True}},
                  status=200, **ADMIN).data["network"]
    assert net["is_default"] is True
    ids = lambda q: [n["id"] for n in api.get("/v2.0/networks?" + q).data["networks"]]  # noqa
    assert ids("is_default=True") == [other["id"]]
    assert other["id"] not in ids("is_default=False") and first["id"] in ids("is_default=0")


def test_is_default_stays_with_updates_and_goes_with_externality(api):
    net = _external(api)
    url = f"/v2.0/networks/{net['id']}"
    for body in ({"description": "gman"}, {"router:external": True}):
        assert api.put(url, {"network": body}, status=200, **ADMIN) \
            .data["network"]["is_default"] is True
    # ignored on a network that is not external (as Neutron)
    internal = api.post("/v2.0/networks", {"network": {"is_default": True}}, status=201,
                        **ADMIN).data["network"]
    assert "is_default" not in internal
    assert "is_default" not in api.put(f"/v2.0/networks/{internal['id']}", {"network": {
        "is_default": True}}, status=200, **ADMIN).data["network"]
    # internal again: no longer the default; external again: not the default
    assert "is_default" not in api.put(url, {"network": {"router:external": False}},
                                       status=200, **ADMIN).data["network"]
    assert api.put(url, {"network": {"router:external": True}}, status=200, **ADMIN) \
        .data["network"]["is_default"] is False
    with api.db.reader() as s:
        assert s.execute(sa.select(models.ExternalNetwork.is_default)).scalars().all() == \
            [False]


def test_the_wildcard_policy_of_the_default_external_network_stays(api):
    net = _external(api)
    [pol] = api.get(f"/v2.0/rbac-policies?object_id={net['id']}", **ADMIN) \
        .data["rbac_policies"]
    assert pol["target_tenant"] == "*"
    url = f"/v2.0/rbac-policies/{pol['id']}"
    r = api.delete(url, status=409, **ADMIN)
    assert r.data["NeutronError"]["type"] == "RbacPolicyInUse"
    assert "Default external networks must be shared to everyone." in \
        r.data["NeutronError"]["message"]
    assert _error(api.put(url, {"rbac_policy": {"target_tenant": "p1"}}, status=409,
                          **ADMIN)) == "RbacPolicyInUse"
    # a project's own policy may go; once not the default, the wildcard too
    mine = api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_external",
        "target_tenant": "p1"}}, status=201, **ADMIN).data["rbac_policy"]
    api.delete(f"/v2.0/rbac-policies/{mine['id']}", status=204, **ADMIN)
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"is_default": False}}, status=200,
            **ADMIN)
    api.delete(url, status=204, **ADMIN)


def test_served_only_with_its_service_plugin(make_api):
    off = make_api(service_plugins=["router"])
    aliases = {e["alias"] for e in off.get("/v2.0/extensions").data["extensions"]}
    assert "auto-allocated-topology" not in aliases
    off.get(T + "/None", status=404)
    on = make_api()  # (the default: router and auto_allocate)
    aliases = {e["alias"] for e in on.get("/v2.0/extensions").data["extensions"]}
    assert "auto-allocated-topology" in aliases
