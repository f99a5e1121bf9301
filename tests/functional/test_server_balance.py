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


def _inodes(conns):
    """The socket inodes of the server's ends of ``conns`` (from
    /proc/net/tcp: local port the server's, remote port the client's)."""
    ports = {c.getsockname()[1] for c in conns}
    server = {c.getpeername()[1] for c in conns}
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.split(":")[1], 16) in server and int(remote.split(":")[1], 16) in ports:
                found.add(inode)
    return found


def _held(pid, inodes):
    """How many of the sockets ``inodes`` the process ``pid`` holds."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        n += link.startswith("socket:[") and link[8:-1] in inodes
    return n


def _connect(port, n):
    conns = []
    for _ in range(n):
        conns.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.01)
    return conns


def _settled(pids, conns, timeout=10):
    """Per worker, how many of ``conns`` it has taken, once all are taken
    (or at the timeout).  Only these connections are counted: a socket the
    server opened or closed for anything else (the start-up probe's, ...)
    does not move the figures."""
    want = len(conns)
    deadline = time.monotonic() + timeout
    while True:
        inodes = _inodes(conns)
        got = {p: _held(p, inodes) for p in pids}
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
        for p in others:
            os.kill(p, signal.SIGSTOP)
        try:
            conns += _connect(server.port, 30)
            got = _settled(workers, conns)
        finally:
            for p in others:
                os.kill(p, signal.SIGCONT)
        assert got[busy] == 30, got
        time.sleep(0.3)
        more = _connect(server.port, 60)
        conns += more
        got = _settled(workers, more)
        assert sum(got.values()) == 60, got
        # Without the balance: about a third each (20).  The busy worker
        # defers a connection for a moment only, so on a loaded machine it
        # may still take a few when no other worker was quick enough.
        assert got[busy] <= 10, got
        assert all(got[p] >= 20 for p in others), got
    finally:
        for c in conns:
            c.close()
        server.stop()
