"""A real agent with its own host's credential, over TLS, on a real data
plane; what a refused or revoked credential does to it.

A real quantum-ovs-server serving HTTPS (a CA made by the test), a
private Open vSwitch, the agent in-process.
"""

import json
import ssl
import time
import urllib.request

import pytest

from agent.daemon import Agent, Settings
from quantum_ovs.db import agent_auth
from quantum_ovs.db.session import Database
from tests.fixtures import tls
from quantum_ovs.testing.server import ServerProcess

HOST = "hv-cred"


@pytest.fixture
def server(tmp_path):
    ca_path, cert, key = tls.server_certificate(tmp_path)
    with ServerProcess(f"sqlite:///{tmp_path}/cred.sqlite", ca_file=ca_path,
                       extra_conf=f"ssl_cert_file = {cert}\nssl_key_file = {key}\n") as s:
        yield s


def api(server, method, path, body=None):
    req = urllib.request.Request(
        server.url + path, method=method,
        headers={"Content-Type": "application/json", "X-Project-Id": "demo",
                 "X-Roles": "admin"},
        data=json.dumps(body).encode() if body is not None else None)
    ctx = ssl.create_default_context(cafile=server.ca_file)
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def status(server, port_id):
    return api(server, "GET", f"/v2.0/ports/{port_id}")["port"]["status"]


def wait_status(server, port_id, want, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(server, port_id) == want:
            return True
        time.sleep(0.1)
    return False


def make_agent(ovs, server, tmp_path, token, name="state"):
    return Agent(Settings(host=HOST, server_url=server.url, token=token,
                          ca_file=server.ca_file, ovsdb=ovs.db_remote,
                          datapath_type="netdev", local_ip="192.0.2.1",
                          tunnel_types=("vxlan",), of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                          state_path=str(tmp_path / name), report_interval=2,
                          polling_interval=2))


def test_agent_with_its_credential_over_tls_then_revoked(ovs, server, tmp_path):
    net = api(server, "POST", "/v2.0/networks", {"network": {"name": "n"}})["network"]
    api(server, "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"],
                                                     "cidr": "10.40.0.0/24", "ip_version": 4}})

    def vm():
        port = api(server, "POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST}})["port"]
        inst = ovs.add_instance(port["fixed_ips"][0]["ip_address"], 24,
                                mac=port["mac_address"], iface_id=port["id"])
        return port, inst

    # Another host's credential: the agent of HOST gets nowhere.
    wrong = make_agent(ovs, server, tmp_path, server.agent_credential("hv-other"), "wrong")
    wrong.start()
    try:
        assert not wrong.ready.wait(3)
    finally:
        wrong.stop()
    assert HOST not in {a["host"] for a in api(server, "GET", "/v2.0/agents")["agents"]}
    assert "refused" in server.log() and "'hv-other' tried to" in server.log()

    agent = make_agent(ovs, server, tmp_path, server.agent_credential(HOST))
    agent.start()
    try:
        assert agent.ready.wait(20)
        (pa, a), (pb, b) = vm(), vm()
        assert wait_status(server, pa["id"], "ACTIVE") and wait_status(server, pb["id"], "ACTIVE")
        assert a.ping(b.ip, count=2, wait=1)
        # Revoked: the agent learns nothing more and reports nothing more,
        # and keeps the data plane it has.
        db = Database(server.db_url)
        try:
            agent_auth.revoke(db, host=HOST)
        finally:
            db.dispose()
        pc = api(server, "POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": HOST}})["port"]
        ovs.add_instance(pc["fixed_ips"][0]["ip_address"], 24, mac=pc["mac_address"],
                         iface_id=pc["id"])
        time.sleep(4)  # two polling intervals
        assert status(server, pc["id"]) == "DOWN"
        assert a.ping(b.ip, count=2, wait=1)
        assert "unknown or revoked token" in server.log()
    finally:
        agent.stop()
