"""schemathesis against a real server process, from the description it
serves (GET /openapi.json): every operation (the underscore spellings of
the security group paths aside) and stateful sequences along the links
(network -> subnet -> port, each create -> its show/update/delete/tags).

Checks: not a server error, status code, content type and response body
as described.  Seeded and bounded (QOVS_SCHEMATHESIS_SECONDS on SQLite,
half of it on PostgreSQL, QOVS_SCHEMATHESIS_EXAMPLES per operation); the
summary is printed (run with -s to see it).
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from quantum_ovs.testing.server import ServerProcess

SECONDS = int(os.environ.get("QOVS_SCHEMATHESIS_SECONDS", 50))
EXAMPLES = int(os.environ.get("QOVS_SCHEMATHESIS_EXAMPLES", 15))
SEED = int(os.environ.get("QOVS_SCHEMATHESIS_SEED", 20261204))
# The stateful run keeps to the resources' own paths (the links join them).
STATEFUL_PATHS = r"^/v2\.0/(networks|subnets|ports|routers|security-groups|security-group-rules)"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def _schemathesis():
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    if not os.path.exists(exe):
        exe = shutil.which("schemathesis")
    if exe is None:
        pytest.skip("schemathesis is not installed (test-requirements.txt)")
    return exe


def run_schemathesis(url, workdir, project="st-project", roles="admin", seconds=SECONDS):
    """(exit status, console output, [JSON reports]) of two bounded runs:
    every operation (examples, coverage, fuzzing; valid and invalid
    data), then stateful sequences along the links with valid data."""
    runs = [("operations", ["--phases", "examples,coverage,fuzzing",
                            "--max-examples", str(EXAMPLES), "--max-time", str(seconds)]),
            ("stateful", ["--phases", "stateful", "--mode", "positive",
                          "--max-time", str(max(seconds // 2, 10)),
                          "--include-path-regex", STATEFUL_PATHS])]
    rc, out, reports = 0, "", []
    for name, args in runs:
        report = os.path.join(workdir, f"schemathesis-{name}.json")
        cmd = [_schemathesis(), "run", f"{url}/openapi.json", "--checks", CHECKS,
               "--seed", str(SEED), "--workers", "1", "--exclude-deprecated", "--no-shrink",
               "--request-timeout", "30", "--suppress-health-check", "all",
               "-H", f"X-Project-Id: {project}", "-H", f"X-Roles: {roles}",
               "--report", "json", "--report-json-path", report,
               "--output-truncate", "true", *args]
        env = dict(os.environ, NO_COLOR="1")
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=seconds * 4 + 120)
        rc = rc or proc.returncode
        out += f"\n--- {name} ---\n" + proc.stdout + proc.stderr
        if os.path.exists(report):
            with open(report) as f:
                reports.append((name, json.load(f)))
    return rc, out, reports


def _summary(out):
    """The lines of the console summaries worth printing."""
    keep, on = [], False
    for line in out.splitlines():
        if line.startswith("--- "):
            keep.append(line)
            on = False
        if "API Links:" in line or "Scenarios:" in line:
            keep.append(line)
        if "SUMMARY" in line:
            on = True
        if on:
            keep.append(line)
    return "\n".join(keep) or out[-3000:]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schemathesis_finds_nothing(request, tmp_path, capsys, backend):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/st.sqlite"
    else:
        pg = request.getfixturevalue("postgres_server")
        name = "st" + uuid.uuid4().hex[:10]
        url = pg.create_database(name)
        request.addfinalizer(lambda: pg.drop_database(name))
    server = ServerProcess(url, log_path=str(tmp_path / "server.log"))
    server.start(timeout=60)
    try:
        # PostgreSQL for half as long: what differs there is the storage
        # under the same API (the other backend-specific suites run on it)
        rc, out, reports = run_schemathesis(
            server.url, str(tmp_path), seconds=SECONDS if backend == "sqlite" else SECONDS // 2)
    finally:
        server.stop()
    with capsys.disabled():  # the report is printed in every run
        _print_report(backend, out, reports)
    assert rc == 0, _summary(out) if "FAILURES" not in out else \
        out[out.index("FAILURES"):][:20000]


def _print_report(backend, out, reports):
    print(f"\nschemathesis on {backend} (seed {SEED}):\n{_summary(out)}")
    for name, report in reports:
        ops, cases = report["operations"], report["test_cases"]
        phases = ", ".join(f"{k} {v['status']}" for k, v in report["phases"].items()
                           if v["status"] != "skip")
        print(f"schemathesis {backend} {name}: {ops['tested']}/{ops['selected']} operations, "
              f"{cases['generated']} cases, {cases['unique_failures']} failures, "
              f"{len(report['errors'])} errors ({phases})")
