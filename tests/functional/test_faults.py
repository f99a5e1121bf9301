"""Faults: the server killed outright under load, the database hung or gone.

Each test runs a real quantum-ovs-server process (tests/fixtures/server.py)
and checks the database afterwards with tests/fixtures/consistency.py.
"""

import ipaddress
import os
import signal
import threading
import time
import uuid

import pytest

from tests.fixtures import consistency
from tests.fixtures.postgres import postgres_server  # noqa: F401 - a fixture
from tests.fixtures.server import ServerProcess
from tests.functional.test_concurrency import Client, _expect, _network_and_subnet

CIDR = "10.40.0.0/22"
BULK = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/qovs.sqlite"
        return
    pg = request.getfixturevalue("postgres_server")
    name = "faults_" + uuid.uuid4().hex[:10]
    url = pg.create_database(name)
    try:
        yield url
    finally:
        pg.drop_database(name)


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
    srv = ServerProcess(db_url, workers=workers, extra_conf="[quotas]\nquota_port = -1\n")
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
