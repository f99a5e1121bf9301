"""API extensions.

An extension is a module with any of:

- ``ALIASES``: what /v2.0/extensions advertises for it (dicts with
  alias, name, description);
- ``OPTS``: [(group, [oslo.config options])];
- ``extend_resources(resources)``: add attributes or collections to the
  attribute map (and ``attributes.SINGULAR`` for new collections);
- ``setup(plugin, conf)``: register collection handlers, hooks, dict
  extenders and filter clauses on the plugin;
- ``routes(api)``: extra routes (``api.add_route(path, {method: fn})``);
- ``SERVICE_PLUGIN``: names in ``[DEFAULT] service_plugins`` that enable it
  (without it, always enabled).

Every module listed in ENABLED is loaded, in order.
"""

import importlib

from quantum_ovs.api.extensions import UPDATED

ENABLED = (
    "quantum_ovs.extensions.provider",
    "quantum_ovs.extensions.binding",
    "quantum_ovs.extensions.agents",
    "quantum_ovs.nova.notifier",
)

# Loaded by name when present, so that an extension can be developed
# alongside without editing this list twice.
OPTIONAL = (
    "quantum_ovs.extensions.securitygroups",
    "quantum_ovs.extensions.quotas",
    "quantum_ovs.extensions.essex",
    "quantum_ovs.extensions.l3",
)


def load():
    mods = [importlib.import_module(name) for name in ENABLED]
    for name in OPTIONAL:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return mods


def enabled(mod, conf):
    """A module naming ``SERVICE_PLUGIN`` (its names) is served only when
    ``[DEFAULT] service_plugins`` names it, as Neutron's service plugins."""
    names = getattr(mod, "SERVICE_PLUGIN", None)
    return names is None or bool(set(names) & set(conf.service_plugins or ()))


def advertised(mods):
    out = []
    for m in mods:
        for a in getattr(m, "ALIASES", ()):
            out.append({"alias": a["alias"], "name": a.get("name", a["alias"]),
                        "description": a.get("description", ""),
                        "updated": a.get("updated", UPDATED), "links": []})
    return out


def opts(mods=None):
    out = []
    for m in mods if mods is not None else load():
        out.extend(getattr(m, "OPTS", ()))
    return out
