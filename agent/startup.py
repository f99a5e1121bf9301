"""The cyclic garbage collector while the agent process starts (issue 17).

A starting agent makes hundreds of thousands of objects, nearly all of
them for good: its modules, the server's view, the flows it compiles and
the ones it dumps from the switch.  The collector would scan them over and
over as they are made (some 40-60 ms of a 0.5 s start on 1,000 ports), and
finds next to nothing.  quantum-ovs-agent (agent/main.py) therefore pauses
it first thing, freezes what its imports made (modules live as long as the
process), and the agent lets it run again once its first flows are in
(:func:`resume_gc`, from agent.daemon) or after ``limit`` seconds,
whichever comes first, so an agent that cannot reach its server or switch
does not run without it.  What exists when it resumes is frozen too (its
first collection would otherwise scan all of it, ~20 ms in the middle of
the first install): the agent's working set (view, compiled and installed
flows), acyclic values that reference counting frees as they are replaced;
only garbage cycles made during the start (a few caught exceptions) are
never collected.

Nothing here pauses the collector unless :func:`pause_gc` was called: an
Agent made in a test, or in another program, never touches it.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_paused = False


def pause_gc(limit: float = 30.0) -> bool:
    """Pause the collector until :func:`resume_gc`, at most ``limit``
    seconds; False if it was not running (it is left as it is)."""
    global _paused
    with _lock:
        if _paused or not gc.isenabled():
            return False
        gc.disable()
        _paused = True
    timer = threading.Timer(limit, resume_gc)
    timer.daemon = True
    timer.start()
    return True


def freeze_imports() -> None:
    """Move what exists now (after the imports) out of the collector's
    sight for good (gc.freeze): later collections do not scan it."""
    if _paused:
        gc.freeze()


def resume_gc() -> bool:
    """Let the collector run again if :func:`pause_gc` paused it; True if
    it did."""
    global _paused
    with _lock:
        if not _paused:
            return False
        _paused = False
        gc.freeze()
        gc.enable()
        return True


def paused() -> bool:
    return _paused


class EarlyOvsdb:
    """The OVSDB connection, started on a thread of its own as soon as the
    settings are known (agent.main, before it imports the rest of the
    agent): the host's first OVSDB sync (every interface plugged) then
    overlaps the imports and the server's view instead of following them
    (issue 17).  The Agent takes it with :meth:`result`."""

    def __init__(self, remote: str, timeout: float = 10.0):
        from agent.ovsdb.connection import Connection
        from agent.plumbing import AGENT_TABLES

        self.conn = Connection(remote, tables=AGENT_TABLES, timeout=timeout)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="ovsdb-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self.conn.start()
        except BaseException as e:  # noqa: BLE001 - raised by result()
            self._error = e

    def result(self, timeout: float | None = None):
        """The started, synced Connection (or what starting it raised);
        TimeoutError if it is still starting after ``timeout`` seconds."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the OVSDB connection is still starting")
        if self._error is not None:
            self.conn.stop()
            raise self._error
        return self.conn

    def discard(self) -> None:
        """Stop the connection once its start has ended, on a thread of its
        own (an agent stopping does not wait for an unreachable
        ovsdb-server)."""
        def stop_when_started():
            self._thread.join()
            self.conn.stop()
        threading.Thread(target=stop_when_started, name="ovsdb-discard", daemon=True).start()
