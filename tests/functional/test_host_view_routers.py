"""The agent API's host views with routers (issue 13).

A host's view holds its own networks, every router with an interface on
one of them and all of those routers' other networks (with their subnets,
ports and remote hosts); compiler/synth.py ``slice_for_host`` is the
reference cut, and every delta applied to an agent's view gives the full
view, through random router operations."""

import ipaddress
import random

import pytest

from quantum_ovs import wire
from quantum_ovs.compiler import synth
from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.db import host_view
from tests.functional.test_agent_api import bound_port, register, state

HOSTS = {"hv-a": "192.0.2.1", "hv-b": "192.0.2.2", "hv-c": "192.0.2.3"}
HOST_A, HOST_B, HOST_C = HOSTS


@pytest.fixture
def l3(make_api):
    api = make_api(service_plugins=["router"])
    for h, ip in HOSTS.items():
        register(api, h, ip)
    return api


def canon(view):
    """What the view says, every collection sorted (no revision)."""
    return view.replace(
        networks=tuple(sorted(view.networks, key=lambda x: x.id)),
        subnets=tuple(sorted(view.subnets, key=lambda x: x.id)),
        ports=tuple(sorted(view.ports, key=lambda x: x.id)),
        security_groups=tuple(sorted(view.security_groups, key=lambda x: x.id)),
        remote_hosts=tuple(sorted(view.remote_hosts, key=lambda x: x.name)),
        routers=tuple(sorted(view.routers, key=lambda x: x.id)), revision=0)


def router(api, **attrs):
    return api.post("/v2.0/routers", {"router": dict(name="r", **attrs)}, admin=True,
                    status=201).data["router"]


def attach(api, router_id, status=200, **body):
    return api.put(f"/v2.0/routers/{router_id}/add_router_interface", body, admin=True,
                   status=status).data


def detach(api, router_id, status=200, **body):
    return api.put(f"/v2.0/routers/{router_id}/remove_router_interface", body,
                   admin=True, status=status).data


def full_view(api, host):
    return wire.view_from_dict(state(api, host)["view"])


def whole_model(api):
    """Every network, subnet, port and router in the database, as model
    values (the host view's loaders), and the agents' tunnel IPs."""
    with api.db.reader() as s:
        nets = host_view.load_networks(s, [n["id"] for n in api.get(
            "/v2.0/networks", admin=True, status=200).data["networks"]])
        subnets = host_view.load_subnets(s, host_view.S.id.isnot(None))
        ports = host_view.load_ports(s, host_view.P.id.isnot(None))
        routers = host_view.load_routers(s, [r["id"] for r in api.get(
            "/v2.0/routers", admin=True, status=200).data["routers"]])
    return nets, subnets, ports, routers


def assert_views_are_slices(api, hosts=HOSTS):
    """Each host's full view cuts the whole model as slice_for_host does
    (its security groups and chassis aside: not part of the cut)."""
    nets, subnets, ports, routers = whole_model(api)
    for host in hosts:
        got = full_view(api, host)
        want = synth.slice_for_host(host, HOSTS, nets, subnets, ports, routers=routers)
        want = want.replace(security_groups=got.security_groups, chassis=got.chassis)
        assert canon(got) == canon(want), host


def test_full_view_holds_the_routers_of_its_networks_and_their_networks(l3):
    api = l3
    n1, n2, n3, n4 = (api.network() for _ in range(4))
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    s2 = api.subnet(n2["id"], "10.2.0.0/24")
    s2v6 = api.subnet(n2["id"], "2001:db8:2::/64", ip_version=6)
    api.subnet(n3["id"], "10.3.0.0/24")
    api.subnet(n4["id"], "10.4.0.0/24")
    a1 = bound_port(api, n1["id"], HOST_A)
    b2 = bound_port(api, n2["id"], HOST_B)
    bound_port(api, n3["id"], HOST_C)
    bound_port(api, n4["id"], HOST_C)
    r1, r2 = router(api), router(api)
    attach(api, r1["id"], subnet_id=s1["id"])
    # A port with an address on each of n2's subnets: two interfaces, one MAC.
    dual = api.port(n2["id"], admin=True, fixed_ips=[{"subnet_id": s2["id"]},
                                                     {"subnet_id": s2v6["id"]}])
    attach(api, r1["id"], port_id=dual["id"])
    # r2 links n2 (r1's) and n3: one level only, so A does not see n3.
    attach(api, r2["id"], subnet_id=s2["id"])
    attach(api, r2["id"], subnet_id=api.get(f"/v2.0/subnets?network_id={n3['id']}",
                                            status=200).data["subnets"][0]["id"])
    view = full_view(api, HOST_A)
    assert {n.id for n in view.networks} == {n1["id"], n2["id"]}
    assert [r.id for r in view.routers] == [r1["id"]]
    ifaces = {(i.subnet_id, i.ip_address, i.prefixlen, i.mac_address, i.network_id)
              for i in view.routers[0].interfaces}
    gw1 = next(p for p in api.get(f"/v2.0/ports?device_id={r1['id']}&network_id={n1['id']}",
                                  admin=True, status=200).data["ports"])
    assert ifaces == {
        (s1["id"], "10.1.0.1", 24, gw1["mac_address"], n1["id"]),
        (s2["id"], dual["fixed_ips"][0]["ip_address"], 24, dual["mac_address"], n2["id"]),
        (s2v6["id"], dual["fixed_ips"][1]["ip_address"], 64, dual["mac_address"], n2["id"]),
    }
    port_ids = {p.id for p in view.ports}
    assert {a1["id"], b2["id"], dual["id"], gw1["id"]} <= port_ids
    assert [h.name for h in view.remote_hosts] == [HOST_B]
    # B holds n2: both routers, and n1 and n3 through them, not n4.
    view_b = full_view(api, HOST_B)
    assert {r.id for r in view_b.routers} == {r1["id"], r2["id"]}
    assert {n.id for n in view_b.networks} == {n1["id"], n2["id"], n3["id"]}
    assert {h.name for h in view_b.remote_hosts} == {HOST_A, HOST_C}
    assert_views_are_slices(api)


def test_extra_routes_and_admin_state_are_in_the_view(l3):
    api = l3
    n1, n2 = api.network(), api.network()
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    s2 = api.subnet(n2["id"], "10.2.0.0/24")
    bound_port(api, n1["id"], HOST_A)
    r = router(api)
    attach(api, r["id"], subnet_id=s1["id"])
    attach(api, r["id"], subnet_id=s2["id"])
    first = state(api, HOST_A)
    api.put(f"/v2.0/routers/{r['id']}", {"router": {"admin_state_up": False, "routes": [
        {"destination": "192.168.9.0/24", "nexthop": "10.2.0.77"}]}}, admin=True, status=200)
    reply = state(api, HOST_A, since=first["revision"], timeout=2)
    assert not reply["full"]
    delta = wire.delta_from_dict(reply["delta"])
    (got,) = delta.routers
    assert got.id == r["id"] and got.admin_state_up is False
    assert [(x.destination, x.nexthop) for x in got.routes] == [("192.168.9.0/24", "10.2.0.77")]


def test_attach_brings_the_other_network_and_detach_takes_it_away(l3):
    api = l3
    n1, n2 = api.network(), api.network()
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    s2 = api.subnet(n2["id"], "10.2.0.0/24")
    bound_port(api, n1["id"], HOST_A)
    b2 = bound_port(api, n2["id"], HOST_B)
    r = router(api)
    attach(api, r["id"], subnet_id=s1["id"])
    first = state(api, HOST_A)
    view = wire.view_from_dict(first["view"])
    assert {n.id for n in view.networks} == {n1["id"]} and len(view.routers) == 1
    # The attachment's delta carries n2 whole: network, subnet, ports, B.
    attach(api, r["id"], subnet_id=s2["id"])
    reply = state(api, HOST_A, since=first["revision"], timeout=2)
    assert not reply["full"]
    delta = wire.delta_from_dict(reply["delta"])
    assert [n.id for n in delta.networks] == [n2["id"]]
    assert [x.id for x in delta.subnets] == [s2["id"]]
    assert b2["id"] in {p.id for p in delta.ports}
    assert [h.name for h in delta.remote_hosts] == [HOST_B]
    assert [x.subnet_id for x in delta.routers[0].interfaces] == [s1["id"], s2["id"]]
    view = wire.apply_delta(view, delta)
    assert canon(view) == canon(full_view(api, HOST_A))
    # Detaching takes n2, its ports and B away in one delta.
    detach(api, r["id"], subnet_id=s2["id"])
    reply = state(api, HOST_A, since=reply["revision"], timeout=2)
    delta = wire.delta_from_dict(reply["delta"])
    assert n2["id"] in delta.removed_networks and HOST_B in delta.removed_remote_hosts
    view = wire.apply_delta(view, delta)
    assert {n.id for n in view.networks} == {n1["id"]}
    assert canon(view) == canon(full_view(api, HOST_A))


def test_a_router_change_wakes_the_hosts_of_its_networks_only(l3):
    api = l3
    n1, n2, n3 = api.network(), api.network(), api.network()
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    s2 = api.subnet(n2["id"], "10.2.0.0/24")
    api.subnet(n3["id"], "10.3.0.0/24")
    bound_port(api, n1["id"], HOST_A)
    bound_port(api, n3["id"], HOST_C)
    r = router(api)
    attach(api, r["id"], subnet_id=s1["id"])
    rev_a, rev_c = state(api, HOST_A)["revision"], state(api, HOST_C)["revision"]
    attach(api, r["id"], subnet_id=s2["id"])
    assert state(api, HOST_A, since=rev_a, timeout=0)["delta"]["routers"]
    assert state(api, HOST_C, since=rev_c, timeout=0)["delta"]["routers"] == []
    # A port on a network A reaches only through the router reaches A.
    rev_a = state(api, HOST_A)["revision"]
    new = bound_port(api, n2["id"], HOST_B)
    reply = state(api, HOST_A, since=rev_a, timeout=2)
    assert [p["id"] for p in reply["delta"]["ports"]] == [new["id"]]


ROUTER_OPS = ["add_local", "add_remote", "del_port", "move_port", "attach", "attach",
              "attach_port", "detach", "route", "admin", "new_net", "del_router"]


@pytest.mark.parametrize("seed", range(6))
def test_deltas_equal_full_views_and_slices_with_routers(l3, seed):
    """Random port and router operations: on every host, each delta
    applied to the agent's view gives its full view, the flows the
    compiler's engine holds after applying it are a full compile of that
    view, and full views cut the whole model as slice_for_host does."""
    api = l3
    rnd = random.Random(seed)
    nets, subnets, ports, routers = [], [], [], []

    def new_net():
        n = api.network()
        subnets.append(api.subnet(n["id"], f"10.{len(nets)}.0.0/24"))
        nets.append(n)
        return n

    for _ in range(4):
        new_net()
    ports.append(bound_port(api, nets[0]["id"], HOST_A))
    routers.append(router(api))
    views, revs, engines = {}, {}, {}
    for h in HOSTS:
        first = state(api, h)
        views[h], revs[h] = wire.view_from_dict(first["view"]), first["revision"]
        engines[h] = Engine.from_view(views[h])

    def attached(r):
        return api.get(f"/v2.0/ports?device_id={r['id']}", admin=True,
                       status=200).data["ports"]

    for step in range(25):
        ops = [rnd.choice(ROUTER_OPS) for _ in range(rnd.choice((1, 1, 2, 3)))]
        for op in ops:
            if op == "add_local":
                ports.append(bound_port(api, rnd.choice(nets)["id"], HOST_A))
            elif op == "add_remote":
                ports.append(bound_port(api, rnd.choice(nets)["id"],
                                        rnd.choice([HOST_B, HOST_C])))
            elif op == "del_port" and ports:
                p = ports.pop(rnd.randrange(len(ports)))
                api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
            elif op == "move_port" and ports:
                p = rnd.choice(ports)
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": rnd.choice(
                    list(HOSTS) + [""])}}, admin=True, status=200)
            elif op == "new_net":
                new_net()
            elif op == "attach" and routers:
                # 400 when the router has the subnet (or one overlapping) already.
                r = api.put(f"/v2.0/routers/{rnd.choice(routers)['id']}/add_router_interface",
                            {"subnet_id": rnd.choice(subnets)["id"]}, admin=True)
                assert r.status_int in (200, 400), r.text
            elif op == "attach_port" and routers:
                sub = rnd.choice(subnets)
                p = api.port(sub["network_id"], admin=True)
                r = api.put(f"/v2.0/routers/{rnd.choice(routers)['id']}/add_router_interface",
                            {"port_id": p["id"]}, admin=True)
                assert r.status_int in (200, 400), r.text
                if r.status_int == 400:
                    api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
            elif op == "detach" and routers:
                r = rnd.choice(routers)
                mine = attached(r)
                if mine:
                    p = rnd.choice(mine)
                    res = api.put(f"/v2.0/routers/{r['id']}/remove_router_interface",
                                  {"port_id": p["id"]}, admin=True)
                    assert res.status_int in (200, 409), res.text  # 409: a route needs it
            elif op == "route" and routers:
                r = rnd.choice(routers)
                connected = [a for p in attached(r) for a in p["fixed_ips"]]
                routes = []
                if connected and rnd.random() < .7:
                    net = ipaddress.ip_network(next(x for x in subnets if x["id"] ==
                                                    connected[0]["subnet_id"])["cidr"])
                    routes = [{"destination": f"192.168.{rnd.randrange(250)}.0/24",
                               "nexthop": str(net.network_address + 77)}]
                api.put(f"/v2.0/routers/{r['id']}", {"router": {"routes": routes}},
                        admin=True, status=200)
            elif op == "admin" and routers:
                r = rnd.choice(routers)
                api.put(f"/v2.0/routers/{r['id']}", {"router": {
                    "admin_state_up": rnd.random() < .5}}, admin=True, status=200)
            elif op == "del_router":
                if len(routers) < 3 and rnd.random() < .6:
                    routers.append(router(api))
                elif routers:
                    r = routers.pop(rnd.randrange(len(routers)))
                    api.put(f"/v2.0/routers/{r['id']}", {"router": {"routes": []}},
                            admin=True, status=200)
                    for p in attached(r):
                        detach(api, r["id"], port_id=p["id"])
                    api.delete(f"/v2.0/routers/{r['id']}", admin=True, status=204)
        for h in HOSTS:
            reply = state(api, h, since=revs[h], timeout=0)
            if reply["full"]:
                views[h] = wire.view_from_dict(reply["view"])
                engines[h].update(views[h])
            else:
                delta = wire.delta_from_dict(reply["delta"])
                views[h] = wire.apply_delta(views[h], delta)
                engines[h].apply(delta)
            revs[h] = reply["revision"]
            want = full_view(api, h)
            assert canon(views[h]) == canon(want), f"step {step} {h}: {ops}"
            assert engines[h].flows() == compile_flows(want, engines[h].alloc), \
                f"step {step} {h}: {ops}"
        assert_views_are_slices(api)


def test_interfaces_carry_their_address_scope_and_a_rescope_reaches_the_hosts(l3):
    """Each router interface carries its subnet's address scope (omitted
    on the wire when in none); a pool joining a scope reaches the router's
    hosts as a delta, and the compiled router stops or starts dropping
    what crosses scopes (Neutron's rule)."""
    from quantum_ovs.compiler import pipeline as P
    api = l3

    def post(path, key, **body):
        return api.post(path, {key: body}, admin=True, status=201).data[key]

    sc = post("/v2.0/address-scopes", "address_scope", name="s", ip_version=4, shared=True)
    pa = post("/v2.0/subnetpools", "subnetpool", name="a", prefixes=["10.60.0.0/16"],
              address_scope_id=sc["id"], shared=True)
    pb = post("/v2.0/subnetpools", "subnetpool", name="b", prefixes=["10.61.0.0/16"],
              shared=True)
    n1, n2 = api.network(), api.network()
    s1, s2 = (post("/v2.0/subnets", "subnet", network_id=n["id"], subnetpool_id=p["id"],
                   prefixlen=24, ip_version=4) for n, p in ((n1, pa), (n2, pb)))
    r = router(api)
    attach(api, r["id"], subnet_id=s1["id"])
    attach(api, r["id"], subnet_id=s2["id"])
    bound_port(api, n1["id"], HOST_A)

    def drops(view):  # L3_ROUTE flows on an ingress network that drop
        return [f for f in compile_flows(view) if f.table == P.L3_ROUTE and not f.actions
                and any(x.name == P.REG_NET for x in f.match)]

    reply = state(api, HOST_A)
    wire_ifaces = {i["subnet_id"]: i for i in reply["view"]["routers"][0]["interfaces"]}
    assert wire_ifaces[s1["id"]]["address_scope_id"] == sc["id"]
    assert "address_scope_id" not in wire_ifaces[s2["id"]]
    view = wire.view_from_dict(reply["view"])
    assert {i.subnet_id: i.address_scope_id for i in view.routers[0].interfaces} == \
        {s1["id"]: sc["id"], s2["id"]: None}
    assert len(drops(view)) == 2  # each network to the other's subnet
    api.put(f"/v2.0/subnetpools/{pb['id']}", {"subnetpool": {"address_scope_id": sc["id"]}},
            admin=True, status=200)
    reply = state(api, HOST_A, since=reply["revision"])
    assert not reply["full"]
    view = wire.apply_delta(view, wire.delta_from_dict(reply["delta"]))
    assert canon(view.replace(tunnel_ip=None)) == \
        canon(full_view(api, HOST_A).replace(tunnel_ip=None))
    assert {i.address_scope_id for i in view.routers[0].interfaces} == {sc["id"]}
    assert drops(view) == []
    assert_views_are_slices(api)
