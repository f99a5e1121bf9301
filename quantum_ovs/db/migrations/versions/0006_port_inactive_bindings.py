"""port_inactive_bindings: a port's bindings other than its active one

The active binding stays in port_bindings (one row per port, what every
host view and listing reads); the bindings API (binding-extended) keeps
the others here, one per (port, host).  Nothing existing moves.

Revision ID: 0006_port_inactive_bindings
Revises: 0005_rule_protocol_number
Create Date: 2026-12-04 14:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_port_inactive_bindings'
down_revision = '0005_rule_protocol_number'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('port_inactive_bindings',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('vnic_type', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.String(length=4095), nullable=False),
    sa.Column('vif_type', sa.String(length=64), nullable=False),
    sa.Column('vif_details', sa.String(length=4095), nullable=False),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('ofport', sa.Integer(), nullable=True),
    sa.Column('flows_installed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'host')
    )
    with op.batch_alter_table('port_inactive_bindings', schema=None) as batch_op:
        batch_op.create_index('ix_port_inactive_bindings_host', ['host'], unique=False)


def downgrade():
    op.drop_table('port_inactive_bindings')
