"""Agents (alias ``agent``): what each hypervisor's agent reported, read
by the admin, who may set admin_state_up and description and delete a
dead agent."""

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.policy_rules import ADMIN, crud

ALIASES = [{"alias": "agent", "name": "agent",
            "description": "The agent management extension."}]

COLLECTIONS = {"agents": "agent"}


def _ro(**kw):
    return Attr(None, allow_post=False, **kw)


RESOURCE_ATTRIBUTE_MAP = {
    "agents": {
        "id": _ro(convert_filter=v.string(None)),
        "agent_type": _ro(convert_filter=v.string(255)),
        "binary": _ro(convert_filter=v.string(255)),
        "topic": _ro(convert_filter=v.string(255)),
        "host": _ro(convert_filter=v.string(255)),
        "admin_state_up": Attr(v.to_bool, allow_post=False, allow_put=True,
                               convert_filter=v.to_bool),
        "description": Attr(v.string(255), allow_post=False, allow_put=True,
                            convert_filter=v.string(255)),
        "alive": _ro(is_sort_key=False, is_filter=False),
        "availability_zone": _ro(convert_filter=v.string(255)),
        "created_at": _ro(is_filter=False),
        "started_at": _ro(is_filter=False),
        "heartbeat_timestamp": _ro(is_filter=False),
        "configurations": _ro(is_filter=False, is_sort_key=False),
        "resources_synced": _ro(is_filter=False, is_sort_key=False),
    },
}

POLICY_RULES = crud("agent", "/agents", {
    "get_agent": (ADMIN, "Get an agent"),
    "update_agent": (ADMIN, "Update an agent"),
    "delete_agent": (ADMIN, "Delete an agent"),
})


class AgentNotFound(exceptions.NotFound):
    message = "Agent %(id)s could not be found."


class AgentInUse(exceptions.InUse):
    message = "Agent %(id)s is alive; only a dead agent can be deleted."
