"""The metadata service and the DNS resolver as Neutron's (review of
session 26): a port's egress security groups decide whether it reaches
them (Neutron's firewalls make no exception for 169.254.169.254 or the
resolver), and nova's failures reach the instance as Neutron's proxy
passes them (neutron/agent/metadata/proxy_base.py _proxy_request).  Each
test failed before its fix."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.metadata.proxy import MetadataProxy, Requester
from agent.metadata.settings import MetadataSettings
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.rules import metadata as md
from quantum_ovs.compiler.rules import network as netrules
from quantum_ovs.compiler.rules.common import link_local
from quantum_ovs.compiler.synth import make_network, make_port, make_subnet
from quantum_ovs.compiler.trace import trace
from quantum_ovs.model import Chassis, HostView, Rule, SecurityGroup

PROXY = 900
SECRET = "shh"
VM = "6c2e6a8e-0000-4000-8000-000000000001"
WHO = Requester("pa", VM, "p1", "10.0.0.5")


# ---------------------------------------------------------------- flows
def _no_egress_view(egress=False):
    """Two ports of one network in a group with ingress rules only (the
    user removed both egress rules): Neutron lets nothing out of them.
    ``egress``: the group has its two default egress rules back."""
    gid = "sg-no-egress"
    a = make_port(0, 0, groups=(gid,))
    b = make_port(0, 1, groups=(gid,))
    rules = [Rule(f"{gid}-in4", gid, "ingress", "IPv4"),
             Rule(f"{gid}-in6", gid, "ingress", "IPv6")]
    if egress:
        rules += [Rule(f"{gid}-out4", gid, "egress", "IPv4"),
                  Rule(f"{gid}-out6", gid, "egress", "IPv6")]
    sg = SecurityGroup(gid, tuple(rules), frozenset(ip for p in (a, b) for ip in p.ips))
    return HostView(
        host="host-a", networks=(make_network(0),), subnets=(make_subnet(0),),
        ports=(a, b), security_groups=(sg,),
        chassis=Chassis(vif_ofports=(("port-0-0", 5), ("port-0-1", 6)),
                        metadata_ofport=PROXY))


def test_security_group_without_egress_blocks_metadata_as_in_neutron():
    """Neutron's firewalls (openvswitch_firewall, iptables_firewall, OVN
    ACLs) have no exemption for 169.254.169.254: the port's egress rules
    decide whether the instance reaches the metadata proxy.  Here the
    request is steered to the proxy in SERVICES, before EGRESS_ACL, so a
    group with no egress rule (which does block everything else, as the
    control below shows) does not stop metadata (user_data, keys)."""
    e = Engine.from_view(_no_egress_view())
    a, b = e.ports["port-0-0"], e.ports["port-0-1"]
    base = {"in_port": 5, "eth_src": a.mac_address, "eth_type": 0x0800, "ip_proto": 6,
            "ipv4_src": a.ips[0], "tcp_src": 40000, "tcp_dst": 80}
    # control: egress is denied for ordinary traffic (to b on the same network)
    t = trace(e.flows(), dict(base, eth_dst=b.mac_address, ipv4_dst=b.ips[0]))
    assert 6 not in t.ports
    # metadata, IPv4 and IPv6, must be denied alike
    t = trace(e.flows(), dict(base, eth_dst=md.METADATA_MAC, ipv4_dst=md.METADATA_IP))
    assert PROXY not in t.ports, "IPv4 metadata reached the proxy despite no egress rule"
    t = trace(e.flows(), {"in_port": 5, "eth_src": a.mac_address, "eth_dst": md.METADATA_MAC,
                          "eth_type": 0x86DD, "ip_proto": 6,
                          "ipv6_src": link_local(a.mac_address),
                          "ipv6_dst": md.METADATA_IPV6, "tcp_src": 4000, "tcp_dst": 80})
    assert PROXY not in t.ports, "IPv6 metadata reached the proxy despite no egress rule"


@pytest.mark.parametrize("egress", [False, True])
def test_egress_rules_decide_metadata_and_dns(egress):
    """With the default egress rules the requests reach the proxy and the
    agent's resolver; without them, neither (DNS would otherwise be a way
    out through the agent's forwarder)."""
    e = Engine.from_view(_no_egress_view(egress))
    a = e.ports["port-0-0"]
    ip = {"in_port": 5, "eth_src": a.mac_address, "eth_type": 0x0800, "ipv4_src": a.ips[0]}
    md4 = trace(e.flows(), dict(ip, eth_dst=md.METADATA_MAC, ipv4_dst=md.METADATA_IP,
                                ip_proto=6, tcp_src=40000, tcp_dst=80))
    assert (PROXY in md4.ports) is egress
    dns = trace(e.flows(), dict(ip, eth_dst=netrules.DHCP_SERVER_MAC,
                                ipv4_dst=netrules.DHCP_FALLBACK_SERVER, ip_proto=17,
                                udp_src=40000, udp_dst=53))
    assert bool(dns.controller) is egress
    assert not dns.ports


# ---------------------------------------------------------------- proxy
class _FixedNova:
    """A nova answering every request with one status."""

    def __init__(self, status):
        outer = self
        self.status = status

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                data = b"x"
                self.send_response(outer.status)
                self.send_header("Content-Length", "1")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.t = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.t.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _proxy(nova_port, timeout=0.5):
    s = MetadataSettings(shared_secret=SECRET, nova_host="127.0.0.1", nova_port=nova_port,
                         timeout=timeout)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return MetadataProxy(s, lambda addr: WHO).start(sock), sock.getsockname()[1]


def _status(port, path="/openstack/latest/meta_data.json"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status


def test_nova_unreachable_is_503_as_neutron():
    """neutron/agent/metadata/proxy_base.py _proxy_request: a
    requests.ConnectionError (nova down / refused) is
    webob.exc.HTTPServiceUnavailable, 503 "temporarily unavailable";
    here it is 502."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused
    proxy, port = _proxy(dead)
    try:
        assert _status(port) == 503
    finally:
        proxy.stop()


@pytest.mark.parametrize("code", [502, 503, 504])
def test_nova_gateway_errors_pass_through_as_neutron(code):
    """proxy_base._proxy_request: nova's 400/404/409/502/503/504 are
    answered with the same status (webob.exc.status_map), only 500 is
    500; here every nova 5xx becomes 500."""
    nova = _FixedNova(code)
    proxy, port = _proxy(nova.port)
    try:
        assert _status(port) == code
    finally:
        proxy.stop()
        nova.stop()
