"""one tunnel id space for VXLAN and GRE

A tunnel network's id now takes a segment_allocations row of each tunnel
type (quantum_ovs.extensions.provider): the rows of networks made before
get their twin, unless the other type's network already holds that id
(two networks that already share a key stay as they are; their flows are
held on the hosts where they conflict, as before).

Revision ID: 0018_tunnel_id_space
Revises: 0017_credential_gateway
Create Date: 2026-12-06 12:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_tunnel_id_space'
down_revision = '0017_credential_gateway'
branch_labels = None
depends_on = None

TUNNEL_TYPES = ('vxlan', 'gre')


def _table():
    return sa.table('segment_allocations', sa.column('network_type', sa.String),
                    sa.column('physical_network', sa.String),
                    sa.column('segmentation_id', sa.BigInteger),
                    sa.column('network_id', sa.String))


def upgrade():
    a = _table()
    twin = a.alias('twin')
    for have, missing in (TUNNEL_TYPES, tuple(reversed(TUNNEL_TYPES))):
        lonely = sa.select(sa.literal(missing), a.c.physical_network, a.c.segmentation_id,
                           a.c.network_id).where(
            a.c.network_type == have, a.c.physical_network == '',
            ~sa.exists().where(twin.c.network_type == missing,
                               twin.c.physical_network == '',
                               twin.c.segmentation_id == a.c.segmentation_id))
        op.execute(a.insert().from_select(
            ['network_type', 'physical_network', 'segmentation_id', 'network_id'], lonely))


def downgrade():
    # The twins: rows of a network's own tunnel id, of the other type
    # (a gateway's redirect key keeps its two rows, as before).
    a = _table()
    seg = sa.table('network_segments', sa.column('network_id', sa.String),
                   sa.column('network_type', sa.String),
                   sa.column('segmentation_id', sa.BigInteger))
    op.execute(a.delete().where(
        a.c.network_type.in_(TUNNEL_TYPES), a.c.physical_network == '',
        sa.exists().where(seg.c.network_id == a.c.network_id,
                          seg.c.segmentation_id == a.c.segmentation_id,
                          seg.c.network_type.in_(TUNNEL_TYPES),
                          seg.c.network_type != a.c.network_type)))
