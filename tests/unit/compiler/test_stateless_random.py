"""Stateless groups, protocol-less prefix rules, remote groups and address
groups changed at random (review s25 of 7d84782, the stateless shared
matches): after every step the engine's table is a full compile's and no
owner is held.  Fixed seeds; QOVS_SEEDS raises their number."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import AddressGroup, GroupMembers, Rule, SecurityGroup
from tests.fixtures.scenario import change

GIDS = ("g0", "g1", "g2")
AIDS = ("ag0", "ag1")
PREFIXES = (None, "10.0.0.10/32", "10.0.0.10", "10.0.0.0/24", "10.0.0.7/24", "0.0.0.0/0",
            "fd00::10/128", "FD00:0::10/128", "::/0", "fd00::/64")
AG_ADDRS = ("0.0.0.0/0", "10.0.0.10/32", "10.0.0.0/24", "fd00::10/128", "::/0", "fd00::/64",
            "10.0.0.11/32")
MEMBERS = ("10.0.0.10", "10.0.0.11", "fd00::10", "10.0.0.0/24", "0.0.0.0/0@fa:16:3e:00:00:99")


def _rule(rng, gid, i):
    d = rng.choice(("ingress", "egress"))
    kind = rng.choice(("plain", "plain", "rg", "ag"))
    if kind == "plain":
        p = rng.choice(PREFIXES)
        eth = "IPv6" if p and ":" in p else rng.choice(("IPv4", "IPv6"))
        proto = rng.choice((None, None, 6))
        return Rule(f"{gid}-r{i}", gid, d, eth, proto, 22 if proto else None,
                    22 if proto else None, remote_ip_prefix=p)
    eth = rng.choice(("IPv4", "IPv6"))
    proto = rng.choice((None, 6))
    if kind == "rg":
        return Rule(f"{gid}-r{i}", gid, d, eth, proto, remote_group_id=rng.choice(GIDS))
    return Rule(f"{gid}-r{i}", gid, d, eth, proto, remote_address_group_id=rng.choice(AIDS))


def _group(rng, gid):
    rules = tuple(_rule(rng, gid, i) for i in range(rng.randint(0, 4)))
    members = frozenset(rng.sample(MEMBERS, rng.randint(0, 3)))
    return SecurityGroup(gid, rules, members, stateful=rng.random() < 0.4)


def _ag(rng, aid):
    return AddressGroup(aid, frozenset(rng.sample(AG_ADDRS, rng.randint(0, 3))))


def _base():
    view = make_host_view(networks=1, ports_per_net=3, groups=[], remote_hosts=0,
                          remote_ports_per_net=0)
    ports = tuple(dataclasses.replace(p, security_groups=(GIDS[i],))
                  for i, p in enumerate(view.ports))
    return view.replace(ports=ports)


def _step(rng, e, v):
    groups = {g.id: g for g in v.security_groups}
    ags = {a.id: a for a in v.address_groups}
    k = rng.choice(("group", "group", "rules", "members", "stateful", "rmgroup", "ag", "rmag"))
    if k == "group":
        g = _group(rng, rng.choice(GIDS))
        change(e, security_groups=(g,))
        groups[g.id] = g
    elif k == "rules" and groups:
        g = groups[rng.choice(sorted(groups))]
        g = dataclasses.replace(g, rules=tuple(_rule(rng, g.id, i)
                                                 for i in range(rng.randint(0, 4))))
        change(e, security_groups=(g,))
        groups[g.id] = g
    elif k == "members" and groups:
        g = groups[rng.choice(sorted(groups))]
        ip = rng.choice(MEMBERS)
        now = frozenset() if ip in g.member_ips else frozenset({ip})
        change(e, group_members=(GroupMembers(g.id, frozenset({ip}), now),))
        groups[g.id] = dataclasses.replace(g, member_ips=(g.member_ips - {ip}) | now)
    elif k == "stateful" and groups:
        g = groups[rng.choice(sorted(groups))]
        g = dataclasses.replace(g, stateful=not g.stateful)
        change(e, security_groups=(g,))
        groups[g.id] = g
    elif k == "rmgroup" and groups:
        gid = rng.choice(sorted(groups))
        change(e, removed_security_groups=(gid,))
        del groups[gid]
    elif k == "ag":
        a = _ag(rng, rng.choice(AIDS))
        change(e, address_groups=(a,))
        ags[a.id] = a
    elif k == "rmag" and ags:
        aid = rng.choice(sorted(ags))
        keep = tuple(groups.values())
        change(e, security_groups=keep, groups_complete=True,
               address_groups=tuple(a for a in ags.values() if a.id != aid))
        del ags[aid]
    return v.replace(security_groups=tuple(groups[x] for x in sorted(groups)),
                     address_groups=tuple(ags[x] for x in sorted(ags))), k


@pytest.mark.parametrize("seed", range(int(os.environ.get("QOVS_SEEDS", "60"))))
def test_random_stateless_acl_changes_equal_a_full_compile(seed):
    rng = random.Random(seed)
    v = _base()
    v = v.replace(security_groups=tuple(_group(rng, g) for g in GIDS),
                  address_groups=tuple(_ag(rng, a) for a in AIDS))
    e = Engine.from_view(v)
    hist = []
    for _ in range(12):
        v, k = _step(rng, e, v)
        hist.append(k)
        assert not e.desired.held, hist
        assert e.flows() == compile_flows(v, e.alloc), hist


@pytest.mark.parametrize("seed", range(int(os.environ.get("QOVS_SEEDS", "25"))))
def test_random_whole_views_equal_a_full_compile(seed):
    """The same, each step a whole new set of groups and address groups
    through Engine.update (several changes at once)."""
    rng = random.Random(10_000 + seed)
    v = _base()
    v = v.replace(security_groups=tuple(_group(rng, g) for g in GIDS),
                  address_groups=tuple(_ag(rng, a) for a in AIDS))
    e = Engine.from_view(v)
    for _ in range(8):
        v = v.replace(security_groups=tuple(_group(rng, g) for g in GIDS
                                            if rng.random() < 0.8),
                      address_groups=tuple(_ag(rng, a) for a in AIDS if rng.random() < 0.8))
        e.update(v)
        assert not e.desired.held
        assert e.flows() == compile_flows(v, e.alloc)
