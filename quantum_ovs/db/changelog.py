"""The change log: one ``changes`` row per write that agents must learn of.

Storage code records a change inside the write's transaction with
``record``; db/session.py notifies the listeners after the commit (the
NOTIFY flag set here).  ``bump`` moves a row's revision_number and
updated_at forward, as every API write does.
"""

import json

import sqlalchemy as sa

from quantum_ovs.db import models
from quantum_ovs.model import member_address
from quantum_ovs.db.session import AT_COMMIT, NOTIFY
from quantum_ovs.timeutils import utcnow


# What no agent's view holds: an update of nothing else is no change for
# agents (their hosts are not woken; the revision still moves).
COSMETIC = frozenset({"name", "description"})


def seen_by_agents(a) -> bool:
    """Does an update of the attributes ``a`` change what agents see?"""
    return not set(a) <= COSMETIC


def port_membership(port):
    """(the port's security group ids, its addresses: fixed IPs and
    allowed address pairs, as model.member_address spells them), what its
    groups' membership depends on."""
    return ({b.security_group_id for b in port.security_group_bindings or ()},
            {a.ip_address for a in port.fixed_ips or ()} |  # (stored canonical)
            {member_address(p.ip_address, p.mac_address)
             for p in port.allowed_address_pairs or ()})


def record(session, resource, obj, op, network_id=None, host=None, before=None,
           members=True, detail=None):
    """A change row for ``obj``.  For a port, also one membership row
    per security group it is in (or, given ``before`` = (its groups,
    its addresses) before this write, was in) naming the addresses
    involved, unless ``members`` is false or (for an update) neither
    its groups nor its addresses changed.  ``detail``: the row's detail
    (a security group's: the groups its rules named before the change)."""
    _keep(session, _rows(resource, obj, op, network_id, host, before, members, detail))


def record_all(session, changes):
    """``record`` of many writes (a bulk create), ``changes`` the
    (resource, obj, op, network_id) of each."""
    _keep(session, [row for args in changes for row in _rows(*args)])


# The rows a write transaction records wait in session.info and are
# inserted last before its commit (session.AT_COMMIT), in the order they
# were recorded, at once (one executemany: their sequence numbers are not
# read back).  A sequence number is taken at the insert, the order the
# change feed reads in; taken earlier, a write waiting for a lock (a
# quota's) after it let later numbers commit first, and its own came so
# late that a feed had given it up (review 19).
_PENDING = "qovs_change_rows"


def _keep(session, rows):
    if not rows:
        return
    session.info[NOTIFY] = True
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        session.info.setdefault(AT_COMMIT, []).append(_insert)
    pending.extend(rows)


def _insert(session):
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.flush()  # (the write's own rows first: their failure takes no number)
        session.connection().execute(sa.insert(models.Change.__table__), rows)


def _rows(resource, obj, op, network_id=None, host=None, before=None, members=True,
          detail=None):
    """The column values of record's rows, each with the same keys."""
    if host is None and resource == "port":
        binding = getattr(obj, "binding", None)
        host = binding.host if binding is not None and binding.host else None
    rows = [{"resource": resource, "resource_id": obj.id, "op": op, "network_id": network_id,
             "host": host, "detail": detail,
             "revision_number": getattr(obj, "revision_number", 0)}]
    if resource != "port" or not members:
        return rows
    # Hosts whose rules name the port's groups as remote groups must
    # learn of its addresses.
    groups, addresses = port_membership(obj)
    if before is not None:
        if op == "update" and before == (groups, addresses):
            return rows
        groups, addresses = groups | before[0], addresses | before[1]
    detail = json.dumps(sorted(addresses))
    for gid in sorted(groups):
        rows.append({"resource": "sg_member", "resource_id": gid, "op": op, "network_id": None,
                     "host": host, "detail": detail, "revision_number": 0})
    return rows


def bump(obj):
    """The next revision of ``obj``: revision_number + 1, updated_at now."""
    if hasattr(obj, "revision_number"):
        obj.revision_number = (obj.revision_number or 0) + 1
    if hasattr(obj, "updated_at"):
        obj.updated_at = utcnow()
