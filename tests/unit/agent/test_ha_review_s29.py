"""Review s29 (router gateway high availability), the agent side: what
the active gateway host does for the floating IPs it serves.

Since c780eb9 a floating IP of a port bound to no host (an Octavia or
keepalived VIP) is served by the router's active gateway host
(compiler/engine.py Engine._fip_served: its ARP answers, the DNAT); the
server sets it ACTIVE on that host's report
(tests/functional/test_floatingips.py::
test_an_unbound_vips_floating_ip_is_active_once_the_active_gateway_host_reports_it).
But the agent's own bookkeeping was left as before that change:

* Agent._fips_to_report (agent/daemon.py) names only floating IPs of
  ports bound here and port-forwarding-only ones: the active gateway host
  never reports the VIP's floating IP, so it stays DOWN for ever although
  it works.
* responders.neighbours.announcements announces, on a takeover, the
  gateway addresses only (local_fips = ports bound here): the VIP
  floating IP's MAC (the VIP port's own, not the gateway's) is not
  announced by the new active host, so the external switch keeps sending
  it to the old one until its MAC entry ages out.  Neutron's HA router
  (keepalived) sends gratuitous ARPs for every VIP (gateway address and
  floating IPs) on becoming master (neutron/agent/l3/ha_router.py,
  keepalived's garp_master_*); OVN's chassis that claims the cr-lrp
  announces the router's NAT addresses (options:nat-addresses=router,
  ovn-controller pinctrl send_garp_rarp).
"""

from __future__ import annotations

from agent import gateways as g
from agent.daemon import Agent
from agent.responders import neighbours as nb
from agent.settings import Settings
from quantum_ovs import model as m

EXT, NET = "ext", "net"
GW_MAC = "fa:16:3e:00:00:02"
VIP_MAC = "fa:16:3e:00:00:50"
VIP_FIP = m.FloatingIP("f-vip", "203.0.113.50", EXT, "vip", "10.0.0.50", VIP_MAC)


def _view(host, fips=(VIP_FIP,), hosts=("hv2", "hv3")):
    router = m.Router(
        id="r1",
        interfaces=(m.RouterInterface("rif", NET, "s", "10.0.0.1", 24, "fa:16:3e:00:00:01"),),
        gateway=m.RouterGateway(EXT, "gw", GW_MAC, ("203.0.113.10",), hosts=hosts),
        floating_ips=tuple(fips))
    return m.HostView(
        host=host, networks=(m.Network(NET, m.Segment("vxlan", segmentation_id=5)),
                             m.Network(EXT, m.Segment("flat", "public"))),
        subnets=(m.Subnet("s", NET, "10.0.0.0/24"),
                 m.Subnet("ext-s", EXT, "203.0.113.0/24", gateway_ip="203.0.113.1")),
        # the VIP port: bound to no host (Octavia's VIP, held by an amphora
        # as an allowed address pair)
        ports=(m.Port("vip", NET, VIP_MAC, (m.FixedIP("s", "10.0.0.50"),), host=None),),
        routers=(router,))


def _agent(host):
    a = Agent(Settings(host=host, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent"))
    a.have_view = True
    return a


def _served_here(a):
    return any(src.ip == VIP_FIP.floating_ip_address
               for src in a.engine.neighbour_sources().get(EXT, ()))


def test_the_active_gateway_host_reports_an_unbound_vips_floating_ip():
    a = _agent("hv3")
    a.engine.load(_view("hv3"))
    assert a._fips_to_report(set()) == set()  # hv2 is active
    # hv2's BFD goes down: hv3 serves the VIP's floating IP (its flows are
    # installed here) and must say so, or the server leaves it DOWN
    ch = m.Chassis(physnet_ofports=(("public", 1),), gateways_down=("hv2",))
    a.engine.set_chassis(ch)
    a.chassis = ch
    assert _served_here(a)  # the engine serves it here now
    assert a._fips_to_report(set()) == {"f-vip"}


def test_a_takeover_announces_the_unbound_vips_floating_ip():
    a = _agent("hv3")
    sent = []
    a.announcer.update = lambda wanted, ctx: sent.append(wanted)
    patch = (("public", 1),)
    a.base_chassis = m.Chassis(physnet_ofports=patch)
    a.engine.load(_view("hv3"))
    # hv2's BFD goes down: hv3 becomes the active gateway host; it now
    # answers ARP for the gateway address and for the VIP's floating IP
    # (Engine._fip_served), and must announce both
    ch = m.Chassis(physnet_ofports=patch, gateways_down=("hv2",))
    a.engine.set_chassis(ch)
    a.chassis = ch
    a._nb_stale = True
    a._neighbour_context()
    assert _served_here(a)  # the engine answers ARP for it here now
    a._announce()
    (wanted,) = sent
    assert nb.Announce(EXT, "203.0.113.10", GW_MAC) in wanted  # (as today)
    assert nb.Announce(EXT, VIP_FIP.floating_ip_address, VIP_MAC) in wanted


def test_a_gateway_host_without_tunnels_does_not_announce_a_live_hosts_gateway():
    """The session's final review: a gateway host that makes no tunnel
    ports (tunnel_types empty, local_ip set: its peers see a tunnel IP
    and run a BFD to it that never comes up) counted every other gateway
    host down, claimed every router's gateway address beside the live
    active host, and announced it."""
    from tests.unit.agent.test_gateways import _Conn, _Ovsdb

    a = Agent(Settings(host="hv3", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent"))
    a.have_view = True
    a.gw_monitor = g.BfdMonitor(_Conn(), lambda: None)
    a.gw_tunnels = g.GatewayTunnels(_Ovsdb(), "br-int", None, "192.0.2.3", a.gw_monitor)
    a.metadata_ofport = 0
    sent = []
    a.announcer.update = lambda wanted, ctx: sent.append(wanted)
    a.base_chassis = m.Chassis(physnet_ofports=(("public", 1),))
    view = _view("hv3", fips=()).replace(remote_hosts=(m.RemoteHost("hv2", "192.0.2.2"),))
    a.engine.load(view)
    a._sync_gateway_tunnels()
    ch = a._chassis_wanted()
    a.engine.set_chassis(ch)
    a.chassis = ch
    a._nb_stale = True
    a._neighbour_context()
    a._announce()
    (wanted,) = sent
    assert ch.gateways_down == ()  # no BFD to tell hv2 is dead: it is not
    assert not any(x.ip == "203.0.113.10" and x.mac == GW_MAC for x in wanted), wanted
