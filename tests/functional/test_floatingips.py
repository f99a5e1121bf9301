"""Floating IPs (and fip-port-details, floatingip-pools, port forwardings,
ext-gw-mode, the listings of l3_agent_scheduler): every attribute, action and error, on
SQLite and PostgreSQL, with ``service_plugins = router`` as in Neutron.
Bad input is a 4xx NeutronError and leaves no row behind."""

import datetime

import pytest
import sqlalchemy as sa

from quantum_ovs.db import models
from tests.functional.test_agent_api import register

F = "/v2.0/floatingips"
R = "/v2.0/routers"
ADMIN = dict(project="admin-p", admin=True)


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _external(api, cidr="172.24.4.0/24", **attrs):
    net = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, **ADMIN).data["network"]
    sub = api.subnet(net["id"], cidr=cidr, **ADMIN, **attrs)
    return net, sub


def _topology(api, project="p1", cidr="10.0.0.0/24", ext=None):
    """An external network, a router with a gateway on it and an interface
    on a project subnet, and a port there: (ext net, ext subnet, router,
    net, subnet, port)."""
    ext_net, ext_sub = ext or _external(api)
    net = api.network(project=project)
    sub = api.subnet(net["id"], cidr=cidr, project=project)
    router = api.post(R, {"router": {"name": "r", "external_gateway_info": {
        "network_id": ext_net["id"]}}}, project=project, status=201).data["router"]
    api.put(f"{R}/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
            project=project, status=200)
    port = api.port(net["id"], project=project)
    return ext_net, ext_sub, router, net, sub, port


def _fip(api, status=201, project="p1", admin=False, **attrs):
    r = api.post(F, {"floatingip": attrs}, project=project, admin=admin, status=status)
    return r.data["floatingip"] if status == 201 else r.data["NeutronError"]


def _put(api, fid, status=200, project="p1", admin=False, **attrs):
    r = api.put(f"{F}/{fid}", {"floatingip": attrs}, project=project, admin=admin,
                status=status)
    return r.data["floatingip"] if status == 200 else r.data["NeutronError"]


def _count(api, model):
    with api.db.reader() as s:
        return s.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def _aliases(api):
    return {e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}


# ------------------------------------------------------------------ enabling
def test_aliases_and_quota_come_with_the_router_service_plugin(make_api):
    off = make_api(service_plugins=[])
    off.get(F, status=404)
    assert not _aliases(off) & {"fip-port-details", "floatingip-pools", "ext-gw-mode"}
    on = make_api(service_plugins=["router"])
    assert {"ext-gw-mode", "fip-port-details", "floatingip-pools",
            "floating-ip-port-forwarding", "floating-ip-port-forwarding-description",
            "floating-ip-port-forwarding-port-ranges", "expose-port-forwarding-in-fip"} \
        <= _aliases(on)
    # its listings are served, its manual scheduling is not: not advertised
    assert "l3_agent_scheduler" not in _aliases(on)
    assert on.get("/v2.0/quotas/p1", status=200).data["quota"]["floatingip"] == 50


# ------------------------------------------------------------------ create
def test_create_allocates_an_address_and_shows_neutrons_attributes(l3):
    ext_net, ext_sub, *_ = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], description="mine")
    assert set(f) == {"id", "project_id", "tenant_id", "description", "floating_ip_address",
                      "floating_network_id", "router_id", "port_id", "fixed_ip_address",
                      "status", "port_details", "port_forwardings", "revision_number",
                      "created_at", "updated_at", "tags", "dns_name", "dns_domain"}
    assert f["floating_ip_address"].startswith("172.24.4.")
    assert (f["router_id"], f["port_id"], f["fixed_ip_address"], f["port_details"]) == \
        (None, None, None, None)
    assert (f["status"], f["project_id"], f["description"]) == ("DOWN", "p1", "mine")
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"] == f
    # The address is held by a port of the external network, no project's.
    holder = l3.get(f"/v2.0/ports?device_id={f['id']}", **ADMIN, status=200).data["ports"]
    assert [(p["device_owner"], p["network_id"], p["fixed_ips"][0]["ip_address"])
            for p in holder] == [("network:floatingip", ext_net["id"],
                                  f["floating_ip_address"])]
    # ... which the ports API cannot delete.
    err = l3.delete(f"/v2.0/ports/{holder[0]['id']}", **ADMIN, status=409).data
    assert err["NeutronError"]["type"] == "L3PortInUse"
    l3.delete(f"{F}/{f['id']}", status=204)
    l3.get(f"{F}/{f['id']}", status=404)
    assert l3.get(f"/v2.0/ports?device_id={f['id']}", **ADMIN, status=200).data["ports"] == []


def test_a_chosen_address_is_admin_only_and_must_be_free(l3):
    ext_net, ext_sub, *_ = _topology(l3)
    err = _fip(l3, 403, floating_network_id=ext_net["id"], floating_ip_address="172.24.4.77")
    assert err["type"] == "PolicyNotAuthorized"
    f = _fip(l3, floating_network_id=ext_net["id"], floating_ip_address="172.24.4.77",
             project="p1", admin=True)
    assert f["floating_ip_address"] == "172.24.4.77"
    before = _count(l3, models.Port)
    err = _fip(l3, 409, floating_network_id=ext_net["id"],
               floating_ip_address="172.24.4.77", **ADMIN)
    assert err["type"] == "IpAddressAlreadyAllocated"
    err = _fip(l3, 400, floating_network_id=ext_net["id"],
               floating_ip_address="10.9.9.9", **ADMIN)
    assert err["type"] == "InvalidIpForNetwork"
    assert _count(l3, models.Port) == before  # no partial row
    f2 = _fip(l3, floating_network_id=ext_net["id"], subnet_id=ext_sub["id"])
    assert f2["floating_ip_address"].startswith("172.24.4.")


@pytest.mark.parametrize("body, status, kind", [
    ({}, 400, "HTTPBadRequest"),
    ({"floating_network_id": "nope"}, 400, "InvalidInput"),
    ({"floating_network_id": "8a3f3f3f-0000-4000-8000-000000000000"}, 404,
     "NetworkNotFound"),
    ({"floating_network_id": "EXT", "port_id": 7}, 400, "InvalidInput"),
    ({"floating_network_id": "EXT", "fixed_ip_address": "10.0.0.5"}, 400, "BadRequest"),
    ({"floating_network_id": "EXT", "fixed_ip_address": "nope", "port_id": "PORT"}, 400,
     "InvalidInput"),
    ({"floating_network_id": "EXT", "subnet_id": "8a3f3f3f-0000-4000-8000-000000000000"},
     400, "BadRequest"),
    ({"floating_network_id": "EXT", "router_id": "8a3f3f3f-0000-4000-8000-000000000000"},
     400, "HTTPBadRequest"),
    ({"floating_network_id": "INTERNAL"}, 400, "BadRequest"),
    ({"floating_network_id": "EXT", "port_id": "8a3f3f3f-0000-4000-8000-000000000000"},
     404, "PortNotFound"),
    ({"floating_network_id": "EXT", "port_id": "PORT", "fixed_ip_address": "10.0.0.250"},
     400, "BadRequest"),
])
def test_bad_creates_are_4xx_and_leave_nothing(l3, body, status, kind):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    names = {"EXT": ext_net["id"], "INTERNAL": net["id"], "PORT": port["id"]}
    body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = (_count(l3, models.FloatingIP), _count(l3, models.Port),
              _count(l3, models.IPAllocation))
    err = _fip(l3, status, **body)
    assert err["type"] == kind, err
    assert (_count(l3, models.FloatingIP), _count(l3, models.Port),
            _count(l3, models.IPAllocation)) == before


# ------------------------------------------------------------------ associate
def test_associate_disassociate_move_delete(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    port2 = l3.port(net["id"])
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    assert (f["port_id"], f["fixed_ip_address"], f["router_id"]) == \
        (port["id"], port["fixed_ips"][0]["ip_address"], router["id"])
    assert f["port_details"] == {
        "name": port["name"], "network_id": net["id"], "mac_address": port["mac_address"],
        "admin_state_up": True, "status": "DOWN", "device_id": "", "device_owner": ""}
    assert f["status"] == "DOWN"
    assert [x["id"] for x in l3.get(f"{F}?port_id={port['id']}", status=200)
            .data["floatingips"]] == [f["id"]]
    # Another floating IP for the same fixed IP: 409.
    err = _fip(l3, 409, floating_network_id=ext_net["id"], port_id=port["id"])
    assert err["type"] == "FloatingIPPortAlreadyAssociated"
    g = _fip(l3, floating_network_id=ext_net["id"])
    err = _put(l3, g["id"], 409, port_id=port["id"])
    assert err["type"] == "FloatingIPPortAlreadyAssociated"
    # Move.
    moved = _put(l3, f["id"], port_id=port2["id"])
    assert (moved["port_id"], moved["fixed_ip_address"]) == \
        (port2["id"], port2["fixed_ips"][0]["ip_address"])
    assert moved["revision_number"] > f["revision_number"]
    # Disassociate.
    off = _put(l3, f["id"], port_id=None)
    assert (off["port_id"], off["fixed_ip_address"], off["router_id"], off["port_details"]) \
        == (None, None, None, None)
    assert _put(l3, f["id"], description="d")["description"] == "d"
    l3.delete(f"{F}/{f['id']}", status=204)


def test_a_blank_update_clears_the_association_and_a_description_keeps_it(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    kept = _put(l3, f["id"], description="d2")
    assert (kept["port_id"], kept["description"]) == (port["id"], "d2")
    off = _put(l3, f["id"])
    assert (off["port_id"], off["fixed_ip_address"], off["router_id"], off["port_details"],
            off["description"]) == (None, None, None, None, "d2")
    # The fixed IP is free again for another floating IP.
    _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])


def test_association_errors(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    # A subnet no router links to the external network.
    lone = l3.network()
    lone_sub = l3.subnet(lone["id"], cidr="10.5.0.0/24")
    p = l3.port(lone["id"])
    err = _put(l3, f["id"], 404, port_id=p["id"])
    assert err["type"] == "ExternalGatewayForFloatingIPNotFound"
    assert lone_sub["id"] in err["message"]
    # A port with two IPv4 addresses needs fixed_ip_address.
    sub2 = l3.subnet(net["id"], cidr="10.0.1.0/24")
    two = l3.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]}, {"subnet_id": sub2["id"]}])
    err = _put(l3, f["id"], 400, port_id=two["id"])
    assert err["type"] == "BadRequest" and "multiple fixed IPv4" in err["message"]
    ok = _put(l3, f["id"], port_id=two["id"],
              fixed_ip_address=two["fixed_ips"][0]["ip_address"])
    assert ok["router_id"] == router["id"]
    # The second address's subnet is not on the router.
    err = _put(l3, f["id"], 404, port_id=two["id"],
               fixed_ip_address=two["fixed_ips"][1]["ip_address"])
    assert err["type"] == "ExternalGatewayForFloatingIPNotFound"
    # An address the port does not have.
    err = _put(l3, f["id"], 400, port_id=two["id"], fixed_ip_address="10.0.0.254")
    assert err["type"] == "BadRequest"
    # A port with IPv6 only.
    v6net = l3.network()
    l3.subnet(v6net["id"], cidr="2001:db8::/64")
    err = _put(l3, f["id"], 400, port_id=l3.port(v6net["id"])["id"])
    assert "no fixed IPv4" in err["message"]
    # A port on the external network itself.
    extport = l3.port(ext_net["id"], **ADMIN)
    err = _fip(l3, 400, floating_network_id=ext_net["id"], port_id=extport["id"], **ADMIN)
    assert err["type"] == "BadRequest"
    # Another project's port: invisible (404); as admin: refused (400).
    other = l3.port(l3.network(project="p2")["id"], project="p2")
    assert _put(l3, f["id"], 404, port_id=other["id"])["type"] == "PortNotFound"
    assert _put(l3, f["id"], 400, port_id=other["id"], **ADMIN)["type"] == "BadRequest"
    # Nothing changed by the failures.
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert (now["port_id"], now["fixed_ip_address"]) == \
        (two["id"], two["fixed_ips"][0]["ip_address"])


def test_deleting_the_port_disassociates(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    l3.delete(f"/v2.0/ports/{port['id']}", status=204)
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert (now["port_id"], now["fixed_ip_address"], now["router_id"]) == (None, None, None)


def test_router_interface_and_gateway_in_use_by_floating_ips(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    err = l3.put(f"{R}/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]},
                 status=409).data["NeutronError"]
    assert err["type"] == "RouterInterfaceInUseByFloatingIP"
    err = l3.put(f"{R}/{router['id']}", {"router": {"external_gateway_info": None}},
                 status=409).data["NeutronError"]
    assert err["type"] == "RouterExternalGatewayInUseByFloatingIp"
    other_ext, _ = _external(l3, cidr="198.51.100.0/24")
    err = l3.put(f"{R}/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": other_ext["id"]}}}, status=409).data["NeutronError"]
    assert err["type"] == "RouterExternalGatewayInUseByFloatingIp"
    r = l3.get(f"{R}/{router['id']}", status=200).data["router"]
    assert r["external_gateway_info"]["network_id"] == ext_net["id"]
    _put(l3, f["id"], port_id=None)
    l3.put(f"{R}/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]},
           status=200)
    l3.put(f"{R}/{router['id']}", {"router": {"external_gateway_info": None}}, status=200)


def test_visibility_and_policy(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    l3.get(f"{F}/{f['id']}", project="p2", status=404)
    assert l3.get(F, project="p2", status=200).data["floatingips"] == []
    l3.put(f"{F}/{f['id']}", {"floatingip": {"description": "x"}}, project="p2",
           status=404)
    l3.delete(f"{F}/{f['id']}", project="p2", status=404)
    assert [x["id"] for x in l3.get(F, **ADMIN, status=200).data["floatingips"]] == [f["id"]]
    reader = {"X-Roles": "reader"}
    l3.get(f"{F}/{f['id']}", headers=reader, status=200)
    l3.delete(f"{F}/{f['id']}", headers=reader, status=403)


def test_quota(l3):
    ext_net, *_ = _topology(l3)
    l3.put("/v2.0/quotas/p1", {"quota": {"floatingip": 1}}, **ADMIN, status=200)
    _fip(l3, floating_network_id=ext_net["id"])
    err = _fip(l3, 409, floating_network_id=ext_net["id"])
    assert err["type"] == "OverQuota"
    assert _count(l3, models.FloatingIP) == 1


def test_tags_and_filters(l3):
    ext_net, *_ = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    l3.put(f"{F}/{f['id']}/tags/red", status=201)
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["tags"] == ["red"]
    assert [x["id"] for x in l3.get(f"{F}?tags=red", status=200).data["floatingips"]] == \
        [f["id"]]
    got = l3.get(f"{F}?floating_ip_address={f['floating_ip_address']}", status=200)
    assert [x["id"] for x in got.data["floatingips"]] == [f["id"]]
    assert l3.get(f"{F}?status=ACTIVE", status=200).data["floatingips"] == []


# ------------------------------------------------------------------ pools
def test_floatingip_pools_list_the_external_ipv4_subnets(l3):
    """A pool is an external network's IPv4 subnet, in the caller's project
    (Neutron's _make_floatingip_pool_dict: context.project_id), not its
    owner's: a project a network is external to does not learn who owns
    it."""
    ext_net, ext_sub = _external(l3)
    l3.subnet(ext_net["id"], cidr="2001:db8:9::/64", **ADMIN)
    internal = l3.network()
    l3.subnet(internal["id"], cidr="10.0.0.0/24")
    pools = l3.get("/v2.0/floatingip-pools", status=200).data["floatingip_pools"]
    assert pools == [{"subnet_id": ext_sub["id"], "subnet_name": ext_sub["name"],
                      "network_id": ext_net["id"], "cidr": "172.24.4.0/24",
                      "project_id": "p1", "tenant_id": "p1"}]
    # Neutron's path has a hyphen; the underscore one stays an alias.
    assert l3.get("/v2.0/floatingip_pools", status=200).data["floatingip_pools"] == pools
    # One external to the caller through an RBAC policy of its owner's.
    net = l3.network(project="p2")
    sub = l3.subnet(net["id"], cidr="10.88.0.0/24", project="p2")
    l3.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_external",
        "target_tenant": "p3"}}, project="p2", status=201)
    pools = l3.get("/v2.0/floatingip-pools", project="p3", status=200).data[
        "floatingip_pools"]
    assert {p["subnet_id"] for p in pools} == {ext_sub["id"], sub["id"]}
    assert {(p["project_id"], p["tenant_id"]) for p in pools} == {("p3", "p3")}
    assert {p["project_id"] for p in l3.get("/v2.0/floatingip-pools", **ADMIN, status=200)
            .data["floatingip_pools"]} == {"admin-p"}
    # ... and to no one else: another project learns nothing of it (not
    # even its CIDR); an admin sees it (Neutron lists every external
    # network to everyone, found by review).
    for project, seen in (("p1", False), ("p4", False), ("p3", True)):
        got = l3.get("/v2.0/floatingip-pools", project=project, status=200)
        assert (sub["id"] in got.text, net["id"] in got.text, "10.88.0." in got.text) == \
            (seen,) * 3, project
    assert sub["id"] in l3.get("/v2.0/floatingip-pools", **ADMIN, status=200).text


# ------------------------------------------------------------------ ext-gw-mode
def test_enable_snat_default_from_config_and_admin_only(make_api):
    api = make_api(service_plugins=["router"], enable_snat_by_default=False)
    ext_net, _ = _external(api)
    r = api.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                 status=201).data["router"]
    gw = r["external_gateway_info"]
    assert gw["enable_snat"] is False and gw["external_fixed_ips"][0]["ip_address"]
    err = api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext_net["id"], "enable_snat": True}}}, status=403).data
    assert err["NeutronError"]["type"] == "PolicyNotAuthorized"
    r = api.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext_net["id"], "enable_snat": True}}}, project="p1", admin=True,
        status=200).data["router"]
    assert r["external_gateway_info"]["enable_snat"] is True


def test_redirect_keys_never_collide_with_networks_and_are_freed(make_api):
    api = make_api(service_plugins=["router"])
    api.set_ranges = None
    ext_net, _ = _external(api)
    routers = [api.post(R, {"router": {"external_gateway_info": {
        "network_id": ext_net["id"]}}}, status=201).data["router"] for _ in range(3)]
    nets = [api.network() for _ in range(3)]
    with api.db.reader() as s:
        keys = [s.get(models.Router, r["id"]).redirect_key for r in routers]
        segs = [s.get(models.NetworkSegment, n["id"]).segmentation_id for n in nets]
    assert all(keys) and len(set(keys)) == 3 and not set(keys) & set(segs)
    api.put(f"{R}/{routers[0]['id']}", {"router": {"external_gateway_info": None}},
            status=200)
    api.delete(f"{R}/{routers[1]['id']}", status=204)
    with api.db.reader() as s:
        held = set(s.execute(sa.select(models.SegmentAllocation.segmentation_id)).scalars())
        assert s.get(models.Router, routers[0]["id"]).redirect_key is None
    assert keys[0] not in held and keys[1] not in held and keys[2] in held


# ------------------------------------------------------------------ gateway hosts
def test_gateway_hosts_are_assigned_spread_and_shown_to_admins(l3):
    register(l3, "gw-1", "192.0.2.11", gateway=True)
    register(l3, "gw-2", "192.0.2.12", gateway=True)
    register(l3, "hv-1", "192.0.2.21")
    ext_net, _ = _external(l3)
    rs = [l3.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                  status=201).data["router"] for _ in range(4)]
    firsts = []
    for r in rs:
        agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
        assert sorted(a["host"] for a in agents) == ["gw-1", "gw-2"]
        assert [a["ha_state"] for a in agents] == ["active", "standby"]
        firsts.append(agents[0]["host"])
    assert sorted(firsts) == ["gw-1", "gw-1", "gw-2", "gw-2"]
    l3.get(f"{R}/{rs[0]['id']}/l3-agents", status=403)
    gw1 = next(a for a in l3.get("/v2.0/agents?host=gw-1", **ADMIN, status=200)
               .data["agents"])
    hosted = l3.get(f"/v2.0/agents/{gw1['id']}/l3-routers", **ADMIN, status=200)
    assert sorted(x["id"] for x in hosted.data["routers"]) == sorted(r["id"] for r in rs)
    # A router without a gateway has none; a gateway host that registers
    # later joins every gateway, last.
    bare = l3.post(R, {"router": {}}, status=201).data["router"]
    assert l3.get(f"{R}/{bare['id']}/l3-agents", **ADMIN, status=200).data["agents"] == []
    register(l3, "gw-3", "192.0.2.13", gateway=True)
    for r, first in zip(rs, firsts):
        agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
        assert agents[0]["host"] == first and agents[-1]["host"] == "gw-3"
    l3.put(f"{R}/{rs[0]['id']}", {"router": {"external_gateway_info": None}}, status=200)
    assert l3.get(f"{R}/{rs[0]['id']}/l3-agents", **ADMIN, status=200).data["agents"] == []


def test_a_router_made_before_any_gateway_host_gets_the_first_one(l3):
    ext_net, _ = _external(l3)
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                status=201).data["router"]
    assert l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"] == []
    register(l3, "gw-1", "192.0.2.11", gateway=True)
    agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
    assert [(a["host"], a["ha_state"]) for a in agents] == [("gw-1", "active")]


# ------------------------------------------------------------------ status
def test_status_is_active_once_the_ports_host_reports_it(l3):
    register(l3, "hv-1", "192.0.2.21")
    register(l3, "hv-2", "192.0.2.22")
    ext_net, ext_sub, router, net, sub, _ = _topology(l3)
    port = l3.port(net["id"], **{"binding:host_id": "hv-1"}, project="p1", admin=True)
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    assert f["status"] == "DOWN"

    def report(host, ids):
        return l3.post(f"/agent-api/v1/hosts/{host}/ports", {"floatingips": ids},
                       status=200).data

    report("hv-2", [f["id"]])  # not the port's host: no effect
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["status"] == "DOWN"
    report("hv-1", [f["id"]])
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["status"] == "ACTIVE"
    # The port moves: DOWN until the new host reports.
    l3.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "hv-2"}}, **ADMIN,
           status=200)
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["status"] == "DOWN"
    report("hv-2", [f["id"]])
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["status"] == "ACTIVE"
    assert _put(l3, f["id"], port_id=None)["status"] == "DOWN"
    l3.post("/agent-api/v1/hosts/hv-1/ports", {"floatingips": "x"}, status=400)


def test_an_unbound_vips_floating_ip_is_active_once_the_active_gateway_host_reports_it(l3):
    """A floating IP of a port bound to no host (an Octavia VIP) is served
    by the router's active gateway host: its report, and no other, makes
    it ACTIVE; bound, it waits for the port's host, as any other."""
    register(l3, "hv-1", "192.0.2.21")
    ext_net, ext_sub, router, net, sub, vip = _topology(l3)
    register(l3, "gw-1", "192.0.2.11", gateway=True)
    register(l3, "gw-2", "192.0.2.12", gateway=True)
    agents = l3.get(f"{R}/{router['id']}/l3-agents", **ADMIN, status=200).data["agents"]
    active = next(a["host"] for a in agents if a["ha_state"] == "active")
    standby = next(a["host"] for a in agents if a["ha_state"] != "active")
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=vip["id"])

    def report(host):
        l3.post(f"/agent-api/v1/hosts/{host}/ports", {"floatingips": [f["id"]]}, status=200)
        return l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["status"]

    assert report("hv-1") == "DOWN"
    assert report(standby) == "DOWN"
    assert report(active) == "ACTIVE"
    # the active gateway host's view holds the VIP port, bound nowhere, and the floating IP
    view = l3.get(f"/agent-api/v1/hosts/{active}/state?since=-1&timeout=0",
                  status=200).data["view"]
    assert [p["host"] for p in view["ports"] if p["id"] == vip["id"]] == [None]
    (r,) = [r for r in view["routers"] if r["id"] == router["id"]]
    assert [x["port_id"] for x in r["floating_ips"]] == [vip["id"]]
    l3.put(f"/v2.0/ports/{vip['id']}", {"port": {"binding:host_id": "hv-1"}}, **ADMIN,
           status=200)
    assert report(active) == "DOWN"
    assert report("hv-1") == "ACTIVE"


# ------------------------------------------------------------------ port forwardings
def _pf(api, fid, status=201, project="p1", **attrs):
    r = api.post(f"{F}/{fid}/port_forwardings", {"port_forwarding": attrs}, project=project,
                 status=status)
    return r.data["port_forwarding"] if status == 201 else r.data["NeutronError"]


def test_port_forwardings_crud_and_shown_in_the_floating_ip(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    pf = _pf(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
             internal_ip_address=ip, internal_port=22, external_port=2222,
             description="ssh")
    assert pf == {"id": pf["id"], "protocol": "tcp", "internal_port_id": port["id"],
                  "internal_ip_address": ip, "internal_port": 22, "external_port": 2222,
                  "internal_port_range": "22:22", "external_port_range": "2222:2222",
                  "description": "ssh"}
    rng = _pf(l3, f["id"], protocol="udp", internal_port_id=port["id"],
              internal_ip_address=ip, internal_port_range="1000:1009",
              external_port_range="5000:5009")
    assert (rng["external_port"], rng["external_port_range"]) == (None, "5000:5009")
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert now["router_id"] == router["id"] and now["port_id"] is None
    assert sorted((x["protocol"], x.get("external_port"), x.get("external_port_range"))
                  for x in now["port_forwardings"]) == [("tcp", 2222, None),
                                                        ("udp", None, "5000:5009")]
    listed = l3.get(f"{F}/{f['id']}/port_forwardings", status=200).data["port_forwardings"]
    assert sorted(x["id"] for x in listed) == sorted([pf["id"], rng["id"]])
    assert [x["id"] for x in l3.get(f"{F}/{f['id']}/port_forwardings?protocol=udp",
                                    status=200).data["port_forwardings"]] == [rng["id"]]
    got = l3.get(f"{F}/{f['id']}/port_forwardings/{pf['id']}", status=200)
    assert got.data["port_forwarding"] == pf
    up = l3.put(f"{F}/{f['id']}/port_forwardings/{pf['id']}", {"port_forwarding": {
        "external_port": 2200, "internal_port": 2200, "description": "x"}}, status=200)
    assert (up.data["port_forwarding"]["external_port"],
            up.data["port_forwarding"]["description"]) == (2200, "x")
    # A floating IP with forwardings cannot be associated, and the other way round.
    err = _put(l3, f["id"], 409, port_id=port["id"])
    assert err["type"] == "FipInUseByPortForwarding"
    g = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    err = _pf(l3, g["id"], 409, protocol="tcp", internal_port_id=port["id"],
              internal_ip_address=ip, internal_port=80, external_port=80)
    assert err["type"] == "PortHasBindingFloatingIP"
    # The interface the forwardings need cannot go.
    err = l3.put(f"{R}/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]},
                 status=409).data["NeutronError"]
    assert err["type"] == "RouterInterfaceInUseByFloatingIP"
    l3.delete(f"{F}/{f['id']}/port_forwardings/{pf['id']}", status=204)
    l3.get(f"{F}/{f['id']}/port_forwardings/{pf['id']}", status=404)
    l3.delete(f"{F}/{f['id']}/port_forwardings/{rng['id']}", status=204)
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["router_id"] is None
    # A floating IP with forwardings cannot be deleted (Neutron: 409).
    l3.delete(f"{F}/{g['id']}", status=204)
    last = _pf(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
               internal_ip_address=ip, internal_port=22, external_port=22)
    err = l3.delete(f"{F}/{f['id']}", status=409).data["NeutronError"]
    assert err["type"] == "FipInUseByPortForwarding"
    assert _count(l3, models.PortForwarding) == 1
    l3.delete(f"{F}/{f['id']}/port_forwardings/{last['id']}", status=204)
    l3.delete(f"{F}/{f['id']}", status=204)
    assert _count(l3, models.PortForwarding) == 0


def test_a_fixed_ip_with_a_floating_ip_of_its_own_takes_no_forwarding(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    own = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    f = _fip(l3, floating_network_id=ext_net["id"])
    err = _pf(l3, f["id"], 409, protocol="tcp", internal_port_id=port["id"],
              internal_ip_address=ip, internal_port=22, external_port=2222)
    assert err["type"] == "PortHasBindingFloatingIP" and own["id"] in err["message"]
    assert _count(l3, models.PortForwarding) == 0


def test_moved_port_ranges_are_bounded_per_floating_ip(l3):
    """A range sent to other internal ports costs a flow per port on the
    shared gateway host (found by review: 1:32767 -> 32768:65534 was
    32,767 flows): at most max_port_forwarding_shifted_ports (256) per
    floating IP; a range kept to its own ports (at most 30 flows) and a
    single port have no such limit."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    base = dict(internal_port_id=port["id"], internal_ip_address=ip)
    _pf(l3, f["id"], protocol="tcp", internal_port_range="1:65535",
        external_port_range="1:65535", **base)
    _pf(l3, f["id"], protocol="udp", internal_port_range="1000:1199",
        external_port_range="2000:2199", **base)
    r = l3.post(f"{F}/{f['id']}/port_forwardings", {"port_forwarding": dict(
        protocol="udp", internal_port_range="3000:3056", external_port_range="4000:4056",
        **base)}, status=400).data["NeutronError"]
    assert r["type"] == "BadRequest" and "257 external ports" in r["message"], r
    moved = _pf(l3, f["id"], protocol="udp", internal_port_range="3000:3055",
                external_port_range="4000:4055", **base)
    _pf(l3, f["id"], protocol="udp", internal_port=53, external_port=5353, **base)
    assert _count(l3, models.PortForwarding) == 4
    # an update that would move one more port is refused too
    url = f"{F}/{f['id']}/port_forwardings/{moved['id']}"
    l3.put(url, {"port_forwarding": {
        "internal_port_range": "3000:3056", "external_port_range": "4000:4056"}},
        status=400)
    # over a lowered cap, what it has is kept and may be shed, not grown
    # (found by review: every write was refused)
    l3.plugin.conf.set_override("max_port_forwarding_shifted_ports", 100)
    l3.put(url, {"port_forwarding": {"description": "d"}}, status=200)
    _pf(l3, f["id"], protocol="udp", internal_port=54, external_port=6000, **base)
    l3.put(url, {"port_forwarding": {"internal_port_range": "3000:3049",
                                     "external_port_range": "4000:4049"}}, status=200)
    _pf(l3, f["id"], status=400, protocol="udp", internal_port_range="100:101",
        external_port_range="200:201", **base)


def test_port_forwarding_errors_are_4xx_and_leave_nothing(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    base = dict(protocol="tcp", internal_port_id=port["id"], internal_ip_address=ip)
    _pf(l3, f["id"], internal_port=22, external_port=2222, **base)
    _pf(l3, f["id"], internal_port_range="3000:3010", external_port_range="4000:4010",
        **base)
    lone = l3.network()
    l3.subnet(lone["id"], cidr="10.5.0.0/24")
    far = l3.port(lone["id"])
    cases = [
        # Overlaps are Neutron's 400s (the same external port, the same
        # internal destination).
        (dict(internal_port=22, external_port=2222, **base), 400, "BadRequest"),
        (dict(internal_port=23, external_port=2222, **base), 400, "BadRequest"),
        (dict(internal_port=22, external_port=2223, **base), 400, "BadRequest"),
        (dict(internal_port_range="5000:5001", external_port_range="4010:4011", **base), 400,
         "BadRequest"),
        (dict(internal_port=22, external_port=0, **base), 400, "InvalidInput"),
        (dict(internal_port=22, external_port=70000, **base), 400, "InvalidInput"),
        (dict(internal_port=22, **base), 400, "InvalidInput"),
        (dict(internal_port=22, external_port=2, internal_port_range="1:2", **base), 400,
         "BadRequest"),
        (dict(internal_port_range="1:3", external_port_range="10:11", **base), 400,
         "BadRequest"),
        (dict(internal_port_range="3:1", external_port_range="10:12", **base), 400,
         "InvalidInput"),
        (dict(internal_port_range="a:b", external_port_range="10:12", **base), 400,
         "InvalidInput"),
        (dict(internal_port=1, external_port=1, protocol="icmp", internal_port_id=port["id"],
              internal_ip_address=ip), 400, "InvalidInput"),
        (dict(internal_port=1, external_port=1, protocol="tcp", internal_port_id=port["id"],
              internal_ip_address="10.0.0.250"), 400, "BadRequest"),
        (dict(internal_port=1, external_port=1, protocol="tcp", internal_port_id=far["id"],
              internal_ip_address=far["fixed_ips"][0]["ip_address"]), 404,
         "ExternalGatewayForFloatingIPNotFound"),
        (dict(internal_port=1, external_port=1, protocol="tcp",
              internal_port_id="8a3f3f3f-0000-4000-8000-000000000000",
              internal_ip_address=ip), 404, "PortNotFound"),
        (dict(internal_port=1, external_port=1, id="x", **base), 400, "InvalidInput"),
        (dict(internal_port=1, external_port=1, bogus=1, **base), 400, "InvalidInput"),
    ]
    for body, status, kind in cases:
        err = _pf(l3, f["id"], status, **body)
        assert err["type"] == kind, (body, err)
    assert _count(l3, models.PortForwarding) == 2
    # Another project cannot see or touch them.
    l3.get(f"{F}/{f['id']}/port_forwardings", project="p2", status=404)
    _pf(l3, f["id"], 404, project="p2", internal_port=9, external_port=9, **base)
    l3.post(f"{F}/{f['id']}/port_forwardings", {"nope": {}}, status=400)
    l3.post(f"{F}/{f['id']}/port_forwardings", raw=b"[1,", status=400)
    l3.put(f"{F}/{f['id']}/port_forwardings/8a3f3f3f-0000-4000-8000-000000000000",
           {"port_forwarding": {"description": "x"}}, status=404)


def test_a_deleted_gateway_agent_leaves_the_gateways(l3):
    register(l3, "gw-1", "192.0.2.11", gateway=True)
    register(l3, "gw-2", "192.0.2.12", gateway=True)
    ext_net, _ = _external(l3)
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                status=201).data["router"]
    gw1 = l3.get("/v2.0/agents?host=gw-1", **ADMIN, status=200).data["agents"][0]
    def dead(s):  # (its last heartbeat long ago)
        s.get(models.Agent, gw1["id"]).heartbeat_timestamp = datetime.datetime(2000, 1, 1)
    l3.db.write(dead)
    agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
    assert [(a["host"], a["alive"]) for a in agents if a["ha_state"] == "active"] == \
        [("gw-2", True)]
    l3.delete(f"/v2.0/agents/{gw1['id']}", **ADMIN, status=204)
    agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
    assert [(a["host"], a["ha_state"]) for a in agents] == [("gw-2", "active")]


def test_a_port_losing_the_fixed_ip_loses_the_floating_ip(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], port_id=port["id"])
    l3.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.0.0.200"}]}}, status=200)
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert (now["port_id"], now["fixed_ip_address"], now["router_id"]) == (None, None, None)


def test_a_port_losing_a_fixed_ip_loses_the_forwardings_to_it(l3):
    """Neutron deletes the forwardings to an address the port gives up
    (else, once another port takes that address, its traffic goes there);
    those to the addresses it keeps stay; a floating IP left without any
    leaves its router."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    p = l3.port(net["id"], project="p1", fixed_ips=[
        {"subnet_id": sub["id"], "ip_address": "10.0.0.50"},
        {"subnet_id": sub["id"], "ip_address": "10.0.0.51"}])
    f = _fip(l3, floating_network_id=ext_net["id"])
    g = _fip(l3, floating_network_id=ext_net["id"])
    gone = _pf(l3, f["id"], protocol="tcp", internal_port_id=p["id"],
               internal_ip_address="10.0.0.50", internal_port=22, external_port=2222)
    kept = _pf(l3, f["id"], protocol="tcp", internal_port_id=p["id"],
               internal_ip_address="10.0.0.51", internal_port=22, external_port=2223)
    alone = _pf(l3, g["id"], protocol="udp", internal_port_id=p["id"],
                internal_ip_address="10.0.0.50", internal_port=53, external_port=53)
    # An update that keeps both addresses keeps them all.
    l3.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.0.0.51"}, {"ip_address": "10.0.0.50"}]}}, project="p1",
        status=200)
    assert _count(l3, models.PortForwarding) == 3
    l3.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.0.0.60"},
        {"subnet_id": sub["id"], "ip_address": "10.0.0.51"}]}}, project="p1", status=200)
    listed = l3.get(f"{F}/{f['id']}/port_forwardings", project="p1",
                    status=200).data["port_forwardings"]
    assert [x["id"] for x in listed] == [kept["id"]]
    l3.get(f"{F}/{f['id']}/port_forwardings/{gone['id']}", project="p1", status=404)
    l3.get(f"{F}/{g['id']}/port_forwardings/{alone['id']}", project="p1", status=404)
    assert l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]["router_id"] == \
        router["id"]
    now = l3.get(f"{F}/{g['id']}", status=200).data["floatingip"]
    assert (now["router_id"], now["port_forwardings"]) == (None, [])
    # Another port that takes the address gets nothing forwarded.
    q = l3.port(net["id"], project="p1", fixed_ips=[
        {"subnet_id": sub["id"], "ip_address": "10.0.0.50"}])
    with l3.db.reader() as s:
        assert s.execute(sa.select(models.PortForwarding.internal_port_id).where(
            models.PortForwarding.internal_ip_address == "10.0.0.50")).all() == []
    assert q["fixed_ips"][0]["ip_address"] == "10.0.0.50"
    # The forwarding may be made again to the port's address it has now.
    _pf(l3, g["id"], protocol="udp", internal_port_id=p["id"],
        internal_ip_address="10.0.0.60", internal_port=53, external_port=53)
    # Losing every address loses every forwarding.
    l3.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": []}}, project="p1", status=200)
    assert _count(l3, models.PortForwarding) == 0
    for x in (f, g):
        assert l3.get(f"{F}/{x['id']}", status=200).data["floatingip"]["router_id"] is None


def test_deleting_the_internal_port_deletes_its_forwardings(l3):
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    other = l3.port(net["id"], project="p1")
    f = _fip(l3, floating_network_id=ext_net["id"])
    _pf(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
        internal_ip_address=port["fixed_ips"][0]["ip_address"], internal_port=22,
        external_port=2222)
    stays = _pf(l3, f["id"], protocol="tcp", internal_port_id=other["id"],
                internal_ip_address=other["fixed_ips"][0]["ip_address"], internal_port=22,
                external_port=2223)
    l3.delete(f"/v2.0/ports/{port['id']}", project="p1", status=204)
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert [x["id"] for x in now["port_forwardings"]] == [stays["id"]]
    assert now["router_id"] == router["id"]
    l3.delete(f"/v2.0/ports/{other['id']}", project="p1", status=204)
    now = l3.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert (now["port_forwardings"], now["router_id"]) == ([], None)
    assert _count(l3, models.PortForwarding) == 0


def test_an_agent_that_stops_being_a_gateway_leaves_the_gateways(l3):
    register(l3, "gw-1", "192.0.2.11", gateway=True)
    register(l3, "gw-2", "192.0.2.12", gateway=True)
    ext_net, _ = _external(l3)
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                status=201).data["router"]
    register(l3, "gw-1", "192.0.2.11")  # restarted with [agent] gateway = False
    agents = l3.get(f"{R}/{r['id']}/l3-agents", **ADMIN, status=200).data["agents"]
    assert [a["host"] for a in agents] == ["gw-2"]


def test_deleting_the_external_network_deletes_its_floating_ips(l3):
    """(As Neutron: Tempest's test_delete_external_networks_with_floating_ip.)"""
    ext_net, ext_sub = _external(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    l3.delete(f"/v2.0/subnets/{ext_sub['id']}", **ADMIN, status=409)
    # A router's gateway there keeps it (and the floating IPs) in use.
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
                status=201).data["router"]
    err = l3.delete(f"/v2.0/networks/{ext_net['id']}", **ADMIN, status=409).data
    assert err["NeutronError"]["type"] == "NetworkInUse"
    l3.get(f"{F}/{f['id']}", status=200)
    l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": None}}, status=200)
    l3.delete(f"/v2.0/networks/{ext_net['id']}", **ADMIN, status=204)
    l3.get(f"{F}/{f['id']}", status=404)
    assert (_count(l3, models.FloatingIP), _count(l3, models.Port)) == (0, 0)


def test_a_port_cannot_take_a_floating_ips_address(l3):
    """(Tempest's test_create_port_with_precreated_floatingip_as_fixed_ip.)"""
    ext_net, ext_sub = _external(l3)
    f = _fip(l3, floating_network_id=ext_net["id"], **ADMIN)
    err = l3.post("/v2.0/ports", {"port": {"network_id": ext_net["id"], "fixed_ips": [
        {"ip_address": f["floating_ip_address"]}]}}, **ADMIN, status=409).data
    assert err["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
