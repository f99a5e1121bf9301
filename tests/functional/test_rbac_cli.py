"""The real openstack CLI's ``network rbac`` commands against a
quantum-ovs-server, on SQLite.

``--target-project`` makes the CLI look the project up in Identity; a
stub identity endpoint (loopback) answers 403 to the lookup, on which
the CLI takes the name as the project id, as it does for a user who may
not list projects."""

import http.server
import json
import threading

import pytest

from tests.functional.test_openstack_cli import OpenStack, cli_server  # noqa: F401


class _Identity(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = 403, {}
        if self.path.rstrip("/") == "/v3":
            status, body = 200, {"version": {"id": "v3.14", "status": "stable", "links": [
                {"rel": "self", "href": f"http://127.0.0.1:{self.server.server_port}/v3/"}]}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def identity_stub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Identity)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/v3"
    finally:
        srv.shutdown()
        srv.server_close()


def test_network_rbac_create_list_show_delete(cli_server, identity_stub):  # noqa: F811
    os_ = OpenStack(cli_server.url)
    os_.env.update(OS_IDENTITY_ENDPOINT_OVERRIDE=identity_stub, OS_IDENTITY_API_VERSION="3")
    net = os_("network", "create", "cli-rbac-net")
    pol = os_("network", "rbac", "create", "--type", "network", "--action",
              "access_as_shared", "--target-project", "proj-b", net["id"])
    assert pol["object_id"] == net["id"]
    assert pol["object_type"] == "network"
    assert pol["action"] == "access_as_shared"
    assert pol["target_project_id"] == "proj-b"
    listed = os_("network", "rbac", "list", "--long")
    assert [(x["ID"], x["Object ID"], x["Action"]) for x in listed] == \
        [(pol["id"], net["id"], "access_as_shared")]
    shown = os_("network", "rbac", "show", pol["id"])
    assert shown["target_project_id"] == "proj-b"
    os_("network", "rbac", "delete", pol["id"], parse=False)
    assert os_("network", "rbac", "list") == []
