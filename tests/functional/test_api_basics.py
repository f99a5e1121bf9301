"""Version discovery, extensions, and the NeutronError contract."""

import json

import pytest


def test_version_discovery_uses_request_host(api):
    r = api.app.get("/", headers={"Host": "cloud.example:9696"})
    assert r.status_int == 200
    (version,) = r.json["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"] == [{"rel": "self", "href": "http://cloud.example:9696/v2.0/"}]


def test_v2_index_lists_core_resources(api):
    data = api.get("/v2.0", status=200).data
    names = {r["collection"] for r in data["resources"]}
    assert {"networks", "subnets", "ports"} <= names


def test_extensions_list_and_show(api):
    exts = api.get("/v2.0/extensions", status=200).data["extensions"]
    aliases = {e["alias"] for e in exts}
    assert {"pagination", "sorting", "standard-attr-tag", "filter-validation"} <= aliases
    assert "router" in aliases  # the L3 service plugin is on by default
    assert not aliases & {"dvr", "l3-ha", "l3-flavors"}  # only what is implemented
    one = api.get("/v2.0/extensions/pagination", status=200).data["extension"]
    assert one["alias"] == "pagination"
    err = api.get("/v2.0/extensions/no-such-thing", status=404).data["NeutronError"]
    assert err["type"] == "ExtensionNotFound"


@pytest.mark.parametrize("raw", [b"{bad json", b"[]", b'"a string"', b"\xff\xfe",
                                 b'{"network": "x"}', b'{"network": []}',
                                 b'{"networks": {}}', b'{"network": {}, "x": 1}', b"{}"])
def test_malformed_bodies_are_400_and_create_nothing(api, raw):
    r = api.request("POST", "/v2.0/networks", raw=raw)
    assert r.status_int == 400, r.text
    err = r.data["NeutronError"]
    assert set(err) == {"type", "message", "detail"} and err["message"]
    assert api.count("networks") == 0


@pytest.mark.parametrize("body, fragment", [
    ({"name": 5}, "not a valid string"),
    ({"name": "x" * 256}, "exceeds maximum length"),
    ({"admin_state_up": "maybe"}, "boolean"),
    ({"mtu": "big"}, "integer"),
    ({"mtu": -1}, "too small"),  # 10 is taken (no subnet can use it: 409 there)
    ({"mtu": 2 ** 63}, "out of range"),
    ({"bogus": 1}, "Unrecognized attribute"),
    ({"status": "DOWN"}, "not allowed in POST"),
    ({"id": "x"}, "not allowed in POST"),
    ({"subnets": []}, "not allowed in POST"),
    ({"name": "a\x00b"}, "NUL"),
])
def test_bad_network_attributes_are_400(api, body, fragment):
    r = api.post("/v2.0/networks", {"network": body}, status=400)
    assert fragment in r.data["NeutronError"]["message"]
    assert api.count("networks") == 0


def test_not_found_and_method_not_allowed_are_neutron_errors(api):
    r = api.get("/v2.0/networks/6b0b2e4d-2b37-4c8b-a5a2-3c2a3b4e5f60", status=404)
    assert r.data["NeutronError"]["type"] == "NetworkNotFound"
    r = api.get("/v2.0/nothing-here", status=404)
    assert "NeutronError" in r.data
    r = api.request("PATCH", "/v2.0/networks", raw=b"{}", status=405)
    assert r.data["NeutronError"]["type"] == "HTTPMethodNotAllowed"
    r = api.get("/v2.0/ports/not-a-uuid", status=404)
    assert r.data["NeutronError"]["type"] == "PortNotFound"


def test_json_suffix_is_accepted(api):
    net = api.network()
    assert api.get(f"/v2.0/networks/{net['id']}.json", status=200).data["network"]["id"] \
        == net["id"]
    assert api.get("/v2.0/networks.json", status=200).data["networks"]


def test_every_response_is_json_with_request_id(api):
    r = api.get("/v2.0/networks", status=200)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Openstack-Request-Id"].startswith("req-")
    assert json.loads(r.text) == {"networks": []}


def test_bulk_items_may_be_wrapped_in_their_singular_key(api):
    """Neutron takes {"networks": [{"network": {...}}, {...}]} as well as
    bare items, for every collection, extension ones included."""
    r = api.post("/v2.0/networks", {"networks": [{"network": {"name": "w1"}},
                                                 {"name": "w2"}]}, status=201)
    nets = r.data["networks"]
    assert [n["name"] for n in nets] == ["w1", "w2"]
    subs = api.post("/v2.0/subnets", {"subnets": [
        {"subnet": {"network_id": nets[0]["id"], "cidr": "10.80.0.0/24", "ip_version": 4}},
        {"network_id": nets[1]["id"], "cidr": "10.81.0.0/24", "ip_version": "4"}]},
        status=201).data["subnets"]
    assert [s["cidr"] for s in subs] == ["10.80.0.0/24", "10.81.0.0/24"]
    ports = api.post("/v2.0/ports", {"ports": [{"port": {"network_id": nets[0]["id"]}}] * 2},
                     status=201).data["ports"]
    assert len(ports) == 2
    groups = api.post("/v2.0/security-groups", {"security_groups": [
        {"security_group": {"name": "g1"}}, {"name": "g2"}]}, status=201).data[
        "security_groups"]
    assert [g["name"] for g in groups] == ["g1", "g2"]
    rules = api.post("/v2.0/security-group-rules", {"security_group_rules": [
        {"security_group_rule": {"security_group_id": groups[0]["id"], "direction": "ingress",
                                 "protocol": "tcp", "port_range_min": "22",
                                 "port_range_max": "22"}}]}, status=201).data[
        "security_group_rules"]
    assert rules[0]["port_range_min"] == 22 and rules[0]["port_range_max"] == 22
    # A wrapped item holds nothing else, and is an object.
    before = api.count("networks")
    for item in ({"network": {"name": "x"}, "name": "y"}, {"network": "x"},
                 {"network": {"bogus": 1}}):
        api.post("/v2.0/networks", {"networks": [{"name": "ok"}, item]}, status=400)
    assert api.count("networks") == before


@pytest.mark.parametrize("key", ["project_id", "tenant_id"])
def test_naming_another_project_without_admin_is_400(api, key):
    for path, res, body in (("/v2.0/networks", "network", {}),
                            ("/v2.0/security-groups", "security_group", {"name": "g"})):
        r = api.post(path, {res: dict(body, **{key: "p9"})}, status=400)
        err = r.data["NeutronError"]
        assert err["type"] == "HTTPBadRequest"
        assert "Specifying 'project_id' other than the authenticated project" in err["message"]
        # naming one's own project is fine; an admin names any
        api.post(path, {res: dict(body, **{key: "p1"})}, status=201)
        made = api.post(path, {res: dict(body, **{key: "p9"})}, admin=True,
                        status=201).data[res]
        assert made["project_id"] == "p9"
    r = api.post("/v2.0/networks", {"networks": [{"name": "a"}, {key: "p9"}]}, status=400)
    assert api.count("networks") == 2


def test_integers_given_as_strings_are_converted(api):
    net = api.post("/v2.0/networks", {"network": {"mtu": "1400"}}, status=201).data["network"]
    assert net["mtu"] == 1400
    upd = api.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": " 1300 "}},
                  status=200).data["network"]
    assert upd["mtu"] == 1300
    for bad in ("14x", "1e3", "", [1400], {"mtu": 1}, True, 2 ** 63, "9" * 20, 1400.5):
        api.post("/v2.0/networks", {"network": {"mtu": bad}}, status=400)
