"""A stateless port commits what it lets in from this host only when it is
meant for it (rules/acl.py, ACCEPT_LOCAL): else a port could plant, in the
network's conntrack zone, a connection between itself and a stateful port
that the stateful port never saw, and that port's later packets would pass
its egress as "replies" (review P1, session 22).

The tests keep a small conntrack model across packets (the tracer's
callable ct_state, with each trace's commits applied), so each shows the
whole sequence: the plant, then the stateful port's packet."""

from __future__ import annotations

import dataclasses

import pytest

from quantum_ovs.compiler.flow import CT_EST, CT_NEW, CT_RPL
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import AddressPair, FixedIP, Rule, SecurityGroup
from tests.fixtures.scenario import BROADCAST, Scenario, change

_L4 = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}


class Conntrack:
    """One host's connection table: (zone, original 5-tuple)."""

    def __init__(self):
        self.conns: set = set()

    @staticmethod
    def _tuple(p):
        sp, dp = _L4.get(p.get("ip_proto"), (None, None))
        return (p.get("ip_proto"), p.get("ipv4_src") or p.get("ipv6_src"), p.get(sp),
                p.get("ipv4_dst") or p.get("ipv6_dst"), p.get(dp))

    def lookup(self, zone, p):
        t = self._tuple(p)
        if (zone, t) in self.conns:
            return CT_EST
        proto, s, sp, d, dp = t
        if (zone, (proto, d, dp, s, sp)) in self.conns:
            return CT_EST | CT_RPL
        return CT_NEW

    def apply(self, trace):
        for zone, p in trace.commits:
            if self.lookup(zone, p) == CT_NEW:
                self.conns.add((zone, self._tuple(p)))
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
