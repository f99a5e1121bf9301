"""Processes seen through /proc (Linux): for tests and benchmarks that
follow the processes they start, by PID."""

import os
import signal
import subprocess


def stat_fields(pid):
    """/proc/<pid>/stat after the command name: state, ppid, ... (field 3
    of proc(5) is index 0 here); raises OSError when the process is gone."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def alive(pid):
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def children(ppid):
    """The live child processes of ``ppid``."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = stat_fields(name)
        except (OSError, IndexError):
            continue
        if int(fields[1]) == ppid and fields[0] not in ("Z", "X"):
            pids.append(int(name))
    return pids


def stop_group(proc, timeout=10):
    """Stop a process we started with ``start_new_session=True``: SIGTERM,
    SIGKILL after ``timeout`` s, then SIGKILL to its whole process group
    (its own children, e.g. a server's workers), by PID."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
