"""RBAC policies: the registry of object types and the SQL of sharing.

A policy (models.RbacPolicy) gives ``target_tenant`` (a project or
``*``) an ``action`` on one object.  Which objects can be named is a
registry: an object type is one ``ObjectType`` given to ``register``
(extensions/rbac.py registers ``network`` and ``security_group``; an
extension adding a shareable resource registers its own in its setup).

What the registry gives a type:

- the policies of an object go when the object goes (a delete hook);
- ``granted(type, actions, project)``: the ids of the objects of that
  type the actions give ``project`` (a subquery: visibility clauses OR
  it in, so that sharing is decided by the list query itself);
- ``lost_clause``: the projects that lose an access when a policy goes
  or changes target, for the type's ``in_use`` check.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import sqlalchemy as sa

from quantum_ovs import constants as const
from quantum_ovs.db import models

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
WILDCARD = "*"


@dataclasses.dataclass(frozen=True)
class ObjectType:
    """One shareable object type.

    ``name``: the policies' ``object_type``; ``collection``: the plugin
    collection of its objects (their rows, owners and not-found errors);
    ``actions``: the actions a policy on it may name;
    ``in_use(session, obj, action, lost)``: why the projects matched by
    ``lost(column)`` (a clause on a project id column) cannot lose
    ``action`` on ``obj``, or None when they can;
    ``changed(session, ctx, obj, action)``: run after the object's
    policies of ``action`` were made, changed or removed (a network
    keeps its ``shared`` flag and externality in step here);
    ``may_target(session, ctx, obj, action, target)``: why a policy made
    by ``ctx`` may not give ``target`` (a project or ``*``) ``action`` on
    ``obj``, or None (asked when a policy is made or given another
    target);
    ``keeps_wildcard(session, obj, action)``: why the ``*`` policy of
    ``action`` on ``obj`` may not go or change target, or None."""

    name: str
    collection: str
    actions: tuple[str, ...]
    in_use: Callable[[Any, Any, str, Callable], str | None] | None = None
    changed: Callable[[Any, Any, Any, str], None] | None = None
    may_target: Callable[[Any, Any, Any, str, str], str | None] | None = None
    keeps_wildcard: Callable[[Any, Any, str], str | None] | None = None


def register(plugin, otype: ObjectType) -> None:
    """Make ``otype`` a valid object_type of /v2.0/rbac-policies on this
    plugin; the policies of an object are removed with it."""
    plugin.rbac_types[otype.name] = otype

    def drop(s, ctx, obj, a):
        R = models.RbacPolicy
        s.execute(sa.delete(R).where(R.object_type == otype.name, R.object_id == obj.id))
    plugin.add_hook(otype.collection, "delete", drop)


def granted(object_type, actions, project):
    """SELECT of the ids of the objects ``actions`` give ``project``
    (its own policies and the wildcard ones)."""
    R = models.RbacPolicy
    return sa.select(R.object_id).where(
        R.object_type == object_type, R.action.in_(list(actions)),
        R.target_tenant.in_((project, WILDCARD)))


def granted_ids(s, object_type, action, ids, project):
    """Those of ``ids`` that ``action`` gives ``project``."""
    ids = set(ids)
    if not ids or not project:
        return set()
    R = models.RbacPolicy
    q = granted(object_type, (action,), project)
    if len(ids) <= 500:
        q = q.where(R.object_id.in_(ids))
    # (else: the project's policies, few, rather than a long IN list)
    return ids & set(s.execute(q).scalars())


def targets(s, object_type, object_id, action, exclude_id=None):
    """The targets of the object's policies of ``action`` (but one)."""
    R = models.RbacPolicy
    q = sa.select(R.target_tenant).where(R.object_type == object_type,
                                         R.object_id == object_id, R.action == action)
    if exclude_id is not None:
        q = q.where(R.id != exclude_id)
    return set(s.execute(q).scalars())


def lost_clause(s, policy, owner, new_target=None):
    """fn(column) -> clause of the projects that lose ``policy.action`` on
    its object when ``policy`` goes (or its target becomes
    ``new_target``); None when nobody loses it.  The owner never does,
    nor a project another policy (or the wildcard) still covers."""
    remaining = targets(s, policy.object_type, policy.object_id, policy.action,
                        exclude_id=policy.id)
    if new_target is not None:
        remaining.add(new_target)
    old = policy.target_tenant
    if WILDCARD in remaining:
        return None
    if old == WILDCARD:
        keep = remaining | {owner}
        return lambda col: col.not_in(sorted(keep))
    if old == owner or old in remaining:
        return None
    return lambda col: col == old


# ------------------------------------------------------------ the core types' checks
def network_in_use(s, net, action, lost):
    """Ports and subnets of the projects losing a shared network; their
    routers' gateways and floating IPs on an external one."""
    if action == SHARED:
        P, S = models.Port, models.Subnet
        # (ports of no project, router gateways and floating IPs, reach an
        # external network by access_as_external: Neutron's
        # ensure_no_project_ports_on_network leaves them out too)
        if s.execute(sa.select(P.id).where(P.network_id == net.id,
                                           P.device_owner != const.DEVICE_OWNER_DHCP,
                                           P.project_id != "",
                                           lost(P.project_id)).limit(1)).first():
            return "ports of the project(s) use the network"
        if s.execute(sa.select(S.id).where(S.network_id == net.id,
                                           lost(S.project_id)).limit(1)).first():
            return "subnets of the project(s) are on the network"
        return None
    R, F = models.Router, models.FloatingIP
    if s.execute(sa.select(R.id).where(R.gw_network_id == net.id,
                                       lost(R.project_id)).limit(1)).first():
        return "routers of the project(s) have their gateway on the network"
    if s.execute(sa.select(F.id).where(F.floating_network_id == net.id,
                                       lost(F.project_id)).limit(1)).first():
        return "floating IPs of the project(s) are on the network"
    return None


def network_keeps_wildcard(s, net, action):
    """A default external network (auto-allocated-topology) stays
    everyone's."""
    if action == EXTERNAL and net.external is not None and net.external.is_default:
        return "Default external networks must be shared to everyone."
    return None


def security_group_in_use(s, group, action, lost):
    """Ports of the projects losing the group that use it."""
    P, B = models.Port, models.SecurityGroupPortBinding
    if s.execute(sa.select(B.port_id).join(P, P.id == B.port_id).where(
            B.security_group_id == group.id, lost(P.project_id)).limit(1)).first():
        return "ports of the project(s) use the security group"
    return None
