"""What an instance or a switch sends is untrusted: the agent's parsers
given arbitrary or mutated bytes never raise, never log an internal error,
never answer for another port and never put another port's data in an
answer; a mangled flow-stats reply fails the request that asked for it and
nothing else.

Hypothesis drives random bytes and mutations (flip, insert, delete,
truncate) of well-formed frames built with os-ken (not the code under
test).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.openflow import channel as ch_mod
from agent.openflow.channel import Channel, ChannelError, CookieScope
from agent.responders.dhcp import DhcpResponder
from agent.responders.dhcp6 import Dhcp6Responder
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import make_host_view
from tests.unit.agent import test_dhcp as d4
from tests.unit.agent import test_dhcp6 as d6
from tests.unit.agent.test_openflow_fastdecode import _flows_reply

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Another port on the same network: nothing of it may appear in an answer.
OTHER_IP4 = "192.168.1.77"
OTHER_IP6 = "2001:db8::77"
OTHER_MAC = "fa:16:3e:00:00:77"


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf and kind != "insert":
            break
        i = pos % (len(buf) + (kind == "insert")) if buf or kind == "insert" else 0
        if kind == "flip":
            buf[i] ^= val or 1
        elif kind == "set":
            buf[i] = val
        elif kind == "insert":
            buf[i:i] = bytes((val,))
        elif kind == "delete":
            del buf[i]
        elif kind == "truncate":
            del buf[i:]
    return bytes(buf)


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                         st.integers(0, 1 << 16), st.integers(0, 255)),
               min_size=1, max_size=6)


class NoErrors(logging.Handler):
    """Records what the responders log at ERROR (an internal failure)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _watch():
    h = NoErrors()
    logging.getLogger("agent").addHandler(h)
    return h


def _unwatch(h):
    logging.getLogger("agent").removeHandler(h)


# ------------------------------------------------------------------ DHCPv4
V4 = DhcpResponder(server_mac=d4.SERVER_MAC)
V4_PORT = d4.port()
V4_FRAMES = [
    d4.client_frame(d4.DISCOVER),
    d4.client_frame(d4.REQUEST, options=[(50, d4.ip4(d4.IP)), (54, d4.ip4(d4.GW))]),
    d4.client_frame(d4.REQUEST, ciaddr=d4.IP, src=d4.IP, dst=d4.GW),
    d4.client_frame(d4.INFORM, ciaddr=d4.IP, src=d4.IP),
    d4.client_frame(d4.RELEASE, ciaddr=d4.IP, src=d4.IP, dst=d4.GW),
    d4.client_frame(d4.DISCOVER, vlan_id=5),
    d4.client_frame(d4.DISCOVER, options=[(55, bytes(range(1, 80))), (61, b"\x01" + bytes(6))]),
]


def check_v4(reply):
    if reply is None:
        return
    r = d4.Reply(reply)  # well-formed, checksums right
    assert r.chaddr[:6] == bytes.fromhex(d4.MAC.replace(":", "")), "answered another MAC"
    assert r.yiaddr in (d4.ip4(d4.IP), bytes(4))
    assert r.eth_dst in (bytes.fromhex(d4.MAC.replace(":", "")), b"\xff" * 6)
    assert d4.ip4(OTHER_IP4) not in reply
    assert bytes.fromhex(OTHER_MAC.replace(":", "")) not in reply


def v4_answer(frame):
    h = _watch()
    try:
        reply = V4.handle(frame, V4_PORT, d4.SUBNETS, d4.NET)
    finally:
        _unwatch(h)
    assert not h.records, h.records[0].getMessage()
    return reply


@SETTINGS
@given(st.binary(max_size=700))
def test_dhcp4_arbitrary_bytes(data):
    check_v4(v4_answer(data))


@SETTINGS
@given(st.sampled_from(V4_FRAMES), OPS)
def test_dhcp4_mutated_requests(frame, ops):
    check_v4(v4_answer(mutate(frame, ops)))


@SETTINGS
@given(st.sampled_from([d4.DISCOVER, d4.REQUEST, d4.INFORM]), st.binary(min_size=6, max_size=6))
def test_dhcp4_never_answers_for_another_mac(mtype, mac):
    chaddr = ":".join(f"{b:02x}" for b in mac)
    reply = v4_answer(d4.client_frame(mtype, chaddr=chaddr))
    if mac != bytes.fromhex(d4.MAC.replace(":", "")):
        assert reply is None


# ------------------------------------------------------------------ DHCPv6
V6 = Dhcp6Responder(server_mac=d6.SERVER_MAC)
V6_PORT = d6.port()
V6_SUBNETS = {"sub6": d6.subnet6()}
DUID = (1, d6.CLIENT_DUID)
V6_FRAMES = [
    d6.client_frame(d6.SOLICIT, [DUID, (3, d6.ia_na())]),
    d6.client_frame(d6.REQUEST, [DUID, (2, d6.SERVER_DUID), (3, d6.ia_na(addrs=[d6.ADDR]))]),
    d6.client_frame(d6.RENEW, [DUID, (2, d6.SERVER_DUID), (3, d6.ia_na(addrs=[OTHER_IP6]))]),
    d6.client_frame(d6.INFO_REQUEST, [DUID, (6, b"\x00\x17\x00\x18")]),
    d6.client_frame(d6.CONFIRM, [DUID, (3, d6.ia_na(addrs=[d6.ADDR]))]),
]


def v6_answer(frame):
    """The reply, checked: to the port's MAC, nothing of another port the
    client did not send itself, and every address offered with a lifetime
    is the port's own (one the client asked for that is not its own comes
    back with lifetime 0, as RFC 8415 says)."""
    h = _watch()
    try:
        reply = V6.handle(frame, V6_PORT, V6_SUBNETS, d6.NET)
    finally:
        _unwatch(h)
    assert not h.records, h.records[0].getMessage()
    if reply is not None:
        assert reply[0:6] == bytes.fromhex(d6.MAC.replace(":", "")), "answered another MAC"
        other = ipaddress.IPv6Address(OTHER_IP6).packed
        assert other not in reply or other in frame
        assert bytes.fromhex(OTHER_MAC.replace(":", "")) not in reply
        i = reply.find(b"\x00\x05\x00\x18")  # IAADDR option
        while i >= 0:
            addr, preferred, valid = struct.unpack_from("!16sII", reply, i + 4)
            assert addr == ipaddress.IPv6Address(d6.ADDR).packed or preferred == valid == 0
            i = reply.find(b"\x00\x05\x00\x18", i + 1)
    return reply


@SETTINGS
@given(st.binary(max_size=700))
def test_dhcp6_arbitrary_bytes(data):
    v6_answer(data)


@SETTINGS
@given(st.sampled_from(V6_FRAMES), OPS)
def test_dhcp6_mutated_requests(frame, ops):
    v6_answer(mutate(frame, ops))


# ------------------------------------------------------------------ flow stats
FLOWS = sorted(Engine.from_view(make_host_view(networks=2, ports_per_net=3)).flows(),
               key=lambda f: (f.table, f.priority, repr(f.match)))[:40]
REPLY = _flows_reply(FLOWS, xid=77)


def _channel_and_conn():
    a, b = socket.socketpair()
    conn = ch_mod._Conn(a, "fuzz", 1)
    return Channel(CookieScope.ours(), sock=None), conn, b


def mangled_replies(n: int, seed: int):
    """``n`` flow-stats replies whose bodies are mutated (the multipart
    header stays one, with the right length: the reader splits messages by
    it)."""
    import random
    rnd = random.Random(seed)
    kinds = ["flip", "set", "insert", "delete", "truncate"]
    for _ in range(n):
        ops = [(rnd.choice(kinds), rnd.randrange(1 << 16), rnd.randrange(256))
               for _ in range(rnd.randint(1, 6))]
        body = mutate(REPLY[16:], ops)
        yield REPLY[:2] + struct.pack("!H", 16 + len(body)) + REPLY[4:16] + body


def feed_mangled_replies(n: int = 2000, seed: int = 1) -> None:
    """Each reply answers a pending flow-stats request: it completes with
    Flows or fails with a ChannelError, and the channel raises nothing."""
    channel, conn, other = _channel_and_conn()
    try:
        for raw in mangled_replies(n, seed):
            req = ch_mod._Request("flow_stats")
            conn.pending[77] = req
            channel._handle(conn, raw)
            if req.future.done():
                exc = req.future.exception()
                if exc is None:
                    assert all(hasattr(f, "key") for part in req.future.result()
                               for f in part.flows)
                else:
                    assert isinstance(exc, ChannelError), exc
            conn.pending.pop(77, None)
    finally:
        conn.close()
        other.close()


def test_mangled_flow_stats_replies_fail_only_their_request():
    """Run in a child with a memory cap and a time limit: a decoder that
    loops on a bad length (os-ken does on a zero-length instruction or
    action) allocates without end, which must fail this test, not the
    machine."""
    code = ("import resource, sys; "
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31)); "
            "from tests.unit.agent.test_fuzz_parsers import feed_mangled_replies; "
            "feed_mangled_replies(); print('ok')")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("decoding 2,000 mangled replies took over 120 s") from None
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_an_unmangled_reply_still_decodes():
    channel, conn, other = _channel_and_conn()
    try:
        req = ch_mod._Request("flow_stats")
        conn.pending[77] = req
        channel._handle(conn, REPLY)
        flows = [f for part in req.future.result(1) for f in part.flows]
        assert sorted(flows, key=lambda f: (f.table, f.priority, repr(f.match))) == FLOWS
    finally:
        conn.close()
        other.close()


