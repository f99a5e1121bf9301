"""The agent's state file: the network local ids and conjunction ids it
allocated, kept so that a restarted agent compiles exactly the same flows
(and a hitless restart changes nothing on the switch)."""

from __future__ import annotations

import json
import logging
import os

from quantum_ovs.compiler.engine import LOCAL_ID_BASE, LOCAL_ID_MAX, Allocations

LOG = logging.getLogger(__name__)

CONJ_ID_MAX = 0xFFFFFFFF  # conj_id is a 32-bit field


class StateFile:
    """``<state_path>/agent-<host>.json``; no state_path: nothing kept."""

    def __init__(self, state_path, host):
        self.path = os.path.join(state_path, f"agent-{host}.json") if state_path else None
        self.failed = None  # the last save's error (str), None once one worked

    def load(self) -> Allocations | None:
        """The saved allocations, or None (no file, or an unreadable or
        invalid one: the agent starts afresh and its first install
        rewrites what differs, which is no hitless restart but a correct
        one)."""
        path = self.path
        if not path or not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                raw = json.load(f)
            return _allocations(raw)
        except (OSError, ValueError, TypeError) as e:
            LOG.warning("ignoring the state file %s (unreadable or invalid): %s", path, e)
            return None

    def save(self, alloc: Allocations) -> bool:
        """Write ``alloc`` atomically (a crash leaves the old file or the
        new one).  False if it could not be written (a full or read-only
        file system): logged, once for each new error, and not raised:
        the flows are in the switch, only the next restart is not hitless
        (``failed``: call again even with nothing new, until it works)."""
        path = self.path
        if not path:
            return True
        data = {"local_ids": alloc.local_ids,
                "conj_ids": [[list(k) if isinstance(k, tuple) else k, v]
                             for k, v in alloc.conj_ids.items()],
                "next_conj": alloc.next_conj}
        tmp = path + ".tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError as e:
            _discard(tmp)
            if str(e) != self.failed:
                LOG.error("could not write the state file %s (%s): the flows are "
                          "installed, but a restart will not be hitless until it is "
                          "written", path, e)
            self.failed = str(e)
            return False
        if self.failed is not None:
            LOG.warning("state file %s written again", path)
            self.failed = None
        return True


def _discard(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _allocations(raw) -> Allocations:
    """The Allocations a state file holds; ValueError unless they are of
    the shape and in the ranges the compiler allocates: a network's local
    id is its VLAN on br-int and its conntrack zone, a conjunction id
    stands for one group's rules, so two objects given one id would share
    a broadcast domain or an ACL."""
    if not isinstance(raw, dict):
        raise ValueError(f"not an object but {type(raw).__name__}")
    local_ids = raw.get("local_ids", {})
    if not isinstance(local_ids, dict):
        raise ValueError("local_ids is not an object")
    _check_ids("local id", local_ids.values(), LOCAL_ID_BASE, LOCAL_ID_MAX)
    pairs = raw.get("conj_ids", [])
    if not isinstance(pairs, list) or not all(
            isinstance(kv, list) and len(kv) == 2 for kv in pairs):
        raise ValueError("conj_ids is not a list of [key, id] pairs")
    conj_ids = {_tuple(k): v for k, v in pairs}  # (an unhashable key: TypeError)
    if len(conj_ids) != len(pairs):
        raise ValueError("a conjunction key is given twice")
    _check_ids("conjunction id", conj_ids.values(), 1, CONJ_ID_MAX)
    next_conj = raw.get("next_conj", 1)
    if not _is_int(next_conj) or not max(conj_ids.values(), default=0) < next_conj \
            <= CONJ_ID_MAX + 1:
        raise ValueError(f"next_conj {next_conj!r} is not above every conjunction id")
    return Allocations(local_ids=dict(local_ids), conj_ids=conj_ids, next_conj=next_conj)


def _check_ids(what, ids, low, high) -> None:
    seen = set()
    for i in ids:
        if not _is_int(i) or not low <= i <= high:
            raise ValueError(f"{what} {i!r} is not in {low}..{high}")
        if i in seen:
            raise ValueError(f"{what} {i} is given twice")
        seen.add(i)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _tuple(x):
    return tuple(_tuple(i) for i in x) if isinstance(x, list) else x
