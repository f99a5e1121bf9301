"""Projects, admins, shared networks and the policy file."""

import os
import time

from quantum_ovs.api.router import make_app


def test_projects_are_isolated(api):
    mine = api.network(project="p1")
    api.network(project="p2")
    names = [n["id"] for n in api.get("/v2.0/networks", project="p1", status=200)
             .data["networks"]]
    assert names == [mine["id"]]
    for method in ("get", "delete"):
        r = getattr(api, method)(f"/v2.0/networks/{mine['id']}", project="p2", status=404)
        assert r.data["NeutronError"]["type"] == "NetworkNotFound"
    api.put(f"/v2.0/networks/{mine['id']}", {"network": {"name": "x"}}, project="p2",
            status=404)
    api.post("/v2.0/subnets", {"subnet": {"network_id": mine["id"], "cidr": "10.0.0.0/24",
                                          "ip_version": 4}}, project="p2", status=404)
    assert len(api.get("/v2.0/networks", admin=True, project="admin", status=200)
               .data["networks"]) == 2


def test_only_admin_creates_shared_or_for_others(api):
    r = api.post("/v2.0/networks", {"network": {"name": "s", "shared": True}}, status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
    api.post("/v2.0/networks", {"network": {"name": "s", "shared": False}}, status=201)
    # naming another project: a bad request in Neutron, not a policy refusal
    api.post("/v2.0/networks", {"network": {"name": "o", "project_id": "p9"}}, status=400)
    api.post("/v2.0/networks", {"network": {"name": "o", "tenant_id": "p9",
                                            "project_id": "p8"}}, admin=True, status=400)
    net = api.post("/v2.0/networks", {"network": {"name": "o", "tenant_id": "p9"}},
                   admin=True, status=201).data["network"]
    assert net["project_id"] == "p9"
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": True}}, project="p9",
            status=403)


def test_shared_network_visible_and_usable(api):
    shared = api.network(project="admin", admin=True, shared=True, name="public")
    sub = api.subnet(shared["id"], project="admin", admin=True)
    assert [n["name"] for n in api.get("/v2.0/networks", project="p2", status=200)
            .data["networks"]] == ["public"]
    assert api.get(f"/v2.0/subnets/{sub['id']}", project="p2", status=200)
    port = api.port(shared["id"], project="p2")
    assert port["project_id"] == "p2"
    # a tenant may not create subnets on someone else's shared network
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": shared["id"],
                                              "cidr": "10.9.0.0/24", "ip_version": 4}},
                 project="p2", status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
    # nor choose a MAC there
    api.post("/v2.0/ports", {"port": {"network_id": shared["id"],
                                      "mac_address": "fa:16:3e:00:00:09"}},
             project="p2", status=403)
    # the network owner sees the tenant's port on its network; others don't
    assert [p["id"] for p in api.get("/v2.0/ports", project="admin", admin=True,
                                     status=200).data["ports"]] == [port["id"]]
    assert api.get("/v2.0/ports", project="p3", status=200).data["ports"] == []
    # unsharing while another project has ports: 409
    r = api.put(f"/v2.0/networks/{shared['id']}", {"network": {"shared": False}},
                project="admin", admin=True, status=409)
    assert r.data["NeutronError"]["type"] == "InvalidSharedSetting"


def test_no_project_header_uses_default_project(api):
    r = api.app.post_json("/v2.0/networks", {"network": {"name": "anon"}},
                          headers={"X-Auth-Token": ""}, status=201)
    assert r.json["network"]["project_id"] == "default"
    r = api.app.get("/v2.0/networks", headers={"X-Tenant-Id": "default"})
    assert [n["name"] for n in r.json["networks"]] == ["anon"]


def test_policy_file_changes_rules(tmp_path, make_api):
    """[oslo_policy] policy_file overrides the rules registered in code, and
    an edit of the file applies to the next request."""
    api = make_api()
    path = tmp_path / "policy.yaml"
    path.write_text('"create_network": "role:netadmin"\n')
    conf = api.plugin.conf
    conf.set_override("policy_file", str(path), group="oslo_policy")
    import webtest
    app = webtest.TestApp(make_app(conf, api.plugin))
    r = app.post_json("/v2.0/networks", {"network": {"name": "x"}},
                      headers={"X-Project-Id": "p1"}, status=403)
    assert r.json["NeutronError"]["type"] == "PolicyNotAuthorized"
    app.post_json("/v2.0/networks", {"network": {"name": "x"}},
                  headers={"X-Project-Id": "p1", "X-Roles": "netadmin"}, status=201)
    path.write_text('"create_network": ""\n')
    os.utime(path, (time.time() + 5, time.time() + 5))
    app.post_json("/v2.0/networks", {"network": {"name": "x"}},
                  headers={"X-Project-Id": "p1"}, status=201)
