"""`make demo ARGS=--once` works end to end."""

import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_once():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--once",
                          "--port", str(_free_port())],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "demo OK" in out.stdout
    assert out.stdout.count("instance       vm-") == 4
    assert "vm-a -> vm-b ok" in out.stdout and "cannot reach vm-b" in out.stdout
    assert "routed ping    vm-a" in out.stdout and "vm-d -> vm-a ok" in out.stdout
    assert "cannot reach vm-d" in out.stdout
    assert "no port left in the API or on br-int" in out.stdout
    assert "floating IP    internet -> 203.0.113." in out.stdout  # DNAT: the internet in
    assert "SNAT           vm-d" in out.stdout  # and vm-d out, without a floating IP
    assert out.stdout.count("metadata       vm-") == 4  # each its own meta_data.json
