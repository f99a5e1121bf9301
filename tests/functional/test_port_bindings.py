"""The port bindings API (binding-extended), as nova's live migration uses
it, and what the agents of the hosts involved see."""

import pytest

from quantum_ovs import wire
from tests.fixtures.views import canon

A, B, C = "hv-a", "hv-b", "hv-c"
KEYS = {"host", "vif_type", "vnic_type", "status", "profile", "vif_details"}


def register(api, host, tunnel_ip):
    api.post("/agent-api/v1/agents", {"host": host, "tunnel_ip": tunnel_ip, "started": True,
                                      "configurations": {"tunnel_types": ["vxlan"],
                                                         "bridge_mappings": {}}},
             status=200)


def state(api, host, since=-1, timeout=0):
    return api.get(f"/agent-api/v1/hosts/{host}/state?since={since}&timeout={timeout}"
                   "&features=group_members", status=200).data


def report(api, host, port_id, ofport=7):
    return api.post(f"/agent-api/v1/hosts/{host}/ports",
                    {"plugged": [{"port_id": port_id, "ofport": ofport}],
                     "installed": [port_id]}, status=200).data


def follow(api, host, first):
    """(the host's view after its next delta from ``first``, its full view
    now), both canonical."""
    reply = state(api, host, since=first["revision"], timeout=2)
    if reply["full"]:
        got = wire.view_from_dict(reply["view"])
    else:
        got = wire.apply_delta(wire.view_from_dict(first["view"]),
                               wire.delta_from_dict(reply["delta"]))
    return canon(got), canon(wire.view_from_dict(state(api, host)["view"]))


def host_of(view, port_id):
    return next((p.host for p in view.ports if p.id == port_id), "absent")


@pytest.fixture
def cloud(api):
    """Hosts A, B, C with agents; a network with a subnet; a compute port
    (project p1) bound to A."""
    for i, h in enumerate((A, B, C)):
        register(api, h, f"192.0.2.{i + 1}")
    net = api.network()
    api.subnet(net["id"], "10.40.0.0/24")
    port = api.port(net["id"], admin=True, device_owner="compute:nova",
                    device_id="vm-1", **{"binding:host_id": A})
    api.net, api.vm_port = net, port
    return api


def bindings_url(port):
    return f"/v2.0/ports/{port['id']}/bindings"


def error_type(resp):
    return resp.data["NeutronError"]["type"]


# ------------------------------------------------------------------ the calls
def test_live_migration_sequence(cloud):
    """What nova does: an inactive binding on the destination, activate it,
    delete the source's."""
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    assert api.get(url, admin=True, status=200).data == {"bindings": [
        {"host": A, "vif_type": "ovs", "vnic_type": "normal", "status": "ACTIVE",
         "profile": {}, "vif_details": port["binding:vif_details"]}]}

    made = api.post(url, {"binding": {"host": B, "profile": {"migrating_to": B}}},
                    admin=True, status=201).data["binding"]
    assert set(made) == KEYS
    assert (made["host"], made["status"], made["vif_type"], made["profile"]) == \
        (B, "INACTIVE", "ovs", {"migrating_to": B})
    assert made["vif_details"]["bridge_name"] == "br-int"
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(A, "ACTIVE"), (B, "INACTIVE")]
    assert api.get(f"{url}/{B}", admin=True, status=200).data["binding"] == made
    # The port still follows its active binding.
    got = api.get(f"/v2.0/ports/{port['id']}", admin=True, status=200).data["port"]
    assert got["binding:host_id"] == A and got["binding:profile"] == {}

    act = api.put(f"{url}/{B}/activate", admin=True, status=200).data["binding"]
    assert (act["host"], act["status"], act["vif_type"]) == (B, "ACTIVE", "ovs")
    got = api.get(f"/v2.0/ports/{port['id']}", admin=True, status=200).data["port"]
    assert (got["binding:host_id"], got["binding:vif_type"], got["binding:profile"]) == \
        (B, "ovs", {"migrating_to": B})
    assert got["revision_number"] > port["revision_number"]
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(B, "ACTIVE"), (A, "INACTIVE")]

    api.delete(f"{url}/{A}", admin=True, status=204)
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(B, "ACTIVE")]


def test_rollback_activates_the_source_again(cloud):
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    api.put(f"{url}/{B}/activate", admin=True, status=200)
    api.put(f"{url}/{A}/activate", admin=True, status=200)
    api.delete(f"{url}/{B}", admin=True, status=204)
    got = api.get(f"/v2.0/ports/{port['id']}", admin=True, status=200).data["port"]
    assert got["binding:host_id"] == A
    assert [b["host"] for b in api.get(url, admin=True, status=200).data["bindings"]] == [A]


def test_first_binding_of_an_unbound_port_binds_it(cloud):
    api = cloud
    port = api.port(api.net["id"], admin=True, device_owner="compute:nova")
    url = bindings_url(port)
    assert api.get(url, admin=True, status=200).data == {"bindings": []}
    made = api.post(url, {"binding": {"host": C}}, admin=True, status=201).data["binding"]
    assert (made["host"], made["status"]) == (C, "ACTIVE")
    got = api.get(f"/v2.0/ports/{port['id']}", admin=True, status=200).data["port"]
    assert (got["binding:host_id"], got["binding:vif_type"]) == (C, "ovs")


def test_filters_and_fields(cloud):
    api, url = cloud, bindings_url(cloud.vm_port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    got = api.get(url + "?status=INACTIVE&fields=host&fields=status", admin=True,
                  status=200).data["bindings"]
    assert got == [{"host": B, "status": "INACTIVE"}]
    got = api.get(url + f"?host={A}", admin=True, status=200).data["bindings"]
    assert [b["host"] for b in got] == [A]
    got = api.get(f"{url}/{B}?fields=vif_type", admin=True, status=200).data
    assert got == {"binding": {"vif_type": "ovs"}}
    r = api.get(url + "?color=red", admin=True, status=400)
    assert "color" in r.data["NeutronError"]["message"]


# ------------------------------------------------------------------ errors
def test_conflicts(cloud):
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    r = api.post(url, {"binding": {"host": A}}, admin=True, status=409)
    assert error_type(r) == "PortBindingAlreadyExists"
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    r = api.post(url, {"binding": {"host": B}}, admin=True, status=409)
    assert error_type(r) == "PortBindingAlreadyExists"
    assert f"on host {B} already exists" in r.data["NeutronError"]["message"]
    r = api.put(f"{url}/{A}/activate", admin=True, status=409)
    assert error_type(r) == "PortBindingAlreadyActive"
    r = api.delete(f"{url}/{A}", admin=True, status=409)
    assert error_type(r) == "PortBindingActive"
    # Nothing changed.
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(A, "ACTIVE"), (B, "INACTIVE")]


def test_not_found(cloud):
    api, url = cloud, bindings_url(cloud.vm_port)
    for method, path in (("GET", f"{url}/{C}"), ("DELETE", f"{url}/{C}"),
                         ("PUT", f"{url}/{C}/activate")):
        r = api.request(method, path, admin=True, status=404)
        assert error_type(r) == "PortBindingNotFound", (method, path)
    missing = "/v2.0/ports/00000000-0000-0000-0000-000000000000/bindings"
    for method, path, body in (("GET", missing, None), ("GET", f"{missing}/{A}", None),
                               ("POST", missing, {"binding": {"host": B}}),
                               ("DELETE", f"{missing}/{A}", None),
                               ("PUT", f"{missing}/{A}/activate", None)):
        r = api.request(method, path, body, admin=True, status=404)
        assert error_type(r) == "PortNotFound", (method, path)


def test_binding_to_a_host_without_agent_fails_and_leaves_nothing(cloud):
    api, url = cloud, bindings_url(cloud.vm_port)
    r = api.post(url, {"binding": {"host": "hv-nowhere"}}, admin=True, status=409)
    assert error_type(r) == "PortBindingError"
    r = api.post(url, {"binding": {"host": B, "vnic_type": "direct"}}, admin=True,
                 status=409)
    assert error_type(r) == "PortBindingError"
    assert [b["host"] for b in api.get(url, admin=True, status=200).data["bindings"]] == [A]
    unbound = api.port(api.net["id"], admin=True, device_owner="compute:nova")
    api.post(bindings_url(unbound), {"binding": {"host": "hv-nowhere"}}, admin=True,
             status=409)
    got = api.get(f"/v2.0/ports/{unbound['id']}", admin=True, status=200).data["port"]
    assert got["binding:host_id"] == ""


@pytest.mark.parametrize("body", [
    {"binding": {}},
    {"binding": {"host": ""}},
    {"binding": {"host": 5}},
    {"binding": {"host": B, "vnic_type": "fancy"}},
    {"binding": {"host": B, "profile": "x"}},
    {"binding": {"host": B, "status": "ACTIVE"}},
    {"binding": {"host": B, "vif_type": "ovs"}},
    {"binding": "hv-b"},
    {"host": B},
])
def test_bad_bodies(cloud, body):
    api, url = cloud, bindings_url(cloud.vm_port)
    r = api.post(url, body, admin=True, status=400)
    assert r.data["NeutronError"]["type"] in ("BadRequest", "InvalidInput")
    assert [b["host"] for b in api.get(url, admin=True, status=200).data["bindings"]] == [A]


def test_only_compute_ports(cloud):
    api = cloud
    port = api.port(api.net["id"], admin=True, **{"binding:host_id": A})
    url = bindings_url(port)
    for method, path, body in (("GET", url, None), ("GET", f"{url}/{A}", None),
                               ("POST", url, {"binding": {"host": B}}),
                               ("DELETE", f"{url}/{A}", None),
                               ("PUT", f"{url}/{A}/activate", None)):
        r = api.request(method, path, body, admin=True, status=400)
        assert "Operation only valid on compute ports" in r.data["NeutronError"]["message"]


def test_admin_only_by_default(cloud):
    api, url = cloud, bindings_url(cloud.vm_port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    calls = (("GET", url, None), ("GET", f"{url}/{A}", None),
             ("POST", url, {"binding": {"host": C}}), ("DELETE", f"{url}/{B}", None),
             ("PUT", f"{url}/{B}/activate", None))
    for method, path, body in calls:
        # The port's owner may not; another project does not see the port.
        r = api.request(method, path, body, project="p1", status=403)
        assert error_type(r) == "PolicyNotAuthorized", (method, path)
        r = api.request(method, path, body, project="p2", status=404)
        assert error_type(r) == "PortNotFound", (method, path)
    # nova's service user may.
    api.request("GET", url, project="p1", headers={"X-Roles": "service"}, status=200)
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(A, "ACTIVE"), (B, "INACTIVE")]


def test_host_update_onto_an_inactive_binding_supersedes_it(cloud):
    """binding:host_id set to a host with an inactive binding: that binding
    goes, and what its agent reported holds (an agent reports a port once:
    the port would stay DOWN)."""
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    report(api, B, port["id"])
    got = api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": B}},
                  admin=True, status=200).data["port"]
    assert (got["binding:host_id"], got["status"]) == (B, "ACTIVE")
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(B, "ACTIVE")]
    # Without a report there, the port waits for one.
    api.post(url, {"binding": {"host": C}}, admin=True, status=201)
    got = api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": C}},
                  admin=True, status=200).data["port"]
    assert (got["binding:host_id"], got["status"]) == (C, "DOWN")


# ------------------------------------------------------------------ host views
def test_pending_binding_gives_the_destination_the_port(cloud):
    """An inactive binding on B puts the port, its network, subnets, groups
    and peers in B's view, the port local there until B's agent has
    installed its flows (and said so), then on A again until activation
    (B's other ports keep reaching it on A meanwhile); the other hosts keep
    it on A; activation moves it for everyone."""
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    other = api.port(api.net["id"], admin=True, **{"binding:host_id": C})
    first_b, first_c = state(api, B), state(api, C)
    assert api.net["id"] not in {n["id"] for n in first_b["view"]["networks"]}

    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    got, want = follow(api, B, first_b)
    assert got == want
    assert host_of(want, port["id"]) == B          # local on B ...
    assert host_of(want, other["id"]) == C
    assert api.net["id"] in {n.id for n in want.networks}
    assert want.subnets and {h.name for h in want.remote_hosts} == {A, C}
    assert set(port["security_groups"]) <= {g.id for g in want.security_groups}
    got, want = follow(api, C, first_c)
    assert got == want and host_of(want, port["id"]) == A   # ... on A elsewhere
    assert host_of(canon(wire.view_from_dict(state(api, A)["view"])), port["id"]) == A

    # B's agent plugs the VIF and installs its flows: the port's status is
    # A's (not reported here), the binding remembers it, and B sees the
    # port on A again, keeping everything else.
    before_b = state(api, B)
    report(api, B, port["id"])
    assert api.get(f"/v2.0/ports/{port['id']}", admin=True).data["port"]["status"] == "DOWN"
    got, want = follow(api, B, before_b)
    assert got == want and host_of(want, port["id"]) == A
    assert {n.id for n in want.networks} == {api.net["id"]} and want.subnets
    assert {h.name for h in want.remote_hosts} == {A, C}
    first_a, first_b, first_c = state(api, A), state(api, B), state(api, C)

    api.put(f"{url}/{B}/activate", admin=True, status=200)
    # Installed on B before activation: the port is up at once.
    assert api.get(f"/v2.0/ports/{port['id']}", admin=True).data["port"]["status"] == "ACTIVE"
    for host, first in ((B, first_b), (C, first_c)):
        got, want = follow(api, host, first)
        assert got == want and host_of(want, port["id"]) == B, host
    got, want = follow(api, A, first_a)  # its only port there went away
    assert got == want and not want.ports and not want.networks


def test_deleting_a_pending_binding_takes_the_port_back(cloud):
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    first = state(api, B)
    assert host_of(wire.view_from_dict(first["view"]), port["id"]) == B
    api.delete(f"{url}/{B}", admin=True, status=204)
    got, want = follow(api, B, first)
    assert got == want
    assert not want.networks and not want.ports and not want.remote_hosts


def test_the_destination_follows_changes_of_a_pending_port(cloud):
    """A pending port's group change and deletion reach its destination host
    as they reach its own host."""
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    g = api.post("/v2.0/security-groups", {"security_group": {"name": "mig"}},
                 status=201).data["security_group"]["id"]
    first = state(api, B)
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [g]}}, admin=True,
            status=200)
    got, want = follow(api, B, first)
    assert got == want and g in {x.id for x in want.security_groups}
    first = state(api, B)
    api.delete(f"/v2.0/ports/{port['id']}", admin=True, status=204)
    got, want = follow(api, B, first)
    assert got == want and not want.networks


def test_a_report_for_a_pending_binding_tells_nova_the_vif_is_plugged(cloud):
    api, port = cloud, cloud.vm_port
    events = []
    api.plugin.status_listeners = [events.extend]
    api.post(bindings_url(port), {"binding": {"host": B}}, admin=True, status=201)
    assert report(api, B, port["id"]) == {"updated": 1}
    assert events == [(port["id"], "vm-1", "compute:nova", "ACTIVE")]
    report(api, B, port["id"])  # said once
    assert len(events) == 1
    # Another host holding no binding of it is still ignored.
    assert report(api, C, port["id"]) == {"updated": 0}


def test_host_filter_of_ports_matches_any_binding(cloud):
    """As Neutron: listing ports by binding:host_id finds a port being moved
    on both hosts."""
    api, port = cloud, cloud.vm_port

    def on(host):
        return {p["id"] for p in api.get(f"/v2.0/ports?binding:host_id={host}", admin=True,
                                         status=200).data["ports"]}
    assert port["id"] in on(A) and port["id"] not in on(B)
    api.post(bindings_url(port), {"binding": {"host": B}}, admin=True, status=201)
    assert port["id"] in on(A) and port["id"] in on(B) and port["id"] not in on(C)


@pytest.mark.parametrize("seed", [1, 2])
def test_deltas_equal_full_views_through_binding_operations(cloud, seed):
    """Random binding operations (and port moves, regroupings, deletions)
    between polls: every host's view after its delta equals its full view."""
    import random
    rnd = random.Random(seed)
    api = cloud
    hosts = (A, B, C)
    g = api.post("/v2.0/security-groups", {"security_group": {"name": "rg"}},
                 status=201).data["security_group"]["id"]
    ports = [cloud.vm_port]
    views = {h: state(api, h) for h in hosts}

    def bindings(p):
        return api.get(bindings_url(p), admin=True, status=200).data["bindings"]

    for step in range(25):
        ops = [rnd.choice(("bind", "bind", "activate", "unbind", "move", "regroup",
                           "add", "delete", "report")) for _ in range(rnd.choice((1, 2, 3)))]
        for op in ops:
            p = rnd.choice(ports) if ports else None
            if op == "add" or p is None:
                ports.append(api.port(api.net["id"], admin=True, device_owner="compute:nova",
                                      **{"binding:host_id": rnd.choice(hosts)}))
            elif op == "bind":
                api.post(bindings_url(p), {"binding": {"host": rnd.choice(hosts)}},
                         admin=True)  # 201, or 409 for a host it has
            elif op in ("activate", "unbind", "report"):
                inactive = [b["host"] for b in bindings(p) if b["status"] == "INACTIVE"]
                if not inactive:
                    continue
                h = rnd.choice(inactive)
                if op == "activate":
                    api.put(f"{bindings_url(p)}/{h}/activate", admin=True, status=200)
                elif op == "unbind":
                    api.delete(f"{bindings_url(p)}/{h}", admin=True, status=204)
                else:
                    report(api, h, p["id"])
            elif op == "move":
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": rnd.choice(
                    hosts + ("",))}}, admin=True, status=200)
            elif op == "regroup":
                groups = [g] if rnd.random() < .5 else []
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"security_groups": groups}},
                        admin=True, status=200)
            elif op == "delete":
                api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
                ports.remove(p)
        for h in hosts:
            reply = state(api, h, since=views[h]["revision"])
            view = wire.view_from_dict(views[h]["view"])
            got = wire.view_from_dict(reply["view"]) if reply["full"] else \
                wire.apply_delta(view, wire.delta_from_dict(reply["delta"]))
            full = state(api, h)
            assert canon(got) == canon(wire.view_from_dict(full["view"])), (step, ops, h)
            views[h] = {"revision": reply["revision"], "view": wire.view_to_dict(got)}


def test_openstacksdk_drives_a_move(tmp_path):
    """openstacksdk's port binding calls (what nova's code mirrors) against
    a real server: create on the destination, list, activate, delete the
    source's."""
    import json
    import urllib.request

    import openstack.connection
    from keystoneauth1 import noauth, session

    from quantum_ovs.testing.server import ServerProcess

    srv = ServerProcess(f"sqlite:///{tmp_path}/sdk.sqlite").start()
    try:
        for i, h in enumerate((A, B)):
            req = urllib.request.Request(
                srv.url + "/agent-api/v1/agents", method="POST",
                headers={"Content-Type": "application/json",
                         "X-Agent-Token": srv.agent_credential(h)},
                data=json.dumps({"host": h, "tunnel_ip": f"192.0.2.{i + 1}", "started": True,
                                 "configurations": {"tunnel_types": ["vxlan"]}}).encode())
            urllib.request.urlopen(req, timeout=10).read()
        sess = session.Session(auth=noauth.NoAuth(),
                               additional_headers={"X-Roles": "admin",
                                                   "X-Project-Id": "demo"})
        conn = openstack.connection.Connection(session=sess,
                                               network_endpoint_override=srv.url)
        net = conn.network.create_network(name="sdk")
        conn.network.create_subnet(network_id=net.id, cidr="10.60.0.0/24", ip_version=4)
        port = conn.network.create_port(network_id=net.id, device_owner="compute:nova",
                                        binding_host_id=A)
        made = conn.network.create_port_binding(port, host=B, profile={"k": "v"})
        assert (made.host, made.status, made.vif_type, made.profile) == \
            (B, "INACTIVE", "ovs", {"k": "v"})
        assert sorted((b.host, b.status) for b in conn.network.port_bindings(port)) == \
            [(A, "ACTIVE"), (B, "INACTIVE")]
        # (openstacksdk merges the reply's top level into the binding it
        # listed; Neutron's api-ref wraps it in "binding", as we do.)
        assert conn.network.activate_port_binding(port, host=B).host == B
        assert sorted((b.host, b.status) for b in conn.network.port_bindings(port)) == \
            [(A, "INACTIVE"), (B, "ACTIVE")]
        conn.network.delete_port_binding(port, host=A)
        assert [(b.host, b.status) for b in conn.network.port_bindings(port)] == \
            [(B, "ACTIVE")]
        assert conn.network.get_port(port.id).binding_host_id == B
    finally:
        srv.stop()


def test_concurrent_activations_and_creations(cloud):
    """Racing calls on one port: one creation of a host's binding and one
    activation win, the others are 409; the rows stay consistent."""
    import threading
    api, url = cloud, bindings_url(cloud.vm_port)

    def race(method, path, body=None, n=6):
        codes, start = [], threading.Barrier(n)

        def call():
            start.wait()
            codes.append(api.request(method, path, body, admin=True).status_int)
        threads = [threading.Thread(target=call) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(codes)

    assert race("POST", url, {"binding": {"host": B}}) == [201] + [409] * 5
    assert race("PUT", f"{url}/{B}/activate") == [200] + [409] * 5
    listed = api.get(url, admin=True, status=200).data["bindings"]
    assert [(b["host"], b["status"]) for b in listed] == [(B, "ACTIVE"), (A, "INACTIVE")]
    got = api.get(f"/v2.0/ports/{cloud.vm_port['id']}", admin=True, status=200).data["port"]
    assert got["binding:host_id"] == B


def test_update_a_binding(cloud):
    """PUT .../bindings/{host}: a binding's profile and vnic type; the active
    one's show on the port."""
    api, port = cloud, cloud.vm_port
    url = bindings_url(port)
    api.post(url, {"binding": {"host": B}}, admin=True, status=201)
    got = api.put(f"{url}/{B}", {"binding": {"profile": {"pci": "x"}}}, admin=True,
                  status=200).data["binding"]
    assert (got["host"], got["status"], got["profile"]) == (B, "INACTIVE", {"pci": "x"})
    assert api.get(f"{url}/{B}", admin=True).data["binding"]["profile"] == {"pci": "x"}
    got = api.put(f"{url}/{A}", {"binding": {"host": A, "profile": {"k": 1}}}, admin=True,
                  status=200).data["binding"]
    assert (got["status"], got["profile"]) == ("ACTIVE", {"k": 1})
    shown = api.get(f"/v2.0/ports/{port['id']}", admin=True).data["port"]
    assert shown["binding:profile"] == {"k": 1}
    # Errors, each leaving the binding as it was.
    r = api.put(f"{url}/{B}", {"binding": {"vnic_type": "direct"}}, admin=True, status=409)
    assert error_type(r) == "PortBindingError"
    r = api.put(f"{url}/{C}", {"binding": {"profile": {}}}, admin=True, status=404)
    assert error_type(r) == "PortBindingNotFound"
    api.put(f"{url}/{B}", {"binding": {"host": C}}, admin=True, status=400)
    api.put(f"{url}/{B}", {"binding": {"status": "ACTIVE"}}, admin=True, status=400)
    api.put(f"{url}/{B}", {"binding": {"profile": "x"}}, admin=True, status=400)
    r = api.put(f"{url}/{B}", {"binding": {"profile": {}}}, project="p1", status=403)
    assert error_type(r) == "PolicyNotAuthorized"
    got = api.get(f"{url}/{B}", admin=True).data["binding"]
    assert (got["vnic_type"], got["profile"]) == ("normal", {"pci": "x"})
