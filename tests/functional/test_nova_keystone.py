"""The nova notifier authenticates with keystoneauth1 ([nova] auth_type
password), finds nova in a real Keystone's catalog and keeps delivering
events after its first token has expired (Keystone issues tokens that
live a few seconds here).  Nova is a stand-in that checks every token
with Keystone, as nova's keystonemiddleware would."""

import http.client
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from quantum_ovs.testing.server import ServerProcess
from tests.fixtures.keystone import REGION, KeystoneServer
from tests.fixtures.tempest import Identity

TOKEN_LIFE = 10  # seconds ([token] expiration)
PASSWORD = "quantum-" + os.urandom(4).hex()
HOST = "compute-ks"


def validate(ks, admin_password, token):
    """Keystone's answer to GET /v3/auth/tokens for ``token`` (200: valid,
    404: expired or unknown), asked with a new admin token."""
    req = urllib.request.Request(ks.url + "/auth/tokens", headers={
        "X-Auth-Token": Identity(ks.url, admin_password).token, "X-Subject-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


class Nova:
    """os-server-external-events, answering 401 to a token Keystone does
    not take."""

    def __init__(self, ks):
        self.events, self.seen = [], []  # seen: (token, Keystone's status)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = self.headers.get("X-Auth-Token", "")
                status = validate(ks, ks.admin_password, token) if token else 401
                outer.seen.append((token, status))
                if status != 200 or self.path != "/v2.1/os-server-external-events":
                    self.send_response(401 if status != 200 else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.events.extend(body["events"])
                out = json.dumps({"events": [dict(e, code=200) for e in body["events"]]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v2.1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cloud(tmp_path):
    ks = KeystoneServer(token_expiration=TOKEN_LIFE).start()
    nova = server = None
    try:
        nova = Nova(ks)
        # (a new admin token for each call: they live TOKEN_LIFE seconds)
        def admin(method, path, body=None):
            return Identity(ks.url, ks.admin_password).call(method, path, body)
        service = admin("POST", "/projects", {"project": {
            "name": "service", "domain_id": "default"}})["project"]["id"]
        uid = admin("POST", "/users", {"user": {
            "name": "quantum", "password": PASSWORD, "domain_id": "default"}})["user"]["id"]
        role = admin("GET", "/roles?name=admin")["roles"][0]["id"]
        admin("PUT", f"/projects/{service}/users/{uid}/roles/{role}")
        sid = admin("POST", "/services", {"service": {"type": "compute",
                                                      "name": "nova"}})["service"]["id"]
        for interface in ("public", "internal"):
            admin("POST", "/endpoints", {"endpoint": {
                "service_id": sid, "interface": interface, "region_id": REGION,
                # only the internal endpoint leads to nova ([nova] endpoint_type)
                "url": nova.url if interface == "internal" else "http://127.0.0.1:9/v2.1"}})
        server = ServerProcess(f"sqlite:///{tmp_path}/q.sqlite", extra_conf=(
            "[nova]\nauth_type = password\n"
            f"auth_url = {ks.url}\nusername = quantum\npassword = {PASSWORD}\n"
            "project_name = service\nuser_domain_name = Default\n"
            f"project_domain_name = Default\nregion_name = {REGION}\n"
            "endpoint_type = internal\ntimeout = 10\nsend_events_interval = 0.05\n")).start()
        yield ks, nova, server
    finally:
        if server is not None:
            server.stop()
        if nova is not None:
            nova.close()
        ks.stop()


def call(server, method, path, body=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Content-Type": "application/json", "X-Roles": "admin",
               "X-Project-Id": "proj-ks"}
    if token:
        headers["X-Agent-Token"] = token
    try:
        conn.request(method, path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status < 300, (method, path, resp.status, data[:500])
        return json.loads(data) if data else None
    finally:
        conn.close()


def test_events_are_delivered_after_the_first_token_expired(cloud):
    ks, nova, server = cloud
    agent = server.agent_credential(HOST)
    call(server, "POST", "/agent-api/v1/agents", {"host": HOST, "tunnel_ip": "192.0.2.40"},
         token=agent)
    net = call(server, "POST", "/v2.0/networks", {"network": {"name": "ks"}})["network"]
    call(server, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.73.0.0/24", "ip_version": 4}})
    vm = str(uuid.uuid4())
    port = call(server, "POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "device_id": vm, "device_owner": "compute:nova",
        "binding:host_id": HOST}})["port"]
    report = f"/agent-api/v1/hosts/{HOST}/ports"

    call(server, "POST", report, {"installed": [port["id"]]}, token=agent)
    assert [e["name"] for e in nova.wait_for(1)] == ["network-vif-plugged"], nova.seen
    # Delivered with a Keystone token, to the nova of the catalog.  (On a
    # loaded machine an earlier try may have come too late for its token:
    # nova answered 401 and keystoneauth got a new one.)
    first_token = next(t for t, status in nova.seen if status == 200)

    # Until Keystone no longer takes the notifier's first token.
    deadline = time.monotonic() + TOKEN_LIFE * 4
    while validate(ks, ks.admin_password, first_token) == 200:
        assert time.monotonic() < deadline, "the token never expired"
        time.sleep(0.5)

    call(server, "POST", report, {"unplugged": [port["id"]]}, token=agent)
    events = nova.wait_for(2)
    assert [e["name"] for e in events] == ["network-vif-plugged",
                                           "network-vif-unplugged"], nova.seen
    assert all(e["server_uuid"] == vm and e["tag"] == port["id"] for e in events)
    token, status = nova.seen[-1]
    assert status == 200 and token != first_token
