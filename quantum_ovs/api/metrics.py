"""Prometheus metrics of the API server (``[metrics]``).

What is measured:

    quantum_ovs_api_requests_total{method,route,status}   counter
    quantum_ovs_api_request_duration_seconds{method,route} histogram
    quantum_ovs_change_feed_revision                      gauge: newest revision
                                                          this process has read
    quantum_ovs_change_feed_behind                        gauge: revisions committed
                                                          in the database and not
                                                          read by this process yet
    quantum_ovs_agents_polling                            gauge: agents that polled
                                                          this process lately
    quantum_ovs_agents_behind                             gauge: of those, how many
                                                          asked from an older revision
    quantum_ovs_agents_max_lag                            gauge: the largest distance
                                                          (revisions) between the
                                                          newest one and what an
                                                          agent last asked from
    quantum_ovs_agent_api_parked_polls                    gauge: long polls waiting
    quantum_ovs_nova_notifier_queue                       gauge: events to send

``route`` is the route's template (``/v2.0/ports/{id}``), never the URL
itself, so that the number of series is bounded by the routes served;
requests that match no route, or are refused before routing (no valid
token), are ``unmatched``.  The gauges are read at
scrape time (nothing on a request's path but one counter and one
histogram update).

Where they are served: a listener of their own (``[metrics] bind_host``,
``port``), plain HTTP without authentication, loopback by default, as
Prometheus exporters and oslo.metrics are: a scraper cannot hold a
Keystone token, and a listener apart is never reachable by API clients.
Each server process has its own registry and listener: a worker takes
the first free port of ``port`` .. ``port + N - 1`` (N: api_workers, or
uWSGI's processes; a restarted worker takes the one its predecessor
freed); Prometheus adds the processes up (``sum by (route)``).  Under
uWSGI this needs ``lazy-apps`` (each worker builds its app; without it
the listener's thread would be the master's, which serves no request).
prometheus-client's multiprocess mode (one shared directory of files) is
not used: it cannot read gauges at scrape time, which is what keeps them
off the hot paths.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import prometheus_client
from oslo_config import cfg
from prometheus_client.core import GaugeMetricFamily

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.BoolOpt("enabled", default=False,
                help="Serve Prometheus metrics (requests by route and status, "
                     "latency, change-feed lag, waiting agents, nova "
                     "notifier queue) on a listener of their own."),
    cfg.HostAddressOpt("bind_host", default="127.0.0.1",
                       help="Address of the metrics listener (plain HTTP, no "
                            "authentication: keep it on loopback or a "
                            "management network)."),
    cfg.PortOpt("port", default=9797,
                help="Port of the metrics listener of the first API process; "
                     "with api_workers > 1 (or uWSGI processes > 1, with "
                     "lazy-apps) each worker takes the first free port from "
                     "this one to port + workers - 1 (0: any free port, for "
                     "tests)."),
]


def list_opts():
    return [("metrics", OPTS)]


# Request durations (seconds): API calls take milliseconds, agents' long
# polls up to [agent_api] max_wait.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# An agent that has not polled this long is no longer counted.
AGENT_FORGET = 300.0  # seconds

_FIELD = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_templates: dict = {}


def route_template(route):
    """``/v2.0/ports{fmt:(\\.json)?}`` -> ``/v2.0/ports``;
    ``/v2.0/ports/{id}{fmt:...}`` -> ``/v2.0/ports/{id}`` (a routes.Route's)."""
    path = route.routepath
    found = _templates.get(path)
    if found is None:
        found = _FIELD.sub(lambda mo: "" if mo.group(1) == "fmt" else
                           "{" + mo.group(1) + "}", path) or "/"
        _templates[path] = found
    return found


class ServerMetrics:
    """One process's registry.  ``api`` is the router's API object (its
    agent API and plugin are looked at when scraped)."""

    def __init__(self, api=None):
        self.api = api
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.requests = prometheus_client.Counter(
            "quantum_ovs_api_requests", "API requests answered, by route template and "
            "status", ("method", "route", "status"), registry=self.registry)
        self.latency = prometheus_client.Histogram(
            "quantum_ovs_api_request_duration_seconds", "Time to answer an API "
            "request (agents' long polls included), by route template",
            ("method", "route"), buckets=BUCKETS, registry=self.registry)
        self.polled = {}  # host -> (revision it asked from, monotonic time)
        self.registry.register(_Gauges(self))
        self.server = None
        self.address = None

    # ------------------------------------------------------------ hooks
    def agent_polled(self, host, since):
        """An agent asked for its host's state from revision ``since``."""
        self.polled[host] = (since, time.monotonic())

    # ------------------------------------------------------------ listener
    def serve(self, host, port, tries=1):
        """Start the listener on the first free port of ``port`` ..
        ``port + tries - 1`` (0: any); its address, or None."""
        last = None
        for p in ([0] if port == 0 else range(port, port + max(1, tries))):
            try:
                self.server, _thread = prometheus_client.start_http_server(
                    p, addr=host, registry=self.registry)
            except OSError as e:
                last = e
                continue
            self.address = self.server.server_address[:2]
            LOG.info("metrics on http://%s:%s/metrics", host, self.address[1])
            return self.address
        LOG.warning("metrics listener not started: no free port from %s to %s (%s)",
                    port, port + max(1, tries) - 1, last)
        return None

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Instrumented:
    """The WSGI app, each request counted and timed (``.metrics``)."""

    METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))

    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = ["-"]

        def _start(st, headers, exc_info=None):
            status[0] = st[:3]
            return start_response(st, headers, exc_info)
        try:
            return self.app(environ, _start)
        finally:
            method = environ.get("REQUEST_METHOD", "")
            if method not in self.METHODS:
                method = "other"  # bounded
            route = environ.get("quantum.route", "unmatched")
            m = self.metrics
            m.requests.labels(method, route, status[0]).inc()
            m.latency.labels(method, route).observe(time.monotonic() - started)


class _Gauges:
    """The gauges, read when scraped."""

    def __init__(self, metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        m = self.metrics
        api = m.api
        aa = getattr(api, "agent_api", None)
        feed = getattr(getattr(aa, "states", None), "_feed", None)  # made on first poll
        parked = GaugeMetricFamily("quantum_ovs_agent_api_parked_polls",
                                   "Agents' long polls waiting in this process")
        revision = GaugeMetricFamily("quantum_ovs_change_feed_revision",
                                     "Newest revision this process has read")
        behind = GaugeMetricFamily("quantum_ovs_change_feed_behind",
                                   "Revisions committed in the database that this "
                                   "process has not read yet")
        agents = GaugeMetricFamily("quantum_ovs_agents_polling",
                                   f"Agents that polled this process in the last "
                                   f"{int(AGENT_FORGET)} s")
        late = GaugeMetricFamily("quantum_ovs_agents_behind",
                                 "Agents whose last poll asked from a revision older "
                                 "than the newest (or had no view yet)")
        lag = GaugeMetricFamily("quantum_ovs_agents_max_lag",
                                "Largest distance in revisions between the newest and "
                                "what an agent last asked from")
        if feed is not None and not feed.stopped:
            with feed.lock:
                parked.add_metric([], len(feed._waiters))
                mark = feed.watermark
            revision.add_metric([], mark)
            try:
                newest = feed._max_seq()
            except Exception:  # noqa: BLE001 - the database is away: not this gauge's job
                LOG.debug("newest revision not read", exc_info=True)
            else:
                behind.add_metric([], max(0, newest - mark))
            now = time.monotonic()
            polled = m.polled
            for host, (_since, at) in list(polled.items()):
                if now - at > AGENT_FORGET:
                    polled.pop(host, None)
            sinces = [since for since, _at in list(polled.values())]
            agents.add_metric([], len(sinces))
            late.add_metric([], sum(1 for s in sinces if s < mark))
            lag.add_metric([], max((mark - s for s in sinces if 0 <= s < mark), default=0))
        else:
            parked.add_metric([], 0)
        yield from (parked, revision, behind, agents, late, lag)
        notifier = getattr(getattr(api, "plugin", None), "nova_notifier", None)
        if notifier is not None:
            queue = GaugeMetricFamily("quantum_ovs_nova_notifier_queue",
                                      "Nova events waiting to be sent")
            queue.add_metric([], len(getattr(notifier, "pending", ())))
            yield queue


_lock = threading.Lock()


def _processes(conf):
    """How many processes serve the API: quantum-ovs-server's api_workers,
    or uWSGI's processes when under uWSGI (``lazy-apps``: each worker
    builds the app, so each starts its own listener)."""
    n = getattr(conf, "api_workers", 1) or 1
    try:
        import uwsgi  # only importable inside uWSGI
    except ImportError:
        return max(1, n)
    return max(1, n, getattr(uwsgi, "numproc", 1))


def instrument(app, api, conf):
    """``app`` measured (an Instrumented), with the listener started
    (``[metrics] enabled``); ``app`` itself when disabled."""
    if not conf.metrics.enabled:
        return app
    metrics = ServerMetrics(api)
    api.metrics = metrics
    if getattr(api, "agent_api", None) is not None:
        api.agent_api.metrics = metrics
    with _lock:
        metrics.serve(conf.metrics.bind_host, conf.metrics.port, tries=_processes(conf))
    api.plugin.db.on_dispose.append(metrics.stop)
    return Instrumented(app, metrics)
