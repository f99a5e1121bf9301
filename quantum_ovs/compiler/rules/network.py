"""Flows owned by a network: classification of packets arriving from the
outside (tunnel key, VLAN tag, flat), flooding, and the DHCP and DNS
punts."""

from __future__ import annotations

from functools import lru_cache

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.rules import checks
from quantum_ovs.compiler.flow import (
    OFPVID_PRESENT,
    Controller,
    Field,
    Flow,
    GotoTable,
    Meter,
    Output,
    PopVlan,
    PushVlan,
    Resubmit,
    SetField,
)
from quantum_ovs.compiler.rules.common import (
    F_ARP,
    F_ARP_REQ,
    F_IP,
    F_IPV6,
    FROM_LOCAL,
    FROM_REMOTE,
    arp_reply,
    mk,
    reg,
)
from quantum_ovs.compiler.rules.static import COMMIT_UNOWNED, NOT_REPLY
from quantum_ovs.model import Network, Subnet

# The DHCP server address of a subnet without a gateway (the agent's
# DHCPv4 responder's default server identifier), and the IPv4 resolver.
DHCP_FALLBACK_SERVER = "169.254.0.1"
PRIO_DNS_ARP = 101  # above a port's ARP answer (port.arp_flows, 100)
PRIO_DNS_PUNT = 110  # L3_ADMIT: above a router's admission (router.PRIO_ADMIT)


def dns_address(subnet: Subnet) -> str | None:
    """The address the agent answers DNS on for ``subnet``'s ports (what
    DHCP hands out as the resolver when the subnet names none): IPv4, the
    link-local DHCP_FALLBACK_SERVER (DHCP gives an on-link route to it and
    the pipeline answers its ARP, so that it works with or without a
    router on the subnet); IPv6, the gateway of a DHCPv6 subnet that names
    no IPv6 resolver of its own (DHCPv6 hands out those instead, and DNS
    to the gateway address is then for whatever answers there, a router
    instance's resolver say).  None when the subnet has no DHCP."""
    if not subnet.enable_dhcp:
        return None
    if subnet.ip_version == 4:
        return DHCP_FALLBACK_SERVER
    if subnet.ipv6_address_mode not in DHCP6_MODES or not subnet.gateway_ip or \
            any(":" in a for a in subnet.dns_nameservers):
        return None
    return subnet.gateway_ip


# The Ethernet address the agent's DHCP and DNS responders answer from
# (agent/responders/dhcp.py DEFAULT_SERVER_MAC).
DHCP_SERVER_MAC = "02:71:6f:76:73:01"

DHCP6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless")


def tunnel_peer_flows(tunnel_ip: str, tunnel_ofports: dict, cookie: int) -> list[Flow]:
    """A remote host's tunnel address admitted on the flow-based tunnel
    ports (``tunnel_ofports``, type -> ofport): its packets go on to
    TUNNEL_CLASSIFY.  Such a port takes a packet from any source that
    reaches this host's tunnel address (options:remote_ip=flow), and the
    classification trusts what comes from a host (no port security, no
    egress groups: the sending host checked them): a source that is no
    known host meets CLASSIFY's drop (found by review: anyone reaching the
    underlay could put frames on any network).  Neutron and OVN make a
    port per peer (remote_ip fixed) for the same."""
    name = "tun_ipv6_src" if ":" in tunnel_ip else "tun_ipv4_src"
    go = (GotoTable(P.TUNNEL_CLASSIFY),)
    return [Flow(P.CLASSIFY, 100, mk(Field("in_port", ofport), Field(name, tunnel_ip)), go,
                 cookie) for ofport in sorted(set(tunnel_ofports.values()))]


def uplink(net: Network, tunnel_ofports: dict, physnet_ofports: dict):
    """How this host reaches the outside for ``net``: (kind, ofport) with
    kind "tunnel" | "vlan" | "flat", or None."""
    seg = net.segment
    t = seg.network_type
    if seg.is_tunnel:
        ofport = tunnel_ofports.get(t)
        if ofport is None or seg.segmentation_id is None:
            return None
        return ("tunnel", ofport)
    if t in ("vlan", "flat"):
        ofport = physnet_ofports.get(seg.physical_network)
        if ofport is None or (t == "vlan" and seg.segmentation_id is None):
            return None
        return (t, ofport)
    return None


def _uplink_out(net: Network, link) -> tuple:
    """The actions that put a packet of ``net`` on its uplink: the
    segment's tunnel id and the tunnel port (whose destination is set
    before), or the VLAN tag and the patch port, or the patch port."""
    kind, ofport = link
    if kind == "tunnel":
        return (SetField("tunnel_id", net.segment.segmentation_id), Output(ofport))
    if kind == "vlan":
        return (PushVlan(), SetField("vlan_vid", net.segment.segmentation_id | OFPVID_PRESENT),
                Output(ofport))
    return (Output(ofport),)


@lru_cache(maxsize=1 << 16)
def remote_actions(net: Network, link, tunnel_ip: str | None) -> tuple:
    """Actions that send a packet of ``net`` to a remote host (tunnel) or
    to the physical network."""
    if link is None:
        return ()
    out = _uplink_out(net, link)
    if link[0] == "tunnel":
        if tunnel_ip is None:
            return ()
        # tunnel_id, the host's address (one that does not parse: ValueError,
        # never another host), the tunnel port
        return out[:1] + (SetField("tun_ipv4_dst", checks.ipv4(tunnel_ip)),) + out[1:]
    return out


def remote_hop(link, tunnel_ip: str | None) -> tuple:
    """The actions of a remote port's L2_LOOKUP flow: on to REMOTE_OUT,
    with its host's address for a tunnel; empty if its host cannot be
    reached."""
    if link is None:
        return ()
    if link[0] == "tunnel":
        if tunnel_ip is None:
            return ()
        return _tunnel_hop(tunnel_ip)
    return _HOP


_HOP = (GotoTable(P.REMOTE_OUT),)


@lru_cache(maxsize=65536)
def _tunnel_hop(tunnel_ip: str) -> tuple:
    # (one tuple per remote host: checked and encoded once, not per port;
    # an address that does not parse raises, its ports are held)
    return (SetField("tun_ipv4_dst", checks.ipv4(tunnel_ip)), GotoTable(P.REMOTE_OUT))


def _local_copies(ofports, flags) -> list:
    acts = []
    for ofport in sorted(ofports):
        acts += (SetField(P.REG_FLAGS, flags), SetField(P.REG_DST, ofport),
                 Resubmit(P.INGRESS_CT))
    return acts


# FLOOD: what is sent to an address pair's MAC, above the network's flood
# (100, 110): reaches only the ports holding that MAC (review s27 F1).
PRIO_PAIR_FLOOD = 120


def pair_flood_flows(net: Network, rnet: Field, link, pair_holders: dict,
                     cookie) -> list[Flow]:
    """FLOOD for the unicast MACs of allowed address pairs: L2_LOOKUP has
    no entry for them (a pair's MAC may be held by several ports, a VRRP
    pair's, and move between them), so what is sent to one comes here; it
    goes only to the local ports holding the MAC as a pair and to the
    remote hosts holding a port with it (the uplink of a VLAN or flat
    network when a port of another host holds it), not to every port of
    the network (Neutron's OVS firewall sends what is for a port's allowed
    MAC to that port).  A MAC whose holders are unreachable is dropped,
    not flooded.  (Multicast MACs are left to the network's flood.)"""
    out = []
    for mac in sorted(pair_holders):
        if int(mac.split(":", 1)[0], 16) & 1:
            continue
        ofports, hosts, remote = pair_holders[mac]
        m = Field("eth_dst", mac)
        outside = []
        if link is not None:
            if link[0] == "tunnel":
                for ip in sorted(hosts):
                    outside.extend(remote_actions(net, link, ip))
            elif remote:
                outside = list(remote_actions(net, link, None))
        local = _local_copies(ofports, P.FLAG_FLOOD)
        out.append(Flow(P.FLOOD, PRIO_PAIR_FLOOD, mk(rnet, FROM_LOCAL, m),
                        tuple(local + outside), cookie))
        if outside:
            for eth in (F_IP, F_IPV6):
                out.append(Flow(P.FLOOD, PRIO_PAIR_FLOOD + 10,
                                mk(rnet, FROM_LOCAL, m, eth, NOT_REPLY),
                                tuple(local + [COMMIT_UNOWNED] + outside), cookie))
        out.append(Flow(P.FLOOD, PRIO_PAIR_FLOOD, mk(rnet, FROM_REMOTE, m),
                        tuple(_local_copies(ofports, P.FLAG_FROM_REMOTE | P.FLAG_FLOOD)),
                        cookie))
    return out


def remote_out_flows(net: Network, local_id: int, link, cookie) -> list[Flow]:
    """REMOTE_OUT for ``net``: what its remote ports' L2 flows go on to.
    IP leaving the host was accepted by the egress ACL: committed on the
    way out so that its replies are established."""
    out = _uplink_out(net, link)
    rnet = reg(P.REG_NET, local_id)
    # (nobody's here; a reply is not committed: static.py)
    commit = (COMMIT_UNOWNED,) + out
    return [Flow(P.REMOTE_OUT, 10, mk(rnet), out, cookie),
            Flow(P.REMOTE_OUT, 20, mk(rnet, F_IP, NOT_REPLY), commit, cookie),
            Flow(P.REMOTE_OUT, 20, mk(rnet, F_IPV6, NOT_REPLY), commit, cookie)]


def network_flows(
    net: Network,
    local_id: int,
    subnets: list[Subnet],
    local_ofports: list[int],
    remote_host_ips: list[str],
    tunnel_ofports: dict,
    physnet_ofports: dict,
    external: bool = False,
    gateway_ofports: tuple = (),
    pair_holders: dict | None = None,
) -> list[Flow]:
    """``local_ofports``: ofports of the network's plugged, enabled local
    ports; ``remote_host_ips``: tunnel IPs of the remote hosts holding
    ports of this network.  ``external``: a router's gateway network
    (packets from its uplink go through EXT_ADMIT, rules/gateway.py);
    ``gateway_ofports``: the per-remote tunnel ports (BFD) to gateway
    hosts, classified like the flow-based tunnel port (the switch delivers
    a packet from such a remote to that port, not to the flow-based one).
    ``pair_holders``: an allowed address pair's MAC (other than its port's
    own) -> (ofports of the local ports holding it, reachable; tunnel IPs
    of the remote hosts holding a port with it; whether a port of another
    host holds it): what is sent to it is flooded to those only
    (``pair_flood_flows``)."""
    if not net.admin_state_up:
        return []
    cookie = cookies.cookie_for(cookies.KIND_NETWORK, net.id)
    out = []
    rnet = reg(P.REG_NET, local_id)
    link = uplink(net, tunnel_ofports, physnet_ofports)
    enter = [SetField(P.REG_NET, local_id), SetField(P.REG_FLAGS, P.FLAG_FROM_REMOTE),
             GotoTable(P.EXT_ADMIT if external else P.CT_LOOKUP)]
    if link is not None:
        kind, ofport = link
        inp = Field("in_port", ofport)
        if kind == "tunnel":
            tid = Field("tunnel_id", net.segment.segmentation_id)
            for port in sorted({ofport, *gateway_ofports}):
                # (the flow-based port's packets: once their source is
                # admitted, tunnel_peer_flows; a BFD port's remote is fixed)
                table = P.TUNNEL_CLASSIFY if port == ofport else P.CLASSIFY
                out.append(Flow(table, 100, mk(Field("in_port", port), tid),
                                tuple(enter), cookie))
        elif kind == "vlan":
            m = mk(inp, Field("vlan_vid", net.segment.segmentation_id | OFPVID_PRESENT))
            out.append(Flow(P.CLASSIFY, 100, m, (PopVlan(), *enter), cookie))
        else:
            m = mk(inp, Field("vlan_vid", 0))
            out.append(Flow(P.CLASSIFY, 100, m, tuple(enter), cookie))
        out.extend(remote_out_flows(net, local_id, link, cookie))
    # Flood: local ports first (each through its ingress ACL, marked as a
    # flooded copy: static.NOT_FLOODED, the flags set again for each, since
    # a copy for a port's pair MAC clears FLAG_FLOOD), then the outside.
    def local_copies(flags):
        return _local_copies(local_ofports, flags)
    outside = []
    if link is not None:
        if link[0] == "tunnel":
            for ip in sorted(remote_host_ips):
                outside.extend(remote_actions(net, link, ip))
        else:
            outside = list(remote_actions(net, link, None))
    # (the flags as they are for each half: FROM_LOCAL's are 0, a redirect
    # is from remote, and nothing after FLOOD reads FLAG_REDIRECT)
    local = local_copies(P.FLAG_FLOOD)
    if local or outside:
        out.append(Flow(P.FLOOD, 100, mk(rnet, FROM_LOCAL), tuple(local + outside), cookie))
    if outside:
        # Locally originated IP leaving the host: commit it (egress has
        # accepted it) so that the replies come back established.
        # (nobody's here; a reply is not committed: static.py)
        for eth in (F_IP, F_IPV6):
            out.append(Flow(P.FLOOD, 110, mk(rnet, FROM_LOCAL, eth, NOT_REPLY),
                            tuple(local + [COMMIT_UNOWNED] + outside), cookie))
    if local:
        out.append(Flow(P.FLOOD, 100, mk(rnet, FROM_REMOTE),
                        tuple(local_copies(P.FLAG_FROM_REMOTE | P.FLAG_FLOOD)), cookie))
    if pair_holders:
        out.extend(pair_flood_flows(net, rnet, link, pair_holders, cookie))
    # DHCP from local ports goes to the agent's responder, through a meter
    # per source port (meter id = its ofport): one
    # instance flooding requests can neither starve the agent nor the
    # other ports' DHCP.  Nothing else of the network is punted.
    v4 = any(s.enable_dhcp and s.ip_version == 4 for s in subnets)
    v6 = any(s.enable_dhcp and s.ip_version == 6 and s.ipv6_address_mode in DHCP6_MODES
             for s in subnets)
    punts = []
    if v4:
        punts.append((F_IP, 68, 67))
    if v6:
        punts.append((F_IPV6, 546, 547))
    # DNS to the network's DNS addresses (the agent's resolver: names of
    # the network's ports, the rest forwarded), through the same meter.
    dns = sorted({a for a in map(dns_address, subnets) if a is not None})
    # Router solicitations on a subnet that routers advertise on: the
    # agent answers for the router interfaces (none: no answer).
    rs = any(s.ip_version == 6 and s.ipv6_ra_mode for s in subnets)
    for ofport in sorted(local_ofports) if punts or rs or dns else ():
        src = Field(P.REG_SRC, ofport)
        acts = (Meter(ofport), Controller())
        for eth, sport, dport in punts:
            m = mk(rnet, src, eth, Field("ip_proto", 17), Field("udp_src", sport),
                   Field("udp_dst", dport))
            out.append(Flow(P.SERVICES, 100, m, acts, cookie))
        for addr in dns:
            # (after the port's egress security groups, as Neutron's
            # dnsmasq is reached: a group without egress rules resolves
            # nothing, nor sends anything out through the forwarder)
            v6addr = ":" in addr
            to_addr = Field("ipv6_dst" if v6addr else "ipv4_dst", addr)
            m = mk(rnet, src, F_IPV6 if v6addr else F_IP, Field("ip_proto", 17), to_addr,
                   Field("udp_dst", 53))
            out.append(Flow(P.L3_ADMIT, PRIO_DNS_PUNT, m, acts, cookie))
            if addr == DHCP_FALLBACK_SERVER:
                # DNS over TCP (a client asks again so after an answer cut
                # short, TC) is not served: dropped here, never flooded to
                # the network's other ports as unknown unicast for the
                # resolver's MAC (they would see the query, and one could
                # answer it).  (An IPv6 resolver address is the gateway's:
                # whatever holds it gets its TCP.)
                m = mk(rnet, src, F_IP, Field("ip_proto", 6), to_addr, Field("tcp_dst", 53))
                out.append(Flow(P.L3_ADMIT, PRIO_DNS_PUNT, m, (), cookie))
        if rs:
            m = mk(rnet, src, F_IPV6, Field("ip_proto", 58), Field("icmpv6_type", 133))
            out.append(Flow(P.SERVICES, 100, m, acts, cookie))
    # ARP for the link-local DNS address (DHCP gives the instances an
    # on-link route to it). A port of a tenant's 169.254.0.0/16 subnet may
    # have that address too: the service's answer is above a port's
    # (priority 100, the same match: the two made one flow twice, a
    # CompileError that stopped every change on the host).
    if DHCP_FALLBACK_SERVER in dns and local_ofports:
        m = mk(rnet, FROM_LOCAL, F_ARP, F_ARP_REQ, Field("arp_tpa", DHCP_FALLBACK_SERVER))
        out.append(Flow(P.SERVICES, PRIO_DNS_ARP, m,
                        arp_reply(DHCP_SERVER_MAC, DHCP_FALLBACK_SERVER), cookie))
    return out
