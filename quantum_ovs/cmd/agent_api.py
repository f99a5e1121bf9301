"""quantum-ovs-agent-api: the agent API alone, in its own process and
port, without eventlet.

Agents long-poll (quantum_ovs.api.agent_api): each waiting agent holds a
request open for up to ``[agent_api] max_wait`` seconds.  This process
serves them with plain OS threads (quantum_ovs.wsgi.threaded: a thread
per open connection, blocked in its read or, for a parked long poll, on a
threading.Event of the change feed; nothing visits the connections that
a change does not concern).  The REST API stays on quantum-ovs-server (or any WSGI
server); the two share the change feed through the database: a change
committed by any process is read by this one's feed (PostgreSQL
LISTEN/NOTIFY, else ``[agent_api] poll_interval``) and wakes exactly the
agents it concerns.

quantum-ovs-server still serves the agent API too (the all-in-one): run
this only to take the agents' long polls off the REST API's processes.
It reads the same configuration files; it serves ``/`` (version
discovery, a health probe) and ``/agent-api/`` and answers 404 to
anything else.  It speaks plain HTTP: put a TLS-terminating proxy in
front of it when agents reach it over an untrusted network.
"""

import json
import logging
import signal
import sys
import threading
import urllib.parse

from oslo_db import exception as db_exc

from quantum_ovs import config, log, service
from quantum_ovs.api import agent_api
from quantum_ovs.db import migration

LOG = logging.getLogger("quantum_ovs.agent_api_server")

RESERVED_THREADS = 32
STACK_SIZE = 512 * 1024  # bytes per request thread (the default is 8 MiB)
STOP_GRACE = 5.0  # seconds a stopping process waits for the requests in progress


def _busy(start_response, what):
    body = json.dumps({"NeutronError": {
        "type": "ServiceUnavailable", "detail": "",
        "message": f"The server is busy ({what}); retry the request."}}).encode()
    start_response("503 Service Unavailable", [
        ("Content-Type", "application/json"), ("Retry-After", "1"),
        ("Content-Length", str(len(body)))])
    return [body]


def _not_found(start_response):
    body = json.dumps({"NeutronError": {
        "type": "HTTPNotFound", "detail": "",
        "message": "This port serves the agent API only (/agent-api/); the REST "
                   "API is on quantum-ovs-server."}}).encode()
    start_response("404 Not Found", [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(body)))])
    return [body]


class AgentOnly:
    """The app, restricted to ``/`` and the agent API, with at most
    ``limit`` long polls waiting at once and a few of one host
    (agent_api.PollSlots; one more: 503 at once)."""

    def __init__(self, app, limit, full_views=10):
        self.app, self.limit = app, limit
        self.slots = agent_api.PollSlots(limit)  # (per host: AgentAPI, once authenticated)
        # Full views (since < 0: an agent starting, never a wait) are read
        # ``full_views`` at a time: every agent restarting at once would
        # otherwise take every pooled database connection at once (and the
        # last ones would time out waiting for one).
        self._full_views = threading.BoundedSemaphore(full_views)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        if path != "/" and not path.startswith("/agent-api/"):
            return _not_found(start_response)
        poll = environ.get("REQUEST_METHOD") == "GET" and path.rstrip("/").endswith("/state")
        if not poll:
            return self.app(environ, start_response)
        if _full_view(environ.get("QUERY_STRING", "")):
            with self._full_views:
                return self.app(environ, start_response)
        busy = self.slots.take()
        if busy is not None:
            return _busy(start_response, busy)
        result = None
        try:
            result = self.app(environ, start_response)
            return result
        finally:  # a Stream: when it ends
            agent_api.release_when_answered(result, self.slots.release)

    @property
    def waiting(self):
        return self.slots.waiting


def _full_view(query):
    """Whether a state request asks for a full view (no ``since``, or a
    negative one), which is answered at once."""
    since = urllib.parse.parse_qs(query).get("since", ["-1"])[-1].strip() or "-1"
    return since.startswith("-")


def make_server(conf):
    """The server for ``conf`` (bound, not yet serving) and the app it
    serves."""
    from quantum_ovs.wsgi import threaded

    _db, _plugin, app = service.build(conf, migrate=False)
    service.freeze_startup()
    threads = conf.agent_api.threads
    limit = max(1, min(conf.max_long_polls, threads - RESERVED_THREADS))
    app = AgentOnly(app, limit, full_views=conf.database.max_pool_size)
    # A thread per connection: the waiting polls (``limit``) and room for
    # the agents' other connections (registrations, reports).
    server = threaded.ThreadedServer(
        app, conf.agent_api.bind_host, conf.agent_api.bind_port,
        max_connections=min(conf.max_connections, threads + 256),
        # Idle keep-alive connections (no request coming) are closed.
        header_timeout=max(conf.client_header_timeout, 1.0),
        socket_timeout=conf.client_socket_timeout,
        # (the body limit the API applies too: the one option)
        max_body=conf.oslo_middleware.max_request_body_size)
    return server, app


def setup_logging(conf):
    # oslo.log, as quantum-ovs-server (a root logger configured by
    # logging.basicConfig would be left out once oslo.log's options exist).
    log.setup(conf, "quantum-ovs-agent-api")


def main(argv=None):
    conf = config.make_conf(sys.argv[1:] if argv is None else argv)
    setup_logging(conf)
    if conf.ssl_cert_file:
        LOG.warning("ssl_cert_file is set: quantum-ovs-agent-api serves plain HTTP; "
                    "terminate TLS in a proxy in front of it")
    try:
        if conf.database.auto_migrate:
            db = service.make_database(conf)
            # [database] max_retries/retry_interval: a database not up yet
            # (a reboot, a failover) is waited for before the migration, as
            # service.build() waits for it.
            try:
                db.wait_until_reachable(conf.database.max_retries,
                                        conf.database.retry_interval)
                migration.upgrade(db.engine)
            finally:
                db.dispose()
        threading.stack_size(STACK_SIZE)
        server, app = make_server(conf)
    except db_exc.DBConnectionError as e:
        LOG.error("the database cannot be reached (%s); exiting",
                  str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 1
    service.raise_fd_limit(server.max_connections + 256)
    LOG.info("quantum-ovs-agent-api listening on %s:%s with %d threads",
             conf.agent_api.bind_host, server.effective_port, conf.agent_api.threads)
    sys.stdout.flush()

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        # New connections are refused from now on; a request being
        # answered (a report, a registration, a poll about to end) gets
        # its answer, for up to STOP_GRACE seconds.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fast = agent_api.fast_polls_of(app)
        if fast is not None:
            fast.api.states.stop()  # the waiting polls answered now, not at the grace's end
        server.close(grace=STOP_GRACE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
