"""changes.detail: the addresses a security-group membership change involves

Revision ID: 0003_change_detail
Revises: 0002_extensions
Create Date: 2026-11-24 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_change_detail'
down_revision = '0002_extensions'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_column('detail')
