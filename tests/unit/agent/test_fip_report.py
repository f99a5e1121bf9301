"""Floating IP status reports: which floating IPs the agent says it has
installed (the server sets them ACTIVE), and when it says so again."""

from __future__ import annotations

import threading

from agent.daemon import Agent
from agent.reporting import PortReporter
from agent.settings import Settings
from quantum_ovs import model as m

EXT, NET = "ext", "net"


def _router(fips, hosts=("hv2", "hv3")):
    return m.Router(
        id="r1",
        interfaces=(m.RouterInterface("rif", NET, "s", "10.0.0.1", 24, "fa:16:3e:00:00:01"),),
        gateway=m.RouterGateway(EXT, "gw", "fa:16:3e:00:00:02", ("203.0.113.10",),
                                hosts=hosts),
        floating_ips=tuple(fips))


# this host's bridge to the external network's physnet: what is reported
# is what the host serves (Engine.served_floating_ips), and without it a
# host serves no floating IP
PATCH = m.Chassis(physnet_ofports=(("public", 1),))


def _view(fips, vm_host="hv1", **kw):
    return m.HostView(
        host="hv1", networks=(m.Network(NET, m.Segment("vxlan", segmentation_id=5)),
                              m.Network(EXT, m.Segment("flat", "public"))),
        subnets=(m.Subnet("s", NET, "10.0.0.0/24"),
                 m.Subnet("ext-s", EXT, "203.0.113.0/24", gateway_ip="203.0.113.1")),
        ports=(m.Port("vm1", NET, "fa:16:3e:00:00:10", host=vm_host),
               m.Port("vm2", NET, "fa:16:3e:00:00:11", host="hv9")),
        routers=(_router(fips, **kw),), chassis=PATCH)


FIP1 = m.FloatingIP("f1", "203.0.113.20", EXT, "vm1", "10.0.0.5", "fa:16:3e:00:00:10")
FIP2 = m.FloatingIP("f2", "203.0.113.21", EXT, "vm2", "10.0.0.6", "fa:16:3e:00:00:11")
PF = m.PortForwarding("pf", "tcp", "vm2", "10.0.0.6", 80, 80, 8080, 8080)
FIP3 = m.FloatingIP("f3", "203.0.113.22", EXT, None, None, "fa:16:3e:00:00:02", (PF,))


def _agent(host="hv1"):
    a = Agent(Settings(host=host, server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent"))
    a.have_view = True
    return a


def test_reports_the_floating_ips_of_local_ports_and_again_when_resent():
    a = _agent()
    a.engine.load(_view([FIP1, FIP2, FIP3]))
    assert a._fips_to_report(set()) == {"f1"}  # f2: port elsewhere; f3: not a gateway
    assert a._fips_to_report(set()) == set()  # nothing new
    assert a._fips_to_report({"r1"}) == {"f1"}  # its router was sent again
    moved = m.FloatingIP("f1", "203.0.113.20", EXT, "vm1", "10.0.0.7", "fa:16:3e:00:00:10")
    a.engine.update(_view([moved, FIP2, FIP3]))
    assert a._fips_to_report(set()) == {"f1"}  # a new value
    a.engine.update(_view([moved, FIP2, FIP3], vm_host="hv9"))
    assert a._fips_to_report(set()) == set()  # its port left


def test_forwarding_only_floating_ips_on_the_active_gateway():
    a = _agent("hv3")
    a.engine.load(_view([FIP3]).replace(host="hv3"))
    assert a._fips_to_report(set()) == set()  # hv2 is active
    a.chassis = m.Chassis(physnet_ofports=PATCH.physnet_ofports, gateways_down=("hv2",))
    a.engine.set_chassis(a.chassis)
    assert a._fips_to_report(set()) == {"f3"}


def test_a_host_without_a_bridge_to_the_external_network_reports_nothing():
    """Its floating IP has no flows there (no uplink): it is not up."""
    a = _agent()
    a.engine.load(_view([FIP1]).replace(chassis=m.Chassis()))
    assert a._fips_to_report(set()) == set()


class _Client:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def report(self, **kw):
        from agent import sync_client

        if self.fail:
            raise sync_client.ServerUnavailable("down")
        self.calls.append(kw)


def test_reporter_sends_floating_ips_once():
    c = _Client()
    r = PortReporter(c, threading.Event(), lambda: None)
    r.fips.update({"f1", "f2"})
    r.report(set(), {})
    assert c.calls == [{"plugged": [], "unplugged": [], "installed": [],
                        "floatingips": ["f1", "f2"]}]
    r.report(set(), {})
    assert len(c.calls) == 1
    stop = threading.Event()
    stop.set()  # no retry timer
    failing = PortReporter(_Client(fail=True), stop, lambda: None)
    failing.fips.add("f1")
    failing.report(set(), {})
    assert failing.fips == {"f1"}  # kept for the next report
