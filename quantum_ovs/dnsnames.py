"""The names a port's addresses are published under: one rule for the
server's ``dns_assignment`` and the agents' resolver, so that what the API
shows is what instances resolve.  Pure (no I/O, nothing of ours).

Every name is in the network's domain (its dns_domain, else the
``[DEFAULT] dns_domain`` of the server and agents): a relative dns_name
is put in it; a fully qualified one is taken only when it ends in the
domain with a label before it; otherwise (a name outside the domain, no
name) each address is ``host-<address>.<domain>``.  A network is shared
among its ports' owners, so no port publishes a name outside its domain.

A name is published only when DNS can carry it: at most 255 octets on
the wire (RFC 1035 2.3.4), i.e. 253 characters of dotted text before the
final dot, in labels of 1 to 63.  The API takes Neutron's limit, 255
characters of text, and a network's domain may grow after its ports are
named: a dns_name whose name would be longer is published as
``host-<address>.<domain>``, and an address whose host name does not fit
either (a domain of some 240 characters for IPv4, less for IPv6) has no
name (``fqdn`` "").
"""

from typing import Optional

# The longest name on the wire: a length octet before each label and the
# root's zero octet after them, so one octet more than the dotted text
# with its final dot.
NAME_MAX_OCTETS = 255
LABEL_MAX_OCTETS = 63


def normalize_domain(domain: Optional[str]) -> str:
    """``domain`` lower-cased with a trailing dot; "" for none or the root."""
    domain = (domain or "").strip().lower()
    if not domain or domain == ".":
        return ""
    return domain if domain.endswith(".") else domain + "."


def hostname_of(ip: str) -> str:
    """The host name of an address published without a dns_name."""
    return "host-" + ip.replace(".", "-").replace(":", "-")


def fits(fqdn: str) -> bool:
    """Can DNS carry ``fqdn`` (fully qualified, with its final dot)?
    The rule both the server's dns_assignment and the agents' zones
    follow, so that neither publishes a name the other does not."""
    try:
        raw = fqdn.encode("ascii")
    except UnicodeError:
        return False
    labels = raw[:-1].split(b".") if raw.endswith(b".") else [b""]
    return len(raw) + 1 <= NAME_MAX_OCTETS and \
        all(0 < len(label) <= LABEL_MAX_OCTETS for label in labels)


def under(name: str, domain: str) -> bool:
    """Is ``name`` ``domain`` or a name below it (both fully qualified)?"""
    return name == domain or name.endswith("." + domain)


def _fqdn(host: str, domain: str) -> str:
    return f"{host}.{domain}" if domain else host + "."


def _used(dns_name: Optional[str], domain: str) -> str:
    """``dns_name`` as published in ``domain``, or "" when it is not."""
    name = (dns_name or "").strip().lower()
    if name.endswith("."):
        return name if domain and name != domain and under(name, domain) and \
            fits(name) else ""
    if "." in name and not domain:
        return ""
    # (a relative name that fitted until its network's domain grew, or one
    # of up to 255 characters with its domain, which the API takes as
    # Neutron does)
    return name if not name or fits(_fqdn(name, domain)) else ""


def published_name(dns_name: Optional[str], ip: str,
                   domain: str) -> tuple[str, Optional[str]]:
    """The fully qualified name ``ip`` of a port named ``dns_name`` is
    published as in ``domain`` (with a trailing dot, or "" for the root),
    and its single label answered on its own (or None); ("", None) when
    no name of it fits in ``domain``.  A relative name with dots
    (``www.example``) is only ever ``www.example.<domain>``."""
    name = _used(dns_name, domain)
    if name.endswith("."):
        return name, None
    host = name or hostname_of(ip)
    fqdn = _fqdn(host, domain)
    if not fits(fqdn):
        return "", None
    bare = host + "." if "." not in host and fqdn != host + "." else None
    return fqdn, bare


def assignment(dns_name: Optional[str], domain: str, ip_addresses) -> list[dict]:
    """A port's ``dns_assignment``: {hostname, ip_address, fqdn} for each
    address, the fqdn being the name published.  The hostname is the
    port's dns_name when it is published (a fully qualified one whole, as
    Neutron shows it), else ``host-<address>``; the fqdn is "" for an
    address that has no name (none fits in ``domain``)."""
    name = _used(dns_name, domain)
    return [{"hostname": name or hostname_of(ip), "ip_address": ip,
             "fqdn": published_name(name, ip, domain)[0]} for ip in ip_addresses]
