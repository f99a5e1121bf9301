"""Subnet pools (subnet_allocation, default-subnetpools,
subnetpool-prefix-ops): storage, the subnets' allocation from them and
the HTTP handlers of add_prefixes / remove_prefixes and
onboard_network_subnets (subnet_onboard).  The contract is
quantum_ovs/api/definitions/subnetpools.py; address scopes are in
address_scopes.py.

What a pool has given out is the cidrs of the subnets that name it
(``subnets.subnetpool_id``): a subnet deleted gives its prefix back with
its row, and nothing else is kept to drift.  An allocation locks the
pool's row (FOR UPDATE; SQLite lets one writer in at a time), after the
network's: level 1b of the lock order of db/ipam.py.  Pool updates lock
the pool, then (making it the default) its IP family's default lock, then
its address scope; nothing takes a pool lock while it holds a lock of a
later level.

Who sees a pool or a scope is ``visible_clause`` below (one place): its
project, every project when it is shared, and the projects an RBAC
``access_as_shared`` policy names (aliases ``rbac-subnetpool``,
``rbac-address-scope``): ``share`` registers both object types.  The
``shared`` column is "a wildcard policy exists" (``shared=True`` on
create or update makes that policy, as Neutron does); the API's
``shared`` is true for a policy's target too.  A policy cannot go while
its target still uses the object: subnets allocated from the pool, pools
in the scope (409 RbacPolicyInUse).

A pool has at most ``[DEFAULT] max_prefixes_per_subnetpool`` prefixes
(Neutron has no cap): every allocation from it, and every read of it,
goes through them all.  A request naming more (create, update,
add/remove_prefixes) or a change leaving the pool with more than it had
and more than the cap (add_prefixes, remove_prefixes splitting one,
onboard_network_subnets) is a 400 that changes nothing; a pool over a
lowered cap keeps its prefixes and may lose some.
"""

import uuid

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api.definitions import subnetpools as definition
from quantum_ovs.api.definitions.rbac import check_target
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import address_scopes, changelog, models, prefixes, query, rbac
from quantum_ovs.db.ipam import ip_key
from quantum_ovs.db.resource import Collection, std_dict
from quantum_ovs.db.session import is_sqlite, transaction_lock

DEFINITION = definition

SUBNETPOOLS, SUBNETPOOL = definition.SUBNETPOOLS, definition.SUBNETPOOL
MAXLEN, MINLEN = definition.MAX_PREFIXLEN, definition.DEFAULT_MIN_PREFIXLEN


POOL_TYPE, SCOPE_TYPE = "subnetpool", "address_scope"  # their RBAC object types

OPTS = [("DEFAULT", [
    cfg.IntOpt("max_prefixes_per_subnetpool", default=100, min=1,
               help="Maximum number of prefixes of one subnet pool (after adjacent "
                    "ones are merged), and of prefixes one request may name; more is "
                    "a 400. An allocation from a pool reads all its prefixes (100: "
                    "~20 ms, as with one; 1,000: ~80 ms; 10,000: ~0.3 s)."),
])]


def check_count(conf, count, before=0, given=False):
    """400 for more prefixes than the cap: named in a request
    (``given``), or a pool's after a change that grows it past the cap."""
    exceptions.check_cap("A subnet pool", "prefixes", conf.max_prefixes_per_subnetpool,
                         count, before, given)


def visible_clause(model, ctx, object_type):
    """The pools (or scopes) a non-admin ``ctx`` sees: its own, the shared
    ones, those an RBAC policy shares with its project."""
    return sa.or_(model.project_id == ctx.project_id, model.shared.is_(True),
                  model.id.in_(rbac.granted(object_type, (rbac.SHARED,), ctx.project_id)))


# ------------------------------------------------------------------ RBAC
class Shareable:
    """What a pool and a scope share: ``shared`` as the caller reads it,
    its filter, and the wildcard policy kept in step with the column.
    Mixed into a Collection whose ``rbac_type`` is set."""

    rbac_type = None

    def visible_clause(self, ctx):
        return visible_clause(self.model, ctx, self.rbac_type)

    def _shared_for(self, ctx):
        M = self.model
        return sa.or_(M.shared.is_(True), sa.and_(
            M.project_id != ctx.project_id,
            M.id.in_(rbac.granted(self.rbac_type, (rbac.SHARED,), ctx.project_id))))

    def filter_for(self, ctx, attr, values):
        if attr != "shared" or ctx is None or not ctx.project_id:
            return self.filter(attr, values)
        return query.flag_filter(self._shared_for(ctx), values)

    def for_caller(self, s, ctx, rows, dicts):
        maybe = [r.id for r in rows if not r.shared and r.project_id != ctx.project_id]
        given = rbac.granted_ids(s, self.rbac_type, rbac.SHARED, maybe, ctx.project_id)
        for r, d in zip(rows, dicts):
            if r.id in given and "shared" in d:
                d["shared"] = True

    def add_wildcard(self, s, ctx, obj):
        """``shared=True``: the wildcard policy, refused as a policy for
        every project would be (a pool's scope must reach them all)."""
        check_target(s, ctx, self.plugin.rbac_types[self.rbac_type], obj, rbac.SHARED,
                     rbac.WILDCARD)
        if rbac.WILDCARD not in rbac.targets(s, self.rbac_type, obj.id, rbac.SHARED):
            s.add(models.RbacPolicy(id=str(uuid.uuid4()), project_id=obj.project_id,
                                    object_type=self.rbac_type, object_id=obj.id,
                                    action=rbac.SHARED, target_tenant=rbac.WILDCARD))

    def rbac_changed(self, s, ctx, obj, action):
        """A policy came, changed or went: ``shared`` is "the wildcard one
        exists"."""
        wanted = rbac.WILDCARD in rbac.targets(s, self.rbac_type, obj.id, rbac.SHARED)
        if obj.shared != wanted:
            obj.shared = wanted
            changelog.bump(obj)
            s.flush()

    def register_rbac(self, plugin, in_use, may_target=None):
        rbac.register(plugin, rbac.ObjectType(self.rbac_type, self.collection, (rbac.SHARED,),
                                              in_use=in_use, changed=self.rbac_changed,
                                              may_target=may_target))


def pool_may_target(s, ctx, pool, action, target):
    """A pool in an address scope is shared only with a project (or ``*``)
    that a policy of the scope names, itself or ``*``, as Neutron checks
    it: among the scope's policies the caller may see (an admin all, a
    project its own), the scope's owner not excepted."""
    if not pool.address_scope_id:
        return None
    R = models.RbacPolicy
    q = sa.select(R.id).where(R.object_type == SCOPE_TYPE,
                              R.object_id == pool.address_scope_id, R.action == rbac.SHARED,
                              R.target_tenant.in_((rbac.WILDCARD, target)))
    if not ctx.is_admin:
        q = q.where(R.project_id == ctx.project_id)
    if s.execute(q.limit(1)).first() is not None:
        return None
    return "the target project has no access to the subnet pool's address scope"


def pool_in_use(s, pool, action, lost):
    """Subnets of the projects losing the pool allocated from it."""
    S = models.Subnet
    if s.execute(sa.select(S.id).where(S.subnetpool_id == pool.id, lost(S.project_id))
                 .limit(1)).first():
        return "subnets of the project(s) are allocated from the subnet pool"
    return None


def scope_in_use(s, scope, action, lost):
    """Pools of the projects losing the scope that are in it."""
    P = models.SubnetPool
    if s.execute(sa.select(P.id).where(P.address_scope_id == scope.id, lost(P.project_id))
                 .limit(1)).first():
        return "subnet pools of the project(s) are in the address scope"
    return None


def pool_dict(pool):
    d = std_dict(pool)
    d.update(prefixes=[p.cidr for p in pool.prefixes], ip_version=pool.ip_version,
             # (Neutron shows the three prefix lengths as strings.)
             default_prefixlen=str(pool.default_prefixlen),
             min_prefixlen=str(pool.min_prefixlen), max_prefixlen=str(pool.max_prefixlen),
             default_quota=pool.default_quota,
             shared=pool.shared, is_default=pool.is_default,
             address_scope_id=pool.address_scope_id)
    return d


def _set_prefixes(conf, pool, nets):
    check_count(conf, len(nets), len(pool.prefixes))
    pool.prefixes = [models.SubnetPoolPrefix(cidr=str(n), first_key=ip_key(n.network_address))
                     for n in nets]


def _allocated(s, pool_id, project_id=None):
    S = models.Subnet
    q = sa.select(S.cidr).where(S.subnetpool_id == pool_id)
    if project_id is not None:
        q = q.where(S.project_id == project_id)
    return [c for (c,) in s.execute(q)]


def _lock(s, collection, ctx, id_):
    """The row of ``collection`` ``ctx`` sees (ctx None: any), locked for
    update: its not-found error when it is not seen, or when it was
    deleted, or stopped being shared with ``ctx``, while this waited for
    its lock (seen again after it)."""
    collection.row(s, ctx, id_)  # (another project's row is not waited for)
    model = collection.model
    q = sa.select(model).where(model.id == id_)
    if not is_sqlite(s):
        q = q.with_for_update()
    row = s.execute(q).scalars().first()
    if row is None:
        raise collection.missing(id_)
    if not is_sqlite(s):
        collection.row(s, ctx, id_)
    return row


class SubnetPools(Shareable, Collection):
    collection, resource, model = SUBNETPOOLS, SUBNETPOOL, models.SubnetPool
    not_found = (definition.SubnetPoolNotFound, "subnetpool_id")
    rbac_type = POOL_TYPE

    def to_dict(self, obj):
        return pool_dict(obj)

    def filter_clause(self, attr, values):
        if attr == "prefixes":
            P = models.SubnetPoolPrefix
            return self.model.id.in_(sa.select(P.subnetpool_id).where(P.cidr.in_(values)))
        return None

    # ------------------------------------------------------------ checks
    def check(self, a):
        if a.get("prefixes") is not None:
            check_count(self.plugin.conf, len(a["prefixes"]), given=True)

    @staticmethod
    def _prefix_nets(cidrs):
        if not cidrs:
            raise definition.EmptySubnetPoolPrefixList()
        nets = [prefixes.net(c) for c in cidrs]
        if len({n.version for n in nets}) != 1:
            raise definition.PrefixVersionMismatch()
        return prefixes.merge(nets)

    @staticmethod
    def _check_bounds(version, lo, default, hi):
        bad = definition.IllegalSubnetPoolPrefixBounds
        if hi > MAXLEN[version]:
            raise bad(prefix_type="max_prefixlen", prefixlen=hi,
                      base_prefix_type="ip_version_max", base_prefixlen=MAXLEN[version])
        if lo > hi:
            raise bad(prefix_type="min_prefixlen", prefixlen=lo,
                      base_prefix_type="max_prefixlen", base_prefixlen=hi)
        if default < lo:
            raise bad(prefix_type="default_prefixlen", prefixlen=default,
                      base_prefix_type="min_prefixlen", base_prefixlen=lo)
        if default > hi:
            raise bad(prefix_type="default_prefixlen", prefixlen=default,
                      base_prefix_type="max_prefixlen", base_prefixlen=hi)

    def _check_default(self, s, pool_id, version):
        """At most one default pool per IP family (Neutron's rule, 400)."""
        # (two admins making two pools of one family the default at once:
        # one waits for the other's commit and sees its pool, as
        # auto_allocate._set_default does for the default external network)
        transaction_lock(s, f"default-subnetpool-v{version}")
        P = models.SubnetPool
        other = s.execute(sa.select(P.id).where(
            P.is_default.is_(True), P.ip_version == version, P.id != pool_id)).first()
        if other is not None:
            raise exceptions.InvalidInput(
                error_message="A default subnetpool for this IP family has already been "
                              "set. Only one default may exist per IP family")

    def _check_scope(self, s, ctx, pool_id, scope_id, version, nets, joining=True):
        """The scope a pool joins (or stays in with new prefixes): visible,
        the caller's (or the caller an admin) when ``joining``, of the
        pool's IP version, and no prefix of another pool of it
        overlapping.  Locks it."""
        if scope_id is None:
            return
        scopes = self.plugin.collections["address_scopes"]
        scope = _lock(s, scopes, ctx if joining else None, scope_id)  # (404: not seen)
        # Its owner joins it, or a project it is shared with, a wildcard
        # policy included (Neutron's AddressScope.is_accessible: the
        # shared scope of an external network's pool takes the projects'
        # pools, routed without NAT).
        if joining and ctx is not None and not ctx.is_admin and \
                scope.project_id != ctx.project_id and \
                not {ctx.project_id, "*"} & set(
                    rbac.targets(s, SCOPE_TYPE, scope.id, rbac.SHARED)):
            raise definition.IllegalSubnetPoolAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id)
        if scope.ip_version != version:
            raise definition.IllegalSubnetPoolIpVersionAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version)
        P, PP = models.SubnetPool, models.SubnetPoolPrefix
        others = [c for (c,) in s.execute(
            sa.select(PP.cidr).join(P, P.id == PP.subnetpool_id)
            .where(P.address_scope_id == scope_id, P.id != pool_id))]
        if prefixes.overlapping([str(n) for n in nets], others):
            raise definition.AddressScopePrefixConflict()

    def _check_update_allowed(self, s, ctx, pool):
        """As Neutron: a pool in an address scope of another project takes
        no change (prefixes included) from anyone but an administrator; the
        scope unseen is not found."""
        if pool.address_scope_id is None or ctx is None or ctx.is_admin:
            return
        scope = s.get(models.AddressScope, pool.address_scope_id)
        if scope is None or scope.project_id == ctx.project_id:
            return
        self.plugin.collections["address_scopes"].row(s, ctx, scope.id)  # 404 when unseen
        raise definition.IllegalSubnetPoolUpdate(
            reason=f"subnetpool {pool.id} cannot be updated when associated with shared "
                   f"address scope {scope.id}")

    # ------------------------------------------------------------ writes
    def create(self, s, ctx, a):
        nets = self._prefix_nets(a["prefixes"])
        version = nets[0].version
        lo = a.get("min_prefixlen", MINLEN[version])
        hi = a.get("max_prefixlen", MAXLEN[version])
        default = a.get("default_prefixlen", lo)
        self._check_bounds(version, lo, default, hi)
        pool_id = a.get("id") or str(uuid.uuid4())
        if a["is_default"]:
            self._check_default(s, pool_id, version)
        self._check_scope(s, ctx, pool_id, a["address_scope_id"], version, nets)
        pool = models.SubnetPool(
            id=pool_id, project_id=a["project_id"], name=a["name"],
            description=a["description"], ip_version=version, default_prefixlen=default,
            min_prefixlen=lo, max_prefixlen=hi, default_quota=a["default_quota"],
            shared=a["shared"], is_default=a["is_default"],
            address_scope_id=a["address_scope_id"], revision_number=0)
        _set_prefixes(self.plugin.conf, pool, nets)
        pool.tags = []
        s.add(pool)
        if pool.shared:
            self.add_wildcard(s, ctx, pool)
        return pool

    def update(self, s, ctx, pool, a):
        self._check_update_allowed(s, ctx, pool)
        version = pool.ip_version
        old = [prefixes.net(p.cidr) for p in pool.prefixes]
        nets = old
        if "prefixes" in a:
            nets = self._prefix_nets(a["prefixes"])
            if nets[0].version != version:
                raise definition.PrefixVersionMismatch()
            if not all(prefixes.covered(str(o), nets) for o in old):
                raise definition.IllegalSubnetPoolPrefixUpdate(
                    msg="Existing prefixes must be a subset of the new prefixes")
        lo = a.get("min_prefixlen", pool.min_prefixlen)
        hi = a.get("max_prefixlen", pool.max_prefixlen)
        default = a.get("default_prefixlen", pool.default_prefixlen)
        self._check_bounds(version, lo, default, hi)
        if a.get("is_default"):
            self._check_default(s, pool.id, version)
        scope_id = a["address_scope_id"] if "address_scope_id" in a else pool.address_scope_id
        if "address_scope_id" in a or "prefixes" in a:
            self._check_scope(s, ctx, pool.id, scope_id, version, nets,
                              joining=scope_id != pool.address_scope_id)
        if "prefixes" in a:
            _set_prefixes(self.plugin.conf, pool, nets)
        pool.min_prefixlen, pool.max_prefixlen, pool.default_prefixlen = lo, hi, default
        rescoped = scope_id != pool.address_scope_id
        if rescoped:
            # (no network left with subnets of this version in two scopes:
            # the pools sharing a network share its scope)
            S = models.Subnet
            mine = sa.select(S.network_id).where(S.subnetpool_id == pool.id)
            if s.execute(sa.select(S.id).where(
                    S.network_id.in_(mine), S.ip_version == version,
                    sa.or_(S.subnetpool_id.is_(None), S.subnetpool_id != pool.id))
                    .limit(1)).first():
                raise definition.NetworkAddressScopeAffinityError()
        for k in ("name", "description", "default_quota", "is_default", "address_scope_id"):
            if k in a:
                setattr(pool, k, a[k])
        if rescoped:  # the NAT decision of routers on its subnets
            address_scopes.record_routers_of_pool(s, pool.id)

    def delete(self, s, ctx, pool):
        if s.execute(sa.select(models.Subnet.id)
                     .where(models.Subnet.subnetpool_id == pool.id).limit(1)).first():
            raise definition.SubnetPoolDeleteError(reason="Subnet pool has allocations")
        s.delete(pool)

    def change_prefixes(self, ctx, pool_id, cidrs, add):
        """add_prefixes / remove_prefixes: the pool's prefixes after."""
        check_count(self.plugin.conf, len(cidrs), given=True)

        def txn(s):
            pool = self.row(s, ctx, pool_id, lock=True)
            self._check_update_allowed(s, ctx, pool)
            nets = [prefixes.net(c) for c in cidrs]
            if any(n.version != pool.ip_version for n in nets):
                raise definition.IllegalSubnetPoolPrefixUpdate(
                    msg=f"All prefixes must be IPv{pool.ip_version}")
            have = [p.cidr for p in pool.prefixes]
            if add:
                new = prefixes.merge(have + [str(n) for n in nets])
                self._check_scope(s, None, pool.id, pool.address_scope_id, pool.ip_version,
                                  new)
            else:
                used = _allocated(s, pool.id)
                gone = [str(n) for n in nets]
                if prefixes.overlapping(gone, used):
                    raise definition.IllegalSubnetPoolPrefixUpdate(
                        msg="Subnets are using the prefixes to remove")
                new = prefixes.merge(prefixes.free_blocks(have, gone))
                if not new:
                    raise definition.IllegalSubnetPoolPrefixUpdate(
                        msg="A subnet pool must keep at least one prefix")
            _set_prefixes(self.plugin.conf, pool, new)
            changelog.bump(pool)
            s.flush()
            return {"prefixes": [p.cidr for p in pool.prefixes]}
        return self.plugin.db.write(txn)

    def onboard(self, ctx, pool_id, network_id):
        """onboard_network_subnets: the subnets of a network, of the pool's
        IP version, join the pool (from no pool or another one, whose
        prefixes stay as they are), and their prefixes are added to its
        own.  [{"id", "cidr"}] of those subnets.  As Neutron:
        - the network the caller does not see is 404 NetworkNotFound, one
          of another project 403 (an administrator may onboard any);
        - a subnet overlapping what the pool has given out (its own
          subnets included) is 400 IllegalSubnetPoolUpdate;
        - prefixes that would overlap another pool of the pool's address
          scope are 409 AddressScopePrefixConflict;
        - the pool's bounds and quota do not apply (the subnets exist).
        Nothing changes unless all of it can."""
        def txn(s):
            nets = self.plugin.collections["networks"]
            net = _lock(s, nets, ctx, network_id)  # (the network's lock before the pool's)
            if ctx is not None and not ctx.is_admin and net.project_id != ctx.project_id:
                raise exceptions.NotAuthorized()
            pool = self.row(s, ctx, pool_id, lock=True)
            self._check_update_allowed(s, ctx, pool)
            S = models.Subnet
            subnets = s.execute(sa.select(S).where(S.network_id == net.id,
                                                   S.ip_version == pool.ip_version)
                                .order_by(S.cidr, S.id)).scalars().all()
            if not subnets:
                return []
            used = _allocated(s, pool.id)
            for sub in subnets:
                if prefixes.overlapping([sub.cidr], used):
                    raise definition.IllegalSubnetPoolUpdate(
                        reason=f"Onboarding subnet {sub.id}: {sub.cidr} conflicts with "
                               f"allocated prefixes in subnet pool {pool.id}")
            new = prefixes.merge([p.cidr for p in pool.prefixes] + [x.cidr for x in subnets])
            self._check_scope(s, None, pool.id, pool.address_scope_id, pool.ip_version, new)
            _set_prefixes(self.plugin.conf, pool, new)
            changelog.bump(pool)
            for sub in subnets:
                sub.subnetpool_id = pool.id
                changelog.bump(sub)
            s.flush()
            # The subnets may have changed address scope: the NAT decision
            # of the routers on them.
            address_scopes.record_routers_of_pool(s, pool.id)
            return [{"id": x.id, "cidr": x.cidr} for x in subnets]
        return self.plugin.db.write(txn)

    # ------------------------------------------------------------ subnets
    def allocate(self, s, ctx, net, a):
        """The cidr, IP version and pool of a subnet being created on
        ``net`` (locked): from its pool when it names one (or the default
        pool), else its own cidr.  Checks that a network's subnets of one
        IP version come from one pool (or none)."""
        pool_id, use_default = a.get("subnetpool_id"), a.get("use_default_subnetpool")
        version, cidr, plen = a.get("ip_version"), a.get("cidr"), a.get("prefixlen")
        if pool_id and use_default:
            raise definition.bad_subnet(
                "subnetpool_id and use_default_subnetpool cannot both be specified")
        pool = None
        if use_default:
            if version is None:
                raise _required("ip_version")
            # (Neutron's get_default_subnetpool: among the pools the
            # caller sees; another project's default is none to it)
            P = models.SubnetPool
            q = sa.select(P.id).where(P.is_default.is_(True), P.ip_version == version)
            seen = self.visible(ctx)
            pool_id = s.execute(q if seen is None else q.where(seen)).scalar()
            if pool_id is None:
                raise definition.bad_subnet(f"No default subnetpool found for IPv{version}")
        if pool_id:
            pool = _lock(s, self, ctx, pool_id)
            if version is not None and version != pool.ip_version:
                raise definition.bad_subnet(
                    f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} "
                    "subnet pool")
            version = pool.ip_version
        else:
            if cidr is None:
                # (Neutron: "a subnetpool must be specified in the absence
                # of a cidr"; the words of any other missing attribute here)
                raise _required("cidr")
            if version is None:
                raise _required("ip_version")
            if plen is not None:
                raise definition.bad_subnet("prefixlen cannot be given without a subnetpool")
        # As Neutron's _validate_network_subnetpools: the network's subnets
        # of this version come from one pool, or from pools of one address
        # scope (the network's), or none of them from a pool.
        S, P = models.Subnet, models.SubnetPool
        others = set(s.execute(sa.select(S.subnetpool_id).where(
            S.network_id == net.id, S.ip_version == version).distinct()).scalars())
        scoped = sorted(p for p in others if p is not None and p != pool_id)
        scope = None
        if scoped:  # (their scope as it is once a re-scoping of one commits)
            q = sa.select(P.address_scope_id).where(P.id.in_(scoped)).order_by(P.id)
            scopes = set(s.execute(q if is_sqlite(s) else q.with_for_update()).scalars())
            scope = next(iter(sorted(scopes - {None})), None)
        if scope is not None and pool is not None and pool.address_scope_id != scope:
            raise definition.NetworkAddressScopeAffinityError()
        if others and others != {pool_id or None} and (scope is None or pool is None):
            raise definition.NetworkSubnetPoolAffinityError()
        if pool is None:
            return cidr, version, None
        if cidr is not None and plen is not None:
            raise definition.bad_subnet("cidr and prefixlen must not be supplied together")
        if cidr is None and a.get("allocation_pools") is not None:
            # (as Neutron: a pool's choice of prefix has no pools of choice)
            raise definition.bad_subnet("allocation_pools allowed only for specific subnet "
                                        "requests.")
        if cidr is not None:
            plen = prefixes.net(cidr).prefixlen
        elif plen is None:
            plen = pool.default_prefixlen
        if plen < pool.min_prefixlen:
            raise definition.MinPrefixSubnetAllocationError(
                prefixlen=plen, min_prefixlen=pool.min_prefixlen)
        if plen > pool.max_prefixlen:
            raise definition.MaxPrefixSubnetAllocationError(
                prefixlen=plen, max_prefixlen=pool.max_prefixlen)
        have = [p.cidr for p in pool.prefixes]
        used = _allocated(s, pool.id)
        if cidr is not None:
            if not prefixes.is_free(cidr, have, used):
                raise definition.SubnetAllocationError(
                    reason="Cannot allocate requested subnet from the available set of "
                           "prefixes")
        else:
            got = prefixes.find_free(have, used, plen)
            if got is None:
                raise definition.SubnetAllocationError(
                    reason=f"Insufficient prefix space to allocate subnet size /{plen}")
            cidr = str(got)
        if pool.default_quota:  # (as Neutron's allocator: 0 bounds nothing)
            mine = sum(prefixes.quota_units(c) for c in _allocated(s, pool.id, a["project_id"]))
            if mine + prefixes.quota_units(cidr) > pool.default_quota:
                raise definition.SubnetPoolQuotaExceeded()
        return cidr, version, pool.id


def _required(name):
    return exceptions.InvalidInput(
        error_message=f"Failed to parse request. Required attribute '{name}' not specified")


# ------------------------------------------------------------------ hooks
def setup(plugin, conf):
    pools = SubnetPools(plugin)
    plugin.register(pools)
    pools.register_rbac(plugin, pool_in_use, pool_may_target)
    plugin.subnet_allocator = pools.allocate
    # Neutron's ML2 tracks subnetpool too; its limit is [quotas]
    # default_quota (no quota_subnetpool option there either).
    quotas = getattr(plugin, "quotas", None)
    if quotas is not None and hasattr(quotas, "add_resource"):
        quotas.add_resource(SUBNETPOOL, SUBNETPOOLS, models.SubnetPool)


def routes(api):
    plugin, policy = api.plugin, api.policy
    ctl = api.controllers[SUBNETPOOLS]
    api.mapper.connect("/v2.0/subnetpools/{id}/tags", collection=SUBNETPOOLS, action="tags")
    api.mapper.connect("/v2.0/subnetpools/{id}/tags/{tag}", collection=SUBNETPOOLS, action="tag")

    def pools():
        return plugin.collections[SUBNETPOOLS]

    # action: (its body's parser, what it does with the pool and the body)
    actions = {
        "add_prefixes": (definition.prefixes_body,
                         lambda ctx, pid, cidrs: pools().change_prefixes(ctx, pid, cidrs, True)),
        "remove_prefixes": (definition.prefixes_body,
                            lambda ctx, pid, cidrs: pools().change_prefixes(ctx, pid, cidrs,
                                                                            False)),
        "onboard_network_subnets": (definition.onboard_body,
                                    lambda ctx, pid, net_id: pools().onboard(ctx, pid, net_id)),
    }

    def action(name, parse, run):
        def handler(req, ctx, pool_id, **kw):
            current = ctl._get_visible(ctx, pool_id)
            policy.enforce(name, ctx, current)
            return json_response(run(ctx, pool_id, parse(read_json(req))))
        return handler

    fmt = "{fmt:(\\.json)?}"
    for name, (parse, run) in actions.items():
        method = definition.ACTIONS[SUBNETPOOLS][name]
        api.add_route(f"/v2.0/subnetpools/{{pool_id}}/{name}" + fmt,
                      {method: action(name, parse, run)})
