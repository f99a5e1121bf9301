"""DesiredFlows: the flow table this host should have, indexed by owner.

Every flow belongs to exactly one owner (a hashable tuple such as
``("port", port_id)``); a FlowKey is unique across owners.  Replacing an
owner's flows records what changed, so a batch of replacements yields the
minimal FlowDiff against the table before the batch.
"""

from __future__ import annotations

from quantum_ovs.compiler.flow import Flow, FlowDiff, FlowKey, diff_pairs


class CompileError(Exception):
    """The model compiles to contradictory flows (e.g. two owners produce
    the same match in the same table at the same priority)."""


class DesiredFlows:
    __slots__ = ("_entries", "by_owner", "_orig")

    def __init__(self) -> None:
        # (table, priority, match) -> (flow, owner).  Plain tuples, not
        # FlowKey: the same identity, cheaper to build.
        self._entries: dict[tuple, tuple[Flow, tuple]] = {}
        self.by_owner: dict[tuple, tuple[tuple, ...]] = {}
        self._orig: dict[tuple, Flow | None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        return (e[0] for e in self._entries.values())

    def __contains__(self, key: FlowKey) -> bool:
        return (key.table, key.priority, key.match) in self._entries

    def get(self, key: FlowKey) -> Flow | None:
        e = self._entries.get((key.table, key.priority, key.match))
        return None if e is None else e[0]

    def owner_of(self, key: FlowKey):
        e = self._entries.get((key.table, key.priority, key.match))
        return None if e is None else e[1]

    def by_key(self) -> dict[FlowKey, Flow]:
        return {e[0].key: e[0] for e in self._entries.values()}

    def flows(self) -> frozenset[Flow]:
        return frozenset(e[0] for e in self._entries.values())

    def owner_flows(self, owner) -> tuple[Flow, ...]:
        return tuple(self._entries[k][0] for k in self.by_owner.get(owner, ()))

    def owners(self):
        return self.by_owner.keys()

    # ----------------------------------------------------------- batches
    def begin(self) -> None:
        self._orig = {} if self._entries else None

    def end(self) -> FlowDiff:
        orig, self._orig = self._orig, None
        if orig is None:  # started empty: everything is an add
            return FlowDiff((), (), tuple(e[0] for e in self._entries.values()))
        # orig: the keys the batch touched -> the flow before it (None: none).
        get = self._entries.get
        return diff_pairs((old, None if (e := get(k)) is None else e[0])
                          for k, old in orig.items())

    # ------------------------------------------------------- replacement
    def remove_owner(self, owner) -> None:
        """Drop an owner's flows (first phase of a replacement)."""
        keys = self.by_owner.pop(owner, None)
        if not keys:
            return
        entries = self._entries
        orig = self._orig
        if orig is None:
            for k in keys:
                del entries[k]
            return
        for k in keys:
            e = entries.pop(k)
            if k not in orig:
                orig[k] = e[0]

    def add_owner(self, owner, flows) -> None:
        """Install an owner's flows (second phase); raise CompileError on a
        key held by another owner or a key given twice with other actions."""
        mine = []
        entries = self._entries
        orig = self._orig
        put = entries.setdefault
        for f in flows:
            k = (f.table, f.priority, f.match)
            new = (f, owner)
            e = put(k, new)
            if e is not new:
                if e[1] == owner:
                    if e[0] == f:
                        continue
                    raise CompileError(f"{owner} produces two flows for {f.key}")
                raise CompileError(
                    f"{owner} and {e[1]} both produce {f.key}: {f.actions} / {e[0].actions}"
                )
            if orig is not None and k not in orig:
                orig[k] = None
            mine.append(k)
        if mine:
            self.by_owner[owner] = tuple(mine)

    def replace_owner(self, owner, flows) -> None:
        self.remove_owner(owner)
        self.add_owner(owner, flows)
