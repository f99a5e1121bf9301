"""The native DHCPv6 responder (RFC 8415): a pure function, like dhcp.py.

The pipeline punts IPv6 UDP 546 -> 547 of local ports on networks with a
``dhcpv6-stateful`` or ``dhcpv6-stateless`` subnet.  The agent calls::

    reply = responder6.handle(pin.data, port, subnets_by_id, network)
    if reply is not None:
        channel.packet_out(reply, [Output(pin.in_port)])

What is answered:

======================  ================================================
SOLICIT                 ADVERTISE with an IA_NA for each IA_NA asked for,
                        holding the port's address on its stateful subnet
                        (REPLY at once when the client offers Rapid Commit)
REQUEST, RENEW, REBIND  REPLY with the same IA_NAs; addresses the client
                        still holds that are no longer the port's are
                        returned with zero lifetimes, so it drops them
CONFIRM                 REPLY, status Success when every address is on the
                        subnet's prefix, NotOnLink otherwise
RELEASE, DECLINE        REPLY with status Success (nothing to free)
INFORMATION-REQUEST     REPLY with DNS servers (23) and domain list (24)
                        for a stateful or stateless subnet
======================  ================================================

A message is answered for its first MAX_IAS IA_NAs (one IA_NA per IAID),
reading at most MAX_IA_ADDRESSES addresses of each, and a reply never
exceeds the network's MTU: a guest's oversized request costs little.

Every REPLY/ADVERTISE carries the client's Client ID, our Server ID (a
DUID-LL built from ``server_mac``) and DNS servers (23) when the subnet has
IPv6 ones.  Messages naming another server's DUID are ignored, as are
frames whose Ethernet source is not the port's MAC (DHCPv6 has no chaddr;
port security pins the source MAC, and this check keeps the responder
honest without it).  Ports without a DHCPv6 subnet get nothing.

Replies: Ethernet ``server_mac`` -> the client's MAC, IPv6 from the
server's link-local address (EUI-64 of ``server_mac``) to the client's
source address, UDP 547 -> 546, checksum filled in.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass
from typing import Mapping, Optional

from agent.responders.dhcp import DEFAULT_SERVER_MAC, checksum, mac_bytes
from agent.responders.dhcp_options import client_tags6, extra_options
from quantum_ovs import model

LOG = logging.getLogger(__name__)

# Message types.
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE = range(1, 10)
RECONFIGURE, INFORMATION_REQUEST = 10, 11
MESSAGE_NAMES = {
    SOLICIT: "SOLICIT", ADVERTISE: "ADVERTISE", REQUEST: "REQUEST", CONFIRM: "CONFIRM",
    RENEW: "RENEW", REBIND: "REBIND", REPLY: "REPLY", RELEASE: "RELEASE",
    DECLINE: "DECLINE", RECONFIGURE: "RECONFIGURE",
    INFORMATION_REQUEST: "INFORMATION-REQUEST",
}  # fmt: skip

# Options.
OPT_CLIENTID = 1
OPT_SERVERID = 2
OPT_IA_NA = 3
OPT_IAADDR = 5
OPT_ORO = 6
OPT_PREFERENCE = 7
OPT_ELAPSED_TIME = 8
OPT_STATUS_CODE = 13
OPT_RAPID_COMMIT = 14
OPT_DNS_SERVERS = 23
OPT_DOMAIN_LIST = 24
OPT_USER_CLASS = 15

# Status codes.
STATUS_SUCCESS = 0
STATUS_NO_ADDRS_AVAIL = 2
STATUS_NOT_ON_LINK = 4

STATEFUL, STATELESS = "dhcpv6-stateful", "dhcpv6-stateless"
SERVER_PORT, CLIENT_PORT = 547, 546
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
IPPROTO_UDP = 17
EXTENSION_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options
INFINITY = 0xFFFFFFFF

# What one client message may make the responder do: the first MAX_IAS
# distinct IA_NAs are answered, each with at most MAX_IA_ADDRESSES of the
# addresses the client says it holds; the rest of the message is ignored.
# A reply never exceeds the network's MTU (IPV6_MIN_MTU when unknown).
MAX_IAS = 8
MAX_IA_ADDRESSES = 8
IPV6_MIN_MTU = 1280
IP6_UDP_HEADERS = 40 + 8


class _Malformed(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ClientMessage6:
    vlan_tci: Optional[int]
    eth_src: bytes
    ip_src: bytes
    msg_type: int
    transaction_id: bytes
    options: tuple[tuple[int, bytes], ...]  # in order, repeats kept

    def get(self, code: int) -> Optional[bytes]:
        for c, v in self.options:
            if c == code:
                return v
        return None

    def all(self, code: int) -> list[bytes]:
        return [v for c, v in self.options if c == code]


def parse_options6(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out = []
    i = 0
    while i < len(data):
        if i + 4 > len(data):
            raise _Malformed("truncated option header")
        code, length = struct.unpack_from("!HH", data, i)
        if i + 4 + length > len(data):
            raise _Malformed("option %d overruns the message" % code)
        out.append((code, bytes(data[i + 4 : i + 4 + length])))
        i += 4 + length
    return tuple(out)


def parse_client_frame6(frame: bytes) -> ClientMessage6:
    """Parse an Ethernet frame with a DHCPv6 client message (UDP 546 -> 547)."""
    frame = bytes(frame)
    if len(frame) < 14:
        raise _Malformed("short Ethernet frame")
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    off, tci = 14, None
    if ethertype == ETH_P_8021Q:
        if len(frame) < 18:
            raise _Malformed("short 802.1Q header")
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        off = 18
    if ethertype != ETH_P_IPV6:
        raise _Malformed("not IPv6")
    if len(frame) < off + 40 or frame[off] >> 4 != 6:
        raise _Malformed("bad IPv6 header")
    (plen,) = struct.unpack_from("!H", frame, off + 4)
    nxt = frame[off + 6]
    ip_src = frame[off + 8 : off + 24]
    end = off + 40 + plen
    if end > len(frame):
        raise _Malformed("IPv6 payload overruns the frame")
    i = off + 40
    while nxt in EXTENSION_HEADERS:
        if i + 8 > end:
            raise _Malformed("truncated extension header")
        nxt, hlen = frame[i], (frame[i + 1] + 1) * 8
        i += hlen
    if nxt != IPPROTO_UDP:
        raise _Malformed("not UDP (or a fragment)")
    if i + 8 > end:
        raise _Malformed("short UDP header")
    sport, dport, ulen = struct.unpack_from("!HHH", frame, i)
    if (sport, dport) != (CLIENT_PORT, SERVER_PORT):
        raise _Malformed("not UDP 546 -> 547")
    if ulen < 8 + 4 or i + ulen > end:
        raise _Malformed("bad UDP length")
    msg = frame[i + 8 : i + ulen]
    return ClientMessage6(
        vlan_tci=tci,
        eth_src=frame[6:12],
        ip_src=ip_src,
        msg_type=msg[0],
        transaction_id=msg[1:4],
        options=parse_options6(msg[4:]),
    )


def option6(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value


def status6(code: int, message: str = "") -> bytes:
    return option6(OPT_STATUS_CODE, struct.pack("!H", code) + message.encode("utf-8"))


def encode_domain_list(names) -> bytes:
    """RFC 1035 wire format, uncompressed (RFC 8415 section 10)."""
    out = bytearray()
    for name in names:
        for label in name.strip(".").split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError("bad domain label in %r" % name)
            out += bytes((len(raw),)) + raw
        out += b"\x00"
    return bytes(out)


def link_local_of(mac: bytes) -> bytes:
    """fe80::/64 with the modified EUI-64 interface identifier of ``mac``."""
    eui = bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + bytes(6) + eui


def build_udp6_frame(eth_src, eth_dst, ip_src, ip_dst, sport, dport, payload, vlan_tci=None):
    ulen = 8 + len(payload)
    pseudo = ip_src + ip_dst + struct.pack("!I3xB", ulen, IPPROTO_UDP)
    csum = checksum(pseudo + struct.pack("!HHHH", sport, dport, ulen, 0) + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, ulen, csum) + payload
    ip = struct.pack("!IHBB", 6 << 28, ulen, IPPROTO_UDP, 255) + ip_src + ip_dst
    eth = eth_dst + eth_src
    if vlan_tci is not None:
        eth += struct.pack("!HH", ETH_P_8021Q, vlan_tci)
    return eth + struct.pack("!H", ETH_P_IPV6) + ip + udp


@dataclass(frozen=True, slots=True)
class _Service:
    subnet: model.Subnet
    address: Optional[ipaddress.IPv6Address]  # None for a stateless subnet


def port_service6(port: model.Port, subnets: Mapping[str, model.Subnet]) -> Optional[_Service]:
    """The port's stateful address (preferred) or its stateless subnet."""
    stateless = None
    for fip in port.fixed_ips:
        s = subnets.get(fip.subnet_id)
        if s is None or s.ip_version != 6 or not s.enable_dhcp:
            continue
        if s.ipv6_address_mode == STATEFUL:
            return _Service(s, ipaddress.IPv6Address(fip.ip_address))
        if s.ipv6_address_mode == STATELESS and stateless is None:
            stateless = _Service(s, None)
    return stateless


class Dhcp6Responder:
    """Answers DHCPv6 client messages of one port from its logical data.

    ``lease_time`` is the valid and preferred lifetime of the address (None:
    infinite); T1/T2 are 1/2 and 4/5 of it.  ``domain`` becomes the domain
    search list (option 24).  Stateless and thread-safe like DhcpResponder.
    """

    def __init__(
        self,
        lease_time: Optional[int] = 86400,
        server_mac: str = DEFAULT_SERVER_MAC,
        domain: Optional[str] = None,
        advertise_dns: bool = False,
    ):
        if lease_time is not None and not 0 < lease_time < INFINITY:
            raise ValueError("lease_time must be a positive number of seconds or None")
        self.lease_time = lease_time
        self.server_mac = server_mac.lower()
        self._mac = mac_bytes(self.server_mac)
        self.domain = domain.strip(".") if domain else None
        self.advertise_dns = advertise_dns
        # DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), MAC.
        self.server_duid = struct.pack("!HH", 3, 1) + self._mac
        self.server_ip = link_local_of(self._mac)

    def handle(
        self,
        frame: bytes,
        port: model.Port,
        subnets: Mapping[str, model.Subnet],
        network: model.Network,
    ) -> Optional[bytes]:
        """The reply frame to send out of ``port``'s OpenFlow port, or None."""
        try:
            msg = parse_client_frame6(frame)
        except (ValueError, struct.error, IndexError) as exc:
            LOG.debug("port %s: ignoring a frame that is not a DHCPv6 request: %s", port.id, exc)
            return None
        try:
            return self._answer(msg, port, subnets, network)
        except (_Malformed, struct.error, IndexError) as exc:
            # the guest's doing: never a traceback (it could flood the log)
            LOG.debug("port %s: malformed DHCPv6 message: %s", port.id, exc)
            return None
        except Exception:
            LOG.exception("port %s: cannot answer DHCPv6 %s", port.id, msg.msg_type)
            return None

    def _answer(self, msg: ClientMessage6, port, subnets, network=None) -> Optional[bytes]:
        name = MESSAGE_NAMES.get(msg.msg_type, str(msg.msg_type))
        if msg.eth_src != mac_bytes(port.mac_address.lower()):
            LOG.debug("port %s: DHCPv6 %s from MAC %s, not the port's: dropped",
                      port.id, name, msg.eth_src.hex(":"))  # fmt: skip
            return None
        if not port.admin_state_up:
            return None
        svc = port_service6(port, subnets)
        if svc is None:
            LOG.debug("port %s has no DHCPv6 subnet: %s dropped", port.id, name)
            return None
        server_id = msg.get(OPT_SERVERID)
        if server_id is not None and server_id != self.server_duid:
            LOG.debug("port %s: DHCPv6 %s for another server", port.id, name)
            return None
        client_id = msg.get(OPT_CLIENTID)
        t = msg.msg_type
        if t == INFORMATION_REQUEST:
            return self._reply(msg, REPLY, client_id, self._config(svc.subnet, port, network, msg),
                               network)  # fmt: skip
        if svc.address is None:
            LOG.debug("port %s: stateless subnet, %s dropped", port.id, name)
            return None
        if client_id is None:
            return None  # RFC 8415 16: every stateful message carries a Client ID
        if t == SOLICIT:
            if server_id is not None:
                return None
            rapid = msg.get(OPT_RAPID_COMMIT) is not None
            config = self._config(svc.subnet, port, network, msg)
            room = self._room(client_id, network) - len(config) - len(option6(
                OPT_RAPID_COMMIT, b""))
            body = self._ia_nas(self._client_ias(msg), svc, room)
            if not body:  # only IA_TA / IA_PD asked for: none to give
                rapid = False
                body = status6(STATUS_NO_ADDRS_AVAIL, "only IA_NA is served")
            if rapid:
                body += option6(OPT_RAPID_COMMIT, b"")
            body += config
            return self._reply(msg, REPLY if rapid else ADVERTISE, client_id, body, network)
        if t in (REQUEST, RENEW, REBIND):
            if (server_id is not None) != (t in (REQUEST, RENEW)):
                return None  # REQUEST and RENEW name a server; REBIND does not
            config = self._config(svc.subnet, port, network, msg)
            room = self._room(client_id, network) - len(config)
            return self._reply(msg, REPLY, client_id,
                               self._ia_nas(self._client_ias(msg), svc, room) + config,
                               network)  # fmt: skip
        if t == CONFIRM:
            net = ipaddress.IPv6Network(svc.subnet.cidr, strict=False)
            addrs = [a for held in self._client_ias(msg).values() for a in held]
            ok = bool(addrs) and all(a in net for a in addrs)
            if not addrs:
                return None  # RFC 8415 18.3.3: nothing to confirm, no reply
            code = STATUS_SUCCESS if ok else STATUS_NOT_ON_LINK
            return self._reply(msg, REPLY, client_id, status6(code), network)
        if t in (RELEASE, DECLINE):
            if server_id is None:
                return None
            if t == DECLINE:
                LOG.warning("port %s: the client declined %s", port.id, svc.address)
            return self._reply(msg, REPLY, client_id, status6(STATUS_SUCCESS), network)
        return None

    # ------------------------------------------------------------ pieces
    @staticmethod
    def _client_ias(msg: ClientMessage6) -> dict[bytes, list[ipaddress.IPv6Address]]:
        """The addresses the client holds in its IA_NAs, by IAID, in the
        order asked: the first MAX_IAS IAIDs, MAX_IA_ADDRESSES addresses
        each (IA_NAs repeating an IAID add to its list).  Linear in the
        message's length, whatever it holds."""
        ias: dict[bytes, list[ipaddress.IPv6Address]] = {}
        for ia in msg.all(OPT_IA_NA):
            if len(ia) < 12:
                raise _Malformed("short IA_NA")
            held = ias.get(ia[:4])
            if held is None:
                if len(ias) >= MAX_IAS:
                    continue
                held = ias[ia[:4]] = []
            if len(held) >= MAX_IA_ADDRESSES:
                continue
            for code, value in parse_options6(ia[12:]):
                if code == OPT_IAADDR and len(value) >= 24:
                    addr = ipaddress.IPv6Address(value[:16])
                    if addr not in held:
                        held.append(addr)
                        if len(held) >= MAX_IA_ADDRESSES:
                            break
        return ias

    @staticmethod
    def _payload_limit(network) -> int:
        """The largest DHCPv6 message that fits the network's MTU."""
        mtu = getattr(network, "mtu", None) or IPV6_MIN_MTU
        return mtu - IP6_UDP_HEADERS

    def _ids(self, client_id) -> bytes:
        return (option6(OPT_CLIENTID, client_id) if client_id is not None else b"") + \
            option6(OPT_SERVERID, self.server_duid)

    def _room(self, client_id, network) -> int:
        """What a reply has left for its options past the header and IDs."""
        return self._payload_limit(network) - 4 - len(self._ids(client_id))

    def _ia_nas(self, ias: dict, svc: _Service, room: int) -> bytes:
        """One IA_NA per IAID of the request holding the port's address;
        anything else the client holds comes back with zero lifetimes.
        IA_TA and IA_PD are not served.  At most ``room`` bytes: IA_NAs,
        then the addresses to drop, that do not fit are left out."""
        if self.lease_time is None:
            t1 = t2 = valid = INFINITY
        else:
            valid = self.lease_time
            t1, t2 = valid // 2, valid * 4 // 5
        own = option6(OPT_IAADDR, svc.address.packed + struct.pack("!II", valid, valid))
        out = b""
        for iaid, held in ias.items():
            inner = own
            if len(out) + 16 + len(inner) > room:
                break
            for addr in held:
                if addr == svc.address:
                    continue
                gone = option6(OPT_IAADDR, addr.packed + struct.pack("!II", 0, 0))
                if len(out) + 16 + len(inner) + len(gone) > room:
                    break
                inner += gone
            out += option6(OPT_IA_NA, iaid + struct.pack("!II", t1, t2) + inner)
        return out

    def _config(self, subnet: model.Subnet, port=None, network=None, msg=None) -> bytes:
        """DNS servers (the subnet's; without them, with ``advertise_dns``,
        the gateway: the agent's DNS responder), the domain (the network's
        dns_domain, else ours), then the port's extra options, which
        replace ours of the same code."""
        opts = []
        dns = [ipaddress.ip_address(a) for a in subnet.dns_nameservers]
        dns6 = b"".join(a.packed for a in dns if a.version == 6)
        if not dns6 and self.advertise_dns and subnet.gateway_ip:
            dns6 = ipaddress.IPv6Address(subnet.gateway_ip).packed
        if dns6:
            opts.append((OPT_DNS_SERVERS, dns6))
        domain = ((network.dns_domain if network is not None else "") or "").strip(".") \
            or self.domain
        if domain:
            opts.append((OPT_DOMAIN_LIST, encode_domain_list([domain])))
        if port is not None and port.extra_dhcp_opts:
            user_class = (msg.get(OPT_USER_CLASS) if msg is not None else None) or b""
            extra = extra_options(port, 6, client_tags6(user_class))
            opts = [o for o in opts if o[0] not in extra.codes]
            opts += [o for o in extra.options if o[1]]
        return b"".join(option6(c, v) for c, v in opts)

    def _reply(self, msg: ClientMessage6, mtype: int, client_id, body: bytes,
               network=None) -> Optional[bytes]:
        payload = bytes((mtype,)) + msg.transaction_id + self._ids(client_id) + body
        if len(payload) > self._payload_limit(network):
            LOG.debug("DHCPv6 %s: a %d-byte %s would not fit the MTU: dropped",
                      MESSAGE_NAMES.get(msg.msg_type), len(payload), MESSAGE_NAMES[mtype])
            return None
        LOG.debug("DHCPv6 %s -> %s", MESSAGE_NAMES.get(msg.msg_type), MESSAGE_NAMES[mtype])
        return build_udp6_frame(
            self._mac, msg.eth_src, self.server_ip, msg.ip_src, SERVER_PORT, CLIENT_PORT,
            payload, msg.vlan_tci,
        )  # fmt: skip
