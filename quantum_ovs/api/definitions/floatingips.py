"""The floating IPs contract (aliases ``fip-port-details``,
``floatingip-pools``, ``floating-ip-port-forwarding`` with
``-description`` and ``-port-ranges``, ``expose-port-forwarding-in-fip``):
data and validators only, like neutron-lib's ``l3.py`` (floatingips),
``fip_port_details.py``, ``floatingip_pools.py`` and
``floating_ip_port_forwarding.py``.  The storage, hooks and HTTP handlers
are ``quantum_ovs/extensions/floatingips.py``.

Neutron's ``l3_agent_scheduler`` is not advertised: its two listings are
served (a router's gateway hosts, ``GET /v2.0/routers/{id}/l3-agents``,
and a gateway host's routers, ``GET /v2.0/agents/{id}/l3-routers``), but
not its manual scheduling (adding a router to an L3 agent, removing it):
every live gateway host serves every router gateway here, in an order of
the server's (db/gateways.py), which leaves nothing to schedule by hand.

Floating IPs live with routers (Neutron's L3 service plugin): this
definition requires the ``router`` alias.
"""

import re

from quantum_ovs import exceptions
from quantum_ovs import policy_rules as p
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr, standard
from quantum_ovs.api.definitions import dns as dns_definition

FLOATINGIP = "floatingip"
FLOATINGIPS = "floatingips"
PORT_FORWARDING = "port_forwarding"
PORT_FORWARDINGS = "port_forwardings"
FLOATINGIP_OWNER = "network:floatingip"
PROTOCOLS = ("tcp", "udp")

ALIASES = [
    {"alias": "fip-port-details", "name": "Floating IP Port Details Extension",
     "description": "Add port_details attribute to Floating IP resource"},
    {"alias": "floatingip-pools", "name": "Floating IP Pools",
     "description": "Provides a floating IP pools API."},
    {"alias": "floating-ip-port-forwarding", "name": "Floating IP Port Forwarding",
     "description": "Provide a way to forward traffic from a floating IP's port to "
                    "a fixed IP's port of a Neutron port."},
    {"alias": "floating-ip-port-forwarding-description",
     "name": "Floating IP Port Forwarding new attribute description",
     "description": "Add a description field to Port Forwarding rules"},
    {"alias": "floating-ip-port-forwarding-port-ranges",
     "name": "Floating IP Port Forwarding support port ranges",
     "description": "Add suport to port ranges in Floating IP Port Forwarding"},
    {"alias": "expose-port-forwarding-in-fip",
     "name": "Expose port forwardings in a floating IP",
     "description": "Expose the port forwardings of a floating IP in it"},
    {"alias": "floating-ip-port-forwarding-detail",
     "name": "Floating IP Port Forwarding detail",
     "description": "The port forwardings a floating IP shows carry their id and "
                    "internal_port_id"},
]
REQUIRES = ["router", "external-net"]

COLLECTIONS = {FLOATINGIPS: FLOATINGIP}


# ------------------------------------------------------------------ errors
class FloatingIPNotFound(exceptions.NotFound):
    message = "Floating IP %(floatingip_id)s could not be found"


class ExternalGatewayForFloatingIPNotFound(exceptions.NotFound):
    message = ("External network %(external_network_id)s is not reachable from subnet "
               "%(subnet_id)s.  Therefore, cannot associate Port %(port_id)s with a "
               "Floating IP.")


class FloatingIPPortAlreadyAssociated(exceptions.InUse):
    message = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with "
               "port %(port_id)s using fixed IP %(fixed_ip)s, as that fixed IP already "
               "has a floating IP on external network %(net_id)s.")


class RouterInterfaceInUseByFloatingIP(exceptions.InUse):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot "
               "be deleted, as it is required by one or more floating IPs.")


class RouterExternalGatewayInUseByFloatingIp(exceptions.InUse):
    message = ("Gateway cannot be updated for router %(router_id)s, since a gateway to "
               "external network %(net_id)s is required by one or more floating IPs.")


class FipInUseByPortForwarding(exceptions.InUse):
    message = "Floating IP %(id)s in use by Port Forwarding resources."


class PortHasBindingFloatingIP(exceptions.InUse):
    message = ("Cannot create port forwarding to floating IP %(floating_ip_address)s "
               "(%(fip_id)s) with port %(port_id)s using fixed IP %(fixed_ip)s, as that "
               "floating IP is already associated with a port.")


class PortForwardingNotFound(exceptions.NotFound):
    message = "Port Forwarding %(id)s could not be found."


class RouterNotFound(exceptions.NotFound):
    message = "Router %(router_id)s could not be found"


def bad_fip(msg):
    """Neutron's BadRequest on a floating IP (400)."""
    return exceptions.BadRequest(resource="floatingip", msg=msg)


def bad_pf(msg):
    return exceptions.BadRequest(resource="port_forwarding", msg=msg)


def pf_overlap(fip_id, protocol, what, ports):
    """Two forwardings that would take the same packets: a 400 as in
    Neutron (a BadRequest, not a conflict of state); ``fip_id`` None:
    the other forwarding's floating IP is not the caller's to know."""
    of = f" of floating IP {fip_id}" if fip_id else ""
    return bad_pf(f"A port forwarding{of} already uses {protocol} {what} {ports}")


# ------------------------------------------------------------------ validators
def _ro(**kw):
    return Attr(None, allow_post=False, **kw)


def _ip4_or_none(value, name="value"):
    value = v.ip_or_none(value, name)
    if value is not None and ":" in value:
        raise v.bad(f"'{value}' is not a valid IPv4 address")
    return value


_std = standard()

RESOURCE_ATTRIBUTE_MAP = {
    FLOATINGIPS: {
        "id": _std["id"],
        "project_id": _std["project_id"],
        "tenant_id": _std["tenant_id"],
        "description": _std["description"],
        "revision_number": _std["revision_number"],
        "created_at": _std["created_at"],
        "updated_at": _std["updated_at"],
        "tags": _std["tags"],
        "floating_ip_address": Attr(_ip4_or_none, default=None, enforce_policy=True,
                                    convert_filter=v.string(64)),
        # Which external subnet to take the address from (not shown).
        "subnet_id": Attr(v.uuid_or_none, default=None, is_visible=False,
                          is_filter=False, is_sort_key=False),
        "floating_network_id": Attr(v.uuid_str, convert_filter=v.string(36)),
        "router_id": _ro(convert_filter=v.string(36)),
        "port_id": Attr(v.uuid_or_none, allow_put=True, default=None,
                        convert_filter=v.string(36)),
        "fixed_ip_address": Attr(_ip4_or_none, allow_put=True, default=None,
                                 convert_filter=v.string(64)),
        "status": _ro(convert_filter=v.string(16)),
        "port_details": _ro(is_filter=False, is_sort_key=False),
        "port_forwardings": _ro(is_filter=False, is_sort_key=False),
        # dns-integration's half for floating IPs: given on create and
        # shown empty, as Neutron without an external DNS driver (there is
        # none here to publish them to).
        "dns_name": Attr(dns_definition.fip_dns_name, default="", is_filter=False,
                         is_sort_key=False),
        "dns_domain": Attr(dns_definition.dns_domain, default="", is_filter=False,
                           is_sort_key=False),
    },
}

# The extensions in the description (quantum_ovs/api/openapi.py): Neutron's
# l3 extension (``router``) declares floating IPs; two aliases add an
# attribute each; id and tenant_id are the base API's.
COLLECTION_ALIASES = {FLOATINGIPS: "router"}
ATTRIBUTE_ALIASES = {
    **{(FLOATINGIPS, k): "router" for k in RESOURCE_ATTRIBUTE_MAP[FLOATINGIPS]},
    (FLOATINGIPS, "id"): None,
    (FLOATINGIPS, "tenant_id"): None,
    (FLOATINGIPS, "project_id"): "project-id",
    (FLOATINGIPS, "port_details"): "fip-port-details",
    (FLOATINGIPS, "port_forwardings"): "expose-port-forwarding-in-fip",
    (FLOATINGIPS, "dns_name"): "dns-integration",
    (FLOATINGIPS, "dns_domain"): "dns-integration",
}
# ... and of the routes the extension adds with handlers of its own.
ROUTE_ALIASES = {
    "/v2.0/floatingips/{fip_id}/port_forwardings": "floating-ip-port-forwarding",
    "/v2.0/floatingips/{fip_id}/port_forwardings/{pf_id}": "floating-ip-port-forwarding",
    "/v2.0/floatingip-pools": "floatingip-pools",
    "/v2.0/floatingip_pools": "floatingip-pools",
    # (l3_agent_scheduler's listings, served without the alias: see above)
    "/v2.0/routers/{router_id}/l3-agents": None,
    "/v2.0/agents/{agent_id}/l3-routers": None,
}

SERVER_DEFAULTS = {(FLOATINGIPS, "project_id"), (FLOATINGIPS, "tenant_id")}


def _port_number(value, name):
    return v.to_int(value, name, minimum=1, maximum=65535)


_RANGE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def port_range(value, name):
    """"lo:hi" (or one number) -> (lo, hi), 1 <= lo <= hi <= 65535."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _RANGE.match(value) if isinstance(value, str) else None
    if m is None:
        raise v.bad(f"'{value}' is not a valid port range: use <first>:<last>")
    lo = _port_number(m.group(1), name)
    hi = _port_number(m.group(2) or m.group(1), name)
    if lo > hi:
        raise v.bad(f"Invalid port range '{value}': the first port is above the last")
    return lo, hi


_PF_FIELDS = {
    "external_port": _port_number,
    "internal_port": _port_number,
    "external_port_range": port_range,
    "internal_port_range": port_range,
    "internal_ip_address": lambda x, n: _ip4_required(x, n),
    "internal_port_id": v.uuid_str,
    "protocol": lambda x, n: _protocol(x, n),
    "description": v.string(255),
}
PF_READONLY = {"id", "floatingip_id"}


def _ip4_required(value, name):
    value = _ip4_or_none(value, name)
    if value is None:
        raise v.bad(f"'{name}' must be an IPv4 address")
    return value


def _protocol(value, name):
    if not isinstance(value, str) or value.lower() not in PROTOCOLS:
        raise v.bad(f"'{value}' is not in {list(PROTOCOLS)}")
    return value.lower()


def port_forwarding_body(body, create):
    """The port forwarding of a POST (``create``) or PUT body: the fields
    given, validated; the ports as external/internal ``(lo, hi)`` ranges
    (``external``/``internal`` keys) when given.  Ranges and single ports
    are not mixed; the ranges have one length."""
    if not isinstance(body, dict) or set(body) != {PORT_FORWARDING} or \
            not isinstance(body[PORT_FORWARDING], dict):
        raise exceptions.InvalidInput(
            error_message='the body must be {"port_forwarding": {...}}')
    item = body[PORT_FORWARDING]
    unknown = set(item) - set(_PF_FIELDS) - PF_READONLY
    if unknown:
        raise exceptions.InvalidInput(
            error_message=f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    if set(item) & PF_READONLY:
        raise exceptions.InvalidInput(
            error_message=f"Attribute(s) '{', '.join(sorted(set(item) & PF_READONLY))}' "
                          "cannot be set")
    out = {}
    for k, val in item.items():
        if k == "description" and val is None:
            val = ""
        out[k] = _PF_FIELDS[k](val, k)
    single = {"external_port", "internal_port"} & set(out)
    ranges = {"external_port_range", "internal_port_range"} & set(out)
    if single and ranges:
        raise bad_pf("internal_port_range and external_port_range cannot be given with "
                     "internal_port or external_port")
    if create:
        missing = [k for k in ("internal_ip_address", "internal_port_id", "protocol")
                   if k not in out]
        if not ranges and not single:
            missing.append("external_port")
        if missing:
            raise exceptions.InvalidInput(
                error_message=f"Failed to parse request. Required attribute(s) "
                              f"'{', '.join(missing)}' not specified")
        if single and len(single) != 2:
            raise exceptions.InvalidInput(
                error_message="Failed to parse request. Required attribute "
                              f"'{({'external_port', 'internal_port'} - single).pop()}' "
                              "not specified")
        if ranges and len(ranges) != 2:
            raise bad_pf("internal_port_range and external_port_range must be given "
                         "together")
    for key in ("external", "internal"):
        if f"{key}_port" in out:
            out[key] = (out[f"{key}_port"],) * 2
        elif f"{key}_port_range" in out:
            out[key] = out[f"{key}_port_range"]
    return out


def check_range_lengths(external, internal):
    """N external ports to N internal ones, or N to one (as Neutron's
    _validate_ranges)."""
    if internal[0] != internal[1] and external[1] - external[0] != internal[1] - internal[0]:
        raise bad_pf(f"The internal port range {internal[0]}:{internal[1]} and the "
                     f"external port range {external[0]}:{external[1]} are not of the "
                     "same length: the relation between internal and external ports "
                     "must be N-N or 1-N")


# ------------------------------------------------------------------ policy
_MEMBER = p.ADMIN_OR_PROJECT_MEMBER
_READER = p.ADMIN_OR_PROJECT_READER
_PF = "/floatingips/{floatingip_id}/port_forwardings"

POLICY_RULES = p.crud(FLOATINGIP, "/floatingips", {
    "create_floatingip": (_MEMBER, "Create a floating IP"),
    "create_floatingip:floating_ip_address": (
        p.ADMIN_OR_PROJECT_MANAGER, "Create a floating IP with a specific IP address"),
    "create_floatingip:tags": (_MEMBER, "Give tags when creating a floating IP"),
    "get_floatingip": (_READER, "Get a floating IP"),
    "get_floatingip:tags": (_READER, "Get the tags of a floating IP"),
    "update_floatingip": (_MEMBER, "Update a floating IP"),
    "update_floatingip:tags": (_MEMBER, "Set or add tags of a floating IP"),
    "delete_floatingip": (_MEMBER, "Delete a floating IP"),
    "delete_floatingip:tags": (_MEMBER, "Remove tags of a floating IP"),
}) + [
    p.rule("get_floatingip_pool", _READER, "Get floating IP pools",
           method="GET", path="/floatingip-pools"),
    p.rule("create_floatingip_port_forwarding", _MEMBER,
           "Create a floating IP port forwarding", method="POST", path=_PF),
    p.rule("get_floatingip_port_forwarding", _READER,
           "Get a floating IP port forwarding",
           operations=[("GET", _PF), ("GET", _PF + "/{port_forwarding_id}")]),
    p.rule("update_floatingip_port_forwarding", _MEMBER,
           "Update a floating IP port forwarding", method="PUT",
           path=_PF + "/{port_forwarding_id}"),
    p.rule("delete_floatingip_port_forwarding", _MEMBER,
           "Delete a floating IP port forwarding", method="DELETE",
           path=_PF + "/{port_forwarding_id}"),
    p.rule("get_l3-agents", p.ADMIN, "List the L3 agents (gateway hosts) of a router",
           method="GET", path="/routers/{router_id}/l3-agents"),
    p.rule("get_l3-routers", p.ADMIN, "List the routers an L3 agent (gateway host) hosts",
           method="GET", path="/agents/{agent_id}/l3-routers"),
]
