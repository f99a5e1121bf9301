"""API benchmark: port creates per second, list latency, create latency
when many addresses are allocated.

Runs a real quantum-ovs-server (quantum_ovs/testing/server.py) on SQLite by
default or on a private PostgreSQL (``--db postgresql``), talks HTTP/1.1
keep-alive on loopback, prints medians and ends with one JSON line:

    creates_per_s_1   port creates per second, one client
    creates_per_s_8   port creates per second, 8 concurrent clients
    list_1k_ms        GET /v2.0/ports with 1,000 ports (median)
    bulk_1000_s       one bulk create of 1,000 ports (Neutron's body
                      {"ports": [...]}), seconds (median of 3)
    list_10k_ms       GET /v2.0/ports with 10,000 ports (median)
    create_at_60k_ms  one port create (median) once 60,000 ports hold
                      addresses of the same /16
    ip_availability_ms  GET /v2.0/network-ip-availabilities/{network} as
                      an admin (median) with those 60,000 ports

``--list-policy`` instead measures only the cost of the policy on a
listing: 1,000 ports of one project, ``GET /v2.0/ports`` as an admin of
another project (``list_1k_admin_ms``) and as a member of the owning
project (``list_1k_member_ms``), medians of ``--samples`` runs each.

With the server's PID known, ``*_server_cpu_*`` keys give the server's
CPU time per operation too (steadier than wall time on a busy machine).
``--bulk-list`` runs only the bulk creates and the 10,000-port listing.

``--quick`` shrinks every count for a smoke run (the keys stay, the
counts are in the JSON).
"""

import argparse
import functools
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quantum_ovs.testing.client import Client as _Client  # noqa: E402
from quantum_ovs.testing.server import deployment  # noqa: E402

PROJECT = "bench"
CIDR = "10.128.0.0/16"
BULK = 500

FULL = dict(creates_1=300, creates_8=600, list_small=1000, list_large=10000,
            populated=60000, create_samples=60, list_samples=7, list_large_samples=5,
            bulk=1000, bulk_samples=3)
QUICK = dict(creates_1=40, creates_8=80, list_small=200, list_large=1000,
             populated=2000, create_samples=15, list_samples=3, list_large_samples=3,
             bulk=200, bulk_samples=3)


# A client of the benchmark's project (a long timeout: lists of 10,000).
Client = functools.partial(_Client, project=PROJECT, timeout=600)


def _cpu_seconds(pid):
    """User + system CPU time of a process (Linux), or 0."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return 0.0


def _ms(seconds):
    return round(seconds * 1000, 1)


class Bench:
    def __init__(self, port, counts, out=print, server_pid=None):
        self.port = port
        self.server_pid = server_pid
        self.c = counts
        self.out = out
        self.client = Client(port)
        self.total = 0  # ports in the database
        self.result = {}

    def setup(self):
        net = self.client.json("POST", "/v2.0/networks", {"network": {"name": "bench"}}, 201)
        self.net_id = net["network"]["id"]
        self.client.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": self.net_id, "cidr": CIDR, "ip_version": 4}}, 201)
        # Warm up (connections, caches); these count as ports too.
        for _ in range(5):
            self._create(self.client)

    def _create(self, client):
        t0 = time.perf_counter()
        client.call("POST", "/v2.0/ports", {"port": {"network_id": self.net_id}}, want=201)
        self.total += 1
        return time.perf_counter() - t0

    def creates_1(self):
        n = self.c["creates_1"]
        t0 = time.perf_counter()
        lat = [self._create(self.client) for _ in range(n)]
        elapsed = time.perf_counter() - t0
        rate = n / elapsed
        self.result["creates_per_s_1"] = round(rate, 1)
        self.result["create_ms_1"] = _ms(statistics.median(lat))
        self.out(f"1 client:  {n} creates in {elapsed:.2f}s = {rate:.1f}/s, "
                 f"median {_ms(statistics.median(lat))} ms, "
                 f"p95 {_ms(sorted(lat)[int(0.95 * (n - 1))])} ms")

    def creates_8(self, clients=8):
        n = self.c["creates_8"]
        shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
        lats = [[] for _ in range(clients)]
        errors = []
        failed = []  # (status, body) of creates that did not succeed
        barrier = threading.Barrier(clients + 1)

        def run(i):
            cl = Client(self.port)
            try:
                barrier.wait()
                for _ in range(shares[i]):
                    t0 = time.perf_counter()
                    status, raw = cl.call("POST", "/v2.0/ports",
                                          {"port": {"network_id": self.net_id}})
                    lats[i].append(time.perf_counter() - t0)
                    if status != 201:
                        failed.append((status, raw[:300]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                cl.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"{len(errors)} client(s) failed: {errors[:3]!r}")
        self.total += n - len(failed)
        self.result["create_errors_8"] = len(failed)
        if failed:
            self.out(f"!! {len(failed)} of {n} concurrent creates failed: "
                     f"{sorted({st for st, _ in failed})}, e.g. {failed[0][1]!r}")
        lat = sorted(x for ls in lats for x in ls)
        rate = n / elapsed
        self.result["creates_per_s_8"] = round(rate, 1)
        self.result["create_ms_8"] = _ms(statistics.median(lat))
        self.out(f"{clients} clients: {n} creates in {elapsed:.2f}s = {rate:.1f}/s, "
                 f"median {_ms(statistics.median(lat))} ms, "
                 f"p95 {_ms(lat[int(0.95 * (len(lat) - 1))])} ms")

    def populate(self, target):
        """Bulk-create ports until ``target`` exist."""
        t0 = time.perf_counter()
        made = 0
        while self.total < target:
            k = min(BULK, target - self.total)
            body = {"ports": [{"network_id": self.net_id} for _ in range(k)]}
            self.client.call("POST", "/v2.0/ports", body, want=201)
            self.total += k
            made += k
        if made:
            el = time.perf_counter() - t0
            self.out(f"populated {made} ports in bulks of {BULK} in {el:.1f}s "
                     f"({made / el:.0f}/s); {self.total} ports now")

    def _cpu(self):
        return _cpu_seconds(self.server_pid) if self.server_pid else None

    def _cpu_note(self, key, cpus, scale=1000):
        """The server's median CPU time per operation, as ``key``."""
        if not cpus or cpus[0] is None:
            return ""
        med = round(statistics.median(cpus) * scale, 3 if scale == 1 else 1)
        self.result[key] = med
        return f", server CPU median {med} {'s' if scale == 1 else 'ms'}"

    def bulk_create(self):
        """Bulk creates of ``bulk`` ports (Neutron's body), timed."""
        n, samples = self.c["bulk"], self.c["bulk_samples"]
        lat, cpus = [], []
        for _ in range(samples):
            body = {"ports": [{"network_id": self.net_id} for _ in range(n)]}
            c0 = self._cpu()
            t0 = time.perf_counter()
            _status, raw = self.client.call("POST", "/v2.0/ports", body, want=201)
            lat.append(time.perf_counter() - t0)
            cpus.append(None if c0 is None else self._cpu() - c0)
            if len(json.loads(raw)["ports"]) != n:
                raise RuntimeError(f"a bulk of {n} answered another count")
            self.total += n
        med = round(statistics.median(lat), 3)
        self.result["bulk_1000_s"] = med
        note = self._cpu_note("bulk_1000_server_cpu_s", cpus, scale=1)
        self.out(f"bulk create of {n} ports: median {med} s "
                 f"(min {min(lat):.3f}, max {max(lat):.3f}, n={samples}){note}")

    def list_ports(self, key, samples):
        lat, cpus = [], []
        count = None
        for _ in range(samples):
            c0 = self._cpu()
            t0 = time.perf_counter()
            _status, raw = self.client.call("GET", "/v2.0/ports", want=200)
            lat.append(time.perf_counter() - t0)
            cpus.append(None if c0 is None else self._cpu() - c0)
            count = len(json.loads(raw)["ports"])
        if count != self.total:
            raise RuntimeError(f"listed {count} ports, expected {self.total}")
        med = _ms(statistics.median(lat))
        self.result[key] = med
        note = self._cpu_note(key.replace("_ms", "_server_cpu_ms"), cpus)
        self.out(f"GET /v2.0/ports with {count} ports: median {med} ms "
                 f"(min {_ms(min(lat))}, max {_ms(max(lat))}, n={samples}, "
                 f"{len(raw) / 1e6:.1f} MB){note}")

    def create_latency(self, key, samples):
        lat = [self._create(self.client) for _ in range(samples)]
        med = _ms(statistics.median(lat))
        self.result[key] = med
        self.out(f"port create with {self.total - samples} ports allocated: median {med} ms "
                 f"(min {_ms(min(lat))}, max {_ms(max(lat))}, n={samples})")

    def ip_availability(self, key, samples):
        admin = Client(self.port, project="bench-admin", roles="admin,member,reader")
        lat = []
        for _ in range(samples):
            t0 = time.perf_counter()
            _status, raw = admin.call(
                "GET", f"/v2.0/network-ip-availabilities/{self.net_id}", want=200)
            lat.append(time.perf_counter() - t0)
        admin.close()
        used = json.loads(raw)["network_ip_availability"]["used_ips"]
        if used != self.total:
            raise RuntimeError(f"used_ips {used}, expected {self.total}")
        med = _ms(statistics.median(lat))
        self.result[key] = med
        self.out(f"IP availability of a network with {used} ports: median {med} ms "
                 f"(min {_ms(min(lat))}, max {_ms(max(lat))}, n={samples})")

    def list_policy(self, samples, n=1000, server_pid=None):
        """GET /v2.0/ports with ``n`` ports, as an admin and as a member;
        with ``server_pid``, also the server's CPU time per listing (steadier
        than wall time on a busy machine)."""
        self.client = Client(self.port, roles="member")
        self.setup()
        self.populate(n)
        for key, client in (("list_1k_member_ms", self.client),
                            ("list_1k_admin_ms", Client(self.port, project="bench-admin",
                                                        roles="admin,member,reader"))):
            lat = []
            client.call("GET", "/v2.0/ports", want=200)  # warm-up
            cpu0 = _cpu_seconds(server_pid)
            for _ in range(samples):
                t0 = time.perf_counter()
                _status, raw = client.call("GET", "/v2.0/ports", want=200)
                lat.append(time.perf_counter() - t0)
                count = len(json.loads(raw)["ports"])
                if count != self.total:
                    raise RuntimeError(f"{key}: listed {count} ports, expected {self.total}")
            cpu = (_cpu_seconds(server_pid) - cpu0) / samples if server_pid else None
            med = _ms(statistics.median(lat))
            self.result[key] = med
            cpu_txt = ""
            if cpu is not None:
                self.result[key.replace("_ms", "_server_cpu_ms")] = _ms(cpu)
                cpu_txt = f", server CPU {_ms(cpu)} ms per listing"
            self.out(f"GET /v2.0/ports with {count} ports as {key.split('_')[2]}: median {med} ms "
                     f"(min {_ms(min(lat))}, max {_ms(max(lat))}, n={samples}){cpu_txt}")
            client.close()
        return self.result

    def run(self, rates_only=False, bulk_list=False):
        self.setup()
        if not bulk_list:
            self.creates_1()
            self.creates_8()
        if rates_only:
            self.client.close()
            return self.result
        if not bulk_list:
            self.populate(self.c["list_small"])
            self.list_ports("list_1k_ms", self.c["list_samples"])
        self.bulk_create()
        self.populate(self.c["list_large"])
        self.list_ports("list_10k_ms", self.c["list_large_samples"])
        if bulk_list:
            self.client.close()
            return self.result
        self.populate(self.c["populated"])
        self.create_latency("create_at_60k_ms", self.c["create_samples"])
        self.ip_availability("ip_availability_ms", self.c["list_samples"])
        self.client.close()
        return self.result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--workers", type=int, default=1, help="api_workers of the server")
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    p.add_argument("--rates-only", action="store_true",
                   help="only the create rates (no lists, no 60k population)")
    p.add_argument("--list-policy", action="store_true",
                   help="only GET /v2.0/ports with 1,000 ports as admin and as member")
    p.add_argument("--bulk-list", action="store_true",
                   help="only the bulk creates and the 10,000-port listing")
    p.add_argument("--samples", type=int, default=21, help="samples for --list-policy")
    p.add_argument("--port-quota", type=int, default=-1,
                   help="[quotas] quota_port of the server (-1: unlimited)")
    p.add_argument("--keep-log", action="store_true", help="print the server log's path")
    args = p.parse_args(argv)
    counts = QUICK if args.quick else FULL

    with deployment(args.db, workers=args.workers,
                    extra_conf=f"[quotas]\nquota_port = {args.port_quota}\n",
                    keep_log=args.keep_log) as dep:
        server = dep.server
        print(f"bench/api.py: db={args.db} workers={args.workers} "
              f"{'quick' if args.quick else 'full'} run; server pid {server.proc.pid}",
              flush=True)
        t0 = time.perf_counter()
        bench = Bench(server.port, counts, out=lambda s: print(s, flush=True),
                      server_pid=server.proc.pid)
        if args.list_policy:
            result = bench.list_policy(args.samples, server_pid=server.proc.pid)
        else:
            result = bench.run(rates_only=args.rates_only, bulk_list=args.bulk_list)
        print(f"total {time.perf_counter() - t0:.0f}s", flush=True)
    line = {"bench": "api", "db": args.db, "workers": args.workers, "quick": args.quick,
            "port_quota": args.port_quota}
    line.update(result)
    line["counts"] = counts
    print(json.dumps(line, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
