"""securitygrouprules.protocol_number: the IP protocol number of each rule

Rules keep the protocol as the client wrote it (what the API shows); the
number is what the agents match, computed from quantum_ovs.constants.
Existing rules are filled in here; a stored protocol the table does not
know stops the upgrade (it would otherwise be read as "any protocol").

Revision ID: 0005_rule_protocol_number
Revises: 0004_agent_credentials
Create Date: 2026-12-04 14:10:00
"""
from alembic import op
import sqlalchemy as sa

from quantum_ovs import constants as const


revision = '0005_rule_protocol_number'
down_revision = '0004_agent_credentials'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('securitygrouprules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protocol_number', sa.Integer(), nullable=True))
    rules = sa.table('securitygrouprules', sa.column('id', sa.String),
                     sa.column('ethertype', sa.String), sa.column('protocol', sa.String),
                     sa.column('protocol_number', sa.Integer))
    conn = op.get_bind()
    for rid, ether, proto in conn.execute(
            sa.select(rules.c.id, rules.c.ethertype, rules.c.protocol)
            .where(rules.c.protocol.is_not(None))).all():
        try:
            num = const.ip_protocol_number(proto)
        except const.UnknownProtocol:
            raise RuntimeError(f"security group rule {rid} has protocol {proto!r}, which "
                               "is no IP protocol name or number: fix or delete it") from None
        if num == const.PROTO_NUM_ICMP and ether == const.IPv6:
            num = const.PROTO_NUM_IPV6_ICMP
        conn.execute(sa.update(rules).where(rules.c.id == rid).values(protocol_number=num))


def downgrade():
    with op.batch_alter_table('securitygrouprules', schema=None) as batch_op:
        batch_op.drop_column('protocol_number')
