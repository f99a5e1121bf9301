"""OpenStack's own nova (nova 34 from PyPI, unchanged) boots servers on
quantum-ovs: ports created and bound through our API, VIFs plugged into
each host's private Open vSwitch by the compute driver, our agent's flows,
``network-vif-plugged`` from our server to nova-api, and the guest (a
namespace) configuring itself by DHCP from our agent.

The stack is :class:`tests.fixtures.nova.NovaStack`, one per module (about
three minutes to start here); its setup time and memory are printed.  Run
by ``make test-nova`` (QOVS_NOVA_TESTS=1), not by ``make test``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time

import pytest

from quantum_ovs.testing.ovs import missing_prerequisites as ovs_missing
from tests.fixtures import nova as nova_fixture

HOSTS = ("hv1", "hv2")
# hv2 waits this long for network-vif-plugged (the agent-down test); hv1
# nova's default, 300 s.
HV2_VIF_TIMEOUT = 60

DHCP_SCRIPT = """#!/bin/sh
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
exit 0
"""


@pytest.fixture(scope="module")
def stack(request):
    if not os.environ.get("QOVS_NOVA_TESTS"):
        pytest.skip("OpenStack's nova stack: make test-nova (QOVS_NOVA_TESTS=1)")
    reason = ovs_missing() or nova_fixture.missing_prerequisites()
    if reason:
        pytest.skip(reason)
    st = nova_fixture.NovaStack(hosts=HOSTS,
                                host_options={"hv2": f"vif_plugging_timeout = {HV2_VIF_TIMEOUT}"},
                                keep_dir=bool(os.environ.get("QOVS_NOVA_KEEP")))
    st.start()
    print(f"\nnova stack setup s: {st.timings}")
    rss = st.rss_mib()
    print(f"nova stack RSS MiB: {rss} sum={sum(rss.values()):.0f}")
    failed_before = request.session.testsfailed
    try:
        yield st
    finally:
        if request.session.testsfailed > failed_before or os.environ.get("QOVS_NOVA_LOGS"):
            print(st.log())
            print("--- quantum-ovs server\n" + st.server.log()[-15000:])
        st.stop()


@pytest.fixture(scope="module")
def net(stack):
    n = stack.cli("network", "create", "nova-net")
    stack.cli("subnet", "create", "--network", n["id"], "--subnet-range", "10.77.0.0/24",
              "nova-subnet")
    return n


def boot(stack, name, *nic_args, host=None, wait=True):
    args = ["server", "create", "--image", stack.image_id, "--flavor", "m1.tiny", *nic_args]
    if host:
        args += ["--availability-zone", f"nova:{host}"]
    if wait:
        args += ["--wait"]
    return stack.cli(*args, name, timeout=300)


def ports_of(stack, server_id):
    return stack.cli("port", "list", "--device-id", server_id, "--long")


def port_show(stack, port_id):
    return stack.cli("port", "show", port_id)


def br_int_ports(stack, host):
    return stack.cluster[host].ovs.vsctl("list-ports", "br-int").split()


def dhcp(stack, tmp_path, server_id, port):
    """dhclient in the guest namespace on the port's device; returns the
    address it configured."""
    ns, dev = stack.guest_ns(server_id), "ve" + port["id"][:11]
    script = tmp_path / f"dhclient-{port['id'][:8]}.sh"
    script.write_text(DHCP_SCRIPT)
    script.chmod(0o755)
    argv = ["ip", "netns", "exec", ns, "dhclient", "-4", "-d", "-1", "-v",
            "-sf", str(script), "-lf", str(tmp_path / f"{port['id']}.leases"),
            "-pf", str(tmp_path / f"{port['id']}.pid"), dev]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev],
                                 stdout=subprocess.PIPE, text=True).stdout
            if " inet " in out:
                return out.split(" inet ")[1].split("/")[0]
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.terminate()
        out = proc.communicate(timeout=10)[0]
    raise AssertionError(f"no DHCP address on {dev} in {ns}:\n{out}")


def ping(stack, server_id, ip, count=3):
    res = subprocess.run(["ip", "netns", "exec", stack.guest_ns(server_id), "ping", "-n",
                          "-c", str(count), "-W", "2", ip], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=60)
    return res.returncode == 0, res.stdout


def namespaces():
    return subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                          text=True).stdout


def test_nic_auto_boots_on_the_projects_auto_allocated_topology(stack, tmp_path):
    """``--nic auto`` (compute API 2.37, "get me a network"): the admin
    project has no network of its own yet (this test runs before the
    module's ``net``), so nova asks us for the project's auto-allocated
    topology and boots the server on its network; the guest gets its
    address by DHCP from our agent.  The project's topology, the default
    pool and the default external network are removed after."""
    # (another project's: nova counts the project's own networks, external
    # ones included, before it asks for a topology)
    ext = stack.cli("network", "create", "--external", "--default", "--project", "service",
                    "public-auto")
    made = []
    try:
        stack.cli("subnet", "create", "--network", ext["id"], "--subnet-range",
                  "172.30.0.0/24", "--no-dhcp", "public-auto-subnet")
        pool = stack.cli("subnet", "pool", "create", "--default", "--share", "--pool-prefix",
                         "10.90.0.0/16", "--default-prefix-length", "26", "auto-pool")
        vm = stack.cli("--os-compute-api-version", "2.37", "server", "create", "--image",
                       stack.image_id, "--flavor", "m1.tiny", "--nic", "auto",
                       "--availability-zone", "nova:hv1", "--wait", "vm-auto", timeout=300)
        made.append(vm["id"])
        assert vm["status"] == "ACTIVE", vm
        project = stack.cli("project", "show", "admin")["id"]
        topo = stack.neutron("GET", f"/v2.0/auto-allocated-topology/{project}")
        net_id = topo["auto_allocated_topology"]["id"]
        (p,) = ports_of(stack, vm["id"])
        port = port_show(stack, p["ID"])
        assert port["network_id"] == net_id and port["status"] == "ACTIVE", port
        ip = port["fixed_ips"][0]["ip_address"]
        assert ip.startswith("10.90."), port
        server = stack.nova("GET", f"/servers/{vm['id']}")["server"]
        assert [a["addr"] for a in server["addresses"]["auto_allocated_network"]] == [ip]
        assert dhcp(stack, tmp_path, vm["id"], port) == ip
        # the router nova's topology came with: the guest's gateway answers
        # (the router's interface address, from the agent's flows)
        routers = stack.neutron("GET", f"/v2.0/routers?project_id={project}")["routers"]
        assert [r["name"] for r in routers] == ["auto_allocated_router"], routers
        sub = stack.neutron("GET", f"/v2.0/subnets/{port['fixed_ips'][0]['subnet_id']}")
        ok, out = ping(stack, vm["id"], sub["subnet"]["gateway_ip"])
        assert ok, out
        stack.cli("server", "delete", "--wait", vm["id"], parse=False)
        made.clear()
        stack.neutron("DELETE", f"/v2.0/auto-allocated-topology/{project}")
        stack.cli("subnet", "pool", "delete", pool["id"], parse=False)
    finally:
        for vm_id in made:
            stack.cli("server", "delete", "--wait", vm_id, parse=False, check=False)
        stack.cli("network", "delete", ext["id"], parse=False, check=False)


def test_boot_on_a_network_then_delete(stack, net, tmp_path):
    t0 = time.monotonic()
    vm1 = boot(stack, "vm1", "--network", net["id"], host="hv1")
    boot_s = time.monotonic() - t0
    vm2 = boot(stack, "vm2", "--network", net["id"], host="hv2")
    print(f"boot to ACTIVE (CLI --wait): {boot_s:.1f}s")
    assert vm1["status"] == "ACTIVE" and vm2["status"] == "ACTIVE"
    assert vm1["OS-EXT-SRV-ATTR:host"] == "hv1" and vm2["OS-EXT-SRV-ATTR:host"] == "hv2"

    guests = {}
    for vm, host in ((vm1, "hv1"), (vm2, "hv2")):
        (p,) = ports_of(stack, vm["id"])
        port = port_show(stack, p["ID"])
        # nova made the port, bound it to the compute host; our agent
        # reported it up.
        assert port["device_owner"].startswith("compute:"), port
        assert port["binding_host_id"] == host, port
        assert port["binding_vif_type"] == "ovs", port
        assert port["status"] == "ACTIVE", port
        ip = port["fixed_ips"][0]["ip_address"]
        # nova's instance info cache: the address and the MAC.
        server = stack.nova("GET", f"/servers/{vm['id']}")["server"]
        (addr,) = server["addresses"]["nova-net"]
        assert addr["addr"] == ip and addr["OS-EXT-IPS-MAC:mac_addr"] == port["mac_address"]
        # os-vif's shape on br-int.
        tap = "tap" + port["id"][:11]
        assert tap in br_int_ports(stack, host)
        ext = stack.cluster[host].ovs.vsctl("get", "Interface", tap, "external_ids")
        assert port["id"] in ext and vm["id"] in ext and port["mac_address"] in ext
        assert dhcp(stack, tmp_path, vm["id"], port) == ip
        guests[vm["id"]] = (port, ip, tap, host)

    ok, out = ping(stack, vm1["id"], guests[vm2["id"]][1])
    assert ok, out

    for vm in (vm1, vm2):
        stack.cli("server", "delete", "--wait", vm["id"], parse=False)
    for vm_id, (port, _ip, tap, host) in guests.items():
        # Ports nova created are deleted; nothing left on br-int.
        res = stack.cli("port", "show", port["id"], check=False)
        assert res.returncode != 0 and "No Port found" in res.stderr, res.stderr
        assert tap not in br_int_ports(stack, host)
        assert stack.guest_ns(vm_id) not in namespaces()


@pytest.fixture(scope="module")
def net2(stack):
    n = stack.cli("network", "create", "nova-net2")
    stack.cli("subnet", "create", "--network", n["id"], "--subnet-range", "10.78.0.0/24",
              "nova-subnet2")
    return n


def test_boot_with_a_precreated_port_leaves_it_unbound_on_delete(stack, net, tmp_path):
    p = stack.cli("port", "create", "--network", net["id"], "pre-port")
    vm = boot(stack, "vm-port", "--port", p["id"], host="hv1")
    assert vm["status"] == "ACTIVE"
    port = port_show(stack, p["id"])
    assert port["device_id"] == vm["id"] and port["device_owner"].startswith("compute:")
    assert port["binding_host_id"] == "hv1" and port["binding_vif_type"] == "ovs", port
    assert port["status"] == "ACTIVE", port
    assert dhcp(stack, tmp_path, vm["id"], port) == port["fixed_ips"][0]["ip_address"]

    stack.cli("server", "delete", "--wait", vm["id"], parse=False)
    port = port_show(stack, p["id"])  # still there: nova did not create it
    assert port["device_id"] == "" and port["device_owner"] == "", port
    assert not port["binding_host_id"], port
    assert port["status"] == "DOWN", port
    assert "tap" + p["id"][:11] not in br_int_ports(stack, "hv1")
    stack.cli("port", "delete", p["id"], parse=False)


def test_two_nics_and_interface_attach_detach(stack, net, net2, tmp_path):
    vm = boot(stack, "vm-2nic", "--network", net["id"], "--network", net2["id"], host="hv2")
    assert vm["status"] == "ACTIVE"
    ports = {p["ID"]: port_show(stack, p["ID"]) for p in ports_of(stack, vm["id"])}
    assert {p["network_id"] for p in ports.values()} == {net["id"], net2["id"]}
    for port in ports.values():
        assert port["status"] == "ACTIVE" and port["binding_host_id"] == "hv2", port
        assert dhcp(stack, tmp_path, vm["id"], port) == port["fixed_ips"][0]["ip_address"]
    server = stack.nova("GET", f"/servers/{vm['id']}")["server"]
    assert set(server["addresses"]) == {"nova-net", "nova-net2"}

    # server add port: a port of ours, bound to hv2 and plugged by nova.
    extra = stack.cli("port", "create", "--network", net2["id"], "extra-port")
    stack.cli("server", "add", "port", vm["id"], extra["id"], parse=False)
    port = _wait_port(stack, extra["id"], lambda p: p["status"] == "ACTIVE")
    assert port["device_id"] == vm["id"] and port["binding_host_id"] == "hv2", port
    assert "tap" + extra["id"][:11] in br_int_ports(stack, "hv2")
    assert dhcp(stack, tmp_path, vm["id"], port) == port["fixed_ips"][0]["ip_address"]

    # server remove port: unplugged, unbound, kept (nova did not create it).
    stack.cli("server", "remove", "port", vm["id"], extra["id"], parse=False)
    port = _wait_port(stack, extra["id"], lambda p: not p["device_id"])
    assert not port["binding_host_id"], port
    assert _wait(lambda: "tap" + extra["id"][:11] not in br_int_ports(stack, "hv2"))

    # server add / remove network: nova creates and then deletes the port.
    stack.cli("server", "add", "network", vm["id"], net["id"], parse=False)
    assert _wait(lambda: len(ports_of(stack, vm["id"])) == 3, timeout=60)
    new = [p for p in ports_of(stack, vm["id"]) if p["ID"] not in ports]
    (new_port,) = new
    _wait_port(stack, new_port["ID"], lambda p: p["status"] == "ACTIVE")
    stack.cli("server", "remove", "network", vm["id"], net["id"], parse=False)
    assert _wait(lambda: stack.cli("port", "show", new_port["ID"], check=False).returncode
                 != 0, timeout=60)
    stack.cli("server", "delete", "--wait", vm["id"], parse=False)
    assert not ports_of(stack, vm["id"])
    stack.cli("port", "delete", extra["id"], parse=False)


def _wait(pred, timeout=60, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _wait_port(stack, port_id, pred, timeout=60):
    port = None

    def check():
        nonlocal port
        port = port_show(stack, port_id)
        return pred(port)
    assert _wait(check, timeout), port
    return port


def test_live_migration_with_a_background_ping(stack, net, tmp_path):
    vm = boot(stack, "vm-mig", "--network", net["id"], host="hv1")
    peer = boot(stack, "vm-peer", "--network", net["id"], host="hv1")
    (p,) = ports_of(stack, vm["id"])
    port = port_show(stack, p["ID"])
    ip = dhcp(stack, tmp_path, vm["id"], port)
    (pp,) = ports_of(stack, peer["id"])
    dhcp(stack, tmp_path, peer["id"], port_show(stack, pp["ID"]))
    ok, out = ping(stack, peer["id"], ip)
    assert ok, out

    pinger = subprocess.Popen(["ip", "netns", "exec", stack.guest_ns(peer["id"]), "ping", "-n",
                               "-i", "0.01", "-W", "1", ip], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1)
        t0 = time.monotonic()
        stack.cli("server", "migrate", "--live-migration", "--host", "hv2", "--wait",
                  vm["id"], parse=False, timeout=300)
        migrate_s = time.monotonic() - t0
        time.sleep(2)
    finally:
        pinger.send_signal(2)  # SIGINT: ping prints its summary
        out = pinger.communicate(timeout=10)[0]
    summary = [line for line in out.splitlines() if "packets transmitted" in line]
    assert summary, out
    sent, received = (int(w) for w in re.findall(r"(\d+) (?:packets transmitted|received)",
                                                 summary[0]))
    lost_s = (sent - received) * 0.01
    print(f"live migration: {migrate_s:.1f}s (CLI), ping every 10 ms: {sent - received} of "
          f"{sent} lost (~{lost_s:.2f}s)")

    server = stack.nova("GET", f"/servers/{vm['id']}")["server"]
    assert server["OS-EXT-SRV-ATTR:host"] == "hv2" and server["status"] == "ACTIVE", server
    port = port_show(stack, p["ID"])
    assert port["binding_host_id"] == "hv2" and port["status"] == "ACTIVE", port
    bindings = stack.neutron("GET", f"/v2.0/ports/{p['ID']}/bindings")["bindings"]
    assert [(b["host"], b["status"]) for b in bindings] == [("hv2", "ACTIVE")], bindings
    tap = "tap" + p["ID"][:11]
    assert tap in br_int_ports(stack, "hv2") and tap not in br_int_ports(stack, "hv1")
    ok, out = ping(stack, peer["id"], ip)
    assert ok, out
    assert lost_s < 3.0, out
    for s in (vm, peer):
        stack.cli("server", "delete", "--wait", s["id"], parse=False)


def test_agent_down_fails_the_boot_on_the_vif_plugged_timeout(stack, net):
    stack.cluster["hv2"].stop_agent()
    try:
        vm = boot(stack, "vm-noagent", "--network", net["id"], host="hv2", wait=False)
        assert _wait(lambda: stack.nova("GET", f"/servers/{vm['id']}")["server"]["status"]
                     == "ERROR", timeout=HV2_VIF_TIMEOUT + 120, interval=2)
        with open(os.path.join(stack.dir, "nova-compute-hv2.log")) as f:
            log = f.read()
        assert "Timeout waiting for ['network-vif-plugged" in log or \
            "Virtual Interface creation failed" in log, log[-5000:]
        # The port nova made is gone; nothing left on br-int.
        assert _wait(lambda: not ports_of(stack, vm["id"]), timeout=60)
        assert not [t for t in br_int_ports(stack, "hv2") if t.startswith("tap")]
        stack.cli("server", "delete", "--wait", vm["id"], parse=False)
    finally:
        stack.restart_agent("hv2")


def test_twenty_servers_at_once(stack, net):
    times, servers = stack.boot_many(20, net["id"], name="many", host="hv1")
    med = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    print(f"20 servers at once: API call to ACTIVE median {med:.1f}s p95 {p95:.1f}s "
          f"max {times[-1]:.1f}s")
    if os.environ.get("QOVS_NOVA_BENCH_JSON"):  # bench/nova_boot.py
        with open(os.environ["QOVS_NOVA_BENCH_JSON"], "w") as f:
            json.dump({"servers": len(times), "nova_boot_s": round(med, 2),
                       "nova_boot_p95_s": round(p95, 2), "nova_boot_max_s": round(times[-1], 2),
                       "nova_stack_setup_s": stack.timings,
                       "nova_stack_rss_mib": round(sum(stack.rss_mib().values()))}, f)
    for srv in servers:
        (p,) = ports_of(stack, srv["id"])
        assert p["Status"] == "ACTIVE", p
    for srv in servers:
        stack.nova("DELETE", f"/servers/{srv['id']}")
    assert _wait(lambda: not stack.nova("GET", "/servers?name=many")["servers"], timeout=300)


def test_servers_on_a_provider_vlan_network(stack, tmp_path):
    n = stack.cli("network", "create", "--provider-network-type", "vlan",
                  "--provider-physical-network", stack.cluster.physnet,
                  "--provider-segment", "212", "nova-vlan")
    stack.cli("subnet", "create", "--network", n["id"], "--subnet-range", "10.79.0.0/24",
              "nova-vlan-subnet")
    vms, ips = [], []
    for name, host in (("vlan-a", "hv1"), ("vlan-b", "hv2")):
        vm = boot(stack, name, "--network", n["id"], host=host)
        assert vm["status"] == "ACTIVE"
        (p,) = ports_of(stack, vm["id"])
        port = port_show(stack, p["ID"])
        assert port["binding_host_id"] == host and port["binding_vif_type"] == "ovs", port
        assert port["status"] == "ACTIVE", port
        ips.append(dhcp(stack, tmp_path, vm["id"], port))
        assert ips[-1] == port["fixed_ips"][0]["ip_address"]
        vms.append(vm)
    # hv1 -> hv2 over the provider underlay, tagged 212.
    cap = stack.cluster.provider.capture("hv2", "vlan 212 and icmp")
    ok, out = ping(stack, vms[0]["id"], ips[1])
    lines = cap.stop()
    assert ok, out
    assert any("vlan 212" in line for line in lines), lines
    for vm in vms:
        stack.cli("server", "delete", "--wait", vm["id"], parse=False)
    stack.cli("network", "delete", n["id"], parse=False)
