"""DesiredFlows: the flow table this host should have, indexed by owner.

Every flow belongs to exactly one owner (a hashable tuple such as
``("port", port_id)``); a FlowKey is unique across owners.  Replacing an
owner's flows records what changed, so a batch of replacements yields the
minimal FlowDiff against the table before the batch.

Conflicts: two owners producing one key, or one owner one key twice with
other actions, are a CompileError by default (a compiler bug shows at
once).  Given ``rank`` (owner -> int), the table isolates them instead:
an owner with a conflict is *held* (none of its flows is in the table) and
the rest of the table goes on.  Which owners are held depends only on the
owners and their flows, never on the order they came in: an owner is held
when it gives one key twice with other actions, when computing it failed
(``Unbuildable``), or when another owner of the same or a higher rank
produces one of its keys.  A held owner is released at the end of the
batch in which that stops being so.
"""

from __future__ import annotations

from quantum_ovs.compiler.flow import Flow, FlowDiff, FlowKey, diff_pairs


class CompileError(Exception):
    """The model compiles to contradictory flows (e.g. two owners produce
    the same match in the same table at the same priority)."""


class Unbuildable(tuple):
    """An owner's flows that could not be computed: no flows, and why
    (an isolating table holds the owner)."""

    reason: str

    def __new__(cls, reason: str):
        self = super().__new__(cls)
        self.reason = reason
        return self


class DesiredFlows:
    __slots__ = ("_entries", "by_owner", "_orig", "_rank", "held", "_held_keys", "_recheck",
                 "withdrawn")

    def __init__(self, rank=None) -> None:
        # (table, priority, match) -> (flow, owner).  Plain tuples, not
        # FlowKey: the same identity, cheaper to build.
        self._entries: dict[tuple, tuple[Flow, tuple]] = {}
        self.by_owner: dict[tuple, tuple[tuple, ...]] = {}
        self._orig: dict[tuple, Flow | None] | None = None
        self._rank = rank  # None: a conflict raises CompileError
        # Isolated conflicts: owner -> (its flows, why, whether it is held
        # whatever the others do: a key twice, or Unbuildable); the keys
        # held owners claim -> those owners; held owners to look at again
        # at the end of the batch; the flows of owners that were in the
        # table and were taken out of it because of a conflict (for a
        # caller that had sent them already: Engine.load_flows).
        self.held: dict[tuple, tuple[tuple[Flow, ...], str, bool]] = {}
        self._held_keys: dict[tuple, set] = {}
        self._recheck: set = set()
        self.withdrawn: list[Flow] = []

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
        if self._recheck:
            self.settle()
        self.withdrawn.clear()  # (in the diff)
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
        if self._held_keys or self.held:
            self._unclaim(owner, keys)
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
        key held by another owner or a key given twice with other actions
        (an isolating table holds the owners instead)."""
        if self._rank is not None:
            self._add_isolated(owner, flows)
            return
        clash = self._put(owner, flows)
        if clash is not None:
            f, e = clash
            if e[1] == owner:
                raise CompileError(f"{owner} produces two flows for {f.key}")
            raise CompileError(
                f"{owner} and {e[1]} both produce {f.key}: {f.actions} / {e[0].actions}"
            )

    def _put(self, owner, flows):
        """Put an owner's flows in: None, or (its flow, the entry there)
        for the first key that is taken (by another owner, or by the same
        owner with other actions), with none of its flows left in."""
        entries = self._entries
        put = entries.setdefault
        mine = []
        for f in flows:
            k = (f.table, f.priority, f.match)
            new = (f, owner)
            e = put(k, new)
            if e is not new:
                if e[1] == owner and e[0] == f:
                    continue
                for k in mine:
                    del entries[k]
                return f, e
            mine.append(k)
        orig = self._orig
        if orig is not None:
            for k in mine:
                if k not in orig:
                    orig[k] = None
        if mine:
            self.by_owner[owner] = tuple(mine)
        return None

    def replace_owner(self, owner, flows) -> None:
        self.remove_owner(owner)
        self.add_owner(owner, flows)

    # ------------------------------------------------ isolated conflicts
    def _add_isolated(self, owner, flows) -> None:
        entries = self._entries
        if type(flows) is Unbuildable:
            self._hold(owner, (), flows.reason, True)
            return
        if not self._held_keys and self._put(owner, flows) is None:
            # The common case, as add_owner's: in, unless a key is taken
            # (then nothing of it is in, and the conflict isolated below).
            return
        mine: dict[tuple, Flow] = {}
        reason = None
        for f in flows:
            k = (f.table, f.priority, f.match)
            had = mine.setdefault(k, f)
            if had is not f and had != f:
                reason = f"{owner} produces two flows for {f.key}"
        rivals = set()
        held_keys = self._held_keys
        for k in mine:
            e = entries.get(k)
            if e is not None:
                rivals.add(e[1])
            if held_keys:
                rivals.update(held_keys.get(k, ()))
        rivals.discard(owner)
        if reason is None and not rivals:
            self._put(owner, flows)  # (no key of it is taken)
            return
        rank = self._rank
        mine_rank = rank(owner)
        for r in rivals:
            if rank(r) <= mine_rank and r in self.by_owner:  # in the table: out of it
                out = self.owner_flows(r)
                self.remove_owner(r)
                self.withdrawn.extend(out)
                self._hold(r, out, f"{r} and {owner} produce the same flows", False)
        if reason is not None or any(rank(r) >= mine_rank for r in rivals):
            names = ", ".join(sorted(map(str, rivals)))
            self._hold(owner, tuple(mine.values()),
                       reason or f"{owner} and {names} produce the same flows", reason is not None)
            return
        orig = self._orig  # (it outranks them all: in the table)
        for k, f in mine.items():
            entries[k] = (f, owner)
            if orig is not None and k not in orig:
                orig[k] = None
        self.by_owner[owner] = tuple(mine)

    def _hold(self, owner, flows, reason: str, always: bool) -> None:
        self.held[owner] = (flows, reason, always)
        held_keys = self._held_keys
        for f in flows:
            held_keys.setdefault((f.table, f.priority, f.match), set()).add(owner)

    def _unclaim(self, owner, keys) -> None:
        """``owner`` goes (its keys in the table: ``keys``): the held owners
        that shared a key with it may be free at the end of the batch."""
        held_keys = self._held_keys
        recheck = self._recheck
        if keys:
            for k in keys:
                if k in held_keys:
                    recheck.update(held_keys[k])
        h = self.held.pop(owner, None)
        if h is None:
            return
        for f in h[0]:
            k = (f.table, f.priority, f.match)
            claim = held_keys[k]
            claim.discard(owner)
            if claim:
                recheck.update(claim)
            else:
                del held_keys[k]

    def settle(self) -> None:
        """Release the held owners nothing conflicts with any more (the
        end of a batch does this)."""
        while self._recheck:  # (a release may free no one else: this ends)
            recheck, self._recheck = self._recheck, set()
            self._release(recheck)

    def _release(self, recheck) -> None:
        rank = self._rank
        held_keys = self._held_keys
        entries = self._entries
        for owner in sorted(recheck, key=str):
            h = self.held.get(owner)
            if h is None or h[2]:
                continue
            mine = rank(owner)
            free = True
            for f in h[0]:
                k = (f.table, f.priority, f.match)
                e = entries.get(k)
                if e is not None and rank(e[1]) >= mine or \
                        any(o != owner and rank(o) >= mine for o in held_keys.get(k, ())):
                    free = False
                    break
            if free:
                self._unclaim(owner, None)
                self._add_isolated(owner, h[0])
