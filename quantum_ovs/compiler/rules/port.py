"""Flows owned by a port: for a local port its classification, port
security, output and L2 entry; for every port (local or remote) the ARP
answers for its addresses; for a remote port the L2 entry that sends to
its host."""

from __future__ import annotations

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import (
    Controller,
    Field,
    Flow,
    GotoTable,
    Meter,
    Output,
    SetField,
)
from quantum_ovs.compiler.rules.common import (  # noqa: F401 (arp_reply: its old home)
    F_ARP,
    F_ARP_REQ,
    F_IP,
    F_IPV6,
    FROM_LOCAL,
    addr_field,
    arp_reply,
    link_local,
    mk,
    mk_sorted,
    reg,
)
from quantum_ovs.model import Port

F_PROTO_UDP = Field("ip_proto", 17)
F_PROTO_ICMP6 = Field("ip_proto", 58)
DHCP_DISCOVER = (F_IP, Field("ipv4_src", "0.0.0.0"), Field("ipv4_dst", "255.255.255.255"),
                 F_PROTO_UDP, Field("udp_src", 68), Field("udp_dst", 67))
IPV6_UNSPEC = Field("ipv6_src", "::")
ARP_UNSPEC = Field("arp_spa", "0.0.0.0")
F_RARP = Field("eth_type", 0x8035)
PS_ALLOW = 100
PS_UNSPEC = 110
PS_NA_DROP = 115
PS_NA_ALLOW = 120
PS_DROP = 150
PS_OPEN = 10


def arp_flows(port: Port, local_id: int, cookie: int, local: bool) -> list[Flow]:
    out = []
    rnet = reg(P.REG_NET, local_id)
    for fip in port.fixed_ips:
        ip = fip.ip_address
        if ":" in ip:
            continue
        tpa = Field("arp_tpa", ip)
        # fields in name order: arp_op, arp_tpa, eth_type, reg4, reg6
        m = mk_sorted((F_ARP_REQ, tpa, F_ARP, FROM_LOCAL, rnet))
        out.append(Flow(P.SERVICES, 100, m, arp_reply(port.mac_address, ip), cookie))
        if local:
            # The owner asking for its own address (gratuitous ARP) is not
            # answered; it goes on to the network.
            m = mk(rnet, F_ARP, F_ARP_REQ, tpa, Field("eth_src", port.mac_address))
            out.append(Flow(P.SERVICES, 105, m, (GotoTable(P.CT_LOOKUP),), cookie))
    return out


# What permitted_ethertypes may not name: IP and ARP have their own checks
# (permitting them would pass them unchecked), VLAN tags are refused at the
# port (local_port_flows), and below 0x0600 is a length, not a type.
UNPERMITTABLE = frozenset({0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x9100})


def check_ethertypes(types) -> tuple:
    """``types`` (ints) as a sorted tuple; ValueError for one that cannot
    be permitted."""
    out = set()
    for t in types:
        if not isinstance(t, int) or not 0x0600 <= t <= 0xFFFF or t in UNPERMITTABLE:
            raise ValueError(f"Ethertype {t!r} cannot be permitted: it must be 0x0600-0xffff "
                             "and not IPv4, IPv6, ARP or a VLAN tag")
        out.add(t)
    return tuple(sorted(out))


NO_MAC = "00:00:00:00:00:00"


def port_security_flows(port: Port, ofport: int, cookie: int,
                        permitted_ethertypes: tuple = ()) -> list[Flow]:
    src = reg(P.REG_SRC, ofport)
    go = (GotoTable(P.SERVICES),)
    if not port.port_security_enabled:
        return [Flow(P.PORT_SECURITY, PS_OPEN, mk(src), go, cookie)]
    mac = port.mac_address
    # (mac, address-or-cidr) the port may send from
    pairs = [(mac, ip) for ip in port.ips]
    pairs.extend((ap.mac_address or mac, ap.ip_address) for ap in port.allowed_address_pairs)
    macs = sorted({m for m, _ in pairs} | {mac})
    pairs.extend((m, link_local(m)) for m in macs)
    keys = {}
    for m, addr in pairs:
        eth_src = Field("eth_src", m)
        eth, af = addr_field("ipv4_src", "ipv6_src", addr)
        fields = [src, eth_src, eth] + ([af] if af is not None else [])
        keys[mk(*fields)] = (PS_ALLOW, go)
        if eth is F_IP:
            _, spa = addr_field("arp_spa", "ipv6_src", addr)
            fields = [src, eth_src, F_ARP, Field("arp_sha", m)] + ([spa] if spa else [])
            keys[mk(*fields)] = (PS_ALLOW, go)
        else:
            # an advertisement for its own address, saying its own MAC (or
            # none: the option absent), as ARP's arp_sha is checked: else
            # a neighbour that asked (the agent, a router) would learn a
            # MAC of the instance's choosing
            _, tgt = addr_field("ipv6_nd_target", "ipv6_nd_target", addr)
            fields = [src, eth_src, F_IPV6, F_PROTO_ICMP6, Field("icmpv6_type", 136)]
            for tll in (m, NO_MAC):
                keys[mk(*fields + ([tgt] if tgt else []) + [Field("ipv6_nd_tll", tll)])] = \
                    (PS_NA_ALLOW, go)
    for m in macs:
        eth_src = Field("eth_src", m)
        keys[mk(src, eth_src, *DHCP_DISCOVER)] = (PS_ALLOW, go)
        for t in permitted_ethertypes:  # from the port's own MACs only
            keys[mk(src, eth_src, Field("eth_type", t))] = (PS_ALLOW, go)
        # RARP from its own MACs: QEMU announces a migrated guest with it
        # (Neutron's OVS firewall: _initialize_egress, ETHERTYPE_RARP from
        # each allowed MAC; review s27 F3).  Out only: INGRESS_ACL lets no
        # RARP into a port (nor does Neutron's) unless permitted.
        keys[mk(src, eth_src, F_RARP)] = (PS_ALLOW, go)
        # ARP probes (RFC 5227) come from 0.0.0.0
        keys[mk(src, eth_src, F_ARP, Field("arp_sha", m), ARP_UNSPEC)] = (PS_ALLOW, go)
        for t in (133, 135, 143):  # RS, DAD NS, MLDv2 report from ::
            keys[mk(src, eth_src, F_IPV6, IPV6_UNSPEC, F_PROTO_ICMP6,
                    Field("icmpv6_type", t))] = (PS_UNSPEC, go)
    out = [Flow(P.PORT_SECURITY, prio, m, acts, cookie) for m, (prio, acts) in keys.items()]
    # Never from a VM: DHCP server replies, router advertisements; and no
    # neighbour advertisement for a target it does not own.
    drops = (
        mk(src, F_IP, F_PROTO_UDP, Field("udp_src", 67), Field("udp_dst", 68)),
        mk(src, F_IPV6, F_PROTO_UDP, Field("udp_src", 547), Field("udp_dst", 546)),
        mk(src, F_IPV6, F_PROTO_ICMP6, Field("icmpv6_type", 134)),
    )
    out.extend(Flow(P.PORT_SECURITY, PS_DROP, m, (), cookie) for m in drops)
    out.append(Flow(P.PORT_SECURITY, PS_NA_DROP,
                    mk(src, F_IPV6, F_PROTO_ICMP6, Field("icmpv6_type", 136)), (), cookie))
    return out


def local_port_flows(port: Port, ofport: int, local_id: int,
                     routed: bool = False, permitted_ethertypes: tuple = ()) -> list[Flow]:
    """Everything but the security groups for a plugged local port."""
    cookie = cookies.cookie_for(cookies.KIND_PORT, port.id)
    inp = mk(Field("in_port", ofport))
    if not port.admin_state_up:
        return [Flow(P.CLASSIFY, 100, inp, (), cookie)]
    out = [
        # Untagged frames only: port security and the ACLs match the
        # Ethertype after an 802.1Q/802.1ad tag, so a tagged frame would
        # pass them and reach the network (and a VLAN uplink double-tagged).
        # Anything tagged misses here and is dropped, as on an access port.
        Flow(P.CLASSIFY, 100, mk(Field("in_port", ofport), Field("vlan_vid", 0)),
             (SetField(P.REG_SRC, ofport), SetField(P.REG_NET, local_id),
              GotoTable(P.PORT_SECURITY)), cookie),
        Flow(P.L2_LOOKUP, 50, mk(reg(P.REG_NET, local_id), Field("eth_dst", port.mac_address)),
             (SetField(P.REG_DST, ofport), GotoTable(P.INGRESS_ACL)), cookie),
        Flow(P.OUTPUT, 100, mk(reg(P.REG_DST, ofport)), (Output(ofport),), cookie),
    ]
    out.extend(port_security_flows(port, ofport, cookie, permitted_ethertypes))
    out.extend(arp_flows(port, local_id, cookie, True))
    if routed:
        out.extend(resolve_flows(port, local_id, cookie))
        out.extend(ttl_punt_flows(ofport, cookie))
    return out


# Above the routers' own TTL punt (rules/router.PRIO_TTL, 900), below the
# martian drops (rules/static.PRIO_MARTIAN, 950) and the echo answers.
PRIO_TTL_PORT = 901


def ttl_punt_flows(ofport: int, cookie: int) -> list[Flow]:
    """A packet from this local port that a router would forward with TTL
    0 or 1 goes to the agent (ICMP time exceeded) through the port's own
    punt meter (the ofport, as its DHCP / DNS / RS punts), not the host's
    one TTL meter: an instance sending expiring packets at any rate fills
    only its own, and the others' traceroutes still get their answers.
    (What comes from the outside keeps the routers' flows and METER_TTL.)"""
    src = reg(P.REG_SRC, ofport)
    acts = (Meter(ofport), Controller())
    return [Flow(P.L3_ROUTE, PRIO_TTL_PORT, mk(src, eth, Field("nw_ttl", ttl)), acts, cookie)
            for eth in (F_IP, F_IPV6) for ttl in (0, 1)]


def resolve_flows(port: Port, local_id: int, cookie: int) -> list[Flow]:
    """On a routed network: a packet routed to one of the port's fixed IPs
    gets its MAC (the router's neighbour table, known from the model)."""
    rnet = reg(P.REG_NET, local_id)
    acts = (SetField("eth_dst", port.mac_address), GotoTable(P.L2_LOOKUP))
    out = []
    for ip in port.ips:
        eth, af = addr_field("ipv4_dst", "ipv6_dst", ip)
        out.append(Flow(P.L3_RESOLVE, 100, mk(rnet, eth, af), acts, cookie))
    return out


def remote_port_flows(port: Port, local_id: int, send: tuple,
                      routed: bool = False) -> list[Flow]:
    """``send``: the actions reaching the port's host (see
    network.remote_hop: on to REMOTE_OUT); empty if unreachable."""
    if not port.admin_state_up:
        return []
    cookie = cookies.cookie_for(cookies.KIND_PORT, port.id)
    out = arp_flows(port, local_id, cookie, False)
    if send:
        m = mk_sorted((Field("eth_dst", port.mac_address), reg(P.REG_NET, local_id)))
        out.append(Flow(P.L2_LOOKUP, 50, m, send, cookie))
        if routed:
            out.extend(resolve_flows(port, local_id, cookie))
    return out
