"""IP availability (alias ``network-ip-availability``): how many
addresses each network and each of its subnets has, and how many are
used.  Read only, administrators only.  The handlers are in
quantum_ovs/extensions/ip_availability.py."""

from quantum_ovs import policy_rules as p

ALIASES = [
    {"alias": "network-ip-availability", "name": "Network IP Availability",
     "description": "Provides IP availability data for each network and subnet."},
]

PATH = "/v2.0/network-ip-availabilities"
# The list filters and how each applies.
FILTERS = ("network_id", "network_name", "tenant_id", "project_id", "ip_version")

POLICY_RULES = [
    p.rule("get_network_ip_availability", p.ADMIN_OR_SERVICE, "Get network IP availability",
           operations=[("GET", "/network-ip-availabilities"),
                       ("GET", "/network-ip-availabilities/{network_id}")]),
]
