"""Metadata benchmark: one GET of an instance's meta_data.json through the
host's metadata proxy to a nova-metadata stand-in.

A real quantum-ovs-server (SQLite), a private Open vSwitch in its own
namespace, the agent in this process with its metadata proxy
(agent/metadata), nova's metadata API as quantum_ovs/testing/nova_metadata.py
(it checks the signature).  One instance (a namespace on br-int) asks
``http://169.254.169.254/openstack/latest/meta_data.json``: a new TCP
connection per GET, from a socket made inside the instance's namespace
(so no process start is measured).  Prints the median of ``runs`` GETs
(after a few warm-up ones), the median of the same through ``curl`` (a
process per GET, as cloud-init's tools see it) and the stand-in alone,
and ends with one JSON line ``{"metadata_ms": ...}``.

``--quick`` takes fewer curl samples (the key stays).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.daemon import Agent, Settings  # noqa: E402
from agent.metadata import namespace  # noqa: E402
from agent.metadata.settings import MetadataSettings  # noqa: E402
from quantum_ovs.testing.ovs import PrivateOVS, in_netns, missing_prerequisites  # noqa: E402
from quantum_ovs.testing.server import ServerProcess  # noqa: E402
from quantum_ovs.testing.nova_metadata import NovaMetadata  # noqa: E402

HOST = "bench-md"
SECRET = "bench-secret"
PATH = "/openstack/latest/meta_data.json"


def api(url, method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "X-Project-Id": "bench", "X-Roles": "admin"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def get(ns_sock_factory, host="169.254.169.254", path=PATH) -> tuple[int, bytes]:
    s = ns_sock_factory()
    try:
        s.settimeout(5)
        s.connect((host, 80))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    why = missing_prerequisites()
    if why:
        print(f"skipped: {why}")
        print(json.dumps({"metadata_ms": None, "skipped": why}))
        return 0
    tmp = tempfile.mkdtemp(prefix="qovs-bench-md-")
    with ServerProcess(f"sqlite:///{tmp}/md.sqlite") as server, PrivateOVS() as ovs, \
            NovaMetadata(SECRET) as nova:
        md = MetadataSettings(shared_secret=SECRET, nova_host=nova.host, nova_port=nova.port,
                              bridge_netns=ovs.ns, namespace="qmeta-" + uuid.uuid4().hex[:8])
        agent = Agent(Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                               token=server.agent_credential(HOST), datapath_type="netdev",
                               local_ip="192.0.2.1", of_listen=f"unix:{ovs.rundir}/of.sock",
                               state_path=f"{tmp}/state", report_interval=5,
                               polling_interval=5, metadata=md)).start()
        try:
            net = api(server.url, "POST", "/v2.0/networks", {"network": {"name": "n"}})["network"]
            api(server.url, "POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["id"], "cidr": "10.30.0.0/24", "ip_version": 4}})
            vm = str(uuid.uuid4())
            port = api(server.url, "POST", "/v2.0/ports", {"port": {
                "network_id": net["id"], "binding:host_id": HOST, "device_id": vm,
                "device_owner": "compute:nova"}})["port"]
            nova.add_instance(vm, "bench", "bench-vm")
            ip = port["fixed_ips"][0]["ip_address"]
            inst = ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])
            inst.exec("ip", "route", "add", "169.254.169.254", "dev", inst.dev)

            def make():
                return in_netns(inst.ns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)

            deadline = time.monotonic() + 30
            while True:
                try:
                    status, body = get(make)
                except OSError:
                    status, body = 0, b""
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if status != 200 or json.loads(body)["uuid"] != vm:
                print(f"metadata not served: {status} {body[:200]!r}")
                return 1
            socks = [make() for _ in range(args.runs + 5)]
            it = iter(socks)
            samples = []
            for i in range(args.runs + 5):
                t = time.perf_counter()
                status, body = get(lambda: next(it))
                dt = (time.perf_counter() - t) * 1000
                assert status == 200, (status, body)
                if i >= 5:
                    samples.append(dt)
            curl_samples = []
            for _ in range(5 if args.quick else 20):
                t = time.perf_counter()
                subprocess.run(["ip", "netns", "exec", inst.ns, "curl", "-sf", "-o",
                                "/dev/null", f"http://169.254.169.254{PATH}"], check=True)
                curl_samples.append((time.perf_counter() - t) * 1000)
            direct = []
            for _ in range(20):
                t = time.perf_counter()
                req = urllib.request.Request(
                    f"http://{nova.host}:{nova.port}{PATH}",
                    headers=agent.metadata.proxy.headers_for(
                        agent.metadata.lookup(_source(agent, port["id"]))))
                urllib.request.urlopen(req, timeout=5).read()
                direct.append((time.perf_counter() - t) * 1000)
        finally:
            agent.stop()
            namespace.remove(agent.ovsdb, "br-int", HOST, md)
    med = statistics.median(samples)
    print(f"metadata GET from an instance through the proxy: median {med:.2f} ms, "
          f"p90 {sorted(samples)[int(len(samples) * 0.9)]:.2f} ms ({len(samples)} GETs)")
    print(f"  the same with curl (a process per GET): median "
          f"{statistics.median(curl_samples):.2f} ms ({len(curl_samples)})")
    print(f"  the stand-in alone (signed GET from the host): median "
          f"{statistics.median(direct):.2f} ms")
    print(json.dumps({"metadata_ms": round(med, 3),
                      "metadata_curl_ms": round(statistics.median(curl_samples), 3),
                      "metadata_direct_ms": round(statistics.median(direct), 3),
                      "runs": len(samples)}))
    return 0


def _source(agent, port_id):
    from quantum_ovs.compiler.rules import metadata as md
    return md.source_address(agent.vifs[port_id], 0)


if __name__ == "__main__":
    sys.exit(main())
