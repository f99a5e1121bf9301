"""A fast decoder of flow-stats replies: the dump a restarted agent reads.

After every (re)connection the agent dumps its flows (tens of thousands on
a busy host) and compares them with the flows it wants.  Decoding that
dump with os-ken costs some 50 us a flow (objects for every OXM, action
and instruction, then our conversion to Flow values); a hitless restart
spends most of its time there.

This decoder reads the bytes with ``struct`` and two memo tables:

* one OXM TLV (header, value, mask: the same bytes for the same term in
  every flow that has it) -> its :class:`Field`;
* one flow's instruction bytes (most flows of a table share them) -> its
  actions tuple.

It handles exactly what our flows contain: OXM match fields whose values
are integers, MACs or IP addresses; the apply-actions and goto-table
instructions; output, push/pop VLAN, dec_nw_ttl, set-field, and the Nicira resubmit,
conjunction, move and ct (without nested actions) actions.  Anything else
in an entry (an unknown field or action, controller2, odd lengths) sends that entry to
``slow_entry``, the full decoder, so correctness never depends on this
module: at worst it is as slow as os-ken.  The field vocabulary is not
spelled here either: ``field_info`` (from :mod:`agent.openflow.encode`,
os-ken's OXM tables) names each OXM type, and the value conversions below
give the same values as encode's (tested against it flow by flow in
tests/unit/agent/test_openflow_fastdecode.py).

No os-ken import: this module is struct, the flow vocabulary, and the two
callables it is given.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Callable, Optional

from quantum_ovs.compiler import flow as F

OFPMT_OXM = 1
OFPIT_GOTO_TABLE = 1
OFPIT_METER = 6
OFPIT_APPLY_ACTIONS = 4
OFPAT_OUTPUT = 0
OFPAT_PUSH_VLAN = 17
OFPAT_POP_VLAN = 18
OFPAT_DEC_NW_TTL = 24
OFPAT_SET_FIELD = 25
OFPAT_EXPERIMENTER = 0xFFFF
OFPP_CONTROLLER = 0xFFFFFFFD
NX_EXPERIMENTER_ID = 0x00002320
NXAST_REG_MOVE = 6
NXAST_REG_LOAD2 = 33
NXAST_RESUBMIT_TABLE = 14
NXAST_CONJUNCTION = 34
NXAST_CT = 35
NXAST_BUNDLE = 12
NXAST_NAT = 36
NX_NAT_F_SRC = 1
NX_NAT_F_DST = 2
NXM_OF_IN_PORT = 0x00000002  # a bundle's member type
_NAT_KIND = {0: None, NX_NAT_F_SRC: "src", NX_NAT_F_DST: "dst"}
_BD_ALG = {0: "active_backup", 1: "hrw"}
_BD_FIELDS = {0: "eth_src", 1: "symmetric_l4"}
NX_CT_F_COMMIT = 1
NX_CT_NO_TABLE = 0xFF
NX_IN_PORT_16 = 0xFFF8
OXM_CLASS_EXPERIMENTER = 0xFFFF

# ofp_flow_stats up to and including the ofp_match header: length, table
# id, priority, cookie, match type, match length (durations, timeouts,
# flags and counters skipped).
_ENTRY = struct.Struct("!HB9xH10xQ16xHH")
_ENTRY_FIXED = 48  # ofp_flow_stats without its match
_U32 = struct.Struct("!I")
_HH = struct.Struct("!HH")
_OUTPUT = struct.Struct("!IH")  # port, max_len (after type and length)
_RESUBMIT = struct.Struct("!HB")  # in_port, table
_CONJUNCTION = struct.Struct("!BBI")  # clause, n_clauses, id
_U16 = struct.Struct("!H")
_MOVE = struct.Struct("!HHHII")  # n_bits, src_ofs, dst_ofs, src, dst headers
_CT = struct.Struct("!HIHB3xH")  # flags, zone_src header, zone, recirc_table, alg
_NAT = struct.Struct("!2xHH")  # pad, flags, range_present (after the NX header)
_BUNDLE = struct.Struct("!HHHIHHI4x")  # algorithm, fields, basis, member type, n, ofs, dst

# Memo tables are dropped when they grow past this (a host with that many
# distinct terms is rare; the cost is only speed).
MEMO_LIMIT = 1 << 18

_Move = getattr(F, "Move", None)


class Slow(Exception):
    """This entry is not ours to decode; the full decoder takes it."""


# -------------------------------------------------------------- values
def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _mac(b: bytes) -> str:
    return b.hex(":")


def _ipv4(b: bytes) -> str:
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def _ipv6(b: bytes) -> str:
    return str(ipaddress.IPv6Address(b))


CONVERTERS = {"int": _int, "mac": _mac, "ipv4": _ipv4, "ipv6": _ipv6}

# field_info(oxm_type) -> (name, kind, size) or None, where oxm_type is
# class << 7 | field (the OXM header without mask bit and length), name is
# the match vocabulary's, kind a key of CONVERTERS, size the value's bytes.
FieldInfo = Callable[[int], Optional[tuple]]
SlowEntry = Callable[[bytes, int], F.Flow]


OFPIT_WRITE_ACTIONS = 3
NX_EXPERIMENTER_HEADER = 16


def check_lengths(buf: bytes, offset: int, stop: int) -> None:
    """Raise ValueError unless every length inside the ofp_flow_stats
    entry ``buf[offset:stop]`` (match, instructions, actions, ct()'s
    nested actions) is at least its header, a multiple of 8 where
    OpenFlow says so, and inside what contains it."""
    if stop - offset < _ENTRY_FIXED + 4:
        raise ValueError("malformed flow-stats entry: too short")
    mlen = _HH.unpack_from(buf, offset + _ENTRY_FIXED)[1]
    p = offset + _ENTRY_FIXED + ((mlen + 7) & ~7)
    if mlen < 4 or p > stop:
        raise ValueError(f"malformed flow-stats entry: match length {mlen}")
    while p < stop:
        if stop - p < 8:
            raise ValueError("malformed flow-stats entry: truncated instruction")
        itype, ilen = _HH.unpack_from(buf, p)
        if ilen < 8 or ilen % 8 or p + ilen > stop:
            raise ValueError(f"malformed flow-stats entry: instruction length {ilen}")
        if itype in (OFPIT_APPLY_ACTIONS, OFPIT_WRITE_ACTIONS):
            _check_actions(buf, p + 8, p + ilen, 0)
        p += ilen


def _check_actions(buf: bytes, p: int, end: int, depth: int) -> None:
    if depth > 2:
        raise ValueError("malformed flow-stats entry: actions nested too deep")
    while p < end:
        if end - p < 8:
            raise ValueError("malformed flow-stats entry: truncated action")
        atype, alen = _HH.unpack_from(buf, p)
        if alen < 8 or alen % 8 or p + alen > end:
            raise ValueError(f"malformed flow-stats entry: action length {alen}")
        if atype == OFPAT_EXPERIMENTER and alen >= NX_EXPERIMENTER_HEADER:
            vendor, subtype = struct.unpack_from("!IH", buf, p + 4)
            if vendor == NX_EXPERIMENTER_ID and subtype == NXAST_CT and alen >= 24:
                _check_actions(buf, p + 24, p + alen, depth + 1)
        p += alen


class FlowStatsDecoder:
    """Decodes the entries of OFPMP_FLOW multipart replies into Flows.

    :param field_info: names an OXM type (see ``FieldInfo``); None for a
        field this decoder should leave to ``slow_entry``
    :param slow_entry: ``slow_entry(buf, offset)`` decodes one ofp_flow_stats
        entry the slow, complete way (and raises what it raises)
    """

    def __init__(self, field_info: FieldInfo, slow_entry: SlowEntry):
        self._field_info = field_info
        self._slow_entry = slow_entry
        self._types: dict[int, Optional[tuple]] = {}  # oxm type -> (name, convert, size)
        self._fields: dict[bytes, F.Field] = {}  # OXM TLV -> Field
        self._actions: dict[bytes, tuple] = {}  # instruction bytes -> actions
        self.fast = 0  # entries decoded here
        self.slow = 0  # entries handed to slow_entry

    # ------------------------------------------------------------ entries
    def entries(self, buf: bytes, offset: int, end: int) -> list:
        """The Flows of the ofp_flow_stats entries in ``buf[offset:end]``."""
        flows = []
        append = flows.append
        unpack_entry = _ENTRY.unpack_from
        fields_memo = self._fields
        actions_memo = self._actions
        Flow, Match = F.Flow, F.Match
        fast = 0
        while offset < end:
            if end - offset < _ENTRY.size:
                raise ValueError("truncated flow-stats entry")
            length, table, priority, cookie, mtype, mlen = unpack_entry(buf, offset)
            stop = offset + length
            if length < _ENTRY.size or stop > end:
                raise ValueError(f"bad flow-stats entry length {length}")
            try:
                if mtype != OFPMT_OXM or mlen < 4:
                    raise Slow
                p = offset + _ENTRY_FIXED + 4
                mend = offset + _ENTRY_FIXED + mlen
                inst = offset + _ENTRY_FIXED + ((mlen + 7) & ~7)
                if inst > stop:
                    raise Slow
                fields = []
                while p < mend:
                    q = p + 4 + buf[p + 3]
                    tlv = buf[p:q]
                    f = fields_memo.get(tlv)
                    if f is None:
                        f = self._field(tlv)
                    fields.append(f)
                    p = q
                if p != mend:
                    raise Slow
                raw = buf[inst:stop]
                actions = actions_memo.get(raw)
                if actions is None:
                    actions = self._instructions(raw)
                append(Flow(table, priority, Match(*fields), actions, cookie))
                fast += 1
            except Slow:
                # os-ken trusts the lengths it reads (an instruction or an
                # action of length 0 makes it loop, allocating, forever):
                # it gets only entries whose lengths hold together.
                check_lengths(buf, offset, stop)
                append(self._slow_entry(buf, offset))
                self.slow += 1
            offset = stop
        self.fast += fast
        return flows

    # ------------------------------------------------------------ match
    def _type(self, oxm_type: int) -> Optional[tuple]:
        try:
            return self._types[oxm_type]
        except KeyError:
            pass
        info = self._field_info(oxm_type)
        t = None
        if info is not None:
            name, kind, size = info
            convert = CONVERTERS.get(kind)
            if convert is not None:
                t = (name, convert, size)
        self._types[oxm_type] = t
        return t

    def _field(self, tlv: bytes) -> F.Field:
        """The Field of one OXM TLV (memoized)."""
        if len(tlv) < 4:
            raise Slow
        header = _U32.unpack_from(tlv)[0]
        oxm_type = header >> 9
        if oxm_type >> 7 == OXM_CLASS_EXPERIMENTER:
            raise Slow
        t = self._type(oxm_type)
        if t is None:
            raise Slow
        name, convert, size = t
        has_mask = header & 0x100
        if len(tlv) - 4 != (2 * size if has_mask else size):
            raise Slow
        if has_mask:
            f = F.Field(name, convert(tlv[4 : 4 + size]), convert(tlv[4 + size :]))
        else:
            f = F.Field(name, convert(tlv[4:]))
        memo = self._fields
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[tlv] = f
        return f

    def _name(self, header: int) -> str:
        """The field an NXM/OXM header (no value) names, as in a move."""
        oxm_type = header >> 9
        if oxm_type >> 7 == OXM_CLASS_EXPERIMENTER or header & 0x100:
            raise Slow
        t = self._type(oxm_type)
        if t is None:
            raise Slow
        return t[0]

    # ------------------------------------------------------------ actions
    def _instructions(self, raw: bytes) -> tuple:
        """The actions of one entry's instructions (memoized by bytes)."""
        actions = []
        goto = None
        meter = None
        p, end = 0, len(raw)
        while p < end:
            if end - p < 8:
                raise Slow
            itype, ilen = _HH.unpack_from(raw, p)
            if ilen < 8 or p + ilen > end:
                raise Slow
            if itype == OFPIT_APPLY_ACTIONS:
                self._actions_into(raw, p + 8, p + ilen, actions)
            elif itype == OFPIT_GOTO_TABLE:
                goto = F.GotoTable(raw[p + 4])
            elif itype == OFPIT_METER and ilen == 8 and meter is None:
                meter = F.Meter(_U32.unpack_from(raw, p + 4)[0])
            else:
                raise Slow
            p += ilen
        if goto is not None:
            actions.append(goto)
        if meter is not None:
            actions.insert(0, meter)
        out = tuple(actions)
        memo = self._actions
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[raw] = out
        return out

    def _actions_into(self, raw: bytes, p: int, end: int, out: list,
                      in_ct: bool = False) -> None:
        """Decode the actions in raw[p:end] into ``out``; ``in_ct``: ct()'s
        nested actions (where alone a masked load is ours: Ct.write)."""
        while p < end:
            if end - p < 8:
                raise Slow
            atype, alen = _HH.unpack_from(raw, p)
            if alen < 8 or alen % 8 or p + alen > end:
                raise Slow
            if atype == OFPAT_OUTPUT and alen == 16:
                port, max_len = _OUTPUT.unpack_from(raw, p + 4)
                out.append(
                    F.Controller(max_len=max_len) if port == OFPP_CONTROLLER else F.Output(port)
                )
            elif atype == OFPAT_SET_FIELD:
                tlv_end = p + 8 + raw[p + 7]
                if tlv_end > p + alen or raw[p + 6] & 0x01:  # masked set-field
                    raise Slow
                tlv = raw[p + 4 : tlv_end]
                f = self._fields.get(tlv)
                if f is None:
                    f = self._field(tlv)
                out.append(F.SetField(f.name, f.value))
            elif atype == OFPAT_PUSH_VLAN and alen == 8:
                out.append(F.PushVlan(_HH.unpack_from(raw, p + 4)[0]))
            elif atype == OFPAT_POP_VLAN and alen == 8:
                out.append(F.PopVlan())
            elif atype == OFPAT_DEC_NW_TTL and alen == 8:
                out.append(F.DecTtl())
            elif atype == OFPAT_EXPERIMENTER and alen >= 16:
                out.append(self._nx_action(raw, p, alen, in_ct))
            else:
                raise Slow
            p += alen

    def _nx_action(self, raw: bytes, p: int, alen: int, in_ct: bool = False):
        vendor, subtype = struct.unpack_from("!IH", raw, p + 4)
        if vendor != NX_EXPERIMENTER_ID:
            raise Slow
        if subtype == NXAST_RESUBMIT_TABLE and alen == 16:
            in_port, table = _RESUBMIT.unpack_from(raw, p + 10)
            return F.Resubmit(table, None if in_port == NX_IN_PORT_16 else in_port)
        if subtype == NXAST_CONJUNCTION and alen == 16:
            clause, n_clauses, id_ = _CONJUNCTION.unpack_from(raw, p + 10)
            return F.Conjunction(id=id_, clause=clause, n_clauses=n_clauses)
        if subtype == NXAST_REG_MOVE and alen == 24 and _Move is not None:
            n_bits, src_ofs, dst_ofs, src, dst = _MOVE.unpack_from(raw, p + 10)
            return _Move(
                src=self._name(src),
                dst=self._name(dst),
                n_bits=n_bits,
                src_ofs=src_ofs,
                dst_ofs=dst_ofs,
            )
        if subtype == NXAST_REG_LOAD2 and alen >= 16 and in_ct:
            tlv_end = p + 14 + raw[p + 13]
            if tlv_end > p + alen:
                raise Slow
            tlv = raw[p + 10 : tlv_end]
            f = self._fields.get(tlv)
            if f is None:
                f = self._field(tlv)
            if f.mask is None:  # (an unmasked load: set_field, which we never write)
                raise Slow
            return F.LoadBits(f.name, f.value, f.mask)
        if subtype == NXAST_CT and alen >= 24:
            flags, zone_src, zone, table, alg = _CT.unpack_from(raw, p + 10)
            if alg:
                raise Slow
            nat = mark = write = None
            if alen > 24:
                # nested actions: one nat(), one ct_mark set, or one move or
                # masked load into ct_label / ct_mark is all we write
                if _HH.unpack_from(raw, p + 24)[0] == OFPAT_SET_FIELD:
                    nested: list = []
                    self._actions_into(raw, p + 24, p + alen, nested)
                    if len(nested) != 1 or nested[0].name != "ct_mark":
                        raise Slow
                    mark = nested[0].value
                elif alen >= 40 and _U16.unpack_from(raw, p + 32)[0] in (
                        NXAST_REG_MOVE, NXAST_REG_LOAD2):
                    nested = []
                    self._actions_into(raw, p + 24, p + alen, nested, in_ct=True)
                    if len(nested) != 1 or not isinstance(nested[0], (_Move, F.LoadBits)):
                        raise Slow
                    write = nested[0]
                    if (write.dst if isinstance(write, _Move) else write.name) not in (
                            "ct_label", "ct_mark"):
                        raise Slow
                else:
                    nat = self._nat(raw, p + 24, p + alen)
            table = None if table == NX_CT_NO_TABLE else table
            commit = bool(flags & NX_CT_F_COMMIT)
            if zone_src:
                return F.Ct(commit=commit, zone_src=self._name(zone_src), table=table, nat=nat,
                            mark=mark, write=write)
            return F.Ct(commit=commit, zone=zone, table=table, nat=nat, mark=mark, write=write)
        if subtype == NXAST_BUNDLE and alen >= 32:
            alg, fields, basis, mtype, n, ofs, dst = _BUNDLE.unpack_from(raw, p + 10)
            if (dst or ofs or mtype != NXM_OF_IN_PORT or alg not in _BD_ALG
                    or fields not in _BD_FIELDS or 32 + 2 * n > alen):
                raise Slow
            members = struct.unpack_from(f"!{n}H", raw, p + 32)
            return F.Bundle(members=members, algorithm=_BD_ALG[alg], fields=_BD_FIELDS[fields],
                            basis=basis)
        raise Slow

    @staticmethod
    def _nat(raw: bytes, p: int, end: int):
        if end - p < 16:
            raise Slow
        atype, alen = _HH.unpack_from(raw, p)
        vendor, subtype = struct.unpack_from("!IH", raw, p + 4)
        if (atype != OFPAT_EXPERIMENTER or vendor != NX_EXPERIMENTER_ID
                or subtype != NXAST_NAT or p + alen != end):
            raise Slow
        flags, present = _NAT.unpack_from(raw, p + 10)
        kind = _NAT_KIND.get(flags)
        if flags not in _NAT_KIND or present & ~0x3F:
            raise Slow
        q = p + 16
        vals = {}
        for bit, size, conv in ((1, 4, _ipv4), (2, 4, _ipv4), (4, 16, _ipv6), (8, 16, _ipv6),
                                (16, 2, _int), (32, 2, _int)):
            if present & bit:
                if q + size > end:
                    raise Slow
                vals[bit] = conv(raw[q:q + size])
                q += size
        return F.Nat(kind=kind, ip_min=vals.get(1) or vals.get(4),
                     ip_max=vals.get(2) or vals.get(8), port_min=vals.get(16),
                     port_max=vals.get(32))
