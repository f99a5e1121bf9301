"""The OpenAPI 3.1 description of the API we serve, made from what serves it.

``document(schema, routes)`` turns the frozen Schema the application runs
on (quantum_ovs.api.attributes.build) and the list of routes it answers
(``routes_of(api)``) into the description of the Networking API v2.0:
every path and method, the query parameters of each listing (a filter per
filterable attribute, ``fields``, sorting, paging), the request and
response bodies with the types and nullability the validators give, the
NeutronError responses with the error types the definitions declare, the
extension alias of every attribute and path (``x-extension-alias``) and
links from each create to what takes its id (network -> subnet -> port)
for stateful testing.  ``essex_document()`` describes the v1.0/v1.1 API.

Nothing here is written by hand per resource: a definition another
change adds appears with its attributes, filters, errors and links.  The
types come from the validators (quantum_ovs.api.validators is read by
introspection); a definition's own validator may say its schema with a
``openapi`` attribute (``{"request": ..., "response": ...}`` or one schema
for both); the few of today's definitions that do not are in
``_CUSTOM`` below.  Pure: no I/O, no database, no globals changed.
"""

import re
import sys
from dataclasses import dataclass

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import NOT_SET

OPENAPI = "3.1.0"
NEUTRON_ERROR = {"$ref": "#/components/schemas/NeutronError"}
JSON = "application/json"

UUID_PATTERN = v.UUID_RE.pattern
UUID_CANONICAL = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CIDR_PATTERN = r"^\s*[0-9A-Fa-f:.]+/[0-9]{1,3}\s*$"
IP_PATTERN = r"^\s*[0-9A-Fa-f:.]+\s*$"
IP_OR_CIDR_PATTERN = r"^\s*[0-9A-Fa-f:.]+(/[0-9]{1,3})?\s*$"


def _ci(word):
    """A case-insensitive regular expression of a word (JSON Schema
    patterns have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c)
                   for c in word)


BOOL_WORDS = ("true", "1", "yes", "on", "t", "y", "false", "0", "no", "off", "f", "n")
BOOL_STRING = {"type": "string",
               "pattern": r"^\s*(" + "|".join(_ci(w) for w in BOOL_WORDS) + r")\s*$"}
INT_STRING = {"type": "string", "pattern": r"^\s*[-+]?[0-9]{1,20}\s*$"}


def nullable(schema):
    """The schema or null."""
    if schema == {}:
        return schema
    if "type" in schema and set(schema) <= {"type", "format", "maxLength", "minLength",
                                            "pattern", "minimum", "maximum", "items",
                                            "uniqueItems", "description"}:
        t = schema["type"]
        types_ = list(t) if isinstance(t, list) else [t]
        if "null" not in types_:
            types_.append("null")
        return dict(schema, type=types_)
    if "enum" in schema:
        return dict(schema, enum=list(schema["enum"]) +
                    ([None] if None not in schema["enum"] else []))
    return {"anyOf": [schema, {"type": "null"}]}


def _closure(fn):
    cells = getattr(fn, "__closure__", None) or ()
    return dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in cells)))


# ---------------------------------------------------------------- validators
def _bool(mode):
    if mode == "response":
        return {"type": "boolean"}
    return {"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}, BOOL_STRING]}


def _int(mode, minimum=None, maximum=None, choices=None):
    s = {"type": "integer"}
    lo = v.INT_MIN if minimum is None else minimum
    hi = v.INT_MAX if maximum is None else maximum
    s.update(minimum=lo, maximum=hi)
    if choices is not None:
        s = {"type": "integer", "enum": list(choices)}
    if mode == "response":
        return s
    digits = INT_STRING if lo < 0 else {"type": "string",
                                        "pattern": r"^\s*\+?[0-9]{1,20}\s*$"}
    return {"anyOf": [s, digits]}


def _string(max_len):
    s = {"type": "string"}
    if max_len is not None:
        s["maxLength"] = max_len
    return s


def _uuid(mode):
    if mode == "response":
        return {"type": "string", "format": "uuid", "pattern": UUID_CANONICAL}
    return {"type": "string", "pattern": UUID_PATTERN}


def _ip(mode):
    if mode == "response":
        return {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
    return {"type": "string", "pattern": IP_PATTERN}


def _cidr(mode):
    return {"type": "string", "pattern": CIDR_PATTERN}


_MAC_RESPONSE = {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"}


def validator_schema(fn, mode):
    """(schema, nullable) of the values a validator takes (mode
    ``request``) or gives (``response``); ({}, False) when it is not
    known."""
    if fn is None:
        return {}, False
    own = getattr(fn, "openapi", None)
    if own is not None:
        s = own.get(mode, own) if isinstance(own, dict) and (
            "request" in own or "response" in own) else own
        return dict(s), False
    key = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    if key in _CUSTOM:
        return _CUSTOM[key](fn, mode)
    if getattr(fn, "__module__", None) != v.__name__:
        return {}, False
    name = fn.__qualname__
    cl = _closure(fn)
    if fn is v.to_bool:
        return _bool(mode), False
    if fn is v.bool_unset:  # (null until given: in answers only)
        return _bool(mode), mode == "response"
    if fn is v.uuid_str:
        return _uuid(mode), False
    if fn is v.uuid_or_none:
        return _uuid(mode), True
    if fn in (v.mac, v.mac_or_none):
        # (a null one is asked for, never shown)
        return (_MAC_RESPONSE if mode == "response"
                else {"type": "string", "pattern": v.MAC_RE.pattern}), \
            fn is v.mac_or_none and mode == "request"
    if fn is v.ip_address:
        return _ip(mode), False
    if fn is v.ip_or_none:
        return _ip(mode), True
    if fn is v.cidr:
        return _cidr(mode), False
    if fn is v.ip_or_cidr:
        return {"type": "string", "pattern": IP_OR_CIDR_PATTERN}, False
    if fn is v.tag:
        return {"type": "string", "minLength": 1, "maxLength": 255,
                "pattern": "^[^,/]+$"}, False
    if fn is v.service_type:
        return {"type": "string", "maxLength": 255,
                "pattern": v.SERVICE_TYPE_RE.pattern}, False
    if name == "integer.<locals>.check":
        return _int(mode, cl["minimum"], cl["maximum"], cl["choices"]), cl["allow_none"]
    if name == "string.<locals>.check":
        return _string(cl["max_len"]), cl["allow_none"]
    if name == "choices.<locals>.check":
        values = [x for x in cl["values"] if x is not None]
        if not values:
            return {"type": "null"}, False
        return {"enum": values}, cl["allow_none"]
    if name == "list_of.<locals>.check":
        item, item_null = validator_schema(cl["item"], mode)
        s = {"type": "array", "items": nullable(item) if item_null else item}
        if cl["unique"] and mode == "response":
            s["uniqueItems"] = True
        if mode == "request":
            s["maxItems"] = cl["max_items"]
        return s, cl["none_as_empty"] and mode == "request"
    if name == "dict_with.<locals>.check":
        props, required = {}, []
        for k, (fn2, req) in cl["spec"].items():
            s, null = validator_schema(fn2, mode)
            props[k] = nullable(s) if null else s
            if req:
                required.append(k)
        s = {"type": "object", "properties": props, "additionalProperties": False}
        if required and mode == "request":
            s["required"] = required
        return s, False
    return {}, False


def _c(request, response=None, null=False):
    """A _CUSTOM entry: fixed schemas."""
    return lambda fn, mode: ((request if mode == "request" else
                              (request if response is None else response)), null)


def _group_ref(fn, mode):
    max_len = _closure(fn).get("max_len")
    return _string(max_len), True


def _gateway(fn, mode):
    ips = {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "properties": {
            "subnet_id": _uuid(mode), "ip_address": _ip(mode)}}}
    s = {"type": "object", "additionalProperties": False, "properties": {
        "network_id": _uuid(mode), "enable_snat": _bool(mode), "external_fixed_ips": ips}}
    if mode == "request":
        # ({} is no gateway, like null.)
        s = {"anyOf": [dict(s, required=["network_id"]),
                       {"type": "object", "maxProperties": 0}]}
    return s, True


def _routes(fn, mode):
    item, _ = validator_schema(v.host_route, mode)
    s = {"type": "array", "items": item}
    if mode == "request":
        s["maxItems"] = v.LIST_MAX
    return s, mode == "request"


def _dns(pattern, mode):
    if mode == "request":
        return {"type": "string"}
    return {"type": "string", "maxLength": 255, "pattern": pattern}


def _extra_dhcp_opts(fn, mode):
    from quantum_ovs.api.definitions import extra_dhcp_opt as d
    request = mode == "request"
    name = {"type": "string", "maxLength": d.OPT_NAME_MAX_LEN}
    value = {"type": "string", "maxLength": d.OPT_VALUE_MAX_LEN}
    if request:  # (numbers taken as their text; null: remove the option)
        name.update(minLength=1, pattern=r"^[^\x00-\x20]+$")
        value = {"anyOf": [dict(value, pattern=r"^[^\x00-\x1f]*$"), {"type": "number"},
                           {"type": "null"}]}
    item = {"type": "object", "additionalProperties": False, "properties": {
        "opt_name": name, "opt_value": value,
        "ip_version": validator_schema(v.integer(choices=(4, 6)), mode)[0]}}
    s = {"type": "array", "items": item}
    if request:
        item["required"] = ["opt_name", "opt_value"]
        s["maxItems"] = v.LIST_MAX
    return s, request


def _protocol(fn, mode):
    if mode == "response":
        return {"type": "string", "maxLength": 40}, True
    return {"anyOf": [{"type": "string", "maxLength": 40},
                      {"type": "integer", "minimum": 0, "maximum": 255}]}, True


# Validators of today's definitions that do not say their schema
# themselves (module.qualname -> (fn, mode) -> (schema, nullable)).
_CUSTOM = {
    # (None is taken, and shown as {} and "".)
    "quantum_ovs.api.definitions.binding._profile": lambda fn, mode: (
        {"type": "object"}, mode == "request"),
    "quantum_ovs.api.definitions.binding._host": lambda fn, mode: (
        _string(255), mode == "request"),
    "quantum_ovs.api.definitions.provider._segid": lambda fn, mode: (
        _int(mode, 0, 2 ** 32 - 1), True),
    "quantum_ovs.api.definitions.provider._str_or_none": _c(_string(64), null=True),
    "quantum_ovs.api.definitions.l3.gateway_info": _gateway,
    "quantum_ovs.api.definitions.l3.routes": _routes,
    "quantum_ovs.api.definitions.extra_dhcp_opt.extra_dhcp_opts": _extra_dhcp_opts,
    # (a request's name is lowered before its labels are read; what is
    # shown is lower-case labels, a domain with its trailing dot; null is
    # refused, as neutron-lib's converter refuses it: "" is no name)
    "quantum_ovs.api.definitions.dns.dns_name": lambda fn, mode: (
        _dns(r"^([a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*\.?)?$", mode), False),
    "quantum_ovs.api.definitions.dns.dns_domain": lambda fn, mode: (
        _dns(r"^([a-z0-9-]{1,63}\.)*$", mode), False),
    "quantum_ovs.api.definitions.dns.fip_dns_name": lambda fn, mode: (
        _dns(r"^([a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*)?$", mode), False),
    "quantum_ovs.api.definitions.default_sg_rules.remote_group": _c({"enum": ["PARENT"]},
                                                                     null=True),
    "quantum_ovs.api.definitions.rbac._target": lambda fn, mode: (
        {"type": "string", "maxLength": 255, "pattern": r"\S"}, False),
    "quantum_ovs.api.definitions.securitygroups.protocol": _protocol,
    "quantum_ovs.api.definitions.securitygroups.port_value": lambda fn, mode: (
        _int(mode, 0, 65535), True),
    "quantum_ovs.api.definitions.securitygroups.ethertype": lambda fn, mode: (
        {"enum": ["IPv4", "IPv6"]} if mode == "response" else
        {"type": "string", "pattern": "^(" + _ci("IPv4") + "|" + _ci("IPv6") + ")$"}, False),
    "quantum_ovs.api.definitions.securitygroups.direction": _c(
        {"enum": ["ingress", "egress"]}),
    "quantum_ovs.api.definitions.securitygroups.group_ref.<locals>.check": _group_ref,
    "quantum_ovs.api.definitions.securitygroups.remote_prefix": _c(
        {"type": "string", "pattern": "^$|" + IP_OR_CIDR_PATTERN},  # ("": none)
        {"type": "string", "pattern": IP_OR_CIDR_PATTERN}, null=True),
    "quantum_ovs.api.definitions.floatingips._ip4_or_none": _c(
        {"type": "string", "format": "ipv4"}, null=True),
}

# What the server shows of an attribute no client gives (no validator),
# by name, then by collection and name.
_SHOWN = {
    "status": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "revision_number": {"type": "integer", "minimum": 0},
    "tags": {"type": "array", "items": {"type": "string"}},
    "subnets": {"type": "array", "items": _uuid("response")},
    "router:external": {"type": "boolean"},
    "binding:vif_type": {"type": "string"},
    "binding:vif_details": {"type": "object"},
    "normalized_cidr": {"type": ["string", "null"]},
}
_SHOWN_IN = {
    # Neutron shows a pool's prefix lengths as strings of digits.
    ("subnetpools", "default_prefixlen"): {"type": "string", "pattern": "^[0-9]{1,3}$"},
    ("subnetpools", "min_prefixlen"): {"type": "string", "pattern": "^[0-9]{1,3}$"},
    ("subnetpools", "max_prefixlen"): {"type": "string", "pattern": "^[0-9]{1,3}$"},
    ("agents", "id"): _uuid("response"),
    ("agents", "alive"): {"type": "boolean"},
    ("agents", "admin_state_up"): {"type": "boolean"},
    ("agents", "configurations"): {"type": "object"},
    ("agents", "resources_synced"): {"type": ["boolean", "null"]},
    ("agents", "availability_zone"): {"type": ["string", "null"]},
    ("agents", "started_at"): {"type": "string"},
    ("agents", "heartbeat_timestamp"): {"type": "string"},
    ("agents", "created_at"): {"type": "string"},
    ("floatingips", "router_id"): nullable(_uuid("response")),
    ("floatingips", "status"): {"enum": ["ACTIVE", "DOWN", "ERROR"]},
    # (null while no port is associated.)
    ("floatingips", "port_details"): nullable({
        "type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string"}, "network_id": _uuid("response"),
            "mac_address": _MAC_RESPONSE, "admin_state_up": {"type": "boolean"},
            "status": {"type": "string"}, "device_id": {"type": "string"},
            "device_owner": {"type": "string"}}}),
    ("floatingips", "port_forwardings"): {"type": "array", "items": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "protocol", "internal_ip_address", "internal_port_id"],
        "properties": {
            "id": _uuid("response"), "protocol": {"enum": ["tcp", "udp"]},
            "internal_ip_address": {"type": "string", "format": "ipv4"},
            "internal_port_id": _uuid("response"), "description": {"type": "string"},
            "internal_port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "external_port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "internal_port_range": {"type": "string", "pattern": "^[0-9]+:[0-9]+$"},
            "external_port_range": {"type": "string", "pattern": "^[0-9]+:[0-9]+$"}}}},
    ("security_groups", "security_group_rules"): {
        "type": "array", "items": {"$ref": "#/components/schemas/SecurityGroupRule"}},
    ("networks", "ipv4_address_scope"): nullable(_uuid("response")),
    ("networks", "ipv6_address_scope"): nullable(_uuid("response")),
    ("ports", "dns_assignment"): {"type": "array", "items": {
        "type": "object", "additionalProperties": False,
        "required": ["hostname", "ip_address", "fqdn"],
        "properties": {"hostname": {"type": "string"}, "ip_address": _ip("response"),
                       "fqdn": {"type": "string"}}}},
}

# Attributes whose validator takes None (the server then chooses) that are
# never shown null.
_NEVER_NULL = {("networks", "provider:network_type"), ("floatingips", "floating_ip_address")}

# The extension aliases of the core's own attributes (the rest of the
# core is the base API).
_CORE_ALIASES = {
    "project_id": "project-id", "description": "standard-attr-description",
    "revision_number": "standard-attr-revisions", "tags": "standard-attr-tag",
    "created_at": "standard-attr-timestamp", "updated_at": "standard-attr-timestamp",
    "port_security_enabled": "port-security",
    "allowed_address_pairs": "allowed-address-pairs", "mtu": "net-mtu",
}


def _definitions(schema):
    return [sys.modules[n] for n in schema.definitions if n in sys.modules]


def attribute_aliases(schema):
    """(collection, attribute) -> the alias that adds it (None: base API);
    collection -> the alias of the definition that declares it."""
    attrs, colls = {}, {}
    for d in _definitions(schema):
        aliases = [a["alias"] for a in getattr(d, "ALIASES", ())]
        first = aliases[0] if aliases else None
        core = d.__name__.endswith(".core")
        own = getattr(d, "ATTRIBUTE_ALIASES", {})
        for c in getattr(d, "COLLECTIONS", {}):
            colls.setdefault(c, None if core else
                             getattr(d, "COLLECTION_ALIASES", {}).get(c, first))
        for c, m in getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}).items():
            for k in m:
                if (c, k) in own:
                    attrs[c, k] = own[c, k]
                elif core or (colls.get(c) == first and k in ("id", "name", "project_id",
                                                                "tenant_id")):
                    attrs[c, k] = _CORE_ALIASES.get(k) if core or k == "project_id" else None
                else:
                    attrs[c, k] = first
        if d.__name__.endswith(".l3"):
            attrs.setdefault(("routers", "routes"), "extraroute")
    return attrs, colls


def attribute_schema(collection, name, a, mode, server_default=False):
    """The schema of one attribute of a resource in a request (``create``/
    ``update``) or a response.  A response shows null where the validator
    gives None, unless a create must give the attribute (a default of None
    the validator does not take is the server's to fill: ``mtu``)."""
    vmode = "response" if mode == "response" else "request"
    if a.validate is not None:
        s, null = validator_schema(a.validate, vmode)
    else:
        s, null = {}, False
    if mode == "response" and (collection, name) in _NEVER_NULL:
        null = False
    if mode == "response":
        shown = _SHOWN_IN.get((collection, name), _SHOWN.get(name))
        if shown is not None:
            s = shown
        elif a.validate is None and a.convert_filter is not None:
            s, null = validator_schema(a.convert_filter, "response")
            if s.get("type") == "string":
                s = {"type": "string"}
        if a.allow_post and a.default is NOT_SET and not server_default:
            null = False
    return nullable(s) if null else s


def _filter_schema(a):
    conv = a.convert_filter or a.validate
    s, _ = validator_schema(conv, "response") if conv is not None else ({}, False)
    if s.get("type") == "boolean":
        return BOOL_STRING
    if s.get("type") == "integer":
        return INT_STRING
    return {"type": "string"}


# ---------------------------------------------------------------- errors
def _error_classes(module):
    out = []
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, exceptions.QuantumError) and \
                obj.__module__ == module.__name__:
            out.append(obj)
    return out


# The errors any v2.0 operation can answer, by status (type names as in the
# NeutronError body).
GENERIC_ERRORS = {
    400: ["HTTPBadRequest", "BadRequest", "InvalidInput", "MalformedRequestBody"],
    401: ["HTTPUnauthorized"],
    403: ["PolicyNotAuthorized", "NotAuthorized", "AdminRequired", "HTTPForbidden"],
    404: ["HTTPNotFound"],
    405: ["HTTPMethodNotAllowed"],
    409: ["Conflict", "OverQuota", "InUse"],
    412: ["PreconditionFailed"],
    413: ["HTTPRequestEntityTooLarge"],
    415: ["HTTPUnsupportedMediaType"],
    503: ["ServiceUnavailable"],
}
_CORE_ERRORS = [c for c in _error_classes(exceptions) if c.code != 500]
# Which statuses each kind of operation answers besides its success.
_STATUSES = {
    # (A marker that names nothing is 404, as in Neutron; a busy database
    # is 503 anywhere.)
    "list": (400, 401, 403, 404, 503), "show": (400, 401, 403, 404, 503),
    "create": (400, 401, 403, 404, 409, 413, 415, 503),
    "update": (400, 401, 403, 404, 409, 412, 413, 415, 503),
    "delete": (400, 401, 403, 404, 409, 412, 503),
    "action": (400, 401, 403, 404, 409, 413, 415, 503),
    "read": (400, 401, 403, 404, 503),
}


def error_types(schema):
    """collection -> status -> sorted error type names its definitions
    declare (the core's errors go to the core's collections)."""
    out = {}
    for d in _definitions(schema):
        classes = _error_classes(d) + (_CORE_ERRORS if d.__name__.endswith(".core") else [])
        colls = list(getattr(d, "COLLECTIONS", {})) + list(
            getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}))
        for c in dict.fromkeys(colls):
            for cls in classes:
                out.setdefault(c, {}).setdefault(cls.code, set()).add(cls.__name__)
    return {c: {code: sorted(names) for code, names in m.items()} for c, m in out.items()}


def _responses(kind, collection, errors, ok):
    """``collection``: the one whose declared errors the operation answers
    (a tuple: several; None: only the generic ones)."""
    out = dict(ok)
    colls = (collection,) if isinstance(collection, str) else collection or ()
    for code in _STATUSES[kind]:
        names = set(GENERIC_ERRORS.get(code, ()))
        for c in colls:
            names |= set(errors.get(c, {}).get(code, ()))
        names = sorted(names)
        out[str(code)] = {
            "description": "NeutronError: " + ", ".join(names),
            "x-neutron-error-types": names,
            "content": {JSON: {"schema": NEUTRON_ERROR}}}
    out["500"] = {"description": "NeutronError: HTTPInternalServerError",
                  "x-neutron-error-types": ["HTTPInternalServerError"],
                  "content": {JSON: {"schema": NEUTRON_ERROR}}}
    return out


# ---------------------------------------------------------------- routes
@dataclass(frozen=True)
class Route:
    """One path the app answers: its OpenAPI template, what serves it
    (``kind``: versions, v2_index, extensions, extension, collection,
    member, tags, tag, extra), the collection, the methods, the extension
    alias of an extra route, and the canonical path when another path
    serves the same (a collection spelt with underscores)."""

    path: str
    kind: str
    collection: str = None
    methods: tuple = ("GET",)
    alias: str = None
    canonical: str = None


_FMT = re.compile(r"\{fmt:[^}]*\}\}?")


def _template(routepath):
    return _FMT.sub("", routepath.replace("{fmt:(\\.json)?}", ""))


def routes_of(api):
    """The routes of an app (quantum_ovs.api.router.API), in the order they
    were connected."""
    out, seen = [], {}
    extra_mods = {}
    for i, (_path, handlers) in enumerate(api.extra_routes):
        mods = {getattr(h, "__module__", None) for h in handlers.values()}
        extra_mods[f"extra{i}"] = (tuple(handlers), mods)
    for r in api.mapper.matchlist:
        d = r.defaults
        kind, coll = d.get("action"), d.get("collection")
        path = _template(r.routepath)
        if kind == "extra":
            methods, mods = extra_mods[d["extra"]]
            alias = None
            for m in mods:
                defn = getattr(sys.modules.get(m), "DEFINITION", None)
                if defn is not None and getattr(defn, "ALIASES", None):
                    alias = getattr(defn, "ROUTE_ALIASES", {}).get(
                        path, defn.ALIASES[0]["alias"])
            out.append(Route(path, kind, None, methods, alias))
            continue
        if kind in ("versions", "v2_index", "extensions", "extension", "openapi"):
            methods = ("GET",)
        elif kind == "collection":
            c = api.plugin.collections.get(coll) if hasattr(api.plugin, "collections") else None
            methods = ("GET", "POST") if c is None or getattr(c, "allow_create", True) \
                else ("GET",)
        elif kind == "member":
            c = api.plugin.collections.get(coll) if hasattr(api.plugin, "collections") else None
            methods = ["GET"]
            if any(a.allow_put for a in api.schema.resources[coll].values()):
                methods.append("PUT")
            if c is None or getattr(c, "allow_delete", True):
                methods.append("DELETE")
            methods = tuple(methods)
        else:
            methods = ("GET", "PUT", "DELETE")
        out.append(Route(path, kind, coll, methods))
        if coll:
            seen.setdefault((coll, kind), []).append(len(out) - 1)
    # An extra route served at a hyphenated path and at its underscored
    # spelling (floatingip-pools): the hyphenated one is canonical.
    extras = {r.path for r in out if r.kind == "extra"}
    for i, r in enumerate(out):
        hyphened = r.path.replace("_", "-")
        if r.kind == "extra" and hyphened != r.path and hyphened in extras:
            out[i] = Route(r.path, r.kind, r.collection, r.methods, r.alias, hyphened)
    # A collection served at two paths: the later (an extension's spelling)
    # is the canonical one.
    for idxs in seen.values():
        if len(idxs) > 1:
            canon = out[idxs[-1]].path
            for i in idxs[:-1]:
                r = out[i]
                out[i] = Route(r.path, r.kind, r.collection, r.methods, r.alias, canon)
    return out


def find_api(app):
    """The API object inside the middleware of make_app()."""
    seen = 0
    while app is not None and not hasattr(app, "mapper") and seen < 10:
        app = getattr(app, "app", None)
        seen += 1
    return app


# ---------------------------------------------------------------- the document
def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[_\-:]", name))


def _op_id(method, path):
    special = {"/": "Versions", "/v2.0": "V2Index", "/v2.0/": "V2IndexSlash",
               "/openapi.json": "OpenAPI"}
    if path in special:
        return method.lower() + special[path]
    words = [w for w in re.split(r"[/{}]", path) if w and w != "v2.0"]
    return method.lower() + "".join(_camel(w) for w in words)


def _component_names(schema):
    return {c: _camel(schema.singular[c]) for c in schema.resources}


def _resource_schemas(schema, aliases):
    comps = {}
    for c, attrs in schema.resources.items():
        name = _camel(schema.singular[c])
        shown, create, update, req_create = {}, {}, {}, []
        for k, a in attrs.items():
            alias = aliases.get((c, k))
            ext = {"x-extension-alias": alias} if alias else {}
            if a.is_visible:
                shown[k] = dict(attribute_schema(c, k, a, "response",
                                                 (c, k) in schema.server_defaults), **ext)
            if a.allow_post:
                create[k] = dict(attribute_schema(c, k, a, "create"), **ext)
                if a.default is NOT_SET and (c, k) not in schema.server_defaults:
                    req_create.append(k)
            if a.allow_put:
                update[k] = dict(attribute_schema(c, k, a, "update"), **ext)
        comps[name] = {"type": "object", "properties": shown, "additionalProperties": False,
                       "description": f"A {schema.singular[c]} as shown (``fields`` and "
                                      "policy may leave any attribute out)."}
        comps[name + "Create"] = {"type": "object", "properties": create,
                                  "additionalProperties": False}
        if req_create:
            comps[name + "Create"]["required"] = req_create
        comps[name + "Update"] = {"type": "object", "properties": update,
                                  "additionalProperties": False}
    return comps


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema_, description="OK"):
    return {"description": description, "content": {JSON: {"schema": schema_}}}


def _body(schema_, required=True):
    return {"required": required, "content": {JSON: {"schema": schema_}}}


def _wrap(key, inner, required=True):
    s = {"type": "object", "properties": {key: inner}, "additionalProperties": False}
    if required:
        s["required"] = [key]
    return s


def _list_params(schema, c):
    attrs = schema.resources[c]
    params = []
    for k, a in attrs.items():
        if not a.is_filter:
            continue
        params.append({"name": k, "in": "query", "required": False, "style": "form",
                       "explode": True, "description": f"Filter on {k} (any of the values).",
                       "schema": {"type": "array", "items": _filter_schema(a)}})
    if "tags" in attrs:
        for k in ("tags", "tags-any", "not-tags", "not-tags-any"):
            if any(p["name"] == k for p in params):
                continue
            params.append({"name": k, "in": "query", "required": False, "style": "form",
                           "explode": True, "description": "Comma-separated tags.",
                           "schema": {"type": "array", "items": {"type": "string"}}})
    if "updated_at" in attrs:
        params.append({"name": "changed_since", "in": "query", "required": False,
                       "schema": {"type": "string"},
                       "description": "ISO 8601: what changed at or after it."})
    sortable = sorted(k for k, a in attrs.items() if a.is_sort_key and a.is_visible)
    params += [
        {"name": "fields", "in": "query", "required": False, "style": "form",
         "explode": True, "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "sort_key", "in": "query", "required": False, "style": "form",
         "explode": True, "schema": {"type": "array", "items": {"enum": sortable}}},
        {"name": "sort_dir", "in": "query", "required": False, "style": "form",
         "explode": True, "schema": {"type": "array", "items": {"enum": ["asc", "desc"]}}},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "maximum": v.INT_MAX}},
        # (an empty marker is no marker, as in Neutron)
        {"name": "marker", "in": "query", "required": False, "allowEmptyValue": True,
         "schema": {"type": "string"}},
        {"name": "page_reverse", "in": "query", "required": False, "schema": BOOL_STRING},
    ]
    return params


_FIELDS = {"name": "fields", "in": "query", "required": False, "style": "form",
           "explode": True, "schema": {"type": "array", "items": {"type": "string"}}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
             "schema": {"type": "string"},
             "description": "revision_number=N: only when the revision is N (412)."}
_LINKS = {"type": "array", "items": {
    "type": "object", "required": ["rel", "href"], "additionalProperties": False,
    "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}}}


def _path_params(path):
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in re.findall(r"\{([^}]+)\}", path)]


def _links_for(schema, comp, creates, c):
    """Links from the create of ``c``: to its show/update/delete, and to
    the creates that take its id (``<member>_id``) or an id it shows."""
    member = schema.singular[c]
    links = {}
    own = creates.get(c, {})
    for what, op in own.get("member_ops", {}).items():
        what, tags = (what[:-4], "Tags") if what.endswith("Tags") else (what, "")
        links[f"{what}{comp[c]}{tags}"] = {
            "operationId": op, "parameters": {"id": f"$response.body#/{member}/id"}}
    for d, info in creates.items():
        if d == c or "create" not in info:
            continue
        attrs = schema.resources[d]
        required = [k for k, a in attrs.items() if a.allow_post and a.default is NOT_SET
                    and (d, k) not in schema.server_defaults]
        refs = [k for k in required if k.endswith("_id")]
        if not refs:
            continue
        body = {}
        for k in refs:
            if k == f"{member}_id":
                body[k] = f"$response.body#/{member}/id"
            elif k in schema.resources[c]:
                body[k] = f"$response.body#/{member}/{k}"
        if len(body) != len(refs):
            continue
        for k in required:
            if k not in body:
                ex = _EXAMPLES.get((d, k))
                if ex is None:
                    break
                body[k] = ex
        else:
            links[f"create{comp[d]}From{comp[c]}"] = {
                "operationId": info["create"],
                "requestBody": {schema.singular[d]: body}}
    return links


# Values that make a create succeed when a link gives the rest.
_EXAMPLES = {("subnets", "cidr"): "10.0.0.0/24", ("subnets", "ip_version"): 4,
             ("security_group_rules", "direction"): "ingress"}


_NEUTRON_ERROR_SCHEMA = {
    "type": "object", "required": ["NeutronError"], "additionalProperties": False,
    "properties": {"NeutronError": {
        "type": "object", "required": ["type", "message", "detail"],
        "additionalProperties": False,
        "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                       "detail": {"type": "string"}}}}}


def document(schema, routes, title="OpenStack Networking API (quantum-ovs)"):
    """The OpenAPI 3.1 description of the v2.0 API: ``schema`` the app's
    Schema, ``routes`` its routes_of()."""
    aliases, coll_alias = attribute_aliases(schema)
    errors = error_types(schema)
    comp = _component_names(schema)
    schemas = {
        "NeutronError": _NEUTRON_ERROR_SCHEMA,
        "Extension": {"type": "object", "additionalProperties": False,
                      "required": ["alias", "name", "description", "updated", "links"],
                      "properties": {"alias": {"type": "string"}, "name": {"type": "string"},
                                     "description": {"type": "string"},
                                     "updated": {"type": "string"}, "links": _LINKS}},
        "Links": _LINKS,
    }
    schemas.update(_resource_schemas(schema, aliases))
    paths = {}
    # The operation ids of creates and member operations, for the links.
    creates = {}
    for r in routes:
        if r.collection and not r.canonical:
            if r.kind == "collection" and "POST" in r.methods:
                creates.setdefault(r.collection, {})["create"] = _op_id("POST", r.path)
            if r.kind in ("member", "tags"):
                ops = creates.setdefault(r.collection, {}).setdefault("member_ops", {})
                suffix = "Tags" if r.kind == "tags" else ""
                for m, what in (("GET", "show"), ("PUT", "update"), ("DELETE", "delete")):
                    if m in r.methods:
                        ops[what + suffix] = _op_id(m, r.path)
    for r in routes:
        if not (r.path in ("/", "/openapi.json") or r.path.startswith("/v2.0")):
            continue
        item = paths.setdefault(r.path, {})
        params = _path_params(r.path)
        if params:
            item["parameters"] = params
        alias = r.alias or (coll_alias.get(r.collection) if r.collection else None)
        if r.kind in ("tags", "tag") and "standard-attr-tag" in schema.alias_names():
            alias = "standard-attr-tag"
        for m in r.methods:
            op = _operation(schema, r, m, comp, errors, creates)
            op["operationId"] = _op_id(m, r.path) + ("Underscored" if r.canonical else "")
            if alias:
                op["x-extension-alias"] = alias
            if r.canonical:
                op["deprecated"] = True
                op["x-canonical-path"] = r.canonical
            item[m.lower()] = op
        if alias:
            item["x-extension-alias"] = alias
    return {
        "openapi": OPENAPI,
        "info": {"title": title, "version": "2.0",
                 "description": "Generated from the attribute maps and routes the server "
                                "runs on (quantum_ovs/api/openapi.py); each path also "
                                "answers with a .json suffix.  Request bodies are "
                                "application/json; as Neutron does, a JSON body labelled "
                                "text/plain or not labelled is read as JSON when the "
                                "request carries X-Auth-Token (or, without Keystone, "
                                "X-Project-Id or X-Roles).",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "/"}],
        "x-extensions": [a["alias"] for a in schema.aliases],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _operation(schema, r, method, comp, errors, creates):
    c = r.collection
    if r.kind == "versions":
        return {"summary": "API versions", "security": [], "responses": _responses(
            "read", None, errors, {"200": _json({"type": "object"})})}
    if r.kind == "openapi":
        return {"summary": "This description", "responses": _responses(
            "read", None, errors, {"200": _json({"type": "object", "required": ["openapi"]})})}
    if r.kind == "v2_index":
        return {"summary": "Resources of v2.0", "responses": _responses(
            "read", None, errors, {"200": _json(_wrap("resources", {
                "type": "array", "items": {"type": "object"}}))})}
    if r.kind == "extensions":
        return {"summary": "Advertised extensions", "responses": _responses(
            "read", None, errors, {"200": _json(_wrap("extensions", {
                "type": "array", "items": _ref("Extension")}))})}
    if r.kind == "extension":
        return {"summary": "One extension", "responses": _responses(
            "read", None, errors, {"200": _json(_wrap("extension", _ref("Extension")))})}
    if r.kind == "extra":
        return _extra_operation(schema, r, method, comp, errors)
    member, name = schema.singular[c], comp[c]
    if r.kind == "collection" and method == "GET":
        body = {"type": "object", "required": [c], "additionalProperties": False,
                "properties": {c: {"type": "array", "items": _ref(name)},
                               f"{c}_links": _ref("Links")}}
        return {"summary": f"List {c}", "parameters": _list_params(schema, c),
                "responses": _responses("list", c, errors, {"200": _json(body)})}
    if r.kind == "collection":
        # (An item of a bulk create may be wrapped in its member key too.)
        bulk = _wrap(c, {"type": "array", "minItems": 1, "maxItems": v.LIST_MAX,
                         "items": {"anyOf": [_ref(name + "Create"),
                                             _wrap(member, _ref(name + "Create"))]}})
        one = _wrap(member, _ref(name + "Create"))
        out = _json({"anyOf": [_wrap(member, _ref(name)),
                               _wrap(c, {"type": "array", "items": _ref(name)})]},
                    "Created")
        links = _links_for(schema, comp, creates, c)
        if links:
            out["links"] = links
        return {"summary": f"Create a {member} (or several: {{\"{c}\": [...]}})",
                "requestBody": _body({"oneOf": [one, bulk]}),
                "responses": _responses("create", c, errors, {"201": out})}
    if r.kind == "member":
        if method == "GET":
            return {"summary": f"Show a {member}", "parameters": [_FIELDS],
                    "responses": _responses("show", c, errors,
                                            {"200": _json(_wrap(member, _ref(name)))})}
        if method == "PUT":
            return {"summary": f"Update a {member}", "parameters": [_IF_MATCH],
                    "requestBody": _body(_wrap(member, _ref(name + "Update"))),
                    "responses": _responses("update", c, errors,
                                            {"200": _json(_wrap(member, _ref(name)))})}
        return {"summary": f"Delete a {member}", "parameters": [_IF_MATCH],
                "responses": _responses("delete", c, errors,
                                        {"204": {"description": "Deleted"}})}
    tags = {"type": "array", "items": validator_schema(v.tag, "response")[0]}
    if r.kind == "tags":
        if method == "GET":
            return {"summary": f"Tags of a {member}", "responses": _responses(
                "show", c, errors, {"200": _json(_wrap("tags", tags))})}
        if method == "PUT":
            return {"summary": f"Replace the tags of a {member}",
                    "requestBody": _body(_wrap("tags", {
                        "type": "array", "items": validator_schema(v.tag, "request")[0]})),
                    "responses": _responses("update", c, errors,
                                            {"200": _json(_wrap("tags", tags))})}
        return {"summary": f"Remove every tag of a {member}", "responses": _responses(
            "delete", c, errors, {"204": {"description": "Removed"}})}
    if method == "GET":
        return {"summary": f"Whether a {member} has a tag", "responses": _responses(
            "show", c, errors, {"204": {"description": "It has"}})}
    if method == "PUT":
        return {"summary": f"Add a tag to a {member}", "responses": _responses(
            "update", c, errors, {"201": {"description": "Added"}})}
    return {"summary": f"Remove a tag of a {member}", "responses": _responses(
        "delete", c, errors, {"204": {"description": "Removed"}})}


# ---------------------------------------------------------------- extra routes
def _method_not_allowed(op):
    """``op`` also answering 405 HTTPMethodNotAllowed."""
    op["responses"]["405"] = {"description": "NeutronError: HTTPMethodNotAllowed",
                              "x-neutron-error-types": ["HTTPMethodNotAllowed"],
                              "content": {JSON: {"schema": NEUTRON_ERROR}}}
    return op


def _extra_operation(schema, r, method, comp, errors):
    """Routes an extension adds with handlers of its own: described here by
    path; an unknown one as any JSON."""
    p = r.path
    quota_item = {"type": "integer", "minimum": -1}
    if p == "/v2.0/quotas":
        return {"summary": "Quotas of every project with limits set", "responses": _responses(
            "read", None, errors, {"200": _json(_wrap("quotas", {
                "type": "array", "items": {"type": "object", "required": ["project_id"],
                                          "properties": {"project_id": {"type": "string"},
                                                         "tenant_id": {"type": "string"}},
                                          "additionalProperties": quota_item}}))})}
    if p in ("/v2.0/quotas/project", "/v2.0/quotas/tenant"):
        key = p.rsplit("/", 1)[1]
        return {"summary": f"The caller's own {key} id", "responses": _responses(
            "read", None, errors, {"200": _json(_wrap(key, {
                "type": "object", "required": [f"{key}_id"], "additionalProperties": False,
                "properties": {f"{key}_id": {"type": "string"}}}))})}
    if p.startswith("/v2.0/quotas/{project_id}"):
        if p.endswith("/details"):
            detail = {"type": "object", "required": ["limit", "used", "reserved"],
                      "additionalProperties": False,
                      "properties": {k: {"type": "integer"} for k in
                                     ("limit", "used", "reserved")}}
            return {"summary": "Quota limits and usage", "responses": _responses(
                "read", None, errors, {"200": _json(_wrap("quota", {
                    "type": "object", "additionalProperties": detail}))})}
        limits = _json(_wrap("quota", {"type": "object", "additionalProperties": quota_item}))
        if method == "GET":
            return {"summary": "Quota limits", "responses": _responses(
                "read", None, errors, {"200": limits})}
        # A PUT or DELETE is 405 on /quotas/project and /quotas/tenant (GET
        # only), paths a client's matcher takes for this one.
        if method == "PUT":
            return _method_not_allowed({"summary": "Set quota limits",
                    "requestBody": _body(_wrap("quota", {
                        "type": "object",
                        # force: true takes a limit below the usage (a JSON
                        # boolean only); check_limit is taken and changes
                        # nothing (the usage is always checked)
                        "properties": {"force": {"type": "boolean"},
                                       "check_limit": {"anyOf": [{"type": "boolean"},
                                                                 {"type": "string"},
                                                                 {"type": "integer"}]}},
                        "additionalProperties": {"anyOf": [{"type": "integer"},
                                                           {"type": "string"}]}})),
                    "responses": _responses("update", None, errors, {"200": limits})})
        return _method_not_allowed({
            "summary": "Reset quota limits to the defaults", "responses": _responses(
                "delete", None, errors, {"204": {"description": "Reset"}})})
    m = re.fullmatch(r"/v2\.0/routers/\{router_id\}/(\w+)", p)
    if m and "routers" in schema.resources:
        action = m.group(1)
        if action.endswith("_interface"):
            req = {"type": "object", "additionalProperties": False,
                   "properties": {"subnet_id": _uuid("request"), "port_id": _uuid("request")}}
            info = {"type": "object", "additionalProperties": False, "properties": {
                "id": _uuid("response"), "tenant_id": {"type": "string"},
                "project_id": {"type": "string"}, "port_id": _uuid("response"),
                "subnet_id": _uuid("response"), "network_id": _uuid("response"),
                "subnet_ids": {"type": "array", "items": _uuid("response")}}}
            return {"summary": action.replace("_", " "), "requestBody": _body(req),
                    "responses": _responses("action", "routers", errors,
                                            {"200": _json(info)})}
        req = _wrap("router", {"type": "object", "additionalProperties": False,
                               "required": ["routes"], "properties": {
                                   "routes": validator_schema(v.list_of(v.host_route),
                                                              "request")[0]}})
        return {"summary": action.replace("_", " "), "requestBody": _body(req),
                "responses": _responses("action", "routers", errors, {
                    "200": _json(_wrap("router", _ref(comp["routers"])))})}
    if p.startswith("/v2.0/network-ip-availabilities"):
        count = {"type": "integer", "minimum": 0}
        per_subnet = {"type": "object", "additionalProperties": False, "properties": {
            "subnet_id": _uuid("response"), "subnet_name": {"type": "string"},
            "cidr": _cidr("response"), "ip_version": {"enum": [4, 6]},
            "total_ips": count, "used_ips": count}}
        item = {"type": "object", "additionalProperties": False, "properties": {
            "network_id": _uuid("response"), "network_name": {"type": "string"},
            "project_id": {"type": "string"}, "tenant_id": {"type": "string"},
            "total_ips": count, "used_ips": count,
            "subnet_ip_availability": {"type": "array", "items": per_subnet}}}
        if p.endswith("{network_id}"):
            return {"summary": "IP availability of a network", "parameters": [_FIELDS],
                    "responses": _responses("read", None, errors, {"200": _json(
                        _wrap("network_ip_availability", item))})}
        return {"summary": "IP availability of networks", "parameters": [_FIELDS],
                "responses": _responses("read", None, errors, {"200": _json(
                    _wrap("network_ip_availabilities", {"type": "array", "items": item}))})}
    if p == "/v2.0/auto-allocated-topology/{project_id}":
        # (its errors are declared with the networks it makes: the
        # deployment's 409s, a network still in use)
        if method == "DELETE":
            return {"summary": "Delete a project's auto-allocated topology",
                    "responses": _responses("delete", "networks", errors,
                                            {"204": {"description": "Deleted"}})}
        topo = {"type": "object", "additionalProperties": False,
                "required": ["id", "project_id", "tenant_id"], "properties": {
                    "id": {"description": "The network's id (dry-run=pass for "
                                          "fields=dry-run)", "type": "string"},
                    "project_id": {"type": "string"}, "tenant_id": {"type": "string"}}}
        return {"summary": "A project's auto-allocated topology, made on the first call",
                "parameters": [_FIELDS], "responses": _responses(
                    "action", "networks", errors,
                    {"200": _json(_wrap("auto_allocated_topology", topo))})}
    m = re.fullmatch(r"/v2\.0/subnetpools/\{pool_id\}/(\w+)", p)
    if m and "subnetpools" in schema.resources and m.group(1) == "onboard_network_subnets":
        req = {"type": "object", "required": ["network_id"],
               "properties": {"network_id": {"type": "string"}}}
        onboarded = {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["id", "cidr"],
            "properties": {"id": _uuid("response"), "cidr": _cidr("response")}}}
        return {"summary": "Onboard the subnets of a network into the pool",
                "requestBody": _body(req), "responses": _responses(
                    "action", ("subnetpools", "networks"), errors,
                    {"200": _json(onboarded)})}
    if m and "subnetpools" in schema.resources:
        body = {"type": "object", "additionalProperties": False, "required": ["prefixes"],
                "properties": {"prefixes": {"type": "array", "items": _cidr("request")}}}
        return {"summary": m.group(1).replace("_", " "), "requestBody": _body(body),
                "responses": _responses("action", "subnetpools", errors,
                                        {"200": _json(body)})}
    m = re.fullmatch(r"/v2\.0/address-groups/\{group_id\}/(\w+)", p)
    if m and "address_groups" in schema.resources:
        req = {"type": "object", "additionalProperties": False, "required": ["addresses"],
               "properties": {"addresses": {"type": "array", "items": {"type": "string"}}}}
        return {"summary": m.group(1).replace("_", " "), "requestBody": _body(req),
                "responses": _responses("action", "address_groups", errors, {
                    "200": _json(_wrap("address_group", _ref(comp["address_groups"])))})}
    if p.startswith("/v2.0/ports/{port_id}/bindings"):
        binding = {"type": "object", "additionalProperties": False, "properties": {
            "host": {"type": "string"}, "vif_type": {"type": "string"},
            "vif_details": {"type": "object"}, "profile": {"type": "object"},
            "vnic_type": {"type": "string"}, "status": {"type": "string"}}}
        if p.endswith("/activate"):
            return {"summary": "Activate a port binding", "responses": _responses(
                "action", "ports", errors, {"200": _json(_wrap("binding", binding))})}
        if method == "GET" and p.endswith("/bindings"):
            return {"summary": "Bindings of a port", "parameters": [_FIELDS],
                    "responses": _responses("read", "ports", errors, {"200": _json(
                        _wrap("bindings", {"type": "array", "items": binding}))})}
        if method == "GET":
            return {"summary": "A binding of a port", "parameters": [_FIELDS],
                    "responses": _responses("read", "ports", errors,
                                            {"200": _json(_wrap("binding", binding))})}
        if method == "DELETE":
            return {"summary": "Delete an inactive binding", "responses": _responses(
                "delete", "ports", errors, {"204": {"description": "Deleted"}})}
        req = _wrap("binding", {"type": "object", "properties": {
            "host": {"type": "string"}, "vnic_type": {"type": "string"},
            "profile": {"type": ["object", "null"]}}})
        code = "201" if method == "POST" else "200"
        return {"summary": "Create or update a port binding", "requestBody": _body(req),
                "responses": _responses("action", "ports", errors,
                                        {code: _json(_wrap("binding", binding))})}
    if method == "DELETE":
        return {"summary": f"{method} {p}", "responses": _responses(
            "delete", None, errors, {"204": {"description": "Deleted"}})}
    op = {"summary": f"{method} {p}", "responses": _responses(
        "action" if method in ("POST", "PUT") else "read", None, errors,
        {"2XX": {"description": "Success", "content": {JSON: {"schema": {}}}}})}
    if method in ("POST", "PUT"):
        op["requestBody"] = _body({"type": "object"}, required=False)
    return op


# ---------------------------------------------------------------- Essex
def _query_params(names):
    return [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in names]


def essex_document(versions=("1.0", "1.1")):
    """The Essex API (Quantum v1.0 and v1.1, quantum_ovs.extensions.essex)."""
    from quantum_ovs.api.definitions import essex
    paths = {}
    components = {"NeutronError": _NEUTRON_ERROR_SCHEMA}
    state = {"enum": ["ACTIVE", "DOWN"]}
    name = {"type": "string"}
    for version in versions:
        v11 = version == "1.1"
        base = f"/v{version}/tenants/{{tenant_id}}/networks"
        net, port = base + "/{network_id}", base + "/{network_id}/ports/{port_id}"
        if v11:
            fault = {"type": "object", "required": ["QuantumError"],
                     "properties": {"QuantumError": {
                         "type": "object", "required": ["type", "message", "detail"],
                         "properties": {"type": {"type": "string"},
                                        "message": {"type": "string"},
                                        "detail": {"type": "string"}}}}}
            codes = sorted({f[2] for f in essex.FAULTS.values()} | set(essex.V10_NAMES))
        else:
            inner = {"type": "object", "required": ["code", "message", "detail"],
                     "properties": {"code": {"type": "integer"},
                                    "message": {"type": "string"},
                                    "detail": {"type": "string"}}}
            fault = {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "additionalProperties": inner}
            codes = sorted({f[0] for f in essex.FAULTS.values()} | set(essex.V10_NAMES))
        status = {"type": "string"}
        network = {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "name": name, "ports": {"type": "array"}}}
        portv = {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "state": state,
            "attachment": {"type": "object"}}}
        if v11:
            network["properties"]["op-status"] = status
            portv["properties"]["op-status"] = status
        # What is refused before the v1.x handlers see it (a URL that is
        # no UTF-8 or holds NUL, a path that names nothing, identity
        # headers out of bounds) is answered as a v2.0 NeutronError.
        fault_name = "Fault" + version.replace(".", "")
        components[fault_name] = {"anyOf": [fault, {"$ref": "#/components/schemas/"
                                                           "NeutronError"}]}
        codes = sorted(set(codes) | {413, 415, 500})
        errs = {str(code): {"description": "Fault", "content": {JSON: {
            "schema": {"$ref": f"#/components/schemas/{fault_name}"}}}} for code in codes}

        def op(summary, ok, body=None, _errs=errs, required=True):
            o = {"summary": summary, "responses": dict(ok, **_errs)}
            if body is not None:
                o["requestBody"] = _body(body, required)
            return o
        created = {"202" if v11 else "200": _json({"type": "object"}, "Created")}
        nets = _json(_wrap("networks", {"type": "array", "items": network}))
        ports = _json(_wrap("ports", {"type": "array", "items": portv}))
        none = {"204": {"description": "Done"}}
        # Quantum read the resource's key of a body and nothing else: other
        # keys, beside it or in it (its "data extensions"), were passed over.
        net_body = dict(_wrap("network", {"type": "object", "properties": {"name": name}}),
                        additionalProperties=True)
        port_body = {"type": "object", "properties": {
            "port": {"type": "object", "properties": {"state": {"type": "string"}}}}}
        att = dict(_wrap("attachment", {"type": "object", "properties": {"id": name}}),
                   additionalProperties=True)
        paths[base] = {"get": op("List networks", {"200": nets}),
                       "post": op("Create a network", created, net_body)}
        paths[base + "/detail"] = {"get": op("List networks with details", {"200": nets})}
        paths[net] = {"get": op("Show a network", {"200": _json(_wrap("network", network))}),
                      "put": op("Rename a network", none, net_body),
                      "delete": op("Delete a network", none)}
        paths[net + "/detail"] = {"get": op("Show a network with its ports",
                                            {"200": _json(_wrap("network", network))})}
        paths[net + "/ports"] = {"get": op("List ports", {"200": ports}),
                                 "post": op("Create a port", created, port_body,
                                            required=False)}
        paths[net + "/ports/detail"] = {"get": op("List ports with details", {"200": ports})}
        paths[port] = {"get": op("Show a port", {"200": _json(_wrap("port", portv))}),
                       "put": op("Set a port's state", none, port_body),
                       "delete": op("Delete a port", none)}
        paths[port + "/detail"] = {"get": op("Show a port with its attachment",
                                             {"200": _json(_wrap("port", portv))})}
        paths[port + "/attachment"] = {
            "get": op("The port's attachment", {"200": _json({"type": "object"})}),
            "put": op("Plug an attachment", none, att),
            "delete": op("Unplug the attachment", none)}
        # ?detail=true on every list and show; the v1.1 lists' filters
        shows = (base, net, net + "/ports", port)
        for path in shows:
            paths[path]["get"]["parameters"] = _query_params(["detail"])
        if v11:
            paths[base]["get"]["parameters"] += _query_params(
                [*essex.NETWORK_FILTERS, *essex.NETWORK_FILTER_ALIASES])
            paths[net + "/ports"]["get"]["parameters"] += _query_params(
                [*essex.PORT_FILTERS, *essex.PORT_FILTER_ALIASES])
    for p, item in paths.items():
        item["parameters"] = _path_params(p)
        for m, o in item.items():
            if m != "parameters":
                o["operationId"] = _op_id(m, p.replace(".", "_"))
    return {"openapi": OPENAPI,
            "info": {"title": "Quantum API v1.0/v1.1 (Essex, quantum-ovs)", "version": "1.1",
                     "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
            "servers": [{"url": "/"}], "paths": paths,
            "components": {"schemas": components}}
