"""The memoizing flow-mod encoder gives os-ken's bytes, byte for byte, on
every flow the compiler makes for generated views (security groups with
remote groups, VXLAN/GRE/VLAN/flat networks, DHCP, routers) and on the
hand-written samples (masks, every action kind), for adds and for strict
deletes with and without a cookie mask."""

from __future__ import annotations

import dataclasses

import pytest

from agent.openflow import encode as E
from agent.openflow.fastencode import FastEncoder
from quantum_ovs.compiler import flow as F
from quantum_ovs.compiler.engine import compile_flows
from quantum_ovs.compiler.flow import Field, Flow, Match
from quantum_ovs.compiler.synth import (
    make_host_view,
    make_large_view,
    make_router,
    make_router_interface,
)
from tests.fixtures.flow_samples import cookie, sample_flows

MASK = 0xFFFF000000000000


def _router_view():
    v = make_host_view(networks=3, ports_per_net=3, remote_hosts=2, remote_ports_per_net=2)
    r = make_router("router-1", (0, 1, 2))
    assert r.interfaces and make_router_interface(0).mac_address
    return dataclasses.replace(v, routers=(r,))


VIEWS = {
    "vxlan": lambda: make_host_view(networks=3, ports_per_net=4, remote_hosts=3,
                                    remote_ports_per_net=3),
    "gre": lambda: make_host_view(networks=2, remote_hosts=2, remote_ports_per_net=2,
                                  network_type="gre"),
    "vlan": lambda: make_host_view(networks=2, network_type="vlan"),
    "flat": lambda: make_host_view(networks=1, network_type="flat"),
    "groups": lambda: make_large_view(local_ports=60, networks=6, remote_hosts=5,
                                      remote_ports=120, n_groups=6, rules_per_group=5),
    "router": _router_view,
}


def _check(flows):
    n = 0
    for f in flows:
        assert E.flow_mod_bytes(f) == E.flow_mod_bytes_osken(f), f
        assert E.flow_mod_bytes(f, E.DELETE) == E.flow_mod_bytes_osken(f, E.DELETE), f
        assert E.flow_mod_bytes(f, E.DELETE, MASK) == \
            E.flow_mod_bytes_osken(f, E.DELETE, MASK), f
        n += 1
    return n


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_compiled_flows_encode_as_osken_does(name):
    flows = sorted(compile_flows(VIEWS[name]()), key=lambda f: (f.table, f.priority, str(f)))
    assert _check(flows) > 20


def test_samples_encode_as_osken_does():
    assert _check(sample_flows()) == len(sample_flows())


def test_os_ken_is_asked_once_per_field_layout_and_rare_action():
    calls = {"layout": [], "slow": []}

    def layout(name, masked):
        calls["layout"].append((name, masked))
        return E._field_layout(name, masked)

    def slow(a):
        calls["slow"].append(a)
        return E._action_bytes(a)

    enc = FastEncoder(layout, E._check_term, E._check_action, slow, raw_fields=E._OVS_OXM,
                      late=E._AFTER_PREREQS)
    flows = sorted(compile_flows(VIEWS["router"]()), key=lambda f: (f.table, f.priority, str(f)))
    for f in flows:
        assert enc.add(f) == E.flow_mod_bytes_osken(f)
    assert len(calls["layout"]) == len(set(calls["layout"]))
    assert len(calls["layout"]) == len({(t.name, t.mask is not None)
                                        for f in flows for t in f.match}
                                       | {(a.name, False) for f in flows for a in f.actions
                                          if isinstance(a, F.SetField)
                                          and a.name not in E._OVS_OXM})
    # only the actions without a struct layout (ct, move, raw set-fields)
    assert calls["slow"] and all(type(a) in (F.Ct, F.Move, F.SetField, F.DecTtl, F.PushVlan,
                                             F.PopVlan) for a in calls["slow"])


@pytest.mark.parametrize(
    "bad",
    [
        Flow(0, 1, Match(Field("reg0", 5, 0xFFFFFFFF)), (), cookie(1)),  # all-ones mask
        Flow(0, 1, Match(Field("reg0", 5, 0)), (), cookie(1)),  # zero mask
        Flow(0, 1, Match(Field("reg0", 5, 4)), (), cookie(1)),  # value outside mask
        Flow(0, 1, Match(Field("ipv4_src", "10.0.0.1", "255.255.255.0"), eth_type=0x800), (),
             cookie(1)),
        Flow(0, 1, Match(eth_src="AA:bb:cc:dd:ee:ff"), (), cookie(1)),
        Flow(0, 1, Match(), (F.Output(F.OFPP_CONTROLLER),), cookie(1)),
        Flow(0, 1, Match(), (F.GotoTable(3), F.Output(1)), cookie(1)),
        Flow(0, 1, Match(), (F.SetField("ipv4_src", "010.0.0.1"),), cookie(1)),
    ],
)
@pytest.mark.parametrize("command", [E.ADD, E.DELETE])
def test_non_canonical_flows_are_refused_as_os_ken_path_refuses(bad, command):
    with pytest.raises(ValueError):
        E.flow_mod(bad)
    with pytest.raises(ValueError):
        E.new_fast_encoder().add(bad) if command == E.ADD else \
            E.new_fast_encoder().delete_strict(bad, None)


def test_field_layouts_from_the_oxm_table_are_the_probed_ones():
    """encode._field_layout computes an OXM header from os-ken's field table
    (issue 17: no match serialized per field on a cold start); for every
    field a table of the pipeline may match or set, with and without a
    mask, it is what serializing a match of the field gives."""
    from agent.openflow import encode as E
    from quantum_ovs.compiler import pipeline as P

    names = set()
    for t in P.TABLES.values():
        names |= set(t.match) | set(t.sets)
    compared = 0
    for name in sorted(names):
        for masked in (False, True):
            try:
                want = E._probed_layout(name, masked)
            except KeyError:  # (OVS fields os-ken does not know: raw set-fields)
                continue
            assert E._field_layout(name, masked) == want, (name, masked)
            compared += 1
    assert compared > 60
