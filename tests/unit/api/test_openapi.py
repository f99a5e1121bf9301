"""The OpenAPI documents: current, valid, and made from the definitions."""

import json
import os
import types

import pytest
from openapi_spec_validator import validate

from quantum_ovs.api import attributes, openapi, validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.api.definitions import core
from quantum_ovs.cmd import openapi as gen

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def docs():
    return gen.documents()


@pytest.mark.parametrize("name", [gen.V2, gen.V1])
def test_checked_in_document_is_current(docs, name):
    with open(os.path.join(ROOT, "doc", "api", name)) as f:
        committed = f.read()
    assert docs[name] == committed, f"doc/api/{name} is stale: run `make openapi`"


@pytest.mark.parametrize("name", [gen.V2, gen.V1])
def test_document_is_valid_openapi_31(docs, name):
    doc = json.loads(docs[name])
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_served_collection_and_operation_is_described(docs):
    doc = json.loads(docs[gen.V2])
    paths = doc["paths"]
    for c in ("networks", "subnets", "ports", "routers", "security-groups",
              "security-group-rules", "agents"):
        assert set(paths[f"/v2.0/{c}"]) >= {"get"}
        assert {"get", "put", "delete"} <= set(paths[f"/v2.0/{c}/{{id}}"])
    assert "post" in paths["/v2.0/networks"]
    assert "post" not in paths["/v2.0/agents"]  # agents are reported, not created
    assert "put" in paths["/v2.0/routers/{router_id}/add_router_interface"]
    assert "/v2.0/quotas/{project_id}/details" in paths
    # The underscore spelling is served too, and says which is canonical.
    old = paths["/v2.0/security_groups"]["get"]
    assert old["deprecated"] and old["x-canonical-path"] == "/v2.0/security-groups"


def test_types_and_nullability_come_from_the_validators(docs):
    s = json.loads(docs[gen.V2])["components"]["schemas"]
    net, sub, port = s["Network"]["properties"], s["Subnet"]["properties"], \
        s["Port"]["properties"]
    assert net["admin_state_up"]["type"] == "boolean"
    assert net["name"] == {"type": "string", "maxLength": 255}
    assert net["provider:physical_network"]["type"] == ["string", "null"]
    assert net["provider:physical_network"]["x-extension-alias"] == "provider"
    assert net["mtu"]["x-extension-alias"] == "net-mtu"
    assert sub["ip_version"]["enum"] == [4, 6]
    assert "null" in sub["gateway_ip"]["anyOf"][1]["type"]
    assert sub["ipv6_ra_mode"]["enum"][-1] is None
    assert port["fixed_ips"]["items"]["additionalProperties"] is False
    assert s["NetworkCreate"]["additionalProperties"] is False
    # (cidr and ip_version may come from a subnet pool)
    assert s["SubnetCreate"]["required"] == ["network_id"]
    # A request takes what the validator converts ("true", "4"), the
    # response shows the converted type.
    assert s["NetworkCreate"]["properties"]["admin_state_up"]["anyOf"][0] == \
        {"type": "boolean"}


def test_list_parameters_and_errors(docs):
    doc = json.loads(docs[gen.V2])
    get = doc["paths"]["/v2.0/ports"]["get"]
    names = {p["name"] for p in get["parameters"]}
    assert {"network_id", "mac_address", "fixed_ips", "tags", "not-tags-any", "fields",
            "sort_key", "sort_dir", "limit", "marker", "page_reverse",
            "changed_since"} <= names
    assert "allowed_address_pairs" not in names  # not a filter
    post = doc["paths"]["/v2.0/ports"]["post"]["responses"]
    assert "MacAddressInUse" in post["409"]["x-neutron-error-types"]
    assert "OverQuota" in post["409"]["x-neutron-error-types"]
    assert "PolicyNotAuthorized" in post["403"]["x-neutron-error-types"]
    show = doc["paths"]["/v2.0/routers/{id}"]["get"]["responses"]
    assert "RouterNotFound" in show["404"]["x-neutron-error-types"]
    assert show["404"]["content"]["application/json"]["schema"] == openapi.NEUTRON_ERROR


def test_links_network_subnet_port(docs):
    doc = json.loads(docs[gen.V2])
    links = doc["paths"]["/v2.0/networks"]["post"]["responses"]["201"]["links"]
    assert links["createSubnetFromNetwork"]["requestBody"]["subnet"]["network_id"] == \
        "$response.body#/network/id"
    assert links["createPortFromNetwork"]["operationId"] == "postPorts"
    assert links["showNetwork"]["parameters"] == {"id": "$response.body#/network/id"}
    sub_links = doc["paths"]["/v2.0/subnets"]["post"]["responses"]["201"]["links"]
    assert sub_links["createPortFromSubnet"]["requestBody"]["port"]["network_id"] == \
        "$response.body#/subnet/network_id"


# A definition another change could add: it appears without an edit of
# the generator.
_Widgets = types.ModuleType("tests.widgets")
_Widgets.ALIASES = [{"alias": "widgets", "name": "Widgets", "description": "w"}]
_Widgets.COLLECTIONS = {"widgets": "widget"}
_Widgets.RESOURCE_ATTRIBUTE_MAP = {
    "widgets": dict(attributes.standard(),
                    size=Attr(v.integer(1, 10), allow_put=True, default=None),
                    colour=Attr(v.choices("red", "blue", allow_none=False))),
    "networks": {"widget_id": Attr(v.uuid_or_none, default=None)},
}
_Widgets.SERVER_DEFAULTS = {("widgets", "project_id"), ("widgets", "tenant_id")}


def test_a_new_definition_appears_without_edits(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tests.widgets", _Widgets)
    schema = attributes.build([core, _Widgets])
    routes = [openapi.Route("/v2.0/widgets", "collection", "widgets", ("GET", "POST")),
              openapi.Route("/v2.0/widgets/{id}", "member", "widgets",
                            ("GET", "PUT", "DELETE"))]
    doc = openapi.document(schema, routes)
    validate(doc)
    w = doc["components"]["schemas"]["Widget"]["properties"]
    # A default of None the validator does not take is the server's to
    # fill: never shown null.  A validator that takes None: nullable.
    assert w["size"]["type"] == "integer" and w["size"]["maximum"] == 10
    assert w["colour"] == {"enum": ["red", "blue"], "x-extension-alias": "widgets"}
    assert doc["components"]["schemas"]["WidgetCreate"]["required"] == ["colour"]
    widget_id = doc["components"]["schemas"]["Network"]["properties"]["widget_id"]
    assert widget_id["x-extension-alias"] == "widgets"
    assert widget_id["type"] == ["string", "null"]
    assert doc["paths"]["/v2.0/widgets"]["x-extension-alias"] == "widgets"
    names = {p["name"] for p in doc["paths"]["/v2.0/widgets"]["get"]["parameters"]}
    assert {"size", "colour", "name"} <= names


def test_essex_document_has_its_faults(docs):
    doc = json.loads(docs[gen.V1])
    get = doc["paths"]["/v1.0/tenants/{tenant_id}/networks/{network_id}"]["get"]
    assert "420" in get["responses"]
    get11 = doc["paths"]["/v1.1/tenants/{tenant_id}/networks/{network_id}"]["get"]
    assert "420" not in get11["responses"] and "404" in get11["responses"]
