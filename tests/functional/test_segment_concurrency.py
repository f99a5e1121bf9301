"""Tenant segment allocation under concurrency: 8 clients creating networks
at once against a real server (1 and 4 workers; SQLite and PostgreSQL) get
distinct VNIs from the range, no 5xx, and exhaustion is a clean 503."""

import threading

from tests.functional.test_concurrency import CLIENTS, Client
from quantum_ovs.testing.server import ServerProcess

import pytest

VNIS = 60  # the range holds fewer VNIs than the clients ask for


@pytest.fixture(params=[1, 4], ids=lambda w: f"workers{w}")
def server(request, db_url):
    srv = ServerProcess(db_url, workers=request.param,
                        extra_conf=f"[quotas]\nquota_network = -1\n"
                                   f"[ml2_type_vxlan]\nvni_ranges = 1000:{999 + VNIS}\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_concurrent_networks_get_distinct_segments(server):
    results = []
    lock = threading.Lock()

    def worker(i):
        c = Client(server.port, project=f"proj-{i}")
        try:
            for n in range(10):  # 80 creates for 60 VNIs
                status, body = c.request("POST", "/v2.0/networks",
                                         {"network": {"name": f"n{i}-{n}"}})
                with lock:
                    results.append((status, body))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    statuses = sorted({s for s, _ in results})
    assert len(results) == CLIENTS * 10
    assert set(statuses) <= {201, 503}, [b for s, b in results if s not in (201, 503)][:3]
    refused = [b for s, b in results if s == 503]
    assert all(b["NeutronError"]["type"] == "NoNetworkAvailable" for b in refused)
    admin = Client(server.port, project="admin")
    admin.headers["X-Roles"] = "admin"
    status, body = admin.request("GET", "/v2.0/networks?fields=provider:segmentation_id")
    admin.close()
    vnis = [n["provider:segmentation_id"] for n in body["networks"]]
    assert len(vnis) == VNIS == len(set(vnis)) == sum(1 for s, _ in results if s == 201)
    assert set(vnis) == set(range(1000, 1000 + VNIS))
