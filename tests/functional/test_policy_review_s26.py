"""The default policy against Neutron's current secure-RBAC defaults
(neutron/conf/policies/*.py), persona by persona (adversarial review,
session 26): the service role reads and writes what its rules let it,
across projects, as neutron-lib's model_query_scope_is_project; a project
manager chooses a floating IP's address; a shared group's tags are read;
floating IP pools need a reader.  Each test failed before its fix."""

import pytest

from quantum_ovs.service import build
from tests.functional.conftest import Client, make_conf

A, B, ADM, SVC = "s26p-a", "s26p-b", "s26p-admin", "s26p-service"
MEMBER = {"X-Roles": "member"}
READER = {"X-Roles": "reader"}
MANAGER = {"X-Roles": "manager,member,reader"}
SERVICE = {"X-Roles": "service"}


@pytest.fixture
def api(tmp_path):
    db, plugin, app = build(make_conf(f"sqlite:///{tmp_path}/qovs.sqlite",
                                      service_plugins=["router"]), migrate=True)
    yield Client(app, plugin, db)
    db.dispose()


def _sg(api, project):
    return api.post("/v2.0/security-groups", {"security_group": {"name": "g"}},
                    project=project, status=201).data["security_group"]


def _admin_rule(api, sg_id, **attrs):
    body = {"security_group_id": sg_id, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, **attrs}
    return api.post("/v2.0/security-group-rules", {"security_group_rule": body},
                    project=ADM, admin=True, status=201).data["security_group_rule"]



# ------------------------------------------------------------------ service role (High)
@pytest.fixture
def foreign(api):
    """A network of project A (not shared), its subnet and a port of A's."""
    net = api.network(project=A)
    sub = api.subnet(net["id"], "10.26.0.0/24", project=A)
    port = api.port(net["id"], project=A)
    return net, sub, port


def test_service_role_reads_and_binds_a_port_of_any_project(api, foreign):
    """get_port and update_port are (rule:admin_only) or (rule:service_api)
    or ... (neutron/conf/policies/port.py), update_port:binding:host_id
    ADMIN_OR_SERVICE (port.py), and a service-role context's queries are
    not scoped to its project (neutron-lib db/utils.py
    model_query_scope_is_project: ``if context.is_service_role: return
    False``).  nova's service user (project 'service') binds a user's port."""
    _net, _sub, port = foreign
    url = f"/v2.0/ports/{port['id']}"
    r = api.get(url, project=SVC, headers=SERVICE)
    assert r.status_int == 200, (r.status, r.text)
    listed = api.get("/v2.0/ports", project=SVC, headers=SERVICE, status=200).data["ports"]
    assert port["id"] in {p["id"] for p in listed}
    r = api.put(url, {"port": {"binding:host_id": "hv-s26"}}, project=SVC, headers=SERVICE)
    assert r.status_int == 200, (r.status, r.text)


def test_service_role_reads_networks_and_subnets_of_any_project(api, foreign):
    """get_network and get_subnet include rule:service_api
    (neutron/conf/policies/network.py, subnet.py); the query is unscoped
    for the service role (as above)."""
    net, sub, _port = foreign
    r = api.get(f"/v2.0/networks/{net['id']}", project=SVC, headers=SERVICE)
    assert r.status_int == 200, (r.status, r.text)
    r = api.get(f"/v2.0/subnets/{sub['id']}", project=SVC, headers=SERVICE)
    assert r.status_int == 200, (r.status, r.text)
    nets = api.get("/v2.0/networks", project=SVC, headers=SERVICE, status=200).data
    assert net["id"] in {n["id"] for n in nets["networks"]}


def test_service_role_creates_and_deletes_ports_on_any_network(api, foreign):
    """create_port and delete_port include rule:service_api (port.py); the
    network-ownership check of a port's create is skipped for the service
    role (neutron/api/v2/base.py _validate_network_project_ownership:
    ``is_admin or is_service_role``)."""
    net, _sub, port = foreign
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, project=SVC,
                 headers=SERVICE)
    assert r.status_int == 201, (r.status, r.text)
    r = api.delete(f"/v2.0/ports/{port['id']}", project=SVC, headers=SERVICE)
    assert r.status_int == 204, (r.status, r.text)


# ------------------------------------------------------------------ admin and bindings (Low)
def test_project_manager_gives_the_floating_ip_address(api):
    """create_floatingip:floating_ip_address is ADMIN_OR_PROJECT_MANAGER
    (neutron/conf/policies/floatingip.py); ours admin_only."""
    net = api.post("/v2.0/networks", {"network": {"name": "pub", "router:external": True}},
                   project=ADM, admin=True, status=201).data["network"]
    api.subnet(net["id"], "172.26.4.0/24", project=ADM, admin=True)
    r = api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": net["id"], "floating_ip_address": "172.26.4.77"}},
        project=A, headers=MANAGER)
    assert r.status_int == 201, (r.status, r.text)
    r = api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": net["id"], "floating_ip_address": "172.26.4.78"}},
        project=A, headers=MEMBER)
    assert r.status_int == 403, (r.status, r.text)


def test_tags_of_a_security_group_shared_with_me(api):
    """get_security_group:tags is ADMIN_OR_PROJECT_READER or
    rule:shared_security_group (neutron/conf/policies/security_group.py);
    ours lacks the shared case: the group is readable, its tags 403."""
    sg = _sg(api, A)
    api.put(f"/v2.0/security-groups/{sg['id']}/tags/red", project=A, status=201)
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "security_group", "object_id": sg["id"], "action": "access_as_shared",
        "target_tenant": B}}, project=A, status=201)
    api.get(f"/v2.0/security-groups/{sg['id']}", project=B, status=200)
    r = api.get(f"/v2.0/security-groups/{sg['id']}/tags", project=B)
    assert r.status_int == 200, (r.status, r.text)


# ------------------------------------------------------------------ fip pools (Low)
def test_floatingip_pools_need_a_reader(api):
    """get_floatingip_pool is ADMIN_OR_PROJECT_READER
    (neutron/conf/policies/floatingip_pools.py); ours rule:regular_user:
    a token with no role of the project lists the pools."""
    net = api.post("/v2.0/networks", {"network": {"name": "pub", "router:external": True}},
                   project=ADM, admin=True, status=201).data["network"]
    api.subnet(net["id"], "172.26.5.0/24", project=ADM, admin=True)
    api.get("/v2.0/floatingip-pools", project=B, headers=READER, status=200)
    r = api.get("/v2.0/floatingip-pools", project=B, headers={"X-Roles": "s26-other"})
    assert r.status_int == 403 or r.data["floatingip_pools"] == [], (r.status, r.text)
