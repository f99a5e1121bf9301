"""Helpers of the side-by-side benchmark: CPU-seconds from /proc, peak RSS,
topology naming (identical to the OVN harness's topo.py), result files.

A copy of ../shared/peers/ovn-side/common.py (the OVN side, ovn.py, keeps
using its own): both sides must name the topology and write the results
the same way."""

import json
import os
import time

from quantum_ovs.testing.procs import stat_fields

HZ = os.sysconf("SC_CLK_TCK")
# a phase that takes longer is stopped and recorded as "> 600 s"
CAP_S = float(os.environ.get("CAP_S", "600"))


# ---------------------------------------------------------------- topology (= topo.py)
def mac(i, j):
    return "0a:00:%02x:%02x:%02x:%02x" % (i >> 8, i & 255, j >> 8, j & 255)


def ip(i, j):
    return "10.%d.%d.%d" % (i >> 8, i & 255, j + 1)


def lsp(i, j):
    return "ls%d-p%d" % (i, j)


def local_set(L, P, B):
    """The first B/L ports of every switch (spread evenly)."""
    per = B // L
    extra = B % L
    out = []
    for i in range(L):
        k = per + (1 if i < extra else 0)
        out += [(i, j) for j in range(min(k, P))]
    return out


def added_port(k, L, P):
    """bench.sh's (c1) port #k: switch k % L, index P + k."""
    i = k % L
    j = P + k
    return i, j, "ls%d-x%d" % (i, k), mac(i, j), "10.%d.%d.%d" % (i >> 8, i & 255, j + 1)


# ---------------------------------------------------------------- /proc
def ticks(pid):
    """utime+stime of pid and of its reaped children (cutime+cstime)."""
    try:
        f = stat_fields(pid)
        return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    except (OSError, IndexError, ValueError):
        return None


def hwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


class Meter:
    """CPU-seconds per named process, across restarts: ``procs`` maps a name
    to a function returning the current pid (or None).  poll() reads every
    process; call it at phase boundaries and right before killing one (a
    killed process keeps its last reading, so totals stay monotonic)."""

    def __init__(self, procs):
        self.procs = procs
        self.last = {}  # (name, pid) -> ticks

    def poll(self):
        for name, fn in self.procs.items():
            pid = fn()
            if pid is None:
                continue
            t = ticks(pid)
            if t is not None:
                self.last[(name, pid)] = t

    def totals(self):
        self.poll()
        out = {name: 0 for name in self.procs}
        for (name, _pid), t in self.last.items():
            out[name] += t
        return out

    @staticmethod
    def delta(a, b):
        return {k: round((b[k] - a.get(k, 0)) / HZ, 2) for k in b}

    def peaks(self):
        out = {}
        for name, fn in self.procs.items():
            pid = fn()
            if pid is not None:
                out[name] = hwm_mb(pid)
        return out


class Results:
    """Phase results as JSON lines (one object per phase) plus a log."""

    def __init__(self, path, system, config):
        self.path = path
        self.system = system
        self.config = config
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "a")

    def log(self, *a):
        line = " ".join(str(x) for x in a)
        print(f"[{self.system} {self.config}] {line}", flush=True)

    def put(self, phase, **kw):
        rec = {"system": self.system, "config": self.config, "phase": phase,
               "t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        rec.update(kw)
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        self.log(phase, json.dumps(kw))
        return rec
