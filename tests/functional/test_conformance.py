"""The conformance kit (quantum-ovs-conformance) against our own server
process: every check passes; and the kit does fail a server that answers
wrongly."""

import re

from quantum_ovs.testing import conformance
from quantum_ovs.cmd import conformance as cmd
from quantum_ovs.testing.server import ServerProcess


def test_conformance_kit_passes_against_our_server(tmp_path, capsys):
    server = ServerProcess(f"sqlite:///{tmp_path}/conf.sqlite",
                           log_path=str(tmp_path / "server.log"))
    server.start(timeout=60)
    try:
        rc = cmd.main([server.url, "--noauth-project", "kit"])
    finally:
        server.stop()
    out = capsys.readouterr().out
    with capsys.disabled():  # the table is printed in every run (indented: the
        # closing line of the run is pytest's, not the kit's)
        print("\n" + "\n".join("    " + line for line in out.splitlines()))
    m = re.search(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", out, re.M)
    assert m, out
    passed, failed, skipped = map(int, m.groups())
    assert failed == 0 and rc == 0, out
    assert skipped == 0, out  # our server advertises everything the kit checks
    assert passed >= 80, out
    for resource in ("networks", "subnets", "ports", "routers", "security_groups"):
        assert re.search(rf"^{resource}$", out, re.M), out


class _Wrong:
    """A server that lists v2.0 and no extension and answers everything
    else 200 with an empty object."""
    project = "p"

    def request(self, method, path, body=None):
        if path == "/":
            return 200, {"versions": [{"id": "v2.0"}]}
        if path == "/v2.0/extensions":
            return 200, {"extensions": []}
        return 200, {}


def test_conformance_kit_fails_a_wrong_server():
    results = conformance.Kit(_Wrong(), None, run="x").run_all()
    outcomes = {(r.resource, r.check): r.outcome for r in results}
    assert outcomes["api", "unknown extension is 404"] == conformance.FAIL
    assert outcomes["networks", "create"] == conformance.FAIL
    assert outcomes["routers", "create"] == conformance.SKIP  # not advertised
    assert "0 passed" not in conformance.table(results)
    assert re.search(r"\d+ failed", conformance.table(results))
