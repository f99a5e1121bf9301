"""Provider networks (provider:*), tenant segment allocation, net-mtu,
external-net.

Tenant networks get a segment of the first type in
``[ml2] tenant_network_types`` that has a free one.  A segment in use is
one row of segment_allocations, whose primary key makes double use
impossible under any concurrency; a lost race is retried by the
transaction.  VXLAN and GRE share one id space (a tunnel id takes a row of
each type): a host tells a tunnelled packet's network by its key alone on
the tunnel ports it shares (Neutron keeps two pools; a GRE key equal to a
VNI made the two networks' flows conflict on gateway hosts).
"""

import random

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api import definitions
from quantum_ovs.api.definitions.provider import (  # noqa: F401 (the contract's names)
    NETWORK_TYPE,
    PHYSNET,
    SEGID,
    FlatNetworkInUse,
    NoNetworkAvailable,
    TunnelIdInUse,
    VlanIdInUse,
)
from quantum_ovs.db import models
from quantum_ovs.db.gateways import TUNNEL_TYPES
from quantum_ovs.db.query import child_filter, flag_filter

DEFINITION = definitions.provider

OPTS = [
    ("ml2", [
        cfg.ListOpt("type_drivers", default=["local", "flat", "vlan", "vxlan", "gre"],
                    help="Network types that may be created."),
        cfg.ListOpt("tenant_network_types", default=["vxlan"],
                    help="Types given to tenant networks, first with a free "
                         "segment wins."),
    ]),
    ("ml2_type_vxlan", [
        cfg.ListOpt("vni_ranges", default=["1:10000"],
                    help="<first>:<last> VXLAN VNI ranges for tenant networks."),
    ]),
    ("ml2_type_gre", [
        cfg.ListOpt("tunnel_id_ranges", default=["1:10000"],
                    help="<first>:<last> GRE key ranges for tenant networks."),
    ]),
    ("ml2_type_vlan", [
        cfg.ListOpt("network_vlan_ranges", default=[],
                    help="<physnet>[:<first>:<last>] VLAN ranges; a physnet "
                         "without a range is for provider networks only."),
    ]),
    ("ml2_type_flat", [
        cfg.ListOpt("flat_networks", default=["*"],
                    help="Physical networks that may carry flat networks; * "
                         "for any."),
    ]),
]

MAX_SEGID = {"vlan": 4094, "vxlan": 2 ** 24 - 1, "gre": 2 ** 32 - 1}
# Encapsulation overhead over IPv4: outer IP (20) + UDP/VXLAN (30) or GRE (22).
OVERHEAD = {"vxlan": 50, "gre": 42}


def parse_ranges(entries, with_physnet=False):
    """'1:100' -> [(1, 100)]; with physnets 'p:1:100' / 'p' -> {p: [(1, 100)]}."""
    if not with_physnet:
        out = []
        for e in entries:
            lo, _, hi = e.partition(":")
            out.append((int(lo), int(hi)))
        return out
    out = {}
    for e in entries:
        parts = e.split(":")
        out.setdefault(parts[0], [])
        if len(parts) == 3:
            out[parts[0]].append((int(parts[1]), int(parts[2])))
    return out


class Segments:
    def __init__(self, conf):
        self.conf = conf
        self.vxlan = parse_ranges(conf.ml2_type_vxlan.vni_ranges)
        self.gre = parse_ranges(conf.ml2_type_gre.tunnel_id_ranges)
        self.vlan = parse_ranges(conf.ml2_type_vlan.network_vlan_ranges, with_physnet=True)
        self.flat = conf.ml2_type_flat.flat_networks

    # ---------------------------------------------------------- validation
    def validate_provider(self, a):
        ntype, physnet, segid = a.get(NETWORK_TYPE), a.get(PHYSNET), a.get(SEGID)
        if ntype is None:
            if physnet is not None or segid is not None:
                raise exceptions.InvalidInput(
                    error_message="provider:network_type required")
            return None
        if ntype not in self.conf.ml2.type_drivers:
            raise exceptions.InvalidInput(
                error_message=f"network_type value '{ntype}' not supported")
        if ntype == "local":
            if physnet or segid is not None:
                raise exceptions.InvalidInput(
                    error_message="provider:physical_network and segmentation_id are "
                                  "not allowed for local networks")
        elif ntype == "flat":
            if not physnet:
                raise exceptions.InvalidInput(
                    error_message="physical_network required for flat provider network")
            if segid is not None:
                raise exceptions.InvalidInput(
                    error_message="segmentation_id specified for flat network")
            if "*" not in self.flat and physnet not in self.flat:
                raise exceptions.InvalidInput(
                    error_message=f"physical_network '{physnet}' unknown for flat "
                                  "provider network")
        elif ntype == "vlan":
            if not physnet:
                raise exceptions.InvalidInput(
                    error_message="physical_network required for VLAN provider network")
            if physnet not in self.vlan:
                raise exceptions.InvalidInput(
                    error_message=f"physical_network '{physnet}' unknown for VLAN "
                                  "provider network")
        else:
            if physnet:
                raise exceptions.InvalidInput(
                    error_message=f"provider:physical_network specified for {ntype} "
                                  "network")
            # A tunnel has no physnet (Neutron's TunnelTypeDriver reserves
            # its segment with None): a "" given is not stored and shown.
            physnet = None
        if segid is not None and not 1 <= segid <= MAX_SEGID.get(ntype, 0):
            raise exceptions.InvalidInput(
                error_message=f"segmentation_id out of range (1 through "
                              f"{MAX_SEGID.get(ntype, 0)})")
        return ntype, physnet, segid

    # ---------------------------------------------------------- allocation
    @staticmethod
    def _reserve(s, net_id, ntype, physnet, segid, chosen_by_us=False):
        A = models.SegmentAllocation
        key = (ntype, physnet or "", segid if segid is not None else 0)
        keys = [(t, "", key[2]) for t in TUNNEL_TYPES] if ntype in TUNNEL_TYPES else [key]
        if any(s.get(A, k) is not None for k in keys):
            if chosen_by_us:
                # A concurrent transaction took the segment we picked as
                # free: pick again.
                raise exceptions.RetryRequest()
            if ntype == "vlan":
                raise VlanIdInUse(vlan_id=segid, physical_network=physnet)
            if ntype == "flat":
                raise FlatNetworkInUse(physical_network=physnet)
            raise TunnelIdInUse(tunnel_id=segid)
        for k in keys:
            s.add(A(network_type=k[0], physical_network=k[1], segmentation_id=k[2],
                    network_id=net_id))

    @staticmethod
    def _lowest_free(s, ntype, physnet, ranges, spread=False):
        """A free id of ``ranges``: the lowest one, or with ``spread`` the
        first free one from a random point of a random range (wrapping
        round): concurrent creates then rarely pick the same id and lose
        their transaction to each other, as they all would on the lowest
        (eight clients took more than the retries allow on a busy machine)."""
        order = list(ranges)
        if spread and order:
            k = random.randrange(len(order))
            order = order[k:] + order[:k]
        for i, (lo, hi) in enumerate(order):
            starts = [random.randint(lo, hi), lo] if spread and i == 0 else [lo]
            for start in starts:
                found = Segments._free_from(s, ntype, physnet, start, hi)
                if found is not None:
                    return found
        return None

    @staticmethod
    def _free_from(s, ntype, physnet, start, hi):
        """The lowest free id in start..hi, or None (a tunnel id: free in
        both tunnel types; an id two networks already shared before they
        had one space leaves a row of one type once one of them goes)."""
        A = models.SegmentAllocation
        b = sa.orm.aliased(A)
        types = TUNNEL_TYPES if ntype in TUNNEL_TYPES else (ntype,)
        used = s.execute(sa.select(A.segmentation_id).where(
            A.network_type.in_(types), A.physical_network == physnet,
            A.segmentation_id == start)).first()
        if used is None:
            return start
        # The smallest used id from start on whose successor is free.
        gap = s.execute(
            sa.select(sa.func.min(A.segmentation_id)).select_from(A).outerjoin(
                b, sa.and_(b.network_type.in_(types),
                           b.physical_network == A.physical_network,
                           b.segmentation_id == A.segmentation_id + 1))
            .where(A.network_type.in_(types), A.physical_network == physnet,
                   A.segmentation_id >= start, A.segmentation_id < hi,
                   b.segmentation_id.is_(None))).scalar()
        return None if gap is None else gap + 1

    def allocate_tenant(self, s, net_id):
        for ntype in self.conf.ml2.tenant_network_types:
            if ntype == "local":
                return "local", None, None
            if ntype in ("vxlan", "gre"):
                segid = self._lowest_free(s, ntype, "", getattr(self, ntype), spread=True)
                if segid is not None:
                    self._reserve(s, net_id, ntype, None, segid, chosen_by_us=True)
                    return ntype, None, segid
            elif ntype == "vlan":
                for physnet, ranges in self.vlan.items():
                    segid = self._lowest_free(s, "vlan", physnet, ranges, spread=True)
                    if segid is not None:
                        self._reserve(s, net_id, "vlan", physnet, segid, chosen_by_us=True)
                        return "vlan", physnet, segid
        raise NoNetworkAvailable()

    def allocate_provider(self, s, net_id, ntype, physnet, segid):
        if ntype == "local":
            return ntype, None, None
        if ntype == "flat":
            self._reserve(s, net_id, "flat", physnet, None)
            return ntype, physnet, None
        if segid is None:
            ranges = self.vlan.get(physnet) if ntype == "vlan" else getattr(self, ntype)
            segid = self._lowest_free(s, ntype, physnet or "", ranges or [])
            if segid is None:
                raise NoNetworkAvailable()
            self._reserve(s, net_id, ntype, physnet, segid, chosen_by_us=True)
            return ntype, physnet, segid
        self._reserve(s, net_id, ntype, physnet, segid)
        return ntype, physnet, segid

    def change_vlan(self, s, net, segid):
        """A VLAN network moves to VLAN ``segid`` of its physical network
        (ml2's update_network_segment, with the Open vSwitch agents' support
        of it: its ports stay bound, the hosts retag).  Another type is
        refused; an id in use, 409 VlanIdInUse."""
        seg = net.segment
        if seg is None or seg.network_type != "vlan":
            raise exceptions.InvalidInput(
                error_message="Only VLAN type networks can be updated.")
        self.validate_provider({NETWORK_TYPE: "vlan", PHYSNET: seg.physical_network,
                                SEGID: segid})
        A = models.SegmentAllocation
        s.execute(sa.delete(A).where(A.network_type == "vlan",
                                     A.physical_network == seg.physical_network,
                                     A.segmentation_id == seg.segmentation_id))
        self._reserve(s, net.id, "vlan", seg.physical_network, segid)
        seg.segmentation_id = segid

    def max_mtu(self, ntype):
        return self.conf.global_physnet_mtu - OVERHEAD.get(ntype, 0)


def setup(plugin, conf):
    segments = Segments(conf)
    plugin.segments = segments

    def on_create(s, ctx, net, a):
        spec = segments.validate_provider(a)
        s.flush()  # the network row first: allocations refer to it
        if spec is None:
            ntype, physnet, segid = segments.allocate_tenant(s, net.id)
        else:
            ntype, physnet, segid = segments.allocate_provider(s, net.id, *spec)
        net.segment = models.NetworkSegment(network_type=ntype, physical_network=physnet,
                                            segmentation_id=segid)
        limit = segments.max_mtu(ntype)
        if a.get("mtu") is None:
            net.mtu = limit
        elif a["mtu"] > limit:
            raise exceptions.InvalidInput(
                error_message=f"Requested MTU is too big, maximum is {limit}")
        if a.get("router:external"):
            net.external = models.ExternalNetwork()

    def on_update(s, ctx, net, a):
        seg = net.segment
        current = {NETWORK_TYPE: seg.network_type if seg else None,
                   PHYSNET: (seg.physical_network or None) if seg else None,
                   SEGID: seg.segmentation_id if seg else None}
        # As Neutron's ml2 _update_provider_network_attributes: a client
        # that PUTs back what it read changes nothing (None is "not
        # given"); of the segment, only a VLAN's id may change.
        changed = sorted(k for k in current if a.get(k) is not None and a[k] != current[k])
        if set(changed) - {SEGID}:
            raise exceptions.InvalidInput(
                error_message="Plugin does not support updating the following provider "
                              f"network attributes: {', '.join(changed)}")
        if changed:
            segments.change_vlan(s, net, a[SEGID])
        if "mtu" in a:
            limit = segments.max_mtu(net.segment.network_type if net.segment else "local")
            if a["mtu"] is None:
                net.mtu = limit
            elif a["mtu"] > limit:
                raise exceptions.InvalidInput(
                    error_message=f"Requested MTU is too big, maximum is {limit}")
        if "router:external" in a:
            if not a["router:external"]:
                net.external = None
            elif net.external is None:  # (one that is stays as it is: is_default)
                net.external = models.ExternalNetwork()

    def extend_dict(net, d):
        seg = net.segment
        d[NETWORK_TYPE] = seg.network_type if seg else None
        # (or None: a tunnel network made before tunnels dropped a "" physnet)
        d[PHYSNET] = (seg.physical_network or None) if seg else None
        d[SEGID] = seg.segmentation_id if seg else None
        d["router:external"] = net.external is not None

    def extend_subnet(sub, d):
        d["router:external"] = sub.external is not None

    plugin.add_hook("networks", "create", on_create)
    plugin.add_hook("networks", "update", on_update)
    plugin.add_dict_extender("networks", extend_dict)
    plugin.add_dict_extender("subnets", extend_subnet)

    N, S = models.Network, models.NetworkSegment

    for attr, column in ((NETWORK_TYPE, S.network_type), (PHYSNET, S.physical_network),
                         (SEGID, S.segmentation_id)):
        plugin.add_filter("networks", attr, child_filter(N.id, S.network_id, column))

    def external_filter(column):
        return lambda values: flag_filter(
            column.in_(sa.select(models.ExternalNetwork.network_id)), values)
    plugin.add_filter("networks", "router:external", external_filter(N.id))
    plugin.add_filter("subnets", "router:external", external_filter(models.Subnet.network_id))
    # Which projects see an external network: its access_as_external
    # policies (a wildcard one comes with router:external, extensions/rbac.py).
