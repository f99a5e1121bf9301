"""The native DHCPv4 responder: a pure function from a client frame to a reply.

The flow pipeline punts every DHCP client packet (IPv4 UDP 68 -> 67) of a
local port to the controller.  The agent looks up the logical port behind
the packet-in's ``in_port`` and calls::

    reply = responder.handle(pin.data, port, subnets_by_id, network)
    if reply is not None:
        channel.packet_out(reply, [Output(pin.in_port)])   # in_port=CONTROLLER

The answer comes from the port's own data (its fixed IPv4 address and that
address's subnet) and never from a pool: there is nothing to allocate and
no lease state to keep.  ``handle`` does no I/O and never raises on a frame.

What is answered (RFC 2131):

============  ===========================================================
DISCOVER      OFFER of the port's address
REQUEST       ACK when the requested address (option 50, else ``ciaddr``)
              is the port's; NAK otherwise.  A REQUEST naming another
              server (option 54) is the client choosing someone else: no
              reply.
INFORM        ACK with the configuration options, ``yiaddr`` 0 and no
              lease times (RFC 2131 section 3.4)
RELEASE       nothing (the address belongs to the port, not to a lease)
DECLINE       nothing (logged: someone else uses the port's address)
============  ===========================================================

Frames that are not DHCP client messages, whose ``chaddr`` is not the
port's MAC (anti-spoofing), or of a port without an IPv4 fixed address on
a subnet with ``enable_dhcp`` get no reply (logged at debug).

Options of an OFFER/ACK: 53 message type, 54 server identifier, 51 lease
time, 58/59 renewal (T1 = 1/2 lease) and rebinding (T2 = 7/8 lease) times,
1 subnet mask, 28 broadcast address, 3 router (when the subnet has a
gateway), 6 DNS servers (the subnet's; without them, with
``advertise_dns``, ``fallback_server_ip``: the agent's DNS responder,
with an on-link route to it in 121), 15
domain name (the network's dns_domain, else the responder's), 26
interface MTU (the network's), 121 classless static routes (when the
subnet has host routes, or a gateway outside its CIDR, or, with the
host's metadata service, no router interface holding its gateway: the
on-link route to 169.254.169.254; RFC 3442 makes clients ignore option 3
when 121 is present, so the default route via the gateway is carried in
121 as well), and 249 (the
pre-standard Microsoft spelling of 121) only when the client asks for it.
Then the port's extra DHCP options (agent/responders/dhcp_options.py),
which replace ours of the same code.  A reply is never larger than the
network's MTU allows, nor than the client's maximum message size (57, if
it says one of at least 576): options are left out from the last (the
port's own first), those the client did not ask for (55) before those it
did, never 53, 54, 51 and 1.

Server identifier: the subnet's gateway IP when it has one (clients unicast
renewals there; the router port, or the pipeline's ARP responder, answers
ARP for it and the DHCP punt catches the packet before L2 lookup).  A
subnet without a gateway uses ``fallback_server_ip``, by default
169.254.0.1: a link-local address that is never a port's, so that a client
has no route to it and renews by broadcast (REBINDING) instead.

Replies go from ``server_mac`` and the server identifier to the client:
broadcast (Ethernet and IP) for a NAK or when the client set the BROADCAST
flag without a ``ciaddr``; otherwise unicast to the client's MAC and to
``ciaddr`` (renewals, INFORM) or ``yiaddr``.  An 802.1Q tag on the request
is kept on the reply.  IPv4 and UDP checksums are always filled in.
Incoming checksums are not verified: a frame punted from a veth or tap may
carry a partial checksum that the kernel never completed.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from agent.responders.dhcp_options import client_tags4, extra_options
from quantum_ovs import dnsnames, model

LOG = logging.getLogger(__name__)

# Message types (option 53).
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_NAMES = {
    DISCOVER: "DISCOVER",
    OFFER: "OFFER",
    REQUEST: "REQUEST",
    DECLINE: "DECLINE",
    ACK: "ACK",
    NAK: "NAK",
    RELEASE: "RELEASE",
    INFORM: "INFORM",
}

# Option codes.
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_HOSTNAME = 12
OPT_DOMAIN_NAME = 15
OPT_MTU = 26
OPT_BROADCAST = 28
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAM_REQUEST = 55
OPT_MESSAGE = 56
OPT_RENEWAL_TIME = 58
OPT_REBINDING_TIME = 59
OPT_CLASSLESS_ROUTES = 121
METADATA_ROUTE = "169.254.169.254/32"
OPT_MS_CLASSLESS_ROUTES = 249
OPT_END = 255

BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHER = 1
FLAG_BROADCAST = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
SERVER_PORT, CLIENT_PORT = 67, 68
INFINITE_LEASE = 0xFFFFFFFF

ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
IPPROTO_UDP = 17
BROADCAST_MAC = b"\xff" * 6
BROADCAST_IP = b"\xff" * 4
ZERO_IP = b"\x00" * 4

DEFAULT_SERVER_MAC = "02:71:6f:76:73:01"  # locally administered; "qovs" in ASCII
DEFAULT_FALLBACK_SERVER_IP = "169.254.0.1"

# The fixed BOOTP header: op, htype, hlen, hops, xid, secs, flags, ciaddr,
# yiaddr, siaddr, giaddr, chaddr (16), sname (64), file (128).
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_BOOTP_MIN_LEN = 300  # replies are padded to the classic BOOTP size
OPT_MAX_MESSAGE_SIZE = 57
IP_UDP_HEADERS = 28
DEFAULT_MTU = 1500
MIN_MESSAGE_SIZE = 576  # RFC 2131 2: what every client takes; the least option 57 may say
# never left out of a reply that has to shrink
_ESSENTIAL = frozenset({OPT_MESSAGE_TYPE, OPT_SERVER_ID, OPT_LEASE_TIME, OPT_SUBNET_MASK})


def reply_limit(mtu: Optional[int], options: Mapping[int, bytes]) -> int:
    """The largest DHCP message (UDP payload) a reply may be: what fits
    the network's MTU, and no more than the client's maximum message size
    (option 57, taken as the IP datagram's, the stricter reading; ignored
    below RFC 2132's minimum of 576)."""
    limit = (mtu or DEFAULT_MTU) - IP_UDP_HEADERS
    raw = options.get(OPT_MAX_MESSAGE_SIZE)
    if raw is not None and len(raw) == 2:
        size = int.from_bytes(raw, "big")
        if size >= MIN_MESSAGE_SIZE:
            limit = min(limit, size - IP_UDP_HEADERS)
    return max(limit, MIN_MESSAGE_SIZE - IP_UDP_HEADERS)
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


class _Malformed(ValueError):
    """The frame is not a well-formed DHCP client message."""


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """A parsed DHCP client message (what the responder needs of it)."""

    vlan_tci: Optional[int]  # 802.1Q TCI when the frame was tagged
    eth_src: bytes
    msg_type: int
    xid: int
    flags: int
    ciaddr: bytes
    giaddr: bytes
    chaddr: bytes  # the 6-byte hardware address
    chaddr_field: bytes  # the whole 16-byte field, echoed back
    options: Mapping[int, bytes]

    @property
    def requested_ip(self) -> Optional[bytes]:
        v = self.options.get(OPT_REQUESTED_IP)
        return v if v is not None and len(v) == 4 else None

    @property
    def server_id(self) -> Optional[bytes]:
        v = self.options.get(OPT_SERVER_ID)
        return v if v is not None and len(v) == 4 else None

    @property
    def parameters(self) -> bytes:
        return self.options.get(OPT_PARAM_REQUEST, b"")


# ------------------------------------------------------------------ parsing
def parse_options(data: bytes) -> tuple[dict[int, bytes], bool]:
    """Options from ``data`` as {code: value}; the flag says whether an END
    option was seen.  Repeated options are concatenated (RFC 3396)."""
    opts: dict[int, bytes] = {}
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == OPT_PAD:
            i += 1
            continue
        if code == OPT_END:
            return opts, True
        if i + 1 >= n:
            raise _Malformed("option %d without a length" % code)
        length = data[i + 1]
        if i + 2 + length > n:
            raise _Malformed("option %d overruns the message" % code)
        opts[code] = opts.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return opts, False


def parse_client_frame(frame: bytes) -> ClientMessage:
    """Parse an Ethernet frame carrying a DHCP client message (BOOTREQUEST,
    UDP 68 -> 67).  Raises ValueError for anything else."""
    frame = bytes(frame)
    if len(frame) < 14:
        raise _Malformed("short Ethernet frame")
    eth_src = frame[6:12]
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    off, tci = 14, None
    if ethertype == ETH_P_8021Q:
        if len(frame) < 18:
            raise _Malformed("short 802.1Q header")
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        off = 18
    if ethertype != ETH_P_IP:
        raise _Malformed("not IPv4 (ethertype 0x%04x)" % ethertype)
    if len(frame) < off + _IPV4.size:
        raise _Malformed("short IPv4 header")
    vihl, _tos, total, _ident, frag, _ttl, proto, _csum, _src, _dst = _IPV4.unpack_from(frame, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or total < ihl or off + total > len(frame):
        raise _Malformed("bad IPv4 header")
    if frag & 0x3FFF:
        raise _Malformed("IPv4 fragment")
    if proto != IPPROTO_UDP:
        raise _Malformed("not UDP")
    ip_end = off + total  # anything after the datagram is Ethernet padding
    u = off + ihl
    if ip_end - u < _UDP.size:
        raise _Malformed("short UDP header")
    sport, dport, ulen, _ = _UDP.unpack_from(frame, u)
    if (sport, dport) != (CLIENT_PORT, SERVER_PORT):
        raise _Malformed("not UDP 68 -> 67")
    if ulen < _UDP.size or u + ulen > ip_end:
        raise _Malformed("bad UDP length")
    payload = frame[u + _UDP.size : u + ulen]
    if len(payload) < _BOOTP.size + len(MAGIC_COOKIE):
        raise _Malformed("short BOOTP message")
    (
        op,
        htype,
        hlen,
        _hops,
        xid,
        _secs,
        flags,
        ciaddr,
        _yiaddr,
        _siaddr,
        giaddr,
        chaddr_field,
        sname,
        bootfile,
    ) = _BOOTP.unpack_from(payload)
    if op != BOOTREQUEST:
        raise _Malformed("not a BOOTREQUEST")
    if htype != HTYPE_ETHER or hlen != 6:
        raise _Malformed("not an Ethernet hardware address")
    if payload[_BOOTP.size : _BOOTP.size + 4] != MAGIC_COOKIE:
        raise _Malformed("no DHCP magic cookie (BOOTP client)")
    opts, _ = parse_options(payload[_BOOTP.size + 4 :])
    overload = opts.get(OPT_OVERLOAD, b"\x00")[:1]
    if overload and overload[0] in (1, 2, 3):
        # RFC 2131 4.1: options continue in 'file' (1), 'sname' (2) or both.
        for bit, field in ((1, bootfile), (2, sname)):
            if overload[0] & bit:
                more, _ = parse_options(field)
                for code, value in more.items():
                    opts[code] = opts.get(code, b"") + value
    mtype = opts.get(OPT_MESSAGE_TYPE)
    if mtype is None or len(mtype) != 1:
        raise _Malformed("no DHCP message type")
    return ClientMessage(
        vlan_tci=tci,
        eth_src=eth_src,
        msg_type=mtype[0],
        xid=xid,
        flags=flags,
        ciaddr=ciaddr,
        giaddr=giaddr,
        chaddr=chaddr_field[:6],
        chaddr_field=chaddr_field,
        options=opts,
    )


# ----------------------------------------------------------------- encoding
def encode_option(code: int, value: bytes) -> bytes:
    """One option; values longer than 255 bytes are split into several
    instances of the same option (RFC 3396), which clients concatenate."""
    if not value:
        return bytes((code, 0))
    out = bytearray()
    for i in range(0, len(value), 255):
        chunk = value[i : i + 255]
        out += bytes((code, len(chunk))) + chunk
    return bytes(out)


def encode_classless_route(destination: str, router: str) -> bytes:
    """RFC 3442: prefix length, the significant octets of the destination,
    then the router (0.0.0.0 for an on-link route)."""
    net = ipaddress.IPv4Network(destination, strict=False)
    width = net.prefixlen
    return (
        bytes((width,))
        + net.network_address.packed[: (width + 7) // 8]
        + ipaddress.IPv4Address(router).packed
    )


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_udp_frame(
    eth_src: bytes,
    eth_dst: bytes,
    ip_src: bytes,
    ip_dst: bytes,
    sport: int,
    dport: int,
    payload: bytes,
    vlan_tci: Optional[int] = None,
) -> bytes:
    """An Ethernet/IPv4/UDP frame with both checksums filled in."""
    ulen = _UDP.size + len(payload)
    pseudo = ip_src + ip_dst + struct.pack("!BBH", 0, IPPROTO_UDP, ulen)
    ucsum = checksum(pseudo + _UDP.pack(sport, dport, ulen, 0) + payload) or 0xFFFF
    udp = _UDP.pack(sport, dport, ulen, ucsum) + payload
    hdr = _IPV4.pack(0x45, 0, 20 + len(udp), 0, 0, 64, IPPROTO_UDP, 0, ip_src, ip_dst)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    eth = eth_dst + eth_src
    if vlan_tci is not None:
        eth += struct.pack("!HH", ETH_P_8021Q, vlan_tci)
    return eth + struct.pack("!H", ETH_P_IP) + hdr + udp


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError("bad MAC address %r" % mac)
    return bytes(int(p, 16) for p in parts)


def _ip4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def _fmt_mac(b: bytes) -> str:
    return ":".join("%02x" % x for x in b)


# ---------------------------------------------------------------- responder
@dataclass(frozen=True, slots=True)
class _Lease:
    """What the port is owed: its address and the subnet it is on."""

    address: ipaddress.IPv4Address
    subnet: model.Subnet
    network: ipaddress.IPv4Network


def port_lease(port: model.Port, subnets: Mapping[str, model.Subnet]) -> Optional[_Lease]:
    """The first fixed IPv4 address of ``port`` on a subnet with DHCP on."""
    for fip in port.fixed_ips:
        subnet = subnets.get(fip.subnet_id)
        if subnet is None or subnet.ip_version != 4 or not subnet.enable_dhcp:
            continue
        addr = ipaddress.ip_address(fip.ip_address)
        if addr.version != 4:
            continue
        return _Lease(addr, subnet, ipaddress.IPv4Network(subnet.cidr, strict=False))
    return None


class DhcpResponder:
    """Answers DHCPv4 client messages of one port from its logical data.

    ``lease_time`` is in seconds (None: an infinite lease, without T1/T2);
    ``server_mac`` is the Ethernet source of every reply; ``domain`` goes in
    option 15 when set; ``fallback_server_ip`` is the server identifier of
    subnets without a gateway.  ``metadata_route``: this host serves
    169.254.169.254; ``routers()`` gives the routers of the host view
    (which subnets have their gateway on a router: the others get the
    metadata route).  Instances hold no per-client state and may be
    shared between threads.
    """

    def __init__(
        self,
        lease_time: Optional[int] = 86400,
        server_mac: str = DEFAULT_SERVER_MAC,
        domain: Optional[str] = None,
        fallback_server_ip: str = DEFAULT_FALLBACK_SERVER_IP,
        metadata_route: bool = False,
        advertise_dns: bool = False,
        routers: Optional[Callable[[], Iterable[model.Router]]] = None,
    ):
        if lease_time is not None and not 0 < lease_time < INFINITE_LEASE:
            raise ValueError("lease_time must be a positive number of seconds or None")
        self.lease_time = lease_time
        self.server_mac = server_mac.lower()
        self._server_mac = mac_bytes(self.server_mac)
        self.domain = domain.strip(".") if domain else None
        self.fallback_server_ip = _ip4(fallback_server_ip)
        # this host serves 169.254.169.254 (agent/metadata): a subnet
        # whose gateway no router holds (none, or an address nobody
        # answers ARP for) gets an on-link route to it in option 121
        self.metadata_route = metadata_route
        self.routers = routers or (lambda: ())
        # dns-integration: the fallback address is the resolver (the
        # agent's DNS responder) of subnets without dns_nameservers.
        self.advertise_dns = advertise_dns

    # The one entry point.
    def handle(
        self,
        frame: bytes,
        port: model.Port,
        subnets: Mapping[str, model.Subnet],
        network: model.Network,
    ) -> Optional[bytes]:
        """The reply frame to send out of ``port``'s OpenFlow port, or None."""
        try:
            msg = parse_client_frame(frame)
        except (ValueError, struct.error, IndexError) as exc:
            LOG.debug("port %s: ignoring a frame that is not a DHCP request: %s", port.id, exc)
            return None
        try:
            return self._answer(msg, port, subnets, network)
        except Exception:  # bad model data must not take the agent down
            LOG.exception(
                "port %s: cannot answer DHCP %s",
                port.id,
                MESSAGE_NAMES.get(msg.msg_type, msg.msg_type),
            )
            return None

    def _answer(self, msg, port, subnets, network) -> Optional[bytes]:
        mtype = MESSAGE_NAMES.get(msg.msg_type, str(msg.msg_type))
        if msg.chaddr != mac_bytes(port.mac_address.lower()):
            LOG.debug(
                "port %s: DHCP %s for chaddr %s, not the port's MAC %s: dropped",
                port.id,
                mtype,
                _fmt_mac(msg.chaddr),
                port.mac_address,
            )
            return None
        if not port.admin_state_up:
            LOG.debug("port %s is administratively down: DHCP %s dropped", port.id, mtype)
            return None
        lease = port_lease(port, subnets)
        if lease is None:
            LOG.debug(
                "port %s has no IPv4 address on a DHCP-enabled subnet: %s dropped", port.id, mtype
            )
            return None
        server_id = self._server_id(lease)
        if msg.msg_type == DISCOVER:
            return self._reply(msg, OFFER, lease, server_id, network, port=port)
        if msg.msg_type == REQUEST:
            if msg.server_id is not None and msg.server_id != server_id:
                LOG.debug(
                    "port %s: REQUEST for server %s, not us",
                    port.id,
                    ipaddress.IPv4Address(msg.server_id),
                )
                return None
            wanted = msg.requested_ip
            if wanted is None and msg.ciaddr != ZERO_IP:
                wanted = msg.ciaddr
            if wanted != lease.address.packed:
                LOG.debug(
                    "port %s: REQUEST for %s, the port has %s: NAK",
                    port.id,
                    ipaddress.IPv4Address(wanted) if wanted else None,
                    lease.address,
                )
                return self._nak(msg, server_id)
            return self._reply(msg, ACK, lease, server_id, network, port=port)
        if msg.msg_type == INFORM:
            return self._reply(msg, ACK, lease, server_id, network, inform=True, port=port)
        if msg.msg_type == DECLINE:
            LOG.warning("port %s: the client declined %s (address in use?)", port.id, lease.address)
        return None  # RELEASE, DECLINE, anything a server never receives

    def _server_id(self, lease: _Lease) -> bytes:
        gw = lease.subnet.gateway_ip
        if gw and ipaddress.ip_address(gw).version == 4:
            return _ip4(gw)
        return self.fallback_server_ip

    def options(
        self, lease: _Lease, network: model.Network, requested: bytes = b"", inform: bool = False
    ) -> list[tuple[int, bytes]]:
        """The configuration options for ``lease``, in the order sent."""
        subnet, net = lease.subnet, lease.network
        opts: list[tuple[int, bytes]] = []
        if not inform:
            if self.lease_time is None:
                opts.append((OPT_LEASE_TIME, struct.pack("!I", INFINITE_LEASE)))
            else:
                t = self.lease_time
                opts.append((OPT_LEASE_TIME, struct.pack("!I", t)))
                opts.append((OPT_RENEWAL_TIME, struct.pack("!I", t // 2)))
                opts.append((OPT_REBINDING_TIME, struct.pack("!I", t * 7 // 8)))
        opts.append((OPT_SUBNET_MASK, net.netmask.packed))
        opts.append((OPT_BROADCAST, net.broadcast_address.packed))
        gateway = None
        if subnet.gateway_ip and ipaddress.ip_address(subnet.gateway_ip).version == 4:
            gateway = ipaddress.IPv4Address(subnet.gateway_ip)
            opts.append((OPT_ROUTER, gateway.packed))
        dns = [ipaddress.ip_address(a) for a in subnet.dns_nameservers]
        dns4 = b"".join(a.packed for a in dns if a.version == 4)
        if dns4:
            opts.append((OPT_DNS, dns4))
        elif self.advertise_dns:
            opts.append((OPT_DNS, self.fallback_server_ip))
        domain = (network.dns_domain or "").strip(".") or self.domain
        if domain:
            opts.append((OPT_DOMAIN_NAME, domain.encode("ascii")))
        if network.mtu and network.mtu >= 68:
            opts.append((OPT_MTU, struct.pack("!H", min(network.mtu, 0xFFFF))))
        routed = gateway is not None and self.metadata_route and \
            self.gateway_routed(subnet, gateway)
        routes = self.classless_routes(subnet, gateway, net, self.metadata_route, routed)
        if not dns4 and self.advertise_dns:
            # The resolver (the link-local fallback address) is on link; with
            # option 121 the client ignores option 3: the default route too.
            if not routes and gateway is not None:
                routes = encode_classless_route("0.0.0.0/0", str(gateway))
            routes = bytes((32,)) + self.fallback_server_ip + ZERO_IP + routes
        if routes:
            opts.append((OPT_CLASSLESS_ROUTES, routes))
            if OPT_MS_CLASSLESS_ROUTES in requested:
                opts.append((OPT_MS_CLASSLESS_ROUTES, routes))
        return opts

    def hostname(self, port: model.Port, lease: _Lease, network: model.Network) -> bytes:
        """Option 12, for a client that asks: the host name of the port's
        DNS assignment (its dns_name's first label, else host-<address>),
        what Neutron's dnsmasq hosts file gives."""
        domain = dnsnames.normalize_domain(network.dns_domain or self.domain)
        (entry,) = dnsnames.assignment(port.dns_name, domain, [str(lease.address)])
        return entry["hostname"].split(".")[0].encode("ascii", "replace")[:63]

    def gateway_routed(self, subnet: model.Subnet, gateway: ipaddress.IPv4Address) -> bool:
        """Whether a router of the host view holds ``subnet``'s gateway
        address (an interface of a router that is up, whose flows answer
        ARP for it and route what is sent there)."""
        for router in self.routers():
            if not router.admin_state_up:
                continue  # (compiled to nothing: its addresses go unanswered)
            for ifc in router.interfaces:
                if ifc.subnet_id == subnet.id and ifc.ip_version == 4 and \
                        ipaddress.IPv4Address(ifc.ip_address) == gateway:
                    return True
        return False

    @staticmethod
    def classless_routes(subnet: model.Subnet, gateway, net, metadata: bool = False,
                         routed: bool = True) -> bytes:
        """Option 121's value: the host routes, plus an on-link route to a
        gateway outside the subnet, plus the default route via the gateway
        (unless a host route already is a default route); with ``metadata``,
        an on-link route to 169.254.169.254 (the switch answers ARP for it
        and steers the requests to the host's proxy) when the subnet has no
        gateway or one that is not ``routed`` (no router holds it: the
        instance would ask for 169.254.169.254 at an address nobody
        answers; Neutron routes it the same way on an isolated subnet, via
        its DHCP port, and OVN on every subnet).  Through a router's
        gateway the requests reach the proxy as they are."""
        routes = []
        if metadata and (gateway is None or not routed):
            routes.append(encode_classless_route(METADATA_ROUTE, "0.0.0.0"))
        has_default = False
        for r in subnet.host_routes:
            dest = ipaddress.ip_network(r.destination, strict=False)
            if dest.version != 4 or ipaddress.ip_address(r.nexthop).version != 4:
                continue
            has_default |= dest.prefixlen == 0
            routes.append(encode_classless_route(str(dest), r.nexthop))
        if gateway is not None and gateway not in net:
            routes.insert(0, encode_classless_route("%s/32" % gateway, "0.0.0.0"))
        if not routes:
            return b""
        if gateway is not None and not has_default:
            routes.append(encode_classless_route("0.0.0.0/0", str(gateway)))
        return b"".join(routes)

    def _reply(
        self,
        msg: ClientMessage,
        mtype: int,
        lease: _Lease,
        server_id: bytes,
        network: model.Network,
        inform: bool = False,
        port: Optional[model.Port] = None,
    ) -> bytes:
        yiaddr = ZERO_IP if inform else lease.address.packed
        # RFC 2131 table 3: ciaddr is echoed in an ACK, zero in an OFFER.
        ciaddr = msg.ciaddr if mtype == ACK else ZERO_IP
        opts = [(OPT_MESSAGE_TYPE, bytes((mtype,))), (OPT_SERVER_ID, server_id)]
        opts += self.options(lease, network, msg.parameters, inform)
        if OPT_HOSTNAME in msg.parameters and port is not None:
            opts.append((OPT_HOSTNAME, self.hostname(port, lease, network)))
        # extra_dhcp_opt: the port's own options replace ours of the same
        # code (an empty value removes it).
        extra = extra_options(port, 4, client_tags4(msg.options)) if port is not None \
            and port.extra_dhcp_opts else None
        if extra is not None:
            opts = [o for o in opts if o[0] not in extra.codes]
            opts += [o for o in extra.options if o[1]]
        payload = self._bootp(msg, ciaddr, yiaddr, opts, extra)
        limit = reply_limit(network.mtu, msg.options)
        if len(payload) > limit:
            # Too big for the network or the client (a port's own options
            # can grow it without bound): what the client did not ask for
            # goes first, then what it asked for (RFC 2132 9.8: the server
            # tries to include it), each from the last (the port's own,
            # then ours); never the lease's essentials.
            size = len(payload)
            asked = set(msg.parameters or ())
            for wanted in (False, True):
                for i in range(len(opts) - 1, -1, -1):
                    if size <= limit:
                        break
                    o = opts[i]
                    if o is not None and o[0] not in _ESSENTIAL and (o[0] in asked) == wanted:
                        size -= len(encode_option(*o))
                        opts[i] = None
            opts = [o for o in opts if o is not None]
            LOG.debug("DHCP %s: reply cut to %d bytes (limit %d): options left out",
                      MESSAGE_NAMES[mtype], size, limit)
            payload = self._bootp(msg, ciaddr, yiaddr, opts, extra)
        if msg.ciaddr != ZERO_IP:
            eth_dst, ip_dst = msg.chaddr, msg.ciaddr
        elif msg.flags & FLAG_BROADCAST:
            eth_dst, ip_dst = BROADCAST_MAC, BROADCAST_IP
        else:
            eth_dst, ip_dst = msg.chaddr, yiaddr
        LOG.debug(
            "DHCP %s -> %s %s to %s",
            MESSAGE_NAMES[msg.msg_type],
            MESSAGE_NAMES[mtype],
            lease.address,
            _fmt_mac(msg.chaddr),
        )
        return build_udp_frame(
            self._server_mac,
            eth_dst,
            server_id,
            ip_dst,
            SERVER_PORT,
            CLIENT_PORT,
            payload,
            msg.vlan_tci,
        )

    def _nak(self, msg: ClientMessage, server_id: bytes) -> bytes:
        opts = [
            (OPT_MESSAGE_TYPE, bytes((NAK,))),
            (OPT_SERVER_ID, server_id),
            (OPT_MESSAGE, b"requested address is not this port's"),
        ]
        payload = self._bootp(msg, ZERO_IP, ZERO_IP, opts)
        return build_udp_frame(
            self._server_mac,
            BROADCAST_MAC,
            server_id,
            BROADCAST_IP,
            SERVER_PORT,
            CLIENT_PORT,
            payload,
            msg.vlan_tci,
        )

    @staticmethod
    def _bootp(
        msg: ClientMessage, ciaddr: bytes, yiaddr: bytes, opts: list[tuple[int, bytes]],
        extra=None,
    ) -> bytes:
        siaddr = extra.siaddr if extra is not None and extra.siaddr else ZERO_IP
        sname = extra.sname if extra is not None and extra.sname else b""
        bootfile = extra.file if extra is not None and extra.file else b""
        head = _BOOTP.pack(
            BOOTREPLY,
            HTYPE_ETHER,
            6,
            0,
            msg.xid,
            0,
            msg.flags,
            ciaddr,
            yiaddr,
            siaddr,
            msg.giaddr,
            msg.chaddr_field,
            sname,
            bootfile,
        )
        body = MAGIC_COOKIE + b"".join(encode_option(c, v) for c, v in opts)
        body += bytes((OPT_END,))
        payload = head + body
        if len(payload) < _BOOTP_MIN_LEN:
            payload += b"\x00" * (_BOOTP_MIN_LEN - len(payload))
        return payload
