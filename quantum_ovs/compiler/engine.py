"""The incremental engine: model changes in, minimal flow diffs out.

Owners and what each one's flows depend on (the whole dependency graph;
``Engine.describe()`` prints it)::

  ("static",)          nothing (the fixed pipeline)
  ("net", id)          the network, its subnets, the ofports of its enabled
                       local ports, the tunnel IPs of the remote hosts that
                       hold its ports, the chassis tunnel/patch ofports
  ("port", id)         the port, its network (local id, segment, state);
                       local: its ofport; remote: its host's tunnel IP and
                       the chassis tunnel/patch ofports
  ("acl", id)          a local port's ofport, state, port security, and the
                       conjunction keys of its security groups (clause 0)
  ("conj", sg, dir, G) that some rule of sg has that key (the accept flow)
  ("rmatch", table, m) the conjunction keys whose rules produce match m
                       (clause 1)
  ("addr", dir, ip)    the remote-group keys whose group holds ip (clause 2)

A change marks the owners that depend on it dirty; ``_flush`` recomputes
exactly those (first removing all their old flows, then adding the new
ones, so a key may move between owners within one change) and returns the
FlowDiff.  ``load`` is the only full recompute.  ``stats`` counts both, so
tests can prove that common changes stay incremental.

Numbers the engine allocates (network local ids when the model leaves
them 0, conjunction ids) live in ``Allocations``; hand the same
allocations to a fresh engine (or ``compile_flows``) to reproduce a table
exactly.
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from quantum_ovs.compiler import pipeline
from quantum_ovs.compiler.desired import CompileError, DesiredFlows
from quantum_ovs.compiler.flow import Flow, FlowDiff, diff
from quantum_ovs.compiler.rules import acl as acl_rules
from quantum_ovs.compiler.rules import network as net_rules
from quantum_ovs.compiler.rules import port as port_rules
from quantum_ovs.compiler.rules.static import static_flows
from quantum_ovs.model import (
    Chassis,
    Delta,
    HostView,
    Network,
    Port,
    RemoteHost,
    Rule,
    SecurityGroup,
    Subnet,
)

DIRECTIONS = tuple(acl_rules.DIRS)
LOCAL_ID_BASE = 0x8000  # compiler-assigned network ids; explicit ones stay below
LOCAL_ID_MAX = 0xFFFF  # the id is also the conntrack zone (16 bits)
STATIC = ("static",)


@dataclass
class Allocations:
    local_ids: dict = field(default_factory=dict)  # network id -> local id
    conj_ids: dict = field(default_factory=dict)  # (group id, direction) -> conj id
    next_conj: int = 1

    def copy(self) -> "Allocations":
        return Allocations(dict(self.local_ids), dict(self.conj_ids), self.next_conj)


@dataclass
class Stats:
    full_recomputes: int = 0
    owner_recomputes: Counter = field(default_factory=Counter)  # owner kind -> count

    def reset(self) -> None:
        self.full_recomputes = 0
        self.owner_recomputes.clear()


class Engine:
    def __init__(self, host: str, allocations: Allocations | None = None,
                 validate: bool = True) -> None:
        self.host = host
        self.alloc = allocations.copy() if allocations is not None else Allocations()
        self.validate = validate
        self.stats = Stats()
        self.desired = DesiredFlows()
        self.tunnel_ip = None
        self.revision = 0
        self._reset_state()

    @classmethod
    def from_view(cls, view: HostView, allocations: Allocations | None = None,
                  validate: bool = True) -> "Engine":
        e = cls(view.host, allocations, validate)
        e.load(view)
        return e

    def _reset_state(self) -> None:
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.groups: dict[str, SecurityGroup] = {}
        self.remote_hosts: dict[str, RemoteHost] = {}
        self.vif_ofports: dict[str, int] = {}
        self.tunnel_ofports: dict[str, int] = {}
        self.physnet_ofports: dict[str, int] = {}
        self.net_subnets = defaultdict(set)
        self.net_ports = defaultdict(set)
        self.group_ports = defaultdict(set)  # security group -> local port ids
        self.host_ports = defaultdict(set)  # remote host -> port ids
        self.sg_keys: dict[str, Counter] = {}  # sg -> conjunction key -> rules
        self.match_refs: dict = {}  # (table, match) -> Counter((conj_id, n) -> rules)
        self.remote_refs = defaultdict(set)  # (remote group, direction) -> sg ids
        self.ip_groups = defaultdict(set)  # member address -> group ids
        self._explicit_ids: dict[int, str] = {}
        self._used_ids: set | None = None  # cache of alloc.local_ids values
        self._id_hint = LOCAL_ID_BASE
        self._dirty: set = set()

    # ------------------------------------------------------------ reading
    def flows(self) -> frozenset[Flow]:
        return self.desired.flows()

    def __len__(self) -> int:
        return len(self.desired)

    def chassis(self) -> Chassis:
        return Chassis(
            vif_ofports=tuple(sorted(self.vif_ofports.items())),
            tunnel_ofports=tuple(sorted(self.tunnel_ofports.items())),
            physnet_ofports=tuple(sorted(self.physnet_ofports.items())),
        )

    def view(self) -> HostView:
        """The current model as a HostView (sorted by id)."""

        def by_id(d):
            return tuple(d[k] for k in sorted(d))

        return HostView(
            host=self.host, tunnel_ip=self.tunnel_ip, networks=by_id(self.networks),
            subnets=by_id(self.subnets), ports=by_id(self.ports),
            security_groups=by_id(self.groups), remote_hosts=by_id(self.remote_hosts),
            chassis=self.chassis(), revision=self.revision,
        )

    def local_id(self, network_id: str) -> int | None:
        net = self.networks.get(network_id)
        if net is None:
            return None
        return net.local_id or self.alloc.local_ids.get(network_id)

    # ---------------------------------------------------------- full load
    def load(self, view: HostView) -> FlowDiff:
        """Replace everything with ``view`` (a full recompute)."""
        self.stats.full_recomputes += 1
        self.host = view.host
        self.tunnel_ip = view.tunnel_ip
        self.revision = view.revision
        self._reset_state()
        self._set_chassis(view.chassis)
        for n in view.networks:
            self._set_network(n)
        for s in view.subnets:
            self._set_subnet(s)
        for h in view.remote_hosts:
            self._set_remote_host(h)
        for g in view.security_groups:
            self._set_group(g)
        for p in view.ports:
            self._set_port(p)
        self._dirty.clear()
        owners = [STATIC]
        owners.extend(("net", n) for n in self.networks)
        for pid, p in self.ports.items():
            owners.append(("port", pid))
            if p.host == self.host:
                owners.append(("acl", pid))
        for keys in self.sg_keys.values():
            owners.extend(("conj",) + k for k in keys)
        owners.extend(("rmatch",) + tm for tm in self.match_refs)
        addrs = set()
        for (gid, d), sgs in self.remote_refs.items():
            g = self.groups.get(gid)
            if sgs and g is not None:
                addrs.update(("addr", d, ip) for ip in g.member_ips)
        owners.extend(addrs)
        old = self.desired
        new = DesiredFlows()
        # Tens of thousands of small acyclic values: the cyclic collector
        # would rescan them over and over (it doubles the compile time).
        paused = gc.isenabled()
        gc.disable()
        try:
            self._compute_into(new, owners)
        finally:
            if paused:
                gc.enable()
        self.desired = new
        if not len(old):
            return FlowDiff((), (), tuple(new))
        return diff(old.by_key(), new.by_key())

    def update(self, view: HostView) -> FlowDiff:
        """Move to ``view`` by comparing it object by object with the
        current model (incremental; costs a pass over the view)."""
        self.tunnel_ip = view.tunnel_ip
        self.revision = view.revision
        self._set_chassis(view.chassis)
        for attr, objs, setter, remover, key in (
            ("networks", view.networks, self._set_network, self._remove_network, "id"),
            ("subnets", view.subnets, self._set_subnet, self._remove_subnet, "id"),
            ("remote_hosts", view.remote_hosts, self._set_remote_host,
             self._remove_remote_host, "name"),
            ("groups", view.security_groups, self._set_group, self._remove_group, "id"),
            ("ports", view.ports, self._set_port, self._remove_port, "id"),
        ):
            current = getattr(self, attr)
            want = {getattr(o, key): o for o in objs}
            for k in [k for k in current if k not in want]:
                remover(k)
            for o in objs:
                setter(o)
        return self._flush()

    # ------------------------------------------------------------ changes
    def apply(self, delta: Delta) -> FlowDiff:
        """Apply a Delta (removals first, then upserts) as one change.  A
        removed network takes its subnets and ports with it (as
        quantum_ovs.wire.apply_delta does)."""
        for nid in delta.removed_networks:
            for pid in list(self.net_ports.get(nid, ())):
                self._remove_port(pid)
            for sid in list(self.net_subnets.get(nid, ())):
                self._remove_subnet(sid)
        for pid in delta.removed_ports:
            self._remove_port(pid)
        for gid in delta.removed_security_groups:
            self._remove_group(gid)
        if delta.groups_complete:
            keep = {g.id for g in delta.security_groups}
            for gid in [g for g in self.groups if g not in keep]:
                self._remove_group(gid)
        for sid in delta.removed_subnets:
            self._remove_subnet(sid)
        for name in delta.removed_remote_hosts:
            self._remove_remote_host(name)
        for nid in delta.removed_networks:
            self._remove_network(nid)
        for n in delta.networks:
            self._set_network(n)
        for s in delta.subnets:
            self._set_subnet(s)
        for h in delta.remote_hosts:
            self._set_remote_host(h)
        for g in delta.security_groups:
            self._set_group(g)
        for p in delta.ports:
            self._set_port(p)
        for gm in delta.group_members:
            g = self.groups.get(gm.security_group_id)
            if g is not None:
                self._set_group(SecurityGroup(g.id, g.rules, gm.applied_to(g.member_ips)))
        self.revision = max(self.revision, delta.revision)
        return self._flush()

    def upsert_network(self, net: Network) -> FlowDiff:
        self._set_network(net)
        return self._flush()

    def remove_network(self, network_id: str) -> FlowDiff:
        self._remove_network(network_id)
        return self._flush()

    def upsert_subnet(self, subnet: Subnet) -> FlowDiff:
        self._set_subnet(subnet)
        return self._flush()

    def remove_subnet(self, subnet_id: str) -> FlowDiff:
        self._remove_subnet(subnet_id)
        return self._flush()

    def upsert_port(self, port: Port) -> FlowDiff:
        self._set_port(port)
        return self._flush()

    def remove_port(self, port_id: str) -> FlowDiff:
        self._remove_port(port_id)
        return self._flush()

    def upsert_security_group(self, group: SecurityGroup) -> FlowDiff:
        self._set_group(group)
        return self._flush()

    def remove_security_group(self, group_id: str) -> FlowDiff:
        self._remove_group(group_id)
        return self._flush()

    def upsert_rule(self, rule: Rule) -> FlowDiff:
        """Add or replace one rule (by id) of a known security group."""
        g = self._group_or_raise(rule.security_group_id)
        rules = tuple(r for r in g.rules if r.id != rule.id) + (rule,)
        self._set_group(SecurityGroup(g.id, rules, g.member_ips))
        return self._flush()

    def remove_rule(self, group_id: str, rule_id: str) -> FlowDiff:
        g = self._group_or_raise(group_id)
        rules = tuple(r for r in g.rules if r.id != rule_id)
        self._set_group(SecurityGroup(g.id, rules, g.member_ips))
        return self._flush()

    def add_member(self, group_id: str, address: str) -> FlowDiff:
        g = self._group_or_raise(group_id)
        self._set_group(SecurityGroup(g.id, g.rules, g.member_ips | {address}))
        return self._flush()

    def remove_member(self, group_id: str, address: str) -> FlowDiff:
        g = self._group_or_raise(group_id)
        self._set_group(SecurityGroup(g.id, g.rules, g.member_ips - {address}))
        return self._flush()

    def upsert_remote_host(self, host: RemoteHost) -> FlowDiff:
        self._set_remote_host(host)
        return self._flush()

    def remove_remote_host(self, name: str) -> FlowDiff:
        self._remove_remote_host(name)
        return self._flush()

    def set_chassis(self, chassis: Chassis) -> FlowDiff:
        self._set_chassis(chassis)
        return self._flush()

    def set_ofport(self, port_id: str, ofport: int | None) -> FlowDiff:
        """A VIF was plugged (ofport) or unplugged (None) on this host."""
        vif = dict(self.vif_ofports)
        if ofport is None:
            vif.pop(port_id, None)
        else:
            vif[port_id] = ofport
        self._set_chassis(Chassis(tuple(vif.items()), tuple(self.tunnel_ofports.items()),
                                  tuple(self.physnet_ofports.items())))
        return self._flush()

    def _group_or_raise(self, group_id: str) -> SecurityGroup:
        g = self.groups.get(group_id)
        if g is None:
            raise KeyError(f"unknown security group {group_id}")
        return g

    # ------------------------------------------------- state + dependents
    def _is_local(self, p: Port | None) -> bool:
        return p is not None and p.host == self.host

    def _mark_port(self, pid: str, acl: bool = True) -> None:
        self._dirty.add(("port", pid))
        if acl and self._is_local(self.ports.get(pid)):
            self._dirty.add(("acl", pid))

    def _set_network(self, net: Network) -> None:
        old = self.networks.get(net.id)
        if old == net:
            return
        if old is not None and old.local_id and old.local_id != net.local_id:
            self._explicit_ids.pop(old.local_id, None)
        if net.local_id:
            if not 0 < net.local_id < LOCAL_ID_BASE:
                raise CompileError(f"network {net.id}: local_id must be in 1..{LOCAL_ID_BASE-1}")
            holder = self._explicit_ids.get(net.local_id)
            if holder is not None and holder != net.id:
                raise CompileError(f"networks {holder} and {net.id} share local_id "
                                   f"{net.local_id}")
            self._explicit_ids[net.local_id] = net.id
            self.alloc.local_ids.pop(net.id, None)
        elif net.id not in self.alloc.local_ids:
            self.alloc.local_ids[net.id] = self._free_local_id()
        self.networks[net.id] = net
        self._dirty.add(("net", net.id))
        for pid in self.net_ports.get(net.id, ()):
            self._mark_port(pid)

    def _free_local_id(self) -> int:
        """The lowest free compiler-assigned id (a scan from the last hit)."""
        used = self._used_ids
        if used is None or len(used) != len(self.alloc.local_ids):
            used = self._used_ids = set(self.alloc.local_ids.values())
            self._id_hint = LOCAL_ID_BASE
        i = self._id_hint
        while i <= LOCAL_ID_MAX and i in used:
            i += 1
        if i > LOCAL_ID_MAX:
            i = next((j for j in range(LOCAL_ID_BASE, LOCAL_ID_MAX + 1) if j not in used), None)
            if i is None:
                raise CompileError("out of network local ids")
        used.add(i)
        self._id_hint = i + 1
        return i

    def _remove_network(self, nid: str) -> None:
        old = self.networks.pop(nid, None)
        if old is None:
            return
        if old.local_id:
            self._explicit_ids.pop(old.local_id, None)
        self.alloc.local_ids.pop(nid, None)
        self._dirty.add(("net", nid))
        for pid in self.net_ports.get(nid, ()):
            self._mark_port(pid)

    def _set_subnet(self, s: Subnet) -> None:
        old = self.subnets.get(s.id)
        if old == s:
            return
        if old is not None:
            self.net_subnets[old.network_id].discard(s.id)
            self._dirty.add(("net", old.network_id))
        self.subnets[s.id] = s
        self.net_subnets[s.network_id].add(s.id)
        self._dirty.add(("net", s.network_id))

    def _remove_subnet(self, sid: str) -> None:
        old = self.subnets.pop(sid, None)
        if old is not None:
            self.net_subnets[old.network_id].discard(sid)
            self._dirty.add(("net", old.network_id))

    def _flood_sig(self, p: Port):
        if p.host == self.host:
            return (True, self.vif_ofports.get(p.id) if p.admin_state_up else None)
        return (False, p.host)

    def _acl_sig(self, p: Port):
        if p.host != self.host:
            return None
        return (p.network_id, p.security_groups, p.port_security_enabled, p.admin_state_up)

    def _index_port(self, p: Port) -> None:
        self.net_ports[p.network_id].add(p.id)
        if p.host == self.host:
            for g in p.security_groups:
                self.group_ports[g].add(p.id)
        elif p.host is not None:
            self.host_ports[p.host].add(p.id)

    def _unindex_port(self, p: Port) -> None:
        s = self.net_ports.get(p.network_id)
        if s is not None:
            s.discard(p.id)
        if p.host == self.host:
            for g in p.security_groups:
                s = self.group_ports.get(g)
                if s is not None:
                    s.discard(p.id)
        elif p.host is not None:
            s = self.host_ports.get(p.host)
            if s is not None:
                s.discard(p.id)

    def _set_port(self, p: Port) -> None:
        old = self.ports.get(p.id)
        if old == p:
            return
        if old is not None:
            self._unindex_port(old)
        self.ports[p.id] = p
        self._index_port(p)
        dirty = self._dirty
        dirty.add(("port", p.id))
        if old is None:
            if p.host == self.host:
                dirty.add(("acl", p.id))
            dirty.add(("net", p.network_id))
            return
        if self._acl_sig(old) != self._acl_sig(p):
            dirty.add(("acl", p.id))
        if old.network_id != p.network_id or self._flood_sig(old) != self._flood_sig(p):
            dirty.add(("net", old.network_id))
            dirty.add(("net", p.network_id))

    def _remove_port(self, pid: str) -> None:
        old = self.ports.pop(pid, None)
        if old is None:
            return
        self._unindex_port(old)
        self._dirty.add(("port", pid))
        self._dirty.add(("acl", pid))
        self._dirty.add(("net", old.network_id))

    def _mark_members(self, gid: str, d: str, addresses) -> None:
        dirty = self._dirty
        for ip in addresses:
            dirty.add(("addr", d, ip))

    def _conj_id(self, key) -> int:
        cid = self.alloc.conj_ids.get(key)
        if cid is None:
            cid = self.alloc.conj_ids[key] = self.alloc.next_conj
            self.alloc.next_conj += 1
        return cid

    def _contributions(self, rules) -> Counter:
        out = Counter()
        for r in rules:
            key = acl_rules.conj_key(r)
            if key is None or key[0] != r.security_group_id:
                continue
            ident = (self._conj_id(key), acl_rules.n_clauses(key))
            for tm in acl_rules.rule_contributions(r):
                out[(tm, ident)] += 1
        return out

    def _set_group(self, g: SecurityGroup) -> None:
        old = self.groups.get(g.id)
        if old == g:
            return
        self.groups[g.id] = g
        old_rules = old.rules if old is not None else ()
        old_members = old.member_ips if old is not None else frozenset()
        if old_members != g.member_ips:
            added = g.member_ips - old_members
            removed = old_members - g.member_ips
            for ip in added:
                self.ip_groups[ip].add(g.id)
            for ip in removed:
                s = self.ip_groups.get(ip)
                if s is not None:
                    s.discard(g.id)
                    if not s:
                        del self.ip_groups[ip]
            for d in DIRECTIONS:
                if self.remote_refs.get((g.id, d)):
                    self._mark_members(g.id, d, added)
                    self._mark_members(g.id, d, removed)
        if old_rules != g.rules:
            self._rules_changed(g.id, old_rules, g.rules)

    def _rules_changed(self, gid: str, old_rules, new_rules) -> None:
        dirty = self._dirty
        new_keys = Counter(k for k in map(acl_rules.conj_key, new_rules)
                           if k is not None and k[0] == gid)
        old_keys = self.sg_keys.get(gid, Counter())
        if new_keys:
            self.sg_keys[gid] = new_keys
        else:
            self.sg_keys.pop(gid, None)
        if new_keys.keys() != old_keys.keys():
            for pid in self.group_ports.get(gid, ()):
                dirty.add(("acl", pid))
            for key in new_keys.keys() ^ old_keys.keys():
                dirty.add(("conj",) + key)
                sg, d, remote = key
                if remote:
                    refs = self.remote_refs[(remote, d)]
                    if key in new_keys:
                        refs.add(sg)
                    else:
                        refs.discard(sg)
                        if not refs:
                            del self.remote_refs[(remote, d)]
                    rg = self.groups.get(remote)
                    if rg is not None:
                        self._mark_members(remote, d, rg.member_ips)
        before = self._contributions(old_rules)
        after = self._contributions(new_rules)
        if before == after:
            return
        refs = self.match_refs
        for item in before.keys() | after.keys():
            delta = after.get(item, 0) - before.get(item, 0)
            if not delta:
                continue
            tm, ident = item
            c = refs.get(tm)
            if c is None:
                c = refs[tm] = Counter()
            c[ident] += delta
            if c[ident] <= 0:
                del c[ident]
                if not c:
                    del refs[tm]
            dirty.add(("rmatch",) + tm)

    def _remove_group(self, gid: str) -> None:
        if gid not in self.groups:
            return
        self._set_group(SecurityGroup(gid))
        del self.groups[gid]

    def _set_remote_host(self, h: RemoteHost) -> None:
        old = self.remote_hosts.get(h.name)
        if old == h:
            return
        self.remote_hosts[h.name] = h
        self._host_changed(h.name)

    def _remove_remote_host(self, name: str) -> None:
        if self.remote_hosts.pop(name, None) is not None:
            self._host_changed(name)

    def _host_changed(self, name: str) -> None:
        for pid in self.host_ports.get(name, ()):
            p = self.ports[pid]
            self._dirty.add(("port", pid))
            self._dirty.add(("net", p.network_id))

    def _set_chassis(self, ch: Chassis) -> None:
        vif = dict(ch.vif_ofports)
        if vif != self.vif_ofports:
            old = self.vif_ofports
            changed = {k for k in vif.keys() | old.keys() if vif.get(k) != old.get(k)}
            self.vif_ofports = vif
            for pid in changed:
                p = self.ports.get(pid)
                if p is not None and p.host == self.host:
                    self._dirty.add(("port", pid))
                    self._dirty.add(("acl", pid))
                    self._dirty.add(("net", p.network_id))
        tun, phys = dict(ch.tunnel_ofports), dict(ch.physnet_ofports)
        if tun != self.tunnel_ofports or phys != self.physnet_ofports:
            self.tunnel_ofports, self.physnet_ofports = tun, phys
            for nid in self.networks:
                self._dirty.add(("net", nid))
            for pid, p in self.ports.items():
                if p.host != self.host:
                    self._dirty.add(("port", pid))

    # ---------------------------------------------------------- computing
    def _flush(self) -> FlowDiff:
        dirty, self._dirty = self._dirty, set()
        d = self.desired
        d.begin()
        self._compute_into(d, dirty)
        return d.end()

    def _compute_into(self, d: DesiredFlows, owners) -> None:
        computed = []
        counts = self.stats.owner_recomputes
        check = pipeline.validate if self.validate else None
        for owner in owners:
            flows = self._compute(owner)
            if check is not None:
                for f in flows:
                    check(f)
            counts[owner[0]] += 1
            computed.append((owner, flows))
        if len(d):
            for owner, _ in computed:
                d.remove_owner(owner)
        for owner, flows in computed:
            d.add_owner(owner, flows)

    def _compute(self, owner) -> list[Flow]:
        kind = owner[0]
        if kind == "port":
            return self._port_flows(owner[1])
        if kind == "acl":
            return self._acl_flows(owner[1])
        if kind == "addr":
            _, d, ip = owner
            conj = self.alloc.conj_ids
            cids = [conj[(sg, d, g)] for g in self.ip_groups.get(ip, ())
                    for sg in self.remote_refs.get((g, d), ())]
            return acl_rules.address_flows(d, ip, cids)
        if kind == "rmatch":
            _, table, m = owner
            return acl_rules.rule_match_flows(table, m, self.match_refs.get((table, m)))
        if kind == "net":
            return self._net_flows(owner[1])
        if kind == "conj":
            key = owner[1:]
            if key not in self.sg_keys.get(key[0], ()):
                return []
            return acl_rules.accept_flows(key, self.alloc.conj_ids[key])
        if kind == "static":
            return static_flows()
        raise CompileError(f"unknown owner {owner}")

    def _net_flows(self, nid: str) -> list[Flow]:
        net = self.networks.get(nid)
        if net is None:
            return []
        subnets = [self.subnets[s] for s in self.net_subnets.get(nid, ())]
        local, hosts = [], set()
        vif = self.vif_ofports
        for pid in self.net_ports.get(nid, ()):
            p = self.ports[pid]
            if p.host == self.host:
                if p.admin_state_up:
                    ofport = vif.get(pid)
                    if ofport is not None:
                        local.append(ofport)
            else:
                h = self.remote_hosts.get(p.host)
                if h is not None:
                    hosts.add(h.tunnel_ip)
        return net_rules.network_flows(
            net, self.local_id(nid), subnets, local, list(hosts),
            self.tunnel_ofports, self.physnet_ofports,
        )

    def _port_flows(self, pid: str) -> list[Flow]:
        p = self.ports.get(pid)
        if p is None:
            return []
        net = self.networks.get(p.network_id)
        if net is None or not net.admin_state_up:
            return []
        lid = self.local_id(net.id)
        if p.host == self.host:
            ofport = self.vif_ofports.get(pid)
            if ofport is None:
                return []
            return port_rules.local_port_flows(p, ofport, lid)
        h = self.remote_hosts.get(p.host)
        if h is None:
            return []
        link = net_rules.uplink(net, self.tunnel_ofports, self.physnet_ofports)
        if link is None:
            return []
        send = net_rules.remote_actions(net, link, h.tunnel_ip)
        return port_rules.remote_port_flows(p, lid, send)

    def _acl_flows(self, pid: str) -> list[Flow]:
        p = self.ports.get(pid)
        if p is None or p.host != self.host or not p.admin_state_up:
            return []
        ofport = self.vif_ofports.get(pid)
        net = self.networks.get(p.network_id)
        if ofport is None or net is None or not net.admin_state_up:
            return []
        by_dir: dict = {}
        conj = self.alloc.conj_ids
        for g in p.security_groups:
            for key in self.sg_keys.get(g, ()):
                by_dir.setdefault(key[1], []).append((conj[key], 3 if key[2] else 2))
        return acl_rules.port_acl_flows(p, ofport, by_dir)

    @staticmethod
    def describe() -> str:
        return __doc__


def compile_flows(view: HostView, allocations: Allocations | None = None) -> frozenset[Flow]:
    """A full compile of ``view``: the complete desired flow set."""
    return Engine.from_view(view, allocations).flows()
