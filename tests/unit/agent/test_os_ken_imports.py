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
