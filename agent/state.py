"""The agent's state file: the network local ids and conjunction ids it
allocated, kept so that a restarted agent compiles exactly the same flows
(and a hitless restart changes nothing on the switch)."""

from __future__ import annotations

import json
import logging
import os

from quantum_ovs.compiler.engine import Allocations

LOG = logging.getLogger(__name__)


class StateFile:
    """``<state_path>/agent-<host>.json``; no state_path: nothing kept."""

    def __init__(self, state_path, host):
        self.path = os.path.join(state_path, f"agent-{host}.json") if state_path else None

    def load(self) -> Allocations | None:
        """The saved allocations, or None (no file, or an unreadable one)."""
        path = self.path
        if not path or not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                raw = json.load(f)
            return Allocations(local_ids=dict(raw.get("local_ids", {})),
                               conj_ids={_tuple(k): v for k, v in raw.get("conj_ids", [])},
                               next_conj=raw.get("next_conj", 1))
        except (OSError, ValueError, TypeError) as e:
            LOG.warning("ignoring unreadable state file %s: %s", path, e)
            return None

    def save(self, alloc: Allocations) -> None:
        """Write ``alloc`` atomically (a crash leaves the old file or the
        new one)."""
        path = self.path
        if not path:
            return
        data = {"local_ids": alloc.local_ids,
                "conj_ids": [[list(k) if isinstance(k, tuple) else k, v]
                             for k, v in alloc.conj_ids.items()],
                "next_conj": alloc.next_conj}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)


def _tuple(x):
    return tuple(_tuple(i) for i in x) if isinstance(x, list) else x
