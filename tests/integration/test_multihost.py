"""Many hypervisors for real: three hosts, each its own Open vSwitch in its
own namespace with its own agent, joined by an underlay (see tests/fixtures/multihost.py).

The server runs in the root namespace on loopback (SQLite for most tests,
PostgreSQL for a subset); the agents run in-process and talk HTTP from the
root namespace, only their OpenFlow listeners live in the host namespaces.

Everything is asserted on what the network does: pings between instances,
captures on the underlay (tunnel keys, 802.1Q tags, which host a flood
reaches) and flow dumps (which remote tunnel IPs a host sends to, which
MACs it knows).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.multihost import Api, Cluster, wait_for
from quantum_ovs.testing.ovs import missing_prerequisites

try:  # the session fixture, for the PostgreSQL class
    from tests.fixtures.postgres import postgres_server  # noqa: F401 - a fixture
except ImportError:  # pragma: no cover
    postgres_server = None

PHYSNET = "physnet1"
SERVER_CONF = "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n"


@pytest.fixture(scope="module")
def cluster():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    c = Cluster(3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class Cloud:
    def __init__(self, cluster, server):
        self.cluster = cluster
        self.server = server
        self.api = Api(server.url)

    def __getitem__(self, host):
        return self.cluster[host]


def _cloud(cluster, db_url):
    server = ServerProcess(db_url, extra_conf=SERVER_CONF)
    state = tempfile.mkdtemp(prefix="qovs-mh-state-")
    try:
        server.start()
        cluster.start_agents(server.url, state, server.agent_credential)  # one per host
        yield Cloud(cluster, server)
    finally:
        cluster.stop_agents()
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="class")
def cloud(request, cluster, tmp_path_factory):
    if request.cls.backend == "postgresql":
        pg = request.getfixturevalue("postgres_server")
        name = "qovs_mh_" + uuid.uuid4().hex[:12]
        url = pg.create_database(name)
        try:
            yield from _cloud(cluster, url)
        finally:
            pg.drop_database(name)
    else:
        path = tmp_path_factory.mktemp("mh") / "server.sqlite"
        yield from _cloud(cluster, f"sqlite:///{path}")


class Scenario:
    """Networks, ports and instances of one test, removed at its end (so
    that the next test starts with hosts that share nothing)."""

    def __init__(self, cloud):
        self.cloud = cloud
        self.api = cloud.api
        self.nets = []
        self.ports = []

    def network(self, cidr, **attrs):
        net, sub = self.api.network(cidr, **attrs)
        self.nets.append(net)
        return net, sub

    def vm(self, host, net_sub, ip=None, **kw):
        net, sub = net_sub
        if ip is not None:
            kw["fixed_ips"] = [{"subnet_id": sub["id"], "ip_address": ip}]
        port = self.api.port(net, host, **kw)
        self.ports.append(port)
        return port, self.cloud[host].add_instance(port)

    def active(self, *ports):
        for p in ports:
            assert self.api.wait_status(p["id"], "ACTIVE"), p["id"]

    def delete_port(self, port, inst=None):
        if inst is not None:
            self._remove_instance(inst)
        self.api("DELETE", f"/v2.0/ports/{port['id']}")
        self.ports = [p for p in self.ports if p["id"] != port["id"]]

    def _remove_instance(self, inst):
        for h in self.cloud.cluster.hosts:
            if inst in h.ovs.instances:
                h.remove_instance(inst)

    def cleanup(self):
        for h in self.cloud.cluster.hosts:
            for inst in list(h.ovs.instances):
                h.remove_instance(inst)
        macs = [p["mac_address"] for p in self.ports]
        for p in self.ports:
            self.api("DELETE", f"/v2.0/ports/{p['id']}")
        for n in self.nets:
            self.api("DELETE", f"/v2.0/networks/{n['id']}")
        hosts = self.cloud.cluster.hosts
        wait_for(lambda: not any(m in f for h in hosts for f in h.flows() for m in macs))


@pytest.fixture
def sc(cloud):
    s = Scenario(cloud)
    yield s
    s.cleanup()


def seg(net):
    return net["provider:segmentation_id"]


def sends_to(host, ip):
    """host's flows that send to tunnel IP ``ip``."""
    return [f for f in host.flows() if f"set_field:{ip}->tun_dst" in f]


def tunnel_keys_to(host, ip):
    """The tunnel keys host uses towards ``ip``."""
    keys = set()
    for f in sends_to(host, ip):
        for k, dst in re.findall(r"set_field:(0x[0-9a-f]+)->tun_id,set_field:([\d.]+)->tun_dst",
                                 f):
            if dst == ip:
                keys.add(int(k, 16))
    return keys


def capture_dst(cluster, host, proto_filter):
    """A capture on ``host``'s tunnel underlay port of packets to its IP."""
    h = cluster[host]
    return cluster.tunnel.capture(host, f"dst host {h.tunnel_ip} and {proto_filter}")


TUNNEL_FILTER = {"vxlan": "udp port 4789", "gre": "proto gre"}


class Scenarios:
    """The scenarios; run once per backend class below."""

    backend = "sqlite"

    @pytest.mark.parametrize("ntype", ["vxlan", "gre"])
    def test_tenant_network_ping_and_isolation(self, cloud, sc, ntype):
        cl = cloud.cluster
        a_net = sc.network("10.30.0.0/24", **{"provider:network_type": ntype})
        b_net = sc.network("10.30.0.0/24", **{"provider:network_type": ntype})
        assert seg(a_net[0]) != seg(b_net[0])
        pa, a = sc.vm("hv1", a_net, "10.30.0.10")
        pb, b = sc.vm("hv2", a_net, "10.30.0.11")
        pc, c = sc.vm("hv2", b_net, "10.30.0.10")  # a's address, on the other network
        pe, e = sc.vm("hv1", b_net, "10.30.0.12")
        sc.active(pa, pb, pc, pe)

        cap = capture_dst(cl, "hv2", TUNNEL_FILTER[ntype])
        assert a.ping(b.ip, count=3, wait=1)  # A across hosts
        assert c.ping(e.ip, count=2, wait=1)  # B across hosts
        lines = cap.stop()
        # Really tunnelled, with each network's own key.
        if ntype == "vxlan":
            vnis = {int(v) for v in re.findall(r"vni (\d+)", "\n".join(lines))}
        else:
            vnis = {int(v, 16) for v in re.findall(r"key=(0x[0-9a-f]+)", "\n".join(lines))}
        assert vnis == {seg(a_net[0]), seg(b_net[0])}, lines
        assert tunnel_keys_to(cl["hv1"], cl["hv2"].tunnel_ip) == {seg(a_net[0]),
                                                                  seg(b_net[0])}
        # Same addresses, other network: never across.
        assert not c.ping(b.ip, count=2, wait=1)  # b is on A (same host as c)
        assert not e.ping(b.ip, count=2, wait=1)  # b is on A, from the other host
        # c has a's address on B: e (on B) reaches c, the one on its network.
        assert e.ping(c.ip, count=2, wait=1)
        # hv2 knows a's MAC on A's local id only, never on B's.
        hv2 = cl["hv2"]
        on_a, on_b = _local_id(hv2, pb["mac_address"]), _local_id(hv2, pc["mac_address"])
        assert on_a != on_b
        ids = {m for f in hv2.flows_with(pa["mac_address"])
               for m in re.findall(r"reg6=(0x[0-9a-f]+)", f)}
        assert ids == {on_a}, ids

    def test_broadcast_reaches_only_hosts_of_the_network(self, cloud, sc):
        cl = cloud.cluster
        a_net = sc.network("10.31.0.0/24")
        b_net = sc.network("10.31.0.0/24")
        pa, a = sc.vm("hv1", a_net)
        pb, b = sc.vm("hv2", a_net)
        pc, c = sc.vm("hv3", b_net)
        sc.active(pa, pb, pc)
        on_hv2 = capture_dst(cl, "hv2", "udp port 4789")
        on_hv3 = capture_dst(cl, "hv3", "udp port 4789")
        at_b = _instance_capture(b, "icmp and ether dst ff:ff:ff:ff:ff:ff")
        at_c = _instance_capture(c, "icmp or arp")
        a.exec("ping", "-b", "-n", "-c", "3", "-i", "0.2", "-W", "1", "10.31.0.255",
               check=False)
        # ARP for an address nobody has: a broadcast the flows cannot answer.
        a.exec("ping", "-n", "-c", "1", "-W", "1", "10.31.0.250", check=False)
        got_b, got_c = at_b.stop(), at_c.stop()
        tun2, tun3 = on_hv2.stop(), on_hv3.stop()
        assert len([x for x in got_b if "10.31.0.255" in x]) >= 3, got_b
        assert any(f"vni {seg(a_net[0])}" in x for x in tun2), tun2
        assert tun3 == [], tun3  # hv3 has only network B: not one flooded frame
        assert got_c == [], got_c
        # The flood flow of A on hv1 names hv2 and not hv3.
        assert sends_to(cl["hv1"], cl["hv2"].tunnel_ip)
        assert not sends_to(cl["hv1"], cl["hv3"].tunnel_ip)

    def test_tunnel_flows_follow_shared_networks(self, cloud, sc):
        cl = cloud.cluster
        hv1, hv3 = cl["hv1"], cl["hv3"]
        net = sc.network("10.32.0.0/24")
        p1, a = sc.vm("hv1", net)
        sc.active(p1)
        assert not sends_to(hv1, hv3.tunnel_ip)
        assert not sends_to(hv3, hv1.tunnel_ip)
        p3, c = sc.vm("hv3", net)
        sc.active(p3)
        assert wait_for(lambda: sends_to(hv1, hv3.tunnel_ip))
        assert wait_for(lambda: sends_to(hv3, hv1.tunnel_ip))
        assert a.ping(c.ip, count=2, wait=1)
        # No other host learns of either.
        assert not sends_to(cl["hv2"], hv1.tunnel_ip)
        assert not sends_to(cl["hv2"], hv3.tunnel_ip)
        assert not cl["hv2"].flows_with(p1["mac_address"])
        sc.delete_port(p3, c)
        assert wait_for(lambda: not sends_to(hv1, hv3.tunnel_ip)), sends_to(hv1, hv3.tunnel_ip)
        assert wait_for(lambda: not hv3.flows_with(p1["mac_address"]))

    @pytest.mark.parametrize("ntype", ["vlan", "flat"])
    def test_provider_network(self, cloud, sc, ntype):
        cl = cloud.cluster
        attrs = {"provider:network_type": ntype, "provider:physical_network": PHYSNET}
        net = sc.network("10.33.0.0/24", **attrs)
        if ntype == "vlan":
            assert 100 <= seg(net[0]) <= 199
        p1, a = sc.vm("hv1", net)
        p2, b = sc.vm("hv2", net)
        sc.active(p1, p2)
        cap = cl.provider.capture("hv2", "icmp or (vlan and icmp)")
        assert a.ping(b.ip, count=3, wait=1)
        lines = cap.stop()
        mine = [x for x in lines if a.ip in x and b.ip in x]
        assert len(mine) >= 6, lines  # requests and replies
        if ntype == "vlan":
            tags = {int(t) for x in mine for t in re.findall(r"vlan (\d+)", x)}
            assert tags == {seg(net[0])}, mine
            assert all("802.1Q" in x for x in mine), mine
        else:
            assert not any("802.1Q" in x for x in mine), mine
        # Nothing of it over the tunnels.
        assert not sends_to(cl["hv1"], cl["hv2"].tunnel_ip)

    def test_port_moves_to_another_host(self, cloud, sc):
        cl = cloud.cluster
        hv1, hv2, hv3 = cl["hv1"], cl["hv2"], cl["hv3"]
        net = sc.network("10.34.0.0/24")
        pa, a = sc.vm("hv1", net)
        pb, b = sc.vm("hv2", net)
        sc.active(pa, pb)
        assert b.ping(a.ip, count=2, wait=1)
        mac = pa["mac_address"]
        assert hv1.flows_with(mac) and hv2.flows_with(mac) and not hv3.flows_with(mac)

        started = time.monotonic()
        cloud.api("PUT", f"/v2.0/ports/{pa['id']}", {"port": {"binding:host_id": "hv3"}})
        hv1.move_instance(a, hv3)

        def moved():
            to_hv3 = [f for f in hv2.flows_with(mac) if f"{hv3.tunnel_ip}->tun_dst" in f]
            to_hv1 = [f for f in hv2.flows_with(mac) if f"{hv1.tunnel_ip}->tun_dst" in f]
            return (to_hv3 and not to_hv1 and not hv1.flows_with(mac)
                    and hv3.flows_with(mac))
        assert wait_for(moved, timeout=5), (hv1.flows_with(mac), hv2.flows_with(mac))
        print(f"port move: flows moved {time.monotonic() - started:.3f}s after the PUT")
        # The old host keeps nothing of it, nor of the network (its only port).
        assert not hv1.flows_with(mac)
        assert not sends_to(hv1, hv2.tunnel_ip)
        assert not sends_to(hv2, hv1.tunnel_ip)
        assert cloud.api.wait_status(pa["id"], "ACTIVE")
        assert wait_for(lambda: b.ping(a.ip, wait=0.5), timeout=5)
        assert a.ping(b.ip, count=2, wait=1)

    def test_remote_group_rules_across_hosts(self, cloud, sc):
        api = cloud.api
        net = sc.network("10.35.0.0/24")
        other = api("POST", "/v2.0/security-groups",
                    {"security_group": {"name": "other"}})["security_group"]
        try:
            px, x = sc.vm("hv1", net)  # the default group: ingress from members only
            py, y = sc.vm("hv2", net)  # a member, on another host
            pz, z = sc.vm("hv2", net, security_groups=[other["id"]])  # not a member
            sc.active(px, py, pz)
            assert y.ping(x.ip, count=2, wait=1)
            assert not z.ping(x.ip, count=2, wait=1)
            # z joins the default group: hv1 learns z's address as a member.
            default = px["security_groups"]
            api("PUT", f"/v2.0/ports/{pz['id']}", {"port": {"security_groups": default}})
            assert wait_for(lambda: z.ping(x.ip, wait=0.5), timeout=5)
            # y leaves it: its address is no longer a member on hv1.
            api("PUT", f"/v2.0/ports/{py['id']}",
                {"port": {"security_groups": [other["id"]]}})
            assert wait_for(lambda: not y.ping(x.ip, wait=0.5), timeout=5)
            assert z.ping(x.ip)
        finally:
            sc.cleanup()
            sc.ports, sc.nets = [], []
            api("DELETE", f"/v2.0/security-groups/{other['id']}")


class TestOnSqlite(Scenarios):
    backend = "sqlite"


class TestOnPostgres:
    """The same scenarios on PostgreSQL (a subset: the data path does not
    depend on the database, the server's change feed does)."""

    backend = "postgresql"
    test_tenant_network_ping_and_isolation = Scenarios.test_tenant_network_ping_and_isolation
    test_port_moves_to_another_host = Scenarios.test_port_moves_to_another_host


def _instance_capture(inst, filt):
    from tests.fixtures.multihost import Capture

    return Capture(inst.ns, inst.dev, filt)


def _local_id(host, mac):
    """The reg6 value (network local id) host uses for the port with ``mac``."""
    for f in host.flows_with(mac):
        m = re.search(r"reg6=(0x[0-9a-f]+)", f)
        if m:
            return m.group(1)
    return "none"
