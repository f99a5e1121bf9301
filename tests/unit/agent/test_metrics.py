"""The agent's port-ready histogram: one observation per port and stage."""

import types

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import AgentMetrics


def counts(m):
    text = generate_latest(m.registry).decode()
    return {(s.labels.get("stage"), s.name): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "quantum_ovs_agent_port_ready_seconds_count"}


def test_port_ready_stages():
    agent = types.SimpleNamespace(stats={"flow_mods": 7, "resyncs": 1}, revision=5,
                                  last_compile_s=0.0,
                                  reconciler=types.SimpleNamespace(installed={1: 1},
                                                                   last_apply_ms=None))
    m = AgentMetrics(agent)
    name = "quantum_ovs_agent_port_ready_seconds_count"
    m.plugged("p1")
    m.plugged("p2")
    m.installed(local={"p1"}, reported=set())  # p2 not bound here yet; report failed
    assert counts(m) == {("installed", name): 1, ("reported", name): 0}
    m.installed(local={"p1"}, reported={"p1"})  # the retry went through
    m.installed(local={"p1"}, reported={"p1"})  # nothing new
    assert counts(m) == {("installed", name): 1, ("reported", name): 1}
    m.unplugged("p2")
    m.installed(local={"p1", "p2"}, reported={"p1", "p2"})
    assert counts(m) == {("installed", name): 1, ("reported", name): 1}
    assert m.plug_seen == {}
