"""quantum-ovs-conformance URL [--token T | --noauth-project P]: run the
behavioural checks of the Networking API v2.0 (quantum_ovs.testing.conformance)
against any Neutron-compatible server; prints a table per resource and
``N passed, N failed, N skipped``; exit status 1 when a check failed."""

import argparse
import sys
import time

from quantum_ovs.testing import conformance


def main(argv=None):
    p = argparse.ArgumentParser(prog="quantum-ovs-conformance",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="the API endpoint, e.g. http://127.0.0.1:9696")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--token", help="a Keystone token (X-Auth-Token)")
    who.add_argument("--noauth-project", metavar="P",
                     help="act as project P through noauth headers (X-Project-Id); "
                          "P-other is the second project of the tenancy checks")
    p.add_argument("--timeout", type=float, default=30, help="seconds per request")
    args = p.parse_args(argv)
    if not args.token and not args.noauth_project:
        args.noauth_project = "conformance"
    started = time.monotonic()
    results = conformance.run(args.url, token=args.token,
                              noauth_project=args.noauth_project, timeout=args.timeout)
    print(f"quantum-ovs-conformance against {args.url} "
          f"({time.monotonic() - started:.1f} s)")
    print(conformance.table(results))
    return 1 if any(r.outcome == conformance.FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
