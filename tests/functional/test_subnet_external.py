"""subnet-external-network: subnets of external networks are visible to
every project, and a subnet's read-only ``router:external`` says whether
its network is external (Tempest's test_external_network_visibility
expects the alias whenever such subnets are visible)."""

ADMIN_PROJECT, TENANT = "ext-admin", "ext-tenant"


def test_subnets_of_external_networks_say_so(api):
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}
    assert "subnet-external-network" in aliases
    ext = api.network(project=ADMIN_PROJECT, admin=True, **{"router:external": True})
    ext_sub = api.subnet(ext["id"], cidr="172.30.0.0/24", project=ADMIN_PROJECT, admin=True)
    assert ext_sub["router:external"] is True
    own = api.network(project=TENANT)
    own_sub = api.subnet(own["id"], cidr="10.40.0.0/24", project=TENANT)
    assert own_sub["router:external"] is False

    listed = {s["id"]: s for s in api.get("/v2.0/subnets", project=TENANT,
                                          status=200).data["subnets"]}
    assert listed[ext_sub["id"]]["router:external"] is True
    assert listed[own_sub["id"]]["router:external"] is False
    shown = api.get(f"/v2.0/subnets/{ext_sub['id']}", project=TENANT, status=200).data
    assert shown["subnet"]["router:external"] is True

    only_ext = api.get("/v2.0/subnets?router:external=true", project=TENANT,
                       status=200).data["subnets"]
    assert [s["id"] for s in only_ext] == [ext_sub["id"]]
    not_ext = api.get("/v2.0/subnets?router:external=false", project=TENANT,
                      status=200).data["subnets"]
    assert [s["id"] for s in not_ext] == [own_sub["id"]]
    picked = api.get("/v2.0/subnets?fields=id&fields=router:external", project=TENANT,
                     status=200).data["subnets"]
    assert {s["id"]: s["router:external"] for s in picked} == {
        ext_sub["id"]: True, own_sub["id"]: False}

    # It follows the network, and cannot be set on the subnet.
    api.put(f"/v2.0/networks/{ext['id']}", {"network": {"router:external": False}},
            project=ADMIN_PROJECT, admin=True, status=200)
    again = api.get(f"/v2.0/subnets/{ext_sub['id']}", project=ADMIN_PROJECT, admin=True,
                    status=200).data["subnet"]
    assert again["router:external"] is False
    api.post("/v2.0/subnets", {"subnet": {"network_id": own["id"], "cidr": "10.41.0.0/24",
                                          "ip_version": 4, "router:external": True}},
             project=TENANT, status=400)
    api.put(f"/v2.0/subnets/{own_sub['id']}", {"subnet": {"router:external": True}},
            project=TENANT, status=400)
