"""subnet pools and address scopes (subnet_allocation, address-scope,
default-subnetpools, subnetpool-prefix-ops)

address_scopes, subnetpools and their prefixes; subnets.subnetpool_id
(NULL for the subnets that exist: they were given a cidr).

Revision ID: 0010_subnetpools
Revises: 0009_dns_extra_dhcp_opts
Create Date: 2026-12-04 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_subnetpools'
down_revision = '0009_dns_extra_dhcp_opts'
branch_labels = None
depends_on = None


def _standard():
    return [
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('revision_number', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
    ]


def upgrade():
    op.create_table('address_scopes',
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    *_standard(),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('address_scopes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_scopes_project_id'), ['project_id'],
                              unique=False)
    op.create_table('subnetpools',
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('default_quota', sa.BigInteger(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    *_standard(),
    sa.ForeignKeyConstraint(['address_scope_id'], ['address_scopes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_address_scope_id'),
                              ['address_scope_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'],
                              unique=False)
    op.create_table('subnetpoolprefixes',
    sa.Column('subnetpool_id', sa.String(length=36), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('first_key', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['subnetpool_id'], ['subnetpools.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnetpool_id', 'cidr')
    )
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subnetpool_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_subnets_subnetpool_id'), ['subnetpool_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnets_subnetpool_id'))
        batch_op.drop_column('subnetpool_id')
    op.drop_table('subnetpoolprefixes')
    # (A table's indexes go with it; MySQL refuses to drop an index a
    # foreign key needs, as ix_subnetpools_address_scope_id is.)
    op.drop_table('subnetpools')
    op.drop_table('address_scopes')
