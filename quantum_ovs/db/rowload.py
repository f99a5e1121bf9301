"""Read-only rows for listings, without the ORM's identity map.

A listing of 10,000 ports through the ORM spends most of its time making
tracked instances (identity map, attribute state, collections) that are
only read once, to make the API dicts.  ``load`` runs the same statement
for the mapped columns only and gives plain objects with the same
attribute names: every column and column property, and every relationship
the model loads eagerly (``selectin``/``joined``), each read with one
query per relationship (its parents a subquery of the listing's own
statement), recursively.  What the
dict builders and extenders read of a row is therefore there, with the
same values as the ORM gives.

A model with a relationship this loader cannot read this way (not a plain
equality between two columns, a secondary table) is not handled:
``supported`` says so and the caller uses the ORM.
"""

import functools

import sqlalchemy as sa
from sqlalchemy import orm

class Row:
    """One row: its attributes are those of the mapped instance."""

    def __init__(self, values):
        self.__dict__.update(values)

    def __repr__(self):
        return f"Row({self.__dict__!r})"


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
        if depth > 3 or rel.secondary is not None or len(rel.local_remote_pairs) != 1:
            return None
        join = rel.primaryjoin
        if not (isinstance(join, sa.sql.elements.BinaryExpression)
                and join.operator is sa.sql.operators.eq):
            return None
        local, remote = rel.local_remote_pairs[0]
        child = rel.mapper.class_
        try:
            lkey = mapper.get_property_by_column(local).key
            rkey = rel.mapper.get_property_by_column(remote).key
        except orm.exc.UnmappedColumnError:
            return None
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
    rows = [Row(zip(keys, r)) for r in s.execute(stmt.with_only_columns(*cols))]
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
        found = [Row(zip(ckeys, r)) for r in s.execute(q)]
        if crels and found:
            _children(s, found, crels, q, child)
        by_parent = {}
        for c in found:
            by_parent.setdefault(getattr(c, rkey), []).append(c)
        for r in rows:
            got = by_parent.get(getattr(r, lkey), [])
            r.__dict__[key] = got if uselist else (got[0] if got else None)
