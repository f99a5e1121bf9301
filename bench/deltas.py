"""Delta size benchmark (issue 17): the bytes and member addresses one
host's delta carries per change, with partial group updates
(``features=group_members,group_rules``) and without (``group_members``
only: a rule change or a change of one of the host's own ports sends
every group it needs with every member).

A real quantum-ovs-server on SQLite; ``ports`` ports (every one in the
project's default group, whose rules name it as a remote group) bound
over ``hosts`` registered hosts.  The measured host holds ports like the
others.  Per sample, one change, then the host's delta since its
revision read in both formats (the same change, the same rows):

    rule_change      a rule added to the default group
    local_port       a port bound to the measured host created
    port_move        one of its ports moved from the default group to
                     another group (and back on the next sample)
    remote_port      a port bound to another host created (reference)

Prints medians and ends with ONE JSON line: ``<change>_delta_kb`` and
``<change>_addresses`` (member addresses carried: groups' member_ips and
group_members' addresses), ``..._before`` for the older format, and
``<change>_ms`` (the delta request's latency, partial format).
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quantum_ovs.testing.client import Client  # noqa: E402
from quantum_ovs.testing.server import deployment  # noqa: E402

PROJECT = "deltas"
TOKEN = "deltas-bench-agent-token"
PARTIAL, WHOLE = "group_members,group_rules", "group_members"
BULK = 500


def host_name(i):
    return f"dl-{i:04d}"


class Bench:
    def __init__(self, port, ports, hosts, out=print):
        self.c = Client(port, project=PROJECT, roles="admin", timeout=600)
        self.agent = Client(port, project=PROJECT, timeout=600)
        self.agent.headers["X-Agent-Token"] = TOKEN
        self.ports, self.hosts, self.out = ports, hosts, out
        self.me = host_name(0)
        self.rev = None

    def setup(self):
        t0 = time.perf_counter()
        for i in range(self.hosts):
            self.agent.json("POST", "/agent-api/v1/agents", {
                "host": host_name(i), "tunnel_ip": f"10.{i // 250}.{i % 250}.1",
                "configurations": {"tunnel_types": ["vxlan"]}, "started": True})
        net = self.c.json("POST", "/v2.0/networks", {"network": {"name": "d"}}, 201)
        self.net = net["network"]["id"]
        self.c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": self.net, "cidr": "10.128.0.0/16", "ip_version": 4}}, 201)
        made = 0
        while made < self.ports:
            k = min(BULK, self.ports - made)
            self.c.json("POST", "/v2.0/ports", {"ports": [
                {"network_id": self.net, "binding:host_id": host_name((made + j) % self.hosts)}
                for j in range(k)]}, 201)
            made += k
        self.dflt = self.c.json("GET", "/v2.0/security-groups?name=default"
                                )["security_groups"][0]["id"]
        self.web = self.c.json("POST", "/v2.0/security-groups", {
            "security_group": {"name": "web"}}, 201)["security_group"]["id"]
        self.mine = [p["id"] for p in self.c.json(
            "GET", f"/v2.0/ports?binding:host_id={self.me}&fields=id")["ports"]]
        full, _ = self.state(-1, PARTIAL)
        self.rev = full["revision"]
        self.out(f"{self.ports} ports on {self.hosts} hosts in {time.perf_counter() - t0:.1f}s; "
                 f"{self.me} holds {len(self.mine)}; full view "
                 f"{len(json.dumps(full)) / 1024:.0f} KB")

    def state(self, since, features):
        q = urllib.parse.urlencode({"since": since, "timeout": 0, "features": features})
        t0 = time.perf_counter()
        status, raw = self.agent.call("GET", f"/agent-api/v1/hosts/{self.me}/state?{q}")
        el = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"state: HTTP {status}: {raw[:300]!r}")
        return json.loads(raw), (el, len(raw))

    def sample(self, change, i):
        if change == "rule_change":
            self.c.json("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": self.dflt, "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": 2000 + i, "port_range_max": 2000 + i}},
                201)
        elif change == "local_port":
            self.c.json("POST", "/v2.0/ports", {"port": {
                "network_id": self.net, "binding:host_id": self.me}}, 201)
        elif change == "port_move":
            groups = [self.web] if i % 2 == 0 else [self.dflt]
            self.c.json("PUT", f"/v2.0/ports/{self.mine[0]}", {"port": {
                "security_groups": groups}})
        elif change == "remote_port":
            self.c.json("POST", "/v2.0/ports", {"port": {
                "network_id": self.net, "binding:host_id": host_name(1)}}, 201)
        out = {}
        # (Both read the same rows; the second read shares the server's
        # memo of the first: alternate which goes first.)
        order = [("before", WHOLE), ("after", PARTIAL)]
        for label, features in order if i % 2 else order[::-1]:
            reply, (el, size) = self.state(self.rev, features)
            if reply["full"]:
                raise RuntimeError(f"{change}: a full view, not a delta")
            d = reply["delta"]
            addrs = (sum(len(g["member_ips"]) for g in d["security_groups"]) +
                     sum(len(g["addresses"]) for g in d["group_members"]))
            out[label] = (size, addrs, el)
        self.rev = reply["revision"]
        return out

    def run(self, samples):
        result = {}
        for change in ("rule_change", "local_port", "port_move", "remote_port"):
            got = [self.sample(change, i) for i in range(samples)]
            for label, suffix in (("before", "_before"), ("after", "")):
                kb = statistics.median(g[label][0] for g in got) / 1024
                addrs = statistics.median(g[label][1] for g in got)
                ms = statistics.median(g[label][2] for g in got) * 1000
                result[f"{change}_delta_kb{suffix}"] = round(kb, 2)
                result[f"{change}_addresses{suffix}"] = addrs
                result[f"{change}_ms{suffix}"] = round(ms, 1)
                self.out(f"{change:12s} {label:6s}: median {kb:8.2f} KB, {addrs:6.0f} addresses, "
                         f"{ms:6.1f} ms per delta")
        return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=10000)
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--samples", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="1,000 ports, 3 samples")
    args = p.parse_args(argv)
    if args.quick:
        args.ports, args.samples = 1000, 3
    conf = (f"agent_down_time = 86400\n[quotas]\nquota_port = -1\n"
            f"[agent_api]\ntoken = {TOKEN}\n")
    with deployment("sqlite", extra_conf=conf, prefix="qovs-deltas-", name="deltas") as dep:
        print(f"bench/deltas.py: {args.ports} ports, {args.hosts} hosts, "
              f"{args.samples} samples per change", flush=True)
        bench = Bench(dep.server.port, args.ports, args.hosts,
                      out=lambda s: print(s, flush=True))
        bench.setup()
        result = bench.run(args.samples)
    line = {"bench": "deltas", "ports": args.ports, "hosts": args.hosts,
            "samples": args.samples}
    line.update(result)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
