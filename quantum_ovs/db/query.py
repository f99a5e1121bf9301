"""The list query: visibility, filters, sort keys and the marker."""

import sqlalchemy as sa

from quantum_ovs.db import models


def chunks(ids, n=500):
    """``ids`` in lists of at most ``n``: one ``IN (...)`` each, far below
    any backend's limit on bound parameters (SQLite's is 999 before 3.32)."""
    ids = list(ids)
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


def list_query(s, model, visible, filters, sorts, limit, marker, special_filters,
               filter_clause, not_found, load=None):
    """The rows of ``model`` a list returns.  ``visible``: the caller's
    visibility clause or None (admin); ``filters``: attribute -> accepted
    values (OR); ``sorts``: [(attribute, ascending)]; ``marker``: an id
    (``not_found(id)`` the error when the caller does not see it);
    ``filter_clause(attr, values)``: the clause of one filter; ``load(q)``,
    if given, reads the rows of the final statement instead of the ORM."""
    q = sa.select(model)
    if visible is not None:
        q = q.where(visible)
    for attr, values in (filters or {}).items():
        q = q.where(filter_clause("project_id" if attr == "tenant_id" else attr, values))
    for fn in (special_filters or ()):
        q = fn(q)
    order = [(getattr(model, "project_id" if k == "tenant_id" else k), asc)
             for k, asc in sorts]
    if not any(col.key == "id" for col, _ in order):
        first_asc = order[0][1] if order else True
        order.append((model.id, first_asc))
    if marker is not None:
        # Looked up as the caller sees: another project's id is no
        # marker, like an id that does not exist.
        mq = sa.select(model).where(model.id == marker)
        mobj = s.execute(mq if visible is None else mq.where(visible)).scalars().first()
        if mobj is None:
            raise not_found(marker)
        q = q.where(after_marker(order, mobj))
    q = q.order_by(*[term for c, asc in order for term in _order_terms(c, asc)])
    if limit is not None:
        q = q.limit(limit)
    if load is not None:
        return load(q)
    return s.execute(q).scalars().all()


def tag_filter(model, key, tags):
    """q -> q of a tag filter: ``key`` tags (all of them), tags-any (one
    of them), not-tags (not all), not-tags-any (none)."""
    T = models.Tag

    def apply(q):
        if not tags:
            return q
        if key in ("tags", "not-tags"):
            sub = (sa.select(T.resource_id).where(T.tag.in_(tags))
                   .group_by(T.resource_id)
                   .having(sa.func.count(sa.distinct(T.tag)) == len(set(tags))))
        else:
            sub = sa.select(T.resource_id).where(T.tag.in_(tags))
        cond = model.id.in_(sub)
        return q.where(cond if not key.startswith("not-") else sa.not_(cond))
    return apply


def changed_since(model, when):
    """q -> q of the rows updated at or after ``when`` (naive UTC)."""
    return lambda q: q.where(model.updated_at >= when)


def column_filter(col, values):
    """The rows whose column is one of ``values`` (None: NULL)."""
    non_null = [v for v in values if v is not None]
    terms = []
    if non_null:
        terms.append(col.in_(non_null))
    if len(non_null) != len(values):
        terms.append(col.is_(None))
    return sa.or_(*terms)


def flag_filter(clause, values):
    """A boolean attribute's filter, the attribute being ``clause``: true,
    false, or (both asked) every row."""
    want = {bool(v) for v in values}
    if want == {True}:
        return clause
    if want == {False}:
        return sa.not_(clause)
    return sa.true()


def child_filter(parent_id, child_fk, column):
    """A filter clause (see ExtensionPoints.filter_hooks) for an attribute
    kept in a child table: the parents with a child row whose ``column``
    is one of the filter's values."""
    return lambda values: parent_id.in_(sa.select(child_fk).where(column.in_(values)))


def _nullable(col) -> bool:
    return bool(getattr(col.expression, "nullable", False))


def _order_terms(col, asc):
    """ORDER BY terms of one sort key: NULL below every value on every
    backend (first ascending, last descending; PostgreSQL's own order is
    the other way, MariaDB has no NULLS FIRST), so that after_marker and
    page_reverse agree with the order."""
    terms = []
    if _nullable(col):
        is_value = sa.case((col.is_(None), 0), else_=1)
        terms.append(is_value.asc() if asc else is_value.desc())
    terms.append(col.asc() if asc else col.desc())
    return terms


def after_marker(order, mobj):
    """Rows strictly after the marker row in the given ordering (NULL
    below every value, as _order_terms sorts)."""
    clauses = []
    for i, (col, asc) in enumerate(order):
        eqs = [c.is_(None) if (v := getattr(mobj, c.key)) is None else c == v
               for c, _ in order[:i]]
        val = getattr(mobj, col.key)
        if val is None:
            if not asc:
                continue  # (nothing comes after NULL going down)
            cmp = col.is_not(None)
        elif asc:
            cmp = col > val
        else:
            cmp = sa.or_(col < val, col.is_(None)) if _nullable(col) else col < val
        clauses.append(sa.and_(*eqs, cmp))
    return sa.or_(*clauses)
