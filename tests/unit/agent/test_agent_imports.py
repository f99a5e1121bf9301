"""What importing the agent costs a starting agent (issue 17)."""

import subprocess
import sys

_PROBE = """
import sys
import agent.main
import agent.daemon  # (agent.main imports it once it has sent its first poll)
loaded = "eventlet" in sys.modules
metrics = "prometheus_client" in sys.modules  # only with metrics_port set
import ovs.poller
import eventlet  # what the server and the optional checks of oslo find
print(loaded, metrics, ovs.poller.eventlet_patcher is None, eventlet.__name__)
"""


def test_the_agent_does_not_import_eventlet_or_unused_metrics():
    # eventlet is installed (the server needs it) and the ovs library
    # imports it when it can; the agent never runs under eventlet.  The
    # block is only for that one import: eventlet stays importable after.
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "True", "eventlet"]


def test_ovs_imported_after_eventlet_still_sees_it():
    # A process that has eventlet (the server, a test importing both) gets
    # the ovs library exactly as before.
    probe = ("import sys, eventlet, agent.main, ovs.poller;"
             "print(ovs.poller.eventlet_patcher is not None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True"]


def test_the_metadata_proxy_is_imported_only_with_metadata_on():
    # Its HTTP server and TLS are imports a host without the proxy does not
    # need (issue 17); the agent imports it when it starts the proxy.
    probe = ("import sys, agent.main, agent.daemon;"
             "print('agent.metadata.proxy' in sys.modules, 'http.server' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
