"""Port bindings and the server's nova events against Neutron (review of
session 28).  Each test fails on the code it was written against."""

import http.server
import json
import threading
import time
import uuid

import pytest

from quantum_ovs.db import agents as agents_db
from quantum_ovs.nova.api import NetworkAPI, NetworkError
from quantum_ovs.service import build
from tests.functional.conftest import Client, make_conf


# ------------------------------------------------------------------ a nova
class StrictNova:
    """nova's os-server-external-events as nova validates it
    (nova/api/openstack/compute/schemas/server_external_events.py: each
    event's server_uuid has ``format: uuid``; one invalid event makes the
    whole request a 400 and no event of it is processed)."""

    def __init__(self, known=None):
        self.events = []
        self.refused = []
        self.posts = []
        # With ``known``: nova's instances; a request none of whose events
        # is for one of them is a 404 (nova's ServerExternalEventsController
        # .create: "No instances found for any event").
        self.known = known
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                events = body["events"]
                outer.posts.append(time.monotonic())
                bad = []
                for e in events:
                    try:
                        uuid.UUID(e["server_uuid"])
                    except (ValueError, KeyError, TypeError):
                        bad.append(e)
                if outer.known is not None and not bad and not any(
                        e["server_uuid"] in outer.known for e in events):
                    outer.refused.extend(events)
                    out = json.dumps({"itemNotFound": {
                        "code": 404, "message": "No instances found for any event"}}).encode()
                    self.send_response(404)
                elif bad:
                    outer.refused.extend(events)
                    out = json.dumps({"badRequest": {
                        "code": 400, "message": "Invalid input for field/attribute "
                                                "server_uuid"}}).encode()
                    self.send_response(400)
                else:
                    outer.events.extend(events)
                    out = json.dumps({"events": [dict(e, code=200) for e in events]}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2.1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def settle(self, seconds=1.5):
        time.sleep(seconds)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def nova():
    n = StrictNova()
    yield n
    n.close()


@pytest.fixture
def make_napi(make_api, db_url):
    """APIs whose [nova] section points at a nova (events gathered for
    half a second, so that what happens together is sent together); on
    SQLite only: nothing here is about the database."""
    if not db_url.startswith("sqlite"):
        pytest.skip("not about the database")
    make_api  # (the schema)
    made = []

    def factory(nova, **nova_opts):
        conf = make_conf(db_url)
        conf.set_override("url", nova.url, group="nova")
        conf.set_override("send_events_interval", 0.5, group="nova")
        for k, val in nova_opts.items():
            conf.set_override(k, val, group="nova")
        db, plugin, app = build(conf)
        made.append(db)
        return Client(app, plugin, db)
    yield factory
    for db in made:
        db.dispose()


@pytest.fixture
def napi(make_napi, nova):
    return make_napi(nova, max_attempts=2)


ADMIN = {"admin": True}


def register(api, host, ip):
    api.post("/agent-api/v1/agents", {"host": host, "tunnel_ip": ip, "started": True,
                                      "configurations": {"tunnel_types": ["vxlan"],
                                                         "bridge_mappings": {}}},
             status=200)


def report(api, host, port_id, ofport=7, unplugged=False):
    if unplugged:
        body = {"unplugged": [port_id]}
    else:
        body = {"plugged": [{"port_id": port_id, "ofport": ofport}], "installed": [port_id]}
    return api.post(f"/agent-api/v1/hosts/{host}/ports", body, status=200).data


# ------------------------------------------------------------------ nova events
def test_a_tenants_non_uuid_device_id_does_not_cost_other_instances_their_events(napi, nova):
    """Neutron's Notifier._is_compute_port (neutron/notifiers/nova.py)
    sends an event only for a compute port whose device_id is
    uuid-like.  Here any device_id goes: nova refuses the whole batch for
    one bad server_uuid (400), and the notifier drops the batch, so a
    tenant deleting a compute:* port of its own with a junk device_id
    (its right on its own network) takes the network-vif-plugged /
    -deleted events of other projects' instances with it."""
    register(napi, "hv-1", "192.0.2.1")
    # A tenant's own network and port (device_owner compute:* on one's own
    # network is the owner's right in Neutron's policy).
    tnet = napi.network(project="evil")
    napi.subnet(tnet["id"], "10.9.0.0/24", project="evil")
    junk = napi.port(tnet["id"], project="evil", device_owner="compute:nova",
                     device_id="not-an-instance")
    # Another project's instance, bound by nova.
    net = napi.network(project="p1")
    napi.subnet(net["id"], "10.8.0.0/24", project="p1")
    vm = str(uuid.uuid4())
    port = napi.port(net["id"], admin=True, project_id="p1", device_owner="compute:nova",
                     device_id=vm, **{"binding:host_id": "hv-1"})
    # Both within one batch: the instance's VIF comes up, the tenant
    # deletes its port.
    report(napi, "hv-1", port["id"])
    napi.delete(f"/v2.0/ports/{junk['id']}", project="evil", status=204)
    nova.settle(3)
    plugged = [e for e in nova.events if e["name"] == "network-vif-plugged"]
    assert [(e["server_uuid"], e["tag"]) for e in plugged] == [(vm, port["id"])], \
        (nova.events, nova.refused)


def test_updating_a_compute_ports_addresses_tells_nova_network_changed(napi, nova):
    """Neutron (notify_nova_on_port_data_changes, on by default) sends
    network-changed for an API update of a compute port
    (Notifier.send_network_change / create_port_changed_event), so that
    nova refreshes the instance's network info cache; none is sent here."""
    net = napi.network()
    sub = napi.subnet(net["id"], "10.7.0.0/24")
    vm = str(uuid.uuid4())
    port = napi.port(net["id"], admin=True, device_owner="compute:nova", device_id=vm)
    napi.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.7.0.77"}]}}, status=200)
    nova.settle()
    assert {"name": "network-changed", "server_uuid": vm, "tag": port["id"]} in [
        {k: e[k] for k in ("name", "server_uuid", "tag")} for e in nova.events], nova.events


def _names(nova, vm):
    return [(e["name"], e["tag"]) for e in nova.events if e["server_uuid"] == vm]


def test_a_floating_ip_associated_moved_and_taken_tells_both_instances(napi, nova):
    """Neutron's send_network_change: a floating IP created on a port,
    moved to another (both instances are told) and deleted."""
    register(napi, "hv-1", "192.0.2.1")
    ext = napi.post("/v2.0/networks", {"network": {"router:external": True}}, admin=True,
                    status=201).data["network"]
    napi.subnet(ext["id"], "172.24.9.0/24", admin=True)
    net = napi.network()
    sub = napi.subnet(net["id"], "10.6.0.0/24")
    r = napi.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, status=201).data["router"]
    napi.put(f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": sub["id"]},
             status=200)
    vm1, vm2 = str(uuid.uuid4()), str(uuid.uuid4())
    p1 = napi.port(net["id"], device_owner="compute:nova", device_id=vm1)
    p2 = napi.port(net["id"], device_owner="compute:nova", device_id=vm2)
    nova.settle()
    nova.events.clear()
    fip = napi.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "port_id": p1["id"]}}, status=201).data["floatingip"]
    nova.settle()
    assert _names(nova, vm1) == [("network-changed", p1["id"])] and not _names(nova, vm2)
    nova.events.clear()
    napi.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": p2["id"]}},
             status=200)
    nova.settle()
    assert _names(nova, vm1) == [("network-changed", p1["id"])]
    assert _names(nova, vm2) == [("network-changed", p2["id"])]
    nova.events.clear()
    napi.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"description": "x"}},
             status=200)
    napi.delete(f"/v2.0/floatingips/{fip['id']}", status=204)
    nova.settle()
    assert _names(nova, vm2) == [("network-changed", p2["id"])] and not _names(nova, vm1)


def test_a_port_moved_off_its_host_tells_nova_its_vif_is_unplugged(napi, nova):
    """ACTIVE -> DOWN by a new binding:host_id is an unplug for nova
    (Neutron's status listener, record_port_status_changed)."""
    register(napi, "hv-1", "192.0.2.1")
    register(napi, "hv-2", "192.0.2.2")
    net = napi.network()
    napi.subnet(net["id"], "10.5.0.0/24")
    vm = str(uuid.uuid4())
    port = napi.port(net["id"], admin=True, device_owner="compute:nova", device_id=vm,
                     **{"binding:host_id": "hv-1"})
    report(napi, "hv-1", port["id"])
    nova.settle()
    assert ("network-vif-plugged", port["id"]) in _names(nova, vm)
    nova.events.clear()
    napi.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "hv-2"}}, admin=True,
             status=200)
    nova.settle()
    assert ("network-vif-unplugged", port["id"]) in _names(nova, vm), nova.events


def test_an_event_for_an_instance_nova_does_not_know_does_not_hold_up_the_others(
        make_napi):
    """Nova answers 404 to a request none of whose events names one of its
    instances.  Neutron's Notifier.send_events (neutron/notifiers/nova.py)
    logs that and goes on (``except nova_exceptions.NotFound``); here a 404
    is retried max_attempts times with backoff (about 20 s with the
    default 10) on the one sending thread, and every other instance's
    events wait behind it.  Any tenant can send one: a compute:* port of
    its own with a made-up instance uuid, deleted."""
    vm = str(uuid.uuid4())
    nova = StrictNova(known={vm})
    try:
        napi = make_napi(nova)  # the default max_attempts
        register(napi, "hv-1", "192.0.2.1")
        tnet = napi.network(project="evil")
        napi.subnet(tnet["id"], "10.9.0.0/24", project="evil")
        junk = napi.port(tnet["id"], project="evil", device_owner="compute:nova",
                         device_id=str(uuid.uuid4()))
        net = napi.network(project="p1")
        napi.subnet(net["id"], "10.8.0.0/24", project="p1")
        port = napi.port(net["id"], admin=True, project_id="p1",
                         device_owner="compute:nova", device_id=vm,
                         **{"binding:host_id": "hv-1"})
        napi.delete(f"/v2.0/ports/{junk['id']}", project="evil", status=204)
        time.sleep(1.0)  # the junk event's batch is sent alone
        start = time.monotonic()
        report(napi, "hv-1", port["id"])
        deadline = start + 5
        while time.monotonic() < deadline and not nova.events:
            time.sleep(0.05)
        assert [(e["name"], e["server_uuid"]) for e in nova.events] == [
            ("network-vif-plugged", vm)], (nova.events, nova.refused, len(nova.posts))
    finally:
        nova.close()


# ------------------------------------------------------------------ the nova hook
class WebNetworkAPI(NetworkAPI):
    """quantum_ovs.nova.api.NetworkAPI with its requests served by the app
    under test (as the service: admin, or as the instance's project)."""

    def __init__(self, client):
        super().__init__("http://unused")
        self.client = client

    def _request(self, method, path, body=None, ctx=None, admin=True, project=None):
        if project is None and ctx is not None:
            project = ctx.get("project_id")
        r = self.client.request(method, path, body, project=project or "service",
                                admin=admin)
        if r.status_int >= 400:
            err = r.data["NeutronError"]
            raise NetworkError(r.status_int, err["type"], err["message"])
        return r.data


def test_the_nova_hooks_network_info_has_the_floating_ips(make_api, db_url):
    """nova's network info lists each fixed address's floating IPs (nova/
    network/neutron.py: _nw_info_get_ips, from
    _get_floating_ips_by_fixed_and_port): what ``server show`` and the
    metadata's public-ipv4 come from.  The hook's get_instance_nw_info
    always gives ``floating_ips: []``."""
    if not db_url.startswith("sqlite"):
        pytest.skip("not about the database")
    api = make_api(service_plugins=["router"])
    register(api, "hv-a", "192.0.2.1")
    ext = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}},
                   status=201, project="admin-p", admin=True).data["network"]
    api.subnet(ext["id"], cidr="172.24.4.0/24", project="admin-p", admin=True)
    net = api.network(project="p1")
    sub = api.subnet(net["id"], "10.8.0.0/24", project="p1")
    r = api.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, project="p1", status=201).data["router"]
    api.put(f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": sub["id"]},
            project="p1", status=200)
    nova = WebNetworkAPI(api)
    ctx = {"project_id": "p1"}
    inst = {"uuid": str(uuid.uuid4()), "project_id": "p1", "availability_zone": "az1"}
    (vif,) = nova.allocate_for_instance(ctx, inst, [{"network_id": net["id"]}], host="hv-a")
    fip = api.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "port_id": vif["id"]}},
        project="p1", status=201).data["floatingip"]
    (vif,) = nova.get_instance_nw_info(ctx, inst)
    (ip,) = vif["network"]["subnets"][0]["ips"]
    assert [f["address"] for f in ip["floating_ips"]] == [fip["floating_ip_address"]], ip


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("vnic", ["accelerator-direct", "accelerator-direct-physical"])
def test_accelerator_vnic_types_are_accepted_and_fail_to_bind(api, db_url, vnic):
    """neutron-lib's portbindings.VNIC_TYPES (what binding:vnic_type is
    validated against, for a port and for a binding of the bindings API)
    has accelerator-direct and accelerator-direct-physical (nova's Cyborg
    ports); the reference (openstack-network-v2.openapi.yaml) lists them.
    Neutron takes them and an Open vSwitch agent cannot bind them
    (binding_failed); here they are a 400."""
    if not db_url.startswith("sqlite"):
        pytest.skip("not about the database")
    register(api, "hv-1", "192.0.2.1")
    net = api.network()
    api.subnet(net["id"], "10.5.0.0/24")
    resp = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                             "binding:vnic_type": vnic,
                                             "binding:host_id": "hv-1"}}, **ADMIN)
    assert resp.status_int == 201, resp.text[:300]
    got = resp.data["port"]
    assert (got["binding:vnic_type"], got["binding:vif_type"]) == (vnic, "binding_failed")


def test_a_binding_profile_neutron_stores_is_accepted(api, db_url):
    """ML2's _process_port_binding_attributes refuses a binding:profile
    whose JSON is longer than models.BINDING_PROFILE_LEN (4095), the size
    of its column (port_bindings.profile here too: String(4095)); here the
    limit is 4000, so a profile of 4001-4095 characters Neutron stores is a
    400."""
    if not db_url.startswith("sqlite"):
        pytest.skip("not about the database")
    net = api.network()
    profile = {"pci_slot": "x" * 4070}
    assert 4000 < len(json.dumps(profile)) <= 4095
    resp = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                             "binding:profile": profile}},
                    headers={"X-Roles": "admin,service"})
    assert resp.status_int == 201, resp.text[:300]
    got = api.get(f"/v2.0/ports/{resp.data['port']['id']}", status=200, **ADMIN).data["port"]
    assert got["binding:profile"] == profile


# ------------------------------------------------------------------ races
def test_a_source_agents_late_unplug_report_does_not_take_down_the_moved_port(
        api, db_url, monkeypatch):
    """Live migration: the guest leaves the source A (whose agent reports
    the VIF unplugged) as nova activates the binding on B.  db.agents.report
    reads the port's binding as A's (no lock), and its UPDATE of
    port_bindings / ports is by port id only: when activate commits in
    between (PostgreSQL, READ COMMITTED), A's report is written over the
    port's active binding, now B's -- flows_installed false, ofport gone,
    the port DOWN (B's agent reported the port while the binding was
    pending, and reports a port once: it stays DOWN) and nova told
    network-vif-unplugged.  Neutron's update_device_down
    (neutron/plugins/ml2/rpc.py) ignores a device whose binding is not on
    the reporting host (``port_bound_to_host``), under the port's lock."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises write transactions (BEGIN IMMEDIATE)")
    register(api, "hv-a", "192.0.2.1")
    register(api, "hv-b", "192.0.2.2")
    net = api.network()
    api.subnet(net["id"], "10.40.0.0/24")
    port = api.port(net["id"], admin=True, device_owner="compute:nova",
                    device_id=str(uuid.uuid4()), **{"binding:host_id": "hv-a"})
    url = f"/v2.0/ports/{port['id']}/bindings"
    report(api, "hv-a", port["id"], ofport=5)
    api.post(url, {"binding": {"host": "hv-b"}}, status=201, **ADMIN)
    report(api, "hv-b", port["id"], ofport=9)  # B prepared the port

    real_update = agents_db._update
    threads, activated = [], []

    def update(s, table, key, params, **values):
        if not threads:
            # nova activates B's binding while A's report is between its
            # read and its writes (a fix that locks may keep it waiting).
            t = threading.Thread(target=lambda: activated.append(api.put(
                f"{url}/hv-b/activate", status=200, **ADMIN).data))
            threads.append(t)
            t.start()
            t.join(3)
        return real_update(s, table, key, params, **values)

    monkeypatch.setattr(agents_db, "_update", update)
    report(api, "hv-a", port["id"], unplugged=True)
    monkeypatch.setattr(agents_db, "_update", real_update)
    threads[0].join(20)
    assert activated, "activate did not complete"

    got = api.get(f"/v2.0/ports/{port['id']}", status=200, **ADMIN).data["port"]
    assert got["binding:host_id"] == "hv-b"
    active = [b for b in api.get(url, status=200, **ADMIN).data["bindings"]
              if b["status"] == "ACTIVE"]
    assert [b["host"] for b in active] == ["hv-b"]
    assert got["status"] == "ACTIVE"


def test_a_report_racing_the_deletion_of_its_inactive_binding_is_no_500(
        api, db_url, monkeypatch):
    """After activation nova deletes the source's binding while the
    source's agent reports the VIF it lost.  bindings.on_report reads the
    source's inactive binding row without a lock and changes it through
    the ORM: when the DELETE commits in between (PostgreSQL, READ
    COMMITTED), the flush matches no row and SQLAlchemy's StaleDataError
    (not retried by Database.write) makes the agent's report a 500.
    Neutron's update_device_down (neutron/plugins/ml2/rpc.py) on a device
    whose binding is gone answers normally (``port_exists`` False, no
    error)."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises write transactions (BEGIN IMMEDIATE)")
    import functools

    from quantum_ovs.db import bindings as bindings_db
    register(api, "hv-a", "192.0.2.1")
    register(api, "hv-b", "192.0.2.2")
    net = api.network()
    api.subnet(net["id"], "10.40.0.0/24")
    port = api.port(net["id"], admin=True, device_owner="compute:nova",
                    device_id=str(uuid.uuid4()), **{"binding:host_id": "hv-a"})
    url = f"/v2.0/ports/{port['id']}/bindings"
    report(api, "hv-a", port["id"], ofport=5)
    api.post(url, {"binding": {"host": "hv-b"}}, status=201, **ADMIN)
    report(api, "hv-b", port["id"], ofport=9)
    api.put(f"{url}/hv-b/activate", status=200, **ADMIN)

    threads, deleted = [], []

    def on_report(plugin, s, host, *a):
        out = bindings_db.on_report(plugin, s, host, *a)
        if not threads:
            t = threading.Thread(target=lambda: deleted.append(
                api.delete(f"{url}/hv-a", status=204, **ADMIN)))
            threads.append(t)
            t.start()
            t.join(3)
        return out

    monkeypatch.setattr(api.plugin, "report_hooks",
                        [functools.partial(on_report, api.plugin)])
    resp = api.request("POST", "/agent-api/v1/hosts/hv-a/ports",
                       {"unplugged": [port["id"]]}, status=None)
    threads[0].join(20)
    assert deleted, "the deletion did not complete"
    assert resp.status_int == 200, (resp.status, resp.text[:300])
