"""Provider networks (provider:*), external networks (router:external)."""

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET, Attr
from quantum_ovs.policy_rules import ADMIN, crud

ALIASES = [
    {"alias": "provider", "name": "Provider Network",
     "description": "Expose mapping of virtual networks to physical networks"},
    {"alias": "external-net", "name": "Neutron external network",
     "description": "Adds external network attribute to network resource."},
    # Subnets of external networks are visible to every project (the
    # policy); this says so and shows router:external on subnets.
    {"alias": "subnet-external-network", "name": "Subnet belongs to an external network",
     "description": "A subnet's router:external tells whether its network is external."},
]

NETWORK_TYPE = "provider:network_type"
PHYSNET = "provider:physical_network"
SEGID = "provider:segmentation_id"
EXTERNAL = "router:external"

NETWORK_TYPES = ("local", "flat", "vlan", "vxlan", "gre")


def _segid(value, name=SEGID):
    return None if value is None else v.to_int(value, name, minimum=0, maximum=2 ** 32 - 1)


def _str_or_none(value, name="value"):
    return None if value is None else v.string(64)(value, name)


# The provider attributes take a PUT, as in Neutron (neutron-lib's
# provider_net: allow_put): its update_network:provider:* policy refuses a
# project (403), and the plugin takes the current values back as no change
# (extensions/provider.py: a different one is a 400).
RESOURCE_ATTRIBUTE_MAP = {
    "networks": {
        NETWORK_TYPE: Attr(v.choices(*NETWORK_TYPES), allow_put=True,
                           default=NOT_SET, convert_filter=v.string(16),
                           enforce_policy=True, is_sort_key=False),
        PHYSNET: Attr(_str_or_none, allow_put=True, default=NOT_SET,
                      convert_filter=v.string(64), enforce_policy=True, is_sort_key=False),
        SEGID: Attr(_segid, allow_put=True, default=NOT_SET,
                    convert_filter=lambda x, n="": v.to_int(x, n), enforce_policy=True,
                    is_sort_key=False),
        EXTERNAL: Attr(v.to_bool, allow_put=True, default=False,
                       convert_filter=v.to_bool, enforce_policy=True,
                       is_sort_key=False),
    },
    "subnets": {
        EXTERNAL: Attr(None, allow_post=False, default=False, convert_filter=v.to_bool,
                       is_sort_key=False),
    },
}

# A network without provider:* gets a tenant segment.
SERVER_DEFAULTS = frozenset(("networks", k) for k in (NETWORK_TYPE, PHYSNET, SEGID))

POLICY_RULES = crud("network", "/networks", {
    "create_network:provider:network_type": (
        ADMIN, "Give ``provider:network_type`` when creating a network"),
    "create_network:provider:physical_network": (
        ADMIN, "Give ``provider:physical_network`` when creating a network"),
    "create_network:provider:segmentation_id": (
        ADMIN, "Give ``provider:segmentation_id`` when creating a network"),
    "get_network:provider:network_type": (
        ADMIN, "See ``provider:network_type`` of a network"),
    "get_network:provider:physical_network": (
        ADMIN, "See ``provider:physical_network`` of a network"),
    "get_network:provider:segmentation_id": (
        ADMIN, "See ``provider:segmentation_id`` of a network"),
    "update_network:provider:network_type": (
        ADMIN, "Update ``provider:network_type`` of a network"),
    "update_network:provider:physical_network": (
        ADMIN, "Update ``provider:physical_network`` of a network"),
    "update_network:provider:segmentation_id": (
        ADMIN, "Update ``provider:segmentation_id`` of a network"),
    "create_network:router:external": (ADMIN, "Create an external network"),
    "update_network:router:external": (ADMIN, "Update ``router:external`` of a network"),
})


# ------------------------------------------------------------------ errors
class NoNetworkAvailable(exceptions.QuantumError):
    code = 503
    message = "Unable to create the network. No tenant network is available for allocation."


class VlanIdInUse(exceptions.InUse):
    message = ("Unable to create the network. The VLAN %(vlan_id)s on physical network "
               "%(physical_network)s is in use.")


class TunnelIdInUse(exceptions.InUse):
    message = "Unable to create the network. The tunnel ID %(tunnel_id)s is in use."


class FlatNetworkInUse(exceptions.InUse):
    message = ("Unable to create the flat network. Physical network %(physical_network)s "
               "is in use.")
