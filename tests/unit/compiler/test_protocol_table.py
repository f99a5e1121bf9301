"""Every IP protocol a security-group rule may name means exactly that
protocol on the switch.

Exhaustive over the one table (quantum_ovs.constants): each name, and each
number 0-255, on IPv4 and IPv6 rules, goes the real way -- POST to the API,
the host's view from the agent API, the compiler -- and the tracer checks
what the flows do: a packet of that protocol reaches the port the rule
guards, packets of other protocols do not.  All the cases' rules live in
one group (each names its own source address), made by one bulk POST and
compiled once.  (Before the one table, names
the API accepted but the host view did not know, such as ipip, ggp and
hopopt, compiled to "every protocol".)
"""

from __future__ import annotations

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
# The sender may use any address of these (an allowed address pair): each
# case's rule names its own source address as remote_ip_prefix, so that all
# the rules live in one group and one compile, and each is checked alone.
V4, V6 = "10.0.0.0/16", "2001:db8::/64"
IPV4_ONLY_REFUSED = "SecurityGroupEthertypeConflictWithProtocol"


def _cases():
    """(ethertype, protocol as the client writes it, expected number or None
    if the API must refuse it)."""
    given = sorted(const.IP_PROTOCOL_MAP) + ["TCP", "Ipip", "HOPOPT", "Any"]
    given += list(range(const.IP_PROTOCOL_MAX + 1)) + ["4", "0", "255"]
    out = []
    for ether in const.ETHERTYPES:
        for p in given:
            num = const.ip_protocol_number(p)
            if ether == const.IPv6 and num == const.PROTO_NUM_ICMP:
                num = const.PROTO_NUM_IPV6_ICMP  # Neutron's reading of ICMP on IPv6
            if ether == const.IPv4 and num in const.IPV6_ONLY_PROTOCOLS:
                num = IPV4_ONLY_REFUSED
            out.append((ether, p, num))
    return out


CASES = _cases()


def _source(ether, i):
    return f"10.0.{100 + i // 200}.{10 + i % 200}" if ether == const.IPv4 else \
        f"2001:db8::1:{i:x}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A host with two ports on one network: ``src`` may send anything from
    any address of V4 and V6, ``dst`` is guarded by the group ``guard``
    whose ingress rules are those under test."""
    conf = make_conf(f"sqlite:///{tmp_path_factory.mktemp('proto') / 'db.sqlite'}")
    conf.set_override("quota_security_group_rule", -1, group="quotas")
    db, plugin, app = build(conf)
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
    guard = guard["security_group"]["id"]
    src = api.port(net["id"], security_groups=[src_sg["security_group"]["id"]],
                   allowed_address_pairs=[{"ip_address": V4}, {"ip_address": V6}],
                   admin=True, **{"binding:host_id": HOST})
    dst = api.port(net["id"], security_groups=[guard], admin=True,
                   **{"binding:host_id": HOST})
    yield api, guard, {"src": src, "dst": dst}
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


def _packet(ports, ether, source, proto):
    src, dst = ports["src"], ports["dst"]
    pkt = {"in_port": SRC_OFPORT, "eth_src": src["mac_address"],
           "eth_dst": dst["mac_address"], "ip_proto": proto}
    if ether == const.IPv4:
        pkt.update(eth_type=0x0800, ipv4_src=source, ipv4_dst=_addr(dst, 4))
    else:
        pkt.update(eth_type=0x86DD, ipv6_src=source, ipv6_dst=_addr(dst, 6))
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


def _reaches_dst(tracer, ports, ether, source, proto):
    return DST_OFPORT in tracer.run(_packet(ports, ether, source, proto), CT_NEW).ports


def test_every_protocol_the_api_accepts_compiles_to_exactly_that_protocol(world):
    api, guard, ports = world
    rules, expected = [], []
    for i, (ether, given, number) in enumerate(CASES):
        source = _source(ether, i)
        rule = {"security_group_id": guard, "direction": "ingress", "ethertype": ether,
                "protocol": given, "remote_ip_prefix": source}
        if number == IPV4_ONLY_REFUSED:
            r = api.post("/v2.0/security-group-rules", {"security_group_rule": rule},
                         status=400)
            assert r.data["NeutronError"]["type"] == IPV4_ONLY_REFUSED, (ether, given)
            continue
        rules.append(rule)
        expected.append((ether, given, number, source))
    made = api.post("/v2.0/security-group-rules", {"security_group_rules": rules},
                    status=201).data["security_group_rules"]
    assert len(made) == len(rules)
    tracer = _compiled(api, ports)
    wrong = []
    everything = range(const.IP_PROTOCOL_MAX + 1)
    for ether, given, number, source in expected:
        if number is None:  # "any"
            others, passes = (), everything
        else:
            others = {(number + 1) % 256, (number - 1) % 256, const.PROTO_NUM_TCP,
                      const.PROTO_NUM_UDP, const.PROTO_NUM_ICMP} - {number}
            passes = (number,)
        wrong += [f"{ether} {given!r}: protocol {p} does not pass" for p in passes
                  if not _reaches_dst(tracer, ports, ether, source, p)]
        wrong += [f"{ether} {given!r} ({number}): protocol {p} passes too" for p in others
                  if _reaches_dst(tracer, ports, ether, source, p)]
    assert wrong == []


def test_without_a_rule_nothing_reaches_the_guarded_port(world):
    """The control: from an address no rule names, nothing gets in."""
    api, _, ports = world
    tracer = _compiled(api, ports)
    for ether in const.ETHERTYPES:
        source = _source(ether, len(CASES) + 1)
        for proto in (0, 1, 3, 4, 6, 17, 58, 255):
            assert not _reaches_dst(tracer, ports, ether, source, proto), (ether, proto)


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
