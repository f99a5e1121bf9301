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
    assert "router" not in aliases  # only what is implemented
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
    ({"mtu": 10}, "too small"),
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
