"""The engine's graph is data (engine.INPUTS, engine.OWNER_KINDS), and the
data tells the truth: the printed graph is the checked-in one, every owner
the engine computes is declared, every flow carries its owner's cookie
kind, and a change of one input dirties only the owner kinds declared to
depend on it (and, over a few changes, every one of them)."""

from __future__ import annotations

import dataclasses
import os
import pathlib

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import engine as eng
from quantum_ovs.compiler.desired import CompileError
from quantum_ovs.compiler.engine import OWNER_KINDS, Engine
from quantum_ovs.compiler.synth import (
    EXT_NET,
    EXT_SUBNET,
    add_external,
    default_group,
    make_large_view,
    make_port,
)
from quantum_ovs.model import (
    AddressGroup,
    GroupMembers,
    HostRoute,
    Neighbour,
    RemoteHost,
    Rule,
    SecurityGroup,
)

from tests.fixtures.scenario import HOST, change, plug
from tests.fixtures.scenario import base_view as _base_view


def base_view():
    """The scenario's base view with external connectivity (a gateway on
    router-1, floating IPs, a port forwarding), so every owner kind has
    owners; sg-db's rules also name an address group.  A stateless group,
    sg-sl, has rules with no protocol whose clause-1 flow is the clause-2
    flow of an address of sg-db or ag-1 once it is added (_add_member,
    _add_ag_address): one rule-match owner gives both (acl.address_at)."""
    view = add_external(_base_view(), hosts=(HOST, "gw-2"))
    rule = Rule("db-ag", "sg-db", "ingress", "IPv4", 6, 22, 22, remote_address_group_id="ag-1")
    groups = tuple(dataclasses.replace(g, rules=g.rules + (rule,)) if g.id == "sg-db" else g
                   for g in view.security_groups)
    groups += (SecurityGroup("sg-sl", (
        Rule("sl-1", "sg-sl", "ingress", "IPv4", 6, 22, 22, remote_group_id="sg-db"),
        Rule("sl-2", "sg-sl", "ingress", "IPv4", remote_ip_prefix="10.250.0.9/32"),
        Rule("sl-3", "sg-sl", "ingress", "IPv6", 6, 80, 80, remote_address_group_id="ag-1"),
        Rule("sl-4", "sg-sl", "ingress", "IPv6", remote_ip_prefix="2001:db8::/64")),
        stateful=False),)
    return view.replace(security_groups=groups, address_groups=(
        AddressGroup("ag-1", frozenset({"10.77.0.0/24", "10.77.1.5/32"})),))

HERE = pathlib.Path(__file__).parent
GOLDEN = {"text": HERE / "engine_graph.txt", "dot": HERE / "engine_graph.dot"}
REGEN = "QOVS_REGEN_GOLDEN"


@pytest.mark.parametrize("fmt", sorted(GOLDEN))
def test_graph_is_the_checked_in_one(fmt):
    """Adding or changing an owner kind, an input or a dependency changes
    the printed graph: update the golden file with it (and review the diff)."""
    path = GOLDEN[fmt]
    got = Engine.describe(fmt)
    if os.environ.get(REGEN):
        path.write_text(got)
    want = path.read_text()
    assert got == want, (
        f"the engine's graph changed ({fmt}); if that is intended, regenerate with\n"
        f"  {REGEN}=1 .venv/bin/pytest {pathlib.Path(__file__).relative_to(HERE.parents[2])}\n"
        f"and commit {path.name} with the change")


def test_dot_draws_every_dependency():
    dot = Engine.dot()
    assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
    edges = {line.strip().rstrip(";") for line in dot.splitlines() if "->" in line}
    want = {f'"input:{d}" -> "owner:{k.name}"' for k in OWNER_KINDS for d in k.depends_on}
    assert edges == want


def test_owner_kinds_are_the_cookie_kinds():
    """One vocabulary: each owner kind is named as its cookie kind, and the
    cookie numbers (on the wire, in flows a running agent installed) are the
    ones they always were."""
    assert {k.name: k.cookie_kind for k in OWNER_KINDS} == {
        "static": 0x01, "network": 0x02, "port": 0x03, "port-acl": 0x04, "group": 0x05,
        "address": 0x06, "rule-match": 0x07, "router": 0x08, "gateway": 0x09,
        "floating-ip": 0x0A, "external": 0x0B, "tunnel-peer": 0x0C, "metadata": 0x10}
    for k in OWNER_KINDS:
        assert cookies.KIND_NAMES[k.cookie_kind] == k.name
    assert cookies.cookie_for(cookies.KIND_PORT_ACL, "owner-1") == 0x510457AAE813B186


def test_an_undeclared_dependency_fails_at_import(monkeypatch):
    bad = dataclasses.replace(OWNER_KINDS[1],
                              depends_on=OWNER_KINDS[1].depends_on + ("floating-ips",))
    monkeypatch.setattr(eng, "OWNER_KINDS", (OWNER_KINDS[0], bad) + OWNER_KINDS[2:])
    with pytest.raises(CompileError, match="undeclared"):
        eng._check_graph()
    renamed = dataclasses.replace(OWNER_KINDS[3], name="acl")
    monkeypatch.setattr(eng, "OWNER_KINDS", OWNER_KINDS[:3] + (renamed,) + OWNER_KINDS[4:])
    with pytest.raises(CompileError, match="named 'port-acl'"):
        eng._check_graph()


def test_an_undeclared_owner_kind_is_an_error():
    e = Engine.from_view(base_view())
    e._dirty.add(("load-balancer", "lb1"))
    with pytest.raises(CompileError, match="undeclared owner kind 'load-balancer'"):
        e._flush()


def _ip(i: int) -> frozenset:
    return frozenset({f"10.250.0.{i}"})


def test_every_computed_owner_kind_is_declared_and_every_declared_one_computed():
    view = add_external(make_large_view(local_ports=60, networks=6, remote_hosts=10,
                                        remote_ports=200, n_groups=8, max_members=50,
                                        routers=2), hosts=(HOST,))
    e = Engine.from_view(view)
    kinds = set(e.stats.owner_recomputes)
    gid = max(e.groups, key=lambda g: len(e.groups[g].member_ips))
    sg0 = e.groups["sg-0"]
    rule = Rule("graph-rg", "sg-0", "ingress", "IPv4", 6, 9000, 9000, remote_group_id=gid)
    p = make_port(1, 200, HOST, ("sg-0", gid))
    for step in (
        lambda: change(e, ports=(p,)),
        lambda: plug(e, p.id, 61000),
        lambda: change(e, group_members=(GroupMembers(gid, _ip(1), _ip(1)),)),
        lambda: change(e, security_groups=(SecurityGroup("sg-0", sg0.rules + (rule,),
                                                         sg0.member_ips),)),
        lambda: change(e, removed_ports=(p.id,)),
        lambda: change(e, removed_networks=(view.networks[0].id,)),
        lambda: change(e, removed_security_groups=(gid,)),
    ):
        e.stats.reset()
        step()
        kinds |= set(e.stats.owner_recomputes)
    assert kinds == {k.name for k in OWNER_KINDS}


def test_every_flow_carries_its_owner_kinds_cookie():
    view = add_external(make_large_view(local_ports=30, networks=3, remote_hosts=5,
                                        remote_ports=60, n_groups=6, max_members=20,
                                        routers=1), hosts=(HOST,))
    e = Engine.from_view(view.replace(chassis=dataclasses.replace(view.chassis,
                                                                  metadata_ofport=4000)))
    by_kind = {k.name: k.cookie_kind for k in OWNER_KINDS}
    seen = set()
    for owner in e.desired.owners():
        for f in e.desired.owner_flows(owner):
            assert cookies.kind_of(f.cookie) == by_kind[owner[0]], (owner, f)
            seen.add(owner[0])
    assert seen == set(by_kind)


# ------------------------------------------------- honest dependencies
def _replace_group(e, gid, **kw):
    g = e.groups[gid]
    return dataclasses.replace(g, **kw)


def _toggle_network(e):
    n = e.networks["net-0"]
    change(e, networks=(dataclasses.replace(n, admin_state_up=not n.admin_state_up),))


def _resegment_network(e):
    n = e.networks["net-1"]
    seg = dataclasses.replace(n.segment, segmentation_id=(n.segment.segmentation_id or 0) + 9)
    change(e, networks=(dataclasses.replace(n, segment=seg),))


def _toggle_dhcp(e):
    s = next(s for s in e.subnets.values() if s.network_id == "net-0")
    change(e, subnets=(dataclasses.replace(s, enable_dhcp=not s.enable_dhcp),))


def _add_local_port(e):
    change(e, ports=(make_port(0, 30, HOST, ("sg-web",)),))


def _remove_remote_port(e):
    pid = next(pid for pid, p in e.ports.items() if p.host != HOST)
    change(e, removed_ports=(pid,))


def _port_groups(e):
    p = next(p for p in e.ports.values() if p.host == HOST and "sg-db" not in p.security_groups)
    change(e, ports=(dataclasses.replace(p, security_groups=p.security_groups + ("sg-db",)),))


def _plain_rule(e):
    g = e.groups["sg-web"]
    rule = Rule("x-443", "sg-web", "ingress", "IPv4", 6, 443, 443)
    change(e, security_groups=(_replace_group(e, "sg-web", rules=g.rules + (rule,)),))


def _remote_group_rule(e):
    g = e.groups["sg-default"]
    rule = Rule("x-rg", "sg-default", "ingress", "IPv4", 6, 22, 22, remote_group_id="sg-web")
    change(e, security_groups=(_replace_group(e, "sg-default", rules=g.rules + (rule,)),))


def _new_group(e):
    change(e, security_groups=(default_group("sg-new", members=("10.0.0.77",)),))


def _add_member(e):
    change(e, group_members=(GroupMembers("sg-db", _ip(9), _ip(9)),))


def _remove_member(e):
    ip = frozenset({sorted(e.groups["sg-web"].member_ips)[0]})
    change(e, group_members=(GroupMembers("sg-web", ip),))


def _add_ag_address(e):
    a = e.address_groups["ag-1"]
    change(e, address_groups=(AddressGroup(a.id, a.addresses | {"2001:db8::/64"}),))


def _remove_ag_address(e):
    a = e.address_groups["ag-1"]
    change(e, address_groups=(AddressGroup(a.id, a.addresses - {"10.77.1.5/32"}),))


def _move_remote_host(e):
    h = next(iter(e.remote_hosts.values()))
    change(e, remote_hosts=(RemoteHost(h.name, "192.168.77.7"),))


def _drop_remote_host(e):
    change(e, removed_remote_hosts=(next(iter(e.remote_hosts)),))


def _replug(e):
    pid = next(pid for pid, p in e.ports.items() if p.host == HOST)
    plug(e, pid, 333)


def _unplug(e):
    pid = sorted(pid for pid, p in e.ports.items() if p.host == HOST)[-1]
    plug(e, pid, None)


def _detach_interface(e):
    r = e.routers["router-1"]
    change(e, routers=(dataclasses.replace(r, interfaces=r.interfaces[:1]),))


def _add_route(e):
    r = e.routers["router-1"]
    route = HostRoute("10.8.0.0/16", "10.0.1.12")
    change(e, routers=(dataclasses.replace(r, routes=r.routes + (route,)),))


def _move_tunnel(e):
    ch = e.chassis()
    tun = tuple((t, o + 40) for t, o in ch.tunnel_ofports)
    e.set_chassis(dataclasses.replace(ch, tunnel_ofports=tun))


def _move_patch(e):
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(ch, physnet_ofports=(("physnet1", 77),)))


def _ext_subnet(e):
    s = e.subnets[EXT_SUBNET]
    change(e, subnets=(dataclasses.replace(s, gateway_ip="172.24.0.2"),))


def _ext_network(e):
    n = e.networks[EXT_NET]
    change(e, networks=(dataclasses.replace(n, mtu=1400),))


def _move_fip_port(e):
    pid = next(f.port_id for f in e.routers["router-1"].floating_ips if f.port_id)
    change(e, ports=(dataclasses.replace(e.ports[pid], host="host-r0"),))


def _last_port_of_a_network_leaves(e):
    gone = tuple(pid for pid, p in e.ports.items()
                 if p.host == HOST and p.network_id == "net-1")
    change(e, removed_ports=gone)


def _move_fip(e):
    r = e.routers["router-1"]
    f = r.floating_ips[0]
    fl = (dataclasses.replace(f, floating_ip_address="172.24.9.9"),) + r.floating_ips[1:]
    change(e, routers=(dataclasses.replace(r, floating_ips=fl),))


def _drop_gateway(e):
    r = e.routers["router-1"]
    change(e, routers=(dataclasses.replace(r, gateway=None, floating_ips=()),))


def _move_gateway_port(e):
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(
        ch, gateway_ofports=tuple((h, o + 5) for h, o in ch.gateway_ofports)))


def _gateway_down(e):
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(ch, gateways_down=(HOST,)))


def _resolve(e):
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(
        ch, neighbours=ch.neighbours + (Neighbour(EXT_NET, "172.24.0.77", "52:54:00:00:00:77"),)))
def _add_metadata_proxy(e):
    e.set_chassis(dataclasses.replace(e.chassis(), metadata_ofport=4000))


def _move_metadata_proxy(e):
    e.set_chassis(dataclasses.replace(e.chassis(), metadata_ofport=4000))
    e.stats.reset()
    e.set_chassis(dataclasses.replace(e.chassis(), metadata_ofport=4001))


# input -> changes of that input only
CHANGES = {
    eng.NETWORKS: (_toggle_network, _resegment_network, _ext_network),
    eng.SUBNETS: (_toggle_dhcp, _ext_subnet),
    eng.PORTS: (_add_local_port, _remove_remote_port, _port_groups, _move_fip_port,
                _last_port_of_a_network_leaves),
    eng.SG_RULES: (_plain_rule, _remote_group_rule, _new_group),
    eng.SG_MEMBERS: (_add_member, _remove_member),
    eng.ADDRESS_GROUPS: (_add_ag_address, _remove_ag_address),
    eng.REMOTE_HOSTS: (_move_remote_host, _drop_remote_host),
    eng.ROUTERS: (_detach_interface, _add_route, _move_fip, _drop_gateway),
    eng.VIF_OFPORTS: (_replug, _unplug),
    eng.UPLINK_OFPORTS: (_move_tunnel, _move_patch),
    eng.GATEWAY_OFPORTS: (_move_gateway_port,),
    eng.GATEWAYS_DOWN: (_gateway_down,),
    eng.NEIGHBOURS: (_resolve,),
    eng.METADATA_OFPORT: (_add_metadata_proxy, _move_metadata_proxy),
}


def test_every_incremental_input_has_changes_here():
    assert set(CHANGES) == {i.name for i in eng.INPUTS if i.incremental}


@pytest.mark.parametrize("input_name", sorted(CHANGES))
def test_a_change_dirties_only_what_depends_on_it(input_name):
    declared = {k.name for k in OWNER_KINDS if input_name in k.depends_on}
    dirtied = set()
    for make_change in CHANGES[input_name]:
        e = Engine.from_view(base_view())
        e.stats.reset()
        make_change(e)
        assert e.stats.full_recomputes == 0
        kinds = {k for k, n in e.stats.owner_recomputes.items() if n}
        assert kinds, f"{make_change.__name__} changed nothing"
        assert kinds <= declared, (
            f"{make_change.__name__} (a change of {input_name}) recomputed {sorted(kinds)}, "
            f"but only {sorted(declared)} are declared to depend on {input_name} "
            f"(engine.OWNER_KINDS)")
        dirtied |= kinds
    assert dirtied == declared, (
        f"owner kinds declared to depend on {input_name} that no change of it recomputed: "
        f"{sorted(declared - dirtied)}")
