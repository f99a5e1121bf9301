"""Incremental compilation: always equal to a full compile, reversible,
and local (counted recomputes)."""

from __future__ import annotations

import dataclasses

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.compiler.flow import diff
from quantum_ovs.compiler.synth import default_group, make_port, make_router_interface
from quantum_ovs.model import (
    AddressPair,
    Chassis,
    FixedIP,
    GroupMembers,
    HostRoute,
    RemoteHost,
    Router,
    RouterInterface,
    Rule,
    SecurityGroup,
    Subnet,
)
from tests.fixtures.scenario import HOST, base_view, change, plug

GROUPS = ("sg-default", "sg-web", "sg-db")
HOSTS = ("host-r0", "host-r1", "host-r2")


RULE_POOL = (
    Rule("x-ssh", "sg-web", "ingress", "IPv4", 6, 22, 22, remote_ip_prefix="10.0.0.0/8"),
    Rule("x-range", "sg-db", "ingress", "IPv4", 17, 1000, 1999),
    Rule("x-icmp", "sg-default", "ingress", "IPv4", 1, 8, 0),
    Rule("x-rg", "sg-db", "egress", "IPv4", remote_group_id="sg-default"),
    Rule("x-v6", "sg-web", "ingress", "IPv6", 58),
    Rule("x-rg2", "sg-default", "ingress", "IPv4", 6, 80, 80, remote_group_id="sg-web"),
)
MEMBER_POOL = ("10.0.0.10", "10.0.0.11", "10.0.1.12", "10.0.0.99", "10.0.1.13", "10.9.0.0/16")


def _replace(objs, new, key="id"):
    out = [o for o in objs if getattr(o, key) != getattr(new, key)]
    out.append(new)
    return tuple(out)


# Each op: (engine, view, data) -> (new view); it drives the engine as the
# agent does, through Deltas and set_chassis, never through load().
def op_add_port(e, v, data):
    n = data.draw(st.integers(0, 1))
    i = data.draw(st.integers(20, 40))
    host = data.draw(st.sampled_from((HOST,) + HOSTS))
    groups = tuple(data.draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)))
    p = make_port(n, i, host, groups,
                  admin_state_up=data.draw(st.booleans()),
                  port_security_enabled=data.draw(st.sampled_from((True, True, False))))
    change(e, ports=(p,))
    v = v.replace(ports=_replace(v.ports, p))
    if host == HOST and data.draw(st.booleans()):
        plug(e, p.id, 200 + n * 50 + i)
        vif = dict(v.chassis.vif_ofports)
        vif[p.id] = 200 + n * 50 + i
        v = v.replace(chassis=dataclasses.replace(v.chassis, vif_ofports=tuple(vif.items())))
    return v


def op_remove_port(e, v, data):
    if not v.ports:
        return v
    p = data.draw(st.sampled_from(v.ports))
    change(e, removed_ports=(p.id,))
    return v.replace(ports=tuple(x for x in v.ports if x.id != p.id))


def op_change_port(e, v, data):
    if not v.ports:
        return v
    p = data.draw(st.sampled_from(v.ports))
    kind = data.draw(st.sampled_from(("admin", "groups", "ip", "host", "aap", "security")))
    if kind == "admin":
        p = dataclasses.replace(p, admin_state_up=not p.admin_state_up)
    elif kind == "groups":
        p = dataclasses.replace(p, security_groups=tuple(
            data.draw(st.lists(st.sampled_from(GROUPS), max_size=3, unique=True))))
    elif kind == "ip":
        ip = f"10.0.{data.draw(st.integers(0, 1))}.{data.draw(st.integers(150, 160))}"
        # IPAM never gives one address of a network to two ports.
        taken = {f.ip_address for x in v.ports if x.network_id == p.network_id and x.id != p.id
                 for f in x.fixed_ips}
        if ip in taken:
            return v
        p = dataclasses.replace(p, fixed_ips=(FixedIP("x", ip),))
    elif kind == "host":
        p = dataclasses.replace(p, host=data.draw(st.sampled_from((HOST,) + HOSTS)))
    elif kind == "aap":
        # the port's own MAC, or one of its own (the port's ACL condemns
        # connections to that MAC: rules/acl.pair_macs), or none
        mac = data.draw(st.sampled_from((p.mac_address, "00:00:5e:00:01:07", None)))
        pairs = (AddressPair("10.0.0.200", mac),) if mac else ()
        p = dataclasses.replace(p, allowed_address_pairs=pairs)
    else:
        p = dataclasses.replace(p, port_security_enabled=not p.port_security_enabled)
    change(e, ports=(p,))
    return v.replace(ports=_replace(v.ports, p))


def op_ofport(e, v, data):
    local = [p for p in v.ports if p.host == HOST]
    if not local:
        return v
    p = data.draw(st.sampled_from(local))
    ofport = data.draw(st.sampled_from((None, 300, 301, 302)))
    vif = dict(v.chassis.vif_ofports)
    if ofport in vif.values() and vif.get(p.id) != ofport:
        ofport = None
    plug(e, p.id, ofport)
    if ofport is None:
        vif.pop(p.id, None)
    else:
        vif[p.id] = ofport
    return v.replace(chassis=dataclasses.replace(v.chassis, vif_ofports=tuple(vif.items())))


def _group(v, gid):
    return next((g for g in v.security_groups if g.id == gid), None)


def op_rule(e, v, data):
    rule = data.draw(st.sampled_from(RULE_POOL))
    g = _group(v, rule.security_group_id)
    if g is None:
        return v
    if any(r.id == rule.id for r in g.rules):
        g = dataclasses.replace(g, rules=tuple(r for r in g.rules if r.id != rule.id))
    else:
        g = dataclasses.replace(g, rules=g.rules + (rule,))
    change(e, security_groups=(g,))
    return v.replace(security_groups=_replace(v.security_groups, g))


def op_member(e, v, data):
    gid = data.draw(st.sampled_from(GROUPS))
    g = _group(v, gid)
    if g is None:
        return v
    ip = data.draw(st.sampled_from(MEMBER_POOL))
    now = frozenset() if ip in g.member_ips else frozenset({ip})
    change(e, group_members=(GroupMembers(gid, frozenset({ip}), now),))
    g = dataclasses.replace(g, member_ips=(g.member_ips - {ip}) | now)
    return v.replace(security_groups=_replace(v.security_groups, g))


def op_stateful(e, v, data):
    """A group turns stateless or stateful again (its ports, rules and
    remote keys move between the stateful and the stateless tables)."""
    gid = data.draw(st.sampled_from(GROUPS))
    g = _group(v, gid)
    if g is None:
        return v
    g = dataclasses.replace(g, stateful=not g.stateful)
    change(e, security_groups=(g,))
    return v.replace(security_groups=_replace(v.security_groups, g))


def op_group(e, v, data):
    gid = data.draw(st.sampled_from(GROUPS))
    if _group(v, gid) is not None:
        change(e, removed_security_groups=(gid,))
        return v.replace(security_groups=tuple(g for g in v.security_groups if g.id != gid))
    g = default_group(gid, members=("10.0.0.10",))
    change(e, security_groups=(g,))
    return v.replace(security_groups=_replace(v.security_groups, g))


def op_network(e, v, data):
    net = data.draw(st.sampled_from(v.networks))
    kind = data.draw(st.sampled_from(("admin", "segment", "local_id")))
    if kind == "admin":
        net = dataclasses.replace(net, admin_state_up=not net.admin_state_up)
    elif kind == "segment":
        net = dataclasses.replace(net, segment=dataclasses.replace(
            net.segment, segmentation_id=(net.segment.segmentation_id or 0) + 7))
    else:
        net = dataclasses.replace(net, local_id=0 if net.local_id else 10 + int(net.id[-1]))
    change(e, networks=(net,))
    return v.replace(networks=_replace(v.networks, net))


def op_subnet(e, v, data):
    s = data.draw(st.sampled_from(v.subnets))
    s = dataclasses.replace(s, enable_dhcp=not s.enable_dhcp)
    if data.draw(st.booleans()):
        change(e, subnets=(s,))
        return v.replace(subnets=_replace(v.subnets, s))
    s6 = Subnet("sub6-" + s.network_id, s.network_id, "fd00::/64", 6,
                ipv6_address_mode="dhcpv6-stateful")
    if any(x.id == s6.id for x in v.subnets):
        change(e, removed_subnets=(s6.id,))
        return v.replace(subnets=tuple(x for x in v.subnets if x.id != s6.id))
    change(e, subnets=(s6,))
    return v.replace(subnets=_replace(v.subnets, s6))


def op_remote_host(e, v, data):
    name = data.draw(st.sampled_from(HOSTS))
    if any(h.name == name for h in v.remote_hosts) and data.draw(st.booleans()):
        change(e, removed_remote_hosts=(name,))
        return v.replace(remote_hosts=tuple(h for h in v.remote_hosts if h.name != name))
    h = RemoteHost(name, f"192.168.9.{data.draw(st.integers(1, 3))}")
    change(e, remote_hosts=(h,))
    return v.replace(remote_hosts=_replace(v.remote_hosts, h, "name"))


def op_chassis(e, v, data):
    ch = Chassis(v.chassis.vif_ofports, (("gre", 2), ("vxlan", data.draw(st.sampled_from((1, 7))))),
                 v.chassis.physnet_ofports)
    e.set_chassis(ch)
    return v.replace(chassis=ch)


ROUTE_DESTS = ("10.9.0.0/16", "10.9.1.0/24", "0.0.0.0/0", "10.0.1.0/24")
NEXT_HOPS = ("10.0.0.12", "10.0.1.10", "10.0.0.155", "10.0.1.99", "10.0.1.150")


def _interface(rid, n):
    if rid == "router-1":
        return make_router_interface(n)
    return RouterInterface(f"rif2-{n}", f"net-{n}", f"sub-{n}", f"10.0.{n}.2", 24,
                           f"fa:16:3d:02:00:0{n}")


def op_router(e, v, data):
    """Attach / detach an interface, add / remove an extra route, toggle
    admin state, delete a router (router-1 exists, router-2 appears when
    an interface is attached to it)."""
    rid = data.draw(st.sampled_from(("router-1", "router-2")))
    r = next((x for x in v.routers if x.id == rid), None) or Router(rid)
    kind = data.draw(st.sampled_from(("attach", "detach", "route", "unroute", "admin",
                                      "remove")))
    if kind == "attach":
        n = data.draw(st.integers(0, 1))
        if any(i.network_id == f"net-{n}" for i in r.interfaces):
            return v
        r = dataclasses.replace(r, interfaces=r.interfaces + (_interface(rid, n),))
    elif kind == "detach" and r.interfaces:
        i = data.draw(st.sampled_from(r.interfaces))
        r = dataclasses.replace(r, interfaces=tuple(x for x in r.interfaces if x != i))
    elif kind == "route":
        rt = HostRoute(data.draw(st.sampled_from(ROUTE_DESTS)),
                       data.draw(st.sampled_from(NEXT_HOPS)))
        if any(x.destination == rt.destination for x in r.routes):
            return v
        r = dataclasses.replace(r, routes=r.routes + (rt,))
    elif kind == "unroute" and r.routes:
        rt = data.draw(st.sampled_from(r.routes))
        r = dataclasses.replace(r, routes=tuple(x for x in r.routes if x != rt))
    elif kind == "admin":
        r = dataclasses.replace(r, admin_state_up=not r.admin_state_up)
    elif kind == "remove":
        change(e, removed_routers=(rid,))
        return v.replace(routers=tuple(x for x in v.routers if x.id != rid))
    else:
        return v
    change(e, routers=(r,))
    return v.replace(routers=_replace(v.routers, r))


def op_evacuate(e, v, data):
    """The last local port of a network leaves (removed or moved to another
    host): the network's routers leave this host too."""
    nid = f"net-{data.draw(st.integers(0, 1))}"
    gone = [p for p in v.ports if p.network_id == nid and p.host == HOST]
    if data.draw(st.booleans()):
        change(e, removed_ports=tuple(p.id for p in gone))
        return v.replace(ports=tuple(p for p in v.ports if p not in gone))
    moved = tuple(dataclasses.replace(p, host=HOSTS[0]) for p in gone)
    change(e, ports=moved)
    out = v
    for p in moved:
        out = out.replace(ports=_replace(out.ports, p))
    return out


OPS = [op_add_port, op_remove_port, op_change_port, op_ofport, op_rule, op_member, op_group,
       op_stateful, op_network, op_subnet, op_remote_host, op_chassis, op_router, op_router,
       op_evacuate]


def full(engine, view=None):
    """A full compile from scratch of the engine's model (or ``view``),
    with the engine's id allocations."""
    return compile_flows(view if view is not None else engine.view(), engine.alloc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_incremental_equals_full_compile(data):
    view = base_view()
    e = Engine.from_view(view)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(OPS))
        view = op(e, view, data)
        # the engine's model is the view we built by hand ...
        assert e.view() == Engine.from_view(view, e.alloc).view()
        # ... and its table is exactly a full compile of that model
        assert e.flows() == full(e, view)
    assert e.stats.full_recomputes == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_diffs_replay_to_the_same_table(data):
    view = base_view()
    e = Engine.from_view(view)
    table = {f.key: f for f in e.flows()}
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(OPS))
        before = dict(table)
        orig_flush = e._flush
        diffs = []

        def spy():
            d = orig_flush()
            diffs.append(d)
            return d

        e._flush = spy
        view = op(e, view, data)
        e._flush = orig_flush
        for d in diffs:
            for f in d.deletes:
                assert table.pop(f.key) is not None
            for f in d.modifies:
                assert f.key in table
                table[f.key] = f
            for f in d.adds:
                assert f.key not in table
                table[f.key] = f
        # minimal: exactly what flow.diff computes between the two tables
        if len(diffs) == 1:
            want = diff(before, {f.key: f for f in e.flows()})
            assert {f.key for f in diffs[0].deletes} == {f.key for f in want.deletes}
            assert set(diffs[0].modifies) == set(want.modifies)
            assert set(diffs[0].adds) == set(want.adds)
    assert frozenset(table.values()) == e.flows()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_change_then_revert_restores(data):
    view = base_view()
    e = Engine.from_view(view)
    original = e.flows()
    op = data.draw(st.sampled_from(OPS))
    changed = op(e, view, data)
    d = e.update(view)  # back to the original model, incrementally
    assert e.flows() == original
    if changed == view:
        assert d.empty
    assert e.stats.full_recomputes == 1


# ------------------------------------------------------------- recomputes
def _engine():
    e = Engine.from_view(base_view())
    e.stats.reset()
    return e


def test_adding_a_port_recomputes_only_that_port():
    e = _engine()
    d = change(e, ports=(make_port(0, 30, HOST, ("sg-web",)),))
    d2 = plug(e, "port-0-30", 250)
    assert e.stats.full_recomputes == 0
    rc = e.stats.owner_recomputes
    assert rc["port"] == 2 and rc["port-acl"] == 2 and rc["network"] <= 2
    assert rc["address"] == 0 and rc["rule-match"] == 0 and rc["static"] == 0
    assert len(d2) > 5 and d.empty is False or len(d2) > 5


def _router(e, rid="router-1"):
    return e.routers[rid]


def test_attaching_an_interface_recomputes_the_router_and_that_networks_ports():
    e = _engine()
    r = _router(e)
    change(e, routers=(dataclasses.replace(r, interfaces=r.interfaces[:1]),))  # detach net-1
    e.stats.reset()
    d = change(e, routers=(r,))  # attach it again
    rc = e.stats.owner_recomputes
    n_ports = len([p for p in e.ports.values() if p.network_id == "net-1"])
    assert e.stats.full_recomputes == 0
    assert dict(rc) == {"router": 1, "port": n_ports}
    assert d.adds and not d.deletes
    assert e.flows() == full(e)


def test_adding_a_route_recomputes_only_the_router():
    e = _engine()
    r = _router(e)
    d = change(e, routers=(dataclasses.replace(
        r, routes=r.routes + (HostRoute("10.8.0.0/16", "10.0.1.10"),)),))
    assert dict(e.stats.owner_recomputes) == {"router": 1}
    assert len(d) == 1 and len(d.adds) == 1
    assert e.flows() == full(e)


def test_a_port_on_a_routed_network_recomputes_no_router():
    e = _engine()
    d = change(e, ports=(make_port(1, 30, "host-r0"),))
    rc = e.stats.owner_recomputes
    assert rc["router"] == 0 and rc["port"] == 1
    # its L3_RESOLVE entry is among the adds
    assert any(f.table == 48 and f.match.get("ipv4_dst").value == "10.0.1.40" for f in d.adds)


def test_the_next_hop_port_moving_recomputes_its_router():
    e = _engine()
    p = e.ports["port-0-2"]  # 10.0.0.12, next hop of router-1's extra route
    change(e, ports=(dataclasses.replace(p, mac_address="fa:16:3e:77:77:77"),))
    assert e.stats.owner_recomputes["router"] == 1
    assert e.flows() == full(e)


def test_removing_a_port_recomputes_only_that_port():
    e = _engine()
    change(e, removed_ports=("port-0-0",))
    rc = e.stats.owner_recomputes
    assert e.stats.full_recomputes == 0
    assert rc["port"] == 1 and rc["port-acl"] == 1 and rc["network"] == 1
    assert sum(rc.values()) == 3


def test_rebinding_a_port_is_incremental():
    e = _engine()
    p = next(p for p in e.view().ports if p.id == "port-0-0")
    change(e, ports=(dataclasses.replace(p, host="host-r1"),))  # moved to another host
    assert e.stats.full_recomputes == 0
    assert e.stats.owner_recomputes["port"] == 1
    e.stats.reset()
    change(e, ports=(p,))  # and back
    plug(e, p.id, 150)  # plugged on a new ofport
    assert e.stats.full_recomputes == 0
    assert e.stats.owner_recomputes["port"] == 2


def test_adding_a_member_recomputes_one_address():
    e = _engine()
    ip = frozenset({"10.0.1.99"})
    d = change(e, group_members=(GroupMembers("sg-db", ip, ip),))
    rc = e.stats.owner_recomputes
    assert e.stats.full_recomputes == 0
    assert dict(rc) == {"address": 1}  # sg-db is referenced by egress rules of sg-web
    assert len(d) == 1 and d.adds


def test_adding_a_rule_touches_no_port():
    e = _engine()
    web = _group(e.view(), "sg-web")
    rule = Rule("web-443", "sg-web", "ingress", "IPv4", 6, 443, 443)
    d = change(e, security_groups=(SecurityGroup(web.id, web.rules + (rule,), web.member_ips),))
    rc = e.stats.owner_recomputes
    assert e.stats.full_recomputes == 0
    assert rc["port"] == 0 and rc["port-acl"] == 0 and rc["rule-match"] == 1
    assert len(d) == 1


def test_noop_changes_are_free():
    e = _engine()
    v = e.view()
    assert change(e, ports=(v.ports[0],)).empty
    assert e.update(v).empty
    assert sum(e.stats.owner_recomputes.values()) == 0


def test_apply_delta_matches_full_compile_of_the_new_view():
    from quantum_ovs.model import Delta

    e = Engine.from_view(base_view())
    v = e.view()
    new_port = make_port(1, 33, HOST, ("sg-db",))
    web = _group(v, "sg-web")
    delta = Delta(
        revision=7,
        ports=(new_port,),
        security_groups=(SecurityGroup("sg-web", web.rules, web.member_ips | {"10.0.1.33"}),),
        removed_networks=("net-0",),
    )
    e.apply(delta)
    after = e.view()
    assert not [p for p in after.ports if p.network_id == "net-0"]
    assert not [s for s in after.subnets if s.network_id == "net-0"]
    assert e.flows() == full(e)
    assert e.revision == 7 and e.stats.full_recomputes == 1


def test_group_members_delta_matches_full_compile_and_wire():
    """A membership change sent as GroupMembers (not the whole group) gives
    the same flows as a full compile of the view it describes, and the
    wire codec's apply_delta gives that view."""
    from quantum_ovs import wire
    from quantum_ovs.model import Delta, GroupMembers

    e = Engine.from_view(base_view())
    v = e.view()
    web = _group(v, "sg-web")
    gone = sorted(web.member_ips)[0]
    gm = GroupMembers("sg-web", addresses=frozenset({gone, "10.0.1.77", "10.0.1.78"}),
                      members=frozenset({"10.0.1.77"}))
    delta = Delta(revision=9, group_members=(gm, GroupMembers("sg-unknown",
                                                               frozenset({"1.2.3.4"}),
                                                               frozenset({"1.2.3.4"}))))
    diff = e.apply(delta)
    assert not diff.empty
    want = (web.member_ips - {gone}) | {"10.0.1.77"}
    assert _group(e.view(), "sg-web").member_ips == want
    assert "sg-unknown" not in {g.id for g in e.view().security_groups}
    assert e.flows() == full(e)
    round_trip = wire.delta_from_dict(wire.delta_to_dict(delta))
    assert round_trip == delta
    applied = wire.apply_delta(v, round_trip)
    assert _group(applied, "sg-web").member_ips == want


def test_complete_groups_delta_drops_the_others():
    from quantum_ovs import wire
    from quantum_ovs.model import Delta

    e = Engine.from_view(base_view())
    v = e.view()
    assert len(v.security_groups) > 1
    keep = v.security_groups[0]
    delta = Delta(revision=11, security_groups=(keep,), groups_complete=True)
    e.apply(delta)
    assert [g.id for g in e.view().security_groups] == [keep.id]
    assert e.flows() == full(e)
    applied = wire.apply_delta(v, wire.delta_from_dict(wire.delta_to_dict(delta)))
    assert [g.id for g in applied.security_groups] == [keep.id]


def test_no_cyclic_gc_while_an_incremental_change_is_computed(monkeypatch):
    """The collector is paused while flows are computed (a loaded engine
    makes every full collection long) and running again afterwards, also
    when the compile fails."""
    import gc

    e = _engine()
    change(e, ports=(make_port(0, 30, HOST, ("sg-web",)),))
    seen = []
    real = e._computers["port"]

    def port(owner):
        seen.append(gc.isenabled())
        return real(owner)
    monkeypatch.setitem(e._computers, "port", port)
    assert gc.isenabled()
    plug(e, "port-0-30", 250)
    assert seen and not any(seen) and gc.isenabled()

    def broken(owner):
        raise RuntimeError("compile failed")
    monkeypatch.setitem(e._computers, "port", broken)
    with pytest.raises(RuntimeError):
        plug(e, "port-0-30", 251)
    assert gc.isenabled()


def test_a_pairs_own_mac_recomputes_the_ports_acl():
    """The port's flows take what is flooded for its pairs' own MACs as
    its own, and pass its replies of connections to them (rules/acl.
    pair_macs): giving a pair a MAC of its own, or taking it away, changes
    them; a pair's address alone does not."""
    e = _engine()
    p = next(x for x in e.ports.values() if x.host == HOST and x.id in e.vif_ofports
             and x.port_security_enabled)
    for pairs, recomputes in (((AddressPair("10.0.0.200", "00:00:5e:00:01:07"),), 1),
                              ((AddressPair("10.0.0.200", p.mac_address),), 1),
                              ((AddressPair("10.0.0.200", p.mac_address),), 0),  # same
                              ((), 0)):  # (the pair's address gone)
        e.stats.reset()
        change(e, ports=(dataclasses.replace(p, allowed_address_pairs=pairs),))
        assert e.stats.owner_recomputes["port-acl"] == recomputes, pairs
        assert e.flows() == full(e)
