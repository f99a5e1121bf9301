"""Read-only rows for listings, without the ORM's identity map.

A listing of 10,000 ports through the ORM spends most of its time making
tracked instances (identity map, attribute state, collections) that are
only read once, to make the API dicts.  ``load`` runs the same statement
for the mapped columns only and gives plain objects with the same
attribute names: every column and column property, and every relationship
the model loads eagerly (``selectin``/``joined``), each read with one
query per relationship (its parents a subquery of the listing's own
statement), recursively; a relationship the ORM loads when touched is
read when touched (Row.__getattr__).  What the dict builders and
extenders read of a row is therefore there, with the same values as the
ORM gives.

A model with a relationship this loader cannot read this way (not a plain
equality between two columns, a secondary table) is not handled:
``supported`` says so and the caller uses the ORM.
"""

import collections
import functools
import operator

import sqlalchemy as sa
from sqlalchemy import orm

class Row:
    """One row: its attributes are those of the mapped instance.  A
    relationship the ORM loads when touched (lazy="select") is read when
    touched too, through the listing's session (``_lazy``: its plan)."""

    _lazy = {}

    def __init__(self, values, session=None):
        self.__dict__.update(values)
        self.__dict__["_session"] = session

    def __getattr__(self, name):
        rel = type(self)._lazy.get(name)
        s = self.__dict__.get("_session")
        if rel is None or s is None:
            raise AttributeError(name)
        uselist, lkey, rkey, child, order = rel
        value = self.__dict__.get(lkey)
        found = []
        if value is not None:
            q = sa.select(child).where(getattr(child, rkey) == value)
            if order:
                q = q.order_by(*order)
            found = s.execute(q).scalars().all()
        got = found if uselist else (found[0] if found else None)
        self.__dict__[name] = got
        return got

    def __repr__(self):
        return f"Row({self.__dict__!r})"


@functools.cache
def _row_class(model):
    """The Row class of ``model``'s rows: its relationships loaded when
    touched (each a plain equality of two columns, or not readable)."""
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
    return type(f"{model.__name__}Row", (Row,), {"_lazy": lazy, "__slots__": ()})


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
def _leaf_class(model):
    """The row class of ``model`` read as a leaf (a child none of whose
    relationships is loaded, eagerly or when touched): a named tuple of
    its attributes, a fifth of the cost of a Row to make; None when its
    attribute names cannot be a named tuple's."""
    plan = _plan(model, 1)
    if plan is None or plan[2] or _row_class(model)._lazy:
        return None
    try:
        return collections.namedtuple(f"{model.__name__}Leaf", plan[0])
    except ValueError:
        return None


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


def supported(model):
    return _plan(model) is not None


def load(s, stmt, model):
    """The rows of ``stmt`` (a select of ``model``, with its criteria,
    order and limit) as Row objects."""
    keys, cols, rels = _plan(model)
    rows = _rows(s, stmt.with_only_columns(*cols), keys, _row_class(model))
    if rows:
        _children(s, rows, rels, stmt, model)
    return rows


def _rows(s, stmt, keys, cls):
    """Row objects of the result of ``stmt``, read through the session's
    connection: plain result rows (the ORM's result processing is for
    entities; these are columns), the same values."""
    new = object.__new__
    out = []
    append = out.append
    for r in s.connection().execute(stmt).all():
        row = new(cls)
        d = row.__dict__
        d.update(zip(keys, r))
        d["_session"] = s
        append(row)
    return out


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


def _children(s, rows, rels, stmt, model):
    """The eager relationships of ``rows``, the rows of ``stmt`` (a select
    of ``model``'s entity or columns): each child table read once, its
    parents named by a subquery of ``stmt`` (a derived table: MySQL takes
    no LIMIT directly inside IN) -- or, when the rows are most of their
    table (_most), without it, in the order of their parents' keys (as
    the index on them gives the children of named parents: the dicts and
    the JSON built from them then read memory in the order it was
    allocated, a fifth faster than in table order)."""
    most = _most(s, rows, model)
    for key, uselist, lkey, rkey, child, order, owned, (ckeys, ccols, crels) in rels:
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
        leaf = None if crels else _leaf_class(child)
        if leaf is not None:
            make = tuple.__new__
            found = [make(leaf, r) for r in s.connection().execute(q).all()]
        else:
            found = _rows(s, q, ckeys, _row_class(child))
        if crels and found:
            _children(s, found, crels, q, child)
        parent_of = operator.attrgetter(rkey)
        by_parent = {}
        if uselist:
            for c in found:
                v = parent_of(c)
                got = by_parent.get(v)
                if got is None:
                    by_parent[v] = [c]
                else:
                    got.append(c)
            get = by_parent.get
            for r in rows:
                d = r.__dict__
                got = get(d[lkey])
                d[key] = [] if got is None else got
        else:
            for c in reversed(found):  # the first of a parent's, as got[0]
                by_parent[parent_of(c)] = c
            get = by_parent.get
            for r in rows:
                d = r.__dict__
                d[key] = get(d[lkey])
