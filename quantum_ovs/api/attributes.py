"""The declarative attribute map: one entry per attribute of each resource.

It drives request validation (types, defaults, allow_post/allow_put),
which attributes can be filtered and sorted on, and what is shown.
Extensions add attributes by extending RESOURCES before the app is built
(see ``extend``).
"""

import copy
from dataclasses import dataclass
from typing import Any, Callable, Optional

from quantum_ovs.api import validators as v

class _NotSet:
    """The 'no default' sentinel; survives deepcopy as itself."""

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __repr__(self):
        return "NOT_SET"


NOT_SET = _NotSet()


@dataclass
class Attr:
    validate: Callable = None
    allow_post: bool = True
    allow_put: bool = False
    default: Any = NOT_SET
    is_visible: bool = True
    is_filter: bool = True
    is_sort_key: bool = True
    # A filter value arrives as a string; this converts it (defaults to
    # validate).
    convert_filter: Optional[Callable] = None
    # Admin-only to set (enforced through policy "<action>:<attr>" too).
    enforce_policy: bool = False

    @property
    def required(self):
        return self.allow_post and self.default is NOT_SET


def _standard(name_len=255):
    return {
        "id": Attr(v.uuid_str, allow_post=False, is_sort_key=True,
                   convert_filter=v.string(None)),
        "name": Attr(v.string(name_len), allow_put=True, default=""),
        "description": Attr(v.string(255), allow_put=True, default=""),
        "project_id": Attr(v.string(255), default=NOT_SET, is_visible=True,
                           convert_filter=v.string(None)),
        "tenant_id": Attr(v.string(255), default=NOT_SET, is_visible=True,
                          convert_filter=v.string(None)),
        "revision_number": Attr(None, allow_post=False, convert_filter=v.integer()),
        "created_at": Attr(None, allow_post=False, is_filter=False),
        "updated_at": Attr(None, allow_post=False, is_filter=False),
        "tags": Attr(v.list_of(v.tag, unique=True, what="tag"), allow_post=False,
                     is_sort_key=False),
    }


def _bool(default, put=True, filt=True):
    return Attr(v.to_bool, allow_put=put, default=default, is_filter=filt,
                convert_filter=v.to_bool)


RESOURCES = {
    "networks": dict(
        _standard(),
        admin_state_up=_bool(True),
        status=Attr(None, allow_post=False, convert_filter=v.string(16)),
        shared=Attr(v.to_bool, allow_put=True, default=False,
                    convert_filter=v.to_bool, enforce_policy=True),
        subnets=Attr(None, allow_post=False, is_sort_key=False,
                     convert_filter=v.string(None)),
        # Any MTU from 0 (the largest the network's type allows) up: one
        # too small for a subnet is refused by the subnet (409), as in
        # Neutron.
        mtu=Attr(v.integer(0, 65535), allow_put=True, default=None,
                 convert_filter=v.integer()),
        port_security_enabled=_bool(True),
    ),
    "subnets": dict(
        _standard(),
        network_id=Attr(v.uuid_str, convert_filter=v.string(None)),
        cidr=Attr(v.cidr, convert_filter=lambda x, n="": v.cidr(x, n, strict=False)),
        ip_version=Attr(v.integer(choices=(4, 6)), convert_filter=v.integer()),
        gateway_ip=Attr(v.ip_or_none, allow_put=True, default=NOT_SET,
                        convert_filter=v.string(64)),
        allocation_pools=Attr(v.list_of(v.allocation_pool), allow_put=True,
                              default=NOT_SET, is_filter=False, is_sort_key=False),
        dns_nameservers=Attr(v.list_of(v.ip_address, unique=True, what="nameserver"),
                             allow_put=True, default=[], is_filter=False,
                             is_sort_key=False),
        host_routes=Attr(v.list_of(v.host_route, unique=True, what="host route"),
                         allow_put=True, default=[], is_filter=False,
                         is_sort_key=False),
        enable_dhcp=_bool(True),
        ipv6_ra_mode=Attr(v.choices("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
                          default=None, convert_filter=v.string(16)),
        ipv6_address_mode=Attr(v.choices("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
                               default=None, convert_filter=v.string(16)),
        subnetpool_id=Attr(v.choices(None), default=None, is_filter=False,
                           is_sort_key=False),
        segment_id=Attr(v.choices(None), default=None, is_filter=False,
                        is_sort_key=False),
        # The network's sharing, as a filter only (Neutron does not show it).
        shared=Attr(v.to_bool, allow_post=False, is_visible=False, is_sort_key=False,
                    convert_filter=v.to_bool),
    ),
    "ports": dict(
        _standard(),
        network_id=Attr(v.uuid_str, convert_filter=v.string(None)),
        admin_state_up=_bool(True),
        mac_address=Attr(v.mac, allow_put=True, default=NOT_SET,
                         convert_filter=v.string(32), enforce_policy=True),
        fixed_ips=Attr(v.list_of(v.fixed_ip), allow_put=True, default=NOT_SET,
                       is_sort_key=False, enforce_policy=True),
        device_id=Attr(v.string(255), allow_put=True, default="",
                       convert_filter=v.string(None)),
        device_owner=Attr(v.string(255), allow_put=True, default="",
                          convert_filter=v.string(None)),
        status=Attr(None, allow_post=False, convert_filter=v.string(16)),
        port_security_enabled=Attr(v.to_bool, allow_put=True, default=NOT_SET,
                                   convert_filter=v.to_bool),
        allowed_address_pairs=Attr(
            v.list_of(v.address_pair, unique=True, what="address pair"),
            allow_put=True, default=[], is_filter=False, is_sort_key=False),
    ),
}

# Attributes that are given a value by the server when the request omits
# them, rather than being required.
SERVER_DEFAULTS = {
    ("networks", "project_id"), ("networks", "tenant_id"),
    ("subnets", "project_id"), ("subnets", "tenant_id"),
    ("subnets", "gateway_ip"), ("subnets", "allocation_pools"),
    ("ports", "project_id"), ("ports", "tenant_id"),
    ("ports", "mac_address"), ("ports", "fixed_ips"),
    ("ports", "port_security_enabled"),
}

SINGULAR = {"networks": "network", "subnets": "subnet", "ports": "port"}


def extend(resources, collection, attrs, singular=None):
    """Add (or override) attributes of a collection; used by extensions."""
    resources.setdefault(collection, {}).update(attrs)
    if singular:
        SINGULAR.setdefault(collection, singular)


def resource_map():
    return copy.deepcopy(RESOURCES)
