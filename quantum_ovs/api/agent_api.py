"""The agent API: how agents register, learn their host's state, and
report what they have plugged and installed.

    POST /agent-api/v1/agents                 register / heartbeat
    GET  /agent-api/v1/hosts/{host}/state     long-poll: ?since=R&timeout=S
                                              (since=-1: full view now;
                                              &features=group_members: the
                                              agent applies membership deltas;
                                              group_rules: partial group updates;
                                              stream: the answers of the whole
                                              timeout on this one poll, see
                                              AgentAPI.poll_stream)
    POST /agent-api/v1/hosts/{host}/ports     plugged / unplugged / installed
                                              (/ floatingips: ids of the floating
                                              IPs the host installed)

Agents authenticate with ``X-Agent-Token: <token>``: a credential of
their own host (issued by ``quantum-ovs-agent-credential create --host H``,
see quantum_ovs.db.agent_auth), which allows registering and
heartbeating that host, reading that host's view and reporting the ports
bound to it, and nothing else (403, logged).  An operator may instead set
a shared ``[agent_api] token`` that acts for every host (small test
clouds; the server warns at start).  No token, or an unknown or revoked
one, is 401.

This module is the HTTP side only: it reads and checks requests,
authenticates them, and serialises what storage answers.  The operations
are quantum_ovs.db.agents (register, heartbeat, report); a host's state
since a revision, and the change feed that wakes a waiting agent as soon
as a change that concerns its host is committed by any server process,
are quantum_ovs.db.changefeed.
"""

import collections
import hmac
import logging
import re
import threading
import time

import webob.exc
from oslo_config import cfg
from oslo_context.context import generate_request_id
from oslo_middleware import request_id
from webob.compat import parse_qsl_text

from quantum_ovs import exceptions, model as m, wire
from quantum_ovs.api import validators
from quantum_ovs.api.wsgi import dumps, error_response, json_response, log_access, read_json
from quantum_ovs.context import Context
from quantum_ovs.db import agent_auth, agents as agents_db, gateways
from quantum_ovs.db.changefeed import HostStates

LOG = logging.getLogger(__name__)

OPTS = [("agent_api", [
    cfg.StrOpt("token", default="", secret=True,
               help="A shared secret that any agent may present in "
                    "X-Agent-Token to act for ANY host (read every host's "
                    "view, report any port).  Only for small test clouds; "
                    "the server warns at start when it is set.  Empty (the "
                    "default): agents must present a credential of their "
                    "own host (quantum-ovs-agent-credential create --host "
                    "H)."),
    cfg.FloatOpt("poll_interval", default=0.05,
                 help="Seconds between reads of the change table for "
                      "changes committed by other server processes (on "
                      "PostgreSQL they send a notification instead, and the "
                      "table is read every idle_poll_interval)."),
    cfg.FloatOpt("idle_poll_interval", default=5.0,
                 help="PostgreSQL: seconds between reads of the change "
                      "table when no notification came (a safety net)."),
    cfg.IntOpt("max_wait", default=55,
               help="Longest long-poll, in seconds."),
    cfg.IntOpt("feed_size", default=50000,
               help="Changes kept in memory; an agent further behind gets "
                    "a full host view."),
    cfg.IntOpt("changes_kept", default=100000, min=0,
               help="Newest rows of the change table kept; each server "
                    "process deletes older ones about once a minute (0: "
                    "never).  An agent further behind than what is kept "
                    "gets a full host view."),
    cfg.FloatOpt("gap_timeout", default=5.0,
                 help="Seconds to wait for a sequence number that a "
                      "concurrent transaction may still commit."),
    # quantum-ovs-agent-api (quantum_ovs/cmd/agent_api.py): the agent API
    # in a process of its own, without eventlet.
    cfg.HostAddressOpt("bind_host", default="127.0.0.1",
                       help="quantum-ovs-agent-api: the address to listen "
                            "on (0.0.0.0 or :: for every address).  "
                            "quantum-ovs-server serves the agent API on its "
                            "own port too."),
    cfg.PortOpt("bind_port", default=9697,
                help="quantum-ovs-agent-api: the port to listen on."),
    cfg.IntOpt("threads", default=1100, min=40,
               help="quantum-ovs-agent-api: it serves up to threads + 256 "
                    "open connections (and no more than [DEFAULT] "
                    "max_connections), each on an OS thread of its own for "
                    "as long as it is open; one more is answered 503 at "
                    "once and closed.  At most threads - 32 agent polls "
                    "(and no more than [DEFAULT] max_long_polls) wait at "
                    "once; one more is answered 503 and the agent "
                    "retries."),
]), ("DEFAULT", [
    # The agent API shares the server's listener: TLS covers both APIs.
    cfg.StrOpt("ssl_cert_file", default="",
               help="Serve HTTPS with this PEM certificate (chain) instead "
                    "of plain HTTP: agent tokens and host views travel on "
                    "this listener.  Agents verify it ([server] ca_file)."),
    cfg.StrOpt("ssl_key_file", default="",
               help="The private key of ssl_cert_file (empty: in that "
                    "file)."),
])]


def poll_args(items):
    """``since``, ``timeout`` and the features of a state poll from its
    query's (name, value) pairs in order: the last ``since`` and
    ``timeout`` given, every ``features`` value split at commas; 400 when
    a number is not one."""
    since, timeout, features = "-1", "30", []
    for k, v in items:
        if k == "since":
            since = v
        elif k == "timeout":
            timeout = v
        elif k == "features":
            features.append(v)
    try:
        since = int(since or -1)
        timeout = float(timeout)
    except ValueError:
        raise exceptions.InvalidInput(error_message="since and timeout are numbers") \
            from None
    return since, timeout, ",".join(features).split(",")


def _strings(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _string_map(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


# The keys of an agent's ``configurations`` that the server reads (port
# binding, gateway hosts) or shows, with the JSON type each must have and
# its name in the 400.  A mistyped one stored would fail every binding to
# its host (``"vxlan" in 5``); other keys are kept as sent, as Neutron does.
CONFIGURATION_TYPES = {
    "tunnel_types": (_strings, "a list of strings"),
    "bridge_mappings": (_string_map, "an object of strings (physical network: bridge)"),
    "integration_bridge": (lambda v: isinstance(v, str), "a string"),
    "datapath_type": (lambda v: isinstance(v, str), "a string"),
    "gateway": (lambda v: isinstance(v, bool), "true or false"),
    "devices": (lambda v: type(v) is int and v >= 0, "a non-negative integer"),
    "of_connect": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "of_listen": (lambda v: v is None or isinstance(v, list), "a list or null"),
}


def check_configurations(confs):
    """400 (naming the key) when a known key of an agent's
    ``configurations`` has the wrong type (see CONFIGURATION_TYPES);
    ``tunnel_ip`` is checked by register."""
    for key, (ok, what) in CONFIGURATION_TYPES.items():
        if key in confs and not ok(confs[key]):
            raise exceptions.InvalidInput(
                error_message=f"'configurations' {key!r} must be {what}")


# Who is asking: the host a per-host credential is for (its id, whether
# the operator granted it the gateway role, and when a gateway credential
# of its host was last revoked), or host None for the shared token, which
# acts for any host in any role.
Principal = collections.namedtuple("Principal", "host credential_id gateway role_revoked",
                                   defaults=(False, None))
SHARED = Principal(None, None, True)


class LogBudget:
    """At most ``burst`` warnings per ``interval`` seconds for one key (a
    client address), then one line saying how many were left out: a client
    that retries a refused token in a loop cannot fill the log.  Keys are
    forgotten oldest first beyond ``max_keys``."""

    def __init__(self, burst=5, interval=60.0, max_keys=1024, clock=time.monotonic):
        self.burst, self.interval, self.max_keys, self.clock = burst, interval, max_keys, clock
        self._keys: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key):
        """(log this one?, how many were left out since the last logged)."""
        now = self.clock()
        with self._lock:
            start, n, skipped = self._keys.pop(key, (now, 0, 0))
            if now - start >= self.interval:
                start, n = now, 0
            if n < self.burst:
                self._keys[key] = (start, n + 1, 0)
                ok, left_out = True, skipped
            else:
                self._keys[key] = (start, n, skipped + 1)
                ok, left_out = False, 0
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return ok, left_out


class AgentAPI:
    def __init__(self, conf, plugin):
        self.conf = conf
        self.plugin = plugin
        self.db = plugin.db
        c = conf.agent_api
        self.states = HostStates(self.db, poll_interval=c.poll_interval, size=c.feed_size,
                                 gap_timeout=c.gap_timeout,
                                 idle_poll_interval=c.idle_poll_interval,
                                 kept=c.changes_kept)
        self.refusals = LogBudget()
        self.host_polls = PollSlots(per_host=PollSlots.PER_HOST)  # (poll, poll_stream)
        # credentials without the gateway role -> the role_revoked their
        # host's role was checked at (see _check_gateway_role)
        self._plain = {}
        self._last_body = None  # (delta, revision, its JSON answer): see _delta_response
        self.metrics = None  # api.metrics.ServerMetrics with [metrics] enabled
        if c.token:
            LOG.warning("shared agent token ([agent_api] token) is set: any hypervisor can "
                        "read every host's view and report any port; issue per-host "
                        "credentials (quantum-ovs-agent-credential) instead")

    def principal(self, given):
        """The Principal of the token ``given`` (X-Agent-Token), or None."""
        shared = self.conf.agent_api.token
        if given and shared and hmac.compare_digest(shared.encode(), given.encode()):
            return SHARED
        found = agent_auth.host_of(self.db, given) if given else None
        return None if found is None else Principal(found[1], found[0], found[2], found[3])

    def front(self, app):
        """``app`` (the whole API) behind FastPolls."""
        return FastPolls(app, self, self.conf)

    def _auth(self, req):
        """The Principal of the request's X-Agent-Token, or 401."""
        given = req.headers.get("X-Agent-Token", "")
        who = self.principal(given)
        if who is None:
            ok, left_out = self.refusals.allow(req.remote_addr)
            if ok:
                LOG.warning("agent API: %s token from %s refused (%s %s)%s",
                            "an unknown or revoked" if given else "no", req.remote_addr,
                            req.method, req.path_qs[:300],
                            f"; {left_out} more refusals from there not logged"
                            if left_out else "")
            raise webob.exc.HTTPUnauthorized(detail="A valid X-Agent-Token is required")
        return who

    @staticmethod
    def _confine(req, who, host, action):
        """403 (logged) unless ``who`` may act for ``host``."""
        if who.host is None or who.host == host:
            return
        LOG.warning("agent API: the credential %s of host %r tried to %s host %r from %s "
                    "(%s %s); refused", who.credential_id, who.host, action,
                    str(host)[:255], req.remote_addr, req.method, req.path[:300])
        raise webob.exc.HTTPForbidden(
            detail="This agent credential may act only for its own host")

    def _still_valid(self, who):
        """Whether ``who``'s credential was not revoked meanwhile (a long
        poll is answered only if it still holds)."""
        return who.credential_id is None or agent_auth.host_of_id(
            self.db, who.credential_id) == who.host

    # ------------------------------------------------------------ register
    def register(self, req, ctx):
        who = self._auth(req)
        body = read_json(req)
        host = body.get("host")
        if not isinstance(host, str) or not host or len(host) > 255:
            raise exceptions.InvalidInput(error_message="'host' is required")
        self._confine(req, who, host, "register as")
        confs = body.get("configurations") or {}
        if not isinstance(confs, dict):
            raise exceptions.InvalidInput(error_message="'configurations' must be an object")
        check_configurations(confs)
        if confs.get("gateway") and not who.gateway:
            LOG.warning("agent API: the credential %s of host %r tried to register as a "
                        "gateway host from %s; refused (not granted: create --gateway)",
                        who.credential_id, host, req.remote_addr)
            raise webob.exc.HTTPForbidden(
                detail="This agent credential was not issued for a gateway host "
                       "(quantum-ovs-agent-credential create --gateway)")
        tunnel_ip = body.get("tunnel_ip")
        if tunnel_ip is None:
            # (an agent naming its tunnel address only in its configurations,
            # as Neutron's do: it reaches every peer's view, so it is checked
            # and made canonical alike, never passed on as sent)
            tunnel_ip = confs.get("tunnel_ip")
        if tunnel_ip is not None:
            tunnel_ip = validators.ip_address(tunnel_ip)
            confs = dict(confs, tunnel_ip=tunnel_ip)
        agent = agents_db.register_agent(self.plugin, host, confs, tunnel_ip=tunnel_ip,
                                         started=bool(body.get("started")),
                                         credential_id=who.credential_id)
        return json_response({"agent": self.plugin.agents.to_dict(agent),
                              "revision": self.states.revision})

    # ------------------------------------------------------------ state
    def state(self, req, ctx, host):
        who = self._auth(req)
        self._confine(req, who, host, "read the view of")
        since, timeout, features = poll_args(req.GET.items())
        if STREAM in features:
            resp = webob.Response(status=200, content_type=NDJSON, charset=None)
            resp.app_iter = self.poll_stream(who, host, since, timeout, features)
            return resp
        resp = webob.Response(status=200, content_type="application/json", charset="utf-8")
        resp.body = self.poll(who, host, since, timeout, features)
        return resp

    def poll(self, who, host, since, timeout, features):
        """The JSON answer (bytes) to ``who``'s poll of ``host``'s state
        (see poll_args); 401 when the credential was revoked meanwhile.
        What state() answers, and FastPolls too."""
        timeout = max(0.0, min(timeout, self.conf.agent_api.max_wait))
        self._check_gateway_role(who, host)
        self._take_slot(host)
        try:
            return self._body(self._since(who, host, since, timeout, features))
        finally:
            self.host_polls.release(host)

    def _check_gateway_role(self, who, host):
        """A poll of a credential without the gateway role: its host stops
        being a gateway if no live credential of it has the role
        (gateways.drop_unheld), so that revoking the role takes away what
        a gateway host reads (every network behind its routers), whether or
        not its agent ever registers again.  A revocation does that itself
        (agent_auth.revoke); this is for a host left a gateway otherwise (a
        revocation before that, a register racing one).  Checked on the
        first poll of each credential, and again whenever a gateway
        credential of its host was revoked since: in README's order the
        plain credential polls first, while the old one still holds the
        role (found by review)."""
        if who.credential_id is None or who.gateway:
            return
        seen = self._plain.get(who.credential_id, _UNSEEN)
        if seen is not _UNSEEN and seen == who.role_revoked:
            return
        gateways.drop_unheld(self.db, host)
        if len(self._plain) >= _PLAIN_KEPT:
            self._plain.clear()  # (checked again once each: no harm)
        self._plain[who.credential_id] = who.role_revoked

    def _take_slot(self, host):
        """One of ``host``'s waiting polls (PollSlots), or 503."""
        busy = self.host_polls.take(host)
        if busy is not None:
            # (the servers' fronts answer a full house in the same words)
            raise exceptions.ServiceUnavailable(f"The server is busy ({busy}); retry the "
                                                "request.")

    def _since(self, who, host, since, timeout, features, first=True):
        """HostStates.since for ``who``'s poll; 401 when its credential
        was revoked while it waited; a stream's later answers (not
        ``first``): None when it was revoked at all."""
        if self.metrics is not None:
            self.metrics.agent_polled(host, since)
        # Agents that predate membership deltas get whole groups.
        got = self.states.since(host, since, timeout,
                                member_deltas="group_members" in features,
                                partial_groups="group_rules" in features,
                                still_valid=(lambda: self._still_valid(who)) if first else None)
        if got is None:  # revoked while this poll waited
            raise webob.exc.HTTPUnauthorized(detail="A valid X-Agent-Token is required")
        # A stream's later answers: whether or not they waited.
        return got if first or self._still_valid(who) else None

    def poll_stream(self, who, host, since, timeout, features):
        """The answers to a poll with the feature ``stream``: what poll()
        answers, and after it, on the same answer, each later change that
        concerns the host as it comes, for the rest of the timeout, with no
        request in between (one JSON document per line, each what one poll
        would answer; a default-group change that wakes every agent costs
        one written line per agent, not an answer and a request).

        The first answer is made here (a 401 when the credential was
        revoked while it waited, as poll's); the rest as the Stream is
        read.  It ends after a full view, after an empty delta (the
        timeout, or the process stopping), after a delta the timeout ends
        with, and before an answer when the credential was revoked since
        the last (the agent's next poll gets the 401)."""
        timeout = max(0.0, min(timeout, self.conf.agent_api.max_wait))
        self._check_gateway_role(who, host)
        deadline = time.monotonic() + timeout
        self._take_slot(host)
        try:
            got = self._since(who, host, since, timeout, features)
            stream = Stream(self._body(got) + b"\n",
                            self._later(who, host, got, deadline, features))
        except BaseException:
            self.host_polls.release(host)
            raise
        stream.on_close(lambda: self.host_polls.release(host))
        return stream

    def _later(self, who, host, got, deadline, features):
        while not got.full and got.delta != m.Delta(revision=got.delta.revision):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            got = self._since(who, host, got.revision, left, features, first=False)
            if got is None:
                return
            yield self._body(got) + b"\n"

    def _body(self, got):
        if got.full:
            return dumps({"full": True, "revision": got.revision,
                          "view": got.view})
        return self._delta_body(got)

    def _delta_body(self, got):
        """The answer for a delta.  A delta shared by every host a change
        woke (see HostStates._delta) is the same object for each of them:
        serialised once, its body reused while it is the last one made."""
        last = self._last_body
        if last is not None and last[0] is got.delta and last[1] == got.revision:
            return last[2]
        body = dumps({"full": False, "revision": got.revision,
                      "delta": wire.delta_to_dict(got.delta)})
        self._last_body = (got.delta, got.revision, body)
        return body

    # ------------------------------------------------------------ reports
    def report(self, req, ctx, host):
        who = self._auth(req)
        self._confine(req, who, host, "report ports of")
        body = read_json(req)
        plugged = body.get("plugged") or []
        unplugged = body.get("unplugged") or []
        installed = body.get("installed") or []
        if not all(isinstance(x, list) for x in (plugged, unplugged, installed)):
            raise exceptions.InvalidInput(error_message="plugged, unplugged and installed "
                                                        "are lists")
        fips = body.get("floatingips") or []
        for name, items in (("plugged", plugged), ("unplugged", unplugged),
                            ("installed", installed), ("floatingips", fips)):
            # (a body of 4 MiB names ~450,000 ids: each is a bound
            # parameter, and on SQLite too many of them fail the query)
            if isinstance(items, list) and len(items) > wire.REPORT_MAX_ENTRIES:
                raise exceptions.InvalidInput(
                    error_message=f"'{name}' has {len(items)} entries; a report holds at "
                                  f"most {wire.REPORT_MAX_ENTRIES} in each list (send "
                                  "several)")
        ofports = {}
        for p in plugged:
            of = p.get("ofport") if isinstance(p, dict) else None
            if not isinstance(p, dict) or not isinstance(p.get("port_id"), str) or not (
                    of is None or type(of) is int and -1 <= of <= 0xffff):
                raise exceptions.InvalidInput(error_message="plugged entries are "
                                                            "{port_id, ofport}")
            ofports[p["port_id"]] = p.get("ofport")
        if not isinstance(fips, list) or not all(isinstance(x, str) for x in fips):
            raise exceptions.InvalidInput(error_message="floatingips is a list of ids")
        named = len(set(ofports) | set(map(str, unplugged)) | set(map(str, installed)))
        n, changed_status = agents_db.report(self.plugin, host, ofports, unplugged, installed)
        for fn in getattr(self.plugin, "fip_report_hooks", ()):
            n += fn(host, fips)
        if n < named:
            # Not refused: a port that moved to another host while this
            # one's report was in flight is ignored, not an error the agent
            # would retry forever.  Logged in case it is an attempt.
            LOG.warning("agent API: a report for host %r (credential %s) named %d port(s) "
                        "not bound to it; ignored", host[:255], who.credential_id or "shared",
                        named - n)
        self.plugin.notify_status(changed_status)
        return json_response({"updated": n})


_UNSEEN = object()
_PLAIN_KEPT = 100000  # credentials remembered by _check_gateway_role

STREAM = "stream"  # the poll feature
NDJSON = "application/x-ndjson"  # a stream's type: one JSON document per line


class Stream:
    """A streamed poll's answer (AgentAPI.poll_stream), a WSGI body of
    unknown length: its first answer, then the later ones as they come.
    Servers write each as it is yielded (quantum_ovs.wsgi.threaded and
    quantum-ovs-server: chunked, HTTP/1.0: until the connection closes)."""

    __slots__ = ("first", "later", "_closers")

    def __init__(self, first, later):
        self.first, self.later = first, later
        self._closers = []

    def __iter__(self):
        yield self.first
        yield from self.later

    def on_close(self, fn):
        """Call ``fn()`` once, when the answer is closed (servers close
        every answer when it ends, however it ends): a server counts an
        open stream among its waiting polls until then."""
        self._closers.append(fn)

    def close(self):
        closers, self._closers = self._closers, []
        try:
            self.later.close()
        finally:
            for fn in closers:
                fn()


class PollSlots:
    """Waiting long polls counted: at most ``limit`` in all (the servers'
    fronts, before anything is known of the request), and at most
    ``per_host`` of one host (AgentAPI, once the poll's credential is
    checked and confined to that host: its agent's poll, and room for one
    or two left from its previous process or connection until they time
    out), so that one hypervisor's credential cannot take every slot and
    leave the other agents unanswered (503).  Counted before the
    credential is checked, a flood of refused polls naming a host would
    take that host's slots from its own agent (found by review)."""

    PER_HOST = 3

    def __init__(self, limit=None, per_host=None):
        self.limit, self.per_host = limit, per_host
        self.waiting = 0
        self.hosts = collections.Counter()
        self._lock = threading.Lock()

    def take(self, host=None):
        """None, the slot taken; else why not (the 503's message)."""
        with self._lock:
            if self.limit is not None and self.waiting >= self.limit:
                return "too many waiting agents"
            if self.per_host is not None and self.hosts[host] >= self.per_host:
                return "too many waiting polls of this host"
            self.waiting += 1
            if self.per_host is not None:
                self.hosts[host] += 1
        return None

    def release(self, host=None):
        with self._lock:
            self.waiting -= 1
            if self.per_host is not None:
                left = self.hosts[host] = self.hosts[host] - 1
                if left <= 0:
                    del self.hosts[host]


def release_when_answered(result, release):
    """Call ``release()`` once the answer ``result`` (what the app
    returned; None when it raised) is complete: at once, or for a Stream
    when the server closes it.  How the servers count the polls waiting."""
    if isinstance(result, Stream):
        result.on_close(release)
    else:
        release()


def fast_polls_of(app):
    """The FastPolls in the chain of WSGI apps ``app`` leads to (each
    middleware's ``.app``), or None: a server process tells its HostStates
    (``.api.states``) that it is stopping, so that the polls waiting in it
    are answered then."""
    while app is not None and not isinstance(app, FastPolls):
        app = getattr(app, "app", None)
    return app


class FastPolls:
    """The agents' long polls (``GET /agent-api/v1/hosts/<host>/state``)
    answered in front of the middleware and the router, with what their
    layers do for such a poll and nothing else.

    A change of a security group every host uses wakes every agent; each
    answer and the agent's next poll used to cross the whole stack
    (oslo.middleware's request id, webob requests and responses made
    twice, the router, contexts): about a third of the server's CPU for
    each poll over HTTP.  Here: the same checks (the token, its host), the same answer
    (AgentAPI.poll: status, body, headers), a request id made and bound to
    the thread as RequestId and BindRequestId make it, the access-log line
    as AccessLog writes it, the route named for the metrics.

    Whatever is not a plain poll takes the full stack, untouched: another
    path or method, a body, a query that does not parse (or holds NUL
    characters), a host that is not UTF-8, no valid token or one of
    another host (so every refusal is logged and answered as before), a
    request a CORS or proxy-header layer would act on, and a poll whose
    checks fail (the database away: the whole stack answers it, as a
    NeutronError)."""

    PREFIX, SUFFIX = "/agent-api/v1/hosts/", "/state"
    ROUTE = PREFIX + "{host}" + SUFFIX  # metrics' label, as the router names it

    def __init__(self, app, agent_api, conf):
        self.app = app
        self.api = agent_api
        self.answered = 0  # polls answered here (not by the full stack)
        others = []
        if conf.cors.allowed_origin:
            others.append("HTTP_ORIGIN")
        if conf.oslo_middleware.enable_proxy_headers_parsing:
            others += ["HTTP_FORWARDED", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                       "HTTP_X_FORWARDED_PREFIX"]
        self.full_stack_headers = tuple(others)

    # The environ key of a poll that plain_poll took already (its answer):
    # quantum-ovs-server asks before it makes the environ of the whole stack.
    PLAIN_POLL = "quantum.plain_poll"

    def __call__(self, environ, start_response):
        args = environ.pop(self.PLAIN_POLL, None) or self.plain_poll(environ)
        if args is not None:
            return self._answer(environ, start_response, *args)
        return self.app(environ, start_response)

    def plain_poll(self, environ):
        """(who, host, since, timeout, features) of a plain poll that
        ``who`` may make, which this answers; None for anything else (the
        whole stack's)."""
        path = environ.get("PATH_INFO", "")
        if not (path.startswith(self.PREFIX) and path.endswith(self.SUFFIX) and
                environ.get("REQUEST_METHOD") == "GET"):
            return None
        try:
            return self._plain_poll(environ, path)
        except Exception:  # noqa: BLE001 - e.g. the database away: the full stack answers
            return None

    def _plain_poll(self, environ, path):
        """(who, host, since, timeout, features) of a plain poll that
        ``who`` may make; None for anything else."""
        if environ.get("CONTENT_LENGTH", "0") not in ("0", "") or \
                "HTTP_TRANSFER_ENCODING" in environ or \
                any(h in environ for h in self.full_stack_headers):
            return None
        host = path[len(self.PREFIX):-len(self.SUFFIX)]
        if not host or "/" in host or "\x00" in host:
            return None
        try:
            if not host.isascii():
                host = host.encode("latin-1").decode("utf-8")  # as webob's path_info
            items = list(parse_qsl_text(environ.get("QUERY_STRING", "")))  # as req.GET
            since, timeout, features = poll_args(items)
        except (UnicodeError, exceptions.InvalidInput):
            return None
        if any("\x00" in k or "\x00" in v for k, v in items):
            return None
        who = self.api.principal(environ.get("HTTP_X_AGENT_TOKEN", ""))
        if who is None or who.host is not None and who.host != host:
            return None
        return who, host, since, timeout, features

    def _answer(self, environ, start_response, who, host, since, timeout, features):
        started = time.monotonic()
        rid = generate_request_id()
        gid = environ.get("HTTP_X_OPENSTACK_REQUEST_ID", "")
        gid = gid if gid and _GLOBAL_ID.match(gid) else None
        environ[request_id.ENV_REQUEST_ID] = rid
        if gid:
            environ[request_id.GLOBAL_REQ_ID] = gid
        environ["quantum.request_context"] = Context(request_id=rid,
                                                     global_request_id=gid).bind()
        environ["quantum.route"] = self.ROUTE
        self.answered += 1
        try:
            if STREAM in features:
                answer = self.api.poll_stream(who, host, since, timeout, features)
                headers = [("Content-Type", NDJSON)]
            else:
                body = self.api.poll(who, host, since, timeout, features)
                answer = [body]
                headers = [("Content-Type", "application/json"),
                           ("Content-Length", str(len(body)))]
            status = "200 OK"
        except Exception as e:  # noqa: BLE001 - every error becomes a fault, as in the router
            resp = error_response(e)
            status, headers, answer = resp.status, list(resp.headerlist), [resp.body]
        headers.append(("X-OpenStack-Request-Id", rid))
        start_response(status, headers)
        # AccessLog's line: an answered poll at debug level, anything else
        # not (a stream: when its first answer is ready).
        log_access(environ, status[:3], started, status == "200 OK")
        return answer


_GLOBAL_ID = re.compile(request_id.ID_FORMAT)  # a caller's id RequestId takes


def routes(api):
    aa = AgentAPI(api.conf, api.plugin)
    api.agent_api = aa
    api.add_route("/agent-api/v1/agents", {"POST": aa.register})
    api.add_route("/agent-api/v1/hosts/{host}/state", {"GET": aa.state})
    api.add_route("/agent-api/v1/hosts/{host}/ports", {"POST": aa.report})
