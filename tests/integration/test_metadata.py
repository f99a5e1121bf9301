"""The metadata service on a real data plane: server -> agent (with its
metadata proxy) -> Open vSwitch, instances as namespaces asking
169.254.169.254 with curl, nova's metadata API as a stand-in that checks
the signature as nova does (quantum_ovs/testing/nova_metadata.py).

Two instances with the same IP on two networks each get their own
metadata; a spoofing instance (another's IP and MAC, or another's
X-Instance-ID header) gets nothing that is not its own; nova down or slow
is a quick 5xx and the agent keeps working.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid

import pytest

from agent.daemon import Agent, Settings
from agent.metadata.settings import MetadataSettings
from quantum_ovs.testing.server import ServerProcess
from quantum_ovs.testing.nova_metadata import NovaMetadata
from tests.integration.test_agent import Api

HOST = "hv1"
SECRET = "s3cr3t-shared"
PROJECT = "demo"  # the Api's X-Project-Id


@pytest.fixture
def nova():
    with NovaMetadata(SECRET) as n:
        yield n


@pytest.fixture
def server(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path}/md.sqlite",
                       extra_conf="service_plugins = router\n") as s:
        yield s


@pytest.fixture
def api(server):
    return Api(server.url)


@pytest.fixture
def agent(ovs, server, nova, tmp_path):
    md = MetadataSettings(shared_secret=SECRET, nova_host=nova.host, nova_port=nova.port,
                          timeout=1.0, bridge_netns=ovs.ns,
                          namespace="qmeta-" + uuid.uuid4().hex[:8])
    a = Agent(Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                       token=server.agent_credential(HOST), datapath_type="netdev",
                       local_ip="192.0.2.1", tunnel_types=("vxlan",),
                       of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                       state_path=str(tmp_path / "state"), report_interval=5,
                       polling_interval=5, metadata=md)).start()
    try:
        yield a
    finally:
        a.stop()
        from agent.metadata import namespace
        namespace.remove(a.ovsdb, "br-int", HOST, md)


def _instance(ovs, api, nova, net, sub, ip, name):
    vm = str(uuid.uuid4())
    port = api.port(net, device_id=vm, device_owner="compute:nova",
                    fixed_ips=[{"subnet_id": sub["id"], "ip_address": ip}])
    nova.add_instance(vm, PROJECT, name, user_data=f"#cloud-config for {name}")
    inst = ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])
    inst.exec("ip", "route", "add", "169.254.169.254", "dev", inst.dev)
    return inst, port, vm


def curl(inst, path, *extra, timeout=5.0, host="169.254.169.254"):
    """(HTTP status, body) of a GET from inside the instance; status 0:
    no answer at all."""
    proc = subprocess.run(
        ["ip", "netns", "exec", inst.ns, "curl", "-sS", "-g", "-m", str(timeout),
         "-o", "-", "-w", "\n%{http_code}", *extra, f"http://{host}{path}"],
        capture_output=True, text=True, timeout=timeout + 10)
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body


def eventually_get(inst, path, timeout=20.0, **kw):
    deadline = time.monotonic() + timeout
    while True:
        status, body = curl(inst, path, timeout=2.0, **kw)
        if status == 200 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.3)


def test_same_ip_on_two_networks_each_get_their_own(ovs, api, agent, nova):
    net_a, sub_a = api.network("10.20.0.0/24")
    net_b, sub_b = api.network("10.20.0.0/24")  # overlapping on purpose
    a, pa, vm_a = _instance(ovs, api, nova, net_a, sub_a, "10.20.0.5", "vm-a")
    b, pb, vm_b = _instance(ovs, api, nova, net_b, sub_b, "10.20.0.5", "vm-b")
    assert api.wait_status(pa["id"], "ACTIVE") and api.wait_status(pb["id"], "ACTIVE")

    status, body = eventually_get(a, "/openstack/latest/meta_data.json")
    assert status == 200, body
    meta = json.loads(body)
    assert (meta["uuid"], meta["name"], meta["project_id"], meta["forwarded_for"]) == \
        (vm_a, "vm-a", PROJECT, "10.20.0.5")
    status, body = eventually_get(b, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm_b
    # the EC2 tree and user data
    status, body = curl(a, "/latest/meta-data/")
    assert status == 200 and "instance-id" in body.split("\n")
    assert curl(b, "/latest/meta-data/instance-id") == (200, vm_b)
    assert curl(a, "/openstack/latest/user_data") == (200, "#cloud-config for vm-a")
    # nova saw a correctly signed request for each (it answers 403 otherwise)
    assert {r["instance_id"] for r in nova.requests} == {vm_a, vm_b}


def test_ipv6_link_local_metadata(ovs, api, agent, nova):
    net, sub = api.network("10.21.0.0/24")
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.21.0.7", "vm6")
    assert api.wait_status(pa["id"], "ACTIVE")
    status, body = eventually_get(a, "/openstack/latest/meta_data.json",
                                  host=f"[fe80::a9fe:a9fe%25{a.dev}]")
    assert status == 200, body
    meta = json.loads(body)
    assert meta["uuid"] == vm_a and meta["forwarded_for"].startswith("fe80::")


def test_through_the_router_s_mac(ovs, api, agent, nova):
    """An instance on a routed network sends to its default gateway (a
    router interface MAC): the request is still its host's proxy's."""
    net, sub = api.network("10.28.0.0/24")
    router = api("POST", "/v2.0/routers", {"router": {"name": "r"}})["router"]
    api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.28.0.5", "vm-r")
    a.exec("ip", "route", "del", "169.254.169.254")
    a.exec("ip", "route", "add", "default", "via", sub["gateway_ip"])
    assert api.wait_status(pa["id"], "ACTIVE")
    assert a.ping(sub["gateway_ip"], count=3)
    status, body = eventually_get(a, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm_a
    neigh = a.exec("ip", "neigh", "show", "dev", a.dev)
    assert "169.254.169.254" not in neigh  # it went by the router's MAC


def test_spoofing_instance_gets_nothing_not_its_own(ovs, api, agent, nova):
    net, sub = api.network("10.22.0.0/24")
    victim, pv, vm_v = _instance(ovs, api, nova, net, sub, "10.22.0.5", "victim")
    spoofer, ps, vm_s = _instance(ovs, api, nova, net, sub, "10.22.0.6", "spoofer")
    assert api.wait_status(pv["id"], "ACTIVE") and api.wait_status(ps["id"], "ACTIVE")
    status, body = eventually_get(spoofer, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm_s
    # claiming the victim in headers changes nothing: the proxy sets its own
    status, body = curl(spoofer, "/openstack/latest/meta_data.json",
                        "-H", f"X-Instance-ID: {vm_v}", "-H", "X-Forwarded-For: 10.22.0.5",
                        "-H", f"X-Tenant-ID: {PROJECT}")
    assert status == 200 and json.loads(body)["uuid"] == vm_s
    # the victim's source IP, then its MAC too: no answer at all
    seen = len(nova.requests)
    spoofer.exec("ip", "addr", "flush", "dev", spoofer.dev)
    spoofer.exec("ip", "addr", "add", "10.22.0.5/24", "dev", spoofer.dev)
    spoofer.exec("ip", "route", "add", "169.254.169.254", "dev", spoofer.dev)
    status, body = curl(spoofer, "/openstack/latest/meta_data.json", timeout=2)
    assert status == 0 and vm_v not in body
    spoofer.exec("ip", "link", "set", spoofer.dev, "address", pv["mac_address"])
    status, body = curl(spoofer, "/openstack/latest/meta_data.json", timeout=2)
    assert status == 0 and vm_v not in body
    assert all(r["instance_id"] != vm_v for r in nova.requests[seen:])
    # the victim itself is served
    status, body = eventually_get(victim, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm_v


def test_nova_down_or_slow_is_a_quick_5xx_and_the_agent_goes_on(ovs, api, agent, nova):
    net, sub = api.network("10.23.0.0/24")
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.23.0.5", "vm-a")
    assert api.wait_status(pa["id"], "ACTIVE")
    assert eventually_get(a, "/openstack/latest/meta_data.json")[0] == 200
    settings = agent.metadata.s
    # slow: the proxy gives up after its timeout (1 s here)
    nova.delay = 10.0
    t = time.monotonic()
    status, _ = curl(a, "/openstack/latest/meta_data.json")
    assert status == 504 and time.monotonic() - t < 6.0
    nova.delay = 0.0
    # down: nothing listens there
    good = settings.nova_port
    settings.nova_port = _free_port()
    t = time.monotonic()
    status, _ = curl(a, "/openstack/latest/meta_data.json")
    assert status == 503 and time.monotonic() - t < 5.0
    # a wrong secret: nova refuses the signature, the instance sees 403
    settings.nova_port = good
    settings.shared_secret, secret = "not-nova's", settings.shared_secret
    assert curl(a, "/openstack/latest/meta_data.json")[0] == 403
    settings.shared_secret = secret
    # meanwhile the agent went on: a new instance is wired and served
    b, pb, vm_b = _instance(ovs, api, nova, net, sub, "10.23.0.6", "vm-b")
    assert api.wait_status(pb["id"], "ACTIVE")
    assert a.ping(b.ip)
    status, body = eventually_get(b, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm_b


def test_proxy_comes_back_after_its_port_is_lost(ovs, api, agent, nova):
    net, sub = api.network("10.24.0.0/24")
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.24.0.5", "vm-a")
    assert api.wait_status(pa["id"], "ACTIVE")
    assert eventually_get(a, "/openstack/latest/meta_data.json")[0] == 200
    ovs.vsctl("del-port", "br-int", agent.s.metadata.device_for(HOST))
    status, body = eventually_get(a, "/openstack/latest/meta_data.json", timeout=30)
    assert status == 200 and json.loads(body)["uuid"] == vm_a


DHCLIENT_SCRIPT = """#!/bin/sh
# The address, then option 121's routes (router 0.0.0.0: on-link), as
# dhclient-script's rfc3442 hook does; no resolv.conf.
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    set -- $new_rfc3442_classless_static_routes
    while [ $# -gt 0 ]; do
      w=$1; shift; n=$(( (w + 7) / 8 )); d=""; i=0
      while [ $i -lt 4 ]; do
        if [ $i -lt $n ]; then o=$1; shift; else o=0; fi
        d="$d${d:+.}$o"; i=$((i + 1))
      done
      r="$1.$2.$3.$4"; shift 4
      if [ "$r" = "0.0.0.0" ]; then ip route replace "$d/$w" dev "$interface"
      else ip route replace "$d/$w" via "$r" dev "$interface"; fi
    done
    echo "$new_rfc3442_classless_static_routes" > "$interface.routes"
    ;;
esac
exit 0
"""

DHCLIENT_CONF = """option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, interface-mtu,
        rfc3442-classless-static-routes;
initial-interval 1;
timeout 15;
"""


def _dhclient_routes(ovs, api, nova, tmp_path, name, cidr, gateway_ip):
    """An instance on a new network whose subnet has ``gateway_ip`` (no
    router) runs a real dhclient: (the instance, its uuid, its address,
    option 121 as dhclient gives it, split in words)."""
    net = api("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    subnet = {"network_id": net["id"], "cidr": cidr, "ip_version": 4}
    if gateway_ip != "default":
        subnet["gateway_ip"] = gateway_ip
    api("POST", "/v2.0/subnets", {"subnet": subnet})
    vm = str(uuid.uuid4())
    port = api.port(net, device_id=vm, device_owner="compute:nova")
    nova.add_instance(vm, PROJECT, f"{name}-vm")
    ip = port["fixed_ips"][0]["ip_address"]
    inst = ovs.add_instance(ip, 24, mac=port["mac_address"], iface_id=port["id"])
    inst.exec("ip", "addr", "flush", "dev", inst.dev)
    assert api.wait_status(port["id"], "ACTIVE")
    script, conf = tmp_path / "script.sh", tmp_path / "dhclient.conf"
    script.write_text(DHCLIENT_SCRIPT)
    script.chmod(0o755)
    conf.write_text(DHCLIENT_CONF)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", inst.ns, "dhclient", "-4", "-d", "-1", "-sf", str(script),
         "-cf", str(conf), "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid"),
         inst.dev], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        routes = tmp_path / f"{inst.dev}.routes"
        deadline = time.monotonic() + 20
        while not routes.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        return inst, vm, ip, routes.read_text().split()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(shutil.which("dhclient") is None, reason="no dhclient")
def test_dhcp_gives_the_metadata_route_on_a_subnet_without_gateway(ovs, api, agent, nova,
                                                                    tmp_path):
    """A real dhclient on a subnet without a gateway gets option 121's
    on-link route to 169.254.169.254 and reaches the proxy with it alone."""
    inst, vm, ip, got = _dhclient_routes(ovs, api, nova, tmp_path, "isolated",
                                         "10.26.0.0/24", None)
    # option 121 as groups of (prefix length, significant octets, router):
    # the metadata route on link; the resolver's (169.254.0.1) with it
    pairs = [" ".join(got[i:i + 9]) for i in range(0, len(got), 9)]
    assert "32 169 254 169 254 0 0 0 0" in pairs, got
    assert set(pairs) <= {"32 169 254 169 254 0 0 0 0", "32 169 254 0 1 0 0 0 0"}, got
    assert "169.254.169.254 dev" in inst.exec("ip", "route")
    status, body = eventually_get(inst, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm
    assert json.loads(body)["forwarded_for"] == ip


@pytest.mark.skipif(shutil.which("dhclient") is None, reason="no dhclient")
def test_dhcp_gives_the_metadata_route_on_a_subnet_with_a_gateway_but_no_router(
        ovs, api, agent, nova, tmp_path):
    """The default gateway_ip (10.31.0.1) with no router behind it: the
    on-link route to 169.254.169.254 and the default route via the
    gateway, both in option 121 (the client ignores option 3 then); the
    instance reaches the proxy (it would ask 10.31.0.1, which nobody
    answers, by the default route)."""
    inst, vm, ip, got = _dhclient_routes(ovs, api, nova, tmp_path, "no-router",
                                         "10.31.0.0/24", "default")
    text = " ".join(got)
    assert "32 169 254 169 254 0 0 0 0" in text and text.endswith("0 10 31 0 1"), got
    route = inst.exec("ip", "route")
    assert "169.254.169.254 dev" in route and "default via 10.31.0.1" in route, route
    status, body = eventually_get(inst, "/openstack/latest/meta_data.json")
    assert status == 200 and json.loads(body)["uuid"] == vm
    assert json.loads(body)["forwarded_for"] == ip


def test_agent_restart_is_hitless_with_metadata(ovs, api, agent, nova, server, tmp_path):
    """A restarted agent finds the proxy's namespace and port as they were:
    the same ofport, not one flow changed, and the instance is served."""
    net, sub = api.network("10.27.0.0/24")
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.27.0.5", "vm-a")
    assert api.wait_status(pa["id"], "ACTIVE")
    assert eventually_get(a, "/openstack/latest/meta_data.json")[0] == 200
    ofport = agent.metadata.ofport
    agent.stop()
    again = Agent(agent.s).start()
    try:
        assert again.ready.wait(20)
        deadline = time.monotonic() + 10
        while again.metadata.ofport == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert again.metadata.ofport == ofport
        status, body = eventually_get(a, "/openstack/latest/meta_data.json")
        assert status == 200 and json.loads(body)["uuid"] == vm_a
        assert again.stats["flow_mods"] == 0
    finally:
        again.stop()


def test_proxy_off_removes_what_it_left(ovs, api, agent, nova):
    """An agent restarted without the proxy removes its port and namespace
    and its flows (a request then goes nowhere)."""
    net, sub = api.network("10.29.0.0/24")
    a, pa, vm_a = _instance(ovs, api, nova, net, sub, "10.29.0.5", "vm-a")
    assert api.wait_status(pa["id"], "ACTIVE")
    assert eventually_get(a, "/openstack/latest/meta_data.json")[0] == 200
    agent.stop()
    s = agent.s
    s.metadata = None
    dev = MetadataSettings().device_for(HOST)
    ns = MetadataSettings().namespace_for(HOST)
    subprocess.run(["ip", "netns", "add", ns], check=False)  # as a default-named one
    again = Agent(s).start()
    try:
        assert again.ready.wait(20)
        assert dev not in ovs.vsctl("list-ports", "br-int").split()
        assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout
        assert curl(a, "/openstack/latest/meta_data.json", timeout=2)[0] == 0
        assert "169.254.169.254" not in "\n".join(ovs.dump_flows())
    finally:
        again.stop()


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
