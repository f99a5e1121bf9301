"""The incremental engine: model changes in, minimal flow diffs out.

The dependency graph is data: ``INPUTS`` (what the engine is told: model
objects, the chassis' OpenFlow ports, the id allocations) and
``OWNER_KINDS`` (one row per kind of flow owner: its name, which is also
its cookie kind's name in ``cookies.KIND_NAMES``, the cookie kind, the
method that computes an owner's flows, and the inputs those flows depend
on).  ``describe()`` prints the graph and ``dot()`` draws it (Graphviz),
both from these tables; tests/unit/compiler/engine_graph.txt holds the
expected text and the tests check that the engine marks dirty only what
the table declares.  A new kind of owner is a new row, a compute method,
and the ``_set_*`` code that marks it dirty: routers are one
(``_set_router``; a router is compiled only while a port bound here is on
one of its networks, ``net_local``, or this host is one of its gateway
hosts); external connectivity (issue 14) is three more: "gateway" and
"floating-ip" from ``Router.gateway`` / ``Router.floating_ips`` (a
router change marks only what changed: one floating IP's change
recomputes that floating IP's flows alone) and "external" per external
network (the neighbours the agent resolved, ``Chassis.neighbours``).

An owner is a tuple ``(kind, *key)``.  A change marks the owners that
depend on it dirty; ``_flush`` recomputes exactly those (first removing
all their old flows, then adding the new ones, so a key may move between
owners within one change) and returns the FlowDiff.  ``load`` is the only
full recompute.  ``stats`` counts both, so tests can prove that common
changes stay incremental.

Numbers the engine allocates (network local ids when the model leaves
them 0, conjunction ids) live in ``Allocations``; hand the same
allocations to a fresh engine (or ``compile_flows``) to reproduce a table
exactly.
"""

from __future__ import annotations

import gc
import ipaddress
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from quantum_ovs.compiler import cookies, pipeline
from quantum_ovs.compiler.desired import CompileError, DesiredFlows, Unbuildable
from quantum_ovs.compiler.flow import Flow, FlowDiff, diff
from quantum_ovs.compiler.rules import acl as acl_rules
from quantum_ovs.compiler.rules import checks
from quantum_ovs.compiler.rules import gateway as gw_rules
from quantum_ovs.compiler.rules import metadata as metadata_rules
from quantum_ovs.compiler.rules import network as net_rules
from quantum_ovs.compiler.rules import port as port_rules
from quantum_ovs.compiler.rules import router as router_rules
from quantum_ovs.compiler.rules.neighbours import RANK_FLOATING_IP, NeighbourSource
from quantum_ovs.compiler.rules.static import static_flows
from quantum_ovs.model import (
    AddressGroup,
    Chassis,
    Delta,
    FloatingIP,
    HostView,
    Neighbour,
    Network,
    Port,
    RemoteHost,
    Router,
    SecurityGroup,
    Subnet,
    is_router_port,
)

DIRECTIONS = tuple(acl_rules.DIRS)
LOCAL_ID_BASE = 0x8000  # compiler-assigned network ids; explicit ones stay below
LOCAL_ID_MAX = 0xFFFF  # the id is also the conntrack zone (16 bits)

# The owner kinds: one vocabulary with the cookies (cookies.KIND_NAMES).
STATIC_KIND = cookies.KIND_NAMES[cookies.KIND_STATIC]
NETWORK = cookies.KIND_NAMES[cookies.KIND_NETWORK]
PORT = cookies.KIND_NAMES[cookies.KIND_PORT]
PORT_ACL = cookies.KIND_NAMES[cookies.KIND_PORT_ACL]
GROUP = cookies.KIND_NAMES[cookies.KIND_GROUP]
ADDRESS = cookies.KIND_NAMES[cookies.KIND_ADDRESS]
RULE_MATCH = cookies.KIND_NAMES[cookies.KIND_RULE]
ROUTER = cookies.KIND_NAMES[cookies.KIND_ROUTER]
GATEWAY = cookies.KIND_NAMES[cookies.KIND_GATEWAY]
FLOATING_IP = cookies.KIND_NAMES[cookies.KIND_FLOATING_IP]
EXTERNAL = cookies.KIND_NAMES[cookies.KIND_EXTERNAL]
METADATA = cookies.KIND_NAMES[cookies.KIND_METADATA]
TUNNEL_PEER = cookies.KIND_NAMES[cookies.KIND_TUNNEL_PEER]
STATIC = (STATIC_KIND,)

# The inputs: what the engine is told (names used in OwnerKind.depends_on).
NETWORKS = "networks"
SUBNETS = "subnets"
PORTS = "ports"
SG_RULES = "security-group-rules"
SG_MEMBERS = "security-group-members"
ADDRESS_GROUPS = "address-groups"
REMOTE_HOSTS = "remote-hosts"
ROUTERS = "routers"
VIF_OFPORTS = "vif-ofports"
UPLINK_OFPORTS = "uplink-ofports"
GATEWAY_OFPORTS = "gateway-ofports"
GATEWAYS_DOWN = "gateways-down"
NEIGHBOURS = "neighbours"
METADATA_OFPORT = "metadata-ofport"
ALLOCATIONS = "allocations"


@dataclass(frozen=True)
class Input:
    """One kind of thing the engine is told."""

    name: str
    source: str  # where it comes from (the model field, the call)
    doc: str
    incremental: bool = True  # False: read only by load()


@dataclass(frozen=True)
class OwnerKind:
    """One kind of flow owner: a row of the engine's graph."""

    name: str  # owner tuple's first item == cookies.KIND_NAMES[cookie_kind]
    cookie_kind: int  # cookies.KIND_*: every flow of such an owner carries it
    key: tuple[str, ...]  # what follows the name in the owner tuple
    compute: Callable  # Engine method (owner tuple) -> list[Flow]
    instances: Callable  # Engine method () -> the owners of this kind now (load)
    depends_on: tuple[str, ...]  # Input names whose change can dirty such an owner
    doc: str
    # An isolating engine (Engine(isolate=True), the agent's) holds back an
    # owner whose flows conflict with those of an owner of the same or a
    # higher rank (desired.py): a port conflicting with its network's
    # flows loses alone, two ports conflicting both lose.
    rank: int = 0


ROUTER_ZONE_PREFIX = "router:"  # Allocations.local_ids key of a router's zone
# ... and of its NAT zones (routers with a gateway)
DNAT_ZONE_PREFIX = "router-dnat:"
SNAT_ZONE_PREFIX = "router-snat:"


@dataclass
class Allocations:
    # network id -> local id; "router:<id>" -> the router's conntrack zone
    # (one pool: a router's zone never equals a network's)
    local_ids: dict = field(default_factory=dict)
    conj_ids: dict = field(default_factory=dict)  # (group id, direction) -> conj id
    next_conj: int = 1

    def copy(self) -> "Allocations":
        return Allocations(dict(self.local_ids), dict(self.conj_ids), self.next_conj)


@dataclass
class Stats:
    full_recomputes: int = 0
    owner_recomputes: Counter = field(default_factory=Counter)  # owner kind -> count

    def reset(self) -> None:
        self.full_recomputes = 0
        self.owner_recomputes.clear()



@contextmanager
def _gc_paused():
    """No cyclic garbage collection while flows are computed: they are tens
    of thousands of small acyclic values, which the collector would rescan
    over and over as they are made, and an engine holding a host's flows
    makes every full collection long (1,000 ports plugged at once into a
    loaded engine: ~650 ms of CPU with the collector, ~200 ms without)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _single_address(addr: str) -> str | None:
    """An allowed address pair's address when it names one (an address,
    or a /32 or /128), as ipaddress writes it; else None."""
    try:
        net = ipaddress.ip_network(addr, strict=False)
    except ValueError:
        return None
    return str(net.network_address) if net.num_addresses == 1 else None


def _pair_addresses(p: Port) -> set[str]:
    out = set()
    for ap in p.allowed_address_pairs:
        ip = _single_address(ap.ip_address)
        if ip is not None:
            out.add(ip)
    return out


def _nat_ends(r: Router) -> tuple:
    """What of a router's floating IPs its gateway's flows read (without
    SNAT, gateway.gateway_flows): their addresses, and the internal ends
    of their port forwardings."""
    return ({f.floating_ip_address for f in r.floating_ips},
            {(pf.internal_ip_address, pf.protocol, pf.internal_port_lo, pf.internal_port_hi)
             for f in r.floating_ips for pf in f.port_forwardings})


class Engine:
    def __init__(self, host: str, allocations: Allocations | None = None,
                 validate: bool = True, isolate: bool = False,
                 permitted_ethertypes: tuple = ()) -> None:
        self.host = host
        # Ethertypes beyond IP and ARP that ports with port security may
        # send and take (Neutron's [securitygroup] permitted_ethertypes):
        # fixed for the engine's life, as the agent's configuration is
        self.permitted_ethertypes = port_rules.check_ethertypes(permitted_ethertypes)
        self.alloc = allocations.copy() if allocations is not None else Allocations()
        self.validate = validate
        # isolate: a conflict or a failure computing an owner holds back
        # that owner's flows (desired.held) instead of raising CompileError
        # (which stops every change on the host): the agent's choice.
        # Tests keep the default, where a compiler bug raises at once.
        self.isolate = isolate
        self.stats = Stats()
        self.desired = self._new_table()
        self.withdrawn: tuple[Flow, ...] = ()  # load_flows: yielded, then held back
        self.tunnel_ip = None
        self.revision = 0
        # kind -> bound compute method: the dispatch, read from OWNER_KINDS
        self._computers = {k.name: k.compute.__get__(self) for k in OWNER_KINDS}
        self._reset_state()

    @classmethod
    def from_view(cls, view: HostView, allocations: Allocations | None = None,
                  validate: bool = True, isolate: bool = False,
                  permitted_ethertypes: tuple = ()) -> "Engine":
        e = cls(view.host, allocations, validate, isolate, permitted_ethertypes)
        e.load(view)
        return e

    def _new_table(self) -> DesiredFlows:
        return DesiredFlows(_owner_rank if self.isolate else None)

    def _reset_state(self) -> None:
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.groups: dict[str, SecurityGroup] = {}
        self.remote_hosts: dict[str, RemoteHost] = {}
        self.peer_ips = Counter()  # tunnel address -> remote hosts with it
        self.vif_ofports: dict[str, int] = {}
        self.tunnel_ofports: dict[str, int] = {}
        self.physnet_ofports: dict[str, int] = {}
        self.metadata_ofport = 0
        self.net_subnets = defaultdict(set)
        self.net_ports = defaultdict(set)
        self.group_ports = defaultdict(set)  # security group -> local port ids
        self.host_ports = defaultdict(set)  # remote host -> port ids
        self.sg_keys: dict[str, Counter] = {}  # sg -> conjunction key -> rules
        self.match_refs: dict = {}  # (table, match) -> Counter((conj_id, n) -> rules)
        self.remote_refs = defaultdict(set)  # (remote group, direction) -> sg ids
        self.ip_groups = defaultdict(set)  # member address -> group ids (and
        # "address-group:<id>" of the address groups holding it)
        self.address_groups: dict[str, AddressGroup] = {}
        self.routers: dict[str, Router] = {}
        self.net_routers = defaultdict(set)  # network -> routers with an interface on it
        self.nexthop_routers = defaultdict(set)  # extra-route next hop -> router ids
        # (network, address) -> the ports whose allowed address pairs name
        # that one address (/32, /128): a routed packet to it, or an extra
        # route via it, is resolved to the pair's MAC while exactly one port
        # holds it (_pair_resolution)
        self.pair_holders = defaultdict(set)
        self.net_local = Counter()  # network -> ports bound here (not a router's)
        self.gateway_ofports: dict[str, int] = {}  # gateway host -> its BFD tunnel port
        self.gateways_down: frozenset = frozenset()
        self.neighbours = defaultdict(set)  # external network -> {(ip, mac)}
        self.ext_routers = defaultdict(set)  # external network -> routers with a gateway on it
        self.fip_router: dict[str, str] = {}  # floating IP id -> router id
        self.port_fips = defaultdict(set)  # port id -> floating IP ids associated with it
        self._explicit_ids: dict[int, str] = {}
        self._used_ids: set | None = None  # cache of alloc.local_ids values
        self._id_hint = LOCAL_ID_BASE
        self._dirty: set = set()
        # Items of the model left out as they cannot be compiled as written
        # (a security group rule with a prefix that does not parse...):
        # ("security-group-rule", group id, rule id) -> why.  The agent
        # logs them with the held owners.
        self.refused: dict[tuple, str] = {}

    # ------------------------------------------------------------ reading
    def flows(self) -> frozenset[Flow]:
        return self.desired.flows()

    def __len__(self) -> int:
        return len(self.desired)

    def chassis(self) -> Chassis:
        return Chassis(
            vif_ofports=tuple(sorted(self.vif_ofports.items())),
            tunnel_ofports=tuple(sorted(self.tunnel_ofports.items())),
            physnet_ofports=tuple(sorted(self.physnet_ofports.items())),
            gateway_ofports=tuple(sorted(self.gateway_ofports.items())),
            gateways_down=tuple(sorted(self.gateways_down)),
            neighbours=tuple(Neighbour(n, ip, mac) for n in sorted(self.neighbours)
                             for ip, mac in sorted(self.neighbours[n])),
            metadata_ofport=self.metadata_ofport,
        )

    def view(self) -> HostView:
        """The current model as a HostView (sorted by id)."""

        def by_id(d):
            return tuple(d[k] for k in sorted(d))

        return HostView(
            host=self.host, tunnel_ip=self.tunnel_ip, networks=by_id(self.networks),
            subnets=by_id(self.subnets), ports=by_id(self.ports),
            security_groups=by_id(self.groups), remote_hosts=by_id(self.remote_hosts),
            chassis=self.chassis(), revision=self.revision, routers=by_id(self.routers),
            address_groups=by_id(self.address_groups),
        )

    def router_zone(self, router_id: str) -> int | None:
        if router_id not in self.routers:
            return None
        return self.alloc.local_ids.get(ROUTER_ZONE_PREFIX + router_id)

    def local_id(self, network_id: str) -> int | None:
        net = self.networks.get(network_id)
        if net is None:
            return None
        return net.local_id or self.alloc.local_ids.get(network_id)

    # ---------------------------------------------------------- full load
    def load(self, view: HostView) -> FlowDiff:
        """Replace everything with ``view`` (a full recompute)."""
        old = self.desired
        self.load_model(view)
        for _ in self.load_flows():
            pass
        new = self.desired
        if not len(old):
            return FlowDiff((), (), tuple(new))
        return diff(old.by_key(), new.by_key())

    # A load in two steps, for a caller that sends the flows while later
    # ones are still computed (the agent's first install, issue 17):
    # ``load_model(view)`` takes the view's objects (and allocates ids) but
    # computes nothing; ``load_flows()`` then computes every owner's flows
    # and yields them owner by owner.  In between the model is the new one
    # and ``desired`` the old table; once ``load_flows`` is exhausted the
    # engine is exactly as after ``load(view)``.
    def load_model(self, view: HostView) -> None:
        """The model of ``view``, no flows computed yet (then load_flows)."""
        self.stats.full_recomputes += 1
        self.host = view.host
        self.tunnel_ip = view.tunnel_ip
        self.revision = view.revision
        self._reset_state()
        self._set_chassis(view.chassis)
        for n in view.networks:
            self._set_network(n)
        for s in view.subnets:
            self._set_subnet(s)
        for h in view.remote_hosts:
            self._set_remote_host(h)
        for g in view.security_groups:
            self._set_group(g)
        for a in view.address_groups:
            self._set_address_group(a)
        for r in view.routers:
            self._set_router(r)
        for p in view.ports:
            self._set_port(p)
        self._dirty.clear()

    def load_flows(self, chassis: Chassis | None = None) -> Iterator[tuple[Flow, ...]]:
        """Compute the table of the model load_model() took, with
        ``chassis`` (None: the view's), yielding each owner's flows (a
        tuple, every key once over the whole table) as soon as they are
        computed and checked.  The table replaces ``desired`` when the
        iterator is exhausted; a CompileError leaves ``desired`` as it
        was.  An isolating engine may hold back an owner already yielded
        (a later one conflicts with it): its flows are ``withdrawn`` then."""
        if chassis is not None:
            self._set_chassis(chassis)
            self._dirty.clear()  # every owner is computed below
        owners = []
        for kind in OWNER_KINDS:
            owners.extend(kind.instances(self))
        new = self._new_table()
        compute = self._owner_flows
        self.withdrawn = ()
        with _gc_paused():
            for owner in owners:
                flows = compute(owner)
                new.add_owner(owner, flows)
                # (an owner may give a flow twice: the table keeps one)
                yield tuple(flows) if len(new.by_owner.get(owner, ())) == len(flows) \
                    else new.owner_flows(owner)
        self.withdrawn = tuple(new.withdrawn)
        new.withdrawn.clear()
        self.desired = new

    def update(self, view: HostView) -> FlowDiff:
        """Move to ``view`` by comparing it object by object with the
        current model (incremental; costs a pass over the view)."""
        self.tunnel_ip = view.tunnel_ip
        self.revision = view.revision
        self._set_chassis(view.chassis)
        for attr, objs, setter, remover, key in (
            ("networks", view.networks, self._set_network, self._remove_network, "id"),
            ("subnets", view.subnets, self._set_subnet, self._remove_subnet, "id"),
            ("remote_hosts", view.remote_hosts, self._set_remote_host,
             self._remove_remote_host, "name"),
            ("groups", view.security_groups, self._set_group, self._remove_group, "id"),
            ("address_groups", view.address_groups, self._set_address_group,
             self._remove_address_group, "id"),
            ("routers", view.routers, self._set_router, self._remove_router, "id"),
            ("ports", view.ports, self._set_port, self._remove_port, "id"),
        ):
            current = getattr(self, attr)
            want = {getattr(o, key): o for o in objs}
            for k in [k for k in current if k not in want]:
                remover(k)
            for o in objs:
                setter(o)
        return self._flush()

    # ------------------------------------------------------------ changes
    def apply(self, delta: Delta) -> FlowDiff:
        """Apply a Delta (removals first, then upserts) as one change.  A
        removed network takes its subnets and ports with it (as
        quantum_ovs.wire.apply_delta does)."""
        for nid in delta.removed_networks:
            for pid in list(self.net_ports.get(nid, ())):
                self._remove_port(pid)
            for sid in list(self.net_subnets.get(nid, ())):
                self._remove_subnet(sid)
        for pid in delta.removed_ports:
            self._remove_port(pid)
        for gid in delta.removed_security_groups:
            self._remove_group(gid)
        for rid in delta.removed_routers:
            self._remove_router(rid)
        if delta.groups_complete:
            keep = {g.id for g in delta.security_groups}
            for gid in [g for g in self.groups if g not in keep]:
                self._remove_group(gid)
        if delta.groups_kept is not None:
            keep = set(delta.groups_kept)
            for gid in [g for g in self.groups if g not in keep]:
                self._remove_group(gid)
        if delta.groups_complete or delta.groups_kept is not None:
            # The address groups the host needs come whole with either.
            keep = {a.id for a in delta.address_groups}
            for aid in [a for a in self.address_groups if a not in keep]:
                self._remove_address_group(aid)
        for sid in delta.removed_subnets:
            self._remove_subnet(sid)
        for name in delta.removed_remote_hosts:
            self._remove_remote_host(name)
        for nid in delta.removed_networks:
            self._remove_network(nid)
        for n in delta.networks:
            self._set_network(n)
        for s in delta.subnets:
            self._set_subnet(s)
        for h in delta.remote_hosts:
            self._set_remote_host(h)
        for g in delta.security_groups:
            self._set_group(g)
        for a in delta.address_groups:
            self._set_address_group(a)
        for r in delta.routers:
            self._set_router(r)
        for p in delta.ports:
            self._set_port(p)
        for gr in delta.group_rules:
            g = self.groups.get(gr.security_group_id)
            if g is not None:
                self._set_group(SecurityGroup(g.id, gr.rules, g.member_ips, g.stateful))
        for gm in delta.group_members:
            g = self.groups.get(gm.security_group_id)
            if g is None:
                continue
            # gm.applied_to(members), without copying a large group twice
            # (or at all when nothing changes): only gm's addresses move.
            cur = g.member_ips
            gone = (gm.addresses - gm.members) & cur
            new = gm.members - cur
            if gone or new:
                self._set_group(SecurityGroup(g.id, g.rules, (cur - gone) | new if gone
                                              else cur | new, g.stateful))
        self.revision = max(self.revision, delta.revision)
        return self._flush()

    def set_chassis(self, chassis: Chassis) -> FlowDiff:
        """The switch's OpenFlow ports changed (VIFs plugged or unplugged,
        tunnel or patch ports): the agent's one call besides load/update/apply."""
        self._set_chassis(chassis)
        return self._flush()

    # ------------------------------------------------- state + dependents
    def _is_local(self, p: Port | None) -> bool:
        return p is not None and p.host == self.host

    def _mark_port(self, pid: str, acl: bool = True) -> None:
        self._dirty.add((PORT, pid))
        if acl and self._is_local(self.ports.get(pid)):
            self._dirty.add((PORT_ACL, pid))

    def _set_network(self, net: Network) -> None:
        old = self.networks.get(net.id)
        if old == net:
            return
        if old is not None and old.local_id and old.local_id != net.local_id:
            self._explicit_ids.pop(old.local_id, None)
        if net.local_id:
            if not 0 < net.local_id < LOCAL_ID_BASE:
                raise CompileError(f"network {net.id}: local_id must be in 1..{LOCAL_ID_BASE-1}")
            holder = self._explicit_ids.get(net.local_id)
            if holder is not None and holder != net.id:
                raise CompileError(f"networks {holder} and {net.id} share local_id "
                                   f"{net.local_id}")
            self._explicit_ids[net.local_id] = net.id
            self.alloc.local_ids.pop(net.id, None)
        elif net.id not in self.alloc.local_ids:
            self.alloc.local_ids[net.id] = self._free_local_id()
        self.networks[net.id] = net
        self._dirty.add((NETWORK, net.id))
        for pid in self.net_ports.get(net.id, ()):
            self._mark_port(pid)
        self._mark_routers_of(net.id)
        self._mark_external(net.id)

    def _free_local_id(self) -> int:
        """The lowest free compiler-assigned id (a scan from the last hit)."""
        used = self._used_ids
        if used is None or len(used) != len(self.alloc.local_ids):
            used = self._used_ids = set(self.alloc.local_ids.values())
            self._id_hint = LOCAL_ID_BASE
        i = self._id_hint
        while i <= LOCAL_ID_MAX and i in used:
            i += 1
        if i > LOCAL_ID_MAX:
            i = next((j for j in range(LOCAL_ID_BASE, LOCAL_ID_MAX + 1) if j not in used), None)
            if i is None:
                raise CompileError("out of network local ids")
        used.add(i)
        self._id_hint = i + 1
        return i

    def _remove_network(self, nid: str) -> None:
        old = self.networks.pop(nid, None)
        if old is None:
            return
        if old.local_id:
            self._explicit_ids.pop(old.local_id, None)
        self.alloc.local_ids.pop(nid, None)
        self._dirty.add((NETWORK, nid))
        for pid in self.net_ports.get(nid, ()):
            self._mark_port(pid)
        self._mark_routers_of(nid)
        self._mark_external(nid)

    def _set_subnet(self, s: Subnet) -> None:
        old = self.subnets.get(s.id)
        if old == s:
            return
        if old is not None:
            self.net_subnets[old.network_id].discard(s.id)
            self._dirty.add((NETWORK, old.network_id))
        self.subnets[s.id] = s
        self.net_subnets[s.network_id].add(s.id)
        self._dirty.add((NETWORK, s.network_id))
        self._mark_external(s.network_id)
        if old is not None:
            self._mark_external(old.network_id)

    def _remove_subnet(self, sid: str) -> None:
        old = self.subnets.pop(sid, None)
        if old is not None:
            self.net_subnets[old.network_id].discard(sid)
            self._dirty.add((NETWORK, old.network_id))
            self._mark_external(old.network_id)

    def _flood_sig(self, p: Port):
        # (its address pairs' MACs: flooded to their holders only)
        if p.host == self.host:
            return (True, self.vif_ofports.get(p.id) if p.admin_state_up else None,
                    acl_rules.pair_macs(p))
        return (False, p.host, acl_rules.pair_macs(p))

    def _acl_sig(self, p: Port):
        if p.host != self.host:
            return None
        # (its MACs: the replies of its connections, rules/acl.py)
        return (p.network_id, p.security_groups, p.port_security_enabled, p.admin_state_up,
                acl_rules.pair_macs(p), p.mac_address)

    def _mark_routers_of(self, nid: str) -> None:
        for rid in self.net_routers.get(nid, ()):
            self._dirty.add((ROUTER, rid))
            self._mark_gateway(rid, True)

    def _mark_gateway(self, rid: str, fips: bool) -> None:
        """The router's gateway flows (and, ``fips``, its floating IPs')."""
        r = self.routers.get(rid)
        if r is None or r.gateway is None:
            return
        self._dirty.add((GATEWAY, rid))
        if fips:
            for f in r.floating_ips:
                self._dirty.add((FLOATING_IP, f.id))

    def _mark_external(self, nid: str, own: bool = True) -> None:
        """A change of an external network (``own``) or its subnets: its
        own flows, and the gateways and floating IPs of the routers on it."""
        rids = self.ext_routers.get(nid)
        if not rids:
            return
        if own:
            self._dirty.add((EXTERNAL, nid))
        self._dirty.add((NETWORK, nid))
        for rid in rids:
            self._mark_gateway(rid, True)

    def _count_local(self, p: Port, step: int) -> None:
        """A port bound here joins (+1) or leaves (-1) its network: the
        network's routers appear on this host with its first such port and
        go with its last."""
        if p.host != self.host or is_router_port(p):
            return
        n = self.net_local[p.network_id] + step
        if n:
            self.net_local[p.network_id] = n
        else:
            del self.net_local[p.network_id]
        if n == 0 or (n == 1 and step > 0):
            self._mark_routers_of(p.network_id)

    def _mark_nexthop(self, p: Port) -> None:
        for ip in (*p.ips, *_pair_addresses(p)):
            for rid in self.nexthop_routers.get(ip, ()):
                self._dirty.add((ROUTER, rid))

    def _index_pairs(self, p: Port, add: bool) -> None:
        """A port's single-address pairs join (or leave) pair_holders; the
        other holders of each are recompiled (whether one port holds it
        is theirs to know)."""
        if is_router_port(p):
            return
        for ip in _pair_addresses(p):
            key = (p.network_id, ip)
            holders = self.pair_holders[key]
            for pid in holders:
                self._dirty.add((PORT, pid))
            if add:
                holders.add(p.id)
            else:
                holders.discard(p.id)
                if not holders:
                    del self.pair_holders[key]

    def _pair_resolution(self, p: Port) -> list[tuple[str, str]]:
        """(address, MAC) of the port's single-address pairs that no other
        port holds: where a routed packet to that address goes (the pair's
        MAC, or the port's when the pair has none).  An address several
        ports hold (a VRRP pair both of whose members list it) is left
        unresolved: which one is master is not in the model."""
        out = {}
        for ap in p.allowed_address_pairs:
            ip = _single_address(ap.ip_address)
            if ip is not None and self.pair_holders.get((p.network_id, ip)) == {p.id}:
                out.setdefault(ip, ap.mac_address or p.mac_address)
        return sorted(out.items())

    def _index_port(self, p: Port) -> None:
        self.net_ports[p.network_id].add(p.id)
        self._count_local(p, 1)
        if p.allowed_address_pairs:
            self._index_pairs(p, True)
        if self.nexthop_routers:
            self._mark_nexthop(p)
        if p.host == self.host:
            for g in p.security_groups:
                self.group_ports[g].add(p.id)
        elif p.host is not None:
            self.host_ports[p.host].add(p.id)

    def _unindex_port(self, p: Port) -> None:
        s = self.net_ports.get(p.network_id)
        if s is not None:
            s.discard(p.id)
        self._count_local(p, -1)
        if p.allowed_address_pairs:
            self._index_pairs(p, False)
        if self.nexthop_routers:
            self._mark_nexthop(p)
        if p.host == self.host:
            for g in p.security_groups:
                s = self.group_ports.get(g)
                if s is not None:
                    s.discard(p.id)
        elif p.host is not None:
            s = self.host_ports.get(p.host)
            if s is not None:
                s.discard(p.id)

    def _set_port(self, p: Port) -> None:
        old = self.ports.get(p.id)
        if old == p:
            return
        if old is not None:
            self._unindex_port(old)
        self.ports[p.id] = p
        self._index_port(p)
        dirty = self._dirty
        dirty.add((PORT, p.id))
        for fid in self.port_fips.get(p.id, ()):
            dirty.add((FLOATING_IP, fid))
        if old is None:
            if p.host == self.host:
                dirty.add((PORT_ACL, p.id))
            dirty.add((NETWORK, p.network_id))
            return
        if self._acl_sig(old) != self._acl_sig(p):
            dirty.add((PORT_ACL, p.id))
        if old.network_id != p.network_id or self._flood_sig(old) != self._flood_sig(p):
            dirty.add((NETWORK, old.network_id))
            dirty.add((NETWORK, p.network_id))

    def _remove_port(self, pid: str) -> None:
        old = self.ports.pop(pid, None)
        if old is None:
            return
        self._unindex_port(old)
        self._dirty.add((PORT, pid))
        self._dirty.add((PORT_ACL, pid))
        self._dirty.add((NETWORK, old.network_id))
        for fid in self.port_fips.get(pid, ()):
            self._dirty.add((FLOATING_IP, fid))

    def _set_router(self, r: Router) -> None:
        old = self.routers.get(r.id)
        if old == r:
            return
        key = ROUTER_ZONE_PREFIX + r.id
        if key not in self.alloc.local_ids:
            self.alloc.local_ids[key] = self._free_local_id()
        if r.gateway is not None:
            for prefix in (DNAT_ZONE_PREFIX, SNAT_ZONE_PREFIX):
                if prefix + r.id not in self.alloc.local_ids:
                    self.alloc.local_ids[prefix + r.id] = self._free_local_id()
        self._reindex_router(old, r)
        self.routers[r.id] = r
        self._mark_router_change(old, r)

    def _mark_router_change(self, old: Router | None, new: Router | None) -> None:
        """Only what a router change touches: a floating IP's change is
        its own flows; a gateway change the gateway and its floating IPs;
        interfaces or routes the router (and the gateway, whose presence on
        this host follows the router's networks)."""
        r = new or old
        dirty = self._dirty
        core = (old is None or new is None or old.admin_state_up != new.admin_state_up
                or old.interfaces != new.interfaces
                # (here as one of its gateway hosts, or no longer: _router_here)
                or self._gateway_host(old) != self._gateway_host(new))
        if core or old.routes != new.routes:
            dirty.add((ROUTER, r.id))
        # (the gateway's address scope drops name the routes' destinations,
        # and without SNAT the way to the router's floating IPs and the
        # replies of its port forwardings; its echo answers the addresses
        # of port forwardings)
        if old is not None and new is not None and new.gateway is not None and (
                old.routes != new.routes or (not new.gateway.enable_snat and
                                             _nat_ends(old) != _nat_ends(new))
                or gw_rules.forwarding_addresses(old, new.gateway)
                != gw_rules.forwarding_addresses(new, new.gateway)):
            dirty.add((GATEWAY, r.id))
        if core or old.gateway != new.gateway:
            if (old is not None and old.gateway) or (new is not None and new.gateway):
                dirty.add((GATEWAY, r.id))
            for x in (old, new):
                for f in (x.floating_ips if x is not None else ()):
                    dirty.add((FLOATING_IP, f.id))
            return
        if old.floating_ips != new.floating_ips:
            before = {f.id: f for f in old.floating_ips}
            after = {f.id: f for f in new.floating_ips}
            for fid in before.keys() | after.keys():
                if before.get(fid) != after.get(fid):
                    dirty.add((FLOATING_IP, fid))

    def _remove_router(self, rid: str) -> None:
        old = self.routers.pop(rid, None)
        if old is None:
            return
        self._reindex_router(old, None)
        for prefix in (ROUTER_ZONE_PREFIX, DNAT_ZONE_PREFIX, SNAT_ZONE_PREFIX):
            self.alloc.local_ids.pop(prefix + rid, None)
        self._mark_router_change(old, None)

    def _reindex_router(self, old: Router | None, new: Router | None) -> None:
        """Move the router's entries in net_routers / nexthop_routers; a
        network that becomes routed (or stops being) has its ports
        recomputed (their L3_RESOLVE entries)."""
        rid = (new or old).id
        nets = (old.network_ids if old else frozenset()) | (new.network_ids if new else
                                                              frozenset())
        before = {n: bool(self.net_routers.get(n)) for n in nets}
        if old is not None:
            for n in old.network_ids:
                s = self.net_routers[n]
                s.discard(rid)
                if not s:
                    del self.net_routers[n]
            for rt in old.routes:
                s = self.nexthop_routers[rt.nexthop]
                s.discard(rid)
                if not s:
                    del self.nexthop_routers[rt.nexthop]
        if new is not None:
            for n in new.network_ids:
                self.net_routers[n].add(rid)
            for rt in new.routes:
                self.nexthop_routers[rt.nexthop].add(rid)
        # external networks and floating IPs
        old_ext = old.gateway.network_id if old is not None and old.gateway else None
        new_ext = new.gateway.network_id if new is not None and new.gateway else None
        if old_ext != new_ext:
            for n, add in ((old_ext, False), (new_ext, True)):
                if n is None:
                    continue
                s = self.ext_routers[n]
                was = bool(s)
                s.add(rid) if add else s.discard(rid)
                if not s:
                    del self.ext_routers[n]
                if was != bool(s):
                    self._dirty.add((EXTERNAL, n))
                    self._dirty.add((NETWORK, n))
        if old is not None:
            for f in old.floating_ips:
                # (a floating IP moved to another router that was indexed
                # first -- a delta's order, a view's -- is that router's now)
                owner = self.fip_router.get(f.id)
                if owner != rid and owner is not None:
                    moved = next((g for g in self.routers[owner].floating_ips
                                  if g.id == f.id), None)
                    if moved is not None and moved.port_id == f.port_id:
                        continue
                elif owner == rid:
                    del self.fip_router[f.id]
                if f.port_id:
                    s = self.port_fips[f.port_id]
                    s.discard(f.id)
                    if not s:
                        del self.port_fips[f.port_id]
        if new is not None:
            for f in new.floating_ips:
                self.fip_router[f.id] = rid
                if f.port_id:
                    self.port_fips[f.port_id].add(f.id)
        for n in nets:
            if before[n] != bool(self.net_routers.get(n)):
                for pid in self.net_ports.get(n, ()):
                    self._dirty.add((PORT, pid))

    def _mark_members(self, gid: str, d: str, addresses) -> None:
        dirty = self._dirty
        stateless = d in acl_rules.STATELESS_DIRS
        for ip in addresses:
            dirty.add((ADDRESS, d, ip))
            if stateless:  # (a rule match that is the same flow carries it)
                try:
                    tm = acl_rules.address_match(d, ip)
                except ValueError:
                    continue  # (an address that does not parse: its owner is held)
                if tm in self.match_refs:
                    dirty.add((RULE_MATCH,) + tm)

    def _conj_id(self, key) -> int:
        cid = self.alloc.conj_ids.get(key)
        if cid is None:
            cid = self.alloc.conj_ids[key] = self.alloc.next_conj
            self.alloc.next_conj += 1
        return cid

    def _contributions(self, rules, stateful: bool) -> Counter:
        out = Counter()
        for r in rules:
            key = acl_rules.conj_key(r, stateful)
            if key is None or key[0] != r.security_group_id:
                continue
            ident = (self._conj_id(key), acl_rules.n_clauses(key))
            for tm in acl_rules.rule_contributions(r, stateful):
                out[(tm, ident)] += 1
        return out

    def _set_group(self, g: SecurityGroup) -> None:
        old = self.groups.get(g.id)
        if old == g:
            return
        self.groups[g.id] = g
        old_rules = old.rules if old is not None else ()
        old_stateful = old.stateful if old is not None else True
        old_members = old.member_ips if old is not None else frozenset()
        if old_members != g.member_ips:
            added = g.member_ips - old_members
            removed = old_members - g.member_ips
            for ip in added:
                self.ip_groups[ip].add(g.id)
            for ip in removed:
                s = self.ip_groups.get(ip)
                if s is not None:
                    s.discard(g.id)
                    if not s:
                        del self.ip_groups[ip]
            for d in DIRECTIONS:
                if self.remote_refs.get((g.id, d)):
                    self._mark_members(g.id, d, added)
                    self._mark_members(g.id, d, removed)
        if old_stateful != g.stateful:  # its ports go to other tables
            for pid in self.group_ports.get(g.id, ()):
                self._dirty.add((PORT_ACL, pid))
        if old_rules != g.rules or old_stateful != g.stateful:
            self._rules_changed(g.id, old_rules, g.rules, old_stateful, g.stateful)

    def _usable_rules(self, gid: str, rules, record: bool) -> tuple:
        """The rules of group ``gid`` that can be compiled as written; the
        others are left out (``record``: noted in ``refused``).  Fail
        closed: a rule only ever allows.  Both sides of a change are read
        through this, so a stored bad rule never reaches rule_matches
        (which would raise here, outside any owner's isolation, and wedge
        the group with its old flows)."""
        if record and self.refused:
            for k in [k for k in self.refused if k[0] == REFUSED_RULE and k[1] == gid]:
                del self.refused[k]
        out = []
        for r in rules:
            why = checks.rule_problem(r)
            if why is None:
                out.append(r)
            elif record:
                self.refused[(REFUSED_RULE, gid, r.id)] = why
        return tuple(out) if len(out) != len(rules) else rules

    def _rules_changed(self, gid: str, old_rules, new_rules, old_stateful: bool = True,
                       stateful: bool = True) -> None:
        dirty = self._dirty
        old_rules = self._usable_rules(gid, old_rules, False)
        new_rules = self._usable_rules(gid, new_rules, True)
        new_keys = Counter(k for k in (acl_rules.conj_key(r, stateful) for r in new_rules)
                           if k is not None and k[0] == gid)
        old_keys = self.sg_keys.get(gid, Counter())
        if new_keys:
            self.sg_keys[gid] = new_keys
        else:
            self.sg_keys.pop(gid, None)
        if new_keys.keys() != old_keys.keys():
            for pid in self.group_ports.get(gid, ()):
                dirty.add((PORT_ACL, pid))
            for key in new_keys.keys() ^ old_keys.keys():
                dirty.add((GROUP,) + key)
                sg, d, remote = key
                if remote:
                    refs = self.remote_refs[(remote, d)]
                    if key in new_keys:
                        refs.add(sg)
                    else:
                        refs.discard(sg)
                        if not refs:
                            del self.remote_refs[(remote, d)]
                    self._mark_members(remote, d, self._remote_addresses(remote))
        before = self._contributions(old_rules, old_stateful)
        after = self._contributions(new_rules, stateful)
        if before == after:
            return
        refs = self.match_refs
        for item in before.keys() | after.keys():
            delta = after.get(item, 0) - before.get(item, 0)
            if not delta:
                continue
            tm, ident = item
            c = refs.get(tm)
            if c is None:
                c = refs[tm] = Counter()
            c[ident] += delta
            if c[ident] <= 0:
                del c[ident]
                if not c:
                    del refs[tm]
            dirty.add((RULE_MATCH,) + tm)
            at = acl_rules.address_at(*tm)
            if at is not None:  # (whether it gives the address's flow)
                dirty.add((ADDRESS,) + at)

    def _remote_addresses(self, remote: str):
        """The clause-2 addresses of a key's remote: a group's members, an
        address group's CIDRs."""
        if remote.startswith(acl_rules.ADDRESS_GROUP_PREFIX):
            a = self.address_groups.get(remote[len(acl_rules.ADDRESS_GROUP_PREFIX):])
            return _address_keys(a.addresses) if a is not None else ()
        g = self.groups.get(remote)
        return g.member_ips if g is not None else ()

    def _set_address_group(self, a: AddressGroup) -> None:
        """Only the flows of the addresses that came or went change."""
        old = self.address_groups.get(a.id)
        if old == a:
            return
        remote = acl_rules.ADDRESS_GROUP_PREFIX + a.id
        before = self._remote_addresses(remote)
        self.address_groups[a.id] = a
        after = self._remote_addresses(remote)
        self._move_addresses(remote, set(before), set(after))

    def _remove_address_group(self, aid: str) -> None:
        remote = acl_rules.ADDRESS_GROUP_PREFIX + aid
        before = self._remote_addresses(remote)
        if self.address_groups.pop(aid, None) is not None:
            self._move_addresses(remote, set(before), set())

    def _move_addresses(self, remote: str, before: set, after: set) -> None:
        added, removed = after - before, before - after
        for ip in added:
            self.ip_groups[ip].add(remote)
        for ip in removed:
            s = self.ip_groups.get(ip)
            if s is not None:
                s.discard(remote)
                if not s:
                    del self.ip_groups[ip]
        for d in DIRECTIONS:
            if self.remote_refs.get((remote, d)):
                self._mark_members(remote, d, added)
                self._mark_members(remote, d, removed)

    def _remove_group(self, gid: str) -> None:
        if gid not in self.groups:
            return
        self._set_group(SecurityGroup(gid))
        del self.groups[gid]

    def _set_remote_host(self, h: RemoteHost) -> None:
        old = self.remote_hosts.get(h.name)
        if old == h:
            return
        if old is not None:
            self._peer(old.tunnel_ip, -1)
        self.remote_hosts[h.name] = h
        self._peer(h.tunnel_ip, 1)
        self._host_changed(h.name)

    def _remove_remote_host(self, name: str) -> None:
        old = self.remote_hosts.pop(name, None)
        if old is not None:
            self._peer(old.tunnel_ip, -1)
            self._host_changed(name)

    def _peer(self, ip, step: int) -> None:
        """A remote host's tunnel address counted in (or out): the address's
        admission is recomputed when it appears or goes."""
        if not ip:
            return
        n = self.peer_ips[ip] + step
        if n > 0:
            self.peer_ips[ip] = n
        else:
            del self.peer_ips[ip]
        if n == 0 or (step > 0 and n == 1):
            self._dirty.add((TUNNEL_PEER, ip))

    def _host_changed(self, name: str) -> None:
        for pid in self.host_ports.get(name, ()):
            p = self.ports[pid]
            self._dirty.add((PORT, pid))
            self._dirty.add((NETWORK, p.network_id))

    def _set_chassis(self, ch: Chassis) -> None:
        vif = dict(ch.vif_ofports)
        if vif != self.vif_ofports:
            old = self.vif_ofports
            changed = {k for k in vif.keys() | old.keys() if vif.get(k) != old.get(k)}
            self.vif_ofports = vif
            for pid in changed:
                p = self.ports.get(pid)
                if p is not None and p.host == self.host:
                    self._dirty.add((PORT, pid))
                    self._dirty.add((PORT_ACL, pid))
                    self._dirty.add((NETWORK, p.network_id))
        if ch.metadata_ofport != self.metadata_ofport:
            self.metadata_ofport = ch.metadata_ofport
            self._dirty.add((METADATA,))
            for pid, p in self.ports.items():
                if p.host == self.host:
                    self._dirty.add((PORT, pid))
        tun, phys = dict(ch.tunnel_ofports), dict(ch.physnet_ofports)
        gwp = dict(ch.gateway_ofports)
        uplinks = tun != self.tunnel_ofports or phys != self.physnet_ofports
        if tun != self.tunnel_ofports:
            for ip in self.peer_ips:
                self._dirty.add((TUNNEL_PEER, ip))
        if uplinks or gwp != self.gateway_ofports:
            self.tunnel_ofports, self.physnet_ofports = tun, phys
            self.gateway_ofports = gwp
            for nid in self.networks:
                self._dirty.add((NETWORK, nid))
            if uplinks:
                for pid, p in self.ports.items():
                    if p.host != self.host:
                        self._dirty.add((PORT, pid))
            for nid in self.ext_routers:
                self._dirty.add((EXTERNAL, nid))
            for rid in self.routers:
                self._mark_gateway(rid, True)
        down = frozenset(ch.gateways_down)
        if down != self.gateways_down:
            changed = down ^ self.gateways_down
            self.gateways_down = down
            for rid, r in self.routers.items():
                if r.gateway is not None and changed & set(r.gateway.hosts):
                    # the active host may move: gateway ARP, SNAT, forwardings
                    self._mark_gateway(rid, True)
        nbrs = defaultdict(set)
        for n in ch.neighbours:
            nbrs[n.network_id].add((n.ip_address, n.mac_address))
        if nbrs != self.neighbours:
            for nid in nbrs.keys() | self.neighbours.keys():
                if nbrs.get(nid) != self.neighbours.get(nid):
                    self._dirty.add((EXTERNAL, nid))
            self.neighbours = nbrs

    # ---------------------------------------------------------- computing
    def _flush(self) -> FlowDiff:
        dirty, self._dirty = self._dirty, set()
        d = self.desired
        d.begin()
        with _gc_paused():
            self._compute_into(d, dirty)
            return d.end()

    def _owner_flows(self, owner):
        """An owner's flows, computed and checked against the pipeline."""
        compute = self._computers.get(owner[0])
        if compute is None:
            raise CompileError(f"undeclared owner kind {owner[0]!r} ({owner})")
        self.stats.owner_recomputes[owner[0]] += 1
        try:
            flows = compute(owner)
            if self.validate:
                check = pipeline.validate
                for f in flows:
                    check(f)
        except Exception as e:
            if not self.isolate:
                raise
            return Unbuildable(f"{owner}: {type(e).__name__}: {e}")
        return flows

    def _compute_into(self, d: DesiredFlows, owners) -> None:
        compute = self._owner_flows
        computed = [(owner, compute(owner)) for owner in owners]
        if len(d) or d.held:
            for owner, _ in computed:
                d.remove_owner(owner)
        for owner, flows in computed:
            d.add_owner(owner, flows)

    # Compute methods (OwnerKind.compute): the owner tuple in, its flows out.
    def _compute_static(self, owner) -> list[Flow]:
        return static_flows(self.permitted_ethertypes)

    def _compute_network(self, owner) -> list[Flow]:
        nid = owner[1]
        net = self.networks.get(nid)
        if net is None:
            return []
        checks.segment(net.segment)  # (out of range: held, not put on another)
        subnets = [self.subnets[s] for s in self.net_subnets.get(nid, ())]
        local, hosts = [], set()
        # pair MAC -> (local ofports, remote tunnel IPs, held on another host)
        pairs: dict = {}
        vif = self.vif_ofports
        pair_macs = acl_rules.pair_macs
        for pid in self.net_ports.get(nid, ()):
            p = self.ports[pid]
            if is_router_port(p):
                continue
            macs = pair_macs(p) if p.allowed_address_pairs else ()
            held = [pairs.setdefault(m, (set(), set(), [False])) for m in macs]
            if p.host == self.host:
                if p.admin_state_up:
                    ofport = vif.get(pid)
                    if ofport is not None:
                        local.append(ofport)
                        for h_ in held:
                            h_[0].add(ofport)
            else:
                h = self.remote_hosts.get(p.host)
                if h is not None:
                    hosts.add(h.tunnel_ip)
                    for h_ in held:
                        h_[2][0] = True
                        if _good_tunnel_ip(h.tunnel_ip):
                            h_[1].add(h.tunnel_ip)
        return net_rules.network_flows(
            net, self.local_id(nid), subnets, local, [h for h in hosts if _good_tunnel_ip(h)],
            self.tunnel_ofports, self.physnet_ofports,
            external=bool(self.ext_routers.get(nid)),
            gateway_ofports=tuple(self.gateway_ofports.values()),
            pair_holders={m: (tuple(sorted(o)), tuple(sorted(i)), r[0])
                          for m, (o, i, r) in pairs.items()},
        )

    def _compute_port(self, owner) -> list[Flow]:
        pid = owner[1]
        p = self.ports.get(pid)
        if p is None or is_router_port(p):
            return []  # a router's port: the router's flows stand for it
        net = self.networks.get(p.network_id)
        if net is None or not net.admin_state_up:
            return []
        checks.port(p)
        lid = self.local_id(net.id)
        routed = net.id in self.net_routers
        if p.host == self.host:
            ofport = self.vif_ofports.get(pid)
            if ofport is None:
                return []
            flows = port_rules.local_port_flows(p, ofport, lid, routed,
                                                self.permitted_ethertypes)
            if routed and p.admin_state_up and p.allowed_address_pairs:
                flows.extend(router_rules.pair_resolve_flows(
                    self._pair_resolution(p), lid, cookies.cookie_for(cookies.KIND_PORT, pid)))
            if self.metadata_ofport and p.admin_state_up:
                cookie = cookies.cookie_for(cookies.KIND_PORT, pid)
                flows.extend(metadata_rules.port_flows(p, ofport, self.metadata_ofport, cookie))
            return flows
        h = self.remote_hosts.get(p.host)
        if h is None:
            return []
        link = net_rules.uplink(net, self.tunnel_ofports, self.physnet_ofports)
        if link is None:
            return []
        send = net_rules.remote_hop(link, h.tunnel_ip)
        flows = port_rules.remote_port_flows(p, lid, send, routed)
        if routed and send and p.admin_state_up and p.allowed_address_pairs:
            flows.extend(router_rules.pair_resolve_flows(
                self._pair_resolution(p), lid, cookies.cookie_for(cookies.KIND_PORT, pid)))
        return flows

    def _compute_port_acl(self, owner) -> list[Flow]:
        pid = owner[1]
        p = self.ports.get(pid)
        if p is None or p.host != self.host or not p.admin_state_up:
            return []
        ofport = self.vif_ofports.get(pid)
        net = self.networks.get(p.network_id)
        if ofport is None or net is None or not net.admin_state_up:
            return []
        checks.port(p)
        by_dir: dict = {}
        conj = self.alloc.conj_ids
        stateful = True
        for g in p.security_groups:
            for key in self.sg_keys.get(g, ()):
                by_dir.setdefault(key[1], []).append((conj[key], 3 if key[2] else 2))
            group = self.groups.get(g)
            if group is not None and not group.stateful:
                stateful = False  # (the API keeps a port from mixing them)
        return acl_rules.port_acl_flows(p, ofport, by_dir, stateful)

    def _compute_group(self, owner) -> list[Flow]:
        key = owner[1:]
        if key not in self.sg_keys.get(key[0], ()):
            return []
        return acl_rules.accept_flows(key, self.alloc.conj_ids[key])

    def _compute_rule_match(self, owner) -> list[Flow]:
        _, table, m = owner
        ids = self.match_refs.get((table, m))
        at = acl_rules.address_at(table, m) if ids else None
        return acl_rules.rule_match_flows(table, m, ids,
                                          self._address_conj_ids(*at) if at else ())

    def _compute_address(self, owner) -> list[Flow]:
        _, d, ip = owner
        checks.member(ip)
        if d in acl_rules.STATELESS_DIRS and \
                acl_rules.address_match(d, ip) in self.match_refs:
            return []  # (the rule match's flow carries it: address_at)
        return acl_rules.address_flows(d, ip, self._address_conj_ids(d, ip))

    def _address_conj_ids(self, d: str, ip: str) -> list[int]:
        """The conj_ids of the remote keys (direction ``d``) whose group or
        address group holds ``ip``: its clause 2."""
        conj = self.alloc.conj_ids
        return [conj[(sg, d, g)] for g in self.ip_groups.get(ip, ())
                for sg in self.remote_refs.get((g, d), ())]

    def _compute_router(self, owner) -> list[Flow]:
        r = self.routers.get(owner[1])
        if r is None or not r.admin_state_up:
            return []
        # compiled only on hosts with a port on one of its networks (or
        # that are one of its gateway hosts)
        if not self._router_here(r):
            return []
        for ifc in r.interfaces:
            checks.mac(ifc.mac_address)
            checks.parses(ifc.ip_address)
        ifaces = []
        for ifc in r.interfaces:
            net = self.networks.get(ifc.network_id)
            if net is not None and net.admin_state_up:
                ifaces.append((ifc, self.local_id(net.id)))
        lids = dict(ifaces)  # in order: the first interface on the next hop's subnet
        routes = []
        for rt in r.routes:
            egress = router_rules.route_egress(rt, lids)
            if egress is None:
                continue  # not taken (route_egress says when)
            ifc = egress[1]
            lid = lids[ifc]
            mac = None
            for pid in sorted(self.net_ports.get(ifc.network_id, ())):
                p = self.ports[pid]
                if rt.nexthop in p.ips and not is_router_port(p):
                    mac = p.mac_address
                    break
            if mac is None:  # ... or an address pair's (a VRRP address) one port holds
                holders = self.pair_holders.get((ifc.network_id, rt.nexthop), ())
                if len(holders) == 1:
                    mac = dict(self._pair_resolution(self.ports[next(iter(holders))])) \
                        .get(rt.nexthop)
            routes.append((rt, ifc, lid, mac))
        return router_rules.router_flows(r, self.router_zone(r.id), ifaces, routes)

    def _gateway_host(self, r: Router) -> bool:
        return r.gateway is not None and self.host in r.gateway.hosts

    def _router_here(self, r: Router) -> bool:
        if any(n in self.net_local for n in r.network_ids):
            return True
        return r.gateway is not None and self.host in r.gateway.hosts

    def _gateway_role(self, gw) -> str:
        """"active" (the first of the router's gateway hosts this host
        sees alive: itself, or hosts before it that BFD says are down),
        "standby" (another gateway host), or "compute"."""
        if self.host not in gw.hosts:
            return "compute"
        for h in gw.hosts:
            if h == self.host:
                return "active"
            # An earlier host is alive unless known down: one whose BFD
            # port is still being made (no ofport yet) is not down, and the
            # agent names it active too (agent/gateways.active_gateway);
            # taking over now would put the gateway's MAC and address on
            # two hosts of the external network.
            if h not in self.gateways_down:
                return "standby"
        return "compute"

    def _redirect_members(self, gw) -> tuple:
        """The ofports of the BFD tunnels a router's SNAT traffic may be
        redirected over from here, in the gateway hosts' order (the switch
        takes the first whose BFD is up, failing over without the agent).
        A host not known down whose port has no ofport yet ends the list:
        the hosts after it are standbys while it is alive, and would SNAT
        what they receive beside it (when it is the active one, nothing
        leaves: dropped until its port is numbered)."""
        out = []
        for h in gw.hosts:
            if h == self.host:
                continue
            ofport = self.gateway_ofports.get(h)
            if h in self.gateways_down:
                if ofport is not None:
                    out.append(ofport)
                continue
            if ofport is None:
                break
            out.append(ofport)
        return tuple(out)

    def _ext(self, r: Router):
        """(Zones, ExtNet) of a router's gateway here, or None."""
        gw = r.gateway
        if gw is None or not r.admin_state_up or not self._router_here(r):
            return None
        net = self.networks.get(gw.network_id)
        if net is None or not net.admin_state_up:
            return None
        gw_ip = gw_rules.gateway_v4(gw)
        if gw_ip is None:
            return None
        checks.segment(net.segment)  # (its VLAN tags the replies: ExtNet.reply)
        checks.mac(gw.mac_address)
        addr = ipaddress.IPv4Address(checks.ipv4(gw_ip))
        sub = None
        for sid in sorted(self.net_subnets.get(net.id, ())):
            s = self.subnets[sid]
            if s.ip_version == 4 and addr in ipaddress.ip_network(s.cidr, strict=False):
                sub = s
                break
        if sub is None:
            return None
        a = self.alloc.local_ids
        zones = gw_rules.Zones(a[ROUTER_ZONE_PREFIX + r.id], a[DNAT_ZONE_PREFIX + r.id],
                               a[SNAT_ZONE_PREFIX + r.id])
        link = net_rules.uplink(net, self.tunnel_ofports, self.physnet_ofports)
        cidr = str(ipaddress.ip_network(sub.cidr, strict=False))
        cidr6 = gateway6 = None
        gw6 = gw_rules.gateway_v6(gw)
        if gw6 is not None:
            a6 = ipaddress.IPv6Address(gw6)
            for sid in sorted(self.net_subnets.get(net.id, ())):
                s = self.subnets[sid]
                if s.ip_version == 6 and a6 in ipaddress.ip_network(s.cidr, strict=False):
                    cidr6 = str(ipaddress.ip_network(s.cidr, strict=False))
                    gateway6 = s.gateway_ip
                    break
        vlan = net.segment.segmentation_id if link is not None and link[0] == "vlan" else None
        ext = gw_rules.ExtNet(self.local_id(net.id), cidr, sub.gateway_ip, link is not None,
                              cidr6, gateway6, gw_rules.reply_actions(vlan))
        return zones, ext

    def _compute_gateway(self, owner) -> list[Flow]:
        r = self.routers.get(owner[1])
        if r is None:
            return []
        got = self._ext(r)
        if got is None:
            return []
        zones, ext = got
        gw = r.gateway
        if gw.redirect_key:
            checks.redirect_key(gw.redirect_key)
        role = self._gateway_role(gw)
        members = self._redirect_members(gw)
        classify = ()
        if role != "compute":
            classify = tuple((o, pipeline.CLASSIFY) for o in self.gateway_ofports.values()) + \
                tuple((o, pipeline.TUNNEL_CLASSIFY) for o in self.tunnel_ofports.values())
        return gw_rules.gateway_flows(r.id, zones, gw, ext, role, members, classify, r)

    def _fip_served(self, r: Router, fip, got) -> tuple[str | None, bool] | None:
        """(fixed address, forwarding) of a floating IP of router ``r``
        (``got``: its ``_ext``) served on this host -- associated with a
        port bound here, or with a port bound nowhere (an Octavia or
        keepalived VIP, reached through the address pair of the port that
        holds it) or with port forwardings on the router's active gateway
        host --, else None."""
        if got is None or fip.floating_network_id != r.gateway.network_id or \
                not got[1].uplink or ":" in fip.floating_ip_address or not fip.mac_address:
            return None
        if fip.port_id:
            p = self.ports.get(fip.port_id)
            if p is None:
                return None
            # (Neutron's DVR routers likewise leave an unbound port's
            # floating IP to the central SNAT router)
            if p.host != self.host and not (
                    not p.host and self._gateway_role(r.gateway) == "active"):
                return None
            fixed = fip.fixed_ip_address or next((ip for ip in p.ips if ":" not in ip), None)
            return None if fixed is None else (fixed, False)
        if fip.port_forwardings and self._gateway_role(r.gateway) == "active":
            return None, True
        return None

    def _compute_floating_ip(self, owner) -> list[Flow]:
        fid = owner[1]
        r = self.routers.get(self.fip_router.get(fid))
        if r is None:
            return []
        fip = next((f for f in r.floating_ips if f.id == fid), None)
        got = self._ext(r)
        served = self._fip_served(r, fip, got) if fip is not None else None
        if served is None:
            return []
        checks.ipv4(fip.floating_ip_address)
        checks.mac(fip.mac_address)
        if served[0] is not None:
            checks.ipv4(served[0])
        for pf in fip.port_forwardings:
            checks.ip(pf.internal_ip_address)
        zones, ext = got
        return gw_rules.floating_ip_flows(fip, zones, ext.local_id, served[0], served[1],
                                          ext.reply, ext.gateway_ip)

    def _uplinked_routers(self):
        """(router id, router, _ext's (zones, ExtNet)) of the routers whose
        gateway network has an uplink here, by id."""
        for rid in sorted(self.routers):
            r = self.routers[rid]
            try:
                got = self._ext(r)
            except ValueError:
                continue  # (a bad address: its gateway and floating IPs are held)
            if got is not None and got[1].uplink:
                yield rid, r, got

    def neighbour_sources(self) -> dict[str, tuple[NeighbourSource, ...]]:
        """External network id -> the addresses this host may ask for a
        neighbour from (agent/responders/neighbours.py), best first: the
        gateway addresses of the routers this host is a gateway host of
        (the active one's first), then the floating IPs served here.  The
        answers to exactly these are punted (the gateway's and floating
        IPs' flows: rules/neighbours.py), under the same conditions."""
        out: dict[str, list[NeighbourSource]] = {}
        for rid, r, got in self._uplinked_routers():
            ext = got[1]
            nid = r.gateway.network_id
            role = self._gateway_role(r.gateway)
            if role != "compute":
                addrs = [gw_rules.gateway_v4(r.gateway)]
                gw6 = gw_rules.gateway_v6(r.gateway)
                if gw6 is not None and ext.cidr6 is not None:
                    addrs.append(gw6)
                rank = 0 if role == "active" else 1
                out.setdefault(nid, []).extend(
                    NeighbourSource(a, r.gateway.mac_address, rid, None, rank) for a in addrs)
        for rid, f, fixed in self.served_floating_ips():
            out.setdefault(f.floating_network_id, []).append(
                NeighbourSource(f.floating_ip_address, f.mac_address, rid, fixed,
                                RANK_FLOATING_IP))
        return {nid: tuple(sorted(v, key=lambda s: (s.rank, s.router_id, s.ip)))
                for nid, v in out.items()}

    def served_floating_ips(self) -> tuple[tuple[str, FloatingIP, str | None], ...]:
        """(router id, floating IP, fixed address or None) of every floating
        IP this host serves (answers ARP for with its MAC and translates:
        ``_fip_served``, the rule its flows follow), by router.  The one
        answer to "which floating IPs are here" for the agent too: what it
        reports installed (the server sets those ACTIVE) and announces, so
        that neither can drift from the flows."""
        out = []
        for rid, r, got in self._uplinked_routers():
            for f in r.floating_ips:
                served = self._fip_served(r, f, got)
                if served is None or not _good_ip(f.floating_ip_address) or \
                        (served[0] is not None and not _good_ip(served[0])):
                    continue  # (one that does not parse: its flows are held)
                out.append((rid, f, served[0]))
        return tuple(out)

    def _compute_external(self, owner) -> list[Flow]:
        nid = owner[1]
        net = self.networks.get(nid)
        if net is None or not net.admin_state_up or not self.ext_routers.get(nid):
            return []
        checks.segment(net.segment)
        link = net_rules.uplink(net, self.tunnel_ofports, self.physnet_ofports)
        send = net_rules.remote_actions(net, link, None) if link and link[0] != "tunnel" else ()
        gateways6 = frozenset(self.subnets[s].gateway_ip for s in self.net_subnets.get(nid, ())
                              if self.subnets[s].ip_version == 6 and self.subnets[s].gateway_ip)
        return gw_rules.external_flows(nid, self.local_id(nid), self.neighbours.get(nid, ()),
                                       send, gateways6)
    def _compute_tunnel_peer(self, owner) -> list[Flow]:
        ip = owner[1]
        if ip not in self.peer_ips:
            return []
        checks.ip(ip)
        return net_rules.tunnel_peer_flows(ip, self.tunnel_ofports,
                                           cookies.cookie_for(cookies.KIND_TUNNEL_PEER, ip))

    def _compute_metadata(self, owner) -> list[Flow]:
        return metadata_rules.proxy_flows(self.metadata_ofport)

    # Instance methods (OwnerKind.instances): every owner of a kind, for load().
    def _static_owners(self):
        return (STATIC,)

    def _network_owners(self):
        return [(NETWORK, n) for n in self.networks]

    def _port_owners(self):
        return [(PORT, pid) for pid in self.ports]

    def _port_acl_owners(self):
        return [(PORT_ACL, pid) for pid, p in self.ports.items() if p.host == self.host]

    def _group_owners(self):
        return [(GROUP,) + k for keys in self.sg_keys.values() for k in keys]

    def _rule_match_owners(self):
        return [(RULE_MATCH,) + tm for tm in self.match_refs]

    def _router_owners(self):
        return [(ROUTER, rid) for rid in self.routers]

    def _gateway_owners(self):
        return [(GATEWAY, rid) for rid, r in self.routers.items() if r.gateway is not None]

    def _floating_ip_owners(self):
        return [(FLOATING_IP, fid) for fid in self.fip_router]

    def _external_owners(self):
        return [(EXTERNAL, nid) for nid in self.ext_routers]
    def _tunnel_peer_owners(self):
        return [(TUNNEL_PEER, ip) for ip in self.peer_ips]

    def _metadata_owners(self):
        return [(METADATA,)]

    def _address_owners(self):
        addrs = set()
        for (gid, d), sgs in self.remote_refs.items():
            if sgs:
                addrs.update((ADDRESS, d, ip) for ip in self._remote_addresses(gid))
        return addrs

    # ------------------------------------------------------------- graph
    @staticmethod
    def describe(fmt: str = "text") -> str:
        """The engine's graph (inputs -> owner kinds), from INPUTS and
        OWNER_KINDS: ``fmt="text"`` for people, ``"dot"`` for Graphviz."""
        return describe(fmt)

    @staticmethod
    def dot() -> str:
        return describe("dot")


INPUTS: tuple[Input, ...] = (
    Input(NETWORKS, "HostView.networks; Delta.networks, removed_networks",
          "a network: state, segment, MTU, local id"),
    Input(SUBNETS, "HostView.subnets; Delta.subnets, removed_subnets",
          "a subnet: CIDR, DHCP, gateway, routes"),
    Input(PORTS, "HostView.ports; Delta.ports, removed_ports",
          "a port (local or remote): host, addresses, state, groups, security"),
    Input(SG_RULES, "SecurityGroup.rules; Delta.security_groups, removed_security_groups, "
          "groups_kept, group_rules",
          "a security group's rules (the conjunction keys and rule matches)"),
    Input(SG_MEMBERS, "SecurityGroup.member_ips; Delta.group_members",
          "a security group's member addresses"),
    Input(ADDRESS_GROUPS, "HostView.address_groups; Delta.address_groups",
          "an address group's CIDRs (the remote of rules naming it)"),
    Input(REMOTE_HOSTS, "HostView.remote_hosts; Delta.remote_hosts, removed_remote_hosts",
          "another host's tunnel address"),
    Input(ROUTERS, "HostView.routers; Delta.routers, removed_routers",
          "a router: state, interfaces (port, subnet, address, MAC), extra routes"),
    Input(VIF_OFPORTS, "Chassis.vif_ofports; set_chassis",
          "the OpenFlow port of each VIF plugged here"),
    Input(UPLINK_OFPORTS, "Chassis.tunnel_ofports, physnet_ofports; set_chassis",
          "the tunnel ports and the patch ports to physical bridges"),
    Input(GATEWAY_OFPORTS, "Chassis.gateway_ofports; set_chassis",
          "the per-remote tunnel ports (BFD) to gateway hosts / hosts using this gateway"),
    Input(GATEWAYS_DOWN, "Chassis.gateways_down; set_chassis",
          "gateway hosts whose BFD says down (who is the active gateway host)"),
    Input(NEIGHBOURS, "Chassis.neighbours; set_chassis",
          "addresses the agent resolved on external networks"),
    Input(METADATA_OFPORT, "Chassis.metadata_ofport; set_chassis",
          "the port of this host's metadata proxy (0: none)"),
    Input(ALLOCATIONS, "Allocations given to Engine(); read by load()",
          "network local ids and conjunction ids kept across restarts", incremental=False),
)

OWNER_KINDS: tuple[OwnerKind, ...] = (
    OwnerKind(STATIC_KIND, cookies.KIND_STATIC, (), Engine._compute_static,
              Engine._static_owners, (),
              "the fixed pipeline: table-miss drops, conntrack plumbing", rank=2),
    OwnerKind(NETWORK, cookies.KIND_NETWORK, ("network_id",), Engine._compute_network,
              Engine._network_owners,
              (NETWORKS, SUBNETS, PORTS, REMOTE_HOSTS, VIF_OFPORTS, UPLINK_OFPORTS, ROUTERS,
               GATEWAY_OFPORTS, ALLOCATIONS),
              "classify from tunnels and patch ports, flooding to the enabled local ports "
              "and the remote hosts, the way out to the remote hosts (REMOTE_OUT: IP "
              "committed, then the tunnel or the patch port), DHCP punts", rank=1),
    OwnerKind(PORT, cookies.KIND_PORT, ("port_id",), Engine._compute_port,
              Engine._port_owners,
              (PORTS, NETWORKS, REMOTE_HOSTS, VIF_OFPORTS, UPLINK_OFPORTS, ROUTERS,
               ALLOCATIONS, METADATA_OFPORT),
              "local: classify, port security, ARP, output, its metadata requests to the "
              "proxy and the replies back; remote: L2 lookup (its host's tunnel "
              "address, on to its network's REMOTE_OUT); on a network with a router: the "
              "L3_RESOLVE entry of its addresses"),
    OwnerKind(PORT_ACL, cookies.KIND_PORT_ACL, ("port_id",), Engine._compute_port_acl,
              Engine._port_acl_owners,
              (PORTS, NETWORKS, VIF_OFPORTS, SG_RULES, ALLOCATIONS),
              "a local port's clause 0 of the conjunctions of its groups (both directions)"),
    OwnerKind(GROUP, cookies.KIND_GROUP, ("security_group_id", "direction", "remote_group_id"),
              Engine._compute_group, Engine._group_owners, (SG_RULES, ALLOCATIONS),
              "a conjunction key some rule of the group has: its accept flow"),
    OwnerKind(RULE_MATCH, cookies.KIND_RULE, ("table", "match"), Engine._compute_rule_match,
              Engine._rule_match_owners, (SG_RULES, SG_MEMBERS, ADDRESS_GROUPS, ALLOCATIONS),
              "clause 1: one rule match, shared by the conjunction keys that need it (in a "
              "stateless table also the clause 2 of an address whose flow it is)"),
    OwnerKind(ADDRESS, cookies.KIND_ADDRESS, ("direction", "address"),
              Engine._compute_address, Engine._address_owners,
              (SG_MEMBERS, ADDRESS_GROUPS, SG_RULES, ALLOCATIONS),
              "clause 2: one member address (or address group CIDR), shared by the "
              "remote keys of its groups and address groups"),
    OwnerKind(ROUTER, cookies.KIND_ROUTER, ("router_id",), Engine._compute_router,
              Engine._router_owners, (ROUTERS, NETWORKS, PORTS, ALLOCATIONS),
              "on hosts with a port on one of its networks: ARP/ND and echo answers for "
              "its addresses, its conntrack zone, admission, routes by longest prefix "
              "(extra routes resolved to their next hop's port)"),
    OwnerKind(GATEWAY, cookies.KIND_GATEWAY, ("router_id",), Engine._compute_gateway,
              Engine._gateway_owners,
              (ROUTERS, NETWORKS, SUBNETS, PORTS, UPLINK_OFPORTS, GATEWAY_OFPORTS, GATEWAYS_DOWN,
               ALLOCATIONS),
              "a router's gateway where the router is compiled: routes out of it, SNAT on "
              "the active gateway host or the redirect (bundle over the gateway hosts' "
              "tunnels) elsewhere; on gateway hosts the redirect's classification and the "
              "gateway address (ARP on the active one only)"),
    OwnerKind(FLOATING_IP, cookies.KIND_FLOATING_IP, ("floating_ip_id",),
              Engine._compute_floating_ip, Engine._floating_ip_owners,
              (ROUTERS, NETWORKS, SUBNETS, PORTS, UPLINK_OFPORTS, GATEWAY_OFPORTS, GATEWAYS_DOWN,
               ALLOCATIONS),
              "a floating IP on its port's host (port forwardings: the active gateway host): "
              "ARP, un-SNAT, DNAT, SNAT, hairpin"),
    OwnerKind(EXTERNAL, cookies.KIND_EXTERNAL, ("network_id",), Engine._compute_external,
              Engine._external_owners,
              (ROUTERS, NETWORKS, SUBNETS, UPLINK_OFPORTS, GATEWAY_OFPORTS, NEIGHBOURS,
               ALLOCATIONS),
              "an external network: the resolved neighbours' L3_RESOLVE / L2 entries (IPv6: "
              "also its subnets' gateways) and the metered punt of an unresolved next hop",
              rank=1),
    OwnerKind(TUNNEL_PEER, cookies.KIND_TUNNEL_PEER, ("tunnel_ip",),
              Engine._compute_tunnel_peer, Engine._tunnel_peer_owners,
              (REMOTE_HOSTS, UPLINK_OFPORTS),
              "a remote host's tunnel address: its packets on the flow-based tunnel ports "
              "go on to TUNNEL_CLASSIFY (a source that is no known host is dropped)",
              rank=1),
    OwnerKind(METADATA, cookies.KIND_METADATA, (), Engine._compute_metadata,
              Engine._metadata_owners, (METADATA_OFPORT,),
              "this host's metadata proxy port: its classification and anti-spoofing, "
              "ARP / ND answers for 169.254.169.254 and fe80::a9fe:a9fe", rank=2),
)
_RANKS = {k.name: k.rank for k in OWNER_KINDS}
# Engine.refused's kind of item: a security group rule left out.
REFUSED_RULE = "security-group-rule"


_good_ip = checks.good_ip


def _good_tunnel_ip(ip) -> bool:
    """A remote host's address the tunnel flows can carry (tun_ipv4_dst):
    a host with another is left out of its networks' flooding (and its
    ports are held: net_rules.remote_hop), not the network held."""
    return checks.good_ip(ip) and ":" not in ip


def _address_keys(addresses) -> set:
    """An address group's CIDRs as clause-2 addresses, leaving out those
    that do not parse (matched by nothing: fail closed)."""
    out = set()
    for x in addresses:
        try:
            out.add(acl_rules.address_key(x))
        except ValueError:
            pass
    return out


def _owner_rank(owner) -> int:
    return _RANKS[owner[0]]


def _check_graph() -> None:
    """The tables hold together (run at import: a bad row fails at once)."""
    inputs = {i.name for i in INPUTS}
    names = [k.name for k in OWNER_KINDS]
    if len(set(names)) != len(names) or len(inputs) != len(INPUTS):
        raise CompileError("engine graph: a name is declared twice")
    for k in OWNER_KINDS:
        if cookies.KIND_NAMES.get(k.cookie_kind) != k.name:
            raise CompileError(f"owner kind {k.name!r}: cookie kind {k.cookie_kind:#x} is "
                               f"named {cookies.KIND_NAMES.get(k.cookie_kind)!r}")
        unknown = set(k.depends_on) - inputs
        if unknown:
            raise CompileError(f"owner kind {k.name!r} depends on undeclared {sorted(unknown)}")


_check_graph()


def describe(fmt: str = "text") -> str:
    """The graph from INPUTS and OWNER_KINDS, as text or Graphviz DOT."""
    if fmt == "dot":
        return _dot()
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r} (text, dot)")
    out = ["inputs (what the engine is told):"]
    w = max(len(i.name) for i in INPUTS)
    for i in INPUTS:
        tag = "" if i.incremental else "  [load only]"
        out.append(f"  {i.name:<{w}}  {i.doc}{tag}")
        out.append(f"  {'':<{w}}  from {i.source}")
    out.append("")
    out.append("owner kinds (owner = (kind, *key); each flow carries its owner's cookie):")
    for k in OWNER_KINDS:
        out.append(f"  {k.name}")
        out.append(f"      owner       ({', '.join((k.name,) + k.key)})")
        out.append(f"      cookie      {k.cookie_kind:#04x} (cookies.KIND_NAMES)")
        out.append(f"      compute     Engine.{k.compute.__name__}")
        out.append(f"      depends on  {', '.join(k.depends_on) or 'nothing'}")
        out.append(f"      rank        {k.rank} (a conflict holds back the lower)")
        out.extend(textwrap.wrap(k.doc, 76, initial_indent=" " * 6,
                                 subsequent_indent=" " * 6))
    return "\n".join(out) + "\n"


def _dot() -> str:
    out = ["digraph quantum_ovs_engine {", "  rankdir=LR;",
           "  node [shape=box, fontname=Helvetica];"]
    for i in INPUTS:
        style = "" if i.incremental else ", style=dashed"
        out.append(f'  "input:{i.name}" [label="{i.name}", shape=ellipse{style}];')
    for k in OWNER_KINDS:
        out.append(f'  "owner:{k.name}" [label="{k.name}\\ncookie {k.cookie_kind:#04x}"];')
    for k in OWNER_KINDS:
        for dep in k.depends_on:
            out.append(f'  "input:{dep}" -> "owner:{k.name}";')
    out.append("}")
    return "\n".join(out) + "\n"


def compile_flows(view: HostView, allocations: Allocations | None = None) -> frozenset[Flow]:
    """A full compile of ``view``: the complete desired flow set."""
    return Engine.from_view(view, allocations).flows()
