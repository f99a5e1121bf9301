"""The REST API served by real uWSGI (quantum_ovs.wsgi.api:application,
etc/quantum-ovs-api-uwsgi.ini) with 2 worker processes: a smoke subset of
the API tests and the `openstack` CLI against it."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import quantum_ovs
from agent import sync_client
from quantum_ovs.db import agent_auth, migration
from quantum_ovs.db.session import Database
from quantum_ovs.testing.client import Client
from quantum_ovs.testing.procs import alive, stop_group
from tests.functional.test_openstack_cli import OpenStack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(quantum_ovs.__file__)))
SAMPLE = os.path.join(ROOT, "etc", "quantum-ovs-api-uwsgi.ini")


def uwsgi_bin():
    """`uwsgi`: next to this Python first (pip's, test-requirements.txt),
    then on PATH (Debian's uwsgi with uwsgi-plugin-python3)."""
    here = os.path.join(os.path.dirname(sys.executable), "uwsgi")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("uwsgi")
    if found is None:
        raise RuntimeError("uWSGI is not installed (pip install uwsgi; see "
                           "test-requirements.txt)")
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UwsgiServer:
    """uWSGI started from the sample ini, its socket and configuration
    files replaced; stopped by PID."""

    def __init__(self, workdir, db_url):
        self.dir = workdir
        self.db_url = db_url
        self.port = _free_port()
        self.conf = os.path.join(workdir, "quantum-ovs.conf")
        self.api_log = os.path.join(workdir, "api.log")
        self.uwsgi_log = os.path.join(workdir, "uwsgi.log")
        with open(self.conf, "w") as f:
            f.write(f"[DEFAULT]\nlog_file = {self.api_log}\n"
                    f"[database]\nconnection = {db_url}\n")
        with open(SAMPLE) as f:
            ini = f.read()
        ini, n = re.subn(r"(?m)^http-socket = .*$", f"http-socket = 127.0.0.1:{self.port}", ini)
        assert n == 1
        ini, n = re.subn(r"(?m)^env = QUANTUM_OVS_CONFIG_FILES=.*$",
                         f"env = QUANTUM_OVS_CONFIG_FILES={self.conf}", ini)
        assert n == 1
        self.ini = os.path.join(workdir, "uwsgi.ini")
        with open(self.ini, "w") as f:
            f.write(ini)
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=120):
        # This tree's code (the worktree, not only what is installed) and
        # this virtualenv's packages.
        cmd = [uwsgi_bin(), "--ini", self.ini, "--pythonpath", ROOT]
        if sys.prefix != sys.base_prefix:
            cmd += ["--virtualenv", sys.prefix]
        with open(self.uwsgi_log, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("uWSGI exited:\n" + self.log())
            # Both workers have built the application (lazy-apps).
            if self.log().count("WSGI app 0 (mountpoint='') ready") >= 2:
                return self
            if "unable to load app" in self.log():
                self.stop()
                raise RuntimeError("uWSGI could not load the application:\n" + self.log())
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("uWSGI did not start:\n" + self.log())

    def log(self):
        with open(self.uwsgi_log) as f:
            return f.read()

    def workers(self):
        return [int(p) for p in re.findall(r"spawned uWSGI worker \d+ \(pid: (\d+)", self.log())]

    def stop(self):
        stop_group(self.proc, timeout=15)


@pytest.fixture(scope="module")
def uwsgi_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("uwsgi")
    url = f"sqlite:///{d}/qovs.sqlite"
    db = Database(url)
    try:
        migration.upgrade(db.engine)  # quantum-ovs-db-manage upgrade, before serving
    finally:
        db.dispose()
    srv = UwsgiServer(str(d), url).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_served_by_two_uwsgi_workers(uwsgi_server):
    workers = uwsgi_server.workers()
    assert len(workers) == 2
    assert all(alive(pid) for pid in workers)


def test_api_smoke_under_uwsgi(uwsgi_server):
    c = Client(uwsgi_server.port, project="uw-project")
    try:
        versions = c.json("GET", "/")["versions"]
        assert versions[0]["links"][0]["href"] == f"{uwsgi_server.url}/v2.0/"
        net = c.json("POST", "/v2.0/networks", {"network": {"name": "uw-net"}}, want=201)
        net = net["network"]
        assert net["project_id"] == "uw-project"
        sub = c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.66.0.0/24", "ip_version": 4}},
            want=201)["subnet"]
        assert sub["gateway_ip"] == "10.66.0.1"
        port = c.json("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}},
                      want=201)["port"]
        assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
        upd = c.json("PUT", f"/v2.0/ports/{port['id']}", {"port": {"name": "renamed"}})
        assert upd["port"]["name"] == "renamed"
        # every worker sees what the other wrote (one database)
        for _ in range(4):
            listed = c.json("GET", f"/v2.0/ports?network_id={net['id']}")["ports"]
            assert [p["id"] for p in listed] == [port["id"]]
            c.close()  # a new connection: maybe the other worker
        # errors: NeutronError bodies
        status, body = c.request("GET", "/v2.0/networks/does-not-exist")
        assert status == 404
        assert body["NeutronError"]["type"] == "NetworkNotFound"
        status, body = c.request("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.66.0.0/33", "ip_version": 4}})
        assert status == 400
        assert body["NeutronError"]["type"] == "InvalidInput"
        status, body = c.request("DELETE", f"/v2.0/networks/{net['id']}")
        assert status == 409
        assert body["NeutronError"]["type"] == "NetworkInUse"
        c.call("DELETE", f"/v2.0/ports/{port['id']}", want=204)
        c.call("DELETE", f"/v2.0/subnets/{sub['id']}", want=204)
        c.call("DELETE", f"/v2.0/networks/{net['id']}", want=204)
        assert c.request("GET", f"/v2.0/networks/{net['id']}")[0] == 404
        # the load balancer's health check
        assert c.call("GET", "/healthcheck", want=200)
    finally:
        c.close()
    with open(uwsgi_server.api_log) as f:
        logged = f.read()
    assert re.search(r"req-[0-9a-f-]{36} - uw-project .*POST /v2.0/networks 201", logged)


def test_openstack_cli_under_uwsgi(uwsgi_server):
    """A few commands (each costs seconds of client start-up): the CLI's
    breadth is test_openstack_cli's, against quantum-ovs-server."""
    os_ = OpenStack(uwsgi_server.url)
    net = os_("network", "create", "uw-cli-net")
    assert net["status"] == "ACTIVE"
    sub = os_("subnet", "create", "--network", net["id"], "--subnet-range", "10.67.0.0/24",
              "uw-cli-sub")
    assert sub["gateway_ip"] == "10.67.0.1"
    port = os_("port", "create", "--network", net["id"], "uw-cli-port")
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    # an error answer, as the CLI shows it
    res = subprocess.run(os_.argv + ["network", "delete", net["id"]], env=os_.env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "NetworkInUse" in res.stderr or "in use" in res.stderr.lower(), res.stderr
    os_("port", "delete", port["id"], parse=False)
    os_("network", "delete", net["id"], parse=False)


def test_an_agents_streamed_poll_under_uwsgi(uwsgi_server):
    """The agent's streamed poll (feature ``stream``) through uWSGI: each
    change reaches it as it comes, not when the poll ends."""
    host = "uw-host"
    db = Database(uwsgi_server.db_url)
    try:
        token = agent_auth.create(db, host)[1]
    finally:
        db.dispose()
    c = Client(uwsgi_server.port, project="uw-stream", roles="admin")
    client = sync_client.SyncClient(uwsgi_server.url, host, token)
    try:
        client.register("192.0.2.90")
        net = c.json("POST", "/v2.0/networks", {"network": {"name": "uw-s"}}, want=201)
        net = net["network"]
        c.json("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.67.0.0/24", "ip_version": 4}}, want=201)

        def port():
            return c.json("POST", "/v2.0/ports", {"port": {
                "network_id": net["id"], "binding:host_id": host,
                "security_groups": []}}, want=201)["port"]["id"]

        port()
        kind, _view, rev = client.poll(-1, 0)
        assert kind == "full"
        time.sleep(0.3)  # both workers' feeds (SQLite: a 50 ms poll) past it
        rev = client.poll(rev, 0)[2]
        made, done = {}, threading.Event()

        def make():
            made["at"] = time.monotonic()
            made["id"] = port()
            done.set()

        threading.Timer(0.5, make).start()
        stream = client.poll_stream(rev, wait=8)
        kind, delta, _rev = next(stream)
        assert time.monotonic() - made["at"] < 5.0  # as it came, not at the end (8 s)
        assert done.wait(10)
        assert kind == "delta" and [p.id for p in delta.ports] == [made["id"]]
        assert [k for k, _d, _r in stream] == ["delta"]  # then the empty end
    finally:
        client.close()
        c.close()
