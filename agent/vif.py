"""quantum-ovs-vif: plug and unplug instance devices the way nova does.

    quantum-ovs-vif plug --port-id ID --mac MAC --instance UUID --dev tapXXX \
        [--bridge br-int] [--ovsdb unix:/var/run/openvswitch/db.sock] \
        [--wait --server http://127.0.0.1:9696 --timeout 30]
    quantum-ovs-vif unplug --dev tapXXX [--bridge br-int]

plug adds the device to the bridge with external_ids iface-id, attached-mac,
iface-status=active and vm-uuid (idempotently: plugging again changes
nothing); with --wait it returns when the port is ACTIVE in the API, or
fails with a clear message after --timeout seconds.

A compute-host tool (it talks to the local OVSDB, like the agent), so it
lives with the agent: the server package never imports agent/.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from agent.ovsdb.api import Ovsdb
from agent.ovsdb.connection import Connection

DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"


def plug(ovsdb, bridge, dev, port_id, mac, instance):
    ovsdb.ensure_port(bridge, dev, external_ids={
        "iface-id": port_id, "attached-mac": mac.lower(), "iface-status": "active",
        "vm-uuid": instance})


def unplug(ovsdb, bridge, dev):
    ovsdb.del_port(dev, bridge=bridge, if_exists=True)


def wait_active(server, port_id, timeout, token=None, project=None):
    headers = {"Accept": "application/json", "X-Roles": "admin"}
    if token:
        headers["X-Auth-Token"] = token
    if project:
        headers["X-Project-Id"] = project
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{server.rstrip('/')}/v2.0/ports/{port_id}",
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                status = json.loads(resp.read())["port"]["status"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise SystemExit(f"port {port_id} does not exist") from None
            status = f"HTTP {e.code}"
        except OSError as e:
            status = f"server unreachable ({e})"
        if status == "ACTIVE":
            return
        time.sleep(0.05)
    raise SystemExit(f"port {port_id} is not ACTIVE after {timeout:g} s (last status: "
                     f"{status}); is the quantum-ovs-agent running on this host?")


def main(argv=None):
    p = argparse.ArgumentParser(prog="quantum-ovs-vif")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("plug", "unplug"):
        s = sub.add_parser(name)
        s.add_argument("--dev", required=True, help="the tap or veth device")
        s.add_argument("--bridge", default="br-int")
        s.add_argument("--ovsdb", default=DEFAULT_OVSDB)
        if name == "plug":
            s.add_argument("--port-id", required=True)
            s.add_argument("--mac", required=True)
            s.add_argument("--instance", required=True, help="the instance (vm) uuid")
            s.add_argument("--wait", action="store_true", help="wait until ACTIVE")
            s.add_argument("--server", default="http://127.0.0.1:9696")
            s.add_argument("--token", default=None)
            s.add_argument("--project", default=None)
            s.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    conn = Connection(args.ovsdb, tables=("Open_vSwitch", "Bridge", "Port", "Interface"))
    try:
        conn.start()
    except Exception as e:  # noqa: BLE001 - report, don't trace
        raise SystemExit(f"cannot reach OVSDB at {args.ovsdb}: {e}") from None
    try:
        ovsdb = Ovsdb(conn)
        if args.command == "plug":
            plug(ovsdb, args.bridge, args.dev, args.port_id, args.mac, args.instance)
        else:
            unplug(ovsdb, args.bridge, args.dev)
    finally:
        conn.stop()
    if args.command == "plug" and args.wait:
        wait_active(args.server, args.port_id, args.timeout, args.token, args.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
