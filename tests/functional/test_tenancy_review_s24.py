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
