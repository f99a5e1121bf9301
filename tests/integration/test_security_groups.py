"""Security groups on the real data plane: ICMP, TCP and UDP pass exactly as
the rules say, statefully; removing a rule cuts new connections."""

import subprocess
import sys
import time

import pytest

from tests.integration.test_agent import Api, make_agent, vm  # noqa: F401 (fixtures)
from tests.integration.test_agent import api, server  # noqa: F401

SERVER_PY = r"""
import socket, sys
proto, port = sys.argv[1], int(sys.argv[2])
if proto == "tcp":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept(); c.sendall(b"hello\n"); c.close()
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(100); s.sendto(b"pong:" + data, peer)
"""

CLIENT_PY = r"""
import socket, sys
proto, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((ip, port), timeout=1.5); print(s.recv(100).decode().strip())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
        s.sendto(b"x", (ip, port)); print(s.recvfrom(100)[0].decode())
except OSError as e:
    print("fail", type(e).__name__)
"""


class Listener:
    def __init__(self, inst, proto, port):
        self.proc = subprocess.Popen(["ip", "netns", "exec", inst.ns, sys.executable, "-c",
                                      SERVER_PY, proto, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)


def reach(inst, proto, ip, port):
    out = subprocess.run(["ip", "netns", "exec", inst.ns, sys.executable, "-c", CLIENT_PY,
                          proto, ip, str(port)], capture_output=True, text=True, timeout=20)
    return out.stdout.strip() in ("hello", "pong:x")


def group(api, name, rules):  # noqa: F811
    g = api("POST", "/v2.0/security-groups", {"security_group": {"name": name}})
    gid = g["security_group"]["id"]
    made = []
    for r in rules:
        made.append(api("POST", "/v2.0/security-group-rules", {"security_group_rule": dict(
            security_group_id=gid, ethertype="IPv4", **r)})["security_group_rule"])
    return gid, made


def eventually(fn, want=True, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn() == want:
            return True
        time.sleep(0.1)
    return fn() == want


@pytest.fixture
def agent(ovs, server, tmp_path):  # noqa: F811
    a = make_agent(ovs, server, tmp_path)
    yield a
    a.stop()


def test_rules_allow_exactly_what_they_say(ovs, api, agent):  # noqa: F811
    net, _ = api.network("10.20.0.0/24")
    cli_g, _ = group(api, "clients", [])
    other_g, _ = group(api, "others", [])
    srv_g, rules = group(api, "servers", [
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 8080,
         "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"},
        {"direction": "ingress", "protocol": "udp", "port_range_min": 5353,
         "port_range_max": 5353},
        {"direction": "ingress", "protocol": "icmp", "remote_group_id": cli_g},
    ])
    p_srv, srv = vm(ovs, api, net, security_groups=[srv_g])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    p_oth, oth = vm(ovs, api, net, security_groups=[other_g])
    for p in (p_srv, p_cli, p_oth):
        assert api.wait_status(p["id"], "ACTIVE")
    tcp = Listener(srv, "tcp", 8080)
    tcp2 = Listener(srv, "tcp", 8081)
    udp = Listener(srv, "udp", 5353)
    udp2 = Listener(srv, "udp", 5354)
    try:
        # ICMP only from members of the clients group
        assert eventually(lambda: cli.ping(srv.ip))
        assert not oth.ping(srv.ip, count=2)
        # TCP 8080 from anywhere, not 8081
        assert reach(cli, "tcp", srv.ip, 8080) and reach(oth, "tcp", srv.ip, 8080)
        assert not reach(cli, "tcp", srv.ip, 8081)
        # UDP 5353, not 5354 (replies come back: stateful)
        assert reach(cli, "udp", srv.ip, 5353)
        assert not reach(cli, "udp", srv.ip, 5354)
        # new inbound to the client is refused although its own traffic works
        assert not srv.ping(cli.ip, count=2)
        # removing the TCP rule cuts new connections
        api("DELETE", f"/v2.0/security-group-rules/{rules[0]['id']}")
        assert eventually(lambda: reach(cli, "tcp", srv.ip, 8080), want=False)
        # the client joins the others group: ICMP is refused to it as well
        api("PUT", f"/v2.0/ports/{p_cli['id']}", {"port": {"security_groups": [other_g]}})
        assert eventually(lambda: cli.ping(srv.ip, wait=0.5), want=False)
    finally:
        for listener in (tcp, tcp2, udp, udp2):
            listener.stop()
