"""The agent API: how agents register, learn their host's state, and
report what they have plugged and installed.

    POST /agent-api/v1/agents                 register / heartbeat
    GET  /agent-api/v1/hosts/{host}/state     long-poll: ?since=R&timeout=S
                                              (since=-1: full view now;
                                              &features=group_members: the
                                              agent applies membership deltas)
    POST /agent-api/v1/hosts/{host}/ports     plugged / unplugged / installed

Agents authenticate with ``X-Agent-Token: <token>``: a credential of
their own host (issued by ``quantum-ovs-agent-credential create --host H``,
see quantum_ovs.db.agent_auth), which allows registering and
heartbeating that host, reading that host's view and reporting the ports
bound to it, and nothing else (403, logged).  An operator may instead set
a shared ``[agent_api] token`` that acts for every host (small test
clouds; the server warns at start).  No token, or an unknown or revoked
one, is 401.

A ChangeFeed per process follows the ``changes`` table: a committed write
wakes it at once, in-process through a pipe and, on PostgreSQL, from any
server process through LISTEN/NOTIFY (other databases are read every
``poll_interval``).  A waiting agent is answered as soon as a change that
concerns its host is committed by any server process, and deciding whether
a change concerns a host costs no database query.
"""

import bisect
import collections
import hmac
import logging
import operator
import select
import socket
import threading
import time

import sqlalchemy as sa
from sqlalchemy import orm
import webob.exc
from oslo_config import cfg

from quantum_ovs import exceptions, wire
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import agent_auth, changelog, host_view, models

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

# Who is asking: the host a per-host credential is for (and its id), or
# host None for the shared token, which acts for any host.
Principal = collections.namedtuple("Principal", "host credential_id")
SHARED = Principal(None, None)

Change = collections.namedtuple("Change", "seq resource resource_id network_id host op detail")
_Waiter = collections.namedtuple("_Waiter", "event keys")
_SEQ = operator.attrgetter("seq")


class ChangeFeed:
    """The tail of the change table, in memory."""

    PRUNE_EVERY = 60.0  # seconds
    PAGE = 10000  # change rows read at a time
    MIN_KEPT = 1000  # the newest row must stay: SQLite reuses a deleted max rowid

    def __init__(self, db, poll_interval=0.05, size=50000, gap_timeout=5.0,
                 idle_poll_interval=5.0, kept=100000):
        self.db = db
        self.kept = kept and max(kept, self.MIN_KEPT)
        self._next_prune = time.monotonic() + self.PRUNE_EVERY
        self._pruned_to = 0
        self.poll_interval = poll_interval
        self.idle_poll_interval = idle_poll_interval
        self.listener = db.listener()
        # Pokes arrive on a socket pair (non-blocking at both ends: a
        # spurious wake-up of select must not block the reader).
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.writes = 0  # pokes so far
        self._writes_read = 0  # pokes before the last refresh began
        self.gap_timeout = gap_timeout
        self.size = size
        self.items = []  # sorted by seq (late commits are inserted in place)
        self.lock = threading.Lock()
        # Waiting long-polls by what they care about: ("host", name),
        # ("net", id), ("group", id) -> waiters.  A new change wakes only
        # the waiters its keys name.
        self._interest = {}
        self._waiters = set()
        self.latest = self._max_seq()
        self.floor = self.latest  # the oldest revision we can answer from memory
        self.gaps = {}  # seq -> first seen missing (monotonic)
        self._thread = None
        self.stopped = False
        self._refresh_lock = threading.Lock()
        db.after_write.append(self.poke)
        db.on_dispose.append(self.stop)

    def _max_seq(self):
        with self.db.reader() as s:
            return s.execute(sa.select(sa.func.max(models.Change.seq))).scalar() or 0

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)
            self._thread.start()

    def stop(self):
        self.stopped = True
        self.poke()
        with self.lock:
            self._wake_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        if self.listener is not None:
            self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def poke(self):
        """A write of this process committed: refresh now."""
        self.writes += 1
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    @property
    def watermark(self):
        """Every change at or below this is in the feed (or was given up)."""
        return min(self.gaps) - 1 if self.gaps else self.latest

    def _wait(self):
        """Until a poke, a notification, or the next poll is due."""
        fds = [self._wake_r]
        timeout = self.poll_interval
        listener = self.listener
        if listener is not None:
            if listener.fileno() is None:
                if listener.connect():
                    return  # listening (again) from now: read what came before
            else:
                fds.append(listener)
                if not self.gaps:
                    timeout = self.idle_poll_interval
        ready, _, _ = select.select(fds, [], [], timeout)
        if self._wake_r in ready:
            try:
                self._wake_r.recv(4096)
            except OSError:  # nothing there after all
                pass
        if listener is not None and listener in ready:
            listener.drain()

    def _run(self):
        while not self.stopped:
            try:
                self._wait()
                if self.stopped:
                    break
                self.refresh()
                if time.monotonic() >= self._next_prune:
                    self.prune()
            except Exception:  # noqa: BLE001 - keep following
                LOG.exception("change feed refresh failed")
                time.sleep(self.poll_interval)

    def prune(self):
        """Delete the change rows older than the newest ``kept``; returns
        how many went.  (No process's feed reads them again: a feed reads
        only rows above what it has, and its own gaps, which are recent.)"""
        self._next_prune = time.monotonic() + self.PRUNE_EVERY
        cutoff = self.latest - self.kept
        if not self.kept or cutoff <= self._pruned_to:
            return 0
        C = models.Change
        n = self.db.write(lambda s: s.execute(sa.delete(C).where(C.seq <= cutoff)).rowcount)
        self._pruned_to = cutoff
        if n:
            LOG.info("pruned %d change rows up to %d", n, cutoff)
        return n

    def behind_own_writes(self):
        return self._writes_read != self.writes

    def refresh(self):
        with self._refresh_lock:
            writes = self.writes
            while self._refresh() >= self.PAGE:
                pass  # a burst: read on
            self._writes_read = writes

    def _refresh(self):
        C = models.Change
        q = sa.select(C.seq, C.resource, C.resource_id, C.network_id, C.host, C.op, C.detail)
        with self.db.reader() as s:
            rows = s.execute(q.where(C.seq > self.latest).order_by(C.seq)
                             .limit(self.PAGE)).all()
            late = []
            if self.gaps:
                late = s.execute(q.where(C.seq.in_(list(self.gaps)))).all()
        if not rows and not late:
            if self.gaps:
                with self.lock:
                    mark = self.watermark
                    if self._expire_gaps():
                        self._wake(mark)
            return 0
        now = time.monotonic()
        with self.lock:
            mark = self.watermark
            for r in late:
                self.gaps.pop(r.seq, None)
                bisect.insort(self.items, Change(*r), key=_SEQ)
            for r in rows:
                for missing in range(self.latest + 1, r.seq):
                    self.gaps.setdefault(missing, now)
                self.items.append(Change(*r))
                self.latest = r.seq
            self._expire_gaps()
            if len(self.items) > self.size:
                drop = len(self.items) - self.size // 2
                self.floor = max(self.floor, self.items[drop - 1].seq)
                del self.items[:drop]
                self._wake_all()  # some may need a full view now
            self._wake(mark)
        return len(rows)

    def _wake(self, old_mark):
        """Wake the waiters that the changes now deliverable (between the
        old watermark and the new one) may concern.  Lock held."""
        items = self.items
        lo = bisect.bisect_right(items, old_mark, key=_SEQ)
        hi = bisect.bisect_right(items, self.watermark, key=_SEQ)
        keys = set()
        for c in items[lo:hi]:
            if c.resource == "agent":  # a host's address: everyone's concern
                if c.host:
                    return self._wake_all()
                continue
            if c.host:
                keys.add(("host", c.host))
            if c.network_id:
                keys.add(("net", c.network_id))
            if c.resource in host_view.GROUP_RESOURCES:
                keys.add(("group", c.resource_id))
        interest = self._interest
        for k in keys:
            for w in interest.get(k, ()):
                w.event.set()

    def _wake_all(self):
        for w in self._waiters:
            w.event.set()

    def subscribe(self, keys):
        """A waiter woken by changes that name one of ``keys``."""
        w = _Waiter(threading.Event(), tuple(keys))
        with self.lock:
            self._waiters.add(w)
            for k in w.keys:
                self._interest.setdefault(k, set()).add(w)
        return w

    def unsubscribe(self, w):
        with self.lock:
            self._waiters.discard(w)
            for k in w.keys:
                ws = self._interest.get(k)
                if ws is not None:
                    ws.discard(w)
                    if not ws:
                        del self._interest[k]

    def _expire_gaps(self):
        now = time.monotonic()
        expired = [seq for seq, seen in self.gaps.items() if now - seen > self.gap_timeout]
        for seq in expired:
            del self.gaps[seq]
        return bool(expired)

    def since(self, revision):
        """Changes after ``revision``, or None when we no longer have them."""
        if revision < self.floor:
            return None
        items = self.items
        return items[bisect.bisect_right(items, revision, key=_SEQ):]


class AgentAPI:
    def __init__(self, conf, plugin):
        self.conf = conf
        self.plugin = plugin
        self.db = plugin.db
        self._feed = None
        self._lock = threading.Lock()
        self._relevance_cache = {}  # host -> (networks, local groups, groups, revision)
        self._memo_key, self._memo = None, {}
        self._delta_lock = threading.Lock()
        if conf.agent_api.token:
            LOG.warning("shared agent token ([agent_api] token) is set: any hypervisor can "
                        "read every host's view and report any port; issue per-host "
                        "credentials (quantum-ovs-agent-credential) instead")

    @property
    def feed(self):
        with self._lock:
            if self._feed is None:
                c = self.conf.agent_api
                self._feed = ChangeFeed(self.db, c.poll_interval, c.feed_size, c.gap_timeout,
                                        c.idle_poll_interval, c.changes_kept)
                self._feed.start()
            return self._feed

    def _auth(self, req):
        """The Principal of the request's X-Agent-Token, or 401."""
        given = req.headers.get("X-Agent-Token", "")
        shared = self.conf.agent_api.token
        if given and shared and hmac.compare_digest(shared.encode(), given.encode()):
            return SHARED
        found = agent_auth.host_of(self.db, given) if given else None
        if found is None:
            LOG.warning("agent API: %s token from %s refused (%s %s)",
                        "an unknown or revoked" if given else "no", req.remote_addr,
                        req.method, req.path_qs[:300])
            raise webob.exc.HTTPUnauthorized(detail="A valid X-Agent-Token is required")
        return Principal(found[1], found[0])

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
        tunnel_ip = body.get("tunnel_ip")
        if tunnel_ip is not None:
            from quantum_ovs.api import validators
            tunnel_ip = validators.ip_address(tunnel_ip)
            confs = dict(confs, tunnel_ip=tunnel_ip)
        started = bool(body.get("started"))
        from quantum_ovs.extensions import agents as agents_ext, binding as binding_ext

        def txn(s):
            agent, moved = agents_ext.register(s, self.plugin.agents.down_time, host, confs,
                                               tunnel_ip=tunnel_ip, started=started)
            # Ports waiting for this host can be bound now.
            waiting = s.execute(
                sa.select(models.Port).join(models.PortBinding)
                .where(models.PortBinding.host == host,
                       models.PortBinding.vif_type.in_(("binding_failed", "unbound")))
            ).scalars().all()
            for port in waiting:
                binding_ext.bind(s, self.plugin, port, port.binding)
                if port.binding.vif_type == "ovs":
                    changelog.bump(port)
                    changelog.record(s, "port", port, "update", port.network_id)
            # Other hosts care about this host's address (it is in their
            # tunnels), not about its restarts: a restart (``started``) with
            # the same address changes nothing for them, and waking every
            # agent of the cloud for each restarted one would not scale.
            if moved:
                changelog.record(s, "agent", agent, "update", host=host)
            return self.plugin.agents.to_dict(agent)
        agent = self.db.write(txn)
        return json_response({"agent": agent, "revision": self.feed.watermark})

    # ------------------------------------------------------------ state
    def state(self, req, ctx, host):
        who = self._auth(req)
        self._confine(req, who, host, "read the view of")
        try:
            since = int(req.GET.get("since", "-1") or -1)
            timeout = float(req.GET.get("timeout", "30"))
        except ValueError:
            raise exceptions.InvalidInput(error_message="since and timeout are numbers") \
                from None
        timeout = max(0.0, min(timeout, self.conf.agent_api.max_wait))
        # Agents that predate membership deltas get whole groups.
        members = "group_members" in ",".join(req.GET.getall("features")).split(",")
        feed = self.feed
        deadline = time.monotonic() + timeout
        if since > feed.latest or feed.behind_own_writes():
            # Another server process answered this agent and is ahead of
            # us, or this process committed something not yet read.
            feed.refresh()
        # since < 0: the agent has no view yet.  A revision no process has
        # reached (the database was replaced) also gets a full view.
        if since < 0 or since > feed.latest:
            return self._full(host)
        nets, local, groups = self._relevance(host, feed)
        waiter = None
        try:
            while True:
                if waiter is not None:
                    waiter.event.clear()
                # Only look up to the watermark: above it a concurrent
                # transaction may still commit a lower sequence number.
                mark = feed.watermark
                changes = feed.since(since)
                if changes is None:
                    return self._full(host)
                changes = [c for c in changes if c.seq <= mark]
                # Networks the host held at its revision but may have lost since.
                held = nets | {c.network_id for c in changes
                               if c.host == host and c.network_id}
                mine = [c for c in changes if host_view.relevant(c, host, held, groups)]
                if mine:
                    if waiter is not None and not self._still_valid(who):
                        # Revoked while this poll waited.
                        raise webob.exc.HTTPUnauthorized(
                            detail="A valid X-Agent-Token is required")
                    # Unless one of the host's own ports changed, its networks
                    # and groups are still those cached.
                    own = any(c.host == host for c in mine)
                    return self._delta(host, mine, mark, None if own else (nets, local),
                                   member_deltas=members)
                left = deadline - time.monotonic()
                if left <= 0 or feed.stopped:
                    rev = max(since, mark)
                    return json_response({"full": False, "revision": rev, "delta":
                                          wire.delta_to_dict(wire.m.Delta(revision=rev))})
                if waiter is None:
                    # Subscribed before looking again: nothing committed
                    # from now on can be missed.
                    waiter = feed.subscribe(
                        [("host", host)] + [("net", n) for n in nets] +
                        [("group", g) for g in groups])
                    continue
                waiter.event.wait(left)
        finally:
            if waiter is not None:
                feed.unsubscribe(waiter)

    def _relevance(self, host, feed):
        """The host's networks, its ports' groups, and those with the groups
        their rules name (what decides whether a change concerns it),
        cached until a change could alter them: one of the host's own
        ports, or a group's rules."""
        cached = self._relevance_cache.get(host)
        if cached is not None:
            seq = cached[-1]
            later = feed.since(seq)
            if later is not None and not any(
                    c.host == host or c.resource == "security_group" for c in later):
                return cached[:-1]
        seq = feed.watermark
        with self.db.reader() as s:
            nets = host_view.local_networks(s, host)
            local = host_view.local_groups(s, host)
            groups = host_view.relevant_groups(s, host, local)
        if len(self._relevance_cache) > 100000:
            self._relevance_cache.clear()
        self._relevance_cache[host] = (nets, local, groups, seq)
        return nets, local, groups

    def _full(self, host):
        revision = self.feed.watermark
        with self.db.reader() as s:
            view = host_view.full(s, host, revision)
        return json_response({"full": True, "revision": revision,
                              "view": wire.view_to_dict(view)})

    def _delta(self, host, changes, revision, known=None, member_deltas=True):
        # Deltas for the same changes at the same revision (one per host
        # woken) share what does not depend on the host.
        key = revision  # the memo holds reads made at this revision only
        nets, local = known or (None, None)
        # One build at a time: the hosts woken together by a change would
        # otherwise all miss the memo while the first one reads.
        with self._delta_lock, self.db.reader() as s:
            if self._memo_key != key:
                self._memo_key, self._memo = key, {}
            d = host_view.delta(s, host, changes, revision, self._memo,
                                nets_now=nets, local=local, member_deltas=member_deltas)
        return json_response({"full": False, "revision": revision,
                              "delta": wire.delta_to_dict(d)})

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
        ofports = {}
        for p in plugged:
            of = p.get("ofport") if isinstance(p, dict) else None
            if not isinstance(p, dict) or not isinstance(p.get("port_id"), str) or not (
                    of is None or type(of) is int and -1 <= of <= 0xffff):
                raise exceptions.InvalidInput(error_message="plugged entries are "
                                                            "{port_id, ofport}")
            ofports[p["port_id"]] = p.get("ofport")
        ids = set(ofports) | set(map(str, unplugged)) | set(map(str, installed))
        changed_status = []

        def txn(s):
            if not ids:
                return 0
            rows = s.execute(sa.select(models.Port).join(models.PortBinding)
                             .where(models.Port.id.in_(list(ids)),
                                    models.PortBinding.host == host)
                             .options(orm.lazyload("*"),
                                      orm.selectinload(models.Port.binding))).scalars().all()
            n = 0
            for port in rows:
                b = port.binding
                old = port.status
                if port.id in ofports:
                    b.ofport = ofports[port.id]
                if port.id in installed:
                    b.flows_installed = True
                    port.status = "ACTIVE" if port.admin_state_up else "DOWN"
                if port.id in unplugged:
                    b.flows_installed = False
                    b.ofport = None
                    port.status = "DOWN"
                if port.status != old:
                    port.revision_number += 1
                    changed_status.append((port.id, port.device_id, port.device_owner,
                                           port.status))
                n += 1
            # Ports the host holds through an inactive binding (a move).
            for hook in getattr(self.plugin, "report_hooks", ()):
                more, events = hook(s, host, ofports, installed, unplugged,
                                    {p.id for p in rows})
                n += more
                changed_status.extend(events)
            return n
        n = self.db.write(txn)
        if n < len(ids):
            # Not refused: a port that moved to another host while this
            # one's report was in flight is ignored, not an error the agent
            # would retry forever.  Logged in case it is an attempt.
            LOG.warning("agent API: a report for host %r (credential %s) named %d port(s) "
                        "not bound to it; ignored", host[:255], who.credential_id or "shared",
                        len(ids) - n)
        for fn in getattr(self.plugin, "status_listeners", ()):
            try:
                fn(changed_status)
            except Exception:  # noqa: BLE001 - a listener never fails a report
                LOG.exception("port status listener failed")
        return json_response({"updated": n})


def routes(api):
    aa = AgentAPI(api.conf, api.plugin)
    api.agent_api = aa
    api.add_route("/agent-api/v1/agents", {"POST": aa.register})
    api.add_route("/agent-api/v1/hosts/{host}/state", {"GET": aa.state})
    api.add_route("/agent-api/v1/hosts/{host}/ports", {"POST": aa.report})
