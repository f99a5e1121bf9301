"""Internal DNS and extra DHCP options through the whole chain: a real
server, the agent in-process, a private Open vSwitch, instances as
namespaces (tests/integration/test_agent.py's rig).

Queries go from the instances' namespaces (dnspython over a UDP socket
opened inside the namespace; ``dig`` is not installed here) to the
resolver DHCP hands out (169.254.0.1, on link: no router needed); a real
``dhclient`` reads the resolver, its route, the domain and the port's
extra options.
"""

from __future__ import annotations

import socket
import threading
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.reversename

from quantum_ovs.testing.ovs import in_netns
from tests.integration import test_agent as rig
from tests.integration.test_dhcp_client import CONF
from tests.integration.test_dhcp_client import Instance as DhcpClient

# test_agent.py's fixtures: a server, its API, the agent.
server, api, agent = rig.server, rig.api, rig.agent
vm = rig.vm


def resolve(inst, server_ip, name, rdtype="A", timeout=1.0):
    """(rcode, sorted answers) of a query from ``inst``'s namespace, or
    (None, []) on a timeout."""
    sock = in_netns(inst.ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        q = dns.message.make_query(name, rdtype)
        r = dns.query.udp(q, server_ip, timeout=timeout, sock=sock)
    except dns.exception.Timeout:
        return None, []
    finally:
        sock.close()
    return r.rcode(), sorted(str(x) for rr in r.answer for x in rr)


def wait_answer(fn, want, timeout=20.0):
    deadline = time.monotonic() + timeout
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = fn()
    return got


RESOLVER = "169.254.0.1"


def instance(ovs, api, net, **kw):
    """An instance with the on-link route to the resolver its DHCP gives."""
    port, inst = vm(ovs, api, net, **kw)
    inst.exec("ip", "route", "add", f"{RESOLVER}/32", "dev", inst.dev)
    return port, inst


def test_instances_resolve_each_other_and_renames_follow(ovs, api, agent):
    net1, _ = api.network("10.61.0.0/24")
    net2, _ = api.network("10.62.0.0/24")
    pa, a = instance(ovs, api, net1, dns_name="alpha")
    pb, b = instance(ovs, api, net1, dns_name="beta")
    pc, c = instance(ovs, api, net2, dns_name="gamma")
    for p in (pa, pb, pc):
        assert api.wait_status(p["id"], "ACTIVE"), p["id"]
    gw1 = gw2 = RESOLVER  # each network answers on it for its own ports
    ok = dns.rcode.NOERROR

    assert wait_answer(lambda: resolve(a, gw1, "beta.openstacklocal."),
                       (ok, [b.ip])) == (ok, [b.ip])
    assert resolve(b, gw1, "alpha.openstacklocal.") == (ok, [a.ip])
    assert resolve(a, gw1, dns.reversename.from_address(b.ip), "PTR") == \
        (ok, ["beta.openstacklocal."])
    assert resolve(b, gw1, dns.reversename.from_address(a.ip), "PTR") == \
        (ok, ["alpha.openstacklocal."])
    # A port without a name is host-<address>.
    pd, d = instance(ovs, api, net1)
    assert api.wait_status(pd["id"], "ACTIVE")
    host_d = "host-" + d.ip.replace(".", "-") + ".openstacklocal."
    assert wait_answer(lambda: resolve(a, gw1, host_d), (ok, [d.ip])) == (ok, [d.ip])

    # Another network's name does not resolve, and the other way round.
    assert resolve(a, gw1, "gamma.openstacklocal.") == (dns.rcode.NXDOMAIN, [])
    assert wait_answer(lambda: resolve(c, gw2, "gamma.openstacklocal."),
                       (ok, [c.ip])) == (ok, [c.ip])
    assert resolve(c, gw2, "alpha.openstacklocal.") == (dns.rcode.NXDOMAIN, [])
    assert resolve(c, gw2, dns.reversename.from_address(a.ip), "PTR")[0] != ok
    # How long an answer takes, instance to agent and back (50 queries,
    # paced under the port's punt meter: [agent] dhcp_packet_rate, 50/s).
    lat = []
    sock = in_netns(a.ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        for _ in range(50):
            q = dns.message.make_query("beta.openstacklocal.", "A")
            sock.settimeout(1)
            t = time.monotonic()
            # (not dns.query.udp: eventlet, imported by the ovs library,
            # patches it into one that closes the socket)
            sock.sendto(q.to_wire(), (gw1, 53))
            r = dns.message.from_wire(sock.recv(4096))
            lat.append(time.monotonic() - t)
            assert [str(x) for rr in r.answer for x in rr] == [b.ip]
            time.sleep(0.04)
    finally:
        sock.close()
    lat.sort()
    print(f"\ndns_answer_ms median={lat[25] * 1000:.2f} p90={lat[45] * 1000:.2f}")
    # Other names: no dns_nameservers, no [agent] dns_resolvers: refused.
    assert resolve(a, gw1, "example.com.")[0] == dns.rcode.REFUSED

    # Two ports with one name: both addresses.
    api("PUT", f"/v2.0/ports/{pd['id']}", {"port": {"dns_name": "alpha"}})
    both = (ok, sorted([a.ip, d.ip]))
    assert wait_answer(lambda: resolve(b, gw1, "alpha.openstacklocal."), both) == both

    # A rename is answered (from the PUT to the first query that gets the
    # new name; five renames): the times are printed, a figure, and each
    # must come within the loop's 5 s.
    times = []
    for i in range(5):
        new = f"delta{i}"
        t0 = time.monotonic()
        api("PUT", f"/v2.0/ports/{pb['id']}", {"port": {"dns_name": new}})
        got = resolve(a, gw1, f"{new}.openstacklocal.", timeout=0.5)
        while got != (ok, [b.ip]) and time.monotonic() - t0 < 5:
            time.sleep(0.01)
            got = resolve(a, gw1, f"{new}.openstacklocal.", timeout=0.5)
        times.append(time.monotonic() - t0)
        assert got == (ok, [b.ip])
    times.sort()
    print(f"\nrename_to_answer_s median={times[2]:.3f} max={times[-1]:.3f}")
    assert resolve(a, gw1, "beta.openstacklocal.") == (dns.rcode.NXDOMAIN, [])
    assert resolve(a, gw1, "delta3.openstacklocal.") == (dns.rcode.NXDOMAIN, [])
    assert agent.stats.get("dns_answers", 0) > 5


PXE_CONF = CONF.replace("request subnet-mask,",
                        "request subnet-mask, tftp-server-name, bootfile-name,")


def test_dhclient_sees_resolver_domain_and_extra_options(ovs, api, agent, tmp_path):
    net = api("POST", "/v2.0/networks", {"network": {"name": "pxe",
                                                     "dns_domain": "pxe.test."}})["network"]
    sub = api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.63.0.0/24", "ip_version": 4}})["subnet"]
    opts = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
            {"opt_name": "tftp-server", "opt_value": "10.63.0.9"},
            {"opt_name": "server-ip-address", "opt_value": "10.63.0.9"}]
    p, inst = vm(ovs, api, net, extra_dhcp_opts=opts)
    assert api.wait_status(p["id"], "ACTIVE")
    inst.exec("ip", "addr", "flush", "dev", inst.dev)
    client = DhcpClient(inst.ns, inst.dev, tmp_path)
    client.conf.write_text(PXE_CONF)
    client.start()
    try:
        ev = client.wait_for(lambda e: e["reason"] == "BOUND", timeout=20)
        assert ev["ip"] == p["fixed_ips"][0]["ip_address"]
        # The resolver (on link, then the default route: option 121),
        # the domain the network's.
        assert ev["dns"] == RESOLVER
        gw = sub["gateway_ip"].split(".")
        assert ev["routes"].split() == ["32", "169", "254", "0", "1", "0", "0", "0", "0",
                                        "0", *gw]
        assert ev["domain"] == "pxe.test"
        lease = client.leases.read_text()
        assert 'filename "pxelinux.0";' in lease, lease
        assert 'option tftp-server-name "10.63.0.9";' in lease, lease
        assert 'option bootfile-name "pxelinux.0";' in lease, lease
        # Clearing an option (opt_value null) reaches the host: the next
        # lease has no boot file.
        api("PUT", f"/v2.0/ports/{p['id']}", {"port": {"extra_dhcp_opts": [
            {"opt_name": "bootfile-name", "opt_value": None}]}})
    finally:
        client.stop()
    time.sleep(0.5)
    client.leases.write_text("")
    client.events.write_text("")
    client.start()
    try:
        client.wait_for(lambda e: e["reason"] in ("BOUND", "REBOOT"), timeout=20)
        lease = client.leases.read_text()
        assert "bootfile-name" not in lease and "filename" not in lease, lease
        assert 'option tftp-server-name "10.63.0.9";' in lease, lease
    finally:
        client.stop()



def test_other_names_forwarded_to_the_agents_resolvers(ovs, server, tmp_path):
    """[agent] dns_resolvers: a name that is not the network's goes to the
    upstream (a stand-in on loopback, slow on purpose) and its answer
    comes back; the agent keeps answering its own names meanwhile."""
    from agent.daemon import Agent, Settings
    from tests.unit.agent.test_dns import Upstream

    up = Upstream(delay=3.0)
    a_ = Agent(Settings(host=rig.HOST, server_url=server.url, ovsdb=ovs.db_remote,
                        token=server.agent_credential(rig.HOST), datapath_type="netdev",
                        local_ip="192.0.2.1", tunnel_types=("vxlan",),
                        of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                        state_path=str(tmp_path / "state"), report_interval=5,
                        polling_interval=5, dns_resolvers=(up.addr,))).start()
    # The upstream is slower than the forwarder's 1 s default would wait:
    # the slow query must be pending long enough to tell, on any machine.
    a_.dns.forwarder.timeout = a_.dns.forwarder.budget = 8.0
    try:
        cli = rig.Api(server.url)
        net, sub = cli.network("10.64.0.0/24")
        pa, a = instance(ovs, cli, net, dns_name="alpha")
        assert cli.wait_status(pa["id"], "ACTIVE")
        gw = RESOLVER
        ok = dns.rcode.NOERROR
        assert wait_answer(lambda: resolve(a, gw, "alpha.openstacklocal."),
                           (ok, [a.ip])) == (ok, [a.ip])
        slow = {}
        t = threading.Thread(target=lambda: slow.update(
            r=resolve(a, gw, "example.com.", timeout=8)))
        t.start()
        t0 = time.monotonic()
        assert resolve(a, gw, "alpha.openstacklocal.") == (ok, [a.ip])
        assert time.monotonic() - t0 < 1.5  # not behind the slow upstream (3 s)
        t.join(10)
        assert slow["r"] == (ok, ["192.0.2.1"])
        assert a_.stats.get("dns_forwarded", 0) >= 1
    finally:
        a_.stop()
        up.close()


def test_isolated_subnet_without_gateway_resolves_through_dhcp(ovs, api, agent, tmp_path):
    """No gateway, no router: DHCP hands out the link-local resolver with
    an on-link route to it, the pipeline answers its ARP, and names
    resolve."""
    net = api("POST", "/v2.0/networks", {"network": {"name": "iso"}})["network"]
    api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.65.0.0/24", "ip_version": 4,
        "gateway_ip": None}})
    pa, a = vm(ovs, api, net, dns_name="left")
    pb, b = vm(ovs, api, net, dns_name="right")
    for p in (pa, pb):
        assert api.wait_status(p["id"], "ACTIVE")
    a.exec("ip", "addr", "flush", "dev", a.dev)
    client = DhcpClient(a.ns, a.dev, tmp_path)
    client.start()
    try:
        ev = client.wait_for(lambda e: e["reason"] == "BOUND", timeout=20)
        assert ev["dns"] == "169.254.0.1" and ev["domain"] == "openstacklocal"
        # dhclient prints option 121 raw: 169.254.0.1/32 on link (no
        # gateway: no default route).
        assert ev["routes"].split() == ["32", "169", "254", "0", "1", "0", "0", "0", "0"]
        a.exec("ip", "route", "add", "169.254.0.1/32", "dev", a.dev)  # what clients do
        ok = dns.rcode.NOERROR
        assert wait_answer(lambda: resolve(a, "169.254.0.1", "right.openstacklocal."),
                           (ok, [b.ip]), timeout=10) == (ok, [b.ip])
        assert resolve(a, "169.254.0.1", dns.reversename.from_address(b.ip), "PTR") == \
            (ok, ["right.openstacklocal."])
    finally:
        client.stop()
