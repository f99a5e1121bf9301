"""auto-allocated topologies (auto-allocated-topology)

external_networks.is_default (the deployment's default external network)
and auto_allocated_topologies (a project's network and router).

Revision ID: 0013_auto_allocated_topology
Revises: 0012_address_groups
Create Date: 2026-12-06 00:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_auto_allocated_topology'
down_revision = '0012_address_groups'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('external_networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_default', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table('auto_allocated_topologies',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('project_id'),
    sa.UniqueConstraint('network_id')
    )


def downgrade():
    op.drop_table('auto_allocated_topologies')
    with op.batch_alter_table('external_networks', schema=None) as batch_op:
        batch_op.drop_column('is_default')
