"""Policy defaults as data: the personas, the rule helpers, the base rules
and the ``field:`` check.  Pure: oslo.policy's rule classes and nothing of
ours, so that the API definitions (quantum_ovs/api/definitions) declare
their rules without importing the enforcer or the configuration.

``field:<resource>:<attr>=<value>`` compares an attribute of the target,
``field:<resource>:<attr>=~<regex>`` matches it against a regular
expression (``field:port:device_owner=~^network:``).
"""

import re

from oslo_policy import policy as oslo_policy


# ------------------------------------------------------------ field check
# (registered before any rule is parsed: rules are parsed when defined)
@oslo_policy.register("field")
class FieldCheck(oslo_policy.Check):
    """``field:<resource>:<attr>=<value>`` (``True``/``False`` compare as
    booleans) or ``field:<resource>:<attr>=~<regex>`` (matched at the start
    of the attribute's string value).  A missing attribute never matches."""

    def __init__(self, kind, match):
        resource, _, rest = match.partition(":")
        field, sep, value = rest.partition("=")
        if not resource or not field or not sep:
            raise ValueError(f"bad field check {kind}:{match}: "
                             "use field:<resource>:<attribute>=<value>")
        super().__init__(kind, match)
        self.resource = resource
        self.field = field
        self.regex = re.compile(value[1:]) if value.startswith("~") else None
        self.value = {"True": True, "False": False}.get(value, value)

    def __call__(self, target, creds, enforcer, current_rule=None):
        got = target.get(self.field)
        if got is None:
            return False
        if self.regex is not None:
            return isinstance(got, str) and self.regex.match(got) is not None
        if isinstance(self.value, bool) or isinstance(got, bool):
            return got is self.value
        return str(got) == self.value


# --------------------------------------------------------------- personas
ADMIN = "rule:admin_only"
SERVICE = "rule:service_api"
PROJECT_MANAGER = "role:manager and project_id:%(project_id)s"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
NET_OWNER_MANAGER = "role:manager and rule:network_owner"
NET_OWNER_MEMBER = "role:member and rule:network_owner"
NET_OWNER_READER = "role:reader and rule:network_owner"


def any_of(*checks):
    """``(a) or (b) or ...``"""
    return " or ".join(f"({c})" for c in checks)


ADMIN_OR_SERVICE = any_of(ADMIN, SERVICE)
ADMIN_OR_PROJECT_MEMBER = any_of(ADMIN, PROJECT_MEMBER)
ADMIN_OR_PROJECT_READER = any_of(ADMIN, PROJECT_READER)
ADMIN_OR_PROJECT_MANAGER = any_of(ADMIN, PROJECT_MANAGER)
ADMIN_OR_NET_OWNER_MEMBER = any_of(ADMIN, NET_OWNER_MEMBER)
ADMIN_OR_NET_OWNER_READER = any_of(ADMIN, NET_OWNER_READER)

PROJECT = ["project"]


def rule(name, check_str, description, method=None, path=None, operations=None):
    """A documented rule of the project scope (``operations``: [(method,
    path)], or one ``method`` and ``path``)."""
    ops = operations or [(method, path)]
    return oslo_policy.DocumentedRuleDefault(
        name=name, check_str=check_str, description=description, scope_types=PROJECT,
        operations=[{"method": m, "path": p} for m, p in ops])


def crud(resource, collection_path, checks, extra_attrs=()):
    """Documented rules for ``<action>_<resource>[:<attr>]``; ``checks``:
    {rule name: (check_str, description)}."""
    item = collection_path + "/{id}"
    where = {"create": [("POST", collection_path)],
             "get": [("GET", collection_path), ("GET", item)],
             "update": [("PUT", item)],
             "delete": [("DELETE", item)]}
    tags = {"create": [("POST", collection_path)],
            "get": [("GET", item + "/tags"), ("GET", item + "/tags/{tag}")],
            "update": [("PUT", item + "/tags"), ("PUT", item + "/tags/{tag}")],
            "delete": [("DELETE", item + "/tags"), ("DELETE", item + "/tags/{tag}")]}
    out = []
    for name, (check_str, description) in checks.items():
        action = name.split("_", 1)[0]
        ops = tags[action] if name.endswith(":tags") else where[action]
        out.append(rule(name, check_str, description, operations=ops))
    return out


# The rules every other rule builds on (not about one resource).
BASE_RULES = [
    oslo_policy.RuleDefault("context_is_admin", "role:admin",
                            description="Who is an administrator (everywhere: the API, "
                                        "listings, quotas, the v1.x API)."),
    oslo_policy.RuleDefault("service_api", "role:service",
                            description="Service-to-service calls (nova, agents)."),
    oslo_policy.RuleDefault("owner", "project_id:%(project_id)s",
                            description="The caller's project owns the resource."),
    oslo_policy.RuleDefault("admin_or_owner", "rule:context_is_admin or rule:owner",
                            description="An administrator or the owner."),
    oslo_policy.RuleDefault("network_owner", "project_id:%(network:project_id)s",
                            description="The caller's project owns the resource's network."),
    oslo_policy.RuleDefault("admin_or_network_owner",
                            "rule:context_is_admin or rule:network_owner",
                            description="An administrator or the network's owner."),
    oslo_policy.RuleDefault("admin_owner_or_network_owner",
                            "rule:owner or rule:admin_or_network_owner",
                            description="The owner, the network's owner or an administrator."),
    oslo_policy.RuleDefault("admin_only", "rule:context_is_admin",
                            description="Administrators only."),
    oslo_policy.RuleDefault("regular_user", "", description="Anyone."),
    oslo_policy.RuleDefault("shared", "field:networks:shared=True",
                            description="The network (of a subnet or port: its network) "
                                        "is shared."),
    oslo_policy.RuleDefault("external", "field:networks:router:external=True",
                            description="The network is external."),
    oslo_policy.RuleDefault("external_network", "field:subnets:router:external=True",
                            description="The subnet's network is external."),
    oslo_policy.RuleDefault("network_device", "field:port:device_owner=~^network:",
                            description="The port belongs to a network service "
                                        "(device_owner network:*)."),
    oslo_policy.RuleDefault("default", "rule:admin_or_owner",
                            description="The rule of actions that have none."),
]
