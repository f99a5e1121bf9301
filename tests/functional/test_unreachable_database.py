"""A database that cannot be reached when a process starts (PostgreSQL
not up: libpq's 'connection to server at ... failed: Connection refused',
which oslo.db's filters do not know): every entry point waits [database]
max_retries more attempts, then ends with one error line and exit status
1, never a traceback."""

import socket
import subprocess
import sys

import pytest


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # (closed again: nothing listens there)


@pytest.mark.parametrize("module,args", [
    ("quantum_ovs.cmd.server", []),
    ("quantum_ovs.cmd.agent_api", []),
    ("quantum_ovs.cmd.db_manage", ["upgrade"]),
    ("quantum_ovs.cmd.agent_credential", ["list"]),
])
def test_an_unreachable_database_is_waited_for_then_one_error_line(
        tmp_path, closed_port, module, args):
    conf = tmp_path / "q.conf"
    conf.write_text("[DEFAULT]\nbind_port = 0\n[agent_api]\nbind_port = 0\n"
                    f"[database]\nconnection = postgresql+psycopg2://u:p@127.0.0.1:{closed_port}/x\n"
                    "max_retries = 1\nretry_interval = 0\n")
    out = subprocess.run([sys.executable, "-m", module, "--config-file", str(conf), *args],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "attempt 2 of 2" in text  # (waited: max_retries more attempts)
    assert "cannot be reached" in text, text[-3000:]
