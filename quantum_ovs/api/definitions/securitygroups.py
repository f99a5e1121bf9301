"""Security groups (alias ``security-group``): the ``security_groups`` and
``security_group_rules`` collections and the ports' ``security_groups``."""

import ipaddress

from quantum_ovs import constants as const
from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET, Attr, standard
from quantum_ovs.policy_rules import (ADMIN, ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER,
                                      any_of, crud)

ALIASES = [
    {"alias": "security-group", "name": "security-group",
     "description": "The security groups extension."},
    {"alias": "stateful-security-group", "name": "Stateful security group",
     "description": "Indicates if the security group is stateful or not"},
    {"alias": "security-groups-normalized-cidr", "name": "Security group normalized CIDR",
     "description": "Adds the normalized_cidr attribute to security group rules"},
    {"alias": "security-groups-shared-filtering",
     "name": "Security group filtering on the shared field",
     "description": "Support filtering security groups on the shared field"},
]
# The rules' remote_address_group_id ("security-groups-remote-address-group")
# comes with address groups (definitions/address_groups.py).

# a member of the project of the security group a rule is in
SG_OWNER_MEMBER = "role:member and project_id:%(security_group:tenant_id)s"

POLICY_RULES = crud("security_group", "/security-groups", {
    "create_security_group": (ADMIN_OR_PROJECT_MEMBER, "Create a security group"),
    "create_security_group:tags": (ADMIN_OR_PROJECT_MEMBER,
                                   "Give tags when creating a security group"),
    # (or one an RBAC policy shares with the caller's project: rbac-security-groups)
    "get_security_group": (any_of(ADMIN_OR_PROJECT_READER,
                                  "field:security_groups:shared=True"),
                           "Get a security group"),
    "get_security_group:tags": (any_of(ADMIN_OR_PROJECT_READER,
                                       "field:security_groups:shared=True"),
                                "Get the tags of a security group"),
    "update_security_group": (ADMIN_OR_PROJECT_MEMBER, "Update a security group"),
    "update_security_group:tags": (ADMIN_OR_PROJECT_MEMBER,
                                   "Set or add tags of a security group"),
    "delete_security_group": (ADMIN_OR_PROJECT_MEMBER, "Delete a security group"),
    "delete_security_group:tags": (ADMIN_OR_PROJECT_MEMBER,
                                   "Remove tags of a security group"),
}) + crud("security_group_rule", "/security-group-rules", {
    # A rule belongs to its group's project: a member of the group's
    # project adds one, not a project the group is shared with (as Neutron's
    # ADMIN_OR_SG_OWNER_MEMBER; security_group:tenant_id is the group's
    # owner, api/controller.py _PARENTS).
    "create_security_group_rule": (any_of(ADMIN, SG_OWNER_MEMBER),
                                   "Create a security group rule"),
    "get_security_group_rule": (ADMIN_OR_PROJECT_READER, "Get a security group rule"),
    "update_security_group_rule": (ADMIN_OR_PROJECT_MEMBER,
                                   "Update a security group rule"),
    "delete_security_group_rule": (ADMIN_OR_PROJECT_MEMBER,
                                   "Delete a security group rule"),
})

COLLECTIONS = {"security_groups": "security_group",
               "security_group_rules": "security_group_rule"}

# A rule giving exactly this range has no port range (as in Neutron).
WHOLE_PORT_RANGE = (1, 65535)


# ------------------------------------------------------------------ errors
class SecurityGroupNotFound(exceptions.NotFound):
    message = "Security group %(id)s does not exist"


class SecurityGroupRuleNotFound(exceptions.NotFound):
    message = "Security group rule %(id)s does not exist"


class SecurityGroupRuleExists(exceptions.InUse):
    message = "Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateSecurityGroupRuleInPost(exceptions.InUse):
    message = "Duplicate Security Group Rule in POST."


class SecurityGroupNotSingleGroupRules(exceptions.BadRequest):
    message = "A bulk create of security group rules may name only one security group."


class SecurityGroupRulesNotSingleProject(exceptions.BadRequest):
    message = "A bulk create of security group rules may be for only one project."


class SecurityGroupInUse(exceptions.InUse):
    message = "Security Group %(id)s in use: %(reason)s."


class SecurityGroupCannotRemoveDefault(exceptions.InUse):
    message = "Insufficient rights for removing the default security group."


class SecurityGroupCannotUpdateDefault(exceptions.InUse):
    message = "Updating the default security group's name is not allowed."


class SecurityGroupDefaultAlreadyExists(exceptions.InUse):
    message = "Default security group already exists."


class SecurityGroupRuleParameterConflict(exceptions.InvalidInput):
    message = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class SecurityGroupMultipleRemoteEntites(exceptions.InvalidInput):  # sic, Neutron's name
    message = ("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
               "may be provided.")


class SecurityGroupConflict(exceptions.Conflict):
    message = "Error %(reason)s while attempting the operation."


class SecurityGroupInvalidPortRange(exceptions.InvalidInput):
    message = ("For TCP/UDP protocols, port_range_min must be <= port_range_max "
               "(and both given)")


class SecurityGroupInvalidPortValue(exceptions.InvalidInput):
    message = "Invalid value for port %(port)s"


class SecurityGroupInvalidIcmpValue(exceptions.InvalidInput):
    message = ("Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 "
               "to 255.")


class SecurityGroupMissingIcmpType(exceptions.InvalidInput):
    message = "ICMP code (port-range-max) %(value)s is provided but ICMP type " \
              "(port-range-min) is missing."


class SecurityGroupProtocolRequiredWithPorts(exceptions.InvalidInput):
    message = "Must also specify protocol if port range is given."


class SecurityGroupInvalidProtocolForPort(exceptions.InvalidInput):
    message = ("Ports cannot be specified for protocol %(protocol)s. Ports are only "
               "supported for %(valid_port_protocols)s.")


class SecurityGroupRuleInvalidProtocol(exceptions.InvalidInput):
    message = ("Security group rule protocol %(protocol)s not supported. Only protocol "
               "values %(values)s and integer representations [0 to 255] are supported.")


class SecurityGroupRuleInvalidEtherType(exceptions.InvalidInput):
    message = ("Security group rule for ethertype '%(ethertype)s' not supported. Allowed "
               "values are %(values)s.")


class SecurityGroupRuleInvalidDirection(exceptions.InvalidInput):
    message = "Invalid direction '%(direction)s'; use ingress or egress."


class SecurityGroupEthertypeConflictWithProtocol(exceptions.InvalidInput):
    message = ("Invalid ethertype %(ethertype)s for protocol %(protocol)s.")


class PortSecurityAndIPRequiredForSecurityGroups(exceptions.InvalidInput):
    message = ("Port security must be enabled and port must have an IP address in order "
               "to use security groups.")


class PortSecurityPortHasSecurityGroup(exceptions.InUse):
    message = ("Port has security group associated. Cannot disable port security until "
               "security group is removed")


# ------------------------------------------------------------------ validation
def protocol(value, name="protocol"):
    """What the rule shows, as Neutron does: a name lower-cased, a number
    as a decimal string, None for "any".  Unknown words are refused here,
    from the one table (quantum_ovs.constants)."""
    try:
        num = const.ip_protocol_number(value)
    except const.UnknownProtocol:
        raise SecurityGroupRuleInvalidProtocol(protocol=value,
                                               values=_proto_names()) from None
    if num is None:
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        return value.strip().lower()
    return str(num)


def _proto_names():
    return [const.PROTO_NAME_ANY] + sorted(const.IP_PROTOCOL_MAP)


def port_value(value, name="port"):
    if value is None:
        return None
    try:
        return v.to_int(value, name, minimum=0, maximum=65535)
    except exceptions.InvalidInput:
        raise SecurityGroupInvalidPortValue(port=value) from None


def ethertype(value, name="ethertype"):
    if isinstance(value, str):
        for e in const.ETHERTYPES:
            if value.lower() == e.lower():
                return e
    raise SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(const.ETHERTYPES))


def direction(value, name="direction"):
    if value in const.DIRECTIONS:
        return value
    raise SecurityGroupRuleInvalidDirection(direction=value)


def group_ref(max_len=None):
    """A security group named by a rule: any string (up to ``max_len``), a
    UUID in any case.  One that names no group the caller can use is looked
    up and answers 404 SecurityGroupNotFound, as in Neutron."""
    def check(value, name="security group"):
        if value is None:
            return None
        value = v.string(max_len)(value, name)
        try:
            return v.uuid_str(value, name)
        except exceptions.InvalidInput:
            return value
    return check


def remote_prefix(value, name="remote_ip_prefix"):
    """An address or a prefix, written as a CIDR (host bits kept); an
    empty string is no prefix, as Neutron reads it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "%" in value:  # (no IPv6 scope: validators.ip_or_cidr)
        raise v.bad(f"'{value}' is not a valid IP prefix")
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError:
        raise v.bad(f"'{value}' is not a valid IP prefix") from None
    return f"{iface.ip}/{iface.network.prefixlen}"


def normalized(prefix):
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def _anywhere_is_none(prefix):
    net = normalized(prefix)
    return None if net in ("0.0.0.0/0", "::/0") else net


def check_rule(a):
    """Cross-attribute checks of one rule (after the per-attribute ones),
    in Neutron's order.  Canonicalizes like Neutron (ICMP named on an IPv6
    rule is IPv6-ICMP; the whole port range is no range) and sets
    ``a["protocol_number"]``: the number the rule matches, computed here
    once from the one table, which is what the host views carry."""
    eth = a["ethertype"]
    proto = a.get("protocol")
    if eth == const.IPv6 and proto in ("icmp", "icmpv6"):
        a["protocol"] = proto = "ipv6-icmp"
    elif eth == const.IPv6 and proto == str(const.PROTO_NUM_ICMP):
        a["protocol"] = proto = str(const.PROTO_NUM_IPV6_ICMP)
    num = const.ip_protocol_number(proto)
    a["protocol_number"] = num
    if (a.get("port_range_min"), a.get("port_range_max")) == WHOLE_PORT_RANGE:
        a["port_range_min"] = a["port_range_max"] = None
    _check_ports(num, a.get("port_range_min"), a.get("port_range_max"))
    prefix = a.get("remote_ip_prefix")
    if prefix is not None:
        version = ipaddress.ip_network(prefix, strict=False).version
        if eth != f"IPv{version}":
            raise SecurityGroupRuleParameterConflict(ethertype=eth, cidr=prefix)
    if num in const.IPV6_ONLY_PROTOCOLS and eth == const.IPv4:
        raise SecurityGroupEthertypeConflictWithProtocol(ethertype=eth, protocol=proto)
    remotes = (prefix, a.get("remote_group_id"), a.get("remote_address_group_id"))
    if sum(bool(x) for x in remotes) > 1:
        raise SecurityGroupMultipleRemoteEntites()


def _check_ports(num, pmin, pmax):
    if pmin is None and pmax is None:
        return
    if num is None:
        raise SecurityGroupProtocolRequiredWithPorts()
    if num in const.PORT_PROTOCOLS:
        if pmin == 0 or pmax == 0:
            raise SecurityGroupInvalidPortValue(port=0)
        if pmin is None or pmax is None or pmin > pmax:
            raise SecurityGroupInvalidPortRange()
    elif num in const.ICMP_PROTOCOLS:
        for attr, field, val in (("port_range_min", "type", pmin),
                                 ("port_range_max", "code", pmax)):
            if val is not None and not 0 <= val <= 255:
                raise SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=val)
        if pmin is None:
            raise SecurityGroupMissingIcmpType(value=pmax)
    else:
        names = sorted(n for n, x in const.IP_PROTOCOL_MAP.items() if x in const.PORT_PROTOCOLS)
        raise SecurityGroupInvalidProtocolForPort(
            protocol=num, valid_port_protocols=", ".join(n.upper() for n in names))


# ------------------------------------------------------------------ attributes
def _ro(**kw):
    return Attr(None, allow_post=False, **kw)


_STD = standard()

RESOURCE_ATTRIBUTE_MAP = {
    "security_groups": dict(
        _STD,
        stateful=Attr(v.to_bool, allow_put=True, default=True, convert_filter=v.to_bool),
        security_group_rules=_ro(is_filter=False, is_sort_key=False),
        # shared with the caller's project or every project by an RBAC
        # policy (security-groups-shared-filtering)
        shared=Attr(None, allow_post=False, convert_filter=v.to_bool, is_sort_key=False),
    ),
    "security_group_rules": {
        "id": _STD["id"],
        "project_id": _STD["project_id"],
        "tenant_id": _STD["tenant_id"],
        "description": Attr(v.string(255), allow_put=True, default="",
                            convert_filter=v.string(255)),
        "revision_number": _STD["revision_number"],
        "created_at": _STD["created_at"],
        "updated_at": _STD["updated_at"],
        "security_group_id": Attr(group_ref(36), convert_filter=v.string(None)),
        "direction": Attr(direction, convert_filter=v.string(16)),
        "ethertype": Attr(ethertype, default="IPv4", convert_filter=ethertype),
        "protocol": Attr(protocol, default=None, convert_filter=v.string(40)),
        "port_range_min": Attr(port_value, default=None,
                               convert_filter=lambda x, n="": v.to_int(x, n)),
        "port_range_max": Attr(port_value, default=None,
                               convert_filter=lambda x, n="": v.to_int(x, n)),
        "remote_ip_prefix": Attr(remote_prefix, default=None,
                                 convert_filter=v.string(255)),
        "remote_group_id": Attr(group_ref(), default=None,
                                convert_filter=v.string(None)),
        "normalized_cidr": _ro(is_filter=False, is_sort_key=False),
    },
    "ports": {
        "security_groups": Attr(
            v.list_of(v.uuid_str, unique=True, what="security group", none_as_empty=True),
            allow_put=True,
            default=NOT_SET, convert_filter=v.string(None), is_sort_key=False),
    },
}

# A port without security_groups gets its project's default group.
SERVER_DEFAULTS = frozenset(
    {("ports", "security_groups")}
    | {(c, k) for c in COLLECTIONS for k in ("project_id", "tenant_id")})
