"""A port cannot plant a conntrack entry that opens another port's egress
(review s23b F1), on the whole chain: server -> agent -> a private Open
vSwitch, instances as namespaces, the switch's real conntrack.

The client admits nothing in and lets only TCP 22 out.  The peer admits
all IPv4.  The peer sends, from a raw socket, peer:9999 -> client:40000
in a frame addressed to its own MAC (or to broadcast): its own ingress
check accepted and committed it in the network's zone, and the client's
datagrams 40000 -> peer:9999, which its egress refuses, then passed as
"replies".  The unit tests (tests/unit/compiler/test_planted_connections.py)
cover the other ways in; this one shows the switch's conntrack agrees.
"""

import subprocess
import sys
import time

import pytest

from tests.integration.test_agent import api, server, vm  # noqa: F401 (fixtures)
from tests.integration.test_security_groups import agent, eventually, group  # noqa: F401

# Prints each datagram's source port as it comes (UDP 9999).
RECEIVER = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
while True:
    _, addr = s.recvfrom(100)
    print(addr[1], flush=True)
"""

# One datagram from UDP port argv[3] to argv[1]:argv[2].
SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
"""

# A raw frame on argv[1] to MAC argv[2] from argv[3]: UDP argv[4]:9999 ->
# argv[5]:40000 (the kernel would never send this to its own MAC).
PLANT = r"""
import socket, struct, sys
dev, dst_mac, src_mac, src_ip, dst_ip = sys.argv[1:6]
mac = lambda m: bytes.fromhex(m.replace(":", ""))
udp = struct.pack("!HHHH", 9999, 40000, 9, 0) + b"p"
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                  socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
csum = sum(struct.unpack("!10H", hdr))
csum = (csum & 0xFFFF) + (csum >> 16)
csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
for _ in range(3):
    s.send(mac(dst_mac) + mac(src_mac) + b"\x08\x00" + hdr + udp)
"""


def _ns(inst, code, *args, **kw):
    return subprocess.run(["ip", "netns", "exec", inst.ns, sys.executable, "-c", code,
                           *map(str, args)], check=True, timeout=20, **kw)


class Receiver:
    def __init__(self, inst):
        self.proc = subprocess.Popen(["ip", "netns", "exec", inst.ns, sys.executable, "-c",
                                      RECEIVER], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def got(self, sport, timeout=1.0) -> bool:
        """Whether a datagram from ``sport`` comes within ``timeout``."""
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r and self.proc.stdout.readline().strip() == str(sport):
                return True
        return False

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)


@pytest.mark.parametrize("to", ["own-mac", "broadcast"])
def test_a_peer_cannot_open_the_clients_egress_with_a_frame_to_itself(
        ovs, api, agent, to):  # noqa: F811
    net, _ = api.network("10.36.0.0/24")
    cli_g, _ = group(api, f"f1-client-{to}", [])
    defaults = api("GET", f"/v2.0/security-group-rules?security_group_id={cli_g}")
    for r in defaults["security_group_rules"]:  # egress TCP 22 only
        api("DELETE", f"/v2.0/security-group-rules/{r['id']}")
    group_rule = {"security_group_id": cli_g, "direction": "egress", "ethertype": "IPv4"}
    api("POST", "/v2.0/security-group-rules", {"security_group_rule": dict(
        group_rule, protocol="tcp", port_range_min=22, port_range_max=22)})
    peer_g, _ = group(api, f"f1-peer-{to}", [
        {"direction": "ingress", "remote_ip_prefix": "0.0.0.0/0"}])
    p_peer, peer = vm(ovs, api, net, security_groups=[peer_g])
    p_cli, cli = vm(ovs, api, net, security_groups=[cli_g])
    for p in (p_peer, p_cli):
        assert api.wait_status(p["id"], "ACTIVE")
    receiver = Receiver(peer)
    try:
        def send(sport):
            _ns(cli, SENDER, peer.ip, 9999, sport)
            return receiver.got(sport)

        # the path works: with an egress UDP 9999 rule the client's
        # datagrams (from 40001) reach the peer, and without it they do not
        extra = api("POST", "/v2.0/security-group-rules", {"security_group_rule": dict(
            group_rule, protocol="udp", port_range_min=9999, port_range_max=9999)})
        assert eventually(lambda: send(40001)), "control: an allowed datagram arrives"
        api("DELETE", f"/v2.0/security-group-rules/{extra['security_group_rule']['id']}")
        assert eventually(lambda: send(40002), want=False), "control: the rule is gone"
        assert not send(40000)
        # the plant: peer:9999 -> client:40000, to the peer's own MAC or to
        # broadcast; the peer's own ingress check lets it in
        dst = peer.mac if to == "own-mac" else "ff:ff:ff:ff:ff:ff"
        _ns(peer, PLANT, peer.dev, dst, peer.mac, peer.ip, cli.ip)
        time.sleep(0.3)
        leaked = [sport for sport in (40000, 40000, 40000) if send(sport)]
        assert not leaked, "the client's refused datagrams passed as replies of a plant"
    finally:
        receiver.stop()
