"""Tunnels with BFD to gateway hosts, and what BFD says of them (issue 14).

Plain SNAT leaves a router through one of its gateway hosts
(``RouterGateway.hosts``, highest priority first).  Each host picks the
first one that is alive by itself, in the data plane: the redirect flow is
a ``bundle(active_backup)`` over per-remote tunnel ports that run BFD,
and OVS skips a member whose BFD session is down.  This module makes those
ports and reads their BFD state:

* :func:`gateway_peers` -- which remote hosts this host needs a BFD tunnel
  to: the gateway hosts of the routers in its view, and, on a gateway host,
  every remote host with ports on the networks of the routers it serves
  (BFD needs a session on both ends, and OVS hands the packets of a remote
  with its own port to that port, not to the flow-based one).
* :class:`GatewayTunnels` -- one tunnel port per peer on the integration
  bridge (``remote_ip`` = the peer's tunnel IP, ``key=flow``,
  ``bfd:enable=true`` with 100 ms intervals: a dead peer is seen within
  ~0.3 s), made and removed as the wanted set changes; ports of a peer no
  longer wanted are removed, also those an earlier agent left.
* :class:`BfdMonitor` -- follows ``Interface.bfd_status`` of those ports
  through the OVSDB IDL (row events, no polling) and answers the peers'
  ofports and which of them are down.

A port just made has no session yet: its peer counts as alive for a grace
period (unless BFD already saw it up and then down), so that a host that
starts does not first send everything to a lower-priority gateway.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from agent.ovsdb import commands as cmd
from quantum_ovs import model as m

LOG = logging.getLogger(__name__)

# Interface external_ids of our gateway tunnel ports: the peer's host name.
PEER_KEY = "qovs-gateway-peer"
PORT_PREFIX = "qgw-"
# BFD timers in ms.  OVS's detect multiplier is 3: a dead peer is declared
# down ~0.3 s after its last control packet.  decay_min_rx=0: never slow
# down when the tunnel carries no traffic (a standby gateway sees none).
BFD_MIN_TX = 100
BFD_MIN_RX = 100
# Seconds a new port's peer counts as alive before its session is up.
BFD_GRACE = 5.0


def bfd_config(min_tx: int = BFD_MIN_TX, min_rx: int = BFD_MIN_RX) -> dict[str, str]:
    return {"enable": "true", "min_tx": str(min_tx), "min_rx": str(min_rx),
            "decay_min_rx": "0"}


def port_name(remote_ip: str) -> str:
    """The tunnel port to ``remote_ip``: short (an interface name fits
    15 characters) and the same on every start."""
    return PORT_PREFIX + hashlib.blake2b(remote_ip.encode(), digest_size=4).hexdigest()


def gateway_hosts(routers: Iterable[m.Router]) -> frozenset[str]:
    """Every host that is a gateway host of one of ``routers``."""
    return frozenset(h for r in routers if r.gateway is not None for h in r.gateway.hosts)


def gateway_peers(host: str, routers: Iterable[m.Router], ports: Iterable[m.Port],
                  remote_hosts: Iterable[m.RemoteHost]) -> dict[str, str]:
    """Remote host name -> tunnel IP of every host ``host`` needs a BFD
    tunnel to (hosts without a tunnel IP in the view are left out)."""
    routers = tuple(routers)
    wanted = set(gateway_hosts(routers))
    served = set()  # networks of the routers this host is a gateway of
    for r in routers:
        if r.gateway is not None and host in r.gateway.hosts:
            served |= r.network_ids
    if served:
        wanted.update(p.host for p in ports if p.host and p.network_id in served)
    wanted.discard(host)
    ips = {r.name: r.tunnel_ip for r in remote_hosts}
    return {h: ips[h] for h in sorted(wanted) if ips.get(h)}


def active_gateway(gateway: m.RouterGateway, down: Iterable[str]) -> Optional[str]:
    """The first of the gateway's hosts that is not down (None: all are)."""
    down = frozenset(down)
    return next((h for h in gateway.hosts if h not in down), None)


@dataclass(frozen=True, slots=True)
class PeerPort:
    """One of our gateway tunnel ports as the OVSDB replica shows it."""

    host: str
    name: str
    remote_ip: str
    ofport: Optional[int]
    state: Optional[str]  # bfd_status:state ("up", "down", "init", "admin_down")
    forwarding: bool

    @property
    def up(self) -> bool:
        return self.state == "up" and self.forwarding


def _peer_from_row(row) -> Optional[PeerPort]:
    host = dict(row.external_ids).get(PEER_KEY)
    if not host:
        return None
    ofport = row.ofport
    if isinstance(ofport, list):
        ofport = ofport[0] if ofport else None
    status = dict(getattr(row, "bfd_status", {}) or {})
    return PeerPort(host=host, name=row.name,
                    remote_ip=dict(row.options).get("remote_ip", ""),
                    ofport=ofport if ofport is not None and ofport > 0 else None,
                    state=status.get("state"), forwarding=status.get("forwarding") == "true")


class BfdMonitor:
    """Our gateway tunnel ports and their BFD state, from the IDL.

    ``on_change()`` is called on the IDL thread (keep it short: queue)
    whenever a port appears, goes, gets its ofport or changes BFD state.
    """

    def __init__(self, conn, on_change: Callable[[], None], grace: float = BFD_GRACE,
                 clock=time.monotonic):
        self.conn = conn
        self.on_change = on_change
        self.grace = grace
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: dict = {}  # row uuid -> PeerPort (IDL thread)
        self._ports: dict[str, PeerPort] = {}  # host -> PeerPort (snapshot)
        self._since: dict[str, float] = {}  # host -> when its port was first seen
        self._was_up: set[str] = set()  # hosts BFD has seen up
        self.transitions: list = []  # (monotonic time, host, up): for tests and logs
        conn.add_row_handler(self._on_row, table="Interface")
        conn.add_reconnect_handler(self._resync)
        if conn.idl is not None and conn._ready.is_set():
            conn.call(lambda idl: self._resync())

    # ------------------------------------------------------------ reading
    def ports(self) -> dict[str, PeerPort]:
        with self._lock:
            return dict(self._ports)

    def ofports(self) -> tuple[tuple[str, int], ...]:
        """(host, ofport) of every peer port the switch has numbered."""
        return tuple(sorted((h, p.ofport) for h, p in self.ports().items()
                            if p.ofport is not None))

    def down(self, hosts: Optional[Iterable[str]] = None) -> tuple[str, ...]:
        """Of ``hosts`` (default: every peer), those whose BFD says down:
        no port, or a session not up once the grace period of a new port
        is over (or at once if it was up before)."""
        now = self.clock()
        with self._lock:
            ports = dict(self._ports)
            since = dict(self._since)
            was_up = set(self._was_up)
        out = []
        for h in sorted(ports if hosts is None else hosts):
            p = ports.get(h)
            if p is None:
                out.append(h)
            elif not p.up and (h in was_up or now - since.get(h, now) >= self.grace):
                out.append(h)
        return tuple(out)

    def next_deadline(self) -> Optional[float]:
        """When the grace period of a port whose session is not up yet
        ends (the caller looks at ``down()`` again then), or None."""
        with self._lock:
            ends = [self._since[h] + self.grace for h, p in self._ports.items()
                    if not p.up and h not in self._was_up and h in self._since]
        return min(ends) if ends else None

    # ------------------------------------------------------- IDL thread only
    def _on_row(self, event, row, old) -> None:
        self._update(row.uuid, None if event == "delete" else _peer_from_row(row))

    def _resync(self) -> None:
        rows = self.conn.idl.tables["Interface"].rows
        for uuid in list(self._rows):
            if uuid not in rows:
                self._update(uuid, None)
        for uuid, row in rows.items():
            self._update(uuid, _peer_from_row(row))

    def _update(self, uuid, new: Optional[PeerPort]) -> None:
        old = self._rows.get(uuid)
        if old == new:
            return
        now = self.clock()
        with self._lock:
            if new is None:
                self._rows.pop(uuid, None)
            else:
                self._rows[uuid] = new
            if old is not None and self._ports.get(old.host) == old:
                del self._ports[old.host]
                if new is None or new.host != old.host:
                    self._since.pop(old.host, None)
                    self._was_up.discard(old.host)
            if new is not None:
                self._ports[new.host] = new
                self._since.setdefault(new.host, now)
                if new.up:
                    self._was_up.add(new.host)
        was = old is not None and old.up
        if new is not None and (old is None or old.host == new.host) and new.up != was:
            self.transitions.append((now, new.host, new.up))
            LOG.info("BFD to gateway peer %s (%s): %s", new.host, new.name,
                     "up" if new.up else f"down ({new.state})")
        self.on_change()


class GatewayTunnels:
    """Makes and removes the BFD tunnel ports on the integration bridge."""

    def __init__(self, ovsdb, bridge: str, tunnel_type: Optional[str],
                 local_ip: Optional[str], monitor: BfdMonitor,
                 bfd: Optional[Mapping[str, str]] = None):
        self.ovsdb = ovsdb
        self.bridge = bridge
        self.tunnel_type = tunnel_type
        self.local_ip = local_ip
        self.monitor = monitor
        self.bfd = dict(bfd or bfd_config())
        self.applied: Optional[dict[str, str]] = None  # host -> ip last made

    @property
    def makes_ports(self) -> bool:
        """Whether this host can make tunnel ports at all (a tunnel type
        and a local IP): without, every other gateway host is one it has
        no tunnel to."""
        return bool(self.tunnel_type and self.local_ip)

    def sync(self, wanted: Mapping[str, str]) -> bool:
        """Make the ports of ``wanted`` (host -> tunnel IP), remove every
        other gateway port; True if a transaction was sent."""
        if not self.makes_ports:
            wanted = {}
        wanted = dict(wanted)
        have = self.monitor.ports()
        stale = [p.name for h, p in have.items()
                 if h not in wanted or p.name != port_name(wanted[h])]
        if wanted == self.applied and not stale:
            return False
        commands = [cmd.DelPort(name, self.bridge) for name in stale]
        for host, ip in sorted(wanted.items()):
            commands.append(cmd.EnsurePort(
                self.bridge, port_name(ip), self.tunnel_type,
                {"remote_ip": ip, "local_ip": self.local_ip, "key": "flow"},
                external_ids={PEER_KEY: host}, bfd=self.bfd))
        if commands:
            self.ovsdb.execute(commands)
        LOG.info("gateway tunnels: %s%s", ", ".join(f"{h}={ip}" for h, ip in
                                                     sorted(wanted.items())) or "none",
                 f" (removed {', '.join(stale)})" if stale else "")
        self.applied = wanted
        return bool(commands)
