"""Cookies: every flow says which logical object owns it.

Layout of the 64-bit cookie::

    bits 63..56  MARKER (0x51, "Q")   -- the flow is ours
    bits 55..48  owner kind (KIND_*)
    bits 47..0   48-bit BLAKE2b digest of the owner id (stable across
                 processes and Python versions; never the salted hash())

The agent deletes stale flows by cookie and must never touch a flow whose
cookie lacks our marker: test with :func:`is_ours`, or in a flow-mod use
``cookie=OURS_VALUE, cookie_mask=OURS_MASK`` to address all of ours, and
``cookie_for(kind, owner_id)`` with ``FULL_MASK`` for one owner.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

MARKER = 0x51
OURS_MASK = 0xFF << 56
OURS_VALUE = MARKER << 56
KIND_MASK = 0xFF << 48
FULL_MASK = (1 << 64) - 1
DIGEST_MASK = (1 << 48) - 1

KIND_STATIC = 0x01  # the fixed pipeline: table-miss drops, conntrack plumbing
KIND_NETWORK = 0x02  # classify from tunnel/patch, flood, DHCP punt
KIND_PORT = 0x03  # a port's classify, port security, ARP, L2, output
KIND_PORT_ACL = 0x04  # a port's security-group flows (egress and ingress)
KIND_GROUP = 0x05  # a security group's conjunction accept (conj_id -> commit)
KIND_ADDRESS = 0x06  # a member address clause shared by remote groups
KIND_RULE = 0x07  # a rule-match clause shared by the rules that produce it
KIND_ROUTER = 0x08  # a router: its ARP/ND/echo answers, admission, routes
KIND_GATEWAY = 0x09  # a router's gateway: routes out, SNAT / redirect, gateway ARP
KIND_FLOATING_IP = 0x0A  # a floating IP: ARP, DNAT, SNAT, hairpin (port forwardings)
KIND_EXTERNAL = 0x0B  # an external network: resolved neighbours, the resolve punt
KIND_TUNNEL_PEER = 0x0C  # a remote host's tunnel address: its packets admitted
KIND_METADATA = 0x10  # the metadata proxy port: classify, ARP/ND for 169.254.169.254

# One vocabulary: these names are also the engine's owner kinds (the first
# item of an owner tuple, engine.OWNER_KINDS); the numbers are on the wire
# (in the cookies of installed flows) and never change.
KIND_NAMES = {
    KIND_STATIC: "static",
    KIND_NETWORK: "network",
    KIND_PORT: "port",
    KIND_PORT_ACL: "port-acl",
    KIND_GROUP: "group",
    KIND_ADDRESS: "address",
    KIND_RULE: "rule-match",
    KIND_ROUTER: "router",
    KIND_GATEWAY: "gateway",
    KIND_FLOATING_IP: "floating-ip",
    KIND_EXTERNAL: "external",
    KIND_TUNNEL_PEER: "tunnel-peer",
    KIND_METADATA: "metadata",
}


@lru_cache(maxsize=65536)
def cookie_for(kind: int, owner_id: str) -> int:
    digest = hashlib.blake2b(owner_id.encode(), digest_size=6).digest()
    return OURS_VALUE | (kind << 48) | int.from_bytes(digest, "big")


def is_ours(cookie: int) -> bool:
    return (cookie & OURS_MASK) == OURS_VALUE


def kind_of(cookie: int) -> int:
    return (cookie & KIND_MASK) >> 48


def describe(cookie: int) -> str:
    if not is_ours(cookie):
        return f"foreign({cookie:#x})"
    kind = kind_of(cookie)
    return f"{KIND_NAMES.get(kind, kind)}:{cookie & DIGEST_MASK:012x}"
