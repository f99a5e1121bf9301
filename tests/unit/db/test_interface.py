"""The plugin's extension interface (db/interface.py) without a database:
every collection is served by a handler, extensions use only what the
interface declares."""

import types

import pytest

from quantum_ovs import config, extensions
from quantum_ovs.db.plugin import Plugin
from quantum_ovs.db.resource import Collection


def _conf(nova_url=""):
    ext = extensions.load()
    conf = config.make_conf([], extra=[o for m in ext for o in getattr(m, "OPTS", ())])
    if nova_url:
        conf.set_override("url", nova_url, group="nova")
    return conf, ext


def _plugin(conf):
    db = types.SimpleNamespace(is_sqlite=True, on_dispose=[])
    return Plugin(db, conf)


def test_core_collections_are_handlers_like_the_extensions():
    conf, ext = _conf()
    plugin = _plugin(conf)
    for m in ext:
        if hasattr(m, "setup"):
            m.setup(plugin, conf)
    assert {"networks", "subnets", "ports", "security_groups", "security_group_rules",
            "agents"} <= set(plugin.collections)
    for name, handler in plugin.collections.items():
        assert isinstance(handler, Collection), name
        assert handler.collection == name


def test_every_extension_sets_up_through_declared_attributes_only():
    conf, ext = _conf(nova_url="http://127.0.0.1:9/")
    plugin = _plugin(conf)
    for m in ext:
        if hasattr(m, "setup"):
            m.setup(plugin, conf)  # an undeclared attribute would raise here
    assert plugin.agents is plugin.collections["agents"]
    assert callable(plugin.live_agent)
    assert plugin.segments is not None and plugin.quotas is not None
    assert callable(plugin.ensure_default_for_listing)
    assert plugin.nova_notifier is not None
    assert plugin.nova_notifier.port_status_changed in plugin.status_listeners
    assert len(plugin.report_hooks) == 1
    # Who sees a shared or external network: its RBAC policies (the
    # networks' own visibility clause), over the registered object types.
    assert set(plugin.rbac_types) == {"network", "security_group", "subnetpool",
                                      "address_scope", "address_group"}
    plugin.nova_notifier.stop()


def test_an_undeclared_attribute_is_refused():
    plugin = _plugin(_conf()[0])
    with pytest.raises(AttributeError, match="db/interface.py"):
        plugin.some_new_service = object()
    plugin.quotas = "declared"
    assert plugin.quotas == "declared"


def test_hooks_at_named_points_only_and_in_order():
    plugin = _plugin(_conf()[0])
    with pytest.raises(ValueError):
        plugin.add_hook("ports", "precommit", lambda *a: None)
    calls = []
    plugin.add_hook("ports", "create", lambda *a: calls.append("second"))
    plugin.add_hook("ports", "create", lambda *a: calls.append("first"), first=True)
    plugin.run_hooks("ports", "create", None, None, None, {})
    assert calls == ["first", "second"]


def test_status_listeners_hear_changes_and_one_failing_does_not_stop_the_others(caplog):
    plugin = _plugin(_conf()[0])
    heard = []

    def broken(changes):
        raise RuntimeError("listener bug")
    plugin.status_listeners.extend([broken, heard.append])
    plugin.notify_status([])  # nothing changed: nobody is told
    assert heard == []
    change = ("p1", "vm1", "compute:nova", "ACTIVE")
    plugin.notify_status([change])
    assert heard == [[change]]
    assert "port status listener failed" in caplog.text
