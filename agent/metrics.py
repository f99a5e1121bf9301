"""Prometheus metrics of the agent (``[agent] metrics_port``).

    quantum_ovs_agent_flows_installed             gauge: our flows on br-int
    quantum_ovs_agent_last_compile_seconds        gauge: the engine's share of the
                                                  last batch of changes
    quantum_ovs_agent_last_install_seconds        gauge: the last install (diff,
                                                  bundle; the dump after a resync)
    quantum_ovs_agent_flow_mods_total             counter
    quantum_ovs_agent_resyncs_total               counter: dumps and full diffs
    quantum_ovs_agent_openflow_reconnects_total   counter: switch connections
                                                  after the first
    quantum_ovs_agent_ovsdb_reconnects_total      counter: OVSDB sessions after
                                                  the first
    quantum_ovs_agent_port_ready_seconds{stage}   histogram: from the VIF seen
                                                  plugged on br-int to its flows
                                                  installed (stage="installed")
                                                  and to the server told
                                                  (stage="reported")
    quantum_ovs_agent_revision                    gauge: the view's revision

Everything but the histogram is read from the agent's own counters when
scraped: nothing is done per flow.  The histogram takes one observation
per port and stage.  Served on loopback by default, plain HTTP (a local
Prometheus or node agent scrapes it).
"""

from __future__ import annotations

import logging
import time

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LOG = logging.getLogger(__name__)

# Port-ready latency (seconds): tens of milliseconds normally, seconds when
# the server is slow or a resync is under way.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class AgentMetrics:
    def __init__(self, agent):
        self.agent = agent
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.port_ready = prometheus_client.Histogram(
            "quantum_ovs_agent_port_ready_seconds", "From a VIF seen plugged on the "
            "integration bridge to its flows installed, and to the server told",
            ("stage",), buckets=BUCKETS, registry=self.registry)
        self._installed = self.port_ready.labels("installed")
        self._reported = self.port_ready.labels("reported")
        self.registry.register(_Collector(agent))
        self.plug_seen = {}  # port id -> (monotonic when seen plugged, installed yet)
        self.server = None
        self.address = None

    # ------------------------------------------------------------ the agent's hooks
    def plugged(self, port_id):
        self.plug_seen[port_id] = [time.monotonic(), False]

    def unplugged(self, port_id):
        self.plug_seen.pop(port_id, None)

    def installed(self, local, reported):
        """After an install: ``local`` ports' flows are in; ``reported``
        port ids the server was told about."""
        if not self.plug_seen:
            return
        now = time.monotonic()
        for pid, seen in list(self.plug_seen.items()):
            if pid not in local:
                continue
            if not seen[1]:
                seen[1] = True
                self._installed.observe(now - seen[0])
            if pid in reported:
                del self.plug_seen[pid]
                self._reported.observe(now - seen[0])

    # ------------------------------------------------------------ listener
    def serve(self, host, port):
        self.server, _thread = prometheus_client.start_http_server(
            port, addr=host, registry=self.registry)
        self.address = self.server.server_address[:2]
        LOG.info("agent metrics on http://%s:%s/metrics", host, self.address[1])
        return self.address

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Collector:
    def __init__(self, agent):
        self.agent = agent

    def describe(self):
        return []

    def collect(self):
        a = self.agent
        stats = a.stats

        def gauge(name, doc, val):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], val)
            return g

        def counter(name, doc, val):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], val)
            return c

        yield gauge("quantum_ovs_agent_flows_installed",
                    "Flows of ours the switch holds (as last installed or dumped)",
                    len(a.reconciler.installed))
        yield gauge("quantum_ovs_agent_last_compile_seconds",
                    "Time the compiler took for the last batch of changes",
                    a.last_compile_s)
        ms = a.reconciler.last_apply_ms
        yield gauge("quantum_ovs_agent_last_install_seconds",
                    "Time the last install took (diff and bundle; dump after a resync)",
                    0.0 if ms is None else ms / 1000)
        yield gauge("quantum_ovs_agent_revision", "Revision of the view the agent has",
                    a.revision)
        yield gauge("quantum_ovs_agent_flow_owners_held",
                    "Flow owners (ports, routers, ...) whose flows are held back: they "
                    "conflict with another's or could not be compiled (logged as errors)",
                    stats.get("held_owners", 0))
        yield counter("quantum_ovs_agent_flow_mods", "Flow-mods sent to the switch",
                      stats.get("flow_mods", 0))
        yield counter("quantum_ovs_agent_resyncs",
                      "Dumps of the switch's flows and full diffs",
                      stats.get("resyncs", 0))
        yield counter("quantum_ovs_agent_openflow_reconnects",
                      "OpenFlow connections of the switch after the first",
                      max(0, stats.get("openflow_connects", 0) - 1))
        yield counter("quantum_ovs_agent_ovsdb_reconnects",
                      "OVSDB sessions after the first",
                      stats.get("ovsdb_reconnects", 0))
