"""The reconciler: our picture of the flows installed on the switch (only
ours, by cookie), and the one path that changes them.

After a (re)connection the installed flows are dumped and everything is
diffed against the desired table; otherwise only the keys a change touched
are.  The difference goes to the switch in one bundle, and the picture is
updated from what was sent.
"""

from __future__ import annotations

import time

from quantum_ovs.compiler.flow import FlowDiff, diff, diff_keys


class Reconciler:
    def __init__(self, stats: dict):
        self.channel = None  # set once the OpenFlow channel exists
        self.installed = {}  # FlowKey -> Flow: what we believe the switch has
        self.need_dump = True
        self.dumped_generation = 0  # the switch connection whose flows we dumped
        self.last_apply_ms = None
        self.stats = stats  # applies, flow_mods, resyncs (the agent's counters)

    # ------------------------------------------------------------ events
    def connected(self, generation) -> None:
        # The dump may have been done on this very connection already (the
        # switch connected before the view came in).
        if generation != self.dumped_generation:
            self.need_dump = True

    def resync(self) -> None:
        """Trust nothing installed: dump again before the next install."""
        self.need_dump = True

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
            self.installed = {f.key: f for f in channel.dump_flows()}
            self.dumped_generation = generation
            self.need_dump = False
            d = diff(self.installed, desired)
        else:
            d = diff_keys(touched, self.installed, desired)
        if not d.empty:
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
