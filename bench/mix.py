"""A mixed write load: concurrent clients creating and deleting ports
(automatic and chosen addresses, single and bulk), moving a port's
address, creating networks with subnets and changing quotas, all in one
project on one shared subnet, so that the quota lock and the IP range
rows are contended at once.

Runs a real quantum-ovs-server (quantum_ovs/testing/server.py) on a private
PostgreSQL by default (``--db sqlite`` for SQLite) with ``--workers`` API
workers, prints per-operation medians and ends with one JSON line:

    requests   requests sent
    5xx        answers of 500 or more (any is a failure: deadlocks and
               exhausted retries show here as 503)
    409s       conflicts (a chosen address already taken is expected)
    p50_ms     median latency of every request
    p99_ms     99th percentile latency of every request
    deadlocks  deadlocks PostgreSQL detected meanwhile (each one cost a
               second and a retry)

``run_mix(port, clients, requests)`` is the load alone, for tests.
"""

import argparse
import functools
import ipaddress
import json
import os
import random
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quantum_ovs.testing.client import Client as _Client  # noqa: E402
from quantum_ovs.testing.server import deployment  # noqa: E402

PROJECT = "mix"
CIDR = "10.64.0.0/20"
# Room for every resource the mix makes (quota updates stay above these).
SERVER_QUOTAS = ("[quotas]\nquota_port = 5000\nquota_network = 1000\n"
                 "quota_subnet = 1000\n")

# operation -> weight
MIX = {"port_auto": 25, "port_chosen": 15, "port_bulk": 10, "port_delete": 20,
       "port_move": 5, "network_subnet": 10, "quota_update": 10, "port_list": 5}


# The mix's clients: members of its project unless told otherwise.
Client = functools.partial(_Client, project=PROJECT, roles="member", timeout=120)


def setup(port):
    """The shared network and subnet: (network id, subnet)."""
    c = Client(port)
    try:
        status, net = c.request("POST", "/v2.0/networks", {"network": {"name": "mix"}})
        assert status == 201, (status, net)
        net_id = net["network"]["id"]
        status, sub = c.request("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net_id, "cidr": CIDR, "ip_version": 4, "name": "mix"}})
        assert status == 201, (status, sub)
        return net_id, sub["subnet"]
    finally:
        c.close()


class Worker:
    """One client: a random walk over MIX with its own ports."""

    def __init__(self, port, net_id, subnet, seed, log):
        self.c = Client(port)
        self.admin = Client(port, roles="admin")
        self.net_id = net_id
        self.subnet = subnet
        self.rng = random.Random(seed)
        self.log = log  # list of (op, status, seconds, body of a 5xx)
        self.mine = []  # ids of ports this client made
        net = ipaddress.ip_network(CIDR)
        self.first = int(net.network_address) + 2
        self.last = int(net.broadcast_address) - 1

    def _timed(self, op, client, method, path, body=None):
        t0 = time.perf_counter()
        status, data = client.request(method, path, body)
        self.log.append((op, status, time.perf_counter() - t0,
                         data if status >= 500 else None))
        return status, data

    def _address(self):
        return str(ipaddress.IPv4Address(self.rng.randint(self.first, self.last)))

    def port_auto(self):
        status, data = self._timed("port_auto", self.c, "POST", "/v2.0/ports",
                                   {"port": {"network_id": self.net_id}})
        if status == 201:
            self.mine.append(data["port"]["id"])

    def port_chosen(self):
        # Two addresses, in random order: the rows they lock come in any order.
        ips = [{"ip_address": self._address()} for _ in range(self.rng.randint(1, 2))]
        status, data = self._timed("port_chosen", self.c, "POST", "/v2.0/ports", {"port": {
            "network_id": self.net_id, "fixed_ips": ips}})
        if status == 201:
            self.mine.append(data["port"]["id"])

    def port_bulk(self):
        items = []
        for _ in range(3):
            item = {"network_id": self.net_id}
            if self.rng.random() < 0.5:
                item["fixed_ips"] = [{"ip_address": self._address()}]
            items.append(item)
        status, data = self._timed("port_bulk", self.c, "POST", "/v2.0/ports",
                                   {"ports": items})
        if status == 201:
            self.mine.extend(p["id"] for p in data["ports"])

    def port_delete(self):
        if not self.mine:
            return self.port_auto()
        pid = self.mine.pop(self.rng.randrange(len(self.mine)))
        self._timed("port_delete", self.c, "DELETE", f"/v2.0/ports/{pid}")

    def port_move(self):
        if not self.mine:
            return self.port_auto()
        pid = self.rng.choice(self.mine)
        self._timed("port_move", self.c, "PUT", f"/v2.0/ports/{pid}", {"port": {
            "fixed_ips": [{"ip_address": self._address()}]}})

    def network_subnet(self):
        status, net = self._timed("network_create", self.c, "POST", "/v2.0/networks",
                                  {"network": {"name": "mix-extra"}})
        if status != 201:
            return
        net_id = net["network"]["id"]
        cidr = f"10.{self.rng.randint(100, 250)}.{self.rng.randint(0, 255)}.0/24"
        self._timed("subnet_create", self.c, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net_id, "cidr": cidr, "ip_version": 4}})
        # A port on it: its range rows and the port quota, in one request.
        self._timed("port_auto", self.c, "POST", "/v2.0/ports",
                    {"port": {"network_id": net_id}})

    def quota_update(self):
        quota = {"port": self.rng.randint(4000, 5000),
                 "network": self.rng.randint(500, 1000)}
        if self.rng.random() < 0.5:
            quota["check_limit"] = True
        self._timed("quota_update", self.admin, "PUT", f"/v2.0/quotas/{PROJECT}",
                    {"quota": quota})

    def port_list(self):
        self._timed("port_list", self.c, "GET",
                    f"/v2.0/ports?network_id={self.net_id}&limit=50")

    def run(self, requests, barrier):
        ops = list(MIX)
        weights = [MIX[o] for o in ops]
        barrier.wait(60)
        while len(self.log) < requests:
            getattr(self, self.rng.choices(ops, weights)[0])()

    def close(self):
        self.c.close()
        self.admin.close()


def run_mix(port, clients=8, requests=100, seed=1):
    """``clients`` concurrent clients, about ``requests`` each; returns
    the summary (see the module's docstring) with per-operation medians
    under "ops" and up to five 5xx bodies under "errors"."""
    net_id, subnet = setup(port)
    logs = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    workers = [Worker(port, net_id, subnet, seed * 1000 + i, logs[i]) for i in range(clients)]
    failures = []

    def run(w):
        try:
            w.run(requests, barrier)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(repr(e))
        finally:
            w.close()

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    barrier.wait(60)
    t0 = time.perf_counter()
    for t in threads:
        t.join(600)
    elapsed = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        failures.append("a client is stuck")
    entries = [e for log in logs for e in log]
    times = sorted(e[2] for e in entries)

    def pct(p):
        return round(times[min(len(times) - 1, int(len(times) * p))] * 1000, 1) if times else None

    ops = {}
    for op in sorted({e[0] for e in entries}):
        mine = [e for e in entries if e[0] == op]
        ops[op] = {"n": len(mine),
                   "median_ms": round(statistics.median(e[2] for e in mine) * 1000, 1),
                   "max_ms": round(max(e[2] for e in mine) * 1000, 1),
                   "statuses": {str(s): sum(1 for e in mine if e[1] == s)
                                for s in sorted({e[1] for e in mine})}}
    return {"requests": len(entries),
            "5xx": sum(1 for e in entries if e[1] >= 500),
            "409s": sum(1 for e in entries if e[1] == 409),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(times[-1] * 1000, 1) if times else None,
            "requests_per_s": round(len(entries) / elapsed, 1) if elapsed else None,
            "ops": ops,
            "errors": [e[3] for e in entries if e[1] >= 500][:5],
            "client_failures": failures}


def pg_deadlocks(pg, dbname):
    """Deadlocks detected so far in one database of a PostgresServer."""
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (dbname,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    p.add_argument("--workers", type=int, default=2, help="api_workers of the server")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=150, help="requests per client")
    p.add_argument("--quick", action="store_true", help="30 requests per client")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-log", action="store_true", help="print the server log's path")
    args = p.parse_args(argv)
    requests = 30 if args.quick else args.requests

    with deployment(args.db, workers=args.workers, extra_conf=SERVER_QUOTAS,
                    keep_log=args.keep_log, prefix="qovs-mix-", name="mix") as dep:
        server, pg = dep.server, dep.pg
        print(f"bench/mix.py: db={args.db} workers={args.workers} clients={args.clients} "
              f"requests/client={requests}; server pid {server.proc.pid}", flush=True)
        before = pg_deadlocks(pg, pg.default_db) if pg is not None else None
        result = run_mix(server.port, args.clients, requests, args.seed)
        if pg is not None:
            time.sleep(0.6)  # the statistics collector lags a little
            result["deadlocks"] = pg_deadlocks(pg, pg.default_db) - before
    for op, s in result["ops"].items():
        print(f"  {op:15s} n={s['n']:4d} median {s['median_ms']:8.1f} ms  "
              f"max {s['max_ms']:8.1f} ms  {s['statuses']}")
    for err in result["errors"]:
        print(f"  5xx: {err}")
    line = {"bench": "mix", "db": args.db, "workers": args.workers,
            "clients": args.clients}
    line.update({k: result[k] for k in ("requests", "5xx", "409s", "p50_ms", "p99_ms",
                                         "max_ms", "requests_per_s")})
    line["deadlocks"] = result.get("deadlocks")
    print(json.dumps(line))
    return 1 if result["client_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
