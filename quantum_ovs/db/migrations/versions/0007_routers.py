"""routers, routerports, routerroutes: the L3 API (routers issue)

Routers with their external gateway (network, gateway port, SNAT); the ports of
each router with their type; the extra routes.

Revision ID: 0007_routers
Revises: 0006_port_inactive_bindings
Create Date: 2026-12-04 16:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_routers'
down_revision = '0006_port_inactive_bindings'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('routers',
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('gw_network_id', sa.String(length=36), nullable=True),
    sa.Column('gw_port_id', sa.String(length=36), nullable=True),
    sa.Column('enable_snat', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['gw_network_id'], ['networks.id'], ),
    sa.ForeignKeyConstraint(['gw_port_id'], ['ports.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routers_gw_network_id'), ['gw_network_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_routers_project_id'), ['project_id'],
                              unique=False)

    op.create_table('routerports',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('port_type', sa.String(length=255), nullable=False),
    sa.Column('order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', 'port_id'),
    sa.UniqueConstraint('port_id')
    )
    op.create_table('routerroutes',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('nexthop', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', 'destination', 'nexthop')
    )


def downgrade():
    op.drop_table('routerroutes')
    op.drop_table('routerports')
    op.drop_table('routers')
