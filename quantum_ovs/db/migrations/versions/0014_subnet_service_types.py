"""subnet service types (subnet-service-types)

subnet_service_types: the device owners whose ports take addresses from a
subnet.

Revision ID: 0014_subnet_service_types
Revises: 0013_auto_allocated_topology
Create Date: 2026-12-06 00:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_subnet_service_types'
down_revision = '0013_auto_allocated_topology'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subnet_service_types',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('service_type', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['subnet_id'], ['subnets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnet_id', 'service_type')
    )


def downgrade():
    op.drop_table('subnet_service_types')
