"""Before/after: the benchmarks at two git revisions, on this machine, in
one run.

    python bench/compare.py [--base 033c174] [--head HEAD] [--rounds 1]
                            [--only api,compile,agent,fanout] [--smoke]

Each revision is checked out with ``git worktree add`` into a temporary
directory and its own code runs there (PYTHONPATH is that directory, so
the shared virtualenv's editable install does not decide).  For each
benchmark the two revisions run one after the other (``--rounds`` N
alternates base, head N times and keeps the median of each figure), so
both see the same machine at about the same time:

    bench/api.py             (full counts)
    bench/compile.py         (full counts)
    bench/agent.py --quick
    bench/fanout.py --quick

``--smoke`` gives every benchmark ``--quick`` (a check that the script
works, not figures to quote).  Each benchmark's own output goes to a log
in the scratch directory (printed at the end with ``--keep``).  Prints
every numeric figure of each benchmark's JSON line side by side with the
change in percent, and ends with one JSON line:

    {"bench": "compare", "base": <sha>, "head": <sha>,
     "results": {"api": {"creates_per_s_1": [base, head], ...}, ...},
     "failed": {...}}
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (script, arguments of a normal comparison)
BENCHES = {
    "api": ("bench/api.py", []),
    "compile": ("bench/compile.py", []),
    "agent": ("bench/agent.py", ["--quick"]),
    "fanout": ("bench/fanout.py", ["--quick"]),
}


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()


def checkout(rev, into):
    """A detached worktree of ``rev`` at ``into``; returns the full sha."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    git("worktree", "add", "--detach", "--force", into, sha)
    return sha


def last_json(text):
    """The last line of ``text`` that is a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_bench(tree, script, args, log_path, timeout):
    """Run one benchmark of the tree at ``tree``; its figures (the JSON
    line) or None when it failed."""
    env = dict(os.environ, PYTHONPATH=tree, PYTHONDONTWRITEBYTECODE="1")
    with open(log_path, "a") as log:
        log.write(f"\n=== {tree}: {script} {' '.join(args)}\n")
        log.flush()
        try:
            proc = subprocess.run([sys.executable, script, *args], cwd=tree, env=env,
                                  stdout=subprocess.PIPE, stderr=log, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            log.write(f"!! timed out after {timeout}s\n")
            return None
        log.write(proc.stdout)
    if proc.returncode != 0:
        return None
    return last_json(proc.stdout)


def numbers(figures):
    """The numeric figures of a JSON line (booleans and nested counts left
    out: they describe the run rather than measure it)."""
    return {k: v for k, v in (figures or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def merge(runs):
    """The median of each figure over the runs that produced it."""
    keys = []
    for r in runs:
        keys += [k for k in numbers(r) if k not in keys]
    out = {}
    for k in keys:
        vals = [numbers(r)[k] for r in runs if k in numbers(r)]
        out[k] = statistics.median(vals) if vals else None
    return out


def change(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or a == 0:
        return ""
    return f"{(b - a) / abs(a) * 100:+.1f}%"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="033c174", help="the revision before (default 033c174)")
    p.add_argument("--head", default="HEAD", help="the revision after (default HEAD)")
    p.add_argument("--only", default=",".join(BENCHES),
                   help=f"benchmarks to run, of {','.join(BENCHES)}")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate base and head this many times (medians)")
    p.add_argument("--smoke", action="store_true",
                   help="every benchmark with --quick (proves the script, not the figures)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark run")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory and logs")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHES)}")

    tmp = tempfile.mkdtemp(prefix="qovs-compare-")
    trees = {"base": os.path.join(tmp, "base"), "head": os.path.join(tmp, "head")}
    log_path = os.path.join(tmp, "bench.log")
    shas = {}
    results, failed = {}, {}
    try:
        shas["base"] = checkout(args.base, trees["base"])
        shas["head"] = checkout(args.head, trees["head"])
        print(f"bench/compare.py: base {args.base} = {shas['base'][:12]}, "
              f"head {args.head} = {shas['head'][:12]}; {args.rounds} round(s)"
              f"{', smoke (--quick everywhere)' if args.smoke else ''}; logs {log_path}",
              flush=True)
        for name in names:
            script, bench_args = BENCHES[name]
            if args.smoke and "--quick" not in bench_args:
                bench_args = [*bench_args, "--quick"]
            runs = {"base": [], "head": []}
            for _ in range(args.rounds):
                for side in ("base", "head"):
                    if not os.path.exists(os.path.join(trees[side], script)):
                        failed.setdefault(name, []).append(f"{side}: no {script}")
                        continue
                    got = run_bench(trees[side], script, bench_args, log_path, args.timeout)
                    if got is None:
                        failed.setdefault(name, []).append(f"{side}: failed (see log)")
                    else:
                        runs[side].append(got)
            base, head = merge(runs["base"]), merge(runs["head"])
            results[name] = {k: [base.get(k), head.get(k)]
                             for k in [*base, *[k for k in head if k not in base]]}
            print(f"\n{name} ({script} {' '.join(bench_args)})".rstrip(), flush=True)
            print(f"  {'figure':34s} {'base':>12s} {'head':>12s} {'change':>8s}")
            for k, (a, b) in results[name].items():
                print(f"  {k:34s} {'-' if a is None else a:>12} {'-' if b is None else b:>12} "
                      f"{change(a, b):>8s}", flush=True)
            for problem in failed.get(name, []):
                print(f"  !! {problem}", flush=True)
    finally:
        for tree in trees.values():
            if os.path.exists(tree):
                subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.keep:
            print(f"\nlogs: {log_path}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "compare", "base": shas.get("base"), "head": shas.get("head"),
                      "smoke": args.smoke, "rounds": args.rounds, "results": results,
                      "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
