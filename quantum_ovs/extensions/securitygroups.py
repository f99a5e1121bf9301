"""Security groups (alias ``security-group``).

Two collections, ``security_groups`` and ``security_group_rules``, and
the ports' ``security_groups`` attribute.  Every project has a group
named ``default``, made the first time it is needed (listing groups,
creating a group or a port); the primary key of default_security_groups
makes it one per project under any concurrency (a lost race is retried
by the transaction and then finds the winner's group).

A change of a group's rules bumps the group's revision and records a
``security_group`` change, so that agents recompute what the group
allows; a port's membership is part of the port and travels with the
port's own change.
"""

import ipaddress
import uuid

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs import exceptions, policy
from quantum_ovs.api import attributes, validators as v
from quantum_ovs.api.attributes import NOT_SET, Attr
from quantum_ovs.api.controller import Controller
from quantum_ovs.db import changelog, models
from quantum_ovs.db.plugin import Collection, child_filter
from quantum_ovs.timeutils import api_time as _ts

ALIASES = [
    {"alias": "security-group", "name": "security-group",
     "description": "The security groups extension."},
    {"alias": "stateful-security-group", "name": "Stateful security group",
     "description": "Indicates if the security group is stateful or not"},
    {"alias": "security-groups-normalized-cidr", "name": "Security group normalized CIDR",
     "description": "Adds the normalized_cidr attribute to security group rules"},
]
# Not advertised, and the rules have no remote_address_group_id (as in a
# Neutron without it): "security-groups-remote-address-group" comes with
# address groups.

POLICY_RULES = policy.crud("security_group", "/security-groups", {
    "create_security_group": (policy.ADMIN_OR_PROJECT_MEMBER, "Create a security group"),
    "create_security_group:tags": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Give tags when creating a security group"),
    "get_security_group": (policy.ADMIN_OR_PROJECT_READER, "Get a security group"),
    "get_security_group:tags": (policy.ADMIN_OR_PROJECT_READER,
                                "Get the tags of a security group"),
    "update_security_group": (policy.ADMIN_OR_PROJECT_MEMBER, "Update a security group"),
    "update_security_group:tags": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Set or add tags of a security group"),
    "delete_security_group": (policy.ADMIN_OR_PROJECT_MEMBER, "Delete a security group"),
    "delete_security_group:tags": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Remove tags of a security group"),
}) + policy.crud("security_group_rule", "/security-group-rules", {
    # A rule belongs to its group's project.
    "create_security_group_rule": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Create a security group rule"),
    "get_security_group_rule": (policy.ADMIN_OR_PROJECT_READER, "Get a security group rule"),
    "update_security_group_rule": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Update a security group rule"),
    "delete_security_group_rule": (policy.ADMIN_OR_PROJECT_MEMBER,
                                   "Delete a security group rule"),
})

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"

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
    message = "Only one of remote_ip_prefix or remote_group_id may be provided."


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
    """An address or a prefix, written as a CIDR (host bits kept)."""
    if value is None:
        return None
    if not isinstance(value, str):
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
    if prefix is not None and a.get("remote_group_id"):
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


def _same_rule(s, group_id, a):
    """The id of the group's rule that is the same rule as ``a`` (protocol
    names and numbers agree, prefixes compare by network), or None.  The
    database narrows it down to the rules that differ at most in their
    prefix: a group's rule count does not make each create slower."""
    R = models.SecurityGroupRule

    def eq(col, value):
        return col.is_(None) if value is None else col == value
    q = sa.select(R.id, R.remote_ip_prefix).where(
        R.security_group_id == group_id, R.direction == a["direction"],
        R.ethertype == a["ethertype"], eq(R.protocol_number, a["protocol_number"]),
        eq(R.port_range_min, a.get("port_range_min")),
        eq(R.port_range_max, a.get("port_range_max")),
        eq(R.remote_group_id, a.get("remote_group_id")))
    wanted = _anywhere_is_none(a.get("remote_ip_prefix"))
    return next((rid for rid, prefix in s.execute(q) if _anywhere_is_none(prefix) == wanted),
                None)


# ------------------------------------------------------------------ attributes
def _ro(**kw):
    return Attr(None, allow_post=False, **kw)


def extend_resources(resources):
    std = attributes._standard()
    attributes.SINGULAR["security_groups"] = "security_group"
    attributes.SINGULAR["security_group_rules"] = "security_group_rule"
    resources["security_groups"] = dict(
        std,
        stateful=Attr(v.to_bool, allow_put=True, default=True, convert_filter=v.to_bool),
        security_group_rules=_ro(is_filter=False, is_sort_key=False),
    )
    resources["security_group_rules"] = {
        "id": std["id"],
        "project_id": std["project_id"],
        "tenant_id": std["tenant_id"],
        "description": Attr(v.string(255), allow_put=True, default="",
                            convert_filter=v.string(255)),
        "revision_number": std["revision_number"],
        "created_at": std["created_at"],
        "updated_at": std["updated_at"],
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
    }
    resources["ports"]["security_groups"] = Attr(
        v.list_of(v.uuid_str, unique=True, what="security group"), allow_put=True,
        default=NOT_SET, convert_filter=v.string(None), is_sort_key=False)
    attributes.SERVER_DEFAULTS.add(("ports", "security_groups"))
    for c in ("security_groups", "security_group_rules"):
        attributes.SERVER_DEFAULTS.update({(c, "project_id"), (c, "tenant_id")})


# ------------------------------------------------------------------ dicts


def rule_dict(r):
    return {
        "id": r.id, "project_id": r.project_id, "tenant_id": r.project_id,
        "security_group_id": r.security_group_id, "direction": r.direction,
        "ethertype": r.ethertype, "protocol": r.protocol,
        "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix, "remote_group_id": r.remote_group_id,
        "normalized_cidr": normalized(r.remote_ip_prefix),
        "description": r.description, "revision_number": r.revision_number,
        "created_at": _ts(r.created_at), "updated_at": _ts(r.updated_at),
    }


def group_dict(g):
    return {
        "id": g.id, "name": g.name, "description": g.description,
        "project_id": g.project_id, "tenant_id": g.project_id, "stateful": g.stateful,
        "security_group_rules": [rule_dict(r) for r in g.rules],
        "revision_number": g.revision_number, "created_at": _ts(g.created_at),
        "updated_at": _ts(g.updated_at), "tags": [t.tag for t in g.tags],
    }


# ------------------------------------------------------------------ the database side
def _new_rule(s, group, direction_, ether, remote_group_id=None, **kw):
    rule = models.SecurityGroupRule(
        id=str(uuid.uuid4()), project_id=group.project_id, security_group_id=group.id,
        direction=direction_, ethertype=ether, remote_group_id=remote_group_id,
        protocol=kw.get("protocol"), protocol_number=kw.get("protocol_number"),
        port_range_min=kw.get("port_range_min"),
        port_range_max=kw.get("port_range_max"),
        remote_ip_prefix=kw.get("remote_ip_prefix"), description=kw.get("description", ""),
        revision_number=0)
    s.add(rule)
    return rule


def _record_group(plugin, s, group):
    """The group's rules changed: agents recompute what it allows."""
    changelog.bump(group)
    changelog.record(s, "security_group", group, "update")


def ensure_default(plugin, s, project_id):
    """The id of the project's default group, made (with its rules) if
    missing.  A concurrent maker wins through the primary key; our
    transaction is then retried and finds its group."""
    D = models.DefaultSecurityGroup
    with s.no_autoflush:
        found = s.execute(sa.select(D.security_group_id).where(D.project_id == project_id)
                          ).scalar()
    if found is not None:
        return found
    group = models.SecurityGroup(
        id=str(uuid.uuid4()), project_id=project_id, name=DEFAULT_NAME,
        description=DEFAULT_DESCRIPTION, stateful=True, revision_number=0)
    s.add(group)
    s.flush()
    s.add(D(project_id=project_id, security_group_id=group.id))
    s.flush()
    for ether in ("IPv4", "IPv6"):
        _new_rule(s, group, "egress", ether)
        _new_rule(s, group, "ingress", ether, remote_group_id=group.id)
    group.tags = []
    s.flush()
    changelog.record(s, "security_group", group, "create")
    return group.id


def _is_default(s, group):
    D = models.DefaultSecurityGroup
    return s.execute(sa.select(D.project_id).where(D.security_group_id == group.id)
                     ).first() is not None


class SecurityGroups(Collection):
    collection = "security_groups"
    resource = "security_group"
    model = models.SecurityGroup
    not_found = (SecurityGroupNotFound, "id")

    def to_dict(self, obj):
        return group_dict(obj)

    def create(self, s, ctx, a):
        if a["name"].strip().lower() == DEFAULT_NAME:
            raise SecurityGroupDefaultAlreadyExists()
        ensure_default(self.plugin, s, a["project_id"])
        group = models.SecurityGroup(
            id=str(uuid.uuid4()), project_id=a["project_id"], name=a["name"],
            description=a["description"], stateful=a["stateful"], revision_number=0)
        s.add(group)
        s.flush()
        # Like Neutron: a new group lets everything out.
        for ether in ("IPv4", "IPv6"):
            _new_rule(s, group, "egress", ether)
        group.tags = []
        s.flush()
        s.refresh(group)
        return group

    def update(self, s, ctx, group, a):
        if "name" in a and a["name"] != group.name:
            if _is_default(s, group):
                raise SecurityGroupCannotUpdateDefault()
            if a["name"].strip().lower() == DEFAULT_NAME:
                raise SecurityGroupDefaultAlreadyExists()
        if "stateful" in a and a["stateful"] != group.stateful and self._ports_using(s, group):
            raise SecurityGroupInUse(id=group.id, reason="its ports would change "
                                                         "statefulness")
        for k in ("name", "description", "stateful"):
            if k in a:
                setattr(group, k, a[k])

    @staticmethod
    def _ports_using(s, group):
        B = models.SecurityGroupPortBinding
        return s.execute(sa.select(sa.func.count()).select_from(B).where(
            B.security_group_id == group.id)).scalar()

    def delete(self, s, ctx, group):
        if _is_default(s, group) and not ctx.is_admin:
            raise SecurityGroupCannotRemoveDefault()
        if self._ports_using(s, group):
            raise SecurityGroupInUse(id=group.id, reason="one or more ports use it")
        R = models.SecurityGroupRule
        # Rules of other groups that name this one as their remote go too;
        # those groups change.
        referring = s.execute(sa.select(R).where(
            R.remote_group_id == group.id, R.security_group_id != group.id)).scalars().all()
        for rule in referring:
            other = s.get(models.SecurityGroup, rule.security_group_id)
            s.delete(rule)
            if other is not None:
                _record_group(self.plugin, s, other)
        s.flush()
        s.execute(sa.delete(models.DefaultSecurityGroup).where(
            models.DefaultSecurityGroup.security_group_id == group.id))
        s.delete(group)


class SecurityGroupRules(Collection):
    collection = "security_group_rules"
    resource = "security_group_rule"
    model = models.SecurityGroupRule
    not_found = (SecurityGroupRuleNotFound, "id")

    def to_dict(self, obj):
        return rule_dict(obj)

    def create(self, s, ctx, a):
        # The group's row lock serializes rule changes of one group, so
        # that the duplicate check below holds under concurrency.
        group = self.plugin.row(s, ctx, "security_groups", a["security_group_id"],
                                lock=True)
        check_rule(a)
        remote = a.get("remote_group_id")
        if remote is not None and remote != group.id:
            # Any id the caller cannot use (or that is no UUID) is a 404.
            self.plugin.row(s, ctx, "security_groups", remote)
        made_here = s.info.setdefault("qovs_new_rules", set())
        same = _same_rule(s, group.id, a)
        if same is not None:
            if same in made_here:
                raise DuplicateSecurityGroupRuleInPost()
            raise SecurityGroupRuleExists(rule_id=same)
        rule = _new_rule(s, group, a["direction"], a["ethertype"], remote_group_id=remote,
                         protocol=a.get("protocol"), protocol_number=a["protocol_number"],
                         port_range_min=a.get("port_range_min"),
                         port_range_max=a.get("port_range_max"),
                         remote_ip_prefix=a.get("remote_ip_prefix"),
                         description=a.get("description", ""))
        made_here.add(rule.id)
        s.flush()
        _record_group(self.plugin, s, group)
        return rule

    def update(self, s, ctx, rule, a):
        if "description" in a:
            rule.description = a["description"]

    def delete(self, s, ctx, rule):
        group = self.plugin.row(s, None, "security_groups", rule.security_group_id,
                                lock=True)
        s.delete(rule)
        s.flush()
        s.expire(group, ["rules"])
        _record_group(self.plugin, s, group)


# ------------------------------------------------------------------ ports
def _groups_for_port(plugin, s, ctx, port, ids):
    G = models.SecurityGroup
    q = sa.select(G.id, G.stateful).where(G.id.in_(ids))
    if not ctx.is_admin:
        q = q.where(G.project_id == port.project_id)
    stateful = dict(s.execute(q).all())
    missing = [i for i in ids if i not in stateful]
    if missing:
        raise SecurityGroupNotFound(id=", ".join(missing))
    if len(set(stateful.values())) > 1:
        # One port's traffic is tracked or not: its groups must agree.
        raise SecurityGroupConflict(reason="Cannot apply both stateful and stateless "
                                           "security groups on the same port at the same "
                                           "time")
    return list(ids)


def _set_port_groups(port, ids):
    current = {b.security_group_id for b in port.security_group_bindings}
    if current == set(ids):
        return False
    port.security_group_bindings = [models.SecurityGroupPortBinding(security_group_id=i)
                                    for i in ids]
    return True


def setup(plugin, conf):
    groups = SecurityGroups(plugin)
    rules = SecurityGroupRules(plugin)
    plugin.register(groups)
    plugin.register(rules)
    plugin.ensure_default_security_group = lambda s, project: ensure_default(plugin, s,
                                                                              project)

    def on_port_create(s, ctx, port, a):
        wanted = a.get("security_groups")
        if not port.port_security_enabled:
            if wanted:
                raise PortSecurityAndIPRequiredForSecurityGroups()
            return
        if wanted is None:
            if (port.device_owner or "").startswith("network:"):
                return
            ids = [ensure_default(plugin, s, port.project_id)]
        else:
            ids = _groups_for_port(plugin, s, ctx, port, wanted)
        _set_port_groups(port, ids)

    def on_port_update(s, ctx, port, a):
        if "security_groups" in a:
            ids = a["security_groups"]
            if ids and not port.port_security_enabled:
                raise PortSecurityAndIPRequiredForSecurityGroups()
            ids = _groups_for_port(plugin, s, ctx, port, ids)
            _set_port_groups(port, ids)  # update_port records the groups it left too
        elif not port.port_security_enabled and port.security_group_bindings:
            raise PortSecurityPortHasSecurityGroup()

    def extend_port(port, d):
        d["security_groups"] = sorted(b.security_group_id
                                      for b in port.security_group_bindings)

    plugin.add_hook("ports", "create", on_port_create)
    plugin.add_hook("ports", "update", on_port_update)
    plugin.add_dict_extender("ports", extend_port)
    P, B = models.Port, models.SecurityGroupPortBinding
    plugin.add_filter("ports", "security_groups",
                      child_filter(P.id, B.port_id, B.security_group_id))

    def ensure_for_listing(ctx, project_id):
        if not project_id:
            return
        D = models.DefaultSecurityGroup
        with plugin.db.reader() as s:
            if s.get(D, project_id) is not None:
                return
        plugin.db.write(lambda s: ensure_default(plugin, s, project_id))
    plugin.ensure_default_for_listing = ensure_for_listing


class SecurityGroupController(Controller):
    """Listing groups makes the project's default group first."""

    def index(self, req, ctx):
        projects = [ctx.project_id]
        if ctx.is_admin:
            wanted = req.GET.getall("project_id") + req.GET.getall("tenant_id")
            if wanted:
                projects = wanted
        for p in projects:
            self.plugin.ensure_default_for_listing(ctx, p)
        return super().index(req, ctx)


def routes(api):
    old = api.controllers["security_groups"]
    api.controllers["security_groups"] = SecurityGroupController(
        "security_groups", old.attrs, old.plugin, old.policy, old.conf)
    # Neutron's paths spell the collections with hyphens.
    m = api.mapper
    for c in ("security_groups", "security_group_rules"):
        path = "/v2.0/" + c.replace("_", "-")
        m.connect(path + "{fmt:(\\.json)?}", collection=c, action="collection")
        m.connect(path + "/{id}{fmt:(\\.json)?}", collection=c, action="member",
                  requirements={"id": "[^/]+?"})
    m.connect("/v2.0/security-groups/{id}/tags", collection="security_groups",
              action="tags")
    m.connect("/v2.0/security-groups/{id}/tags/{tag}", collection="security_groups",
              action="tag")
