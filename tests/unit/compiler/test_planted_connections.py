"""A port cannot plant a connection that another port's egress check then
takes for its own: a reply (+est+rpl) passes a stateful port's egress only
for a connection whose first packet (or a later one) that port's ingress
accepted for one of its MACs (ct_label; rules/static.py).  Else a port
sends its own packet to a stateful port's address, but to its own MAC, to
broadcast or to a third port's MAC; whichever port's rules let it in
committed it in the network's zone, and the stateful port's later packets
(which its egress refuses) passed as replies (review P1, session 22, for
stateless peers; review s23b F1 and F2 for stateful peers, ports with
wide address pairs and ports without port security).

The tests keep a small conntrack model across packets (the tracer's
callable ct_state, with each trace's commits and the bits they write
applied), so each shows the whole sequence: the plant, then the stateful
port's packet."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler.flow import CT_EST, CT_NEW, CT_REL, CT_RPL
from quantum_ovs.compiler.synth import default_group, make_host_view, make_router, router_mac
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, FixedIP, Rule, SecurityGroup
from tests.fixtures.scenario import BROADCAST, Scenario, change

_L4 = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}


class Conntrack:
    """One host's connection table: (zone, original 5-tuple) -> its
    {"ct_mark": .., "ct_label": ..}, written by the commits' nested
    actions (Trace.writes, Trace.marks) as the switch writes them."""

    def __init__(self):
        self.conns: dict = {}

    @staticmethod
    def _tuple(p):
        sp, dp = _L4.get(p.get("ip_proto"), (None, None))
        return (p.get("ip_proto"), p.get("ipv4_src") or p.get("ipv6_src"), p.get(sp),
                p.get("ipv4_dst") or p.get("ipv6_dst"), p.get(dp))

    def _find(self, zone, p):
        t = self._tuple(p)
        if (zone, t) in self.conns:
            return (zone, t), CT_EST
        proto, s, sp, d, dp = t
        if (zone, (proto, d, dp, s, sp)) in self.conns:
            return (zone, (proto, d, dp, s, sp)), CT_EST | CT_RPL
        return None, CT_NEW

    def lookup(self, zone, p):
        key, state = self._find(zone, p)
        if key is None:
            return state
        c = self.conns[key]
        return state, c["ct_mark"], c["ct_label"]

    def apply(self, trace):
        for zone, p in trace.commits:
            if self._find(zone, p)[0] is None:
                self.conns[(zone, self._tuple(p))] = {"ct_mark": 0, "ct_label": 0}
        for zone, name, value, mask, p in trace.writes:
            c = self.conns[self._find(zone, p)[0]]
            c[name] = (c[name] & ~mask) | value
        for zone, mark, p in trace.marks:
            self.conns[self._find(zone, p)[0]]["ct_mark"] = mark
        return trace


def _run(s, ct, src, dst, **kw):
    return ct.apply(s.udp(src, dst, ct_state=ct.lookup, **kw))


def _client_peer_third(pair=False) -> Scenario:
    """port-0-0: the client, stateful, whose egress allows TCP 22 only and
    which admits nothing in; port-0-1 and port-0-2: stateless ports (a
    group letting everything in and out, which any project may create).
    ``pair``: port-0-1 has an allowed address pair with a MAC of its own
    (10.0.0.200 at fa:16:3e:99:00:01, as VRRP's virtual MAC)."""
    view = make_host_view(networks=1, ports_per_net=3, groups=[], remote_hosts=0,
                          remote_ports_per_net=0)
    c, peer, third = view.ports[:3]
    sgc = SecurityGroup("sg-c", (Rule("c-eg", "sg-c", "egress", "IPv4", 6, 22, 22),),
                        frozenset({c.ips[0]}))
    sgs = SecurityGroup("sg-s", (Rule("s-in", "sg-s", "ingress", "IPv4"),
                                 Rule("s-eg", "sg-s", "egress", "IPv4")),
                        frozenset({peer.ips[0], third.ips[0]}), stateful=False)
    pairs = (AddressPair("10.0.0.200", "fa:16:3e:99:00:01"),) if pair else ()
    ports = (dataclasses.replace(c, security_groups=("sg-c",)),
             dataclasses.replace(peer, security_groups=("sg-s",), allowed_address_pairs=pairs),
             dataclasses.replace(third, security_groups=("sg-s",))) + view.ports[3:]
    return Scenario(view.replace(ports=ports, security_groups=(sgc, sgs)))


@pytest.mark.parametrize("how", ["own-mac", "broadcast", "third-port"])
def test_a_stateless_peer_cannot_plant_a_connection_that_opens_the_clients_egress(how):
    """The peer sends peer:9999 -> client:40000, but to its own MAC, to
    broadcast or to another stateless port's MAC: that port's ingress
    (the peer's own, or the third's) let it in and committed it, so the
    client's datagrams 40000 -> peer:9999, which its egress (TCP 22 only)
    refuses, passed as replies."""
    s = _client_peer_third()
    c, peer, third = (s.port(f"port-0-{i}") for i in range(3))
    ct = Conntrack()
    assert s.ofport(peer.id) not in _run(s, ct, c.id, peer.id, sport=40000, dport=9999).ports
    eth_dst = {"own-mac": peer.mac_address, "broadcast": BROADCAST,
               "third-port": third.mac_address}[how]
    _run(s, ct, peer.id, c.id, sport=9999, dport=40000, eth_dst=eth_dst)
    t = _run(s, ct, c.id, peer.id, sport=40000, dport=9999)
    assert s.ofport(peer.id) not in t.ports, t.format()


def test_what_is_meant_for_a_stateless_port_is_still_committed_for_its_stateful_sender():
    """The commit's purpose stays: the client reaches the peer's own
    address (its egress allows TCP 22), the peer's ingress commits it,
    and the peer's answer passes the client's ingress (which admits
    nothing new) as a reply -- also through an address pair's MAC, which
    comes flooded."""
    for pair in (False, True):
        s = _client_peer_third(pair)
        c, peer = s.port("port-0-0"), s.port("port-0-1")
        ct = Conntrack()
        dst = {"ipv4_dst": "10.0.0.200", "eth_dst": "fa:16:3e:99:00:01"} if pair else {}
        t = ct.apply(s.tcp(c.id, peer.id, dport=22, ct_state=ct.lookup, **dst))
        assert s.ofport(peer.id) in t.ports and t.commits, t.format()
        back = {"ipv4_src": "10.0.0.200", "eth_src": "fa:16:3e:99:00:01"} if pair else {}
        t = ct.apply(s.tcp(peer.id, c.id, sport=22, dport=40000, ct_state=ct.lookup, **back))
        assert s.ofport(c.id) in t.ports, t.format()
        # (and something new from the peer still does not get in)
        t = ct.apply(s.tcp(peer.id, c.id, sport=23, dport=40000, ct_state=ct.lookup, **back))
        assert s.ofport(c.id) not in t.ports


@pytest.mark.parametrize("what", ["fixed-ip", "pair-ip", "mac"])
def test_a_stateless_ports_new_addresses_are_its_own_incrementally(what):
    """The flags of what is meant for a stateless port follow its
    addresses through a delta as a fresh compile has them (review s23b F3:
    the port's ACL owner was not recomputed when only its addresses
    changed: the old address kept its flag flows, the new one had none),
    and a stateful client's connection to the new address gets its
    replies."""
    s = _client_peer_third()
    e = Engine.from_view(s.view)
    peer = s.port("port-0-1")
    kw = {"fixed-ip": {"fixed_ips": (FixedIP("sub-0", "10.0.0.50"),)},
          "pair-ip": {"allowed_address_pairs": (AddressPair("10.0.0.200", ""),)},
          "mac": {"mac_address": "fa:16:3e:77:77:77"}}[what]
    new = dataclasses.replace(peer, **kw)
    change(e, ports=(new,))
    view = s.view.replace(ports=tuple(new if p.id == new.id else p for p in s.view.ports))
    assert e.flows() == Engine.from_view(view).flows()
    if what == "fixed-ip":
        s2 = Scenario(view)
        s2.engine, s2.tracer = e, Tracer(e.flows())  # the incrementally updated flows
        ct = Conntrack()
        t = ct.apply(s2.tcp("port-0-0", "port-0-1", dport=22, ct_state=ct.lookup))
        assert s2.ofport("port-0-1") in t.ports and t.commits, t.format()
        t = ct.apply(s2.tcp("port-0-1", "port-0-0", sport=22, dport=40000, ct_state=ct.lookup))
        assert s2.ofport("port-0-0") in t.ports, t.format()


# ---------------------------------------------- stateful peers (review s23b F1, F2)
OPEN = (Rule("o-in", "sg-o", "ingress", "IPv4"), Rule("o-eg", "sg-o", "egress", "IPv4"))


def _view(peer_stateful=False, peer=None, third=None, remote_ports=0):
    """port-0-0: the client (stateful; egress TCP 22 only; admits nothing
    in); port-0-1 (peer) and port-0-2 (third) in a group letting all IPv4
    in and out, stateful or not.  ``peer`` / ``third``: replace() kwargs;
    ``remote_ports``: ports of the network on another host."""
    view = make_host_view(networks=1, ports_per_net=3, groups=[],
                          remote_hosts=1 if remote_ports else 0,
                          remote_ports_per_net=remote_ports)
    c, p, t = view.ports[:3]
    sgc = SecurityGroup("sg-c", (Rule("c-eg", "sg-c", "egress", "IPv4", 6, 22, 22),),
                        frozenset({c.ips[0]}))
    sgo = SecurityGroup("sg-o", OPEN, frozenset({p.ips[0], t.ips[0]}), stateful=peer_stateful)
    ports = (dataclasses.replace(c, security_groups=("sg-c",)),
             dataclasses.replace(p, security_groups=("sg-o",), **(peer or {})),
             dataclasses.replace(t, security_groups=("sg-o",), **(third or {})))
    return view.replace(ports=ports + view.ports[3:], security_groups=(sgc, sgo))


def _plant_then_client_sends(s, eth_dst):
    """The peer's datagram peer:9999 -> client:40000 sent to ``eth_dst``,
    then the client's 40000 -> peer:9999 (its egress: TCP 22 only)."""
    c, peer = s.port("port-0-0"), s.port("port-0-1")
    ct = Conntrack()
    assert s.ofport(peer.id) not in _run(s, ct, c.id, peer.id, sport=40000, dport=9999).ports
    t = _run(s, ct, peer.id, c.id, sport=9999, dport=40000, eth_dst=eth_dst)
    assert s.ofport(c.id) not in t.ports  # the client admits nothing: it never saw it
    return _run(s, ct, c.id, peer.id, sport=40000, dport=9999)


def _mac(s, how):
    return {"own-mac": s.port("port-0-1").mac_address, "broadcast": BROADCAST,
            "third-port": s.port("port-0-2").mac_address}[how]


@pytest.mark.parametrize("how", ["own-mac", "broadcast", "third-port"])
def test_a_stateful_peer_cannot_plant_through_a_stateful_ingress_commit(how):
    """Review s23b F1: a stateful ingress committed whatever it accepted,
    whatever the IP destination: the peer's own copy (its own MAC, or its
    own flooded copy of a broadcast) or a third stateful port's copy
    committed peer:9999 -> client:40000, and the client's refused
    datagrams passed as replies.  The connection is now the accepting
    port's MAC's (or nobody's, a flooded copy): not the client's."""
    s = Scenario(_view(peer_stateful=True))
    t = _plant_then_client_sends(s, _mac(s, how))
    assert s.ofport("port-0-1") not in t.ports, t.format()


@pytest.mark.parametrize("how", ["own-mac", "broadcast"])
def test_neutrons_default_group_is_not_enough_to_plant(how):
    """No configuration at all: the peer is in its project's default group
    (ingress from the group's members, the peer itself among them), so its
    own copy is accepted and committed -- as its own, not the client's."""
    view = _view(peer_stateful=True)
    peer = next(p for p in view.ports if p.id == "port-0-1")
    ports = tuple(dataclasses.replace(p, security_groups=("sg-default",))
                  if p.id == peer.id else p for p in view.ports)
    view = view.replace(ports=ports, security_groups=view.security_groups[:1] + (
        default_group("sg-default", members=peer.ips),))
    s = Scenario(view)
    t = _plant_then_client_sends(s, _mac(s, how))
    assert s.ofport("port-0-1") not in t.ports, t.format()


@pytest.mark.parametrize("third", [
    {"allowed_address_pairs": (AddressPair("0.0.0.0/0", ""),)},
    {"allowed_address_pairs": (AddressPair("10.0.0.0/24", ""),)},
    {"port_security_enabled": False},
], ids=["pair-0/0", "pair-subnet", "no-port-security"])
def test_a_broadcast_copy_into_a_wide_pair_or_an_open_port_plants_nothing(third):
    """Review s23b F2: a stateless third port whose address pair covers
    the client's address (a router VM's 0.0.0.0/0), or a port without port
    security, took a flooded copy of a broadcast and committed it."""
    s = Scenario(_view(third=third))
    t = _plant_then_client_sends(s, BROADCAST)
    assert s.ofport("port-0-1") not in t.ports, t.format()


@pytest.mark.parametrize("pair", ["10.0.0.10", "10.0.0.0/24"])
def test_a_peer_whose_pair_covers_the_client_plants_nothing_through_its_own_copy(pair):
    """Review s23b F2b: a stateless peer given an address pair covering the
    client's address committed its own copy (sent to its own MAC)."""
    s = Scenario(_view(peer={"allowed_address_pairs": (AddressPair(pair, ""),)}))
    t = _plant_then_client_sends(s, s.port("port-0-1").mac_address)
    assert s.ofport("port-0-1") not in t.ports, t.format()


def test_nothing_is_planted_through_a_remote_ports_mac():
    """The peer's datagram to the client's address, sent to a port of
    another host: leaving the host, it is committed (REMOTE_OUT) -- as
    nobody's, so the client's refused datagrams still do not pass."""
    s = Scenario(_view(peer_stateful=True, remote_ports=1))
    remote = next(p for p in s.view.ports if p.host != s.view.host)
    c, peer = s.port("port-0-0"), s.port("port-0-1")
    ct = Conntrack()
    t = _run(s, ct, peer.id, c.id, sport=9999, dport=40000, eth_dst=remote.mac_address)
    assert t.commits and s.ofport(c.id) not in t.ports, t.format()
    t = _run(s, ct, c.id, peer.id, sport=40000, dport=9999)
    assert s.ofport(peer.id) not in t.ports, t.format()


# ------------------------------------------------- what must still pass
def _server_view(pair_mac=None, shared=False):
    """port-0-0: a client (stateful, all egress); port-0-1: a server
    (stateful, TCP 22 in, nothing out but replies); ``pair_mac``: the
    server's pair 10.0.0.200 at that MAC (``shared``: port-0-2 holds the
    same pair, as VRRP's two instances do, and the same group)."""
    view = make_host_view(networks=1, ports_per_net=3, groups=[], remote_hosts=0,
                          remote_ports_per_net=0)
    c, srv, other = view.ports[:3]
    sgc = SecurityGroup("sg-c", (Rule("c-eg", "sg-c", "egress", "IPv4"),), frozenset(c.ips))
    sgs = SecurityGroup("sg-s", (Rule("s-in", "sg-s", "ingress", "IPv4", 6, 22, 22),),
                        frozenset(srv.ips + other.ips))
    pairs = (AddressPair("10.0.0.200", pair_mac),) if pair_mac else ()
    ports = (dataclasses.replace(c, security_groups=("sg-c",)),
             dataclasses.replace(srv, security_groups=("sg-s",), allowed_address_pairs=pairs),
             dataclasses.replace(other, security_groups=("sg-s",),
                                 allowed_address_pairs=pairs if shared else ()))
    return Scenario(view.replace(ports=ports + view.ports[3:], security_groups=(sgc, sgs)))


@pytest.mark.parametrize("case", ["own", "pair", "shared-pair"])
def test_a_stateful_servers_replies_still_pass(case):
    """The client connects to the server (its own address and MAC, or an
    address pair's with a MAC of its own, which comes flooded: the copy
    into the pair's port is that port's); the server's replies pass its
    egress, which lets nothing new out.  Two ports holding the same pair
    MAC (VRRP): whichever answers, its replies pass."""
    mac = "fa:16:3e:99:00:01"
    s = _server_view(None if case == "own" else mac, shared=case == "shared-pair")
    c, srv, other = (s.port(f"port-0-{i}") for i in range(3))
    to = {} if case == "own" else {"ipv4_dst": "10.0.0.200", "eth_dst": mac}
    back = {} if case == "own" else {"ipv4_src": "10.0.0.200", "eth_src": mac}
    for answering in ((srv, other) if case == "shared-pair" else (srv,)):
        ct = Conntrack()
        t = ct.apply(s.tcp(c.id, srv.id, dport=22, ct_state=ct.lookup, **to))
        assert s.ofport(answering.id) in t.ports and t.writes, t.format()
        t = ct.apply(s.tcp(answering.id, c.id, sport=22, dport=40000, ct_state=ct.lookup,
                           **back))
        assert s.ofport(c.id) in t.ports, t.format()
        # (and it is the connection that passes, not the port: new is refused)
        t = ct.apply(s.tcp(answering.id, c.id, sport=22, dport=40001, ct_state=ct.lookup,
                           **back))
        assert s.ofport(c.id) not in t.ports, t.format()


def test_a_connection_from_before_the_upgrade_keeps_its_replies():
    """A connection committed before ct_label and the unowned bit were
    written (both 0) is nobody's in particular: its replies pass, as they
    did (an upgrade does not cut established connections)."""
    s = _server_view()
    t = s.tcp("port-0-1", "port-0-0", sport=22, dport=40000, ct_state=CT_EST | CT_RPL)
    assert s.ofport("port-0-0") in t.ports, t.format()
    for mark, label in ((2, 0), (0, int(s.port("port-0-2").mac_address.replace(":", ""), 16))):
        t = s.tcp("port-0-1", "port-0-0", sport=22, dport=40000,
                  ct_state=(CT_EST | CT_RPL, mark, label))
        assert s.ofport("port-0-0") not in t.ports, (mark, label, t.format())


# ------------------------------------------------ review s24 (of the labels)
def _srv_client_view(client_kind, routed=False):
    """port-0-0: client (``client_kind``: "stateless" open group, or
    "no-port-security"); port-0-1: stateful server, TCP 22 in only."""
    view = make_host_view(networks=2 if routed else 1, ports_per_net=3, groups=[],
                          remote_hosts=0, remote_ports_per_net=0)
    if routed:  # the client on net-1, the server on net-0, router-1 between them
        view = view.replace(routers=(make_router("router-1", (0, 1)),))
        c = next(p for p in view.ports if p.id == "port-1-0")
        srv = next(p for p in view.ports if p.id == "port-0-1")
    else:
        c, srv = view.ports[:2]
    sgs = SecurityGroup("sg-s", (Rule("s-in", "sg-s", "ingress", "IPv4", 6, 22, 22),),
                        frozenset(srv.ips))
    sgl = SecurityGroup("sg-l", (Rule("l-in", "sg-l", "ingress", "IPv4"),
                                 Rule("l-eg", "sg-l", "egress", "IPv4")),
                        frozenset(c.ips), stateful=False)
    if client_kind == "stateless":
        c = dataclasses.replace(c, security_groups=("sg-l",))
    else:
        c = dataclasses.replace(c, security_groups=(), port_security_enabled=False)
    srv = dataclasses.replace(srv, security_groups=("sg-s",))
    rest = tuple(p for p in view.ports if p.id not in (c.id, srv.id))
    return Scenario(view.replace(ports=(c, srv) + rest, security_groups=(sgs, sgl)))


@pytest.mark.parametrize("routed", [False, True], ids=["switched", "routed"])
@pytest.mark.parametrize("client_kind", ["stateless", "no-port-security"])
def test_stateful_servers_second_reply_segment_to_a_stateless_or_open_client(client_kind,
                                                                            routed):
    """A stateless (or port-security-less) client on the same host opens
    TCP 22 to a stateful server; the server's replies keep passing (review
    s24 F1: the client's ingress committed each reply again as the
    client's, and the server's next segment, sent before the client's
    next ACK, was dropped by its egress)."""
    s = _srv_client_view(client_kind, routed)
    c = s.port("port-1-0" if routed else "port-0-0")
    srv = s.port("port-0-1")
    to = {"eth_dst": router_mac(1)} if routed else {}
    back = {"eth_dst": router_mac(0)} if routed else {}
    ct = Conntrack()
    t = ct.apply(s.tcp(c.id, srv.id, dport=22, ct_state=ct.lookup, **to))
    assert s.ofport(srv.id) in t.ports, t.format()
    t = ct.apply(s.tcp(srv.id, c.id, sport=22, dport=40000, ct_state=ct.lookup, **back))
    assert s.ofport(c.id) in t.ports, t.format()  # first segment: passes
    t = ct.apply(s.tcp(srv.id, c.id, sport=22, dport=40000, ct_state=ct.lookup, **back))
    assert s.ofport(c.id) in t.ports, t.format()  # second segment


def test_a_planted_connection_does_not_open_the_clients_egress_to_related_icmp():
    """The peer plants peer:9999 -> client:40000 through its own MAC (the
    peer's connection).  The client's ICMP errors about it (destination
    unreachable, any payload after the quoted header) are +rel to it: they
    pass the client's egress freely only for its own connections, else
    its rules decide (TCP 22 only: refused).  (Review s24 F2: the related
    flow passed them whatever the label, a channel out of the client.)"""
    s = Scenario(_view(peer_stateful=True))
    c, peer = s.port("port-0-0"), s.port("port-0-1")
    ct = Conntrack()
    t = ct.apply(s.udp(peer.id, c.id, sport=9999, dport=40000, eth_dst=peer.mac_address,
                       ct_state=ct.lookup))
    assert s.ofport(c.id) not in t.ports and t.commits

    def lookup(zone, p):
        # ICMP destination unreachable quoting client:40000 <- peer:9999:
        # related to that connection, if conntrack has it
        if p.get("ip_proto") == 1 and p.get("icmpv4_type") == 3:
            quoted = {"ip_proto": 17, "ipv4_src": p["ipv4_dst"], "udp_src": 9999,
                      "ipv4_dst": p["ipv4_src"], "udp_dst": 40000}
            key, _ = ct._find(zone, quoted)
            if key is not None:
                c_ = ct.conns[key]
                # (the reverse of the planted direction: a reply)
                return CT_REL | CT_RPL, c_["ct_mark"], c_["ct_label"]
            return CT_NEW
        return ct.lookup(zone, p)

    icmp = s.ip(c.id, peer.id, ip_proto=1, icmpv4_type=3, icmpv4_code=3, tcp_src=0, tcp_dst=0,
                ct_state=lookup)
    assert s.ofport(peer.id) not in icmp.ports, icmp.format()


def test_a_connection_from_before_the_upgrade_keeps_its_replies_to_another_host():
    """A remote client's connection to a local stateful server, committed
    before the upgrade (ct_mark 0, ct_label 0): all the server's replies
    pass.  (Review s24 F6: REMOTE_OUT committed the first reply with the
    unowned bit, and the next ones were dropped.)"""
    view = make_host_view(networks=1, ports_per_net=2, groups=[], remote_hosts=1,
                          remote_ports_per_net=1)
    srv = next(p for p in view.ports if p.id == "port-0-1")
    remote = next(p for p in view.ports if p.host != view.host)
    sgs = SecurityGroup("sg-s", (Rule("s-in", "sg-s", "ingress", "IPv4", 6, 22, 22),),
                        frozenset(srv.ips))
    ports = tuple(dataclasses.replace(p, security_groups=("sg-s",)) if p.id == srv.id else p
                  for p in view.ports)
    s = Scenario(view.replace(ports=ports, security_groups=(sgs,)))
    zone = s.engine.local_id(srv.network_id)
    ct = Conntrack()
    ct.conns[(zone, (6, remote.ips[0], 40000, srv.ips[0], 22))] = {"ct_mark": 0, "ct_label": 0}
    for i in range(3):
        t = ct.apply(s.send(srv.id, ct_state=ct.lookup, eth_dst=remote.mac_address,
                            eth_type=0x0800, ipv4_src=srv.ips[0], ipv4_dst=remote.ips[0],
                            ip_proto=6, tcp_src=22, tcp_dst=40000))
        assert t.outputs, (i, t.format())


# ------------------------------------------------ review s24c (of 6178dda)
def _client_server(remote: bool):
    """port-0-0: a stateful client whose egress allows UDP 53 only
    (a hardened group); the server: stateful, UDP 53 in (local port-0-1,
    or a port on another host)."""
    view = make_host_view(networks=1, ports_per_net=2, groups=[],
                          remote_hosts=1 if remote else 0,
                          remote_ports_per_net=1 if remote else 0)
    c = view.ports[0]
    srv = next(p for p in view.ports if p.host != view.host) if remote else view.ports[1]
    sgc = SecurityGroup("sg-c", (Rule("c-eg", "sg-c", "egress", "IPv4", 17, 53, 53),),
                        frozenset(c.ips))
    sgs = SecurityGroup("sg-s", (Rule("s-in", "sg-s", "ingress", "IPv4", 17, 53, 53),),
                        frozenset(srv.ips))
    ports = tuple(dataclasses.replace(p, security_groups=("sg-c",)) if p.id == c.id else
                  dataclasses.replace(p, security_groups=("sg-s",)) if p.id == srv.id else p
                  for p in view.ports)
    return Scenario(view.replace(ports=ports, security_groups=(sgc, sgs))), c, srv


@pytest.mark.parametrize("remote", [False, True], ids=["local-server", "remote-server"])
def test_client_port_unreachable_for_its_own_udp_connection_passes(remote):
    """The client asks the server (UDP 40000 -> 53: its egress allows it),
    the server answers after the client's socket closed, and the client's
    kernel answers ICMP port unreachable quoting the reply: +rel -rpl, of a
    connection the client opened (never labelled the client's).  It passes,
    as in Neutron's OVS firewall (review s24c-1: 6178dda sent it to the
    client's rules, UDP 53 only, and dropped it)."""
    s, c, srv = _client_server(remote)
    ct = Conntrack()
    t = ct.apply(s.udp(c.id, srv.id, sport=40000, dport=53, ct_state=ct.lookup))
    assert t.outputs and t.commits, t.format()
    if not remote:
        t = ct.apply(s.udp(srv.id, c.id, sport=53, dport=40000, ct_state=ct.lookup))
        assert s.ofport(c.id) in t.ports, t.format()  # the (late) reply

    def lookup(zone, p):
        if p.get("ip_proto") == 1 and p.get("icmpv4_type") == 3:
            # the quoted reply srv:53 -> c:40000, inverted: the original
            key, _ = ct._find(zone, {"ip_proto": 17, "ipv4_src": p["ipv4_src"],
                                     "udp_src": 40000, "ipv4_dst": p["ipv4_dst"],
                                     "udp_dst": 53})
            assert key is not None and key[1][1] == c.ips[0]  # the client's own
            conn = ct.conns[key]
            return CT_REL, conn["ct_mark"], conn["ct_label"]  # original direction: -rpl
        return ct.lookup(zone, p)

    fields = {"eth_dst": srv.mac_address, "eth_type": 0x0800, "ipv4_src": c.ips[0],
              "ipv4_dst": srv.ips[0], "ip_proto": 1, "icmpv4_type": 3, "icmpv4_code": 3}
    t = s.send(c.id, ct_state=lookup, **fields)
    assert t.outputs, ("the client's ICMP error about its own connection is dropped",
                       t.format())


def test_forwarding_vm_packet_too_big_toward_the_responder_passes():
    """A VPN / router VM R (stateful, address pair 0.0.0.0/0, egress: TCP
    only) forwards a client's TCP connection to server D (port-0-1, which
    committed it with its own MAC).  D's replies are too big for R's
    tunnel: R sends D "fragmentation needed" (ICMP 3/4), quoting D -> client
    (a reply): conntrack says +rel -rpl, labelled with D's MAC.  It passes,
    as in Neutron (review s24c-1: R's egress rules, TCP only, dropped it,
    a PMTU black hole for every connection through R)."""
    view = make_host_view(networks=1, ports_per_net=2, groups=[], remote_hosts=0,
                          remote_ports_per_net=0)
    r, d = view.ports[:2]
    sgr = SecurityGroup("sg-r", (Rule("r-in", "sg-r", "ingress", "IPv4"),
                                 Rule("r-eg", "sg-r", "egress", "IPv4", 6)),
                        frozenset(r.ips))
    sgd = SecurityGroup("sg-d", (Rule("d-in", "sg-d", "ingress", "IPv4", 6, 443, 443),),
                        frozenset(d.ips))
    r = dataclasses.replace(r, security_groups=("sg-r",),
                            allowed_address_pairs=(AddressPair("0.0.0.0/0", ""),))
    d = dataclasses.replace(d, security_groups=("sg-d",))
    s = Scenario(view.replace(ports=(r, d) + view.ports[2:], security_groups=(sgr, sgd)))
    client = "192.0.2.7"
    ct = Conntrack()
    # R forwards the client's SYN to D (source: the client, through R's pair)
    t = ct.apply(s.tcp(r.id, d.id, sport=50000, dport=443, ipv4_src=client,
                       ct_state=ct.lookup))
    assert s.ofport(d.id) in t.ports and t.writes, t.format()
    label = ct.conns[next(iter(ct.conns))]["ct_label"]
    assert label == int(d.mac_address.replace(":", ""), 16)
    t = s.send(r.id, ct_state=(CT_REL, 0, label), eth_dst=d.mac_address, eth_type=0x0800,
               ipv4_src=r.ips[0], ipv4_dst=d.ips[0], ip_proto=1, icmpv4_type=3,
               icmpv4_code=4)
    assert s.ofport(d.id) in t.ports, ("R's fragmentation-needed to D is dropped",
                                       t.format())


def test_related_reply_direction_still_needs_the_owner():
    """What review s24 F2 closed: a +rel+rpl error about a connection
    labelled with another port's MAC is refused (the client's rules: UDP 53
    out only, and no rule matches a reply)."""
    s, c, srv = _client_server(False)
    other = int(srv.mac_address.replace(":", ""), 16)
    t = s.send(c.id, ct_state=(CT_REL | CT_RPL, 0, other), eth_dst=srv.mac_address,
               eth_type=0x0800, ipv4_src=c.ips[0], ipv4_dst=srv.ips[0], ip_proto=1,
               icmpv4_type=3, icmpv4_code=3)
    assert not t.outputs, t.format()
