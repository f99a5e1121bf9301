"""Port reports beyond what the server takes in one (wire.REPORT_MAX_ENTRIES
in each list, 400 beyond): an agent starting on a host with more ports
sends several reports, and one that fails is sent again from where it
stopped."""

from __future__ import annotations

import threading

from agent import reporting, sync_client
from quantum_ovs.wire import REPORT_MAX_ENTRIES


class Client:
    def __init__(self, fail_at=None):
        self.reports, self.fail_at = [], fail_at

    def report(self, plugged=(), unplugged=(), installed=(), floatingips=()):
        if len(self.reports) == self.fail_at:
            self.fail_at = None
            raise sync_client.ServerUnavailable("busy")
        for name, items in (("plugged", plugged), ("unplugged", unplugged),
                            ("installed", installed), ("floatingips", floatingips)):
            assert len(items) <= REPORT_MAX_ENTRIES, name  # what the server takes
        self.reports.append({"plugged": list(plugged), "unplugged": list(unplugged),
                             "installed": list(installed), "floatingips": list(floatingips)})


def _reporter(client, retries):
    return reporting.PortReporter(client, threading.Event(), lambda: retries.append(1))


def test_a_cold_start_with_more_ports_than_a_report_takes_sends_several(monkeypatch):
    monkeypatch.setattr(reporting, "RETRY_AFTER", 0)
    n = REPORT_MAX_ENTRIES * 2 + 5
    vifs = {f"p{i:06}": i + 1 for i in range(n)}
    client, retries = Client(), []
    r = _reporter(client, retries)
    r.fips.update(f"f{i:06}" for i in range(REPORT_MAX_ENTRIES + 1))
    r.to_unplug.update({"gone-1", "gone-2"})
    r.report(set(vifs), vifs)
    assert len(client.reports) == 3 and not retries
    assert [x for rep in client.reports for x in rep["installed"]] == list(vifs)
    assert {p[0]: p[1]
            for rep in client.reports for p in rep["plugged"]} == vifs
    assert sum(len(rep["floatingips"]) for rep in client.reports) == REPORT_MAX_ENTRIES + 1
    assert [x for rep in client.reports for x in rep["unplugged"]] == ["gone-1", "gone-2"]
    assert r.reported == set(vifs) and not r.fips and not r.to_unplug
    r.report(set(vifs), vifs)
    assert len(client.reports) == 3  # nothing left to say


def test_a_failed_chunk_is_sent_again_and_the_sent_ones_are_not():
    n = REPORT_MAX_ENTRIES + 3
    vifs = {f"p{i:06}": i + 1 for i in range(n)}
    client, retries = Client(fail_at=1), []
    r = _reporter(client, retries)
    r.report(set(vifs), vifs)
    assert len(client.reports) == 1 and len(r.reported) == REPORT_MAX_ENTRIES
    r.report(set(vifs), vifs)  # the retry
    assert [len(rep["installed"]) for rep in client.reports] == [REPORT_MAX_ENTRIES, 3]
    assert r.reported == set(vifs)
