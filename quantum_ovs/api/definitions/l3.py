"""The routers contract (aliases ``router``, ``extraroute``,
``extraroute-atomic``, ``router-admin-state-down-before-update``): data and
validators only, like neutron-lib's ``api/definitions/l3.py`` and
``extraroute.py``.  The storage, hooks and HTTP handlers are in
``quantum_ovs/extensions/l3.py``.

``external_gateway_info`` makes the router's gateway port on an external
network, with ``enable_snat`` (ext-gw-mode, admin-only to set) and
``external_fixed_ips``.
"""

import ipaddress

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET, Attr, standard

ROUTER = "router"
ROUTERS = "routers"
INTERFACE_OWNER = "network:router_interface"
GATEWAY_OWNER = "network:router_gateway"

ALIASES = [
    {"alias": "router", "name": "Neutron L3 Router",
     "description": "Router abstraction for basic L3 forwarding between L2 Neutron "
                    "networks and access to external networks via a NAT gateway."},
    {"alias": "extraroute", "name": "Neutron Extra Route",
     "description": "Extra routes configuration for L3 router"},
    {"alias": "extraroute-atomic", "name": "Atomically add/remove extra routes",
     "description": "Edit extra routes of a router on server side by atomically "
                    "adding/removing extra routes"},
    {"alias": "ext-gw-mode", "name": "Neutron L3 Configurable external gateway mode",
     "description": "Extension of the router abstraction for specifying whether SNAT "
                    "should occur on the external gateway"},
    {"alias": "router-admin-state-down-before-update",
     "name": "Enforce Router's Admin State Down Before Update Extension",
     "description": "Ensure that the admin state of a router is down (False) before "
                    "updating the distributed attribute"},
]
REQUIRES = ["external-net"]

COLLECTIONS = {ROUTERS: ROUTER}

# Member actions: PUT /v2.0/routers/{id}/<action>.
ACTIONS = {ROUTERS: {"add_router_interface": "PUT", "remove_router_interface": "PUT",
                     "add_extraroutes": "PUT", "remove_extraroutes": "PUT"}}

# Neutron's quota_router_route default: extra routes one router may have.
DEFAULT_ROUTES = 30


# ------------------------------------------------------------------ errors
class RouterNotFound(exceptions.NotFound):
    message = "Router %(router_id)s could not be found"


class RouterInUse(exceptions.InUse):
    message = "Router %(router_id)s %(reason)s"

    def __init__(self, **kw):
        kw.setdefault("reason", "still has ports")
        super().__init__(**kw)


class RouterInterfaceNotFound(exceptions.NotFound):
    message = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(exceptions.NotFound):
    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class SubnetMismatchForPort(exceptions.BadRequest):
    message = "Subnet on port %(port_id)s does not match the requested subnet %(subnet_id)s"


class RouterInterfaceInUseByRoute(exceptions.InUse):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s "
               "cannot be deleted, as it is required by one or more routes.")


class L3PortInUse(exceptions.InUse):
    message = ("Port %(port_id)s has owner %(device_owner)s and therefore cannot be "
               "deleted directly via the port API.")


class RouterPortOwnerChange(exceptions.InUse):
    message = ("Port %(port_id)s is an interface of router %(router_id)s: its "
               "device_owner cannot be changed; remove the interface from the router "
               "instead.")


class GatewayIpInUse(exceptions.InUse):
    message = ("Current gateway ip %(ip_address)s already in use by port %(port_id)s. "
               "Unable to update.")


class ExternalNetworkInUse(exceptions.InUse):
    message = ("External network %(net_id)s cannot be updated to be made non-external, "
               "since it has existing gateway ports.")


class InvalidRoutes(exceptions.InvalidInput):
    message = "Invalid format for routes: %(routes)s, %(reason)s"


def bad_router(msg):
    """Neutron's BadRequest on a router (400)."""
    return exceptions.BadRequest(resource="router", msg=msg)


# ------------------------------------------------------------------ validators
def _route_item(value, name="routes"):
    return v.host_route(value, name)


def routes(value, name="routes"):
    """Extra routes: a list of {destination, nexthop}, each once; None is
    the empty list.  Destination and next hop of one IP version; a next
    hop cannot be a network's own address."""
    if value is None:
        return []
    out = v.list_of(_route_item, unique=True, what="route")(value, name)
    for r in out:
        dest = ipaddress.ip_network(r["destination"])
        hop = ipaddress.ip_address(r["nexthop"])
        if dest.version != hop.version:
            raise InvalidRoutes(routes=value,
                                reason=f"the next hop {hop} is not of the IP version of "
                                       f"{dest}")
    return out


_fixed_ips = v.list_of(v.fixed_ip, unique=True, what="external fixed IP")
_gateway = v.dict_with({"network_id": (v.uuid_str, True),
                        "enable_snat": (v.to_bool, False),
                        "external_fixed_ips": (_fixed_ips, False)},
                       "external_gateway_info")


def gateway_info(value, name="external_gateway_info"):
    """None (or {}: no gateway), or {network_id, enable_snat,
    external_fixed_ips}."""
    if value is None or value == {}:
        return None
    return _gateway(value, name)


def interface_info(body):
    """The body of add/remove_router_interface: exactly one of subnet_id
    and port_id (400 otherwise), as {"subnet_id"|"port_id": uuid}."""
    if not isinstance(body, dict):
        raise bad_router("Either subnet_id or port_id must be specified")
    unknown = set(body) - {"subnet_id", "port_id"}
    if unknown:
        raise exceptions.InvalidInput(
            error_message=f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    has_port, has_subnet = body.get("port_id"), body.get("subnet_id")
    if has_port and has_subnet:
        raise bad_router("Cannot specify both subnet-id and port-id")
    if not has_port and not has_subnet:
        raise bad_router("Either subnet_id or port_id must be specified")
    key = "port_id" if has_port else "subnet_id"
    return {key: v.uuid_str(body[key], key)}


# ------------------------------------------------------------------ attributes
RESOURCE_ATTRIBUTE_MAP = {
    ROUTERS: dict(
        standard(),
        admin_state_up=Attr(v.to_bool, allow_put=True, default=True,
                            convert_filter=v.to_bool),
        status=Attr(None, allow_post=False, convert_filter=v.string(16)),
        external_gateway_info=Attr(gateway_info, allow_put=True, default=None,
                                   is_filter=False, is_sort_key=False,
                                   enforce_policy=True),
        routes=Attr(routes, allow_post=False, allow_put=True, default=NOT_SET,
                    is_filter=False, is_sort_key=False),
    ),
}

SERVER_DEFAULTS = {(ROUTERS, "project_id"), (ROUTERS, "tenant_id")}


# ------------------------------------------------------------------ policy
_MEMBER = p.ADMIN_OR_PROJECT_MEMBER
_READER = p.ADMIN_OR_PROJECT_READER
_GW = "external_gateway_info"


def _member_action(name, path, description):
    return p.rule(name, _MEMBER, description, method="PUT", path=path)


POLICY_RULES = p.crud(ROUTER, "/routers", {
    "create_router": (_MEMBER, "Create a router"),
    f"create_router:{_GW}": (_MEMBER, "Give an external gateway when creating a router"),
    f"create_router:{_GW}:network_id": (
        _MEMBER, "Give the external network of a router's gateway when creating it"),
    f"create_router:{_GW}:enable_snat": (
        p.ADMIN, "Give ``enable_snat`` of a router's gateway when creating it"),
    f"create_router:{_GW}:external_fixed_ips": (
        p.ADMIN, "Give the external fixed IPs of a router's gateway when creating it"),
    "create_router:tags": (_MEMBER, "Give tags when creating a router"),
    "get_router": (_READER, "Get a router"),
    "get_router:tags": (_READER, "Get the tags of a router"),
    "update_router": (_MEMBER, "Update a router"),
    f"update_router:{_GW}": (_MEMBER, "Update the external gateway of a router"),
    f"update_router:{_GW}:network_id": (
        _MEMBER, "Update the external network of a router's gateway"),
    f"update_router:{_GW}:enable_snat": (
        p.ADMIN, "Update ``enable_snat`` of a router's gateway"),
    f"update_router:{_GW}:external_fixed_ips": (
        p.ADMIN, "Update the external fixed IPs of a router's gateway"),
    "update_router:tags": (_MEMBER, "Set or add tags of a router"),
    "delete_router": (_MEMBER, "Delete a router"),
    "delete_router:tags": (_MEMBER, "Remove tags of a router"),
}) + [
    _member_action("add_router_interface", "/routers/{id}/add_router_interface",
                   "Add an interface to a router"),
    _member_action("remove_router_interface", "/routers/{id}/remove_router_interface",
                   "Remove an interface from a router"),
    _member_action("add_extraroutes", "/routers/{id}/add_extraroutes",
                   "Add extra routes to a router"),
    _member_action("remove_extraroutes", "/routers/{id}/remove_extraroutes",
                   "Remove extra routes from a router"),
]
