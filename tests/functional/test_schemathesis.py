"""schemathesis against a real server process, from the description it
serves (GET /openapi.json): every operation (the underscore spellings of
the security group paths aside) and stateful sequences along the links
(network -> subnet -> port, each create -> its show/update/delete/tags).

Checks: not a server error, status code, content type and response body
as described.  Seeded and bounded (QOVS_SCHEMATHESIS_SECONDS per backend,
QOVS_SCHEMATHESIS_EXAMPLES per operation); the summary is printed (run
with -s to see it).
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from quantum_ovs.testing.server import ServerProcess

SECONDS = int(os.environ.get("QOVS_SCHEMATHESIS_SECONDS", 75))
EXAMPLES = int(os.environ.get("QOVS_SCHEMATHESIS_EXAMPLES", 15))
SEED = int(os.environ.get("QOVS_SCHEMATHESIS_SEED", 20261204))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def _schemathesis():
    exe = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    if not os.path.exists(exe):
        exe = shutil.which("schemathesis")
    if exe is None:
        pytest.skip("schemathesis is not installed (test-requirements.txt)")
    return exe


def run_schemathesis(url, workdir, project="st-project", roles="admin"):
    """(exit status, console output, JSON report) of one bounded run."""
    report = os.path.join(workdir, "schemathesis.json")
    cmd = [_schemathesis(), "run", f"{url}/openapi.json",
           "--checks", CHECKS, "--seed", str(SEED), "--max-examples", str(EXAMPLES),
           "--max-time", str(SECONDS), "--workers", "1", "--exclude-deprecated",
           "--phases", "examples,coverage,fuzzing,stateful", "--no-shrink",
           "--request-timeout", "30", "--suppress-health-check", "all",
           "-H", f"X-Project-Id: {project}", "-H", f"X-Roles: {roles}",
           "--report", "json", "--report-json-path", report, "--output-truncate", "true"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", NO_COLOR="1")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=SECONDS * 3 + 120)
    data = {}
    if os.path.exists(report):
        with open(report) as f:
            data = json.load(f)
    return proc.returncode, proc.stdout + proc.stderr, data


def _summary(out):
    """The lines of the console summary worth printing."""
    keep, on = [], False
    for line in out.splitlines():
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
        rc, out, report = run_schemathesis(server.url, str(tmp_path))
    finally:
        server.stop()
    with capsys.disabled():  # the report is printed in every run
        _print_report(backend, out, report)
    assert rc == 0, _summary(out) if "FAILURES" not in out else \
        out[out.index("FAILURES"):][:20000]


def _print_report(backend, out, report):
    print(f"\nschemathesis on {backend} (seed {SEED}):\n{_summary(out)}")
    if report:
        ops, cases = report["operations"], report["test_cases"]
        phases = ", ".join(f"{k} {v['status']}" for k, v in report["phases"].items())
        print(f"schemathesis {backend}: {ops['tested']}/{ops['selected']} operations, "
              f"{cases['generated']} cases, {cases['unique_failures']} failures, "
              f"{len(report['errors'])} errors; {phases}")
