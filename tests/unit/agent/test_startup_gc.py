"""A starting quantum-ovs-agent runs without the cyclic GC until its first
flows are in (agent/startup.py; issue 17).  Each case runs in a process
of its own: the collector is process-wide."""

from __future__ import annotations

import subprocess
import sys

_PAUSE_RESUME = """
import gc
from agent import startup
print(startup.pause_gc(), gc.isenabled(), startup.pause_gc())
print(startup.resume_gc(), gc.isenabled(), gc.get_freeze_count() > 0, startup.resume_gc())
gc.disable()
print(startup.pause_gc(), startup.resume_gc(), gc.isenabled())
"""

_LIMIT = """
import gc, time
from agent import startup
startup.pause_gc(limit=0.05)
deadline = time.monotonic() + 5
while not gc.isenabled() and time.monotonic() < deadline:
    time.sleep(0.01)
print(gc.isenabled(), startup.paused())
"""

# The agent lets it run again once its first install is done (and only if
# agent.main paused it).
_READY = """
import gc, tempfile
from agent import startup
from agent.daemon import Agent
from agent.settings import Settings
from quantum_ovs import model as m
from quantum_ovs.compiler.flow import FlowDiff
a = Agent(Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                   state_path=tempfile.mkdtemp() + "/state.json"))
class Switch:
    need_dump = False
    def install(self, desired, touched):
        return FlowDiff()
a.reconciler = Switch()
a.reporter.report = lambda *args: None
startup.pause_gc()
view = m.HostView(host="hv1", revision=1)
a._handle([("delta", m.Delta(revision=1))])  # no view yet: not ready
print(gc.isenabled(), a.ready.is_set())
a._handle([("full", view)])
print(gc.isenabled(), a.ready.is_set())
"""


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


def test_paused_until_resumed_and_only_by_whoever_paused_it():
    assert _run(_PAUSE_RESUME) == ["True", "False", "False",
                                   "True", "True", "True", "False",
                                   "False", "False", "False"]


def test_the_pause_ends_after_its_limit():
    assert _run(_LIMIT) == ["True", "False"]


def test_the_agent_resumes_it_once_its_first_flows_are_in():
    assert _run(_READY) == ["False", "False", "True", "True"]
