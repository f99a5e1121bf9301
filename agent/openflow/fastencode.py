"""A fast flow-mod encoder: what a cold start sends.

An agent starting on a populated host installs every flow of its table
(tens of thousands) in one bundle.  Building each flow-mod with os-ken
costs some 100 us (an object per OXM, action and instruction, then their
serialization); that, not the compiler, was most of a cold start.

The bytes of one flow-mod are made of parts that repeat across flows: the
same match term (``reg6=3``, ``eth_type=0x800``) or action (``output:7``,
``goto_table:50``) is in thousands of them.  This encoder packs every part
with ``struct`` and memoizes it: one match term (name, value, mask) -> its
OXM TLV; one action -> its bytes; one match -> the ofp_match; one action
tuple -> the instructions.  What it learns from os-ken is only the layout
of each field (OXM header, value size, the key os-ken orders fields by),
once per field name; actions it has no struct layout for (ct, move, the
raw set-fields, controller with userdata) are built by os-ken once per
distinct action.  Each part is checked once, when first seen, as
encode.check_canonical checks a whole flow.  The result is the same bytes as
os-ken's, byte for byte (tests/unit/agent/test_openflow_fastencode.py
checks it on every flow the compiler makes for generated views).  A flow
with a part it does not know how to memoize (none today) goes to the
complete encoder, so correctness never depends on this module.

No os-ken import: this module is struct, the flow vocabulary and the
callables it is given (see agent.openflow.encode).
"""

from __future__ import annotations

import ipaddress
import operator
import socket
import struct
from typing import Callable, Optional

from quantum_ovs.compiler import flow as F

OFP_VERSION = 4
OFPT_FLOW_MOD = 14
OFPFC_ADD = 0
OFPFC_DELETE_STRICT = 4
OFPMT_OXM = 1
OFPIT_GOTO_TABLE = 1
OFPIT_APPLY_ACTIONS = 4
OFPIT_METER = 6
OFP_NO_BUFFER = 0xFFFFFFFF
OFPP_ANY = 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF

# ofp_header + ofp_flow_mod up to its match: version, type, length, xid;
# cookie, cookie_mask, table_id, command, idle and hard timeouts,
# priority, buffer_id, out_port, out_group, flags, pad.
_HEAD = struct.Struct("!BBHIQQBBHHHIIIH2x")
_MATCH_HEAD = struct.Struct("!HH")
_GOTO = struct.Struct("!HHB3x")
_METER = struct.Struct("!HHI")
_APPLY_HEAD = struct.Struct("!HH4x")
_HH = struct.Struct("!HH")
_OUTPUT = struct.Struct("!HHIH6x")  # type, length, port, max_len
_RESUBMIT = struct.Struct("!HHIHHB3x")  # ..., vendor, subtype, in_port, table
_CONJUNCTION = struct.Struct("!HHIHBBI")  # ..., vendor, subtype, clause, n_clauses, id
OFPAT_OUTPUT = 0
OFPAT_SET_FIELD = 25
OFPAT_EXPERIMENTER = 0xFFFF
OFPP_CONTROLLER = 0xFFFFFFFD
NX_EXPERIMENTER_ID = 0x00002320
NXAST_RESUBMIT_TABLE = 14
NXAST_CONJUNCTION = 34
NX_IN_PORT_16 = 0xFFF8

MEMO_LIMIT = 1 << 18
_ORDER = operator.itemgetter(0)


class FastEncoder:
    """``layout(name, masked) -> (sort key, OXM header bytes, value size,
    kind)`` (kind: "mac", "ipv4", "ipv6" or "int"), ``check_term(name,
    value, mask)`` and ``check_action(a)`` (raise ValueError) and
    ``slow_action(a) -> bytes`` come from the complete encoder; ``late``
    names the fields os-ken's order would put before their prerequisites
    (they go last, as agent.openflow.encode orders them)."""

    def __init__(self, layout: Callable, check_term: Callable, check_action: Callable,
                 slow_action: Callable, raw_fields=frozenset(), late=frozenset()):
        self._layout_of = layout
        self._check_term = check_term
        self._check_action = check_action
        self._slow_action = slow_action
        self._raw = frozenset(raw_fields)
        self._late = frozenset(late)
        self._layouts: dict = {}
        self._terms: dict = {}
        self._actions: dict = {}
        self._matches: dict = {}
        self._instructions: dict = {}

    # ---------------------------------------------------------- parts
    def _layout(self, name: str, masked: bool):
        key = (name, masked)
        got = self._layouts.get(key)
        if got is None:
            order, header, size, kind = self._layout_of(name, masked)
            got = self._layouts[key] = ((1 if name in self._late else 0, order), header, size,
                                        kind)
        return got

    @staticmethod
    def _value(kind: str, size: int, v) -> bytes:
        if kind == "int":
            return int(v).to_bytes(size, "big")
        if kind == "mac":
            return bytes.fromhex(v.replace(":", ""))
        if kind == "ipv4":  # (checked canonical before)
            return socket.inet_aton(v)
        return ipaddress.ip_address(v).packed

    def _new_term(self, key: tuple):
        """(sort key, OXM TLV) of the term ``key`` = (name, value, mask), not
        in the memo yet (the callers look it up first): made, checked and
        remembered."""
        name, value, mask = key
        self._check_term(name, value, mask)
        order, header, size, kind = self._layout(name, mask is not None)
        tlv = header + self._value(kind, size, value)
        if mask is not None:
            tlv += self._value(kind, size, mask)
        got = (order, tlv)
        if len(self._terms) > MEMO_LIMIT:
            self._terms.clear()
        self._terms[key] = got
        return got

    def match_bytes(self, match: F.Match) -> bytes:
        """The ofp_match (OXM), padded to 8 bytes."""
        # Memoized by the match itself: a tuple of Field tuples, hashed and
        # compared by C.
        got = self._matches.get(match)
        if got is not None:
            return got
        known, new = self._terms.get, self._new_term
        terms = [known(k) or new(k) for k in match]
        terms.sort(key=_ORDER)
        body = b"".join([t[1] for t in terms])
        length = 4 + len(body)
        got = _MATCH_HEAD.pack(OFPMT_OXM, length) + body + b"\0" * (-length % 8)
        if len(self._matches) > MEMO_LIMIT:
            self._matches.clear()
        self._matches[match] = got
        return got

    def _new_action(self, a) -> bytes:
        """The bytes of action ``a``, not in the memo yet (the caller looks
        it up first): checked, made and remembered."""
        self._check_action(a)
        got = self._pack_action(a)
        if len(self._actions) > MEMO_LIMIT:
            self._actions.clear()
        self._actions[a] = got
        return got

    def _pack_action(self, a) -> bytes:
        cls = type(a)
        if cls is F.Output:
            return _OUTPUT.pack(OFPAT_OUTPUT, 16, a.port, 0)
        if cls is F.Controller and not a.userdata:
            return _OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_CONTROLLER, a.max_len)
        if cls is F.SetField and a.name not in self._raw:
            _order, header, size, kind = self._layout(a.name, False)
            tlv = header + self._value(kind, size, a.value)
            length = 4 + len(tlv)
            return _HH.pack(OFPAT_SET_FIELD, length + (-length % 8)) + tlv \
                + b"\0" * (-length % 8)
        if cls is F.Resubmit:
            in_port = NX_IN_PORT_16 if a.in_port is None else a.in_port
            return _RESUBMIT.pack(OFPAT_EXPERIMENTER, 16, NX_EXPERIMENTER_ID,
                                  NXAST_RESUBMIT_TABLE, in_port, a.table)
        if cls is F.Conjunction:
            return _CONJUNCTION.pack(OFPAT_EXPERIMENTER, 16, NX_EXPERIMENTER_ID,
                                     NXAST_CONJUNCTION, a.clause, a.n_clauses, a.id)
        return self._slow_action(a)

    def instruction_bytes(self, actions: tuple) -> bytes:
        """Meter, apply-actions, goto-table: the order the switch hands
        them back (and encode.encode_instructions builds them)."""
        got = self._instructions.get(actions)
        if got is not None:
            return got
        meter = goto = b""
        applied = []
        last = len(actions) - 1
        known = self._actions.get
        for i, a in enumerate(actions):
            cls = type(a)
            if cls is F.GotoTable:
                if i != last:
                    raise ValueError(f"{actions}: GotoTable must be the last action")
                goto = _GOTO.pack(OFPIT_GOTO_TABLE, 8, a.table)
            elif cls is F.Meter:
                meter = _METER.pack(OFPIT_METER, 8, a.id)
            else:
                applied.append(known(a) or self._new_action(a))
        out = meter
        if applied:
            body = b"".join(applied)
            out += _APPLY_HEAD.pack(OFPIT_APPLY_ACTIONS, 8 + len(body)) + body
        got = out + goto
        if len(self._instructions) > MEMO_LIMIT:
            self._instructions.clear()
        self._instructions[actions] = got
        return got

    # ---------------------------------------------------------- flow mods
    def add(self, flow: F.Flow) -> bytes:
        """OFPFC_ADD of ``flow`` (xid 0)."""
        match = self.match_bytes(flow.match)
        inst = self.instruction_bytes(flow.actions)
        length = _HEAD.size + len(match) + len(inst)
        return _HEAD.pack(OFP_VERSION, OFPT_FLOW_MOD, length, 0, flow.cookie, 0, flow.table,
                          OFPFC_ADD, 0, 0, flow.priority, OFP_NO_BUFFER, 0, 0, 0) \
            + match + inst

    def delete_strict(self, flow: F.Flow, cookie_mask: Optional[int]) -> bytes:
        """OFPFC_DELETE_STRICT of ``flow``'s table, priority and match,
        only with ``flow``'s cookie under ``cookie_mask`` when one is given."""
        match = self.match_bytes(flow.match)
        self.instruction_bytes(flow.actions)  # checked as for an add
        length = _HEAD.size + len(match)
        return _HEAD.pack(OFP_VERSION, OFPT_FLOW_MOD, length, 0,
                          flow.cookie if cookie_mask else 0, cookie_mask or 0, flow.table,
                          OFPFC_DELETE_STRICT, 0, 0, flow.priority, OFP_NO_BUFFER, OFPP_ANY,
                          OFPG_ANY, 0) + match
