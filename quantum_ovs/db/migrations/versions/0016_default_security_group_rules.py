"""default security group rules (security-groups-default-rules)

The templates of new security groups' rules, starting as Neutron's legacy
rules (egress anywhere for every group; ingress from the group itself for
a project's default group).

Revision ID: 0016_default_sg_rules
Revises: 0015_port_trusted
Create Date: 2026-12-06 04:00:00
"""
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0016_default_sg_rules'
down_revision = '0015_port_trusted'
branch_labels = None
depends_on = None

# (direction, ethertype, remote_group_id, used_in_default_sg,
# used_in_non_default_sg, description): written here, not imported, so
# the migration stays what it was when the schema moves on
LEGACY = (
    ("egress", "IPv4", None, True, True, "Legacy default SG rule for egress traffic"),
    ("egress", "IPv6", None, True, True, "Legacy default SG rule for egress traffic"),
    ("ingress", "IPv4", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
    ("ingress", "IPv6", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
)


def upgrade():
    table = op.create_table(
        'default_security_group_rules',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('direction', sa.String(length=16), nullable=False),
        sa.Column('ethertype', sa.String(length=16), nullable=False),
        sa.Column('protocol', sa.String(length=40), nullable=True),
        sa.Column('port_range_min', sa.Integer(), nullable=True),
        sa.Column('port_range_max', sa.Integer(), nullable=True),
        sa.Column('remote_ip_prefix', sa.String(length=255), nullable=True),
        sa.Column('remote_group_id', sa.String(length=36), nullable=True),
        sa.Column('remote_address_group_id', sa.String(length=36), nullable=True),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('used_in_default_sg', sa.Boolean(), nullable=False),
        sa.Column('used_in_non_default_sg', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['remote_address_group_id'], ['address_groups.id'], ),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('default_security_group_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_default_security_group_rules_remote_address_group_id'),
                              ['remote_address_group_id'], unique=False)
    op.bulk_insert(table, [
        {"id": str(uuid.uuid4()), "direction": d, "ethertype": e, "protocol": None,
         "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
         "remote_group_id": r, "remote_address_group_id": None, "description": desc,
         "used_in_default_sg": in_default, "used_in_non_default_sg": in_other}
        for d, e, r, in_default, in_other, desc in LEGACY])


def downgrade():
    op.drop_table('default_security_group_rules')  # (its index with it)
