"""DesiredFlows: the flow table this host should have, indexed by owner.

Every flow belongs to exactly one owner (a hashable tuple such as
``("port", port_id)``); a FlowKey is unique across owners.  Replacing an
owner's flows records what changed, so a batch of replacements yields the
minimal FlowDiff against the table before the batch.
"""

from __future__ import annotations

from quantum_ovs.compiler.flow import Flow, FlowDiff, FlowKey


class CompileError(Exception):
    """The model compiles to contradictory flows (e.g. two owners produce
    the same match in the same table at the same priority)."""


class DesiredFlows:
    __slots__ = ("by_key", "owner_of", "by_owner", "_orig")

    def __init__(self) -> None:
        self.by_key: dict[FlowKey, Flow] = {}
        self.owner_of: dict[FlowKey, tuple] = {}
        self.by_owner: dict[tuple, dict[FlowKey, Flow]] = {}
        self._orig: dict[FlowKey, Flow | None] | None = None

    def __len__(self) -> int:
        return len(self.by_key)

    def __iter__(self):
        return iter(self.by_key.values())

    def flows(self) -> frozenset[Flow]:
        return frozenset(self.by_key.values())

    def owner_flows(self, owner) -> tuple[Flow, ...]:
        return tuple(self.by_owner.get(owner, {}).values())

    def owners(self):
        return self.by_owner.keys()

    # ----------------------------------------------------------- batches
    def begin(self) -> None:
        self._orig = {} if self.by_key else None

    def end(self) -> FlowDiff:
        orig, self._orig = self._orig, None
        if orig is None:  # started empty: everything is an add
            return FlowDiff((), (), tuple(self.by_key.values()))
        deletes, modifies, adds = [], [], []
        by_key = self.by_key
        for k, old in orig.items():
            new = by_key.get(k)
            if old is None:
                if new is not None:
                    adds.append(new)
            elif new is None:
                deletes.append(old)
            elif new.actions != old.actions or new.cookie != old.cookie:
                modifies.append(new)
        return FlowDiff(tuple(deletes), tuple(modifies), tuple(adds))

    def _touch(self, key) -> None:
        orig = self._orig
        if orig is not None and key not in orig:
            orig[key] = self.by_key.get(key)

    # ------------------------------------------------------- replacement
    def remove_owner(self, owner) -> dict | None:
        """Drop an owner's flows (first phase of a replacement)."""
        old = self.by_owner.pop(owner, None)
        if not old:
            return old
        by_key, owner_of = self.by_key, self.owner_of
        orig = self._orig
        for k in old:
            if orig is not None and k not in orig:
                orig[k] = by_key[k]
            del by_key[k]
            del owner_of[k]
        return old

    def add_owner(self, owner, flows) -> None:
        """Install an owner's flows (second phase); raise CompileError on a
        key held by another owner or a key given twice with other actions."""
        mine: dict[FlowKey, Flow] = {}
        by_key, owner_of = self.by_key, self.owner_of
        orig = self._orig
        for f in flows:
            k = f.key
            other = owner_of.get(k)
            if other is not None:
                if other == owner:
                    if by_key[k] == f:
                        continue
                    raise CompileError(f"{owner} produces two flows for {k}")
                raise CompileError(
                    f"{owner} and {other} both produce {k}: {f.actions} / {by_key[k].actions}"
                )
            if orig is not None and k not in orig:
                orig[k] = None
            by_key[k] = f
            owner_of[k] = owner
            mine[k] = f
        if mine:
            self.by_owner[owner] = mine

    def replace_owner(self, owner, flows) -> None:
        self.remove_owner(owner)
        self.add_owner(owner, flows)
