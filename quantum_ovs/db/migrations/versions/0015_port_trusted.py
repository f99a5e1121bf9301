"""port trusted (port-trusted-vif)

port_bindings.trusted: null until an admin says.

Revision ID: 0015_port_trusted
Revises: 0014_subnet_service_types
Create Date: 2026-12-06 01:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_port_trusted'
down_revision = '0014_subnet_service_types'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('port_bindings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table('port_bindings', schema=None) as batch_op:
        batch_op.drop_column('trusted')
