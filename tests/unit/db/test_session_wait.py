"""The psycopg2 wait callback's readiness check (quantum_ovs.db.session)."""

import os
import resource
import socket

import pytest

from quantum_ovs.db import session


def test_ready_takes_descriptors_above_select_s_limit():
    """quantum-ovs-agent-api holds a socket per waiting agent: its database
    connections get descriptors above 1023, which select refuses."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= 1500:
        pytest.skip("needs more than 1,500 open files")
    a, b = socket.socketpair()
    high = os.dup2(a.fileno(), 1500)
    try:
        assert session._ready(high, True, 1.0)  # writable
        assert not session._ready(high, False, 0.01)  # nothing to read yet
        b.send(b"x")
        assert session._ready(high, False, 1.0)
    finally:
        os.close(high)
        a.close()
        b.close()
