"""Flows as values: the vocabulary shared by the compiler, the tracer and
the agent's OpenFlow encoder (the only place that turns these into os-ken
messages).

Match field names follow OXM / os-ken names (``in_port``, ``eth_src``,
``eth_dst``, ``eth_type``, ``vlan_vid``, ``ip_proto``, ``ipv4_src``,
``ipv4_dst``, ``ipv6_src``, ``ipv6_dst``, ``tcp_src``, ``tcp_dst``,
``udp_src``, ``udp_dst``, ``icmpv4_type``, ``icmpv4_code``,
``icmpv6_type``, ``icmpv6_code``, ``arp_op``, ``arp_spa``, ``arp_tpa``,
``arp_sha``, ``arp_tha``, ``ipv6_nd_target``, ``ipv6_nd_sll``,
``ipv6_nd_tll``, ``tunnel_id``, ``metadata``, ``nw_ttl``) plus the Nicira extension
fields os-ken exposes under these names: ``reg0`` .. ``reg7``,
``ct_state``, ``ct_zone``, ``ct_mark``, ``ct_label``, ``conj_id``, ``tun_ipv4_src``,
``tun_ipv4_dst``, ``nd_reserved`` (the neighbour advertisement flags
word: R 0x80000000, S 0x40000000, O 0x20000000) and ``nd_options_type``
(1 source / 2 target link-layer address option), set by the ND responder.

Values are ints for numeric fields and canonical strings for MACs
(lower-case) and IP addresses (``ipaddress`` form, no prefix; a prefix is
given as a mask).  ``vlan_vid`` carries the OFPVID_PRESENT bit (0x1000)
like OpenFlow 1.3 does.  ``ct_state`` uses the OVS bit values below.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

OFPVID_PRESENT = 0x1000

# ct_state bits, as Open vSwitch defines them.
CT_NEW = 0x01
CT_EST = 0x02
CT_REL = 0x04
CT_RPL = 0x08
CT_INV = 0x10
CT_TRK = 0x20
# the lookup's nat() translated the packet's source / destination (a reply
# of a DNAT connection is un-DNATed: its source is changed, +snat)
CT_SNAT = 0x40
CT_DNAT = 0x80

MatchValue = Union[int, str]


# Match fields by the kind of value they hold (anything else is an int):
# how the tracer reads and masks them and how the agent encodes them.
MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha", "ipv6_nd_sll",
                        "ipv6_nd_tll"})
IP4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src",
                        "tun_ipv4_dst"})
IP6_FIELDS = frozenset({"ipv6_src", "ipv6_dst", "ipv6_nd_target", "tun_ipv6_src"})


class Field(namedtuple("Field", ("name", "value", "mask"), defaults=(None,))):
    """One match term.  ``mask`` None means an exact match.

    A (name, value, mask) named tuple: hashed, compared and ordered by C,
    which a cold start's ~50k flows (each hashed a few times, term by term,
    in diffs, indexes and the encoder's memo) feel; a dataclass hashed and
    compared each term in Python (issue 17)."""

    __slots__ = ()


class Match(tuple):
    """A canonical (sorted by field name, one term per field) match."""

    __slots__ = ()

    def __new__(cls, *fields: Field, **exact: MatchValue) -> "Match":
        terms = {f.name: f for f in fields}
        for name, value in exact.items():
            if name in terms:
                raise ValueError(f"field {name} given twice")
            terms[name] = Field(name, value)
        return super().__new__(cls, tuple(terms[k] for k in sorted(terms)))

    def get(self, name: str) -> Optional[Field]:
        for f in self:
            if f.name == name:
                return f
        return None

    def as_dict(self) -> dict[str, Field]:
        return {f.name: f for f in self}

    def __repr__(self) -> str:
        parts = []
        for f in self:
            parts.append(
                f"{f.name}={f.value}" if f.mask is None else f"{f.name}={f.value}/{f.mask}"
            )
        return "Match(" + ",".join(parts) + ")"


# ---------------------------------------------------------------- actions
# Actions are applied in order (an OpenFlow 1.3 apply-actions list),
# except GotoTable which, if present, must be last and becomes the
# goto-table instruction.


@dataclass(frozen=True, slots=True)
class Output:
    port: int  # an ofport, or one of the OFPP_* constants below


@dataclass(frozen=True, slots=True)
class SetField:
    name: str
    value: MatchValue


@dataclass(frozen=True, slots=True)
class PushVlan:
    ethertype: int = 0x8100


@dataclass(frozen=True, slots=True)
class PopVlan:
    pass


@dataclass(frozen=True, slots=True)
class GotoTable:
    table: int


@dataclass(frozen=True, slots=True)
class Resubmit:
    """Nicira resubmit(in_port, table); ``in_port`` None keeps the packet's."""

    table: int
    in_port: Optional[int] = None


@dataclass(frozen=True, slots=True)
class Controller:
    max_len: int = 0xFFFF
    userdata: bytes = b""


@dataclass(frozen=True, slots=True)
class Meter:
    """The OpenFlow 1.3 meter instruction: the packet passes meter ``id``
    (which may drop it) before the other actions.  Always the first item
    of a flow's actions, as GotoTable is always the last."""

    id: int


def meter_ids(flows) -> set[int]:
    """The meters ``flows`` use (the switch must have them before it takes
    the flows)."""
    return {f.actions[0].id for f in flows if f.actions and type(f.actions[0]) is Meter}


@dataclass(frozen=True, slots=True)
class Conjunction:
    id: int
    clause: int  # 0-based clause number (OVS prints it 1-based)
    n_clauses: int


@dataclass(frozen=True, slots=True)
class Nat:
    """The nat() of a ct(): ``kind`` "src" or "dst" with an address range
    (``ip_min``..``ip_max``, IPv4 or IPv6; ``ip_max`` None = one address)
    and an optional L4 port range, translates a new connection when the
    ct() commits it; ``kind`` None (plain ``nat``) applies the NAT a
    connection already has (reverse translation for its replies) and
    nothing else."""

    kind: Optional[str] = None  # "src" | "dst" | None
    ip_min: Optional[str] = None
    ip_max: Optional[str] = None
    port_min: Optional[int] = None
    port_max: Optional[int] = None


@dataclass(frozen=True, slots=True)
class Ct:
    """Nicira ct(): send through conntrack, optionally commit, recirculate.

    ``zone_src`` names a register holding the zone (e.g. "reg6") when the
    zone is per-packet; otherwise ``zone`` is a constant.  ``table`` is
    where the packet recirculates after tracking (None = no recirc).
    ``nat`` (a Nat) translates the packet; ``mark`` (with ``commit``, not
    with ``nat``) sets the connection's ct_mark (a nested set_field);
    ``write`` (with ``commit``, not with ``nat`` or ``mark``) writes bits of
    its ct_label or ct_mark: a Move into one (a nested move) or a LoadBits
    of one (a nested masked load).  They are the only nested actions.
    """

    commit: bool = False
    zone: int = 0
    zone_src: Optional[str] = None
    table: Optional[int] = None
    nat: Optional[Nat] = None
    mark: Optional[int] = None
    write: Optional[Union["Move", "LoadBits"]] = None


@dataclass(frozen=True, slots=True)
class LoadBits:
    """The bits of field ``name`` under ``mask`` set to ``value`` (a Nicira
    masked load), the others kept.  Only inside ct(): ``write``."""

    name: str
    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class Bundle:
    """Nicira bundle(): output to one of ``members`` (ofports).  With
    ``active_backup`` the first member the switch considers alive (link
    up and, on a tunnel with BFD, BFD forwarding) in the given order;
    nothing if none is."""

    members: tuple
    algorithm: str = "active_backup"  # "active_backup" | "hrw"
    fields: str = "eth_src"  # "eth_src" | "symmetric_l4" (hash input for hrw)
    basis: int = 0


@dataclass(frozen=True, slots=True)
class Move:
    """Nicira move (OpenFlow 1.5 copy-field): copy ``n_bits`` bits of field
    ``src`` starting at bit ``src_ofs`` into field ``dst`` at ``dst_ofs``.

    Field names are the match vocabulary above (e.g. ``eth_src``,
    ``arp_sha``, ``arp_spa``, ``reg7``).  Bit 0 is the least significant
    bit of the field's value.  Used by the ARP responder to turn a request
    around in flows (eth_src -> eth_dst, arp_sha -> arp_tha,
    arp_spa -> arp_tpa).
    """

    src: str
    dst: str
    n_bits: int
    src_ofs: int = 0
    dst_ofs: int = 0


@dataclass(frozen=True, slots=True)
class DecTtl:
    """OpenFlow 1.3 dec_nw_ttl (IPv4 TTL / IPv6 hop limit).  A packet
    whose TTL is 0 or 1 is not decremented: the switch sends it to the
    controller (reason invalid TTL) and stops the action list."""


@dataclass(frozen=True, slots=True)
class Learn:
    """Placeholder for future MAC learning; not emitted today."""

    table: int
    spec: tuple = ()


Action = Union[
    Output, SetField, PushVlan, PopVlan, GotoTable, Resubmit, Controller, Conjunction, Ct,
    Move, DecTtl, Bundle,
]

OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_LOCAL = 0xFFFFFFFE


@dataclass(frozen=True, slots=True, order=True)
class FlowKey:
    """The switch's identity of a flow."""

    table: int
    priority: int
    match: Match


@dataclass(frozen=True, slots=True)
class Flow:
    table: int
    priority: int
    match: Match
    actions: tuple = ()  # tuple[Action, ...]; empty = drop
    cookie: int = 0

    @property
    def key(self) -> FlowKey:
        return FlowKey(self.table, self.priority, self.match)


@dataclass(frozen=True, slots=True)
class FlowDiff:
    deletes: tuple[Flow, ...] = ()
    modifies: tuple[Flow, ...] = ()  # same key, new actions or cookie
    adds: tuple[Flow, ...] = ()

    def __len__(self) -> int:
        return len(self.deletes) + len(self.modifies) + len(self.adds)

    @property
    def empty(self) -> bool:
        return not (self.deletes or self.modifies or self.adds)


def index(flows) -> dict[FlowKey, Flow]:
    return {f.key: f for f in flows}


# ---------------------------------------------------------------- the diff
# One diff: ``diff_pairs`` says what turns installed flows into desired ones,
# given the pair (installed, desired) for each key; ``diff`` (whole tables)
# and ``diff_keys`` (only the keys a change touched) feed it.  A key only
# installed is a delete, only desired an add, in both with other actions or
# another cookie a modify (the desired flow).  Used by the engine, the
# desired table (a batch's end) and the agent (after a dump, and after a
# change).  Each key is hashed once per side: hashing a FlowKey walks its
# whole match, and an agent's resync diffs some 67k flows.


def diff_pairs(pairs) -> FlowDiff:
    """The diff of ``(installed, desired)`` pairs, one pair per key, each
    side a Flow or None (absent)."""
    deletes, modifies, adds = [], [], []
    for have, want in pairs:
        if want is None:
            if have is not None:
                deletes.append(have)
        elif have is None:
            adds.append(want)
        elif have.actions != want.actions or have.cookie != want.cookie:
            modifies.append(want)
    return FlowDiff(tuple(deletes), tuple(modifies), tuple(adds))


def diff_keys(keys, installed, desired) -> FlowDiff:
    """What turns ``installed`` into ``desired`` for ``keys`` only (the
    other keys are taken as equal).  ``installed`` and ``desired`` answer
    ``get(key)`` with a Flow or None (mappings, or a DesiredFlows);
    ``keys`` holds no key twice."""
    have, want = installed.get, desired.get
    return diff_pairs((have(k), want(k)) for k in keys)


def diff(installed, desired) -> FlowDiff:
    """What turns ``installed`` into ``desired``, every key.

    ``installed`` is a mapping FlowKey -> Flow or an iterable of Flow.
    ``desired`` is a mapping FlowKey -> Flow, a flow table that iterates
    its Flows and answers ``get(key)``, ``key in table`` and ``len``
    (DesiredFlows), or another iterable of Flow (a list, a set).  Each
    desired flow is looked up once; the installed ones are searched for
    deletes only when some of them were not desired (a hitless resync
    finds none).
    """
    inst = installed if isinstance(installed, Mapping) else index(installed)
    if isinstance(desired, Mapping):
        want, flows = desired, desired.values()
    elif hasattr(desired, "get"):  # a flow table: iterates Flows, get/in/len by key
        want = flows = desired
    else:
        want = index(desired)
        flows = want.values()
    if not inst:  # nothing installed (a first start): every flow is an add
        return FlowDiff((), (), tuple(flows))
    have = inst.get
    d = diff_pairs((have(f.key), f) for f in flows)
    if len(flows) - len(d.adds) == len(inst):  # every installed flow is desired
        return d
    return FlowDiff(tuple(f for k, f in inst.items() if k not in want), d.modifies, d.adds)


def diff_key_set(d: FlowDiff) -> set[FlowKey]:
    """The keys a diff touches (input to a later ``diff_keys``)."""
    return {f.key for f in d.deletes} | {f.key for f in d.modifies} | {f.key for f in d.adds}
