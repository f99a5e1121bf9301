"""Faults: the server killed outright under load, the database hung or gone.

Each test runs a real quantum-ovs-server process (quantum_ovs/testing/server.py)
and checks the database afterwards with tests/fixtures/consistency.py.
"""

import ipaddress
import os
import signal
import threading
import time

import pytest

from tests.fixtures import consistency
from quantum_ovs.testing.server import ServerProcess
from tests.functional.test_concurrency import Client, _expect, _network_and_subnet

CIDR = "10.40.0.0/22"
# Clients create ports for as long as a test runs, as fast as the machine
# allows: the port quota (50) must not be what answers them.
NO_PORT_QUOTA = "[quotas]\nquota_port = -1\n"
BULK = 20


def _kill9(srv):
    """SIGKILL to the server and its workers at once (its process group):
    no handler, no rollback of its own, no goodbye to the database."""
    os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)
    srv.stop()


def _load(port, net_id, stop, outcomes):
    """Clients creating ports until ``stop``: bulks of BULK named
    b<bulk>-<i> (automatic addresses, some chosen), and single ports with
    automatic or chosen addresses.  Records each bulk sent as (name,
    status or the exception)."""
    base = ipaddress.ip_network(CIDR).network_address

    def bulk_client(k):
        client = Client(port, timeout=30)
        n = 0
        try:
            while not stop.is_set():
                name = f"b{k}x{n}"
                items = [{"network_id": net_id, "name": f"{name}-{i}"} for i in range(BULK)]
                # A chosen address in the middle of the free range: a split.
                items[BULK // 2]["fixed_ips"] = [
                    {"ip_address": str(base + 512 + 40 * k + n % 40)}]
                try:
                    status, _ = client.request("POST", "/v2.0/ports", {"ports": items})
                except OSError as e:
                    outcomes.append((name, e))
                    return
                outcomes.append((name, status))
                n += 1
        finally:
            client.close()

    def single_client(k):
        client = Client(port, timeout=30)
        n = 0
        try:
            while not stop.is_set():
                port_body = {"network_id": net_id, "name": f"s{k}x{n}"}
                if n % 3 == 0:
                    port_body["fixed_ips"] = [{"ip_address": str(base + 800 + 50 * k + n % 50)}]
                try:
                    client.request("POST", "/v2.0/ports", {"port": port_body})
                except OSError:
                    return
                n += 1
        finally:
            client.close()

    threads = [threading.Thread(target=bulk_client, args=(k,), daemon=True) for k in range(3)]
    threads += [threading.Thread(target=single_client, args=(k,), daemon=True)
                for k in range(3)]
    for t in threads:
        t.start()
    return threads


def _ports(port):
    client = Client(port)
    try:
        return _expect(*client.request("GET", "/v2.0/ports"), 200, "list ports")["ports"]
    finally:
        client.close()


@pytest.mark.parametrize("workers", [1, 2], ids=lambda w: f"workers{w}")
def test_kill9_during_creates_leaves_no_partial_rows(db_url, workers):
    """The server is killed (SIGKILL, all its processes) while clients
    create ports in bulks and one by one, twice, and started again: every
    bulk is there whole or not at all, every port has its address, no
    address is leaked or handed out twice, and the subnet keeps giving
    addresses (200 more creates, none refused)."""
    srv = ServerProcess(db_url, workers=workers, extra_conf=NO_PORT_QUOTA)
    srv.start()
    try:
        admin = Client(srv.port)
        net_id, subnet = _network_and_subnet(admin, cidr=CIDR)
        admin.close()
        outcomes = []
        for delay in (1.5, 0.7):
            stop = threading.Event()
            threads = _load(srv.port, net_id, stop, outcomes)
            time.sleep(delay)
            _kill9(srv)
            stop.set()
            for t in threads:
                t.join(40)
            assert not any(t.is_alive() for t in threads), "a client is stuck"
            srv.start()
            consistency.assert_consistent(db_url)

        ports = _ports(srv.port)
        assert ports, "nothing was created before the kills"
        by_bulk = {}
        for p in ports:
            assert len(p["fixed_ips"]) == 1, p
            if p["name"].startswith("b"):
                by_bulk.setdefault(p["name"].split("-")[0], []).append(p)
        partial = {b: len(ps) for b, ps in by_bulk.items() if len(ps) != BULK}
        assert not partial, f"bulks created in part: {partial}"
        # Every bulk answered 201 is there (the kill did not undo a commit).
        answered = {name for name, status in outcomes if status == 201}
        assert answered <= set(by_bulk), answered - set(by_bulk)
        interrupted = [name for name, status in outcomes if not isinstance(status, int)]
        assert interrupted, "no bulk was in flight at a kill"

        # The survivors' addresses are not handed out again.
        taken = {p["fixed_ips"][0]["ip_address"] for p in ports}
        client = Client(srv.port)
        new = []
        for i in range(200):
            body = _expect(*client.request("POST", "/v2.0/ports", {"port": {
                "network_id": net_id, "name": f"after-{i}"}}), 201, "create after restart")
            new.append(body["port"]["fixed_ips"][0]["ip_address"])
        client.close()
        assert len(set(new)) == 200 and not set(new) & taken
        assert subnet["gateway_ip"] not in new
        consistency.assert_consistent(db_url)
    finally:
        srv.stop()
        print("--- server log ---\n" + srv.log()[-20000:])


# ------------------------------------------------------------------ database faults
TIMEOUTS = "[database]\nconnect_timeout = 2\nstatement_timeout = 2\n" + NO_PORT_QUOTA
# A request never waits much longer than connect + statement timeouts.
BOUND = 7.0


@pytest.fixture
def private_pg():
    """A PostgreSQL cluster of the test's own: it is paused or stopped."""
    from quantum_ovs.testing.postgres import PostgresServer
    pg = PostgresServer().start()
    try:
        yield pg
    finally:
        try:
            pg.resume()
        except (ProcessLookupError, TypeError, AttributeError):
            pass
        pg.stop()


def _timed(client, method, path, body=None):
    t0 = time.monotonic()
    try:
        status, data = client.request(method, path, body)
    except OSError as e:  # a timeout of the client: the server hung
        status, data = "no answer", repr(e)
    return status, data, time.monotonic() - t0


def _until_ok(port, net_id, within):
    """Create a port until one succeeds; the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        client = Client(port, timeout=BOUND + 5)
        try:
            status, _, _ = _timed(client, "POST", "/v2.0/ports", {"port": {"network_id": net_id}})
        finally:
            client.close()
        if status == 201:
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"no successful create within {within} s of the database's return")


def test_hung_database_answers_503_quickly_and_recovers(private_pg):
    """PostgreSQL paused (SIGSTOP: connections open, nothing answers):
    requests answer 503 within the configured timeouts instead of hanging
    (before: 30 s then 500, or for as long as the pause lasted), the
    later ones at once; once it runs again the server recovers by itself."""
    srv = ServerProcess(private_pg.url(), workers=2, extra_conf=TIMEOUTS)
    srv.start()
    try:
        admin = Client(srv.port)
        net_id, _subnet = _network_and_subnet(admin, cidr=CIDR)
        admin.close()
        private_pg.pause()
        time.sleep(0.3)  # every one of its processes stopped
        results = []

        def job(i):
            client = Client(srv.port, timeout=BOUND + 10)
            try:
                if i % 2:
                    results.append(_timed(client, "GET", "/v2.0/networks"))
                else:
                    results.append(_timed(client, "POST", "/v2.0/ports",
                                          {"port": {"network_id": net_id}}))
            finally:
                client.close()

        threads = [threading.Thread(target=job, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOUND + 15)
        statuses = [r[0] for r in results]
        assert len(results) == 8 and set(statuses) == {503}, results
        assert max(r[2] for r in results) < BOUND, results
        assert {r[1]["NeutronError"]["type"] for r in results} == {"ServiceUnavailable"}
        # While it stays hung, the next requests fail at once or within
        # the timeouts, never later.
        client = Client(srv.port, timeout=BOUND + 10)
        later = [_timed(client, "GET", "/v2.0/ports") for _ in range(3)]
        client.close()
        assert [r[0] for r in later] == [503] * 3, later
        assert max(r[2] for r in later) < BOUND, later

        private_pg.resume()
        took = _until_ok(srv.port, net_id, within=15)
        print(f"hung database: 503 in {max(r[2] for r in results):.1f} s at most; "
              f"recovered {took:.1f} s after it resumed")
        # One process answering again is not every process: each finds the
        # database back by itself (its dead pooled connections fail once,
        # then it holds off for DOWN_HOLD before trying again).
        time.sleep(3)
        client = Client(srv.port)
        _expect(*client.request("GET", "/v2.0/networks"), 200, "list networks")
        client.close()
        consistency.assert_consistent(private_pg.url())
    finally:
        srv.stop()
        print("--- server log ---\n" + srv.log()[-20000:])


def test_database_stopped_under_load_503_then_recovers(private_pg):
    """PostgreSQL shut down while 4 clients create and list ports, then
    started again: meanwhile every answer is a quick 503 (no 500, no
    hang); afterwards the server serves again without a restart, and the
    database is consistent."""
    srv = ServerProcess(private_pg.url(), workers=2, extra_conf=TIMEOUTS)
    srv.start()
    try:
        admin = Client(srv.port)
        net_id, _subnet = _network_and_subnet(admin, cidr=CIDR)
        admin.close()
        stop = threading.Event()
        log = []  # (phase, status, seconds)
        phase = ["before"]

        def worker(k):
            client = Client(srv.port, timeout=BOUND + 10)
            n = 0
            while not stop.is_set():
                if n % 3 == 2:
                    status, data, took = _timed(client, "GET", "/v2.0/ports?limit=20")
                else:
                    status, data, took = _timed(client, "POST", "/v2.0/ports", {"port": {
                        "network_id": net_id, "name": f"w{k}-{n}"}})
                log.append((phase[0], status, took, data if status not in (200, 201) else None))
                if not isinstance(status, int):
                    client.close()
                    client = Client(srv.port, timeout=BOUND + 10)
                n += 1
                if status == 503:
                    time.sleep(0.05)
            client.close()

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        phase[0] = "down"
        private_pg.shut_down()
        time.sleep(4)
        phase[0] = "restarting"
        private_pg.start_again()
        took = _until_ok(srv.port, net_id, within=15)
        # One process answering again is not every process: each finds the
        # database back by itself (its dead pooled connections fail once,
        # then it holds off for DOWN_HOLD before trying again).
        phase[0] = "settling"
        time.sleep(3)
        phase[0] = "after"
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(BOUND + 15)
        assert not any(t.is_alive() for t in threads), "a client is stuck"

        bad = [e for e in log if e[1] not in (200, 201, 503)]
        assert not bad, bad[:5]
        assert max(e[2] for e in log) < BOUND, sorted(log, key=lambda e: -e[2])[:3]
        down = [e for e in log if e[0] == "down"]
        assert down and {e[1] for e in down} <= {503, 200, 201}, down[:5]
        assert sum(1 for e in down if e[1] == 503) >= 4, down[:5]
        after = [e for e in log if e[0] == "after"]
        assert after and {e[1] for e in after} <= {200, 201}, after[:5]
        print(f"database stopped: {len(down)} requests while down "
              f"({sum(1 for e in down if e[1] == 503)} 503s, slowest "
              f"{max(e[2] for e in down):.2f} s); served {took:.1f} s after it started")
        consistency.assert_consistent(private_pg.url())
    finally:
        stop.set()
        srv.stop()
        print("--- server log ---\n" + srv.log()[-20000:])
