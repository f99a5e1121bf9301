"""Quotas (``quotas``, ``quota_details``, ``quota-check-limit``):
``/v2.0/quotas[/{project_id}[/default|/details]]``, limits per project and
resource, -1 for unlimited; ``/v2.0/quotas/project`` and ``/tenant`` name
the caller's own project (Neutron's GET collection actions).  Served by
routes of its own (admin checks in code, as in Neutron: no policy
rules)."""

from quantum_ovs import exceptions

ALIASES = [
    {"alias": "quotas", "name": "Quota management support",
     "description": "Expose functions for quotas management per project"},
    {"alias": "quota_details", "name": "Quota details management support",
     "description": "Expose functions for quotas usage statistics per project"},
    {"alias": "quota-check-limit", "name": "Quota engine limit check",
     "description": "Support for checking the resource usage before applying a new "
                    "quota limit"},
    {"alias": "quota-check-limit-default", "name": "Quota engine limit check by default",
     "description": "A new limit below the resource's usage is refused unless the "
                    "update says force"},
]

# The largest limit (a 32-bit signed integer, as in Neutron).
MAX_LIMIT = 2 ** 31 - 1


class OverQuota(exceptions.Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class InvalidQuotaValue(exceptions.InvalidInput):
    message = "Invalid input for operation: %(reason)s."


class QuotaResourceUnknown(exceptions.NotFound):
    message = "Unknown quota resources %(unknown)s."


class TenantQuotaNotFound(exceptions.NotFound):
    # (Neutron's name and message: a DELETE of the limits of a project
    # that has none.)
    message = "Quota for tenant %(tenant_id)s could not be found."
