"""Small helpers shared by the flow generators."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from operator import attrgetter

from quantum_ovs.compiler.flow import (
    OFPP_IN_PORT,
    Conjunction,
    Field,
    Match,
    Move,
    Output,
    SetField,
)
from quantum_ovs.compiler.pipeline import ETH_IP, ETH_IPV6, FLAG_FROM_REMOTE, REG_FLAGS

_name = attrgetter("name")


def mk(*fields: Field) -> Match:
    """A Match from distinct fields (the fast path of ``Match(*fields)``)."""
    return tuple.__new__(Match, sorted(fields, key=_name))


def mk_sorted(fields) -> Match:
    """A Match from fields already sorted by name."""
    return tuple.__new__(Match, fields)


F_IP = Field("eth_type", ETH_IP)
F_IPV6 = Field("eth_type", ETH_IPV6)
F_ARP = Field("eth_type", 0x0806)
F_ARP_REQ = Field("arp_op", 1)
# sent by this host's ports, or arrived over a tunnel or a physical network
FROM_LOCAL = Field(REG_FLAGS, 0, FLAG_FROM_REMOTE)
FROM_REMOTE = Field(REG_FLAGS, FLAG_FROM_REMOTE, FLAG_FROM_REMOTE)

_MOVE_ETH = Move("eth_src", "eth_dst", 48)
_SET_REPLY = SetField("arp_op", 2)
_MOVE_SHA = Move("arp_sha", "arp_tha", 48)
_MOVE_SPA = Move("arp_spa", "arp_tpa", 32)
_OUT_IN_PORT = Output(OFPP_IN_PORT)


def arp_reply(mac: str, ip: str) -> tuple:
    """Turn an ARP request for ``ip`` into the reply from ``mac``."""
    return (
        _MOVE_ETH,
        SetField("eth_src", mac),
        _SET_REPLY,
        _MOVE_SHA,
        SetField("arp_sha", mac),
        _MOVE_SPA,
        SetField("arp_spa", ip),
        _OUT_IN_PORT,
    )


@lru_cache(maxsize=1 << 17)
def conjunction(conj_id: int, clause: int, n_clauses: int):
    return Conjunction(conj_id, clause, n_clauses)


@lru_cache(maxsize=None)
def reg(name: str, value: int) -> Field:
    return Field(name, value)


@lru_cache(maxsize=65536)
def ip_version(address: str) -> int:
    return 6 if ":" in address else 4


@lru_cache(maxsize=65536)
def addr_field(v4name: str, v6name: str, address: str):
    """(eth_type field, address field) for an address or a CIDR; None if
    the prefix is /0 (matches everything of that family)."""
    if "/" in address:
        net = ipaddress.ip_network(address, strict=False)
        eth = F_IPV6 if net.version == 6 else F_IP
        name = v6name if net.version == 6 else v4name
        if net.prefixlen == 0:
            return eth, None
        if net.prefixlen == net.max_prefixlen:
            return eth, Field(name, str(net.network_address))
        return eth, Field(name, str(net.network_address), str(net.netmask))
    if ":" in address:
        return F_IPV6, Field(v6name, str(ipaddress.IPv6Address(address)))
    return F_IP, Field(v4name, address)


def port_masks(lo: int, hi: int) -> list[tuple[int, int | None]]:
    """Cover [lo, hi] of a 16-bit port space with (value, mask) pairs."""
    if lo == hi:
        return [(lo, None)]
    if lo == 0 and hi == 0xFFFF:
        return []
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 0x10000
        while size > hi - lo + 1:
            size >>= 1
        mask = 0xFFFF & ~(size - 1)
        out.append((lo, None if size == 1 else mask))
        lo += size
    return out


@lru_cache(maxsize=65536)
def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of a MAC."""
    b = bytes(int(x, 16) for x in mac.split(":"))
    eui = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui))
