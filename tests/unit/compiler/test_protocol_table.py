"""Every IP protocol a security-group rule may name means exactly that
protocol on the switch.

Exhaustive over the one table (quantum_ovs.constants): each name, and each
number 0-255, on IPv4 and IPv6 rules, goes the real way -- POST to the API,
the host's view from the agent API, the compiler -- and the tracer checks
what the flows do: a packet of that protocol reaches the port the rule
guards, packets of other protocols do not.  (Before the one table, names
the API accepted but the host view did not know, such as ipip, ggp and
hopopt, compiled to "every protocol".)
"""

from __future__ import annotations

import os
import tempfile

import pytest

from quantum_ovs import constants as const
from quantum_ovs import wire
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_NEW
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import Chassis
from quantum_ovs.service import build
from tests.functional.conftest import Client, make_conf

HOST = "hv-proto"
SRC_OFPORT, DST_OFPORT = 11, 12
V4, V6 = "10.0.0.0/24", "2001:db8::/64"


def _cases():
    """(ethertype, protocol as the client writes it, expected number or None
    if the API must refuse it)."""
    given = sorted(const.IP_PROTOCOL_MAP) + [n.upper() for n in ("tcp", "Ipip", "hopopt")]
    given += list(range(const.IP_PROTOCOL_MAX + 1)) + ["4", "0", "255"]
    out = []
    for ether in const.ETHERTYPES:
        for p in given:
            num = const.ip_protocol_number(p)
            if ether == const.IPv6 and num == const.PROTO_NUM_ICMP:
                num = const.PROTO_NUM_IPV6_ICMP  # Neutron's reading of ICMP on IPv6
            if ether == const.IPv4 and num in const.IPV6_ONLY_PROTOCOLS:
                num = None
            out.append((ether, p, num))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def world():
    """A host with two ports on one network (IPv4 and IPv6 subnets): ``src``
    may send anything, ``dst`` is guarded by the group ``guard`` that has no
    ingress rule but the one under test."""
    d = tempfile.mkdtemp(prefix="qovs-proto-")
    db, plugin, app = build(make_conf(f"sqlite:///{os.path.join(d, 'db.sqlite')}"))
    api = Client(app, plugin, db)
    api.post("/agent-api/v1/agents", {"host": HOST, "tunnel_ip": "192.0.2.10",
                                      "configurations": {"tunnel_types": ["vxlan"],
                                                         "bridge_mappings": {}},
                                      "started": True}, status=200)
    net = api.network()
    api.subnet(net["id"], V4)
    api.subnet(net["id"], V6)
    sg = "/v2.0/security-groups"
    src_sg = api.post(sg, {"security_group": {"name": "src"}}, status=201).data
    guard = api.post(sg, {"security_group": {"name": "guard"}}, status=201).data
    ports = {}
    for name, group in (("src", src_sg), ("dst", guard)):
        ports[name] = api.port(net["id"], security_groups=[group["security_group"]["id"]],
                               admin=True, **{"binding:host_id": HOST})
    yield api, guard["security_group"]["id"], ports
    db.dispose()


def _compiled(api, ports):
    state = api.get(f"/agent-api/v1/hosts/{HOST}/state?since=-1&timeout=0",
                    status=200).data
    chassis = Chassis(vif_ofports=tuple(sorted(((ports["src"]["id"], SRC_OFPORT),
                                                (ports["dst"]["id"], DST_OFPORT)))),
                      tunnel_ofports=(("vxlan", 1),))
    view = wire.view_from_dict(state["view"], chassis=chassis)
    return Tracer(Engine.from_view(view).flows())


def _addr(port, version):
    return next(f["ip_address"] for f in port["fixed_ips"]
                if (":" in f["ip_address"]) == (version == 6))


def _packet(ports, ether, proto):
    src, dst = ports["src"], ports["dst"]
    pkt = {"in_port": SRC_OFPORT, "eth_src": src["mac_address"],
           "eth_dst": dst["mac_address"], "ip_proto": proto}
    if ether == const.IPv4:
        pkt.update(eth_type=0x0800, ipv4_src=_addr(src, 4), ipv4_dst=_addr(dst, 4))
    else:
        pkt.update(eth_type=0x86DD, ipv6_src=_addr(src, 6), ipv6_dst=_addr(dst, 6))
    # Enough of each protocol for the tables that look deeper.
    if proto == const.PROTO_NUM_ICMP:
        pkt.update(icmpv4_type=8, icmpv4_code=0)
    elif proto == const.PROTO_NUM_IPV6_ICMP:
        pkt.update(icmpv6_type=128, icmpv6_code=0)
    elif proto == const.PROTO_NUM_TCP:
        pkt.update(tcp_src=40000, tcp_dst=80)
    elif proto == const.PROTO_NUM_UDP:
        pkt.update(udp_src=40000, udp_dst=8080)
    elif proto == const.PROTO_NUM_SCTP:
        pkt.update(sctp_src=40000, sctp_dst=80)
    return pkt


def _reaches_dst(tracer, ports, ether, proto):
    t = tracer.run(_packet(ports, ether, proto), CT_NEW)
    return DST_OFPORT in t.ports


@pytest.mark.parametrize(("ether", "given", "number"), CASES,
                         ids=[f"{e}-{p!r}" for e, p, _ in CASES])
def test_rule_protocol_compiles_to_exactly_that_protocol(world, ether, given, number):
    api, guard, ports = world
    body = {"security_group_rule": {"security_group_id": guard, "direction": "ingress",
                                    "ethertype": ether, "protocol": given}}
    if number is None:
        r = api.post("/v2.0/security-group-rules", body, status=400)
        assert r.data["NeutronError"]["type"] == "SecurityGroupEthertypeConflictWithProtocol"
        return
    rule = api.post("/v2.0/security-group-rules", body, status=201).data[
        "security_group_rule"]
    try:
        tracer = _compiled(api, ports)
        assert _reaches_dst(tracer, ports, ether, number), (
            f"{ether} rule for protocol {given!r} does not let protocol {number} in")
        for other in {(number + 1) % 256, (number - 1) % 256, const.PROTO_NUM_TCP,
                      const.PROTO_NUM_UDP} - {number}:
            assert not _reaches_dst(tracer, ports, ether, other), (
                f"{ether} rule for protocol {given!r} ({number}) lets protocol {other} in")
    finally:
        api.delete(f"/v2.0/security-group-rules/{rule['id']}", status=204)


def test_without_a_rule_nothing_reaches_the_guarded_port(world):
    """The control: the guard group alone lets no new connection in."""
    api, _, ports = world
    tracer = _compiled(api, ports)
    for ether in const.ETHERTYPES:
        for proto in (0, 1, 4, 6, 17, 58, 255):
            assert not _reaches_dst(tracer, ports, ether, proto), (ether, proto)


def test_table_is_neutrons_plus_ggp():
    """neutron-lib's IP_PROTOCOL_MAP (as of 2026) is a subset, every name
    maps into 0-255, and the aliases name table entries."""
    neutron = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0,
               "icmp": 1, "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41,
               "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
               "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
               "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}
    assert {k: const.IP_PROTOCOL_MAP[k] for k in neutron} == neutron
    assert set(const.IP_PROTOCOL_MAP) - set(neutron) == {"ggp"}
    for alias, name in const.IP_PROTOCOL_ALIASES.items():
        assert const.IP_PROTOCOL_MAP[alias] == const.IP_PROTOCOL_MAP[name]
    for bad in ("bogus", "", "256", "-1", 256, -1, True, "l2tp", 4.0, "٣"):
        with pytest.raises(const.UnknownProtocol):
            const.ip_protocol_number(bad)
    assert const.ip_protocol_number(None) is None
    assert const.ip_protocol_number("ANY") is None
