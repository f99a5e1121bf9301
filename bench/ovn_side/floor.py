"""A lower bound for phase (b) of the side-by-side benchmark (issue 17).

Phase (b) times an agent process started on a populated host until all its
ports are up.  Whatever the agent's shape, it cannot install its flows
before three things have happened one after the other: the interpreter has
started, the server has answered the first poll with the host's view, and
the flows of that view have been computed and encoded (one core: the
compiler is pure Python).  This script measures the first and the third in
fresh processes, and takes the second from a side-by-side results file
(``view_requested`` -> ``view_answered`` in our (b) timeline):

    interp_ms            ``python -c pass`` (median of --runs)
    imports_ms           a fresh process importing only the compiler and
                         the flow encoder, as the agent does (the collector
                         paused, the code cache on; median)
    compile_encode_ms    the same process compiling and encoding the
                         configuration's view, cold (median): 10 networks
                         x 100 ports, 100 of them local, one group
                         admitting itself (bench/ovn_side "10 100 100
                         global")
    view_rtt_ms          the server's answer to the first poll, from
                         --results (else null)
    floor_b_ms           interp + view_rtt + compile_encode: no import,
                         no decode, no OVSDB, no OpenFlow, no commit
    ovn_b_ms, bundle_ms  OVN's (b) and ovs-ofctl --bundle of the same
                         run (--results)
    target_b_ms          the issue's (b) targets for it: the smaller of
                         0.2 x ovn_b_ms and 2 x bundle_ms

It ends with one JSON line of those keys.

usage: python bench/ovn_side/floor.py [--runs 7] [--results /tmp/ovn-side/results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIG = "10x100-b100-global"

# (as quantum-ovs-agent starts: the collector paused, the dataclasses'
# methods from the code cache, agent/main.py)
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from agent import startup
startup.pause_gc()
from quantum_ovs import codecache
codecache.enable()
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.model import Rule, SecurityGroup
from agent.openflow import encode as E
t1 = time.perf_counter()
codecache.save()
from quantum_ovs.compiler import synth
# 10 networks x (10 local + 90 remote) ports; sg1: IPv4 egress, IPv4
# ingress from itself (as bench/ovn_side/ours.py populates it)
v = synth.make_host_view(networks=10, ports_per_net=10, remote_hosts=1,
                         remote_ports_per_net=90)
members = frozenset(ip for p in v.ports for ip in p.ips)
g = SecurityGroup("sg-default", (
    Rule("eg", "sg-default", "egress", "IPv4"),
    Rule("in", "sg-default", "ingress", "IPv4", remote_group_id="sg-default")), members)
v = v.replace(security_groups=(g,))
t2 = time.perf_counter()
e = Engine(v.host, isolate=True)
e.load_model(v)
flows = [f for batch in e.load_flows() for f in batch]
enc = E.new_fast_encoder()
wire = [enc.add(f) for f in flows]
t3 = time.perf_counter()
print(json.dumps({"imports_ms": (t1 - t0) * 1000, "compile_encode_ms": (t3 - t2) * 1000,
                  "flows": len(flows), "bytes": sum(map(len, wire))}))
"""


def _median(xs):
    return round(statistics.median(xs), 1)


def _side_by_side(path: str) -> dict:
    """OVN's (b) wall, the bundle baseline and our view round trip for
    CONFIG, from the newest lines of a results file."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("config") != CONFIG:
                continue
            side, phase = r.get("system"), r.get("phase")
            if side == "ovn" and phase == "b" and r.get("wall_s"):
                out["ovn_b_ms"] = r["wall_s"] * 1000
            elif side == "ours" and phase == "bundle" and r.get("wall_s"):
                out["bundle_ms"] = r["wall_s"] * 1000
            elif side == "ours" and phase == "b":
                tl = r.get("timeline") or {}
                if "view_requested" in tl and "view_answered" in tl:
                    out["view_rtt_ms"] = (tl["view_answered"] - tl["view_requested"]) * 1000
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--results", default="/tmp/ovn-side/results.jsonl")
    ap.add_argument("--quick", action="store_true", help="3 runs")
    a = ap.parse_args(argv)
    runs = 3 if a.quick else a.runs
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    interp = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        interp.append((time.perf_counter() - t) * 1000)
    child = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", CHILD], check=True, env=env,
                              capture_output=True, text=True)
        child.append(json.loads(done.stdout))
    out = {"interp_ms": _median(interp),
           "imports_ms": _median([c["imports_ms"] for c in child]),
           "compile_encode_ms": _median([c["compile_encode_ms"] for c in child]),
           "flows": child[0]["flows"]}
    side = _side_by_side(a.results)
    out["view_rtt_ms"] = round(side["view_rtt_ms"], 1) if "view_rtt_ms" in side else None
    out["floor_b_ms"] = round(out["interp_ms"] + (out["view_rtt_ms"] or 0)
                              + out["compile_encode_ms"], 1)
    out["ovn_b_ms"] = round(side["ovn_b_ms"], 1) if "ovn_b_ms" in side else None
    out["bundle_ms"] = round(side["bundle_ms"], 1) if "bundle_ms" in side else None
    targets = [t for t in ((out["ovn_b_ms"] or 0) * 0.2 or None,
                           (out["bundle_ms"] or 0) * 2 or None) if t]
    out["target_b_ms"] = round(min(targets), 1) if targets else None
    print(f"interpreter start: median {out['interp_ms']} ms ({runs} runs)")
    print(f"compiler + encoder imports: median {out['imports_ms']} ms")
    print(f"cold compile + encode of {out['flows']} flows: median "
          f"{out['compile_encode_ms']} ms")
    print(f"server's answer to the first poll ({a.results}): {out['view_rtt_ms']} ms")
    print(f"lower bound of (b): {out['floor_b_ms']} ms; the issue's target for it: "
          f"{out['target_b_ms']} ms (OVN (b) {out['ovn_b_ms']} ms, bundle "
          f"{out['bundle_ms']} ms)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
