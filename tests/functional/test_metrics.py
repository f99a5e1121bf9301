"""The server's Prometheus metrics ([metrics]), scraped over HTTP from
their own listener after some API and agent API requests."""

import threading
import time
import types
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantum_ovs.service import build
from tests.functional.conftest import Client, make_conf

HOST = "hv-metrics"


@pytest.fixture
def metered(tmp_path):
    conf = make_conf(f"sqlite:///{tmp_path}/qovs.sqlite")
    conf.set_override("enabled", True, group="metrics")
    conf.set_override("port", 0, group="metrics")  # any free port
    db, plugin, app = build(conf)
    try:
        client = Client(app, plugin, db)
        client.metrics = app.metrics
        yield client
    finally:
        db.dispose()


def scrape(client):
    """{(name, frozenset(labels)): value} from the listener's /metrics."""
    host, port = client.metrics.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def test_requests_latency_and_agent_gauges_scraped(metered):
    api = metered
    net = api.network()
    api.get(f"/v2.0/networks/{net['id']}", status=200)
    api.get("/v2.0/networks/00000000-0000-0000-0000-000000000000", status=404)
    api.get("/v2.0/networks.json", status=200)
    api.get("/v2.0/nowhere", status=404)
    api.get("/v2.0/networks", headers={"X-Roles": "member"}, status=200)

    s = scrape(api)
    total = "quantum_ovs_api_requests_total"
    assert value(s, total, method="POST", route="/v2.0/networks", status="201") == 1
    assert value(s, total, method="GET", route="/v2.0/networks/{id}", status="200") == 1
    assert value(s, total, method="GET", route="/v2.0/networks/{id}", status="404") == 1
    # networks.json and networks: one route
    assert value(s, total, method="GET", route="/v2.0/networks", status="200") == 2
    assert value(s, total, method="GET", route="unmatched", status="404") == 1
    count = "quantum_ovs_api_request_duration_seconds_count"
    assert value(s, count, method="GET", route="/v2.0/networks/{id}") == 2
    assert value(s, "quantum_ovs_api_request_duration_seconds_bucket",
                 method="GET", route="/v2.0/networks/{id}", le="+Inf") == 2
    # bounded labels: no URL of a resource
    assert not any(net["id"] in v for (_n, labels) in s for _k, v in labels)

    # An agent parks a long poll: one parked, one agent polling.
    api.post("/agent-api/v1/agents", {"host": HOST, "tunnel_ip": "192.0.2.9",
                                      "configurations": {}, "started": True}, status=200)
    rev = api.get(f"/agent-api/v1/hosts/{HOST}/state?since=-1&timeout=0",
                  status=200).data["revision"]
    answered = []
    poll = threading.Thread(target=lambda: answered.append(api.get(
        f"/agent-api/v1/hosts/{HOST}/state?since={rev}&timeout=20", status=200)))
    poll.start()
    try:
        deadline = time.monotonic() + 10
        while value(s, "quantum_ovs_agent_api_parked_polls") != 1:
            assert time.monotonic() < deadline, "the long poll never parked"
            time.sleep(0.05)
            s = scrape(api)
        assert value(s, "quantum_ovs_agents_polling") == 1
        assert value(s, "quantum_ovs_change_feed_revision") == rev
        assert value(s, "quantum_ovs_change_feed_behind") == 0
    finally:
        # a port bound to the host wakes the poll
        api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "binding:host_id": HOST}},
                 admin=True, status=201)
        poll.join(20)
    assert answered and not poll.is_alive()
    s = scrape(api)
    assert value(s, "quantum_ovs_agent_api_parked_polls") == 0
    assert value(s, "quantum_ovs_change_feed_revision") > rev
    state = "/agent-api/v1/hosts/{host}/state"
    assert value(s, total, method="GET", route=state, status="200") == 2
    assert value(s, count, method="GET", route=state) == 2

    api.plugin.nova_notifier = types.SimpleNamespace(pending=[{}, {}, {}])
    assert value(scrape(api), "quantum_ovs_nova_notifier_queue") == 3


def test_disabled_by_default(tmp_path):
    conf = make_conf(f"sqlite:///{tmp_path}/qovs.sqlite")
    db, plugin, app = build(conf)
    try:
        assert conf.metrics.enabled is False
        assert not hasattr(app, "metrics")
    finally:
        db.dispose()
