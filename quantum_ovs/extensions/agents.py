"""Agents (alias ``agent``): what each hypervisor's agent reported.

Rows are written by the agent API (registration and heartbeats); the
admin reads them here, may set admin_state_up and description, and may
delete an agent that is no longer alive.
"""

import json

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs import policy
from quantum_ovs.api import agent_api, attributes, validators as v
from quantum_ovs.api.attributes import Attr
from quantum_ovs.db import agents as agents_db, models
from quantum_ovs.db.plugin import Collection
from quantum_ovs.timeutils import agent_time

ALIASES = [{"alias": "agent", "name": "agent",
            "description": "The agent management extension."}]

OPTS = [("DEFAULT", [
    cfg.IntOpt("agent_down_time", default=75,
               help="Seconds without a heartbeat after which an agent is dead."),
])] + agent_api.OPTS

AGENT_TYPE = "Open vSwitch agent"
BINARY = "quantum-ovs-agent"

POLICY_RULES = policy.crud("agent", "/agents", {
    "get_agent": (policy.ADMIN, "Get an agent"),
    "update_agent": (policy.ADMIN, "Update an agent"),
    "delete_agent": (policy.ADMIN, "Delete an agent"),
})


class AgentNotFound(exceptions.NotFound):
    message = "Agent %(id)s could not be found."


class AgentInUse(exceptions.InUse):
    message = "Agent %(id)s is alive; only a dead agent can be deleted."


def _ro(**kw):
    return Attr(None, allow_post=False, **kw)


def extend_resources(resources):
    attributes.SINGULAR["agents"] = "agent"
    resources["agents"] = {
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
    }




class Agents(Collection):
    collection = "agents"
    resource = "agent"
    model = models.Agent
    not_found = (AgentNotFound, "id")
    allow_create = False

    def __init__(self, plugin, down_time):
        super().__init__(plugin)
        self.down_time = down_time

    def alive(self, agent):
        return agents_db.alive(agent, self.down_time)

    def to_dict(self, a):
        return {"id": a.id, "agent_type": a.agent_type, "binary": a.binary,
                "topic": a.topic, "host": a.host, "admin_state_up": a.admin_state_up,
                "description": a.description, "alive": self.alive(a),
                "availability_zone": a.availability_zone,
                "created_at": agent_time(a.created_at),
                "started_at": agent_time(a.started_at),
                "heartbeat_timestamp": agent_time(a.heartbeat_timestamp),
                "configurations": json.loads(a.configurations or "{}"),
                "resources_synced": None}

    def visible_clause(self, ctx):
        return sa.false()

    def delete(self, s, ctx, obj):
        if self.alive(obj):
            raise AgentInUse(id=obj.id)
        s.delete(obj)


def setup(plugin, conf):
    handler = Agents(plugin, conf.agent_down_time)
    plugin.register(handler)
    plugin.agents = handler
    plugin.live_agent = lambda s, host: agents_db.live_agent(s, host, handler.down_time)


def routes(api):
    agent_api.routes(api)


