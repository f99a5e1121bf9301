"""The change feed: the tail of the ``changes`` table in memory, and the
state of a host since a revision.

A ChangeFeed per server process follows the table: a committed write of
this process wakes it at once (through a socket pair: the Database calls
the callbacks registered in its ``after_write``) and, on PostgreSQL, a
write of any server process does too (LISTEN/NOTIFY); other databases are
read every ``poll_interval``.  Waiters subscribe to what they care about
(a host, a network, a security group) and a change wakes only the waiters
its keys name, with no database query.  Each process prunes the table to
its newest ``kept`` rows about once a minute.

HostStates answers "what changed for host H since revision R" (waiting up
to a timeout for something that concerns H): a delta, or a full view when
R is unknown or too old.  It returns model objects; serialising them is
the caller's business.
"""

import bisect
import collections
import logging
import operator
import select
import socket
import threading
import time

import sqlalchemy as sa

from quantum_ovs import gcpause
from quantum_ovs import model as m
from quantum_ovs.db import host_view, models
from quantum_ovs.db.session import NOTIFY

LOG = logging.getLogger(__name__)

Change = collections.namedtuple("Change", "seq resource resource_id network_id host op detail")
_Waiter = collections.namedtuple("_Waiter", "event keys")
_SEQ = operator.attrgetter("seq")


class ChangeFeed:
    """The tail of the change table, in memory."""

    PRUNE_EVERY = 60.0  # seconds
    # What a waiter waits on: set(), clear() and wait(timeout) as
    # threading.Event's, for one waiting thread.  quantum-ovs-server (the
    # one module that imports eventlet) puts a cheaper green one here.
    event_factory = threading.Event
    PAGE = 10000  # change rows read at a time
    MIN_KEPT = 1000  # the newest row must stay: SQLite reuses a deleted max rowid
    START_ROWS = 1000  # the numbers a new feed reads back (<= MIN_KEPT: none pruned)
    # A number given up (gap_timeout) is still looked for this long, at most
    # this many: a row that commits after all is recorded again (relay).
    LATE_WATCH = 120.0
    LATE_MAX = 1000

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
        self.gaps = {}  # seq -> first seen missing (monotonic)
        self.given_up = 0  # gaps given up so far
        self._watched = {}  # seq -> when given up (monotonic): still looked for
        self.relayed = 0  # rows that came after their number was given up
        self.latest = self.floor = 0  # floor: the oldest revision answered from memory
        self._start_at_tail()
        self._thread = None
        self.stopped = False
        self._refresh_lock = threading.Lock()
        db.after_write.append(self.poke)
        db.on_dispose.append(self.stop)

    def _start_at_tail(self):
        """Start from the newest ``START_ROWS`` sequence numbers: their
        rows in memory, and the numbers among them without a row as gaps.
        A write may hold a number below the newest without having
        committed yet (committing after a later one): started at the
        newest alone, the feed would never read it, and a view answered at
        the newest would claim to hold it (review 19)."""
        C = models.Change
        with self.db.reader() as s:
            newest = s.execute(sa.select(sa.func.max(C.seq))).scalar() or 0
            rows = s.execute(sa.select(C.seq, C.resource, C.resource_id, C.network_id, C.host,
                                       C.op, C.detail)
                             .where(C.seq > newest - self.START_ROWS).order_by(C.seq)).all()
        self.floor = self.latest = max(0, newest - self.START_ROWS)
        self._take(rows, time.monotonic())

    def _take(self, rows, now):
        """Append ``rows`` (above ``latest``, in order) and move ``latest``
        to the last; the numbers they skip become gaps, missing since
        ``now`` (unless missing already).  The lock held, once started."""
        for r in rows:
            for missing in range(self.latest + 1, r.seq):
                self.gaps.setdefault(missing, now)
            self.items.append(Change(*r))
            self.latest = r.seq

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
            if self.gaps or self._watched:
                late = s.execute(q.where(C.seq.in_([*self.gaps, *self._watched]))).all()
        relay = [r for r in late if r.seq in self._watched]
        if relay:
            late = [r for r in late if r.seq not in self._watched]
            self._relay(relay)
        if not rows and not late:
            if self.gaps:
                with self.lock:
                    mark = self.watermark
                    if self._expire_gaps():
                        self._wake(mark)
            return 0
        with self.lock:
            mark = self.watermark
            for r in late:
                # In the list before its gap closes: polls read the
                # watermark and the list without the lock, and a watermark
                # past a change must find it there.
                bisect.insort(self.items, Change(*r), key=_SEQ)
                self.gaps.pop(r.seq, None)
            self._take(rows, time.monotonic())
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
        # The most concerned first: the hosts of the changed ports, then
        # the hosts on their networks, then those that only see a group's
        # members change (a port in a default group spanning every host
        # wakes them all; the first ones woken are answered first).
        hosts, nets, groups = {}, {}, {}  # (dicts: in the order of the changes)
        for c in items[lo:hi]:
            if c.resource == "agent":  # a host's address: everyone's concern
                if c.host:
                    return self._wake_all()
                continue
            if c.host:
                hosts[("host", c.host)] = None
            if c.network_id:
                nets[("net", c.network_id)] = None
            if c.resource in host_view.GROUP_RESOURCES:
                groups[("group", c.resource_id)] = None
        interest = self._interest
        for keys in (hosts, nets):
            for k in keys:
                for w in interest.get(k, ()):
                    w.event.set()
        for k in groups:
            for w in interest.get(k, ()):
                # (after any host a change concerns directly, this one's or
                # the next one's: see set_later, where the event has it)
                getattr(w.event, "set_later", w.event.set)()

    def _wake_all(self):
        for w in self._waiters:
            w.event.set()

    def subscribe(self, keys):
        """A waiter woken by changes that name one of ``keys``."""
        w = _Waiter(self.event_factory(), tuple(keys))
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
        watched = self._watched
        for seq in expired:
            del self.gaps[seq]
            watched[seq] = now
        self.given_up += len(expired)
        for seq in [s for s, when in watched.items() if now - when > self.LATE_WATCH]:
            del watched[seq]
        while len(watched) > self.LATE_MAX:  # (the oldest first: insertion order)
            del watched[next(iter(watched))]
        return bool(expired)

    def _relay(self, rows):
        """Rows whose numbers were given up committed after all (a commit
        slower than gap_timeout): hosts past them never got them.  Each is
        recorded again, under a new number, which every host reads as any
        change (what a delta sends is read from the rows as they are)."""
        C = models.Change
        for r in rows:
            del self._watched[r.seq]
        self.relayed += len(rows)
        LOG.warning("changes %s committed after the feed gave them up: recorded again",
                    [r.seq for r in rows])
        copies = [{"resource": r.resource, "resource_id": r.resource_id,
                   "network_id": r.network_id, "host": r.host, "op": r.op,
                   "detail": r.detail, "revision_number": 0} for r in rows]

        def txn(s):
            s.info[NOTIFY] = True
            s.execute(sa.insert(C.__table__), copies)
        self.db.write(txn)

    def since(self, revision):
        """Changes after ``revision``, or None when we no longer have them."""
        if revision < self.floor:
            return None
        items = self.items
        return items[bisect.bisect_right(items, revision, key=_SEQ):]



# What HostStates.since answers: a full view (``view``, already in wire
# form: host_view.full_dict) or a delta (a model Delta), at ``revision``.
HostState = collections.namedtuple("HostState", "full revision view delta")


class HostStates:
    """The state of each host since a revision, read through one process's
    ChangeFeed (made on first use, with ``feed_options``)."""

    RELEVANCE_CACHE_SIZE = 100000  # hosts

    def __init__(self, db, **feed_options):
        self.db = db
        self._feed_options = feed_options
        self._feed = None
        self._lock = threading.Lock()
        # host -> (view networks, own networks, local groups, groups, revision)
        self._relevance_cache = {}
        self._memo = (None, {})  # (revision, what deltas at it share)
        self._memo_given_up = 0  # the feed's gaps given up when the memo was made
        self._delta_lock = threading.Lock()

    @property
    def feed(self):
        feed = self._feed  # made once: every poll reads it without the lock
        if feed is not None:
            return feed
        with self._lock:
            if self._feed is None:
                self._feed = ChangeFeed(self.db, **self._feed_options)
                self._feed.start()
            return self._feed

    def stop(self):
        """The process is stopping: every waiting poll is answered now (an
        empty delta, as at its timeout), and any later one at once."""
        if self._feed is not None:
            self._feed.stop()

    @property
    def revision(self):
        """Every change at or below this is known to this process."""
        return self.feed.watermark

    def since(self, host, since, timeout, member_deltas=True, still_valid=None,
              partial_groups=False):
        """What changed for ``host`` after revision ``since`` (< 0: the
        host has no view yet), waiting up to ``timeout`` seconds for a
        change that concerns it: a HostState (with an empty delta when
        none came).  ``member_deltas``: the host applies membership deltas
        (agents that predate them get whole groups); ``partial_groups``: it
        applies partial group updates (see host_view.delta).  ``still_valid()`` is
        asked before answering with what came during the wait; when it
        says no (the caller's credential was revoked), returns None."""
        feed = self.feed
        deadline = time.monotonic() + timeout
        if since > feed.latest or feed.behind_own_writes():
            # Another server process answered this host and is ahead of
            # us, or this process committed something not yet read.
            feed.refresh()
        # A revision no process has reached (the database was replaced)
        # also gets a full view.
        if since < 0 or since > feed.latest:
            return self._full(host)
        nets, own_nets, local, groups = self._relevance(host, feed)
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
                if any(c.resource == "router" for c in mine):
                    mine = host_view.with_router_rows(mine, changes)
                if mine:
                    if waiter is not None and still_valid is not None and not still_valid():
                        return None  # revoked while this poll waited
                    # Unless one of the host's own ports changed, its networks
                    # and groups are still those cached.
                    own = any(c.host == host for c in mine)
                    return self._delta(host, mine, mark, None if own else (own_nets, local),
                                       member_deltas=member_deltas,
                                       partial_groups=partial_groups)
                left = deadline - time.monotonic()
                if left <= 0 or feed.stopped:
                    rev = max(since, mark)
                    return HostState(False, rev, None, m.Delta(revision=rev))
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
        """The networks of the host's view (its own and those its routers
        route to), its own networks, its ports' groups, and those with the
        groups their rules name (what decides whether a change concerns
        it), cached until a change could alter them: one of the host's own
        ports, a group's rules, or a router on one of its view's networks
        (an interface attached or detached)."""
        cached = self._relevance_cache.get(host)
        if cached is not None:
            mark = feed.watermark  # every change up to it is in the feed
            seq, view_nets = cached[-1], cached[0]
            later = feed.since(seq)
            if later is not None and not any(
                    c.host == host or c.resource == "security_group" or
                    (c.resource == "router" and c.network_id in view_nets) for c in later):
                if mark > seq:
                    # Still good at the watermark: the next poll looks at
                    # what came after it only, not at every change since
                    # the cache was made.
                    self._relevance_cache[host] = cached[:-1] + (mark,)
                return cached[:-1]
        seq = feed.watermark
        with self.db.reader() as s:
            own = host_view.local_networks(s, host)
            nets = host_view.routed(s, own, host=host)[1]
            local = host_view.local_groups(s, host)
            groups = host_view.relevant_groups(s, host, local)
        if len(self._relevance_cache) > self.RELEVANCE_CACHE_SIZE:
            self._relevance_cache.clear()
        self._relevance_cache[host] = (nets, own, local, groups, seq)
        return nets, own, local, groups

    def _full(self, host):
        revision = self.feed.watermark
        with self.db.reader() as s, gcpause.paused():
            view = host_view.full_dict(s, host, revision)
        return HostState(True, revision, view, None)

    # What a delta's memo (see host_view.delta) reads of the routers'
    # topology: their networks, the routers of each network and their
    # gateway hosts.  Routers record every change of their interfaces,
    # gateway and gateway hosts as router changes.
    TOPOLOGY = frozenset({"net_routers", "router_nets", "gateway_routers", "gateway_hosts"})

    def _carried(self, revision):
        """The part of the last memo that still holds at ``revision``: its
        TOPOLOGY entries when no router changed between the two
        revisions.  (Each change is a new revision: the routers of the
        networks of every host a change woke were read again for each
        one, a query per host.)"""
        old_revision, old = self._memo
        feed = self.feed
        given_up = self._memo_given_up
        self._memo_given_up = feed.given_up
        if old_revision is None or old_revision > revision or not old or \
                given_up != feed.given_up:
            return {}  # (a gap given up since may have been a router's change)
        between = feed.since(old_revision)
        if between is None or old_revision < feed.floor or any(
                c.resource == "router" for c in between if c.seq <= revision):
            # (the floor again: the feed may have dropped what was sliced)
            return {}
        return {k: v for k, v in old.items() if k[0] in self.TOPOLOGY}

    def _delta(self, host, changes, revision, known=None, member_deltas=True,
               partial_groups=False):
        # Deltas for the same changes at the same revision (one per host
        # woken) share what does not depend on the host.
        key = revision  # the memo holds reads made at this revision only
        nets, local = known or (None, None)
        # A change of security groups only (their rules or members, none
        # of the host's own ports): the delta depends on the host only
        # through its ports' groups, and is built once for every host
        # woken by it with the same groups (a default group spanning
        # every host: one build, not one per host).
        shared = None
        if known is not None and all(c.resource in host_view.GROUP_RESOURCES
                                     for c in changes):
            shared = ("shared_delta", tuple(c.seq for c in changes), frozenset(local),
                      member_deltas, partial_groups)
        if shared is not None:
            # Built already (the common case: every host but the first the
            # change woke): no lock, which a thousand woken threads would
            # otherwise queue on one after the other.
            memo_key, memo = self._memo
            d = memo.get(shared) if memo_key == key else None
            if d is not None:
                return HostState(False, revision, None, d)
        # One build at a time: the hosts woken together by a change would
        # otherwise all miss the memo while the first one reads.
        with self._delta_lock:
            if self._memo[0] != key:
                # one object: read above without the lock
                self._memo = (key, self._carried(key))
            memo = self._memo[1]
            d = memo.get(shared) if shared is not None else None
            if d is None:
                try:
                    with self.db.reader() as s:
                        d = host_view.delta(s, host, changes, revision, memo,
                                            nets_now=nets, local=local,
                                            member_deltas=member_deltas,
                                            partial_groups=partial_groups)
                except BaseException:
                    # A read that failed half way leaves entries half made
                    # (a network's routers put in before they are read):
                    # none of this memo is used again, nor carried.
                    self._memo = (None, {})
                    raise
                if shared is not None:
                    memo[shared] = d
        return HostState(False, revision, None, d)
