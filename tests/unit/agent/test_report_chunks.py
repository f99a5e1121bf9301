"""Port reports beyond what the server takes in one (wire.REPORT_MAX_ENTRIES
in each list, 400 beyond): an agent starting on a host with more ports
sends several reports, and one that fails is sent again from where it
stopped."""

from __future__ import annotations

import json
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


class SmallBodyServer(Client):
    """A server whose [oslo_middleware] max_request_body_size is below
    what REPORT_MAX_ENTRIES ports take: 413 for a body larger than
    ``limit`` bytes (as json.dumps makes it)."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.refused = limit, 0

    def report(self, plugged=(), unplugged=(), installed=(), floatingips=()):
        body = json.dumps({"plugged": [{"port_id": p, "ofport": o} for p, o in plugged],
                           "unplugged": list(unplugged), "installed": list(installed),
                           "floatingips": list(floatingips)})
        if len(body) > self.limit:
            self.refused += 1
            raise sync_client.ServerError(413, '{"NeutronError": {"type": '
                                               '"RequestEntityTooLarge"}}')
        super().report(plugged, unplugged, installed, floatingips)


def test_a_report_refused_as_too_large_is_sent_in_smaller_ones():
    n = REPORT_MAX_ENTRIES + 7
    vifs = {f"{i:036}": i + 1 for i in range(n)}
    client, retries = SmallBodyServer(limit=200_000), []
    r = _reporter(client, retries)
    r.report(set(vifs), vifs)
    assert not retries and r.reported == set(vifs)
    assert [x for rep in client.reports for x in rep["installed"]] == list(vifs)
    assert 0 < client.refused <= 6 and r.chunk < REPORT_MAX_ENTRIES
    # Later reports start from the size the server took: no refusal again.
    refused = client.refused
    vifs2 = {f"{i:036}": i + 1 for i in range(n, n + 3000)}
    r.report(set(vifs2), vifs2)
    assert client.refused == refused and r.reported >= set(vifs2)


def test_a_single_entry_refused_as_too_large_is_retried_later(monkeypatch):
    monkeypatch.setattr(reporting, "RETRY_AFTER", 0)
    client, retried = SmallBodyServer(limit=10), threading.Event()
    r = reporting.PortReporter(client, threading.Event(), retried.set)
    r.report({"p1"}, {"p1": 1})
    assert retried.wait(10)  # as any failed report: again later
    assert r.reported == set() and r.chunk == 1 and client.refused > 1
