"""8 clients allocating subnets from one pool at once, through a real
server process with 2 API workers, on every backend: every create
succeeds (no 5xx), no two subnets overlap, all lie in the pool, and a
prefix given back by a delete is taken again."""

import functools
import ipaddress

import pytest

from quantum_ovs.testing.client import Client as _Client
from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_concurrency import PROJECT, _expect, _run_clients

POOL = "10.64.0.0/20"
CLIENTS = 8
EACH = 8

Client = functools.partial(_Client, project=PROJECT)


@pytest.fixture
def server(db_url):
    srv = ServerProcess(db_url, workers=2, extra_conf=(
        "[quotas]\nquota_subnet = 1000\nquota_network = 100\n"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        print(srv.log()[-20000:])


def test_concurrent_allocations_from_one_pool(server):
    admin = Client(server.port)
    pool = _expect(*admin.request("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": "conc", "prefixes": [POOL], "default_prefixlen": 28}}), 201, "pool")
    pool_id = pool["subnetpool"]["id"]
    nets = [_expect(*admin.request("POST", "/v2.0/networks", {"network": {
        "name": f"n{i}"}}), 201, "network")["network"]["id"] for i in range(CLIENTS)]
    admin.close()

    def make_job(i):
        def job(client):
            out = []
            for j in range(EACH):
                body = {"subnet": {"network_id": nets[i], "subnetpool_id": pool_id,
                                   "ip_version": 4, "name": f"c{i}-{j}"}}
                if j % 3 == 2:
                    body["subnet"]["prefixlen"] = 27
                out.append(client.request("POST", "/v2.0/subnets", body))
                if j == 3 and out[-1][0] == 201:
                    # Give one back while the others allocate.
                    sid = out.pop()[1]["subnet"]["id"]
                    st, body_ = client.request("DELETE", f"/v2.0/subnets/{sid}")
                    assert st == 204, body_
            return out
        return job

    results = _run_clients(server.port, [make_job(i) for i in range(CLIENTS)])
    responses = [r for rs in results for r in rs]
    failed = [(st, body) for st, body in responses if st != 201]
    assert not failed, failed[:3]
    cidrs = [ipaddress.ip_network(b["subnet"]["cidr"]) for _, b in responses]
    assert len(cidrs) == CLIENTS * (EACH - 1)
    whole = ipaddress.ip_network(POOL)
    assert all(c.subnet_of(whole) for c in cidrs)
    ordered = sorted(cidrs)
    for a, b in zip(ordered, ordered[1:]):
        assert not a.overlaps(b), (a, b)
    # What the server lists is what it answered.
    check = Client(server.port)
    st, body = check.request("GET", f"/v2.0/subnets?subnetpool_id={pool_id}")
    check.close()
    assert st == 200
    assert sorted(ipaddress.ip_network(s["cidr"]) for s in body["subnets"]) == ordered
    # The whole /20 holds 256 /28s: the /27s came from blocks the /28s
    # left whole, so the pool is filled from its low end (best fit).
    assert max(c.broadcast_address for c in cidrs) < whole.network_address + 2048
