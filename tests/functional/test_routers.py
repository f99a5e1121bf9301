"""Routers (aliases router, extraroute, extraroute-atomic): every attribute,
action and error, on SQLite and PostgreSQL, with the L3 service plugin
enabled as in Neutron (``service_plugins = router``)."""

import sqlalchemy as sa
import pytest

from quantum_ovs.db import models

R = "/v2.0/routers"
ADMIN = dict(project="admin-p", admin=True)


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _router(api, status=201, project="p1", admin=False, **attrs):
    r = api.post(R, {"router": attrs}, project=project, admin=admin, status=status)
    return r.data["router"] if status == 201 else r.data["NeutronError"]


def _net_sub(api, cidr="10.0.0.0/24", project="p1", **attrs):
    net = api.network(project=project)
    return net, api.subnet(net["id"], cidr=cidr, project=project, **attrs)


def _add(api, rid, status=200, project="p1", **body):
    r = api.put(f"{R}/{rid}/add_router_interface", body, project=project, status=status)
    return r.data if status == 200 else r.data["NeutronError"]


def _remove(api, rid, status=200, project="p1", **body):
    r = api.put(f"{R}/{rid}/remove_router_interface", body, project=project, status=status)
    return r.data if status == 200 else r.data["NeutronError"]


def _external(api, cidr="172.24.4.0/24"):
    net = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    sub = api.subnet(net["id"], cidr=cidr, **ADMIN)
    return net, sub


def _err(resp_data):
    return resp_data["NeutronError"]["type"]


# ------------------------------------------------------------------ enabling
def test_routers_are_off_unless_the_service_plugin_is_on(make_api):
    assert make_api().get(R, status=200)  # on by default
    api = make_api(service_plugins=[])
    api.get(R, status=404)
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}
    assert not aliases & {"router", "extraroute", "extraroute-atomic"}
    assert "router" not in api.get("/v2.0/quotas/p1", status=200).data["quota"]
    on = make_api(service_plugins=["router"])
    aliases = {e["alias"] for e in on.get("/v2.0/extensions", status=200).data["extensions"]}
    assert {"router", "extraroute", "extraroute-atomic",
            "router-admin-state-down-before-update"} <= aliases
    assert on.get("/v2.0/quotas/p1", status=200).data["quota"]["router"] == 10
    assert any(x["collection"] == "routers"
               for x in on.get("/v2.0", status=200).data["resources"])


# ------------------------------------------------------------------ CRUD
def test_create_shows_neutrons_attributes(l3):
    r = _router(l3, name="r1", description="the router")
    assert set(r) == {"id", "name", "description", "project_id", "tenant_id",
                      "admin_state_up", "status", "external_gateway_info", "routes",
                      "revision_number", "created_at", "updated_at", "tags"}
    assert (r["name"], r["description"], r["project_id"], r["tenant_id"]) == \
        ("r1", "the router", "p1", "p1")
    assert r["admin_state_up"] is True and r["status"] == "ACTIVE"
    assert r["external_gateway_info"] is None and r["routes"] == [] and r["tags"] == []
    assert r["revision_number"] == 0 and r["created_at"].endswith("Z")
    assert l3.get(f"{R}/{r['id']}", status=200).data["router"] == r
    down = _router(l3, name="r2", admin_state_up=False)
    assert down["admin_state_up"] is False
    # an admin creates one for another project; a member cannot
    other = _router(l3, tenant_id="p9", **ADMIN)
    assert other["project_id"] == "p9"
    l3.post(R, {"router": {"project_id": "p9"}}, status=400)
    # read-only and unknown attributes
    for bad in ({"status": "DOWN"}, {"id": "x"}, {"routes": []}, {"color": "red"},
                {"admin_state_up": "maybe"}, {"name": "x" * 256}):
        l3.post(R, {"router": bad}, status=400)
    # bulk: all or nothing
    got = l3.post(R, {"routers": [{"name": "b1"}, {"name": "b2"}]}, status=201).data
    assert [x["name"] for x in got["routers"]] == ["b1", "b2"]
    before = l3.count("routers")
    l3.post(R, {"routers": [{"name": "b3"}, {"status": "x"}]}, status=400)
    assert l3.count("routers") == before


def test_update_list_filter_sort_tags_delete(l3):
    a = _router(l3, name="a")
    b = _router(l3, name="b", admin_state_up=False)
    up = l3.put(f"{R}/{a['id']}", {"router": {"name": "a2", "description": "d",
                                              "admin_state_up": False}}, status=200).data
    up = up["router"]
    assert (up["name"], up["description"], up["admin_state_up"]) == ("a2", "d", False)
    assert up["revision_number"] == a["revision_number"] + 1
    for bad in ({"status": "DOWN"}, {"id": a["id"]}, {"tenant_id": "p2"}):
        l3.put(f"{R}/{a['id']}", {"router": bad}, status=400)
    # If-Match on the revision
    l3.put(f"{R}/{a['id']}", {"router": {"name": "c"}}, status=412,
           headers={"If-Match": "revision_number=0"})
    names = [x["name"] for x in l3.get(f"{R}?sort_key=name&sort_dir=desc",
                                       status=200).data["routers"]]
    assert names == ["b", "a2"]
    assert [x["id"] for x in l3.get(f"{R}?name=b", status=200).data["routers"]] == [b["id"]]
    assert len(l3.get(f"{R}?admin_state_up=false", status=200).data["routers"]) == 2
    only = l3.get(f"{R}?fields=id&fields=name", status=200).data["routers"]
    assert all(set(x) == {"id", "name"} for x in only)
    page = l3.get(f"{R}?limit=1&sort_key=name&sort_dir=asc", status=200).data
    assert len(page["routers"]) == 1 and page["routers_links"]
    # tags
    l3.put(f"{R}/{a['id']}/tags", {"tags": ["x", "y"]}, status=200)
    l3.put(f"{R}/{a['id']}/tags/z", status=201)
    assert l3.get(f"{R}/{a['id']}", status=200).data["router"]["tags"] == ["x", "y", "z"]
    assert [x["id"] for x in l3.get(f"{R}?tags=z", status=200).data["routers"]] == [a["id"]]
    l3.delete(f"{R}/{a['id']}/tags/x", status=204)
    l3.get(f"{R}/{a['id']}/tags/x", status=404)
    l3.delete(f"{R}/{a['id']}", status=204)
    l3.get(f"{R}/{a['id']}", status=404)
    err = l3.delete(f"{R}/{a['id']}", status=404).data
    assert _err(err) == "RouterNotFound"


# ------------------------------------------------------------------ gateway
def _gateway_ports(api, router_id):
    return api.get(f"/v2.0/ports?device_id={router_id}&device_owner=network:router_gateway",
                   status=200, **ADMIN).data["ports"]


def test_external_gateway(l3):
    ext, ext_sub = _external(l3)
    r = _router(l3, external_gateway_info={"network_id": ext["id"]})
    assert r["external_gateway_info"] == {
        "network_id": ext["id"], "enable_snat": True,
        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "172.24.4.2"}]}
    # the gateway port: on the external network, no project's, the router's
    [gw] = _gateway_ports(l3, r["id"])
    assert (gw["network_id"], gw["project_id"], gw["fixed_ips"]) == \
        (ext["id"], "", r["external_gateway_info"]["external_fixed_ips"])
    l3.get(f"/v2.0/ports/{gw['id']}", status=404)  # not the project's
    assert _err(l3.delete(f"/v2.0/ports/{gw['id']}", status=409, **ADMIN).data) == \
        "L3PortInUse"
    assert _err(l3.delete(f"/v2.0/subnets/{ext_sub['id']}", status=409, **ADMIN).data) == \
        "SubnetInUse"
    # no interface: the router may go, with its gateway port
    gone = _router(l3, external_gateway_info={"network_id": ext["id"]})
    [gone_port] = _gateway_ports(l3, gone["id"])
    l3.delete(f"{R}/{gone['id']}", status=204)
    l3.get(f"/v2.0/ports/{gone_port['id']}", status=404, **ADMIN)
    # SNAT and fixed IPs are an admin's to choose (Neutron's policy)
    assert _err(l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"], "enable_snat": False}}}, status=403).data) == \
        "PolicyNotAuthorized"
    l3.post(R, {"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"subnet_id": ext_sub["id"]}]}}},
        status=403)
    gw = {"network_id": ext["id"], "enable_snat": False,
          "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "172.24.4.9"}]}
    up = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": gw}},
                status=200, **ADMIN).data["router"]
    assert up["external_gateway_info"] == gw
    [port] = _gateway_ports(l3, r["id"])
    assert port["fixed_ips"] == gw["external_fixed_ips"]
    # the same network again keeps the port
    up = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=200).data["router"]
    assert [p["id"] for p in _gateway_ports(l3, r["id"])] == [port["id"]]
    assert up["external_gateway_info"]["enable_snat"] is True
    # not external: 400; not there: 404; bad shapes and addresses: 400
    net, sub = _net_sub(l3)
    assert "not an external network" in _router(
        l3, 400, external_gateway_info={"network_id": net["id"]})["message"]
    assert _err(l3.post(R, {"router": {"external_gateway_info": {
        "network_id": "6e3c3b3e-0a4f-4e0c-8d0c-3c9b2d6f0a11"}}}, status=404).data) == \
        "NetworkNotFound"
    for bad in ({"enable_snat": True}, {"network_id": "x"}, "public",
                {"network_id": ext["id"], "other": 1}):
        l3.post(R, {"router": {"external_gateway_info": bad}}, status=400)
    for fixed in ([{"subnet_id": sub["id"]}], [{"ip_address": "10.9.9.9"}]):
        l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
            "network_id": ext["id"], "external_fixed_ips": fixed}}}, status=400, **ADMIN)
    # the external network cannot go, nor stop being external, while a
    # router uses it
    e = l3.put(f"/v2.0/networks/{ext['id']}", {"network": {"router:external": False}},
               status=409, **ADMIN).data
    assert _err(e) == "ExternalNetworkInUse"
    assert l3.get(f"/v2.0/networks/{ext['id']}", status=200,
                  **ADMIN).data["network"]["router:external"] is True
    assert _err(l3.delete(f"/v2.0/networks/{ext['id']}", status=409, **ADMIN).data) == \
        "NetworkInUse"
    cleared = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": None}},
                     status=200).data["router"]
    assert cleared["external_gateway_info"] is None
    assert _gateway_ports(l3, r["id"]) == []
    l3.get(f"/v2.0/ports/{port['id']}", status=404, **ADMIN)
    again = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=200).data["router"]
    l3.put(f"{R}/{again['id']}", {"router": {"external_gateway_info": {}}}, status=200)
    l3.delete(f"/v2.0/networks/{ext['id']}", status=204, **ADMIN)


# ------------------------------------------------------------------ interfaces
def test_interface_by_subnet(l3):
    r = _router(l3)
    net, sub = _net_sub(l3)
    info = _add(l3, r["id"], subnet_id=sub["id"])
    assert info["id"] == r["id"] and info["subnet_id"] == sub["id"]
    assert info["subnet_ids"] == [sub["id"]] and info["network_id"] == net["id"]
    assert info["tenant_id"] == info["project_id"] == "p1"
    port = l3.get(f"/v2.0/ports/{info['port_id']}", status=200).data["port"]
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == r["id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]
    # bound to no host: ACTIVE from the start, whatever the router's state
    assert port["status"] == "ACTIVE"
    l3.put(f"{R}/{r['id']}", {"router": {"admin_state_up": False}}, status=200)
    down = _router(l3, admin_state_up=False)
    _, sub9 = _net_sub(l3, cidr="10.9.0.0/24")
    other = _add(l3, down["id"], subnet_id=sub9["id"])
    for pid in (info["port_id"], other["port_id"]):
        assert l3.get(f"/v2.0/ports/{pid}", status=200).data["port"]["status"] == "ACTIVE"
    l3.put(f"{R}/{r['id']}", {"router": {"admin_state_up": True}}, status=200)
    # clients find a router's interfaces by device_id
    listed = l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"]
    assert [p["id"] for p in listed] == [info["port_id"]]
    assert l3.get(f"{R}/{r['id']}", status=200).data["router"]["revision_number"] == 3
    # the same subnet again, an overlapping one, one without a gateway: 400
    e = _add(l3, r["id"], 400, subnet_id=sub["id"])
    assert e["type"] == "BadRequest" and "already has a port on subnet" in e["message"]
    _, overlapping = _net_sub(l3, cidr="10.0.0.0/16")
    e = _add(l3, r["id"], 400, subnet_id=overlapping["id"])
    assert "overlaps with cidr" in e["message"]
    _, nogw = _net_sub(l3, cidr="10.5.0.0/24", gateway_ip=None)
    assert "gateway IP" in _add(l3, r["id"], 400, subnet_id=nogw["id"])["message"]
    # the gateway address is the first router's: a second router cannot have it
    r2 = _router(l3)
    assert _add(l3, r2["id"], 409, subnet_id=sub["id"])["type"] == \
        "IpAddressAlreadyAllocated"
    # a second subnet
    net2, sub2 = _net_sub(l3, cidr="10.1.0.0/24")
    info2 = _add(l3, r["id"], subnet_id=sub2["id"])
    assert len(l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"]) == 2
    # bad bodies, subnets that are not there
    for body in ({}, {"subnet_id": sub["id"], "port_id": info["port_id"]},
                 {"subnet_id": "x"}, {"network_id": net["id"]}):
        _add(l3, r["id"], 400, **body)
    l3.put(f"{R}/{r['id']}/add_router_interface", raw=b"[1]", status=400)
    absent = "0b6b1e8e-5c39-4bb0-9d4e-1f2a3b4c5d6e"
    assert _add(l3, r["id"], 404, subnet_id=absent)["type"] == "SubnetNotFound"
    assert _add(l3, absent, 404, subnet_id=sub["id"])["type"] == "RouterNotFound"
    # remove by subnet: the port goes, its address is free again
    out = _remove(l3, r["id"], subnet_id=sub["id"])
    assert out["port_id"] == info["port_id"] and out["subnet_id"] == sub["id"]
    l3.get(f"/v2.0/ports/{info['port_id']}", status=404)
    assert _remove(l3, r["id"], 404, subnet_id=sub["id"])["type"] == \
        "RouterInterfaceNotFoundForSubnet"
    assert _remove(l3, r["id"], 404, port_id=info["port_id"])["type"] == \
        "RouterInterfaceNotFound"
    _add(l3, r2["id"], subnet_id=sub["id"])
    # remove by port
    _remove(l3, r["id"], port_id=info2["port_id"])
    assert l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"] == []
    l3.delete(f"{R}/{r['id']}", status=204)


def test_interface_by_port(l3):
    r = _router(l3)
    net, sub = _net_sub(l3)
    port = l3.port(net["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.7"}])
    info = _add(l3, r["id"], port_id=port["id"])
    assert (info["port_id"], info["subnet_id"], info["network_id"]) == \
        (port["id"], sub["id"], net["id"])
    shown = l3.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert (shown["device_owner"], shown["device_id"], shown["status"]) == \
        ("network:router_interface", r["id"], "ACTIVE")
    # already on a router (this or another): in use
    r2 = _router(l3)
    assert _add(l3, r2["id"], 409, port_id=port["id"])["type"] == "PortInUse"
    vm = l3.port(net["id"], device_owner="compute:nova", device_id="vm-1")
    assert _add(l3, r["id"], 409, port_id=vm["id"])["type"] == "PortInUse"
    # no address
    net2 = l3.network()
    bare = l3.port(net2["id"])
    assert bare["fixed_ips"] == []
    assert "at least one fixed IP" in _add(l3, r["id"], 400, port_id=bare["id"])["message"]
    # a port on a subnet the router has: 400
    again = l3.port(net["id"])
    assert "already has a port on subnet" in _add(l3, r["id"], 400,
                                                  port_id=again["id"])["message"]
    # two IPv4 subnets on one port: 400
    net3 = l3.network()
    s1 = l3.subnet(net3["id"], cidr="10.3.0.0/24")
    s2 = l3.subnet(net3["id"], cidr="10.4.0.0/24")
    two = l3.port(net3["id"], fixed_ips=[{"subnet_id": s1["id"]}, {"subnet_id": s2["id"]}])
    assert "multiple IPv4 subnets" in _add(l3, r["id"], 400, port_id=two["id"])["message"]
    # removal by port and subnet that do not match: 400, as Neutron's
    # _remove_interface_by_port
    assert _remove(l3, r["id"], 400, port_id=port["id"], subnet_id=s1["id"])["type"] == \
        "SubnetMismatchForPort"
    _remove(l3, r["id"], port_id=port["id"], subnet_id=sub["id"])
    l3.get(f"/v2.0/ports/{port['id']}", status=404)


def test_interface_ports_are_the_routers(l3):
    r = _router(l3)
    net, sub = _net_sub(l3, allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.200"}])
    info = _add(l3, r["id"], subnet_id=sub["id"])
    pid = info["port_id"]
    e = l3.delete(f"/v2.0/ports/{pid}", status=409).data["NeutronError"]
    assert e["type"] == "L3PortInUse" and "network:router_interface" in e["message"]
    l3.delete(f"/v2.0/ports/{pid}", status=409, **ADMIN)
    for change in ({"device_owner": "compute:nova"}, {"device_owner": ""},
                   {"device_id": "vm-x"}):
        l3.put(f"/v2.0/ports/{pid}", {"port": change}, status=409, **ADMIN)
    assert l3.put(f"/v2.0/ports/{pid}", {"port": {"name": "ok"}},
                  status=200).data["port"]["name"] == "ok"
    assert _err(l3.delete(f"/v2.0/subnets/{sub['id']}", status=409).data) == "SubnetInUse"
    assert _err(l3.delete(f"/v2.0/networks/{net['id']}", status=409).data) == "NetworkInUse"
    e = l3.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.0.0.254"}},
               status=409).data["NeutronError"]
    assert e["type"] == "GatewayIpInUse" and pid in e["message"]
    e = l3.delete(f"{R}/{r['id']}", status=409).data["NeutronError"]
    assert e["type"] == "RouterInUse"
    # nothing changed by the refusals
    port = l3.get(f"/v2.0/ports/{pid}", status=200).data["port"]
    assert (port["device_owner"], port["device_id"]) == ("network:router_interface", r["id"])
    assert l3.get(f"/v2.0/subnets/{sub['id']}", status=200).data["subnet"]["gateway_ip"] == \
        "10.0.0.1"
    _remove(l3, r["id"], subnet_id=sub["id"])
    l3.delete(f"/v2.0/subnets/{sub['id']}", status=204)
    l3.delete(f"{R}/{r['id']}", status=204)


# ------------------------------------------------------------------ routes
def test_routes(l3):
    r = _router(l3)
    net, sub = _net_sub(l3)
    _, sub2 = _net_sub(l3, cidr="10.1.0.0/24")
    route = {"destination": "192.168.0.0/24", "nexthop": "10.0.0.5"}
    # no interface yet: nothing is connected
    e = l3.put(f"{R}/{r['id']}", {"router": {"routes": [route]}}, status=400).data
    assert _err(e) == "InvalidRoutes" and "not connected" in e["NeutronError"]["message"]
    _add(l3, r["id"], subnet_id=sub["id"])
    _add(l3, r["id"], subnet_id=sub2["id"])
    got = l3.put(f"{R}/{r['id']}", {"router": {"routes": [route]}},
                 status=200).data["router"]
    assert got["routes"] == [route]
    for bad in ([{"destination": "192.168.0.0/24", "nexthop": "10.0.0.1"}],   # the router's
                [{"destination": "192.168.0.0/24", "nexthop": "10.7.0.1"}],   # unconnected
                [{"destination": "192.168.0.0/24", "nexthop": "2001:db8::1"}],
                [{"destination": "192.168.0.1/24", "nexthop": "10.0.0.5"}],
                [{"destination": "192.168.0.0/24"}], [route, route], "x",
                [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.5", "x": 1}]):
        l3.put(f"{R}/{r['id']}", {"router": {"routes": bad}}, status=400)
    assert l3.get(f"{R}/{r['id']}", status=200).data["router"]["routes"] == [route]
    # None clears; atomic add and remove
    assert l3.put(f"{R}/{r['id']}", {"router": {"routes": None}},
                  status=200).data["router"]["routes"] == []
    more = [route, {"destination": "0.0.0.0/0", "nexthop": "10.1.0.9"}]
    got = l3.put(f"{R}/{r['id']}/add_extraroutes", {"router": {"routes": more}},
                 status=200).data["router"]
    assert sorted(got["routes"], key=str) == sorted(more, key=str)
    # adding what is there changes nothing; removing what is not there too
    got = l3.put(f"{R}/{r['id']}/add_extraroutes", {"router": {"routes": [route]}},
                 status=200).data["router"]
    assert len(got["routes"]) == 2
    got = l3.put(f"{R}/{r['id']}/remove_extraroutes", {"router": {"routes": [
        route, {"destination": "10.99.0.0/16", "nexthop": "10.0.0.5"}]}},
        status=200).data["router"]
    assert got["routes"] == [more[1]]
    for body in ({"routes": [route]}, {"router": {}}, {"router": {"routes": [route],
                                                                  "name": "x"}},
                 {"router": {"routes": [{"destination": "1.2.3.0/24",
                                         "nexthop": "10.9.9.9"}]}}):
        l3.put(f"{R}/{r['id']}/add_extraroutes", body, status=400)
    # the interface a route needs stays
    e = _remove(l3, r["id"], 409, subnet_id=sub2["id"])
    assert e["type"] == "RouterInterfaceInUseByRoute"
    _remove(l3, r["id"], subnet_id=sub["id"])
    # at most 30 routes (the router_route quota's default), the project's
    # own limit when an admin sets one (Neutron 2026.2: per router)
    many = [{"destination": f"172.16.{i}.0/24", "nexthop": "10.1.0.9"} for i in range(31)]
    e = l3.put(f"{R}/{r['id']}", {"router": {"routes": many}}, status=409).data
    assert _err(e) == "OverQuota" and "router_route" in e["NeutronError"]["message"]
    l3.put(f"{R}/{r['id']}", {"router": {"routes": many[:30]}}, status=200)
    quota = l3.get("/v2.0/quotas/p1/details", status=200).data["quota"]["router_route"]
    assert quota == {"limit": 30, "used": 0, "reserved": 0}
    l3.put("/v2.0/quotas/p1", {"quota": {"router_route": -1}}, status=200, **ADMIN)
    l3.put(f"{R}/{r['id']}", {"router": {"routes": many}}, status=200)
    l3.put("/v2.0/quotas/p1", {"quota": {"router_route": 2}}, status=200, **ADMIN)
    e = l3.put(f"{R}/{r['id']}/add_extraroutes", {"router": {"routes": [
        {"destination": "172.17.0.0/24", "nexthop": "10.1.0.9"}]}}, status=409).data
    assert _err(e) == "OverQuota"
    l3.put(f"{R}/{r['id']}", {"router": {"routes": many[:2]}}, status=200)
    l3.put(f"{R}/{r['id']}", {"router": {"routes": []}}, status=200)
    # routes are not given at creation (extraroute)
    l3.post(R, {"router": {"routes": [route]}}, status=400)


def test_ipv6_interface(l3):
    r = _router(l3)
    net = l3.network()
    sub = l3.subnet(net["id"], cidr="2001:db8:1::/64", ipv6_ra_mode="slaac",
                    ipv6_address_mode="slaac")
    info = _add(l3, r["id"], subnet_id=sub["id"])
    port = l3.get(f"/v2.0/ports/{info['port_id']}", status=200).data["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "2001:db8:1::1"}]
    got = l3.put(f"{R}/{r['id']}", {"router": {"routes": [
        {"destination": "2001:db8:9::/64", "nexthop": "2001:db8:1::99"}]}},
        status=200).data["router"]
    assert got["routes"][0]["nexthop"] == "2001:db8:1::99"
    # a SLAAC subnet with a router interface stays while attached
    assert _err(l3.delete(f"/v2.0/subnets/{sub['id']}", status=409).data) == "SubnetInUse"


def _router_and_two_prefixes(api, second_mode):
    """A router, a network, its SLAAC subnet and a second IPv6 subnet."""
    net = api.network()
    one = api.subnet(net["id"], cidr="2001:db8:1::/64", ipv6_ra_mode="slaac",
                     ipv6_address_mode="slaac")
    two = api.subnet(net["id"], cidr="2001:db8:2::/64", ipv6_ra_mode=second_mode,
                     ipv6_address_mode=second_mode)
    return _router(api), net, one, two


def test_a_second_ipv6_prefix_joins_the_routers_ipv6_port(l3):
    """As Neutron's _add_interface_by_subnet / _remove_interface_by_subnet:
    one IPv6 port per network, gaining and losing prefixes; IPv4 apart."""
    r, net, one, two = _router_and_two_prefixes(l3, "dhcpv6-stateful")
    v4 = l3.subnet(net["id"], cidr="10.9.0.0/24")
    first = _add(l3, r["id"], subnet_id=one["id"])
    rev = l3.get(f"/v2.0/ports/{first['port_id']}", status=200).data["port"]["revision_number"]
    second = _add(l3, r["id"], subnet_id=two["id"])
    assert second["port_id"] == first["port_id"]
    assert (second["subnet_id"], second["subnet_ids"]) == (two["id"], [two["id"]])
    port = l3.get(f"/v2.0/ports/{first['port_id']}", status=200).data["port"]
    assert port["fixed_ips"] == [{"subnet_id": one["id"], "ip_address": "2001:db8:1::1"},
                                 {"subnet_id": two["id"], "ip_address": "2001:db8:2::1"}]
    assert port["revision_number"] > rev
    # IPv4 gets a port of its own
    third = _add(l3, r["id"], subnet_id=v4["id"])
    assert third["port_id"] != first["port_id"]
    ports = l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"]
    assert len(ports) == 2
    # the same prefix twice is still refused
    assert "already has a port on subnet" in _add(l3, r["id"], 400,
                                                  subnet_id=two["id"])["message"]
    # removing one prefix keeps the port and frees the address
    out = _remove(l3, r["id"], subnet_id=one["id"])
    assert (out["port_id"], out["subnet_ids"]) == (first["port_id"], [one["id"]])
    port = l3.get(f"/v2.0/ports/{first['port_id']}", status=200).data["port"]
    assert port["fixed_ips"] == [{"subnet_id": two["id"], "ip_address": "2001:db8:2::1"}]
    l3.delete(f"/v2.0/subnets/{one['id']}", status=204)  # no longer in use
    # the last prefix takes the port with it
    _remove(l3, r["id"], subnet_id=two["id"])
    l3.get(f"/v2.0/ports/{first['port_id']}", status=404)


def test_removing_a_prefix_keeps_the_routes_of_the_others(l3):
    r, _net, one, two = _router_and_two_prefixes(l3, "slaac")
    _add(l3, r["id"], subnet_id=one["id"])
    _add(l3, r["id"], subnet_id=two["id"])
    l3.put(f"{R}/{r['id']}", {"router": {"routes": [
        {"destination": "2001:db8:9::/64", "nexthop": "2001:db8:2::99"}]}}, status=200)
    assert _err(l3.put(f"{R}/{r['id']}/remove_router_interface", {"subnet_id": two["id"]},
                       project="p1", status=409).data) == "RouterInterfaceInUseByRoute"
    _remove(l3, r["id"], subnet_id=one["id"])  # the route's subnet stays


# ------------------------------------------------------------------ quotas
def test_router_quota(l3):
    l3.put("/v2.0/quotas/p1", {"quota": {"router": 2}}, status=200, **ADMIN)
    _router(l3)
    _router(l3)
    e = _router(l3, 409)
    assert e["type"] == "OverQuota" and "router" in e["message"]
    l3.post(R, {"routers": [{"name": "x"}]}, status=409)
    details = l3.get("/v2.0/quotas/p1/details", status=200).data["quota"]["router"]
    assert details == {"limit": 2, "used": 2, "reserved": 0}
    assert _router(l3, project="p2")  # another project's count


def test_default_router_quota_is_ten(make_api):
    api = make_api(service_plugins=["router"])
    for _ in range(10):
        _router(api)
    assert _router(api, 409)["type"] == "OverQuota"


# ------------------------------------------------------------------ policy, tenancy
def test_other_projects_and_readers(l3):
    r = _router(l3)
    net, sub = _net_sub(l3)
    info = _add(l3, r["id"], subnet_id=sub["id"])
    theirs_net, theirs_sub = _net_sub(l3, cidr="10.50.0.0/24", project="p2")
    theirs = _router(l3, project="p2")
    absent = "0b6b1e8e-5c39-4bb0-9d4e-1f2a3b4c5d6e"
    # another project sees nothing of p1's router, as if it were not there
    assert r["id"] not in {x["id"] for x in l3.get(R, project="p2", status=200).data["routers"]}
    for method, path, body in (
            ("GET", f"{R}/{r['id']}", None),
            ("PUT", f"{R}/{r['id']}", {"router": {"name": "x"}}),
            ("DELETE", f"{R}/{r['id']}", None),
            ("PUT", f"{R}/{r['id']}/add_router_interface", {"subnet_id": theirs_sub["id"]}),
            ("PUT", f"{R}/{r['id']}/remove_router_interface", {"subnet_id": sub["id"]}),
            ("PUT", f"{R}/{r['id']}/add_extraroutes", {"router": {"routes": []}}),
            ("PUT", f"{R}/{r['id']}/remove_extraroutes", {"router": {"routes": []}})):
        got = l3.request(method, path, body, project="p2", status=404).data
        missing = l3.request(method, path.replace(r["id"], absent), body, project="p2",
                             status=404).data
        assert got["NeutronError"]["message"].replace(r["id"], absent) == \
            missing["NeutronError"]["message"]
    # p2 cannot attach p1's subnet or port to its own router (not found)
    assert _add(l3, theirs["id"], 404, project="p2", subnet_id=sub["id"])["type"] == \
        "SubnetNotFound"
    mine = l3.port(net["id"])
    assert _add(l3, theirs["id"], 404, project="p2", port_id=mine["id"])["type"] == \
        "PortNotFound"
    # p1 owns a network; p2's port on it (which p1 sees as the network's
    # owner) is not p1's to take
    owned_net = l3.network()
    l3.subnet(owned_net["id"], cidr="10.61.0.0/24")
    guest = l3.port(owned_net["id"], project="p2", admin=True, tenant_id="p2")
    assert _add(l3, r["id"], 404, port_id=guest["id"])["type"] == "PortNotFound"
    assert l3.get(f"/v2.0/ports/{guest['id']}", status=200).data["port"]["device_owner"] == ""
    # a reader reads, does not write
    reader = {"headers": {"X-Roles": "reader"}}
    assert l3.get(f"{R}/{r['id']}", status=200, **reader).data["router"]["id"] == r["id"]
    for method, path, body in (
            ("POST", R, {"router": {"name": "x"}}),
            ("PUT", f"{R}/{r['id']}", {"router": {"name": "x"}}),
            ("DELETE", f"{R}/{r['id']}", None),
            ("PUT", f"{R}/{r['id']}/remove_router_interface", {"subnet_id": sub["id"]}),
            ("PUT", f"{R}/{r['id']}/add_extraroutes", {"router": {"routes": []}})):
        e = l3.request(method, path, body, status=403, **reader).data
        assert e["NeutronError"]["type"] == "PolicyNotAuthorized"
    # an admin sees and changes everyone's
    assert len(l3.get(R, status=200, **ADMIN).data["routers"]) == 2
    l3.put(f"{R}/{r['id']}/remove_router_interface", {"port_id": info["port_id"]},
           status=200, **ADMIN)
    l3.delete(f"{R}/{theirs['id']}", status=204, **ADMIN)


# ------------------------------------------------------------------ change log
def _changes(api, after=0):
    with api.db.reader() as s:
        return [(c.resource, c.resource_id, c.op, c.network_id) for c in s.execute(
            sa.select(models.Change).where(models.Change.seq > after)
            .order_by(models.Change.seq)).scalars()]


def _last_seq(api):
    with api.db.reader() as s:
        return s.execute(sa.select(sa.func.max(models.Change.seq))).scalar() or 0


def test_router_changes_reach_the_change_log(l3):
    r = _router(l3)
    net, sub = _net_sub(l3)
    mark = _last_seq(l3)
    info = _add(l3, r["id"], subnet_id=sub["id"])
    got = _changes(l3, mark)
    assert ("port", info["port_id"], "create", net["id"]) in got
    assert ("router", r["id"], "update", net["id"]) in got
    mark = _last_seq(l3)
    l3.put(f"{R}/{r['id']}", {"router": {"routes": [
        {"destination": "10.8.0.0/24", "nexthop": "10.0.0.8"}]}}, status=200)
    # (one row per network it touches; the generic row names none)
    assert set(_changes(l3, mark)) - {("router", r["id"], "update", None)} == \
        {("router", r["id"], "update", net["id"])}
    mark = _last_seq(l3)
    l3.put(f"{R}/{r['id']}", {"router": {"routes": []}}, status=200)
    _remove(l3, r["id"], subnet_id=sub["id"])
    got = _changes(l3, mark)
    assert ("port", info["port_id"], "delete", net["id"]) in got
    assert ("router", r["id"], "update", net["id"]) in got
    mark = _last_seq(l3)
    l3.delete(f"{R}/{r['id']}", status=204)
    assert ("router", r["id"], "delete", None) in _changes(l3, mark)
    with l3.db.reader() as s:
        for table in (models.RouterPort, models.RouterRoute, models.Router):
            assert s.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


# ------------------------------------------------------------------ concurrency
def test_concurrent_overlapping_interfaces_one_wins(l3):
    """Two overlapping subnets added to one router at once: the router's
    row lock makes one wait for the other, which then sees the overlap."""
    import threading
    r = _router(l3)
    subs = [_net_sub(l3, cidr=c)[1] for c in ("10.20.0.0/24", "10.20.0.0/16")]
    answers = []

    def add(sub):
        answers.append(l3.put(f"{R}/{r['id']}/add_router_interface",
                              {"subnet_id": sub["id"]}).status_int)
    threads = [threading.Thread(target=add, args=(x,)) for x in subs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 400], answers
    assert len(l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"]) == 1


def test_an_interface_on_another_projects_subnet_needs_a_policy_naming_the_project(api):
    """Neutron (LP 1757482, 1975603): a project's router takes another
    project's subnet only when an access_as_shared policy names the
    project. A network shared with everyone (shared, or a '*' policy) or
    external is a 400: the router would take the subnet's gateway address,
    and with it everyone's traffic there. An admin may."""
    from tests.functional.test_rbac import _policy
    router = api.post("/v2.0/routers", {"router": {"name": "r2"}}, project="p2",
                      status=201).data["router"]
    add = f"/v2.0/routers/{router['id']}/add_router_interface"
    public = api.post("/v2.0/networks", {"network": {"name": "pub", "shared": True}},
                      **ADMIN, status=201).data["network"]
    ext = api.post("/v2.0/networks", {"network": {"name": "ext", "router:external": True}},
                   **ADMIN, status=201).data["network"]
    starred = api.network(project="p1")
    _policy(api, starred["id"], "*", project="admin-p", admin=True)
    for i, net in enumerate((public, ext, starred)):
        sub = api.subnet(net["id"], cidr=f"10.{60 + i}.0.0/24", **ADMIN)
        r = api.put(add, {"subnet_id": sub["id"]}, project="p2", status=400)
        assert "is not owned by project making the request" in \
            r.data["NeutronError"]["message"]
        assert not api.get(f"/v2.0/ports?device_id={router['id']}", **ADMIN,
                           status=200).data["ports"]
    # a policy naming p2: taken
    named = api.network(project="p1")
    sub = api.subnet(named["id"], cidr="10.63.0.0/24", project="p1")
    _policy(api, named["id"], "p2")
    api.put(add, {"subnet_id": sub["id"]}, project="p2", status=200)
    # an admin may add the public subnet to p2's router
    sub = api.get(f"/v2.0/subnets?network_id={public['id']}", **ADMIN,
                  status=200).data["subnets"][0]
    api.put(add, {"subnet_id": sub["id"]}, **ADMIN, status=200)


# ------------------------------------------------------------------ the gateway's subnets
def test_an_interface_may_not_overlap_the_gateway_networks_subnets(l3):
    """As Neutron's _check_for_dup_router_subnets: a router with a gateway
    is connected to every subnet of the gateway network; an interface
    subnet overlapping one (the same prefix, or a part of it holding the
    router's external address as its gateway) is a 400, by subnet or by
    port, and nothing is attached."""
    ext, ext_sub = _external(l3)
    r = _router(l3, external_gateway_info={"network_id": ext["id"]})
    gw_ip = r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    _, same = _net_sub(l3, cidr="172.24.4.0/24")
    e = _add(l3, r["id"], 400, subnet_id=same["id"])
    assert e["type"] == "BadRequest"
    assert e["message"] == (f"Bad router request: Cidr 172.24.4.0/24 of subnet {same['id']} "
                            f"overlaps with cidr 172.24.4.0/24 of subnet {ext_sub['id']}.")
    net, half = _net_sub(l3, cidr="172.24.4.0/25", gateway_ip=gw_ip)
    assert "overlaps with cidr 172.24.4.0/24" in \
        _add(l3, r["id"], 400, subnet_id=half["id"])["message"]
    port = l3.port(net["id"])
    assert "overlaps with cidr" in _add(l3, r["id"], 400, port_id=port["id"])["message"]
    assert l3.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["device_owner"] == ""
    # another subnet of the gateway network, one the gateway has no address on
    ext_sub2 = l3.subnet(ext["id"], cidr="198.51.100.0/24", **ADMIN)
    _, other = _net_sub(l3, cidr="198.51.100.128/25")
    e = _add(l3, r["id"], 400, subnet_id=other["id"])
    assert f"overlaps with cidr 198.51.100.0/24 of subnet {ext_sub2['id']}" in e["message"]
    # the subnet the gateway is on (an admin's): the router has a port on it
    e = l3.put(f"{R}/{r['id']}/add_router_interface", {"subnet_id": ext_sub["id"]},
               status=400, **ADMIN).data["NeutronError"]
    assert e["message"] == ("Bad router request: Router already has a port on subnet "
                            f"{ext_sub['id']}.")
    assert l3.get(f"/v2.0/ports?device_id={r['id']}", status=200).data["ports"] == []
    # without its gateway the router takes the same subnets
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": None}}, status=200)
    _add(l3, r["id"], subnet_id=same["id"])


def test_a_gateway_may_not_overlap_the_routers_interfaces(l3):
    """Setting (or moving) a router's gateway to a network one of whose
    subnets overlaps an interface's is a 400 (Neutron's _create_gw_port);
    the router keeps the gateway it had."""
    ext, ext_sub = _external(l3)
    r = _router(l3)
    _, sub = _net_sub(l3, cidr="172.24.4.0/24")
    _add(l3, r["id"], subnet_id=sub["id"])
    e = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=400).data["NeutronError"]
    assert e["type"] == "BadRequest"
    assert e["message"] == (f"Bad router request: Cidr 172.24.4.0/24 of subnet {ext_sub['id']} "
                            f"overlaps with cidr 172.24.4.0/24 of subnet {sub['id']}.")
    assert l3.get(f"{R}/{r['id']}", status=200).data["router"]["external_gateway_info"] is None
    assert _gateway_ports(l3, r["id"]) == []
    # a gateway elsewhere, then moved onto the overlapping network: it stays
    other = l3.post("/v2.0/networks", {"network": {"name": "public2", "router:external": True}},
                    status=201, **ADMIN).data["network"]
    l3.subnet(other["id"], cidr="203.0.113.0/24", **ADMIN)
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": other["id"]}}}, status=200)
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=400)
    got = l3.get(f"{R}/{r['id']}", status=200).data["router"]["external_gateway_info"]
    assert got["network_id"] == other["id"]
    assert [p["network_id"] for p in _gateway_ports(l3, r["id"])] == [other["id"]]
    # nor at creation for a new router (it has no interface yet): fine
    _router(l3, external_gateway_info={"network_id": ext["id"]})


def test_an_interface_ports_fixed_ips_keep_the_interface_rules(l3):
    """Updating the fixed IPs of a router's interface port: as Neutron's
    router plugin, any change of its IPv4 addresses is refused in its
    words (admins too); an IPv6 address on a subnet overlapping the
    router's is refused as add_router_interface refuses it.  Nothing
    changes."""
    ext, ext_sub = _external(l3)
    r = _router(l3, external_gateway_info={"network_id": ext["id"]})
    net, sub = _net_sub(l3, cidr="10.1.0.0/24")
    info = _add(l3, r["id"], subnet_id=sub["id"])
    pid = info["port_id"]
    before = l3.get(f"/v2.0/ports/{pid}", status=200).data["port"]["fixed_ips"]
    over_gw = l3.subnet(net["id"], cidr="172.24.4.0/24")
    second = l3.subnet(net["id"], cidr="10.2.0.0/24")
    v4 = before[0]
    for ips, who in ((before + [{"subnet_id": over_gw["id"]}], {}),
                     (before + [{"subnet_id": over_gw["id"]}], ADMIN),
                     (before + [{"subnet_id": second["id"]}], {}),
                     (before + [{"subnet_id": sub["id"], "ip_address": "10.1.0.9"}], {}),
                     # any change of its IPv4 address, as Neutron
                     ([{"subnet_id": sub["id"], "ip_address": "10.1.0.9"}], {}),
                     ([{"subnet_id": sub["id"], "ip_address": "10.1.0.9"}], ADMIN),
                     ([], {}),
                     ([{"subnet_id": second["id"]}], {})):
        e = l3.put(f"/v2.0/ports/{pid}", {"port": {"fixed_ips": ips}},
                   status=400, **who).data["NeutronError"]
        assert e == {"type": "BadRequest", "detail": "",
                     "message": f"Bad ports request: IP updates for port {pid} are not "
                                "allowed."}, e
    # IPv6: another interface's subnet, or one overlapping it
    net6, v6 = _net_sub(l3, cidr="2001:db8:1::/64")
    _add(l3, r["id"], subnet_id=v6["id"])
    v6_over = l3.subnet(net["id"], cidr="2001:db8:1::/48")
    e = l3.put(f"/v2.0/ports/{pid}", {"port": {"fixed_ips": before + [
        {"subnet_id": v6_over["id"]}]}}, status=400).data["NeutronError"]
    assert e["type"] == "BadRequest" and e["message"] == (
        f"Bad router request: Cidr 2001:db8:1::/48 of subnet {v6_over['id']} overlaps with "
        f"cidr 2001:db8:1::/64 of subnet {v6['id']}.")
    assert l3.get(f"/v2.0/ports/{pid}", status=200).data["port"]["fixed_ips"] == before
    # an IPv6 subnet of its own (Neutron lets it be) is taken
    v6_own = l3.subnet(net["id"], cidr="2001:db8:2::/64")
    got = l3.put(f"/v2.0/ports/{pid}", {"port": {"fixed_ips": before + [
        {"subnet_id": v6_own["id"]}]}}, status=200).data["port"]["fixed_ips"]
    assert [x["subnet_id"] for x in got] == [sub["id"], v6_own["id"]]
    # the same IPv4 address given again is no change, nor its subnet alone
    # (Tempest's test_router_interface_port_update_with_fixed_ip)
    l3.put(f"/v2.0/ports/{pid}", {"port": {"fixed_ips": [v4, got[1]]}}, status=200)
    same = l3.put(f"/v2.0/ports/{pid}", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}},
                  status=200).data["port"]["fixed_ips"]
    assert same == [v4]


# ------------------------------------------------------------------ new external subnets
def test_a_new_external_subnet_addresses_the_gateways_as_neutron(l3):
    """Neutron's update_router_gw_ports: a subnet added to an external
    network gives the routers' gateway ports there an address on it, an
    IPv6 one (SLAAC: its EUI-64 address; stateful: from its pools) unless
    the gateway has a stateful IPv6 address already, an IPv4 one only when
    its service types name gateways and the gateway has none; the router
    shows it and its change reaches the change log."""
    from quantum_ovs.db.addresses import eui64
    ext, v4 = _external(l3)
    r = _router(l3, external_gateway_info={"network_id": ext["id"]})
    [gw] = _gateway_ports(l3, r["id"])
    mark = _last_seq(l3)
    slaac = l3.subnet(ext["id"], cidr="2001:db8:70::/64", ipv6_ra_mode="slaac",
                      ipv6_address_mode="slaac", **ADMIN)
    want = [{"subnet_id": v4["id"], "ip_address": "172.24.4.2"},
            {"subnet_id": slaac["id"], "ip_address": eui64("2001:db8:70::/64",
                                                            gw["mac_address"])}]
    shown = l3.get(f"{R}/{r['id']}", status=200).data["router"]
    assert shown["external_gateway_info"]["external_fixed_ips"] == want
    got = _changes(l3, mark)
    assert ("port", gw["id"], "update", ext["id"]) in got
    assert ("router", r["id"], "update", ext["id"]) in got
    stateful = l3.subnet(ext["id"], cidr="2001:db8:71::/64", ipv6_ra_mode="dhcpv6-stateful",
                         ipv6_address_mode="dhcpv6-stateful", **ADMIN)
    [_, _, (sid, ip)] = [(x["subnet_id"], x["ip_address"]) for x in l3.get(
        f"{R}/{r['id']}", status=200).data["router"]["external_gateway_info"][
        "external_fixed_ips"]]
    assert sid == stateful["id"] and ip.startswith("2001:db8:71::")
    # a second stateful IPv6 subnet: the gateway has one of that version
    l3.subnet(ext["id"], cidr="2001:db8:72::/64", ipv6_ra_mode="dhcpv6-stateful",
              ipv6_address_mode="dhcpv6-stateful", **ADMIN)
    # an IPv4 subnet, for gateways or not: the gateway has an IPv4 address
    l3.subnet(ext["id"], cidr="172.24.5.0/24", **ADMIN)
    l3.subnet(ext["id"], cidr="172.24.6.0/24", service_types=["network:router_gateway"],
              **ADMIN)
    assert len(l3.get(f"{R}/{r['id']}", status=200).data["router"]["external_gateway_info"][
        "external_fixed_ips"]) == 3
    # A gateway on an external network without subnets has no address; an
    # IPv4 subnet gives it one only if its service types name gateways.
    bare = l3.post("/v2.0/networks", {"network": {"name": "bare", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    r2 = _router(l3, external_gateway_info={"network_id": bare["id"]})
    assert r2["external_gateway_info"]["external_fixed_ips"] == []
    l3.subnet(bare["id"], cidr="172.25.0.0/24", **ADMIN)
    assert l3.get(f"{R}/{r2['id']}", status=200).data["router"]["external_gateway_info"][
        "external_fixed_ips"] == []
    for_gw = l3.subnet(bare["id"], cidr="172.25.1.0/24",
                       service_types=["network:router_gateway"], **ADMIN)
    [(sid, ip)] = [(x["subnet_id"], x["ip_address"]) for x in l3.get(
        f"{R}/{r2['id']}", status=200).data["router"]["external_gateway_info"][
        "external_fixed_ips"]]
    assert sid == for_gw["id"] and ip.startswith("172.25.1.")
    # an internal network's new subnet leaves gateways alone (and the
    # router's interface keeps its one address)
    net, sub = _net_sub(l3)
    info = _add(l3, r["id"], subnet_id=sub["id"])
    l3.subnet(net["id"], cidr="2001:db8:73::/64", ipv6_ra_mode="slaac",
              ipv6_address_mode="slaac", project="p1")
    assert [x["subnet_id"] for x in l3.get(f"/v2.0/ports/{info['port_id']}", status=200)
            .data["port"]["fixed_ips"]] == [sub["id"]]
    # an auto-address subnet can go while the gateway has an address on it
    # (the address goes with it, as Neutron)
    l3.delete(f"/v2.0/subnets/{slaac['id']}", status=204, **ADMIN)
    assert [x["subnet_id"] for x in l3.get(f"{R}/{r['id']}", status=200).data["router"][
        "external_gateway_info"]["external_fixed_ips"]] == [v4["id"], stateful["id"]]
