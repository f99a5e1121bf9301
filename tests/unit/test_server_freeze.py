"""quantum-ovs-server freezes what start-up made (service.freeze_startup)
once its app is built, before it serves (in a subprocess: the server
module monkey-patches the process with eventlet)."""

import subprocess
import sys

SCRIPT = r"""
import types
from quantum_ovs.cmd import server
calls = []
server.service.build = lambda conf, migrate: calls.append("build") or (None, None, lambda e, s: [])
server.service.freeze_startup = lambda: calls.append("freeze")
server.eventlet.wsgi.server = lambda *a, **kw: calls.append("serve")
conf = types.SimpleNamespace(max_long_polls=10, max_connections=10,
                             max_connections_per_client=0, client_header_timeout=5,
                             client_socket_timeout=5,
                             oslo_middleware=types.SimpleNamespace(max_request_body_size=1))
server.serve(conf, object())
print(",".join(calls))
"""


def test_start_up_is_frozen_before_serving():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "build,freeze,serve"
