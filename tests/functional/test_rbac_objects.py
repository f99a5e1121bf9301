"""RBAC on subnet pools, address scopes and address groups (aliases
rbac-subnetpool, rbac-address-scope, rbac-address-group): shared with
one project, the target sees and uses the object and another project
does not; ``shared`` per caller; the wildcard policy and ``shared=True``;
409 RbacPolicyInUse while the target uses it; retargeting; on SQLite
and PostgreSQL."""

import pytest

from quantum_ovs.db import host_view
from tests.functional.test_rbac import ADMIN, _ids, _policy
from tests.functional.test_subnetpools import _pool, _scope, _sub

P = "/v2.0/rbac-policies"
AG = "/v2.0/address-groups"


def test_aliases_advertised(api):
    got = {e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}
    assert {"rbac-subnetpool", "rbac-address-scope", "rbac-address-group"} <= got


def test_subnetpool_shared_with_one_project(api):
    pool = _pool(api, ["10.20.0.0/16"], default_prefixlen=24, name="a-pool")
    for i in range(2):  # filler pools of p1: a page of p2's stays full
        _pool(api, [f"10.3{i}.0.0/16"], name=f"z{i}")
    mine = _pool(api, ["10.40.0.0/16"], project="p2", name="b-pool")
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p2", status=404)
    pol = _policy(api, pool["id"], "p2", object_type="subnetpool")
    assert sorted(_ids(api, "/v2.0/subnetpools", "subnetpools", "p2")) == \
        sorted([pool["id"], mine["id"]])
    page = api.get("/v2.0/subnetpools?limit=1&sort_key=name&sort_dir=asc", project="p2",
                   status=200).data["subnetpools"]
    assert [x["id"] for x in page] == [pool["id"]]
    shown = api.get(f"/v2.0/subnetpools/{pool['id']}", project="p2",
                    status=200).data["subnetpool"]
    assert shown["shared"] is True
    # The owner reads it unshared (no wildcard); filters follow the caller.
    assert api.get(f"/v2.0/subnetpools/{pool['id']}", status=200).data["subnetpool"][
        "shared"] is False
    assert _ids(api, "/v2.0/subnetpools?shared=true", "subnetpools", "p2") == [pool["id"]]
    assert _ids(api, "/v2.0/subnetpools?shared=false", "subnetpools", "p2") == [mine["id"]]
    assert pool["id"] not in _ids(api, "/v2.0/subnetpools", "subnetpools", "p3")
    # The target allocates from it; another project cannot.
    net2 = api.network(project="p2")
    sub = _sub(api, net2["id"], project="p2", subnetpool_id=pool["id"])
    assert sub["cidr"].startswith("10.20.") and sub["subnetpool_id"] == pool["id"]
    net3 = api.network(project="p3")
    assert _sub(api, net3["id"], project="p3", subnetpool_id=pool["id"],
                status=404)["type"] == "SubnetPoolNotFound"
    # In use by the target: the policy stays (delete and retarget).
    err = api.delete(f"{P}/{pol['id']}", status=409).data["NeutronError"]
    assert err["type"] == "RbacPolicyInUse"
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=409)
    api.delete(f"/v2.0/subnets/{sub['id']}", project="p2", status=204)
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=200)
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p2", status=404)
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p3", status=200)
    api.delete(f"{P}/{pol['id']}", status=204)
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p3", status=404)
    # Policies go with the pool.
    _policy(api, pool["id"], "p4", object_type="subnetpool")
    api.delete(f"/v2.0/subnetpools/{pool['id']}", status=204)
    assert api.get(f"{P}?object_type=subnetpool", status=200).data["rbac_policies"] == []


def test_subnetpool_wildcard_and_shared_flag(api):
    pool = _pool(api, ["10.50.0.0/16"], default_prefixlen=24, project="admin-p", admin=True,
                 shared=True)
    pols = api.get(f"{P}?object_id={pool['id']}", **ADMIN, status=200).data["rbac_policies"]
    assert [(x["target_tenant"], x["action"]) for x in pols] == [("*", "access_as_shared")]
    net = api.network(project="p5")
    sub = _sub(api, net["id"], project="p5", subnetpool_id=pool["id"])
    # The wildcard goes only when no project but the owner uses the pool.
    assert api.delete(f"{P}/{pols[0]['id']}", **ADMIN, status=409).data[
        "NeutronError"]["type"] == "RbacPolicyInUse"
    # A project's own policy keeps it when the wildcard goes.
    _policy(api, pool["id"], "p5", object_type="subnetpool", **ADMIN)
    api.delete(f"{P}/{pols[0]['id']}", **ADMIN, status=204)
    assert api.get(f"/v2.0/subnetpools/{pool['id']}", **ADMIN, status=200).data[
        "subnetpool"]["shared"] is False
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p6", status=404)
    assert api.get(f"/v2.0/subnetpools/{pool['id']}", project="p5", status=200).data[
        "subnetpool"]["shared"] is True
    api.delete(f"/v2.0/subnets/{sub['id']}", project="p5", status=204)
    # A wildcard policy made by hand sets the column.
    wild = _policy(api, pool["id"], "*", object_type="subnetpool", **ADMIN)
    assert api.get(f"/v2.0/subnetpools/{pool['id']}", project="p6", status=200).data[
        "subnetpool"]["shared"] is True
    api.delete(f"{P}/{wild['id']}", **ADMIN, status=204)
    api.get(f"/v2.0/subnetpools/{pool['id']}", project="p6", status=404)


def test_address_scope_shared_with_one_project(api):
    scope = _scope(api, project="admin-p", admin=True)
    api.get(f"/v2.0/address-scopes/{scope['id']}", project="p2", status=404)
    pol = _policy(api, scope["id"], "p2", object_type="address_scope", **ADMIN)
    got = api.get(f"/v2.0/address-scopes/{scope['id']}", project="p2",
                  status=200).data["address_scope"]
    assert got["shared"] is True
    assert _ids(api, "/v2.0/address-scopes", "address_scopes", "p2") == [scope["id"]]
    assert _ids(api, "/v2.0/address-scopes", "address_scopes", "p3") == []
    # The target puts its pool in the scope; another project cannot see it.
    pool = _pool(api, ["10.60.0.0/16"], project="p2", address_scope_id=scope["id"])
    assert pool["address_scope_id"] == scope["id"]
    assert _pool(api, ["10.61.0.0/16"], project="p3", address_scope_id=scope["id"],
                 status=404)["type"] == "AddressScopeNotFound"
    assert api.delete(f"{P}/{pol['id']}", **ADMIN, status=409).data[
        "NeutronError"]["type"] == "RbacPolicyInUse"
    # (A pool in another project's scope takes no change but from an admin,
    # as in Neutron: its owner deletes it to leave the scope.)
    assert api.put(f"/v2.0/subnetpools/{pool['id']}", {"subnetpool": {
        "address_scope_id": None}}, project="p2", status=400).data[
        "NeutronError"]["type"] == "IllegalSubnetPoolUpdate"
    api.delete(f"/v2.0/subnetpools/{pool['id']}", project="p2", status=204)
    api.delete(f"{P}/{pol['id']}", **ADMIN, status=204)
    api.get(f"/v2.0/address-scopes/{scope['id']}", project="p2", status=404)
    # shared=True on update is the wildcard policy (and cannot be undone
    # through the attribute).
    api.put(f"/v2.0/address-scopes/{scope['id']}", {"address_scope": {"shared": True}},
            **ADMIN, status=200)
    pols = api.get(f"{P}?object_id={scope['id']}", **ADMIN, status=200).data["rbac_policies"]
    assert [x["target_tenant"] for x in pols] == ["*"]
    assert api.get(f"/v2.0/address-scopes/{scope['id']}", project="p3",
                   status=200).data["address_scope"]["shared"] is True
    api.delete(f"{P}/{pols[0]['id']}", **ADMIN, status=204)
    assert api.get(f"/v2.0/address-scopes/{scope['id']}", **ADMIN,
                   status=200).data["address_scope"]["shared"] is False


def test_address_group_shared_with_one_project(api):
    g = api.post(AG, {"address_group": {"name": "ag", "addresses": ["10.9.0.0/24"]}},
                 status=201).data["address_group"]
    sg2 = api.post("/v2.0/security-groups", {"security_group": {"name": "w"}},
                   project="p2", status=201).data["security_group"]
    rule = {"security_group_rule": {"security_group_id": sg2["id"], "direction": "ingress",
                                    "ethertype": "IPv4", "remote_address_group_id": g["id"]}}
    api.post("/v2.0/security-group-rules", rule, project="p2", status=404)
    pol = _policy(api, g["id"], "p2", object_type="address_group")
    assert _ids(api, AG, "address_groups", "p2") == [g["id"]]
    assert _ids(api, AG, "address_groups", "p3") == []
    assert "shared" not in api.get(f"{AG}/{g['id']}", project="p2",
                                   status=200).data["address_group"]
    # The target names it in a rule; deleting the policy is then refused.
    r = api.post("/v2.0/security-group-rules", rule, project="p2",
                 status=201).data["security_group_rule"]
    assert api.delete(f"{P}/{pol['id']}", status=409).data["NeutronError"]["type"] == \
        "RbacPolicyInUse"
    # The target's host receives the group like one of its own.
    net = api.network(project="p2")
    api.subnet(net["id"], project="p2")
    api.port(net["id"], project="p2", security_groups=[sg2["id"]], admin=True,
             **{"binding:host_id": "h2"})
    with api.db.reader() as s:
        view = host_view.full(s, "h2", 0)
    assert [(a.id, sorted(a.addresses)) for a in view.address_groups] == \
        [(g["id"], ["10.9.0.0/24"])]
    # Another project's rule cannot name it; the target cannot change it.
    sg3 = api.post("/v2.0/security-groups", {"security_group": {"name": "w"}},
                   project="p3", status=201).data["security_group"]
    rule["security_group_rule"]["security_group_id"] = sg3["id"]
    api.post("/v2.0/security-group-rules", rule, project="p3", status=404)
    api.put(f"{AG}/{g['id']}/add_addresses", {"addresses": ["10.8.0.0/24"]}, project="p2",
            status=403)
    # An update by the target is a 404, as Neutron answers it (its update
    # sees the group without the "shared" the API does not show), and
    # changes nothing; the owner's project reader, who reads it as its
    # own, gets a 403.
    err = api.put(f"{AG}/{g['id']}", {"address_group": {"name": "theirs"}}, project="p2",
                  status=404).data["NeutronError"]
    assert err["type"] == "HTTPNotFound"
    api.put(f"{AG}/{g['id']}", {"address_group": {"name": "theirs"}}, project="p1",
            headers={"X-Roles": "reader"}, status=403)
    assert api.get(f"{AG}/{g['id']}", status=200).data["address_group"]["name"] == "ag"
    api.delete(f"/v2.0/security-group-rules/{r['id']}", project="p2", status=204)
    api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, status=200)
    assert _ids(api, AG, "address_groups", "p2") == []
    api.post("/v2.0/security-group-rules", rule, project="p3", status=201)
    # The wildcard (admins only) shows it to all.
    _policy(api, g["id"], "*", object_type="address_group", status=403)
    _policy(api, g["id"], "*", object_type="address_group", **ADMIN)
    assert _ids(api, AG, "address_groups", "p4") == [g["id"]]


def test_a_pool_in_a_scope_is_shared_only_with_projects_that_have_the_scope(api):
    """Neutron's check on a subnet pool's policy: a policy of the pool's
    address scope must name the target (or every project), among the
    scope's policies the caller sees (an admin: all; a project: its own;
    the scope's owner not excepted); otherwise 400 InvalidInput and no
    policy.  Also for shared=True on create (the wildcard), and, here, on a
    change of target (Neutron checks only the create)."""
    scope = _scope(api, project="admin-p", admin=True)
    _policy(api, scope["id"], "p1", object_type="address_scope", **ADMIN)
    pool = _pool(api, ["10.70.0.0/16"], address_scope_id=scope["id"])
    err = _policy(api, pool["id"], "p2", object_type="subnetpool", status=400)
    assert err["type"] == "InvalidInput" and pool["id"] in err["message"]
    assert _policy(api, pool["id"], "*", object_type="subnetpool", **ADMIN,
                   status=400)["type"] == "InvalidInput"
    assert api.get(f"{P}?object_id={pool['id']}", **ADMIN, status=200).data[
        "rbac_policies"] == []
    # The scope reaches p2: an admin (who sees the scope's policies) may
    # share the pool with p2, its owner (who does not) still may not, and
    # the policy cannot move to p3, which lacks the scope.
    _policy(api, scope["id"], "p2", object_type="address_scope", **ADMIN)
    assert _policy(api, pool["id"], "p2", object_type="subnetpool",
                   status=400)["type"] == "InvalidInput"
    pol = _policy(api, pool["id"], "p2", object_type="subnetpool", **ADMIN)
    assert api.put(f"{P}/{pol['id']}", {"rbac_policy": {"target_tenant": "p3"}}, **ADMIN,
                   status=400).data["NeutronError"]["type"] == "InvalidInput"
    assert api.get(f"{P}/{pol['id']}", **ADMIN, status=200).data["rbac_policy"][
        "target_tenant"] == "p2"
    # The same policy again is a duplicate.
    assert _policy(api, pool["id"], "p2", object_type="subnetpool", **ADMIN,
                   status=409)["type"] == "DuplicateRbacPolicy"
    # A project's own scope: its own policy of the scope counts.
    own = _scope(api, project="p4")
    mine = _pool(api, ["10.71.0.0/16"], project="p4", address_scope_id=own["id"])
    assert _policy(api, mine["id"], "p5", project="p4", object_type="subnetpool",
                   status=400)["type"] == "InvalidInput"
    _policy(api, own["id"], "p5", project="p4", object_type="address_scope")
    _policy(api, mine["id"], "p5", project="p4", object_type="subnetpool")
    # shared=True on create is the wildcard policy: it needs the scope's.
    assert _pool(api, ["10.73.0.0/16"], address_scope_id=scope["id"], shared=True,
                 **ADMIN, status=400)["type"] == "InvalidInput"
    api.put(f"/v2.0/address-scopes/{scope['id']}", {"address_scope": {"shared": True}},
            **ADMIN, status=200)
    assert _pool(api, ["10.73.0.0/16"], address_scope_id=scope["id"], shared=True,
                 **ADMIN)["shared"] is True
    _policy(api, pool["id"], "*", object_type="subnetpool", **ADMIN)
    # A pool outside any scope is shared as before.
    free = _pool(api, ["10.72.0.0/16"])
    _policy(api, free["id"], "p7", object_type="subnetpool")


def test_refused_updates_of_shared_objects_are_403_but_an_address_groups_404(api):
    """What Neutron answers a project an RBAC policy shares an object with
    when it tries to change it: 403 for a network, a subnet pool, an
    address scope and a security group; 404 (HTTPNotFound) for an address
    group; 404 (not found) for a project it is not shared with."""
    net = api.network()
    pool = _pool(api, ["10.80.0.0/16"])
    scope = _scope(api)
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "s"}},
                  status=201).data["security_group"]
    g = api.post(AG, {"address_group": {"name": "ag", "addresses": []}},
                 status=201).data["address_group"]
    cases = [("/v2.0/networks", "network", net["id"], 403),
             ("/v2.0/subnetpools", "subnetpool", pool["id"], 403),
             ("/v2.0/address-scopes", "address_scope", scope["id"], 403),
             ("/v2.0/security-groups", "security_group", sg["id"], 403),
             (AG, "address_group", g["id"], 404)]
    for path, kind, oid, want in cases:
        _policy(api, oid, "p2", object_type=kind)
        body = {kind: {"name": "theirs"}}
        api.get(f"{path}/{oid}", project="p2", status=200)
        api.put(f"{path}/{oid}", body, project="p2", status=want)
        api.put(f"{path}/{oid}", body, project="p3", status=404)
        assert api.get(f"{path}/{oid}", status=200).data[kind]["name"] != "theirs"


def test_a_security_groups_shared_is_shown_and_filters(api):
    """security-groups-shared-filtering: ``shared`` is true where an RBAC
    policy shares the group with the caller's project or with every
    project (for its owner too, as Neutron), and ``?shared=`` filters on
    it as the caller reads it; it is not given on a create."""
    admin = dict(project="admin-p", admin=True)
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                  status=201, **admin).data["security_group"]
    assert sg["shared"] is False

    def listed(project, q="", **kw):
        return sorted((g["name"], g["shared"]) for g in api.get(
            "/v2.0/security-groups" + q, project=project, **kw).data["security_groups"])
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "security_group", "object_id": sg["id"], "action": "access_as_shared",
        "target_tenant": "p1"}}, status=201, **admin)
    assert listed("p1") == [("default", False), ("web", True)]
    assert listed("p1", "?shared=True") == [("web", True)]
    assert listed("p1", "?shared=False") == [("default", False)]
    assert listed("p2", "?shared=True") == []
    assert api.get(f"/v2.0/security-groups/{sg['id']}", **admin) \
        .data["security_group"]["shared"] is False  # (shared with p1, not its owner)
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "security_group", "object_id": sg["id"], "action": "access_as_shared",
        "target_tenant": "*"}}, status=201, **admin)
    assert api.get(f"/v2.0/security-groups/{sg['id']}", **admin) \
        .data["security_group"]["shared"] is True
    assert listed("p2", "?shared=True") == [("web", True)]
    assert ("web", True) in listed("admin-p", "?shared=true", admin=True)
    r = api.post("/v2.0/security-groups", {"security_group": {"name": "x", "shared": True}},
                 status=400)
    assert "not allowed in POST" in r.data["NeutronError"]["message"]
    api.get("/v2.0/security-groups?shared=maybe", status=400)


# collection path -> (RBAC object type, member, body of a new one)
SHAREABLE = {
    "/v2.0/networks": ("network", "network", {}),
    "/v2.0/subnetpools": ("subnetpool", "subnetpool",
                          {"prefixes": ["10.%d.0.0/16"], "default_prefixlen": 24}),
    "/v2.0/address-scopes": ("address_scope", "address_scope", {"ip_version": 4}),
}


@pytest.mark.parametrize("path", sorted(SHAREABLE))
def test_shared_is_no_sort_key(api, path):
    """p2 shares "wild" with every project and "targ" with p1 alone: p1
    reads both as shared=True and may not list p2's policies.  Sorting on
    ``shared`` ordered by the wildcard column, which told them apart (and
    so that p2 wrote a policy naming p1).  As Neutron (``shared`` has no
    is_sort_key in neutron-lib's network, subnetpool and address_scope
    definitions; api_common.get_sorts answers 400), the key is refused,
    for every caller; the other sorts are unchanged.  (Review 18a.)"""
    otype, member, body = SHAREABLE[path]
    coll = path.rsplit("/", 1)[1].replace("-", "_")

    def make(name, n, project="p2", admin=False, **kw):
        b = {k: ([x % n for x in v] if isinstance(v, list) else v) for k, v in body.items()}
        return api.post(path, {member: dict(b, name=name, **kw)}, project=project,
                        admin=admin, status=201).data[member]
    wild = make("wild", 100, shared=True, tenant_id="p2", **ADMIN)
    targ = make("targ", 101)
    _policy(api, targ["id"], "p1", project="p2", object_type=otype)
    seen = api.get(path, status=200).data[coll]
    assert sorted((o["name"], o["shared"]) for o in seen) == [("targ", True), ("wild", True)]
    for who in ({}, {"project": "p2"}, ADMIN):
        for d in ("asc", "desc"):
            r = api.get(f"{path}?sort_key=shared&sort_dir={d}&sort_key=name&sort_dir=desc",
                        status=400, **who)
            assert r.data["NeutronError"]["message"] == \
                "shared is an invalid attribute for sort_key"
    assert [o["id"] for o in api.get(f"{path}?sort_key=name&sort_dir=desc",
                                     status=200).data[coll]] == [wild["id"], targ["id"]]
    # (a filter on it stays, as the caller reads it)
    assert len(api.get(f"{path}?shared=true", status=200).data[coll]) == 2


def test_a_project_a_security_group_is_shared_with_reads_and_filters_its_tags(api):
    """As Neutron's get_security_group:tags (rule:shared_security_group):
    a project a group is shared with reads its tags, and filters on them;
    it does not change them (update_security_group:tags is the owner's)."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                  status=201).data["security_group"]
    api.put(f"/v2.0/security-groups/{sg['id']}/tags", {"tags": ["blue-x"]}, status=200)
    _policy(api, sg["id"], "p2", object_type="security_group")
    mine = api.post("/v2.0/security-groups", {"security_group": {"name": "mine"}},
                    project="p2", status=201).data["security_group"]
    api.put(f"/v2.0/security-groups/{mine['id']}/tags", {"tags": ["own"]}, project="p2",
            status=200)
    assert api.get(f"/v2.0/security-groups/{sg['id']}", project="p2",
                   status=200).data["security_group"]["tags"] == ["blue-x"]
    assert api.get(f"/v2.0/security-groups/{sg['id']}/tags", project="p2",
                   status=200).data["tags"] == ["blue-x"]
    r = api.put(f"/v2.0/security-groups/{sg['id']}/tags/red", project="p2")
    assert r.status_int in (403, 404), r.status

    def names(q, project="p2"):
        return sorted(g["name"] for g in api.get("/v2.0/security-groups" + q,
                                                 project=project, status=200)
                      .data["security_groups"] if g["name"] != "default")
    assert names("") == ["mine", "web"]
    assert names("?tags=blue-x") == ["web"]
    assert names("?tags=other-y") == []
    assert names("?not-tags=blue-x") == ["mine"]
    assert names("?tags=own") == ["mine"]
    assert names("?tags=") == ["mine", "web"]  # (no tag: no filter)
    # A group not shared with p2 is not listed, whatever its tags.
    hidden = api.post("/v2.0/security-groups", {"security_group": {"name": "hidden"}},
                      project="p3", status=201).data["security_group"]
    api.put(f"/v2.0/security-groups/{hidden['id']}/tags", {"tags": ["blue-x"]},
            project="p3", status=200)
    assert names("?tags=blue-x") == ["web"]


def test_a_project_a_security_group_is_shared_with_cannot_add_rules_to_it(api):
    """Neutron's ADMIN_OR_SG_OWNER_MEMBER: a rule is made in its group's
    project; a project the group is shared with may put its ports in the
    group, not open it (a rule there would apply to the owner's ports and
    every other sharer's)."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                  status=201).data["security_group"]
    _policy(api, sg["id"], "p2", object_type="security_group")
    rule = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress",
                                    "protocol": "tcp", "port_range_min": 22,
                                    "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}}
    assert api.get(f"/v2.0/security-groups/{sg['id']}", project="p2", status=200)
    r = api.post("/v2.0/security-group-rules", rule, project="p2", status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
    # in a bulk too (naming the owner's project in the body is a 400 first)
    bulk = {"security_group_rules": [rule["security_group_rule"]]}
    api.post("/v2.0/security-group-rules", bulk, project="p2", status=403)
    # a project it is not shared with: not found, as before
    r = api.post("/v2.0/security-group-rules", rule, project="p3", status=404)
    assert r.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    rules = api.get(f"/v2.0/security-groups/{sg['id']}", status=200).data[
        "security_group"]["security_group_rules"]
    assert not [x for x in rules if x["port_range_min"] == 22]
    # the owner and an admin may
    made = api.post("/v2.0/security-group-rules", rule, status=201).data["security_group_rule"]
    assert made["project_id"] == "p1"
    api.delete(f"/v2.0/security-group-rules/{made['id']}", status=204)
    made = api.post("/v2.0/security-group-rules", rule, project="admin-p", admin=True,
                    status=201).data["security_group_rule"]
    assert made["project_id"] == "p1"
