"""RBAC policies (rbac-policies, rbac-security-groups): CRUD, policy
defaults and errors; networks shared with one project (visibility in the
list query, ``shared`` per caller, ports, in-use 409s), ``shared=True``
as the wildcard policy, access_as_external, and security groups shared
with a project; on SQLite and PostgreSQL."""

import pytest

from tests.functional.test_agent_api import register
from tests.functional.test_floatingips import _topology
from tests.functional.test_host_view_routers import full_view

P = "/v2.0/rbac-policies"
ADMIN = dict(project="admin-p", admin=True)


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _policy(api, object_id, target, project="p1", status=201, object_type="network",
            action="access_as_shared", admin=False):
    r = api.post(P, {"rbac_policy": {"object_type": object_type, "object_id": object_id,
                                     "action": action, "target_tenant": target}},
                 project=project, admin=admin, status=status)
    return r.data["rbac_policy"] if status == 201 else r.data["NeutronError"]


def _ids(api, path, key, project):
    return [x["id"] for x in api.get(path, project=project, status=200).data[key]]


def test_crud_filters_fields_paging_and_errors(api):
    net = api.network(project="p1")
    pol = _policy(api, net["id"], "p2")
    assert pol == {"id": pol["id"], "project_id": "p1", "tenant_id": "p1",
                   "object_type": "network", "object_id": net["id"],
                   "action": "access_as_shared", "target_tenant": "p2"}
    assert api.get(f"{P}/{pol['id']}", status=200).data["rbac_policy"] == pol
    # Only the policy's project (and admins) see it.
    api.get(f"{P}/{pol['id']}", project="p2", status=404)
    assert _ids(api, P, "rbac_policies", "p2") == []
    others = [_policy(api, net["id"], t)["id"] for t in ("p3", "p4", "p5")]
    assert _policy(api, net["id"], "p2", status=409)["type"] == "DuplicateRbacPolicy"
    got = api.get(f"{P}?target_tenant=p3&fields=id&fields=target_tenant",
                  status=200).data["rbac_policies"]
    assert got == [{"id": others[0], "target_tenant": "p3"}]
    assert len(api.get(f"{P}?object_id={net['id']}&action=access_as_shared",
                       status=200).data["rbac_policies"]) == 4
    assert api.get(f"{P}?action=access_as_external", status=200).data["rbac_policies"] == []
    pages, marker = [], None
    while True:
        q = f"{P}?limit=2&sort_key=target_tenant&sort_dir=asc" + (
            f"&marker={marker}" if marker else "")
        page = api.get(q, status=200).data["rbac_policies"]
        if not page:
            break
        pages.append([x["target_tenant"] for x in page])
        marker = page[-1]["id"]
    assert pages == [["p2", "p3"], ["p4", "p5"]]
    # Only target_tenant changes.
    upd = api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p6"}},
                  status=200).data["rbac_policy"]
    assert upd["target_tenant"] == "p6"
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"action": "access_as_external"}},
            status=400)
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=409)
    # Bad input: 400 and no row.
    bad = _policy(api, net["id"], "p7", object_type="router", status=400)
    assert bad["type"] in ("InvalidInput", "HTTPBadRequest")
    assert "object_type" in bad["message"]
    bad = _policy(api, net["id"], "p7", action="access_as_owner", status=400)
    assert bad["type"] == "InvalidActionForType"
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "g"}},
                  status=201).data["security_group"]
    _policy(api, sg["id"], "p7", object_type="security_group",
            action="access_as_external", status=400)
    _policy(api, "not-a-uuid", "p7", status=400)
    api.post(P, {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                 "action": "access_as_shared"}}, status=400)
    # A tenant shares only what it owns: another's network, seen (shared
    # with it) or not, is a bad request, as an absent one (Neutron's 400).
    for project in ("p8", "p3"):
        err = _policy(api, net["id"], "p9", project=project, status=400)
        assert err["type"] == "InvalidInput" and "do not own" in err["message"]
    absent = _policy(api, "4a0b3e44-58a8-4a4e-9b4c-6f4e0e3c2b11", "p9", project="p8",
                     status=400)
    assert absent["message"] == err["message"]
    assert _policy(api, "4a0b3e44-58a8-4a4e-9b4c-6f4e0e3c2b11", "p9", status=404,
                   **ADMIN)["type"] == "NetworkNotFound"
    # Only admins share with everyone.
    assert _policy(api, net["id"], "*", status=403)["type"] == "PolicyNotAuthorized"
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "*"}}, status=403)
    wild = _policy(api, net["id"], "*", **ADMIN)
    assert wild["project_id"] == "admin-p"
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["shared"]
    api.delete(f"{P}/{wild['id']}", **ADMIN, status=204)
    assert len(api.get(P, status=200).data["rbac_policies"]) == 4
    for pid in others:
        api.delete(f"{P}/{pid}", status=204)
    api.delete(f"{P}/{others[0]}", status=404)
    # The network's policies go with it.
    api.delete(f"/v2.0/networks/{net['id']}", status=204)
    assert api.get(P, status=200).data["rbac_policies"] == []


def test_the_policys_owner_who_does_not_own_the_object_cannot_retarget_it(api):
    """Only an admin or the object's owner changes a policy (Neutron's
    validate_rbac_policy_change before an update; the update answers its
    refusal as 409 RbacPolicyInUse): a project that owns the policy (an
    admin made it in that project) but not the object cannot point it at
    another project; it may still delete it, as in Neutron."""
    net = api.post("/v2.0/networks", {"network": {"name": "adm"}}, **ADMIN,
                   status=201).data["network"]
    pol = api.post(P, {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                       "action": "access_as_shared", "target_tenant": "p3",
                                       "project_id": "p3"}}, **ADMIN,
                   status=201).data["rbac_policy"]
    r = api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p4"}}, project="p3",
                status=409)
    err = r.data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    assert "Only admins can manipulate policies on objects they do not own" in \
        err["message"]
    assert api.get(f"{P}/{pol['id']}", project="p3",
                   status=200).data["rbac_policy"]["target_tenant"] == "p3"
    api.get(f"/v2.0/networks/{net['id']}", project="p4", status=404)
    api.get(f"/v2.0/networks/{net['id']}", project="p3", status=200)
    # The object's owner (here the admin) retargets it; its owner deletes it.
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p5"}}, **ADMIN,
            status=200)
    api.delete(f"{P}/{pol['id']}", project="p3", status=204)
    api.get(f"/v2.0/networks/{net['id']}", project="p5", status=404)


def test_network_shared_with_one_project(api):
    net = api.network(project="p1", name="a-net")
    sub = api.subnet(net["id"], project="p1")
    # Filler networks of p1 around it: pages must stay full.
    for i in range(3):
        api.network(project="p1", name=f"z{i}")
    pol = _policy(api, net["id"], "p2")
    mine = api.network(project="p2", name="b-net")
    assert sorted(_ids(api, "/v2.0/networks", "networks", "p2")) == \
        sorted([net["id"], mine["id"]])
    page = api.get("/v2.0/networks?limit=1&sort_key=name&sort_dir=asc", project="p2",
                   status=200).data["networks"]
    assert [n["id"] for n in page] == [net["id"]]
    shown = api.get(f"/v2.0/networks/{net['id']}", project="p2", status=200).data["network"]
    assert shown["shared"] is True
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["shared"] is False
    assert api.get(f"/v2.0/networks?shared=false&id={net['id']}",
                   status=200).data["networks"][0]["shared"] is False
    # The shared filter reads as the caller's ``shared``.
    assert _ids(api, "/v2.0/networks?shared=true", "networks", "p2") == [net["id"]]
    assert _ids(api, "/v2.0/networks?shared=false", "networks", "p2") == [mine["id"]]
    assert _ids(api, "/v2.0/networks?shared=true", "networks", "p1") == []
    # p3 sees nothing of it.
    api.get(f"/v2.0/networks/{net['id']}", project="p3", status=404)
    assert _ids(api, "/v2.0/networks", "networks", "p3") == []
    api.get(f"/v2.0/subnets/{sub['id']}", project="p3", status=404)
    api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, project="p3", status=404)
    # p2: the subnet, a port; no subnet of its own (the network's owner's).
    api.get(f"/v2.0/subnets/{sub['id']}", project="p2", status=200)
    port = api.port(net["id"], project="p2")
    api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24",
                                          "ip_version": 4}}, project="p2", status=403)
    # The policy cannot go, nor move, while p2 has a port there.
    err = api.delete(f"{P}/{pol['id']}", status=409).data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=409)
    # ... unless the wildcard covers p2, or the port goes.
    wild = _policy(api, net["id"], "*", **ADMIN)
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=200)
    err = api.delete(f"{P}/{wild['id']}", **ADMIN, status=409).data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    # shared=False is refused too: p2's port needs the wildcard.
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, **ADMIN,
            status=409)
    api.delete(f"/v2.0/ports/{port['id']}", project="p2", status=204)
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, **ADMIN,
            status=200)
    assert api.get(f"{P}?action=access_as_shared&target_tenant=*",
                   **ADMIN, status=200).data["rbac_policies"] == []
    api.get(f"/v2.0/networks/{net['id']}", project="p2", status=404)
    assert api.get(f"/v2.0/networks/{net['id']}", project="p3",
                   status=200).data["network"]["shared"] is True


def test_shared_true_is_the_wildcard_policy(api):
    net = api.network(**ADMIN, shared=True)
    pols = api.get(f"{P}?object_id={net['id']}", **ADMIN, status=200).data["rbac_policies"]
    assert [(x["action"], x["target_tenant"], x["project_id"]) for x in pols] == \
        [("access_as_shared", "*", "admin-p")]
    api.port(net["id"], project="p2")
    # A project's own policy keeps its port's access when shared goes.
    _policy(api, net["id"], "p2", **ADMIN)
    r = api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, **ADMIN,
                status=200).data["network"]
    assert r["shared"] is False
    assert api.get(f"/v2.0/networks/{net['id']}", project="p2",
                   status=200).data["network"]["shared"] is True
    api.get(f"/v2.0/networks/{net['id']}", project="p3", status=404)
    # Setting shared again makes the wildcard policy again.
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": True}}, **ADMIN,
            status=200)
    assert len(api.get(f"{P}?object_id={net['id']}&target_tenant=*", **ADMIN,
                       status=200).data["rbac_policies"]) == 1
    api.get(f"/v2.0/networks/{net['id']}", project="p3", status=200)


def test_access_as_external(l3):
    api = l3
    ext = api.post("/v2.0/networks", {"network": {"name": "public"}}, **ADMIN,
                   status=201).data["network"]
    api.subnet(ext["id"], cidr="172.24.4.0/24", **ADMIN)
    assert ext["router:external"] is False
    pol = _policy(api, ext["id"], "p2", action="access_as_external", **ADMIN)
    # The policy makes the network external, visible to its target only.
    got = api.get(f"/v2.0/networks/{ext['id']}", project="p2", status=200).data["network"]
    assert got["router:external"] is True and got["shared"] is False
    api.get(f"/v2.0/networks/{ext['id']}", project="p3", status=404)
    assert ext["id"] not in _ids(api, "/v2.0/networks?router:external=true", "networks",
                                 "p3")
    _, _, router, *_ = _topology(api, project="p2", ext=(ext, None))
    api.post("/v2.0/routers", {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["id"]}}}, project="p3", status=404)
    fip = api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}},
                   project="p2", status=201).data["floatingip"]
    err = api.delete(f"{P}/{pol['id']}", **ADMIN, status=409).data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    api.delete(f"/v2.0/floatingips/{fip['id']}", project="p2", status=204)
    api.delete(f"{P}/{pol['id']}", **ADMIN, status=409)  # the router's gateway
    api.put(f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": None}},
            project="p2", status=200)
    api.delete(f"{P}/{pol['id']}", **ADMIN, status=204)
    api.get(f"/v2.0/networks/{ext['id']}", project="p2", status=404)
    # The last access_as_external policy gone, the network is internal again.
    assert api.get(f"/v2.0/networks/{ext['id']}", **ADMIN, status=200).data["network"][
        "router:external"] is False
    # ... which a router of the owner's own with its gateway there refuses.
    wild = _policy(api, ext["id"], "*", action="access_as_external", **ADMIN)
    own = api.post("/v2.0/routers", {"router": {"name": "own", "external_gateway_info": {
        "network_id": ext["id"]}}}, **ADMIN, status=201).data["router"]
    err = api.delete(f"{P}/{wild['id']}", **ADMIN, status=409).data["NeutronError"]
    assert err["type"] == "ExternalNetworkInUse"
    assert api.get(f"/v2.0/networks/{ext['id']}", **ADMIN, status=200).data["network"][
        "router:external"] is True
    api.delete(f"/v2.0/routers/{own['id']}", **ADMIN, status=204)
    api.delete(f"{P}/{wild['id']}", **ADMIN, status=204)
    assert api.get(f"/v2.0/networks/{ext['id']}", **ADMIN, status=200).data["network"][
        "router:external"] is False
    # router:external=True: the wildcard policy; False removes the policies.
    pub = api.post("/v2.0/networks", {"network": {"name": "p", "router:external": True}},
                   **ADMIN, status=201).data["network"]
    api.get(f"/v2.0/networks/{pub['id']}", project="p3", status=200)
    assert [x["target_tenant"] for x in api.get(
        f"{P}?object_id={pub['id']}&action=access_as_external", **ADMIN,
        status=200).data["rbac_policies"]] == ["*"]
    api.put(f"/v2.0/networks/{pub['id']}", {"network": {"router:external": False}},
            **ADMIN, status=200)
    api.get(f"/v2.0/networks/{pub['id']}", project="p3", status=404)
    assert api.get(f"{P}?object_id={pub['id']}", **ADMIN, status=200).data[
        "rbac_policies"] == []


def test_security_group_shared_with_a_project(api):
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                  status=201).data["security_group"]
    api.get(f"/v2.0/security-groups/{sg['id']}", project="p2", status=404)
    pol = _policy(api, sg["id"], "p2", object_type="security_group")
    assert api.get(f"/v2.0/security-groups/{sg['id']}", project="p2",
                   status=200).data["security_group"]["name"] == "web"
    assert sg["id"] in _ids(api, "/v2.0/security-groups", "security_groups", "p2")
    assert sg["id"] not in _ids(api, "/v2.0/security-groups", "security_groups", "p3")
    # p2 uses it on its port and as a remote group of its own group.
    net = api.network(project="p2")
    api.subnet(net["id"], project="p2")
    port = api.port(net["id"], project="p2", security_groups=[sg["id"]])
    assert port["security_groups"] == [sg["id"]]
    own = api.post("/v2.0/security-groups", {"security_group": {"name": "mine"}},
                   project="p2", status=201).data["security_group"]
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": own["id"], "direction": "ingress",
        "remote_group_id": sg["id"]}}, project="p2", status=201)
    # p3 can do neither.
    net3 = api.network(project="p3")
    api.post("/v2.0/ports", {"port": {"network_id": net3["id"],
                                      "security_groups": [sg["id"]]}},
             project="p3", status=404)
    # The policy stays while p2's port uses the group.
    err = api.delete(f"{P}/{pol['id']}", status=409).data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": []}}, project="p2",
            status=200)
    api.delete(f"{P}/{pol['id']}", status=204)
    api.get(f"/v2.0/security-groups/{sg['id']}", project="p2", status=404)


def test_host_view_gives_a_shared_group_to_the_host_of_its_users_port(api):
    host = "hv-rbac"
    register(api, host, "192.0.2.7", integration_bridge="br-int")
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "shared"}},
                  status=201).data["security_group"]
    rule = api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_group_id": sg["id"]}},
        status=201).data["security_group_rule"]
    _policy(api, sg["id"], "p2", object_type="security_group")
    net = api.network(project="p2")
    api.subnet(net["id"], project="p2")
    port = api.port(net["id"], project="p2", security_groups=[sg["id"]])
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": host}}, admin=True,
            status=200)
    view = full_view(api, host)
    assert [p.security_groups for p in view.ports if p.id == port["id"]] == [(sg["id"],)]
    group = next(g for g in view.security_groups if g.id == sg["id"])
    assert rule["id"] in {r.id for r in group.rules}
    # p2's port is a member: the group's own remote-group rule matches it.
    assert port["fixed_ips"][0]["ip_address"] in group.member_ips


def test_rbac_policy_quota(api):
    """[quotas] quota_rbac_policy (10), as Neutron's: the policies a project
    makes through the API; a shared network's own policy counts and is
    never refused."""
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"]["rbac_policy"] == 10
    api.put("/v2.0/quotas/p1", {"quota": {"rbac_policy": 2}}, admin=True, status=200)
    net = api.network(project="p1")
    _policy(api, net["id"], "p2")
    _policy(api, net["id"], "p3")
    err = _policy(api, net["id"], "p4", status=409)
    assert err["type"] == "OverQuota" and "rbac_policy" in err["message"]
    assert _ids(api, P, "rbac_policies", "p1") and \
        len(_ids(api, P, "rbac_policies", "p1")) == 2  # nothing of the refused one
    # An admin's shared network makes its wildcard policy past the limit.
    api.put("/v2.0/quotas/admin-p", {"quota": {"rbac_policy": 0}}, admin=True, status=200)
    shared = api.post("/v2.0/networks", {"network": {"name": "s", "shared": True}},
                      status=201, **ADMIN).data["network"]
    assert shared["shared"] is True
    got = api.get("/v2.0/quotas/p1/details", status=200).data["quota"]["rbac_policy"]
    assert got == {"limit": 2, "used": 2, "reserved": 0}
    api.put("/v2.0/quotas/p1", {"quota": {"rbac_policy": 3}}, admin=True, status=200)
    _policy(api, net["id"], "p4")
