"""No quantum-ovs-server process outlives what started it.

- the server's forked workers end when the server's parent is SIGKILLed;
- each worker waits on an event loop (epoll instance) of its own, never
  the parent's inherited one shared with its siblings;
- a script that started a ServerProcess stops it when it exits, when it is
  sent SIGTERM (as ``timeout`` does; its finally blocks run) and even when
  it is SIGKILLed;
- a pytest run sent SIGTERM ends (it does not go on with the next test)
  and tears its fixtures down.
"""

import contextlib
import ctypes
import platform
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from quantum_ovs.testing.procs import alive as _alive, children as _children
from quantum_ovs.testing.client import Client
from quantum_ovs.testing.server import ServerProcess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def _wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _kill_group(pgid):
    """Clean up after a failed test: the server is its session's leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _workers(parent, n, timeout=10):
    """The ``n`` forked workers of the server ``parent``."""
    deadline = time.monotonic() + timeout
    while len(workers := _children(parent)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == n, workers
    return workers


def test_workers_end_when_the_server_parent_is_killed(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path}/w.sqlite", workers=2).start()
    try:
        parent = server.proc.pid
        workers = _workers(parent, 2)
        os.kill(parent, signal.SIGKILL)
        server.proc.wait(5)
        assert _wait_gone(workers) == []
    finally:
        server.stop()


KCMP_FILE = 0
SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())


def _epolls(pid):
    """{fd: the descriptors registered in it} for each epoll fd of ``pid``."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if "eventpoll" not in os.readlink(f"/proc/{pid}/fd/{fd}"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                out[int(fd)] = {int(line.split()[1]) for line in f if line.startswith("tfd:")}
        except OSError:
            continue
    return out


def _same_file(pid1, fd1, pid2, fd2):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(SYS_KCMP, pid1, pid2, KCMP_FILE, fd1, fd2)
    if r < 0:
        pytest.skip(f"kcmp: {os.strerror(ctypes.get_errno())}")
    return r == 0


@pytest.mark.skipif(SYS_KCMP is None, reason="kcmp syscall number unknown here")
def test_each_worker_has_an_event_loop_of_its_own(tmp_path):
    """One epoll instance inherited by every worker (eventlet makes its
    hub at monkey_patch(), before the fork) wakes one worker for
    another's socket: that worker's request then waits for its next
    timer, up to a minute (a client timed out so in CI)."""
    server = ServerProcess(f"sqlite:///{tmp_path}/w.sqlite", workers=3).start()
    try:
        parent = server.proc.pid
        workers = _workers(parent, 3)
        for _ in range(6):  # answered by any of the workers: each is serving
            assert Client(server.port).call("GET", "/v2.0/networks")[0] == 200
        listen = {int(fd) for fd in os.listdir(f"/proc/{parent}/fd")
                  if os.readlink(f"/proc/{parent}/fd/{fd}").startswith("socket:")}
        loops = {}
        for pid in workers:
            # the loop a worker serves from has the listening socket in it
            serving = [fd for fd, tfds in _epolls(pid).items() if tfds & listen]
            assert serving, f"worker {pid} has no event loop with the listening socket"
            loops[pid] = serving
        others = [(p, fd) for p in [parent] + workers for fd in _epolls(p)]
        for pid, fds in loops.items():
            for fd in fds:
                shared = [(p, ofd) for p, ofd in others
                          if p != pid and _same_file(pid, fd, p, ofd)]
                assert not shared, f"worker {pid}'s event loop (fd {fd}) is shared with {shared}"
    finally:
        server.stop()


STARTER = textwrap.dedent("""\
    import sys, time
    sys.path.insert(0, {repo!r})
    from quantum_ovs.testing.server import ServerProcess
    server = ServerProcess(sys.argv[1]).start()
    try:
        print(server.proc.pid, flush=True)
        if sys.argv[2] == "wait":
            time.sleep(120)
    finally:
        print("finally", flush=True)
    # "exit": leaves without stop(); atexit has to stop it
""")


def _starter(tmp_path, mode):
    script = tmp_path / "starter.py"
    script.write_text(STARTER.format(repo=REPO))
    proc = subprocess.Popen([sys.executable, str(script), f"sqlite:///{tmp_path}/s.sqlite",
                             mode], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        pytest.fail(f"starter failed: {line!r}")
    return proc, int(line)


@pytest.mark.parametrize("mode", ["exit", "sigterm", "sigkill"])
def test_a_script_does_not_leave_its_server_behind(tmp_path, mode):
    proc, server_pid = _starter(tmp_path, "exit" if mode == "exit" else "wait")
    try:
        if mode != "exit":  # ("exit" may have stopped it already; start() saw it answer)
            assert _alive(server_pid)
        if mode == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif mode == "sigkill":
            proc.kill()
        out, _ = proc.communicate(timeout=30)
        if mode == "sigterm":
            assert proc.returncode == 128 + signal.SIGTERM
            assert "finally" in out  # SystemExit, not a silent death
        elif mode == "exit":
            assert proc.returncode == 0
        assert _wait_gone([server_pid]) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_group(server_pid)


INNER_TEST = textwrap.dedent("""\
    import sys, time
    sys.path.insert(0, {repo!r})
    import pytest
    from quantum_ovs.testing.server import ServerProcess

    @pytest.fixture
    def server(tmp_path):
        with ServerProcess(f"sqlite:///{{tmp_path}}/p.sqlite") as s:
            yield s
        print("teardown", flush=True)

    def test_waits(server):
        print(server.proc.pid, flush=True)
        time.sleep(120)

    def test_after():
        print("next test ran", flush=True)
""")


def test_sigterm_ends_a_pytest_run_and_tears_down(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TEST.format(repo=REPO))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider",
                             "test_inner.py"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    server_pid = None
    try:
        for line in proc.stdout:
            if line.strip().isdigit():
                server_pid = int(line)
                break
        assert server_pid is not None, proc.stdout.read()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM, out
        assert "teardown" in out, out
        assert "next test ran" not in out, out
        assert _wait_gone([server_pid]) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server_pid is not None:
            _kill_group(server_pid)
