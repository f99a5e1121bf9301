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

import json
import operator
import uuid

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs.api import definitions
from quantum_ovs.api.definitions import default_sg_rules as templates_definition
from quantum_ovs.api.controller import Controller
from quantum_ovs.api.definitions.securitygroups import (  # noqa: F401 (the contract's names)
    DuplicateSecurityGroupRuleInPost,
    PortSecurityAndIPRequiredForSecurityGroups,
    PortSecurityPortHasSecurityGroup,
    SecurityGroupCannotRemoveDefault,
    SecurityGroupCannotUpdateDefault,
    SecurityGroupConflict,
    SecurityGroupDefaultAlreadyExists,
    SecurityGroupEthertypeConflictWithProtocol,
    SecurityGroupInUse,
    SecurityGroupInvalidIcmpValue,
    SecurityGroupInvalidPortRange,
    SecurityGroupInvalidPortValue,
    SecurityGroupInvalidProtocolForPort,
    SecurityGroupMissingIcmpType,
    SecurityGroupMultipleRemoteEntites,
    SecurityGroupNotFound,
    SecurityGroupNotSingleGroupRules,
    SecurityGroupProtocolRequiredWithPorts,
    SecurityGroupRuleExists,
    SecurityGroupRuleInvalidDirection,
    SecurityGroupRuleInvalidEtherType,
    SecurityGroupRuleInvalidProtocol,
    SecurityGroupRuleNotFound,
    SecurityGroupRuleParameterConflict,
    SecurityGroupRulesNotSingleProject,
    WHOLE_PORT_RANGE,
    _anywhere_is_none,
    _check_ports,
    _proto_names,
    check_rule,
    direction,
    ethertype,
    group_ref,
    normalized,
    port_value,
    protocol,
    remote_prefix,
)
from quantum_ovs.db import changelog, models, query, rbac
from quantum_ovs.db.query import child_filter
from quantum_ovs.db.resource import Collection, hold
from quantum_ovs.timeutils import api_time as _ts

_GROUP_ID = operator.attrgetter("security_group_id")

DEFINITION = definitions.securitygroups

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"


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
        eq(R.remote_group_id, a.get("remote_group_id")),
        eq(R.remote_address_group_id, a.get("remote_address_group_id")))
    wanted = _anywhere_is_none(a.get("remote_ip_prefix"))
    return next((rid for rid, prefix in s.execute(q) if _anywhere_is_none(prefix) == wanted),
                None)


# ------------------------------------------------------------------ dicts


def rule_dict(r):
    return {
        "id": r.id, "project_id": r.project_id, "tenant_id": r.project_id,
        "security_group_id": r.security_group_id, "direction": r.direction,
        "ethertype": r.ethertype, "protocol": r.protocol,
        "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix, "remote_group_id": r.remote_group_id,
        "remote_address_group_id": r.remote_address_group_id,
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
        remote_ip_prefix=kw.get("remote_ip_prefix"),
        remote_address_group_id=kw.get("remote_address_group_id"),
        description=kw.get("description", ""),
        revision_number=0)
    s.add(rule)
    return rule


def _named(s, group_id):
    """The groups the rules of a group name as remote groups (recorded
    with a rule change, as they were before it: see _record_group)."""
    R = models.SecurityGroupRule
    with s.no_autoflush:
        return sorted(set(s.execute(sa.select(R.remote_group_id).where(
            R.security_group_id == group_id, R.remote_group_id.is_not(None))).scalars()))


def _record_group(plugin, s, group, named_before=None):
    """The group's rules changed: agents recompute what it allows.
    ``named_before`` (_named before the change) lets the host views send
    only the group's rules (db/host_view.py _group_changes)."""
    changelog.bump(group)
    changelog.record(s, "security_group", group, "update",
                     detail=None if named_before is None else json.dumps(named_before))


def ensure_default(plugin, s, project_id):
    """The id of the project's default group, made (with its rules) if
    missing.  A concurrent maker wins through the primary key; our
    transaction is then retried and finds its group."""
    known = s.info.setdefault("qovs_default_groups", {})  # a bulk asks once
    if project_id in known:
        return known[project_id]
    known[project_id] = found = _ensure_default(plugin, s, project_id)
    return found


def _ensure_default(plugin, s, project_id):
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
    _rules_from_templates(plugin, s, group, default=True)
    group.tags = []
    s.flush()
    changelog.record(s, "security_group", group, "create")
    return group.id


def _rules_from_templates(plugin, s, group, default):
    """The first rules of a new group (``default``: the project's
    default group), from the default security group rules
    (plugin.sg_rule_templates); remote group PARENT is the group itself.
    Returns them."""
    out = []
    for t in plugin.sg_rule_templates(s, default):
        remote, proto = t["remote_group_id"], t["protocol"]
        out.append(_new_rule(
            s, group, t["direction"], t["ethertype"],
            remote_group_id=group.id if remote == templates_definition.PARENT else remote,
            protocol=proto, protocol_number=const.ip_protocol_number(proto),
            port_range_min=t["port_range_min"], port_range_max=t["port_range_max"],
            remote_ip_prefix=t["remote_ip_prefix"],
            remote_address_group_id=t["remote_address_group_id"]))
    return out


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

    def for_caller(self, s, ctx, rows, dicts):
        # ``shared`` (security-groups-shared-filtering; the
        # get_security_group policy reads it too): an RBAC policy shares
        # the group with the caller's project or with every project, as
        # Neutron shows it (to the owner as well).
        given = rbac.granted_ids(s, "security_group", rbac.SHARED, [r.id for r in rows],
                                 ctx.project_id)
        for r, d in zip(rows, dicts):
            d["shared"] = r.id in given

    def filter_for(self, ctx, attr, values):
        if attr != "shared":
            return self.filter(attr, values)
        # (as the caller reads it: shared with its project or every one)
        project = ctx.project_id if ctx is not None else None
        shared = models.SecurityGroup.id.in_(
            rbac.granted("security_group", (rbac.SHARED,), project or rbac.WILDCARD))
        return query.flag_filter(shared, values)

    def visible_clause(self, ctx):
        # Own, or shared with the project by an RBAC policy.
        G = models.SecurityGroup
        return sa.or_(G.project_id == ctx.project_id,
                      G.id.in_(rbac.granted("security_group", (rbac.SHARED,),
                                            ctx.project_id)))

    def create(self, s, ctx, a):
        if a["name"].strip().lower() == DEFAULT_NAME:
            raise SecurityGroupDefaultAlreadyExists()
        ensure_default(self.plugin, s, a["project_id"])
        group = models.SecurityGroup(
            id=str(uuid.uuid4()), project_id=a["project_id"], name=a["name"],
            description=a["description"], stateful=a["stateful"], revision_number=0)
        s.add(group)
        s.flush()
        # Like Neutron: a new group's rules (the templates: out of the box,
        # everything out) count against the project's security_group_rule
        # quota.
        quotas = getattr(self.plugin, "quotas", None)
        for rule in _rules_from_templates(self.plugin, s, group, default=False):
            if quotas is not None and "security_group_rule" in quotas.resources:
                quotas.check(s, "security_group_rule", rule)
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
            before = _named(s, rule.security_group_id)
            s.delete(rule)
            s.flush()
            if other is not None:
                _record_group(self.plugin, s, other, before)
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

    def create_all(self, s, ctx, items):
        # (as Neutron's bulk create: one group and one project, checked
        # before any of them is looked up)
        if len({a["security_group_id"] for a in items}) > 1:
            raise SecurityGroupNotSingleGroupRules()
        if len({a.get("project_id") for a in items}) > 1:
            raise SecurityGroupRulesNotSingleProject()
        return super().create_all(s, ctx, items)

    def create(self, s, ctx, a):
        # The group's row lock serializes rule changes of one group, so
        # that the duplicate check below holds under concurrency.  The
        # rows' columns only (bare): loading a group loads all its rules,
        # each rule of a bulk would load the rules made before it.
        group = self.plugin.row(s, ctx, "security_groups", a["security_group_id"],
                                lock=True, bare=True)
        check_rule(a)
        remote = a.get("remote_group_id")
        if remote is not None and remote != group.id:
            # Any id the caller cannot use (or that is no UUID) is a 404.
            self.plugin.row(s, ctx, "security_groups", remote, bare=True)
        if a.get("remote_address_group_id") is not None:
            # 404 AddressGroupNotFound unless the caller can see it (held:
            # an un-sharing of it waits for this rule, or this for it).
            self.plugin.row(s, ctx, "address_groups", a["remote_address_group_id"],
                            bare=True, share=True)
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
                         remote_address_group_id=a.get("remote_address_group_id"),
                         description=a.get("description", ""))
        made_here.add(rule.id)
        before = _named(s, group.id)
        s.flush()
        _record_group(self.plugin, s, group, before)
        return rule

    def update(self, s, ctx, rule, a):
        if "description" in a:
            rule.description = a["description"]

    def delete(self, s, ctx, rule):
        group = self.plugin.row(s, None, "security_groups", rule.security_group_id,
                                lock=True, bare=True)
        before = _named(s, group.id)
        s.delete(rule)
        s.flush()
        s.expire(group, ["rules"])
        _record_group(self.plugin, s, group, before)


# ------------------------------------------------------------------ ports
def _groups_for_port(plugin, s, ctx, port, ids):
    G = models.SecurityGroup
    hold(s, G, ids)  # (an un-sharing of one waits for this write, or this for it)
    q = sa.select(G.id, G.stateful).where(G.id.in_(ids))
    if not ctx.is_admin:
        # The port's project's groups and those shared with it.
        q = q.where(sa.or_(G.project_id == port.project_id,
                           G.id.in_(rbac.granted("security_group", (rbac.SHARED,),
                                                 port.project_id))))
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
        d["security_groups"] = sorted(map(_GROUP_ID, port.security_group_bindings))

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
        "security_groups", old.schema, old.plugin, old.policy, old.conf)
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
