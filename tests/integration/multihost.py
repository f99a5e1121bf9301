"""Several hypervisors on one machine, for multi-host integration tests.

A :class:`Hypervisor` is a :class:`PrivateOVS` (its own network namespace,
ovsdb-server and ovs-vswitchd, netdev datapath) plus the agent, run
in-process.  Hypervisors are joined by :class:`Underlay` segments: a Linux
bridge in a namespace of its own (the "top-of-rack switch"), each host
plugged into it with a veth pair.  Two segments are used:

* the tunnel underlay, which carries VXLAN/GRE between the hosts' tunnel
  IPs (172.31.<n>.0/24 by default, used only inside our namespaces);
* the provider underlay, the uplink of each host's physical bridge for a
  VLAN / flat provider network (``bridge_mappings``), on which a capture
  shows the 802.1Q tags.

How OVS 3.1 tunnels work on the userspace (netdev) datapath
-----------------------------------------------------------

The kernel datapath hands tunnel packets to the kernel's vxlan/gre
devices, which route them with the kernel's tables.  The netdev datapath
cannot: it builds the outer headers itself ("native tunnelling",
``tnl/push``) and so needs, for the remote tunnel IP,

1. a route: OVS keeps its own routing table (``ovs-appctl ovs/route/show``)
   that it fills from the kernel routes *of the namespace ovs-vswitchd runs
   in*.  A route is only useful if its output device is an OVS bridge's
   internal port, because that is where OVS will send the encapsulated
   packet (through that bridge's flow table);
2. a neighbour: the remote's MAC, from OVS's own ARP cache
   (``ovs-appctl tnl/arp/show``).  OVS learns it by snooping ARP replies
   that pass through that bridge.  When the entry is missing, the first
   packet triggers an ARP request from the bridge and is dropped; the
   next ones go through.

So each host has a physical bridge ``br-phy`` (datapath netdev, fail mode
standalone, i.e. NORMAL switching) whose uplink is the underlay veth, and
the tunnel IP lives on ``br-phy``'s internal interface (a tap device the
netdev datapath created in the host namespace): ``ip addr add <ip>/24 dev
br-phy; ip link set br-phy up``.  The kernel's connected route then
appears in ``ovs/route/show`` as ``<net>/24 dev br-phy SRC <ip>`` by
itself; :meth:`Hypervisor.start` checks that (and adds it with
``ovs/route/add`` when the route monitor has not caught up).  Receiving
works the other way round: br-phy switches the outer packet to its LOCAL
port, and the datapath, seeing a packet for a tunnel port's local_ip go to
the bridge's internal port, decapsulates it (``tnl/pop``) and hands it to
br-int's tunnel port instead.  The agent's tunnel ports are flow-based
(``remote_ip=flow, key=flow``) with ``local_ip`` = the tunnel IP.

One more condition, found the hard way: OVS snoops ARP replies into the
tunnel neighbour cache only once a tunnel port exists (before that the
replies are switched, but not learned, and ``tnl/arp/show`` stays empty).
A second trap: the netdev datapath reads the uplink veth with a packet
socket but does not take it away from the kernel, so the host's kernel also
receives the ARP request on the veth and, with the default arp_ignore=0,
answers it from the veth with the veth's MAC, as well as from br-phy with
br-phy's.  The peer's OVS snoops both replies and keeps whichever came last;
with the veth's MAC, tunnelled packets go to the kernel instead of br-phy's
LOCAL port and are lost (a flaky test, one run in five).  Each host
namespace therefore sets net.ipv4.conf.all.arp_ignore=1 (answer only on the
interface that owns the address), and :meth:`Cluster.prime_arp` checks that
every entry in tnl/arp/show is the peer's br-phy MAC.

So the cache is primed after the agents have made their tunnel ports, by
a ping between the hosts' br-phy addresses with the kernel's neighbour
tables flushed first (:meth:`Cluster.prime_arp`), so that no test loses
its first tunnelled packet to neighbour resolution.

Everything created here is removed by :meth:`stop`: processes by PID
(via PrivateOVS), namespaces by name.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from tests.integration.ovs_fixture import (
    Instance,
    PrivateOVS,
    kill_pid,
    netns_exec,
    rand_name,
    run,
)

PHY_BRIDGE = "br-phy"


class Underlay:
    """A Linux bridge in a namespace of its own; hosts plug in with veths."""

    def __init__(self, name="ul"):
        self.ns = rand_name(f"qul{name}-", 6)
        self.bridge = "ul0"
        self.ports = {}  # host name -> device name inside self.ns

    def start(self):
        run("ip", "netns", "add", self.ns)
        self.exec("ip", "link", "set", "lo", "up")
        # Defaults: no VLAN filtering (tagged frames pass as they are), no STP.
        self.exec("ip", "link", "add", self.bridge, "type", "bridge")
        self.exec("ip", "link", "set", self.bridge, "up")
        return self

    def stop(self):
        run("ip", "netns", "del", self.ns, check=False)

    def exec(self, *cmd, **kw):
        return netns_exec(self.ns, *cmd, **kw)

    def attach(self, host, host_ns):
        """A veth from the switch to ``host_ns``; returns the host end's name."""
        sw, hv = rand_name("sw", 8), rand_name("up", 8)
        run("ip", "link", "add", sw, "netns", self.ns, "type", "veth",
            "peer", "name", hv, "netns", host_ns)
        self.exec("ip", "link", "set", sw, "master", self.bridge)
        self.exec("ip", "link", "set", sw, "up")
        netns_exec(host_ns, "ip", "link", "set", hv, "up")
        self.ports[host] = sw
        return hv

    def capture(self, host, filt="", count=None):
        """A tcpdump (-e, link-level headers) on ``host``'s switch port."""
        return Capture(self.ns, self.ports[host], filt, count)


class Capture:
    """tcpdump in a namespace, started now, read with :meth:`stop`."""

    def __init__(self, ns, dev, filt="", count=None):
        self.ns, self.dev = ns, dev
        cmd = ["ip", "netns", "exec", ns, "tcpdump", "-l", "-nn", "-e", "-U", "-i", dev]
        if count:
            cmd += ["-c", str(count)]
        cmd += filt.split() if filt else []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        # tcpdump says "listening on ..." on stderr once the socket is open.
        deadline = time.monotonic() + 10
        self._err = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self._err.append(line)
            if "listening on" in line:
                break

    def stop(self):
        time.sleep(0.2)  # let the last frames through the socket
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, sig=signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        return [line for line in out.splitlines() if line.strip()]


class Hypervisor:
    """One host: a private OVS with br-phy on the tunnel underlay and
    (optionally) a physical bridge on the provider underlay; the agent is
    started and stopped separately (:meth:`start_agent`)."""

    def __init__(self, name, tunnel_ip, prefixlen=24):
        self.name = name
        self.tunnel_ip = tunnel_ip
        self.prefixlen = prefixlen
        self.ovs = PrivateOVS(ns=rand_name(f"qhv{name}-", 6))
        self.agent = None
        self.physnets = {}  # physnet -> bridge

    def start(self, tunnel_underlay, provider_underlay=None, physnet="physnet1",
              phys_bridge="br-phys1"):
        ovs = self.ovs
        ovs.start()
        # The netdev datapath reads the uplink veth with a packet socket;
        # the kernel still sees its frames too and, by default, answers ARP
        # for any local address on any interface -- with the veth's MAC.
        # OVS would then snoop that reply and tunnel to a MAC that never
        # reaches br-phy's LOCAL port.  Answer only on the interface that
        # has the address (br-phy).
        ovs.exec("sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1")
        ovs.exec("sysctl", "-q", "-w", "net.ipv4.conf.default.arp_ignore=1")
        ovs.vsctl("--may-exist", "add-br", PHY_BRIDGE, "--", "set", "Bridge", PHY_BRIDGE,
                  "datapath_type=netdev", "fail_mode=standalone")
        ovs.exec("ip", "addr", "add", f"{self.tunnel_ip}/{self.prefixlen}", "dev", PHY_BRIDGE)
        ovs.exec("ip", "link", "set", PHY_BRIDGE, "up")
        uplink = tunnel_underlay.attach(self.name, ovs.ns)
        ovs.vsctl("--may-exist", "add-port", PHY_BRIDGE, uplink)
        self._ensure_tunnel_route()
        if provider_underlay is not None:
            # The agent makes the bridge (fail_mode standalone) and its
            # patch ports; we make it first only to give it its uplink.
            ovs.vsctl("--may-exist", "add-br", phys_bridge, "--", "set", "Bridge", phys_bridge,
                      "datapath_type=netdev", "fail_mode=standalone")
            up = provider_underlay.attach(self.name, ovs.ns)
            ovs.vsctl("--may-exist", "add-port", phys_bridge, up)
            self.physnets[physnet] = phys_bridge
        return self

    def _ensure_tunnel_route(self):
        net = _network(self.tunnel_ip, self.prefixlen)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if f"{net}/{self.prefixlen} dev {PHY_BRIDGE}" in self.routes():
                return
            time.sleep(0.05)
        self.ovs.appctl("ovs/route/add", f"{net}/{self.prefixlen}", PHY_BRIDGE)

    def phy_mac(self):
        out = self.ovs.exec("ip", "-o", "link", "show", PHY_BRIDGE)
        return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)

    def routes(self):
        return self.ovs.appctl("ovs/route/show")

    def arp_table(self):
        return self.ovs.appctl("tnl/arp/show")

    def start_agent(self, server_url, state_path, tunnel_types=("vxlan", "gre"), token=""):
        from agent.daemon import Agent, Settings

        settings = Settings(host=self.name, server_url=server_url, ovsdb=self.ovs.db_remote,
                            token=token,
                            datapath_type="netdev", local_ip=self.tunnel_ip,
                            tunnel_types=tunnel_types, bridge_mappings=self.physnets,
                            of_socket=self.ovs.listen_socket(), state_path=state_path,
                            report_interval=5, polling_interval=5)
        self.agent = Agent(settings).start()
        return self.agent

    def stop_agent(self):
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def stop(self):
        self.stop_agent()
        self.ovs.stop()

    # ------------------------------------------------------------ views
    def flows(self, bridge="br-int"):
        """Our flows (agent cookies), without counters."""
        return [f for f in self.ovs.dump_flows(bridge) if "cookie=0x51" in f]

    def flows_with(self, text):
        return [f for f in self.flows() if text in f]

    def port_stats(self, port):
        """(rx_packets, tx_packets) of an OVS interface."""
        out = self.ovs.vsctl("get", "Interface", port, "statistics").strip()
        rx = int(re.search(r"rx_packets=(\d+)", out).group(1))
        tx = int(re.search(r"tx_packets=(\d+)", out).group(1))
        return rx, tx

    # ------------------------------------------------------------ instances
    def add_instance(self, port):
        """A VM for the API port ``port`` (plugged with its MAC and id)."""
        ip = port["fixed_ips"][0]["ip_address"]
        return self.ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])

    def remove_instance(self, inst):
        self.ovs.remove_instance(inst)

    def move_instance(self, inst, other):
        """Unplug ``inst``'s veth here, move it to ``other``'s namespace and
        plug it there (what a live migration does to the VIF)."""
        self.ovs.unplug(inst)
        self.ovs.instances.remove(inst)
        self.ovs.exec("ip", "link", "set", inst.port, "netns", other.ovs.ns)
        other.ovs.instances.append(inst)
        other.ovs.exec("ip", "link", "set", inst.port, "up")
        other.ovs.plug(inst)


class Cluster:
    """Hypervisors hv1..hvN on a tunnel underlay and a provider underlay."""

    def __init__(self, n=3, subnet="172.31.7", physnet="physnet1", phys_bridge="br-phys1"):
        self.tunnel = Underlay("t")
        self.provider = Underlay("p")
        self.hosts = [Hypervisor(f"hv{i + 1}", f"{subnet}.{i + 1}") for i in range(n)]
        self.physnet = physnet
        self.phys_bridge = phys_bridge

    def __getitem__(self, name):
        return next(h for h in self.hosts if h.name == name)

    def start(self):
        try:
            self.tunnel.start()
            self.provider.start()
            for h in self.hosts:
                h.start(self.tunnel, self.provider, self.physnet, self.phys_bridge)
        except BaseException:
            self.stop()
            raise
        return self

    def prime_arp(self):
        """Every host resolves every other's tunnel IP (see the module doc).
        Needs the tunnel ports (the agents make them): OVS snoops ARP
        replies for its tunnel neighbour cache only once a tunnel port
        exists."""
        for h in self.hosts:
            for o in self.hosts:
                if o is not h:
                    # Forget o's MAC first (o's own ARP request may have
                    # taught it to h's kernel), so that h asks and o replies.
                    h.ovs.exec("ip", "neigh", "flush", "all")
                    h.ovs.exec("ping", "-n", "-c", "1", "-W", "2", o.tunnel_ip, check=False)
        for h in self.hosts:
            table = h.arp_table()
            wrong = [o.tunnel_ip for o in self.hosts if o is not h and
                     not re.search(rf"^{re.escape(o.tunnel_ip)}\s+{o.phy_mac()}\s", table, re.M)]
            if wrong:
                raise RuntimeError(f"{h.name}: no or wrong tunnel neighbour for {wrong} "
                                   f"(want their br-phy MACs):\n{table}")

    def start_agents(self, server_url, state_root, credential=None):
        """``credential(host)``: that host's agent token."""
        for h in self.hosts:
            h.start_agent(server_url, os.path.join(state_root, h.name),
                          token=credential(h.name) if credential else "")
        for h in self.hosts:
            if not h.agent.ready.wait(20):
                raise RuntimeError(f"agent {h.name} did not sync")
        self.prime_arp()

    def stop_agents(self):
        # In parallel: each agent may wait out a long-poll before it stops.
        threads = [threading.Thread(target=h.stop_agent) for h in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stop(self):
        for h in self.hosts:
            try:
                h.stop()
            except Exception:  # noqa: BLE001 - stop the others anyway
                pass
        self.tunnel.stop()
        self.provider.stop()


class Api:
    """The REST API as an admin of project ``demo``."""

    def __init__(self, url, project="demo"):
        self.url = url
        self.project = project

    def __call__(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            headers={"Content-Type": "application/json", "X-Project-Id": self.project,
                     "X-Roles": "admin"},
            data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None
        return json.loads(raw) if raw else None

    def network(self, cidr, **attrs):
        net = self("POST", "/v2.0/networks", {"network": {"name": "n", **attrs}})["network"]
        sub = self("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4}})["subnet"]
        return net, sub

    def port(self, net, host, **kw):
        body = {"network_id": net["id"], "binding:host_id": host, **kw}
        return self("POST", "/v2.0/ports", {"port": body})["port"]

    def wait_status(self, port_id, status, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self("GET", f"/v2.0/ports/{port_id}")["port"]["status"] == status:
                return True
            time.sleep(0.05)
        return False


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Poll until ``predicate()`` is true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _network(ip, prefixlen):
    import ipaddress

    return str(ipaddress.ip_interface(f"{ip}/{prefixlen}").network.network_address)


def state_dir():
    return tempfile.mkdtemp(prefix="qovs-mh-state-")


__all__ = ["Api", "Capture", "Cluster", "Hypervisor", "Instance", "Underlay", "wait_for",
           "state_dir"]
