"""The whole chain on a real data plane: server -> agent -> Open vSwitch.

A real quantum-ovs-server (SQLite) in the root namespace, a private OVS in
its own namespace, the agent in-process (its OpenFlow listener opened
inside the OVS namespace), instances as namespaces plugged the way nova
does it.
"""

import json
import subprocess
import time
import urllib.request

import pytest

from agent import startup
from agent.daemon import Agent, Settings
from quantum_ovs.testing.server import ServerProcess

HOST = "hv1"


class Api:
    def __init__(self, url):
        self.url = url

    def __call__(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            headers={"Content-Type": "application/json", "X-Project-Id": "demo",
                     "X-Roles": "admin"},
            data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def network(self, cidr):
        net = self("POST", "/v2.0/networks", {"network": {"name": "n"}})["network"]
        sub = self("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4}})["subnet"]
        return net, sub

    def port(self, net, **kw):
        body = dict(network_id=net["id"], **{"binding:host_id": HOST}, **kw)
        return self("POST", "/v2.0/ports", {"port": body})["port"]

    def wait_status(self, port_id, status, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self("GET", f"/v2.0/ports/{port_id}")["port"]["status"]
            if got == status:
                return True
            time.sleep(0.05)
        return False


@pytest.fixture
def server(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path}/agent.sqlite") as s:
        yield s


@pytest.fixture
def api(server):
    return Api(server.url)


def make_agent(ovs, server, tmp_path, mode="listen"):
    """An agent on ``ovs``; ``mode`` "connect": it connects to br-int's
    management socket ([ovs] of_connect_unix) instead of listening.  Its
    OVSDB connection is started before the agent, as agent.main does."""
    return Agent(Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                          token=server.agent_credential(HOST),
                          datapath_type="netdev", local_ip="192.0.2.1",
                          tunnel_types=("vxlan",), of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                          of_connect=(f"unix:{ovs.rundir}/br-int.mgmt" if mode == "connect"
                                      else None),
                          state_path=str(tmp_path / "state"), report_interval=5,
                          polling_interval=5),
                 ovsdb=startup.EarlyOvsdb(ovs.db_remote)).start()


@pytest.fixture
def agent(ovs, server, tmp_path):
    a = make_agent(ovs, server, tmp_path)
    yield a
    a.stop()


@pytest.fixture(params=["listen", "connect"])
def agent_either(request, ovs, server, tmp_path):
    """An agent in either OpenFlow mode (the tests that take it run twice)."""
    a = make_agent(ovs, server, tmp_path, request.param)
    yield a
    a.stop()


def vm(ovs, api, net, **kw):
    port = api.port(net, **kw)
    ip = port["fixed_ips"][0]["ip_address"]
    inst = ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])
    return port, inst


def two_active_vms(ovs, api, net):
    """Two instances on ``net`` whose ports went ACTIVE: ((port, instance), ...)."""
    first, second = vm(ovs, api, net), vm(ovs, api, net)
    assert api.wait_status(first[0]["id"], "ACTIVE") and \
        api.wait_status(second[0]["id"], "ACTIVE")
    return first, second


def our_flows(ovs):
    return sorted(line for line in ovs.dump_flows("br-int")
                  if "cookie=0x51" in line)


def strip_counters(lines):
    import re
    return sorted(re.sub(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*,\s*", "", x)
                  for x in lines)


def test_two_instances_ping_and_isolation(ovs, api, agent):
    net, _ = api.network("10.10.0.0/24")
    other_net, _ = api.network("10.10.0.0/24")  # overlapping on purpose
    p1, a = vm(ovs, api, net)
    p2, b = vm(ovs, api, net)
    p3, c = vm(ovs, api, other_net)
    for p in (p1, p2, p3):
        assert api.wait_status(p["id"], "ACTIVE"), p["id"]
    assert a.ping(b.ip, count=3, wait=1)
    assert b.ping(a.ip)
    # same addresses on another network: never reachable
    assert not c.ping(a.ip if c.ip != a.ip else b.ip, count=2, wait=1)
    # admin_state_up=false cuts the port; back on, it works again
    api("PUT", f"/v2.0/ports/{p2['id']}", {"port": {"admin_state_up": False}})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and a.ping(b.ip, wait=0.5):
        time.sleep(0.1)
    assert not a.ping(b.ip, count=2, wait=1)
    api("PUT", f"/v2.0/ports/{p2['id']}", {"port": {"admin_state_up": True}})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not a.ping(b.ip, wait=0.5):
        pass
    assert a.ping(b.ip)


def test_spoofing_is_cut(ovs, api, agent):
    net, _ = api.network("10.11.0.0/24")
    (p1, a), (p2, b) = two_active_vms(ovs, api, net)
    assert a.ping(b.ip, count=2)
    a.exec("ip", "addr", "flush", "dev", a.dev)
    a.exec("ip", "addr", "add", "10.11.0.200/24", "dev", a.dev)
    assert not a.ping(b.ip, count=2, wait=1)  # a foreign source IP
    a.exec("ip", "addr", "flush", "dev", a.dev)
    a.exec("ip", "addr", "add", f"{a.ip}/24", "dev", a.dev)
    a.exec("ip", "link", "set", a.dev, "address", "fa:16:3e:de:ad:01")
    assert not a.ping(b.ip, count=2, wait=1)  # a foreign source MAC


def test_status_and_port_delete(ovs, api, agent):
    net, _ = api.network("10.12.0.0/24")
    (p1, a), (p2, b) = two_active_vms(ovs, api, net)
    assert a.ping(b.ip)
    ovs.unplug(b)
    assert api.wait_status(p2["id"], "DOWN")
    before = len(our_flows(ovs))
    api("DELETE", f"/v2.0/ports/{p2['id']}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (len(our_flows(ovs)) >= before or any(
            p2["mac_address"] in f for f in our_flows(ovs))):
        time.sleep(0.05)
    assert not any(p2["mac_address"] in f for f in our_flows(ovs))
    assert len(our_flows(ovs)) < before


@pytest.mark.parametrize("modes", [("listen", "listen"), ("connect", "connect"),
                                   ("listen", "connect", "listen")], ids="-".join)
def test_agent_restart_is_hitless(ovs, api, server, tmp_path, modes):
    """Restarts keep every flow and every packet, also those that change
    the OpenFlow mode (listening for the switch / connecting to it)."""
    agent = make_agent(ovs, server, tmp_path, modes[0])
    try:
        net, _ = api.network("10.13.0.0/24")
        (p1, a), (p2, b) = two_active_vms(ovs, api, net)
        assert a.ping(b.ip)
        before = strip_counters(our_flows(ovs))
        pinger = subprocess.Popen(["ip", "netns", "exec", a.ns, "ping", "-n", "-i", "0.05",
                                   "-c", str(40 * len(modes)), b.ip],
                                  stdout=subprocess.PIPE, text=True)
        controllers = ovs.vsctl("get-controller", "br-int")
        for mode in modes[1:]:
            time.sleep(0.5)
            agent.stop()
            agent = make_agent(ovs, server, tmp_path, mode)
            assert agent.ready.wait(10)
            assert agent.stats["flow_mods"] == 0, mode
            # the bridge's controllers stay as they were: gaining the first
            # or losing the last flushes every flow
            assert ovs.vsctl("get-controller", "br-int") == controllers
        out, _ = pinger.communicate(timeout=30)
        after = strip_counters(our_flows(ovs))
        assert after == before
        assert " 0% packet loss" in out, out
    finally:
        agent.stop()


def test_vswitchd_restart_reinstalls(ovs, api, agent_either):
    net, _ = api.network("10.14.0.0/24")
    (p1, a), (p2, b) = two_active_vms(ovs, api, net)
    before = strip_counters(our_flows(ovs))
    ovs.restart_vswitchd()
    started = time.monotonic()
    while time.monotonic() - started < 10:
        try:
            if strip_counters(our_flows(ovs)) == before:
                break
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    assert strip_counters(our_flows(ovs)) == before
    assert a.ping(b.ip, count=3, wait=1)


def test_dhcp_from_the_agent(ovs, api, agent_either, tmp_path):
    """A real dhclient gets exactly its port's address, mask, gateway and DNS
    from the agent's native responder (packet-in, packet-out)."""
    from tests.integration.test_dhcp_client import Instance as DhcpClient
    net = api("POST", "/v2.0/networks", {"network": {"name": "dhcp"}})["network"]
    sub = api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.15.0.0/24", "ip_version": 4,
        "dns_nameservers": ["10.15.0.53"]}})["subnet"]
    (p1, a), (p2, b) = two_active_vms(ovs, api, net)
    a.exec("ip", "addr", "flush", "dev", a.dev)
    client = DhcpClient(a.ns, a.dev, tmp_path)
    client.start()
    try:
        ev = client.wait_for(lambda e: e["reason"] == "BOUND", timeout=20)
        assert ev["ip"] == p1["fixed_ips"][0]["ip_address"]
        assert ev["mask"] == "255.255.255.0"
        assert ev["routers"] == sub["gateway_ip"]
        assert ev["dns"] == "10.15.0.53"
        assert ev["mtu"] == str(net["mtu"])
        assert a.ping(b.ip, count=2)
    finally:
        client.stop()
    assert agent_either.stats.get("dhcp_replies", 0) >= 2  # an OFFER and an ACK


def test_losing_the_server_keeps_the_data_plane(ovs, api, server, agent):
    """The server goes away: flows and traffic stay; when it is back the
    agent follows new changes again."""
    net, _ = api.network("10.16.0.0/24")
    (p1, a), (p2, b) = two_active_vms(ovs, api, net)
    before = strip_counters(our_flows(ovs))
    server.stop()
    time.sleep(1.5)  # the agent's long-poll and heartbeat fail meanwhile
    assert a.ping(b.ip, count=3)
    assert strip_counters(our_flows(ovs)) == before
    server.start()
    p3, c = vm(ovs, api, net)
    assert api.wait_status(p3["id"], "ACTIVE", timeout=20)
    assert c.ping(a.ip, count=2)
