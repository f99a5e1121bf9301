"""Security groups as conjunctive matches: flows linear in ports + rules +
members.

Every (security group, direction, remote group or None) that some rule of
the group produces is a *conjunction key* with its own conj_id:

  plain rules (no remote group), 2 clauses:
    clause 0  reg5 / reg7 = ofport of each local port in the group
    clause 1  the rule's match (ct new, ethertype, protocol, port masks,
              remote prefix)
  rules with remote group G, 3 clauses:
    clause 0  as above
    clause 1  the matches of the group's rules that reference G
    clause 2  remote address = each member address of G
  accept      conj_id -> continue (ingress: ct(commit) and continue, the
              connection the port's if it was sent to one of the port's
              MACs, nobody's if it is a flooded copy: static.py)

A rule naming an address group A (remote_address_group_id) is a remote
rule like the others, its key's remote being ``address-group:<A>``:
clause 2 is then each CIDR of A, in the same per-address flows as the
members of remote groups (a CIDR that is one address is that address).

A port costs one flow per direction, a rule one flow per port mask, a
member one flow, whatever the number of ports, rules and members.  Flows
with the same match at the same priority are one flow for the switch, so
each clause flow is owned by what it matches on (the port, the rule match,
the address) and carries the conjunctions of every key that needs it.
All clause flows and accepts share priority PRIO_CONJ; replies and
related packets pass above, anything that completes no conjunction falls
through to the table's drop.

A stateless group's keys have directions of their own ("egress-stateless",
"ingress-stateless"), in tables of their own (EGRESS_ACL_SL,
INGRESS_ACL_SL): their rules match whatever the conntrack state, their
accepts commit only for a stateful sender's sake (ACCEPT), and a
port of stateless groups sends its IP there from the top of the stateful
tables (above the reply, related and invalid flows), so that replies pass
only by its rules (Neutron's stateless groups; the API keeps a port from
mixing stateful and stateless groups).

A stateful port's replies pass its egress check only for connections
that are its own (ct_label, static.py): one flow per MAC of the port
(its own, its address pairs'), above the rules.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import CT_TRK, Ct, Field, Flow, GotoTable, Match, Move
from quantum_ovs.compiler.rules.common import (
    F_IP,
    F_IPV6,
    addr_field,
    conjunction,
    mk,
    port_masks,
    reg,
)
from quantum_ovs.compiler.rules.static import (
    COMMIT_OWNED,
    COMMIT_UNOWNED,
    CT_EST_REPLY,
    CT_RELATED_REPLY,
    CT_RULE_MATCH,
    FLOODED,
    NOT_FLOODED,
    NOT_REPLY,
    PRIO_CONJ,
    PRIO_ESTABLISHED,
    PRIO_NO_SECURITY,
    PRIO_RELATED,
    REPLY,
    owned_by,
)
from quantum_ovs.model import Port, Rule, member_address, member_mac

EGRESS = "egress"
INGRESS = "ingress"
EGRESS_SL = "egress-stateless"
INGRESS_SL = "ingress-stateless"
# direction -> (table, register naming the port, remote address fields, next)
DIRS = {
    EGRESS: (P.EGRESS_ACL, P.REG_SRC, ("ipv4_dst", "ipv6_dst"), P.L3_ADMIT),
    INGRESS: (P.INGRESS_ACL, P.REG_DST, ("ipv4_src", "ipv6_src"), P.OUTPUT),
    EGRESS_SL: (P.EGRESS_ACL_SL, P.REG_SRC, ("ipv4_dst", "ipv6_dst"), P.L3_ADMIT),
    INGRESS_SL: (P.INGRESS_ACL_SL, P.REG_DST, ("ipv4_src", "ipv6_src"), P.OUTPUT),
}
# a rule's direction -> its key's direction in a stateless group
STATELESS = {EGRESS: EGRESS_SL, INGRESS: INGRESS_SL}
STATELESS_DIRS = frozenset(STATELESS.values())
# a stateless port's IP leaves the stateful table here: above the reply,
# related and invalid flows (static.py), below ND and DHCP replies
PRIO_STATELESS = 115
# direction -> the field naming the remote member's MAC (a member known by
# its MAC: model.member_address)
MAC_FIELDS = {EGRESS: "eth_dst", INGRESS: "eth_src", EGRESS_SL: "eth_dst",
              INGRESS_SL: "eth_src"}
# The protocols whose destination port the switch can match (OXM has no
# DCCP or UDP-Lite port fields, though the API takes port ranges for them).
_PORT_FIELDS = {6: "tcp_dst", 17: "udp_dst", 132: "sctp_dst"}
# reg4 of what a port of this host sent to this port's MAC; of a flooded
# copy from this host; of a packet from another host, not flooded
_FLAGS = P.FLAG_FLOOD | P.FLAG_FROM_REMOTE
_SENT_HERE = Field(P.REG_FLAGS, 0, _FLAGS)
_FLOODED_HERE = Field(P.REG_FLAGS, P.FLAG_FLOOD, _FLAGS)
_SENT_THERE = Field(P.REG_FLAGS, P.FLAG_FROM_REMOTE, _FLAGS)
# An accept's cases: (extra match terms, actions).  Only the ingress check
# commits (see pipeline: a commit leaves the packet untracked, and
# egress-accepted traffic to other hosts is committed on its way out, in
# REMOTE_OUT / FLOOD).  What a stateful port accepts is its connection when
# it was sent to one of its MACs (not a flooded copy: a pair MAC's copies
# into its port are not flagged, see pair_mac_flows), else nobody's
# (static.py).  What a stateless port lets in from a port of this host,
# sent to one of its MACs, is committed all the same (the port's): its own
# checks read no state, but a stateful sender here needs the connection
# known for its reply to come back as one (nothing else commits a
# connection between two ports of one host; from another host, the
# sender's host committed it on the way out, and nothing is tracked here
# for it).  A flooded copy is not committed there: a broadcast has no
# replies.
# (A stateful port's rules never see a reply: they pass above them.  A
# stateless port's reply is not committed: static.NOT_REPLY.)
ACCEPT = {
    EGRESS: (((), (GotoTable(DIRS[EGRESS][3]),)),),
    INGRESS: (((NOT_FLOODED,), (COMMIT_OWNED, GotoTable(DIRS[INGRESS][3]))),
              ((FLOODED,), (COMMIT_UNOWNED, GotoTable(DIRS[INGRESS][3])))),
    EGRESS_SL: (((), (GotoTable(DIRS[EGRESS_SL][3]),)),),
    INGRESS_SL: (((_SENT_HERE, NOT_REPLY), (COMMIT_OWNED, GotoTable(DIRS[INGRESS_SL][3]))),
                 ((_SENT_HERE, REPLY), (GotoTable(DIRS[INGRESS_SL][3]),)),
                 ((FLOODED,), (GotoTable(DIRS[INGRESS_SL][3]),)),
                 ((_SENT_THERE,), (GotoTable(DIRS[INGRESS_SL][3]),))),
}
# A port without port security may be anything's next hop: all it lets in
# from this host is committed, its own if sent to its MAC (not a reply:
# those go on, PRIO_NO_SECURITY).
_NO_SECURITY_IN = ((_SENT_HERE, COMMIT_OWNED), (_FLOODED_HERE, COMMIT_UNOWNED))
# A flooded copy for an address pair's MAC into its port is the port's:
# INGRESS_CT clears its FLAG_FLOOD (a move of reg1's zero bit), so that
# the port commits it as its own and condemns it as meant for it.
_CLEAR_FLOOD = Move(P.REG_ZERO, P.REG_FLAGS, 1, 0, P.FLAG_FLOOD.bit_length() - 1)


# The remote of a conjunction key whose rules name an address group.
ADDRESS_GROUP_PREFIX = "address-group:"


def conj_key(rule: Rule, stateful: bool = True):
    """The conjunction key a rule of a group (``stateful`` or not) belongs
    to, or None for a bad direction or an empty remote.  A remote's
    presence decides, not its truth: a remote group or address group of
    ``""`` (a row written wrong) names nobody, and read as "no remote" it
    would admit every source; such a rule has no key (admits nothing)."""
    if rule.direction not in STATELESS:
        return None
    remote = rule.remote_group_id
    if remote is None and rule.remote_address_group_id is not None:
        if not rule.remote_address_group_id:
            return None
        remote = ADDRESS_GROUP_PREFIX + rule.remote_address_group_id
    elif remote is not None and not remote:
        return None
    return (rule.security_group_id,
            rule.direction if stateful else STATELESS[rule.direction], remote)


def address_key(cidr: str) -> str:
    """An address group's CIDR as clause 2's address: a lone address is
    written as one (so that it is the same flow as a member with it)."""
    return member_address(cidr)


def n_clauses(key) -> int:
    return 3 if key[2] else 2


@lru_cache(maxsize=65536)
def rule_matches(rule: Rule, stateful: bool = True) -> tuple[Match, ...]:
    """The rule's clause-1 matches (a port range may need several).  Empty
    if the rule can never match (e.g. an IPv6 prefix on an IPv4 rule) or
    cannot be matched as written (a port range of DCCP or UDP-Lite: the
    rule fails closed, see _PORT_FIELDS).  A stateless group's rule
    matches whatever the conntrack state."""
    if rule.direction not in STATELESS:
        return ()
    v6 = rule.ethertype == "IPv6"
    eth = F_IPV6 if v6 else F_IP
    base = [CT_RULE_MATCH, eth] if stateful else [eth]
    if rule.remote_ip_prefix:
        v4name, v6name = DIRS[rule.direction][2]
        peth, pf = addr_field(v4name, v6name, rule.remote_ip_prefix)
        if peth is not eth:
            return ()
        if pf is not None:
            base.append(pf)
    proto = rule.protocol
    if proto is None:
        return (mk(*base),)
    if v6 and proto == 1:
        proto = 58
    if not v6 and proto == 58:
        return ()
    base.append(Field("ip_proto", proto))
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in (1, 58):
        if lo is not None:
            prefix = "icmpv6" if proto == 58 else "icmpv4"
            base.append(Field(prefix + "_type", lo))
            if hi is not None:
                base.append(Field(prefix + "_code", hi))
        return (mk(*base),)
    if lo is None and hi is None:
        return (mk(*base),)
    name = _PORT_FIELDS.get(proto)
    lo = 0 if lo is None else lo
    hi = 0xFFFF if hi is None else hi
    if name is None:
        # a port range for a protocol the switch has no port field for
        # (DCCP, UDP-Lite: OpenFlow matches TCP, UDP and SCTP ports only):
        # matched by nothing rather than by every port of the protocol,
        # unless the range is every port (1-65535, as Neutron reads it)
        return (mk(*base),) if lo <= 1 and hi == 0xFFFF else ()
    if lo > hi:
        return ()
    masks = port_masks(lo, hi)
    if not masks:
        return (mk(*base),)
    return tuple(mk(*base, Field(name, v, m)) for v, m in masks)


def rule_contributions(rule: Rule, stateful: bool = True):
    """[(table, match)] of the clause-1 flows of a rule of a group
    (``stateful`` or not)."""
    key = conj_key(rule, stateful)
    if key is None:
        return ()
    table = DIRS[key[1]][0]
    return tuple((table, m) for m in rule_matches(rule, stateful))


def pair_macs(port: Port) -> tuple:
    """The MACs of the port's allowed address pairs other than its own."""
    return tuple(sorted({ap.mac_address for ap in port.allowed_address_pairs
                         if ap.mac_address and ap.mac_address != port.mac_address}))


def port_acl_flows(port: Port, ofport: int, keys_by_dir: dict,
                   stateful: bool = True) -> list[Flow]:
    """Clause 0 for a local port.  ``keys_by_dir``: direction -> list of
    (conj_id, n_clauses) of the conjunction keys of the port's groups;
    ``stateful`` false: the port's groups are stateless (its IP goes to the
    stateless tables, whatever its rules)."""
    cookie = cookies.cookie_for(cookies.KIND_PORT_ACL, port.id)
    if not port.port_security_enabled:
        # (IP into it from this host committed, see _NO_SECURITY_IN: ct()
        # only where the match pins an IP eth_type, so above the rest)
        to_port = reg(P.REG_DST, ofport)
        return [
            Flow(P.EGRESS_ACL, PRIO_NO_SECURITY, mk(reg(P.REG_SRC, ofport)),
                 (GotoTable(DIRS[EGRESS][3]),), cookie),
            Flow(P.INGRESS_ACL, PRIO_NO_SECURITY, mk(to_port), (GotoTable(P.OUTPUT),), cookie),
        ] + [Flow(P.INGRESS_ACL, PRIO_NO_SECURITY + 1, mk(to_port, eth, flags, NOT_REPLY),
                  (commit, GotoTable(P.OUTPUT)), cookie)
             for eth in (F_IP, F_IPV6) for flags, commit in _NO_SECURITY_IN]
    out = pair_mac_flows(port, ofport, cookie)
    if not stateful:
        for d, d_sl in STATELESS.items():
            table, regname, _, _ = DIRS[d]
            go = (GotoTable(DIRS[d_sl][0]),)
            out += [Flow(table, PRIO_STATELESS, mk(reg(regname, ofport), eth), go, cookie)
                    for eth in (F_IP, F_IPV6)]
    for d, (table, regname, _, _) in DIRS.items():
        ids = keys_by_dir.get(d)
        if ids:
            out.append(Flow(table, PRIO_CONJ, mk(reg(regname, ofport)),
                            tuple([conjunction(c, 0, n) for c, n in sorted(ids)]), cookie))
    if stateful:  # its connections' replies and related packets (static.py)
        src = reg(P.REG_SRC, ofport)
        go = (GotoTable(DIRS[EGRESS][3]),)
        out += [Flow(P.EGRESS_ACL, prio, mk(src, state, owned_by(mac)), go, cookie)
                for mac in (port.mac_address, *pair_macs(port))
                for prio, state in ((PRIO_ESTABLISHED, CT_EST_REPLY),
                                    (PRIO_RELATED, CT_RELATED_REPLY))]
    return out


def pair_mac_flows(port: Port, ofport: int, cookie) -> list[Flow]:
    """INGRESS_CT: what is flooded for one of the port's address pairs'
    MACs into this port is the port's (FLAG_FLOOD cleared: committed as its
    connection, condemned when its rules refuse a later packet), and IP is
    looked up again as static.py's flows do."""
    out = []
    to_port = reg(P.REG_DST, ofport)
    for mac in pair_macs(port):
        m = Field("eth_dst", mac)
        for eth in (F_IP, F_IPV6):
            out.append(Flow(P.INGRESS_CT, 110, mk(to_port, m, eth, Field("ct_state", 0, CT_TRK)),
                            (_CLEAR_FLOOD, Ct(zone_src=P.REG_ZONE, table=P.INGRESS_ACL)),
                            cookie))
        out.append(Flow(P.INGRESS_CT, 105, mk(to_port, m),
                        (_CLEAR_FLOOD, GotoTable(P.INGRESS_ACL)), cookie))
    return out


def rule_match_flows(table: int, match: Match, ids, address_ids=()) -> list[Flow]:
    """Clause 1: ``ids`` are the (conj_id, n_clauses) needing this match.
    In a stateless table a rule's match can be an address's clause-2 match
    too (a rule with no protocol: ``address_at``); this flow then also
    carries that address's clause 2 (``address_ids``: its remote keys'
    conj_ids), and ``address_flows`` gives none."""
    if not ids:
        return []
    cookie = cookies.cookie_for(cookies.KIND_RULE, f"{table}/{match!r}")
    actions = [conjunction(c, 1, n) for c, n in sorted(ids)]
    actions += [conjunction(c, 2, 3) for c in sorted(address_ids)]
    return [Flow(table, PRIO_CONJ, match, tuple(actions), cookie)]


def accept_flows(key, conj_id: int) -> list[Flow]:
    """conj_id -> commit and continue; one flow per IP family, since the
    switch accepts ct() only where the match pins an IP eth_type."""
    sg, d, remote = key
    cookie = cookies.cookie_for(cookies.KIND_GROUP, f"{sg}/{d}/{remote or ''}")
    cid = Field("conj_id", conj_id)
    # (each case's match: disjoint)
    return [Flow(DIRS[d][0], PRIO_CONJ, mk(cid, eth, *terms), actions, cookie)
            for eth in (F_IP, F_IPV6) for terms, actions in ACCEPT[d]]


def address_match(direction: str, address: str) -> tuple[int, Match]:
    """(table, match) of clause 2 for ``address`` (an address or a CIDR,
    spelled as model.member_address does) in ``direction``."""
    table, _, (v4name, v6name), _ = DIRS[direction]
    by_mac = member_mac(address)
    if by_mac is not None:  # a member that may use any address: its MAC
        version, mac = by_mac
        return table, mk(F_IPV6 if version == 6 else F_IP, Field(MAC_FIELDS[direction], mac))
    eth, af = addr_field(v4name, v6name, address)
    return table, (mk(eth, af) if af is not None else mk(eth))


# a stateless table -> its direction
_SL_TABLES = {DIRS[d][0]: d for d in STATELESS.values()}


def address_at(table: int, match: Match):
    """(direction, address) whose clause-2 flow is ``match`` in ``table``
    if that is a stateless table, else None.  There a rule's clause 1 has
    no conntrack term: one with no protocol is the same flow as an
    address's (``10.0.0.5/32`` and the member ``10.0.0.5``; no prefix and
    an address group's ``0.0.0.0/0``), which one owner gives."""
    d = _SL_TABLES.get(table)
    if d is None or not 1 <= len(match) <= 2:
        return None
    eth = next((f for f in match if f.name == "eth_type"), None)
    if eth is None:
        return None
    v6 = eth.value == F_IPV6.value
    rest = [f for f in match if f is not eth]
    if not rest:
        address = "::/0" if v6 else "0.0.0.0/0"
    else:
        f = rest[0]
        if f.name not in DIRS[d][2]:
            return None
        try:
            address = f.value if f.mask is None else \
                f"{f.value}/{bin(int(ipaddress.ip_address(f.mask))).count('1')}"
            address = member_address(address)
        except ValueError:
            return None
    return (d, address) if address_match(d, address) == (table, match) else None


def address_flows(direction: str, address: str, conj_ids) -> list[Flow]:
    """Clause 2 of every remote key whose group (or address group) holds
    ``address`` (an address or a CIDR).  (In a stateless table a rule match
    that is the same flow gives it instead: ``address_at``.)"""
    if not conj_ids:
        return []
    table, m = address_match(direction, address)
    cookie = cookies.cookie_for(cookies.KIND_ADDRESS, f"{direction}/{address}")
    return [Flow(table, PRIO_CONJ, m, tuple([conjunction(c, 2, 3) for c in sorted(conj_ids)]),
                 cookie)]
