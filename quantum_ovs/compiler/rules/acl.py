"""Security groups.

A port's rules become flows in EGRESS_ACL (matched on reg5 = its ofport,
remote address = destination) and INGRESS_ACL (reg7, remote = source),
for packets in conntrack state new; a match commits the connection.

Rules with a remote group use a two-clause conjunction whose id belongs to
(remote group, direction):

  clause 0  the port and the rule's protocol/ports    owned by the port
  clause 1  one flow per member address of the group  owned by the address
  accept    conj_id = id -> commit, continue          owned by the group

so a group of N members referenced by R rules costs O(N + R) flows, and a
new member costs one flow.  Flows with the same match at the same priority
are one flow for the switch: a port merges its clause-0 conjunctions, and
an address carries the conjunctions of every referenced group holding it.
"""

from __future__ import annotations

from functools import lru_cache

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Conjunction, Ct, Field, Flow, GotoTable
from quantum_ovs.compiler.rules.common import F_IP, F_IPV6, addr_field, mk, port_masks, reg
from quantum_ovs.compiler.rules.static import (
    CT_NEW_MATCH,
    PRIO_CONJ,
    PRIO_NO_SECURITY,
    PRIO_RULE,
)
from quantum_ovs.model import Port, Rule, SecurityGroup

EGRESS = "egress"
INGRESS = "ingress"
# direction -> (table, register naming the port, remote address fields, next)
DIRS = {
    EGRESS: (P.EGRESS_ACL, P.REG_SRC, ("ipv4_dst", "ipv6_dst"), P.L2_LOOKUP),
    INGRESS: (P.INGRESS_ACL, P.REG_DST, ("ipv4_src", "ipv6_src"), P.OUTPUT),
}
_PORT_FIELDS = {6: "tcp_dst", 17: "udp_dst", 132: "sctp_dst"}
_COMMIT = Ct(commit=True, zone_src=P.REG_NET)
ACCEPT = {d: (_COMMIT, GotoTable(spec[3])) for d, spec in DIRS.items()}


@lru_cache(maxsize=65536)
def rule_matches(rule: Rule) -> tuple[tuple[Field, ...], ...]:
    """The rule's match terms without the port and the remote group: one
    tuple of Fields per OpenFlow match (a port range may need several).
    Empty if the rule can never match (e.g. an IPv6 prefix on an IPv4 rule)."""
    if rule.direction not in DIRS:
        return ()
    v6 = rule.ethertype == "IPv6"
    eth = F_IPV6 if v6 else F_IP
    base = [CT_NEW_MATCH, eth]
    if rule.remote_ip_prefix:
        v4name, v6name = DIRS[rule.direction][2]
        peth, pf = addr_field(v4name, v6name, rule.remote_ip_prefix)
        if peth is not eth:
            return ()
        if pf is not None:
            base.append(pf)
    proto = rule.protocol
    if proto is None:
        return (tuple(base),)
    if v6 and proto == 1:
        proto = 58
    if not v6 and proto == 58:
        return ()
    base.append(Field("ip_proto", proto))
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in (1, 58):
        if lo is None:
            return (tuple(base),)
        prefix = "icmpv6" if proto == 58 else "icmpv4"
        base.append(Field(prefix + "_type", lo))
        if hi is not None:
            base.append(Field(prefix + "_code", hi))
        return (tuple(base),)
    name = _PORT_FIELDS.get(proto)
    if name is None or (lo is None and hi is None):
        return (tuple(base),)
    lo = 0 if lo is None else lo
    hi = 0xFFFF if hi is None else hi
    if lo > hi:
        return ()
    masks = port_masks(lo, hi)
    if not masks:
        return (tuple(base),)
    return tuple(tuple(base) + (Field(name, v, m),) for v, m in masks)


def port_acl_flows(
    port: Port,
    ofport: int,
    groups: list[SecurityGroup],
    conj_ids: dict,
) -> list[Flow]:
    """A local port's security-group flows.  ``groups``: the port's groups
    known to the view; ``conj_ids``: (remote group id, direction) -> id."""
    cookie = cookies.cookie_for(cookies.KIND_PORT_ACL, port.id)
    if not port.port_security_enabled:
        return [
            Flow(P.EGRESS_ACL, PRIO_NO_SECURITY, mk(reg(P.REG_SRC, ofport)),
                 (GotoTable(P.L2_LOOKUP),), cookie),
            Flow(P.INGRESS_ACL, PRIO_NO_SECURITY, mk(reg(P.REG_DST, ofport)),
                 (GotoTable(P.OUTPUT),), cookie),
        ]
    plain: dict = {}  # (table, match) -> accept actions
    conj: dict = {}  # (table, match) -> set of conjunction ids
    regs = {EGRESS: reg(P.REG_SRC, ofport), INGRESS: reg(P.REG_DST, ofport)}
    for sg in groups:
        for rule in sg.rules:
            terms = rule_matches(rule)
            if not terms:
                continue
            d = rule.direction
            table = DIRS[d][0]
            r = regs[d]
            if rule.remote_group_id:
                cid = conj_ids.get((rule.remote_group_id, d))
                if cid is None:
                    continue
                for t in terms:
                    conj.setdefault((table, mk(r, *t)), set()).add(cid)
            else:
                acts = ACCEPT[d]
                for t in terms:
                    plain[(table, mk(r, *t))] = acts
    out = [Flow(t, PRIO_RULE, m, acts, cookie) for (t, m), acts in plain.items()]
    for (t, m), cids in conj.items():
        out.append(Flow(t, PRIO_CONJ, m,
                        tuple(Conjunction(c, 0, 2) for c in sorted(cids)), cookie))
    return out


def group_flows(group_id: str, direction: str, conj_id: int) -> list[Flow]:
    """The accept flow of a referenced remote group's conjunction."""
    cookie = cookies.cookie_for(cookies.KIND_GROUP, f"{group_id}/{direction}")
    table = DIRS[direction][0]
    return [Flow(table, PRIO_CONJ, mk(Field("conj_id", conj_id)), ACCEPT[direction], cookie)]


def address_flows(direction: str, address: str, conj_ids) -> list[Flow]:
    """Clause 1 of every referenced remote group that holds ``address``."""
    if not conj_ids:
        return []
    table, _, (v4name, v6name), _ = DIRS[direction]
    eth, af = addr_field(v4name, v6name, address)
    m = mk(eth, af) if af is not None else mk(eth)
    cookie = cookies.cookie_for(cookies.KIND_ADDRESS, f"{direction}/{address}")
    return [Flow(table, PRIO_CONJ, m, tuple(Conjunction(c, 1, 2) for c in sorted(conj_ids)),
                 cookie)]
