"""A port's extra DHCP options (extra_dhcp_opt) as the DHCPv4 and DHCPv6
responders send them.

Names as dnsmasq (and so Neutron) takes them: dnsmasq's option names
(``bootfile-name``, ``tftp-server``, ``dns-server``, ``mtu`` ...), their
numbers (``67``), ``option:``/``option6:`` prefixes, and ``tag:<t>,``
prefixes, of which those Neutron's dnsmasq sets for an iPXE client are
honoured: ``ipxe`` / ``!ipxe`` for DHCPv4 (its user class, option 77,
says "iPXE", or it sends option 175), ``ipxe6`` / ``!ipxe6`` for DHCPv6
(its user class, option 15, says "iPXE"; what Ironic's IPv6 options
use); an option behind any other tag is not sent.  ``server-ip-address``
is not an option but the BOOTP ``siaddr`` (the next server of a PXE
boot); DHCPv4 ``bootfile-name`` and ``tftp-server`` also fill the BOOTP
``file`` and ``sname`` fields, which older PXE ROMs read.

Values are encoded by the option's type (addresses, names, integers,
strings); IPv6 addresses bare or in brackets as dnsmasq(8) writes them
("[2001:db8::1]"); DHCPv6 ``ntp-server`` (56) as RFC 5908 sub-options.
A number that we do not know the type of is sent as addresses
when the value is a list of them, as bytes when it is hex pairs
("01:02:ff"), else as text.  An option whose value cannot be encoded is
left out (logged), never an error of the whole reply.

A port's options are resolved once (per port and change of its options:
a new view with the same options keeps them), not per request: a DHCP
request costs the selection of the resolved options by the client's
tags, and an unusable option is logged once.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
import threading
from dataclasses import dataclass
from typing import Iterable, Optional

from quantum_ovs import model

LOG = logging.getLogger(__name__)

# value types
ADDRS, ADDR_PAIRS, TEXT, U8, U16, U32, S32, BOOL, DOMAINS, ROUTES121, HEX, NTP6 = range(12)

# DHCPv4: dnsmasq's names -> (code, type)
V4 = {
    "netmask": (1, ADDRS), "time-offset": (2, S32), "router": (3, ADDRS),
    "dns-server": (6, ADDRS), "log-server": (7, ADDRS), "lpr-server": (9, ADDRS),
    "hostname": (12, TEXT), "boot-file-size": (13, U16), "domain-name": (15, TEXT),
    "swap-server": (16, ADDRS), "root-path": (17, TEXT), "extension-path": (18, TEXT),
    "ip-forward-enable": (19, BOOL), "non-local-source-routing": (20, BOOL),
    "policy-filter": (21, ADDR_PAIRS), "max-datagram-reassembly": (22, U16),
    "default-ttl": (23, U8), "mtu": (26, U16), "all-subnets-local": (27, BOOL),
    "broadcast": (28, ADDRS), "router-discovery": (31, BOOL),
    "router-solicitation": (32, ADDRS), "static-route": (33, ADDR_PAIRS),
    "trailer-encapsulation": (34, BOOL), "arp-timeout": (35, U32),
    "ethernet-encap": (36, BOOL), "tcp-ttl": (37, U8), "tcp-keepalive": (38, U32),
    "nis-domain": (40, TEXT), "nis-server": (41, ADDRS), "ntp-server": (42, ADDRS),
    "vendor-encap": (43, HEX), "netbios-ns": (44, ADDRS), "netbios-dd": (45, ADDRS),
    "netbios-nodetype": (46, U8), "netbios-scope": (47, TEXT), "x-windows-fs": (48, ADDRS),
    "x-windows-dm": (49, ADDRS), "lease-time": (51, U32), "T1": (58, U32), "T2": (59, U32),
    "vendor-class": (60, TEXT), "nis+-domain": (64, TEXT), "nis+-server": (65, ADDRS),
    "tftp-server": (66, TEXT), "bootfile-name": (67, TEXT), "mobile-ip-home": (68, ADDRS),
    "smtp-server": (69, ADDRS), "pop3-server": (70, ADDRS), "nntp-server": (71, ADDRS),
    "irc-server": (74, ADDRS), "user-class": (77, TEXT), "client-arch": (93, U16),
    "domain-search": (119, DOMAINS), "classless-static-route": (121, ROUTES121),
    "tftp-server-address": (150, ADDRS),
}
# DHCPv6 (dnsmasq's option6 names) -> (code, type)
V6 = {
    "sip-server-domain": (21, DOMAINS), "sip-server": (22, ADDRS), "dns-server": (23, ADDRS),
    "domain-search": (24, DOMAINS), "nis-server": (27, ADDRS), "nis+-server": (28, ADDRS),
    "nis-domain": (29, DOMAINS), "nis+-domain": (30, DOMAINS), "sntp-server": (31, ADDRS),
    "information-refresh-time": (32, U32), "ntp-server": (56, NTP6),
    "bootfile-url": (59, TEXT), "bootfile-param": (60, TEXT),
}
V4_BY_CODE = {code: t for code, t in V4.values()}
V6_BY_CODE = {code: t for code, t in V6.values()}
# Codes the responders own: never replaced by an extra option.
V4_RESERVED = frozenset({0, 50, 51, 52, 53, 54, 55, 57, 58, 59, 61, 255})
V6_RESERVED = frozenset({1, 2, 3, 4, 5, 6, 8, 13, 14})
SERVER_IP_ADDRESS = "server-ip-address"
OPT_BOOTFILE, OPT_TFTP_SERVER = 67, 66


@dataclass(frozen=True, slots=True)
class Extra:
    """The extra options of one reply: (code, value) pairs, the BOOTP
    fields (DHCPv4 only, None: unchanged)."""

    options: tuple[tuple[int, bytes], ...] = ()
    siaddr: Optional[bytes] = None
    sname: Optional[bytes] = None
    file: Optional[bytes] = None

    @property
    def codes(self) -> frozenset:
        return frozenset(c for c, _ in self.options)


def _address(part, version):
    """One address of an option's value; an IPv6 one bare or, as
    dnsmasq(8) spells it, in brackets."""
    if version == 6 and part.startswith("[") and part.endswith("]"):
        part = part[1:-1]
    a = ipaddress.ip_address(part)
    if a.version != version:
        raise ValueError("not an IPv%d address: %s" % (version, part))
    return a


def _addrs(value, version):
    out = b""
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        if version == 4 and part == "0.0.0.0":
            out += b"\x00" * 4
            continue
        out += _address(part, version).packed
    return out


# RFC 5908 sub-options of DHCPv6 option 56
NTP_SUBOPTION_SRV_ADDR, NTP_SUBOPTION_MC_ADDR, NTP_SUBOPTION_SRV_FQDN = 1, 2, 3


def _ntp6(value):
    """DHCPv6 ntp-server: one RFC 5908 sub-option per server, as dnsmasq
    sends them: an address (bare or in brackets) as a server address, a
    multicast one as a multicast address, a name as an FQDN (DNS wire
    form).  Clients read nothing but sub-options here: bare addresses
    would be taken as a sub-option header and the option dropped."""
    out = b""
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        if ":" in part or "[" in part or _looks_addr(part, 4):
            a = _address(part, 6)  # (an IPv4 or malformed address: ValueError)
            code = NTP_SUBOPTION_MC_ADDR if a.is_multicast else NTP_SUBOPTION_SRV_ADDR
            body = a.packed
        else:
            code, body = NTP_SUBOPTION_SRV_FQDN, _domains(part)
        out += struct.pack("!HH", code, len(body)) + body
    return out


def _domains(value):
    out = b""
    for name in value.replace(" ", "").split(","):
        name = name.strip(".")
        if not name:
            continue
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError("bad domain %r" % name)
            out += bytes((len(raw),)) + raw
        out += b"\x00"
    return out


def _routes121(value):
    """'dest/len,router,dest/len,router' (dnsmasq's spelling)."""
    parts = [p for p in value.replace(" ", "").split(",") if p]
    if len(parts) % 2:
        raise ValueError("classless-static-route needs destination,router pairs")
    out = b""
    for dest, router in zip(parts[::2], parts[1::2]):
        net = ipaddress.IPv4Network(dest, strict=False)
        out += bytes((net.prefixlen,)) + net.network_address.packed[:(net.prefixlen + 7) // 8]
        out += ipaddress.IPv4Address(router).packed
    return out


def _hex(value):
    return bytes(int(x, 16) for x in value.split(":")) if value else b""


def _guess(value, version):
    try:
        if value and all(_looks_addr(p, version) for p in value.split(",")):
            return _addrs(value, version)
    except ValueError:
        pass
    try:
        if ":" in value and all(len(x) == 2 for x in value.split(":")):
            return _hex(value)
    except ValueError:
        pass
    return value.encode("utf-8")


def _looks_addr(part, version):
    try:
        return _address(part.strip(), version).version == version
    except ValueError:
        return False


def encode(kind, value: str, version: int) -> bytes:
    if kind == ADDRS:
        return _addrs(value, version)
    if kind == ADDR_PAIRS:
        return _addrs(value, 4)
    if kind == TEXT:
        return value.encode("utf-8")
    if kind == BOOL:
        return bytes((1 if value.strip().lower() in ("1", "true", "yes", "on") else 0,))
    if kind in (U8, U16, U32, S32):
        fmt = {U8: "!B", U16: "!H", U32: "!I", S32: "!i"}[kind]
        return struct.pack(fmt, int(value, 0))
    if kind == DOMAINS:
        return _domains(value)
    if kind == ROUTES121:
        return _routes121(value)
    if kind == HEX:
        return _hex(value)
    if kind == NTP6:
        return _ntp6(value)
    return _guess(value, version)


def split_name(opt_name: str):
    """(tags, name): ``tag:a,tag:!b,option:name`` -> (["a", "!b"], "name")."""
    parts = [p.strip() for p in opt_name.split(",")]
    tags = [p[4:] for p in parts[:-1] if p.startswith("tag:")]
    if len(tags) != len(parts) - 1:
        return None, None
    name = parts[-1]
    for prefix in ("option6:", "option:"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return tags, name


def _tags_hold(tags, client_tags) -> bool:
    for t in tags:
        neg = t.startswith("!")
        t = t[1:] if neg else t
        if (t in client_tags) == neg:
            return False
    return True


# Resolved options of the ports seen lately: port id -> (its options as
# resolved, {version: usable options, (version, client tags): Extra}).
# A port's options are resolved (and an unusable one logged) once, not on
# every request: again only when they change (a view with equal options
# keeps what was resolved).
_RESOLVED: dict = {}
_RESOLVED_MAX = 4096  # ports; past it the oldest are forgotten
_LOCK = threading.Lock()
_SIADDR = -1  # the code of server-ip-address (BOOTP siaddr) among the resolved


def _resolve(port_id: str, opts, version: int) -> tuple:
    """The usable options of this IP version, in order: (tags, code,
    value); code _SIADDR for server-ip-address.  Unusable ones are logged
    (here: once per port and change of its options) and left out."""
    table, by_code = (V4, V4_BY_CODE) if version == 4 else (V6, V6_BY_CODE)
    reserved = V4_RESERVED if version == 4 else V6_RESERVED
    limit = 255 if version == 4 else 65535
    out = []
    for opt in opts:
        if opt.ip_version != version:
            continue
        tags, name = split_name(opt.opt_name)
        if name is None:
            continue
        try:
            if version == 4 and name == SERVER_IP_ADDRESS:
                out.append((tuple(tags), _SIADDR,
                            ipaddress.IPv4Address(opt.opt_value.strip()).packed))
                continue
            if name.isdigit():
                code = int(name)
                kind = by_code.get(code)
            elif name in table:
                code, kind = table[name]
            else:
                LOG.debug("port %s: unknown DHCPv%d option %r left out", port_id, version,
                          opt.opt_name)
                continue
            if code in reserved or not 0 < code < limit:
                continue
            value = encode(kind, opt.opt_value, version)
        except (ValueError, struct.error, UnicodeError) as exc:
            LOG.warning("port %s: extra DHCP option %s=%r left out: %s", port_id,
                        opt.opt_name, opt.opt_value, exc)
            continue
        out.append((tuple(tags), code, value))
    return tuple(out)


def _select(resolved: tuple, version: int, client_tags: frozenset) -> Extra:
    # Later entries win over earlier ones of the same code; an untagged
    # option loses to a tagged one that holds (dnsmasq: the more specific).
    chosen: dict[int, tuple[int, bytes]] = {}
    siaddr = sname = file = None
    for tags, code, value in resolved:
        if not _tags_hold(tags, client_tags):
            continue
        if code == _SIADDR:
            siaddr = value
            continue
        specificity = len(tags)
        if code not in chosen or chosen[code][0] <= specificity:
            chosen[code] = (specificity, value)
    if version == 4:
        boot = chosen.get(OPT_BOOTFILE, (0, b""))[1]
        file = boot if 0 < len(boot) < 128 else None
        tftp = chosen.get(OPT_TFTP_SERVER, (0, b""))[1]
        sname = tftp if 0 < len(tftp) < 64 else None
    return Extra(tuple((c, v) for c, (_, v) in chosen.items()), siaddr, sname, file)


def extra_options(port: model.Port, version: int, client_tags: Iterable[str] = ()) -> Extra:
    """The port's extra options of this IP version that hold for a client
    with ``client_tags`` (e.g. {"ipxe"})."""
    client_tags = frozenset(client_tags)
    opts = port.extra_dhcp_opts
    with _LOCK:
        entry = _RESOLVED.get(port.id)
        if entry is None or (entry[0] is not opts and entry[0] != opts):
            entry = (opts, {})
            _RESOLVED.pop(port.id, None)
            while len(_RESOLVED) >= _RESOLVED_MAX:
                del _RESOLVED[next(iter(_RESOLVED))]
            _RESOLVED[port.id] = entry
        elif entry[0] is not opts:  # equal options of a newer view
            entry = _RESOLVED[port.id] = (opts, entry[1])
        done = entry[1]
        extra = done.get((version, client_tags))
        if extra is None:
            resolved = done.get(version)
            if resolved is None:
                resolved = done[version] = _resolve(port.id, opts, version)
            extra = _select(resolved, version, client_tags)
            if len(done) < 8:  # (clients have two sets of tags: iPXE or not)
                done[(version, client_tags)] = extra
    return extra


def client_tags4(options) -> frozenset:
    """Tags of a DHCPv4 client from its options: "ipxe" for iPXE (user
    class "iPXE", or its option 175)."""
    uc = options.get(77, b"")
    return frozenset({"ipxe"}) if b"iPXE" in uc or 175 in options else frozenset()


def client_tags6(user_class: bytes) -> frozenset:
    """Tags of a DHCPv6 client from its user class (option 15): "ipxe6"
    for iPXE, the tag Neutron's dnsmasq sets for it (and Ironic's IPv6
    options name), not DHCPv4's "ipxe"."""
    return frozenset({"ipxe6"}) if b"iPXE" in user_class else frozenset()
