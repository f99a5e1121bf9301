"""Review s29 (router gateway high availability), the compiler side: who
is the active gateway host while a BFD tunnel port is still being made.

The agent (agent/daemon.py Agent._chassis_wanted) hands the engine, for a
gateway host whose BFD tunnel port is being made (in the wanted peers, not
yet in the OVSDB replica or not yet numbered by ovs-vswitchd), neither a
``gateway_ofports`` entry nor a ``gateways_down`` one: "A gateway host with
no tunnel (no tunnel IP in the view) is as good as down; one whose port is
being made is not (yet)."  The agent's own idea of the active host agrees
(gateways.active_gateway / neighbours.announcements / _fips_to_report: the
first host not in gateways_down), and so does BfdMonitor's grace period
("a host that starts does not first send everything to a lower-priority
gateway").

But Engine._gateway_role counts a host before this one as alive only if
it is in ``gateway_ofports``: a host without a numbered port yet is
skipped, so this (lower-priority) gateway host compiles itself "active"
while the real active host is alive -- it answers ARP for the router's
gateway address and the floating IPs of port forwardings and unbound
ports, and SNATs its own instances to the gateway address out of its
uplink (the gateway MAC now appears on two switch ports of the external
network).  This is every router's state on a gateway host that joins
(appended last to every router: its BFD ports are all new), for the
time ovs-vswitchd takes to number the new ports (up to the BFD grace
period if it cannot).  The agent's other decisions for the same chassis
(announcements, floating IP reports) name the higher host active, so the
host's flows and its agent disagree on who is active.
"""

from __future__ import annotations

import dataclasses

from agent import gateways
from quantum_ovs.compiler.synth import router_mac
from quantum_ovs.compiler.trace import Tracer
from tests.fixtures.scenario import HOST
from tests.unit.compiler.test_external import INTERNET, _arp, _engine, _view


def _port_being_made(e, host):
    """The chassis the agent hands the engine while ``host``'s BFD port
    has no ofport yet: no gateway_ofports entry, not in gateways_down."""
    ch = e.chassis()
    return dataclasses.replace(
        ch, gateway_ofports=tuple((h, o) for h, o in ch.gateway_ofports if h != host),
        gateways_down=())


def test_a_standby_gateway_host_does_not_answer_for_the_gateway_while_a_port_is_made():
    # host-a is the second gateway host of router-1; gw-1 is alive
    e = _engine(_view(hosts=("gw-1", HOST)))
    gw = e.routers["router-1"].gateway
    gw_ip = gw.ip_addresses[0]
    assert _arp(Tracer(e.flows()), gw_ip).dropped  # standby (as today)
    # host-a's tunnel port to gw-1 is being made (e.g. host-a just joined
    # as a gateway host): gw-1 is not known down
    ch = _port_being_made(e, "gw-1")
    e.set_chassis(ch)
    # the agent's own idea: gw-1 is still the active one
    assert gateways.active_gateway(gw, ch.gateways_down) == "gw-1"
    arp = _arp(Tracer(e.flows()), gw_ip)
    assert arp.dropped, ("host-a answers ARP for the gateway address while gw-1 is "
                         "active:\n" + arp.format())


def test_a_standby_gateway_host_does_not_snat_locally_while_a_port_is_made():
    e = _engine(_view(hosts=("gw-1", HOST), fips=0, forwardings=False))
    gw = e.routers["router-1"].gateway
    e.set_chassis(_port_being_made(e, "gw-1"))
    port = e.ports["port-0-0"]
    vif = dict(e.chassis().vif_ofports)[port.id]
    out = Tracer(e.flows()).run({
        "in_port": vif, "vlan_vid": 0, "eth_src": port.mac_address, "eth_dst": router_mac(0),
        "eth_type": 0x0800, "ip_proto": 17, "ipv4_src": port.ips[0], "ipv4_dst": INTERNET,
        "udp_src": 5000, "udp_dst": 53})
    # not SNATed here to the gateway address (with the gateway MAC out of
    # this host's uplink) while gw-1 is the active gateway host
    assert not [o for o in out.outputs if o.get("ipv4_src") == gw.ip_addresses[0]], \
        out.format()
