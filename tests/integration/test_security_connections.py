"""Security-group semantics on the whole chain (server -> agent -> a
private Open vSwitch, instances as namespaces), with real traffic and the
switch's real conntrack (found by a review of the data plane, session 20;
each test failed before its fix).  Each first shows the path works, so that
a failure is the defect.
"""

import contextlib
import subprocess
import sys
import time
import types

from tests.integration.test_agent import api, server, vm  # noqa: F401 (fixtures)
from tests.integration.test_security_groups import (  # noqa: F401
    Listener,
    agent,
    eventually,
    group,
    reach,
)

ECHO_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
def serve(c):
    while True:
        d = c.recv(100)
        if not d:
            return
        c.sendall(b"echo:" + d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# One long-lived connection: each line on stdin is sent, and the echo (or
# "timeout") printed.
HOLD_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.strip().encode())
        s.settimeout(3)
        print(s.recv(100).decode() or "closed", flush=True)
    except OSError as e:
        print("timeout", type(e).__name__, flush=True)
"""


def _ns_py(inst, code, *args, **kw):
    return subprocess.Popen(["ip", "netns", "exec", inst.ns, sys.executable, "-c", code,
                             *map(str, args)], text=True, stdout=subprocess.PIPE, **kw)


@contextlib.contextmanager
def _server_and_client(ovs, api, cidr, tag, proto, port, server_code, client_code):  # noqa: F811
    """A server and a client on a new network: the server's group admits
    ``proto`` ``port`` from anywhere (one rule), the client's nothing in.
    ``server_code`` runs on the server (it prints "ready"), ``client_code``
    on the client with the server's address and port.  Yields a namespace:
    cli, srv (the instances), client, server (their processes), rule_id,
    say (a line to the client -> its answer line)."""
    net, _ = api.network(cidr)
    cli_g, _ = group(api, f"{tag}-clients", [])
    srv_g, rules = group(api, f"{tag}-servers", [
        {"direction": "ingress", "protocol": proto, "port_range_min": port,
         "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0"}])
    p_srv, srv = vm(ovs, api, net, security_groups=[srv_g])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_srv, p_cli):
        assert api.wait_status(p["id"], "ACTIVE")
    server_proc = _ns_py(srv, server_code, port)
    client = None
    try:
        assert server_proc.stdout.readline().strip() == "ready"
        client = _ns_py(cli, client_code, srv.ip, port, stdin=subprocess.PIPE)

        def say(word):
            client.stdin.write(word + "\n")
            client.stdin.flush()
            return client.stdout.readline().strip()

        yield types.SimpleNamespace(cli=cli, srv=srv, client=client, server=server_proc,
                                    rule_id=rules[0]["id"], say=say)
    finally:
        if client is not None:
            client.kill()
            client.wait(5)
        server_proc.kill()
        server_proc.wait(5)


def test_deleting_a_rule_cuts_the_connections_it_allowed(ovs, api, agent):  # noqa: F811
    """Neutron's OVS firewall (CT_STATES: +est-rel-rpl is matched against
    the rules like +new) and its iptables firewall (conntrack entries of
    removed rules deleted) both cut an established connection when the rule
    that allowed it is deleted; so does ours (rules/static.py
    CT_RULE_MATCH)."""
    with _server_and_client(ovs, api, "10.31.0.0/24", "h2", "tcp", 8080, ECHO_SERVER,
                            HOLD_CLIENT) as t:
        assert t.client.stdout.readline().strip() == "connected"
        assert t.say("one") == "echo:one"  # the connection works
        api("DELETE", f"/v2.0/security-group-rules/{t.rule_id}")
        # the deletion is on the switch: new connections are refused
        assert eventually(lambda: reach(t.cli, "tcp", t.srv.ip, 8080), want=False)
        time.sleep(0.5)
        got = t.say("two")
        assert got != "echo:two", (
            "the established TCP 8080 connection still carries data after the only rule "
            "allowing TCP 8080 to the server was deleted")


# A UDP server streaming to whoever spoke to it last (10 datagrams a
# second), and its client: "count" prints the datagrams received in the
# next second, "poke" sends one datagram to the server.
STREAM_SERVER = r"""
import select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
_, peer = s.recvfrom(100)
while True:
    if select.select([s], [], [], 0.1)[0]:
        s.recvfrom(100)
    s.sendto(b"tick", peer)
"""
STREAM_CLIENT = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server = (sys.argv[1], int(sys.argv[2]))
s.sendto(b"hello", server)
for line in sys.stdin:
    if line.strip() == "poke":
        s.sendto(b"poke", server)
        print("poked", flush=True)
        continue
    n, end = 0, time.monotonic() + 1
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            s.recvfrom(100)
            n += 1
        except OSError:
            pass
    print(n, flush=True)
"""


def test_deleting_a_rule_cuts_the_replies_of_its_connections_too(ovs, api, agent):  # noqa: F811
    """Neutron's OVS firewall marks a connection whose packet no rule
    accepts any more (ct_mark) and drops every packet of a marked
    connection, replies included: once the rule admitting a UDP flow is
    deleted, the server's stream back to the client stops as soon as the
    client sends again (before the mark, only the client's direction was
    cut; the server's "replies" went on for as long as it sent)."""
    with _server_and_client(ovs, api, "10.35.0.0/24", "h4", "udp", 9999, STREAM_SERVER,
                            STREAM_CLIENT) as t:
        assert eventually(lambda: int(t.say("count")) >= 5), "the stream never flowed"
        assert t.say("poke") == "poked" and int(t.say("count")) >= 5  # pokes are harmless
        api("DELETE", f"/v2.0/security-group-rules/{t.rule_id}")
        counts = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert t.say("poke") == "poked"
            counts.append(int(t.say("count")))
            if counts[-1] == 0:
                break
        assert t.server.poll() is None, "the server stopped by itself"
        assert counts[-1] == 0, (
            f"datagrams a second after the rule's deletion: {counts}; the server's stream "
            "into a connection no rule admits any more goes on")


def test_stateless_group_does_not_admit_replies(ovs, api, agent):  # noqa: F811
    """The API offers stateful-security-group and takes "stateful": false;
    in Neutron a stateless group tracks nothing, so the return traffic of a
    connection needs a rule of its own.  Port A (stateless group, egress
    rules only) pings B (which admits ICMP): the echo replies must not get
    into A, since no ingress rule of A's group admits them (before the
    stateless tables, the group was enforced as a stateful one)."""
    net, _ = api.network("10.32.0.0/24")
    sl = api("POST", "/v2.0/security-groups",
             {"security_group": {"name": "h2-stateless", "stateful": False}})["security_group"]
    assert sl["stateful"] is False
    rules = api("GET", f"/v2.0/security-group-rules?security_group_id={sl['id']}")
    directions = {r["direction"] for r in rules["security_group_rules"]}
    assert directions == {"egress"}, rules  # the default egress rules only
    pingable, _ = group(api, "h2-pingable", [
        {"direction": "ingress", "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}])
    p_a, a = vm(ovs, api, net, security_groups=[sl["id"]])
    p_b, b = vm(ovs, api, net, security_groups=[pingable])
    for p in (p_a, p_b):
        assert api.wait_status(p["id"], "ACTIVE")
    # the path works: with an ingress ICMP rule on A's group, A's pings of B
    # (and their replies) pass
    extra = api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sl["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "icmp"}})["security_group_rule"]
    assert eventually(lambda: a.ping(b.ip, wait=0.5))
    api("DELETE", f"/v2.0/security-group-rules/{extra['id']}")
    assert eventually(lambda: b.ping(a.ip, wait=0.5), want=False)  # the rule is gone
    time.sleep(0.5)
    assert not a.ping(b.ip, count=2, wait=1), (
        "echo replies reached a port of a stateless group that has no ingress rule")


def _ping_and_tcp(cli, srv):
    """(cli pings srv, cli opens TCP 8080 to a listener on srv)."""
    listener = Listener(srv, "tcp", 8080)
    try:
        time.sleep(1)
        return (eventually(lambda: cli.ping(srv.ip, wait=0.5)),
                eventually(lambda: reach(cli, "tcp", srv.ip, 8080)))
    finally:
        listener.stop()


def _stateless(api, name, rules):  # noqa: F811
    g = api("POST", "/v2.0/security-groups",
            {"security_group": {"name": name, "stateful": False}})["security_group"]
    for r in rules:
        api("POST", "/v2.0/security-group-rules", {"security_group_rule": dict(
            security_group_id=g["id"], ethertype="IPv4", **r)})
    return g["id"]


def test_stateful_client_gets_replies_from_a_stateless_server_on_the_same_host(
        ovs, api, agent):  # noqa: F811
    """Neutron: a stateful port's own connections are tracked, so their
    replies pass whatever its ingress rules; the stateless server needs
    rules both ways (it has them: ingress ICMP/TCP 8080, egress all).
    (Found by review: nothing committed the connection on this host, the
    stateless accept committing nothing; the replies met the client's
    ingress as new or invalid.)  Control: a stateful server."""
    net, _ = api.network("10.33.0.0/24")
    srv_rules = [
        {"direction": "ingress", "protocol": "icmp"},
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 8080,
         "port_range_max": 8080}]
    sl = _stateless(api, "h3-sl-server", srv_rules)
    # control: the same rules in a stateful group work
    sf, _ = group(api, "h3-sf-server", srv_rules)
    p_ctl, ctl = vm(ovs, api, net, security_groups=[sf])
    cli_g, _ = group(api, "h3-client", [])  # egress all (default), no ingress
    p_srv, srv = vm(ovs, api, net, security_groups=[sl])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_srv, p_cli, p_ctl):
        assert api.wait_status(p["id"], "ACTIVE")
    assert eventually(lambda: cli.ping(ctl.ip, wait=0.5)), "control: stateful server"
    ok_ping, ok_tcp = _ping_and_tcp(cli, srv)
    assert ok_ping and ok_tcp, (
        f"stateful client -> stateless server on one host: ping {ok_ping}, tcp {ok_tcp}; "
        "the replies meet the client's ingress rules as new connections")


def test_a_client_admitting_everything_gets_tcp_and_icmp_answers(ovs, api, agent):  # noqa: F811
    """The client's group admits all IPv4 in: before the fix, UDP answers
    passed (as new connections) but ICMP echo replies and TCP SYN-ACKs of
    a connection conntrack never saw committed were invalid, dropped above
    every rule."""
    net, _ = api.network("10.34.0.0/24")
    sl = _stateless(api, "h3-sl-server2", [
        {"direction": "ingress", "protocol": "icmp"},
        {"direction": "ingress", "protocol": "udp", "port_range_min": 9090,
         "port_range_max": 9090},
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 8080,
         "port_range_max": 8080}])
    cli_g, _ = group(api, "h3-client2", [{"direction": "ingress"}])
    p_srv, srv = vm(ovs, api, net, security_groups=[sl])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_srv, p_cli):
        assert api.wait_status(p["id"], "ACTIVE")
    lu, lt = Listener(srv, "udp", 9090), Listener(srv, "tcp", 8080)
    try:
        time.sleep(1)
        udp = eventually(lambda: reach(cli, "udp", srv.ip, 9090))
        ping = eventually(lambda: cli.ping(srv.ip, wait=0.5))
        tcp = eventually(lambda: reach(cli, "tcp", srv.ip, 8080))
    finally:
        lu.stop()
        lt.stop()
    assert udp, "control: UDP answers pass as new connections"
    assert ping and tcp, f"ping {ping}, tcp {tcp}"


def test_stateful_client_gets_replies_from_a_port_without_port_security(
        ovs, api, agent):  # noqa: F811
    """The same for a server port without port security on the client's
    host: what goes into it is committed too."""
    net, _ = api.network("10.35.0.0/24")
    cli_g, _ = group(api, "h3-client3", [])  # egress all (default), no ingress
    p_srv, srv = vm(ovs, api, net, port_security_enabled=False, security_groups=[])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_srv, p_cli):
        assert api.wait_status(p["id"], "ACTIVE")
    ok_ping, ok_tcp = _ping_and_tcp(cli, srv)
    assert ok_ping and ok_tcp, f"ping {ok_ping}, tcp {ok_tcp}"


def test_an_address_group_of_everything_leaves_other_stateless_groups_working(
        ovs, api, agent):  # noqa: F811
    """Review s25 F1 on the switch: a stateless group's rule with no
    protocol (a new group's egress "IPv4 to anywhere") is, in the stateless
    table, the very flow of an address group's 0.0.0.0/0.  One project's
    stateless group with an egress rule to such an address group made the
    agent hold both owners: no stateless port on the host could send IPv4
    through its "anywhere" rule.  Both flows' clauses are one flow now."""
    net, _ = api.network("10.37.0.0/24")
    sx = _stateless(api, "s25-x", [{"direction": "ingress", "protocol": "icmp"}])
    p_a, a = vm(ovs, api, net, security_groups=[sx])
    p_b, b = vm(ovs, api, net, security_groups=[sx])
    for p in (p_a, p_b):
        assert api.wait_status(p["id"], "ACTIVE")
    assert eventually(lambda: a.ping(b.ip, wait=0.5)), "control: before the address group"
    ag = api("POST", "/v2.0/address-groups", {"address_group": {
        "name": "s25-everything", "addresses": ["0.0.0.0/0"]}})["address_group"]
    sy = _stateless(api, "s25-y", [{"direction": "egress", "protocol": "tcp",
                                   "port_range_min": 443, "port_range_max": 443,
                                   "remote_address_group_id": ag["id"]}])
    p_c, c = vm(ovs, api, net, security_groups=[sy])
    assert api.wait_status(p_c["id"], "ACTIVE")
    time.sleep(1)
    assert eventually(lambda: a.ping(b.ip, wait=0.5)), (
        "a stateless port's egress to anywhere stopped when another group named an "
        "address group of 0.0.0.0/0")
