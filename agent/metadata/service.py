"""The agent's metadata piece: plumbing, the proxy, supervision.

``start`` makes the namespace and its port, opens the listening socket in
it and starts the proxy; ``on_ofport(n)`` tells the agent the proxy port's
ofport (its reconcile thread hands it to the engine: Chassis.metadata_ofport,
then the flows follow).  A supervisor thread checks every
``check_interval`` seconds that the proxy thread lives and the port still
has its ofport, and does the whole again when not (a deleted namespace or
port, a crashed server), retrying until it works or the agent stops.  A
failure here never stops the agent: it keeps switching without metadata.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from agent.metadata import namespace
from agent.metadata.proxy import MetadataProxy, Requester
from agent.metadata.settings import MetadataSettings
from quantum_ovs.compiler.rules import metadata as md

LOG = logging.getLogger(__name__)


class MetadataService:
    check_interval = 2.0

    def __init__(self, settings: MetadataSettings, host: str, bridge: str, ovsdb,
                 ports: Callable[[], tuple], on_ofport: Callable[[int], None],
                 stop_event: threading.Event):
        """``ports()`` answers (ofport -> port id, port id -> Port) as the
        agent installed them last."""
        self.s = settings
        self.host = host
        self.bridge = bridge
        self.ovsdb = ovsdb
        self.ports = ports
        self.on_ofport = on_ofport
        self.stop_event = stop_event
        self.proxy = MetadataProxy(settings, self.lookup, self.port_of)
        self.ofport = 0
        self.namespace: Optional[str] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ identity
    def lookup(self, address: str) -> Optional[Requester]:
        """The port behind a source address the flows wrote, or None."""
        src = md.parse_source(address)
        if src is None:
            return None
        ofport, index, version = src
        by_ofport, by_id = self.ports()
        pid = by_ofport.get(ofport)
        port = by_id.get(pid) if pid else None
        if port is None or port.host != self.host:
            return None
        ip = md.instance_address(port, index, version)
        if ip is None:
            return None
        return Requester(port.id, port.device_id, port.project_id, ip)

    @staticmethod
    def port_of(address: str):
        """Whose share a connection from ``address`` counts in: the ofport
        (every address of a port together), else the address."""
        src = md.parse_source(address)
        return ("ofport", src[0]) if src is not None else address

    # ------------------------------------------------------------ life
    def start(self) -> "MetadataService":
        try:
            self._setup()
        except Exception:  # noqa: BLE001 - retried by the supervisor
            LOG.exception("metadata proxy not set up; retrying")
        self._thread = threading.Thread(target=self._supervise, name="metadata",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the namespace and the port stay (a restarted agent
        takes them over with the same ofport, so the flows do not change)."""
        self.proxy.stop()
        if self._thread is not None:
            self._thread.join(5)

    def _setup(self) -> None:
        self.proxy.stop()
        self.namespace = namespace.ensure(self.ovsdb, self.bridge, self.host, self.s)
        sock = namespace.listen(self.namespace, self.s.listen_port)
        self.proxy.start(sock)
        ofport = self.ovsdb.wait_ofport(self.s.device_for(self.host), 10)
        if ofport != self.ofport:
            self.ofport = ofport
            self.on_ofport(ofport)
        LOG.info("metadata proxy listening in namespace %s, br-int port %s", self.namespace,
                 ofport)

    def healthy(self) -> bool:
        if not self.proxy.alive() or not self.ofport:
            return False
        try:
            return self.ovsdb.get_ofport(self.s.device_for(self.host)) == self.ofport
        except Exception:  # noqa: BLE001 - OVSDB reconnecting: not our fault
            return True

    def _supervise(self) -> None:
        failures = 0
        while not self.stop_event.wait(min(self.check_interval * (1 + failures), 30)):
            if self.healthy():
                failures = 0
                continue
            LOG.warning("metadata proxy or its port lost; setting it up again")
            try:
                self._setup()
                failures = 0
            except Exception:  # noqa: BLE001 - keep trying, keep the agent up
                failures += 1
                LOG.exception("metadata proxy set-up failed (%d)", failures)
