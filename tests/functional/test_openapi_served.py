"""GET /openapi.json: the description of what this app serves, and the
drift check of the suite (tests/fixtures/openapi_check.py) catching a
server that shows what its description does not say."""

import json

import pytest
from openapi_spec_validator import validate

from quantum_ovs.api import openapi
from tests.fixtures import openapi_check


def test_served_description_is_the_generated_one(api):
    doc = api.get("/openapi.json", status=200).data
    inner = openapi.find_api(api.app.app)
    assert doc == json.loads(json.dumps(openapi.document(inner.schema,
                                                         openapi.routes_of(inner))))
    validate(doc)
    assert "/v2.0/networks" in doc["paths"] and "/openapi.json" in doc["paths"]


def test_drift_fails_the_request(api, monkeypatch):
    net = api.network()
    plugin = api.plugin
    real_get = plugin.get

    def get(ctx, collection, id_, *a, **kw):
        obj = real_get(ctx, collection, id_, *a, **kw)
        return dict(obj, admin_state_up="yes")  # a string where a boolean is described
    monkeypatch.setattr(plugin, "get", get)
    with pytest.raises(openapi_check.Drift, match="admin_state_up|boolean"):
        api.get(f"/v2.0/networks/{net['id']}")
