"""The names a port's addresses are published under: one rule for the
server's ``dns_assignment`` and the agents' resolver, so that what the API
shows is what instances resolve.  Pure (no I/O, nothing of ours).

Every name is in the network's domain (its dns_domain, else the
``[DEFAULT] dns_domain`` of the server and agents): a relative dns_name
is put in it; a fully qualified one is taken only when it ends in the
domain with a label before it; otherwise (a name outside the domain, no
name) each address is ``host-<address>.<domain>``.  A network is shared
among its ports' owners, so no port publishes a name outside its domain.
"""

from typing import Optional


def normalize_domain(domain: Optional[str]) -> str:
    """``domain`` lower-cased with a trailing dot; "" for none or the root."""
    domain = (domain or "").strip().lower()
    if not domain or domain == ".":
        return ""
    return domain if domain.endswith(".") else domain + "."


def hostname_of(ip: str) -> str:
    """The host name of an address published without a dns_name."""
    return "host-" + ip.replace(".", "-").replace(":", "-")


def under(name: str, domain: str) -> bool:
    """Is ``name`` ``domain`` or a name below it (both fully qualified)?"""
    return name == domain or name.endswith("." + domain)


def _used(dns_name: Optional[str], domain: str) -> str:
    """``dns_name`` as published in ``domain``, or "" when it is not."""
    name = (dns_name or "").strip().lower()
    if name.endswith("."):
        return name if domain and name != domain and under(name, domain) else ""
    if "." in name and not domain:
        return ""
    return name


def published_name(dns_name: Optional[str], ip: str,
                   domain: str) -> tuple[str, Optional[str]]:
    """The fully qualified name ``ip`` of a port named ``dns_name`` is
    published as in ``domain`` (with a trailing dot, or "" for the root),
    and its single label answered on its own (or None).  A relative name
    with dots (``www.example``) is only ever ``www.example.<domain>``."""
    name = _used(dns_name, domain)
    if name.endswith("."):
        return name, None
    host = name or hostname_of(ip)
    fqdn = f"{host}.{domain}" if domain else host + "."
    bare = host + "." if "." not in host and fqdn != host + "." else None
    return fqdn, bare


def assignment(dns_name: Optional[str], domain: str, ip_addresses) -> list[dict]:
    """A port's ``dns_assignment``: {hostname, ip_address, fqdn} for each
    address, the fqdn being the name published.  The hostname is the
    port's dns_name when it is published (a fully qualified one whole, as
    Neutron shows it), else ``host-<address>``."""
    name = _used(dns_name, domain)
    return [{"hostname": name or hostname_of(ip), "ip_address": ip,
             "fqdn": published_name(name, ip, domain)[0]} for ip in ip_addresses]
