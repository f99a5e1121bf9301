"""The whole chain on the netdev datapath: OVSDB plugs, the watcher sees
the VIFs, the channel installs hand-written flows, instances ping."""

from __future__ import annotations

import threading

from agent.ovsdb import InterfaceWatcher
from quantum_ovs.compiler.flow import Flow, Match, Output, diff
from tests.fixtures.flow_samples import cookie


def test_two_instances_ping_through_our_flows(switch):
    ovs, ch = switch.ovs, switch.channel
    vifs = {}
    ready = threading.Condition()

    def on_vif(event, vif, old):
        with ready:
            if event == "unplugged":
                vifs.pop(vif.iface_id, None)
            elif vif.ofport is not None:
                vifs[vif.iface_id] = vif
            ready.notify_all()

    InterfaceWatcher(switch.conn, on_vif)
    a = ovs.add_instance("10.0.0.1")
    b = ovs.add_instance("10.0.0.2")
    with ready:
        assert ready.wait_for(lambda: a.iface_id in vifs and b.iface_id in vifs, timeout=5)
    pa, pb = vifs[a.iface_id].ofport, vifs[b.iface_id].ofport

    # fail_mode=secure and no flows: nothing passes.
    assert not a.ping(b.ip)

    flows = [
        Flow(0, 10, Match(in_port=pa), (Output(pb),), cookie(1)),
        Flow(0, 10, Match(in_port=pb), (Output(pa),), cookie(2)),
    ]
    ch.apply(diff(ch.dump_flows(), flows))
    assert a.ping(b.ip, count=2)
    assert b.ping(a.ip)

    # Only one direction: ARP cannot complete, ping fails again.
    ch.apply(diff(ch.dump_flows(), flows[:1]))
    ovs.purge_datapath_flows()  # the datapath may hold the old path for a moment
    assert not a.ping(b.ip)
