"""The one resource pattern: a handler per collection.

Every collection the plugin serves (networks, subnets and ports in
db/resources/, an extension's in its module) is a ``Collection``
subclass registered with ``plugin.register``.  The plugin opens the
transaction, finds the row and makes the API dict; the handler says how
rows are made, changed, removed, shown and scoped.

A simple handler overrides ``create`` and ``to_dict`` (and ``update``,
``delete``, ``visible_clause``, ``filter_clause``, ``network_of`` when
the defaults do not fit); the write steps (``create_all``,
``update_row``, ``delete_row``) then run the hooks, bump the revision
and record the change around them.  A handler whose writes need another
order (the core ones: address allocation, bulk locking) overrides the
write steps themselves.
"""

import operator

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs import exceptions
from quantum_ovs.db import changelog, query
from quantum_ovs.db.session import is_sqlite
from quantum_ovs.timeutils import api_time


class Collection:
    collection = None  # "security_groups"
    resource = None  # "security_group": its name in the change log
    model = None
    not_found = None  # (exception class, keyword)
    allow_create = True  # False: the API answers POST with 405
    allow_delete = True

    def __init__(self, plugin):
        self.plugin = plugin

    # ------------------------------------------------------------ shape
    def to_dict(self, obj):
        raise NotImplementedError

    def network_of(self, obj):
        """The network id the change log names for ``obj``."""
        return None

    # ------------------------------------------------------------ scope
    def visible_clause(self, ctx):
        """The rows a non-admin ``ctx`` sees (extensions may add more,
        see ExtensionPoints.visibility)."""
        return self.model.project_id == ctx.project_id

    def for_caller(self, s, ctx, rows, dicts):
        """Adjust the API dicts of ``rows`` to what ``ctx`` is given (a
        network's ``shared`` is true for the projects it is shared with)."""

    def filter_clause(self, attr, values):
        """The clause of a list filter on ``attr``; None: the column's."""
        return None

    def visible(self, ctx):
        """The visibility clause for ``ctx``; None: every row (an admin,
        or the service role, as neutron-lib's model_query_scope_is_project:
        the policy then says which rows it may read)."""
        if ctx is None or ctx.is_admin or getattr(ctx, "is_service_role", False):
            return None
        clause = self.visible_clause(ctx)
        extra = [fn(ctx) for fn in self.plugin.visibility.get(self.collection, ())]
        return sa.or_(clause, *extra) if extra else clause

    def filter(self, attr, values):
        hook = self.plugin.filter_hooks.get((self.collection, attr))
        if hook is not None:
            return hook(values)
        clause = self.filter_clause(attr, values)
        if clause is not None:
            return clause
        return query.column_filter(getattr(self.model, attr), values)

    def filter_for(self, ctx, attr, values):
        """``filter`` as ``ctx`` reads it (a network's ``shared``)."""
        return self.filter(attr, values)

    def missing(self, id_):
        exc, key = self.not_found
        return exc(**{key: id_})

    def row(self, s, ctx, id_, lock=False, bare=False, share=False):
        """The row ``ctx`` sees (ctx None: any), or the not-found error.
        ``lock``: for update; ``share``: held (hold()) before it is read,
        for a write that uses it; ``bare``: relationships load if touched."""
        if share:
            hold(s, self.model, [id_])
        q = sa.select(self.model).where(self.model.id == id_)
        if bare:
            q = q.options(orm.lazyload("*"))
        clause = self.visible(ctx)
        if clause is not None:
            q = q.where(clause)
        if lock and not is_sqlite(s):
            q = q.with_for_update()
        obj = s.execute(q).scalars().first()
        if obj is None:
            raise self.missing(id_)
        return obj

    # ------------------------------------------------------------ writes
    def check(self, a):
        """Checks of a create or update body before the transaction."""

    def create(self, s, ctx, a):
        """The new row (added to the session) of one create body."""
        raise NotImplementedError

    def update(self, s, ctx, obj, a):
        for k, v in a.items():
            setattr(obj, k, v)

    def delete(self, s, ctx, obj):
        s.delete(obj)

    def create_all(self, s, ctx, items):
        """The rows of a (bulk) create, in its transaction."""
        out = []
        for a in items:
            obj = self.create(s, ctx, a)
            s.flush()
            self.plugin.run_hooks(self.collection, "create", s, ctx, obj, a)
            changelog.record(s, self.resource, obj, "create", self.network_of(obj))
            out.append(obj)
        s.flush()
        return out

    def update_row(self, s, ctx, obj, a):
        """An update of ``obj`` (found and locked), in its transaction."""
        self.plugin.run_hooks(self.collection, "before_update", s, ctx, obj, a)
        self.update(s, ctx, obj, a)
        self.plugin.run_hooks(self.collection, "update", s, ctx, obj, a)
        changelog.bump(obj)
        if changelog.seen_by_agents(a):
            changelog.record(s, self.resource, obj, "update", self.network_of(obj))
        s.flush()

    def delete_row(self, s, ctx, obj):
        """The deletion of ``obj`` (found and locked), in its transaction."""
        self.plugin.run_hooks(self.collection, "delete", s, ctx, obj, None)
        changelog.record(s, self.resource, obj, "delete", self.network_of(obj))
        self.delete(s, ctx, obj)


def hold(s, model, ids):
    """Share-lock these rows (PostgreSQL FOR KEY SHARE, MariaDB LOCK IN
    SHARE MODE; SQLite lets one writer in anyway) for a write that uses
    them: one that deletes or changes what the write relies on (a network
    un-shared, a router's interface removed) locks them for update, so the
    two take turns.  Read what is checked (visibility, in-use) after this,
    by another statement: it then sees what the other committed."""
    ids = sorted(set(ids))
    if ids and not is_sqlite(s):
        s.execute(sa.select(model.id).where(model.id.in_(ids)).order_by(model.id)
                  .with_for_update(read=True, key_share=True))


# (a list comprehension costs a function call even when empty: a
# listing's rows have thousands of empty lists)
TAG = operator.attrgetter("tag")


# Tags one resource may carry (Neutron's tag extension has the same).
MAX_TAGS = 50


def check_tags(collection, tags):
    """400 for more tags than a resource may carry."""
    if len(set(tags)) > MAX_TAGS:
        raise exceptions.BadRequest(
            resource=collection[:-1],
            msg=f"The number of tags exceeds the per-resource limit of {MAX_TAGS}")


def std_dict(obj):
    """The standard attributes of every core resource."""
    return {
        "id": obj.id,
        "name": obj.name,
        "description": obj.description,
        "project_id": obj.project_id,
        "tenant_id": obj.project_id,
        "revision_number": obj.revision_number,
        "created_at": api_time(obj.created_at),
        "updated_at": api_time(obj.updated_at),
        "tags": list(map(TAG, obj.tags)),
    }
