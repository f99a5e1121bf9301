"""make demo: the whole system on one machine, the way a cloud uses it.

Starts a private Open vSwitch (its own network namespace and run
directory, userspace datapath), quantum-ovs-server on SQLite
(127.0.0.1:9696) and one quantum-ovs-agent; creates two networks with the
real `openstack` CLI; boots three "instances" (network namespaces) through
the nova hook: ports allocated by NetworkAPI.allocate_for_instance,
devices plugged by quantum-ovs-vif, addresses from the agent's native
DHCP; shows that the two on one network ping each other and that the
third, on the other network, reaches neither.  Then a router (the L3
service plugin is on) joins demo-net to a third network, and a fourth
instance there is reached across the subnets, routed in the flows of the
host.  Then the outside world: an "internet" namespace on a flat
external network (bridge_mappings public:br-ex), demo-router's gateway
on it, a floating IP for vm-a that the internet pings (DNAT/SNAT in the
flows of vm-a's host), and vm-d, without one, reaching the internet
through SNAT to the gateway's address (this one host is also the gateway
host).  Last, the metadata service: every instance fetches its own
meta_data.json from 169.254.169.254 through the host's one proxy (vm-a
and vm-c share an address, on two networks).  Then it leaves everything
running until Ctrl-C (or, with --once, cleans up at once).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
BIN = os.path.dirname(sys.executable)

from quantum_ovs.nova.api import NetworkAPI  # noqa: E402
from quantum_ovs.testing.ovs import PrivateOVS, missing_prerequisites, rand_name  # noqa: E402
from tools.demo_metadata import DemoMetadata  # noqa: E402

INTERNET = "203.0.113.1"  # the external subnet's gateway: the outside world

HOST = "demo-compute"
PROJECT = "demo"

DHCP_SCRIPT = """#!/bin/sh
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
    echo "$new_ip_address" > "$interface.lease"
    ;;
esac
exit 0
"""


def say(msg=""):
    print(msg, flush=True)


class Demo:
    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="qovs-demo-")
        self.procs = []  # (name, Popen) stopped by PID, last first
        self.ovs = None
        self.namespaces = []
        self.dhclient_pidfiles = []  # stopped again at the end (see _stop_dhclient)
        self.timings = {}
        self.booted = []

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ processes
    def spawn(self, name, cmd, cwd=None):
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd or self.dir)
        self.procs.append((name, p, log))
        return p

    def wait_http(self, proc, timeout=30):
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise SystemExit("the server exited:\n" + self.tail("server"))
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).read()
                return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not answer within 30 s")

    def tail(self, name, n=3000):
        with open(os.path.join(self.dir, f"{name}.log")) as f:
            return f.read()[-n:]

    def openstack(self, *args, parse=True):
        cmd = [os.path.join(BIN, "openstack"), "--os-auth-type", "none",
               "--os-endpoint", self.endpoint, *args] + (["-f", "json"] if parse else [])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"openstack {' '.join(args)} failed:\n{out.stderr}")
        return json.loads(out.stdout) if parse else out.stdout

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            self.endpoint + path, method=method,
            headers={"Content-Type": "application/json", "X-Project-Id": PROJECT,
                     "X-Roles": "admin"},
            data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    # ------------------------------------------------------------ steps
    def start(self):
        reason = missing_prerequisites()
        if reason:
            raise SystemExit(f"cannot run the demo here: {reason}")
        t0 = time.monotonic()
        self.ovs = PrivateOVS().start()
        self.ovs.add_bridge("br-int")
        self.md = DemoMetadata(self.ovs.ns)  # a nova-metadata stand-in
        say(f"Open vSwitch   private ovsdb-server + ovs-vswitchd (netdev) in netns "
            f"{self.ovs.ns}")
        conf = os.path.join(self.dir, "quantum-ovs.conf")
        with open(conf, "w") as f:
            f.write(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
                    f"default_project_id = {PROJECT}\nservice_plugins = router\n"
                    f"[database]\nconnection = sqlite:///{self.dir}/quantum-ovs.sqlite\n")
        server = self.spawn("server", [os.path.join(BIN, "quantum-ovs-server"),
                                       "--config-file", conf])
        self.wait_http(server)
        say(f"server         {self.endpoint} (SQLite)  pid {server.pid}")
        # The agent's own credential: it may act for its host and no other
        # (and, granted by --gateway, as a gateway host).
        out = subprocess.run([os.path.join(BIN, "quantum-ovs-agent-credential"),
                              "--config-file", conf, "create", "--host", HOST, "--gateway"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"quantum-ovs-agent-credential failed:\n{out.stderr}")
        token = out.stdout.strip()
        ini = os.path.join(self.dir, "quantum-ovs-agent.ini")
        with open(ini, "w") as f:
            f.write(f"[ovs]\nintegration_bridge = br-int\ndatapath_type = netdev\n"
                    f"local_ip = 192.0.2.10\novsdb_connection = {self.ovs.db_remote}\n"
                    f"of_listen_unix = {self.ovs.rundir}/quantum-ovs-of.sock\n"
                    f"bridge_mappings = public:br-ex\n"
                    f"[agent]\nhost = {HOST}\ntunnel_types = vxlan\n"
                    f"state_path = {self.dir}/agent-state\nreport_interval = 10\n"
                    f"gateway = true\n"
                    f"[server]\nurl = {self.endpoint}\ntoken = {token}\n"
                    + self.md.agent_ini())
        agent = self.spawn("agent", [os.path.join(BIN, "quantum-ovs-agent"),
                                     "--config-file", ini])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            agents = self.api("GET", "/v2.0/agents")["agents"]
            if any(a["host"] == HOST and a["alive"] for a in agents):
                break
            if agent.poll() is not None:
                raise SystemExit("the agent exited:\n" + self.tail("agent"))
            time.sleep(0.1)
        else:
            raise SystemExit("the agent did not register:\n" + self.tail("agent"))
        say(f"agent          host {HOST}, registered  pid {agent.pid}")
        self.timings["startup"] = time.monotonic() - t0

    def networks(self):
        t0 = time.monotonic()
        self.net = self.openstack("network", "create", "demo-net")
        self.sub = self.openstack("subnet", "create", "--network", "demo-net",
                                  "--subnet-range", "10.20.0.0/24", "--dns-nameserver",
                                  "10.20.0.53", "demo-subnet")
        self.other = self.openstack("network", "create", "other-net")
        self.openstack("subnet", "create", "--network", "other-net", "--subnet-range",
                       "10.20.0.0/24", "other-subnet")  # the same range, isolated
        say(f"networks       demo-net 10.20.0.0/24 and other-net 10.20.0.0/24 "
            f"(openstack CLI, {time.monotonic() - t0:.1f} s)")

    def boot(self, name, net_id):
        """What nova does: allocate, plug, wait for vif-plugged; then DHCP."""
        nova = NetworkAPI(self.endpoint)
        inst = {"uuid": str(uuid.uuid4()), "project_id": PROJECT,
                "availability_zone": "nova"}
        t0 = time.monotonic()
        (vif,) = nova.allocate_for_instance({"project_id": PROJECT}, inst,
                                            [{"network_id": net_id}], host=HOST)
        ns, dev, tap = rand_name("qvm-", 8), "eth0", vif["devname"]
        subprocess.run(["ip", "netns", "add", ns], check=True)
        self.namespaces.append(ns)
        subprocess.run(["ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name",
                        tap, "netns", self.ovs.ns], check=True)
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "set", dev, "address", vif["address"]],
                    ["ip", "link", "set", dev, "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        if shutil.which("ethtool"):
            subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"],
                           capture_output=True)
        subprocess.run(["ip", "netns", "exec", self.ovs.ns, "ip", "link", "set", tap, "up"],
                       check=True)
        out = subprocess.run([os.path.join(BIN, "quantum-ovs-vif"), "plug", "--dev", tap,
                              "--port-id", vif["id"], "--mac", vif["address"], "--instance",
                              inst["uuid"], "--ovsdb", self.ovs.db_remote, "--wait",
                              "--server", self.endpoint, "--timeout", "30"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"plugging {name} failed: {out.stderr}{out.stdout}\n"
                             + self.tail("agent"))
        active = time.monotonic() - t0
        script = os.path.join(self.dir, f"dhclient-{name}.sh")
        with open(script, "w") as f:
            f.write(DHCP_SCRIPT)
        os.chmod(script, 0o755)
        t1 = time.monotonic()
        lease_dir = os.path.join(self.dir, name)
        os.makedirs(lease_dir, exist_ok=True)
        dh = subprocess.run(["ip", "netns", "exec", ns, "dhclient", "-4", "-1", "-v", "-sf",
                             script, "-lf", os.path.join(lease_dir, "leases"), "-pf",
                             os.path.join(lease_dir, "pid"), dev],
                            capture_output=True, text=True, timeout=60, cwd=lease_dir)
        lease = time.monotonic() - t1
        pidfile = os.path.join(lease_dir, "pid")
        self.dhclient_pidfiles.append(pidfile)
        _stop_dhclient(pidfile)  # it stays to renew
        got = open(os.path.join(lease_dir, f"{dev}.lease")).read().strip() \
            if os.path.exists(os.path.join(lease_dir, f"{dev}.lease")) else None
        want = vif["network"]["subnets"][0]["ips"][0]["address"]
        if got != want:
            raise SystemExit(f"{name}: DHCP gave {got}, the port has {want}\n{dh.stderr}")
        say(f"instance       {name:<6} {vif['address']}  {got:<12} on "
            f"{vif['network']['label']:<10} ACTIVE in {active * 1000:.0f} ms, "
            f"DHCP lease in {lease * 1000:.0f} ms")
        return {"name": name, "ns": ns, "ip": got, "active_s": active, "lease_s": lease,
                "instance": inst, "tap": tap, "port_id": vif["id"]}

    def ping(self, a, b, count=1):
        out = subprocess.run(["ip", "netns", "exec", a["ns"], "ping", "-n", "-c", str(count),
                              "-W", "1", b["ip"]], capture_output=True, text=True)
        return out.returncode == 0

    def run(self):
        self.start()
        self.networks()
        a = self.boot("vm-a", self.net["id"])
        b = self.boot("vm-b", self.net["id"])
        c = self.boot("vm-c", self.other["id"])
        self.booted = [a, b, c]
        t0 = time.monotonic()
        ok = False
        while time.monotonic() - t0 < 10 and not ok:
            ok = self.ping(a, b)
        first_ping = time.monotonic() - t0
        if not ok or not self.ping(b, a, 3):
            raise SystemExit("vm-a and vm-b cannot reach each other\n" + self.tail("agent"))
        say(f"ping           vm-a -> vm-b ok (first reply after {first_ping * 1000:.0f} ms), "
            "vm-b -> vm-a ok")
        # vm-c has vm-a's address on its own network; vm-b's is not there.
        if self.ping(c, b, 2):
            raise SystemExit("vm-c on other-net reached demo-net: isolation is broken")
        say(f"isolation      vm-c (other-net, {c['ip']}) cannot reach vm-b ({b['ip']}) "
            "on demo-net")
        d = self.routing(a, c)
        self.outside(a, d)
        self.md.show(self.booted, say)
        say()
        say(f"summary: startup {self.timings['startup']:.1f} s; API to ACTIVE "
            f"{max(x['active_s'] for x in (a, b, c, d)) * 1000:.0f} ms (slowest of 4); "
            f"DHCP lease {max(x['lease_s'] for x in (a, b, c, d)) * 1000:.0f} ms (slowest); "
            f"first ping {first_ping * 1000:.0f} ms")

    def routing(self, a, c):
        """A router between demo-net and routed-net (openstack CLI), an
        instance on routed-net, and vm-a reaching it across the subnets."""
        t0 = time.monotonic()
        self.openstack("network", "create", "routed-net")
        self.routed_sub = self.openstack("subnet", "create", "--network", "routed-net",
                                         "--subnet-range", "10.30.0.0/24", "routed-subnet")
        self.router = self.openstack("router", "create", "demo-router")
        for sub in ("demo-subnet", "routed-subnet"):
            self.openstack("router", "add", "subnet", "demo-router", sub, parse=False)
        say(f"router         demo-router: demo-subnet 10.20.0.1, routed-subnet 10.30.0.1 "
            f"(openstack CLI, {time.monotonic() - t0:.1f} s)")
        d = self.boot("vm-d", self.routed_sub["network_id"])
        self.booted.append(d)
        t0 = time.monotonic()
        ok = False
        while time.monotonic() - t0 < 10 and not ok:
            ok = self.ping(a, d)
        first = time.monotonic() - t0
        if not ok or not self.ping(d, a, 3):
            raise SystemExit("vm-a and vm-d cannot reach each other through demo-router\n"
                             + self.tail("agent"))
        say(f"routed ping    vm-a ({a['ip']}) -> vm-d ({d['ip']}) ok (first reply after "
            f"{first * 1000:.0f} ms), vm-d -> vm-a ok: routed in br-int's flows")
        # other-net is on no router: vm-c (vm-a's address there) stays out.
        if self.ping(c, d, 2):
            raise SystemExit("vm-c on other-net reached routed-net: isolation is broken")
        say(f"isolation      vm-c (other-net, no router) cannot reach vm-d ({d['ip']})")
        return d

    def outside(self, a, d):
        """The internet (a namespace on br-ex), demo-router's gateway on
        the external network, a floating IP for vm-a; vm-d goes out
        through SNAT."""
        t0 = time.monotonic()
        inet = rand_name("qinet-", 6)
        subprocess.run(["ip", "netns", "add", inet], check=True)
        self.namespaces.append(inet)
        sw = rand_name("ex", 8)
        subprocess.run(["ip", "link", "add", "eth0", "netns", inet, "type", "veth", "peer",
                        "name", sw, "netns", self.ovs.ns], check=True)
        subprocess.run(["ip", "netns", "exec", self.ovs.ns, "ip", "link", "set", sw, "up"],
                       check=True)
        self.ovs.vsctl("add-port", "br-ex", sw)
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "addr", "add", f"{INTERNET}/24", "dev", "eth0"]):
            subprocess.run(["ip", "netns", "exec", inet, *cmd], check=True)
        # the operator's part (admin): the external network
        ext = self.api("POST", "/v2.0/networks", {"network": {
            "name": "public", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public"}})["network"]
        self.api("POST", "/v2.0/subnets", {"subnet": {
            "name": "public-subnet", "network_id": ext["id"], "cidr": "203.0.113.0/24",
            "ip_version": 4, "gateway_ip": INTERNET, "enable_dhcp": False}})
        self.openstack("router", "set", "--external-gateway", "public", "demo-router",
                       parse=False)
        self.openstack("security", "group", "rule", "create", "--ingress", "--protocol",
                       "icmp", "default", parse=False)
        fip = self.openstack("floating", "ip", "create", "public")
        self.openstack("floating", "ip", "set", "--port", a["port_id"],
                       fip["floating_ip_address"], parse=False)
        gw = self.openstack("router", "show", "demo-router")["external_gateway_info"]
        gw_ip = gw["external_fixed_ips"][0]["ip_address"]
        say(f"external       public 203.0.113.0/24 (flat, br-ex) with the internet at "
            f"{INTERNET}; demo-router's gateway {gw_ip}; floating IP "
            f"{fip['floating_ip_address']} -> vm-a (openstack CLI, "
            f"{time.monotonic() - t0:.1f} s)")
        t0 = time.monotonic()
        ok = False
        while time.monotonic() - t0 < 15 and not ok:
            ok = subprocess.run(["ip", "netns", "exec", inet, "ping", "-n", "-c", "1", "-W",
                                 "1", fip["floating_ip_address"]],
                                capture_output=True).returncode == 0
        if not ok:
            raise SystemExit("the internet cannot reach vm-a's floating IP\n"
                             + self.tail("agent"))
        say(f"floating IP    internet -> {fip['floating_ip_address']} reaches vm-a "
            f"({a['ip']}), first reply after {(time.monotonic() - t0) * 1000:.0f} ms: "
            "DNAT in the flows of vm-a's host")
        out = subprocess.run(["ip", "netns", "exec", d["ns"], "ping", "-n", "-c", "2", "-W",
                              "2", INTERNET], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit("vm-d cannot reach the internet through SNAT\n"
                             + self.tail("agent"))
        say(f"SNAT           vm-d ({d['ip']}, no floating IP) -> the internet ok, seen as "
            f"{gw_ip}: SNAT on the gateway host")
        self.inet = inet

    def delete_instances(self):
        """What nova does on delete: unplug, deallocate; then check that
        neither the API nor br-int keeps anything of them."""
        nova = NetworkAPI(self.endpoint)
        t0 = time.monotonic()
        for vm in self.booted:
            subprocess.run([os.path.join(BIN, "quantum-ovs-vif"), "unplug", "--dev", vm["tap"],
                            "--ovsdb", self.ovs.db_remote], check=True, capture_output=True)
            nova.deallocate_for_instance({"project_id": PROJECT}, vm["instance"])
        left_ports = [p["id"] for p in self.api("GET", "/v2.0/ports")["ports"]
                      if p["id"] in {vm["port_id"] for vm in self.booted}]
        left_taps = [x for x in self.ovs.vsctl("list-ports", "br-int").split()
                     if x in {vm["tap"] for vm in self.booted}]
        if left_ports or left_taps:
            raise SystemExit(f"deleting the instances left ports {left_ports} / {left_taps}")
        say(f"cleanup        {len(self.booted)} instances unplugged and deallocated in "
            f"{(time.monotonic() - t0) * 1000:.0f} ms: no port left in the API or on br-int")

    def stop(self):
        for pidfile in self.dhclient_pidfiles:
            _stop_dhclient(pidfile)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name, p, log in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            log.close()
        if self.ovs is not None:
            self.ovs.stop()
        if getattr(self, "md", None) is not None:
            self.md.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _stop_dhclient(pidfile):
    """Stop (by PID) the dhclient whose pid file this is, if it still runs:
    the one the demo started (its command line names the file; a PID
    reused by another process is left alone).  Its daemon may write the
    file after the first stop, so the demo stops it again at the end."""
    try:
        pid = int(open(pidfile).read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if pidfile.encode() not in f.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--once", action="store_true", help="run once and clean up")
    p.add_argument("--port", type=int, default=9696)
    args = p.parse_args()
    # SIGTERM as Ctrl-C, from the start: the demo cleans up after either
    # (the default action ended it at once, leaving its server, agent,
    # switch and namespaces behind).  SIGINT too, in case the shell that
    # started it in the background ignored it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(args.port)
    try:
        demo.run()
        if args.once:
            demo.delete_instances()
            say("demo OK")
            return 0
        say(f"\nEverything keeps running: {demo.endpoint}, logs in {demo.dir}; try\n"
            f"  {BIN}/openstack --os-auth-type none --os-endpoint {demo.endpoint} port list\n"
            "Ctrl-C stops it all.")
        while True:
            signal.pause()  # until Ctrl-C or SIGTERM (KeyboardInterrupt)
    except KeyboardInterrupt:
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
