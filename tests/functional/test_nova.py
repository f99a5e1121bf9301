"""The nova hook against a running server, and the server's nova events."""

import http.server
import json
import threading
import time
import urllib.request
import uuid

import pytest

from quantum_ovs.nova.api import (
    ExternalNetworkAttachForbidden,
    NetworkAmbiguous,
    NetworkAPI,
    NetworkError,
    PortInUse,
    PortNotUsable,
)
from quantum_ovs.testing.server import ServerProcess

PROJECT = "proj-nova"


class NovaReceiver:
    """A tiny stand-in for nova's os-server-external-events API."""

    def __init__(self, fail_first=0):
        self.events = []
        self.requests = 0
        self.fail_first = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                assert self.path == "/v2.1/os-server-external-events"
                outer.events.extend(body["events"])
                out = json.dumps({"events": [dict(e, code=200) for e in body["events"]]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(out.encode())

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2.1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def nova():
    r = NovaReceiver(fail_first=1)
    yield r
    r.close()


@pytest.fixture
def server(tmp_path, nova):
    with ServerProcess(f"sqlite:///{tmp_path}/nova.sqlite",
                       extra_conf=f"[nova]\nurl = {nova.url}\n"
                                  "send_events_interval = 0.05\n") as s:
        s.agent_token = s.agent_credential("compute-1")
        yield s


def call(server, method, path, body=None, project=PROJECT, admin=True):
    headers = {"Content-Type": "application/json", "X-Project-Id": project,
               "X-Agent-Token": server.agent_token}  # compute-1's credential
    if admin:
        headers["X-Roles"] = "admin"
    req = urllib.request.Request(server.url + path, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def make_net(server, name="n1", cidr="10.30.0.0/24"):
    net = call(server, "POST", "/v2.0/networks", {"network": {"name": name,
                                                              "project_id": PROJECT}})
    call(server, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["network"]["id"], "cidr": cidr, "ip_version": 4,
        "project_id": PROJECT, "dns_nameservers": ["10.30.0.53"]}})
    return net["network"]


def instance():
    return {"uuid": str(uuid.uuid4()), "project_id": PROJECT, "availability_zone": "az1"}


CTX = {"project_id": PROJECT}


def ports_of(server, inst):
    return call(server, "GET", f"/v2.0/ports?device_id={inst['uuid']}")["ports"]


def test_allocate_and_network_info(server):
    call(server, "POST", "/agent-api/v1/agents", {"host": "compute-1", "tunnel_ip":
                                                  "192.0.2.10", "configurations": {
                                                      "tunnel_types": ["vxlan"]}})
    net = make_net(server)
    api = NetworkAPI(server.url)
    inst = instance()
    info = api.allocate_for_instance(CTX, inst, [{"network_id": net["id"]}], host="compute-1")
    (vif,) = info
    (port,) = ports_of(server, inst)
    assert vif["id"] == port["id"] and vif["address"] == port["mac_address"]
    assert port["device_owner"] == "compute:az1" and port["binding:host_id"] == "compute-1"
    assert vif["type"] == "ovs" and vif["details"]["bridge_name"] == "br-int"
    assert vif["devname"] == ("tap" + port["id"])[:14]
    assert vif["network"]["id"] == net["id"] and vif["network"]["label"] == "n1"
    (sub,) = vif["network"]["subnets"]
    assert sub["cidr"] == "10.30.0.0/24" and sub["gateway"]["address"] == "10.30.0.1"
    assert [d["address"] for d in sub["dns"]] == ["10.30.0.53"]
    assert [ip["address"] for ip in sub["ips"]] == [port["fixed_ips"][0]["ip_address"]]
    assert api.get_instance_nw_info(CTX, inst) == info
    api.deallocate_for_instance(CTX, inst)
    assert ports_of(server, inst) == []


def test_default_network_and_ambiguity(server):
    api = NetworkAPI(server.url)
    net = make_net(server)
    inst = instance()
    (vif,) = api.allocate_for_instance(CTX, inst, None, host="compute-1")
    assert vif["network"]["id"] == net["id"]
    assert vif["type"] == "binding_failed"  # no agent on compute-1
    make_net(server, "n2", "10.31.0.0/24")
    with pytest.raises(NetworkAmbiguous):
        api.allocate_for_instance(CTX, instance(), None)
    with pytest.raises(NetworkAmbiguous):
        api.validate_networks(CTX, None)
    assert api.validate_networks(CTX, [{"network_id": net["id"]}], 3) == 3
    with pytest.raises(NetworkError) as e:
        api.validate_networks(CTX, [{"network_id": str(uuid.uuid4())}])
    assert e.value.status == 404


def test_fixed_ip_and_adopted_port(server):
    api = NetworkAPI(server.url)
    net = make_net(server)
    mine = call(server, "POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                         "project_id": PROJECT}})["port"]
    inst = instance()
    info = api.allocate_for_instance(CTX, inst, [(net["id"], "10.30.0.99", None),
                                                 (None, None, mine["id"])])
    assert sorted(v["id"] for v in info) == sorted(p["id"] for p in ports_of(server, inst))
    ips = {ip["address"] for v in info for s in v["network"]["subnets"] for ip in s["ips"]}
    assert "10.30.0.99" in ips
    with pytest.raises(PortInUse):
        api.allocate_for_instance(CTX, instance(), [(None, None, mine["id"])])
    api.deallocate_for_instance(CTX, inst, requested_port_ids=[mine["id"]])
    left = call(server, "GET", f"/v2.0/ports/{mine['id']}")["port"]
    assert left["device_id"] == "" and ports_of(server, inst) == []


def test_failure_midway_leaves_nothing(server):
    api = NetworkAPI(server.url)
    net = make_net(server)
    spare = call(server, "POST", "/v2.0/ports", {"port": {"network_id": net["id"],
                                                          "project_id": PROJECT}})["port"]
    before = call(server, "GET", "/v2.0/ports")["ports"]
    inst = instance()
    with pytest.raises(NetworkError) as e:
        api.allocate_for_instance(CTX, inst, [(net["id"], None, None),
                                              (None, None, spare["id"]),
                                              (net["id"], "10.99.0.5", None)], host="h")
    assert e.value.status == 400
    after = call(server, "GET", "/v2.0/ports")["ports"]
    assert sorted(p["id"] for p in after) == sorted(p["id"] for p in before)
    restored = call(server, "GET", f"/v2.0/ports/{spare['id']}")["port"]
    assert restored["device_id"] == "" and restored["binding:host_id"] == ""


def test_vif_events_reach_nova(server, nova):
    call(server, "POST", "/agent-api/v1/agents", {"host": "compute-1", "tunnel_ip":
                                                  "192.0.2.10", "configurations": {
                                                      "tunnel_types": ["vxlan"]}})
    net = make_net(server)
    api = NetworkAPI(server.url)
    inst = instance()
    (vif,) = api.allocate_for_instance(CTX, inst, [{"network_id": net["id"]}],
                                       host="compute-1")
    # a non-compute port never makes events
    other = call(server, "POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "binding:host_id": "compute-1",
        "device_owner": "network:dhcp", "device_id": "dhcp1"}})["port"]
    call(server, "POST", "/agent-api/v1/hosts/compute-1/ports",
         {"installed": [vif["id"], other["id"]]})
    events = nova.wait_for(1)
    assert events == [{"name": "network-vif-plugged", "server_uuid": inst["uuid"],
                       "tag": vif["id"], "status": "completed"}]
    assert nova.requests >= 2  # the first delivery failed and was retried
    call(server, "POST", "/agent-api/v1/hosts/compute-1/ports", {"unplugged": [vif["id"]]})
    api.deallocate_for_instance(CTX, inst)
    events = nova.wait_for(3)
    assert [e["name"] for e in events] == ["network-vif-plugged", "network-vif-unplugged",
                                           "network-vif-deleted"]
    assert all(e["tag"] == vif["id"] and e["server_uuid"] == inst["uuid"] for e in events)


def test_ports_are_named_after_the_instance_hostname(server):
    """dns-integration: as nova, a created port's dns_name is the
    instance's hostname; a user's port keeps a name it has and gets the
    hostname when it has none; detached, as nova, a kept port loses its
    name."""
    net = make_net(server)
    api = NetworkAPI(server.url)
    inst = dict(instance(), hostname="web-1")
    api.allocate_for_instance(CTX, inst, [{"network_id": net["id"]}])
    (port,) = ports_of(server, inst)
    assert port["dns_name"] == "web-1"
    assert port["dns_assignment"][0]["fqdn"] == "web-1.openstacklocal."
    named = call(server, "POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "project_id": PROJECT, "dns_name": "mine"}})["port"]
    bare = call(server, "POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "project_id": PROJECT}})["port"]
    other = dict(instance(), hostname="web-2")
    api.allocate_for_instance(CTX, other, [{"port_id": named["id"]},
                                           {"port_id": bare["id"]}])
    got = {p["id"]: p["dns_name"] for p in ports_of(server, other)}
    assert got == {named["id"]: "mine", bare["id"]: "web-2"}
    api.deallocate_for_instance(CTX, other, requested_port_ids=[bare["id"], named["id"]])
    assert call(server, "GET", f"/v2.0/ports/{bare['id']}")["port"]["dns_name"] == ""
    # A hostname that is no DNS label names nothing.
    odd = dict(instance(), hostname="not_a_label")
    api.allocate_for_instance(CTX, odd, [{"network_id": net["id"]}])
    assert [p["dns_name"] for p in ports_of(server, odd)] == [""]


# ------------------------------------------------------------ confinement
# An instance is confined to its project, as nova confines it: its
# networks are its project's own or shared with it, a port it is given is
# its project's, and its ports are its project's with its uuid as device.

def tenant(server, method, path, body=None, project="p-victim"):
    return call(server, method, path, body, project=project, admin=False)


def private_net(server, project, cidr, **attrs):
    """A network of ``project`` with a subnet: made by the project itself,
    or with admin-only ``attrs`` (router:external, shared) by an admin."""
    body = {"network": dict(attrs, name=project + "-net")}
    if attrs:
        body["network"]["project_id"] = project
    make = (lambda path, b: call(server, "POST", path, b, project="admin-p")) if attrs else (
        lambda path, b: tenant(server, "POST", path, b, project=project))
    net = make("/v2.0/networks", body)["network"]
    make("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}})
    return net


def hook(server, reads):
    """The hook reading networks as the instance's project (noauth, or
    keystone with the user's token), or as the service (keystone with
    only the service's token: the hook's own checks alone confine)."""
    api = NetworkAPI(server.url)
    if reads == "as-service":
        api._get_as = lambda project, path, ctx=None: api._get_json(path)
    return api


@pytest.mark.parametrize("reads", ["as-project", "as-service"])
def test_an_instance_gets_no_port_on_another_projects_network(server, reads):
    api = hook(server, reads)
    victim_net = private_net(server, "p-victim", "10.77.0.0/24")
    ext = private_net(server, "admin-p", "172.24.4.0/24", **{"router:external": True})
    own = private_net(server, "p-attacker", "10.88.0.0/24")
    ctx = {"project_id": "p-attacker"}
    inst = {"uuid": str(uuid.uuid4()), "project_id": "p-attacker"}
    # Another project's private network: as the server answers that project
    # (the port made on its own network first is deleted again).
    for request in ([{"network_id": victim_net["id"]}],
                    [(own["id"], None, None), (victim_net["id"], None, None)]):
        with pytest.raises(NetworkError) as e:
            api.validate_networks(ctx, request)
        assert (e.value.status, e.value.type) == (404, "NetworkNotFound")
        with pytest.raises(NetworkError) as e:
            api.allocate_for_instance(ctx, inst, request, host="compute-1")
        assert (e.value.status, e.value.type) == (404, "NetworkNotFound")
    # An external network neither its own nor shared (nova's
    # ExternalNetworkAttachForbidden for non-admins).
    with pytest.raises(ExternalNetworkAttachForbidden):
        api.allocate_for_instance(ctx, inst, [{"network_id": ext["id"]}])
    with pytest.raises(ExternalNetworkAttachForbidden):
        api.validate_networks(ctx, [{"network_id": ext["id"]}])
    assert call(server, "GET", "/v2.0/ports")["ports"] == []
    # Nor is another project's network a default one.
    assert api.allocate_for_instance({"project_id": "p-nobody"},
                                     dict(inst, project_id="p-nobody"), None) == []


@pytest.mark.parametrize("reads", ["as-project", "as-service"])
def test_an_instance_adopts_no_port_of_another_project(server, reads):
    api = hook(server, reads)
    victim_net = private_net(server, "p-victim", "10.77.0.0/24")
    victim_port = tenant(server, "POST", "/v2.0/ports", {"port": {
        "network_id": victim_net["id"]}})["port"]
    ctx = {"project_id": "p-attacker"}
    inst = {"uuid": str(uuid.uuid4()), "project_id": "p-attacker"}
    with pytest.raises(PortNotUsable):
        api.validate_networks(ctx, [{"port_id": victim_port["id"]}])
    with pytest.raises(PortNotUsable):
        api.allocate_for_instance(ctx, inst, [{"port_id": victim_port["id"]}],
                                  host="compute-1")
    left = call(server, "GET", f"/v2.0/ports/{victim_port['id']}")["port"]
    assert left["device_id"] == "" and left["binding:host_id"] == ""


@pytest.mark.parametrize("reads", ["as-project", "as-service"])
def test_a_port_of_another_project_naming_an_instance_is_no_vif_of_it(server, reads):
    """Any project may name any device_id on its own ports: the one it
    names in the victim's instance is no VIF of it, and deleting that
    instance leaves it alone."""
    api = hook(server, reads)
    victim_net = private_net(server, "p-victim", "10.77.0.0/24")
    att_net = private_net(server, "p-attacker", "10.88.0.0/24")
    vctx = {"project_id": "p-victim"}
    vinst = {"uuid": str(uuid.uuid4()), "project_id": "p-victim"}
    (mine,) = api.allocate_for_instance(vctx, vinst, [{"network_id": victim_net["id"]}])
    planted = tenant(server, "POST", "/v2.0/ports", {"port": {
        "network_id": att_net["id"], "device_id": vinst["uuid"],
        "device_owner": "compute:nova"}}, project="p-attacker")["port"]
    assert [v["id"] for v in api.get_instance_nw_info(vctx, vinst)] == [mine["id"]]
    api.deallocate_for_instance(vctx, vinst)
    assert [p["id"] for p in ports_of(server, vinst)] == [planted["id"]]


@pytest.mark.parametrize("reads", ["as-project", "as-service"])
def test_an_instance_uses_networks_shared_with_its_project(server, reads):
    api = hook(server, reads)
    shared = private_net(server, "owner", "10.60.0.0/24", shared=True)
    to_me = private_net(server, "owner", "10.61.0.0/24")
    tenant(server, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": to_me["id"], "action": "access_as_shared",
        "target_tenant": "p-user"}}, project="owner")
    ctx = {"project_id": "p-user"}
    inst = {"uuid": str(uuid.uuid4()), "project_id": "p-user"}
    request = [{"network_id": shared["id"]}, {"network_id": to_me["id"]}]
    assert api.validate_networks(ctx, request) == 1
    info = api.allocate_for_instance(ctx, inst, request)
    assert sorted(v["network"]["id"] for v in info) == sorted([shared["id"], to_me["id"]])
    assert {p["project_id"] for p in ports_of(server, inst)} == {"p-user"}
    # The one network shared with every project is the default one.
    other = {"uuid": str(uuid.uuid4()), "project_id": "p-other"}
    (vif,) = api.allocate_for_instance({"project_id": "p-other"}, other, None)
    assert vif["network"]["id"] == shared["id"]
    api.deallocate_for_instance(ctx, inst)
    assert ports_of(server, inst) == []


@pytest.mark.parametrize("reads", ["as-project", "as-service"])
def test_an_external_network_takes_instances_only_shared_or_for_an_admin(server, reads):
    """As nova: an external network that is not shared is refused to a
    non-admin instance even when its project owns it."""
    api = hook(server, reads)

    external = {"router:external": True}
    owned = private_net(server, "p-owner", "172.24.8.0/24", **external)
    public = private_net(server, "admin-p", "172.24.9.0/24", shared=True, **external)
    inst = {"uuid": str(uuid.uuid4()), "project_id": "p-owner"}
    for ctx in ({"project_id": "p-owner"}, {"project_id": "p-owner", "is_admin": False}):
        with pytest.raises(ExternalNetworkAttachForbidden):
            api.validate_networks(ctx, [{"network_id": owned["id"]}])
        with pytest.raises(ExternalNetworkAttachForbidden):
            api.allocate_for_instance(ctx, inst, [{"network_id": owned["id"]}])
    assert ports_of(server, inst) == []
    ctx = {"project_id": "p-owner"}
    (vif,) = api.allocate_for_instance(ctx, inst, [{"network_id": public["id"]}])
    assert vif["network"]["id"] == public["id"]
    admin = {"uuid": str(uuid.uuid4()), "project_id": "p-owner"}
    (vif,) = api.allocate_for_instance({"project_id": "p-owner", "is_admin": True}, admin,
                                       [{"network_id": owned["id"]}])
    assert vif["network"]["id"] == owned["id"]
