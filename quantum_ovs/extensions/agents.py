"""Agents (alias ``agent``): what each hypervisor's agent reported.

Rows are written by the agent API (registration and heartbeats); the
admin reads them here, may set admin_state_up and description, and may
delete an agent that is no longer alive.
"""

import json

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs.api import agent_api, definitions
from quantum_ovs.api.definitions.agents import AgentInUse, AgentNotFound  # noqa: F401
from quantum_ovs.db import agents as agents_db, models
from quantum_ovs.db.resource import Collection
from quantum_ovs.timeutils import agent_time

DEFINITION = definitions.agents

OPTS = [("DEFAULT", [
    cfg.IntOpt("agent_down_time", default=75,
               help="Seconds without a heartbeat after which an agent is dead."),
])] + agent_api.OPTS

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


