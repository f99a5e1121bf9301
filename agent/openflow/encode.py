"""Flow values <-> OpenFlow 1.3 messages (with Nicira extensions).

The only module of the project that imports os-ken's message classes.
Everything it hands out to the rest of the agent is either bytes (ready
for the socket) or a plain value (:class:`Flow`, :class:`Incoming`,
:class:`PacketIn`, :class:`OFError`); os-ken's mutable message objects do
not leak.

Canonical form.  The agent compares the flows it wants with the flows it
dumps back from the switch, so a Flow must survive "encode, install, dump,
decode" unchanged.  The encoder therefore refuses the spellings that the
switch would rewrite (see :func:`check_canonical`): a mask of all ones
(write an exact match), a zero mask (leave the field out), value bits
outside the mask, ``Output(OFPP_CONTROLLER)`` (write ``Controller()``).
"""

from __future__ import annotations

import base64
import importlib.util
import ipaddress
import socket
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Iterable, Optional


# name -> run() of each module _lazy_module made
_DEFERRED: dict = {}


def _lazy_module(name: str):
    """Module ``name``, made now and run on first use: the first look-up
    of a name it does not have yet, or _DEFERRED[name]() (its parent
    package must be in sys.modules).  Safe across threads: a thread asking
    while another runs it waits, and gets the finished module.
    (importlib's LazyLoader is not, before Python 3.12: two threads' first
    packet-outs at once, and all but one met a half-made
    os_ken.lib.packet.packet with no ``Packet``, their packets lost.)"""
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()
    state = []  # "running", then "ran"

    def run():
        if len(state) == 2:
            return
        with lock:
            if not state:  # (the running thread itself sees what is made so far)
                state.append("running")
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    state.clear()
                    raise
                module.__dict__.pop("__getattr__", None)
                state.append("ran")

    def getattr_(attr):
        run()
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
    module.__getattr__ = getattr_
    _DEFERRED[name] = run
    sys.modules[name] = module
    return module


def _defer_os_ken_packet_library() -> None:
    """os-ken's OpenFlow parsers import its packet library (the package
    imports every protocol it knows: ~80 ms of a starting agent's ~250 ms
    of imports) for one use, packet-out data given as a ``packet.Packet``,
    which the agent never sends (its packets are bytes).  Unless something
    loaded it already, the package is made without running its
    ``__init__`` and its ``packet`` module loads on first use; importing any
    of its modules by name works as before (issue 17)."""
    name = "os_ken.lib.packet"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    package.packet = _lazy_module(name + ".packet")


# The OpenFlow versions the agent does not speak (its switch offers 1.3
# only): os-ken's package imports their parsers too (~20 ms).
_OTHER_VERSIONS = ("ofproto_v1_0_parser", "ofproto_v1_2_parser", "ofproto_v1_4_parser",
                   "ofproto_v1_5_parser")


def _defer_os_ken_other_versions() -> None:
    """os-ken's ofproto package, with the parsers of _OTHER_VERSIONS
    loaded on first use (see _load_parser) unless it was imported
    already."""
    name = "os_ken.ofproto"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        for sub in _OTHER_VERSIONS:
            setattr(package, sub, _lazy_module(f"{name}.{sub}"))
        spec.loader.exec_module(package)
    except BaseException:
        for sub in ("", *(f".{s}" for s in _OTHER_VERSIONS)):
            sys.modules.pop(name + sub, None)
        raise
    setattr(sys.modules["os_ken"], "ofproto", package)


def _defer_os_ken_version() -> None:
    """os-ken's package asks pbr for its own version when it is imported
    (a search of the installed distributions, and importlib.metadata: some
    15 ms of a starting agent); the agent never reads it.  Unless os-ken
    was imported already, its package is made without running its
    ``__init__`` (which only sets ``__version__``), and
    ``os_ken.__version__`` is looked up on first use (issue 17)."""
    name = "os_ken"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    package = importlib.util.module_from_spec(spec)

    def version(attr):
        if attr != "__version__":
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        import pbr.version

        package.__version__ = pbr.version.VersionInfo("os-ken").version_string()
        return package.__version__
    package.__getattr__ = version
    sys.modules[name] = package


class _LazyConverter:
    """One of os_ken.lib.addrconv's converters (mac, ipv4, ipv6) until the
    module has run: the first conversion runs it and hands over."""

    def __init__(self, module, name: str, run):
        self._module = module
        self._name = name
        self._run = run

    def _real(self):
        self._run()
        return getattr(self._module, self._name)

    def text_to_bin(self, text):
        return self._real().text_to_bin(text)

    def bin_to_text(self, data):
        return self._real().bin_to_text(data)


def _defer_os_ken_addrconv() -> None:
    """os-ken's address converters (os_ken.lib.addrconv) are made of
    netaddr, whose import is ~18 ms of a starting agent; os-ken's type
    descriptions take the converters' methods as they are defined, but the
    agent's own encoder and decoder (fastencode, fastdecode) never call
    them.  Unless it was imported already, the module is made with
    stand-ins for its three converters and runs (importing netaddr) on the
    first conversion or on the first use of anything else in it (issue
    17)."""
    name = "os_ken.lib.addrconv"
    if name in sys.modules:
        return
    parent = importlib.import_module("os_ken.lib")
    module = _lazy_module(name)  # (running it replaces the stand-ins)
    run = _DEFERRED[name]
    for conv in ("mac", "ipv4", "ipv6"):
        setattr(module, conv, _LazyConverter(module, conv, run))
    parent.addrconv = module


_defer_os_ken_version()
_defer_os_ken_addrconv()
_defer_os_ken_packet_library()
_defer_os_ken_other_versions()

from os_ken.lib import type_desc  # noqa: E402
from os_ken.lib.pack_utils import msg_pack_into  # noqa: E402
from os_ken.ofproto import nicira_ext, ofproto_common  # noqa: E402
from os_ken.ofproto import get_ofp_modules, ofproto_parser  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from os_ken.ofproto import ofproto_v1_3_parser as ofpp  # noqa: E402

from agent.openflow.fastdecode import FlowStatsDecoder  # noqa: E402
from agent.openflow.fastencode import FastEncoder  # noqa: E402
from quantum_ovs.compiler import flow as F  # noqa: E402
from quantum_ovs.compiler.flow import IP4_FIELDS, IP6_FIELDS, MAC_FIELDS  # noqa: E402

OFP_VERSION = ofp.OFP_VERSION
HEADER_SIZE = ofp.OFP_HEADER_SIZE
OFPTT_ALL = ofp.OFPTT_ALL
NO_BUFFER = ofp.OFP_NO_BUFFER
OFPP_ANY = ofp.OFPP_ANY
OFPP_CONTROLLER = ofp.OFPP_CONTROLLER
NX_IN_PORT_16 = 0xFFF8  # OFPP_IN_PORT as NXAST_RESUBMIT's 16-bit port
NX_NO_TABLE = 0xFF
NX_CT_F_COMMIT = 1

# Nicira spellings of OXM fields, should a switch send them back that way
# (os-ken also decodes NXM-class headers of OXM fields with an "_nxm" suffix).
_NXM_ALIASES = {
    "ipv6_nd_sll": "nd_sll",
    "ipv6_nd_tll": "nd_tll",
    "ipv6_nd_target": "nd_target",
}
_FROM_WIRE_NAME = {v: k for k, v in _NXM_ALIASES.items()}


# Fields os-ken does not know, as Open vSwitch defines them (meta-flow:
# ERICOXM_OF class 0x1000, a plain OXM class, no experimenter id):
# name -> (OXM type = class << 7 | field, value bytes).
_OVS_OXM = {
    "nd_reserved": (0x1000 << 7 | 1, 4),  # ERICOXM_OF_ICMPV6_ND_RESERVED
    "nd_options_type": (0x1000 << 7 | 2, 1),  # ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE
}
_OVS_OXM_BY_TYPE = {t: (name, size) for name, (t, size) in _OVS_OXM.items()}
# os-ken's name for an OXM it does not know
_OVS_OXM_BY_OSKEN_NAME = {f"field_{t}": name for name, (t, _) in _OVS_OXM.items()}


class _RawSetField(ofpp.OFPAction):
    """OFPAT_SET_FIELD of a field os-ken cannot serialize, as bytes (what
    os-ken's instruction/packet-out serializers need: ``len``, ``serialize``)."""

    def __init__(self, name: str, value: int):
        oxm_type, size = _OVS_OXM[name]
        tlv = struct.pack("!I", oxm_type << 9 | size) + int(value).to_bytes(size, "big")
        length = (4 + len(tlv) + 7) & ~7
        self.type = ofp.OFPAT_SET_FIELD
        self.len = length
        self._bytes = struct.pack("!HH", ofp.OFPAT_SET_FIELD, length) + tlv
        self._bytes += b"\0" * (length - len(self._bytes))

    def serialize(self, buf, offset):
        msg_pack_into(f"!{self.len}s", buf, offset, self._bytes)


# Move (NXAST_REG_MOVE) joined the vocabulary later; tolerate its absence.
_Move = getattr(F, "Move", None)


class _Datapath:
    """What os-ken's serialize()/parse need from a datapath: the protocol."""

    ofproto = ofp
    ofproto_parser = ofpp
    id = None


DP = _Datapath()


# ----------------------------------------------------------- canonical form
_WIDTHS: dict[str, int] = {}


def _field_width(name: str) -> int:
    """Width in bits of a match field (its value size in _field_layout:
    os-ken's OXM/NXM tables)."""
    w = _WIDTHS.get(name)
    if w is None:
        w = _WIDTHS[name] = _field_layout(name, False)[2] * 8
    return w


def _probe_value(name: str):
    if name in MAC_FIELDS:
        return "00:00:00:00:00:00"
    if name in IP4_FIELDS:
        return "0.0.0.0"
    if name in IP6_FIELDS:
        return "::"
    return 0


def _wire_name(name: str) -> str:
    return name


def _as_int(name: str, v) -> int:
    if name in MAC_FIELDS:
        return int(v.replace(":", ""), 16)
    if name in IP4_FIELDS:
        return int.from_bytes(socket.inet_aton(v), "big")  # (checked canonical before)
    if name in IP6_FIELDS:
        return int(ipaddress.ip_address(v))
    return int(v)


def _canonical_ipv4(v: str) -> bool:
    """``v`` is an IPv4 address as ipaddress writes it (four decimal
    numbers, no leading zeros), by the C library: a cold start checks
    thousands."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, v)) == v
    except (OSError, ValueError):
        return False


def _check_spelling(flow, name: str, v) -> None:
    if name in MAC_FIELDS:
        if not isinstance(v, str) or v != v.lower() or len(v) != 17:
            raise ValueError(f"{flow}: {name} {v!r} is not a lower-case aa:bb:cc:dd:ee:ff MAC")
    elif name in IP4_FIELDS:
        if not isinstance(v, str) or not _canonical_ipv4(v):
            raise ValueError(f"{flow}: {name} {v!r} is not a canonical IP address")
    elif name in IP6_FIELDS:
        if not isinstance(v, str) or str(ipaddress.ip_address(v)) != v:
            raise ValueError(f"{flow}: {name} {v!r} is not a canonical IP address")


def check_canonical(flow: F.Flow) -> None:
    """Raise ValueError if the switch would hand ``flow`` back differently."""
    for f in flow.match:
        _check_spelling(flow, f.name, f.value)
        if f.mask is None:
            continue
        _check_spelling(flow, f.name, f.mask)
        width = _field_width(f.name)
        full = (1 << width) - 1
        mask = _as_int(f.name, f.mask)
        value = _as_int(f.name, f.value)
        if mask == full:
            raise ValueError(f"{flow}: {f.name} has an all-ones mask; use an exact match")
        if mask == 0:
            raise ValueError(f"{flow}: {f.name} has a zero mask; leave the field out")
        if value & ~mask & full:
            raise ValueError(f"{flow}: {f.name} has value bits outside its mask")
    for i, a in enumerate(flow.actions):
        if isinstance(a, F.Output) and a.port == OFPP_CONTROLLER:
            raise ValueError(f"{flow}: use Controller() rather than Output(OFPP_CONTROLLER)")
        if isinstance(a, F.GotoTable) and i != len(flow.actions) - 1:
            raise ValueError(f"{flow}: GotoTable must be the last action")
        if isinstance(a, F.SetField):
            _check_spelling(flow, a.name, a.value)


# ----------------------------------------------------------- match
def _to_wire_value(name: str, v):
    if name in MAC_FIELDS:
        return v.lower()
    if name in IP4_FIELDS or name in IP6_FIELDS:
        return str(v)
    return int(v)


# Nicira fields with prerequisites: os-ken orders a match's fields by OXM
# type, which puts the NXM class (0x0001) before eth_type; the switch
# checks each field's prerequisites against the fields before it.
_AFTER_PREREQS = frozenset({"nw_ttl"})


def encode_match(match: F.Match) -> ofpp.OFPMatch:
    kw = {}
    for f in match:
        value = _to_wire_value(f.name, f.value)
        if f.mask is not None:
            value = (value, _to_wire_value(f.name, f.mask))
        kw[_wire_name(f.name)] = value
    m = ofpp.OFPMatch(**kw)
    if _AFTER_PREREQS.isdisjoint(kw):
        return m
    fields = m._fields2
    late = [x for x in fields if x[0] in _AFTER_PREREQS]
    return ofpp.OFPMatch(_ordered_fields=[x for x in fields if x[0] not in _AFTER_PREREQS]
                         + late)


def _from_wire_value(name: str, v):
    if name in MAC_FIELDS:
        return v.lower()
    if name in IP4_FIELDS or name in IP6_FIELDS:
        return str(ipaddress.ip_address(v))
    return int(v)


def decode_match(m: ofpp.OFPMatch) -> F.Match:
    fields = []
    for wire, value in m.items():
        name = _field_from_wire(wire)
        if isinstance(value, tuple):
            v, mask = value
            fields.append(F.Field(name, _from_wire_value(name, v), _from_wire_value(name, mask)))
        else:
            fields.append(F.Field(name, _from_wire_value(name, value)))
    return F.Match(*fields)


def _packet_in_match(m: ofpp.OFPMatch) -> F.Match:
    """A packet-in's metadata: the fields we can name.  Open vSwitch adds
    pipeline fields os-ken does not know (conntrack's original tuple of a
    tracked packet, ct_nw_src...), which a packet-in may simply lack."""
    fields = []
    for wire, value in m.items():
        name = _field_from_wire(wire)
        try:
            if isinstance(value, tuple):
                fields.append(F.Field(name, _from_wire_value(name, value[0]),
                                      _from_wire_value(name, value[1])))
            else:
                fields.append(F.Field(name, _from_wire_value(name, value)))
        except (TypeError, ValueError):
            continue
    return F.Match(*fields)


# ----------------------------------------------------------- actions
def _encode_action(a):
    if isinstance(a, F.Output):
        return ofpp.OFPActionOutput(a.port, 0)
    if isinstance(a, F.Controller):
        if a.userdata:
            return ofpp.NXActionController2(max_len=a.max_len, userdata=list(a.userdata))
        return ofpp.OFPActionOutput(OFPP_CONTROLLER, a.max_len)
    if isinstance(a, F.SetField):
        if a.name in _OVS_OXM:
            return _RawSetField(a.name, a.value)
        return ofpp.OFPActionSetField(**{_wire_name(a.name): _to_wire_value(a.name, a.value)})
    if isinstance(a, F.DecTtl):
        return ofpp.OFPActionDecNwTtl()
    if isinstance(a, F.PushVlan):
        return ofpp.OFPActionPushVlan(a.ethertype)
    if isinstance(a, F.PopVlan):
        return ofpp.OFPActionPopVlan()
    if isinstance(a, F.Resubmit):
        in_port = NX_IN_PORT_16 if a.in_port is None else a.in_port
        return ofpp.NXActionResubmitTable(in_port=in_port, table_id=a.table)
    if isinstance(a, F.Conjunction):
        return ofpp.NXActionConjunction(clause=a.clause, n_clauses=a.n_clauses, id_=a.id)
    if isinstance(a, F.Ct):
        if a.zone_src:
            zone_src, zone = a.zone_src, nicira_ext.ofs_nbits(0, 15)
        else:
            zone_src, zone = "", a.zone
        return ofpp.NXActionCT(
            flags=NX_CT_F_COMMIT if a.commit else 0,
            zone_src=zone_src,
            zone_ofs_nbits=zone,
            recirc_table=NX_NO_TABLE if a.table is None else a.table,
            alg=0,
            actions=_ct_nested(a),
        )
    if isinstance(a, F.Bundle):
        return ofpp.NXActionBundle(
            algorithm=_BD_ALG[a.algorithm], fields=_BD_FIELDS[a.fields], basis=a.basis,
            slave_type=nicira_ext.NXM_OF_IN_PORT, n_slaves=len(a.members), ofs_nbits=0,
            dst=0, slaves=list(a.members))
    if _Move is not None and isinstance(a, _Move):
        return _encode_move(a)
    raise ValueError(f"cannot encode action {a!r}")


# ct(nat): NX_NAT_F_* flags, as Open vSwitch defines them
NX_NAT_F_SRC = 1
NX_NAT_F_DST = 2
_NAT_KINDS = {None: 0, "src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST}
_NAT_KIND_OF = {v: k for k, v in _NAT_KINDS.items()}
_BD_ALG = {"active_backup": nicira_ext.NX_BD_ALG_ACTIVE_BACKUP, "hrw": nicira_ext.NX_BD_ALG_HRW}
_BD_FIELDS = {"eth_src": nicira_ext.NX_HASH_FIELDS_ETH_SRC,
              "symmetric_l4": nicira_ext.NX_HASH_FIELDS_SYMMETRIC_L4}
_BD_ALG_OF = {v: k for k, v in _BD_ALG.items()}
_BD_FIELDS_OF = {v: k for k, v in _BD_FIELDS.items()}


def _ct_nested(a) -> list:
    if a.nat is not None:
        return [_encode_nat(a.nat)]
    if a.mark is not None:
        return [ofpp.OFPActionSetField(ct_mark=a.mark)]
    if a.write is not None:
        if isinstance(a.write, F.LoadBits):  # (OpenFlow 1.3 has no masked set-field)
            return [ofpp.NXActionRegLoad2(dst=_wire_name(a.write.name), value=a.write.value,
                                          mask=a.write.mask)]
        return [_encode_move(a.write)]
    return []


def _encode_nat(n):
    kw = {}
    if n.ip_min is not None:
        v6 = ":" in n.ip_min
        kw["range_ipv6_min" if v6 else "range_ipv4_min"] = n.ip_min
        if n.ip_max is not None:
            kw["range_ipv6_max" if v6 else "range_ipv4_max"] = n.ip_max
    if n.port_min is not None:
        kw["range_proto_min"] = n.port_min
        if n.port_max is not None:
            kw["range_proto_max"] = n.port_max
    return ofpp.NXActionNAT(flags=_NAT_KINDS[n.kind], **kw)


def _decode_nat(a):
    kind = _NAT_KIND_OF.get(a.flags & (NX_NAT_F_SRC | NX_NAT_F_DST))
    if a.flags & ~(NX_NAT_F_SRC | NX_NAT_F_DST):
        raise ValueError(f"cannot decode nat flags {a.flags:#x}")
    ip_min = a.range_ipv4_min or a.range_ipv6_min or None
    ip_max = a.range_ipv4_max or a.range_ipv6_max or None
    return F.Nat(kind=kind,
                 ip_min=None if ip_min is None else str(ipaddress.ip_address(ip_min)),
                 ip_max=None if ip_max is None else str(ipaddress.ip_address(ip_max)),
                 port_min=a.range_proto_min, port_max=a.range_proto_max)


def _encode_move(a):
    return ofpp.NXActionRegMove(
        src_field=_wire_name(a.src),
        dst_field=_wire_name(a.dst),
        n_bits=a.n_bits,
        src_ofs=a.src_ofs,
        dst_ofs=a.dst_ofs,
    )


def _field_from_wire(wire: str) -> str:
    name = wire[:-4] if wire.endswith("_nxm") else wire
    return _FROM_WIRE_NAME.get(name, name)


def _decode_move(a):
    return F.Move(
        src=_field_from_wire(a.src_field),
        dst=_field_from_wire(a.dst_field),
        n_bits=a.n_bits,
        src_ofs=a.src_ofs,
        dst_ofs=a.dst_ofs,
    )


def _decode_action(a):
    if isinstance(a, ofpp.OFPActionOutput):
        if a.port == OFPP_CONTROLLER:
            return F.Controller(max_len=a.max_len)
        return F.Output(a.port)
    if isinstance(a, ofpp.NXActionController2):
        return F.Controller(
            max_len=getattr(a, "max_len", 0xFFFF), userdata=bytes(getattr(a, "userdata", b""))
        )
    if isinstance(a, ofpp.NXActionController):
        return F.Controller(max_len=a.max_len)
    if isinstance(a, ofpp.OFPActionSetField):
        ovs_name = _OVS_OXM_BY_OSKEN_NAME.get(a.key)
        if ovs_name is not None:  # os-ken hands unknown OXM values base64'd
            return F.SetField(ovs_name, int.from_bytes(base64.b64decode(a.value), "big"))
        name = _field_from_wire(a.key)
        return F.SetField(name, _from_wire_value(name, a.value))
    if isinstance(a, ofpp.OFPActionDecNwTtl):
        return F.DecTtl()
    if isinstance(a, ofpp.NXActionRegLoad2):
        name = _field_from_wire(a.dst)
        if a.mask is not None:
            raise ValueError(f"cannot decode a masked load into {name}")
        return F.SetField(name, _from_wire_value(name, a.value))
    if isinstance(a, ofpp.OFPActionPushVlan):
        return F.PushVlan(a.ethertype)
    if isinstance(a, ofpp.OFPActionPopVlan):
        return F.PopVlan()
    if isinstance(a, ofpp.NXActionResubmitTable):
        return F.Resubmit(a.table_id, None if a.in_port == NX_IN_PORT_16 else a.in_port)
    if isinstance(a, ofpp.NXActionConjunction):
        return F.Conjunction(id=a.id, clause=a.clause, n_clauses=a.n_clauses)
    if isinstance(a, ofpp.NXActionCT):
        nat = None
        if a.alg or len(a.actions) > 1:
            raise ValueError("cannot decode ct() with alg or several nested actions")
        mark = write = None
        if a.actions:
            nested = a.actions[0]
            if isinstance(nested, ofpp.OFPActionSetField) and nested.key == "ct_mark":
                mark = nested.value
            elif isinstance(nested, ofpp.NXActionNAT):
                nat = _decode_nat(nested)
            elif isinstance(nested, ofpp.NXActionRegLoad2) and nested.mask is not None:
                write = F.LoadBits(_field_from_wire(nested.dst), nested.value, nested.mask)
            elif isinstance(nested, ofpp.NXActionRegMove) and _Move is not None:
                write = _decode_move(nested)
            else:
                raise ValueError(f"cannot decode ct() with nested {nested!r}")
        table = None if a.recirc_table == NX_NO_TABLE else a.recirc_table
        commit = bool(a.flags & NX_CT_F_COMMIT)
        if a.zone_src:
            return F.Ct(commit=commit, zone_src=_field_from_wire(a.zone_src), table=table,
                        nat=nat, mark=mark, write=write)
        return F.Ct(commit=commit, zone=a.zone_ofs_nbits, table=table, nat=nat, mark=mark,
                    write=write)
    if isinstance(a, ofpp.NXActionBundle):
        if a.dst or a.ofs_nbits:
            raise ValueError("cannot decode bundle_load")
        return F.Bundle(members=tuple(a.slaves), algorithm=_BD_ALG_OF[a.algorithm],
                        fields=_BD_FIELDS_OF[a.fields], basis=a.basis)
    if isinstance(a, ofpp.NXActionRegMove) and _Move is not None:
        return _decode_move(a)
    raise ValueError(f"cannot decode action {a!r}")


def encode_instructions(actions) -> list:
    """Instructions in the order the switch hands them back: meter,
    apply-actions, goto-table."""
    apply = []
    meter = []
    goto = []
    for a in actions:
        if isinstance(a, F.GotoTable):
            goto.append(ofpp.OFPInstructionGotoTable(a.table))
        elif isinstance(a, F.Meter):
            meter.append(ofpp.OFPInstructionMeter(a.id, ofp.OFPIT_METER))
        else:
            apply.append(_encode_action(a))
    inst = meter
    if apply:
        inst.append(ofpp.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, apply))
    return inst + goto


def decode_instructions(instructions) -> tuple:
    actions = []
    goto = None
    meter = None
    for i in instructions:
        if isinstance(i, ofpp.OFPInstructionActions) and i.type == ofp.OFPIT_APPLY_ACTIONS:
            actions.extend(_decode_action(a) for a in i.actions)
        elif isinstance(i, ofpp.OFPInstructionGotoTable):
            goto = F.GotoTable(i.table_id)
        elif isinstance(i, ofpp.OFPInstructionMeter):
            meter = F.Meter(i.meter_id)
        else:
            raise ValueError(f"cannot decode instruction {i!r}")
    if goto is not None:
        actions.append(goto)
    if meter is not None:
        actions.insert(0, meter)
    return tuple(actions)


# ----------------------------------------------------------- flow mods
ADD, MODIFY, DELETE = "add", "modify", "delete"


def flow_mod(
    flow: F.Flow, command: str = ADD, cookie_mask: Optional[int] = None
) -> ofpp.OFPFlowMod:
    """An OFPFlowMod for ``flow``.

    ``add`` (also used for modifies: an add with the same table, priority
    and match replaces the flow, cookie included, whereas OpenFlow's
    modify would keep the old cookie); ``delete`` is strict (exactly this
    table, priority and match) and, with ``cookie_mask``, only removes the
    flow if its cookie matches ``flow.cookie`` under that mask.
    """
    check_canonical(flow)
    match = encode_match(flow.match)
    if command in (ADD, MODIFY):
        return ofpp.OFPFlowMod(
            DP,
            cookie=flow.cookie,
            table_id=flow.table,
            command=ofp.OFPFC_ADD,
            priority=flow.priority,
            buffer_id=NO_BUFFER,
            match=match,
            instructions=encode_instructions(flow.actions),
        )
    if command == DELETE:
        return ofpp.OFPFlowMod(
            DP,
            cookie=flow.cookie if cookie_mask else 0,
            cookie_mask=cookie_mask or 0,
            table_id=flow.table,
            command=ofp.OFPFC_DELETE_STRICT,
            priority=flow.priority,
            buffer_id=NO_BUFFER,
            out_port=OFPP_ANY,
            out_group=ofp.OFPG_ANY,
            match=match,
        )
    raise ValueError(f"unknown flow-mod command {command!r}")


def _field_layout(name: str, masked: bool):
    """(os-ken's sort key, OXM header bytes, value size, kind) of a match
    field, from os-ken's table of OXM fields: the header of a field of a
    4-byte-header class is its class, field number, mask bit and length
    (the number os-ken sorts by is class << 7 | field), so no match object
    is made and serialized to learn it (that was ~15 ms of a cold start,
    issue 17); an experimenter field's comes from the probe."""
    try:
        num, typ = ofp.oxm_get_field_info_by_name(_wire_name(name))
    except KeyError:
        num = typ = None
    size = getattr(typ, "size", None)
    if type(num) is not int or num >> 7 == 0xFFFF or not size:
        return _probed_layout(name, masked)
    kind = "mac" if name in MAC_FIELDS else "ipv4" if name in IP4_FIELDS else \
        "ipv6" if name in IP6_FIELDS else "int"
    header = struct.pack("!HBB", num >> 7, (num & 0x7F) << 1 | masked,
                         size * 2 if masked else size)
    return num, header, size, kind


def _probed_layout(name: str, masked: bool):
    """_field_layout learned from os-ken by serializing a match of the
    field."""
    v = _to_wire_value(name, _probe_value(name))
    if masked:
        v = (v, v)
    wire = _wire_name(name)
    m = ofpp.OFPMatch(**{wire: v})
    buf = bytearray()
    m.serialize(buf, 0)
    tlv = bytes(buf[4:struct.unpack_from("!H", buf, 2)[0]])
    hlen = 8 if tlv[0:2] == b"\xff\xff" else 4  # an experimenter OXM: its id too
    size = (len(tlv) - hlen) // (2 if masked else 1)
    num = ofp.oxm_from_user(*ofp.oxm_normalize_user(wire, v))[0]
    kind = "mac" if name in MAC_FIELDS else "ipv4" if name in IP4_FIELDS else \
        "ipv6" if name in IP6_FIELDS else "int"
    return (num[0] if isinstance(num, tuple) else num), tlv[:hlen], size, kind


def _check_term(name: str, value, mask) -> None:
    # An exact term passes check_canonical's test of its spelling here
    # without a probe flow (a cold start checks thousands of new terms);
    # anything else, and anything that fails, takes the whole check (and
    # its message).
    if mask is None and _spelled_canonically(name, value):
        return
    check_canonical(F.Flow(0, 0, F.Match(F.Field(name, value, mask)), (), 0))


def _check_action(a) -> None:
    # As _check_term: the actions check_canonical has nothing to say about
    # alone (all but a set-field, and an output to the controller's port)
    # need no probe flow.
    if isinstance(a, F.Output):
        if a.port != OFPP_CONTROLLER:
            return
    elif not isinstance(a, F.SetField) or _spelled_canonically(a.name, a.value):
        return
    check_canonical(F.Flow(0, 0, F.Match(), (a,), 0))


def _spelled_canonically(name: str, v) -> bool:
    """True if _check_spelling passes ``v`` (False: it may not; IPv6
    values are left to it)."""
    if name in MAC_FIELDS:
        return isinstance(v, str) and len(v) == 17 and v == v.lower()
    if name in IP4_FIELDS:
        return isinstance(v, str) and _canonical_ipv4(v)
    return name not in IP6_FIELDS  # an int field: nothing to check


def _action_bytes(a) -> bytes:
    """One action's bytes inside apply-actions, by os-ken (Nicira actions
    leave their padding to whatever the message writes next: add it)."""
    obj = _encode_action(a)
    buf = bytearray()
    obj.serialize(buf, 0)
    return bytes(buf) + b"\0" * (obj.len - len(buf))


def new_fast_encoder() -> FastEncoder:
    return FastEncoder(_field_layout, _check_term, _check_action, _action_bytes,
                       raw_fields=_OVS_OXM, late=_AFTER_PREREQS)


FAST = new_fast_encoder()


def flow_mod_bytes(flow: F.Flow, command: str = ADD, cookie_mask: Optional[int] = None) -> bytes:
    """The serialized flow-mod (xid 0): the same bytes as
    ``serialize(flow_mod(...), 0)`` (os-ken), made by the memoizing
    encoder of agent.openflow.fastencode.  Its parts are memoized, not
    whole flows: re-installing a table after ovs-vswitchd restarts costs
    a few lookups a flow, and a cold start does not pay for hashing every
    Flow (in Python) to fill a cache it never reads (issue 17).  Refuses
    what check_canonical refuses (each part checked when first seen)."""
    if command in (ADD, MODIFY):
        return FAST.add(flow)
    if command == DELETE:
        return FAST.delete_strict(flow, cookie_mask)
    raise ValueError(f"unknown flow-mod command {command!r}")


def _forget_encoded() -> None:
    """A cold encoder again (what each flow's part memos were)."""
    global FAST
    FAST = new_fast_encoder()


flow_mod_bytes.cache_clear = _forget_encoded  # (as when it was an lru_cache)


def flow_mod_bytes_osken(flow: F.Flow, command: str = ADD,
                         cookie_mask: Optional[int] = None) -> bytes:
    """The same flow-mod, every part built by os-ken (the reference)."""
    return serialize(flow_mod(flow, command, cookie_mask), 0)


_BUNDLE_ADD = struct.Struct("!BBHIIIIxxH")


def bundle_add_bytes(bundle_id: int, inner: bytes, xid: int, flags: Optional[int] = None) -> bytes:
    """An ONF bundle-add message around an already serialized message
    (what ``serialize(bundle_add(...), xid)`` gives, without re-encoding
    the inner message; its xid must equal the outer one)."""
    if flags is None:
        flags = BUNDLE_ATOMIC | BUNDLE_ORDERED
    head = _BUNDLE_ADD.pack(
        OFP_VERSION,
        ofp.OFPT_EXPERIMENTER,
        _BUNDLE_ADD.size + len(inner),
        xid,
        ofproto_common.ONF_EXPERIMENTER_ID,
        ofp.ONF_ET_BUNDLE_ADD_MESSAGE,
        bundle_id,
        flags,
    )
    return head + inner[:4] + struct.pack("!I", xid) + inner[8:]


def decode_flow_stats(stats) -> F.Flow:
    """One OFPFlowStats entry (from a flow-stats reply) as a Flow."""
    return F.Flow(
        table=stats.table_id,
        priority=stats.priority,
        match=decode_match(stats.match),
        actions=decode_instructions(stats.instructions),
        cookie=stats.cookie,
    )


def decode_flow_stats_at(buf: bytes, offset: int) -> F.Flow:
    """The ofp_flow_stats entry at ``buf[offset:]`` decoded by os-ken (the
    complete decoder; :data:`FLOW_STATS` hands it what it does not know)."""
    return decode_flow_stats(ofpp.OFPFlowStats.parser(buf, offset))


_OXM_TYPES = {f.num: f for f in ofp.oxm_types if isinstance(f.num, int)}


def oxm_field_info(oxm_type: int) -> Optional[tuple]:
    """(name, kind, size) of an OXM/NXM type (``class << 7 | field``) as
    :func:`decode_match` names and converts it: kind "mac", "ipv4", "ipv6"
    or "int".  None for types the fast decoder should leave to os-ken
    (unknown to os-ken, or of a value type our decoder does not convert)."""
    f = _OXM_TYPES.get(oxm_type)
    if f is None:
        ovs = _OVS_OXM_BY_TYPE.get(oxm_type)
        return None if ovs is None else (ovs[0], "int", ovs[1])
    name = _field_from_wire(f.name)
    t = f.type
    if name in MAC_FIELDS:
        kind = "mac" if t is type_desc.MacAddr else None
    elif name in IP4_FIELDS:
        kind = "ipv4" if t is type_desc.IPv4Addr else None
    elif name in IP6_FIELDS:
        kind = "ipv6" if t is type_desc.IPv6Addr else None
    else:
        kind = "int" if type(t) is type_desc.IntDescr else None
    return None if kind is None else (name, kind, t.size)


# Flow-stats replies (the dump after every reconnection) are decoded by
# struct for what our flows contain, by os-ken for anything else.
FLOW_STATS = FlowStatsDecoder(oxm_field_info, decode_flow_stats_at)
_MULTIPART_REPLY = struct.Struct("!HH4x")


def decode_flow_mod(msg: ofpp.OFPFlowMod) -> F.Flow:
    return F.Flow(
        table=msg.table_id,
        priority=msg.priority,
        match=decode_match(msg.match),
        actions=decode_instructions(msg.instructions),
        cookie=msg.cookie,
    )


# ----------------------------------------------------------- wire helpers
def serialize(msg, xid: int) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def parse_header(buf: bytes) -> tuple[int, int, int, int]:
    """(version, type, length, xid) of the message at the start of ``buf``."""
    return ofproto_parser.header(buf)


def hello() -> ofpp.OFPHello:
    return ofpp.OFPHello(DP)


def features_request():
    return ofpp.OFPFeaturesRequest(DP)


def echo_request(data: bytes = b""):
    return ofpp.OFPEchoRequest(DP, data)


def echo_reply(data: bytes = b""):
    return ofpp.OFPEchoReply(DP, data)


def barrier_request():
    return ofpp.OFPBarrierRequest(DP)


METER_ADD, METER_MODIFY = ofp.OFPMC_ADD, ofp.OFPMC_MODIFY


def meter_mod(meter_id: int, rate: int, burst: int, command: int = METER_ADD):
    """A meter that drops packets above ``rate`` per second (bursts of
    ``burst`` pass)."""
    return ofpp.OFPMeterMod(
        DP, command=command, flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST, meter_id=meter_id,
        bands=[ofpp.OFPMeterBandDrop(rate=rate, burst_size=burst)])


def is_meter_exists(err) -> bool:
    return err.type == ofp.OFPET_METER_MOD_FAILED and err.code == ofp.OFPMMFC_METER_EXISTS


def set_config(miss_send_len: int = ofp.OFPCML_NO_BUFFER):
    return ofpp.OFPSetConfig(DP, ofp.OFPC_FRAG_NORMAL, miss_send_len)


def set_async():
    """Packet-ins for no-match and action only: never "invalid TTL", which
    the switch would send unmetered for every expiring packet (the router
    flows punt those themselves, through a meter); port status and flow
    removed as Open vSwitch's defaults; for a slave connection only port
    status."""
    pin = 1 << ofp.OFPR_NO_MATCH | 1 << ofp.OFPR_ACTION
    ps = 1 << ofp.OFPPR_ADD | 1 << ofp.OFPPR_DELETE | 1 << ofp.OFPPR_MODIFY
    fr = (1 << ofp.OFPRR_IDLE_TIMEOUT | 1 << ofp.OFPRR_HARD_TIMEOUT | 1 << ofp.OFPRR_DELETE
          | 1 << ofp.OFPRR_GROUP_DELETE)
    return ofpp.OFPSetAsync(DP, [pin, 0], [ps, ps], [fr, 0])


BUNDLE_OPEN = ofp.ONF_BCT_OPEN_REQUEST
BUNDLE_COMMIT = ofp.ONF_BCT_COMMIT_REQUEST
BUNDLE_DISCARD = ofp.ONF_BCT_DISCARD_REQUEST
BUNDLE_ATOMIC = ofp.ONF_BF_ATOMIC
BUNDLE_ORDERED = ofp.ONF_BF_ORDERED


def bundle_ctrl(bundle_id: int, type_: int, flags: int = BUNDLE_ATOMIC | BUNDLE_ORDERED):
    """ONF bundle control (the OpenFlow 1.3 spelling of OFPT_BUNDLE_CONTROL)."""
    return ofpp.ONFBundleCtrlMsg(DP, bundle_id, type_, flags, [])


def bundle_add(bundle_id: int, message, flags: int = BUNDLE_ATOMIC | BUNDLE_ORDERED):
    return ofpp.ONFBundleAddMsg(DP, bundle_id, flags, message, [])


def flow_stats_request(cookie: int = 0, cookie_mask: int = 0, table: int = OFPTT_ALL):
    return ofpp.OFPFlowStatsRequest(
        DP,
        flags=0,
        table_id=table,
        out_port=OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        cookie=cookie,
        cookie_mask=cookie_mask,
        match=ofpp.OFPMatch(),
    )


def packet_out(data: bytes, actions: Iterable, in_port: int = OFPP_CONTROLLER):
    return ofpp.OFPPacketOut(
        DP,
        buffer_id=NO_BUFFER,
        in_port=in_port,
        actions=[_encode_action(a) for a in actions],
        data=data,
    )


# ----------------------------------------------------------- incoming
@dataclass(frozen=True, slots=True)
class OFError:
    type: int
    code: int
    data: bytes  # the start of the offending message, as the switch echoed it

    def __repr__(self) -> str:
        return f"OFError({self})"

    def __str__(self) -> str:
        try:
            d = ofp.ofp_error_to_jsondict(self.type, self.code)
            return f"{d['type']}/{d['code']}"
        except Exception:
            return f"OpenFlow error type={self.type} code={self.code}"


@dataclass(frozen=True, slots=True)
class PacketIn:
    reason: int
    table: int
    cookie: int
    in_port: Optional[int]
    match: F.Match
    data: bytes
    total_len: int


@dataclass(frozen=True, slots=True)
class Incoming:
    """A parsed message: ``kind`` names what the channel needs to know."""

    kind: str  # hello echo_request echo_reply error features_reply barrier_reply
    #            flow_stats bundle_ctrl packet_in port_status other
    xid: int
    more: bool = False  # multipart: more replies follow with this xid
    flows: tuple = ()  # flow_stats: decoded Flows
    error: Optional[OFError] = None
    bundle_type: Optional[int] = None
    datapath_id: Optional[int] = None
    packet_in: Optional[PacketIn] = None
    data: bytes = b""
    msg: object = None  # the os-ken object, for logging only


def _load_parser(version: int) -> None:
    """os-ken's parser of another OpenFlow version (a hello offering more
    than 1.3), loaded if it was deferred: os-ken parses such a message as
    it always did."""
    pair = get_ofp_modules().get(version)
    if pair is not None and pair[1].__name__ in _DEFERRED:
        _DEFERRED[pair[1].__name__]()


def parse(buf: bytes) -> Incoming:
    version, msg_type, length, xid = ofproto_parser.header(buf)
    if version != OFP_VERSION:
        _load_parser(version)
    if msg_type == ofp.OFPT_MULTIPART_REPLY and version == OFP_VERSION and length >= 16:
        mp_type, flags = _MULTIPART_REPLY.unpack_from(buf, HEADER_SIZE)
        if mp_type == ofp.OFPMP_FLOW:
            flows = FLOW_STATS.entries(buf, 16, length)
            return Incoming(
                "flow_stats", xid, more=bool(flags & ofp.OFPMPF_REPLY_MORE), flows=tuple(flows)
            )
    msg = ofproto_parser.msg(DP, version, msg_type, length, xid, bytes(buf[:length]))
    if msg is None:
        return Incoming("other", xid)
    if isinstance(msg, ofpp.OFPHello):
        return Incoming("hello", xid, msg=msg)
    if isinstance(msg, ofpp.OFPEchoRequest):
        return Incoming("echo_request", xid, data=bytes(msg.data or b""), msg=msg)
    if isinstance(msg, ofpp.OFPEchoReply):
        return Incoming("echo_reply", xid, msg=msg)
    if isinstance(msg, ofpp.OFPErrorMsg):
        return Incoming(
            "error", xid, error=OFError(msg.type, msg.code, bytes(msg.data or b"")), msg=msg
        )
    if isinstance(msg, ofpp.OFPSwitchFeatures):
        return Incoming("features_reply", xid, datapath_id=msg.datapath_id, msg=msg)
    if isinstance(msg, ofpp.OFPBarrierReply):
        return Incoming("barrier_reply", xid, msg=msg)
    if isinstance(msg, ofpp.OFPFlowStatsReply):
        flows = tuple(decode_flow_stats(s) for s in msg.body)
        return Incoming(
            "flow_stats", xid, more=bool(msg.flags & ofp.OFPMPF_REPLY_MORE), flows=flows
        )
    if isinstance(msg, ofpp.ONFBundleCtrlMsg):
        return Incoming("bundle_ctrl", xid, bundle_type=msg.type, msg=msg)
    if isinstance(msg, ofpp.OFPPacketIn):
        match = _packet_in_match(msg.match)
        in_port = match.get("in_port")
        pin = PacketIn(
            reason=msg.reason,
            table=msg.table_id,
            cookie=msg.cookie,
            in_port=None if in_port is None else in_port.value,
            match=match,
            data=bytes(msg.data),
            total_len=msg.total_len,
        )
        return Incoming("packet_in", xid, packet_in=pin, msg=msg)
    if isinstance(msg, ofpp.OFPPortStatus):
        return Incoming("port_status", xid, msg=msg)
    return Incoming("other", xid, msg=msg)


def parse_flow_mod(buf: bytes) -> F.Flow:
    """Decode a serialized flow-mod (for tests and debugging)."""
    version, msg_type, length, xid = ofproto_parser.header(buf)
    msg = ofproto_parser.msg(DP, version, msg_type, length, xid, bytes(buf[:length]))
    return decode_flow_mod(msg)
