"""agent_credentials: per-host agent tokens (stored as SHA-256 digests)

Revision ID: 0004_agent_credentials
Revises: 0003_change_detail
Create Date: 2026-12-04 13:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_agent_credentials'
down_revision = '0003_change_detail'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('agent_credentials',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash', name='uniq_agent_credentials0token_hash')
    )
    with op.batch_alter_table('agent_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_credentials_host'), ['host'], unique=False)


def downgrade():
    op.drop_table('agent_credentials')
