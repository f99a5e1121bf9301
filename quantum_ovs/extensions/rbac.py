"""RBAC policies (aliases ``rbac-policies``, ``rbac-security-groups``).

``/v2.0/rbac-policies`` over db/rbac.py's registry of object types.
This module registers the core ones:

- ``network``: ``access_as_shared`` (the target sees the network, makes
  ports on it, and its ``shared`` reads true) and ``access_as_external``
  (the target sees the external network and uses it for router gateways
  and floating IPs; a policy on a network that is not external makes it
  external).  ``shared=True`` is the wildcard ``access_as_shared``
  policy and ``router:external=True`` brings a wildcard
  ``access_as_external`` one, as in Neutron; the ``networks.shared``
  column is kept equal to "a wildcard access_as_shared policy exists".
- ``security_group``: ``access_as_shared`` (the target sees the group,
  uses it on its ports and as a remote group).

A policy is made by the object's owner or an administrator (any other
object id, seen or not, existing or not: 400, as in Neutron), and changed
by them only (409, as Neutron's update answers that refusal); the
policy's owner may still delete it.  A
policy whose removal (or change of target) would take the object away
from a project that still uses it is 409 RbacPolicyInUse.
"""

import uuid

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api import definitions
from quantum_ovs.api.definitions import l3 as l3_definition
from quantum_ovs.api.definitions.rbac import (
    RBAC_POLICIES,
    DuplicateRbacPolicy,
    InvalidActionForType,
    RbacPolicyInUse,
    RbacPolicyNotFound,
    check_target,
)
from quantum_ovs.db import changelog, models, rbac
from quantum_ovs.db.resource import Collection

DEFINITION = definitions.rbac


_NOT_OWNER = "Only admins can manipulate policies on objects they do not own"


def policy_dict(r):
    return {"id": r.id, "project_id": r.project_id, "tenant_id": r.project_id,
            "object_type": r.object_type, "object_id": r.object_id, "action": r.action,
            "target_tenant": r.target_tenant}


class RbacPolicies(Collection):
    collection, resource, model = RBAC_POLICIES, "rbac_policy", models.RbacPolicy
    not_found = (RbacPolicyNotFound, "id")

    def to_dict(self, obj):
        return policy_dict(obj)

    def _type(self, object_type):
        types = self.plugin.rbac_types
        if object_type not in types:
            raise exceptions.InvalidInput(
                error_message=f"Invalid input for object_type. Reason: '{object_type}' is "
                              f"not in {sorted(types)}.")
        return types[object_type]

    def check(self, a):
        if "object_type" in a:
            otype = self._type(a["object_type"])
            if a["action"] not in otype.actions:
                raise InvalidActionForType(action=a["action"], object_type=otype.name,
                                           valid_actions=", ".join(otype.actions))

    def _object(self, s, ctx, otype, object_id, refusal=None):
        """The object, locked: policies of one object change one at a time.
        ``refusal``: the error when a non-admin does not own it (else 400
        InvalidInput)."""
        if ctx.is_admin:
            return self.plugin.row(s, None, otype.collection, object_id, lock=True)
        # Not the caller's (another project's, one shared with it, or
        # none): a bad request alike, as in Neutron, which tells nothing
        # of another project's objects.
        model = self.plugin.model_of(otype.collection)
        obj = s.execute(sa.select(model).where(model.id == object_id,
                                               model.project_id == ctx.project_id)
                        ).scalars().first()
        if obj is None:
            raise refusal or exceptions.InvalidInput(error_message=_NOT_OWNER)
        return self.plugin.row(s, None, otype.collection, object_id, lock=True)

    @staticmethod
    def _duplicate(s, otype, object_id, action, target):
        R = models.RbacPolicy
        if s.execute(sa.select(R.id).where(
                R.object_type == otype.name, R.object_id == object_id, R.action == action,
                R.target_tenant == target)).first():
            raise DuplicateRbacPolicy()

    def _check_in_use(self, s, otype, obj, pol, new_target=None):
        if pol.target_tenant == rbac.WILDCARD and otype.keeps_wildcard is not None:
            why = otype.keeps_wildcard(s, obj, pol.action)
            if why:
                raise RbacPolicyInUse(object_id=obj.id, details=why)
        lost = rbac.lost_clause(s, pol, obj.project_id, new_target)
        if lost is None or otype.in_use is None:
            return
        why = otype.in_use(s, obj, pol.action, lost)
        if why:
            raise RbacPolicyInUse(object_id=obj.id, details=why)

    def _changed(self, s, ctx, otype, obj, action):
        s.flush()
        if otype.changed is not None:
            otype.changed(s, ctx, obj, action)

    def create_all(self, s, ctx, items):
        out = []
        for a in items:
            otype = self._type(a["object_type"])
            obj = self._object(s, ctx, otype, a["object_id"])
            # (refused before a duplicate is looked for, as in Neutron)
            check_target(s, ctx, otype, obj, a["action"], a["target_tenant"])
            self._duplicate(s, otype, obj.id, a["action"], a["target_tenant"])
            pol = models.RbacPolicy(
                id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
                object_type=otype.name, object_id=obj.id, action=a["action"],
                target_tenant=a["target_tenant"])
            s.add(pol)
            self._changed(s, ctx, otype, obj, pol.action)
            # (the quota's: counted before the commit)
            self.plugin.run_hooks(self.collection, "create", s, ctx, pol, a)
            out.append(pol)
        return out

    def update_row(self, s, ctx, pol, a):
        # Only an admin or the object's owner changes a policy, as Neutron
        # checks it before an update (validate_rbac_policy_change): the
        # policy's owner who does not own the object may delete it, not
        # point it at another project.  Neutron's update turns a refusal
        # of that check into 409 RbacPolicyInUse, with it as the details.
        otype = self._type(pol.object_type)
        obj = self._object(s, ctx, otype, pol.object_id, refusal=RbacPolicyInUse(
            object_id=pol.object_id, details=_NOT_OWNER))
        new = a.get("target_tenant", pol.target_tenant)
        if new == pol.target_tenant:
            return
        check_target(s, ctx, otype, obj, pol.action, new)
        self._duplicate(s, otype, obj.id, pol.action, new)
        self._check_in_use(s, otype, obj, pol, new_target=new)
        pol.target_tenant = new
        self._changed(s, ctx, otype, obj, pol.action)

    def delete_row(self, s, ctx, pol):
        otype = self._type(pol.object_type)
        obj = self.plugin.row(s, None, otype.collection, pol.object_id, lock=True)
        self._check_in_use(s, otype, obj, pol)
        s.delete(pol)
        self._changed(s, ctx, otype, obj, pol.action)


# ------------------------------------------------------------------ networks
def _add_wildcard(s, net, action):
    R = models.RbacPolicy
    if s.execute(sa.select(R.id).where(R.object_type == "network", R.object_id == net.id,
                                       R.action == action, R.target_tenant == rbac.WILDCARD)
                 ).first() is None:
        s.add(models.RbacPolicy(id=str(uuid.uuid4()), project_id=net.project_id,
                                object_type="network", object_id=net.id, action=action,
                                target_tenant=rbac.WILDCARD))


def network_changed(s, ctx, net, action):
    """Keep ``shared`` (the wildcard access_as_shared policy) and the
    externality (any access_as_external policy) in step with the policies:
    the last access_as_external policy gone, the network is internal again
    (refused while a router has its gateway on it, as router:external
    false is)."""
    targets = rbac.targets(s, "network", net.id, action)
    if action == rbac.SHARED:
        wanted = rbac.WILDCARD in targets
        if net.shared == wanted:
            return
        net.shared = wanted
    elif bool(targets) == (net.external is not None):
        return
    elif targets:
        net.external = models.ExternalNetwork()
    else:
        R = models.Router
        if s.execute(sa.select(R.id).where(R.gw_network_id == net.id).limit(1)).first():
            raise l3_definition.ExternalNetworkInUse(net_id=net.id)
        net.external = None
    changelog.bump(net)
    changelog.record(s, "network", net, "update", net.id)
    s.flush()


def _on_network_create(s, ctx, net, a):
    if a.get("shared"):
        _add_wildcard(s, net, rbac.SHARED)
    if a.get("router:external"):
        _add_wildcard(s, net, rbac.EXTERNAL)


def _on_network_update(s, ctx, net, a):
    R = models.RbacPolicy
    mine = (R.object_type == "network", R.object_id == net.id)
    if "shared" in a:
        if a["shared"]:
            _add_wildcard(s, net, rbac.SHARED)
        else:  # (update_row refused it when other projects still use it)
            s.execute(sa.delete(R).where(*mine, R.action == rbac.SHARED,
                                         R.target_tenant == rbac.WILDCARD))
    if "router:external" in a:
        if not a["router:external"]:
            s.execute(sa.delete(R).where(*mine, R.action == rbac.EXTERNAL))
        elif not rbac.targets(s, "network", net.id, rbac.EXTERNAL):
            _add_wildcard(s, net, rbac.EXTERNAL)


# As Neutron's [quotas] quota_rbac_policy: the policies a project may make
# through the API (those a shared or external network makes for itself
# count, and are never refused).
OPTS = [("quotas", [cfg.IntOpt("quota_rbac_policy", default=10,
                               deprecated_name="quota_rbac_entry",
                               help="Number of RBAC policies allowed per project; -1 "
                                    "for unlimited.")])]


def setup(plugin, conf):
    plugin.register(RbacPolicies(plugin))
    quotas = getattr(plugin, "quotas", None)
    if quotas is not None and hasattr(quotas, "add_resource"):
        quotas.add_resource("rbac_policy", RBAC_POLICIES, models.RbacPolicy)
    rbac.register(plugin, rbac.ObjectType(
        "network", "networks", (rbac.SHARED, rbac.EXTERNAL),
        in_use=rbac.network_in_use, changed=network_changed,
        keeps_wildcard=rbac.network_keeps_wildcard))
    if "security_groups" in plugin.collections:
        rbac.register(plugin, rbac.ObjectType(
            "security_group", "security_groups", (rbac.SHARED,),
            in_use=rbac.security_group_in_use))
    plugin.add_hook("networks", "create", _on_network_create)
    plugin.add_hook("networks", "update", _on_network_update)


def routes(api):
    m = api.mapper
    path = "/v2.0/rbac-policies"
    m.connect(path + "{fmt:(\\.json)?}", collection=RBAC_POLICIES, action="collection")
    m.connect(path + "/{id}{fmt:(\\.json)?}", collection=RBAC_POLICIES, action="member",
              requirements={"id": "[^/]+?"})
