"""Floating IP benchmark: how soon a floating IP carries traffic after the
API call that associates it.

A real quantum-ovs-server (SQLite, the router service plugin), a private
Open vSwitch in its own namespace, the agent in this process (a gateway
host: ``[agent] gateway = true``, ``bridge_mappings = public:br-ex``);
an "internet" namespace on br-ex (203.0.113.1, the external subnet's
gateway); a router with its gateway on the flat external network and an
interface on a tenant subnet; one instance (a namespace on br-int) on it,
ICMP let in by its security group.  Then, ``--runs`` times: the floating
IP is disassociated (and seen to stop answering), the clock starts, ``PUT
/v2.0/floatingips/{id}`` associates it with the instance's port, and the
internet pings the floating IP every 2 ms until the first reply:

    fip_ready_ms     PUT sent -> first echo reply at the internet (median)
    fip_put_ms       the PUT's own answer time (median)

Prints medians and ends with one JSON line.  ``--quick``: 5 runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.daemon import Agent, Settings  # noqa: E402
from bench.agent import Pinger  # noqa: E402
from quantum_ovs.testing.ovs import (  # noqa: E402
    PrivateOVS,
    missing_prerequisites,
    netns_exec,
    rand_name,
    run,
)
from quantum_ovs.testing.server import ServerProcess  # noqa: E402

HOST = "bench-fip"
INTERNET = "203.0.113.1"


class Api:
    def __init__(self, url):
        self.url = url

    def __call__(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            headers={"Content-Type": "application/json", "X-Project-Id": "bench",
                     "X-Roles": "admin"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None


def wait(fn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs", type=int)
    a = p.parse_args(argv)
    runs = a.runs or (5 if a.quick else 20)
    reason = missing_prerequisites()
    if reason:
        raise SystemExit(f"bench/fip.py cannot run here: {reason}")
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="qovs-bench-fip-")
    server = ServerProcess(f"sqlite:///{tmp}/fip.sqlite",
                           extra_conf="service_plugins = router\n").start()
    ovs = PrivateOVS().start()
    agent = None
    inet = rand_name("qinet-", 6)
    pinger = None
    try:
        s = Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                     token=server.agent_credential(HOST, gateway=True), datapath_type="netdev",
                     local_ip="192.0.2.1", tunnel_types=("vxlan",),
                     bridge_mappings={"public": "br-ex"}, of_socket=ovs.listen_socket(),
                     state_path=os.path.join(tmp, "state"), gateway=True)
        agent = Agent(s).start()
        if not agent.ready.wait(30):
            raise RuntimeError("agent not ready")
        run("ip", "netns", "add", inet)
        sw = rand_name("ex", 8)
        run("ip", "link", "add", "eth0", "netns", inet, "type", "veth", "peer", "name", sw,
            "netns", ovs.ns)
        ovs.exec("ip", "link", "set", sw, "up")
        ovs.vsctl("add-port", "br-ex", sw)
        for cmd in (("ip", "link", "set", "lo", "up"), ("ip", "link", "set", "eth0", "up"),
                    ("ip", "addr", "add", f"{INTERNET}/24", "dev", "eth0")):
            netns_exec(inet, *cmd)
        api = Api(server.url)
        ext = api("POST", "/v2.0/networks", {"network": {
            "name": "public", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public"}})["network"]
        api("POST", "/v2.0/subnets", {"subnet": {
            "network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
            "gateway_ip": INTERNET, "enable_dhcp": False}})
        net = api("POST", "/v2.0/networks", {"network": {"name": "tenant"}})["network"]
        sub = api("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.50.0.0/24", "ip_version": 4}})["subnet"]
        router = api("POST", "/v2.0/routers", {"router": {
            "name": "r", "external_gateway_info": {"network_id": ext["id"]}}})["router"]
        api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
            {"subnet_id": sub["id"]})
        sg = api("GET", "/v2.0/security-groups?name=default")["security_groups"][0]
        api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp"}})
        port = api("POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST}})["port"]
        ip = port["fixed_ips"][0]["ip_address"]
        inst = ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])
        inst.exec("ip", "route", "add", "default", "via", sub["gateway_ip"])
        if not wait(lambda: api("GET", f"/v2.0/ports/{port['id']}")["port"]["status"]
                    == "ACTIVE", 30):
            raise RuntimeError("the instance's port did not become ACTIVE")
        fip = api("POST", "/v2.0/floatingips", {"floatingip": {
            "floating_network_id": ext["id"]}})["floatingip"]
        addr = fip["floating_ip_address"]
        path = f"/v2.0/floatingips/{fip['id']}"
        pinger = Pinger(inet)
        ready, put = [], []
        for i in range(runs + 1):  # the first run warms up (ARP, caches)
            api("PUT", path, {"floatingip": {"port_id": None}})
            # disassociated: no answer for a while
            if not wait(lambda: pinger.first_reply(addr, 0.3) is None, 10):
                raise RuntimeError("the floating IP still answers after disassociation")
            t0 = time.monotonic()
            api("PUT", path, {"floatingip": {"port_id": port["id"]}})
            t_put = time.monotonic()
            got = pinger.first_reply(addr, 10)
            if got is None:
                print(netns_exec(inet, "ping", "-c", "2", "-W", "1", addr, check=False),
                      netns_exec(inet, "ip", "neigh", check=False),
                      api("GET", path), file=sys.stderr)
                if os.environ.get("QOVS_BENCH_DEBUG"):
                    print(ovs.ofctl("dump-flows", "br-int"), file=sys.stderr)
                raise RuntimeError("no reply through the floating IP within 10 s")
            if i:
                ready.append(got - t0)
                put.append(t_put - t0)
                print(f"run {i:2d}: first reply {(got - t0) * 1000:7.1f} ms after the PUT "
                      f"(PUT answered in {(t_put - t0) * 1000:.1f} ms)", flush=True)
        med = statistics.median(ready) * 1000
        p90 = sorted(ready)[int(0.9 * (len(ready) - 1))] * 1000
        print(f"fip_ready_ms median {med:.1f}, p90 {p90:.1f} ({runs} runs); "
              f"PUT median {statistics.median(put) * 1000:.1f} ms", flush=True)
        print(json.dumps({"bench": "fip", "quick": a.quick, "runs": runs,
                          "fip_ready_ms": round(med, 1), "fip_ready_p90_ms": round(p90, 1),
                          "fip_put_ms": round(statistics.median(put) * 1000, 1)}))
    finally:
        if pinger is not None:
            pinger.close()
        if agent is not None:
            agent.stop()
        run("ip", "netns", "del", inet, check=False)
        ovs.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
