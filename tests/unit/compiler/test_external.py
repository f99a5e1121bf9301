"""External connectivity in the compiler (issue 14), traced: floating IPs
on the instance's host only, the gateway address answered by the active
gateway host only, the SNAT redirect over the gateway hosts' tunnels in
priority order, port forwardings on the active gateway host, the resolve
punt; incremental changes equal a full compile and stay local."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.compiler.flow import (
    CT_EST,
    CT_NEW,
    CT_RPL,
    CT_TRK,
    Bundle,
    Ct,
    Field,
    Flow,
    Match,
    Nat,
)
from quantum_ovs.compiler.synth import (
    EXT_GATEWAY_IP,
    EXT_NEIGHBOUR_MAC,
    EXT_NET,
    add_external,
    fip_address,
    make_router,
    router_mac,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, FixedIP, FloatingIP, Neighbour, Rule, Subnet
from tests.fixtures.scenario import HOST, PATCH_OFPORT, base_view, change

INTERNET = "198.51.100.7"
INET_MAC = "52:54:00:12:34:56"


def _view(hosts=("gw-1", "gw-2"), open_tcp=True, **kw):
    """host-a: port-0-0 .. (local) with floating IPs on net-0 / net-1,
    router-1 with a gateway on gw-1, gw-2; port forwarding FIP to
    port-0-0:22.  ``open_tcp``: sg-default also admits TCP from anywhere."""
    v = add_external(base_view(), hosts=hosts, **kw)
    if open_tcp:
        g = next(g for g in v.security_groups if g.id == "sg-default")
        g2 = dataclasses.replace(g, rules=g.rules + (
            Rule("any-tcp", "sg-default", "ingress", "IPv4", 6),))
        v = v.replace(security_groups=tuple(g2 if x.id == g.id else x
                                            for x in v.security_groups))
    return v


def _engine(view) -> Engine:
    return Engine.from_view(view)


def _full(e: Engine):
    return compile_flows(e.view(), e.alloc)


def _fip(e: Engine, pid: str) -> FloatingIP:
    return next(f for f in e.routers["router-1"].floating_ips if f.port_id == pid)


def _arp(tracer, target, in_port=PATCH_OFPORT):
    return tracer.run({"in_port": in_port, "vlan_vid": 0, "eth_src": INET_MAC,
                       "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
                       "arp_spa": INTERNET, "arp_sha": INET_MAC, "arp_tpa": target})


def _kinds(e: Engine):
    return {k for k, n in e.stats.owner_recomputes.items() if n}


# ------------------------------------------------------------- floating IPs
def test_a_floating_ip_is_answered_and_translated_on_its_instances_host():
    e = _engine(_view())
    port = e.ports["port-0-0"]
    fip = _fip(e, port.id)
    t = Tracer(e.flows())
    arp = _arp(t, fip.floating_ip_address)
    assert arp.ports == [PATCH_OFPORT]
    assert arp.outputs[0].get("arp_sha") == fip.mac_address == port.mac_address
    inbound = t.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
                     "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 6,
                     "ipv4_src": INTERNET, "ipv4_dst": fip.floating_ip_address,
                     "tcp_src": 40000, "tcp_dst": 80})
    vif = dict(e.chassis().vif_ofports)[port.id]
    (d,) = inbound.outputs
    assert d.port == vif
    assert (d.get("ipv4_dst"), d.get("ipv4_src")) == (port.ips[0], INTERNET)
    assert d.get("eth_src") == router_mac(0)
    # committed in the router's ACL zone after the DNAT zone
    zone = e.router_zone("router-1")
    assert [z for z, _ in inbound.commits][-1] == zone
    assert inbound.nats and inbound.nats[0][0] != zone


def test_security_groups_still_apply_behind_a_floating_ip():
    """sg-default admits only its members: the internet's new connection
    is translated, then refused at the instance's ingress, uncommitted in
    the router's ACL zone."""
    e = _engine(_view(open_tcp=False))
    fip = _fip(e, "port-0-0")
    out = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": INTERNET,
        "ipv4_dst": fip.floating_ip_address, "tcp_src": 40000, "tcp_dst": 80})
    assert out.dropped and out.steps[-1].table == P.INGRESS_ACL
    assert e.router_zone("router-1") not in [z for z, _ in out.commits]


def test_an_instance_with_a_floating_ip_leaves_as_it_through_this_hosts_uplink():
    e = _engine(_view())
    port = e.ports["port-0-0"]
    fip = _fip(e, port.id)
    vif = dict(e.chassis().vif_ofports)[port.id]
    t = Tracer(e.flows())
    out = t.run({"in_port": vif, "vlan_vid": 0, "eth_src": port.mac_address,
                 "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
                 "ipv4_src": port.ips[0], "ipv4_dst": INTERNET, "tcp_src": 40000,
                 "tcp_dst": 80})
    (d,) = out.outputs
    assert d.port == PATCH_OFPORT
    assert d.get("ipv4_src") == fip.floating_ip_address
    assert (d.get("eth_src"), d.get("eth_dst")) == (fip.mac_address, EXT_NEIGHBOUR_MAC)
    # the ACL entry is committed on the pre-NAT tuple, in the router's zone
    zone = e.router_zone("router-1")
    assert (zone, port.ips[0]) in [(z, pk["ipv4_src"]) for z, pk in out.commits]


def test_a_floating_ip_is_nowhere_but_on_its_ports_host():
    e = _engine(_view())
    fip = _fip(e, "port-0-0")
    moved = dataclasses.replace(e.ports["port-0-0"], host="host-r0")
    change(e, ports=(moved,))
    t = Tracer(e.flows())
    assert _arp(t, fip.floating_ip_address).dropped
    assert not e.desired.owner_flows(("floating-ip", fip.id))
    assert e.flows() == _full(e)


def test_a_floating_ip_costs_eight_flows():
    e = _engine(_view())
    fip = _fip(e, "port-0-0")
    assert len(e.desired.owner_flows(("floating-ip", fip.id))) == 8


def test_hairpin_to_a_floating_ip_served_here_is_dnated_here():
    e = _engine(_view())
    a, b = e.ports["port-0-0"], e.ports["port-1-0"]
    fa, fb = _fip(e, a.id), _fip(e, b.id)
    vif = dict(e.chassis().vif_ofports)
    out = Tracer(e.flows()).run({
        "in_port": vif[a.id], "vlan_vid": 0, "eth_src": a.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
        "ipv4_dst": fb.floating_ip_address, "tcp_src": 40000, "tcp_dst": 80})
    (d,) = out.outputs
    assert d.port == vif[b.id]
    assert (d.get("ipv4_src"), d.get("ipv4_dst")) == (fa.floating_ip_address, b.ips[0])


# --------------------------------- a floating IP as a source, un-DNATed or not
SPOOF_OK = "203.0.113.9"  # an address no one serves


def _with_pair(view, pid, addr):
    """``pid`` may send from ``addr`` (an allowed address pair: any
    address its tenant likes)."""
    ports = tuple(dataclasses.replace(p, allowed_address_pairs=(AddressPair(addr, p.mac_address),))
                  if p.id == pid else p for p in view.ports)
    return view.replace(ports=ports)


def _from(e, pid, src, sport=4444, **kw):
    """TCP from port ``pid`` to the internet with source ``src``."""
    p = e.ports[pid]
    vif = dict(e.chassis().vif_ofports)[pid]
    return Tracer(e.flows()).run({
        "in_port": vif, "vlan_vid": 0, "eth_src": p.mac_address,
        "eth_dst": router_mac(int(p.network_id.split("-")[1])), "eth_type": 0x0800,
        "ip_proto": 6, "ipv4_src": src, "ipv4_dst": INTERNET, "tcp_src": sport,
        "tcp_dst": 80, "nw_ttl": 64}, **kw)


def _undnat(internal, external, port=None):
    """The DNAT zone's entry of a connection to ``external`` (a floating
    IP, or a forwarding's address:``port``), DNATed to ``internal``: its
    replies' source is turned back."""
    def nat(zone, pkt):
        if pkt.get("ipv4_src") != internal[0] or (len(internal) > 1 and
                                                  pkt.get("tcp_src") != internal[1]):
            return {}
        return {"ipv4_src": external, **({"tcp_src": port} if port else {})}
    return nat


def _uplink_sources(out):
    return [d.get("ipv4_src") for d in out.outputs if d.port == PATCH_OFPORT]


@pytest.mark.parametrize("hosts", [("gw-1", "gw-2"), (HOST, "gw-2")],
                         ids=["compute", "active-gateway"])
def test_a_vm_cannot_leave_with_another_ports_floating_ip_as_source(hosts):
    """port-1-1, behind the same router on the host of port-0-0's floating
    IP, sends from that floating IP (an allowed address pair): not a
    reply the DNAT zone turned back, so it is SNATed (or redirected to be)
    like any other source, never out as the victim's address."""
    v = _view(hosts=hosts)
    victim = next(f for f in v.routers[0].floating_ips if f.port_id == "port-0-0")
    e = _engine(_with_pair(v, "port-1-1", victim.floating_ip_address))
    for state in (CT_NEW, CT_EST | CT_RPL):
        out = _from(e, "port-1-1", victim.floating_ip_address, ct_state=state)
        assert victim.floating_ip_address not in _uplink_sources(out), out.format()
        assert victim.mac_address not in [d.get("eth_src") for d in out.outputs]
    # as any other address it may send from would be (for comparison)
    spoof = _engine(_with_pair(v, "port-1-1", SPOOF_OK))
    for e in (e, spoof):
        src = victim.floating_ip_address if e is not spoof else SPOOF_OK
        out = _from(e, "port-1-1", src)
        if HOST in hosts:
            assert _uplink_sources(out) == ["172.24.0.10"]  # the gateway address
        else:
            (d,) = out.outputs
            assert d.get("tunnel_id") == e.routers["router-1"].gateway.redirect_key


def test_the_reply_of_a_floating_ip_leaves_as_the_floating_ip():
    """What the fix keeps: a reply the DNAT zone un-DNATs (+snat) leaves
    from the floating IP and its MAC, untranslated further."""
    e = _engine(_view())
    port = e.ports["port-0-0"]
    fip = _fip(e, port.id)
    out = _from(e, port.id, port.ips[0], sport=80, ct_state=CT_EST | CT_RPL,
                nat=_undnat((port.ips[0],), fip.floating_ip_address))
    (d,) = out.outputs
    assert (d.port, d.get("ipv4_src"), d.get("eth_src")) == (
        PATCH_OFPORT, fip.floating_ip_address, fip.mac_address)
    assert [k for _, ch in out.nats for k in ch] == ["ipv4_src"]  # un-DNAT, no SNAT


def test_a_vm_cannot_leave_with_a_port_forwardings_floating_ip_as_source():
    """The forwarding's floating IP is served on the active gateway host
    (host-a): sent from it by another VM, here or redirected here from
    another host, it is SNATed to the gateway address; the forwarding's
    own replies, un-DNATed, still leave from it."""
    v = _view(hosts=(HOST, "gw-2"))
    fip = next(f for f in v.routers[0].floating_ips if f.port_forwardings)
    pf = fip.port_forwardings[0]
    addr = fip.floating_ip_address
    e = _engine(_with_pair(v, "port-1-1", addr))
    gw = e.routers["router-1"].gateway
    out = _from(e, "port-1-1", addr, sport=pf.external_port_lo)
    assert _uplink_sources(out) == ["172.24.0.10"], out.format()
    redirected = {"in_port": 21, "tunnel_id": gw.redirect_key, "eth_src": gw.mac_address,
                  "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
                  "ipv4_src": addr, "ipv4_dst": INTERNET, "tcp_src": pf.external_port_lo,
                  "tcp_dst": 80}
    out = Tracer(e.flows()).run(redirected)
    assert _uplink_sources(out) == ["172.24.0.10"], out.format()
    # the forwarding's reply, from its internal port here or redirected
    undnat = _undnat((pf.internal_ip_address, pf.internal_port_lo), addr,
                     pf.external_port_lo)
    out = _from(e, pf.internal_port_id, pf.internal_ip_address, sport=pf.internal_port_lo,
                ct_state=CT_EST | CT_RPL, nat=undnat)
    assert _uplink_sources(out) == [addr], out.format()
    assert out.outputs[0].get("tcp_src") == pf.external_port_lo
    out = Tracer(e.flows()).run({**redirected, "ipv4_src": pf.internal_ip_address,
                                 "tcp_src": pf.internal_port_lo},
                                ct_state=CT_EST | CT_RPL, nat=undnat)
    assert _uplink_sources(out) == [addr], out.format()


# ------------------------------------------------------------- gateways
@pytest.mark.parametrize("field, addr", [
    ("ipv4_dst", "127.0.0.1"), ("ipv4_dst", "255.255.255.255"), ("ipv4_dst", "224.0.0.251"),
    ("ipv4_dst", "0.1.2.3"), ("ipv4_src", "127.0.0.1"), ("ipv4_src", "224.0.0.251"),
    ("ipv4_src", "0.0.0.0"), ("ipv4_src", "255.255.255.255")])
def test_martian_addresses_are_not_routed_out(field, addr):
    """As a Linux router (Neutron's qrouter namespace, ip_route_input's
    martians): loopback, limited broadcast, multicast and "this network"
    are never forwarded, and not SNATed upstream by the default route;
    not punted for time exceeded either."""
    e = _engine(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False))
    e = _engine(e.view().replace(ports=tuple(
        dataclasses.replace(p, port_security_enabled=False) if p.id == "port-0-0" else p
        for p in e.view().ports)))
    p = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[p.id]
    t = Tracer(e.flows())

    def send(ttl, **kw):
        return t.run({"in_port": vif, "vlan_vid": 0, "eth_src": p.mac_address,
                      "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 17,
                      "ipv4_src": p.ips[0], "ipv4_dst": INTERNET, "udp_src": 5000,
                      "udp_dst": 5000, "nw_ttl": ttl, **kw})

    assert [d.port for d in send(64).outputs] == [PATCH_OFPORT]  # the default route
    for ttl in (64, 1):
        out = send(ttl, **{field: addr})
        assert not out.outputs and not out.controller, out.format()


def test_snat_is_redirected_over_the_gateway_tunnels_in_priority_order():
    e = _engine(_view(fips=0, forwardings=False))
    port = e.ports["port-0-0"]
    gw = e.routers["router-1"].gateway
    vif = dict(e.chassis().vif_ofports)[port.id]
    out = Tracer(e.flows()).run({
        "in_port": vif, "vlan_vid": 0, "eth_src": port.mac_address, "eth_dst": router_mac(0),
        "eth_type": 0x0800, "ip_proto": 17, "ipv4_src": port.ips[0], "ipv4_dst": INTERNET,
        "udp_src": 5000, "udp_dst": 53}, down_ports={20})
    (d,) = out.outputs
    assert d.port == 21  # gw-1's tunnel (20) is down: gw-2's
    assert d.get("tunnel_id") == gw.redirect_key
    assert d.get("ipv4_src") == port.ips[0]  # translated there, not here
    bundles = [a for f in e.flows() for a in f.actions if isinstance(a, Bundle)]
    assert bundles == [Bundle((20, 21))]


def test_only_the_active_gateway_host_answers_for_the_gateway_address():
    # host-a is the second gateway host; gw-1 is alive: standby
    e = _engine(_view(hosts=("gw-1", HOST)))
    gw_ip = e.routers["router-1"].gateway.ip_addresses[0]
    assert _arp(Tracer(e.flows()), gw_ip).dropped
    # gw-1's BFD goes down: host-a takes over, in flows, without the server
    ch = e.chassis()
    e.stats.reset()
    e.set_chassis(dataclasses.replace(ch, gateways_down=("gw-1",)))
    assert _kinds(e) <= {"gateway", "floating-ip"}
    assert e.flows() == _full(e)
    arp = _arp(Tracer(e.flows()), gw_ip)
    assert arp.outputs[0].get("arp_sha") == e.routers["router-1"].gateway.mac_address


def test_the_active_gateway_host_snats_redirected_traffic_to_the_gateway_address():
    e = _engine(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False))
    gw = e.routers["router-1"].gateway
    out = Tracer(e.flows()).run({
        "in_port": 21, "tunnel_id": gw.redirect_key, "eth_src": gw.mac_address,
        "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
        "ipv4_src": "10.0.0.99", "ipv4_dst": INTERNET, "tcp_src": 40000, "tcp_dst": 80})
    (d,) = out.outputs
    assert d.port == PATCH_OFPORT
    assert (d.get("ipv4_src"), d.get("eth_dst")) == (gw.ip_addresses[0], EXT_NEIGHBOUR_MAC)


def test_port_forwarding_on_the_active_gateway_host_only():
    standby = _engine(_view(hosts=("gw-1", HOST)))
    active = _engine(_view(hosts=(HOST, "gw-2")))
    fip = next(f for f in active.routers["router-1"].floating_ips if f.port_forwardings)
    assert not standby.desired.owner_flows(("floating-ip", fip.id))
    pf = fip.port_forwardings[0]
    out = Tracer(active.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": INTERNET,
        "ipv4_dst": fip.floating_ip_address, "tcp_src": 40000, "tcp_dst": 2222})
    (d,) = out.outputs
    assert (d.get("ipv4_dst"), d.get("tcp_dst")) == (pf.internal_ip_address, 22)
    other = Tracer(active.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": INTERNET,
        "ipv4_dst": fip.floating_ip_address, "tcp_src": 40000, "tcp_dst": 2223})
    assert not [o for o in other.outputs if o.get("ipv4_dst") == pf.internal_ip_address]


def test_an_unresolved_next_hop_is_punted_through_the_networks_meter():
    e = _engine(_view())
    change(e)  # nothing
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(ch, neighbours=()))
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]
    out = Tracer(e.flows()).run({
        "in_port": vif, "vlan_vid": 0, "eth_src": port.mac_address, "eth_dst": router_mac(0),
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": port.ips[0], "ipv4_dst": INTERNET,
        "tcp_src": 40000, "tcp_dst": 80})
    assert not out.outputs and len(out.controller) == 1
    assert out.meters == [P.EXT_PUNT_METER_BASE + e.local_id(EXT_NET)]
    assert out.controller[0]["reg0"] == int.from_bytes(bytes(map(int,
                                                            EXT_GATEWAY_IP.split("."))), "big")
    # resolved: the next hop's MAC, out of the uplink
    e.set_chassis(dataclasses.replace(ch, neighbours=(
        Neighbour(EXT_NET, EXT_GATEWAY_IP, EXT_NEIGHBOUR_MAC),)))
    assert e.flows() == _full(e)


# ------------------------------------------------------------- incremental
def test_a_floating_ip_change_recomputes_only_its_own_flows():
    e = _engine(_view(fips=1))
    r = e.routers["router-1"]
    f = r.floating_ips[0]
    for new in (
        dataclasses.replace(f, floating_ip_address=fip_address(200)),  # re-addressed
        dataclasses.replace(f, port_id="port-1-0", mac_address=e.ports["port-1-0"].mac_address),
        None,  # deleted
    ):
        fl = ((new,) if new else ()) + tuple(x for x in r.floating_ips if x.id != f.id)
        e.stats.reset()
        change(e, routers=(dataclasses.replace(r, floating_ips=fl),))
        assert _kinds(e) == {"floating-ip"}
        assert e.stats.owner_recomputes["floating-ip"] == 1
        assert e.flows() == _full(e)


@pytest.mark.parametrize("what", ["drop_gateway", "snat_off", "hosts", "interface",
                                  "ext_subnet", "router_gone", "scope"])
def test_gateway_changes_equal_a_full_compile(what):
    e = _engine(_view())
    r = e.routers["router-1"]
    if what == "drop_gateway":
        change(e, routers=(dataclasses.replace(r, gateway=None, floating_ips=()),))
    elif what == "snat_off":
        change(e, routers=(dataclasses.replace(
            r, gateway=dataclasses.replace(r.gateway, enable_snat=False)),))
    elif what == "hosts":
        change(e, routers=(dataclasses.replace(
            r, gateway=dataclasses.replace(r.gateway, hosts=(HOST,))),))
    elif what == "scope":  # net-1's subnet joins the gateway's address scope
        change(e, routers=(dataclasses.replace(
            r, gateway=dataclasses.replace(r.gateway, unnatted=("10.0.1.0/24",))),))
    elif what == "interface":
        change(e, routers=(make_router("router-1", (0,)).__class__(
            r.id, r.admin_state_up, r.interfaces[:1], r.routes, r.gateway, r.floating_ips),))
    elif what == "ext_subnet":
        s = e.subnets["ext-sub"]
        change(e, subnets=(dataclasses.replace(s, gateway_ip=None),))
    else:
        change(e, removed_routers=(r.id,))
    assert e.flows() == _full(e)
    if what in ("drop_gateway", "router_gone"):
        kinds = {cookies.kind_of(f.cookie) for f in e.flows()}
        assert not kinds & {cookies.KIND_GATEWAY, cookies.KIND_FLOATING_IP,
                            cookies.KIND_EXTERNAL}


def test_ipv6_floating_ips_are_not_translated():
    e = _engine(_view())
    r = e.routers["router-1"]
    f = dataclasses.replace(r.floating_ips[0], floating_ip_address="2001:db8::5")
    change(e, routers=(dataclasses.replace(r, floating_ips=(f,) + r.floating_ips[1:]),))
    assert not e.desired.owner_flows(("floating-ip", f.id))


# ------------------------------------------------------------- the contract
def _flow(table, actions, **match):
    return Flow(table, 100, Match(eth_type=0x0800, **match), tuple(actions),
                cookies.cookie_for(cookies.KIND_GATEWAY, "r"))


@pytest.mark.parametrize("bad", [
    _flow(P.L3_SNAT, [Ct(zone=5, nat=Nat("src", "172.24.4.10"), table=P.L3_RESOLVE)]),
    _flow(P.L3_SNAT, [Ct(commit=True, zone=5, nat=Nat("src", "2001:db8::1"),
                         table=P.L3_RESOLVE)]),
    _flow(P.L3_SNAT, [Ct(commit=True, zone=5, nat=Nat("src", "172.24.4.10", "172.24.4.10"),
                         table=P.L3_RESOLVE)]),
    _flow(P.L3_SNAT, [Ct(zone=5, nat=Nat(None, "172.24.4.10"), table=P.L3_RESOLVE)]),
    _flow(P.L3_SNAT, [Bundle(())]),
    _flow(P.EXT_DNAT, [Ct(commit=True, zone=5, nat=Nat("dst", "10.0.0.1"),
                          table=P.L3_ROUTE)]),  # must go through EXT_CT
    _flow(P.EXT_ADMIT, [Bundle((5,))]),
])
def test_the_contract_refuses_bad_nat_and_bundles(bad):
    with pytest.raises(P.PipelineError):
        P.validate(bad)


def test_every_external_flow_obeys_the_contract():
    for hosts in (("gw-1", "gw-2"), (HOST, "gw-2"), ("gw-1", HOST)):
        flows = _engine(_view(hosts=hosts)).flows()
        for f in flows:
            P.validate(f)
        assert any(cookies.kind_of(f.cookie) == cookies.KIND_FLOATING_IP for f in flows)
    assert Field  # the vocabulary is importable as used above


def _v6(view, hosts):
    """router-1's gateway gets an IPv6 address on an IPv6 external subnet;
    net-0 an IPv6 subnet with the router on it."""
    from quantum_ovs.model import RouterInterface, Subnet
    r = view.routers[0]
    gw = dataclasses.replace(r.gateway, ip_addresses=r.gateway.ip_addresses + ("2001:db8:e::10",))
    rif6 = RouterInterface(r.interfaces[0].port_id, "net-0", "sub6-0", "fd00::1", 64,
                           r.interfaces[0].mac_address)
    r = dataclasses.replace(r, gateway=gw, interfaces=r.interfaces + (rif6,))
    subs = (Subnet("ext-sub6", EXT_NET, "2001:db8:e::/64", 6, "2001:db8:e::1", enable_dhcp=False),
            Subnet("sub6-0", "net-0", "fd00::/64", 6, "fd00::1", enable_dhcp=False))
    ch = dataclasses.replace(view.chassis, neighbours=view.chassis.neighbours + (
        Neighbour(EXT_NET, "2001:db8:e::1", "52:54:00:00:00:06"),))
    from quantum_ovs.model import FixedIP
    ports = tuple(dataclasses.replace(p, fixed_ips=p.fixed_ips + (FixedIP("sub6-0", "fd00::7"),))
                  if p.id == "port-0-0" else p for p in view.ports)
    return view.replace(routers=(r,), subnets=view.subnets + subs, chassis=ch, ports=ports)


def test_ipv6_is_routed_untranslated_through_the_active_gateway_host():
    v6pkt = {"vlan_vid": 0, "eth_type": 0x86DD, "ip_proto": 17, "ipv6_src": "fd00::7",
             "ipv6_dst": "2001:db8:99::1", "udp_src": 5000, "udp_dst": 53,
             "eth_dst": router_mac(0)}
    compute = _engine(_v6(_view(fips=0, forwardings=False, open_tcp=False), ("gw-1", "gw-2")))
    port = compute.ports["port-0-0"]
    vif = dict(compute.chassis().vif_ofports)[port.id]
    out = Tracer(compute.flows()).run({"in_port": vif, "eth_src": port.mac_address, **v6pkt},
                                      ct_state=CT_EST | CT_TRK)
    assert [o.port for o in out.outputs] == [20]  # redirected to gw-1, untranslated
    assert out.outputs[0].get("ipv6_src") == "fd00::7"
    active = _engine(_v6(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False), ()))
    gw = active.routers["router-1"].gateway
    out = Tracer(active.flows()).run({"in_port": 21, "tunnel_id": gw.redirect_key,
                                      "eth_src": gw.mac_address, **v6pkt})
    (d,) = out.outputs
    assert (d.port, d.get("eth_dst"), d.get("ipv6_src")) == (PATCH_OFPORT, "52:54:00:00:00:06",
                                                             "fd00::7")
    ns = Tracer(active.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC, "eth_dst": "33:33:ff:00:00:10",
        "eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 135, "ipv6_src": "2001:db8:e::1",
        "ipv6_dst": "ff02::1:ff00:10", "ipv6_nd_target": "2001:db8:e::10",
        "ipv6_nd_sll": INET_MAC})
    assert ns.ports == [PATCH_OFPORT] and ns.outputs[0].get("icmpv6_type") == 136
    assert active.flows() == _full(active)


def test_a_port_forwarding_range_maps_port_to_port():
    from quantum_ovs.model import PortForwarding
    e = _engine(_view(hosts=(HOST, "gw-2")))
    r = e.routers["router-1"]
    fip = next(f for f in r.floating_ips if f.port_forwardings)
    target = e.ports["port-0-1"]
    pf = PortForwarding("pf-range", "udp", target.id, target.ips[0], 5000, 5002, 6000, 6002)
    new = dataclasses.replace(fip, port_forwardings=(pf,))
    e.stats.reset()
    change(e, routers=(dataclasses.replace(r, floating_ips=tuple(
        new if f.id == fip.id else f for f in r.floating_ips)),))
    assert _kinds(e) == {"floating-ip"}
    t = Tracer(e.flows())
    for ext_port in (5000, 5001, 5002):
        out = t.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
                     "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": 17,
                     "ipv4_src": INTERNET, "ipv4_dst": fip.floating_ip_address,
                     "udp_src": 40000, "udp_dst": ext_port})
        assert out.nats[-1][1]["udp_dst"] == (ext_port, ext_port + 1000)
        assert out.nats[-1][1]["ipv4_dst"][1] == target.ips[0]
    assert e.flows() == _full(e)


def test_a_port_forwarding_of_the_same_ports_costs_masked_flows():
    """A forwarding whose internal ports are its external ones is matched
    by masks (1-65535: sixteen flows, not 65,535 on the shared gateway
    host; found by review) and keeps the port; a single internal port
    too; a moved range is port by port."""
    from quantum_ovs.compiler.rules.gateway import forwarded_ports
    from quantum_ovs.model import PortForwarding
    e = _engine(_view(hosts=(HOST, "gw-2")))
    r = e.routers["router-1"]
    fip = next(f for f in r.floating_ips if f.port_forwardings)
    target = e.ports["port-0-1"]
    ip = target.ips[0]
    pfs = (PortForwarding("pf-all", "tcp", target.id, ip, 1, 65535, 1, 65535),
           PortForwarding("pf-one", "udp", target.id, ip, 53, 53, 5353, 5353),
           PortForwarding("pf-moved", "udp", target.id, ip, 6000, 6003, 7000, 7003))
    assert [sum(len(ports) for ports, _ in forwarded_ports(pf)) for pf in pfs] == [16, 1, 4]
    change(e, routers=(dataclasses.replace(r, floating_ips=tuple(
        dataclasses.replace(f, port_forwardings=pfs) if f.id == fip.id else f
        for f in r.floating_ips)),))
    dnat = [f for f in e.desired.owner_flows(("floating-ip", fip.id))
            if f.table == P.EXT_DNAT]
    # (+ 2: the address's own, echo answered and the rest dropped)
    assert len(dnat) == 16 + 1 + 4 + 2
    t = Tracer(e.flows())

    def to(proto, port):
        field = {6: "tcp_dst", 17: "udp_dst"}[proto]
        out = t.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
                     "eth_dst": fip.mac_address, "eth_type": 0x0800, "ip_proto": proto,
                     "ipv4_src": INTERNET, "ipv4_dst": fip.floating_ip_address,
                     field.replace("dst", "src"): 40000, field: port})
        dnat = [n for n in out.nats if "ipv4_dst" in n[1]]
        if not dnat:
            return None
        assert dnat[-1][1]["ipv4_dst"][1] == ip
        return dnat[-1][1].get(field, (port, port))[1]
    assert [to(6, p) for p in (1, 22, 8080, 65535)] == [1, 22, 8080, 65535]
    assert (to(17, 53), to(17, 54)) == (5353, None)
    assert [to(17, p) for p in (6000, 6003, 6004)] == [7000, 7003, None]
    assert e.flows() == _full(e)


def test_a_floating_ip_follows_its_port_to_this_host():
    e = _engine(_view())
    fip = _fip(e, "port-0-0")
    away = dataclasses.replace(e.ports["port-0-0"], host="host-r0")
    change(e, ports=(away,))
    assert not e.desired.owner_flows(("floating-ip", fip.id))
    e.stats.reset()
    change(e, ports=(dataclasses.replace(away, host=HOST),))
    assert len(e.desired.owner_flows(("floating-ip", fip.id))) == 8
    assert "router" not in _kinds(e) and "gateway" not in _kinds(e)
    assert e.flows() == _full(e)


def test_a_vm_reaches_its_own_floating_ip():
    e = _engine(_view())
    a = e.ports["port-0-0"]
    fa = _fip(e, a.id)
    vif = dict(e.chassis().vif_ofports)[a.id]
    out = Tracer(e.flows()).run({
        "in_port": vif, "vlan_vid": 0, "eth_src": a.mac_address, "eth_dst": router_mac(0),
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
        "ipv4_dst": fa.floating_ip_address, "tcp_src": 40000, "tcp_dst": 80})
    (d,) = out.outputs  # back out of the port it came in on
    assert d.port == vif
    assert (d.get("ipv4_src"), d.get("ipv4_dst")) == (fa.floating_ip_address, a.ips[0])


def test_nothing_may_set_the_zero_register():
    from quantum_ovs.compiler.flow import Move
    bad = Flow(P.L3_ROUTE, 100, Match(eth_type=0x0800), (Move("reg6", P.REG_ZERO, 16),),
               cookies.cookie_for(cookies.KIND_ROUTER, "r"))
    with pytest.raises(P.PipelineError):
        P.validate(bad)


def test_answers_on_a_vlan_external_network_go_back_tagged():
    from quantum_ovs.compiler.flow import OFPVID_PRESENT
    from quantum_ovs.model import Segment
    v = _view(hosts=(HOST, "gw-2"))
    v = v.replace(networks=tuple(
        dataclasses.replace(n, segment=Segment("vlan", "physnet1", 300)) if n.id == EXT_NET
        else n for n in v.networks))
    e = _engine(v)
    t = Tracer(e.flows())
    fip = _fip(e, "port-0-0")
    gw = e.routers["router-1"].gateway
    tag = 300 | OFPVID_PRESENT
    for target in (fip.floating_ip_address, gw.ip_addresses[0]):
        arp = t.run({
            "in_port": PATCH_OFPORT, "vlan_vid": tag, "eth_src": INET_MAC,
            "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
            "arp_spa": INTERNET, "arp_sha": INET_MAC, "arp_tpa": target})
        (d,) = arp.outputs
        assert (d.port, d.get("vlan_vid"), d.get("arp_op")) == (PATCH_OFPORT, tag, 2)
    echo = t.run({"in_port": PATCH_OFPORT, "vlan_vid": tag, "eth_src": INET_MAC,
                  "eth_dst": gw.mac_address, "eth_type": 0x0800, "ip_proto": 1,
                  "icmpv4_type": 8, "ipv4_src": INTERNET, "ipv4_dst": gw.ip_addresses[0]})
    (d,) = echo.outputs
    assert (d.port, d.get("vlan_vid"), d.get("icmpv4_type")) == (PATCH_OFPORT, tag, 0)
    assert (d.get("ipv4_dst"), d.get("eth_dst")) == (INTERNET, INET_MAC)


def test_the_answer_to_our_arp_is_not_metered_with_the_packets_waiting_for_it():
    """A flood to an unresolved next hop fills the resolve punt's meter;
    the ARP reply that resolves it passes a meter of its own (else the
    flood starves the answer, as bench/fip.py's 2 ms pings once did)."""
    e = _engine(_view(hosts=(HOST, "gw-2")))  # (the active gateway host asks)
    e.set_chassis(dataclasses.replace(e.chassis(), neighbours=()))
    reply = Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": e.routers["router-1"].gateway.mac_address, "eth_type": 0x0806,
        "arp_op": 2, "arp_spa": EXT_GATEWAY_IP, "arp_sha": INET_MAC,
        "arp_tpa": e.routers["router-1"].gateway.ip_addresses[0],
        "arp_tha": e.routers["router-1"].gateway.mac_address})
    assert len(reply.controller) == 1
    lid = e.local_id(EXT_NET)
    assert reply.meters == [P.EXT_GW_REPLY_METER_BASE + lid]
    assert P.EXT_GW_REPLY_METER_BASE + lid != P.EXT_PUNT_METER_BASE + lid


ATTACKER_IP, ATTACKER_MAC = "172.24.0.99", "fa:16:3e:66:66:66"


def _arp_reply_from_uplink(tracer, spa, sha, tpa, eth_dst="ff:ff:ff:ff:ff:ff", tha=None):
    return tracer.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": sha,
                       "eth_dst": eth_dst, "eth_type": 0x0806, "arp_op": 2,
                       "arp_spa": spa, "arp_sha": sha, "arp_tpa": tpa,
                       "arp_tha": tha or "00:00:00:00:00:00"})


def test_no_host_of_the_external_network_can_starve_the_gateways_answer():
    """An instance on the provider network (its port security lets it
    answer for its own address only) floods ARP replies, gratuitous or
    to our gateway address: they go through the network's reply meter,
    never the one the external gateway's answer passes (found by review:
    one meter for all, 50 pps, and the gateway's entry could not be
    refreshed while a flood lasted)."""
    # the agent asks from a floating IP on a compute host, from the
    # gateway address on the active gateway host
    for hosts, which in ((("gw-1", "gw-2"), "fip"), ((HOST, "gw-2"), "gateway")):
        e = _engine(_view(hosts=hosts))
        e.set_chassis(dataclasses.replace(e.chassis(), neighbours=()))
        ours = _fip(e, "port-0-0").floating_ip_address if which == "fip" else \
            e.routers["router-1"].gateway.ip_addresses[0]
        t = Tracer(e.flows())
        lid = e.local_id(EXT_NET)
        answer = _arp_reply_from_uplink(t, EXT_GATEWAY_IP, INET_MAC, ours)
        assert answer.meters == [P.EXT_GW_REPLY_METER_BASE + lid] and answer.controller
        # to our address or gratuitous: the other meter
        flood = _arp_reply_from_uplink(t, ATTACKER_IP, ATTACKER_MAC, ours)
        assert flood.meters == [P.EXT_REPLY_METER_BASE + lid] and flood.controller
        # gratuitous: for nobody here, not read at all
        flood = _arp_reply_from_uplink(t, ATTACKER_IP, ATTACKER_MAC, ATTACKER_IP)
        assert not flood.controller and not flood.meters


def test_replies_from_the_outside_reach_an_instance_on_the_external_network():
    """Only the replies to the addresses the agent asks from are the
    agent's: an instance plugged into the external network, here on the
    router's active gateway host, gets the ARP replies sent to it (they
    all went to the agent)."""
    v = _view(hosts=(HOST, "gw-2"))
    vm = dataclasses.replace(v.ports[0], id="ext-vm", network_id=EXT_NET,
                             mac_address="fa:16:3e:77:77:77",
                             fixed_ips=(FixedIP("ext-sub", "172.24.0.77"),))
    e = _engine(v.replace(ports=v.ports + (vm,)))
    ch = e.chassis()
    e.set_chassis(dataclasses.replace(ch, vif_ofports=tuple(ch.vif_ofports) + (("ext-vm", 150),)))
    t = Tracer(e.flows())
    out = _arp_reply_from_uplink(t, EXT_GATEWAY_IP, INET_MAC, "172.24.0.77",
                                 eth_dst=vm.mac_address, tha=vm.mac_address)
    assert out.ports == [150] and not out.controller, out.format()
    # ... while the answer to the router's gateway address is still the agent's
    gw = e.routers["router-1"].gateway
    out = _arp_reply_from_uplink(t, EXT_GATEWAY_IP, INET_MAC, gw.ip_addresses[0],
                                 eth_dst=gw.mac_address, tha=gw.mac_address)
    assert out.controller and not out.ports, out.format()


def test_an_na_answering_the_agent_reaches_it_unchanged_through_a_reply_meter():
    """The neighbour advertisement answering the agent's solicitation from
    the gateway's IPv6 address is punted as it came (hop limit 255, which
    the agent requires), the network gateway's through its own meter.
    Before, no NA was punted: the answer was routed to the gateway
    address, its hop limit decremented, and the agent refused it, so IPv6
    next hops on external networks were never learned."""
    v = _view(hosts=(HOST, "gw-2"))
    sub6 = Subnet("ext-sub6", EXT_NET, "2001:db8:ff::/64", 6, "2001:db8:ff::1",
                  enable_dhcp=False)
    routers = tuple(dataclasses.replace(r, gateway=dataclasses.replace(
        r.gateway, ip_addresses=r.gateway.ip_addresses + ("2001:db8:ff::10",)))
        if r.gateway else r for r in v.routers)
    e = _engine(v.replace(subnets=v.subnets + (sub6,), routers=routers))
    e.set_chassis(dataclasses.replace(e.chassis(), neighbours=()))
    gw = e.routers["router-1"].gateway
    lid = e.local_id(EXT_NET)
    t = Tracer(e.flows())

    def na(src, target, dst="2001:db8:ff::10", eth_dst=gw.mac_address):
        return t.run({"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
                      "eth_dst": eth_dst, "eth_type": 0x86DD, "ip_proto": 58,
                      "ipv6_src": src, "ipv6_dst": dst, "nw_ttl": 255,
                      "icmpv6_type": 136, "icmpv6_code": 0, "ipv6_nd_target": target,
                      "ipv6_nd_tll": INET_MAC})
    out = na("2001:db8:ff::1", "2001:db8:ff::1")
    assert len(out.controller) == 1 and out.meters == [P.EXT_GW_REPLY_METER_BASE + lid]
    assert out.controller[0].get("nw_ttl") == 255, out.format()
    out = na("2001:db8:ff::99", "2001:db8:ff::99")  # another host's
    assert len(out.controller) == 1 and out.meters == [P.EXT_REPLY_METER_BASE + lid]
    # to another address on the network (another host's): not the agent's
    out = na("2001:db8:ff::1", "2001:db8:ff::1", dst="2001:db8:ff::77",
             eth_dst="fa:16:3e:77:77:77")
    assert not out.controller, out.format()


def test_without_snat_tenant_addresses_are_routed_both_ways_by_the_active_gateway():
    """enable_snat off: out untranslated; in, the outside reaches a tenant
    address through the gateway MAC (only on the active gateway host),
    and the instance's security groups decide."""
    view = _view(hosts=(HOST, "gw-2"), fips=0, forwardings=False)
    r = view.routers[0]
    view = view.replace(routers=(dataclasses.replace(
        r, gateway=dataclasses.replace(r.gateway, enable_snat=False)),) + view.routers[1:])
    e = _engine(view)
    gw = e.routers["router-1"].gateway
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]
    out = Tracer(e.flows()).run({
        "in_port": vif, "eth_src": port.mac_address, "eth_dst": router_mac(0),
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": port.ips[0], "ipv4_dst": INTERNET,
        "tcp_src": 40000, "tcp_dst": 80}, ct_state=CT_EST | CT_TRK)
    (d,) = out.outputs
    assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, port.ips[0])  # untranslated
    inbound = {"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
               "eth_dst": gw.mac_address, "eth_type": 0x0800, "ip_proto": 6,
               "ipv4_src": INTERNET, "ipv4_dst": port.ips[0], "tcp_src": 80,
               "tcp_dst": 40000}
    back = Tracer(e.flows()).run(inbound, ct_state=CT_EST | CT_RPL | CT_TRK)
    assert back.ports == [vif] and back.outputs[0].get("ipv4_dst") == port.ips[0]
    assert e.flows() == _full(e)
    # with SNAT on, nothing but the gateway address is admitted that way
    snat = _engine(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False))
    assert not Tracer(snat.flows()).run(inbound, ct_state=CT_EST | CT_RPL | CT_TRK).ports


def _scoped(hosts, unnatted=("10.0.0.0/24",)):
    """router-1 with SNAT on, net-0's subnet in the external subnet's
    address scope, net-1's not."""
    view = _view(hosts=hosts, fips=0, forwardings=False)
    r = view.routers[0]
    return view.replace(routers=(dataclasses.replace(
        r, gateway=dataclasses.replace(r.gateway, unnatted=unnatted)),) + view.routers[1:])


def _out(e, pid, **extra):
    port = e.ports[pid]
    vif = dict(e.chassis().vif_ofports)[port.id]
    return Tracer(e.flows()).run({
        "in_port": vif, "eth_src": port.mac_address,
        "eth_dst": router_mac(0 if port.network_id == "net-0" else 1),
        "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": port.ips[0], "ipv4_dst": INTERNET,
        "tcp_src": 40000, "tcp_dst": 80}, ct_state=CT_EST | CT_TRK, **extra)


def _in(e, addr):
    return Tracer(e.flows()).run({
        "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC,
        "eth_dst": e.routers["router-1"].gateway.mac_address, "eth_type": 0x0800,
        "ip_proto": 6, "ipv4_src": INTERNET, "ipv4_dst": addr, "tcp_src": 80,
        "tcp_dst": 40000}, ct_state=CT_EST | CT_TRK)


def test_a_subnet_in_the_gateways_address_scope_is_routed_without_snat_both_ways():
    """Neutron's rule: no NAT within one address scope.  net-0 shares the
    external subnet's scope: out with its own address, reached from the
    outside through the gateway MAC; net-1 does not: SNATed, not
    reachable."""
    e = _engine(_scoped((HOST, "gw-2")))
    gw = e.routers["router-1"].gateway
    scoped, other = e.ports["port-0-0"], e.ports["port-1-0"]
    (d,) = _out(e, scoped.id).outputs
    assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, scoped.ips[0])
    (d,) = _out(e, other.id).outputs
    assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, gw.ip_addresses[0])
    vif = dict(e.chassis().vif_ofports)
    back = _in(e, scoped.ips[0])
    assert back.ports == [vif[scoped.id]] and back.outputs[0].get("ipv4_dst") == scoped.ips[0]
    assert not _in(e, other.ips[0]).ports
    assert e.flows() == _full(e)
    # without a shared scope, both are SNATed and neither is reachable
    plain = _engine(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False))
    assert _out(plain, scoped.id).outputs[0].get("ipv4_src") == gw.ip_addresses[0]
    assert not _in(plain, scoped.ips[0]).ports


def test_scoped_traffic_is_redirected_and_not_snated_by_the_gateway_host():
    """On a compute host the scoped subnet is redirected like the rest
    (the gateway MAC lives on the active gateway host); a gateway host
    receiving it redirected routes it untranslated, the rest SNATed."""
    e = _engine(_scoped(("gw-1", "gw-2")))
    (d,) = _out(e, "port-0-0", down_ports={20}).outputs
    assert d.port == 21 and d.get("tunnel_id") == e.routers["router-1"].gateway.redirect_key
    for hosts in ((HOST, "gw-2"), ("gw-1", HOST)):  # active, standby
        g = _engine(_scoped(hosts))
        gw = g.routers["router-1"].gateway
        for src, want in (("10.0.0.99", "10.0.0.99"), ("10.0.1.99", gw.ip_addresses[0])):
            out = Tracer(g.flows()).run({
                "in_port": 21 if hosts[0] == HOST else 20, "tunnel_id": gw.redirect_key,
                "eth_src": gw.mac_address, "eth_dst": router_mac(0), "eth_type": 0x0800,
                "ip_proto": 6, "ipv4_src": src, "ipv4_dst": INTERNET, "tcp_src": 40000,
                "tcp_dst": 80})
            (d,) = out.outputs
            assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, want)



def _rescoped(view, interface_scopes, **gateway):
    """router-1 with its interfaces on these networks (network id -> scope)
    in those address scopes, and these gateway attributes."""
    r = view.routers[0]
    ifcs = tuple(dataclasses.replace(i, address_scope_id=interface_scopes.get(i.network_id))
                 for i in r.interfaces)
    return view.replace(routers=(dataclasses.replace(
        r, interfaces=ifcs, gateway=dataclasses.replace(r.gateway, **gateway)),)
        + view.routers[1:])


def test_ipv6_of_another_address_scope_neither_leaves_nor_enters():
    """IPv6 goes out and comes in untranslated only for subnets in the
    gateway's IPv6 scope ("no scope" is one more), as Neutron."""
    v6pkt = {"vlan_vid": 0, "eth_type": 0x86DD, "ip_proto": 17, "ipv6_src": "fd00::7",
             "ipv6_dst": "2001:db8:99::1", "udp_src": 5000, "udp_dst": 53,
             "eth_dst": router_mac(0)}
    inbound = {"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC, "eth_type": 0x86DD,
               "ip_proto": 17, "ipv6_src": "2001:db8:99::1", "ipv6_dst": "fd00::7",
               "udp_src": 53, "udp_dst": 5000}
    for ifc_scope, gw_scope, passes in ((None, None, True), ("s", "s", True),
                                        ("s", None, False), (None, "s", False),
                                        ("s", "t", False)):
        compute = _engine(_rescoped(_v6(_view(fips=0, forwardings=False, open_tcp=False),
                                        ("gw-1", "gw-2")),
                                    {"net-0": ifc_scope}, address_scope_v6=gw_scope))
        port = compute.ports["port-0-0"]
        vif = dict(compute.chassis().vif_ofports)[port.id]
        out = Tracer(compute.flows()).run({"in_port": vif, "eth_src": port.mac_address,
                                           **v6pkt}, ct_state=CT_EST | CT_TRK)
        assert [o.port for o in out.outputs] == ([20] if passes else []), (ifc_scope, gw_scope)
        active = _engine(_rescoped(_v6(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False,
                                             open_tcp=False), ()),
                                   {"net-0": ifc_scope}, address_scope_v6=gw_scope))
        gw = active.routers["router-1"].gateway
        out = Tracer(active.flows()).run({"in_port": 21, "tunnel_id": gw.redirect_key,
                                          "eth_src": gw.mac_address, **v6pkt})
        assert [o.port for o in out.outputs] == ([PATCH_OFPORT] if passes else [])
        back = Tracer(active.flows()).run({**inbound, "eth_dst": gw.mac_address},
                                          ct_state=CT_EST | CT_RPL | CT_TRK)
        assert back.ports == ([vif] if passes else []), (ifc_scope, gw_scope)
        assert active.flows() == _full(active) and compute.flows() == _full(compute)
        # IPv4 with SNAT on is not concerned: it leaves translated
        (d,) = _out(active, port.id).outputs
        assert d.get("ipv4_src") == gw.ip_addresses[0]


def test_without_snat_ipv4_of_another_address_scope_neither_leaves_nor_enters():
    """enable_snat off: a subnet in the gateway's IPv4 scope (here none,
    as the external subnet's) is routed both ways as it is; one in another
    scope is not, either way; a floating IP still goes out as itself."""
    e = _engine(_rescoped(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False),
                          {"net-1": "s1"}, enable_snat=False))
    same, other = e.ports["port-0-0"], e.ports["port-1-0"]
    vif = dict(e.chassis().vif_ofports)
    (d,) = _out(e, same.id).outputs
    assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, same.ips[0])
    assert _out(e, other.id).outputs == []
    assert _in(e, same.ips[0]).ports == [vif[same.id]]
    assert _in(e, other.ips[0]).ports == []
    assert e.flows() == _full(e)
    # the same with floating IPs: port-1-0 leaves as its floating IP
    f = _engine(_rescoped(_view(hosts=(HOST, "gw-2"), forwardings=False),
                          {"net-1": "s1"}, enable_snat=False))
    (d,) = _out(f, other.id).outputs
    assert (d.port, d.get("ipv4_src")) == (PATCH_OFPORT, _fip(f, other.id).floating_ip_address)
    assert f.flows() == _full(f)


def test_without_snat_a_subnet_of_another_scope_still_reaches_the_routers_floating_ips():
    """Neutron translates a floating IP inside the router, whatever the
    scopes: port-0-0 (net-0, outside the gateway's scope, no floating IP)
    reaches port-1-0 through port-1-0's floating IP, on the active gateway
    host and from a compute host alike; the way follows the floating IPs
    as they come and go (incrementally, equal to a full compile)."""
    from quantum_ovs.model import Delta
    for hosts in ((HOST, "gw-2"), ("gw-1", "gw-2")):
        v = _rescoped(_view(hosts=hosts, forwardings=False), {"net-0": "s1"}, enable_snat=False)
        r = v.routers[0]
        keep = tuple(f for f in r.floating_ips if f.port_id == "port-1-0")
        e = _engine(v.replace(routers=(dataclasses.replace(r, floating_ips=keep),)))
        a = e.ports["port-0-0"]
        fip = keep[0].floating_ip_address
        vif = dict(e.chassis().vif_ofports)

        def to_fip():
            return Tracer(e.flows()).run({
                "in_port": vif[a.id], "vlan_vid": 0, "eth_src": a.mac_address,
                "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
                "ipv4_src": a.ips[0], "ipv4_dst": fip, "tcp_src": 40000, "tcp_dst": 80})

        got = to_fip()
        if hosts[0] == HOST:  # the hairpin, here
            assert got.ports == [vif["port-1-0"]]
        else:  # redirected to the active gateway host, as without scopes
            assert [d.port for d in got.outputs] == [20]
        assert _out(e, a.id).outputs == []  # anything else from net-0 is not let out
        r = e.routers["router-1"]
        e.apply(Delta(revision=e.revision + 1,
                      routers=(dataclasses.replace(r, floating_ips=()),)))
        assert to_fip().outputs == []
        assert e.flows() == _full(e)
        e.apply(Delta(revision=e.revision + 1, routers=(r,)))
        assert to_fip().outputs and e.flows() == _full(e)


def test_an_extra_route_through_a_subnet_of_another_scope_is_not_let_in_untranslated():
    from quantum_ovs.model import HostRoute
    for scope, passes in ((None, True), ("s", False)):
        v = _v6(_view(hosts=(HOST, "gw-2"), fips=0, forwardings=False, open_tcp=False), ())
        r = v.routers[0]
        v = v.replace(routers=(dataclasses.replace(
            r, routes=(HostRoute("fd00:77::/64", "fd00::7"),)),))
        e = _engine(_rescoped(v, {"net-0": scope}, address_scope_v6=None))
        gw = e.routers["router-1"].gateway
        vif = dict(e.chassis().vif_ofports)["port-0-0"]
        back = Tracer(e.flows()).run({
            "in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": INET_MAC, "eth_type": 0x86DD,
            "ip_proto": 17, "ipv6_src": "2001:db8:99::1", "ipv6_dst": "fd00:77::5",
            "udp_src": 53, "udp_dst": 5000, "eth_dst": gw.mac_address},
            ct_state=CT_EST | CT_RPL | CT_TRK)
        assert back.ports == ([vif] if passes else []), scope
        # and the route's change reaches the gateway's flows incrementally
        from quantum_ovs.model import Delta
        e.apply(Delta(revision=e.revision + 1, routers=(dataclasses.replace(
            e.routers["router-1"], routes=()),)))
        assert e.flows() == _full(e)


def test_without_snat_an_extra_route_follows_the_scope_of_its_next_hops_interface():
    """An extra route comes in untranslated exactly when the interface its
    next hop is on shares the gateway's scope: 10.9.0.0/16 via 10.0.0.12
    (port-0-2, net-0), 10.8.0.0/16 via 10.0.1.12 (port-1-2, net-1)."""
    from quantum_ovs.model import HostRoute
    v = _view(hosts=(HOST, "gw-2"), fips=0, forwardings=False)
    r = v.routers[0]
    v = v.replace(routers=(dataclasses.replace(r, routes=r.routes + (
        HostRoute("10.8.0.0/16", "10.0.1.12"),)),))
    for foreign in ("net-0", "net-1"):
        e = _engine(_rescoped(v, {foreign: "s1"}, enable_snat=False))

        def way(addr):
            return [(d.port, d.get("tunnel_id"), d.get("eth_dst")) for d in _in(e, addr).outputs]

        for dest, hop, net in (("10.9.0.5", "10.0.0.12", "net-0"),
                               ("10.8.0.5", "10.0.1.12", "net-1")):
            assert bool(way(hop)) == (net != foreign), (foreign, hop)
            assert way(dest) == way(hop), (foreign, dest)  # the next hop's way


def test_without_snat_a_port_forwardings_replies_from_another_scope_go_to_the_gateway():
    """A port forwarding is translated whatever the scopes, as a floating
    IP: on a compute host its replies (port-0-0:22, net-0 outside the
    gateway's scope) are redirected to the active gateway host, where the
    forwarding's connection un-DNATs them, instead of being dropped here;
    anything else from net-0 still is.  Where the replies come from
    follows the forwardings as they change (incrementally, equal to a full
    compile)."""
    from quantum_ovs.model import Delta
    v = _rescoped(_view(fips=0), {"net-0": "s1"}, enable_snat=False)
    e = _engine(v)
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]
    gw = e.routers["router-1"].gateway
    (pf,) = [pf for f in e.routers["router-1"].floating_ips for pf in f.port_forwardings]
    assert pf.internal_ip_address == port.ips[0]

    def reply(sport=22, proto=6):
        l4 = "tcp" if proto == 6 else "udp"
        return Tracer(e.flows()).run({
            "in_port": vif, "vlan_vid": 0, "eth_src": port.mac_address,
            "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": proto,
            "ipv4_src": port.ips[0], "ipv4_dst": INTERNET, f"{l4}_src": sport,
            f"{l4}_dst": 40000}, ct_state=CT_EST | CT_TRK)

    (d,) = reply().outputs
    assert (d.port, d.get("tunnel_id")) == (20, gw.redirect_key)
    assert reply(sport=23).outputs == [] and reply(proto=17).outputs == []
    assert e.flows() == _full(e)
    # the forwarding moves to port 23: so do its replies
    r = e.routers["router-1"]
    moved = dataclasses.replace(pf, internal_port_lo=23, internal_port_hi=23)
    fips = tuple(dataclasses.replace(f, port_forwardings=(moved,)) if f.port_forwardings
                 else f for f in r.floating_ips)
    e.apply(Delta(revision=e.revision + 1,
                  routers=(dataclasses.replace(r, floating_ips=fips),)))
    assert reply().outputs == [] and [d.port for d in reply(sport=23).outputs] == [20]
    assert e.flows() == _full(e)
    # in the gateway's scope (none, as the external subnet's), nothing of it
    # is concerned: the subnet is routed out as it is
    same = _engine(_rescoped(_view(fips=0), {}, enable_snat=False))
    assert not [f for f in same.flows() if f.priority == 165 and f.table == P.L3_SNAT]
    # on the active gateway host the replies are un-DNATed before, and what
    # is not a forwarding's reply is dropped as before
    active = _engine(_rescoped(_view(hosts=(HOST, "gw-2"), fips=0), {"net-0": "s1"},
                               enable_snat=False))
    assert not [f for f in active.flows() if f.priority == 165 and f.table == P.L3_SNAT]
    assert _out(active, port.id).outputs == []
    # a standby gateway host redirects its own instances' replies, but one
    # redirected to it (no connection of the forwarding here) is dropped,
    # never bounced on (with three gateway hosts, two of them would loop)
    for hosts in (("gw-1", HOST), ("gw-1", HOST, "gw-3")):
        standby = _engine(_rescoped(_view(hosts=hosts, fips=0), {"net-0": "s1"},
                                    enable_snat=False))
        sgw = standby.routers["router-1"].gateway
        svif = dict(standby.chassis().vif_ofports)[port.id]
        own = Tracer(standby.flows()).run({
            "in_port": svif, "vlan_vid": 0, "eth_src": port.mac_address,
            "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
            "ipv4_src": port.ips[0], "ipv4_dst": INTERNET, "tcp_src": 22, "tcp_dst": 40000},
            ct_state=CT_EST | CT_TRK)
        assert [d.port for d in own.outputs] == [20]
        bounced = Tracer(standby.flows()).run({
            "in_port": 20, "tunnel_id": sgw.redirect_key, "eth_src": sgw.mac_address,
            "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
            "ipv4_src": port.ips[0], "ipv4_dst": INTERNET, "tcp_src": 22, "tcp_dst": 40000},
            down_ports={20})
        assert bounced.outputs == [], hosts


def test_a_port_forwarding_ranges_replies_cost_masked_flows():
    """A range of internal ports is matched by masks, not port by port: a
    forwarding of every port costs one flow, 1-65535 sixteen."""
    from quantum_ovs.compiler.rules.gateway import forwarded_replies
    from quantum_ovs.model import PortForwarding
    v = _rescoped(_view(fips=0), {"net-0": "s1"}, enable_snat=False)
    r = v.routers[0]
    (fip,) = [f for f in r.floating_ips if f.port_forwardings]
    for lo, hi, n in ((22, 22, 1), (1000, 1999, 7), (1, 65535, 16), (0, 65535, 1)):
        pf = PortForwarding("pf-r", "udp", "port-0-0", "10.0.0.10", lo, hi, lo, hi)
        router = dataclasses.replace(r, floating_ips=(dataclasses.replace(
            fip, port_forwardings=(pf,)),))
        got = forwarded_replies(router, ("10.0.0.0/24",))
        assert len(got) == n, (lo, hi, got)
        covered = set()
        for m in got:
            ports = [f for f in m if f.name == "udp_src"]
            if not ports:
                covered |= set(range(0x10000))
                continue
            (f,) = ports
            mask = 0xFFFF if f.mask is None else f.mask
            covered |= {p for p in range(0x10000) if p & mask == f.value}
        assert covered == set(range(lo, hi + 1)), (lo, hi)
        assert forwarded_replies(router, ("10.0.1.0/24",)) == []


def test_a_hairpinned_ttl_expiry_names_its_source_port():
    """port-0-0 sends a TTL-2 datagram to port-1-0's floating IP, served
    here: the hairpin brings it back into the router with in_port 0, and
    its TTL punt goes through port-0-0's meter with reg5 = port-0-0 (the
    agent answers out of reg5: agent/responders/dispatch.py; review s23b
    F5)."""
    from quantum_ovs.compiler.synth import make_host_view, make_router
    from tests.fixtures.scenario import Scenario
    v = make_host_view(networks=2, ports_per_net=2)
    v = add_external(v.replace(routers=(make_router("router-1", (0, 1)),)), fips=None,
                     forwardings=False, hosts=(HOST,))
    s = Scenario(v)
    fip_b = next(f for f in v.routers[0].floating_ips if f.port_id == "port-1-0")
    a = s.port("port-0-0")
    t = s.send(a.id, eth_dst=router_mac(0), eth_type=0x0800, ipv4_src=a.ips[0],
               ipv4_dst=fip_b.floating_ip_address, ip_proto=17, udp_src=1, udp_dst=33434,
               nw_ttl=2)
    assert t.meters == [s.ofport(a.id)] and len(t.controller) == 1, t.format()
    assert t.controller[0]["in_port"] == 0 and t.controller[0]["reg5"] == s.ofport(a.id)
