"""Extra DHCP options of a port (extra_dhcp_opt): ``extra_dhcp_opts``, a
list of {opt_name, opt_value, ip_version}, what Ironic sets for PXE
(bootfile-name, tftp-server, server-ip-address).

An option is known by (opt_name, ip_version).  A create sets the options
given (those with a null or empty value are left out, as Neutron does,
except the few whose empty value means something); an update changes
the options it names, removes those whose opt_value is null, and keeps
the others; ``[]`` keeps all (Neutron's reading of an empty list).
"""

from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr

ALIASES = [
    {"alias": "extra_dhcp_opt", "name": "Neutron Extra DHCP options",
     "description": "Extra options configuration for DHCP. For example PXE boot options "
                    "to DHCP clients can be specified (e.g. tftp-server, server-ip-address, "
                    "bootfile-name)"},
]

EXTRA_DHCP_OPTS = "extra_dhcp_opts"
OPT_NAME_MAX_LEN = 64
OPT_VALUE_MAX_LEN = 255
# Options whose empty value is meaningful (no router; no static routes).
BLANK_ALLOWED = ("router", "classless-static-route")


def _opt_name(value, name="opt_name"):
    value = v.string(OPT_NAME_MAX_LEN)(value, name)
    if not value.strip():
        raise v.bad("'opt_name' of an extra DHCP option must not be empty")
    if any(c in value for c in "\r\n\t ") or any(ord(c) < 32 for c in value):
        raise v.bad(f"'{value}' is not a valid opt_name: it has white space or control "
                    "characters")
    return value


def _opt_value(value, name="opt_value"):
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # Neutron's clients send numbers as they come
    value = v.string(OPT_VALUE_MAX_LEN)(value, name)
    if any(ord(c) < 32 for c in value):
        raise v.bad(f"'{value[:40]}' is not a valid opt_value: it has control characters")
    return value


_item = v.dict_with({"opt_name": (_opt_name, True),
                     "opt_value": (_opt_value, True),
                     "ip_version": (v.integer(choices=(4, 6)), False)}, "extra_dhcp_opts")


def extra_dhcp_opts(value, name=EXTRA_DHCP_OPTS):
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.bad(f"'{value}' is not a list of extra DHCP options")
    v.check_length(value, name)
    out, seen = [], set()
    for item in value:
        opt = _item(item, name)
        opt.setdefault("ip_version", 4)
        if opt["opt_value"] == "" and opt["opt_name"] not in BLANK_ALLOWED:
            # (as neutron-lib's key specs: only these may be blank; null
            # removes an option)
            raise v.bad(f"'opt_value' of extra DHCP option '{opt['opt_name']}' must not be "
                        f"empty (only {', '.join(BLANK_ALLOWED)} may be)")
        key = (opt["opt_name"], opt["ip_version"])
        if key in seen:
            raise v.bad(f"Duplicate extra DHCP option '{key[0]}' for IP version {key[1]}")
        seen.add(key)
        out.append(opt)
    return out


RESOURCE_ATTRIBUTE_MAP = {
    "ports": {
        EXTRA_DHCP_OPTS: Attr(extra_dhcp_opts, allow_put=True, default=[],
                              is_filter=False, is_sort_key=False),
    },
}
