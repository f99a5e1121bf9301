"""Subnet pools and address scopes (aliases ``subnet_allocation``,
``address-scope``, ``default-subnetpools``, ``subnetpool-prefix-ops``,
``subnet_onboard``):
data and validators only.  The storage, hooks and HTTP handlers are in
``quantum_ovs/extensions/subnetpools.py`` and ``address_scopes.py``.

A subnet pool holds prefixes of one IP version; a subnet created with
``subnetpool_id`` (or ``use_default_subnetpool``) and a ``prefixlen`` (or
the pool's ``default_prefixlen``, or a ``cidr`` inside the pool) is given
a free prefix of it.  ``default_quota`` bounds what one project may take
of a pool, in addresses (IPv4) or in /64 networks (IPv6), as in Neutron.
An address scope groups pools of one IP version whose prefixes must not
overlap.
"""

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr, standard

SUBNETPOOL, SUBNETPOOLS = "subnetpool", "subnetpools"
ADDRESS_SCOPE, ADDRESS_SCOPES = "address_scope", "address_scopes"

ALIASES = [
    {"alias": "subnet_allocation", "name": "Subnet Allocation",
     "description": "Enables allocation of subnets from a subnet pool"},
    {"alias": "address-scope", "name": "Address scope",
     "description": "Address scopes extension."},
    {"alias": "default-subnetpools", "name": "Default Subnetpools",
     "description": "Provides ability to mark and use a subnetpool as the default."},
    {"alias": "subnetpool-prefix-ops", "name": "Subnet Pool Prefix Operations",
     "description": "Provides support for adjusting the prefix list of subnet pools"},
    {"alias": "subnet_onboard", "name": "Subnet Onboard",
     "description": "Provides support for onboarding subnets into subnet pools"},
    {"alias": "rbac-subnetpool", "name": "Add RBAC support to subnetpools",
     "description": "Add RBAC support to subnetpools"},
    {"alias": "rbac-address-scope", "name": "Add RBAC support to address scopes",
     "description": "Add RBAC support to address scopes"},
]

COLLECTIONS = {SUBNETPOOLS: SUBNETPOOL, ADDRESS_SCOPES: ADDRESS_SCOPE}

# The extension that adds each address-scope resource and attribute (for
# the OpenAPI description; the rest is subnet_allocation's).
COLLECTION_ALIASES = {ADDRESS_SCOPES: "address-scope"}
ATTRIBUTE_ALIASES = {
    (ADDRESS_SCOPES, "id"): None, (ADDRESS_SCOPES, "name"): None,
    (ADDRESS_SCOPES, "tenant_id"): None, (ADDRESS_SCOPES, "project_id"): "project-id",
    (ADDRESS_SCOPES, "ip_version"): "address-scope",
    (ADDRESS_SCOPES, "shared"): "address-scope",
    ("networks", "ipv4_address_scope"): "address-scope",
    ("networks", "ipv6_address_scope"): "address-scope",
}

# Member actions: PUT /v2.0/subnetpools/{id}/<action>.
ACTIONS = {SUBNETPOOLS: {"add_prefixes": "PUT", "remove_prefixes": "PUT",
                         "onboard_network_subnets": "PUT"}}

# The longest prefix of each IP version, the shortest default
# min_prefixlen, and the size of the unit default_quota counts in.
MAX_PREFIXLEN = {4: 32, 6: 128}
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
QUOTA_UNIT_BITS = {4: 32, 6: 64}


# ------------------------------------------------------------------ errors
class SubnetPoolNotFound(exceptions.NotFound):
    message = "Subnet pool %(subnetpool_id)s could not be found."


class AddressScopeNotFound(exceptions.NotFound):
    message = "Address scope %(address_scope_id)s could not be found"


class AddressScopeInUse(exceptions.InUse):
    message = ("Unable to complete operation on address scope %(address_scope_id)s. There "
               "are one or more subnet pools in use on the address scope")


class AddressScopeUpdateError(exceptions.BadRequest):
    message = "Unable to update address scope %(address_scope_id)s : %(reason)s"


class EmptySubnetPoolPrefixList(exceptions.BadRequest):
    message = "Empty subnet pool prefix list."


class PrefixVersionMismatch(exceptions.BadRequest):
    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class IllegalSubnetPoolPrefixBounds(exceptions.BadRequest):
    message = ("Illegal prefix bounds: %(prefix_type)s=%(prefixlen)s, "
               "%(base_prefix_type)s=%(base_prefixlen)s.")


class IllegalSubnetPoolPrefixUpdate(exceptions.BadRequest):
    message = "Illegal update to prefixes: %(msg)s."


class IllegalSubnetPoolUpdate(exceptions.BadRequest):
    message = "Illegal subnetpool update : %(reason)s."


class SubnetAllocationError(exceptions.Conflict):
    # (Neutron answers 500: a plain NeutronException; a request a pool
    # cannot satisfy is a conflict with its state here.)
    message = "Failed to allocate subnet: %(reason)s."


class AddressScopePrefixConflict(exceptions.Conflict):
    message = ("Failed to associate address scope: subnetpools within an address scope "
               "must have unique prefixes.")


class IllegalSubnetPoolAssociationToAddressScope(exceptions.BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot be "
               "associated with address scope %(address_scope_id)s.")


class IllegalSubnetPoolIpVersionAssociationToAddressScope(exceptions.BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot "
               "associate with address scope %(address_scope_id)s because subnetpool "
               "ip_version is not %(ip_version)s.")


class MinPrefixSubnetAllocationError(exceptions.BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, minimum "
               "allowed prefix is %(min_prefixlen)s.")


class MaxPrefixSubnetAllocationError(exceptions.BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, maximum "
               "allowed prefix is %(max_prefixlen)s.")


class SubnetPoolDeleteError(exceptions.BadRequest):
    message = "Unable to delete subnet pool: %(reason)s."


class SubnetPoolQuotaExceeded(exceptions.Conflict):
    message = "Per-tenant subnet pool prefix quota exceeded."


class NetworkSubnetPoolAffinityError(exceptions.BadRequest):
    message = ("Subnets hosted on the same network must be allocated from the same "
               "subnet pool.")


class NetworkAddressScopeAffinityError(exceptions.BadRequest):
    message = ("The subnets of one network and IP version from subnet pools must all be "
               "in one address scope.")


def bad_subnet(msg):
    return exceptions.BadRequest(resource="subnets", msg=msg)


# ------------------------------------------------------------------ validators
# A prefix with host bits is taken as its network ("10.1.2.3/24" is
# 10.1.2.0/24), as in Neutron; a bare address is not a prefix.
_prefix_list = v.list_of(lambda x, n="prefixes": v.cidr(x, n, strict=False), what="prefix")


def prefixes_body(body):
    """The body of add_prefixes / remove_prefixes: {"prefixes": [cidr...]}."""
    if not isinstance(body, dict) or set(body) != {"prefixes"}:
        raise exceptions.InvalidInput(
            error_message="the body must be {\"prefixes\": [\"<cidr>\", ...]}")
    return _prefix_list(body["prefixes"], "prefixes")


def onboard_body(body):
    """The network of onboard_network_subnets: {"network_id": id}.  As in
    Neutron, other keys are ignored; a missing or null network_id is 400
    ("network_id must be specified"), an unknown one 404 (NetworkNotFound)."""
    if not isinstance(body, dict):
        raise exceptions.InvalidInput(error_message="the body must be {\"network_id\": \"<id>\"}")
    net_id = body.get("network_id")
    if net_id is None:
        raise exceptions.InvalidInput(error_message="network_id must be specified.")
    if not isinstance(net_id, str):
        raise exceptions.InvalidInput(error_message=f"'{net_id}' is not a valid network id")
    return net_id


_prefixlen = v.integer(0, 128)

# ------------------------------------------------------------------ attributes
RESOURCE_ATTRIBUTE_MAP = {
    SUBNETPOOLS: dict(
        standard(),
        prefixes=Attr(_prefix_list, allow_put=True, is_sort_key=False,
                      convert_filter=lambda x, n="": v.cidr(x, n, strict=False)),
        default_prefixlen=Attr(_prefixlen, allow_put=True, convert_filter=v.integer()),
        min_prefixlen=Attr(_prefixlen, allow_put=True, convert_filter=v.integer()),
        max_prefixlen=Attr(_prefixlen, allow_put=True, convert_filter=v.integer()),
        default_quota=Attr(v.integer(0, allow_none=True), allow_put=True, default=None,
                           convert_filter=v.integer()),
        ip_version=Attr(None, allow_post=False, convert_filter=v.integer()),
        # (not a sort key, as the network's: core.py)
        shared=Attr(v.to_bool, default=False, convert_filter=v.to_bool,
                    is_sort_key=False, enforce_policy=True),
        is_default=Attr(v.to_bool, allow_put=True, default=False, convert_filter=v.to_bool,
                        enforce_policy=True),
        address_scope_id=Attr(v.uuid_or_none, allow_put=True, default=None,
                              convert_filter=v.string(None)),
    ),
    # Not a standard-attribute resource in Neutron: no description,
    # revision, timestamps or tags.
    ADDRESS_SCOPES: dict(
        {k: a for k, a in standard().items() if k in ("id", "name", "project_id", "tenant_id")},
        ip_version=Attr(v.integer(choices=(4, 6)), convert_filter=v.integer()),
        shared=Attr(v.to_bool, allow_put=True, default=False, convert_filter=v.to_bool,
                    is_sort_key=False, enforce_policy=True),
    ),
    # The scope of the network's subnets of each IP version (address-scope).
    "networks": dict(
        ipv4_address_scope=Attr(None, allow_post=False, is_filter=False, is_sort_key=False),
        ipv6_address_scope=Attr(None, allow_post=False, is_filter=False, is_sort_key=False),
    ),
    "subnets": dict(
        # Asked of the pool, not shown (as in Neutron).
        prefixlen=Attr(_prefixlen, is_visible=False, is_filter=False, is_sort_key=False),
        use_default_subnetpool=Attr(v.to_bool, default=False, is_visible=False,
                                    is_filter=False, is_sort_key=False),
    ),
}

SERVER_DEFAULTS = frozenset(
    {(c, k) for c in COLLECTIONS for k in ("project_id", "tenant_id")}
    | {(SUBNETPOOLS, k) for k in ("default_prefixlen", "min_prefixlen", "max_prefixlen")}
    | {("subnets", "prefixlen")})


# ------------------------------------------------------------------ policy
_MEMBER = p.ADMIN_OR_PROJECT_MEMBER
_READER = p.ADMIN_OR_PROJECT_READER

POLICY_RULES = [
    p.oslo_policy.RuleDefault("shared_subnetpools", "field:subnetpools:shared=True",
                              description="The subnet pool is shared."),
    p.oslo_policy.RuleDefault("shared_address_scopes", "field:address_scopes:shared=True",
                              description="The address scope is shared."),
] + p.crud(SUBNETPOOL, "/subnetpools", {
    "create_subnetpool": (_MEMBER, "Create a subnet pool"),
    "create_subnetpool:shared": (p.ADMIN, "Create a shared subnet pool"),
    "create_subnetpool:is_default": (p.ADMIN, "Create a default subnet pool"),
    "create_subnetpool:tags": (_MEMBER, "Give tags when creating a subnet pool"),
    "get_subnetpool": (p.any_of(_READER, "rule:shared_subnetpools"), "Get a subnet pool"),
    "get_subnetpool:tags": (p.any_of(_READER, "rule:shared_subnetpools"),
                            "Get the tags of a subnet pool"),
    "update_subnetpool": (_MEMBER, "Update a subnet pool"),
    "update_subnetpool:is_default": (p.ADMIN, "Update ``is_default`` of a subnet pool"),
    "update_subnetpool:tags": (_MEMBER, "Set or add tags of a subnet pool"),
    "delete_subnetpool": (_MEMBER, "Delete a subnet pool"),
    "delete_subnetpool:tags": (_MEMBER, "Remove tags of a subnet pool"),
}) + [
    p.rule("add_prefixes", _MEMBER, "Add prefixes to a subnet pool", method="PUT",
           path="/subnetpools/{id}/add_prefixes"),
    p.rule("remove_prefixes", _MEMBER, "Remove unallocated prefixes from a subnet pool",
           method="PUT", path="/subnetpools/{id}/remove_prefixes"),
    p.rule("onboard_network_subnets", _MEMBER, "Onboard the subnets of a network into a "
           "subnet pool", method="PUT", path="/subnetpools/{id}/onboard_network_subnets"),
] + p.crud(ADDRESS_SCOPE, "/address-scopes", {
    "create_address_scope": (_MEMBER, "Create an address scope"),
    "create_address_scope:shared": (p.ADMIN, "Create a shared address scope"),
    "get_address_scope": (p.any_of(_READER, "rule:shared_address_scopes"),
                          "Get an address scope"),
    "update_address_scope": (_MEMBER, "Update an address scope"),
    "update_address_scope:shared": (p.ADMIN, "Update ``shared`` of an address scope"),
    "delete_address_scope": (_MEMBER, "Delete an address scope"),
})
