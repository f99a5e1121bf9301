"""No quantum-ovs-server process outlives what started it.

- the server's forked workers end when the server's parent is SIGKILLed;
- a script that started a ServerProcess stops it when it exits, when it is
  sent SIGTERM (as ``timeout`` does; its finally blocks run) and even when
  it is SIGKILLed;
- a pytest run sent SIGTERM ends (it does not go on with the next test)
  and tears its fixtures down.
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from quantum_ovs.testing.procs import alive as _alive, children as _children
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


def test_workers_end_when_the_server_parent_is_killed(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path}/w.sqlite", workers=2).start()
    try:
        parent = server.proc.pid
        deadline = time.monotonic() + 10
        while len(workers := _children(parent)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, workers
        os.kill(parent, signal.SIGKILL)
        server.proc.wait(5)
        assert _wait_gone(workers) == []
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
