"""Review s27: the agent against a malformed or hostile host view.

A server bug, or a row written before a validation existed (the server's
own host_view._address says such rows exist), puts a bad value in what an
agent is sent.  The agent must go on serving everything else, never
install a flow wider than meant, and not stall.  Each test below feeds the
engine (Engine(isolate=True), the agent's) or the agent's own pieces
(Reconciler, SyncClient.decode_state) one bad item next to good ones."""

from __future__ import annotations

import dataclasses
import json

import pytest

from agent import sync_client
from agent.openflow import encode as E
from agent.reconciler import Reconciler
from quantum_ovs import wire
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_NEW, OFPVID_PRESENT
from quantum_ovs.compiler.synth import add_external, make_host_view, make_port
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, Delta, FixedIP, Rule, Segment
from tests.fixtures.scenario import BROADCAST, PATCH_OFPORT, base_view


def _engine(view) -> Engine:
    return Engine.from_view(view, isolate=True)  # as agent/daemon.py makes it


def _replace(items, index, **kw):
    out = list(items)
    out[index] = dataclasses.replace(out[index], **kw)
    return tuple(out)


# ------------------------------------------- segmentation ids out of range
def test_vlan_id_out_of_range_does_not_put_the_network_on_another_vlan():
    """A VLAN network whose segmentation_id is 4103 (> 4094; Neutron's
    type_vlan.validate_provider_segment refuses it, as this server's
    provider extension does) is compiled verbatim: push_vlan and
    set_field vlan_vid=4103|0x1000 = 0x1007, i.e. VID 7 on the wire (the
    switch takes a 13-bit vlan_vid with the present bit; 4103 has it
    already), and the classification admits frames tagged 7 into the
    network.  The network's frames go out onto VLAN 7 (another provider
    network's) and VLAN 7's frames come in: the agent should refuse the
    segment (hold the network), not wrap it."""
    view = make_host_view(networks=1, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1,
                          network_type="vlan")
    bad = 4096 + 7
    view = view.replace(networks=_replace(view.networks, 0,
                                          segment=Segment("vlan", "physnet1", bad)))
    e = _engine(view)
    tracer = Tracer(e.flows())
    src = next(p for p in view.ports if p.id == "port-0-0")
    arp = {"eth_type": 0x0806, "arp_op": 1, "arp_tha": "00:00:00:00:00:00"}
    out = tracer.run({"in_port": dict(view.chassis.vif_ofports)[src.id],
                      "eth_src": src.mac_address, "eth_dst": BROADCAST, "arp_spa": src.ips[0],
                      "arp_sha": src.mac_address, "arp_tpa": "10.0.0.99", **arp}, CT_NEW)
    onto = [d.get("vlan_vid") for d in out.outputs if d.port == PATCH_OFPORT]
    assert not [v for v in onto if v is not None and v & 0xFFF == 7], \
        f"frames of the network with VLAN {bad} leave tagged {onto} (VID 7 on the wire)"
    # and VLAN 7's traffic from the physical network is not let in
    dst = next(p for p in view.ports if p.id == "port-0-1")
    t = tracer.run({"in_port": PATCH_OFPORT, "vlan_vid": 7 | OFPVID_PRESENT,
                    "eth_src": "52:54:00:00:00:07", "eth_dst": BROADCAST,
                    "arp_spa": "10.0.0.77", "arp_sha": "52:54:00:00:00:07",
                    "arp_tpa": dst.ips[0], **arp}, CT_NEW)
    assert not t.outputs, "a frame tagged VLAN 7 is delivered into the network"


def test_vxlan_vni_out_of_range_does_not_alias_another_network():
    """A VXLAN network with segmentation_id 2**24 + 1001 (Neutron:
    is_valid_vxlan_vni, max 2**24-1) is compiled verbatim into
    set_field tunnel_id; the VXLAN header has 24 bits and Open vSwitch
    writes the low 24 (``vx_vni = htonl(tun_id << 8)``): the network's
    frames reach the other hosts as VNI 1001, net-1's.  (The same holds
    for a GRE key above 2**32-1 and a router's SNAT redirect_key.)"""
    view = make_host_view(networks=2, ports_per_net=2, remote_hosts=1, remote_ports_per_net=1)
    view = view.replace(networks=_replace(view.networks, 0,
                                          segment=Segment("vxlan", None, 2 ** 24 + 1001)))
    e = _engine(view)
    vni = {n.id: n.segment.segmentation_id for n in view.networks}
    assert vni["net-1"] == 1001
    sent = sorted({a.value for f in e.flows() for a in f.actions
                   if getattr(a, "name", None) == "tunnel_id"})
    assert all(0 <= v < 2 ** 24 for v in sent), \
        f"tunnel ids set for VXLAN: {sent}; 2**24+1001 goes out as VNI 1001 (net-1's)"


# ------------------------------ one unencodable value stalls the whole host
class EncodingChannel:
    """A switch channel that encodes every flow-mod before anything is
    applied, as agent/openflow/channel.Channel.apply does (_flow_mods,
    then _bundle: a flow the encoder refuses discards the whole bundle)."""

    def __init__(self):
        self.connected = True
        self.generation = 1
        self.switch = {}

    def dump_flows(self):
        return list(self.switch.values())

    def apply(self, d):
        for f in d.deletes:
            E.flow_mod_bytes(f, E.DELETE, 0)
        for f in (*d.modifies, *d.adds):
            E.flow_mod_bytes(f, E.ADD)
        for f in d.deletes:
            del self.switch[f.key]
        for f in (*d.modifies, *d.adds):
            self.switch[f.key] = f


def _bad_port(**kw):
    def bad(view):
        return view.replace(ports=_replace(view.ports, 0, **kw))
    return bad


def _bad_rule(**kw):
    def bad(view):
        g = next(g for g in view.security_groups if g.id == "sg-default")
        r = Rule("bad-rule", g.id, "ingress", "IPv4", **kw)
        return view.replace(security_groups=tuple(
            dataclasses.replace(x, rules=x.rules + (r,)) if x.id == g.id else x
            for x in view.security_groups))
    return bad


def _bad_member(address):
    def bad(view):
        return view.replace(security_groups=tuple(
            dataclasses.replace(x, member_ips=x.member_ips | {address})
            if x.id == "sg-default" else x for x in view.security_groups))
    return bad


def _bad_remote_host(ip):
    def bad(view):
        return view.replace(remote_hosts=_replace(view.remote_hosts, 0, tunnel_ip=ip))
    return bad


def _bad_forwarding(**kw):
    def bad(view):
        r = view.routers[0]
        fl = tuple(dataclasses.replace(f, port_forwardings=tuple(
            dataclasses.replace(pf, **kw) for pf in f.port_forwardings))
            for f in r.floating_ips)
        return view.replace(routers=(dataclasses.replace(r, floating_ips=fl),) + view.routers[1:])
    return bad


def _bad_fip(**kw):
    def bad(view):
        r = view.routers[0]
        fl = list(r.floating_ips)
        i = next(i for i, f in enumerate(fl) if f.port_id == "port-0-0")
        fl[i] = dataclasses.replace(fl[i], **kw)
        return view.replace(routers=(dataclasses.replace(r, floating_ips=tuple(fl)),)
                            + view.routers[1:])
    return bad


BAD_ITEMS = {
    "port MAC not lower-case": _bad_port(mac_address="FA:16:3E:00:00:00"),
    "fixed IP 10.0.0.300": _bad_port(fixed_ips=(FixedIP("sub-0", "10.0.0.300"),)),
    "address pair 'garbage'": _bad_port(allowed_address_pairs=(
        AddressPair("garbage", "fa:16:3e:00:00:99"),)),
    "rule protocol 300": _bad_rule(protocol=300),
    "rule port range 1000-70000": _bad_rule(protocol=6, port_range_min=1000,
                                            port_range_max=70000),
    "rule ICMP type 300": _bad_rule(protocol=1, port_range_min=300, port_range_max=0),
    "rule remote prefix 10.0.0.300": _bad_rule(remote_ip_prefix="10.0.0.300"),
    "group member 'garbage'": _bad_member("garbage"),
    "remote host tunnel IP 1.2.3.300": _bad_remote_host("1.2.3.300"),
    "port forwarding external port 70000": _bad_forwarding(external_port_lo=70000,
                                                           external_port_hi=70000),
    "floating IP fixed address 'garbage'": _bad_fip(fixed_ip_address="garbage"),
}


@pytest.mark.parametrize("what", sorted(BAD_ITEMS))
def test_one_bad_value_does_not_stall_every_flow_of_the_host(what):
    """The engine holds back an owner it cannot build, but takes a value
    the OpenFlow encoder refuses (a non-canonical address or MAC, a
    number too wide for its field) into its table.  The agent installs a
    change as one bundle encoded flow by flow (Channel._bundle discards
    it all on the encoder's error); _handle raises, the reconcile loop
    resyncs, and the next install meets the same flow: no change of any
    port on the host is installed again (new ports never come up).  The
    bad owner should be held instead, like one that fails to compute."""
    view = add_external(base_view(), hosts=("host-a",))
    view = BAD_ITEMS[what](view)
    e = _engine(view)
    ch = EncodingChannel()
    r = Reconciler({"applies": 0, "flow_mods": 0, "resyncs": 0})
    r.channel = ch
    r.install(e.desired, ())  # the first install: everything
    # the rest of the host is served: a port of the other network, plugged
    new = make_port(1, 9)
    d = e.apply(Delta(revision=1, ports=(new,)))
    ch2 = dict(e.chassis().vif_ofports)
    ch2[new.id] = 199
    d2 = e.set_chassis(dataclasses.replace(e.chassis(), vif_ofports=tuple(sorted(ch2.items()))))
    r.install(e.desired, {f.key for f in (*d.adds, *d.modifies, *d.deletes,
                                          *d2.adds, *d2.modifies, *d2.deletes)})
    assert any(x.name == "in_port" and x.value == 199 for f in ch.switch.values()
               for x in f.match), "the new port's flows never reach the switch"


# --------------------- a bad value in a group's rules is raised, not held
def _view_with_ssh_from_anywhere():
    view = make_host_view(networks=2, ports_per_net=2)
    g = view.security_groups[0]
    ssh = Rule("ssh-any", g.id, "ingress", "IPv4", 6, 22, 22, "0.0.0.0/0")
    return view, g, ssh, view.replace(security_groups=(
        dataclasses.replace(g, rules=g.rules + (ssh,)),))


def _ssh_flows(e):
    return [f for f in e.flows() if any(x.name == "tcp_dst" and x.value == 22 for x in f.match)]


def test_a_bad_remote_prefix_does_not_fail_the_whole_delta():
    """A rule whose remote_ip_prefix does not parse (``10.0.0.0/33``)
    raises ValueError out of Engine.apply (Engine._set_group ->
    _rules_changed -> _contributions -> acl.rule_matches -> addr_field,
    outside the per-owner isolation of _owner_flows): the whole delta is
    lost, the new port in it included, and the agent has already taken
    the delta's revision (its sync loop polls on from there)."""
    view, g, _, _ = _view_with_ssh_from_anywhere()
    e = _engine(view)
    bad = Rule("bad", g.id, "ingress", "IPv4", remote_ip_prefix="10.0.0.0/33")
    new = make_port(1, 9)
    e.apply(Delta(revision=2, ports=(new,),
                  security_groups=(dataclasses.replace(g, rules=g.rules + (bad,)),)))
    assert new.id in e.ports


def test_a_removed_rule_does_not_stay_in_force_after_a_malformed_group_update():
    """Worse, the failed apply leaves the engine half-changed: the group
    is stored with its new rules but the old rules' clause-1 flows stay
    (match_refs untouched).  A group update that drops an ssh-from-anywhere
    rule and adds a malformed one leaves ssh open; when the server then
    sends the group corrected, _contributions(old_rules) raises again on
    the stored bad rule, so the removal is never applied (a full view
    does not help either: the agent calls Engine.update, which takes the
    same path).  The agent's reconcile loop logs each exception and goes
    on with the engine as it is (daemon._reconcile_loop), as done here."""
    _, g, ssh, view = _view_with_ssh_from_anywhere()
    e = _engine(view)
    assert _ssh_flows(e)
    bad = Rule("bad", g.id, "ingress", "IPv4", remote_ip_prefix="10.0.0.0/33")
    errors = []
    malformed = dataclasses.replace(g, rules=g.rules + (bad,))  # ssh-any removed
    for delta in (Delta(revision=2, security_groups=(malformed,)),
                  Delta(revision=3, security_groups=(g,))):  # the server's correction
        try:
            e.apply(delta)
        except Exception as exc:  # noqa: BLE001 - what daemon._reconcile_loop does
            errors.append(repr(exc))
    assert not _ssh_flows(e), \
        f"ssh from anywhere still admitted after its rule was removed (apply raised {errors})"


# ------------------------------------------- empty remote: any source
@pytest.mark.parametrize("field", ["remote_group_id", "remote_address_group_id"])
def test_an_empty_remote_does_not_admit_every_source(field):
    """acl.conj_key reads ``rule.remote_group_id or None``: a rule whose
    remote group is the empty string (a row written wrong; the API takes
    a UUID or null) becomes a plain rule, admitting every source, where a
    rule naming a group the view does not have admits none.  A remote
    that is present but unusable should fail closed."""
    view = make_host_view(networks=1, ports_per_net=2)
    g = view.security_groups[0]
    src = next(p for p in view.ports if p.id == "port-0-0")
    dst = next(p for p in view.ports if p.id == "port-0-1")
    rule = Rule("ssh-from-group", g.id, "ingress", "IPv4", 6, 22, 22, **{field: ""})
    # src is not a member of the group: only an "any source" rule admits it
    view = view.replace(security_groups=(dataclasses.replace(
        g, rules=g.rules + (rule,), member_ips=frozenset({dst.ips[0]})),))
    t = Tracer(_engine(view).flows()).run({
        "in_port": dict(view.chassis.vif_ofports)[src.id], "eth_src": src.mac_address,
        "eth_dst": dst.mac_address, "eth_type": 0x0800, "ipv4_src": src.ips[0],
        "ipv4_dst": dst.ips[0], "ip_proto": 6, "tcp_src": 4000, "tcp_dst": 22}, CT_NEW)
    assert dict(view.chassis.vif_ofports)[dst.id] not in t.ports, \
        f"a rule with {field}='' admits a non-member source to port 22"


# ------------------------------- neighbour context outside the isolation
def test_a_router_with_a_bad_gateway_address_does_not_break_the_neighbour_context():
    """Engine.neighbour_sources() (called by daemon._neighbour_context at
    the end of every batch that changed the view) runs Engine._ext, which
    parses the gateway address with ipaddress.IPv4Address outside the
    per-owner isolation: one router gateway address that does not parse
    raises there, _handle fails after the install, the loop dumps and
    resyncs, and the resolver's context is left stale for every external
    network (the _nb_stale flag was cleared before the raise)."""
    view = add_external(base_view(), hosts=("host-a",))
    r = view.routers[0]
    view = view.replace(routers=(dataclasses.replace(r, gateway=dataclasses.replace(
        r.gateway, ip_addresses=("172.24.0.300",))),))
    e = _engine(view)
    e.neighbour_sources()


# ------------------------------- one malformed item: nothing decodes
def test_one_malformed_port_does_not_make_the_whole_view_undecodable():
    """SyncClient.decode_state builds the whole view at once
    (wire.view_from_dict): a port without its mac_address (or a rule with
    a key the agent does not know, a port forwarding of another arity)
    raises, SyncClient.decoded turns it into ServerUnavailable and the
    sync loop polls the same revision again, forever: while the row is
    there the agent applies no change at all (at start-up: no flows).
    The other items should decode and the bad one be left out."""
    view = make_host_view(networks=2, ports_per_net=2)
    d = wire.view_to_dict(view)
    del d["ports"][0]["mac_address"]
    raw = json.dumps({"full": True, "view": d, "revision": 5}).encode()
    kind, got, rev = sync_client.SyncClient.decode_state(raw)
    assert {p.id for p in got.ports} >= {p.id for p in view.ports[1:]}
