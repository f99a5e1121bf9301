"""Real nova boots: 20 servers in one API call, from the call to ACTIVE.

OpenStack's own nova 34 on quantum-ovs (the stack of
tests/fixtures/nova.py: RabbitMQ, Keystone, placement, nova-api,
conductor, scheduler, two nova-computes, each host with its private Open
vSwitch and our agent).  The benchmarks never import the tests
(.importlinter), so this runs the measuring test
(tests/integration/test_real_nova.py::test_twenty_servers_at_once) with
pytest and reads the figures it writes.  Prints them and ends with one
JSON line:

    nova_boot_s          median seconds from POST /servers (min_count =
                         max_count = N) until each server is ACTIVE, polled
                         every 0.5 s (nova_boot_p95_s, nova_boot_max_s)
    nova_stack_setup_s   the stack's start, by part
    nova_stack_rss_mib   the resident memory of its processes

Needs root, Open vSwitch, rabbitmq-server and the nova virtualenv
(tools/setup-nova.sh).  Not run by ``make bench`` (minutes of setup): run
it by hand, ``.venv/bin/python bench/nova_boot.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="accepted; the run is the same")
    p.parse_args(argv)
    fd, out = tempfile.mkstemp(prefix="qovs-nova-bench-", suffix=".json")
    os.close(fd)
    env = dict(os.environ, QOVS_NOVA_TESTS="1", QOVS_NOVA_BENCH_JSON=out,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "tests/integration/test_real_nova.py", "-k",
                          "test_twenty_servers_at_once"], cwd=ROOT, env=env)
    try:
        with open(out) as f:
            line = json.load(f)
    except (OSError, ValueError):
        line = None
    finally:
        os.unlink(out)
    if res.returncode != 0 or not line:
        print("bench/nova_boot.py: the measuring test failed", file=sys.stderr)
        return 1
    print(f"nova_boot_s median {line['nova_boot_s']} p95 {line['nova_boot_p95_s']} "
          f"max {line['nova_boot_max_s']} ({line['servers']} servers)")
    print(json.dumps({"bench": "nova_boot", **line}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
