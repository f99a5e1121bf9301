"""What a non-admin project could do that Neutron's defaults forbid (an
adversarial review of the API, session 24; each test failed before its
fix).  The MariaDB tests use the tests' own throwaway MariaDB server
(tests/fixtures/mariadb.py), as ``make test`` does.
"""

import uuid

import pytest

from quantum_ovs.service import build
from tests.fixtures.mariadb import mariadb_server  # noqa: F401 - a fixture
from tests.functional.conftest import Client, make_conf

OWNER, OTHER, THIRD = "s24b-owner", "s24b-other", "s24b-third"


def _client(url, **overrides):
    db, plugin, app = build(make_conf(url, **overrides), migrate=True)
    return db, Client(app, plugin, db)


@pytest.fixture
def api(tmp_path):
    db, client = _client(f"sqlite:///{tmp_path}/qovs.sqlite")
    yield client
    db.dispose()


@pytest.fixture
def mysql_api(mariadb_server):  # noqa: F811 - the fixture imported above
    name = "s24b" + uuid.uuid4().hex[:12]
    db, client = _client(mariadb_server.create_database(name))
    try:
        yield client
    finally:
        db.dispose()
        mariadb_server.drop_database(name)


def _rbac(api, object_type, object_id, action, target, project=OWNER, status=None):
    return api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": object_type, "object_id": object_id, "action": action,
        "target_tenant": target}}, project=project, status=status)


# ---------------------------------------------------------------- F1
@pytest.mark.parametrize("target", ["* ", "*  "])
def test_f1_non_admin_cannot_name_the_wildcard_with_trailing_blanks(api, target):
    """create_rbac_policy:target_tenant keeps '*' to administrators
    (neutron/conf/policies/rbac.py); '* ' was the wildcard to MariaDB's
    PAD SPACE comparison (see the next test): a target with blanks around
    it is refused, for everyone."""
    net = api.network(project=OWNER)
    r = _rbac(api, "network", net["id"], "access_as_shared", target)
    assert r.status_int in (400, 403), (r.status, r.text)


@pytest.mark.parametrize("action, cidr", [("access_as_shared", "10.24.0.0/24"),
                                          ("access_as_external", "10.25.0.0/24")])
def test_f1_mariadb_trailing_blank_wildcard_gives_the_network_to_no_one(mysql_api, action,
                                                                      cidr):
    """On MariaDB (utf8mb4_bin is PAD SPACE) a member's policy for '* '
    passed the policy's ``target_tenant=*`` check but matched
    ``target_tenant IN (project, '*')`` in db/rbac.granted: every project
    saw the network (shared, or external) and made ports on it."""
    api = mysql_api
    net = api.network(project=OWNER)
    api.subnet(net["id"], cidr, project=OWNER)
    assert _rbac(api, "network", net["id"], action, "* ").status_int == 400
    r = api.get(f"/v2.0/networks/{net['id']}", project=THIRD)
    assert r.status_int == 404, ("a project no policy names sees the network", r.text)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, project=THIRD)
    assert r.status_int == 404, ("a project no policy names made a port", r.text)


# ---------------------------------------------------------------- F2
def test_f2_an_external_network_of_other_projects_answers_as_one_that_does_not_exist(api):
    """A network the owner made external to one project only (an
    access_as_external policy) is invisible to a third project (GET 404),
    and a port or subnet create naming it answers as for an unknown id,
    404 NetworkNotFound (it answered 403: the third project learnt that the
    id exists and is an external network).  The project it is external to
    still sees it."""
    net = api.network(project=OWNER)
    api.subnet(net["id"], "10.26.0.0/24", project=OWNER)
    _rbac(api, "network", net["id"], "access_as_external", OTHER, status=201)
    assert api.get(f"/v2.0/networks/{net['id']}", project=THIRD).status_int == 404
    for path, body in (("/v2.0/ports", {"port": {"network_id": net["id"]}}),
                       ("/v2.0/subnets", {"subnet": {"network_id": net["id"],
                                                     "cidr": "10.27.0.0/24",
                                                     "ip_version": 4}})):
        r = api.post(path, body, project=THIRD)
        assert (r.status_int, r.json["NeutronError"]["type"]) == (404, "NetworkNotFound"), \
            (path, r.status, r.text)
    seen = api.get(f"/v2.0/networks/{net['id']}", project=OTHER)
    assert seen.status_int == 200 and seen.json["network"]["router:external"] is True


# ---------------------------------------------------------------- F3
def test_f3_no_address_of_choice_on_an_automatic_address_subnet(api):
    """Neutron (ipam_backend_mixin._test_fixed_ips_for_port) refuses an
    ip_address on a SLAAC / DHCPv6-stateless subnet for any port but a
    router's, unless it is the port's own EUI-64 address: 400
    AllocationOnAutoAddressSubnet.  (It was taken: the
    network's owner could hold the EUI-64 address of a MAC that a port,
    a baremetal node's whose MAC is known, would later need.)"""
    net = api.network(project=OWNER)
    sub = api.subnet(net["id"], "2001:db8:24::/64", project=OWNER,
                     ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "2001:db8:24::f816:3eff:fe00:1"}]}},
        project=OWNER)
    assert r.status_int == 400, (r.status, r.text)
    assert r.json["NeutronError"]["type"] == "AllocationOnAutoAddressSubnet"
    own = api.post("/v2.0/ports", {"port": {
        "network_id": net["id"], "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [
            {"subnet_id": sub["id"], "ip_address": "2001:db8:24::f816:3eff:fe00:1"}]}},
        project=OWNER)
    assert own.status_int == 201, (own.status, own.text)
    # (an update too; the port's own EUI-64 address is still its own)
    port = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}},
                    project=OWNER).json["port"]
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "2001:db8:24::99"}]}}, project=OWNER)
    assert r.status_int == 400, (r.status, r.text)


# ------------------------------------------------ review s24c (of 40b452b)
R = "/v2.0/routers"
ADMIN = dict(project="admin-p", admin=True)


@pytest.fixture
def l3(tmp_path):
    from quantum_ovs.service import build
    from tests.functional.conftest import Client, make_conf
    db, plugin, app = build(make_conf(f"sqlite:///{tmp_path}/qovs.sqlite",
                                      service_plugins=["router"]), migrate=True)
    yield Client(app, plugin, db)
    db.dispose()


def _dual_stack_gateway(l3):
    ext = l3.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                  status=201, **ADMIN).data["network"]
    v4 = l3.subnet(ext["id"], cidr="172.24.4.0/24", **ADMIN)
    v6 = l3.subnet(ext["id"], cidr="2001:db8:70::/64", ipv6_address_mode="slaac",
                   ipv6_ra_mode="slaac", **ADMIN)
    r = l3.post(R, {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                project="p1", status=201).data["router"]
    return ext, v4, v6, r


def test_router_gateway_update_echoing_its_slaac_address_is_accepted(l3):
    """An administrator changes a dual-stack router gateway's IPv4 address
    and sends external_fixed_ips as GET showed them, the IPv6 SLAAC entry
    included (what a client that edits the list it read sends): 200, as
    Neutron, which updates the port in place.  (Review s24c-3: our new
    gateway port, with a new MAC, took the echoed address as one of choice,
    400 since 40b452b; it gets its own EUI-64 address there now.)"""
    ext, v4, v6, r = _dual_stack_gateway(l3)
    ips = r["external_gateway_info"]["external_fixed_ips"]
    assert {x["subnet_id"] for x in ips} == {v4["id"], v6["id"]}
    new = [{"subnet_id": v4["id"], "ip_address": "172.24.4.50"}] + \
        [x for x in ips if x["subnet_id"] == v6["id"]]
    resp = l3.put(f"{R}/{r['id']}", {"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": new}}}, **ADMIN)
    assert resp.status_int == 200, (resp.status, resp.text)
    got = resp.json["router"]["external_gateway_info"]["external_fixed_ips"]
    assert {x["subnet_id"]: x["ip_address"] for x in got}[v4["id"]] == "172.24.4.50"
    assert [x["subnet_id"] for x in got].count(v6["id"]) == 1


def test_mac_change_with_the_slaac_address_echoed_is_accepted(l3):
    """One update of an unbound port: a new MAC, and fixed_ips as the port
    showed them (its SLAAC address of the old MAC).  Neutron
    (update_port_with_ips) re-derives the EUI-64 address of every subnet
    whose address was made from the old MAC: 200, the new MAC's address
    (review s24c-4: 400 since 40b452b)."""
    net = l3.network(project="p1")
    v6 = l3.subnet(net["id"], cidr="2001:db8:5::/64", ipv6_ra_mode="slaac",
                   ipv6_address_mode="slaac", project="p1")
    port = l3.port(net["id"], project="p1", mac_address="fa:16:3e:00:00:01")
    resp = l3.put(f"/v2.0/ports/{port['id']}", {"port": {
        "mac_address": "fa:16:3e:00:00:02", "fixed_ips": port["fixed_ips"]}}, **ADMIN)
    assert resp.status_int == 200, (resp.status, resp.text)
    [ip] = resp.json["port"]["fixed_ips"]
    assert ip == {"subnet_id": v6["id"], "ip_address": "2001:db8:5:0:f816:3eff:fe00:2"}
