"""Quotas (aliases ``quotas``, ``quota_details``).

Limits per project and resource: a row of ``quotas`` when the admin set
one, else ``[quotas] quota_<resource>`` (``default_quota`` for a resource
without an option of its own); -1 is unlimited.  The count is taken inside
the transaction that creates the resource (a hook of every create a
request asks for: a row the plugin makes itself, a router interface's
port, is not counted, as Neutron enforces quotas at its API), so a bulk
request counts each item and concurrent creators never overshoot: on
PostgreSQL a transaction-scoped advisory lock per (project, resource)
serializes the counting transactions, SQLite serializes writers anyway
(BEGIN IMMEDIATE).  That lock is the last one a create takes (the lock
order is documented in db/ipam.py): the count is made once, after the
transaction's work, just before it commits, so that no creator waits for
an IP range or subnet row while holding it (a deadlock with a creator
holding that row and waiting for the quota lock) and creators of one
project are serialized only for the count.

A create of several items (a bulk) is also counted before any of its
work (``refuse``, from the API's create), as Neutron reserves the items
first (its QuotaEnforcementHook.before): one past the quota is refused
before its rows are made, a 1.5 KB body of 500 networks would otherwise
make them all before the commit-time count refused them.  The same
comparison (``over``) as the count at commit, without its lock: that
count stays, for concurrent creators.
"""

import collections

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api import definitions, validators as v
from quantum_ovs.api.definitions.quotas import (  # noqa: F401 (the contract's names)
    MAX_LIMIT,
    InvalidQuotaValue,
    OverQuota,
    QuotaResourceUnknown,
    TenantQuotaNotFound,
)
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import models
from quantum_ovs.db.session import BEFORE_COMMIT, transaction_lock

DEFINITION = definitions.quotas

# resource name -> (collection, model, default)
RESOURCES = {
    "network": ("networks", models.Network, 100),
    "subnet": ("subnets", models.Subnet, 100),
    "port": ("ports", models.Port, 500),
    "security_group": ("security_groups", models.SecurityGroup, 10),
    "security_group_rule": ("security_group_rules", models.SecurityGroupRule, 100),
}

OPTS = [("quotas", [
    cfg.IntOpt(f"quota_{name}", default=default,
               help=f"Number of {name}s allowed per project; -1 for unlimited.")
    for name, (_c, _m, default) in RESOURCES.items()] + [
    cfg.IntOpt("default_quota", default=-1,
               help="Number of each resource without a quota_<resource> option of its "
                    "own (subnet pools) allowed per project; -1 for unlimited.")])]

PROJECT_ID_MAX = 255  # the length of the project_id columns
# session.info key: the (project, resource) pairs a transaction created.
PENDING = "qovs_quota_pending"


def _admin_required(what):
    return exceptions.AdminRequired(reason=what)


class Quotas:
    def __init__(self, plugin, conf):
        self.plugin = plugin
        self.conf = conf
        # name -> (collection, model): RESOURCES and those of enabled
        # extensions (add_resource).
        self.resources = {name: (c, model) for name, (c, model, _d) in RESOURCES.items()}

    def add_limit(self, name):
        """A limit that counts nothing (Neutron's router_route: how many
        routes one router may have, checked by its owner with
        ``check_limit``): shown, set and reset as the others, used 0."""
        self.resources[name] = (None, None)

    def check_limit(self, s, project_id, resource, value):
        """409 OverQuota when ``value`` is past the project's ``resource``
        limit (-1: unlimited), as Neutron's limit_check."""
        limit = self.limit(s, project_id, resource)
        if 0 <= limit < value:
            raise OverQuota(overs=[resource])

    def add_resource(self, name, collection, model):
        """A resource an extension serves (its ``[quotas] quota_<name>``
        option registered by the extension, else ``default_quota``):
        limited and counted from now."""
        self.resources[name] = (collection, model)
        self._hook(name, collection)

    def _hook(self, resource, collection):
        def hook(s, ctx, obj, a):
            # Without a context the plugin makes the row itself (a router
            # interface's port): Neutron counts API creates only (its
            # QuotaEnforcementHook), so a project at its port limit may
            # still attach a subnet to its router.
            if ctx is not None:
                self.check(s, resource, obj)
        # First: the limit is read before other hooks' work (the count
        # and its lock come just before the commit).
        self.plugin.add_hook(collection, "create", hook, first=True)

    def default(self, resource):
        # As Neutron's [quotas] default_quota: the limit of a tracked
        # resource that has no option of its own (subnetpool in ML2).
        quotas = self.conf.quotas
        return getattr(quotas, f"quota_{resource}", quotas.default_quota)

    def defaults(self):
        return {name: self.default(name) for name in self.resources}

    def limits(self, s, project_id):
        out = self.defaults()
        Q = models.Quota
        for res, limit in s.execute(sa.select(Q.resource, Q.limit).where(
                Q.project_id == project_id)):
            if res in out:
                out[res] = limit
        return out

    def limit(self, s, project_id, resource):
        row = s.get(models.Quota, (project_id, resource))
        return row.limit if row is not None else self.default(resource)

    def used(self, s, project_id, resource, exclude=None):
        model = self.resources[resource][1]
        if model is None:
            return 0  # (a limit, not a count: add_limit)
        q = sa.select(sa.func.count()).select_from(model).where(
            model.project_id == project_id)
        if exclude is not None:
            q = q.where(model.id != exclude)
        return s.execute(q).scalar()

    def over(self, s, project_id, resource, limit, adding=0):
        """Whether the project's rows of ``resource`` with ``adding``
        more are past ``limit`` (-1: unlimited): the one count of the
        quota, before a create's work (``refuse``) and at its commit."""
        return limit >= 0 and self.used(s, project_id, resource) + adding > limit

    def refuse(self, collection, projects):
        """Before a create's work: 409 OverQuota (as the count at commit
        answers) when its rows (``projects``: the project of each) would
        take a project past its limit of the collection's resource.  A
        read of its own, before the creating transaction and without the
        quota lock: no writer waits for a refused bulk, and the count at
        commit still holds the limit under concurrency."""
        resource = next((name for name, (c, _m) in self.resources.items()
                         if c == collection), None)
        if resource is None:
            return
        with self.plugin.db.reader() as s:
            for project_id, n in sorted(collections.Counter(projects).items()):
                if self.over(s, project_id, resource, self.limit(s, project_id, resource), n):
                    raise OverQuota(overs=[resource])

    def _lock(self, s, project_id, resource):
        held = s.info.setdefault("qovs_quota_locks", set())
        if (project_id, resource) in held:
            return
        held.add((project_id, resource))
        # A lock on the name, not on the quota row: the project may have
        # none (its limits are the defaults).
        transaction_lock(s, f"quota:{project_id}:{resource}")

    def check(self, s, resource, obj):
        """Inside the creating transaction: ``obj`` (already added) must
        not take its project past its limit.  Counted once per project
        and resource, after all of the transaction's work, just before it
        commits (Database.write's BEFORE_COMMIT): the quota lock is the
        last lock the transaction takes, held only for the count and the
        commit (the lock order is in db/ipam.py)."""
        pending = s.info.get(PENDING)
        if pending is None:
            pending = s.info[PENDING] = {}
            s.info.setdefault(BEFORE_COMMIT, []).append(self._check_pending)
        key = (obj.project_id, resource)
        if key not in pending:
            with s.no_autoflush:
                pending[key] = self.limit(s, obj.project_id, resource)

    def _check_pending(self, s):
        s.flush()
        overs = set()
        with s.no_autoflush:
            for (project_id, resource), limit in sorted(s.info.pop(PENDING, {}).items()):
                if limit < 0:
                    continue
                self._lock(s, project_id, resource)
                if self.over(s, project_id, resource, limit):
                    overs.add(resource)
        if overs:
            raise OverQuota(overs=sorted(overs))


def setup(plugin, conf):
    quotas = Quotas(plugin, conf)
    plugin.quotas = quotas
    for resource, (collection, _model, _d) in RESOURCES.items():
        quotas._hook(resource, collection)


# ---------------------------------------------------------------- API
def _project_body(project_id, limits):
    return dict(limits, project_id=project_id, tenant_id=project_id)


def _parse_limits(req, resources):
    """(limits, whether to check them against the usage)."""
    body = read_json(req)
    quota = body.get("quota")
    if not isinstance(quota, dict) or len(body) != 1 or not quota:
        raise exceptions.InvalidInput(
            error_message="the body must be {\"quota\": {<resource>: <limit>, ...}}")
    out = {}
    quota = dict(quota)
    # A limit below the usage is refused (quota-check-limit-default, as
    # Neutron since 2025.1) unless force (what `openstack quota set
    # --force` sends) says otherwise; check_limit (quota-check-limit, which
    # asked for the check) is taken and changes nothing.
    # force is a JSON boolean: Neutron forces on true only and ignores
    # anything else, so a "true" or 1 that would not force there is refused
    # here rather than taken either way.
    raw = quota.pop("check_limit", False)
    try:
        v.to_bool(raw, "check_limit")
    except exceptions.InvalidInput:
        raise exceptions.InvalidInput(
            error_message=f"check_limit must be a boolean, not '{raw}'") from None
    force = quota.pop("force", False)
    if not isinstance(force, bool):
        raise exceptions.InvalidInput(
            error_message=f"force must be true or false (a JSON boolean), not {force!r}")
    if not quota:
        raise exceptions.InvalidInput(error_message="no quota limit given")
    unknown = sorted(k for k in quota if k not in resources)
    if unknown:
        raise exceptions.InvalidInput(
            error_message=f"Unrecognized quota resource(s) {unknown}; known: "
                          f"{sorted(resources)}")
    for name, value in quota.items():
        try:
            out[name] = v.to_int(value, name, minimum=-1, maximum=MAX_LIMIT)
        except exceptions.InvalidInput:
            raise exceptions.InvalidInput(
                error_message=f"'{value}' is not a valid limit for {name}: use an "
                              f"integer from -1 (unlimited) to {MAX_LIMIT}") from None
    return out, not force


def routes(api):
    plugin = api.plugin
    db = plugin.db

    def quotas_of():
        return plugin.quotas

    def require_admin(ctx, what):
        if not ctx.is_admin:
            raise _admin_required(what)

    def may_read(ctx, project_id):
        if not (ctx.is_admin or ctx.project_id == project_id):
            raise exceptions.NotAuthorized(
                message=f"Not authorized to read the quotas of project {project_id}.")

    def index(req, ctx, **kw):
        require_admin(ctx, "Only admin can view or configure quota")
        Q = models.Quota
        with db.reader() as s:
            projects = sorted(set(s.execute(sa.select(Q.project_id)).scalars()))
            out = [_project_body(p, quotas_of().limits(s, p)) for p in projects]
        return json_response({"quotas": out})

    def show(req, ctx, project_id, **kw):
        may_read(ctx, project_id)
        with db.reader() as s:
            limits = quotas_of().limits(s, project_id)
        return json_response({"quota": limits})

    def update(req, ctx, project_id, **kw):
        require_admin(ctx, "Only admin can view or configure quota")
        wanted, check_limit = _parse_limits(req, quotas_of().resources)
        if len(project_id) > PROJECT_ID_MAX:
            # (It would not fit the quotas table's project_id column.)
            raise exceptions.InvalidInput(
                error_message=f"a project id is at most {PROJECT_ID_MAX} characters")

        def txn(s):
            if check_limit:
                # The usage cannot grow under the check: creators wait.
                for name in sorted(wanted):
                    quotas_of()._lock(s, project_id, name)
                for name, value in wanted.items():
                    used = quotas_of().used(s, project_id, name)
                    if 0 <= value < used:
                        raise InvalidQuotaValue(
                            reason=f"the limit {value} of {name} is below its current "
                                   f"usage {used}")
            for name, value in wanted.items():
                row = s.get(models.Quota, (project_id, name))
                if row is None:
                    s.add(models.Quota(project_id=project_id, resource=name, limit=value))
                else:
                    row.limit = value
            s.flush()
            return quotas_of().limits(s, project_id)
        return json_response({"quota": db.write(txn)})

    def delete(req, ctx, project_id, **kw):
        require_admin(ctx, "Only admin can view or configure quota")
        # No row deleted: the project had no limits of its own, a 404 as
        # Neutron's DbQuotaDriver.delete_project_quota answers.
        deleted = db.write(lambda s: s.execute(sa.delete(models.Quota).where(
            models.Quota.project_id == project_id)).rowcount)
        if not deleted:
            raise TenantQuotaNotFound(tenant_id=project_id)
        return json_response(None, status=204)

    def whoami(key):
        # Neutron's quotasv2 collection actions (GET only): the caller's
        # own project id, what python-neutronclient's quota-show without
        # --tenant-id asks for; never the limits of a project of that name.
        def handler(req, ctx, **kw):
            return json_response({key: {f"{key}_id": ctx.project_id}})
        return handler

    def defaults(req, ctx, project_id, **kw):
        may_read(ctx, project_id)
        return json_response({"quota": quotas_of().defaults()})

    def details(req, ctx, project_id, **kw):
        may_read(ctx, project_id)
        with db.reader() as s:
            limits = quotas_of().limits(s, project_id)
            out = {name: {"limit": limits[name],
                          "used": quotas_of().used(s, project_id, name), "reserved": 0}
                   for name in quotas_of().resources}
        return json_response({"quota": out})

    fmt = "{fmt:(\\.json)?}"
    api.add_route("/v2.0/quotas" + fmt, {"GET": index})
    # Before /{project_id}: a PUT or DELETE of these is a 405, not the
    # limits of a project called "project" or "tenant".
    api.add_route("/v2.0/quotas/project" + fmt, {"GET": whoami("project")})
    api.add_route("/v2.0/quotas/tenant" + fmt, {"GET": whoami("tenant")})
    api.add_route("/v2.0/quotas/{project_id}/default" + fmt, {"GET": defaults})
    api.add_route("/v2.0/quotas/{project_id}/details" + fmt, {"GET": details})
    api.add_route("/v2.0/quotas/{project_id}" + fmt,
                  {"GET": show, "PUT": update, "DELETE": delete})
