"""Subnet service types (alias ``subnet-service-types``): a subnet's
``service_types``, the device owners whose ports take addresses from it
(``network:floatingip`` and ``network:router_gateway`` subnets of an
external network, say).  A port takes its addresses from the subnets whose
service types name its owner, first, then from those without any; a
subnet with service types gives none to other ports (a DHCP port: any
subnet with DHCP on), whether asked for by subnet or address or not.  The
handlers are in quantum_ovs/extensions/subnet_service_types.py; the choice
of subnets in quantum_ovs/db/addresses.py (service_subnets)."""

from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr

ALIASES = [
    {"alias": "subnet-service-types", "name": "Subnet service types",
     "description": "Provides ability to set the subnet service_types field"},
]

SERVICE_TYPES = "service_types"

RESOURCE_ATTRIBUTE_MAP = {
    "subnets": {
        SERVICE_TYPES: Attr(v.list_of(v.service_type, unique=True, what="service type"),
                            allow_put=True, default=[], is_filter=False, is_sort_key=False),
    },
}
