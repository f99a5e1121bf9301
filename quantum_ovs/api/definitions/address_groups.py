"""Address groups (alias ``address-group``) and security group rules that
name one as their remote (``security-groups-remote-address-group``): data
and validators only.  The storage and the member actions are in
``quantum_ovs/extensions/address_groups.py``.

An address group is a project's set of CIDRs, each kept canonical as
Neutron keeps it (the network of the prefix, a lone address as /32 or
/128); ``PUT /v2.0/address-groups/{id}/add_addresses`` and
``remove_addresses`` change it.
"""

import ipaddress

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr, standard

ADDRESS_GROUP = "address_group"
ADDRESS_GROUPS = "address_groups"

ALIASES = [
    {"alias": "address-group", "name": "Address group",
     "description": "Support address group"},
    {"alias": "security-groups-remote-address-group",
     "name": "Remote address group id field for security group rules",
     "description": "Add new field of remote address group id in security group rules"},
    {"alias": "rbac-address-group", "name": "Add RBAC support to address groups",
     "description": "Add RBAC support to address groups"},
]
REQUIRES = ["security-group"]

COLLECTIONS = {ADDRESS_GROUPS: ADDRESS_GROUP}

# Member actions: PUT /v2.0/address-groups/{id}/<action>.
ACTIONS = {ADDRESS_GROUPS: {"add_addresses": "PUT", "remove_addresses": "PUT"}}


# ------------------------------------------------------------------ errors
class AddressGroupNotFound(exceptions.NotFound):
    message = "Address group %(address_group_id)s could not be found."


class AddressGroupInUse(exceptions.InUse):
    message = ("Address group %(address_group_id)s is in use on one or more security "
               "group rules.")


class AddressesNotFound(exceptions.NotFound):
    message = "Addresses %(addresses)s not found in the address group %(address_group_id)s."


class AddressesAlreadyExist(exceptions.BadRequest):
    message = ("Addresses %(addresses)s already exist in the address group "
               "%(address_group_id)s.")


# ------------------------------------------------------------------ validation
def cidr(value, name="addresses"):
    """One address or prefix as the group keeps it: the prefix's network
    (host bits dropped), a lone address as a /32 or /128; no IPv6 scope
    (validators.ip_or_cidr)."""
    if not isinstance(value, str) or "%" in value:
        raise v.bad(f"'{value}' is not a valid IP subnet")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise v.bad(f"'{value}' is not a valid IP subnet") from None


def addresses(value, name="addresses", bare=False):
    """A list of CIDRs, canonical, each once (in the order first given).
    A create names prefixes (a lone address is refused there, as Neutron's
    subnet-list validator does); add/remove_addresses take addresses too
    (``bare``)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.bad(f"'{value}' is not a list")
    v.check_length(value, name)
    if not bare:
        for x in value:
            if isinstance(x, str) and "/" not in x:
                raise v.bad(f"'{x}' isn't a recommended CIDR")
    return list(dict.fromkeys(cidr(x, name) for x in value))


addresses.openapi = {
    # (null is taken, as no addresses: Neutron's type:list_of_subnets_or_none)
    "request": {"type": ["array", "null"], "items": {"type": "string"},
                "maxItems": v.LIST_MAX},
    # (a group may grow past a request's bound by several add_addresses)
    "response": {"type": "array", "items": {"type": "string"}},
}


def action_body(body):
    """The addresses of an ``add_addresses`` / ``remove_addresses`` body,
    which is ``{"addresses": [...]}`` (as Neutron's)."""
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise exceptions.InvalidInput(
            error_message="the body must be {\"addresses\": [...]}")
    return addresses(body["addresses"], bare=True)


# ------------------------------------------------------------------ attributes
_STD = standard()
_STD.pop("tags")

RESOURCE_ATTRIBUTE_MAP = {
    ADDRESS_GROUPS: dict(
        _STD,
        addresses=Attr(addresses, default=[], is_filter=False, is_sort_key=False),
    ),
    "security_group_rules": {
        "remote_address_group_id": Attr(v.uuid_or_none, default=None,
                                        convert_filter=v.string(None)),
    },
}

SERVER_DEFAULTS = frozenset({(ADDRESS_GROUPS, k) for k in ("project_id", "tenant_id")})


# ------------------------------------------------------------------ policy
def _member_action(name, path, description):
    return p.rule(name, p.ADMIN_OR_PROJECT_MEMBER, description, method="PUT", path=path)


POLICY_RULES = [
    # (an RBAC policy shares the group with the caller's project)
    p.oslo_policy.RuleDefault("shared_address_groups", "field:address_groups:shared=True",
                              description="The address group is shared."),
] + p.crud(ADDRESS_GROUP, "/address-groups", {
    "create_address_group": (p.ADMIN_OR_PROJECT_MEMBER, "Create an address group"),
    "get_address_group": (p.any_of(p.ADMIN_OR_PROJECT_READER, "rule:shared_address_groups"),
                          "Get an address group"),
    "update_address_group": (p.ADMIN_OR_PROJECT_MEMBER, "Update an address group"),
    "delete_address_group": (p.ADMIN_OR_PROJECT_MEMBER, "Delete an address group"),
}) + [
    _member_action("add_addresses", "/address-groups/{id}/add_addresses",
                   "Add addresses to an address group"),
    _member_action("remove_addresses", "/address-groups/{id}/remove_addresses",
                   "Remove addresses from an address group"),
]
