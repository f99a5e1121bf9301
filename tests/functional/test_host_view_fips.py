"""Host views with external connectivity (issue 14): a router's gateway
(network, gateway hosts, redirect key) and floating IPs (with their port
forwardings) are in the view of every host that holds the router, with
the external network; a gateway host's view holds the routers it serves;
a change wakes exactly the hosts concerned, and every delta applied to an
agent's view gives its full view."""

import random

import pytest

from quantum_ovs import wire
from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.engine import Engine, compile_flows
from quantum_ovs.db import models
from tests.functional.test_agent_api import bound_port, register, state
from tests.functional.test_host_view_routers import canon, full_view

HOSTS = {"hv-a": "192.0.2.1", "hv-b": "192.0.2.2", "hv-c": "192.0.2.3"}
GATEWAYS = {"gw-1": "192.0.2.11", "gw-2": "192.0.2.12"}
HOST_A, HOST_B, HOST_C = HOSTS
ADMIN = dict(project="admin-p", admin=True)
R, F = "/v2.0/routers", "/v2.0/floatingips"


@pytest.fixture
def l3(make_api):
    api = make_api(service_plugins=["router"])
    for h, ip in HOSTS.items():
        register(api, h, ip)
    for h, ip in GATEWAYS.items():
        register(api, h, ip, gateway=True)
    return api


def _external(api, cidr="172.24.4.0/24"):
    net = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    return net, api.subnet(net["id"], cidr=cidr, **ADMIN)


def _setup(api):
    ext, ext_sub = _external(api)
    n1 = api.network()
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    a1 = bound_port(api, n1["id"], HOST_A)
    n3 = api.network()
    api.subnet(n3["id"], "10.3.0.0/24")
    bound_port(api, n3["id"], HOST_C)
    r = api.post(R, {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["id"]}}}, **ADMIN, status=201).data["router"]
    api.put(f"{R}/{r['id']}/add_router_interface", {"subnet_id": s1["id"]}, **ADMIN,
            status=200)
    return ext, ext_sub, n1, s1, a1, n3, r


def _fip(api, ext, **attrs):
    return api.post(F, {"floatingip": dict(floating_network_id=ext["id"], **attrs)},
                    **ADMIN, status=201).data["floatingip"]


def test_full_views_hold_the_gateway_the_floating_ips_and_the_gateway_hosts(l3):
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    f = _fip(api, ext, port_id=a1["id"], project_id=a1["project_id"])
    view = full_view(api, HOST_A)
    assert {n.id for n in view.networks} == {n1["id"], ext["id"]}
    assert ext_sub["id"] in {x.id for x in view.subnets}
    (router,) = view.routers
    gw = router.gateway
    with api.db.reader() as s:
        key = s.get(models.Router, r["id"]).redirect_key
        vnis = {x.segmentation_id for x in s.query(models.NetworkSegment)}
    assert gw.redirect_key == key and key > 0 and key not in vnis
    assert set(gw.hosts) == set(GATEWAYS) and len(gw.hosts) == 2
    assert gw.port_id in {p.id for p in view.ports}
    assert [(x.id, x.floating_ip_address, x.port_id, x.fixed_ip_address, x.mac_address)
            for x in router.floating_ips] == [
        (f["id"], f["floating_ip_address"], a1["id"], a1["fixed_ips"][0]["ip_address"],
         a1["mac_address"])]
    assert {h.name for h in view.remote_hosts} >= set(GATEWAYS)
    # A gateway host holds the router and its networks, and knows A.
    gview = full_view(api, gw.hosts[0])
    assert [x.id for x in gview.routers] == [r["id"]]
    assert {n.id for n in gview.networks} == {n1["id"], ext["id"]}
    assert HOST_A in {h.name for h in gview.remote_hosts}
    # C has nothing of it.
    cview = full_view(api, HOST_C)
    assert cview.routers == () and ext["id"] not in {n.id for n in cview.networks}


def test_forwarding_only_floating_ips_take_the_gateway_ports_mac(l3):
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    f = _fip(api, ext, project_id=a1["project_id"])
    api.post(f"{F}/{f['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": a1["id"],
        "internal_ip_address": a1["fixed_ips"][0]["ip_address"],
        "external_port_range": "2222:2223", "internal_port_range": "22:23"}}, **ADMIN,
        status=201)
    (router,) = full_view(api, HOST_A).routers
    (fip,) = router.floating_ips
    assert fip.port_id is None and fip.mac_address == router.gateway.mac_address
    (pf,) = fip.port_forwardings
    assert (pf.protocol, pf.internal_port_id, pf.external_port_lo, pf.external_port_hi,
            pf.internal_port_lo, pf.internal_port_hi) == ("tcp", a1["id"], 2222, 2223, 22, 23)


def test_a_forwarding_to_an_address_the_port_gives_up_leaves_the_gateway_hosts(l3):
    """The forwardings deleted with a port's address reach the gateway
    hosts as a delta: they no longer forward to the address (which another
    port may take)."""
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    ip = a1["fixed_ips"][0]["ip_address"]
    f = _fip(api, ext, project_id=a1["project_id"])
    api.post(f"{F}/{f['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": a1["id"], "internal_ip_address": ip,
        "external_port": 2222, "internal_port": 22}}, **ADMIN, status=201)
    first = {h: state(api, h) for h in GATEWAYS}
    for h in GATEWAYS:
        (router,) = wire.view_from_dict(first[h]["view"]).routers
        assert [len(x.port_forwardings) for x in router.floating_ips] == [1], h
    api.put(f"/v2.0/ports/{a1['id']}", {"port": {"fixed_ips": [
        {"subnet_id": s1["id"], "ip_address": "10.1.0.200"}]}}, **ADMIN, status=200)
    api.post("/v2.0/ports", {"port": {"network_id": n1["id"], "fixed_ips": [
        {"subnet_id": s1["id"], "ip_address": ip}]}}, **ADMIN, status=201)
    for h in GATEWAYS:
        reply = state(api, h, since=first[h]["revision"], timeout=2)
        assert not reply["full"], h
        view = wire.apply_delta(wire.view_from_dict(first[h]["view"]),
                                wire.delta_from_dict(reply["delta"]))
        (router,) = view.routers
        assert all(not x.port_forwardings for x in router.floating_ips), h
        assert canon(view.replace(tunnel_ip=full_view(api, h).tunnel_ip)) == \
            canon(full_view(api, h)), h


def test_a_floating_ip_change_wakes_the_hosts_of_its_router_only(l3):
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    f = _fip(api, ext, project_id=a1["project_id"])
    revs = {h: state(api, h)["revision"] for h in list(HOSTS) + list(GATEWAYS)}
    api.put(f"{F}/{f['id']}", {"floatingip": {"port_id": a1["id"]}}, **ADMIN, status=200)
    for h in (HOST_A, *GATEWAYS):
        reply = state(api, h, since=revs[h], timeout=2)
        assert not reply["full"], h
        delta = wire.delta_from_dict(reply["delta"])
        assert [x.id for x in delta.routers] == [r["id"]], h
        assert [x.port_id for x in delta.routers[0].floating_ips] == [a1["id"]], h
    for h in (HOST_B, HOST_C):
        reply = state(api, h, since=revs[h], timeout=0)
        assert reply["delta"]["routers"] == [] and reply["delta"]["ports"] == [], h


def test_a_new_gateway_host_gets_the_routers_and_the_others_learn_it(l3):
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    rev_a = state(api, HOST_A)["revision"]
    first = state(api, "gw-3")
    assert wire.view_from_dict(first["view"]).routers == ()
    register(api, "gw-3", "192.0.2.13", gateway=True)
    reply = state(api, "gw-3", since=first["revision"], timeout=2)
    view = wire.apply_delta(wire.view_from_dict(first["view"]),
                            wire.delta_from_dict(reply["delta"]))
    assert [x.id for x in view.routers] == [r["id"]]
    # (its own tunnel IP came with its registration, not in a delta)
    assert canon(view.replace(tunnel_ip="192.0.2.13")) == canon(full_view(api, "gw-3"))
    reply = state(api, HOST_A, since=rev_a, timeout=2)
    delta = wire.delta_from_dict(reply["delta"])
    assert delta.routers[0].gateway.hosts[-1] == "gw-3"
    assert "gw-3" in {h.name for h in delta.remote_hosts}


OPS = ["fip", "fip", "assoc", "assoc", "assoc", "disassoc", "del_fip", "pf", "pf", "del_pf",
       "gw_off", "gw_on", "gw_on", "move_port", "add_port", "new_gateway_host", "attach",
       "attach", "detach", "ext_v6", "del_ext_v6"]


@pytest.mark.parametrize("seed", range(4))
def test_deltas_equal_full_views_with_floating_ips_and_gateways(l3, seed):
    api = l3
    rnd = random.Random(seed)
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    n2 = api.network(project="admin-p")
    s2 = api.subnet(n2["id"], "10.2.0.0/24", project="admin-p")
    subnets = [s1, s2]
    ports = [a1, bound_port(api, n2["id"], HOST_B)]
    # One floating IP associated from the start.
    fips, pfs = [_fip(api, ext, project_id="p1", port_id=a1["id"])["id"]], []
    hosts = list(HOSTS) + list(GATEWAYS)
    views, revs = {}, {}
    for h in hosts + ["gw-9"]:
        first = state(api, h)
        views[h], revs[h] = wire.view_from_dict(first["view"]), first["revision"]
    extra_gw = 0
    done = {"assoc": 0, "pf": 0}
    ext_v6 = []  # IPv6 subnets added to the external network (the gateway takes an address)

    for step in range(30):
        ops = [rnd.choice(OPS) for _ in range(rnd.choice((1, 2)))]
        for op in ops:
            if op == "fip":
                fips.append(_fip(api, ext, project_id="p1")["id"])
            elif op == "assoc" and fips:
                p = rnd.choice(ports)
                res = api.put(f"{F}/{rnd.choice(fips)}", {"floatingip": {"port_id": p["id"]}},
                              **ADMIN)
                assert res.status_int in (200, 404, 409, 400), res.text
                done[op] += res.status_int == 200
            elif op == "disassoc" and fips:
                api.put(f"{F}/{rnd.choice(fips)}", {"floatingip": {"port_id": None}}, **ADMIN,
                        status=200)
            elif op == "del_fip" and fips:
                fid = fips.pop(rnd.randrange(len(fips)))
                # Its forwardings first (a floating IP with some is a 409).
                for x in [x for x in pfs if x[0] == fid]:
                    api.delete(f"{F}/{fid}/port_forwardings/{x[1]}", **ADMIN, status=204)
                    pfs.remove(x)
                api.delete(f"{F}/{fid}", **ADMIN, status=204)
            elif op == "pf" and fips:
                fid, p = rnd.choice(fips), rnd.choice(ports)
                port_no = rnd.randrange(1, 60000)
                res = api.post(f"{F}/{fid}/port_forwardings", {"port_forwarding": {
                    "protocol": "udp", "internal_port_id": p["id"],
                    "internal_ip_address": p["fixed_ips"][0]["ip_address"],
                    "internal_port": port_no, "external_port": port_no}}, **ADMIN)
                assert res.status_int in (201, 400, 404, 409), res.text
                done[op] += res.status_int == 201
                if res.status_int == 201:
                    pfs.append((fid, res.json["port_forwarding"]["id"]))
            elif op == "del_pf" and pfs:
                fid, pid = pfs.pop(rnd.randrange(len(pfs)))
                api.delete(f"{F}/{fid}/port_forwardings/{pid}", **ADMIN, status=204)
            elif op == "gw_off":
                res = api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": None}},
                              **ADMIN)
                assert res.status_int in (200, 409), res.text
            elif op == "gw_on":
                api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
                    "network_id": ext["id"], "enable_snat": rnd.random() < .5}}}, **ADMIN,
                    status=200)
            elif op == "move_port":
                p = rnd.choice(ports)
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": rnd.choice(
                    list(HOSTS))}}, **ADMIN, status=200)
            elif op == "add_port":
                net = rnd.choice([n1, n2])
                ports.append(bound_port(api, net["id"], rnd.choice(list(HOSTS))))
            elif op == "new_gateway_host" and extra_gw < 2:
                extra_gw += 1
                name = "gw-9" if extra_gw == 1 else "gw-8"
                register(api, name, f"192.0.2.{90 + extra_gw}", gateway=True)
                if name not in views:
                    first = state(api, name)
                    views[name] = wire.view_from_dict(first["view"])
                    revs[name] = first["revision"]
            elif op == "attach":
                res = api.put(f"{R}/{r['id']}/add_router_interface",
                              {"subnet_id": rnd.choice(subnets)["id"]}, **ADMIN)
                assert res.status_int in (200, 400), res.text
            elif op == "detach":
                res = api.put(f"{R}/{r['id']}/remove_router_interface",
                              {"subnet_id": rnd.choice(subnets)["id"]}, **ADMIN)
                assert res.status_int in (200, 404, 409), res.text
            elif op == "ext_v6":
                mode = rnd.choice(["slaac", "dhcpv6-stateful"])
                ext_v6.append(api.subnet(ext["id"], cidr=f"2001:db8:{step}{len(ext_v6)}::/64",
                                         ipv6_ra_mode=mode, ipv6_address_mode=mode, **ADMIN))
            elif op == "del_ext_v6" and ext_v6:
                res = api.delete(f"/v2.0/subnets/{ext_v6.pop()['id']}", **ADMIN)
                assert res.status_int in (204, 409), res.text  # (a stateful one in use)
        for h in views:
            reply = state(api, h, since=revs[h], timeout=0)
            if reply["full"]:
                views[h] = wire.view_from_dict(reply["view"])
            else:
                views[h] = wire.apply_delta(views[h], wire.delta_from_dict(reply["delta"]))
            revs[h] = reply["revision"]
            views[h] = views[h].replace(tunnel_ip=full_view(api, h).tunnel_ip)
            assert canon(views[h]) == canon(full_view(api, h)), f"step {step} {h}: {ops}"
    assert sum(done.values()), done


def test_the_floating_ips_mac_follows_its_ports(l3):
    api = l3
    ext, ext_sub, n1, s1, a1, n3, r = _setup(api)
    _fip(api, ext, port_id=a1["id"], project_id=a1["project_id"])
    first = state(api, HOST_A)
    # (a bound port's MAC does not change, as in Neutron: 409 PortBound;
    # unbound, changed, bound again)
    url = f"/v2.0/ports/{a1['id']}"
    api.put(url, {"port": {"mac_address": "fa:16:3e:00:00:99"}}, **ADMIN, status=409)
    api.put(url, {"port": {"binding:host_id": ""}}, **ADMIN, status=200)
    api.put(url, {"port": {"mac_address": "fa:16:3e:00:00:99"}}, **ADMIN, status=200)
    api.put(url, {"port": {"binding:host_id": HOST_A}}, **ADMIN, status=200)
    reply = state(api, HOST_A, since=first["revision"], timeout=2)
    delta = wire.delta_from_dict(reply["delta"])
    assert [x.mac_address for x in delta.routers[0].floating_ips] == ["fa:16:3e:00:00:99"]


def test_subnets_in_the_gateways_address_scope_are_marked_unnatted(l3):
    """Neutron's rule: no NAT within one address scope.  The gateway
    carries the CIDRs of the router's subnets in its external subnet's
    scope; a pool changing scope wakes the router's hosts with the new
    answer."""
    api = l3

    def post(path, key, **body):
        return api.post(path, {key: body}, status=201, **ADMIN).data[key]

    scope = post("/v2.0/address-scopes", "address_scope", name="s", ip_version=4,
                 shared=True)
    pools = [post("/v2.0/subnetpools", "subnetpool", name=n, prefixes=[c], shared=True,
                  **({"address_scope_id": scope["id"]} if scoped else {}))
             for n, c, scoped in (("ext", "172.24.0.0/16", True), ("in", "10.10.0.0/16", True),
                                  ("other", "10.20.0.0/16", False))]
    ext = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    post("/v2.0/subnets", "subnet", network_id=ext["id"], ip_version=4,
         subnetpool_id=pools[0]["id"], prefixlen=24)
    r = post(R, "router", name="r", external_gateway_info={"network_id": ext["id"]})
    subs = []
    for pool in pools[1:]:
        n = api.network(project="admin-p")
        subs.append(post("/v2.0/subnets", "subnet", network_id=n["id"], ip_version=4,
                         subnetpool_id=pool["id"], prefixlen=24))
        api.put(f"{R}/{r['id']}/add_router_interface", {"subnet_id": subs[-1]["id"]},
                **ADMIN, status=200)
        bound_port(api, n["id"], HOST_A)
    (router,) = full_view(api, HOST_A).routers
    assert router.gateway.unnatted == (subs[0]["cidr"],)
    # the scopes: the gateway's IPv4 subnet's, and each interface's
    assert (router.gateway.address_scope_v4, router.gateway.address_scope_v6) == \
        (scope["id"], None)
    assert {i.subnet_id: i.address_scope_id for i in router.interfaces} == \
        {subs[0]["id"]: scope["id"], subs[1]["id"]: None}
    wire_gw = state(api, HOST_A)["view"]["routers"][0]["gateway"]
    assert wire_gw["unnatted"] == [subs[0]["cidr"]]
    assert wire_gw["address_scope_v4"] == scope["id"] and "address_scope_v6" not in wire_gw

    def rescope(pool, scope_id, want):
        rev = state(api, HOST_A)["revision"]
        view = full_view(api, HOST_A)
        api.put(f"/v2.0/subnetpools/{pool['id']}",
                {"subnetpool": {"address_scope_id": scope_id}}, **ADMIN, status=200)
        reply = state(api, HOST_A, since=rev)
        assert not reply["full"]
        view = wire.apply_delta(view, wire.delta_from_dict(reply["delta"]))
        assert canon(view.replace(tunnel_ip=None)) == \
            canon(full_view(api, HOST_A).replace(tunnel_ip=None))
        assert view.routers[0].gateway.unnatted == want

    rescope(pools[2], scope["id"], tuple(sorted((subs[0]["cidr"], subs[1]["cidr"]))))
    rescope(pools[1], None, (subs[1]["cidr"],))
    # the external subnet's pool leaves the scope: nothing matches
    rescope(pools[0], None, ())
    wire_gw = state(api, HOST_A)["view"]["routers"][0]["gateway"]
    assert "unnatted" not in wire_gw and "address_scope_v4" not in wire_gw


def test_onboarding_a_routers_subnet_into_the_gateways_scope_wakes_its_hosts(l3):
    """subnet_onboard moves a router's subnet (made with its own cidr) into
    a pool of the external subnet's address scope: the router's hosts get
    the new NAT decision (no SNAT for it) as a delta, equal to the full
    view after."""
    api = l3

    def post(path, key, **body):
        return api.post(path, {key: body}, status=201, **ADMIN).data[key]

    scope = post("/v2.0/address-scopes", "address_scope", name="s", ip_version=4, shared=True)
    ext_pool, in_pool = (post("/v2.0/subnetpools", "subnetpool", name=n, prefixes=[c],
                              shared=True, address_scope_id=scope["id"])
                         for n, c in (("ext", "172.24.0.0/16"), ("in", "10.10.0.0/16")))
    ext = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    post("/v2.0/subnets", "subnet", network_id=ext["id"], ip_version=4,
         subnetpool_id=ext_pool["id"], prefixlen=24)
    r = post(R, "router", name="r", external_gateway_info={"network_id": ext["id"]})
    n = api.network(project="admin-p")
    sub = api.subnet(n["id"], "10.30.1.0/24", **ADMIN)
    api.put(f"{R}/{r['id']}/add_router_interface", {"subnet_id": sub["id"]}, **ADMIN,
            status=200)
    bound_port(api, n["id"], HOST_A)
    (router,) = full_view(api, HOST_A).routers
    assert router.gateway.unnatted == ()
    rev = state(api, HOST_A)["revision"]
    view = full_view(api, HOST_A)
    api.put(f"/v2.0/subnetpools/{in_pool['id']}/onboard_network_subnets",
            {"network_id": n["id"]}, **ADMIN, status=200)
    reply = state(api, HOST_A, since=rev)
    assert not reply["full"]
    view = wire.apply_delta(view, wire.delta_from_dict(reply["delta"]))
    assert canon(view.replace(tunnel_ip=None)) == \
        canon(full_view(api, HOST_A).replace(tunnel_ip=None))
    assert view.routers[0].gateway.unnatted == ("10.30.1.0/24",)


def test_a_gateway_on_an_external_network_without_subnets_has_no_address(l3):
    """Neutron's gateway port without addresses: in every view, compiled
    on the gateway hosts and the others alike (no NAT, no gateway flows)."""
    api = l3
    ext = api.post("/v2.0/networks", {"network": {"name": "bare", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    n1 = api.network()
    s1 = api.subnet(n1["id"], "10.1.0.0/24")
    bound_port(api, n1["id"], HOST_A)
    r = api.post(R, {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext["id"]}}}, **ADMIN, status=201).data["router"]
    assert r["external_gateway_info"]["external_fixed_ips"] == []
    api.put(f"{R}/{r['id']}/add_router_interface", {"subnet_id": s1["id"]}, **ADMIN,
            status=200)
    [gw] = api.get(f"/v2.0/ports?device_id={r['id']}&device_owner=network:router_gateway",
                   **ADMIN, status=200).data["ports"]
    assert gw["fixed_ips"] == [] and gw["network_id"] == ext["id"]
    # no address to translate to: a floating IP there is refused, nothing is left
    api.post(F, {"floatingip": {"floating_network_id": ext["id"]}}, **ADMIN, status=400)
    assert api.get(F, **ADMIN, status=200).data["floatingips"] == []
    gw_cookie = cookies.cookie_for(cookies.KIND_GATEWAY, r["id"])
    for h in list(HOSTS) + list(GATEWAYS):
        view = wire.view_from_dict(state(api, h)["view"])
        if h == HOST_A or h in GATEWAYS:
            [vr] = view.routers
            assert vr.gateway is not None and vr.gateway.ip_addresses == ()
        flows = compile_flows(view, Engine(h).alloc)  # compiles
        assert flows and not [f for f in flows if f.cookie == gw_cookie], h
    # a subnet later, and the gateway set again, gives it an address
    ext_sub = api.subnet(ext["id"], cidr="172.24.9.0/24", **ADMIN)
    up = api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": None}}, **ADMIN,
                 status=200).data["router"]
    up = api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, **ADMIN, status=200).data["router"]
    assert [f["subnet_id"] for f in up["external_gateway_info"]["external_fixed_ips"]] == \
        [ext_sub["id"]]
    # (and now its gateway hosts have the gateway's flows the check above looked for)
    with_gw = [h for h in GATEWAYS if any(
        f.cookie == gw_cookie for f in compile_flows(
            wire.view_from_dict(state(api, h)["view"]), Engine(h).alloc))]
    assert with_gw, "no gateway host compiles the gateway's flows"
