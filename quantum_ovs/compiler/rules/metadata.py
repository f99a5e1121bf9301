"""Flows of the metadata service: an instance's requests to
169.254.169.254:80 (and [fe80::a9fe:a9fe]:80) steered to this host's one
metadata proxy, which learns the asking port from the packet's new source
address.

The proxy listens in a network namespace of its own behind one port of
br-int (``Chassis.metadata_ofport``; the agent makes it, agent/metadata).
Nothing is trusted from the instance but the port its packet entered by:

  L3_ADMIT (local VIF, after port security and its egress security
      groups, reg5 = its ofport)
      TCP from one of the port's fixed IPv4 addresses (or its EUI-64
      link-local address) to 169.254.169.254:80 ([fe80::a9fe:a9fe]:80):
      the source rewritten to an address made of (ofport, index of that
      fixed IP) -- :func:`source_address` -- the Ethernet addresses to the
      proxy's, out to the proxy port.  The port's egress rules decide, as
      in Neutron (whose firewalls make no exception for the metadata
      address): a group without egress rules cuts the instance off from
      its metadata.  Nothing is committed (each packet meets the rules as
      a new one; the replies come back outside conntrack).  A forged
      source address matches no port's flow (reg5 and the source both are
      in the match) and goes on as any packet to an unknown host.
  SERVICES
      ARP for 169.254.169.254 and neighbour solicitations for
      fe80::a9fe:a9fe from local ports are answered with METADATA_MAC.
  CLASSIFY / PORT_SECURITY (the proxy port)
      reg5 = the proxy's ofport; only IP from the proxy's own addresses
      passes.
  SERVICES (reg5 = the proxy's ofport)
      a reply to a port's source address is turned back (destination =
      the fixed IP, source = 169.254.169.254, the port's MAC) and output
      to that port's VIF; anything else from the proxy is dropped.

The proxy reverses :func:`source_address` with :func:`parse_source` and
finds the port plugged on that ofport (the agent's own view), so two
instances with the same address on different networks, or a spoofing
one, cannot get each other's metadata.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler import pipeline as P
from quantum_ovs.compiler.flow import Field, Flow, GotoTable, Output, SetField
from quantum_ovs.compiler.rules.common import F_ARP, F_IP, F_IPV6, FROM_LOCAL, link_local, mk, reg
from quantum_ovs.compiler.rules.port import arp_reply
from quantum_ovs.compiler.rules.router import na_reply
from quantum_ovs.model import Port

METADATA_IP = "169.254.169.254"
METADATA_IPV6 = "fe80::a9fe:a9fe"
METADATA_PORT = 80
# The proxy namespace's interface (what instances see as 169.254.169.254's
# MAC) and the gateway it sends its replies to (never a real device).
METADATA_MAC = "02:a9:fe:a9:fe:fe"
GATEWAY_MAC = "02:a9:fe:a9:fe:01"
GATEWAY_IP = "169.254.0.1"
GATEWAY_IPV6 = "fe80::1"
# The proxy's IPv6 address inside its namespace (an instance asks for
# fe80::a9fe:a9fe; a link-local address would need a scope there).
PROXY_IPV6 = "fd00:a9fe:a9fe::a9fe:a9fe"
# Source addresses the proxy sees: (ofport, index) packed into these.
SOURCE_NET = ipaddress.IPv4Network("100.64.0.0/10")
SOURCE_NET6 = ipaddress.IPv6Network("fd00:a9fe:a9fe:1::/64")
INDEX_BITS = 6  # up to 64 IPv4 fixed IPs of a port are served
MAX_OFPORT = 0xFEFF

COOKIE = cookies.cookie_for(cookies.KIND_METADATA, "proxy")
PRIO_STEER = 120
PRIO_PROXY_DROP = 110
PRIO_ANSWER = 90

F_TCP = Field("ip_proto", 6)
_TO_PROXY = (SetField("eth_src", GATEWAY_MAC), SetField("eth_dst", METADATA_MAC))


@lru_cache(maxsize=1 << 16)
def source_address(ofport: int, index: int, version: int = 4) -> str:
    """The address the proxy sees for fixed IP number ``index`` (IPv4) or
    the link-local address (IPv6, index 0) of the port on ``ofport``
    (canonical text, formatted by hand: ipaddress is slow at this)."""
    if not 0 < ofport <= MAX_OFPORT or not 0 <= index < (1 << INDEX_BITS):
        raise ValueError(f"no metadata source address for ofport {ofport} index {index}")
    if version == 6:
        # fd00:a9fe:a9fe:1:0:0:<ofport>:<index>, the zero pair compressed
        return f"fd00:a9fe:a9fe:1::{ofport:x}:{index:x}"
    n = (ofport << INDEX_BITS) | index  # 22 bits under 100.64.0.0/10
    return f"100.{64 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def parse_source(address: str):
    """(ofport, index, ip version) from a :func:`source_address`, or None."""
    try:
        a = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if a.version == 4 and a in SOURCE_NET:
        n = int(a) - int(SOURCE_NET.network_address)
        return n >> INDEX_BITS, n & ((1 << INDEX_BITS) - 1), 4
    if a.version == 6 and a in SOURCE_NET6:
        n = int(a) - int(SOURCE_NET6.network_address)
        return n >> 16, n & 0xFFFF, 6
    return None


def port_sources(port: Port) -> list[tuple[int, int, str]]:
    """(ip version, index, the instance's address) the port may ask from:
    its fixed IPv4 addresses (index = their order among them) and its
    EUI-64 link-local address."""
    out = []
    v4 = [ip for ip in port.ips if ":" not in ip][: 1 << INDEX_BITS]
    out.extend((4, i, ip) for i, ip in enumerate(v4))
    out.append((6, 0, link_local(port.mac_address)))
    return out


def instance_address(port: Port, index: int, version: int):
    """The address of ``port`` that :func:`source_address` ``index``
    stands for, or None."""
    for v, i, ip in port_sources(port):
        if v == version and i == index:
            return ip
    return None


def port_flows(port: Port, ofport: int, proxy_ofport: int, cookie: int) -> list[Flow]:
    """A local port's requests to the proxy and the replies to it."""
    if not proxy_ofport or not 0 < ofport <= MAX_OFPORT:
        return []
    src = reg(P.REG_SRC, ofport)
    from_proxy = reg(P.REG_SRC, proxy_ofport)
    out = []
    for version, index, ip in port_sources(port):
        mapped = source_address(ofport, index, version)
        if version == 4:
            m = mk(src, F_IP, F_TCP, Field("ipv4_src", ip), Field("ipv4_dst", METADATA_IP),
                   Field("tcp_dst", METADATA_PORT))
            to = _TO_PROXY + (SetField("ipv4_src", mapped), Output(proxy_ofport))
            back_m = mk(from_proxy, F_IP, F_TCP, Field("ipv4_dst", mapped))
            back = (SetField("eth_src", METADATA_MAC), SetField("eth_dst", port.mac_address),
                    SetField("ipv4_dst", ip), Output(ofport))
        else:
            m = mk(src, F_IPV6, F_TCP, Field("ipv6_src", ip), Field("ipv6_dst", METADATA_IPV6),
                   Field("tcp_dst", METADATA_PORT))
            to = _TO_PROXY + (SetField("ipv6_src", mapped), SetField("ipv6_dst", PROXY_IPV6),
                              Output(proxy_ofport))
            back_m = mk(from_proxy, F_IPV6, F_TCP, Field("ipv6_dst", mapped))
            back = (SetField("eth_src", METADATA_MAC), SetField("eth_dst", port.mac_address),
                    SetField("ipv6_src", METADATA_IPV6), SetField("ipv6_dst", ip),
                    Output(ofport))
        out.append(Flow(P.L3_ADMIT, PRIO_STEER, m, to, cookie))
        out.append(Flow(P.SERVICES, PRIO_STEER, back_m, back, cookie))
    return out


def proxy_flows(proxy_ofport: int) -> list[Flow]:
    """The proxy port's classification and anti-spoofing, the ARP / ND
    answers for the metadata address (none without a proxy port)."""
    if not proxy_ofport:
        return []
    src = reg(P.REG_SRC, proxy_ofport)
    go = (GotoTable(P.SERVICES),)
    eth = Field("eth_src", METADATA_MAC)
    out = [
        Flow(P.CLASSIFY, 100, mk(Field("in_port", proxy_ofport), Field("vlan_vid", 0)),
             (SetField(P.REG_SRC, proxy_ofport), GotoTable(P.PORT_SECURITY)), COOKIE),
        Flow(P.PORT_SECURITY, 100, mk(src, eth, F_IP, Field("ipv4_src", METADATA_IP)), go,
             COOKIE),
        Flow(P.PORT_SECURITY, 100, mk(src, eth, F_IPV6, Field("ipv6_src", PROXY_IPV6)), go,
             COOKIE),
        Flow(P.SERVICES, PRIO_PROXY_DROP, mk(src), (), COOKIE),
        Flow(P.SERVICES, PRIO_ANSWER,
             mk(Field("arp_op", 1), Field("arp_tpa", METADATA_IP), F_ARP, FROM_LOCAL),
             arp_reply(METADATA_MAC, METADATA_IP), COOKIE),
        Flow(P.SERVICES, PRIO_ANSWER,
             mk(FROM_LOCAL, F_IPV6, Field("ip_proto", 58), Field("icmpv6_type", 135),
                Field("ipv6_nd_target", METADATA_IPV6)),
             na_reply(METADATA_MAC, METADATA_IPV6), COOKIE),
    ]
    return out
