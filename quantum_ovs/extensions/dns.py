"""Internal DNS (dns-integration, dns-domain-ports): ``dns_name``,
``dns_assignment`` and ``dns_domain`` on ports, ``dns_domain`` on
networks.

A port's names are its dns_name, or ``host-<address>`` for each address
when it has none or one outside the domain, in the network's dns_domain
or else ``[DEFAULT] dns_domain`` (the domain the hosts' agents answer for
and hand out by DHCP, when the network has none): ``dns_assignment`` is
what the agents publish (quantum_ovs.dnsnames, one rule for both).
Neutron does not make names unique within a network and neither do we:
the agents answer a shared name with every address.  A change of
dns_name is a port update, and of a network's dns_domain a network
update: the hosts of the network learn of it through the change log like
of any other.  A port's own dns_domain is kept and shown (it is for an
external DNS service, which we do not drive).  A floating IP takes a
dns_name and dns_domain on create and shows them empty, as Neutron does
without an external DNS driver (quantum_ovs/api/definitions/floatingips.py).
"""

import operator

from oslo_config import cfg

from quantum_ovs.api import definitions
from quantum_ovs.api.definitions.dns import (
    DEFAULT_DOMAIN,
    DNS_ASSIGNMENT,
    DNS_DOMAIN,
    DNS_NAME,
    check_name_in_domain,
    dns_domain,
)
from quantum_ovs.db import models
from quantum_ovs.dnsnames import assignment, normalize_domain

DEFINITION = definitions.dns

_IP_ADDRESS = operator.attrgetter("ip_address")

OPTS = [
    ("DEFAULT", [
        cfg.StrOpt("dns_domain", default=DEFAULT_DOMAIN,
                   help="The DNS domain of the ports' names (dns_assignment) on networks "
                        "without a dns_domain of their own; the agents' [DEFAULT] "
                        "dns_domain should be the same."),
    ]),
]


def default_domain(conf):
    try:
        return dns_domain(normalize_domain(conf.dns_domain)) or DEFAULT_DOMAIN
    except Exception:  # noqa: BLE001 - a bad option: the default, not a 500 per request
        return DEFAULT_DOMAIN


def setup(plugin, conf):
    fallback = default_domain(conf)

    def domain_of(network_domain):
        return network_domain or fallback

    def network_domain(s, port):
        net = s.get(models.Network, port.network_id)
        return net.dns_domain if net is not None else ""

    def on_port_create(s, ctx, port, a):
        name = a.get(DNS_NAME) or ""
        check_name_in_domain(name, domain_of(network_domain(s, port)))
        port.dns_name = name
        port.dns_domain = a.get(DNS_DOMAIN) or ""

    def on_port_update(s, ctx, port, a):
        if DNS_NAME in a:
            name = a[DNS_NAME] or ""
            check_name_in_domain(name, domain_of(network_domain(s, port)))
            port.dns_name = name
        if DNS_DOMAIN in a:
            port.dns_domain = a[DNS_DOMAIN] or ""

    def on_network_write(s, ctx, net, a):
        if DNS_DOMAIN in a:
            net.dns_domain = a[DNS_DOMAIN] or ""

    def extend_port(port, d):
        name = d[DNS_NAME] = port.dns_name or ""
        d[DNS_DOMAIN] = port.dns_domain or ""
        # (domain_of, inline: a listing extends thousands)
        d[DNS_ASSIGNMENT] = assignment(name, port.network_dns_domain or fallback,
                                       list(map(_IP_ADDRESS, port.fixed_ips)))

    def extend_network(net, d):
        d[DNS_DOMAIN] = net.dns_domain or ""

    plugin.add_hook("ports", "create", on_port_create)
    plugin.add_hook("ports", "update", on_port_update)
    plugin.add_hook("networks", "create", on_network_write)
    plugin.add_hook("networks", "update", on_network_write)
    plugin.add_dict_extender("ports", extend_port)
    plugin.add_dict_extender("networks", extend_network)
