"""quantum_ovs/testing/postgres.py: a test that pauses the server (SIGSTOP,
as the fault tests do) and then stops it leaves no process behind."""

import time

from quantum_ovs.testing.postgres import PostgresServer
from quantum_ovs.testing.procs import alive


def test_stop_of_a_paused_server_leaves_no_process():
    pg = PostgresServer().start()
    try:
        conn = pg.connect(pg.default_db)  # a backend of our own, paused too
        pids = pg._processes()
        assert len(pids) > 2, pids  # the postmaster and its children
        pg.pause()
        t0 = time.monotonic()
        pg.stop(timeout=10)
        took = time.monotonic() - t0
        conn.close()
    finally:
        pg.stop()
    left = [p for p in pids if alive(p)]
    assert not left, f"processes of the stopped server still there: {left}"
    # How long it took is printed, not asserted (no timed assertions in
    # tests): about 1 s on a quiet machine; the old code waited out 10 s
    # and then left six stopped backends behind.
    print(f"stop of a paused server: {took:.1f} s")
