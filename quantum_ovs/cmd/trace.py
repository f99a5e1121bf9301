"""quantum-ovs-trace: walk a packet through a host's compiled flows.

Like ``ovn-trace``: compile a host view and trace one packet through it,
table by table, printing each flow it hits (with the owner named by its
cookie), what the flow changed, and where the packet ends up.

    quantum-ovs-trace --view host-a.json --from-port PORT_ID \\
        --packet "tcp,eth_dst=fa:16:3e:00:00:01,ipv4_dst=10.0.0.11,tcp_dst=22"

The view file is the agent API's host view encoding (quantum_ovs.wire)
plus an optional ``"chassis"`` object giving this host's OpenFlow ports:
``{"vif_ofports": {"<port id>": 5}, "tunnel_ofports": {"vxlan": 1},
"physnet_ofports": {"physnet1": 3}}``.

``--from-port`` fills in_port, eth_src and (for IP) ipv4_src from the
port; anything given in ``--packet`` wins.  ``--ct-state`` is what every
conntrack lookup answers (new, est, rel, inv; combine with "+", e.g.
"est+rpl").

``--server URL --host NAME [--token T]`` asks a running server for the
host's view (the agent API, as the host's agent does).  The server does not
know the switch's port numbers, so local ports are numbered 1001, 1002...
in port id order, tunnel ports 1 (vxlan) and 2 (gre) and physical networks
from 11 on; the numbering is printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from quantum_ovs import wire
from quantum_ovs.compiler import pipeline
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_EST, CT_INV, CT_NEW, CT_REL, CT_RPL
from quantum_ovs.compiler.trace import TraceError, Tracer, parse_packet
from quantum_ovs.model import Chassis, Neighbour

CT_NAMES = {"new": CT_NEW, "est": CT_EST, "rel": CT_REL, "inv": CT_INV, "rpl": CT_RPL}


def load_view(path: str):
    with open(path) as f:
        d = json.load(f)
    ch = d.get("chassis") or {}

    def pairs(key):
        v = ch.get(key) or {}
        return tuple(sorted((k, int(x)) for k, x in (v.items() if isinstance(v, dict) else v)))

    # external connectivity: the agent's BFD tunnel ports, the gateway hosts
    # it sees down, the neighbours it resolved ({network_id, ip_address,
    # mac_address} each)
    neighbours = tuple(Neighbour(n["network_id"], n["ip_address"], n["mac_address"])
                       for n in ch.get("neighbours") or ())
    chassis = Chassis(pairs("vif_ofports"), pairs("tunnel_ofports"), pairs("physnet_ofports"),
                      pairs("gateway_ofports"), tuple(ch.get("gateways_down") or ()),
                      neighbours)
    return wire.view_from_dict(d, chassis=chassis)


def fetch_view(server: str, host: str, token: str = ""):
    """The host's view from a running server, with a synthetic chassis."""
    import urllib.parse
    import urllib.request
    url = (f"{server.rstrip('/')}/agent-api/v1/hosts/{urllib.parse.quote(host)}/state"
           "?since=-1&timeout=0")
    req = urllib.request.Request(url, headers={"X-Agent-Token": token or "",
                                               "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        d = json.load(resp)["view"]
    local = sorted(p["id"] for p in d["ports"] if p.get("host") == host)
    physnets = sorted({n["physical_network"] for n in d["networks"]
                       if n.get("physical_network")})
    chassis = Chassis(tuple((pid, 1001 + i) for i, pid in enumerate(local)),
                      (("gre", 2), ("vxlan", 1)),
                      tuple((name, 11 + i) for i, name in enumerate(physnets)))
    return wire.view_from_dict(d, chassis=chassis)


def parse_ct_state(text: str) -> int:
    bits = 0
    for name in filter(None, text.replace(",", "+").split("+")):
        if name not in CT_NAMES:
            raise ValueError(f"unknown conntrack state {name!r} (use {', '.join(CT_NAMES)})")
        bits |= CT_NAMES[name]
    return bits


def build_packet(view, from_port: str | None, text: str) -> dict:
    pkt: dict = {}
    if from_port:
        port = next((p for p in view.ports if p.id == from_port), None)
        if port is None:
            raise ValueError(f"no port {from_port} in the view")
        ofport = view.chassis.vif_ofport(from_port)
        if ofport is None:
            raise ValueError(f"port {from_port} has no ofport on this host (see chassis)")
        pkt.update(in_port=ofport, eth_src=port.mac_address)
        v4 = [ip for ip in port.ips if ":" not in ip]
        if v4:
            pkt["ipv4_src"] = v4[0]
    given = parse_packet(text)
    pkt.update(given)
    if pkt.get("eth_type") != 0x0800:
        if "ipv4_src" not in given:
            pkt.pop("ipv4_src", None)
    if pkt.get("eth_type") == 0x0806 and from_port:
        pkt.setdefault("arp_sha", pkt["eth_src"])
        if v4:
            pkt.setdefault("arp_spa", v4[0])
    return pkt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="quantum-ovs-trace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--view", help="host view JSON file")
    src.add_argument("--server", help="URL of a running quantum-ovs server")
    ap.add_argument("--host", help="host name (with --server)")
    ap.add_argument("--token", default="", help="the agent API token (with --server)")
    ap.add_argument("--packet", default="", help='e.g. "in_port=5,tcp,ipv4_dst=10.0.0.1"')
    ap.add_argument("--from-port", help="port id the packet is sent from")
    ap.add_argument("--ct-state", default="new", help="conntrack answer (default new)")
    ap.add_argument("--dump-flows", action="store_true", help="print the compiled flows")
    ap.add_argument("--pipeline", action="store_true", help="print the table contract")
    args = ap.parse_args(argv)

    if args.pipeline:
        print(pipeline.describe())
        if not (args.view or args.server):
            return 0
    if not (args.view or args.server):
        ap.error("--view FILE or --server URL --host NAME is required")
    if args.server and not args.host:
        ap.error("--server needs --host")
    try:
        if args.server:
            view = fetch_view(args.server, args.host, args.token)
            print("ofports assumed: " + ", ".join(
                f"{k}={v}" for k, v in view.chassis.vif_ofports + view.chassis.tunnel_ofports
                + view.chassis.physnet_ofports))
        else:
            view = load_view(args.view)
        engine = Engine.from_view(view)
        if args.dump_flows:
            for f in sorted(engine.flows(), key=lambda f: (f.table, -f.priority, repr(f.match))):
                print(f"table={f.table} priority={f.priority} {f.match!r} "
                      f"actions={list(f.actions)} cookie={f.cookie:#x}")
            if not (args.packet or args.from_port):
                return 0
        pkt = build_packet(view, args.from_port, args.packet)
        if "in_port" not in pkt:
            ap.error("the packet needs in_port (or --from-port)")
        t = Tracer(engine.flows()).run(pkt, parse_ct_state(args.ct_state))
    except (OSError, ValueError, KeyError, TraceError) as e:
        print(f"quantum-ovs-trace: {e}", file=sys.stderr)
        return 1
    print(t.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
