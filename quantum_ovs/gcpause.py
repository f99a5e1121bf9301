"""The cyclic garbage collector paused while a server process builds one
large answer (issue 17).

A host's full view of 10,000 ports is some 70,000 lists and dicts, all
alive until the answer is written.  Made with the collector running, they
set off its collections over and over, two or three of them full ones
that walk everything the build has made so far: ~85 ms of the ~210 ms a
quantum-ovs-server spent on such a poll, to find no garbage (the build
makes no cycles).  Paused, the build pays none of that; what it leaves is
freed by reference counting when the answer is gone.

Builds may overlap (threads in quantum-ovs-agent-api, green threads
waiting on the database in quantum-ovs-server): the collector runs again
when the last one ends, and only if it was running when the first began
(a process that turned it off keeps it off).  Builds that keep
overlapping (every agent asking for its view at once) do not keep it off
for good: one that begins MAX_PAUSE seconds or more after the pause did
turns it back on, and it stays on until they have all ended.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time

MAX_PAUSE = 1.0  # seconds

_lock = threading.Lock()
_depth = 0  # builds under way
_resume = False  # the collector ran when the first of them began
_since = 0.0  # when it was paused (monotonic)


@contextlib.contextmanager
def paused():
    """The collector off for the block (see the module's text)."""
    global _depth, _resume, _since
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            _since = time.monotonic()
            gc.disable()
        elif _resume and time.monotonic() - _since >= MAX_PAUSE:
            gc.enable()  # paused long enough: on until the last build ends
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
