"""rbac_policies (rbac-policies, rbac-security-groups)

One row per policy of any object type.  Existing shared networks get a
wildcard access_as_shared policy and existing external networks a
wildcard access_as_external one, owned by the network's project, as
Neutron makes them for ``shared`` and ``router:external``.

Revision ID: 0011_rbac
Revises: 0010_subnetpools
Create Date: 2026-12-04 22:40:00
"""
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0011_rbac'
down_revision = '0010_subnetpools'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table('rbac_policies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_tenant', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_type', 'object_id', 'action', 'target_tenant',
                        name='uniq_rbac_policies0object0action0target')
    )
    with op.batch_alter_table('rbac_policies', schema=None) as batch_op:
        batch_op.create_index('ix_rbac_policies_grant',
                              ['object_type', 'action', 'target_tenant', 'object_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_rbac_policies_object_id'), ['object_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_rbac_policies_project_id'), ['project_id'],
                              unique=False)
    conn = op.get_bind()
    nets = sa.table('networks', sa.column('id'), sa.column('project_id'),
                    sa.column('shared'))
    ext = sa.table('external_networks', sa.column('network_id'))
    rows = []
    for net_id, project in conn.execute(sa.select(nets.c.id, nets.c.project_id)
                                        .where(nets.c.shared.is_(True))):
        rows.append(dict(id=str(uuid.uuid4()), project_id=project, object_type='network',
                         object_id=net_id, action='access_as_shared', target_tenant='*'))
    for net_id, project in conn.execute(
            sa.select(nets.c.id, nets.c.project_id).join(ext, ext.c.network_id == nets.c.id)):
        rows.append(dict(id=str(uuid.uuid4()), project_id=project, object_type='network',
                         object_id=net_id, action='access_as_external', target_tenant='*'))
    if rows:
        op.bulk_insert(table, rows)


def downgrade():
    with op.batch_alter_table('rbac_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rbac_policies_project_id'))
        batch_op.drop_index(batch_op.f('ix_rbac_policies_object_id'))
        batch_op.drop_index('ix_rbac_policies_grant')
    op.drop_table('rbac_policies')
