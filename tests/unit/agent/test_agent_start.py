"""What a starting agent does first (issue 17): it asks for the server's
view before anything else, compiles it once with the VIFs that came in with
it, and does not import what it does not use."""

from __future__ import annotations

import subprocess
import sys
import threading

from agent import sync_client
from agent.daemon import Agent
from agent.ovsdb.events import Vif
from agent.settings import Settings
from quantum_ovs import model as m
from quantum_ovs.compiler.flow import FlowDiff

NET = m.Network("n1", m.Segment("vxlan", segmentation_id=5))
VM = m.Port("vm1", "n1", "fa:16:3e:00:00:10", host="hv1")
VIEW = m.HostView(host="hv1", networks=(NET,), ports=(VM,), revision=3)
PLUGGED = ("vif", ("plugged", Vif("tap1", "vm1", ofport=7)))


def _agent(tmp_path):
    a = Agent(Settings(host="hv1", server_url="http://127.0.0.1:9", ovsdb="unix:/nonexistent",
                       state_path=str(tmp_path / "state.json")))

    class _Switch:  # a connected switch: takes whatever is sent
        need_dump = False

        def install(self, desired, touched):
            return FlowDiff()

    a.reconciler = _Switch()
    a.reporter.report = lambda *args: None
    calls = []  # what the engine was given, in order
    set_chassis, load = a.engine.set_chassis, a.engine.load
    a.engine.set_chassis = lambda ch: (calls.append(("chassis", ch.vif_ofports)),
                                       set_chassis(ch))[1]
    a.engine.load = lambda view: (calls.append(("load", view.chassis.vif_ofports)),
                                  load(view))[1]
    return a, calls


def test_a_view_queued_before_the_vifs_is_compiled_once_with_them(tmp_path):
    before, after = _agent(tmp_path), _agent(tmp_path)
    before[0]._handle([PLUGGED, ("full", VIEW)])
    after[0]._handle([("full", VIEW), PLUGGED])
    # the view is loaded with the VIF (no second change after it), and the
    # flows are the same either way
    assert after[1] == before[1] == [("chassis", (("vm1", 7),)), ("load", (("vm1", 7),))]
    assert set(after[0].engine.flows()) == set(before[0].engine.flows())
    in_ports = {f.match.get("in_port").value for f in after[0].engine.flows()
                if f.match.get("in_port") is not None}
    assert 7 in in_ports  # the VIF's flows are there
    assert after[0].vifs == {"vm1": 7}


def test_the_view_is_asked_for_before_ovsdb_is_reached(tmp_path, monkeypatch):
    asked = threading.Event()
    a, _ = _agent(tmp_path)

    def poll(since, wait):
        asked.set()
        a.stop_event.wait()
        raise sync_client.Closed("stopped")

    class _Refused(Exception):
        pass

    def connection(*args, **kwargs):
        # OVSDB is reached only once the request is out
        assert asked.wait(5)
        raise _Refused()

    monkeypatch.setattr(a.client, "poll", poll)
    monkeypatch.setattr("agent.daemon.Connection", connection)
    try:
        a.start()
    except _Refused:
        pass
    finally:
        a.stop_event.set()
    assert asked.is_set()


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
