"""quantum-ovs side of the side-by-side benchmark against OVN 23.03.

Adapted from the shared harness ../shared/peers/ovn-side/ (ours.py,
qagent.py, common.py, report.py; its README explains the pair); the OVN side
stays there (ovn.py) and run_all.sh beside this file runs both into one
results file.  This copy runs the tree it lives in.

Same topology as the OVN harness's topo.py, built through the Neutron API
of a real quantum-ovs-server (SQLite):

  L networks x P ports; network i has subnet 10.<i>>8>.<i&255>.0/24 (no
  gateway, DHCP off: the OVN topology has neither); port lsI-pJ has MAC
  0a:00:II:II:JJ:JJ and IP 10.<i>>8>.<i&255>.<j+1>, port security on.
  B ports bound to the real agent's host (hv-local) and plugged into br-int
  as internal ports with external_ids:iface-id (as bench.sh does); all
  others bound to hv-remote, a host registered through the agent API with
  tunnel IP 127.0.0.2 / vxlan (no agent behind it).
  Security groups: global = one group holding every port; per-switch = one
  group per network.  Rules: egress IPv4 any; ingress IPv4 from the same
  group (remote_group_id = itself).  (Neutron's extra egress IPv6 rule of a
  new group is deleted: the OVN ACLs are IPv4 only.)

Phases (each capped at 600 s):
  (b)  agent started on the populated database -> all local ports ACTIVE
       and all flows installed (quiescent); br-int flow count
  (c1) x3 one port added to an existing network (in the group) ->
       the agent has applied it; then plugged -> ACTIVE
  (c2) x3 one plain ingress rule (tcp dst N) -> applied
  (c3) one remote-group rule (tcp 443 from the group) -> applied
  (d)  agent killed (SIGTERM, by PID) and started again -> ready, every
       plugged port reported, all flows there (flow count polled every
       0.25 s meanwhile: a hitless restart never drops below)
  bundle  the physical limit: the flows (b) installed (dumped with
       ovs-ofctl --no-stats, and the meters they use) installed again by
       `ovs-ofctl -O OpenFlow14 --bundle add-flows` into an empty bridge of
       the same ovs-vswitchd; median of 3 (a new bridge each time)
(b) and (d) also record the agent's start-up timeline (qagent.py): seconds
from the agent process's start to each step.  The agent connects to br-int's
management socket ([ovs] of_connect_unix, as ovn-controller does) when its
tree has that option, else (or with --listen) it listens for ovs-vswitchd.
CPU-seconds (utime+stime from /proc) of server, agent, ovs-vswitchd and
ovsdb-server per phase.

usage: ours.py L P B global|per-switch --out results.jsonl
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))  # the tree this file is in
sys.path.insert(0, REPO)

from bench.ovn_side.common import (CAP_S, Meter, Results, added_port, ip,  # noqa: E402
                                   local_set, lsp, mac)
from quantum_ovs.testing.ovs import PrivateOVS, kill_pid, run  # noqa: E402
from quantum_ovs.testing.server import ServerProcess  # noqa: E402

HOST = "hv-local"
REMOTE = "hv-remote"
PROJECT = "sbs"
BULK = 200


def timeline(s, t0, **extra):
    """The agent's start-up steps (qagent.py), seconds after t0 (the agent
    process was started), in the order they happened."""
    marks = dict(s.get("timeline") or {}, **{k: v for k, v in extra.items() if v})
    return {k: round(v - t0, 3) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}


class Client:
    def __init__(self, port, timeout=900):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "X-Project-Id": PROJECT, "X-Roles": "admin"}

    def call(self, method, path, body=None, want=200, headers=None):
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=dict(self.headers, **(headers or {})))
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != want:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {raw[:1500]!r}")
        return json.loads(raw) if raw else None


class Ours:
    def __init__(self, L, P, B, sg, res, workdir, of_connect=False):
        self.L, self.P, self.B, self.sg = L, P, B, sg
        self.of_connect = of_connect
        self.res = res
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.server = self.ovs = self.agent = None
        self.agent_log = None
        self.groups = {}  # index -> sg id (global: {0: id})
        self.subnets = {}
        self.nets = {}
        self.meter = Meter({
            "server": lambda: self.server.proc.pid if self.server and self.server.proc else None,
            "agent": lambda: self.agent.pid if self.agent and self.agent.poll() is None else None,
            "vswitchd": lambda: self.ovs.pid("ovs-vswitchd") if self.ovs else None,
            "ovsdb": lambda: self.ovs.pid("ovsdb-server") if self.ovs else None,
        })

    # ------------------------------------------------------------ plumbing
    def start_infra(self):
        conf = ("agent_down_time = 86400\n[quotas]\nquota_port = -1\nquota_network = -1\n"
                "quota_subnet = -1\nquota_security_group = -1\n"
                "quota_security_group_rule = -1\n")
        self.server = ServerProcess(f"sqlite:///{self.dir}/qovs.sqlite", workers=1,
                                    extra_conf=conf,
                                    log_path=os.path.join(self.dir, "server.log")).start()
        self.ovs = PrivateOVS().start()
        # br-int as setup.sh makes it for OVN: netdev, fail-mode secure.
        self.ovs.vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                       "datapath_type=netdev", "fail-mode=secure", "protocols=OpenFlow13",
                       "other-config:disable-in-band=true")
        self.api = Client(self.server.port)
        # The agent API takes an agent's credential (X-Agent-Token).
        self.tokens = {h: self.server.agent_credential(h) for h in (HOST, REMOTE)}
        self.res.log(f"server pid {self.server.proc.pid} port {self.server.port}; OVS netns "
                     f"{self.ovs.ns} vswitchd {self.ovs.pid('ovs-vswitchd')}")

    def stop_all(self):
        self.stop_agent()
        if self.ovs is not None:
            self.ovs.stop()
        if self.server is not None:
            self.server.stop()

    def flow_count(self):
        return self.ovs.flow_count()

    # ------------------------------------------------------------ agent process
    def start_agent(self):
        conf = {"host": HOST, "server_url": self.server.url, "ovsdb": self.ovs.db_remote,
                "token": self.tokens[HOST],
                "local_ip": "127.0.0.1", "tunnel_types": ["vxlan"],
                "of_sock": os.path.join(self.ovs.rundir, "qovs-of.sock"),
                "state_path": os.path.join(self.dir, "state")}
        if self.of_connect:  # as ovn-controller does: the bridge's management socket
            conf["of_connect"] = os.path.join(self.ovs.rundir, "br-int.mgmt")
        self.stats_sock = os.path.join(self.dir, "stats.sock")
        if os.path.exists(self.stats_sock):
            os.unlink(self.stats_sock)
        py = os.path.join(REPO, ".venv", "bin", "python")
        # AGENT_TREE: the agent from another tree (A/B runs of the agent alone)
        env = dict(os.environ, PYTHONPATH=os.environ.get("AGENT_TREE", REPO))
        # An installed agent starts from bytecode caches: without them every
        # start compiles the project's modules again (~80 ms here).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.t_agent_start = time.time()
        self.agent_log = open(os.path.join(self.dir, "agent.log"), "a")
        script = os.environ.get("AGENT_SCRIPT", os.path.join(HERE, "qagent.py"))
        self.agent = subprocess.Popen([py, script, json.dumps(conf),
                                       self.stats_sock], cwd=env["PYTHONPATH"], env=env,
                                      stdout=self.agent_log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        return self.agent

    def stop_agent(self, sig=signal.SIGTERM):
        if self.agent is not None and self.agent.poll() is None:
            self.meter.poll()  # its last CPU reading
            kill_pid(self.agent.pid, timeout=15, sig=sig)
            self.agent.wait(10)
        self.agent = None

    def stats(self, ids=()):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect(self.stats_sock)
            s.sendall(json.dumps(list(ids)).encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return json.loads(data)
        finally:
            s.close()

    def try_stats(self, ids=()):
        try:
            return self.stats(ids)
        except OSError:
            return None

    def wait(self, cond, cap=CAP_S, every=0.02):
        """Poll cond() (returns a value or None) until it is not None or cap."""
        deadline = time.time() + cap
        while time.time() < deadline:
            if self.agent is not None and self.agent.poll() is not None:
                raise RuntimeError("agent process died: see agent.log")
            v = cond()
            if v is not None:
                return v
            time.sleep(every)
        return None

    def quiesce(self, settle=1.0):
        """Wait until the agent has nothing queued and sent no flows for
        ``settle`` seconds; returns the last stats."""
        while True:
            s = self.stats()
            last = s["last_flow_change_end"] or 0
            if s["qsize"] == 0 and time.time() - max(last, s["last_handle_end"] or 0) >= settle:
                return s
            time.sleep(0.1)

    # ------------------------------------------------------------ topology
    def register(self, host, tunnel_ip):
        self.api.call("POST", "/agent-api/v1/agents", {
            "host": host, "tunnel_ip": tunnel_ip,
            "configurations": {"integration_bridge": "br-int", "datapath_type": "netdev",
                               "tunnel_types": ["vxlan"], "bridge_mappings": {}},
            "started": False}, headers={"X-Agent-Token": self.tokens[host]})

    def sg_of(self, i):
        return self.groups[0] if self.sg == "global" else self.groups[i]

    def populate(self):
        L, P, B = self.L, self.P, self.B
        t0 = time.time()
        # The real agent's host was registered before (a restart after a
        # reboot), so its ports are bound when created; hv-remote is fake.
        self.register(HOST, "127.0.0.1")
        self.register(REMOTE, "127.0.0.2")
        for s in range(0, L, 100):
            nets = self.api.call("POST", "/v2.0/networks", {"networks": [
                {"name": "ls%d" % i} for i in range(s, min(L, s + 100))]}, 201)["networks"]
            for i, n in zip(range(s, min(L, s + 100)), nets):
                self.nets[i] = n["id"]
            subs = self.api.call("POST", "/v2.0/subnets", {"subnets": [
                {"network_id": self.nets[i], "cidr": "10.%d.%d.0/24" % (i >> 8, i & 255),
                 "ip_version": 4, "gateway_ip": None, "enable_dhcp": False}
                for i in range(s, min(L, s + 100))]}, 201)["subnets"]
            for i, sub in zip(range(s, min(L, s + 100)), subs):
                self.subnets[i] = sub["id"]
        t_nets = time.time()
        for g in ([0] if self.sg == "global" else range(L)):
            name = "sg1" if self.sg == "global" else "sg%d" % g
            grp = self.api.call("POST", "/v2.0/security-groups",
                                {"security_group": {"name": name}}, 201)["security_group"]
            self.groups[g] = grp["id"]
            for r in grp["security_group_rules"]:
                if r["ethertype"] != "IPv4" or r["direction"] != "egress":
                    self.api.call("DELETE", f"/v2.0/security-group-rules/{r['id']}", want=204)
            self.api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": grp["id"], "direction": "ingress", "ethertype": "IPv4",
                "remote_group_id": grp["id"]}}, 201)
        t_groups = time.time()
        loc = set(local_set(L, P, B))
        bodies = []
        for i in range(L):
            for j in range(P):
                bodies.append({"network_id": self.nets[i], "name": lsp(i, j),
                               "mac_address": mac(i, j),
                               "fixed_ips": [{"subnet_id": self.subnets[i],
                                              "ip_address": ip(i, j)}],
                               "security_groups": [self.sg_of(i)],
                               "port_security_enabled": True,
                               "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                               "binding:host_id": HOST if (i, j) in loc else REMOTE})
        self.port_ids = {}
        for s in range(0, len(bodies), BULK):
            ports = self.api.call("POST", "/v2.0/ports", {"ports": bodies[s:s + BULK]},
                                  201)["ports"]
            for p in ports:
                self.port_ids[p["name"]] = p["id"]
        t_ports = time.time()
        # Plug the local ports as bench.sh does (internal ports with iface-id).
        local = local_set(L, P, B)
        for s in range(0, len(local), 200):
            args = []
            for n, (i, j) in enumerate(local[s:s + 200], start=s):
                v = "vif%d" % n
                args += ["--", "add-port", "br-int", v, "--", "set", "Interface", v,
                         "type=internal", "external_ids:iface-id=%s" % self.port_ids[lsp(i, j)]]
            self.ovs.vsctl(*args, timeout=300)
        t_plug = time.time()
        vif_types = {}
        for p in self.api.call("GET", "/v2.0/ports?fields=binding:vif_type")["ports"]:
            vif_types[p["binding:vif_type"]] = vif_types.get(p["binding:vif_type"], 0) + 1
        self.res.put("populate", nets_s=round(t_nets - t0, 2), groups_s=round(t_groups - t_nets, 2),
                     ports_s=round(t_ports - t_groups, 2), plug_s=round(t_plug - t_ports, 2),
                     ports=len(self.port_ids), local=len(local), groups=len(self.groups),
                     vif_types=vif_types)

    def count_active_local(self):
        ports = self.api.call("GET", "/v2.0/ports?status=ACTIVE&fields=id&fields=binding:host_id")
        return sum(1 for p in ports["ports"] if p["binding:host_id"] == HOST)

    # ------------------------------------------------------------ phases
    def phase_b(self):
        B = self.B
        m0 = self.meter.totals()
        t0 = time.time()
        self.start_agent()

        def done():
            s = self.try_stats()
            if s and s["ready"] and s["reported"] >= B and s["qsize"] == 0:
                return s
            return None
        s = self.wait(done, every=0.05)
        if s is None:
            s = self.try_stats() or {}
            self.res.put("b", wall_s=None, capped=True, note=f"> {CAP_S:.0f} s", last=s)
            return False
        s = self.quiesce()
        m1 = self.meter.totals()
        t_end = max(s["last_report_growth"], s["last_flow_change_end"])
        flows = self.flow_count()
        active = self.count_active_local()
        self.save_flows()
        self.res.put("b", wall_s=round(t_end - t0, 3),
                     full_view_s=round(s["full_view_end"] - t0, 3) if s["full_view_end"] else None,
                     first_install_s=round(s["first_install_end"] - t0, 3),
                     all_active_s=round(s["last_report_growth"] - t0, 3),
                     flows=flows, agent_installed=s["installed"], active_local=active,
                     flow_mods=s["stats"]["flow_mods"], applies=s["stats"]["applies"],
                     agent_busy_s=s["busy_s"], cpu_s=Meter.delta(m0, m1),
                     peak_rss_mb=self.meter.peaks(),
                     timeline=timeline(s, t0, last_report=s["last_report_growth"]))
        self.flows = flows
        return True

    def ofctl14(self, *args, timeout=300):
        return run("ovs-ofctl", "-O", "OpenFlow14", *args, env=self.ovs.env, timeout=timeout)

    def save_flows(self):
        """The flows and meters (b) installed, as text ovs-ofctl reads back
        (for the bundle phase, run last)."""
        # (br-int speaks OpenFlow 1.3 only; the bundle bridge 1.3 and 1.4)
        lines = [ln.strip() for ln in self.ovs.ofctl("--no-stats", "dump-flows", "br-int",
                                                     timeout=300).splitlines()]
        self.flow_lines = [ln for ln in lines if ln and not ln.startswith("OFPST_")]
        # dump-meters prints a meter's bands on the lines after it;
        # add-meter takes them on one line.
        meters, cur = [], None
        for ln in self.ovs.ofctl("dump-meters", "br-int").splitlines():
            ln = ln.strip()
            if ln.startswith("meter="):
                cur = [ln]
                meters.append(cur)
            elif cur is not None and ln.startswith("type="):
                cur.append(ln)
        self.meter_lines = [" ".join(m) for m in meters]

    def phase_bundle(self, reps=3):
        """ovs-ofctl --bundle add-flows of (b)'s flows into an empty bridge
        of the same ovs-vswitchd: how fast the switch itself takes them."""
        path = os.path.join(self.dir, "flows.txt")
        with open(path, "w") as f:
            f.write("\n".join(self.flow_lines) + "\n")
        walls, counts = [], []
        for k in range(reps):
            br = "br-bundle%d" % k
            self.ovs.vsctl("--may-exist", "add-br", br, "--", "set", "Bridge", br,
                           "datapath_type=netdev", "fail-mode=secure",
                           "protocols=OpenFlow13,OpenFlow14", "other-config:disable-in-band=true")
            for m in self.meter_lines:
                self.ofctl14("add-meter", br, m)
            t0 = time.time()
            self.ofctl14("--bundle", "add-flows", br, path)
            walls.append(time.time() - t0)
            counts.append(self.ovs.flow_count(br))
            self.ovs.vsctl("del-br", br)
        self.res.put("bundle", wall_s=round(statistics.median(walls), 3),
                     walls_s=[round(w, 3) for w in walls], flows=len(self.flow_lines),
                     bridge_flows=counts, meters=len(self.meter_lines))
        return True

    def phase_c1(self, reps=3):
        out = []
        m0 = self.meter.totals()
        for k in range(1, reps + 1):
            i, j, name, pmac, pip = added_port(k, self.L, self.P)
            n0 = self.stats()["reported"]
            t0 = time.time()
            port = self.api.call("POST", "/v2.0/ports", {"port": {
                "network_id": self.nets[i], "name": name, "mac_address": pmac,
                "fixed_ips": [{"subnet_id": self.subnets[i], "ip_address": pip}],
                "security_groups": [self.sg_of(i)], "port_security_enabled": True,
                "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                "binding:host_id": HOST}}, 201)["port"]
            t_api = time.time()
            pid = port["id"]
            seen = self.wait(lambda: self.stats([pid])["seen"][pid])
            if seen is None:
                out.append(self.res.put("c1", rep=k, wall_s=None, capped=True,
                                        note=f"> {CAP_S:.0f} s"))
                return False
            t_plug = time.time()
            self.ovs.vsctl("--", "add-port", "br-int", "vifx%d" % k, "--", "set", "Interface",
                           "vifx%d" % k, "type=internal", "external_ids:iface-id=%s" % pid)
            t_vsctl = time.time()
            s = self.wait(lambda: (lambda s: s if s["reported"] > n0 else None)(self.stats()))
            if s is None:
                out.append(self.res.put("c1", rep=k, wall_s=None, capped=True,
                                        note=f"> {CAP_S:.0f} s"))
                return False
            t_active = s["last_report_growth"]
            status = self.api.call("GET", f"/v2.0/ports/{pid}?fields=status")["port"]["status"]
            s = self.quiesce(0.5)
            out.append(self.res.put(
                "c1", rep=k, create_s=round(seen - t0, 3), api_s=round(t_api - t0, 3),
                bind_s=round(t_active - t_plug, 3), vsctl_s=round(t_vsctl - t_plug, 3),
                wall_s=round(t_active - t0, 3),
                status=status, flows=self.flow_count(), agent_installed=s["installed"]))
        m1 = self.meter.totals()
        self.res.put("c1-cpu", cpu_s=Meter.delta(m0, m1))
        return True

    def _rule(self, phase, k, body):
        t0 = time.time()
        rule = self.api.call("POST", "/v2.0/security-group-rules",
                             {"security_group_rule": body}, 201)["security_group_rule"]
        t_api = time.time()
        rid = rule["id"]
        seen = self.wait(lambda: self.stats([rid])["seen"][rid])
        if seen is None:
            self.res.put(phase, rep=k, wall_s=None, capped=True, note=f"> {CAP_S:.0f} s")
            return False
        s = self.quiesce(0.5)
        flows = self.flow_count()
        self.res.put(phase, rep=k, wall_s=round(seen - t0, 3), api_s=round(t_api - t0, 3),
                     flows=flows, agent_installed=s["installed"])
        return True

    def phase_c2(self, reps=3):
        g = self.sg_of(1)
        m0 = self.meter.totals()
        for k in range(1, reps + 1):
            if not self._rule("c2", k, {"security_group_id": g, "direction": "ingress",
                                        "ethertype": "IPv4", "protocol": "tcp",
                                        "port_range_min": 2000 + k,
                                        "port_range_max": 2000 + k}):
                return False
        self.res.put("c2-cpu", cpu_s=Meter.delta(m0, self.meter.totals()))
        return True

    def phase_c3(self):
        g = self.sg_of(1)
        m0 = self.meter.totals()
        ok = self._rule("c3", 1, {"security_group_id": g, "direction": "ingress",
                                  "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 443,
                                  "port_range_max": 443, "remote_group_id": g})
        self.res.put("c3-cpu", cpu_s=Meter.delta(m0, self.meter.totals()),
                     peak_rss_mb=self.meter.peaks())
        return ok

    def phase_d(self):
        before = self.flow_count()
        s_old = self.stats()
        plugged = s_old["vifs"]
        m0 = self.meter.totals()
        samples = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    samples.append((time.time(), self.flow_count()))
                except Exception:  # noqa: BLE001
                    pass
                stop.wait(0.25)
        poller = threading.Thread(target=poll, daemon=True)
        t_kill = time.time()
        self.stop_agent()
        t_gone = time.time()
        poller.start()
        t0 = time.time()
        self.start_agent()

        def done():
            s = self.try_stats()
            if s and s["ready"] and s["reported"] >= plugged and s["qsize"] == 0:
                return s
            return None
        s = self.wait(done, every=0.02)
        if s is None:
            stop.set()
            poller.join()
            self.res.put("d", wall_s=None, capped=True, note=f"> {CAP_S:.0f} s")
            return False
        t_ready = time.time()
        s = self.quiesce(1.0)
        stop.set()
        poller.join()
        m1 = self.meter.totals()
        after = self.flow_count()
        t_end = max(s["last_report_growth"] or 0, s["last_flow_change_end"] or 0,
                    s["first_install_end"] or 0, s["full_view_end"] or 0)
        self.res.put("d", wall_s=round(t_end - t0, 3), poll_ready_s=round(t_ready - t0, 3),
                     stop_s=round(t_gone - t_kill, 3),
                     full_view_s=round(s["full_view_end"] - t0, 3) if s["full_view_end"] else None,
                     flows_before=before, flows_after=after,
                     min_flows_during=min((c for _, c in samples), default=None),
                     samples=len(samples), flow_mods=s["stats"]["flow_mods"],
                     resyncs=s["stats"]["resyncs"], reported=s["reported"],
                     cpu_s=Meter.delta(m0, m1), peak_rss_mb=self.meter.peaks(),
                     timeline=timeline(s, t0, last_report=s["last_report_growth"]))
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("L", type=int)
    ap.add_argument("P", type=int)
    ap.add_argument("B", type=int)
    ap.add_argument("sg", choices=["global", "per-switch"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="leave everything running (debug)")
    ap.add_argument("--listen", action="store_true",
                    help="the agent listens for the switch ([ovs] of_listen_unix) instead of "
                         "connecting to br-int.mgmt ([ovs] of_connect_unix, as ovn-controller "
                         "does); automatic for a tree without of_connect")
    args = ap.parse_args()
    cfg = f"{args.L}x{args.P}-b{args.B}-{args.sg}"
    res = Results(args.out, "ours", cfg)
    workdir = args.workdir or os.path.join(tempfile.gettempdir(), "ovn-side", "ours-" + cfg)
    subprocess.run(["rm", "-rf", workdir])
    tree = os.environ.get("AGENT_TREE", REPO)
    with open(os.path.join(tree, "agent", "settings.py")) as f:
        connect = not args.listen and "of_connect" in f.read()
    # An installed agent has its bytecode (pip writes it at install): make
    # it now, untimed, or the first start of (b) compiles every module an
    # edit left without a current cache (10-15 ms each here) and (d), the
    # second, does not.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([os.path.join(REPO, ".venv", "bin", "python"), "-m", "compileall", "-q",
                    os.path.join(tree, "agent"), os.path.join(tree, "quantum_ovs")],
                   env=env, stdout=subprocess.DEVNULL, check=False)
    o = Ours(args.L, args.P, args.B, args.sg, res, workdir, of_connect=connect)
    res.put("start", load1=os.getloadavg()[0], of_mode="connect" if connect else "listen")
    t0 = time.time()
    try:
        o.start_infra()
        o.populate()
        ok = o.phase_b()
        ok = ok and o.phase_c1()
        ok = ok and o.phase_c2()
        ok = ok and o.phase_c3()
        ok = ok and o.phase_d()
        ok = ok and o.phase_bundle()
        res.put("end", ok=bool(ok), total_s=round(time.time() - t0, 1),
                load1=os.getloadavg()[0])
        if args.keep:
            print("keeping; Ctrl-C to stop", flush=True)
            signal.pause()
    finally:
        o.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
