"""Default security group rules (alias ``security-groups-default-rules``):
the templates of the rules a new security group is given, administered
through ``/v2.0/default-security-group-rules`` (create, show, list,
delete; no update, as in Neutron).  ``used_in_default_sg``: a project's
default group gets the rule; ``used_in_non_default_sg``: every other new
group does.  ``remote_group_id: PARENT`` stands for the new group itself.
Changing the templates changes no existing group.  The storage and the
handlers are quantum_ovs/extensions/default_sg_rules.py.

Out of the box the templates are Neutron's legacy rules: egress to
anywhere for both (IPv4, IPv6), and ingress from the group itself for the
default group only (migration 0016 writes them).

Stricter than Neutron, on purpose: a template's ``remote_group_id`` is
``PARENT`` or nothing (a given group's id would put every project's new
groups in a rule about one project's group), and a
``remote_address_group_id`` must name an address group that exists.
"""

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.api.definitions import securitygroups as sg

DEFAULT_SG_RULES, DEFAULT_SG_RULE = "default_security_group_rules", "default_security_group_rule"
PARENT = "PARENT"

ALIASES = [
    {"alias": "security-groups-default-rules", "name": "Default rules for security groups",
     "description": "Configure set of security group rules used as default rules for every "
                    "new security group"},
]

REQUIRES = ["security-group"]

COLLECTIONS = {DEFAULT_SG_RULES: DEFAULT_SG_RULE}

POLICY_RULES = p.crud(DEFAULT_SG_RULE, "/default-security-group-rules", {
    "create_default_security_group_rule": (p.ADMIN,
                                           "Create a default security group rule"),
    "get_default_security_group_rule": ("role:reader",
                                        "Get a default security group rule"),
    "delete_default_security_group_rule": (p.ADMIN,
                                           "Delete a default security group rule"),
})


# ------------------------------------------------------------------ errors
class DefaultSecurityGroupRuleNotFound(exceptions.NotFound):
    message = "Default Security Group rule %(id)s does not exist"


class DefaultSecurityGroupRuleExists(exceptions.InUse):
    message = "Default Security group rule already exists. Rule id is %(rule_id)s."


# ------------------------------------------------------------------ validators
def remote_group(value, name="remote_group_id"):
    if value is None or value == PARENT:
        return value
    raise exceptions.InvalidInput(
        error_message=f"'{value}' is not a valid {name}: a default security group rule's "
                      f"remote group is '{PARENT}' (the new group itself) or none")


def _int_filter(x, n=""):
    return v.to_int(x, n)


RESOURCE_ATTRIBUTE_MAP = {
    DEFAULT_SG_RULES: {
        "id": Attr(v.uuid_str, allow_post=False, is_sort_key=True,
                   convert_filter=v.string(None)),
        "description": Attr(v.string(255), default="", is_sort_key=False,
                            convert_filter=v.string(255)),
        "direction": Attr(sg.direction, convert_filter=v.string(16)),
        "ethertype": Attr(sg.ethertype, default="IPv4", convert_filter=sg.ethertype),
        "protocol": Attr(sg.protocol, default=None, convert_filter=v.string(40)),
        "port_range_min": Attr(sg.port_value, default=None, convert_filter=_int_filter),
        "port_range_max": Attr(sg.port_value, default=None, convert_filter=_int_filter),
        "remote_ip_prefix": Attr(sg.remote_prefix, default=None,
                                 convert_filter=v.string(255)),
        "remote_group_id": Attr(remote_group, default=None, convert_filter=v.string(None)),
        "remote_address_group_id": Attr(v.uuid_or_none, default=None,
                                        convert_filter=v.string(None)),
        "used_in_default_sg": Attr(v.to_bool, default=False, convert_filter=v.to_bool,
                                   is_sort_key=False),  # (as Neutron declares them)
        "used_in_non_default_sg": Attr(v.to_bool, default=True, convert_filter=v.to_bool,
                                       is_sort_key=False),
        # A template is no project's: a project given on create is taken and
        # dropped, as Neutron does, and the caller needs none (a
        # system-scoped administrator); never shown.
        **{k: Attr(v.string(255), default=None, is_visible=False, is_filter=False,
                   is_sort_key=False) for k in ("project_id", "tenant_id")},
    },
}
