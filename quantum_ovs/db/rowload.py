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

import functools

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
def _plan(model, depth=0):
    """(column keys, columns, [(rel key, uselist, local key, remote key,
    child model, order_by, child plan)]) or None when unsupported."""
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
        rels.append((rel.key, rel.uselist, lkey, rkey, child, order, sub))
    return keys, cols, rels


def supported(model):
    return _plan(model) is not None


def load(s, stmt, model):
    """The rows of ``stmt`` (a select of ``model``, with its criteria,
    order and limit) as Row objects."""
    keys, cols, rels = _plan(model)
    cls = _row_class(model)
    rows = [cls(zip(keys, r), s) for r in s.execute(stmt.with_only_columns(*cols))]
    if rows:
        _children(s, rows, rels, stmt, model)
    return rows


def _children(s, rows, rels, stmt, model):
    """The eager relationships of ``rows``, the rows of ``stmt`` (a select
    of ``model``'s entity or columns): each child table read once, its
    parents named by a subquery of ``stmt`` (a derived table: MySQL takes
    no LIMIT directly inside IN)."""
    for key, uselist, lkey, rkey, child, order, (ckeys, ccols, crels) in rels:
        parents = stmt.with_only_columns(getattr(model, lkey)).order_by(None)
        if stmt._limit_clause is not None or stmt._offset_clause is not None:
            parents = stmt.with_only_columns(getattr(model, lkey))
        sub = parents.subquery()
        remote = getattr(child, rkey)
        q = sa.select(*ccols).where(remote.in_(sa.select(sub.c[0])))
        if order:
            q = q.order_by(*order)
        cls = _row_class(child)
        found = [cls(zip(ckeys, r), s) for r in s.execute(q)]
        if crels and found:
            _children(s, found, crels, q, child)
        by_parent = {}
        for c in found:
            by_parent.setdefault(getattr(c, rkey), []).append(c)
        for r in rows:
            got = by_parent.get(getattr(r, lkey), [])
            r.__dict__[key] = got if uselist else (got[0] if got else None)
