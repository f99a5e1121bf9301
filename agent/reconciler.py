"""The reconciler: our picture of the flows installed on the switch (only
ours, by cookie), and the one path that changes them.

After a (re)connection the installed flows are dumped and everything is
diffed against the desired table; otherwise only the keys a change touched
are.  The difference goes to the switch in one bundle, and the picture is
updated from what was sent.

A table still being computed (the agent's first view, issue 17) is
installed by :meth:`Reconciler.install_stream`: its flows are compared
with the dump and sent as the engine yields them, in one bundle too.

The dump can be taken ahead (:meth:`Reconciler.prefetch`, when the switch
connects), while the agent is still waiting for its view: it is used only
if nothing was sent and no resync was asked for since it started.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future

from quantum_ovs.compiler.flow import FlowDiff, diff, diff_keys

LOG = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, stats: dict):
        self.channel = None  # set once the OpenFlow channel exists
        self.installed = {}  # FlowKey -> Flow: what we believe the switch has
        self.need_dump = True
        self.dumped_generation = 0  # the switch connection whose flows we dumped
        self.last_apply_ms = None
        self.stats = stats  # applies, flow_mods, resyncs (the agent's counters)
        # Counts what makes a dump out of date: everything sent, every
        # resync asked for.  A prefetched dump is good only in its epoch.
        self._epoch = 0
        self._prefetched = None  # (generation, epoch, Future of {key: flow})

    # ------------------------------------------------------------ events
    def connected(self, generation) -> None:
        # The dump may have been done on this very connection already (the
        # switch connected before the view came in).
        if generation != self.dumped_generation:
            self.need_dump = True

    def resync(self) -> None:
        """Trust nothing installed: dump again before the next install."""
        self.need_dump = True
        self._epoch += 1

    def prefetch(self, generation) -> None:
        """Start dumping the flows of switch connection ``generation`` now,
        on a thread of its own (any thread may call this, e.g. the channel's
        connect handler): the next install that needs a dump takes this one
        if it is still good, instead of dumping only then."""
        channel, fut = self.channel, Future()
        self._prefetched = (generation, self._epoch, fut)

        def dump():
            try:
                fut.set_result({f.key: f for f in channel.dump_flows()})
            except Exception as e:  # noqa: BLE001 - the install dumps again
                fut.set_exception(e)
        threading.Thread(target=dump, name="dump", daemon=True).start()

    def _dump(self, channel) -> dict:
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            generation, epoch, fut = prefetched
            if generation == channel.generation and epoch == self._epoch:
                try:
                    return fut.result()
                except Exception:  # noqa: BLE001
                    LOG.info("the flows dumped ahead are not there; dumping again",
                             exc_info=True)
        return {f.key: f for f in channel.dump_flows()}

    # ------------------------------------------------------------ install
    def install(self, desired, touched) -> FlowDiff | None:
        """Make the switch hold ``desired``: everything after a dump, else
        the keys in ``touched``.  None if the switch is not connected."""
        channel = self.channel
        if channel is None or not channel.connected:
            return None
        started = time.monotonic()
        if self.need_dump:
            self.stats["resyncs"] += 1
            generation = channel.generation
            self.installed = self._dump(channel)
            self.dumped_generation = generation
            self.need_dump = False
            d = diff(self.installed, desired)
        else:
            d = diff_keys(touched, self.installed, desired)
        if not d.empty:
            self._epoch += 1
            channel.apply(d)
            installed = self.installed
            for f in d.deletes:
                installed.pop(f.key, None)
            for f in (*d.modifies, *d.adds):
                installed[f.key] = f
            self.stats["applies"] += 1
            self.stats["flow_mods"] += len(d)
        self.last_apply_ms = (time.monotonic() - started) * 1000
        return d

    def install_stream(self, batches) -> FlowDiff | None:
        """Make the switch hold the table ``batches`` yields (iterables of
        Flow, every key once over all of them: Engine.load_flows()) while
        it is still being computed: after a dump, whatever differs goes to
        the switch as it comes (the deletes last), in one bundle; nothing
        when nothing differs.  None if the switch is not connected (the
        batches are still taken to their end).  If anything fails, nothing
        is applied and ``installed`` stays the dump."""
        channel = self.channel
        if channel is None or not channel.connected:
            for _ in batches:
                pass
            return None
        started = time.monotonic()
        self.stats["resyncs"] += 1
        generation = channel.generation
        installed = self.installed = self._dump(channel)
        self.dumped_generation = generation
        self.need_dump = False
        self._epoch += 1  # (a dump taken ahead from now on may miss what is sent)
        pending = {}  # key -> flow: the adds and modifies
        matched = []  # the keys of installed flows that are desired
        deletes, modifies, adds = [], [], []

        def entries():
            have = installed.get if installed else None
            for flows in batches:
                for f in flows:
                    k = f.key
                    old = have(k) if have is not None else None
                    if old is None:
                        adds.append(f)
                        pending[k] = f
                        yield f, False
                    else:
                        matched.append(k)
                        if old.actions != f.actions or old.cookie != f.cookie:
                            modifies.append(f)
                            pending[k] = f
                            yield f, False
            if len(matched) != len(installed):  # some installed are not desired
                want = set(matched)
                for k, f in installed.items():
                    if k not in want:
                        deletes.append(f)
                        yield f, True
        sent = channel.apply_stream(entries())
        if installed:
            for f in deletes:
                del installed[f.key]
            installed.update(pending)  # (no key hashed again)
        else:
            self.installed = pending
        if sent:
            self.stats["applies"] += 1
            self.stats["flow_mods"] += sent
        self.last_apply_ms = (time.monotonic() - started) * 1000
        return FlowDiff(tuple(deletes), tuple(modifies), tuple(adds))
