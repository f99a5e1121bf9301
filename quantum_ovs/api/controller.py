"""One generic controller for every collection, driven by the attribute map."""

import contextlib
import gc
import itertools
import threading
import urllib.parse

import webob.exc

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET
from quantum_ovs.api.wsgi import INT_MAX, INT_MIN, json_response, read_json
from quantum_ovs.db import query

RESERVED_PARAMS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse",
                   "verbose"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# collection -> (the attribute naming its parent, the parent's collection
# and resource): a create's policy target has the parent's owner
_PARENTS = {"security_group_rules": ("security_group_id", "security_groups", "security_group")}


def _bad(msg):
    return webob.exc.HTTPBadRequest(detail=msg)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_state = {"enabled": True}  # whether the first pauser found it enabled


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while a listing or a create builds
    its rows and dicts: every object it makes lives until the answer,
    and the collector's passes over them (a full one each time the young
    objects outnumber a quarter of the heap) were about 40% of the CPU
    of a 10,000-port listing.  The first of concurrent requests pauses
    it, the last resumes it (reference counting frees as usual)."""
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            was_enabled = gc.isenabled()
            gc.disable()
            _gc_state["enabled"] = was_enabled
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_state["enabled"]:
                gc.enable()


class Controller:
    def __init__(self, collection, schema, plugin, policy, conf,
                 parent_check=None):
        """``schema``: the app's (quantum_ovs.api.attributes.Schema)."""
        self.collection = collection
        self.schema = schema
        self.resource = schema.singular[collection]
        self.attrs = schema.resources[collection]
        self.server_defaults = schema.server_defaults
        self.plugin = plugin
        self.policy = policy
        self.conf = conf
        # attribute -> policy action for showing it ("get_network:provider:...")
        self.guarded_attrs = [a for a in self.attrs
                              if policy.has(f"get_{self.resource}:{a}")]
        self._shown = {k for k, a in self.attrs.items() if a.is_visible}

    # ---------------------------------------------------------------- helpers
    def _network_owner(self, net_id, networks=None, ctx=None):
        """(project_id, shared) of a network (``shared`` as ``ctx`` is
        given it); ``networks`` caches them for the length of one request
        (a bulk create, a listing)."""
        if networks is None:
            return self.plugin.network_owner(net_id, ctx)
        if net_id not in networks:
            networks[net_id] = self.plugin.network_owner(net_id, ctx)
        return networks[net_id]

    def _target(self, obj, networks=None, ctx=None):
        """The policy target: the object plus, for a subnet or port, its
        network's owner, sharing and (subnets) externality."""
        if self.collection not in ("subnets", "ports") or not obj.get("network_id"):
            return obj
        return _merged(obj, *self._network_keys(
            self._network_owner(obj["network_id"], networks, ctx)))

    def _network_keys(self, net):
        """The keys a target takes from its network ``net`` (or None):
        those the object's own override, and those that override it."""
        if net is None:
            return {}, {}
        defaults = {"shared": net["shared"]}
        if self.collection == "subnets":
            defaults["router:external"] = net["external"]
        return defaults, {"network:project_id": net["project_id"],
                          "network:tenant_id": net["project_id"]}

    def _targets(self, objs, ctx=None, in_place=False):
        """Policy targets of many objects, their networks read in one query
        (and the keys each adds made once).  ``in_place``: the objects
        themselves take those keys (a listing's, whose views then drop
        every key they do not show), unless one of them is shown."""
        if self.collection not in ("subnets", "ports"):
            return objs
        networks = self.plugin.network_owners({o["network_id"] for o in objs}, ctx)
        keys = {}
        out = []
        for o in objs:
            net_id = o.get("network_id")
            if not net_id:
                out.append(o)
                continue
            got = keys.get(net_id)
            if got is None:
                defaults, forced = self._network_keys(self._network_owner(net_id, networks))
                got = keys[net_id] = (defaults, forced, in_place and not (
                    (defaults.keys() | forced.keys()) & self._shown))
            defaults, forced, here = got
            if here:
                o.update(forced)
                for k, val in defaults.items():
                    if k not in o:
                        o[k] = val
                out.append(o)
            else:
                out.append(_merged(o, defaults, forced))
        return out

    def _check_attrs(self, ctx, action, target, names):
        """``<action>:<attr>`` for each attribute named (one that has the
        rule or must be enforced), and ``<action>:<attr>:<key>`` for each
        key of the dicts of a list value (``fixed_ips`` with an
        ``ip_address``), as Neutron does."""
        for name in names:
            a = self.attrs.get(name)
            rule = f"{action}:{name}"
            if a is None or not (a.enforce_policy or self.policy.has(rule)):
                continue
            self.policy.enforce(rule, ctx, target)
            value = target.get(name)
            if isinstance(value, list):
                keys = {k for item in value if isinstance(item, dict) for k in item}
                for k in sorted(keys):
                    if self.policy.has(f"{rule}:{k}"):
                        self.policy.enforce(f"{rule}:{k}", ctx, target)

    def _visible(self, ctx, obj, fields=None, target=None):
        out = {}
        for k, val in obj.items():
            a = self.attrs.get(k)
            if a is None or not a.is_visible:
                continue
            if fields and k not in fields:
                continue
            out[k] = val
        for k in self.guarded_attrs:
            if k in out and not self.policy.check(f"get_{self.resource}:{k}", ctx,
                                                  obj if target is None else target):
                del out[k]
        return out

    def _views(self, ctx, objs, targets, fields):
        """_visible of many objects: a get_<resource>:<attr> rule that
        answers the same for every target (the caller is an admin, the
        attribute admin-only) is asked once, not once per object, and one
        that reads the target is answered for every object before any
        view is made.  The objects (the plugin's fresh dicts, which may be
        their own targets) become their views."""
        shown = self._shown & fields if fields else self._shown
        per_object = []  # (attribute, each object's answer)
        for k in self.guarded_attrs:
            if k not in shown:
                continue
            allowed = self.policy.checker(f"get_{self.resource}:{k}", ctx)
            if targets and not allowed.reads_target(targets[0]):
                if not allowed.const:
                    shown = shown - {k}
            else:
                per_object.append((k, allowed.all(targets)))
        drop = ()  # what the last row had and does not show: the usual rows' too
        for i, o in enumerate(objs):
            for k in drop:
                if k in o:
                    del o[k]
            if not o.keys() <= shown:
                drop = o.keys() - shown
                for k in drop:
                    del o[k]
            for k, answers in per_object:
                if not answers[i] and k in o:
                    del o[k]
        return objs

    def _get_visible(self, ctx, id_, with_target=False):
        """The object (and, ``with_target``, its policy target) if the
        caller may read it, else its not-found error."""
        obj = self.plugin.get(ctx, self.collection, id_)
        target = self._target(obj, ctx=ctx)
        if not self.policy.check(f"get_{self.resource}", ctx, target):
            raise self.plugin.not_found(self.collection, id_)
        return (obj, target) if with_target else obj

    def _view(self, ctx, obj, fields=None):
        """_visible of one object, its attributes' rules read with its
        network's keys as a listing's are (a port's network owner reads
        its tags; a shared network's subnet shows them)."""
        return self._visible(ctx, obj, fields, self._target(obj, ctx=ctx))

    def _sortable_columns(self):
        cols = {c.key for c in self.plugin.model_of(self.collection).__table__.columns}
        return cols | ({"tenant_id"} if "project_id" in cols else set())

    # ---------------------------------------------------------------- index
    def index(self, req, ctx):
        with gc_paused():
            return self._index(req, ctx)

    def _index(self, req, ctx):
        params = req.GET
        fields = set(params.getall("fields")) - {""}
        filters, special, tagged = self._parse_filters(params, ctx)
        sorts = self._parse_sorts(params)
        limit, marker, page_reverse = self._parse_paging(params)
        query_sorts = sorts
        if page_reverse and limit:
            query_sorts = [(k, not asc) for k, asc in (sorts or [("id", True)])]
        # The database query already keeps to what the caller may see; the
        # policy has the last word on each row (an operator's rules may be
        # narrower), and a page it thins is refilled from the rows after
        # it, so that pages are full and no row is skipped.
        action = f"get_{self.resource}"
        keep = [self.policy.checker(action, ctx)]
        # A filter on an attribute the caller sees on some objects only
        # matches none of the others, whatever their value; a tag filter
        # (any of the four, not-tags too) is one on ``tags``, else its
        # answers would tell the tags of an object shared with the caller.
        keep += [self.policy.checker(f"{action}:{k}", ctx)
                 for k in [*filters, *(["tags"] if tagged else [])]
                 if k in self.guarded_attrs]
        # When none of the rules asked of every row reads the row (an
        # admin's listing), the rows need no policy targets (for ports and
        # subnets, each with its network's owner): the first row's answers
        # tell.  Else the rows take their targets' keys in place, and
        # their views drop them.
        asked = keep + [self.policy.checker(f"{action}:{k}", ctx) for k in self.guarded_attrs]
        per_row = None
        objs, targets, after = [], [], marker
        while True:
            batch = self.plugin.list(ctx, self.collection, filters=filters, sorts=query_sorts,
                                     limit=limit, marker=after, special_filters=special)
            if per_row is None and batch:
                first = self._target(batch[0], ctx=ctx)
                per_row = any([d.reads_target(first) for d in asked])
            ts = self._targets(batch, ctx, in_place=True) if per_row else batch
            kept = keep[0].all(ts)
            for rule in keep[1:]:  # (asked of the rows the ones before kept)
                at = [i for i, k in enumerate(kept) if k]
                for i, answer in zip(at, rule.all([ts[i] for i in at])):
                    kept[i] = answer
            objs += itertools.compress(batch, kept)
            targets += itertools.compress(ts, kept)
            if limit is None or len(batch) < limit or len(objs) >= limit:
                break
            after = batch[-1]["id"]
        if limit is not None:
            del objs[limit:], targets[limit:]
        if page_reverse and limit:
            objs.reverse()
            targets.reverse()
        # (the links before the views: these may drop the ids they read)
        links = limit and self._links(req, objs, limit, marker, page_reverse)
        body = {self.collection: self._views(ctx, objs, targets, fields)}
        if limit:
            body[f"{self.collection}_links"] = links
        return json_response(body)

    def _links(self, req, objs, limit, marker, page_reverse):
        """Neutron's rules: going forward, a full page has a next link and
        every page a previous one (a marker or not, items or none); going
        backwards the other way round.  An empty page links without a
        marker."""
        base_items = [(k, val) for k, val in req.GET.items()
                      if k not in ("marker", "limit", "page_reverse")]

        def href(item, reverse):
            q = base_items + [("limit", str(limit))]
            if item is not None:
                q.append(("marker", item["id"]))
            if reverse:
                q.append(("page_reverse", "True"))
            return req.path_url + "?" + urllib.parse.urlencode(q)

        full = len(objs) >= limit
        links = []
        if full or page_reverse:
            links.append({"rel": "next", "href": href(objs[-1] if objs else None, False)})
        if full or not page_reverse:
            links.append({"rel": "previous", "href": href(objs[0] if objs else None, True)})
        return links

    def _hidden_from(self, ctx, key):
        """Whether policy hides the attribute from the caller even on its
        own resources (``binding:host_id`` from non-admins)."""
        if key not in self.guarded_attrs:
            return False
        own = {"project_id": ctx.project_id, "tenant_id": ctx.project_id,
               "network:project_id": ctx.project_id, "network:tenant_id": ctx.project_id}
        return not self.policy.check(f"get_{self.resource}:{key}", ctx, own)

    def _parse_filters(self, params, ctx):
        """The attribute filters, the others (query -> query) and whether
        a tag filter is among these.  A filter on an attribute hidden from
        the caller is refused like one on an attribute that does not exist
        (its answers would tell the values)."""
        filters = {}
        special = []
        tagged = False
        for key in set(params.keys()) - RESERVED_PARAMS:
            values = params.getall(key)
            if key in TAG_FILTERS and "tags" in self.attrs:
                tags = [t for val in values for t in val.split(",") if t]
                if tags:
                    special.append(query.tag_filter(self.plugin.model_of(self.collection),
                                                    key, tags))
                    tagged = True
                continue
            if key == "changed_since":
                special.append(self._changed_since(values[-1]))
                continue
            a = self.attrs.get(key)
            # A filter need not be shown (a subnet's ``shared``).
            if a is None or not a.is_filter or self._hidden_from(ctx, key):
                raise _bad(f"[{key}] is invalid attribute for filtering")
            if key == "fixed_ips":
                filters[key] = [self._fixed_ip_filter(x) for x in values]
                continue
            conv = a.convert_filter or a.validate
            out = []
            for raw in values:
                if conv is None:
                    out.append(raw)
                    continue
                try:
                    val = conv(raw, key)
                except exceptions.InvalidInput as e:
                    raise _bad(f"Invalid filter value for {key}: {e.msg}") from None
                if isinstance(val, int) and not INT_MIN <= val <= INT_MAX:
                    raise _bad(f"Invalid filter value for {key}: '{raw}' is out of range")
                out.append(val)
            filters[key] = out
        return filters, special, tagged

    @staticmethod
    def _fixed_ip_filter(raw):
        key, sep, val = raw.partition("=")
        if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise _bad(f"Invalid fixed_ips filter '{raw}': use ip_address=, "
                       "subnet_id= or ip_address_substr=")
        if key == "ip_address":
            try:
                val = v.ip_address(val)
            except exceptions.InvalidInput:
                pass  # matches nothing, like an unknown value
        return {key: val}

    def _changed_since(self, raw):
        """standard-attr-timestamp: what changed at or after a moment."""
        import datetime
        try:
            when = datetime.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad(f"Invalid changed_since '{raw}': use ISO 8601, e.g. "
                       "2026-11-24T18:00:00Z") from None
        if when.tzinfo is not None:
            try:
                when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            except OverflowError:  # (0001-01-01T00:00+01:00: before year 1 in UTC)
                raise _bad(f"Invalid changed_since '{raw}': out of range") from None
        model = self.plugin.model_of(self.collection)
        if not hasattr(model, "updated_at"):
            raise _bad(f"changed_since is not supported for {self.collection}")
        return query.changed_since(model, when)

    def _parse_sorts(self, params):
        cols = self._sortable_columns()
        return self._parse_sorts_of(params, [
            k for k, a in self.attrs.items() if a.is_sort_key and a.is_visible and k in cols])

    @staticmethod
    def _parse_sorts_of(params, sortable):
        """[(key, ascending)] of the request's sort keys, each one of
        ``sortable``; else a 400."""
        keys = params.getall("sort_key")
        dirs = params.getall("sort_dir")
        if len(dirs) != len(keys):  # (as Neutron's get_sorts: no default direction)
            raise _bad("The number of sort_keys and sort_dirs must be same")
        out = []
        for i, k in enumerate(keys):
            if k not in sortable:
                raise _bad(f"{k} is an invalid attribute for sort_key")
            d = dirs[i]
            if d not in ("asc", "desc"):
                raise _bad(f"{d} is an invalid value for sort_dir, valid value is "
                           "'asc' and 'desc'")
            out.append((k, d == "asc"))
        return out

    def _parse_paging(self, params):
        limit = None
        if "limit" in params:
            try:
                limit = v.to_int(params["limit"], "limit", minimum=0, maximum=INT_MAX)
            except exceptions.InvalidInput:
                raise _bad(f"Limit must be an integer 0 or greater and not "
                           f"'{params['limit']}'") from None
            if limit == 0:
                limit = None
        max_limit = self.conf.pagination_max_limit
        if max_limit and max_limit > 0:
            limit = min(limit or max_limit, max_limit)
        # (as Neutron's get_limit_and_marker: no limit, no marker either)
        marker = (params.get("marker") or None) if limit is not None else None
        try:
            page_reverse = v.to_bool(params.get("page_reverse", False))
        except exceptions.InvalidInput:
            raise _bad("page_reverse must be a boolean") from None
        return limit, marker, page_reverse

    # ---------------------------------------------------------------- show
    def show(self, req, ctx, id_):
        fields = set(req.GET.getall("fields")) - {""}
        obj, target = self._get_visible(ctx, id_, with_target=True)
        return json_response({self.resource: self._visible(ctx, obj, fields, target)})

    # ---------------------------------------------------------------- create
    def create(self, req, ctx):
        if not self.plugin.collections[self.collection].allow_create:
            raise webob.exc.HTTPMethodNotAllowed(
                detail=f"Creating {self.collection} through the API is not supported")
        body = read_json(req)
        if self.collection in body and self.resource not in body:
            items = body[self.collection]
            if not isinstance(items, list) or not items:
                raise _bad(f"Resources required: '{self.collection}' must be a non-empty list")
            v.check_length(items, self.collection)  # (before any item is read)
            bulk = True
        elif self.resource in body:
            items = [body[self.resource]]
            bulk = False
        else:
            raise _bad(f"Resource body required: expected '{self.resource}'")
        if len(body) != 1:
            raise _bad("Only one resource body is allowed per request")
        if bulk:
            # Each item may be the bare attributes or wrapped in the
            # singular key, as Neutron takes both.
            items = [self._unwrap(item) for item in items]
        with gc_paused():
            return self._create(ctx, items, bulk)

    def _create(self, ctx, items, bulk):
        networks = {}  # one lookup per network for a whole bulk
        owners = {}  # and per parent
        prepared = [self._prepare_post(ctx, item, networks, owners) for item in items]
        if len(prepared) > 1 and self.plugin.quotas is not None:
            # A bulk past the quota is refused before its work, as Neutron
            # reserves its items first (one item's work is the same as
            # the count at commit that refuses it).  Counted in the
            # project its rows get (a rule: its group's).
            parent = _PARENTS.get(self.collection)
            self.plugin.quotas.refuse(self.collection, [
                owners[out[parent[0]]] if parent else out.get("project_id")
                for out in prepared])
        created = self.plugin.create(ctx, self.collection, prepared)
        if bulk:
            targets = self._targets(created, ctx)
            return json_response({self.collection: [
                self._visible(ctx, o, None, tg) for o, tg in zip(created, targets)]}, status=201)
        return json_response({self.resource: self._view(ctx, created[0])}, status=201)

    def _unwrap(self, item):
        if isinstance(item, dict) and self.resource in item:
            if len(item) != 1:
                raise _bad(f"A bulk item wrapped in '{self.resource}' may hold nothing "
                           "else")
            return item[self.resource]
        return item

    def _prepare_post(self, ctx, item, networks=None, owners=None):
        if not isinstance(item, dict):
            raise _bad(f"Resource body must be a dictionary, not {type(item).__name__}")
        out = self.filled(item)
        if self.attrs["project_id"].is_visible:
            self._resolve_project(ctx, out)
        else:  # a resource of no project (default security group rules)
            del out["project_id"], out["tenant_id"]
        if self.collection in ("subnets", "ports"):
            net = self._network_owner(out["network_id"], networks, ctx)
            if net is None or not self.policy.check("get_network", ctx, {
                    "id": out["network_id"], "project_id": net["project_id"],
                    "tenant_id": net["project_id"], "shared": net["shared"],
                    "router:external": net["external"]}):
                raise exceptions.NetworkNotFound(net_id=out["network_id"])
        target = self._target(out, networks, ctx)
        parent = _PARENTS.get(self.collection)
        if parent is not None:
            # The parent's owner, as Neutron's "<parent>:tenant_id" (a
            # rule is made in its group's project: a project a group is
            # shared with may use it, not change it); a parent the caller
            # cannot see is its 404.
            key, collection, resource = parent
            owners = {} if owners is None else owners  # a bulk asks once a parent
            owner = owners.get(out[key])
            if owner is None:
                owner = owners[out[key]] = self.plugin.owner(ctx, collection, out[key])
            target = _merged(target, {}, {f"{resource}:project_id": owner,
                                          f"{resource}:tenant_id": owner})
        action = f"create_{self.resource}"
        self.policy.enforce(action, ctx, target)
        # Attributes given with a value other than their default.
        self._check_attrs(ctx, action, target, [
            name for name in item if name in self.attrs and (
                self.attrs[name].default is NOT_SET or out.get(name) != self.attrs[name].default)])
        return out

    def filled(self, item):
        """A create body's attributes checked and converted, with the
        defaults of those it lacks: no policy, no project (what the server
        makes on its own, such as an auto-allocated topology, takes this
        and gives project_id itself)."""
        unknown = [k for k in item if k not in self.attrs]
        if unknown:
            raise _bad(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        out = {}
        for name, a in self.attrs.items():
            if name in item:
                if not a.allow_post:
                    raise _bad(f"Attribute '{name}' not allowed in POST")
                out[name] = a.validate(item[name], name) if a.validate else item[name]
            elif a.allow_post and a.default is NOT_SET and \
                    (self.collection, name) not in self.server_defaults:
                raise _bad(f"Failed to parse request. Required attribute '{name}' not specified")
            elif a.allow_post and a.default is not NOT_SET:
                out[name] = _copy(a.default)
        return out

    def _resolve_project(self, ctx, out):
        pid, tid = out.pop("project_id", None), out.pop("tenant_id", None)
        if pid and tid and pid != tid:
            raise _bad("project_id and tenant_id do not match")
        project = pid or tid or ctx.project_id
        if not project:
            raise _bad("'project_id' is required")
        if project != ctx.project_id and not ctx.is_admin:
            # A bad request, not a policy refusal, in Neutron's words.
            raise _bad("Specifying 'project_id' other than the authenticated project "
                       "in request is not allowed for the current user.")
        out["project_id"] = project

    # ---------------------------------------------------------------- update
    def update(self, req, ctx, id_):
        if not any(a.allow_put for a in self.attrs.values()):
            # Nothing of it can change (default security group rules): no
            # update, as the OpenAPI description has none.
            raise webob.exc.HTTPMethodNotAllowed(
                detail=f"Updating {self.collection} through the API is not supported")
        body = read_json(req)
        item = body.get(self.resource)
        if not isinstance(item, dict) or len(body) != 1:
            raise _bad(f"Resource body required: expected '{self.resource}' object")
        out = {}
        for name, val in item.items():
            a = self.attrs.get(name)
            if a is None:
                raise _bad(f"Unrecognized attribute(s) '{name}'")
            if not a.allow_put:
                raise _bad(f"Cannot update read-only attribute {name}")
            out[name] = a.validate(val, name) if a.validate else val
        current = self._get_visible(ctx, id_)
        expected = self._expected_revision(req, current)
        target = dict(self._target(current, ctx=ctx))
        target.update(out)
        action = f"update_{self.resource}"
        try:
            self.policy.enforce(action, ctx, target)
        except exceptions.PolicyNotAuthorized:
            self._hidden_on_update(ctx, id_, target)
            raise
        # Every attribute the body names, changed or not, as Neutron's
        # update checks what is explicitly set (a project's PUT of
        # "shared": false on its own scope is a 403 there too).
        self._check_attrs(ctx, action, target, list(out))
        obj = self.plugin.update(ctx, self.collection, id_, out, revision=expected)
        return json_response({self.resource: self._view(ctx, obj)})

    def _hidden_on_update(self, ctx, id_, target):
        """A refused update is a 404 when the caller could not read the
        object as the update sees it, as in Neutron: there the update's
        object holds the resource's policy attributes only, so an address
        group an RBAC policy shares (readable through a ``shared`` the API
        does not have) is not found, while a network, pool, scope or
        security group (whose ``shared`` Neutron's update reads) is a 403.
        A port's ``shared`` is its network's (a subnet has the attribute)."""
        if "shared" in self.attrs or "shared" not in target \
                or self.collection in ("ports", "security_groups"):
            return
        seen = {k: val for k, val in target.items() if k != "shared"}
        if not self.policy.check(f"get_{self.resource}", ctx, seen):
            raise webob.exc.HTTPNotFound(detail="The resource could not be found.")

    @staticmethod
    def _expected_revision(req, current):
        """The revision_number an ``If-Match: revision_number=N`` header
        asks for (an entity tag: quoted or not, weak or not, as webob
        reads it), or None.  It is compared in the write's transaction,
        after the policy check, as Neutron's revision plugin does at flush:
        a writer in between is a 412, not a lost update."""
        header = req.headers.get("If-Match")
        if not header or "revision_number" not in current:
            # (Resources without a revision number, as agents, take no
            # condition on it: the header is ignored, as in Neutron.)
            return None
        want = None
        for part in header.split(","):
            part = part.strip()
            part = part[2:] if part.startswith("W/") else part
            part = part[1:-1] if len(part) > 1 and part[0] == part[-1] == '"' else part
            if part.startswith("revision_number="):
                try:
                    want = int(part.split("=", 1)[1])
                except ValueError:
                    raise _bad(f"Invalid If-Match header '{header}'") from None
        return want

    # ---------------------------------------------------------------- delete
    def delete(self, req, ctx, id_):
        if not self.plugin.collections[self.collection].allow_delete:
            raise webob.exc.HTTPMethodNotAllowed(
                detail=f"Deleting {self.collection} through the API is not supported")
        current = self._get_visible(ctx, id_)
        expected = self._expected_revision(req, current)
        self.policy.enforce(f"delete_{self.resource}", ctx, self._target(current, ctx=ctx))
        self.plugin.delete(ctx, self.collection, id_, revision=expected)
        return json_response(None, status=204)

    # ---------------------------------------------------------------- tags
    def tags(self, req, ctx, id_, tag=None):
        """The tags sub-resource (aliases tag, tag-ext, standard-attr-tag)."""
        current = self._get_visible(ctx, id_)
        method = req.method
        if method == "GET":
            self.policy.enforce(f"get_{self.resource}:tags", ctx, self._target(current, ctx=ctx))
            if tag is None:
                return json_response({"tags": current["tags"]})
            if tag not in current["tags"]:
                raise exceptions.TagNotFound(tag=tag)
            return json_response(None, status=204)
        action = "update" if method == "PUT" else "delete"
        self.policy.enforce(f"{action}_{self.resource}:tags", ctx, self._target(current, ctx=ctx))
        if method == "PUT" and tag is None:
            body = read_json(req)
            if set(body) != {"tags"}:
                raise _bad("Invalid tags body: expected {\"tags\": [...]}")
            tags = v.list_of(v.tag, unique=True, what="tag")(body["tags"], "tags")
            return json_response({"tags": self.plugin.set_tags(ctx, self.collection, id_, tags)})
        if method == "PUT":
            v.tag(tag, "tag")
            # (one tag, in the write: a tag another client adds meanwhile stays)
            self.plugin.change_tag(ctx, self.collection, id_, tag, add=True)
            return json_response(None, status=201)
        if method == "DELETE" and tag is None:
            self.plugin.set_tags(ctx, self.collection, id_, [])
            return json_response(None, status=204)
        if method == "DELETE":
            self.plugin.change_tag(ctx, self.collection, id_, tag, add=False)
            return json_response(None, status=204)
        raise webob.exc.HTTPMethodNotAllowed()


def _merged(obj, defaults, forced):
    """A copy of ``obj`` with ``forced``'s items and those of
    ``defaults`` it lacks."""
    out = obj | forced
    for k, val in defaults.items():
        if k not in out:
            out[k] = val
    return out


def _copy(val):
    return list(val) if isinstance(val, list) else val


