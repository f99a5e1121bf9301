"""Port binding (binding:*) and the port bindings API (binding-extended):
``/v2.0/ports/{port_id}/bindings[/{host}[/activate]]``."""

import json

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.policy_rules import (
    ADMIN,
    ADMIN_OR_PROJECT_MEMBER,
    ADMIN_OR_SERVICE,
    PROJECT_MEMBER,
    SERVICE,
    any_of,
    crud,
    rule,
)

ALIASES = [
    {"alias": "binding", "name": "Port Binding",
     "description": "Expose port bindings of a virtual port to external application"},
    {"alias": "binding-extended", "name": "Port Bindings Extended",
     "description": "Expose port bindings of a virtual port to external application"},
    {"alias": "port-trusted-vif", "name": "Port trusted vif",
     "description": "Expose port 'trusted' attribute in the API"},
]

HOST = "binding:host_id"
VNIC = "binding:vnic_type"
PROFILE = "binding:profile"
VIF_TYPE = "binding:vif_type"
VIF_DETAILS = "binding:vif_details"
# Whether the instance may change its NIC's MAC and more (SR-IOV's trust
# mode; nova reads it in binding:profile): null until an admin says
# (port-trusted-vif).  Nothing to do for an Open vSwitch port.
TRUSTED = "trusted"

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "accelerator-direct",
              "accelerator-direct-physical", "remote-managed")
# The longest binding:profile, as stored (JSON): ML2's BINDING_PROFILE_LEN,
# and the width of the column that holds it (db/models.py PortBinding).
PROFILE_MAX = 4095


def _profile(value, name=PROFILE):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise v.bad(f"'{value}' is not a dictionary")
    text = json.dumps(value)
    if len(text) > PROFILE_MAX:
        raise v.bad("binding:profile is too large")
    return value


def _host(value, name=HOST):
    return "" if value is None else v.string(255)(value, name)


RESOURCE_ATTRIBUTE_MAP = {
    "ports": {
        HOST: Attr(_host, allow_put=True, default="", convert_filter=v.string(255),
                   enforce_policy=True, is_sort_key=False),
        VNIC: Attr(v.choices(*VNIC_TYPES, allow_none=False), allow_put=True,
                   default="normal", convert_filter=v.string(64), enforce_policy=True,
                   is_sort_key=False),
        PROFILE: Attr(_profile, allow_put=True, default={}, is_filter=False,
                      enforce_policy=True, is_sort_key=False),
        VIF_TYPE: Attr(None, allow_post=False, convert_filter=v.string(64),
                       is_sort_key=False),
        VIF_DETAILS: Attr(None, allow_post=False, is_filter=False, is_sort_key=False),
        TRUSTED: Attr(v.bool_unset, allow_put=True, default=None, is_filter=False,
                      enforce_policy=True, is_sort_key=False),
    },
}

POLICY_RULES = crud("port", "/ports", {
    "create_port:binding:host_id": (ADMIN_OR_SERVICE,
                                    "Give ``binding:host_id`` when creating a port"),
    "create_port:binding:profile": (SERVICE,
                                    "Give ``binding:profile`` when creating a port"),
    "create_port:binding:vnic_type": (any_of(ADMIN_OR_PROJECT_MEMBER, SERVICE),
                                      "Give ``binding:vnic_type`` when creating a port"),
    "get_port:binding:host_id": (ADMIN_OR_SERVICE, "See ``binding:host_id`` of a port"),
    "get_port:binding:profile": (ADMIN_OR_SERVICE, "See ``binding:profile`` of a port"),
    "get_port:binding:vif_type": (ADMIN_OR_SERVICE, "See ``binding:vif_type`` of a port"),
    "get_port:binding:vif_details": (ADMIN_OR_SERVICE,
                                     "See ``binding:vif_details`` of a port"),
    "update_port:binding:host_id": (ADMIN_OR_SERVICE,
                                    "Update ``binding:host_id`` of a port"),
    "update_port:binding:profile": (SERVICE, "Update ``binding:profile`` of a port"),
    "create_port:trusted": (ADMIN, "Give ``trusted`` when creating a port"),
    "get_port:trusted": (ADMIN, "See ``trusted`` of a port"),
    "update_port:trusted": (ADMIN, "Update ``trusted`` of a port"),
    "update_port:binding:vnic_type": (any_of(ADMIN_OR_SERVICE, PROJECT_MEMBER),
                                      "Update ``binding:vnic_type`` of a port"),
})
# The bindings API: Neutron's rule names and defaults (admin, or nova's
# service user).
_BINDINGS = "/ports/{port_id}/bindings"
POLICY_RULES += [
    rule("get_port_binding", ADMIN_OR_SERVICE, "Get the bindings of a port",
         operations=[("GET", _BINDINGS), ("GET", _BINDINGS + "/{host}")]),
    rule("create_port_binding", ADMIN_OR_SERVICE,
         "Create a binding of a port on a host", method="POST", path=_BINDINGS),
    rule("delete_port_binding", ADMIN_OR_SERVICE,
         "Delete an inactive binding of a port", method="DELETE",
         path=_BINDINGS + "/{host}"),
    rule("activate", ADMIN_OR_SERVICE, "Activate a binding of a port",
         method="PUT", path=_BINDINGS + "/{host}/activate"),
]


# ------------------------------------------------------------------ errors
class PortBindingNotFound(exceptions.NotFound):
    message = "Binding for port %(port_id)s for host %(host)s could not be found."


class PortBindingAlreadyActive(exceptions.Conflict):
    message = "Binding for port %(port_id)s on host %(host)s is already active."


class PortBindingAlreadyExists(exceptions.Conflict):
    message = "Binding for port %(port_id)s on host %(host)s already exists."


class PortBindingError(exceptions.Conflict):
    # Neutron answers 500; no agent on the host can serve the port's
    # network (or its vnic type) is a conflict with the cloud's state.
    message = ("Binding for port %(port_id)s on host %(host)s could not be created or "
               "updated.")


class PortBindingActive(exceptions.Conflict):
    message = ("Binding for port %(port_id)s on host %(host)s is the active one: activate "
               "another binding first, or unbind the port (binding:host_id '').")
