"""The Essex API (Quantum v1.0 and v1.1) over the same data as v2.0.

Mirrors the examples of the Quantum API v1.0/v1.1 developer guides:
create/list/show/update/delete networks and ports, plug and unplug
attachments, details, v1.1 filters, and each version's faults.
"""

import pytest

T = "tenant1"


def v(version, path=""):
    return f"/v{version}/tenants/{T}/networks{path}"


def _create_net(api, version, name="net1", project=T):
    r = api.post(f"/v{version}/tenants/{project}/networks", {"network": {"name": name}},
                 project=project, status=200 if version == "1.0" else 202)
    assert set(r.data["network"]) == {"id"}
    return r.data["network"]["id"]


def _create_port(api, version, net_id, state=None):
    body = {"port": {"state": state}} if state else None
    r = api.post(v(version, f"/{net_id}/ports"), body, project=T,
                 status=200 if version == "1.0" else 202)
    assert set(r.data["port"]) == {"id"}
    return r.data["port"]["id"]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_network_life_cycle(api, version):
    net_id = _create_net(api, version)
    other = _create_net(api, version, "net2")
    listed = api.get(v(version), project=T, status=200).data
    assert sorted(listed["networks"], key=lambda n: n["id"]) == sorted(
        [{"id": net_id}, {"id": other}], key=lambda n: n["id"])
    shown = api.get(v(version, f"/{net_id}"), project=T, status=200).data["network"]
    want = {"id": net_id, "name": "net1"}
    if version == "1.1":
        want["op-status"] = "UP"
    assert shown == want
    detail = api.get(v(version, "/detail"), project=T, status=200).data["networks"]
    assert want in detail and len(detail) == 2
    assert api.get(v(version, "?detail=true"), project=T,
                   status=200).data["networks"] == detail
    r = api.put(v(version, f"/{net_id}"), {"network": {"name": "renamed"}}, project=T,
                status=204)
    assert r.body == b""
    # As Quantum: only the resource's key is read; other keys beside it or
    # in it (plugins' "data extensions") are passed over, not refused.
    extra = api.post(v(version), {"network": {"name": "x", "x-ext": 1}, "ports": [],
                                  "security_groups": {}}, project=T,
                     status=200 if version == "1.0" else 202).data["network"]["id"]
    api.put(v(version, f"/{extra}"), {"network": {"name": "renamed", "x-ext": 2},
                                      "other": 1}, project=T, status=204)
    api.delete(v(version, f"/{extra}"), project=T, status=204)
    assert api.get(v(version, f"/{net_id}"), project=T,
                   status=200).data["network"]["name"] == "renamed"
    api.delete(v(version, f"/{net_id}"), project=T, status=204)
    assert api.get(v(version), project=T, status=200).data["networks"] == [{"id": other}]


def test_v11_network_is_a_v20_network(api):
    net_id = _create_net(api, "1.1", "shared-data")
    v2 = api.get(f"/v2.0/networks/{net_id}", project=T, status=200).data["network"]
    assert v2["name"] == "shared-data" and v2["project_id"] == T
    # And a v2.0 network (with its subnet) is there in v1.1.
    net = api.network(project=T, name="from-v2")
    api.subnet(net["id"], "10.0.0.0/24", project=T)
    names = {n["name"] for n in api.get(v("1.1", "/detail"), project=T,
                                        status=200).data["networks"]}
    assert names == {"shared-data", "from-v2"}
    port_id = _create_port(api, "1.1", net["id"], "ACTIVE")
    port = api.get(f"/v2.0/ports/{port_id}", project=T, status=200).data["port"]
    assert port["admin_state_up"] is True and port["network_id"] == net["id"]
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    # Another tenant's networks are not listed, shared or not.
    api.network(project="other", shared=True, admin=True)
    assert len(api.get(v("1.1"), project=T, status=200).data["networks"]) == 2


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_port_life_cycle(api, version):
    net_id = _create_net(api, version)
    down = _create_port(api, version, net_id)
    up = _create_port(api, version, net_id, "ACTIVE")
    ids = {p["id"] for p in api.get(v(version, f"/{net_id}/ports"), project=T,
                                    status=200).data["ports"]}
    assert ids == {down, up}
    shown = api.get(v(version, f"/{net_id}/ports/{down}"), project=T,
                    status=200).data["port"]
    want = {"id": down, "state": "DOWN"}
    if version == "1.1":
        want["op-status"] = "DOWN"
    assert shown == want
    api.put(v(version, f"/{net_id}/ports/{down}"), {"port": {"state": "ACTIVE"}},
            project=T, status=204)
    assert api.get(v(version, f"/{net_id}/ports/{down}"), project=T,
                   status=200).data["port"]["state"] == "ACTIVE"
    assert api.get(f"/v2.0/ports/{down}", project=T,
                   status=200).data["port"]["admin_state_up"] is True
    detail = api.get(v(version, f"/{net_id}/ports/detail"), project=T,
                     status=200).data["ports"]
    assert {p["state"] for p in detail} == {"ACTIVE"}
    api.delete(v(version, f"/{net_id}/ports/{down}"), project=T, status=204)
    assert [p["id"] for p in api.get(v(version, f"/{net_id}/ports"), project=T,
                                     status=200).data["ports"]] == [up]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_attachments(api, version):
    net_id = _create_net(api, version)
    port_id = _create_port(api, version, net_id, "ACTIVE")
    other = _create_port(api, version, net_id)
    att = v(version, f"/{net_id}/ports/{port_id}/attachment")
    assert api.get(att, project=T, status=200).data == {"attachment": {}}
    api.put(att, {"attachment": {"id": "vif-1234"}}, project=T, status=204)
    assert api.get(att, project=T, status=200).data == {"attachment": {"id": "vif-1234"}}
    v2 = api.get(f"/v2.0/ports/{port_id}", admin=True, status=200).data["port"]
    assert v2["device_id"] == "vif-1234"
    assert v2["binding:host_id"] == "" and v2["binding:vif_type"] == "unbound"
    detail = api.get(v(version, f"/{net_id}/ports/{port_id}/detail"), project=T,
                     status=200).data["port"]
    assert detail["attachment"] == {"id": "vif-1234"} and detail["state"] == "ACTIVE"
    net_detail = api.get(v(version, f"/{net_id}/detail"), project=T,
                         status=200).data["network"]
    assert {p["id"]: p.get("attachment") for p in net_detail["ports"]} == {
        port_id: {"id": "vif-1234"}, other: None}
    # The same interface cannot go into a second port; a port takes one.
    r = api.put(v(version, f"/{net_id}/ports/{other}/attachment"),
                {"attachment": {"id": "vif-1234"}}, project=T,
                status=440 if version == "1.0" else 409)
    _assert_fault(r, version, 440, "alreadyAttached", "AlreadyAttached")
    r = api.put(att, {"attachment": {"id": "vif-9"}}, project=T,
                status=432 if version == "1.0" else 409)
    _assert_fault(r, version, 432, "portInUse", "PortInUse")
    # Attached: neither the port nor the network can go.
    r = api.delete(v(version, f"/{net_id}/ports/{port_id}"), project=T,
                   status=432 if version == "1.0" else 409)
    _assert_fault(r, version, 432, "portInUse", "PortInUse")
    r = api.delete(v(version, f"/{net_id}"), project=T,
                   status=421 if version == "1.0" else 409)
    _assert_fault(r, version, 421, "networkInUse", "NetworkInUse")
    api.delete(att, project=T, status=204)
    assert api.get(att, project=T, status=200).data == {"attachment": {}}
    api.delete(att, project=T, status=204)  # unplugging twice is fine
    # Without attachments the network goes, with its ports.
    api.delete(v(version, f"/{net_id}"), project=T, status=204)
    api.get(f"/v2.0/ports/{port_id}", project=T, status=404)


def _assert_fault(resp, version, code, name, type_):
    if version == "1.0":
        assert resp.status_int == code
        assert set(resp.data) == {name}
        assert resp.data[name]["code"] == code
        assert resp.data[name]["message"] and resp.data[name]["detail"]
    else:
        assert set(resp.data) == {"QuantumError"}
        err = resp.data["QuantumError"]
        assert err["type"] == type_ and err["message"] and err["detail"]


@pytest.mark.parametrize("version,codes", [
    ("1.0", {"net": 420, "port": 430, "state": 431, "bad": 400}),
    ("1.1", {"net": 404, "port": 404, "state": 400, "bad": 400}),
])
def test_faults(api, version, codes):
    missing = "9a3f5c2e-0000-4000-8000-000000000000"
    r = api.get(v(version, f"/{missing}"), project=T, status=codes["net"])
    _assert_fault(r, version, 420, "networkNotFound", "NetworkNotFound")
    r = api.get(v(version, f"/{missing}/ports"), project=T, status=codes["net"])
    _assert_fault(r, version, 420, "networkNotFound", "NetworkNotFound")
    r = api.put(v(version, f"/{missing}"), {"network": {"name": "x"}}, project=T,
                status=codes["net"])
    net_id = _create_net(api, version)
    r = api.get(v(version, f"/{net_id}/ports/{missing}"), project=T, status=codes["port"])
    _assert_fault(r, version, 430, "portNotFound", "PortNotFound")
    r = api.get(v(version, f"/{net_id}/ports/{missing}/attachment"), project=T,
                status=codes["port"])
    _assert_fault(r, version, 430, "portNotFound", "PortNotFound")
    r = api.post(v(version, f"/{net_id}/ports"), {"port": {"state": "BROKEN"}}, project=T,
                 status=codes["state"])
    _assert_fault(r, version, 431, "requestedStateInvalid", "RequestedStateInvalid")
    port_id = _create_port(api, version, net_id)
    r = api.put(v(version, f"/{net_id}/ports/{port_id}"), {"port": {"state": "SIDEWAYS"}},
                project=T, status=codes["state"])
    _assert_fault(r, version, 431, "requestedStateInvalid", "RequestedStateInvalid")
    # A port of another network of the tenant is not found on this one.
    net2 = _create_net(api, version, "two")
    r = api.get(v(version, f"/{net2}/ports/{port_id}"), project=T, status=codes["port"])
    # Malformed bodies.
    for body in ({"network": {}}, {"net": {"name": "x"}}, {"network": {"name": 5}}):
        r = api.post(v(version), body, project=T, status=codes["bad"])
        if version == "1.0":
            assert set(r.data) == {"malformedRequest"}
        else:
            assert r.data["QuantumError"]["type"] == "MalformedRequest"
    api.request("POST", v(version), raw=b"{not json", project=T, status=400)
    api.put(v(version, f"/{net_id}/ports/{port_id}/attachment"), {"attachment": {}},
            project=T, status=400)
    # Nothing was created by the failures.
    assert len(api.get(v(version), project=T, status=200).data["networks"]) == 2
    assert len(api.get(v(version, f"/{net_id}/ports"), project=T,
                       status=200).data["ports"]) == 1


def test_v11_filters(api):
    a = _create_net(api, "1.1", "alpha")
    b = _create_net(api, "1.1", "beta")
    pa = _create_port(api, "1.1", a, "ACTIVE")
    pb = _create_port(api, "1.1", b)
    api.put(v("1.1", f"/{a}/ports/{pa}/attachment"), {"attachment": {"id": "vif-a"}},
            project=T, status=204)

    def nets(query):
        return sorted(n["id"] for n in api.get(v("1.1", "?" + query), project=T,
                                               status=200).data["networks"])
    assert nets("name=alpha") == [a]
    assert nets("name=gamma") == []
    assert nets("op-status=UP") == sorted([a, b])
    assert nets("port-state=ACTIVE") == [a]
    assert nets("has-attachment=true") == [a]
    assert nets("has-attachment=false") == [b]
    assert nets("attachment=vif-a") == [a]
    assert nets(f"port={pb}") == [b]
    assert nets("name=beta&port-state=ACTIVE") == []

    def ports(net, query):
        return [p["id"] for p in api.get(v("1.1", f"/{net}/ports?{query}"), project=T,
                                         status=200).data["ports"]]
    assert ports(a, "state=ACTIVE") == [pa]
    assert ports(b, "state=ACTIVE") == []
    assert ports(b, "state=DOWN") == [pb]
    assert ports(a, "has-attachment=true") == [pa]
    assert ports(a, "attachment=vif-a") == [pa]
    assert ports(b, "op-status=DOWN") == [pb]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_tenant_must_be_the_callers(api, version):
    net_id = _create_net(api, version)
    r = api.get(v(version), project="intruder", status=403)
    r = api.get(v(version, f"/{net_id}"), project="intruder", status=403)
    if version == "1.1":
        assert r.data["QuantumError"]["type"] == "TenantMismatch"
    api.delete(v(version, f"/{net_id}"), project="intruder", status=403)
    # The intruder's own tenant path does not reach the network either.
    r = api.get(f"/v{version}/tenants/intruder/networks/{net_id}", project="intruder",
                status=420 if version == "1.0" else 404)
    # The admin may act for any tenant.
    assert api.get(v(version), project="admin-proj", admin=True,
                   status=200).data["networks"] == [{"id": net_id}]
    other = _create_net(api, version, project="t2")
    assert api.get(f"/v{version}/tenants/t2/networks", project="ops", admin=True,
                   status=200).data["networks"] == [{"id": other}]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_network_listings_apply_the_get_network_policy(api, version):
    """A token of the tenant whose roles get_network does not accept (a
    custom role without ``reader``; likewise a narrower get_network an
    operator writes) lists none of its networks through v2.0 and has 404
    from v1.x show; the v1.x listings, with or without details or a v1.1
    filter, list none either (they gave the ids and names: the project's
    rows were read without the policy).  (Review 18a.)"""
    net_id = _create_net(api, version, "not-for-this-role")
    h = {"X-Roles": "auditor"}
    assert api.get("/v2.0/networks", project=T, headers=h,
                   status=200).data["networks"] == []
    api.get(v(version, f"/{net_id}"), project=T, headers=h,
            status=420 if version == "1.0" else 404)
    queries = ["", "/detail", "?detail=true"] + \
        (["?name=not-for-this-role", "?op-status=UP"] if version == "1.1" else [])
    for q in queries:
        assert api.get(v(version, q), project=T, headers=h,
                       status=200).data["networks"] == [], q
    # a reader of the tenant still lists it
    assert api.get(v(version), project=T, headers={"X-Roles": "reader"},
                   status=200).data["networks"] == [{"id": net_id}]


def test_json_suffix_and_wrong_method(api):
    net_id = _create_net(api, "1.1")
    assert api.get(v("1.1", ".json"), project=T, status=200).data["networks"] == [
        {"id": net_id}]
    assert api.get(v("1.1", f"/{net_id}.json"), project=T,
                   status=200).data["network"]["id"] == net_id
    api.request("PATCH", v("1.1", f"/{net_id}"), project=T, status=405)


# ------------------------------------------------------------------ review 19
# What v2.0 refuses, refused through v1.x too (found by review 19: plug and
# unplug set device_id behind the checks of a device_id change).
R = "/v2.0/routers"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_plug_cannot_name_another_projects_router_on_an_interface_port(api, version):
    """v2.0: PUT device_id=<victim's router> on a network:router_interface
    port is 409 DeviceIDNotOwnedByTenant.  v1.x plug sets the same
    device_id: it must be refused too."""
    theirs = api.post(R, {"router": {"name": "victim-r"}}, project="victim",
                      status=201).data["router"]
    net = api.network(project=T)
    api.subnet(net["id"], project=T)
    intf = api.port(net["id"], project=T, device_owner="network:router_interface")
    # v2.0 refuses
    r = api.put(f"/v2.0/ports/{intf['id']}", {"port": {"device_id": theirs["id"]}},
                project=T, status=409)
    assert r.data["NeutronError"]["type"] == "DeviceIDNotOwnedByTenant"
    # v1.x
    r = api.put(v(version, f"/{net['id']}/ports/{intf['id']}/attachment"),
                {"attachment": {"id": theirs["id"]}}, project=T)
    after = api.get(f"/v2.0/ports/{intf['id']}", project=T, status=200).data["port"]
    assert after["device_id"] == "", (r.status, after["device_id"])
    assert 400 <= r.status_int < 500, r.status


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_unplug_cannot_detach_a_routers_interface_port(api, version):
    """v2.0: changing device_id of a router's interface port is 409
    RouterPortOwnerChange.  v1.x unplug (then plug) changes it."""
    net = api.network(project=T)
    sub = api.subnet(net["id"], project=T)
    router = api.post(R, {"router": {"name": "r"}}, project=T, status=201).data["router"]
    info = api.put(f"{R}/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
                   project=T, status=200).data
    port_id = info["port_id"]
    r = api.put(f"/v2.0/ports/{port_id}", {"port": {"device_id": ""}}, project=T,
                status=409)
    assert r.data["NeutronError"]["type"] == "RouterPortOwnerChange"
    att = v(version, f"/{net['id']}/ports/{port_id}/attachment")
    r1 = api.delete(att, project=T)
    r2 = api.put(att, {"attachment": {"id": "vif-of-mine"}}, project=T)
    after = api.get(f"/v2.0/ports/{port_id}", project=T, status=200).data["port"]
    assert after["device_id"] == router["id"], (r1.status, r2.status, after["device_id"])


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_refused_network_delete_deletes_nothing(api, version):
    """A network on a router (its interface port, network:router_interface)
    is in use: v2.0 and v1.x both refuse its deletion, and the refused
    v1.x delete changes nothing (it deleted the tenant's unattached ports
    first, one by one, before review 19 found it)."""
    net = api.network(project=T)
    sub = api.subnet(net["id"], project=T)
    router = api.post(R, {"router": {"name": "r"}}, project=T, status=201).data["router"]
    api.put(f"{R}/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
            project=T, status=200)
    port = api.post(v(version, f"/{net['id']}/ports"), None, project=T,
                    status=200 if version == "1.0" else 202).data["port"]["id"]
    api.delete(f"/v2.0/networks/{net['id']}", project=T, status=409)
    api.get(f"/v2.0/ports/{port}", project=T, status=200)
    api.delete(v(version, f"/{net['id']}"), project=T,
               status=421 if version == "1.0" else 409)
    api.get(f"/v2.0/networks/{net['id']}", project=T, status=200)
    api.get(f"/v2.0/ports/{port}", project=T, status=200)
