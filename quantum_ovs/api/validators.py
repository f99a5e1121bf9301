"""Converters/validators for attribute values.

Each takes the raw JSON value and returns the normalized value or raises
InvalidInput with a message that names the problem.
"""

import ipaddress
import re
import uuid

from quantum_ovs import exceptions

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def bad(msg):
    return exceptions.InvalidInput(error_message=msg)


def to_bool(value, name="value"):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "1", "yes", "on", "t", "y"):
            return True
        if v in ("false", "0", "no", "off", "f", "n"):
            return False
    raise bad(f"'{value}' cannot be converted to boolean")


# What a 64-bit signed database column holds; a larger integer is a bad
# request, never a database error.
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1


def to_int(value, name="value", minimum=None, maximum=None):
    """An integer from a JSON number or a string of digits (clients send
    ``"4"`` as readily as ``4``, and Neutron converts both); a float only
    when it is whole.  Never a bool, never outside 64 signed bits."""
    if isinstance(value, bool):
        raise bad(f"'{value}' is not an integer")
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,20}\s*", value):
        out = int(value)
    else:
        raise bad(f"'{value}' is not an integer")
    if not INT_MIN <= out <= INT_MAX:
        raise bad(f"'{out}' is out of range for an integer")
    if minimum is not None and out < minimum:
        raise bad(f"'{out}' is too small - must be at least '{minimum}'")
    if maximum is not None and out > maximum:
        raise bad(f"'{out}' is too large - must be no larger than '{maximum}'")
    return out


def integer(minimum=None, maximum=None, choices=None, allow_none=False):
    """The validator of an integer attribute: every integer the API takes
    goes through here (and to_int), so a string of digits is converted the
    same way everywhere."""
    def check(value, name="value"):
        if value is None and allow_none:
            return None
        out = to_int(value, name, minimum, maximum)
        if choices is not None and out not in choices:
            raise bad(f"'{value}' is not in {list(choices)}")
        return out
    return check


def string(max_len=255, allow_none=False):
    def check(value, name="value"):
        if value is None and allow_none:
            return None
        if not isinstance(value, str):
            raise bad(f"'{value}' is not a valid string")
        if max_len is not None and len(value) > max_len:
            raise bad(f"'{value[:40]}...' exceeds maximum length of {max_len}")
        if "\x00" in value:
            raise bad("strings may not contain NUL characters")
        return value
    return check


def uuid_str(value, name="value"):
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise bad(f"'{value}' is not a valid UUID")
    return str(uuid.UUID(value))


def uuid_or_none(value, name="value"):
    return None if value is None else uuid_str(value, name)


def mac(value, name="value"):
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise bad(f"'{value}' is not a valid MAC address")
    out = value.lower().replace("-", ":")
    first = int(out[:2], 16)
    if out == "00:00:00:00:00:00" or out == "ff:ff:ff:ff:ff:ff" or first & 1:
        raise bad(f"'{value}' is not a valid unicast MAC address")
    return out


def bool_unset(value, name="value"):
    """A boolean given (never null) for an attribute that is null until
    one is (a port's ``trusted``)."""
    if value is None:
        raise bad(f"'{value}' cannot be converted to boolean")
    return to_bool(value, name)


def mac_or_none(value, name="value"):
    """A MAC address, or None (a port's: a new one, chosen by the server)."""
    return None if value is None else mac(value, name)


def ip_address(value, name="value"):
    if not isinstance(value, str):
        raise bad(f"'{value}' is not a valid IP address")
    try:
        # Reject forms like '10.0.0.1/24' or scoped v6 here.
        if "/" in value or "%" in value:
            raise ValueError
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise bad(f"'{value}' is not a valid IP address") from None


def ip_or_none(value, name="value"):
    return None if value is None else ip_address(value, name)


def cidr(value, name="value", strict=True):
    if not isinstance(value, str) or "/" not in value or "%" in value:
        raise bad(f"'{value}' is not a valid IP subnet")
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError:
        raise bad(f"'{value}' is not a valid IP subnet") from None
    net = iface.network
    if strict and iface.ip != net.network_address:
        raise bad(f"'{value}' isn't a recommended CIDR, '{net}' is recommended")
    return str(net)


def ip_or_cidr(value, name="value"):
    """An address or a prefix (allowed address pairs, remote prefixes).
    No IPv6 scope (``%eth0``): Neutron's netaddr refuses it, and the
    switch drops it, so that two spellings would make one flow."""
    if not isinstance(value, str) or "%" in value:
        raise bad(f"'{value}' is neither a valid IP address nor a valid IP subnet")
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise bad(f"'{value}' is neither a valid IP address nor a valid IP subnet") from None


# The most items a list in a request may hold, counted before any item is
# checked: a 4 MiB body holds some 100,000 small items, and checking them one
# by one took the API worker 0.3-1.7 s of CPU before the per-object cap
# refused the list.  This holds whatever the per-object caps say (their
# defaults are far below it).
LIST_MAX = 1000


def check_length(value, name="value", max_items=LIST_MAX) -> None:
    """400 for a list of more than ``max_items``."""
    if len(value) > max_items:
        raise bad(f"'{name}' holds {len(value)} items; a request may give at most "
                  f"{max_items}")


def list_of(item, unique=False, what="list", key=None, distinct=None, max_items=LIST_MAX,
            none_as_empty=False):
    """``distinct``: a check of the validated items, before ``unique``'s
    (that raises an error of its own for items that must differ);
    ``max_items``: the longest list taken (checked first);
    ``none_as_empty``: null is the empty list (neutron-lib's
    convert_none_to_empty_list)."""
    def check(value, name="value"):
        if value is None and none_as_empty:
            return []
        if not isinstance(value, list):
            raise bad(f"'{value}' is not a list")
        check_length(value, name, max_items)
        out = [item(v, name) for v in value]
        if distinct is not None:
            distinct(out)
        if unique:
            seen = set()
            for v in out:
                k = key(v) if key else (v if not isinstance(v, dict) else tuple(sorted(v.items())))
                if k in seen:
                    raise bad(f"Duplicate {what} '{k if not isinstance(k, tuple) else dict(k)}'")
                seen.add(k)
        return out
    return check


def dict_with(spec, name_of="item"):
    """A dict whose keys are in ``spec`` (key -> (validator, required))."""
    def check(value, name="value"):
        if not isinstance(value, dict):
            raise bad(f"'{value}' is not a dictionary")
        unknown = set(value) - set(spec)
        if unknown:
            raise bad(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}' in {name_of}")
        out = {}
        for k, (validate, required) in spec.items():
            if k in value:
                out[k] = validate(value[k], k)
            elif required:
                raise bad(f"'{k}' is required in {name_of}")
        return out
    return check


def tag(value, name="value"):
    value = string(255)(value, name)
    if not value or "," in value or "/" in value:
        raise bad(f"'{value}' is not a valid tag")
    return value


def service_type(value, name="value"):
    """A subnet's service type: a device owner, ``<kind>:<what>``
    (``network:floatingip``, ``compute:nova``), matched exactly."""
    if not isinstance(value, str):
        raise bad(f"Subnet service type {value} is not a string.")
    value = string(255)(value, name)
    if not SERVICE_TYPE_RE.match(value):
        raise bad(f"Subnet service type {value} does not correspond to a valid device "
                  "owner.")
    return value


SERVICE_TYPE_RE = re.compile(r"^[^:\s]+:\S*$")

fixed_ip = dict_with({"subnet_id": (uuid_str, False),
                      "ip_address": (ip_address, False)}, "fixed_ips")


def _one_address_each(items):
    """Fixed IPs: an address at most once, whatever subnet_id its entries
    give (entries with a subnet_id alone may repeat: as many addresses
    from that subnet)."""
    seen = set()
    for x in items:
        ip = x.get("ip_address")
        if ip is not None:
            if ip in seen:
                raise bad(f"Duplicate IP address '{ip}'")
            seen.add(ip)


def _pairs_once_each(items):
    """Allowed address pairs, none twice as given (a pair without a MAC
    and the same with the port's MAC are caught where that MAC is known:
    db/resources/ports.py)."""
    seen = set()
    for x in items:
        k = (x.get("mac_address"), x["ip_address"])
        if k in seen:
            raise exceptions.DuplicateAddressPairInRequest(mac_address=k[0], ip_address=k[1])
        seen.add(k)


fixed_ips = list_of(fixed_ip, distinct=_one_address_each)

allocation_pool = dict_with({"start": (ip_address, True),
                             "end": (ip_address, True)}, "allocation_pools")
host_route = dict_with({"destination": (cidr, True),
                        "nexthop": (ip_address, True)}, "host_routes")
address_pair = dict_with({"ip_address": (ip_or_cidr, True),
                          "mac_address": (mac, False)}, "allowed_address_pairs")
address_pairs = list_of(address_pair, unique=True, what="address pair",
                        distinct=_pairs_once_each, none_as_empty=True)


def choices(*values, allow_none=True):
    def check(value, name="value"):
        if value is None and allow_none:
            return None
        if value not in values:
            raise bad(f"'{value}' is not in {list(values)}")
        return value
    return check
