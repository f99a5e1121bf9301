"""Flow-mod encoding benchmark: what a cold start pays to turn its flow
table into bytes.

The flows of the compiler's 10k-port view (quantum_ovs.compiler.synth
make_large_view: 1,000 local ports in 100 networks, 10,000 remote ports on
100 hosts, 50 groups of 5 rules), encoded as add flow-mods twice per run,
cold each time (no memo left from the run before):

    encode_flow_us_osken   every flow-mod built by os-ken (the reference,
                           agent.openflow.encode.flow_mod_bytes_osken)
    encode_flow_us         agent.openflow.encode.flow_mod_bytes (the
                           memoizing encoder of agent/openflow/fastencode.py;
                           the whole-flow cache cleared)
    encode_speedup         the ratio, same run

Medians of ``--runs``; human lines on stderr, one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

# the repository first: bench/agent.py would shadow the agent package
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.openflow import encode as E  # noqa: E402
from quantum_ovs.compiler.engine import compile_flows  # noqa: E402
from quantum_ovs.compiler.synth import make_large_view  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cold_fast(flows):
    E.flow_mod_bytes.cache_clear()
    E.FAST = E.new_fast_encoder()
    t0 = time.perf_counter()
    for f in flows:
        E.flow_mod_bytes(f)
    return time.perf_counter() - t0


def osken(flows):
    t0 = time.perf_counter()
    for f in flows:
        E.flow_mod_bytes_osken(f)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    scale = 10 if a.quick else 1
    view = make_large_view(local_ports=1000 // scale, networks=100 // scale,
                           remote_hosts=100 // scale, remote_ports=10000 // scale)
    flows = sorted(compile_flows(view), key=lambda f: (f.table, f.priority, str(f)))
    n = len(flows)
    log(f"{n} flows")
    slow = [osken(flows) for _ in range(a.runs)]
    fast = [cold_fast(flows) for _ in range(a.runs)]
    s, f = statistics.median(slow), statistics.median(fast)
    log(f"os-ken:   {s:.2f} s ({s / n * 1e6:.1f} us/flow)")
    log(f"memoized: {f:.2f} s ({f / n * 1e6:.1f} us/flow), cold")
    print(json.dumps({"flows": n, "encode_flow_us_osken": round(s / n * 1e6, 1),
                      "encode_flow_us": round(f / n * 1e6, 1),
                      "encode_speedup": round(s / f, 1)}))


if __name__ == "__main__":
    main()
