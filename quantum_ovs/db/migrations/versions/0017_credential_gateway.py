"""agent credential gateway (the operator grants the gateway role)

agent_credentials.gateway: whether the host's agent may register as a
gateway host (serve routers' SNAT, see their networks).  False for every
new credential unless issued with ``quantum-ovs-agent-credential create
--gateway``; the live credentials of hosts registered as gateway hosts when
the migration runs keep the role (an upgrade stops no gateway).

Revision ID: 0017_credential_gateway
Revises: 0016_default_sg_rules
Create Date: 2026-12-06 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_credential_gateway'
down_revision = '0016_default_sg_rules'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('agent_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gateway', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    agents = sa.table('agents', sa.column('host', sa.String), sa.column('configurations',
                                                                        sa.String))
    creds = sa.table('agent_credentials', sa.column('host', sa.String),
                     sa.column('revoked_at', sa.DateTime), sa.column('gateway', sa.Boolean))
    gateway_hosts = sa.select(agents.c.host).where(
        agents.c.configurations.like('%"gateway": true%'))
    op.execute(creds.update().where(creds.c.revoked_at.is_(None),
                                    creds.c.host.in_(gateway_hosts)).values(gateway=True))


def downgrade():
    with op.batch_alter_table('agent_credentials', schema=None) as batch_op:
        batch_op.drop_column('gateway')
