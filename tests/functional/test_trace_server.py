"""quantum-ovs-trace --server: a host's view from a running server."""

import json
import urllib.request

from quantum_ovs.cmd import trace as cli
from quantum_ovs.testing.server import ServerProcess


def call(server, method, path, body=None, token=""):
    req = urllib.request.Request(server.url + path, method=method,
                                 headers={"Content-Type": "application/json",
                                          "X-Project-Id": "p", "X-Roles": "admin",
                                          "X-Agent-Token": token},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def test_trace_against_a_running_server(tmp_path, capsys):
    with ServerProcess(f"sqlite:///{tmp_path}/t.sqlite") as server:
        token = server.agent_credential("h")  # the host's credential reads its view
        call(server, "POST", "/agent-api/v1/agents", {"host": "h", "tunnel_ip": "192.0.2.1",
                                                      "configurations": {
                                                          "tunnel_types": ["vxlan"]}},
             token=token)
        net = call(server, "POST", "/v2.0/networks", {"network": {"name": "n"}})["network"]
        call(server, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}})
        ports = [call(server, "POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": "h"}})["port"] for _ in range(2)]
        a, b = sorted(ports, key=lambda p: p["id"])
        # (--token=...: a credential may begin with "-", which argparse
        # would take for an option as a separate argument)
        rc = cli.main(["--server", server.url, "--host", "h", f"--token={token}",
                       "--from-port", a["id"],
                       "--packet", f"icmp,eth_dst={b['mac_address']},"
                                   f"ipv4_dst={b['fixed_ips'][0]['ip_address']}"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{b['id']}=1002" in out.splitlines()[0]
    assert any(line.startswith("output 1002 ") for line in out.splitlines()), out
