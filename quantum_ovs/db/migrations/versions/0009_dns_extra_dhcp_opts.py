"""dns_name / dns_domain columns and extradhcpopts (dns-integration,
dns-domain-ports, extra_dhcp_opt)

ports.dns_name, ports.dns_domain and networks.dns_domain ("" when unset,
so existing rows need no rewrite); one extradhcpopts row per option of a
port, keyed by (port, name, IP version).

Revision ID: 0009_dns_extra_dhcp_opts
Revises: 0008_floatingips
Create Date: 2026-12-04 19:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_dns_extra_dhcp_opts'
down_revision = '0008_floatingips'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dns_domain', sa.String(length=255), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dns_name', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('dns_domain', sa.String(length=255), nullable=False,
                                      server_default=''))
    op.create_table('extradhcpopts',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('opt_name', sa.String(length=64), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('opt_value', sa.String(length=255), nullable=False),
    sa.Column('order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['ports.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', 'opt_name', 'ip_version')
    )


def downgrade():
    op.drop_table('extradhcpopts')
    with op.batch_alter_table('ports', schema=None) as batch_op:
        batch_op.drop_column('dns_domain')
        batch_op.drop_column('dns_name')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_column('dns_domain')
