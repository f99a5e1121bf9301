"""Neutron's port rules on networks the caller does not own, listings that
the policy thins, and ``context_is_admin`` as the one definition of admin.

``owner`` (p1) owns a shared network; ``tenant`` (p2) may put ports on it
but not claim what only the network's owner may: network:* device owners,
chosen MAC and IP addresses, port security off, allowed address pairs.
"""

import itertools
import os
import time

import pytest
import webtest

from quantum_ovs.api.router import make_app

OWNER, TENANT, OTHER = "p1", "p2", "p3"


@pytest.fixture
def shared(api):
    net = api.network(project=OWNER, admin=True, shared=True)
    sub = api.subnet(net["id"], cidr="10.9.0.0/24", project=OWNER)
    return net, sub


def _refused(r, rule):
    assert r.status_int == 403, (r.status, r.text[:500])
    err = r.data["NeutronError"]
    assert err["type"] == "PolicyNotAuthorized"
    assert rule in err["message"]


# ------------------------------------------------------------ create_port
@pytest.mark.parametrize("owner", ["network:dhcp", "network:router_interface",
                                   "network:floatingip"])
def test_tenant_cannot_create_network_device_ports_on_shared_network(api, shared, owner):
    net, _ = shared
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "device_owner": owner}},
                 project=TENANT)
    _refused(r, "create_port:device_owner")
    # nothing was made
    assert api.get(f"/v2.0/ports?network_id={net['id']}", admin=True,
                   status=200).data["ports"] == []
    # the network's owner and an admin may; a tenant may name other owners
    api.port(net["id"], project=OWNER, device_owner=owner)
    api.port(net["id"], project=TENANT, admin=True, device_owner=owner)
    api.port(net["id"], project=TENANT, device_owner="compute:nova")


def test_tenant_cannot_make_its_port_a_network_device(api, shared):
    net, _ = shared
    port = api.port(net["id"], project=TENANT, device_owner="compute:nova")
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"device_owner": "network:dhcp"}},
                project=TENANT)
    _refused(r, "update_port:device_owner")
    own = api.network(project=TENANT)
    mine = api.port(own["id"], project=TENANT)
    api.put(f"/v2.0/ports/{mine['id']}", {"port": {"device_owner": "network:dhcp"}},
            project=TENANT, status=200)


def test_tenant_cannot_switch_off_port_security_on_shared_network(api, shared):
    net, _ = shared
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "port_security_enabled": False}}, project=TENANT)
    _refused(r, "create_port:port_security_enabled")
    port = api.port(net["id"], project=TENANT)
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"port_security_enabled": False}},
                project=TENANT)
    _refused(r, "update_port:port_security_enabled")
    assert api.get(f"/v2.0/ports/{port['id']}", project=TENANT,
                   status=200).data["port"]["port_security_enabled"] is True
    # the network's owner may, on its own network
    p = api.port(net["id"], project=OWNER, port_security_enabled=False)
    assert p["port_security_enabled"] is False


def test_tenant_cannot_claim_address_pairs_on_shared_network(api, shared):
    net, _ = shared
    pairs = [{"ip_address": "10.9.0.0/24"}]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "allowed_address_pairs": pairs}}, project=TENANT)
    _refused(r, "create_port:allowed_address_pairs")
    port = api.port(net["id"], project=TENANT)
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": pairs}},
                project=TENANT)
    _refused(r, "update_port:allowed_address_pairs")
    assert api.get(f"/v2.0/ports/{port['id']}", project=TENANT,
                   status=200).data["port"]["allowed_address_pairs"] == []
    p = api.port(net["id"], project=OWNER, allowed_address_pairs=pairs)
    assert p["allowed_address_pairs"][0]["ip_address"] == "10.9.0.0/24"


def test_tenant_cannot_choose_mac_or_address_on_shared_network(api, shared):
    net, sub = shared
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "mac_address": "fa:16:3e:11:22:33"}}, project=TENANT)
    _refused(r, "create_port:mac_address")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.9.0.50"}]}}, project=TENANT)
    _refused(r, "create_port:fixed_ips:ip_address")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.9.0.51"}]}}, project=TENANT)
    _refused(r, "create_port:fixed_ips:ip_address")
    # naming the subnet only is fine on a shared network
    p = api.port(net["id"], project=TENANT, fixed_ips=[{"subnet_id": sub["id"]}])
    assert p["fixed_ips"][0]["subnet_id"] == sub["id"]
    # changing the addresses of a port on a network one does not own
    r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.9.0.52"}]}}, project=TENANT)
    _refused(r, "update_port:fixed_ips")
    # the owner chooses both
    p = api.port(net["id"], project=OWNER, mac_address="fa:16:3e:11:22:34",
                 fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.9.0.53"}])
    assert p["fixed_ips"][0]["ip_address"] == "10.9.0.53"


def test_no_port_on_an_external_network_of_another_project(api):
    ext = api.network(project=OWNER, admin=True, **{"router:external": True})
    # visible, but not a place for other projects' ports
    api.get(f"/v2.0/networks/{ext['id']}", project=TENANT, status=200)
    r = api.post("/v2.0/ports", {"port": {"network_id": ext["id"]}}, project=TENANT)
    _refused(r, "create_port")


# ------------------------------------------------------------ listings
def _world(api):
    """Networks, subnets and ports of three projects; returns what TENANT
    may see of each collection."""
    seen = {"networks": set(), "subnets": set(), "ports": set()}
    cidrs = (f"10.{i}.0.0/24" for i in itertools.count(20))
    nets = []
    for i in range(3):
        nets.append(("own", api.network(project=TENANT)))
        nets.append(("shared", api.network(project=OWNER, admin=True, shared=True)))
        nets.append(("external", api.network(project=OWNER, admin=True,
                                             **{"router:external": True})))
        nets.append(("private", api.network(project=OTHER)))
    for kind, net in nets:
        owner = TENANT if kind == "own" else OTHER if kind == "private" else OWNER
        sub = api.subnet(net["id"], cidr=next(cidrs), project=owner,
                         admin=kind != "own" and kind != "private")
        if kind != "private":
            seen["networks"].add(net["id"])
            seen["subnets"].add(sub["id"])
        for _ in range(2):
            p = api.port(net["id"], project=owner, admin=owner == OWNER)
            if kind == "own":
                seen["ports"].add(p["id"])
        if kind == "own":
            # another project's port on TENANT's network: TENANT owns the network
            p = api.port(net["id"], project=OTHER, admin=True)
            seen["ports"].add(p["id"])
        if kind == "shared":
            api.port(net["id"], project=OTHER)  # not TENANT's to see
            seen["ports"].add(api.port(net["id"], project=TENANT)["id"])
    return seen


def _walk(api, collection, limit, reverse=False, project=TENANT):
    """Follow next (or previous) links from the first page; every page but
    the last must be full."""
    url = f"/v2.0/{collection}?limit={limit}" + ("&page_reverse=True" if reverse else "")
    pages = []
    while url:
        body = api.get(url.replace("http://localhost", ""), project=project,
                       status=200).data
        pages.append([o["id"] for o in body[collection]])
        rel = "previous" if reverse else "next"
        links = {ln["rel"]: ln["href"] for ln in body.get(f"{collection}_links", [])}
        url = links.get(rel) if pages[-1] else None
        assert len(pages) < 200
    while pages and not pages[-1]:
        pages.pop()
    for p in pages[:-1]:
        assert len(p) == limit, [len(p) for p in pages]
    return [i for p in pages for i in p]


@pytest.mark.parametrize("collection", ["networks", "subnets", "ports"])
def test_pages_are_full_and_complete(api, collection):
    seen = _world(api)[collection]
    everything = {o["id"] for o in api.get(f"/v2.0/{collection}", project=TENANT,
                                           status=200).data[collection]}
    assert everything == seen
    for limit in (1, 2, 5):
        for reverse in (False, True):
            ids = _walk(api, collection, limit, reverse)
            assert len(ids) == len(set(ids)), "a row came twice"
            assert set(ids) == seen, (limit, reverse)


def _app_with_policy(api, tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    conf = api.plugin.conf
    conf.set_override("policy_file", str(path), group="oslo_policy")
    return webtest.TestApp(make_app(conf, api.plugin))


@pytest.mark.parametrize("collection", ["networks", "ports"])
def test_pages_stay_full_when_the_policy_is_narrower_than_the_query(api, tmp_path,
                                                                    collection):
    """An operator's rule that hides rows the database query returns (here:
    external networks, and ports on networks the caller owns) must not make
    short or empty pages."""
    seen = _world(api)[collection]
    app = _app_with_policy(api, tmp_path, (
        '"get_network": "rule:admin_or_owner or rule:shared"\n'
        '"get_port": "rule:admin_or_owner"\n'))
    headers = {"X-Project-Id": TENANT, "X-Roles": "member"}
    allowed = {o["id"] for o in app.get(f"/v2.0/{collection}", headers=headers)
               .json[collection]}
    assert allowed < seen
    for limit in (1, 2, 3):
        url, pages = f"/v2.0/{collection}?limit={limit}", []
        while url:
            body = app.get(url.replace("http://localhost", ""), headers=headers).json
            pages.append([o["id"] for o in body[collection]])
            nxt = [ln["href"] for ln in body[f"{collection}_links"] if ln["rel"] == "next"]
            url = nxt[0] if nxt and pages[-1] else None
            assert len(pages) < 100
        while pages and not pages[-1]:
            pages.pop()
        assert all(len(p) == limit for p in pages[:-1]), [len(p) for p in pages]
        ids = [i for p in pages for i in p]
        assert len(ids) == len(set(ids))
        assert set(ids) == allowed, limit


# ------------------------------------------------------------ admin
def test_admin_is_what_context_is_admin_says(api, tmp_path):
    """Visibility, attribute rules and listings all follow the policy's
    context_is_admin, not the role's name."""
    theirs = api.network(project=OTHER)
    app = _app_with_policy(api, tmp_path, '"context_is_admin": "role:cloud_admin"\n')
    admin = {"X-Project-Id": TENANT, "X-Roles": "admin"}
    cloud = {"X-Project-Id": TENANT, "X-Roles": "cloud_admin,member"}
    listed = {n["id"] for n in app.get("/v2.0/networks", headers=admin).json["networks"]}
    assert theirs["id"] not in listed
    app.get(f"/v2.0/networks/{theirs['id']}", headers=admin, status=404)
    r = app.post_json("/v2.0/networks", {"network": {"name": "s", "shared": True}},
                      headers=admin, status=403)
    assert r.json["NeutronError"]["type"] == "PolicyNotAuthorized"
    listed = {n["id"] for n in app.get("/v2.0/networks", headers=cloud).json["networks"]}
    assert theirs["id"] in listed
    app.get(f"/v2.0/networks/{theirs['id']}", headers=cloud, status=200)
    app.post_json("/v2.0/networks", {"network": {"name": "s", "shared": True}},
                  headers=cloud, status=201)
    # and back: the file is read again when it changes
    (tmp_path / "policy.yaml").write_text('"context_is_admin": "role:admin"\n')
    os.utime(tmp_path / "policy.yaml", (time.time() + 5, time.time() + 5))
    app.get(f"/v2.0/networks/{theirs['id']}", headers=admin, status=200)


def test_reader_sees_but_does_not_change(api):
    net = api.network(project=TENANT)
    reader = {"X-Project-Id": TENANT, "X-Roles": "reader"}
    api.app.get(f"/v2.0/networks/{net['id']}", headers=reader, status=200)
    r = api.app.put_json(f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}},
                         headers=reader, status=403)
    assert r.json["NeutronError"]["type"] == "PolicyNotAuthorized"
    api.app.post_json("/v2.0/networks", {"network": {"name": "x"}}, headers=reader,
                      status=403)
    api.app.delete(f"/v2.0/networks/{net['id']}", headers=reader, status=403)


# ------------------------------------------------------------ Essex v1.x
@pytest.fixture
def essex_shared(api):
    """OWNER's shared network with a port of TENANT on it, as v1.1 names them."""
    net = api.network(project=OWNER, admin=True, shared=True)
    api.subnet(net["id"], cidr="10.8.0.0/24", project=OWNER)
    theirs = api.port(net["id"], project=TENANT, device_id="vm-of-tenant")
    base = f"/v1.1/tenants/{OWNER}/networks/{net['id']}"
    return net, theirs, base


def _v11_refused(r, code=403):
    assert r.status_int == code, (r.status, r.text[:300])
    assert "QuantumError" in r.data


def test_essex_owner_cannot_change_another_projects_port(api, essex_shared):
    net, theirs, base = essex_shared
    port = f"{base}/ports/{theirs['id']}"
    # seen, as v2.0 shows the network's owner the ports on its network
    assert api.get(port, project=OWNER, status=200).data["port"]["state"] == "ACTIVE"
    _v11_refused(api.put(port, {"port": {"state": "DOWN"}}, project=OWNER))
    _v11_refused(api.delete(f"{port}/attachment", project=OWNER))
    _v11_refused(api.put(f"{port}/attachment", {"attachment": {"id": "vm-of-owner"}},
                         project=OWNER))
    after = api.get(f"/v2.0/ports/{theirs['id']}", project=TENANT, status=200).data["port"]
    assert after["admin_state_up"] is True
    assert after["device_id"] == "vm-of-tenant"


def test_essex_network_delete_keeps_another_projects_port(api, essex_shared):
    net, theirs, base = essex_shared
    api.put(f"/v2.0/ports/{theirs['id']}", {"port": {"device_id": ""}}, project=TENANT,
            status=200)  # unattached: Essex would delete it with the network
    _v11_refused(api.delete(base, project=OWNER), 409)
    api.get(f"/v2.0/ports/{theirs['id']}", project=TENANT, status=200)
    api.get(f"/v2.0/networks/{net['id']}", project=OWNER, status=200)
    # once it is gone, the owner may delete the network (and its own ports)
    api.delete(f"/v2.0/ports/{theirs['id']}", project=TENANT, status=204)
    api.port(net["id"], project=OWNER)
    api.delete(base, project=OWNER, status=204)


def test_essex_attachment_ids_are_per_project(api):
    """Another project's interface id neither blocks a plug nor is revealed."""
    ports = {}
    for project in (TENANT, OTHER):
        r = api.post(f"/v1.1/tenants/{project}/networks", {"network": {"name": "n"}},
                     project=project, status=202)
        net_id = r.data["network"]["id"]
        r = api.post(f"/v1.1/tenants/{project}/networks/{net_id}/ports", None,
                     project=project, status=202)
        ports[project] = (net_id, r.data["port"]["id"])
    for project, (net_id, port_id) in ports.items():
        api.put(f"/v1.1/tenants/{project}/networks/{net_id}/ports/{port_id}/attachment",
                {"attachment": {"id": "vif-1"}}, project=project, status=204)
    # within one project, still unique
    net_id, _ = ports[TENANT]
    r = api.post(f"/v1.1/tenants/{TENANT}/networks/{net_id}/ports", None, project=TENANT,
                 status=202)
    r = api.put(f"/v1.1/tenants/{TENANT}/networks/{net_id}/ports/{r.data['port']['id']}"
                "/attachment", {"attachment": {"id": "vif-1"}}, project=TENANT)
    _v11_refused(r, 409)
    assert ports[OTHER][1] not in r.text
