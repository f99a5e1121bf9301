"""RBAC policies whose target has blanks around it or control characters

The API refuses such a target_tenant since 40b452b (a project id has
neither).  Before that, a project member could make one, and on MariaDB
(PAD SPACE collations) "* " compared equal to the wildcard: every project
got the network, security group, pool or scope, although the policy keeps
the wildcard to administrators.  On the other backends such a row matched
no project.  The rows made before are deleted: none of them was a grant the
policy allows.  A port another project made through one stays, as after
an administrator's forced delete of a policy; its network is no longer
visible to that project.

Each deleted row is logged (id, object, target) at WARNING.  Downgrade
cannot bring them back and does nothing.

Revision ID: 0019_rbac_blank_targets
Revises: 0018_tunnel_id_space
Create Date: 2026-12-07 10:20:00
"""
import logging

from alembic import op
import sqlalchemy as sa


revision = '0019_rbac_blank_targets'
down_revision = '0018_tunnel_id_space'
branch_labels = None
depends_on = None

LOG = logging.getLogger(__name__)


def malformed(target):
    """True for a target the API now refuses (api/definitions/rbac.py)."""
    return target != target.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)


def upgrade():
    r = sa.table('rbac_policies', sa.column('id', sa.String), sa.column('object_type', sa.String),
                 sa.column('object_id', sa.String), sa.column('action', sa.String),
                 sa.column('target_tenant', sa.String))
    conn = op.get_bind()
    # Compared in Python: MariaDB's PAD SPACE makes 'x ' = TRIM('x ') true in SQL.
    bad = [row for row in conn.execute(sa.select(r.c.id, r.c.object_type, r.c.object_id,
                                                 r.c.action, r.c.target_tenant))
           if malformed(row.target_tenant)]
    for row in bad:
        LOG.warning("deleting RBAC policy %s (%s %s %s to %r): a target with blanks around it "
                    "or control characters", row.id, row.object_type, row.object_id, row.action,
                    row.target_tenant)
    ids = [row.id for row in bad]
    for i in range(0, len(ids), 500):
        op.execute(r.delete().where(r.c.id.in_(ids[i:i + 500])))


def downgrade():
    pass
