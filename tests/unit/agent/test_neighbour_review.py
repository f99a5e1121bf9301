"""Session 23's review of the neighbour sources (6773663): the agent's
addresses to ask from on external networks vs the answers punted, traced
through the real compiled flows and the real resolver (helpers from
test_neighbour_answers.py).  Each test failed on 6773663:

1. the punting router's own address (the router by its zone, reg2, as
   the resolve punt carries the network's cookie);
2. a floating IP moved to another router indexed first lost its flows;
3. a floating IP with no IPv4 fixed address was a source, compiled nothing;
4. an instance's neighbour advertisement naming another MAC (port
   security now checks the target link-layer address);
5. a batch failing part-way left the resolver's context current;
6. a router here only as a gateway host stayed after the host left.
"""

from __future__ import annotations

import dataclasses


from agent.openflow.encode import PacketIn
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_EST, Field, Match
from quantum_ovs.compiler.synth import (
    EXT_GATEWAY_IP,
    EXT_NET,
    add_external,
    make_host_view,
    make_router,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import Delta, FixedIP, Port, Subnet
from tests.fixtures.scenario import HOST, PATCH_OFPORT, VXLAN_OFPORT, base_view
from tests.unit.agent.test_neighbours import _na as _na_frame
from tests.unit.agent.test_neighbour_answers import (
    _answer,
    _asked_from,
    _everything,
    _punt_to_agent,
    _resolver,
    _two_routers,
)


def _mismatches(e: Engine) -> list:
    """(ip, mac, asked?, punted?) for every address where "the agent may
    ask from it" and "its answers are punted here" disagree."""
    t = Tracer(e.flows())
    asked = {(s.ip, s.mac) for v in e.neighbour_sources().values() for s in v}
    out = []
    for ip, mac in sorted(_everything(e) | asked, key=str):
        target = "2001:db8:e::1" if ":" in ip else EXT_GATEWAY_IP
        punted = bool(_answer(t, target, ip, mac).controller)
        if punted != ((ip, mac) in asked):
            out.append((ip, mac, (ip, mac) in asked, punted))
    return out


# ---------------------------------------------------------------- 1
def test_redirected_ipv6_is_asked_from_the_punting_routers_own_gateway():
    """host-a is a *standby* gateway host of both router-a and router-b
    (gw-2 is the active one of both, alive).  A compute host that lost
    its BFD session to gw-2 redirects router-b's IPv6 here; it is routed
    (not translated: the source stays fd00::7) and punted for its next
    hop.  source_for is meant to take "the first of the punting router"
    (router-b's gateway), but the resolve punt carries the *external
    network's* cookie (rules/gateway.external_flows), never a router's, so
    ``ctx.routers.get(pin.cookie)`` is always None and the agent takes the
    first source -- router-a's gateway address and MAC.  Its neighbour
    solicitation then leaves this host from router-a's gateway MAC, which
    the healthy active gateway host gw-2 owns on the wire: the physical
    switches move router-a's MAC here, and router-a's inbound traffic
    (which this standby drops) is disrupted at every request and refresh,
    for a router that has nothing to do with the partial failure."""
    e = _two_routers(v6=True)
    v = e.view()
    routers = tuple(dataclasses.replace(r, gateway=dataclasses.replace(
        r.gateway, hosts=("gw-2", HOST))) for r in v.routers)
    e = Engine.from_view(v.replace(routers=routers))
    ra, rb = e.routers["router-a"], e.routers["router-b"]
    assert e._gateway_role(ra.gateway) == e._gateway_role(rb.gateway) == "standby"
    t = Tracer(e.flows())
    out = t.run({"in_port": VXLAN_OFPORT, "tun_ipv4_src": v.remote_hosts[0].tunnel_ip,
                 "tunnel_id": rb.gateway.redirect_key, "eth_src": rb.gateway.mac_address,
                 "eth_dst": "52:54:00:00:00:01", "eth_type": 0x86DD, "ip_proto": 17,
                 "ipv6_src": "fd00::7", "ipv6_dst": "2001:db8:99::1", "udp_src": 5000,
                 "udp_dst": 53}, ct_state=CT_EST)
    assert out.controller and out.controller[0]["ipv6_src"] == "fd00::7", out.format()
    r, sent, _ = _resolver(e)
    assert _punt_to_agent(r, out) and sent
    src_ip, src_mac, target = _asked_from(sent)
    assert target == "2001:db8:e::1"
    assert src_mac != ra.gateway.mac_address, (
        f"router-b's next hop asked from router-a's gateway ({src_ip}, {src_mac}), a MAC "
        f"the active gateway host of router-a owns on the wire")
    assert (src_ip, src_mac) == ("2001:db8:e::10", rb.gateway.mac_address)


# ---------------------------------------------------------------- 2
def _fip_moves_between_routers():
    """router-1 (net-0) and router-2 (net-1), both gateway hosts gw-1,
    gw-2: host-a is a compute host.  router-1 has a floating IP on
    port-0-0 (bound here); it is re-associated to port-1-0 (bound here
    too), behind router-2: the floating IP's router changes."""
    v = make_host_view(networks=2, ports_per_net=2)
    v = v.replace(routers=(make_router("router-1", (0,)), make_router("router-2", (1,))))
    v = add_external(v, fips=1, forwardings=False, hosts=("gw-1", "gw-2"))
    r1, r2 = v.routers
    (f,) = r1.floating_ips
    p10 = next(p for p in v.ports if p.id == "port-1-0")
    moved = dataclasses.replace(f, port_id=p10.id, mac_address=p10.mac_address)
    return v, dataclasses.replace(r1, floating_ips=()), \
        dataclasses.replace(r2, floating_ips=(moved,)), moved


def test_a_fip_moving_to_another_router_stays_served_whatever_the_delta_order():
    """The same change as one delta, the gaining router first (a delta's
    routers come in any order; Engine.update takes the view's order).
    _reindex_router indexes the floating IP under router-2, then, for
    router-1's upsert, pops ``fip_router[fid]`` (and port_fips) for every
    floating IP router-1 *had* -- the entry router-2 just made.  The
    floating IP's owner then computes nothing (fip_router has no router
    for it): no ARP answer, no DNAT/SNAT, and no punt of the answers to
    it, while Engine.neighbour_sources (which walks the routers) still
    names it, so the agent asks from an address whose answers are not
    punted.  A fresh Engine.from_view of the same view serves it.  (The
    index bug predates 6773663; the commit's invariant "sources ==
    punted answers ... engine incremental updates vs a fresh from_view"
    does not hold through it.)"""
    v, r1n, r2n, moved = _fip_moves_between_routers()
    e = Engine.from_view(v)
    assert _mismatches(e) == []
    e.apply(Delta(2, routers=(r2n, r1n)))
    fresh = Engine.from_view(e.view(), allocations=e.alloc.copy())
    assert _mismatches(fresh) == []
    assert e.flows() == fresh.flows(), (
        f"{len(fresh.flows() - e.flows())} flow(s) of the fresh engine missing after the "
        f"delta (fip_router: {e.fip_router.get(moved.id)!r})")
    assert _mismatches(e) == []


def test_a_fip_moving_to_another_router_by_a_full_view_update():
    """The same through Engine.update (the agent's path for a full view
    after the first), the view listing router-2 before router-1."""
    v, r1n, r2n, moved = _fip_moves_between_routers()
    e = Engine.from_view(v)
    e.update(v.replace(routers=(r2n, r1n), revision=v.revision + 1))
    assert _mismatches(e) == [], "asked from, not punted (ip, mac, asked, punted)"


# ---------------------------------------------------------------- 3
def test_a_fip_whose_port_has_no_ipv4_is_not_a_source():
    """A floating IP associated with a port bound here, with no
    fixed_ip_address (the model allows None: the port's first IPv4 is
    taken then) and a port with no IPv4 address (IPv6 only).
    Engine._fip_served returns (None, False) -- "served" -- so
    neighbour_sources names the floating IP, but floating_ip_flows
    compiles nothing for fixed_ip None without forwardings: the agent may
    ask from the floating IP and its answers are not punted (nor is the
    floating IP served at all).  The two sides do not decide under the
    same conditions."""
    v = add_external(base_view(), hosts=("gw-1", "gw-2"), forwardings=False, fips=1)
    (f,) = v.routers[0].floating_ips
    assert f.fixed_ip_address is None
    sub6 = Subnet("sub6-0", "net-0", "fd00::/64", 6, "fd00::1", enable_dhcp=False)
    ports = tuple(dataclasses.replace(p, fixed_ips=(FixedIP("sub6-0", "fd00::7"),))
                  if p.id == f.port_id else p for p in v.ports)
    e = Engine.from_view(v.replace(subnets=v.subnets + (sub6,), ports=ports))
    assert _mismatches(e) == [], "asked from, not punted (ip, mac, asked, punted)"


# ---------------------------------------------------------------- 4
def _na(eth_src, eth_dst, src, dst, target, tll) -> bytes:
    return _na_frame(target, eth_src, dst=dst, eth_dst=eth_dst, src=src, tll=tll)


def test_an_instance_cannot_make_the_agent_learn_a_mac_not_its_own_for_its_ipv6_address():
    """An instance with port security on an IPv6 external subnet
    (2001:db8:e::77, MAC fa:16:3e:aa:bb:cc) is a next hop the agent
    asks for (a tenant of router-b talks to it).  6773663 starts punting
    and learning neighbour advertisements; the MAC learned is the NA's
    target link-layer address option (parse_reply), which port security
    does not check (rules/port.py: NA allowed by nd_target only; for ARP
    arp_sha *is* checked).  The instance answers for its own address
    with a TLL of another MAC -- here router-b's gateway MAC --, its
    host's port security lets it out, host-a punts it and the agent
    learns 2001:db8:e::77 at a MAC that is not the instance's: routed
    traffic to it is sent to whatever MAC the instance chose (another
    instance, a router), which ARP cannot do."""
    inst_ip, inst_mac = "2001:db8:e::77", "fa:16:3e:aa:bb:cc"
    # the instance's host: a compute host with the instance plugged into
    # the external network
    v = add_external(base_view(), hosts=("gw-1", "gw-2"), forwardings=False, fips=0)
    sub6 = Subnet("ext-sub6", EXT_NET, "2001:db8:e::/64", 6, "2001:db8:e::1",
                  enable_dhcp=False)
    inst = Port("ext-vm", EXT_NET, inst_mac, fixed_ips=(FixedIP("ext-sub6", inst_ip),),
                security_groups=("sg-default",), host=HOST)
    ch = dataclasses.replace(v.chassis, vif_ofports=v.chassis.vif_ofports + (("ext-vm", 300),))
    v = v.replace(subnets=v.subnets + (sub6,), ports=v.ports + (inst,), chassis=ch)
    # host-a, router-b's active gateway host, asks from router-b's address
    e = _two_routers(v6=True)
    rb = e.routers["router-b"]
    gw6, gw_mac = "2001:db8:e::10", rb.gateway.mac_address
    victim = gw_mac
    na = {"eth_type": 0x86DD, "ip_proto": 58, "ipv6_src": inst_ip, "ipv6_dst": gw6,
          "nw_ttl": 255, "icmpv6_type": 136, "icmpv6_code": 0, "ipv6_nd_target": inst_ip,
          "ipv6_nd_tll": victim}
    sent_out = Tracer(Engine.from_view(v).flows()).run(
        {"in_port": 300, "vlan_vid": 0, "eth_src": inst_mac, "eth_dst": gw_mac, **na})
    passed_port_security = bool(sent_out.outputs)
    r, sent, _ = _resolver(e)
    assert r.ask(EXT_NET, inst_ip, gw6, gw_mac) and sent
    arrived = Tracer(e.flows()).run(
        {"in_port": PATCH_OFPORT, "vlan_vid": 0, "eth_src": inst_mac, "eth_dst": gw_mac, **na})
    assert arrived.controller, arrived.format()
    raw = _na(inst_mac, gw_mac, inst_ip, gw6, inst_ip, victim)
    r.packet_in(PacketIn(1, P.EXT_ADMIT, 0, PATCH_OFPORT,
                         Match(Field("in_port", PATCH_OFPORT),
                               Field("reg6", arrived.controller[0]["reg6"])), raw, len(raw)))
    learned = {n.ip_address: n.mac_address for n in r.neighbours()}
    # (either fix passes: port security refusing the NA, or the agent
    # not learning a MAC the sender could not send from)
    assert not passed_port_security or learned.get(inst_ip) in (None, inst_mac), (
        f"an NA from the instance (port security on; passed it: {passed_port_security}) "
        f"made the agent learn {inst_ip} at {learned.get(inst_ip)}, not its MAC {inst_mac}")


# ---------------------------------------------------------------- 5
def test_a_batch_that_fails_after_changing_the_model_leaves_the_context_stale(tmp_path):
    """agent/daemon.py sets ``_nb_stale`` only after the batch's loop
    (``if view_changed:``).  A delta whose application raises part-way
    (Engine.apply: removals first, then a network whose local_id another
    network has -> CompileError) has already changed the engine's model
    (port-0-0, whose floating IP is served here, removed and its owner
    marked dirty), but the flag is never set: _reconcile_loop logs and
    resyncs.  The next batch that flushes the engine -- here a VIF
    plugged, no view change, same gateway roles -- removes the floating
    IP's flows (its punt with them), and _neighbour_context sees "not
    stale, same roles": the resolver keeps asking from the floating IP,
    whose answers are no longer punted on this host."""
    import pytest

    from agent.daemon import Agent
    from agent.ovsdb.events import Vif
    from agent.settings import Settings
    from quantum_ovs import model as m
    from quantum_ovs.compiler.desired import CompileError
    from quantum_ovs.compiler.flow import FlowDiff

    v = add_external(base_view(), hosts=("gw-1", "gw-2"), forwardings=False)
    a = Agent(Settings(host=HOST, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(tmp_path / "state.json")))

    class _Switch:  # a connected switch that takes everything
        need_dump = False

        def install(self, desired, touched):
            return FlowDiff()

        def resync(self):
            pass
    a.reconciler = _Switch()
    a.reporter.report = lambda *args: None
    a.base_chassis = m.Chassis(tunnel_ofports=v.chassis.tunnel_ofports,
                               physnet_ofports=v.chassis.physnet_ofports)
    a.vifs = dict(v.chassis.vif_ofports)
    a._handle([("full", v)])
    fip = next(f for f in a.engine.routers["router-1"].floating_ips if f.port_id == "port-0-0")

    def asked():
        return {(s.ip, s.mac) for s in a.resolver.ctx.sources.get(EXT_NET, ())}
    assert (fip.floating_ip_address, fip.mac_address) in asked()
    assert _mismatches(a.engine) == []
    # a delta that fails part-way
    net0 = a.engine.networks["net-0"]
    clash = m.Network("net-clash", m.Segment("vxlan", segmentation_id=999),
                      local_id=net0.local_id)
    with pytest.raises(CompileError):
        a._handle([("delta", m.Delta(v.revision + 1, removed_ports=("port-0-0",),
                                     networks=(clash,)))])
    a._handle([("resync", None)])
    # a VM plugged: the engine flushes what the failed delta left dirty
    a._handle([("vif", ("plugged", Vif("tap-new", "port-new", 999)))])
    t = Tracer(a.engine.flows())
    stale = [(ip, mac) for ip, mac in sorted(asked())
             if not _answer(t, EXT_GATEWAY_IP, ip, mac).controller]
    assert stale == [], f"the resolver may ask from {stale}; their answers are not punted"


# ---------------------------------------------------------------- 6 (aside)
def test_a_router_present_only_as_a_gateway_host_leaves_when_the_host_is_no_longer_one():
    """(Pre-existing, found by the incremental-vs-fresh comparison, not
    neighbour-specific.)  A router is compiled on a host with a port on
    one of its networks *or* that is one of its gateway hosts
    (Engine._router_here).  host-a has no port on router-1's networks and
    stops being one of its gateway hosts: _mark_router_change marks the
    GATEWAY and floating IPs on a gateway change, not the ROUTER owner,
    so router-1's 25 router flows (its ARP/ND answers, routes, zone)
    stay on host-a after Engine.update, where a fresh from_view has
    none."""
    from quantum_ovs.compiler import cookies
    v = add_external(base_view(), hosts=(HOST, "gw-2"), forwardings=False, fips=0)
    v = v.replace(ports=tuple(p for p in v.ports if p.host != HOST))
    e = Engine.from_view(v)
    (r,) = v.routers
    ck = cookies.cookie_for(cookies.KIND_ROUTER, r.id)
    assert any(f.cookie == ck for f in e.flows())
    r2 = dataclasses.replace(r, gateway=dataclasses.replace(r.gateway, hosts=("gw-1", "gw-2")))
    v2 = v.replace(routers=(r2,), revision=v.revision + 1)
    e.update(v2)
    fresh = Engine.from_view(v2, allocations=e.alloc.copy())
    assert not any(f.cookie == ck for f in fresh.flows())
    left = [f for f in e.flows() if f.cookie == ck]
    assert left == [], f"{len(left)} flow(s) of router-1 left on a host it is no longer on"
