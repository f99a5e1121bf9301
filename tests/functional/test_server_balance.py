"""quantum-ovs-server's workers share the connections (cmd/server.py
_Shares, _Balanced): a worker holding more than the fewest (plus a
slack) leaves a new connection to the others.  Here one worker is made
to hold 30 (the others stopped while they came); of 30 more, it takes
almost none."""

import os
import signal
import socket
import sys
import time

import pytest

from quantum_ovs.testing.procs import children
from quantum_ovs.testing.server import ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def _sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def _connect(port, n):
    conns = []
    for _ in range(n):
        conns.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.01)
    return conns


def _settled(pids, before, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = {p: _sockets(p) - before[p] for p in pids}
        if sum(got.values()) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_worker_holding_more_than_its_share_leaves_new_connections(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path}/b.sqlite", workers=3,
                           extra_conf="max_connections_per_client = 0\n").start()
    conns = []
    try:
        deadline = time.monotonic() + 10
        while len(workers := children(server.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 3
        busy, *others = workers
        before = {p: _sockets(p) for p in workers}
        for p in others:
            os.kill(p, signal.SIGSTOP)
        try:
            conns += _connect(server.port, 30)
            got = _settled(workers, before, 30)
        finally:
            for p in others:
                os.kill(p, signal.SIGCONT)
        assert got[busy] == 30, got
        time.sleep(0.3)
        before = {p: _sockets(p) for p in workers}
        conns += _connect(server.port, 30)
        got = _settled(workers, before, 30)
        assert sum(got.values()) == 30, got
        assert got[busy] <= 3, got  # without the balance: about a third
        assert all(got[p] >= 10 for p in others), got
    finally:
        for c in conns:
            c.close()
        server.stop()
