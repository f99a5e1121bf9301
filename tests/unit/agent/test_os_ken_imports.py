"""os-ken's packet library is not imported by a starting agent (issue 17)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import agent.main
from agent.openflow import encode
deferred = "os_ken.lib.packet.ethernet" not in sys.modules
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as ofpp
p = packet.Packet()
p.add_protocol(ethernet.ethernet(src="fa:16:3e:00:00:01"))
p.serialize()
class Datapath:
    ofproto, ofproto_parser = ofp, ofpp
out = ofpp.OFPPacketOut(Datapath(), ofp.OFP_NO_BUFFER, ofp.OFPP_CONTROLLER, [], p)
out.serialize()
again = packet.Packet(bytes(p.data)).get_protocol(ethernet.ethernet).src
print(deferred, len(out.buf), again, encode.OFP_VERSION)
"""


def test_os_kens_packet_library_loads_only_when_used():
    # ~80 ms of a starting agent's imports; os-ken's OpenFlow parsers
    # import it, and it still works when something uses it.
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "68", "fa:16:3e:00:00:01", "4"]


# Messages of other OpenFlow versions (a switch offering more than 1.3
# says hello in its highest one) and of 1.3, parsed in a process where
# os-ken was imported before the agent (nothing deferred) and in one where
# the agent came first.
_PARSE = """
import struct, sys
if sys.argv[1] == "eager":
    import os_ken.ofproto.ofproto_protocol
import agent.main
from agent.openflow import encode as E
hello6 = struct.pack("!BBHI", 6, 0, 16, 1) + struct.pack("!HHI", 1, 8, 0b1010010)
hello1 = struct.pack("!BBHI", 1, 0, 8, 2)
echo1 = struct.pack("!BBHI", 1, 2, 12, 3) + b"ping"
echo4 = struct.pack("!BBHI", 4, 2, 12, 4) + b"pong"
for raw in (hello6, hello1, echo1, echo4):
    m = E.parse(raw)
    print(m.kind, m.xid, type(m.msg).__module__ if m.msg is not None else None, end=" ")
parsers = [m for m in sys.modules if m.startswith("os_ken.ofproto.ofproto_v1_")
           and m.endswith("_parser") and type(sys.modules[m]).__name__ == "module"
           and "OFPHello" in sys.modules[m].__dict__]
print(sorted(parsers))
"""


def test_other_openflow_versions_parse_as_before():
    def run(mode):
        return subprocess.run([sys.executable, "-c", _PARSE, mode], capture_output=True,
                              text=True, check=True).stdout
    eager, deferred = run("eager"), run("deferred")
    messages = deferred.split("[")[0]
    assert messages == eager.split("[")[0]
    assert "echo_request 4 os_ken.ofproto.ofproto_v1_3_parser" in messages
    # only the versions that came in were loaded
    assert deferred.split("[")[1] == ("'os_ken.ofproto.ofproto_v1_0_parser', "
                                      "'os_ken.ofproto.ofproto_v1_3_parser', "
                                      "'os_ken.ofproto.ofproto_v1_5_parser']\n")


_VERSION = """
import sys
from agent.openflow import encode
import os_ken
deferred = "pbr.version" not in sys.modules
import importlib.metadata
print(deferred, os_ken.__version__ == importlib.metadata.version("os-ken"),
      hasattr(os_ken, "no_such_thing"), encode.OFP_VERSION)
"""


def test_os_kens_version_is_looked_up_only_when_read():
    # os-ken's package asks pbr for its version as it is imported (a search
    # of the installed distributions); the agent's encoder never reads it.
    out = subprocess.run([sys.executable, "-c", _VERSION], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "False", "4"]


_ADDRCONV = """
import sys
import agent.main
from agent.openflow import encode as E
deferred = "netaddr" not in sys.modules
from os_ken.lib import addrconv, type_desc
from os_ken.ofproto import ofproto_v1_3_parser as ofpp
# os-ken's own encoding of a match with addresses (its type descriptions
# took the stand-ins' methods), then its converters and class, as before
match = ofpp.OFPMatch(eth_src="fa:16:3e:00:00:01", ipv4_dst="10.0.0.1",
                      ipv6_src="2001:db8::1")
buf = bytearray()
match.serialize(buf, 0)
back = ofpp.OFPMatch.parser(bytes(buf), 0)
print(deferred, back["eth_src"], back["ipv4_dst"], back["ipv6_src"],
      addrconv.ipv4.bin_to_text(addrconv.ipv4.text_to_bin("192.0.2.7")),
      isinstance(addrconv.mac, addrconv.AddressConverter),
      issubclass(addrconv.mac_mydialect, sys.modules["netaddr"].mac_unix),
      hasattr(addrconv, "no_such_thing"))
"""


def test_os_kens_address_converters_load_netaddr_only_when_used():
    # netaddr is ~18 ms of a starting agent's imports; os-ken's address
    # fields still encode and decode through it, once something uses them.
    out = subprocess.run([sys.executable, "-c", _ADDRCONV], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "fa:16:3e:00:00:01", "10.0.0.1", "2001:db8::1", "192.0.2.7", "True",
                   "True", "False"]


# Threads sending their first packet-outs at once: os-ken's packet-out
# serializer looks up os_ken.lib.packet.packet.Packet, which the agent
# defers; every thread must find it made (with importlib's LazyLoader, all
# but the first met a half-made module, and their packets were lost: found
# by a failed learning of an IPv6 next hop, session 24).
_RACE = """
import threading
from agent.openflow import encode as E
from quantum_ovs.compiler.flow import Output
errors, sent = [], []
barrier = threading.Barrier(4)
def go():
    barrier.wait()
    try:
        sent.append(len(E.serialize(E.packet_out(b"\\0" * 60, (Output(1),)), 1)))
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=go) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors, sent)
"""


def test_first_packet_outs_from_several_threads_all_go():
    out = subprocess.run([sys.executable, "-c", _RACE], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] [100, 100, 100, 100]", out
