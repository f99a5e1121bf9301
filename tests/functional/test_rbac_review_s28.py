"""Network RBAC as Neutron has it (review of session 28): what each test
asserts is Neutron's behaviour, each failed on the code it was written
against."""

import threading

import pytest

from tests.functional.conftest import Client

P = "/v2.0/rbac-policies"
R = "/v2.0/routers"
ADMIN = dict(project="admin-p", admin=True)


@pytest.fixture
def l3(make_api):
    return make_api(service_plugins=["router"])


def _public(api, **attrs):
    """An administrator's network both shared and external (``openstack
    network create --share --external public``), with a subnet."""
    net = api.post("/v2.0/networks", {"network": dict(
        name="public", shared=True, **{"router:external": True}, **attrs)},
        **ADMIN, status=201).data["network"]
    api.subnet(net["id"], cidr="172.24.4.0/24", **ADMIN)
    return net


def _wildcard(api, net_id, action):
    [pol] = api.get(f"{P}?object_id={net_id}&action={action}&target_tenant=*", **ADMIN,
                    status=200).data["rbac_policies"]
    return pol


def test_gateway_and_floating_ip_ports_do_not_keep_a_public_network_shared(l3):
    """Neutron's _validate_shared_update (db_base_plugin_v2.py) skips every
    ``network:*`` port, and ensure_no_project_ports_on_network (the wildcard
    access_as_shared policy's removal) skips the ports of project '' (router
    gateways, floating IPs): a shared external network whose routers'
    gateways and floating IPs are its only users (they keep their access
    through access_as_external) can be made unshared.  Here the gateway
    port and floating IP port (project '') count as "another tenant": even
    the administrator's own router's gateway keeps the network shared for
    ever (409 InvalidSharedSetting; the policy's DELETE 409 RbacPolicyInUse)."""
    api = l3
    pub = _public(api)
    # The administrator's own router, and a tenant's router and floating IP
    # (which need only the network's access_as_external wildcard).
    api.post(R, {"router": {"name": "adm", "external_gateway_info": {
        "network_id": pub["id"]}}}, **ADMIN, status=201)
    api.post(R, {"router": {"name": "r2", "external_gateway_info": {
        "network_id": pub["id"]}}}, project="p2", status=201)
    api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": pub["id"]}},
             project="p2", status=201)
    # By the RBAC API: the wildcard access_as_shared policy goes ...
    shared = _wildcard(api, pub["id"], "access_as_shared")
    r = api.delete(f"{P}/{shared['id']}", **ADMIN)
    assert r.status_int == 204, r.text
    assert api.get(f"/v2.0/networks/{pub['id']}", **ADMIN,
                   status=200).data["network"]["shared"] is False
    # ... and by the network's flag (shared again, then not).
    api.put(f"/v2.0/networks/{pub['id']}", {"network": {"shared": True}}, **ADMIN, status=200)
    r = api.put(f"/v2.0/networks/{pub['id']}", {"network": {"shared": False}}, **ADMIN)
    assert r.status_int == 200, r.text
    # The tenant still sees it as external, its router and floating IP stay.
    got = api.get(f"/v2.0/networks/{pub['id']}", project="p2", status=200).data["network"]
    assert (got["shared"], got["router:external"]) == (False, True)


def test_admins_own_gateway_does_not_keep_a_public_network_shared(l3):
    """The simplest case of the above: only the administrator's own router
    has its gateway on its shared external network; Neutron lets
    ``shared`` go (no port but a network:* one of the owner's project or of
    project '')."""
    api = l3
    pub = _public(api)
    api.post(R, {"router": {"name": "adm", "external_gateway_info": {
        "network_id": pub["id"]}}}, **ADMIN, status=201)
    r = api.put(f"/v2.0/networks/{pub['id']}", {"network": {"shared": False}}, **ADMIN)
    assert r.status_int == 200, r.text


def test_a_network_its_owner_shares_with_itself_reads_shared_to_it(l3):
    """Neutron's _is_network_shared (db_base_plugin_common.py,
    _make_network_dict) and the ``shared`` filter (neutron-lib
    model_query.apply_filters) read ``shared`` as "an access_as_shared
    policy names '*' or the caller's project", the owner's as anyone's: a
    policy an owner makes for its own project (allowed: the self-sharing
    case of validate_network_rbac_policy_change) makes its network shared
    to it.  Here the owner is left out of both (``N.project_id !=
    ctx.project_id`` in filter_for, ``r.project_id != ctx.project_id`` in
    for_caller)."""
    api = l3
    net = api.network(project="p1")
    api.post(P, {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                 "action": "access_as_shared", "target_tenant": "p1"}},
             project="p1", status=201)
    got = api.get(f"/v2.0/networks/{net['id']}", project="p1", status=200).data["network"]
    assert got["shared"] is True
    listed = api.get("/v2.0/networks?shared=true", project="p1", status=200).data["networks"]
    assert [n["id"] for n in listed] == [net["id"]]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_unsharing_while_a_router_interface_is_added_is_never_both(l3):
    """A project's router interface on another project's subnet is allowed
    by an access_as_shared policy naming the project (Neutron's
    _add_interface_by_subnet, LP 1975603), and that policy cannot go while
    the project's interface port is there (validate_network_rbac_policy_change
    -> ensure_no_project_ports_on_network: 409).  add_interface_in reads the
    subnet and the policy's targets before it holds the network (the hold
    comes later, in _new_port, with no context and no new check): a DELETE
    of the policy committed in between passes its in-use check (no port of
    p2 yet) and the interface is made anyway, leaving p2's router holding
    p1's gateway address on a network no longer shared with p2.  The
    DELETE is run, deterministically, in that window (after the checks,
    before the port; PostgreSQL: the writes do not serialize there)."""
    api = l3
    net = api.network(project="p1")
    sub = api.subnet(net["id"], cidr="10.0.0.0/24", project="p1")
    pol = api.post(P, {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                       "action": "access_as_shared", "target_tenant": "p2"}},
                   project="p1", status=201).data["rbac_policy"]
    router = api.post(R, {"router": {"name": "r2"}}, project="p2", status=201).data["router"]
    routers = api.plugin.collections["routers"]
    original = routers._check_new_subnets
    deleted, threads = {}, []

    def delete_policy():
        other = Client(api.app.app, api.plugin, api.db)
        r = other.app.delete(f"{P}/{pol['id']}", headers=other._headers("p1", False, None),
                             expect_errors=True)
        deleted["status"] = r.status_int

    def in_the_window(*args, **kwargs):
        if not threads:
            t = threading.Thread(target=delete_policy)
            threads.append(t)
            t.start()
            # (a fixed code holds the network by now: the DELETE then waits
            # for this transaction, and sees its port)
            t.join(1)
        return original(*args, **kwargs)

    routers._check_new_subnets = in_the_window
    try:
        added = api.put(f"{R}/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
                        project="p2")
    finally:
        routers._check_new_subnets = original
    threads[0].join(60)
    outcome = (deleted.get("status"), added.status_int)
    assert outcome != (204, 200), (
        f"the policy was deleted AND p2's interface was added on p1's subnet: {outcome}")
