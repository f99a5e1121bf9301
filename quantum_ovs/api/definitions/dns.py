"""Internal DNS: ``dns_name`` and ``dns_assignment`` on ports,
``dns_domain`` on networks (dns-integration) and on ports
(dns-domain-ports).

A name is a DNS label, or several (a relative name), or a fully qualified
name ending with a dot.  Lower-cased on the way in.  Within the limits
of RFC 1035 (labels of 1 to 63 characters among letters, digits and
hyphens, not starting or ending with a hyphen, a whole name of at most
255 characters) and, as Neutron's, a top-level label that is not all
digits.  A port's relative name must leave room for the domain that is
appended to it; a fully qualified one must end in that domain unless the
domain is the default openstacklocal. (checked by the extension, which
knows the domain).  A dns_domain is fully qualified (a trailing dot), as
neutron-lib's.  What a port's addresses are published as
(``dns_assignment``) is quantum_ovs.dnsnames'.
"""

import re

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr

# dns-integration is advertised with or without the router service plugin
# (Neutron's requires l3): a port's names work without routers, and nova
# names its ports by it; without routers there are no floating IPs to
# carry its other half (api/definitions/floatingips.py).
ALIASES = [
    {"alias": "dns-integration", "name": "DNS Integration",
     "description": "Provides integration with DNS: dns_name and dns_assignment on ports, "
                    "dns_domain on networks."},
    {"alias": "dns-domain-ports", "name": "dns_domain for ports",
     "description": "Allows the DNS domain to be specified for a network port."},
]

DNS_NAME = "dns_name"
DNS_ASSIGNMENT = "dns_assignment"
DNS_DOMAIN = "dns_domain"

DEFAULT_DOMAIN = "openstacklocal."
FQDN_MAX_LEN = 255
LABEL_MAX_LEN = 63
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def labels_of(name, what):
    """The labels of ``name`` (no trailing dot), or InvalidInput."""
    body = name[:-1] if name.endswith(".") else name
    if not body:
        raise v.bad(f"'{name}' is not a valid {what}: it has no labels")
    labels = body.split(".")
    for label in labels:
        if not label:
            raise v.bad(f"'{name}' is not a valid {what}: it has an empty label")
        if len(label) > LABEL_MAX_LEN:
            raise v.bad(f"'{name}' is not a valid {what}: the label '{label[:20]}...' is "
                        f"longer than {LABEL_MAX_LEN} characters")
        if not _LABEL.match(label):
            raise v.bad(f"'{name}' is not a valid {what}: the label '{label}' has "
                        "characters other than letters, digits and hyphens, or starts "
                        "or ends with a hyphen")
    if len(labels) > 1 and labels[-1].isdigit():
        raise v.bad(f"'{name}' is not a valid {what}: its top-level label is all digits")
    return labels


def _name_text(value, what):
    """Lower-cased, as Neutron's convert_string_to_case_insensitive: a name
    with blanks around it is not trimmed but refused by the label rule,
    and null is not "no name" but refused like any other non-string (""
    is no name)."""
    if not isinstance(value, str):
        shown = "null" if value is None else f"'{value}'"
        raise v.bad(f"{shown} is not a valid string for {what} (\"\" for none)")
    value = value.lower()
    if len(value) > FQDN_MAX_LEN:
        raise v.bad(f"'{value[:40]}...' is not a valid {what}: it is longer than "
                    f"{FQDN_MAX_LEN} characters")
    return value


def dns_name(value, name=DNS_NAME):
    """A port's dns_name: "" (none), a relative name or an FQDN."""
    value = _name_text(value, "dns_name")
    if value:
        labels_of(value, "dns_name")
    return value


def _name_with_room(value, what, fqdn, room, error):
    """A name that is fully qualified (``fqdn``) or relative, with
    ``room`` characters left under FQDN_MAX_LEN for what is added to it."""
    value = _name_text(value, what)
    if not value:
        return ""
    if value.endswith(".") != fqdn:
        raise v.bad(f"'{value}' {error}")
    labels_of(value, what)
    if len(value) > FQDN_MAX_LEN - room:
        raise v.bad(f"'{value[:40]}...' has {len(value)} characters: with what is added "
                    f"to it, a name would be longer than {FQDN_MAX_LEN}")
    return value


def dns_domain(value, name=DNS_DOMAIN):
    """A dns_domain: "" (none) or a fully qualified domain name (with its
    trailing dot) that leaves room for a label in front of it, as
    neutron-lib's validate_dns_domain."""
    return _name_with_room(value, "dns_domain", True, 2,
                           "is not a FQDN: a dns_domain ends with a dot")


def fip_dns_name(value, name=DNS_NAME):
    """A floating IP's dns_name: "" or a relative name that leaves room for
    a domain (neutron-lib's validate_fip_dns_name)."""
    return _name_with_room(value, "dns_name", False, 3,
                           "is a FQDN: a floating IP's dns_name is a relative name")


def lowered(value, name="value"):
    """A filter value on a name: lower-cased, not validated (as Neutron's,
    which converts filter values but does not check them: an invalid name
    matches nothing)."""
    if not isinstance(value, str):
        raise v.bad(f"'{value}' is not a valid string for {name}")
    return value.lower()


def check_name_in_domain(name, domain):
    """Neutron's rule for a port's dns_name given the domain it lives in
    (with a trailing dot): a relative name must fit in front of the domain;
    a fully qualified one must end in it, with at least one label before."""
    if not name:
        return
    if name.endswith("."):
        # Neutron checks a fully qualified name only against a domain that
        # is not its default (openstacklocal.).
        if domain and domain != DEFAULT_DOMAIN and (
                not name.endswith("." + domain) or name == domain):
            raise exceptions.InvalidInput(
                error_message=f"The dns_name '{name}' is a fully qualified name that does "
                              f"not end in the DNS domain '{domain}' with a host name "
                              "before it")
        return
    if len(name) + 1 + len(domain) > FQDN_MAX_LEN:
        raise exceptions.InvalidInput(
            error_message=f"The dns_name '{name[:40]}...' and the DNS domain '{domain}' "
                          f"make a name longer than {FQDN_MAX_LEN} characters")


RESOURCE_ATTRIBUTE_MAP = {
    "ports": {
        DNS_NAME: Attr(dns_name, allow_put=True, default="", convert_filter=lowered,
                       is_sort_key=False),
        DNS_ASSIGNMENT: Attr(None, allow_post=False, is_filter=False, is_sort_key=False),
        DNS_DOMAIN: Attr(dns_domain, allow_put=True, default="", convert_filter=lowered,
                         is_sort_key=False),
    },
    "networks": {
        DNS_DOMAIN: Attr(dns_domain, allow_put=True, default="", convert_filter=lowered,
                         is_sort_key=False),
    },
}
