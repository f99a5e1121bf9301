"""Address groups (aliases ``address-group`` and
``security-groups-remote-address-group``): storage and the member actions
of the contract in ``quantum_ovs/api/definitions/address_groups.py``.

An address group belongs to a project; who sees (and so may name) one
is the collection's visibility: its project, an admin, and the projects
an RBAC ``access_as_shared`` policy names (alias ``rbac-address-group``;
``shared``, not shown, is true for them: the get policy reads it).  A
policy cannot go while its target's security group rules name the group
(409 RbacPolicyInUse).
A security group rule names one with ``remote_address_group_id``
(quantum_ovs/extensions/securitygroups.py checks the caller can see it);
an address group a rule names cannot be deleted (409).

Every change of a group's addresses bumps its revision and records an
``address_group`` change: the hosts whose rules name the group receive
it whole (quantum_ovs/db/host_view.py), and their compilers recompute the
flows of the addresses that came or went, nothing else.

A group has at most ``[DEFAULT] max_addresses_per_address_group``
addresses (Neutron has no cap): each is a flow (per direction) on every
host with a port whose rules name the group, and every change sends the
group whole to those hosts.  More, on a create or an add_addresses, is a
400 that changes nothing.  add/remove_addresses find what the group has
of the addresses named with a query of those, not by loading the group's.
"""

import uuid

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api.definitions import address_groups as definition
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import changelog, models, rbac
from quantum_ovs.db.resource import Collection
from quantum_ovs.timeutils import api_time as _ts

DEFINITION = definition
ADDRESS_GROUPS = definition.ADDRESS_GROUPS
RESOURCE = "address_group"  # its name in the change log

OPTS = [("DEFAULT", [
    cfg.IntOpt("max_addresses_per_address_group", default=1000, min=0,
               help="Maximum number of addresses (CIDRs) of one address group; more "
                    "is a 400. Each address is one flow per direction on every host "
                    "with a port whose security group rules name the group, and "
                    "each change of the group sends it whole to those hosts (1,000: "
                    "~17 KB; what a cloud's managed prefix list holds, e.g. AWS's "
                    "1,000 entries)."),
])]

# (rows of the IN queries of add/remove_addresses: under SQLite's 999
# variables)
CHUNK = 500


def check_count(conf, count, before=0):
    exceptions.check_cap("An address group", "addresses",
                         conf.max_addresses_per_address_group, count, before)


def group_dict(g, addresses=None):
    """``addresses``: the group's, when the caller read them (sorted)."""
    return {"id": g.id, "name": g.name, "description": g.description,
            "project_id": g.project_id, "tenant_id": g.project_id,
            "revision_number": g.revision_number, "created_at": _ts(g.created_at),
            "updated_at": _ts(g.updated_at),
            "addresses": sorted(a.address for a in g.addresses) if addresses is None
            else addresses}


class AddressGroups(Collection):
    collection = ADDRESS_GROUPS
    resource = RESOURCE
    model = models.AddressGroup
    not_found = (definition.AddressGroupNotFound, "address_group_id")

    def to_dict(self, obj):
        return group_dict(obj)

    def visible_clause(self, ctx):
        G = self.model
        return sa.or_(G.project_id == ctx.project_id,
                      G.id.in_(rbac.granted(RESOURCE, (rbac.SHARED,), ctx.project_id)))

    def for_caller(self, s, ctx, rows, dicts):
        maybe = [r.id for r in rows if r.project_id != ctx.project_id]
        given = rbac.granted_ids(s, RESOURCE, rbac.SHARED, maybe, ctx.project_id)
        for r, d in zip(rows, dicts):
            d["shared"] = r.id in given

    def check(self, a):
        if a.get("addresses"):
            check_count(self.plugin.conf, len(a["addresses"]))

    def create(self, s, ctx, a):
        group = models.AddressGroup(
            id=str(uuid.uuid4()), project_id=a["project_id"], name=a["name"],
            description=a["description"], revision_number=0)
        group.addresses = [models.AddressAssociation(address=x)
                           for x in a.get("addresses") or ()]
        s.add(group)
        return group

    def update(self, s, ctx, group, a):
        for k in ("name", "description"):
            if k in a:
                setattr(group, k, a[k])

    def delete(self, s, ctx, group):
        # In use by a security group rule, or by a default security group
        # rule (a template every project's new groups would take it from).
        for R in (models.SecurityGroupRule, models.DefaultSecurityGroupRule):
            if s.execute(sa.select(R.id).where(R.remote_address_group_id == group.id)
                         .limit(1)).first() is not None:
                raise definition.AddressGroupInUse(address_group_id=group.id)
        s.delete(group)

    def change_addresses(self, ctx, group_id, wanted, add):
        """Add or remove ``wanted`` (canonical CIDRs), all or none: adding
        one the group has is a 400, removing one it lacks a 404 (as
        Neutron), more addresses than the cap a 400.  Returns the group's
        dict."""
        plugin = self.plugin
        A = models.AddressAssociation

        def result(s, group):  # (the addresses as rows: no ORM objects)
            return group_dict(group, sorted(s.execute(
                sa.select(A.address).where(A.address_group_id == group.id)).scalars()))

        def txn(s):
            group = self.row(s, ctx, group_id, lock=True, bare=True)
            if not wanted:
                return result(s, group)
            have = set()
            for i in range(0, len(wanted), CHUNK):
                have.update(s.execute(sa.select(A.address).where(
                    A.address_group_id == group.id,
                    A.address.in_(wanted[i:i + CHUNK]))).scalars())
            clash = sorted(x for x in wanted if (x in have) is add)
            if clash:
                err = (definition.AddressesAlreadyExist if add
                       else definition.AddressesNotFound)
                raise err(addresses=clash, address_group_id=group.id)
            if add:
                count = s.execute(sa.select(sa.func.count()).select_from(A)
                                  .where(A.address_group_id == group.id)).scalar_one()
                check_count(plugin.conf, count + len(wanted), count)
                s.execute(sa.insert(A), [{"address_group_id": group.id, "address": x}
                                         for x in wanted])
            else:
                for i in range(0, len(wanted), CHUNK):
                    s.execute(sa.delete(A).where(A.address_group_id == group.id,
                                                 A.address.in_(wanted[i:i + CHUNK])))
            changelog.bump(group)
            s.flush()
            changelog.record(s, RESOURCE, group, "update")
            return result(s, group)
        return plugin.db.write(txn)


def group_in_use(s, group, action, lost):
    """Security group rules of the projects losing the group naming it."""
    R = models.SecurityGroupRule
    if s.execute(sa.select(R.id).where(R.remote_address_group_id == group.id,
                                       lost(R.project_id)).limit(1)).first():
        return "security group rules of the project(s) use the address group"
    return None


def setup(plugin, conf):
    plugin.register(AddressGroups(plugin))
    rbac.register(plugin, rbac.ObjectType(RESOURCE, ADDRESS_GROUPS, (rbac.SHARED,),
                                          in_use=group_in_use))


def routes(api):
    ctl = api.controllers[ADDRESS_GROUPS]
    plugin, policy = api.plugin, api.policy
    m = api.mapper
    fmt = "{fmt:(\\.json)?}"
    path = "/v2.0/address-groups"
    m.connect(path + fmt, collection=ADDRESS_GROUPS, action="collection")
    m.connect(path + "/{id}" + fmt, collection=ADDRESS_GROUPS, action="member",
              requirements={"id": "[^/]+?"})

    def action(add):
        name = "add_addresses" if add else "remove_addresses"

        def handler(req, ctx, group_id, **kw):
            current = ctl._get_visible(ctx, group_id)  # 404 when the caller cannot see it
            policy.enforce(name, ctx, current)
            wanted = definition.action_body(read_json(req))
            obj = plugin.collections[ADDRESS_GROUPS].change_addresses(ctx, group_id,
                                                                      wanted, add)
            return json_response({definition.ADDRESS_GROUP: ctl._visible(ctx, obj)})
        return handler

    for add in (True, False):
        name = "add_addresses" if add else "remove_addresses"
        method = definition.ACTIONS[ADDRESS_GROUPS][name]
        api.add_route(f"{path}/{{group_id}}/{name}" + fmt, {method: action(add)})
