"""Read-only rows for listings, without the ORM's identity map.

A listing of 10,000 ports through the ORM spends most of its time making
tracked instances (identity map, attribute state, collections) that are
only read once, to make the API dicts.  ``load`` runs the same statement
for the mapped columns only and gives named tuples with the same
attribute names: every column and column property, and every relationship
the model loads eagerly (``selectin``/``joined``), each read with one
query per relationship (its parents a subquery of the listing's own
statement), recursively; a relationship the ORM loads when touched is
read when touched (_Lazy.__getattr__).  What the dict builders and
extenders read of a row is therefore there, with the same values as the
ORM gives.  The rows are read-only: a named tuple is a fifth of the cost
of an object with a ``__dict__`` to make, and its relationships are set
as it is made.

A model with a relationship this loader cannot read this way (not a plain
equality between two columns, a secondary table), or an attribute name a
named tuple cannot have, is not handled: ``supported`` says so and the
caller uses the ORM.
"""

import collections
import functools

import sqlalchemy as sa
from sqlalchemy import orm


class _Lazy:
    """What the row class of a model with relationships the ORM loads when
    touched (lazy="select") adds: they are read when touched too, through
    the listing's session (the class ``_bound`` makes for one listing),
    each once per listing and value of its local key."""

    __slots__ = ()
    _lazy = {}  # name -> (uselist, local key, remote key, child model, order_by)
    _session = None
    _loaded = None  # {(name, local key value): what it read}

    def __getattr__(self, name):
        cls = type(self)
        rel = cls._lazy.get(name)
        s = cls._session
        if rel is None or s is None:
            raise AttributeError(name)
        uselist, lkey, rkey, child, order = rel
        value = getattr(self, lkey)
        key = (name, value)
        loaded = cls._loaded
        if key in loaded:
            return loaded[key]
        found = []
        if value is not None:
            q = sa.select(child).where(getattr(child, rkey) == value)
            if order:
                q = q.order_by(*order)
            found = s.execute(q).scalars().all()
        got = loaded[key] = found if uselist else (found[0] if found else None)
        return got


def _lazy_rels(model):
    """{name: (uselist, local key, remote key, child model, order_by)} of
    ``model``'s relationships the ORM loads when touched and that are a
    plain equality of two columns (the others are not readable here)."""
    mapper = sa.inspect(model)
    lazy = {}
    for rel in mapper.relationships:
        if rel.lazy in ("selectin", "joined"):
            continue
        simple = _simple(rel, mapper)
        if simple is not None:
            lkey, rkey = simple
            lazy[rel.key] = (rel.uselist, lkey, rkey, rel.mapper.class_,
                             list(rel.order_by) if rel.order_by else [])
    return lazy


def _simple(rel, mapper):
    """(local key, remote key) of a relationship joined on one equality
    of two mapped columns, else None."""
    join = rel.primaryjoin
    if rel.secondary is not None or len(rel.local_remote_pairs) != 1 or not (
            isinstance(join, sa.sql.elements.BinaryExpression)
            and join.operator is sa.sql.operators.eq):
        return None
    local, remote = rel.local_remote_pairs[0]
    try:
        return (mapper.get_property_by_column(local).key,
                rel.mapper.get_property_by_column(remote).key)
    except orm.exc.UnmappedColumnError:
        return None


@functools.cache
def _row_class(model):
    """The row class of ``model``: a named tuple of its columns, then its
    eager relationships (_plan's order), with _Lazy when it has lazy ones;
    None when its attribute names cannot be a named tuple's."""
    keys, _cols, rels = _plan(model)
    try:
        base = collections.namedtuple(f"{model.__name__}Row", keys + [r[0] for r in rels])
    except ValueError:
        return None
    lazy = _lazy_rels(model)
    if not lazy:
        return base
    return type(base.__name__, (base, _Lazy), {"__slots__": (), "_lazy": lazy})


@functools.cache
def _plan(model, depth=0):
    """(column keys, columns, [(rel key, uselist, local key, remote key,
    child model, order_by, owned, child plan)]) or None when unsupported;
    ``owned``: the remote column is a foreign key to the local one (the
    child table holds rows of this model's rows only)."""
    mapper = sa.inspect(model)
    keys, cols = [], []
    for prop in mapper.column_attrs:
        keys.append(prop.key)
        cols.append(getattr(model, prop.key))
    rels = []
    for rel in mapper.relationships:
        if rel.lazy not in ("selectin", "joined"):
            continue  # loaded on access by the ORM: not read by listings
        simple = _simple(rel, mapper)
        if depth > 3 or simple is None:
            return None
        lkey, rkey = simple
        child = rel.mapper.class_
        sub = _plan(child, depth + 1)
        if sub is None:
            return None
        order = list(rel.order_by) if rel.order_by else []
        local, remote = rel.local_remote_pairs[0]
        owned = any(fk.column is local for fk in remote.foreign_keys)
        rels.append((rel.key, rel.uselist, lkey, rkey, child, order, owned, sub))
    return keys, cols, rels


@functools.cache
def supported(model):
    plan = _plan(model)
    if plan is None or _row_class(model) is None:
        return False
    return all(supported(rel[4]) for rel in plan[2])


def load(s, stmt, model):
    """The rows of ``stmt`` (a select of ``model``, with its criteria,
    order and limit) as named tuples (_row_class)."""
    _keys, cols, _rels = _plan(model)
    return _made(s, s.connection().execute(stmt.with_only_columns(*cols)).all(), model,
                 stmt, {})


def _bound(model, s, classes):
    """``model``'s row class for this listing: with lazy relationships, a
    subclass that reads them through ``s`` (``classes``: those made)."""
    cls = classes.get(model)
    if cls is None:
        cls = _row_class(model)
        if issubclass(cls, _Lazy):
            cls = type(cls.__name__, (cls,), {"__slots__": (), "_session": s, "_loaded": {}})
        classes[model] = cls
    return cls


# Listings of at least this many rows may read their children's tables
# whole (_most).
MOST_FROM = 1000


def _most(s, rows, model):
    """Whether ``rows`` are at least half of ``model``'s table (and
    MOST_FROM or more): their children are then read from the whole child
    table (owned) or as the children of any row of ``model``, and those of
    the other rows dropped.  Naming the rows by the listing's own
    statement makes the database evaluate its criteria again for each
    child table (SQLite: a 10,000-port listing of a project spent about
    half of its SQL time there)."""
    if len(rows) < MOST_FROM:
        return False
    total = s.connection().execute(sa.select(sa.func.count()).select_from(model)).scalar()
    return 2 * len(rows) >= total


def _made(s, raw, model, stmt, classes):
    """The rows of ``model`` whose column values are ``raw`` (the result
    of ``stmt``, a select of ``model``'s entity or columns), with their
    eager relationships: each child table read once, its parents named by
    a subquery of ``stmt`` (a derived table: MySQL takes no LIMIT directly
    inside IN) -- or, when the rows are most of their table (_most),
    without it, in the order of their parents' keys (as the index on them
    gives the children of named parents: the dicts and the JSON built
    from them then read memory in the order it was allocated, a fifth
    faster than in table order)."""
    cls = _bound(model, s, classes)
    keys, _cols, rels = _plan(model)
    make = tuple.__new__
    if not rels:
        return [make(cls, r) for r in raw]
    if not raw:
        return []
    most = _most(s, raw, model)
    columns = []  # per relationship, its value for each row
    for key, uselist, lkey, rkey, child, order, owned, (ckeys, ccols, _crels) in rels:
        remote = getattr(child, rkey)
        if most and owned:
            q = sa.select(*ccols).where(remote.is_not(None)).order_by(remote)
        elif most:
            q = sa.select(*ccols).where(remote.in_(sa.select(getattr(model, lkey)))) \
                .order_by(remote)
        else:
            parents = stmt.with_only_columns(getattr(model, lkey)).order_by(None)
            if stmt._limit_clause is not None or stmt._offset_clause is not None:
                parents = stmt.with_only_columns(getattr(model, lkey))
            sub = parents.subquery()
            q = sa.select(*ccols).where(remote.in_(sa.select(sub.c[0])))
        if order:
            q = q.order_by(*order)
        found = _made(s, s.connection().execute(q).all(), child, q, classes)
        parent_at = ckeys.index(rkey)
        local_at = keys.index(lkey)
        by_parent = {}
        if uselist:
            for c in found:
                v = c[parent_at]
                got = by_parent.get(v)
                if got is None:
                    by_parent[v] = [c]
                else:
                    got.append(c)
            get = by_parent.get
            columns.append([get(r[local_at]) or [] for r in raw])
        else:
            for c in reversed(found):  # the first of a parent's, as got[0]
                by_parent[c[parent_at]] = c
            get = by_parent.get
            columns.append([get(r[local_at]) for r in raw])
    return [make(cls, (*r, *rel_values)) for r, rel_values in zip(raw, zip(*columns))]
