"""The agent's Prometheus metrics on a real switch: scraped over HTTP
after a port is wired, after ovs-vswitchd restarts and after
ovsdb-server restarts."""

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from agent.daemon import Agent, Settings
from tests.integration.test_agent import HOST, api, server, vm  # noqa: F401 - fixtures


def scrape(agent):
    host, port = agent.metrics.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def scrape_until(agent, check, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(agent)
        if check(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def test_agent_metrics_scraped(ovs, api, server, tmp_path):  # noqa: F811 - fixtures
    settings = Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                        token=server.agent_credential(HOST), datapath_type="netdev",
                        local_ip="192.0.2.1", tunnel_types=("vxlan",),
                        of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                        state_path=str(tmp_path / "state"), report_interval=5,
                        polling_interval=5)
    settings.metrics_port = 0  # any free port on loopback
    agent = Agent(settings).start()
    try:
        assert agent.ready.wait(10)
        net, _ = api.network("10.15.0.0/24")
        port, _inst = vm(ovs, api, net)
        assert api.wait_status(port["id"], "ACTIVE")
        ready = "quantum_ovs_agent_port_ready_seconds_count"
        s = scrape_until(agent, lambda s: sample(s, ready, stage="reported") == 1)
        assert sample(s, ready, stage="installed") == 1
        assert sample(s, ready, stage="reported") == 1
        assert sample(s, "quantum_ovs_agent_port_ready_seconds_bucket",
                      stage="reported", le="+Inf") == 1
        assert sample(s, "quantum_ovs_agent_flows_installed") > 0
        assert sample(s, "quantum_ovs_agent_flow_mods_total") >= \
            sample(s, "quantum_ovs_agent_flows_installed")
        assert sample(s, "quantum_ovs_agent_resyncs_total") >= 1
        assert sample(s, "quantum_ovs_agent_last_install_seconds") > 0
        assert sample(s, "quantum_ovs_agent_last_compile_seconds") > 0
        assert sample(s, "quantum_ovs_agent_revision") > 0
        assert sample(s, "quantum_ovs_agent_openflow_reconnects_total") == 0
        assert sample(s, "quantum_ovs_agent_ovsdb_reconnects_total") == 0

        # The switch restarts: one OpenFlow reconnection, one more resync.
        resyncs = sample(s, "quantum_ovs_agent_resyncs_total")
        ovs.restart_vswitchd()
        s = scrape_until(agent, lambda s: sample(
            s, "quantum_ovs_agent_resyncs_total") > resyncs, timeout=15)
        assert sample(s, "quantum_ovs_agent_openflow_reconnects_total") >= 1

        # ovsdb-server restarts: the agent's OVSDB session reconnects.
        ovs.stop_ovsdb()
        ovs.start_ovsdb()
        s = scrape_until(agent, lambda s: sample(
            s, "quantum_ovs_agent_ovsdb_reconnects_total") >= 1, timeout=20)
        assert sample(s, "quantum_ovs_agent_ovsdb_reconnects_total") >= 1
    finally:
        agent.stop()
