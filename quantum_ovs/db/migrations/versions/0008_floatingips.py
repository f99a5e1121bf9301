"""floatingips, portforwardings, router_gateway_hosts, routers.redirect_key:
external connectivity (issue 14)

Revision ID: 0008_floatingips
Revises: 0007_routers
Create Date: 2026-12-04 19:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_floatingips'
down_revision = '0007_routers'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redirect_key', sa.BigInteger(), nullable=True))

    op.create_table('router_gateway_hosts',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', 'host')
    )
    with op.batch_alter_table('router_gateway_hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_router_gateway_hosts_host'), ['host'],
                              unique=False)

    op.create_table('floatingips',
    sa.Column('floating_ip_address', sa.String(length=64), nullable=False),
    sa.Column('floating_network_id', sa.String(length=36), nullable=False),
    sa.Column('floating_port_id', sa.String(length=36), nullable=False),
    sa.Column('fixed_port_id', sa.String(length=36), nullable=True),
    sa.Column('fixed_ip_address', sa.String(length=64), nullable=True),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['fixed_port_id'], ['ports.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['floating_network_id'], ['networks.id'], ),
    sa.ForeignKeyConstraint(['floating_port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('floating_network_id', 'fixed_port_id', 'fixed_ip_address',
                        name='uniq_floatingips0net0port0fixed_ip'),
    sa.UniqueConstraint('floating_port_id')
    )
    with op.batch_alter_table('floatingips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_floatingips_fixed_port_id'), ['fixed_port_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_floatingips_floating_network_id'),
                              ['floating_network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_floatingips_project_id'), ['project_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_floatingips_router_id'), ['router_id'],
                              unique=False)

    op.create_table('portforwardings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('floatingip_id', sa.String(length=36), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=False),
    sa.Column('internal_port_id', sa.String(length=36), nullable=False),
    sa.Column('internal_ip_address', sa.String(length=64), nullable=False),
    sa.Column('external_port_lo', sa.Integer(), nullable=False),
    sa.Column('external_port_hi', sa.Integer(), nullable=False),
    sa.Column('internal_port_lo', sa.Integer(), nullable=False),
    sa.Column('internal_port_hi', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['floatingip_id'], ['floatingips.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['internal_port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('portforwardings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portforwardings_floatingip_id'),
                              ['floatingip_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_portforwardings_internal_port_id'),
                              ['internal_port_id'], unique=False)


def downgrade():
    # Dropping a table drops its indexes everywhere; MySQL refuses to drop
    # first an index that a foreign key needs.
    op.drop_table('portforwardings')
    op.drop_table('floatingips')
    op.drop_table('router_gateway_hosts')
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.drop_column('redirect_key')
