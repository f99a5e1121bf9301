"""One-off measurements of the agent's host plumbing (not a test).

    /work/venv/bin/python -m tests.integration.measure_agent [N ...]

Prints how fast the VIF watcher notices a plugged port and how long one
bundle of N flows takes to install, dump and remove.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from agent.openflow import Channel, CookieScope
from agent.ovsdb import Connection, InterfaceWatcher, Ovsdb
from quantum_ovs.compiler.flow import diff
from tests.integration.flow_samples import COOKIE_BASE, COOKIE_MASK, simple_flows
from tests.integration.ovs_fixture import PrivateOVS


def main(sizes: list[int]) -> None:
    with PrivateOVS() as ovs:
        conn = Connection(ovs.db_remote).start()
        ch = Channel(CookieScope(COOKIE_BASE, COOKIE_MASK), sock=ovs.listen_socket()).start()
        api = Ovsdb(conn)
        api.ensure_bridge(
            "br-int", datapath_type="netdev", controller=ch.target, connection_mode="out-of-band"
        )
        ch.wait_connected()

        seen: dict[str, tuple[float, float | None]] = {}
        cv = threading.Condition()

        def on_vif(event, vif, old):
            with cv:
                first, ready = seen.get(vif.iface_id, (time.monotonic(), None))
                if vif.ofport is not None and ready is None:
                    ready = time.monotonic()
                seen[vif.iface_id] = (first, ready)
                cv.notify_all()

        InterfaceWatcher(conn, on_vif)
        idl_lat, of_lat = [], []
        for i in range(10):
            inst = ovs.add_instance(f"10.0.0.{i + 1}", plug=False)
            t0 = time.monotonic()
            ovs.plug(inst)
            with cv:
                cv.wait_for(lambda: seen.get(inst.iface_id, (0, None))[1] is not None, 5)
            first, ready = seen[inst.iface_id]
            idl_lat.append(first - t0)
            of_lat.append(ready - t0)
        med_idl, med_of = statistics.median(idl_lat) * 1000, statistics.median(of_lat) * 1000
        print(
            f"watcher: iface-id noticed after median {med_idl:.0f} ms "
            f"(max {max(idl_lat) * 1000:.0f}), with ofport after median {med_of:.0f} ms "
            f"(max {max(of_lat) * 1000:.0f}), measured from the start of ovs-vsctl add-port"
        )

        for n in sizes:
            flows = simple_flows(n)
            t0 = time.monotonic()
            ch.apply(diff([], flows))
            t1 = time.monotonic()
            dumped = ch.dump_flows()
            t2 = time.monotonic()
            assert len(dumped) == n and diff(dumped, flows).empty
            ofctl = len(ovs.dump_flows())
            t3 = time.monotonic()
            ch.apply(diff(dumped, []))
            t4 = time.monotonic()
            print(
                f"{n} flows: install bundle {t1 - t0:.2f}s, dump+decode {t2 - t1:.2f}s, "
                f"remove bundle {t4 - t3:.2f}s (ovs-ofctl saw {ofctl})"
            )
        ch.stop()
        conn.stop()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
