"""what earlier migrations left unset for rows made before them

1. Routers whose gateway was set before 0008_floatingips (redirect_key
   came NULL and only a new gateway gets one; setting the same gateway
   again changes nothing) get their SNAT redirect key now: without one
   their host views say redirect_key 0 and no host but the gateway host
   sends their instances' traffic out.
2. Networks made at 0001_initial (0002_extensions gave them no segment:
   provider:network_type null, treated as ``local``) get a tenant VXLAN
   segment, as every network made since gets one with the default
   ``[ml2] tenant_network_types``.  At 0001 there was no data plane yet
   (no agent API), so no host relies on them being local; a ``local``
   segment would keep them unconnected between hypervisors.  Their MTU is
   lowered to what a VXLAN network gets by default (1450) when above it.
3. Subnet pools and address scopes shared before 0011_rbac get the
   wildcard access_as_shared policy (owned by their project) that
   ``shared`` stands for at head, as Neutron's e88badaa9591 and
   e4e236b0e1ff made them; objects that already have it are skipped.

Keys and segmentation ids (1 and 2) are taken from one tunnel id space:
the lowest ids not held by any ``segment_allocations`` row of vxlan or gre
(every network's tunnel id and every redirect key is reserved there for
both types), reserved for both types on the router's gateway network (on
the network), as quantum_ovs.db.gateways.allocate_redirect_key and the
provider extension reserve them.  A migration does not read the server's
configuration ([ml2_type_vxlan] vni_ranges); it searches from 1, as
allocate_redirect_key's fallback range (1:10000, the default vni_ranges)
does, and on past 10000 when that is full (up to 2**24 - 1, the largest
VNI).  An id outside configured ranges is still reserved, so no network
or gateway can take it later.

Downgrade leaves the keys, segments and policies (they cannot be told
from ones made after the upgrade, and the older code uses them as its
own).

Revision ID: 0020_upgrade_backfills
Revises: 0019_rbac_blank_targets
Create Date: 2026-12-08 09:30:00
"""
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0020_upgrade_backfills'
down_revision = '0019_rbac_blank_targets'
branch_labels = None
depends_on = None

TUNNEL_TYPES = ('vxlan', 'gre')
MAX_KEY = 2 ** 24 - 1  # a redirect key and a VXLAN network's id are VNIs
VXLAN_MTU = 1450  # the default global_physnet_mtu (1500) less VXLAN's overhead
SHAREABLE = (('subnetpools', 'subnetpool'), ('address_scopes', 'address_scope'))

allocations = sa.table('segment_allocations', sa.column('network_type', sa.String),
                       sa.column('physical_network', sa.String),
                       sa.column('segmentation_id', sa.BigInteger),
                       sa.column('network_id', sa.String))


class _Keys:
    """The free tunnel ids, lowest first."""

    def __init__(self, conn):
        a = allocations
        self.used = set(conn.execute(sa.select(a.c.segmentation_id).where(
            a.c.network_type.in_(TUNNEL_TYPES), a.c.physical_network == '')).scalars())
        self.next = 1

    def take(self):
        while self.next in self.used:
            self.next += 1
        if self.next > MAX_KEY:
            raise RuntimeError("no free tunnel id left for the upgrade's backfill")
        key = self.next
        self.used.add(key)
        return key


def _reserve(key, network_id):
    op.bulk_insert(allocations, [dict(network_type=t, physical_network='', segmentation_id=key,
                                      network_id=network_id) for t in TUNNEL_TYPES])


def _segments(conn, keys):
    nets = sa.table('networks', sa.column('id', sa.String), sa.column('mtu', sa.Integer))
    seg = sa.table('network_segments', sa.column('network_id', sa.String),
                   sa.column('network_type', sa.String),
                   sa.column('physical_network', sa.String),
                   sa.column('segmentation_id', sa.BigInteger))
    bare = conn.execute(sa.select(nets.c.id).where(
        ~sa.exists().where(seg.c.network_id == nets.c.id)).order_by(nets.c.id)).scalars().all()
    for net_id in bare:
        key = keys.take()
        op.execute(seg.insert().values(network_id=net_id, network_type='vxlan',
                                       physical_network=None, segmentation_id=key))
        _reserve(key, net_id)
    for i in range(0, len(bare), 500):
        op.execute(nets.update().where(nets.c.id.in_(bare[i:i + 500]),
                                       nets.c.mtu > VXLAN_MTU).values(mtu=VXLAN_MTU))


def _redirect_keys(conn, keys):
    routers = sa.table('routers', sa.column('id', sa.String),
                       sa.column('gw_network_id', sa.String),
                       sa.column('gw_port_id', sa.String),
                       sa.column('redirect_key', sa.BigInteger))
    rows = conn.execute(sa.select(routers.c.id, routers.c.gw_network_id).where(
        routers.c.gw_port_id.is_not(None), routers.c.gw_network_id.is_not(None),
        routers.c.redirect_key.is_(None)).order_by(routers.c.id)).all()
    for router_id, net_id in rows:
        key = keys.take()
        _reserve(key, net_id)
        op.execute(routers.update().where(routers.c.id == router_id).values(redirect_key=key))


def _wildcard_policies(conn):
    r = sa.table('rbac_policies', sa.column('id', sa.String), sa.column('project_id', sa.String),
                 sa.column('object_type', sa.String), sa.column('object_id', sa.String),
                 sa.column('action', sa.String), sa.column('target_tenant', sa.String))
    rows = []
    for table, otype in SHAREABLE:
        t = sa.table(table, sa.column('id', sa.String), sa.column('project_id', sa.String),
                     sa.column('shared', sa.Boolean))
        have = sa.exists().where(r.c.object_type == otype, r.c.object_id == t.c.id,
                                 r.c.action == 'access_as_shared', r.c.target_tenant == '*')
        for oid, project in conn.execute(sa.select(t.c.id, t.c.project_id).where(
                t.c.shared.is_(True), ~have).order_by(t.c.id)):
            rows.append(dict(id=str(uuid.uuid4()), project_id=project, object_type=otype,
                             object_id=oid, action='access_as_shared', target_tenant='*'))
    if rows:
        op.bulk_insert(r, rows)


def upgrade():
    conn = op.get_bind()
    keys = _Keys(conn)
    _segments(conn, keys)
    _redirect_keys(conn, keys)
    _wildcard_policies(conn)


def downgrade():
    pass
