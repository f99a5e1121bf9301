"""Concurrent clients against a real quantum-ovs-server process.

8 clients creating 240 ports at once on one /22 get 240 distinct IPs and
MACs and no 5xx, on SQLite and on PostgreSQL, with api_workers 1 and 4;
clients racing for one specific address: exactly one wins, the others
get 409 IpAddressAlreadyAllocated; clients choosing addresses in one free
range at once leave none of them free (PostgreSQL, 2 workers).  The
database is checked for consistency after each (tests/fixtures/consistency.py).
"""

import functools
import ipaddress
import statistics
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from bench import mix
from quantum_ovs.testing.client import Client as _Client
from tests.fixtures import consistency
from quantum_ovs.testing.server import ServerProcess

PROJECT = "proj-concurrency"
CIDR = "10.20.0.0/22"
CLIENTS = 8
PORTS = 240  # (30 a client: every create of each races the other seven)


# One keep-alive HTTP/1.1 connection speaking JSON, in the test's project.
Client = functools.partial(_Client, project=PROJECT)


def _expect(status, body, want, what):
    assert status == want, f"{what}: HTTP {status}: {body}"
    return body


@pytest.fixture(params=[1, 4], ids=lambda w: f"workers{w}")
def server(request, db_url):
    # Room for every port of a test whatever the default quota; the quota
    # check (a count under a lock) stays in the path, as in production.
    srv = ServerProcess(db_url, workers=request.param,
                        extra_conf="[quotas]\nquota_port = 1000\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        # pytest shows this only for a test that failed.
        print(f"--- server log (api_workers={request.param}) ---")
        print(srv.log()[-30000:])


def _network_and_subnet(client, cidr=CIDR):
    net = _expect(*client.request("POST", "/v2.0/networks",
                                  {"network": {"name": "conc-net"}}), 201, "create network")
    net_id = net["network"]["id"]
    sub = _expect(*client.request("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net_id, "cidr": cidr, "ip_version": 4, "name": "conc-sub"}}),
        201, "create subnet")
    return net_id, sub["subnet"]


def _run_clients(port, jobs):
    """Run ``jobs[i](client)`` in one thread per job, all released at
    once; returns their results (an exception counts as a result)."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i):
        client = Client(port)
        try:
            barrier.wait(30)
            results[i] = jobs[i](client)
        except Exception as e:  # noqa: BLE001 - reported by the test
            results[i] = e
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client is stuck"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"client errors: {errors!r}"
    return results


def test_concurrent_port_creates_get_distinct_addresses(server, db_url):
    admin = Client(server.port)
    net_id, subnet = _network_and_subnet(admin)
    per_client = [PORTS // CLIENTS + (1 if i < PORTS % CLIENTS else 0) for i in range(CLIENTS)]

    def make_job(i, count):
        def job(client):
            out = []
            for j in range(count):
                out.append(client.request("POST", "/v2.0/ports", {"port": {
                    "network_id": net_id, "name": f"c{i}-p{j}"}}))
            return out
        return job

    results = _run_clients(server.port, [make_job(i, n) for i, n in enumerate(per_client)])
    responses = [r for rs in results for r in rs]
    assert len(responses) == PORTS
    failed = [(status, body) for status, body in responses if status != 201]
    assert not failed, (f"{len(failed)} of {PORTS} creates failed, e.g. {failed[:5]}; "
                        f"5xx: {sum(1 for s, _ in failed if s >= 500)}")

    ports = [body["port"] for _, body in responses]
    network = ipaddress.ip_network(CIDR)
    ips = []
    for p in ports:
        assert p["network_id"] == net_id
        assert len(p["fixed_ips"]) == 1, p
        assert p["fixed_ips"][0]["subnet_id"] == subnet["id"]
        ips.append(p["fixed_ips"][0]["ip_address"])
    assert all(ipaddress.ip_address(ip) in network for ip in ips)
    assert subnet["gateway_ip"] not in ips
    assert str(network.network_address) not in ips
    assert str(network.broadcast_address) not in ips
    assert len(set(ips)) == PORTS, "duplicate IPs handed out"
    macs = [p["mac_address"] for p in ports]
    assert len(set(macs)) == PORTS, "duplicate MACs handed out"
    assert len({p["id"] for p in ports}) == PORTS

    listed = _expect(*admin.request("GET", f"/v2.0/ports?network_id={net_id}"), 200,
                     "list ports")["ports"]
    every = _expect(*admin.request("GET", "/v2.0/ports"), 200, "list ports")["ports"]
    admin.close()
    assert len(every) == PORTS
    created = {p["id"]: (p["mac_address"], p["fixed_ips"][0]["ip_address"]) for p in ports}
    assert {p["id"]: (p["mac_address"], p["fixed_ips"][0]["ip_address"])
            for p in listed} == created
    assert len(listed) == PORTS
    consistency.assert_consistent(db_url)


def test_concurrent_requests_for_one_address_one_wins(server, db_url):
    admin = Client(server.port)
    net_id, subnet = _network_and_subnet(admin)
    network = ipaddress.ip_network(CIDR)
    # A few rounds: the start of a free range, its middle (a split), and
    # an address next to one already taken.
    wanted = [str(network.network_address + 2), str(network.network_address + 300),
              str(network.network_address + 301), str(network.network_address + 1000)]
    for ip in wanted:
        jobs = [lambda c, ip=ip: c.request("POST", "/v2.0/ports", {"port": {
            "network_id": net_id, "fixed_ips": [{"ip_address": ip}]}})
            for _ in range(CLIENTS)]
        responses = _run_clients(server.port, jobs)
        statuses = sorted(s for s, _ in responses)
        assert not [s for s in statuses if s >= 500], responses
        won = [b for s, b in responses if s == 201]
        lost = [b for s, b in responses if s != 201]
        assert len(won) == 1, f"{ip}: {len(won)} creates succeeded: {statuses}"
        assert won[0]["port"]["fixed_ips"][0]["ip_address"] == ip
        assert all(s == 409 for s, _ in responses if s != 201), statuses
        assert {b["NeutronError"]["type"] for b in lost} == {"IpAddressAlreadyAllocated"}, lost
    listed = _expect(*admin.request("GET", f"/v2.0/ports?network_id={net_id}"), 200,
                     "list ports")["ports"]
    admin.close()
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in listed) == sorted(wanted)
    # The automatic allocator still hands out something else.
    auto = Client(server.port)
    port = _expect(*auto.request("POST", "/v2.0/ports", {"port": {"network_id": net_id}}),
                   201, "create port")["port"]
    auto.close()
    assert port["fixed_ips"][0]["ip_address"] not in wanted
    consistency.assert_consistent(db_url)


# ------------------------------------------------------------------ PostgreSQL, 2 workers
@pytest.fixture
def pg_db_url(postgres_server):
    name = "conc_" + uuid.uuid4().hex[:10]
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def pg_server(pg_db_url):
    srv = ServerProcess(pg_db_url, workers=2, extra_conf="[quotas]\nquota_port = 1000\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        print("--- server log (PostgreSQL, api_workers=2) ---")
        print(srv.log()[-30000:])


CHOSEN = 24
AUTOMATIC = 200


def test_chosen_addresses_racing_splits_stay_allocated(pg_server, pg_db_url):
    """Clients creating ports with chosen addresses inside one free range
    at once (each a split of the range another is splitting): every
    address is taken out of the free ranges, and automatic allocations
    afterwards never run into them (a regression: a waiter locked the
    range as it was before a concurrent split, found the address past
    its end and took it for one outside every pool, leaving it free)."""
    admin = Client(pg_server.port)
    net_id, subnet = _network_and_subnet(admin)
    admin.close()
    base = ipaddress.ip_network(CIDR).network_address
    # Low addresses, every other one: each request splits a range, and
    # the automatic allocator (lowest first) walks over all of them.
    chosen = [str(base + 10 + 2 * i) for i in range(CHOSEN)]
    jobs = [lambda c, ip=ip: c.request("POST", "/v2.0/ports", {"port": {
        "network_id": net_id, "fixed_ips": [{"ip_address": ip}]}}) for ip in chosen]
    responses = _run_clients(pg_server.port, jobs)
    bad = [(ip, s, b) for ip, (s, b) in zip(chosen, responses) if s != 201]
    assert not bad, bad
    consistency.assert_consistent(pg_db_url)

    per_client = AUTOMATIC // CLIENTS

    def auto(client):
        return [client.request("POST", "/v2.0/ports", {"port": {"network_id": net_id}})
                for _ in range(per_client)]

    results = _run_clients(pg_server.port, [auto] * CLIENTS)
    responses = [r for rs in results for r in rs]
    statuses = [s for s, _ in responses]
    assert statuses.count(409) == 0, [b for s, b in responses if s == 409][:3]
    assert statuses == [201] * AUTOMATIC, [(s, b) for s, b in responses if s != 201][:3]
    ips = [b["port"]["fixed_ips"][0]["ip_address"] for _, b in responses]
    assert len(set(ips)) == AUTOMATIC
    assert not set(ips) & set(chosen)
    assert subnet["gateway_ip"] not in ips
    consistency.assert_consistent(pg_db_url)


def _port_create_ms(port, net_id, samples=9):
    """Median latency of one client's port creates: how fast this machine
    is right now."""
    client = Client(port)
    times = []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            _expect(*client.request("POST", "/v2.0/ports", {"port": {"network_id": net_id}}),
                    201, "create port")
            times.append(time.perf_counter() - t0)
    finally:
        client.close()
    return statistics.median(times) * 1000


def test_mixed_writers_do_not_deadlock(pg_server, pg_db_url, postgres_server):
    """8 clients creating ports (automatic and chosen addresses, single and
    bulk), deleting them, moving their addresses, creating networks with
    subnets and changing quotas, on PostgreSQL with 2 workers (bench/mix.py,
    bounded): no deadlock (the quota lock and the subnet and range locks are
    taken in one order, see db/ipam.py), no 5xx, no stall.  (Before: dozens
    of deadlocks, 503s and answers after 10 to 40 s.)"""
    admin = Client(pg_server.port)
    net_id, _subnet = _network_and_subnet(admin, cidr="10.30.0.0/24")
    admin.close()
    baseline_ms = _port_create_ms(pg_server.port, net_id)
    dbname = sa.engine.make_url(pg_db_url).database
    before = mix.pg_deadlocks(postgres_server, dbname)
    result = mix.run_mix(pg_server.port, clients=8, requests=30)
    time.sleep(0.6)  # the statistics collector lags a little
    deadlocks = mix.pg_deadlocks(postgres_server, dbname) - before
    summary = {k: result[k] for k in ("requests", "5xx", "409s", "p50_ms", "p99_ms")}
    print(f"mix: {summary}, deadlocks {deadlocks}, one client's create {baseline_ms:.0f} ms")
    assert not result["client_failures"], result["client_failures"]
    assert result["5xx"] == 0, result["errors"]
    assert deadlocks == 0, summary
    # No bound on the latencies: they are printed (bench/mix.py measures
    # them).  The stalls this test was written for came from deadlocks and
    # their retries (answers after 10 to 40 s, then 503s), and both are
    # counted above; a bound on p99 only measured how busy the machine was
    # (CI once saw 1,084 ms against a 1,000 ms bound with no deadlock).
    consistency.assert_consistent(pg_db_url)
