"""The RBAC policies contract (aliases ``rbac-policies``,
``rbac-security-groups``): data and validators only, like neutron-lib's
``rbac_policies.py`` and ``rbac_security_groups.py``.  The storage and
the object types are quantum_ovs/db/rbac.py and
quantum_ovs/extensions/rbac.py.

A policy gives ``target_tenant`` (a project id, or ``*`` for every
project) an ``action`` on an object: ``access_as_shared`` on a network
(ports on it, ``shared`` true for the target) or a security group (a
port's group, a remote group), ``access_as_external`` on a network (its
router gateways and floating IPs).  Only ``target_tenant`` changes.
"""

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr, standard

RBAC_POLICY = "rbac_policy"
RBAC_POLICIES = "rbac_policies"

ALIASES = [
    {"alias": "rbac-policies", "name": "RBAC Policies",
     "description": "Allows creation and modification of policies that control tenant "
                    "access to resources."},
    {"alias": "rbac-security-groups", "name": "Add RBAC support to security groups",
     "description": "Add RBAC support to security groups"},
]

COLLECTIONS = {RBAC_POLICIES: RBAC_POLICY}


# ------------------------------------------------------------------ errors
class RbacPolicyNotFound(exceptions.NotFound):
    message = "RBAC policy with ID %(id)s not found"


class DuplicateRbacPolicy(exceptions.Conflict):
    message = "An RBAC policy already exists with those values."


class RbacPolicyInUse(exceptions.Conflict):
    message = ("RBAC policy on object %(object_id)s cannot be removed because other "
               "objects depend on it.\nDetails: %(details)s")


def check_target(s, ctx, otype, obj, action, target):
    """Refuse a policy (or the wildcard a ``shared=True`` makes) that the
    object's type (db.rbac.ObjectType.may_target) refuses: 400
    InvalidInput, the type a Neutron client sees (Neutron wraps its own
    RbacPolicyInitError so)."""
    why = otype.may_target and otype.may_target(s, ctx, obj, action, target)
    if why:
        raise exceptions.InvalidInput(
            error_message=f"Failed to create RBAC policy on object {obj.id} because {why}.")


class InvalidActionForType(exceptions.InvalidInput):
    message = ("Invalid action '%(action)s' for object type '%(object_type)s'. Valid "
               "actions: %(valid_actions)s")


_std = standard()


def _target(value, name="target_tenant"):
    value = v.string(255)(value, name)
    if not value.strip():
        raise v.bad(f"'{name}' must not be empty")
    # A project id has no blanks around it, nor control characters: "* "
    # is not "*" to the policy (only administrators name every project),
    # but MariaDB's PAD SPACE comparison took it for the wildcard (review
    # s24b F1).
    if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise v.bad(f"'{name}' must have no blanks around it and no control characters")
    return value


RESOURCE_ATTRIBUTE_MAP = {
    RBAC_POLICIES: {
        "id": _std["id"],
        "project_id": _std["project_id"],
        "tenant_id": _std["tenant_id"],
        "object_type": Attr(v.string(255)),
        "object_id": Attr(v.uuid_str, convert_filter=v.string(36)),
        "action": Attr(v.string(255)),
        "target_tenant": Attr(_target, allow_put=True, enforce_policy=True,
                              convert_filter=v.string(255)),
    },
}
SERVER_DEFAULTS = {(RBAC_POLICIES, "project_id"), (RBAC_POLICIES, "tenant_id")}

_MEMBER = p.ADMIN_OR_PROJECT_MEMBER
_READER = p.ADMIN_OR_PROJECT_READER
# Only administrators give an object to every project.
_NO_WILDCARD = p.any_of(p.ADMIN, "not field:rbac_policy:target_tenant=*")

POLICY_RULES = p.crud(RBAC_POLICY, "/rbac-policies", {
    "create_rbac_policy": (_MEMBER, "Create an RBAC policy"),
    "create_rbac_policy:target_tenant": (
        _NO_WILDCARD, "Create an RBAC policy for every project (target_tenant '*')"),
    "get_rbac_policy": (_READER, "Get an RBAC policy"),
    "update_rbac_policy": (_MEMBER, "Update an RBAC policy"),
    "update_rbac_policy:target_tenant": (
        p.any_of(p.ADMIN, "(not field:rbac_policy:target_tenant=*) and "
                          f"({p.PROJECT_MEMBER})"),
        "Change the target project of an RBAC policy ('*' for administrators)"),
    "delete_rbac_policy": (_MEMBER, "Delete an RBAC policy"),
})
