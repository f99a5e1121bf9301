"""Address scopes (address-scope): storage and checks.  The contract is
quantum_ovs/api/definitions/subnetpools.py; who sees a scope, its
``shared`` and its RBAC policies (``rbac-address-scope``) are
subnetpools.Shareable's (one place for both).

Which scope a subnet is in (through its pool) and whether two subnets
share one: quantum_ovs/db/address_scopes.py (scopes_of_subnets,
same_scope), for a router's NAT decision (Neutron does not SNAT between
subnets of one scope).
"""

import uuid

import sqlalchemy as sa

from quantum_ovs.api.definitions import subnetpools as definition
from quantum_ovs.db import models
from quantum_ovs.db.address_scopes import same_scope, scopes_of_subnets  # noqa: F401
from quantum_ovs.db.resource import Collection
from quantum_ovs.extensions.subnetpools import SCOPE_TYPE, Shareable, scope_in_use

ADDRESS_SCOPES, ADDRESS_SCOPE = definition.ADDRESS_SCOPES, definition.ADDRESS_SCOPE


def scope_dict(scope):
    # Neutron's address scope is not a standard-attribute resource: no
    # description, revision, timestamps or tags (the columns stay unused).
    return {"id": scope.id, "name": scope.name, "project_id": scope.project_id,
            "tenant_id": scope.project_id, "ip_version": scope.ip_version,
            "shared": scope.shared}


class AddressScopes(Shareable, Collection):
    collection, resource, model = ADDRESS_SCOPES, ADDRESS_SCOPE, models.AddressScope
    not_found = (definition.AddressScopeNotFound, "address_scope_id")
    rbac_type = SCOPE_TYPE

    def to_dict(self, obj):
        return scope_dict(obj)

    def create(self, s, ctx, a):
        scope = models.AddressScope(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"], name=a["name"],
            ip_version=a["ip_version"], shared=a["shared"], revision_number=0)
        s.add(scope)
        if scope.shared:
            self.add_wildcard(s, ctx, scope)
        return scope

    def update(self, s, ctx, scope, a):
        if scope.shared and a.get("shared") is False:
            raise definition.AddressScopeUpdateError(
                address_scope_id=scope.id, reason="Shared address scope can't be unshared")
        if a.get("shared") and not scope.shared:
            self.add_wildcard(s, ctx, scope)
        for k in ("name", "shared"):
            if k in a:
                setattr(scope, k, a[k])

    def delete(self, s, ctx, scope):
        P = models.SubnetPool
        if s.execute(sa.select(P.id).where(P.address_scope_id == scope.id).limit(1)).first():
            raise definition.AddressScopeInUse(address_scope_id=scope.id)
        s.delete(scope)


def network_scopes(net, d):
    """ipv4_address_scope / ipv6_address_scope of a network: the scope of
    the pools its subnets of that version come from (one pool per version,
    or pools of one scope: see subnetpools.SubnetPools.allocate), else
    None."""
    scopes = {4: None, 6: None}
    for sub in net.subnets:
        if sub.subnetpool_id is not None and scopes[sub.ip_version] is None:
            pool = sub.subnetpool
            scopes[sub.ip_version] = pool.address_scope_id if pool is not None else None
    d["ipv4_address_scope"], d["ipv6_address_scope"] = scopes[4], scopes[6]


def setup(plugin, conf):
    scopes = AddressScopes(plugin)
    plugin.register(scopes)
    scopes.register_rbac(plugin, scope_in_use)
    plugin.add_dict_extender("networks", network_scopes)


def routes(api):
    # Neutron's path spells the collection with a hyphen.
    m = api.mapper
    path = "/v2.0/address-scopes"
    m.connect(path + "{fmt:(\\.json)?}", collection=ADDRESS_SCOPES, action="collection")
    m.connect(path + "/{id}{fmt:(\\.json)?}", collection=ADDRESS_SCOPES, action="member",
              requirements={"id": "[^/]+?"})
