"""Router solicitations from a local port reach the agent (which answers
with the routers' advertisements), through the port's DHCP meter, on
networks with an IPv6 subnet that has an ipv6_ra_mode; not elsewhere."""

from __future__ import annotations

import pytest

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import Subnet


def _tracer(ra_mode):
    v = make_host_view(networks=1, ports_per_net=2)
    v6 = Subnet("sub6", "net-0", "fd00::/64", 6, gateway_ip="fd00::1", ipv6_ra_mode=ra_mode,
                ipv6_address_mode=ra_mode)
    v = v.replace(subnets=v.subnets + (v6,))
    return Tracer(Engine.from_view(v).flows()), v


@pytest.mark.parametrize("src", ["::", "ll"])
def test_router_solicitation_goes_to_the_controller_metered(src):
    tracer, v = _tracer("slaac")
    port = v.local_ports()[0]
    ofport = dict(v.chassis.vif_ofports)[port.id]
    tr = tracer.run({"in_port": ofport, "eth_src": port.mac_address,
                     "eth_dst": "33:33:00:00:00:02", "eth_type": 0x86DD,
                     "ipv6_src": "::" if src == "::" else link_local(port.mac_address),
                     "ipv6_dst": "ff02::2", "ip_proto": 58, "icmpv6_type": 133})
    assert tr.controller and tr.meters == [ofport]
    assert not tr.outputs


def test_no_punt_without_ra_mode():
    tracer, v = _tracer(None)
    port = v.local_ports()[0]
    tr = tracer.run({"in_port": dict(v.chassis.vif_ofports)[port.id],
                     "eth_src": port.mac_address, "eth_dst": "33:33:00:00:00:02",
                     "eth_type": 0x86DD, "ipv6_src": "::", "ipv6_dst": "ff02::2",
                     "ip_proto": 58, "icmpv6_type": 133})
    assert not tr.controller
