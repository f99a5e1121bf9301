"""Per-host agent credentials: issue, list, revoke, and resolve a token.

A credential lets one hypervisor's agent act as its host and as nothing
else (the agent API checks the host of every request against it).  The
token is 256 random bits shown once when it is issued; the database keeps
only its SHA-256 digest (a slow password hash buys nothing against a
secret this long, and a fast one keeps the per-request lookup to one
indexed query).  Revoking sets ``revoked_at``: the next request with that
token is refused by every server process, since nothing caches the answer.
A credential issued with ``gateway`` lets its agent register as a gateway
host too (the operator's grant: a gateway host sees the networks of every
router it serves); revoking the last live one of a host takes the role
away in the same transaction (db.gateways.drop_role).
"""

import hashlib
import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs.db import gateways, models
from quantum_ovs.timeutils import agent_time, utcnow

TOKEN_BYTES = 32
MAX_LENGTH = 255  # of a host name and of a description (their columns)


def digest(token):
    """The stored form of a token (hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def to_dict(c):
    return {"id": c.id, "host": c.host, "description": c.description,
            "gateway": bool(c.gateway), "created_at": agent_time(c.created_at),
            "revoked_at": agent_time(c.revoked_at)}


def check_new(host, description=""):
    """ValueError, saying why, when a credential for ``host`` cannot work or
    cannot be stored: a host name an agent can never have (one with a ``/``
    cannot poll -- its path /agent-api/v1/hosts/a/b/state is not the
    API's --, one with blanks around it cannot be an agent's [agent] host,
    oslo.config strips values, nor can one with control characters), a
    description longer than its column (PostgreSQL and MySQL refuse the
    row; SQLite would store it)."""
    if not isinstance(host, str) or not 0 < len(host) <= MAX_LENGTH:
        raise ValueError(f"the host name must be 1 to {MAX_LENGTH} characters")
    if "/" in host or host != host.strip() or not host.isprintable():
        raise ValueError(f"{host!r} cannot be an agent's host name (no '/', no blanks "
                         f"around it, no control characters)")
    if description is not None and len(description) > MAX_LENGTH:
        raise ValueError(f"the description must be at most {MAX_LENGTH} characters "
                         f"(not {len(description)})")


def create(db, host, description="", gateway=None):
    """Issue a credential for ``host`` (a gateway host's if ``gateway``;
    None: as the host's live credentials are, so a rotation keeps the
    role: a gateway host whose new credential lacked it would have its
    heartbeats refused and its routers fail over); returns (its dict, the
    token).  The token is not stored and cannot be shown again."""
    check_new(host, description)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    C = models.AgentCredential

    def txn(s):
        role = gateway
        if role is None:
            role = s.execute(sa.select(C.id).where(
                C.host == host, C.revoked_at.is_(None), C.gateway.is_(True))
                .limit(1)).first() is not None
        c = C(id=str(uuid.uuid4()), host=host, token_hash=digest(token),
              description=description or "", created_at=utcnow(), gateway=bool(role))
        s.add(c)
        s.flush()
        return to_dict(c)
    return db.write(txn), token


def list_credentials(db, host=None, include_revoked=False):
    C = models.AgentCredential
    q = sa.select(C).order_by(C.host, C.created_at, C.id)
    if host is not None:
        q = q.where(C.host == host)
    if not include_revoked:
        q = q.where(C.revoked_at.is_(None))
    with db.reader() as s:
        return [to_dict(c) for c in s.execute(q).scalars()]


def revoke(db, host=None, credential_id=None):
    """Revoke the live credentials of ``host``, or the one ``credential_id``
    (or both conditions); returns the dicts of those revoked."""
    if host is None and credential_id is None:
        raise ValueError("name a host or a credential id")
    C = models.AgentCredential

    def txn(s):
        q = sa.select(C).where(C.revoked_at.is_(None))
        if host is not None:
            q = q.where(C.host == host)
        if credential_id is not None:
            q = q.where(C.id == credential_id)
        rows = s.execute(q).scalars().all()
        now = utcnow()
        for c in rows:
            c.revoked_at = now
        s.flush()
        # A host left with no live credential carrying the gateway role
        # stops being a gateway host now, not when (if ever) its agent
        # registers again: it would go on reading every network behind its
        # routers with the plain credential it was rotated to.
        for h in sorted({c.host for c in rows if c.gateway}):
            gateways.drop_role(s, h)
        return [to_dict(c) for c in rows]
    return db.write(txn)


_C = models.AgentCredential
_G = orm.aliased(models.AgentCredential)
# When a gateway credential of the token's host was last revoked (None:
# never): what a server process that checked the host's role before must
# see change to check it again (AgentAPI._check_gateway_role).
_ROLE_REVOKED = sa.select(sa.func.max(_G.revoked_at)).where(
    _G.host == _C.host, _G.gateway.is_(True)).scalar_subquery()
_BY_HASH = sa.select(_C.id, _C.host, _C.gateway, _ROLE_REVOKED.label("role_revoked")).where(
    _C.token_hash == sa.bindparam("h"), _C.revoked_at.is_(None))
_BY_ID = sa.select(_C.host).where(_C.id == sa.bindparam("id"), _C.revoked_at.is_(None))


def host_of(db, token):
    """(credential id, host, gateway, when a gateway credential of the
    host was last revoked or None) of a live credential with this token,
    or None.
    One query on the unique token_hash index, on a bare connection (an ORM
    session costs three times as much); no cache: a revocation committed
    by any process is seen by the next request."""
    if not token:
        return None
    with db.engine.connect() as conn:
        row = conn.execute(_BY_HASH, {"h": digest(token)}).first()
    return None if row is None else (row.id, row.host, bool(row.gateway), row.role_revoked)


def host_of_id(db, credential_id):
    """The host of the live credential ``credential_id``, or None."""
    with db.engine.connect() as conn:
        return conn.execute(_BY_ID, {"id": credential_id}).scalar()
