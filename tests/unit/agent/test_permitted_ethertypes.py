"""``[securitygroup] permitted_ethertypes`` (Neutron's option): Ethertypes
beyond IP and ARP that ports with port security may send and take, from
the configuration to the flows, traced."""

import pytest

from agent.daemon import Agent
from agent.settings import Settings, parse_ethertypes
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer
from tests.fixtures.scenario import BROADCAST
from tests.unit.agent.test_gateway_option import _conf

INFINIBAND = 0x4008


def test_read_from_the_securitygroup_section(tmp_path):
    assert Settings.from_conf(_conf(tmp_path, "[agent]\nhost = h1\n")).permitted_ethertypes == ()
    s = Settings.from_conf(_conf(
        tmp_path, "[agent]\nhost = h1\n[securitygroup]\npermitted_ethertypes = 0x4008, 0X88B5\n"))
    assert s.permitted_ethertypes == (INFINIBAND, 0x88B5)


@pytest.mark.parametrize("bad", ["4008", "0x", "0xz1", "-0x1", "0x_1", "ipx"])
def test_what_is_not_hexadecimal_is_refused(bad):
    with pytest.raises(ValueError, match="permitted_ethertypes"):
        parse_ethertypes([bad])


@pytest.mark.parametrize("bad", [0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x9100, 0x05FF,
                                 0x10000])
def test_what_would_pass_unchecked_cannot_be_permitted(bad):
    """IP and ARP have their own checks (permitting them would let them
    past security groups and anti-spoofing), tagged frames are refused at
    the port, and below 0x0600 is a length.  The agent does not start."""
    with pytest.raises(ValueError, match="cannot be permitted"):
        Engine("h1", permitted_ethertypes=(bad,))
    s = Settings(host="h1", server_url="http://x", ovsdb="unix:/x", permitted_ethertypes=(bad,))
    with pytest.raises(ValueError, match="cannot be permitted"):
        Agent(s)


def _traced(permitted=()):
    """(view, send): send(src, dst or None for broadcast, eth_type, **fields)."""
    view = make_host_view(networks=1, ports_per_net=3)  # port security, default group
    tracer = Tracer(Engine.from_view(view, permitted_ethertypes=permitted).flows())
    ports = {p.id: p for p in view.ports}
    ofports = dict(view.chassis.vif_ofports)

    def send(src, dst, eth_type, **kw):
        pkt = {"in_port": ofports[src], "eth_src": ports[src].mac_address,
               "eth_dst": ports[dst].mac_address if dst else BROADCAST, "eth_type": eth_type}
        pkt.update(kw)
        return tracer.run(pkt, 0)
    return ofports, send


def test_a_permitted_ethertype_passes_between_ports_and_only_from_their_macs():
    for permitted, want in (((), False), ((INFINIBAND,), True)):
        ofports, send = _traced(permitted)
        assert (ofports["port-0-1"] in send("port-0-0", "port-0-1", INFINIBAND).ports) is want
        # broadcast: every other port of the network
        others = sorted([ofports["port-0-1"], ofports["port-0-2"]])
        assert sorted(send("port-0-0", None, INFINIBAND).ports) == (others if want else [])
        # a spoofed source MAC is still dropped; other types are not permitted
        assert send("port-0-0", "port-0-1", INFINIBAND, eth_src="fa:16:3e:00:de:ad").dropped
        assert send("port-0-0", "port-0-1", 0x88B5).dropped
        assert send("port-0-0", "port-0-1", 0x8847).dropped  # MPLS
