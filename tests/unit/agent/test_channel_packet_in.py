"""Packet-ins wait in a bounded queue: a flood is dropped and counted
instead of growing the agent's memory or holding up the switch reader."""

import socket
import struct
import threading

from agent.openflow.channel import Channel, CookieScope
from agent.openflow import encode as E


def packet_in_bytes(data: bytes, xid: int = 7) -> bytes:
    """An OpenFlow 1.3 PACKET_IN as the switch sends it (os-ken only
    parses these)."""
    match = bytearray()
    E.ofpp.OFPMatch(in_port=4).serialize(match, 0)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(data), 0, 3, 0) + bytes(match) + \
        bytes(2) + data
    return struct.pack("!BBHI", 4, 10, 8 + len(body), xid) + body


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_a_flood_of_packet_ins_is_bounded_and_counted():
    ch = Channel(CookieScope.ours(), sock=listener(), packet_in_queue=8)
    seen = []
    release = threading.Event()
    first = threading.Event()

    def handler(pin):
        seen.append(pin)
        first.set()
        release.wait(5)

    ch.on_packet_in(handler)
    ch.start()
    try:
        raw = packet_in_bytes(b"\xff" * 6 + b"\x02" * 6 + struct.pack("!H", 0x0800) + bytes(50))
        ch._handle(None, raw)  # taken by the handler, which now blocks
        assert first.wait(5)
        for _ in range(100):
            ch._handle(None, raw)
        assert ch.stats["packet_in"] == 101
        assert ch.stats["packet_in_dropped"] == 100 - 8
        release.set()
        deadline = threading.Event()
        for _ in range(50):
            if len(seen) == 9:
                break
            deadline.wait(0.05)
        assert len(seen) == 9
        assert seen[0].in_port == 4 and len(seen[0].data) == 64
    finally:
        release.set()
        ch.stop()
