"""API extensions: the implementation halves.

An extension is a module with any of:

- ``DEFINITION``: its API contract, a module of quantum_ovs.api.definitions
  (aliases, attribute map, server defaults, policy rules, validators,
  errors); the app's Schema is built from the enabled definitions;
- ``OPTS``: [(group, [oslo.config options])];
- ``setup(plugin, conf)``: register collection handlers, hooks, dict
  extenders and filter clauses on the plugin;
- ``routes(api)``: extra routes (``api.add_route(path, {method: fn})``);
- ``SERVICE_PLUGIN``: names in ``[DEFAULT] service_plugins`` that enable it
  (without it, always enabled; make_app checks it).

Every module listed in ENABLED is loaded, in order.
"""

import importlib

from quantum_ovs.api.definitions import core as _core

ENABLED = (
    "quantum_ovs.extensions.provider",
    "quantum_ovs.extensions.binding",
    "quantum_ovs.extensions.agents",
    "quantum_ovs.extensions.router_interface_ports",
    "quantum_ovs.nova.notifier",
)

# Loaded by name when present, so that an extension can be developed
# alongside without editing this list twice.
OPTIONAL = (
    "quantum_ovs.extensions.securitygroups",
    "quantum_ovs.extensions.default_sg_rules",
    "quantum_ovs.extensions.quotas",
    "quantum_ovs.extensions.essex",
    "quantum_ovs.extensions.l3",
    "quantum_ovs.extensions.floatingips",
    "quantum_ovs.extensions.dns",
    "quantum_ovs.extensions.extra_dhcp_opt",
    "quantum_ovs.extensions.subnetpools",
    "quantum_ovs.extensions.address_scopes",
    "quantum_ovs.extensions.ip_availability",
    "quantum_ovs.extensions.rbac",
    "quantum_ovs.extensions.address_groups",
    "quantum_ovs.extensions.auto_allocate",
    "quantum_ovs.extensions.subnet_service_types",
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


def definitions(mods, core=True):
    """The API definitions of these extension modules, in order (after the
    core's unless ``core`` is false): what attributes.build takes."""
    out = [_core] if core else []
    out += [m.DEFINITION for m in mods if getattr(m, "DEFINITION", None) is not None]
    return out


def opts(mods=None):
    out = []
    for m in mods if mods is not None else load():
        out.extend(getattr(m, "OPTS", ()))
    return out
