"""Auto-allocated topology (alias ``auto-allocated-topology``, "get me a
network"): ``GET /v2.0/auto-allocated-topology/{project_id}`` gives the
project a network, a subnet from each default subnet pool and a router
with its gateway on the default external network, made on the first call
and the same one after; ``?fields=dry-run`` only checks that the
deployment could; ``DELETE`` removes them.  ``{project_id}`` ``None``
means the caller's project.  Networks gain ``is_default``: an external
network that is the deployment's default (administrators set it; at most
one is).  The handlers are in quantum_ovs/extensions/auto_allocate.py."""

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr

ALIASES = [
    {"alias": "auto-allocated-topology", "name": "Auto Allocated Topology Services",
     "description": "Auto Allocated Topology Services."},
]

REQUIRES = ["router", "subnet_allocation", "external-net"]

PATH = "/v2.0/auto-allocated-topology"
RESOURCE = "auto_allocated_topology"
IS_DEFAULT = "is_default"
DRY_RUN = "dry-run"
# The names of what it makes (clients and Tempest find them by these).
NETWORK_NAME = "auto_allocated_network"
SUBNET_NAME = "auto_allocated_subnet_v%d"
ROUTER_NAME = "auto_allocated_router"

RESOURCE_ATTRIBUTE_MAP = {
    "networks": {
        # Shown on external networks only, as Neutron.
        IS_DEFAULT: Attr(v.to_bool, allow_put=True, default=False, convert_filter=v.to_bool,
                         enforce_policy=True, is_sort_key=False),
    },
}

_ITEM = PATH + "/{project_id}"
POLICY_RULES = [
    p.rule("get_auto_allocated_topology", p.ADMIN_OR_PROJECT_READER,
           "Get a project's auto-allocated topology (made on the first call)",
           operations=[("GET", _ITEM)]),
    p.rule("delete_auto_allocated_topology", p.ADMIN_OR_PROJECT_MEMBER,
           "Delete a project's auto-allocated topology", operations=[("DELETE", _ITEM)]),
] + p.crud("network", "/networks", {
    "create_network:is_default": (p.ADMIN, "Create a default external network"),
    "update_network:is_default": (p.ADMIN, "Update ``is_default`` of a network"),
})


# ------------------------------------------------------------------ errors
class AutoAllocationFailure(exceptions.Conflict):
    message = "Deployment error: %(reason)s."


class DefaultExternalNetworkExists(exceptions.Conflict):
    message = "A default external network already exists: %(net_id)s."
