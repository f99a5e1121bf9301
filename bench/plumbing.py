"""Agent plumbing benchmark: how fast the VIF watcher notices a plugged
port, and how long one bundle of N flows takes to install, dump and
remove, on a private Open vSwitch (quantum_ovs/testing/ovs.py; needs root).

    python bench/plumbing.py [--quick] [N ...]

Prints medians and ends with one JSON line:

    vif_noticed_ms      ovs-vsctl add-port until the watcher sees the
                        iface-id (median of ``plugs``)
    vif_ofport_ms       ... until it also has its ofport (median)
    install_<N>_s       one bundle installing N flows
    dump_<N>_s          one dump of them, decoded
    remove_<N>_s        one bundle removing them

``--quick`` plugs fewer ports and sizes 1,000 flows only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.openflow import Channel, CookieScope  # noqa: E402
from agent.ovsdb import Connection, InterfaceWatcher, Ovsdb  # noqa: E402
from quantum_ovs.compiler.flow import Flow, Match, Output, diff  # noqa: E402
from quantum_ovs.testing.ovs import PrivateOVS  # noqa: E402

COOKIE_BASE = 0x5157 << 48  # "QW"
COOKIE_MASK = 0xFFFF << 48
FULL = dict(plugs=10, sizes=[1000, 10000])
QUICK = dict(plugs=3, sizes=[1000])


def simple_flows(n: int, table: int = 5) -> list[Flow]:
    """``n`` distinct, cheap flows."""
    return [Flow(table, 100,
                 Match(eth_type=0x0800, ipv4_dst=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"),
                 (Output(1),), COOKIE_BASE | (1000 + i % 1000))
            for i in range(n)]


def measure(plugs: int, sizes: list[int]) -> dict:
    result: dict = {}
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
        for i in range(plugs):
            inst = ovs.add_instance(f"10.0.0.{i + 1}", plug=False)
            t0 = time.monotonic()
            ovs.plug(inst)
            with cv:
                cv.wait_for(lambda: seen.get(inst.iface_id, (0, None))[1] is not None, 5)
            first, ready = seen[inst.iface_id]
            idl_lat.append(first - t0)
            of_lat.append(ready - t0)
        med_idl, med_of = statistics.median(idl_lat) * 1000, statistics.median(of_lat) * 1000
        result.update(vif_noticed_ms=round(med_idl, 1), vif_ofport_ms=round(med_of, 1))
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
            result.update({f"install_{n}_s": round(t1 - t0, 3), f"dump_{n}_s": round(t2 - t1, 3),
                           f"remove_{n}_s": round(t4 - t3, 3)})
            print(
                f"{n} flows: install bundle {t1 - t0:.2f}s, dump+decode {t2 - t1:.2f}s, "
                f"remove bundle {t4 - t3:.2f}s (ovs-ofctl saw {ofctl})"
            )
        ch.stop()
        conn.stop()
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    p.add_argument("sizes", nargs="*", type=int, help="bundle sizes (flows)")
    args = p.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    if args.sizes:
        counts["sizes"] = args.sizes
    line = {"bench": "plumbing", "quick": args.quick}
    line.update(measure(counts["plugs"], counts["sizes"]))
    line["counts"] = counts
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
