"""Routers side by side with OVN: the same logical routers in quantum-ovs and
in OVN 23.03 (Debian's ovn-central + ovn-host), on the same machine, one
after the other.

Topology (identical in both): R routers x S subnets; network n (router
n // S) has subnet 10.<n>>8>.<n&255>.0/24, gateway .1 (DHCP off), one
security group (egress IPv4 any, ingress IPv4 from the group itself) and
P ports (MAC 0a:00:NN:NN:JJ:JJ, IP .<j+10>, port security on); the first
L ports of every network are bound to the local hypervisor (internal OVS
ports with external_ids:iface-id), the others to a fake remote host
(tunnel 127.0.0.2).  Every router starts with S-1 interfaces (the
gateways of its first S-1 subnets).

Measured (``--reps`` repetitions, medians):
  interface add   router k gets the interface of its last subnet.  Ours:
                  PUT /v2.0/routers/{id}/add_router_interface {subnet_id}
                  until the local agent has committed the bundle of the
                  batch that carried the router with that interface (the
                  agent runs in this process; Channel.apply returns once the
                  switch committed the bundle).  OVN: one ovn-nbctl
                  --wait=hv transaction (lrp-add + lsp-add + type router +
                  addresses router + router-port) until ovn-controller has
                  installed the flows (--wait=hv).
  route add       router k gets 172.16.k.0/24 via a port on its first
                  subnet.  Ours: PUT .../add_extraroutes until the agent
                  applied it; OVN: ovn-nbctl --wait=hv lr-route-add.
  flows           br-int flow count once everything is in (and after).

OVN runs under a private directory (its own ovsdb-servers, northd,
ovn-controller, and an ovs-vswitchd in its own network namespace,
userspace datapath); every daemon is stopped by the PID in its pidfile.
Run as root from the project's root:

    .venv/bin/python bench/ovn_routers.py --routers 10 --subnets 4 --ports 20 --local 2

Prints both systems' figures and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.daemon import Agent, Settings  # noqa: E402
from quantum_ovs.testing.ovs import PrivateOVS  # noqa: E402
from quantum_ovs.testing.server import ServerProcess  # noqa: E402

HOST = "hv-local"
REMOTE = "hv-remote"
PROJECT = "bench"
CAP_S = 600.0


# ---------------------------------------------------------------- topology
class Topo:
    def __init__(self, routers, subnets, ports, local):
        self.R, self.S, self.P, self.L = routers, subnets, ports, local
        self.N = routers * subnets

    @staticmethod
    def cidr(n):
        return "10.%d.%d.0/24" % (n >> 8, n & 255)

    @staticmethod
    def gateway(n):
        return "10.%d.%d.1" % (n >> 8, n & 255)

    @staticmethod
    def ip(n, j):
        return "10.%d.%d.%d" % (n >> 8, n & 255, j + 10)

    @staticmethod
    def mac(n, j):
        return "0a:00:%02x:%02x:%02x:%02x" % (n >> 8, n & 255, j >> 8, j & 255)

    @staticmethod
    def rmac(n):
        return "0a:01:%02x:%02x:00:01" % (n >> 8, n & 255)

    def net(self, r, s):
        return r * self.S + s

    def local(self, j):
        return j < self.L

    @staticmethod
    def route(k):
        return "172.16.%d.0/24" % k

    def nexthop(self, k):
        return self.ip(self.net(k, 0), 0)


def median_ms(xs):
    return round(statistics.median(xs) * 1000, 1) if xs else None


# ---------------------------------------------------------------- ours
class TimedAgent(Agent):
    """The agent, unchanged, plus the wall time at which each router
    interface / route was first in a batch it had applied (flows committed
    by then)."""

    def __init__(self, settings):
        super().__init__(settings)
        self.cond = threading.Condition()
        self.marks = {}
        self.handle_ms = {}  # batch end -> its duration (delta to flows committed)
        self.last_change = time.monotonic()

    def _handle(self, batch):
        mods0 = self.stats["flow_mods"]
        t_start = time.monotonic()
        super()._handle(batch)
        t = time.monotonic()
        with self.cond:
            self.handle_ms[t] = round((t - t_start) * 1000, 1)
            if self.stats["flow_mods"] != mods0:
                self.last_change = t
            for kind, value in batch:
                if kind not in ("full", "delta"):
                    continue
                for r in value.routers:
                    for i in r.interfaces:
                        self.marks.setdefault(("if", r.id, i.subnet_id), t)
                    for h in r.routes:
                        dest = str(ipaddress.ip_network(h.destination, strict=False))
                        self.marks.setdefault(("route", r.id, dest), t)
            self.cond.notify_all()

    def wait_mark(self, key, timeout=CAP_S):
        with self.cond:
            self.cond.wait_for(lambda: key in self.marks, timeout)
            return self.marks.get(key)


class Api:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CAP_S)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "X-Project-Id": PROJECT, "X-Roles": "admin"}

    def call(self, method, path, body=None, want=200, headers=None):
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers, **(headers or {}))
        try:
            self.conn.request(method, path, body=data, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server dropped the idle keep-alive connection (the request
            # was not sent): again on a new one.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CAP_S)
            self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != want:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:1500]!r}")
        return json.loads(raw) if raw else None


class Ours:
    def __init__(self, topo, reps, workdir):
        self.t, self.reps, self.dir = topo, reps, workdir
        self.server = self.ovs = self.agent = None
        self.nets, self.subs, self.routers, self.groups = {}, {}, {}, {}
        self.out = {}

    def start(self):
        conf = ("agent_down_time = 86400\n[quotas]\nquota_port = -1\nquota_network = -1\n"
                "quota_subnet = -1\nquota_security_group = -1\n"
                "quota_security_group_rule = -1\nquota_router = -1\n")
        self.server = ServerProcess(f"sqlite:///{self.dir}/bench.sqlite", extra_conf=conf,
                                    log_path=os.path.join(self.dir, "server.log")).start()
        self.ovs = PrivateOVS().start()
        # br-int as for OVN below (the agent takes it over): netdev, secure.
        self.ovs.add_bridge("br-int")
        self.ovs.vsctl("set", "Bridge", "br-int", "fail-mode=secure",
                       "other-config:disable-in-band=true")
        self.api = Api(self.server.port)
        self.token = self.server.agent_credential(HOST)
        for host, tip in ((HOST, "127.0.0.1"), (REMOTE, "127.0.0.2")):
            tok = self.token if host == HOST else self.server.agent_credential(host)
            self.api.call("POST", "/agent-api/v1/agents", {
                "host": host, "tunnel_ip": tip,
                "configurations": {"integration_bridge": "br-int", "datapath_type": "netdev",
                                   "tunnel_types": ["vxlan"], "bridge_mappings": {}},
                "started": False}, headers={"X-Agent-Token": tok})

    def stop(self):
        if self.agent is not None:
            self.agent.stop()
        if self.ovs is not None:
            self.ovs.stop()
        if self.server is not None:
            self.server.stop()

    def flow_count(self):
        return self.ovs.flow_count()

    def populate(self):
        t, api = self.t, self.api
        t0 = time.monotonic()
        for s in range(0, t.N, 100):
            rng = range(s, min(t.N, s + 100))
            nets = api.call("POST", "/v2.0/networks", {"networks": [
                {"name": "ls%d" % n} for n in rng]}, 201)["networks"]
            for n, net in zip(rng, nets):
                self.nets[n] = net["id"]
            subs = api.call("POST", "/v2.0/subnets", {"subnets": [
                {"network_id": self.nets[n], "cidr": t.cidr(n), "ip_version": 4,
                 "gateway_ip": t.gateway(n), "enable_dhcp": False} for n in rng]},
                201)["subnets"]
            for n, sub in zip(rng, subs):
                self.subs[n] = sub["id"]
        for n in range(t.N):
            g = api.call("POST", "/v2.0/security-groups",
                         {"security_group": {"name": "sg%d" % n}}, 201)["security_group"]
            self.groups[n] = g["id"]
            for r in g["security_group_rules"]:
                if r["ethertype"] != "IPv4" or r["direction"] != "egress":
                    api.call("DELETE", f"/v2.0/security-group-rules/{r['id']}", want=204)
            api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": g["id"], "direction": "ingress", "ethertype": "IPv4",
                "remote_group_id": g["id"]}}, 201)
        bodies = [{"network_id": self.nets[n], "name": "ls%d-p%d" % (n, j),
                   "mac_address": t.mac(n, j),
                   "fixed_ips": [{"subnet_id": self.subs[n], "ip_address": t.ip(n, j)}],
                   "security_groups": [self.groups[n]], "port_security_enabled": True,
                   "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                   "binding:host_id": HOST if t.local(j) else REMOTE}
                  for n in range(t.N) for j in range(t.P)]
        self.local_ports = []
        for s in range(0, len(bodies), 200):
            for p in api.call("POST", "/v2.0/ports", {"ports": bodies[s:s + 200]},
                              201)["ports"]:
                if p["binding:host_id"] == HOST:
                    self.local_ports.append(p["id"])
        for r in range(t.R):
            self.routers[r] = api.call("POST", "/v2.0/routers", {"router": {
                "name": "lr%d" % r}}, 201)["router"]["id"]
            for s in range(t.S - 1):
                api.call("PUT", f"/v2.0/routers/{self.routers[r]}/add_router_interface",
                         {"subnet_id": self.subs[t.net(r, s)]})
        for s in range(0, len(self.local_ports), 200):
            args = []
            for k, pid in enumerate(self.local_ports[s:s + 200], start=s):
                v = "vif%d" % k
                args += ["--", "add-port", "br-int", v, "--", "set", "Interface", v,
                         "type=internal", "external_ids:iface-id=%s" % pid]
            self.ovs.vsctl(*args, timeout=300)
        self.out["populate_s"] = round(time.monotonic() - t0, 2)

    def start_agent(self):
        t0 = time.monotonic()
        s = Settings(host=HOST, server_url=self.server.url, ovsdb=self.ovs.db_remote,
                     token=self.token, datapath_type="netdev", local_ip="127.0.0.1",
                     tunnel_types=("vxlan",), of_socket=self.ovs.listen_socket(),
                     state_path=os.path.join(self.dir, "state"), report_interval=30,
                     polling_interval=25)
        self.agent = TimedAgent(s).start()
        if not self.agent.ready.wait(CAP_S):
            raise RuntimeError("agent not ready")
        deadline = time.monotonic() + CAP_S
        while len(self.agent.reported) < len(self.local_ports):
            if time.monotonic() > deadline:
                raise RuntimeError("local ports never all reported")
            time.sleep(0.05)
        # Agent started -> ready and every local port reported installed.
        self.out["agent_start_s"] = round(time.monotonic() - t0, 3)
        self.quiesce()
        self.out["flows_start"] = self.flow_count()

    def quiesce(self, settle=1.0):
        while True:
            with self.agent.cond:
                idle = time.monotonic() - self.agent.last_change
            if self.agent.events.qsize() == 0 and idle >= settle:
                return
            time.sleep(0.1)

    def warm(self):
        """A fresh keep-alive connection before a timed call (not timed)."""
        self.api.conn.close()
        self.api.call("GET", "/v2.0/routers?limit=1&fields=id")

    def measure(self):
        t, api = self.t, self.api
        ifs, routes, applies = [], [], []
        for k in range(self.reps):
            rid, sid = self.routers[k], self.subs[t.net(k, t.S - 1)]
            self.warm()
            t0 = time.monotonic()
            api.call("PUT", f"/v2.0/routers/{rid}/add_router_interface", {"subnet_id": sid})
            t_api = time.monotonic()
            t1 = self.agent.wait_mark(("if", rid, sid))
            if t1 is None:
                raise RuntimeError("interface never applied")
            ifs.append(t1 - t0)
            applies.append((round(self.agent.handle_ms[t1], 1),
                            round(self.agent.last_apply_ms, 1)))
            print(f"  ours interface add #{k}: {(t1 - t0) * 1000:.1f} ms "
                  f"(API {(t_api - t0) * 1000:.1f} ms, agent batch {applies[-1][0]} ms "
                  f"of which bundle {applies[-1][1]} ms)", flush=True)
            self.quiesce(0.5)
        self.out["flows_after_interfaces"] = self.flow_count()
        for k in range(self.reps):
            rid = self.routers[k]
            self.warm()
            t0 = time.monotonic()
            api.call("PUT", f"/v2.0/routers/{rid}/add_extraroutes", {"router": {"routes": [
                {"destination": t.route(k), "nexthop": t.nexthop(k)}]}})
            t1 = self.agent.wait_mark(("route", rid, t.route(k)))
            if t1 is None:
                raise RuntimeError("route never applied")
            routes.append(t1 - t0)
            print(f"  ours route add #{k}: {(t1 - t0) * 1000:.1f} ms", flush=True)
            self.quiesce(0.5)
        self.out["flows_end"] = self.flow_count()
        self.out["interface_add_ms"] = median_ms(ifs)
        self.out["route_add_ms"] = median_ms(routes)
        self.out["interface_add_ms_all"] = [round(x * 1000, 1) for x in ifs]
        self.out["route_add_ms_all"] = [round(x * 1000, 1) for x in routes]
        # Per interface add: the agent's batch (engine + bundle) and within
        # it the bundle (diff, flow-mods, commit), ms.
        self.out["interface_add_agent_batch_and_bundle_ms"] = applies


# ---------------------------------------------------------------- OVN
class Ovn:
    """Private OVS + OVN daemons under one directory, stopped by PID."""

    DAEMONS = ("ovn-controller", "ovn-northd", "ovs-vswitchd", "ovnsb_db", "ovnnb_db",
               "ovsdb-server")

    def __init__(self, topo, reps, workdir):
        self.t, self.reps = topo, reps
        self.d = workdir
        self.ovs_dir = os.path.join(workdir, "ovs")
        self.ovn_dir = os.path.join(workdir, "ovn")
        self.env = dict(os.environ)
        for k in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"):
            self.env[k] = self.ovs_dir
        for k in ("OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR", "OVN_SYSCONFDIR"):
            self.env[k] = self.ovn_dir
        self.ovs_db = "unix:%s/db.sock" % self.ovs_dir
        self.nb_db = "unix:%s/ovnnb_db.sock" % self.ovn_dir
        self.sb_db = "unix:%s/ovnsb_db.sock" % self.ovn_dir
        self.out = {}

    def sh(self, *cmd, timeout=CAP_S + 30):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])} -> {r.returncode}: {r.stderr[-1500:]}")
        return r.stdout

    def nbctl(self, *a, **kw):
        return self.sh("ovn-nbctl", "--db=" + self.nb_db, *a, **kw)

    def sbctl(self, *a, **kw):
        return self.sh("ovn-sbctl", "--db=" + self.sb_db, *a, **kw)

    def vsctl(self, *a, **kw):
        return self.sh("ovs-vsctl", "--db=" + self.ovs_db, *a, **kw)

    def pidfile(self, name):
        d = self.ovs_dir if name in ("ovs-vswitchd", "ovsdb-server") else self.ovn_dir
        return os.path.join(d, name + ".pid")

    def pid(self, name):
        try:
            with open(self.pidfile(name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    @staticmethod
    def wait_sock(path):
        for _ in range(100):
            if os.path.exists(path):
                return
            time.sleep(0.1)
        raise RuntimeError("no socket " + path)

    def start(self):
        os.makedirs(self.ovs_dir)
        os.makedirs(self.ovn_dir)
        o, n = self.ovs_dir, self.ovn_dir
        self.sh("ovsdb-tool", "create", f"{o}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
        self.sh("ovsdb-server", f"{o}/conf.db", f"--remote=punix:{o}/db.sock",
                f"--pidfile={self.pidfile('ovsdb-server')}", f"--log-file={o}/ovsdb-server.log",
                "--detach")
        self.wait_sock(f"{o}/db.sock")
        self.vsctl("--no-wait", "init")
        # Its own network namespace: its tap devices cannot meet another OVS's.
        self.sh("unshare", "--net", "ovs-vswitchd", self.ovs_db,
                f"--pidfile={self.pidfile('ovs-vswitchd')}",
                f"--log-file={o}/ovs-vswitchd.log", "--detach")
        for db in ("nb", "sb"):
            self.sh("ovsdb-tool", "create", f"{n}/ovn{db}_db.db",
                    f"/usr/share/ovn/ovn-{db}.ovsschema")
            self.sh("ovsdb-server", f"{n}/ovn{db}_db.db", f"--remote=punix:{n}/ovn{db}_db.sock",
                    f"--pidfile={self.pidfile('ovn%s_db' % db)}",
                    f"--unixctl={n}/ovn{db}_db.ctl", f"--log-file={n}/ovsdb-server-{db}.log",
                    "--detach")
            self.wait_sock(f"{n}/ovn{db}_db.sock")
        self.nbctl("--no-wait", "init")
        self.sbctl("init")
        self.sh("ovn-northd", f"--ovnnb-db={self.nb_db}", f"--ovnsb-db={self.sb_db}",
                f"--pidfile={self.pidfile('ovn-northd')}", f"--log-file={n}/ovn-northd.log",
                "--detach")
        self.vsctl("set", "Open_vSwitch", ".", "external_ids:system-id=" + HOST,
                   "external_ids:ovn-remote=" + self.sb_db, "external_ids:ovn-encap-type=geneve",
                   "external_ids:ovn-encap-ip=127.0.0.1", "external_ids:ovn-bridge=br-int",
                   "external_ids:ovn-bridge-datapath-type=netdev")
        self.vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                   "datapath_type=netdev", "fail-mode=secure",
                   "other-config:disable-in-band=true")
        self.sbctl("chassis-add", REMOTE, "geneve", "127.0.0.2")

    def stop(self):
        for name in self.DAEMONS:
            pid = self.pid(name)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(300):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)

    def flow_count(self):
        out = self.sh("ovs-ofctl", "-O", "OpenFlow15", "dump-aggregate", "br-int", timeout=300)
        return int(re.search(r"flow_count=(\d+)", out).group(1))

    def hvsync(self):
        self.nbctl(f"--timeout={int(CAP_S)}", "--wait=hv", "sync")

    @staticmethod
    def lsp(n, j):
        return "ls%d-p%d" % (n, j)

    def interface_args(self, r, s):
        t = self.t
        n = t.net(r, s)
        return ["--", "lrp-add", "lr%d" % r, "lrp%d" % n, t.rmac(n), t.gateway(n) + "/24",
                "--", "lsp-add", "ls%d" % n, "rp%d" % n,
                "--", "lsp-set-type", "rp%d" % n, "router",
                "--", "lsp-set-addresses", "rp%d" % n, "router",
                "--", "lsp-set-options", "rp%d" % n, "router-port=lrp%d" % n]

    def populate(self):
        t = self.t
        t0 = time.monotonic()
        nb = ["--no-wait", f"--timeout={int(CAP_S)}"]
        chunk = max(1, 2000 // t.P)
        for s in range(0, t.N, chunk):
            args = []
            for n in range(s, min(t.N, s + chunk)):
                args += ["--", "ls-add", "ls%d" % n]
                for j in range(t.P):
                    a = "%s %s" % (t.mac(n, j), t.ip(n, j))
                    args += ["--", "lsp-add", "ls%d" % n, self.lsp(n, j),
                             "--", "lsp-set-addresses", self.lsp(n, j), a,
                             "--", "lsp-set-port-security", self.lsp(n, j), a]
            self.nbctl(*nb, *args)
        allp = [self.lsp(n, j) for n in range(t.N) for j in range(t.P)]
        # Neutron's model as networking-ovn writes it: a drop-all group with
        # every port, and per security group allow-related ACLs.
        args = ["--", "pg-add", "pg_drop"] + allp
        args += ["--", "--type=port-group", "acl-add", "pg_drop", "from-lport", "1001",
                 "inport == @pg_drop && ip", "drop",
                 "--", "--type=port-group", "acl-add", "pg_drop", "to-lport", "1001",
                 "outport == @pg_drop && ip", "drop"]
        for n in range(t.N):
            g = "sg%d" % n
            args += ["--", "pg-add", g] + [self.lsp(n, j) for j in range(t.P)]
            args += ["--", "--type=port-group", "acl-add", g, "from-lport", "1002",
                     "inport == @%s && ip4" % g, "allow-related",
                     "--", "--type=port-group", "acl-add", g, "to-lport", "1002",
                     "outport == @%s && ip4 && ip4.src == $%s_ip4" % (g, g), "allow-related"]
        self.nbctl(*nb, *args)
        args = []
        for r in range(t.R):
            args += ["--", "lr-add", "lr%d" % r]
            for s in range(t.S - 1):
                args += self.interface_args(r, s)
        self.nbctl(*nb, *args)
        self.nbctl(f"--timeout={int(CAP_S)}", "--wait=sb", "sync")
        # Local ports: internal OVS ports with iface-id (as nova plugs them).
        loc = [(n, j) for n in range(t.N) for j in range(t.P) if t.local(j)]
        for s in range(0, len(loc), 200):
            args = []
            for k, (n, j) in enumerate(loc[s:s + 200], start=s):
                v = "vif%d" % k
                args += ["--", "add-port", "br-int", v, "--", "set", "Interface", v,
                         "type=internal", "external_ids:iface-id=%s" % self.lsp(n, j)]
            self.vsctl(*args, timeout=300)
        self.bind_remote()
        self.nbctl(f"--timeout={int(CAP_S)}", "--wait=sb", "sync")
        self.out["populate_s"] = round(time.monotonic() - t0, 2)

    def bind_remote(self):
        """Port_Binding.chassis = hv-remote for the non-local VIF ports, by
        _uuid in few transactions (ovn-sbctl lsp-bind looks names up one by
        one)."""
        t = self.t
        rem = {self.lsp(n, j) for n in range(t.N) for j in range(t.P) if not t.local(j)}
        out = self.sbctl("--bare", "--columns=_uuid,logical_port", "-f", "csv",
                         "--no-headings", "list", "Port_Binding")
        ch = self.sbctl("--bare", "--columns=_uuid", "find", "Chassis",
                        "name=" + REMOTE).strip()
        ops = []
        for line in out.splitlines():
            u, name = line.split(",", 1)
            if name in rem:
                ops.append({"op": "update", "table": "Port_Binding",
                            "where": [["_uuid", "==", ["uuid", u]]],
                            "row": {"chassis": ["uuid", ch]}})
        if len(ops) != len(rem):
            raise RuntimeError(f"bound {len(ops)} remote ports of {len(rem)}")
        for k in range(0, len(ops), 500):
            r = self.sh("ovsdb-client", "transact", self.sb_db,
                        json.dumps(["OVN_Southbound"] + ops[k:k + 500]))
            if '"error"' in r:
                raise RuntimeError("bind-remote: " + r[:500])

    def start_controller(self):
        t0 = time.monotonic()
        n = self.ovn_dir
        self.sh("ovn-controller", self.ovs_db, f"--pidfile={self.pidfile('ovn-controller')}",
                f"--log-file={n}/ovn-controller.log", "--detach")
        deadline = time.monotonic() + CAP_S
        while HOST not in self.sbctl("--bare", "--columns=name", "list", "Chassis_Private"):
            if time.monotonic() > deadline:
                raise RuntimeError("ovn-controller never registered")
            time.sleep(0.05)
        self.hvsync()
        t_hv = time.monotonic()
        # ... and the flow count settled (it may still be catching up).
        flows = self.flow_count()
        while True:
            time.sleep(2)
            again = self.flow_count()
            if again == flows:
                break
            flows = again
        self.out["controller_start_hv_s"] = round(t_hv - t0, 3)
        self.out["flows_start"] = flows

    def measure(self):
        t = self.t
        self.hvsync()  # nothing pending
        ifs, routes = [], []
        for k in range(self.reps):
            t0 = time.monotonic()
            self.nbctl(f"--timeout={int(CAP_S)}", "--wait=hv", *self.interface_args(k, t.S - 1))
            t1 = time.monotonic()
            ifs.append(t1 - t0)
            print(f"  OVN interface add #{k}: {(t1 - t0) * 1000:.1f} ms", flush=True)
        self.out["flows_after_interfaces"] = self.flow_count()
        for k in range(self.reps):
            t0 = time.monotonic()
            self.nbctl(f"--timeout={int(CAP_S)}", "--wait=hv", "lr-route-add", "lr%d" % k,
                       t.route(k), t.nexthop(k))
            t1 = time.monotonic()
            routes.append(t1 - t0)
            print(f"  OVN route add #{k}: {(t1 - t0) * 1000:.1f} ms", flush=True)
        self.out["flows_end"] = self.flow_count()
        self.out["lflows"] = len(self.sbctl("--bare", "--columns=_uuid", "list",
                                            "Logical_Flow").split())
        self.out["interface_add_ms"] = median_ms(ifs)
        self.out["route_add_ms"] = median_ms(routes)
        self.out["interface_add_ms_all"] = [round(x * 1000, 1) for x in ifs]
        self.out["route_add_ms_all"] = [round(x * 1000, 1) for x in routes]


# ---------------------------------------------------------------- main
def run(system, topo, reps, keep):
    workdir = tempfile.mkdtemp(prefix=f"qovs-ovnr-{system}-")
    obj = (Ours if system == "ours" else Ovn)(topo, reps, workdir)
    try:
        obj.start()
        obj.populate()
        (obj.start_agent if system == "ours" else obj.start_controller)()
        obj.measure()
    finally:
        obj.stop()
        if keep:
            print(f"{system}: logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return obj.out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routers", type=int, default=10)
    ap.add_argument("--subnets", type=int, default=4, help="per router")
    ap.add_argument("--ports", type=int, default=20, help="per network")
    ap.add_argument("--local", type=int, default=2, help="local ports per network")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["ours", "ovn"])
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args(argv)
    if args.reps > args.routers or args.subnets < 2 or args.ports > 240 or \
            args.local > args.ports:
        ap.error("need reps <= routers, subnets >= 2, local <= ports <= 240")
    logging.basicConfig(level=logging.WARNING)
    topo = Topo(args.routers, args.subnets, args.ports, args.local)
    size = dict(routers=topo.R, subnets_per_router=topo.S, networks=topo.N,
                ports=topo.N * topo.P, local_ports=topo.N * topo.L, reps=args.reps)
    print("topology:", json.dumps(size), flush=True)
    res = {}
    for system in ("ours", "ovn"):
        if args.only and args.only != system:
            continue
        print(f"== {system}", flush=True)
        res[system] = run(system, topo, args.reps, args.keep_logs)
        print(f"{system}: {json.dumps(res[system])}", flush=True)
    final = dict(size)
    for system in res:
        for key in ("interface_add_ms", "route_add_ms", "flows_start",
                    "flows_after_interfaces", "flows_end"):
            final[f"router_{key}_{system}"] = res[system].get(key)
    o, v = res.get("ours", {}), res.get("ovn", {})
    final["router_interface_add_ms_ours"] = o.get("interface_add_ms")
    final["router_interface_add_ms_ovn"] = v.get("interface_add_ms")
    if o.get("interface_add_ms") and v.get("interface_add_ms"):
        final["router_interface_add_ovn_over_ours"] = round(
            v["interface_add_ms"] / o["interface_add_ms"], 2)
    if o.get("route_add_ms") and v.get("route_add_ms"):
        final["route_add_ovn_over_ours"] = round(v["route_add_ms"] / o["route_add_ms"], 2)
    if "ovn" in res:
        final["ovn_lflows"] = v.get("lflows")
    print(json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
