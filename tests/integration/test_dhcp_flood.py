"""A DHCP flood from one instance is cut in the switch, per port.

Every DHCP request an instance sends is punted to the agent.  Without a
limit one instance can send tens of thousands a second and keep the agent
busy answering them.  The pipeline meters the punt per source port (an
OpenFlow meter whose id is the port's ofport): the flood reaches the agent
at the configured rate, the rest is dropped by Open vSwitch, and another
instance on the same host still gets its lease meanwhile.
"""

import re
import struct
import threading
import time

import pytest

from agent.responders.dhcp import build_udp_frame
from agent.settings import DHCP_PACKET_BURST, DHCP_PACKET_RATE
from quantum_ovs.testing.server import ServerProcess
from tests.integration.test_agent import Api, make_agent, two_active_vms

RATE = DHCP_PACKET_RATE  # the agent's meter: Settings' defaults
BURST = DHCP_PACKET_BURST


def discover(mac: str, xid: int) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                        bytes(4), bytes(4), bytes(4), bytes(4), chaddr + bytes(10),
                        bytes(64), bytes(128))
    options = b"\x63\x82\x53\x63" + b"\x35\x01\x01" + b"\xff"
    return build_udp_frame(chaddr, b"\xff" * 6, bytes(4), b"\xff" * 4, 68, 67,
                           bootp + options)


def flood(inst, n: int, seconds: float) -> float:
    """Send ``n`` DISCOVERs from ``inst`` spread over about ``seconds``;
    returns the time it took."""
    s = inst.raw_socket()
    frames = [discover(inst.mac, 0x10000 + i) for i in range(64)]
    started = time.monotonic()
    try:
        for i in range(n):
            s.send(frames[i % len(frames)])
            if i % 100 == 99:
                # pace a little: the instance's veth queue must not be what drops
                lag = started + seconds * (i + 1) / n - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
    finally:
        s.close()
    return time.monotonic() - started


def meter_drops(ovs, meter_id: int) -> int:
    out = ovs.ofctl("-O", "OpenFlow13", "meter-stats", "br-int", f"meter={meter_id}")
    m = re.search(r"packet_in_band_count:(\d+)", out) or re.search(
        r"0: packet_count:(\d+)", out)
    return int(m.group(1)) if m else 0


@pytest.fixture
def server(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path}/flood.sqlite") as s:
        yield s


def test_dhcp_flood_is_metered_per_port(ovs, server, tmp_path):
    api = Api(server.url)
    agent = make_agent(ovs, server, tmp_path)
    try:
        net = api("POST", "/v2.0/networks", {"network": {"name": "flood"}})["network"]
        api("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": "10.17.0.0/24", "ip_version": 4}})
        (pa, a), (pb, b) = two_active_vms(ovs, api, net)
        before_in = agent.channel.stats["packet_in"]
        before_replies = agent.stats.get("dhcp_replies", 0)

        # b asks for a lease in the middle of a's flood
        lease = {}

        def ask():
            time.sleep(0.3)
            got = flood(b, 3, 0.1)  # three DISCOVERs, well under b's own limit
            lease["sent"] = got

        t = threading.Thread(target=ask)
        t.start()
        sniff = b.raw_socket(timeout=0.2)
        n = 4000
        elapsed = flood(a, n, 1.0)
        t.join()
        offers_to_b = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                frame = sniff.recv(2048)
            except OSError:
                continue
            # an OFFER to b: UDP 67 -> 68, chaddr = b's MAC
            if len(frame) > 42 + 34 and frame[36:38] == b"\x00\x44" and \
                    frame[42 + 28:42 + 34] == bytes.fromhex(b.mac.replace(":", "")):
                offers_to_b += 1
        sniff.close()
        time.sleep(0.5)  # let the agent drain what reached it
        punted = agent.channel.stats["packet_in"] - before_in
        replies = agent.stats.get("dhcp_replies", 0) - before_replies
        dropped = meter_drops(ovs, ovs.ofport(a.port))
        allowed = RATE * (elapsed + 0.8) + BURST + 3
        print(f"\nDHCP flood: {n} DISCOVERs in {elapsed:.2f} s from one port; "
              f"{punted} reached the agent (limit ~{allowed:.0f}), {replies} answered, "
              f"meter dropped {dropped}; offers to the other port: {offers_to_b}")
        assert punted <= allowed, "the flood was not metered"
        assert punted >= RATE * elapsed * 0.5, "the meter let too little through"
        assert dropped >= n - allowed - 50
        assert offers_to_b >= 1, "the other instance got no answer during the flood"
        assert agent.channel.stats["packet_in_dropped"] == 0
    finally:
        agent.stop()
