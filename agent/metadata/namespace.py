"""The proxy's network namespace and its port on br-int.

    <namespace>  md0: METADATA_MAC, 169.254.169.254/32, PROXY_IPV6/128;
                 routes to the source networks of the flows via a gateway
                 whose neighbour entry is permanent (no ARP, no ND leaves
                 the namespace); the listening socket is opened in here.
    br-int       qmd<digest>: the veth's other end, a plain port (no
                 iface-id: not a VIF), external_ids:quantum-ovs-metadata.

Every step may be repeated (an agent restart keeps the namespace, the
veth and so the ofport; only a missing piece is made again).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading

from quantum_ovs.compiler.rules import metadata as md

CLONE_NEWNET = 0x40000000
NS_DEV = "md0"
EXTERNAL_ID = "quantum-ovs-metadata"


def _run(*cmd, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc


def _in_ns(ns, *cmd, check=True):
    return _run("ip", "netns", "exec", ns, *cmd, check=check)


def _link_exists(dev, netns=None) -> bool:
    cmd = ("ip", "-n", netns, "link", "show", dev) if netns else ("ip", "link", "show", dev)
    return _run(*cmd, check=False).returncode == 0


def ensure(ovsdb, bridge: str, host: str, settings) -> str:
    """Make (or keep) the namespace, the veth and the port on ``bridge``;
    returns the namespace's name."""
    ns = settings.namespace_for(host)
    dev = settings.device_for(host)
    bns = settings.bridge_netns
    if not os.path.exists(f"/run/netns/{ns}"):
        _run("ip", "netns", "add", ns)
    _in_ns(ns, "ip", "link", "set", "lo", "up")
    if not (_link_exists(dev, bns) and _link_exists(NS_DEV, ns)):
        if _link_exists(dev, bns):
            _run("ip", *(("-n", bns) if bns else ()), "link", "del", dev)
        if _link_exists(NS_DEV, ns):
            _in_ns(ns, "ip", "link", "del", NS_DEV)
        _run("ip", "link", "add", dev, *(("netns", bns) if bns else ()), "type", "veth",
             "peer", "name", NS_DEV, "netns", ns)
    _run("ip", *(("-n", bns) if bns else ()), "link", "set", dev, "up")
    for cmd in (
        ("ip", "link", "set", NS_DEV, "address", md.METADATA_MAC),
        ("sysctl", "-qw", f"net.ipv6.conf.{NS_DEV}.accept_ra=0"),
        ("sysctl", "-qw", f"net.ipv6.conf.{NS_DEV}.accept_dad=0"),
        ("ip", "link", "set", NS_DEV, "up"),
        ("ip", "addr", "replace", f"{md.METADATA_IP}/32", "dev", NS_DEV),
        ("ip", "-6", "addr", "replace", f"{md.PROXY_IPV6}/128", "dev", NS_DEV, "nodad"),
        ("ip", "route", "replace", md.GATEWAY_IP, "dev", NS_DEV, "scope", "link"),
        ("ip", "neigh", "replace", md.GATEWAY_IP, "lladdr", md.GATEWAY_MAC, "dev", NS_DEV,
         "nud", "permanent"),
        ("ip", "route", "replace", str(md.SOURCE_NET), "via", md.GATEWAY_IP, "dev", NS_DEV),
        ("ip", "-6", "neigh", "replace", md.GATEWAY_IPV6, "lladdr", md.GATEWAY_MAC, "dev",
         NS_DEV, "nud", "permanent"),
        ("ip", "-6", "route", "replace", str(md.SOURCE_NET6), "via", md.GATEWAY_IPV6, "dev",
         NS_DEV),
    ):
        _in_ns(ns, *cmd)
    # The userspace datapath would pass a veth's partial (offloaded) TCP
    # checksums on after rewriting the addresses: let the kernel finish them.
    if shutil.which("ethtool"):
        _in_ns(ns, "ethtool", "-K", NS_DEV, "tx", "off", check=False)
    ovsdb.ensure_port(bridge, dev, external_ids={EXTERNAL_ID: host})
    return ns


def remove(ovsdb, bridge: str, host: str, settings) -> None:
    dev = settings.device_for(host)
    with contextlib.suppress(Exception):
        ovsdb.del_port(dev, bridge)
    bns = settings.bridge_netns
    _run("ip", *(("-n", bns) if bns else ()), "link", "del", dev, check=False)
    _run("ip", "netns", "del", settings.namespace_for(host), check=False)


def remove_stale(ovsdb, bridge: str, host: str) -> bool:
    """With the proxy off: remove the port (and the default namespace) an
    earlier run with it on left; True if there was one."""
    from agent.metadata.settings import MetadataSettings

    s = MetadataSettings()
    if s.device_for(host) not in ovsdb.list_ports(bridge):
        return False
    remove(ovsdb, bridge, host, s)
    return True


def listen(ns: str, port: int) -> socket.socket:
    """A dual-stack TCP socket listening on ``port`` inside ``ns`` (made
    by a thread that enters the namespace: setns() moves only the calling
    thread, and a socket stays in the namespace it was made in)."""
    libc = ctypes.CDLL(None, use_errno=True)
    out: dict = {}

    def target():
        try:
            with open(f"/run/netns/{ns}") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", port))
            s.listen(128)
            out["sock"] = s
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=target, name=f"netns-{ns}")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]
