"""The API definitions and the Schema built from them
(quantum_ovs/api/definitions, quantum_ovs.api.attributes.build)."""

import copy
import importlib
import pkgutil
import types

import pytest

from quantum_ovs import extensions
from quantum_ovs.api import attributes, definitions
from quantum_ovs.api.attributes import NOT_SET, Attr, SchemaError, build
from quantum_ovs.api.definitions import core


def _definition_modules():
    return [importlib.import_module(f"quantum_ovs.api.definitions.{m.name}")
            for m in pkgutil.iter_modules(definitions.__path__)]


DEFINITIONS = _definition_modules()
ENABLED = extensions.definitions(extensions.load())


def _def(name="test", **names):
    names.setdefault("ALIASES", [])
    return types.SimpleNamespace(__name__=name, **names)


def test_every_extension_names_a_definition_of_the_package():
    enabled = {d.__name__ for d in ENABLED}
    assert "quantum_ovs.api.definitions.core" in enabled
    for name in ("provider", "binding", "agents", "securitygroups", "quotas", "essex"):
        assert f"quantum_ovs.api.definitions.{name}" in enabled
    assert enabled <= {d.__name__ for d in DEFINITIONS}


@pytest.mark.parametrize("d", DEFINITIONS, ids=lambda d: d.__name__.rsplit(".", 1)[1])
def test_a_definition_declares_only_checked_attributes(d):
    """Every attribute a request may give has a validator; every server
    default names an attribute given on create; every alias is complete."""
    assert isinstance(d.ALIASES, list)
    for a in d.ALIASES:
        assert a["alias"] and a["name"] and a["description"], a
    for collection, attrs in getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}).items():
        for name, a in attrs.items():
            assert isinstance(a, Attr), (collection, name)
            assert a.validate is not None or not (a.allow_post or a.allow_put), \
                f"{collection}.{name} may be given but has no validator"
    own = getattr(d, "RESOURCE_ATTRIBUTE_MAP", {})
    for collection, name in getattr(d, "SERVER_DEFAULTS", ()):
        assert own[collection][name].allow_post, (collection, name)
    for r in getattr(d, "POLICY_RULES", ()):
        assert r.name and r.check_str is not None


def test_the_enabled_definitions_build_the_served_schema():
    s = build(ENABLED)
    assert dict(s.singular) == {
        "networks": "network", "subnets": "subnet", "ports": "port", "agents": "agent",
        "security_groups": "security_group", "security_group_rules": "security_group_rule",
        "default_security_group_rules": "default_security_group_rule",
        # (l3 and floating IPs: loaded, served when [DEFAULT] service_plugins
        # names them)
        "routers": "router", "floatingips": "floatingip",
        "subnetpools": "subnetpool", "address_scopes": "address_scope",
        "rbac_policies": "rbac_policy", "address_groups": "address_group"}
    assert set(s.resources) == set(s.singular)
    # Extensions add to the core's collections.
    assert "binding:host_id" in s.resources["ports"]
    assert "security_groups" in s.resources["ports"]
    assert "provider:network_type" in s.resources["networks"]
    assert "router:external" in s.resources["subnets"]
    assert ("ports", "security_groups") in s.server_defaults
    assert ("networks", "provider:segmentation_id") in s.server_defaults
    aliases = s.alias_names()
    assert len(aliases) == len(set(aliases))
    assert {"security-group", "binding", "agent", "quotas", "provider",
            "pagination"} <= set(aliases)
    names = [r.name for r in s.policy_rules]
    assert len(names) == len(set(names))
    assert {"get_network", "create_port:binding:host_id", "get_agent"} <= set(names)
    # The core's definition is not changed by the extensions'.
    assert "binding:host_id" not in core.RESOURCE_ATTRIBUTE_MAP["ports"]
    assert "agents" not in core.COLLECTIONS


def test_two_builds_share_no_mutable_state():
    before = copy.deepcopy({d.__name__: getattr(d, "RESOURCE_ATTRIBUTE_MAP", {})
                            for d in ENABLED})
    a, b = build(ENABLED), build(ENABLED)
    assert a == b
    assert a.resources["ports"] is not b.resources["ports"]
    # Mutable defaults are copies: one app's cannot leak into another's.
    da = a.resources["subnets"]["dns_nameservers"].default
    db = b.resources["subnets"]["dns_nameservers"].default
    assert da == db == [] and da is not db
    assert a.resources["subnets"]["dns_nameservers"] is not \
        core.RESOURCE_ATTRIBUTE_MAP["subnets"]["dns_nameservers"]
    # NOT_SET stays the one sentinel through the copies.
    assert a.resources["ports"]["mac_address"].default is NOT_SET
    # The schema is read-only...
    with pytest.raises(TypeError):
        a.resources["ports"]["evil"] = Attr()
    with pytest.raises(TypeError):
        a.resources["evil"] = {}
    with pytest.raises(TypeError):
        a.singular["evil"] = "evil"
    with pytest.raises(AttributeError):
        a.server_defaults.add(("ports", "name"))
    with pytest.raises(AttributeError):
        a.resources["ports"]["name"].allow_put = False
    with pytest.raises(TypeError):
        a.aliases[0]["alias"] = "evil"
    # ... what it advertises is a new list each time ...
    ext = a.advertised()
    ext[0]["alias"] = "changed"
    assert a.advertised()[0]["alias"] != "changed"
    # ... and building read the definitions without changing them.
    assert {d.__name__: getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}) for d in ENABLED} == before


def test_no_module_global_is_left_to_mutate():
    for name in ("RESOURCES", "SINGULAR", "SERVER_DEFAULTS", "extend", "resource_map"):
        assert not hasattr(attributes, name), name


def test_a_definition_can_add_a_collection_without_touching_the_core():
    widgets = _def("widgets", ALIASES=[{"alias": "widget", "name": "w", "description": "d"}],
                   COLLECTIONS={"widgets": "widget"},
                   RESOURCE_ATTRIBUTE_MAP={"widgets": dict(
                       attributes.standard(), size=Attr(lambda x, n="": int(x)))},
                   SERVER_DEFAULTS={("widgets", "project_id")},
                   ACTIONS={"widgets": {"spin": "PUT"}},
                   REQUIRES=["pagination"])
    with_w = build([core, widgets])
    without = build([core])
    assert with_w.singular["widgets"] == "widget"
    assert dict(with_w.actions) == {"widgets": {"spin": "PUT"}}
    assert "widgets" not in without.resources and "widgets" not in without.singular
    assert ("widgets", "project_id") not in without.server_defaults
    assert with_w.aliases[-1]["updated"] == attributes.UPDATED


@pytest.mark.parametrize("bad,why", [
    (_def(RESOURCE_ATTRIBUTE_MAP={"routers": {"x": Attr(str)}}), "no definition"),
    (_def(RESOURCE_ATTRIBUTE_MAP={"ports": {"name": Attr(str)}}), "already"),
    (_def(RESOURCE_ATTRIBUTE_MAP={"ports": {"x": Attr(None)}}), "no validator"),
    (_def(RESOURCE_ATTRIBUTE_MAP={"ports": {"x": Attr(None, allow_post=False,
                                                      allow_put=True)}}), "no validator"),
    (_def(COLLECTIONS={"ports": "porte"}), "not porte"),
    (_def(SERVER_DEFAULTS={("ports", "status")}), "not an attribute given on create"),
    (_def(SERVER_DEFAULTS={("ports", "nothing")}), "not an attribute given on create"),
    (_def(ALIASES=[{"alias": "pagination"}]), "alias pagination"),
    (_def(POLICY_RULES=core.POLICY_RULES[:1]), "policy rule"),
    (_def(REQUIRES=["l3"]), "requires"),
    (_def(ACTIONS={"routers": {"add_router_interface": "PUT"}}), "unknown collection"),
])
def test_definitions_that_do_not_fit_are_refused(bad, why):
    with pytest.raises(SchemaError, match=why):
        build([core, bad])


def test_the_app_serves_the_schema_it_built():
    from quantum_ovs import config
    from quantum_ovs.api.router import make_app
    conf = config.make_conf([])
    plugin = types.SimpleNamespace(extensions_set_up=True, db=None)
    apps = []
    for mods in (extensions.load(), []):
        app = make_app(conf, plugin, mods)
        while not hasattr(app, "controllers"):
            app = app.app
        apps.append(app)
    full, bare = apps
    assert set(full.controllers) == set(full.schema.resources)
    assert "security_groups" in full.controllers and "agents" in full.controllers
    # An app without the extensions serves the core only, even after one
    # with them was built in the same process.
    assert set(bare.controllers) == {"networks", "subnets", "ports"}
    assert "binding:host_id" not in bare.controllers["ports"].attrs
    assert [e["alias"] for e in bare.extensions] == [a["alias"] for a in core.ALIASES]
    assert ("ports", "security_groups") not in bare.controllers["ports"].server_defaults
