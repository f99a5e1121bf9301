"""A packet tracer over Flow sets (like ``ovs-appctl ofproto/trace``).

``trace(flows, packet, ct_state=CT_NEW)`` walks ``packet`` (a mapping of
match-field names to values, e.g. ``{"in_port": 5, "eth_src": ...,
"eth_type": 0x0800, "ipv4_src": ..., "ip_proto": 6, "tcp_dst": 22}``)
from table 0: highest priority first, masks, goto_table, resubmit,
registers and metadata, set-field, move, VLAN push/pop, tunnel key and
destination, conjunctive matches, dec_ttl (``nw_ttl``, 64 unless given;
0 or 1: to the controller, the action list stops, as on the switch),
conntrack (each ct() lookup returns the state you give, plus +trk, and
ct_mark and ct_label 0; a callable may return (state, mark) or (state,
mark, label) to give the connection a mark and a label; commits are
recorded, a commit setting a mark is also in ``Trace.marks``, and one
writing bits of the label or mark in ``Trace.writes``), NAT (a
committing ct(nat(src|dst=address[:port])) translates the packet, as
``ofproto/trace`` does; a plain ct(nat) applies what ``nat`` -- a
callable (zone, packet) -> {field: value} standing for the connection's
existing translation -- returns, nothing by default: a new connection; a
translation sets +snat or +dnat in the state the recirculation sees, as
the switch does, the reply of a DNAT connection being +snat; every
translation is in ``Trace.nats``), bundle (the first member not in
``down_ports``), output (an output to the packet's own in_port is
dropped, as the switch does, unless it is OFPP_IN_PORT),
controller and table miss (drop).

It raises ``AmbiguousMatch`` when two flows of the same priority that do
different things both match (the switch would pick either), and
``BackwardJump`` for a goto or resubmit to the same or an earlier table.

The ``Trace`` it returns holds every step (table, the flow or a miss, the
fields the flow changed, nested resubmits by depth), the outputs with the
packet's fields at that moment, the packets sent to the controller and the
conntrack commits.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Mapping, Union

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.pipeline import TABLE_NAMES
from quantum_ovs.compiler.flow import (
    CT_DNAT,
    CT_SNAT,
    CT_TRK,
    Bundle,
    IP4_FIELDS,
    IP6_FIELDS,
    MAC_FIELDS,
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Conjunction,
    Controller,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
    Meter,
    Move,
    Output,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
)

WIDTHS = {"metadata": 64, "tunnel_id": 64, "vlan_vid": 13, "eth_type": 16, "ip_proto": 8,
          "arp_op": 16, "in_port": 32, "ct_state": 32, "ct_zone": 16, "ct_mark": 32,
          "ct_label": 128,
          "conj_id": 32, "nw_ttl": 8, "nd_reserved": 32, "nd_options_type": 8}
DEFAULT_TTL = 64  # a packet given without nw_ttl has this TTL
WIDTHS.update({f: 48 for f in MAC_FIELDS})
WIDTHS.update({f: 32 for f in IP4_FIELDS})
WIDTHS.update({f: 128 for f in IP6_FIELDS})
WIDTHS.update({f"reg{i}": 32 for i in range(16)})
MAX_DEPTH = 64


class TraceError(Exception):
    pass


class AmbiguousMatch(TraceError):
    pass


class BackwardJump(TraceError):
    pass


def to_int(name: str, value) -> int:
    if isinstance(value, int):
        return value
    if name in MAC_FIELDS:
        return int(value.replace(":", ""), 16)
    if name in IP4_FIELDS:
        return int(ipaddress.IPv4Address(value))
    if name in IP6_FIELDS:
        return int(ipaddress.IPv6Address(value))
    return int(value, 0)


def from_int(name: str, value: int):
    if name in MAC_FIELDS:
        h = f"{value:012x}"
        return ":".join(h[i:i + 2] for i in range(0, 12, 2))
    if name in IP4_FIELDS:
        return str(ipaddress.IPv4Address(value))
    if name in IP6_FIELDS:
        return str(ipaddress.IPv6Address(value))
    return value


def readable(fields: Mapping[str, int]) -> dict:
    return {k: from_int(k, v) for k, v in sorted(fields.items())}


@dataclass(frozen=True)
class Step:
    depth: int
    table: int
    flow: Flow | None  # None: table miss (drop)
    changes: dict = field(default_factory=dict)  # fields the flow's actions changed
    note: str = ""

    def __str__(self) -> str:
        pad = "  " * self.depth
        name = TABLE_NAMES.get(self.table, "")
        if self.flow is None:
            return f"{pad}{self.table:3d} {name}: miss -> drop"
        f = self.flow
        acts = ", ".join(_fmt_action(a) for a in f.actions) or "drop"
        s = f"{pad}{self.table:3d} {name}: prio {f.priority} {_fmt_match(f.match)} -> {acts}"
        s += f"  [{cookies.describe(f.cookie)}]"
        if self.note:
            s += f"  ({self.note})"
        return s


@dataclass(frozen=True)
class Delivery:
    port: int
    fields: dict  # readable packet fields at output

    def get(self, name, default=None):
        return self.fields.get(name, default)


@dataclass
class Trace:
    packet: dict
    steps: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # Delivery
    controller: list = field(default_factory=list)  # readable packets
    meters: list = field(default_factory=list)  # meter ids passed (rate limits)
    commits: list = field(default_factory=list)  # (zone, readable packet)
    marks: list = field(default_factory=list)  # (zone, ct_mark set, readable packet)
    # (zone, "ct_label" | "ct_mark", value, mask, readable packet): the
    # bits under mask set
    writes: list = field(default_factory=list)
    nats: list = field(default_factory=list)  # (zone, {field: (before, after)})
    ttl_expired: list = field(default_factory=list)  # readable packets (dec_ttl at 0/1)
    dropped_in_port: list = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [d.port for d in self.outputs]

    @property
    def dropped(self) -> bool:
        return not self.outputs and not self.controller

    def delivered_to(self, port: int) -> list[Delivery]:
        return [d for d in self.outputs if d.port == port]

    def format(self) -> str:
        lines = ["packet: " + ", ".join(f"{k}={v}" for k, v in readable(self.packet).items())]
        lines += [str(s) for s in self.steps]
        for d in self.outputs:
            extra = {k: d.fields[k] for k in ("vlan_vid", "tunnel_id", "tun_ipv4_dst",
                                              "eth_dst", "eth_src") if k in d.fields}
            lines.append(f"output {d.port} {extra}")
        for c in self.controller:
            lines.append("controller")
        for zone, _ in self.commits:
            lines.append(f"ct commit zone {zone}")
        for zone, changed in self.nats:
            what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            lines.append(f"nat zone {zone}: {what}")
        if self.dropped:
            lines.append("dropped")
        return "\n".join(lines)


def _fmt_match(m) -> str:
    return ",".join(f"{f.name}={f.value}" if f.mask is None else f"{f.name}={f.value}/{f.mask}"
                    for f in m) or "any"


def _fmt_action(a) -> str:
    if isinstance(a, Output):
        return {OFPP_IN_PORT: "output:IN_PORT", OFPP_CONTROLLER: "CONTROLLER"}.get(
            a.port, f"output:{a.port}")
    if isinstance(a, SetField):
        return f"set {a.name}={a.value}"
    if isinstance(a, GotoTable):
        return f"goto {a.table}"
    if isinstance(a, Resubmit):
        return f"resubmit {a.table}"
    if isinstance(a, Conjunction):
        return f"conj({a.id},{a.clause + 1}/{a.n_clauses})"
    if isinstance(a, Ct):
        z = a.zone_src or a.zone
        nat = ""
        if a.nat is not None:
            n = a.nat
            nat = ",nat"
            if n.kind:
                rng = n.ip_min + (f"-{n.ip_max}" if n.ip_max else "")
                if n.port_min is not None:
                    rng += f":{n.port_min}" + (f"-{n.port_max}" if n.port_max else "")
                nat = f",nat({n.kind}={rng})"
        mark = "" if a.mark is None else f",mark={a.mark}"
        if type(a.write) is Move:
            mark += f",{a.write.dst}[{a.write.dst_ofs}..]={a.write.src}"
        elif a.write is not None:
            mark += f",{a.write.name}={a.write.value:#x}/{a.write.mask:#x}"
        return f"ct({'commit,' if a.commit else ''}zone={z}" + (
            f",table={a.table}" if a.table is not None else "") + nat + mark + ")"
    if isinstance(a, Bundle):
        return f"bundle({a.algorithm},members:{','.join(map(str, a.members))})"
    if isinstance(a, Move):
        return f"move {a.src}->{a.dst}"
    if isinstance(a, Meter):
        return f"meter:{a.id}"
    if isinstance(a, DecTtl):
        return "dec_ttl"
    return type(a).__name__.lower()


CtState = Union[int, Callable[[int, dict], int]]


class Tracer:
    """Indexes a flow set once; ``run`` traces packets through it."""

    def __init__(self, flows) -> None:
        tables: dict[int, dict[int, list]] = {}
        for f in (flows.values() if isinstance(flows, dict) else flows):
            compiled = []
            for t in f.match:
                mask = None if t.mask is None else to_int(t.name, t.mask)
                compiled.append((t.name, to_int(t.name, t.value), mask))
            tables.setdefault(f.table, {}).setdefault(f.priority, []).append((f, compiled))
        self.tables = {t: sorted(levels.items(), key=lambda kv: -kv[0])
                       for t, levels in tables.items()}

    def run(self, packet: Mapping, ct_state: CtState = 0x01, nat=None,
            down_ports=frozenset()) -> Trace:
        p = {k: to_int(k, v) for k, v in packet.items()}
        if "in_port" not in p:
            raise TraceError("the packet needs an in_port")
        if p.get("eth_type") in (0x0800, 0x86DD):
            p.setdefault("nw_ttl", DEFAULT_TTL)
        tr = Trace(packet=dict(p))
        self._ct = ct_state
        self._nat = nat
        self._down = frozenset(down_ports)
        self._table(tr, p, 0, 0, -1)
        return tr

    # ------------------------------------------------------------ lookup
    @staticmethod
    def _matches(compiled, p) -> bool:
        for name, value, mask in compiled:
            v = p.get(name, 0)
            if mask is None:
                if v != value:
                    return False
            elif v & mask != value & mask:
                return False
        return True

    def _lookup(self, table: int, p: dict):
        """(flow, note) or (None, note) on a miss."""
        for prio, entries in self.tables.get(table, ()):
            normal, clauses = [], []
            for f, compiled in entries:
                if self._matches(compiled, p):
                    acts = f.actions
                    if acts and all(type(a) is Conjunction for a in acts):
                        clauses.append(f)
                    else:
                        normal.append(f)
            completed = self._completed(clauses) if clauses else []
            if normal:
                if any(f.actions != normal[0].actions for f in normal[1:]):
                    raise AmbiguousMatch(
                        f"table {table} priority {prio}: {len(normal)} flows match "
                        f"with different actions: {normal}")
                if completed:
                    raise AmbiguousMatch(f"table {table} priority {prio}: a flow and "
                                         f"conjunction(s) {completed} both match")
                return normal[0], ""
            if completed:
                found = []
                for cid in completed:
                    q = dict(p)
                    q["conj_id"] = cid
                    f = self._conj_target(table, q, cid)
                    if f is not None:
                        found.append(f)
                if found:
                    if any(f.actions != found[0].actions for f in found[1:]):
                        raise AmbiguousMatch(f"table {table}: conjunctions {completed} "
                                             f"lead to different actions")
                    return found[0], f"conjunction {completed[0]}"
        return None, ""

    @staticmethod
    def _completed(clauses) -> list[int]:
        seen: dict[int, set] = {}
        need: dict[int, int] = {}
        for f in clauses:
            for a in f.actions:
                seen.setdefault(a.id, set()).add(a.clause)
                need[a.id] = a.n_clauses
        return sorted(cid for cid, s in seen.items() if len(s) == need[cid])

    def _conj_target(self, table: int, q: dict, cid: int):
        for _prio, entries in self.tables.get(table, ()):
            hits = [f for f, compiled in entries
                    if f.match.get("conj_id") is not None and self._matches(compiled, q)]
            if hits:
                return hits[0]
        return None

    # --------------------------------------------------------- execution
    def _table(self, tr: Trace, p: dict, table: int, depth: int, came_from: int) -> None:
        while True:
            if depth > MAX_DEPTH:
                raise TraceError("resubmit depth exceeded")
            if table <= came_from:
                raise BackwardJump(f"jump from table {came_from} back to {table}")
            flow, note = self._lookup(table, p)
            if flow is None:
                tr.steps.append(Step(depth, table, None, {}, note))
                return
            before = dict(p)
            idx = len(tr.steps)
            tr.steps.append(None)  # placeholder: filled once the changes are known
            nxt, recirc = self._execute(tr, p, flow, table, depth)
            changes = {k: from_int(k, v) for k, v in p.items() if before.get(k) != v}
            tr.steps[idx] = Step(depth, table, flow, changes, note)
            if recirc is not None:
                rtable, state, zone, mark, label = recirc
                p["ct_state"] = state
                p["ct_zone"] = zone
                p["ct_mark"] = mark
                p["ct_label"] = label
                came_from, table = -1, rtable
                continue
            if nxt is None:
                return
            came_from, table = table, nxt

    def _execute(self, tr: Trace, p: dict, flow: Flow, table: int, depth: int):
        nxt = None
        recirc = None
        for a in flow.actions:
            cls = type(a)
            if cls is GotoTable:
                nxt = a.table
            elif cls is SetField:
                p[a.name] = to_int(a.name, a.value)
            elif cls is Output:
                self._output(tr, p, a.port)
            elif cls is Resubmit:
                if a.table <= table:
                    raise BackwardJump(f"resubmit from table {table} to {a.table}")
                saved = p["in_port"]
                if a.in_port is not None:
                    p["in_port"] = a.in_port
                self._table(tr, p, a.table, depth + 1, table)
                p["in_port"] = saved
            elif cls is Move:
                self._move(p, a)
            elif cls is PushVlan:
                p["vlan_vid"] = OFPVID_PRESENT
            elif cls is PopVlan:
                p["vlan_vid"] = 0
            elif cls is Ct:
                zone = p.get(a.zone_src, 0) & 0xFFFF if a.zone_src else a.zone
                if a.commit:
                    tr.commits.append((zone, readable(p)))
                    if a.mark is not None:
                        tr.marks.append((zone, a.mark, readable(p)))
                    if a.write is not None:
                        tr.writes.append((zone, *self._write_bits(p, a.write), readable(p)))
                natted = 0
                if a.nat is not None:
                    natted = self._translate(tr, p, zone, a)
                if a.table is None:
                    # As in Open vSwitch: after ct() without recirculation
                    # the rest of the pipeline sees the packet untracked
                    # (its ct_zone and ct_mark cleared too).
                    p["ct_state"] = 0
                    p.pop("ct_mark", None)
                    p.pop("ct_label", None)
                    p.pop("ct_zone", None)
                else:
                    state = self._ct(zone, readable(p)) if callable(self._ct) else self._ct
                    state, mark, label = (tuple(state) + (0, 0))[:3] if isinstance(
                        state, tuple) else (state, 0, 0)
                    recirc = (a.table, state | CT_TRK | natted, zone, mark, label)
            elif cls is Bundle:
                live = [m for m in a.members if m not in self._down]
                if live:
                    self._output(tr, p, live[0])
            elif cls is Controller:
                tr.controller.append(readable(p))
            elif cls is Meter:
                tr.meters.append(a.id)  # a rate limit: the tracer lets it pass
            elif cls is DecTtl:
                ttl = p.get("nw_ttl", DEFAULT_TTL)
                if ttl <= 1:
                    tr.ttl_expired.append(readable(p))
                    tr.controller.append(readable(p))
                    return None, None
                p["nw_ttl"] = ttl - 1
            elif cls is Conjunction:
                raise TraceError(f"conjunction executed as an action: {flow}")
            else:
                raise TraceError(f"unsupported action {a!r}")
        return nxt, recirc

    _L4 = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst"),
           132: ("sctp_src", "sctp_dst")}

    _SRC = frozenset({"ipv4_src", "ipv6_src", "tcp_src", "udp_src", "sctp_src"})

    def _translate(self, tr: Trace, p: dict, zone: int, a: Ct) -> int:
        """Apply the nat; the ct_state bits it sets, as Open vSwitch does:
        +snat when the source changed (a source NAT, or the reply of a
        destination NAT un-DNATed), +dnat when the destination did."""
        n = a.nat
        new: dict = {}
        if n.kind is None:
            if self._nat is not None:
                new = dict(self._nat(zone, readable(p)) or {})
        elif a.commit:
            v6 = ":" in n.ip_min
            src = n.kind == "src"
            name = ("ipv6_" if v6 else "ipv4_") + ("src" if src else "dst")
            new[name] = n.ip_min
            l4 = self._L4.get(p.get("ip_proto"))
            if n.port_min is not None and l4 is not None:
                new[l4[0] if src else l4[1]] = n.port_min
        changed = {}
        for k, v in new.items():
            before = p.get(k, 0)
            p[k] = to_int(k, v)
            if p[k] != before:
                changed[k] = (from_int(k, before), from_int(k, p[k]))
        if changed:
            tr.nats.append((zone, changed))
        if not new:
            return 0
        return CT_SNAT if any(k in self._SRC for k in new) else CT_DNAT

    @staticmethod
    def _move(p: dict, a: Move) -> None:
        src = p.get(a.src, 0)
        bits = (src >> a.src_ofs) & ((1 << a.n_bits) - 1)
        width = WIDTHS.get(a.dst, 64)
        if a.dst_ofs + a.n_bits > width or a.src_ofs + a.n_bits > WIDTHS.get(a.src, 64):
            raise TraceError(f"move out of field bounds: {a}")
        mask = ((1 << a.n_bits) - 1) << a.dst_ofs
        p[a.dst] = (p.get(a.dst, 0) & ~mask) | (bits << a.dst_ofs)

    @staticmethod
    def _write_bits(p: dict, w) -> tuple[str, int, int]:
        """(field, value, mask) of the bits a ct(commit) writes."""
        if type(w) is Move:
            mask = (1 << w.n_bits) - 1
            bits = (to_int(w.src, p.get(w.src, 0)) >> w.src_ofs) & mask
            return w.dst, bits << w.dst_ofs, mask << w.dst_ofs
        return w.name, w.value, w.mask

    @staticmethod
    def _output(tr: Trace, p: dict, port: int) -> None:
        if port == OFPP_CONTROLLER:
            tr.controller.append(readable(p))
            return
        if port == OFPP_IN_PORT:
            port = p["in_port"]
        elif port == p["in_port"]:
            tr.dropped_in_port.append(port)
            return
        tr.outputs.append(Delivery(port, readable(p)))


def trace(flows, packet: Mapping, ct_state: CtState = 0x01, nat=None,
          down_ports=frozenset()) -> Trace:
    """Trace one packet; ``ct_state`` (CT_* bits, or a callable
    ``(zone, packet) -> bits``) is what every ct() lookup returns; ``nat``
    and ``down_ports`` as in the module's doc."""
    return Tracer(flows).run(packet, ct_state, nat, down_ports)


_SHORTHAND = {
    "ip": {"eth_type": 0x0800},
    "ipv6": {"eth_type": 0x86DD},
    "arp": {"eth_type": 0x0806},
    "tcp": {"eth_type": 0x0800, "ip_proto": 6},
    "udp": {"eth_type": 0x0800, "ip_proto": 17},
    "icmp": {"eth_type": 0x0800, "ip_proto": 1},
    "tcp6": {"eth_type": 0x86DD, "ip_proto": 6},
    "udp6": {"eth_type": 0x86DD, "ip_proto": 17},
    "icmp6": {"eth_type": 0x86DD, "ip_proto": 58},
}


def parse_packet(text: str) -> dict:
    """``"in_port=5,tcp,eth_src=..,ipv4_dst=..,tcp_dst=22"`` -> fields."""
    out: dict = {}
    for part in filter(None, (x.strip() for x in text.split(","))):
        if "=" not in part:
            if part not in _SHORTHAND:
                raise ValueError(f"unknown shorthand {part!r}")
            out.update(_SHORTHAND[part])
            continue
        k, v = (x.strip() for x in part.split("=", 1))
        if k in MAC_FIELDS or k in IP4_FIELDS or k in IP6_FIELDS:
            out[k] = v
        else:
            out[k] = int(v, 0)
    return out
