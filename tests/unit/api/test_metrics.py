"""Server metrics without a database: route labels, the gauges read at
scrape time (a stand-in change feed), request counting."""

import threading
import types

import routes
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from quantum_ovs.api import metrics


def samples(registry):
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_route_templates_are_bounded():
    m = routes.Mapper()
    m.connect("/v2.0/ports{fmt:(\\.json)?}")
    m.connect("/v2.0/ports/{id}{fmt:(\\.json)?}", requirements={"id": "[^/]+?"})
    m.connect("/v2.0/ports/{id}/tags/{tag}")
    got = {p: metrics.route_template(m.routematch(p)[1]) for p in (
        "/v2.0/ports", "/v2.0/ports.json", "/v2.0/ports/abc", "/v2.0/ports/abc.json",
        "/v2.0/ports/x/tags/red")}
    assert got == {"/v2.0/ports": "/v2.0/ports", "/v2.0/ports.json": "/v2.0/ports",
                   "/v2.0/ports/abc": "/v2.0/ports/{id}",
                   "/v2.0/ports/abc.json": "/v2.0/ports/{id}",
                   "/v2.0/ports/x/tags/red": "/v2.0/ports/{id}/tags/{tag}"}


class _Feed:
    stopped = False

    def __init__(self, watermark, newest, waiters):
        self.lock = threading.Lock()
        self.watermark, self._newest, self._waiters = watermark, newest, set(waiters)

    def _max_seq(self):
        return self._newest


def test_feed_lag_and_agents_gauges():
    feed = _Feed(watermark=100, newest=104, waiters=["a", "b"])
    api = types.SimpleNamespace(
        agent_api=types.SimpleNamespace(states=types.SimpleNamespace(_feed=feed)),
        plugin=types.SimpleNamespace(nova_notifier=types.SimpleNamespace(pending=[1, 2])))
    m = metrics.ServerMetrics(api)
    m.agent_polled("h1", 100)
    m.agent_polled("h2", 90)
    m.agent_polled("h3", -1)  # no view yet
    s = samples(m.registry)
    v = {name: val for (name, labels), val in s.items() if not labels}
    assert v["quantum_ovs_agent_api_parked_polls"] == 2
    assert v["quantum_ovs_change_feed_revision"] == 100
    assert v["quantum_ovs_change_feed_behind"] == 4
    assert v["quantum_ovs_agents_polling"] == 3
    assert v["quantum_ovs_agents_behind"] == 2
    assert v["quantum_ovs_agents_max_lag"] == 10
    assert v["quantum_ovs_nova_notifier_queue"] == 2


def test_no_feed_yet_and_requests_counted():
    m = metrics.ServerMetrics(types.SimpleNamespace(agent_api=None, plugin=None))

    def app(environ, start_response):
        start_response("409 Conflict", [])
        return [b""]
    inst = metrics.Instrumented(app, m)
    inst({"REQUEST_METHOD": "PUT", "quantum.route": "/v2.0/ports/{id}"}, lambda *a: None)
    inst({"REQUEST_METHOD": "BREW"}, lambda *a: None)
    s = samples(m.registry)
    assert s[("quantum_ovs_agent_api_parked_polls", frozenset())] == 0
    assert s[("quantum_ovs_api_requests_total", frozenset(
        {"method": "PUT", "route": "/v2.0/ports/{id}", "status": "409"}.items()))] == 1
    assert s[("quantum_ovs_api_requests_total", frozenset(
        {"method": "other", "route": "unmatched", "status": "409"}.items()))] == 1
