"""The DNS message format (RFC 1035, EDNS0 of RFC 6891), what the agent's
resolver needs of it: parse one query, build one response.  Pure: bytes
in, values or bytes out; every malformation is a ``Malformed`` (a
ValueError), never another exception.

Names are tuples of lower-cased labels (bytes) in the parser and dotted
strings with a trailing dot ("vm1.openstacklocal.") everywhere else.

Compression pointers in a query are followed only backwards (to an offset
before the label that points), at most ``MAX_POINTERS`` times, and the
name they spell may not exceed 255 bytes: a loop, a forward reference or
a pointer out of the message is a Malformed query, not a hang.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

# Record types and classes.
TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_MX, TYPE_TXT = 1, 2, 5, 6, 12, 15, 16
TYPE_AAAA, TYPE_OPT, TYPE_ANY = 28, 41, 255
CLASS_IN = 1

# Response codes.
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

# Header flag bits.
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
OPCODE_SHIFT, OPCODE_MASK = 11, 0xF

HEADER = struct.Struct("!HHHHHH")
MAX_NAME = 255
MAX_LABEL = 63
MAX_POINTERS = 32
# Without EDNS a UDP answer is at most 512 bytes (RFC 1035 4.2.1).
CLASSIC_UDP_SIZE = 512
# What we advertise and accept of a client's EDNS payload size.
MAX_UDP_SIZE = 4096


class Malformed(ValueError):
    """Not a well-formed DNS query."""


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    flags: int
    qname: str  # lower case, with a trailing dot ("." for the root)
    qtype: int
    qclass: int
    question: bytes  # the question section as received (echoed back)
    edns_size: Optional[int] = None  # the client's EDNS UDP payload size

    @property
    def opcode(self) -> int:
        return (self.flags >> OPCODE_SHIFT) & OPCODE_MASK

    @property
    def rd(self) -> bool:
        return bool(self.flags & RD)

    @property
    def max_size(self) -> int:
        """The largest UDP response the client takes."""
        if self.edns_size is None:
            return CLASSIC_UDP_SIZE
        return max(CLASSIC_UDP_SIZE, min(self.edns_size, MAX_UDP_SIZE))


def read_name(msg: bytes, off: int) -> tuple[tuple[bytes, ...], int]:
    """The name at ``off`` of ``msg`` and the offset after it (after the
    first pointer, when the name is compressed)."""
    labels: list[bytes] = []
    length = 0
    end = None
    pointers = 0
    limit = off  # a pointer must point before the name that uses it
    while True:
        if off >= len(msg):
            raise Malformed("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise Malformed("truncated compression pointer")
            target = ((n & 0x3F) << 8) | msg[off + 1]
            if end is None:
                end = off + 2
            pointers += 1
            if pointers > MAX_POINTERS or target >= limit:
                raise Malformed("compression pointer loops or points forward")
            limit = target
            off = target
            continue
        if n & 0xC0:
            raise Malformed("unknown label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise Malformed("label runs past the message")
        length += n + 1
        if length + 1 > MAX_NAME:
            raise Malformed("name longer than 255 bytes")
        labels.append(bytes(msg[off:off + n]).lower())
        off += n
    return tuple(labels), (end if end is not None else off)


def name_text(labels: tuple[bytes, ...]) -> str:
    """Dotted text of wire labels (non-printable and dot bytes escaped as
    \\DDD, so that no label can spell another name)."""
    if not labels:
        return "."
    out = []
    for label in labels:
        out.append("".join(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C)
                           else "\\%03d" % b for b in label))
    return ".".join(out) + "."


def encode_name(name: str) -> bytes:
    """Wire form of a dotted name (trailing dot optional; plain labels
    only: the names we serve)."""
    name = name.rstrip(".")
    out = bytearray()
    if name:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) <= MAX_LABEL:
                raise ValueError("bad label in %r" % name)
            out += bytes((len(raw),)) + raw
    out += b"\x00"
    if len(out) > MAX_NAME:
        raise ValueError("name too long: %r" % name)
    return bytes(out)


def _skip_rr(msg: bytes, off: int) -> tuple[tuple[bytes, ...], int, int, int, int]:
    """(owner, type, class, ttl, offset of rdata end) of the record at off."""
    owner, off = read_name(msg, off)
    if off + 10 > len(msg):
        raise Malformed("truncated resource record")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, off)
    off += 10
    if off + rdlen > len(msg):
        raise Malformed("resource record data runs past the message")
    return owner, rtype, rclass, ttl, off + rdlen


def parse_query(msg: bytes) -> Query:
    """One standard query: QR clear, exactly one question, no answer or
    authority records; an OPT record in the additional section gives the
    client's UDP payload size.  Anything else is Malformed."""
    msg = bytes(msg)
    if len(msg) < HEADER.size:
        raise Malformed("short header")
    qid, flags, qd, an, ns, ar = HEADER.unpack_from(msg)
    if flags & QR:
        raise Malformed("a response, not a query")
    if qd != 1:
        raise Malformed("%d questions" % qd)
    if an or ns:
        raise Malformed("a query with answer or authority records")
    if ar > 8:
        raise Malformed("too many additional records")
    labels, off = read_name(msg, HEADER.size)
    if off + 4 > len(msg):
        raise Malformed("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    off += 4
    question = msg[HEADER.size:off]
    edns = None
    for _ in range(ar):
        owner, rtype, rclass, _ttl, off = _skip_rr(msg, off)
        if rtype == TYPE_OPT:
            if owner or edns is not None:
                raise Malformed("bad OPT record")
            edns = rclass
    return Query(qid, flags, name_text(labels), qtype, qclass, question, edns)


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # dotted, trailing dot
    rtype: int
    ttl: int
    rdata: bytes


def build_response(query: Query, rcode: int, answers: tuple[Record, ...] | list = (),
                   authoritative: bool = True, recursion_available: bool = True,
                   max_size: Optional[int] = None) -> bytes:
    """The response to ``query``: its question echoed, ``answers`` (a
    record named as the question points to it), an OPT record when the
    query had one.  When it does not fit in ``max_size`` (default: what
    the client takes) the answers are left out and TC is set: the client
    asks again over TCP."""
    limit = query.max_size if max_size is None else max_size
    flags = QR | (query.flags & (OPCODE_MASK << OPCODE_SHIFT)) | (query.flags & RD)
    if authoritative:
        flags |= AA
    if recursion_available:
        flags |= RA
    flags |= rcode & 0xF
    opt = b""
    if query.edns_size is not None:
        opt = b"\x00" + struct.pack("!HHIH", TYPE_OPT, MAX_UDP_SIZE, 0, 0)
    body = bytearray()
    qname = query.qname
    for r in answers:
        owner = b"\xc0\x0c" if r.name == qname else encode_name(r.name)
        body += owner + struct.pack("!HHIH", r.rtype, CLASS_IN, r.ttl, len(r.rdata)) + r.rdata
    count = len(answers)
    size = HEADER.size + len(query.question) + len(body) + len(opt)
    if size > limit:
        body, count, flags = bytearray(), 0, flags | TC
    head = HEADER.pack(query.id, flags, 1, count, 0, 1 if opt else 0)
    return head + query.question + bytes(body) + opt


def truncated(query: Query, rcode: int = NOERROR) -> bytes:
    """An empty response with TC set."""
    return build_response(query, rcode, max_size=0)
