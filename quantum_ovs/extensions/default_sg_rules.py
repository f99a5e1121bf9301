"""Default security group rules (security-groups-default-rules): the
templates' storage and handlers, and ``templates()``, which the security
groups extension reads when it makes a group's first rules (one query per
new group).  The contract is quantum_ovs/api/definitions/default_sg_rules.py.

Two templates are the same rule when every matching attribute agrees
(protocol names and numbers alike, a prefix as its network; the
description does not count); a new one is refused (409) when the same
rule is already used for the same kind of group (default, other).

An address group a template names cannot be deleted while it does
(AddressGroupInUse, extensions/address_groups.py): every project's new
groups would name it.  An administrator who names one should share it
with every project (RBAC), so that they can read it.  A project's default
group is made with its template rules without counting them against the
project's rule quota (as the four legacy rules always were; Neutron
checks), since it is made on the way of a port's create or a listing."""

import uuid

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs.api.definitions import default_sg_rules as definition
from quantum_ovs.api.definitions import securitygroups as sg_definition
from quantum_ovs.db import models
from quantum_ovs.db.resource import Collection
from quantum_ovs.db.session import transaction_lock

DEFINITION = definition
T = models.DefaultSecurityGroupRule
_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
           "remote_ip_prefix", "remote_group_id", "remote_address_group_id")


def rule_dict(r):
    return {"id": r.id, "description": r.description,
            **{k: getattr(r, k) for k in _FIELDS},
            "used_in_default_sg": r.used_in_default_sg,
            "used_in_non_default_sg": r.used_in_non_default_sg}


def _key(a):
    """What makes two templates the same rule."""
    return (a["direction"], a["ethertype"], const.ip_protocol_number(a.get("protocol")),
            a.get("port_range_min"), a.get("port_range_max"),
            sg_definition._anywhere_is_none(a.get("remote_ip_prefix")),
            a.get("remote_group_id"), a.get("remote_address_group_id"))


def templates(s, default):
    """The templates of a project's default group (``default``) or of any
    other new group, in a stable order, as the API shows them
    (rule_dict)."""
    used = T.used_in_default_sg if default else T.used_in_non_default_sg
    return [rule_dict(t) for t in s.execute(sa.select(T).where(used.is_(True))
                                            .order_by(T.direction, T.ethertype, T.id)).scalars()]


class DefaultSecurityGroupRules(Collection):
    collection = definition.DEFAULT_SG_RULES
    resource = definition.DEFAULT_SG_RULE
    model = T
    not_found = (definition.DefaultSecurityGroupRuleNotFound, "id")

    def to_dict(self, obj):
        return rule_dict(obj)

    def visible_clause(self, ctx):
        return sa.true()  # (every reader sees the templates; policy decides)

    def create(self, s, ctx, a):
        sg_definition.check_rule(a)
        if a.get("remote_address_group_id") is not None:
            self.plugin.row(s, None, "address_groups", a["remote_address_group_id"])
        # (no parent row to lock: two admins adding the same template at
        # once serialize here, so that the duplicate check holds)
        transaction_lock(s, "default_security_group_rules")
        key = _key(a)
        kinds = [c for c, wanted in ((T.used_in_default_sg, a["used_in_default_sg"]),
                                     (T.used_in_non_default_sg, a["used_in_non_default_sg"]))
                 if wanted]
        if kinds:
            for other in s.execute(sa.select(T).where(sa.or_(*(c.is_(True) for c in kinds)))
                                   .order_by(T.id)).scalars():
                if _key(rule_dict(other)) == key:
                    raise definition.DefaultSecurityGroupRuleExists(rule_id=other.id)
        rule = T(id=str(uuid.uuid4()), description=a.get("description", ""),
                 used_in_default_sg=a["used_in_default_sg"],
                 used_in_non_default_sg=a["used_in_non_default_sg"],
                 **{k: a.get(k) for k in _FIELDS})
        s.add(rule)
        return rule

    def delete(self, s, ctx, rule):
        s.delete(rule)


def setup(plugin, conf):
    plugin.register(DefaultSecurityGroupRules(plugin))
    plugin.sg_rule_templates = templates


def routes(api):
    # Neutron's path spells the collection with hyphens.
    c = definition.DEFAULT_SG_RULES
    path = "/v2.0/" + c.replace("_", "-")
    api.mapper.connect(path + "{fmt:(\\.json)?}", collection=c, action="collection")
    api.mapper.connect(path + "/{id}{fmt:(\\.json)?}", collection=c, action="member",
                       requirements={"id": "[^/]+?"})
