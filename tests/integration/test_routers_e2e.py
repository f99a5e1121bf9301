"""Routing end to end on real Open vSwitch (issue 13): the routers API of a
real server (``service_plugins = router``), the host views it feeds the
agents, and the agents' flows on three hypervisors (see multihost.py).

Two subnets on one router; instances on the same host and on another
host (VXLAN and VLAN): ping and TCP across the subnets, the router's
address answers, each direction is routed on the sending host (the
underlay carries it once, on the destination network's segment, to the
destination's MAC; a third host sees none of it); detaching an interface
cuts the routed traffic, attaching it again restores it.  Two routers over
the same CIDRs keep their tenants apart.  IPv6 SLAAC guests configure
themselves from the agent's router advertisements and reach each other
across the router.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import tempfile

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.multihost import Api, Cluster, wait_for
from quantum_ovs.testing.ovs import missing_prerequisites
from tests.integration.test_security_groups import Listener, reach

SERVER_CONF = ("service_plugins = router\n"
               "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199\n")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    cluster = Cluster(3)  # hv3 holds none of the networks: a bystander
    path = tmp_path_factory.mktemp("rt") / "server.sqlite"
    server = ServerProcess(f"sqlite:///{path}", extra_conf=SERVER_CONF)
    state = tempfile.mkdtemp(prefix="qovs-rt-state-")
    try:
        cluster.start()
        server.start()
        cluster.start_agents(server.url, state, server.agent_credential)
        yield cluster, Api(server.url)
    finally:
        cluster.stop_agents()
        server.stop()
        cluster.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def vm(cluster, api, host, net, sub):
    port = api.port(net, host)
    inst = cluster[host].add_instance(port)
    inst.exec("ip", "route", "add", "default", "via", sub["gateway_ip"])
    return port, inst


def _echoes(lines, ntype):
    """[(segment, "request"|"reply", inner destination MAC)] of the ICMP
    echoes in a capture on the underlay (tcpdump -e: a VXLAN packet is
    its outer line and then its inner one; a VLAN frame is one line)."""
    out = []
    for i, line in enumerate(lines):
        if ntype == "vxlan":
            key = re.search(r"vni (\d+)", line)
            inner = lines[i + 1] if key and i + 1 < len(lines) else ""
        else:
            key = re.search(r"vlan (\d+)", line)
            inner = line
        echo = re.search(r"ICMP echo (request|reply)", inner)
        if key and echo:
            dst = re.match(r"\s*(?:[\d:.]+\s+)?[0-9a-f:]{17} > ([0-9a-f:]{17})", inner)
            out.append((int(key.group(1)), echo.group(1), dst.group(1) if dst else None))
    return out


def interface(api, router_id, action, subnet_id):
    return api("PUT", f"/v2.0/routers/{router_id}/{action}", {"subnet_id": subnet_id})


def tear_down(cluster, api, instances, ports, rid, subnets, networks):
    """Instances, ports, the router's interfaces, the router, the networks."""
    for inst in instances:
        for h in cluster.hosts:
            if inst in h.ovs.instances:
                h.remove_instance(inst)
    for p in ports:
        api("DELETE", f"/v2.0/ports/{p['id']}")
    for sub in subnets:
        try:
            interface(api, rid, "remove_router_interface", sub["id"])
        except AssertionError:
            pass  # not attached
    api("DELETE", f"/v2.0/routers/{rid}")
    for n in networks:
        api("DELETE", f"/v2.0/networks/{n['id']}")


@pytest.mark.parametrize("ntype", ["vxlan", "vlan"])
def test_routing_across_subnets_on_one_and_two_hosts(cloud, ntype):
    cluster, api = cloud
    octet = {"vxlan": 41, "vlan": 42}[ntype]
    attrs = {"provider:network_type": ntype}
    if ntype == "vlan":
        attrs["provider:physical_network"] = "physnet1"
    net1, sub1 = api.network(f"10.{octet}.1.0/24", **attrs)
    net2, sub2 = api.network(f"10.{octet}.2.0/24", **attrs)
    router = api("POST", "/v2.0/routers", {"router": {"name": "r1"}})["router"]
    rid = router["id"]
    interface(api, rid, "add_router_interface", sub1["id"])
    interface(api, rid, "add_router_interface", sub2["id"])
    pa, a = vm(cluster, api, "hv1", net1, sub1)  # subnet 1, hv1
    pb, b = vm(cluster, api, "hv1", net2, sub2)  # subnet 2, hv1 (same host)
    pc, c = vm(cluster, api, "hv2", net2, sub2)  # subnet 2, hv2 (VXLAN / VLAN)
    ports = [pa, pb, pc]
    listeners = []
    try:
        for p in ports:
            assert api.wait_status(p["id"], "ACTIVE"), p["id"]
        # The router's address on a's subnet answers (ARP and echo in flows).
        assert wait_for(lambda: a.ping(sub1["gateway_ip"], wait=0.5), timeout=15)
        # Same host, across subnets: routed on hv1 only.
        assert wait_for(lambda: a.ping(b.ip, wait=0.5), timeout=15)
        assert b.ping(a.ip, count=2)
        # Across hosts: routed on hv1, carried with subnet 2's key / tag.
        under = cluster.tunnel if ntype == "vxlan" else cluster.provider
        filt = "udp port 4789" if ntype == "vxlan" else "vlan"
        cap, bystander = under.capture("hv2", filt), under.capture("hv3", filt)
        assert wait_for(lambda: a.ping(c.ip, wait=0.5), timeout=15)
        assert a.ping(c.ip, count=3)
        echoes = _echoes(cap.stop(), ntype)
        # Never through a third host: hv3 sees none of it.
        assert _echoes(bystander.stop(), ntype) == []
        seg1, seg2 = net1["provider:segmentation_id"], net2["provider:segmentation_id"]
        # Each way routed on the sending host: requests arrive at hv2 on
        # subnet 2's segment addressed to c, replies leave on subnet 1's to a.
        requests = {(k, dst) for k, kind, dst in echoes if kind == "request"}
        replies = {(k, dst) for k, kind, dst in echoes if kind == "reply"}
        assert requests == {(seg2, pc["mac_address"])}, echoes
        assert replies == {(seg1, pa["mac_address"])}, echoes
        # Routed: the TTL went down by one on the way (64 -> 63).
        out = a.exec("ping", "-n", "-c", "1", "-W", "2", c.ip, check=False)
        assert "ttl=63" in out, out
        # TCP across the subnets, both directions.
        listeners = [Listener(c, "tcp", 8080), Listener(a, "tcp", 8081)]
        assert reach(a, "tcp", c.ip, 8080)
        assert reach(c, "tcp", a.ip, 8081)
        assert reach(b, "tcp", a.ip, 8081)

        # Detaching subnet 2 cuts routed traffic, on both hosts.
        interface(api, rid, "remove_router_interface", sub2["id"])
        assert wait_for(lambda: not a.ping(c.ip, wait=0.5), timeout=15)
        assert not a.ping(b.ip, count=2, wait=0.5)
        assert not reach(a, "tcp", c.ip, 8080)
        # Subnet 1's side of the router is still there.
        assert a.ping(sub1["gateway_ip"], count=2)

        # Attaching it again restores it.
        interface(api, rid, "add_router_interface", sub2["id"])
        # The new interface port has a new MAC, and nothing announces it
        # (no gratuitous ARP yet): the guests on subnet 2 would hold the
        # old one until their neighbour entries expire (a minute).
        for inst in (b, c):
            inst.exec("ip", "neigh", "flush", "all")
        assert wait_for(lambda: a.ping(c.ip, wait=0.5), timeout=15)
        assert wait_for(lambda: a.ping(b.ip, wait=0.5), timeout=15)
        assert reach(a, "tcp", c.ip, 8080)
    finally:
        for listener in listeners:
            listener.stop()
        tear_down(cluster, api, (a, b, c), ports, rid, (sub1, sub2), (net1, net2))


def test_overlapping_address_spaces_on_two_routers_stay_apart(cloud):
    """Two tenants' routers, each between two networks with the same
    CIDRs as the other's: each reaches its own instance behind its router
    and never the other's address."""
    cluster, api = cloud
    made = []
    try:
        pairs = []
        for t, dst_ip in (("t1", "10.43.2.20"), ("t2", "10.43.2.21")):
            n1, s1 = api.network("10.43.1.0/24")
            n2, s2 = api.network("10.43.2.0/24")
            r = api("POST", "/v2.0/routers", {"router": {"name": t}})["router"]
            made.append((r, [n1, n2], [s1, s2], []))
            for sub in (s1, s2):
                interface(api, r["id"], "add_router_interface", sub["id"])
            src_port = api.port(n1, "hv1", fixed_ips=[{"subnet_id": s1["id"],
                                                       "ip_address": "10.43.1.10"}])
            dst_port = api.port(n2, "hv2", fixed_ips=[{"subnet_id": s2["id"],
                                                       "ip_address": dst_ip}])
            made[-1][3].extend([src_port, dst_port])
            src = cluster["hv1"].add_instance(src_port)
            dst = cluster["hv2"].add_instance(dst_port)
            src.exec("ip", "route", "add", "default", "via", s1["gateway_ip"])
            dst.exec("ip", "route", "add", "default", "via", s2["gateway_ip"])
            for p in (src_port, dst_port):
                assert api.wait_status(p["id"], "ACTIVE"), p["id"]
            pairs.append((src, dst))
        (a1, b1), (a2, b2) = pairs
        assert wait_for(lambda: a1.ping(b1.ip, wait=0.5), timeout=15)
        assert wait_for(lambda: a2.ping(b2.ip, wait=0.5), timeout=15)
        # The other tenant's address, behind the other router: never.
        assert not a1.ping(b2.ip, count=2, wait=0.5)
        assert not a2.ping(b1.ip, count=2, wait=0.5)
    finally:
        for h in cluster.hosts:
            for inst in list(h.ovs.instances):
                h.remove_instance(inst)
        for r, nets, subs, ports in made:
            for p in ports:
                api("DELETE", f"/v2.0/ports/{p['id']}")
            for sub in subs:
                try:
                    interface(api, r["id"], "remove_router_interface", sub["id"])
                except AssertionError:
                    pass
            api("DELETE", f"/v2.0/routers/{r['id']}")
            for n in nets:
                api("DELETE", f"/v2.0/networks/{n['id']}")


def test_address_scopes_stop_routing_between_them(cloud):
    """Neutron's rule on real switches: a router does not route between a
    subnet in an address scope and one in none.  Two unscoped subnets are
    routed; onboarding one into a pool of a scope (subnet_onboard) cuts
    it, both ways; onboarding the other into another pool of the same
    scope restores it."""
    cluster, api = cloud
    net1, sub1 = api.network("10.44.1.0/24")
    net2, sub2 = api.network("10.44.2.0/24")
    scope = api("POST", "/v2.0/address-scopes",
                {"address_scope": {"name": "s", "ip_version": 4}})["address_scope"]
    pools = [api("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": f"p{i}", "prefixes": [f"10.45.{i}.0/24"],
        "address_scope_id": scope["id"]}})["subnetpool"] for i in (1, 2)]
    rid = api("POST", "/v2.0/routers", {"router": {"name": "scoped"}})["router"]["id"]
    insts, ports = [], []
    try:
        for sub in (sub1, sub2):
            interface(api, rid, "add_router_interface", sub["id"])
        pa, a = vm(cluster, api, "hv1", net1, sub1)
        pc, c = vm(cluster, api, "hv2", net2, sub2)
        insts, ports = [a, c], [pa, pc]
        for p in ports:
            assert api.wait_status(p["id"], "ACTIVE"), p["id"]
        assert wait_for(lambda: a.ping(c.ip, wait=0.5), timeout=15)

        def onboard(pool, net, sub):
            got = api("PUT", f"/v2.0/subnetpools/{pool['id']}/onboard_network_subnets",
                      {"network_id": net["id"]})
            assert got == [{"id": sub["id"], "cidr": sub["cidr"]}]

        onboard(pools[0], net1, sub1)
        assert wait_for(lambda: not a.ping(c.ip, wait=0.5), timeout=15)
        assert not c.ping(a.ip, count=2, wait=0.5)
        assert a.ping(sub1["gateway_ip"], count=1)  # the router still answers
        onboard(pools[1], net2, sub2)
        assert wait_for(lambda: a.ping(c.ip, wait=0.5), timeout=15)
        assert c.ping(a.ip, count=2)
    finally:
        tear_down(cluster, api, insts, ports, rid, (sub1, sub2), (net1, net2))
        for pool in pools:
            api("DELETE", f"/v2.0/subnetpools/{pool['id']}")
        api("DELETE", f"/v2.0/address-scopes/{scope['id']}")


def _eui64(cidr, mac):
    """The SLAAC address of ``mac`` on the /64 ``cidr`` (modified EUI-64)."""
    b = bytes(int(x, 16) for x in mac.split(":"))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    net = ipaddress.IPv6Network(cidr)
    return str(ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(iid, "big")))


def _link_local(mac):
    return _eui64("fe80::/64", mac)


def test_ipv6_slaac_guests_get_address_and_route_from_our_ra(cloud):
    """Two dual-stack networks on one router, the IPv6 subnets in SLAAC
    mode (ipv6_ra_mode = ipv6_address_mode = slaac).  Guests that take
    their IPv6 configuration only from router advertisements (kernel
    SLAAC, accept_ra=2) get the address Neutron gave their port and a
    default route via the router interface's link-local address, and
    reach each other across the router (hv1 -> hv2 over VXLAN)."""
    cluster, api = cloud
    made_nets, ports, insts = [], [], []
    rid = None
    v6 = {}
    try:
        for n in (1, 2):
            net = api("POST", "/v2.0/networks", {"network": {"name": f"v6-{n}"}})["network"]
            made_nets.append(net)
            s4 = api("POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["id"], "cidr": f"10.45.{n}.0/24", "ip_version": 4}})["subnet"]
            s6 = api("POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["id"], "cidr": f"fd00:45:{n}::/64", "ip_version": 6,
                "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})["subnet"]
            v6[n] = (net, s4, s6)
        rid = api("POST", "/v2.0/routers", {"router": {"name": "r6"}})["router"]["id"]
        rifs = {}
        for n in (1, 2):
            for sub in v6[n][1:]:
                interface(api, rid, "add_router_interface", sub["id"])
        for p in api("GET", f"/v2.0/ports?device_id={rid}")["ports"]:
            for ip in p["fixed_ips"]:
                rifs[ip["subnet_id"]] = p  # the IPv6 subnets' interfaces
        guests = []
        for n, host in ((1, "hv1"), (2, "hv2")):
            net, s4, s6 = v6[n]
            port = api.port(net, host)
            ports.append(port)
            addrs = {ip["subnet_id"]: ip["ip_address"] for ip in port["fixed_ips"]}
            # Neutron computes the SLAAC address from the MAC (EUI-64).
            assert addrs[s6["id"]] == _eui64(s6["cidr"], port["mac_address"]), port
            # The guest has only its IPv4 address configured by hand.
            inst = cluster[host].ovs.add_instance(addrs[s4["id"]], 24,
                                                  mac=port["mac_address"],
                                                  iface_id=port["id"], plug=False)
            insts.append((host, inst))
            inst.exec("sysctl", "-qw", f"net.ipv6.conf.{inst.dev}.accept_ra=2")
            cluster[host].ovs.plug(inst)
            guests.append((inst, addrs[s6["id"]],
                           _link_local(rifs[s6["id"]]["mac_address"]), s6))
        for p in ports:
            assert api.wait_status(p["id"], "ACTIVE"), p["id"]
        for inst, _, _, _ in guests:
            # A link flap: the kernel solicits again now that flows are in.
            inst.exec("ip", "link", "set", inst.dev, "down")
            inst.exec("ip", "link", "set", inst.dev, "up")

        def configured(inst, want, rll):
            addrs = inst.exec("ip", "-6", "addr", "show", "dev", inst.dev)
            route = inst.exec("ip", "-6", "route", "show", "default")
            return f"{want}/64" in addrs and f"via {rll} " in route

        for inst, want, rll, _ in guests:
            assert wait_for(lambda: configured(inst, want, rll), timeout=15), (
                want, rll, inst.exec("ip", "-6", "addr"), inst.exec("ip", "-6", "route"))
        (a, a6, _, s6a), (b, b6, _, _) = guests
        # The advertisement carried the network's MTU (the tunnel's, 1450).
        route = a.exec("ip", "-6", "route", "show", "default")
        assert f" mtu {v6[1][0]['mtu']} " in route, (route, v6[1][0]["mtu"])
        # The router's address on a's subnet answers; b across the router.
        assert wait_for(lambda: a.ping(s6a["gateway_ip"], wait=0.5), timeout=10)
        assert wait_for(lambda: a.ping(b6, wait=0.5), timeout=10)
        assert b.ping(a6, count=2)
        out = a.exec("ping", "-n", "-c", "1", "-W", "2", b6, check=False)
        assert "ttl=63" in out, out  # routed: hop limit 64 -> 63
    finally:
        for host, inst in insts:
            cluster[host].remove_instance(inst)
        for p in ports:
            api("DELETE", f"/v2.0/ports/{p['id']}")
        if rid:
            for n, (_, s4, s6) in v6.items():
                for sub in (s4, s6):
                    try:
                        interface(api, rid, "remove_router_interface", sub["id"])
                    except AssertionError:
                        pass
            api("DELETE", f"/v2.0/routers/{rid}")
        for n in made_nets:
            api("DELETE", f"/v2.0/networks/{n['id']}")
