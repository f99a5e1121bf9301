"""Review s28 of the metadata service and of ports' extra DHCP options as
the agent serves them.  Each test fails on the code reviewed (8c13c57)
and passes once the finding it names is fixed; none documents behaviour
that is already right.

M1  an instance on a subnet that has a gateway_ip but no router cannot
    reach 169.254.169.254 (DHCP routes it via a gateway nobody answers).
D1  Ironic's IPv6 iPXE options (tag:ipxe6 / tag:!ipxe6) are chosen the
    wrong way round: an iPXE client is sent the chainloader again.
D2  IPv6 addresses written as dnsmasq wants them ("[2001:db8::1]") make
    the option be left out.
D3  DHCPv6 ntp-server (option 56) is sent as a bare address list, not as
    RFC 5908 sub-options (what dnsmasq, and so Neutron, sends).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct

from agent.responders.dispatch import DhcpDispatcher
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.pipeline import SERVICES
from quantum_ovs.compiler.rules import metadata as md
from quantum_ovs.compiler.synth import (
    default_group,
    make_network,
    make_port,
    make_router,
    make_subnet,
    router_mac,
)
from quantum_ovs.compiler.trace import trace
from quantum_ovs.model import Chassis, DhcpOption, HostView
from tests.unit.agent import test_dhcp as d4
from tests.unit.agent import test_dhcp6 as d6

PROXY = 900
OFPORT_A, OFPORT_B = 5, 6


class _Pin:
    def __init__(self, data, in_port):
        self.data, self.in_port, self.table, self.reason, self.match = \
            data, in_port, SERVICES, 1, None


# ------------------------------------------------------------------ M1
def _isolated_view():
    """One network, its subnet with the default gateway_ip (10.0.0.1, what
    `openstack subnet create` gives) and no router: two instances of the
    default group on this host, the metadata proxy on PROXY."""
    a, b = make_port(0, 0), make_port(0, 1)
    return HostView(
        host="host-a", networks=(make_network(0),), subnets=(make_subnet(0),),
        ports=(a, b), security_groups=(default_group(members=a.ips + b.ips),),
        chassis=Chassis(vif_ofports=(("port-0-0", OFPORT_A), ("port-0-1", OFPORT_B)),
                        metadata_ofport=PROXY))


def _dhcp_ack(engine, port, ofport):
    """What the agent's DHCP (metadata on, as the agent builds it) answers
    the port's DISCOVER; the reply's options."""
    sent = []

    def lookup(n):
        if n != ofport:
            return None
        return port, engine.networks[port.network_id], engine.subnets

    d = DhcpDispatcher(86400, lookup, lambda data, actions: sent.append(data), {},
                       routers=lambda: tuple(engine.routers.values()), metadata_route=True)
    d.packet_in(_Pin(d4.client_frame(d4.DISCOVER, chaddr=port.mac_address,
                                     options=[(55, bytes([1, 3, 6, 15, 26, 121]))]), ofport))
    assert len(sent) == 1, "no DHCP answer"
    return d4.Reply(sent[0]).options


def _next_hop(options, dest):
    """The next hop a DHCP client installs for ``dest`` (RFC 3442: with
    option 121 option 3 is ignored); '0.0.0.0' means on link."""
    dest = ipaddress.IPv4Address(dest)
    if 121 in options:
        v, i, best = options[121], 0, None
        while i < len(v):
            width = v[i]
            n = (width + 7) // 8
            net = ipaddress.IPv4Network((bytes(v[i + 1:i + 1 + n]) + bytes(4 - n), width))
            router = str(ipaddress.IPv4Address(v[i + 1 + n:i + 5 + n]))
            i += 5 + n
            if dest in net and (best is None or width > best[0]):
                best = (width, router)
        return best[1] if best else None
    if 3 in options:
        return str(ipaddress.IPv4Address(options[3][:4]))
    return None


def test_metadata_is_reachable_on_a_subnet_with_a_gateway_but_no_router():
    """M1.  Neutron serves metadata on networks without a router: ML2/OVN
    always (ovn_client._get_ovn_dhcpv4_opts puts 169.254.169.254/32 via
    the metadata port in option 121), ML2/OVS with enable_isolated_metadata
    (dhcp.Dnsmasq._generate_opts_per_subnet: the route via the DHCP port
    of an isolated subnet).  Here the agent serves metadata on every
    network, but DHCP adds its on-link route only to subnets *without* a
    gateway_ip: a subnet with the default gateway_ip and no router sends
    the instance to 10.0.0.1, whose ARP nobody answers (no router port,
    no responder flow): the request never leaves the instance (cloud-init
    without user data, keys or password)."""
    e = Engine.from_view(_isolated_view())
    a = e.ports["port-0-0"]
    options = _dhcp_ack(e, a, OFPORT_A)
    hop = _next_hop(options, md.METADATA_IP)
    assert hop is not None, "the DHCP answer gives no route to 169.254.169.254"
    target = md.METADATA_IP if hop == "0.0.0.0" else hop
    t = trace(e.flows(), {"in_port": OFPORT_A, "eth_src": a.mac_address,
                          "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806, "arp_op": 1,
                          "arp_spa": a.ips[0], "arp_sha": a.mac_address, "arp_tpa": target})
    answers = [o for o in t.outputs if o.port == OFPORT_A and o.fields.get("arp_op") == 2]
    assert answers, (f"the instance routes 169.254.169.254 via {hop}; its ARP for {target} "
                     f"is not answered (flooded to {t.ports})")
    mac = answers[0].fields["arp_sha"]
    t = trace(e.flows(), {"in_port": OFPORT_A, "eth_src": a.mac_address, "eth_dst": mac,
                          "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": a.ips[0],
                          "ipv4_dst": md.METADATA_IP, "tcp_src": 40000, "tcp_dst": 80})
    assert PROXY in t.ports


def test_metadata_through_a_router_on_the_gateway_is_as_before():
    """M1, the other side (added with the fix): a router holding the
    subnet's gateway keeps DHCP as it was (option 3, no 121): the
    instance's request goes to the router's MAC and still reaches the
    proxy."""
    view = dataclasses.replace(_isolated_view(), routers=(make_router("r1", [0]),))
    e = Engine.from_view(view)
    a = e.ports["port-0-0"]
    options = _dhcp_ack(e, a, OFPORT_A)
    assert 121 not in options and _next_hop(options, md.METADATA_IP) == "10.0.0.1"
    t = trace(e.flows(), {"in_port": OFPORT_A, "eth_src": a.mac_address,
                          "eth_dst": router_mac(0), "eth_type": 0x0800, "ip_proto": 6,
                          "ipv4_src": a.ips[0], "ipv4_dst": md.METADATA_IP,
                          "tcp_src": 40000, "tcp_dst": 80})
    assert PROXY in t.ports


# ------------------------------------------------------------- D1 - D3
def _port6(*opts, pid):
    return dataclasses.replace(d6.port(), id=pid,
                               extra_dhcp_opts=tuple(DhcpOption(*o) for o in opts))


def _solicit(*extra):
    return d6.client_frame(d6.SOLICIT, [(1, d6.CLIENT_DUID), (3, d6.ia_na()), *extra])


IPXE_USER_CLASS = (15, b"\x00\x04iPXE")  # RFC 3315 22.15: one user class, "iPXE"


def test_ironic_ipv6_ipxe_options_follow_neutrons_ipxe6_tag():
    """D1.  For IPv6 iPXE Ironic sets (pxe_utils.dhcp_options_for_instance,
    neutron provider) tag:!ipxe6,59 = the iPXE chainloader over TFTP and
    tag:ipxe6,59 = the boot script; Neutron's dnsmasq tags an iPXE DHCPv6
    client 'ipxe6' (neutron/agent/linux/dhcp.py Dnsmasq._build_cmdline:
    --dhcp-userclass=set:ipxe6,iPXE).  The agent tags it 'ipxe' only
    (dhcp_options.client_tags6), so for iPXE '!ipxe6' holds and 'ipxe6'
    does not: iPXE is handed the chainloader again, for ever, and the
    node never boots."""
    p = _port6(("tag:!ipxe6,59", "tftp://[2001:db8::5]/ipxe.efi", 6),
               ("tag:ipxe6,59", "http://[2001:db8::5]:8088/boot.ipxe", 6), pid="p-s28-ipxe6")
    plain = d6.Reply6(d6.answer(_solicit(), p))
    assert plain.options.get(59) == b"tftp://[2001:db8::5]/ipxe.efi"
    ipxe = d6.Reply6(d6.answer(_solicit(IPXE_USER_CLASS), p))
    assert ipxe.options.get(59) == b"http://[2001:db8::5]:8088/boot.ipxe", ipxe.options.get(59)


def test_ipv6_option_addresses_in_dnsmasq_brackets_are_sent():
    """D2.  Neutron hands opt_value to dnsmasq as it is
    (Dnsmasq._format_option), and dnsmasq(8) documents IPv6 addresses of
    an option in brackets ("option6:dns-server,[2001:db8::99]"; its
    parser takes them bare too, option.c): both spellings work with
    Neutron, the bracketed one is what dnsmasq's manual and Neutron's own
    subnet options (Dnsmasq._convert_to_literal_addrs) use.  The agent's
    _addrs takes only bare addresses: the option is logged and left out,
    and the instance keeps the subnet's resolver."""
    p = _port6(("dns-server", "[2001:db8::99],[2001:db8::98]", 6), pid="p-s28-brackets")
    r = d6.Reply6(d6.answer(_solicit((6, b"\x00\x17")), p))
    assert r.options.get(23) == (ipaddress.IPv6Address("2001:db8::99").packed
                                 + ipaddress.IPv6Address("2001:db8::98").packed), \
        [str(ipaddress.IPv6Address(r.options[23][i:i + 16]))
         for i in range(0, len(r.options.get(23, b"")), 16)]


def test_dhcpv6_ntp_server_is_sent_as_rfc5908_suboptions():
    """D3.  DHCPv6 option 56 (RFC 5908) is a list of sub-options
    (1 = NTP_SUBOPTION_SRV_ADDR, 16 bytes; 3 = FQDN), which dnsmasq builds
    for option6:ntp-server (option.c: OT_ADDR_LIST for addresses; sent as
    NTP_SUBOPTION_SRV_ADDR in rfc3315.c).  The agent types it ADDRS and
    sends the bare 16 bytes: a client reads sub-option 0x2001 of length
    0x0db8 and drops the option."""
    p = _port6(("ntp-server", "2001:db8::7", 6), pid="p-s28-ntp")
    r = d6.Reply6(d6.answer(_solicit((6, b"\x00\x38")), p))
    want = struct.pack("!HH", 1, 16) + ipaddress.IPv6Address("2001:db8::7").packed
    assert r.options.get(56) == want, r.options.get(56)
