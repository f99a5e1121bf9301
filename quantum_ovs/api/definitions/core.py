"""The core API: networks, subnets and ports, and the aliases of what the
core serves without an extension module (standard attributes, tags,
filtering, paging, sorting, fields, port security, address pairs, MTU)."""

from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET, UPDATED, Attr, flag, standard
from quantum_ovs.policy_rules import (
    ADMIN,
    ADMIN_OR_NET_OWNER_MEMBER,
    ADMIN_OR_NET_OWNER_READER,
    ADMIN_OR_PROJECT_MEMBER,
    ADMIN_OR_PROJECT_READER,
    ADMIN_OR_SERVICE,
    NET_OWNER_MANAGER,
    NET_OWNER_MEMBER,
    NET_OWNER_READER,
    PROJECT_MEMBER,
    PROJECT_READER,
    SERVICE,
    any_of,
    crud,
)

_BUILTIN = [
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled."),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources; "
     "If-Match: revision_number=N makes updates conditional."),
    ("revision-if-match", "If-Match constraints based on revision_number",
     "If-Match: revision_number=N (quoted or not) makes an update or a delete "
     "conditional, checked in the write itself: 412 when the resource moved on."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    # The older tag aliases some clients still look for: tags on networks
    # (tag), on subnets and ports (tag-ext); the same tags sub-resource.
    ("tag", "Tag support", "Tags on networks: /tags sub-resource and tag filters."),
    ("tag-ext", "Tag support for resources: subnet, port",
     "Tags on subnets and ports as well: /tags sub-resource and tag filters."),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to resources and the changed_since filter."),
    ("filter-validation", "Filter parameters validation",
     "Provides validation on filter parameters."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("fields", "Fields selection", "Select the attributes of a response with fields=."),
    ("ip-substring-filtering", "IP address substring filtering",
     "Provides IP address substring filtering when listing ports"),
    ("empty-string-filtering", "Empty String Filtering Extension",
     "Allow filtering by attributes with empty string value"),
    ("port-security", "Port Security", "Provides port security"),
    ("allowed-address-pairs", "Allowed Address Pairs",
     "Provides allowed address pairs"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource."),
    ("port-mac-address-regenerate", "Neutron Port MAC address regenerate",
     "Network port MAC address regenerate: a port updated with mac_address null gets "
     "a new one."),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation",
     "Allow to tag ports during bulk creation"),
]


ALIASES = [{"alias": a, "name": n, "description": d, "updated": UPDATED}
           for a, n, d in _BUILTIN]

COLLECTIONS = {"networks": "network", "subnets": "subnet", "ports": "port"}

RESOURCE_ATTRIBUTE_MAP = {
    "networks": dict(
        standard(),
        admin_state_up=flag(True),
        status=Attr(None, allow_post=False, convert_filter=v.string(16)),
        # Not a sort key (as in Neutron): the stored column is the
        # wildcard's, not sharing as the caller reads it (RBAC policies).
        shared=Attr(v.to_bool, allow_put=True, default=False, is_sort_key=False,
                    convert_filter=v.to_bool, enforce_policy=True),
        subnets=Attr(None, allow_post=False, is_sort_key=False,
                     convert_filter=v.string(None)),
        # Any MTU from 0 (the largest the network's type allows) up: one
        # too small for a subnet is refused by the subnet (409), as in
        # Neutron.
        mtu=Attr(v.integer(0, 65535), allow_put=True, default=None,
                 convert_filter=v.integer()),
        port_security_enabled=flag(True),
    ),
    "subnets": dict(
        standard(),
        network_id=Attr(v.uuid_str, convert_filter=v.string(None)),
        cidr=Attr(v.cidr, convert_filter=lambda x, n="": v.cidr(x, n, strict=False)),
        ip_version=Attr(v.integer(choices=(4, 6)), convert_filter=v.integer()),
        gateway_ip=Attr(v.ip_or_none, allow_put=True, default=NOT_SET,
                        convert_filter=v.string(64)),
        allocation_pools=Attr(v.list_of(v.allocation_pool), allow_put=True,
                              default=NOT_SET, is_filter=False, is_sort_key=False),
        # null is [] (create) or clears them (update), as neutron-lib's
        # convert_none_to_empty_list: clients send null for an unset list.
        dns_nameservers=Attr(v.list_of(v.ip_address, unique=True, what="nameserver",
                                       none_as_empty=True),
                             allow_put=True, default=[], is_filter=False,
                             is_sort_key=False),
        host_routes=Attr(v.list_of(v.host_route, unique=True, what="host route",
                                   none_as_empty=True),
                         allow_put=True, default=[], is_filter=False,
                         is_sort_key=False),
        enable_dhcp=flag(True),
        ipv6_ra_mode=Attr(v.choices("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
                          default=None, convert_filter=v.string(16)),
        ipv6_address_mode=Attr(v.choices("slaac", "dhcpv6-stateful", "dhcpv6-stateless"),
                               default=None, convert_filter=v.string(16)),
        # (taken from a pool: extensions/subnetpools.py)
        subnetpool_id=Attr(v.uuid_or_none, default=None, convert_filter=v.string(None)),
        segment_id=Attr(v.choices(None), default=None, is_filter=False,
                        is_sort_key=False),
        # The network's sharing, as a filter only (Neutron does not show it).
        shared=Attr(v.to_bool, allow_post=False, is_visible=False, is_sort_key=False,
                    convert_filter=v.to_bool),
    ),
    "ports": dict(
        standard(),
        network_id=Attr(v.uuid_str, convert_filter=v.string(None)),
        admin_state_up=flag(True),
        # (null on an update: a new one, port-mac-address-regenerate)
        mac_address=Attr(v.mac_or_none, allow_put=True, default=NOT_SET,
                         convert_filter=v.string(32), enforce_policy=True),
        fixed_ips=Attr(v.fixed_ips, allow_put=True, default=NOT_SET,
                       is_sort_key=False, enforce_policy=True),
        device_id=Attr(v.string(255), allow_put=True, default="",
                       convert_filter=v.string(None)),
        device_owner=Attr(v.string(255), allow_put=True, default="",
                          convert_filter=v.string(None)),
        status=Attr(None, allow_post=False, convert_filter=v.string(16)),
        port_security_enabled=Attr(v.to_bool, allow_put=True, default=NOT_SET,
                                   convert_filter=v.to_bool),
        allowed_address_pairs=Attr(
            v.address_pairs,
            allow_put=True, default=[], is_filter=False, is_sort_key=False),
        # given on a create too (tag-ports-during-bulk-creation)
        tags=Attr(v.list_of(v.tag, unique=True, what="tag"), default=[],
                  is_sort_key=False),
    ),
}

# Attributes that are given a value by the server when the request omits
# them, rather than being required.
SERVER_DEFAULTS = frozenset({
    ("networks", "project_id"), ("networks", "tenant_id"),
    ("subnets", "project_id"), ("subnets", "tenant_id"),
    ("subnets", "gateway_ip"), ("subnets", "allocation_pools"),
    # (from the subnet pool when one is named; else required, checked by
    # the subnets' handler)
    ("subnets", "cidr"), ("subnets", "ip_version"),
    ("ports", "project_id"), ("ports", "tenant_id"),
    ("ports", "mac_address"), ("ports", "fixed_ips"),
    ("ports", "port_security_enabled"),
})

NETWORK_RULES = crud("network", "/networks", {
    "create_network": (ADMIN_OR_PROJECT_MEMBER, "Create a network"),
    "create_network:shared": (ADMIN, "Create a shared network"),
    "create_network:port_security_enabled": (
        ADMIN_OR_PROJECT_MEMBER, "Give ``port_security_enabled`` when creating a network"),
    "create_network:tags": (ADMIN_OR_PROJECT_MEMBER, "Give tags when creating a network"),
    "get_network": (any_of(ADMIN_OR_PROJECT_READER, SERVICE, "rule:shared", "rule:external"),
                    "Get a network"),
    "get_network:tags": (any_of(ADMIN_OR_PROJECT_READER, "rule:shared", "rule:external"),
                         "Get the tags of a network"),
    "update_network": (ADMIN_OR_PROJECT_MEMBER, "Update a network"),
    "update_network:shared": (ADMIN, "Update ``shared`` of a network"),
    "update_network:port_security_enabled": (
        ADMIN_OR_PROJECT_MEMBER, "Update ``port_security_enabled`` of a network"),
    "update_network:tags": (ADMIN_OR_PROJECT_MEMBER, "Set or add tags of a network"),
    "delete_network": (ADMIN_OR_PROJECT_MEMBER, "Delete a network"),
    "delete_network:tags": (ADMIN_OR_PROJECT_MEMBER, "Remove tags of a network"),
})

SUBNET_RULES = crud("subnet", "/subnets", {
    "create_subnet": (ADMIN_OR_NET_OWNER_MEMBER, "Create a subnet"),
    "create_subnet:tags": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER),
                           "Give tags when creating a subnet"),
    "get_subnet": (any_of(PROJECT_READER, "rule:shared", "rule:external_network",
                          ADMIN_OR_NET_OWNER_READER, SERVICE), "Get a subnet"),
    "get_subnet:tags": (any_of(PROJECT_READER, "rule:shared", "rule:external_network",
                               ADMIN_OR_NET_OWNER_READER), "Get the tags of a subnet"),
    "update_subnet": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER), "Update a subnet"),
    "update_subnet:tags": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER),
                           "Set or add tags of a subnet"),
    "delete_subnet": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER), "Delete a subnet"),
    "delete_subnet:tags": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER),
                           "Remove tags of a subnet"),
})

_NET_OWNER = any_of(ADMIN_OR_SERVICE, NET_OWNER_MEMBER)
_NET_OWNER_OR_SHARED = any_of(ADMIN_OR_SERVICE, NET_OWNER_MEMBER, "rule:shared")
_PAIRS = any_of(ADMIN_OR_NET_OWNER_MEMBER, SERVICE)
_DEVICE_OWNER = any_of("not rule:network_device", ADMIN_OR_SERVICE, NET_OWNER_MEMBER)

PORT_RULES = crud("port", "/ports", {
    "create_port": (_NET_OWNER_OR_SHARED, "Create a port"),
    "create_port:device_id": (any_of(ADMIN_OR_PROJECT_MEMBER, SERVICE),
                              "Give ``device_id`` when creating a port"),
    "create_port:device_owner": (_DEVICE_OWNER,
                                 "Give ``device_owner`` when creating a port (network:* "
                                 "only on the caller's own network)"),
    "create_port:mac_address": (_NET_OWNER, "Give ``mac_address`` when creating a port"),
    "create_port:fixed_ips": (_NET_OWNER_OR_SHARED, "Give ``fixed_ips`` when creating a port"),
    "create_port:fixed_ips:ip_address": (
        _NET_OWNER, "Name an IP address in ``fixed_ips`` when creating a port"),
    "create_port:fixed_ips:subnet_id": (
        _NET_OWNER_OR_SHARED, "Name a subnet in ``fixed_ips`` when creating a port"),
    "create_port:port_security_enabled": (
        _NET_OWNER, "Give ``port_security_enabled`` when creating a port"),
    "create_port:allowed_address_pairs": (
        _PAIRS, "Give ``allowed_address_pairs`` when creating a port"),
    "create_port:allowed_address_pairs:mac_address": (
        _PAIRS, "Give a MAC address in ``allowed_address_pairs`` when creating a port"),
    "create_port:allowed_address_pairs:ip_address": (
        _PAIRS, "Give an IP address in ``allowed_address_pairs`` when creating a port"),
    "create_port:tags": (any_of(ADMIN_OR_PROJECT_MEMBER, SERVICE),
                         "Give tags when creating a port"),
    "get_port": (any_of(ADMIN_OR_SERVICE, NET_OWNER_READER, PROJECT_READER), "Get a port"),
    "get_port:tags": (any_of(ADMIN_OR_NET_OWNER_READER, PROJECT_READER),
                      "Get the tags of a port"),
    "update_port": (any_of(ADMIN_OR_SERVICE, PROJECT_MEMBER), "Update a port"),
    "update_port:device_id": (any_of(ADMIN_OR_PROJECT_MEMBER, SERVICE),
                              "Update ``device_id`` of a port"),
    "update_port:device_owner": (_DEVICE_OWNER, "Update ``device_owner`` of a port"),
    "update_port:mac_address": (any_of(ADMIN_OR_SERVICE, NET_OWNER_MANAGER),
                                "Update ``mac_address`` of a port"),
    "update_port:fixed_ips": (_NET_OWNER, "Update ``fixed_ips`` of a port"),
    "update_port:fixed_ips:ip_address": (
        _NET_OWNER, "Name an IP address in ``fixed_ips`` when updating a port"),
    "update_port:fixed_ips:subnet_id": (
        _NET_OWNER_OR_SHARED, "Name a subnet in ``fixed_ips`` when updating a port"),
    "update_port:port_security_enabled": (
        _NET_OWNER, "Update ``port_security_enabled`` of a port"),
    "update_port:allowed_address_pairs": (
        _PAIRS, "Update ``allowed_address_pairs`` of a port"),
    "update_port:allowed_address_pairs:mac_address": (
        _PAIRS, "Give a MAC address in ``allowed_address_pairs`` when updating a port"),
    "update_port:allowed_address_pairs:ip_address": (
        _PAIRS, "Give an IP address in ``allowed_address_pairs`` when updating a port"),
    "update_port:tags": (ADMIN_OR_PROJECT_MEMBER, "Set or add tags of a port"),
    "delete_port": (any_of(ADMIN_OR_SERVICE, NET_OWNER_MEMBER, PROJECT_MEMBER),
                    "Delete a port"),
    "delete_port:tags": (any_of(PROJECT_MEMBER, ADMIN_OR_NET_OWNER_MEMBER),
                         "Remove tags of a port"),
})

POLICY_RULES = NETWORK_RULES + SUBNET_RULES + PORT_RULES
