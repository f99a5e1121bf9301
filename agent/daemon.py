"""The agent: keeps one host's Open vSwitch in line with the model.

This module only orchestrates; the jobs live next to it:
    settings     Settings (plain values, from oslo.config or a test)
    state        the state file (allocations kept across restarts)
    plumbing     integration bridge, tunnel and patch ports
    gateways     BFD tunnel ports to gateway hosts, and their liveness
    reconciler   the installed flows: dump, diff, one bundle
    reporting    port status to the server, with retries
    responders   DHCP answered from packet-ins; external neighbours
                 resolved and addresses announced (responders.neighbours)
    metadata     the host's metadata proxy (with settings.metadata)

Threads (native; no eventlet):
    sync        long-polls the server for the host's state (full view or
                delta) and queues it;
    heartbeat   registers and reports liveness every report_interval;
    reconcile   the only owner of the compiler Engine and of the
                reconciler: drains its queue (model changes, VIF
                plug/unplug from OVSDB, switch (re)connections, BFD state
                of the gateway tunnels), lets the engine recompute what
                changed, and has the reconciler send the difference to the
                switch; then reports ports whose flows are in;
plus the OVSDB IDL thread and the OpenFlow channel's threads.

Hitless restarts: on every (re)connection the installed flows are dumped
(only ours, by cookie) and only the difference to the desired set is
sent; network local ids and conjunction ids are kept in a state file so a
restarted agent compiles exactly the same flows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from agent import gateways, plumbing, startup, sync_client
from agent.metadata import namespace as metadata_namespace
from agent.openflow.channel import Channel, CookieScope
from agent.ovsdb.api import Ovsdb
from agent.ovsdb.connection import Connection
from agent.ovsdb.events import InterfaceWatcher
from agent.plumbing import AGENT_TABLES, TUNNEL_PORT  # noqa: F401 (their old home)
from agent.reconciler import Reconciler
from agent.reporting import PortReporter
from agent.responders import neighbours as nb
from agent.responders.dispatch import DhcpDispatcher
from agent.responders.dns import DnsResponder, Forwarder, build_zone
from agent.responders.router import advertisers, router_advertisement
from agent.settings import Settings  # noqa: F401 (imported from here by callers)
from agent.state import StateFile
from quantum_ovs import model as m
from quantum_ovs.compiler.engine import PORT, PORT_ACL, Engine
from quantum_ovs.compiler.flow import Output, diff_key_set

LOG = logging.getLogger(__name__)


class Agent:
    # Unsolicited router advertisements to the local ports of networks
    # with an advertising router interface, every this many seconds.
    ra_interval = 60.0

    def __init__(self, settings: Settings, first_poll: sync_client.FirstPoll | None = None,
                 ovsdb: startup.EarlyOvsdb | None = None):
        """``first_poll``: the first poll of the server, already sent with
        this agent's client (agent.main sends it before importing this
        module); None: the sync thread sends it.  ``ovsdb``: the OVSDB
        connection, already being started (agent.main starts it then too);
        None: start() starts it."""
        self.s = settings
        self.first_poll = first_poll
        self.early_ovsdb = ovsdb
        self.client = first_poll.client if first_poll is not None else \
            sync_client.SyncClient.for_settings(settings)
        self.events: "queue.Queue" = queue.Queue()
        self.stop_event = threading.Event()
        self.conn = None
        self.ovsdb = None
        self.channel = None
        self.watcher = None
        self.state = StateFile(settings.state_path, settings.host)
        # isolate: a conflict between flow owners (or an owner the compiler
        # cannot build) holds back those owners, not every change here
        self.engine = Engine(settings.host, self.state.load(), isolate=True,
                             permitted_ethertypes=settings.permitted_ethertypes)
        self.held: dict = {}  # owner -> why (logged when it changes)
        self.have_view = False  # a full view from the server is loaded
        self.revision = -1  # -1: no view yet (0 is a real revision of an empty cloud)
        self.last_install = None  # the last flow diff installed (for the log)
        self.vifs = {}  # port id -> ofport (plugged here, with an ofport)
        self.vif_rows = {}  # port id -> the OVSDB Interface row of its ofport
        self.base_chassis = m.Chassis()  # tunnel and patch ports (plumbing)
        self.chassis = m.Chassis()  # what the engine was last given
        self.gw_monitor = None  # BFD state of the gateway tunnels (gateways)
        self.gw_tunnels = None
        self.gw_peers: dict = {}  # host -> tunnel IP: the BFD tunnels wanted
        self.gw_wanted_since: dict = {}  # host -> when its tunnel was first wanted
        self.gw_retry = False  # the last making of the BFD tunnel ports failed
        self.fips_applied: frozenset = frozenset()  # FloatingIPs this host applies
        self.threads = []
        self.ready = threading.Event()  # first full sync installed
        self.stats = {"applies": 0, "flow_mods": 0, "resyncs": 0, "full_views": 0,
                      "deltas": 0, "held_owners": 0}
        self.reconciler = Reconciler(self.stats)
        self.reporter = PortReporter(self.client, self.stop_event,
                                     lambda: self.events.put(("resync-report", None)))
        self.resolver = nb.NeighbourResolver(self._packet_out,
                                             lambda: self.events.put(("neighbours", None)),
                                             self.stats)
        self.announcer = nb.Announcer(self._packet_out, self.stats)
        self.nb_context = nb.EMPTY
        self._nb_roles = None  # the gateway state nb_context was built with
        self._nb_stale = False  # the view changed since
        # DNS (dns-integration): names of the networks' ports, from the
        # view; the zone of a network is rebuilt on the first query after
        # a change (_dns_gen moves with every view or delta).
        self._dns_gen = 0
        self._zones = {}
        self.dns = DnsResponder(self._zone, resolvers=settings.dns_resolvers,
                                stats=self.stats)
        self.dhcp = DhcpDispatcher(settings.dhcp_lease_time, self._local_port,
                                   lambda data, actions: self.channel.packet_out(data, actions),
                                   self.stats, routers=self._routers, neighbours=self.resolver,
                                   metadata_route=settings.metadata is not None, dns=self.dns,
                                   domain=settings.dns_domain)
        self.metadata = None  # MetadataService, with settings.metadata
        self.metadata_ofport = 0  # the proxy's port on br-int (0: none yet)
        # (ofport -> port id, port id -> Port) as last installed: what the
        # metadata proxy reads (from its own threads) to know who asks
        self.installed_ports = ({}, {})
        self.metrics = None  # AgentMetrics, with settings.metrics_port
        self.last_compile_s = 0.0  # the engine's share of the last batch

    @property
    def reported(self):
        """Port ids reported as installed."""
        return self.reporter.reported

    @property
    def last_apply_ms(self):
        return self.reconciler.last_apply_ms

    # ------------------------------------------------------------ start/stop
    def start(self):
        s = self.s
        if s.metrics_port is not None:
            # Here, not at the top: prometheus_client costs every start
            # ~10 ms of imports, and metrics are off by default.
            from agent.metrics import AgentMetrics
            self.metrics = AgentMetrics(self)
            self.metrics.serve(s.metrics_host, s.metrics_port)
        try:
            self._start()
        except BaseException:
            self.stop()  # the threads already started
            raise
        return self

    def _start(self):
        s = self.s
        # What needs no OVSDB first, so that it overlaps the first OVSDB
        # sync: the view from the server (events wait in the queue for the
        # reconcile thread), and the OpenFlow listener (a restarted agent's
        # switch reconnects to it at once, and its flows are dumped then).
        self._start_thread("sync", self._sync_loop)
        self.channel = Channel(CookieScope.ours(), listen=s.of_listen,
                               sock=plumbing.controller_socket(s),
                               meter_rate=s.dhcp_packet_rate, meter_burst=s.dhcp_packet_burst,
                               packet_in_queue=s.packet_in_queue, connect=s.of_connect)
        self.reconciler.channel = self.channel
        self.channel.on_connect(self._on_switch_connected)
        self.channel.on_disconnect(lambda gen: self.events.put(("disconnected", gen)))
        self.channel.on_packet_in(self.dhcp.packet_in)
        self.dns.forwarder = Forwarder(stats=self.stats)
        self.channel.start()
        early, self.early_ovsdb = self.early_ovsdb, None
        self.conn = early.result() if early is not None else \
            Connection(s.ovsdb, tables=AGENT_TABLES).start()
        self.conn.add_reconnect_handler(lambda: self._count("ovsdb_reconnects"))
        self.ovsdb = Ovsdb(self.conn)
        plumbing.ensure_integration_bridge(self.ovsdb, s, self.channel.target)
        self.base_chassis = plumbing.plumb(self.ovsdb, s)
        self.chassis = self.base_chassis
        self.engine.set_chassis(self.chassis)
        self.watcher = InterfaceWatcher(self.conn, self._on_vif)
        self.gw_monitor = gateways.BfdMonitor(
            self.conn, lambda: self.events.put(("gateways", None)), grace=s.bfd_grace)
        self.gw_tunnels = gateways.GatewayTunnels(
            self.ovsdb, s.integration_bridge, s.tunnel_types[0] if s.tunnel_types else None,
            s.local_ip, self.gw_monitor,
            gateways.bfd_config(s.bfd_interval_ms, s.bfd_interval_ms))
        if s.metadata is None:
            metadata_namespace.remove_stale(self.ovsdb, s.integration_bridge, s.host)
        else:
            # Here, not at the top: the proxy's HTTP server and TLS are
            # imports a host without metadata does not need.
            from agent.metadata.service import MetadataService
            self.metadata = MetadataService(
                s.metadata, s.host, s.integration_bridge, self.ovsdb,
                lambda: self.installed_ports,
                lambda ofport: self.events.put(("metadata", ofport)), self.stop_event).start()
        for name, target in (("reconcile", self._reconcile_loop),
                             ("heartbeat", self._heartbeat_loop),
                             ("router-advertisements", self._ra_loop),
                             ("neighbours", self._neighbour_loop)):
            self._start_thread(name, target)

    def _start_thread(self, name, target):
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _on_switch_connected(self, datapath_id, generation):
        # On the channel's event thread: start the dump (the first install
        # on this connection needs it), then let the reconcile thread know.
        self.reconciler.prefetch(generation)
        self.events.put(("connected", generation))

    def stop(self):
        """Stop the agent's threads promptly; the flows stay installed (a
        restarted agent takes them over without a dropped packet)."""
        self.stop_event.set()
        if self.early_ovsdb is not None:  # (never started)
            try:
                self.conn = self.early_ovsdb.result(timeout=1.0)
            except TimeoutError:
                self.early_ovsdb.discard()  # stopped once its start ends
            except Exception:  # noqa: BLE001 - stopped already
                pass
            self.early_ovsdb = None
        self.events.put(("stop", None))
        # Wakes the sync thread out of its long poll (and a heartbeat or a
        # report in flight) instead of waiting the poll out.
        self.client.close()
        if self.metadata is not None:
            self.metadata.stop()
        for t in self.threads:
            t.join(5)
            if t.is_alive():
                LOG.warning("agent thread %s did not stop within 5 s", t.name)
        if self.dns.forwarder is not None:
            self.dns.forwarder.stop()
        if self.channel is not None:
            self.channel.stop()
        if self.conn is not None:
            self.conn.stop()
        if self.metrics is not None:
            self.metrics.stop()

    def _count(self, key):
        self.stats[key] = self.stats.get(key, 0) + 1

    # ------------------------------------------------------------ inputs
    def _on_vif(self, event, vif, old):
        # On the IDL thread: only queue.
        self.events.put(("vif", (event, vif)))

    def _local_port(self, ofport):
        """For DHCP (on the channel's thread): the port plugged on
        ``ofport``, its network and the subnets, or None."""
        pid = next((p for p, o in list(self.vifs.items()) if o == ofport), None)
        port = self.engine.ports.get(pid) if pid else None
        if port is None:
            return None
        network = self.engine.networks.get(port.network_id)
        if network is None:
            return None
        return port, network, self.engine.subnets

    def _zone(self, network):
        """The DNS names of ``network``'s ports (on the channel's thread)."""
        gen = self._dns_gen
        cached = self._zones.get(network.id)
        if cached is not None and cached[0] == gen and cached[1] == network:
            return cached[2]
        zone = build_zone(network, list(self.engine.ports.values()),
                          list(self.engine.subnets.values()), self.s.dns_domain)
        self._zones[network.id] = (gen, network, zone)
        return zone

    def _routers(self):
        return tuple(self.engine.routers.values())

    def _packet_out(self, data, actions):
        if self.channel is not None and self.channel.connected:
            self.channel.packet_out(data, actions)

    def _neighbour_loop(self):
        """Refresh and age the external neighbours; repeat announcements."""
        while not self.stop_event.wait(0.5):
            try:
                self.resolver.tick()
                self.announcer.tick(self.nb_context)
            except Exception:  # noqa: BLE001 - not connected, a view changing
                LOG.debug("neighbour timer failed", exc_info=True)

    def _ra_loop(self):
        while not self.stop_event.wait(self.ra_interval):
            try:
                self.send_router_advertisements()
            except Exception:  # noqa: BLE001 - not connected, a port going away
                LOG.debug("periodic router advertisements not sent", exc_info=True)

    def send_router_advertisements(self) -> int:
        """One round of unsolicited advertisements: to every local port,
        from every router interface advertising on its network."""
        routers = self._routers()
        if not routers or self.channel is None:
            return 0
        frames: dict = {}
        sent = 0
        for pid, ofport in sorted(list(self.vifs.items())):
            port = self.engine.ports.get(pid)
            network = self.engine.networks.get(port.network_id) if port else None
            if network is None:
                continue
            if network.id not in frames:
                frames[network.id] = [router_advertisement(a, network.mtu) for a in
                                      advertisers(routers, self.engine.subnets, network.id)]
            for frame in frames[network.id]:
                self.channel.packet_out(frame, [Output(ofport)])
                sent += 1
        self.stats["ra_periodic"] = self.stats.get("ra_periodic", 0) + sent
        return sent

    def _heartbeat_loop(self):
        started = True
        attempt = 0
        while not self.stop_event.is_set():
            try:
                self.client.register(self.s.local_ip, self._configurations(), started=started)
                started = False
                attempt = 0
                self.stop_event.wait(self.s.report_interval)
            except sync_client.Closed:
                break  # stop() closed the client
            except (sync_client.ServerUnavailable, sync_client.ServerError) as e:
                LOG.info("heartbeat failed: %s", e)
                sync_client.sleep_backoff(attempt, self.stop_event)
                attempt += 1

    def _configurations(self):
        return {"integration_bridge": self.s.integration_bridge,
                "datapath_type": self.s.datapath_type,
                "tunnel_types": list(self.s.tunnel_types),
                "bridge_mappings": self.s.bridge_mappings,
                "tunnel_ip": self.s.local_ip, "devices": len(self.vifs),
                "gateway": self.s.gateway,
                "of_listen": (list(self.channel.listen_addr)
                              if self.channel and self.channel.listen_addr else None),
                "of_connect": self.s.of_connect}

    def _sync_loop(self):
        attempt = 0
        first, self.first_poll = self.first_poll, None
        while not self.stop_event.is_set():
            try:
                if first is not None:  # sent before the agent started
                    poll, first = first.result, None
                    answers = [poll()]
                else:
                    # One poll, each of its answers as it comes (the
                    # server streams them for up to polling_interval).
                    answers = self.client.poll_stream(self.revision,
                                                      0 if self.revision < 0 else
                                                      self.s.polling_interval)
                for kind, value, rev in answers:
                    attempt = 0
                    self.revision = rev
                    self.events.put((kind, value))
            except sync_client.Closed:
                break  # stop() closed the client
            except (sync_client.ServerUnavailable, sync_client.ServerError) as e:
                # Keep the data plane as it is; try again.
                LOG.info("server unavailable (%s); data plane unchanged", e)
                sync_client.sleep_backoff(attempt, self.stop_event)
                attempt += 1

    # ------------------------------------------------------------ reconcile
    def _reconcile_loop(self):
        while not self.stop_event.is_set():
            try:
                first = self.events.get(timeout=self._idle_timeout())
            except queue.Empty:
                try:
                    if self.have_view and (
                            self._chassis_wanted() != self.chassis or (
                                self.gw_retry)):
                        # a BFD grace period ended, or gateway tunnel ports
                        # whose transaction failed are to be made again
                        self.events.put(("tick", None))
                except Exception:  # noqa: BLE001 - the loop must outlive it
                    LOG.exception("reconcile failed; will dump and resync")
                    self.events.put(("resync", None))
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self.events.get_nowait())
                except queue.Empty:
                    break
            try:
                self._handle(batch)
            except Exception:  # noqa: BLE001 - log, resync from scratch next time
                LOG.exception("reconcile failed; will dump and resync")
                self.reconciler.resync()
                time.sleep(0.2)
                self.events.put(("resync", None))

    def _handle(self, batch):
        touched = set()
        view_changed = False
        resent = set()  # routers the server sent again
        compiling = 0.0  # seconds in the engine
        # The agent's first view, the last change of the batch: its model
        # is taken now and its flows are computed as they are sent (below,
        # _install), so the switch takes them while later ones are being
        # computed (issue 17).
        models = [i for i, (kind, _) in enumerate(batch) if kind in ("full", "delta")]
        streamed = False
        # The batch's plugged and unplugged ports first: a view in the same
        # batch is then compiled once with them (at start-up the server's
        # view and the first OVSDB contents come together; compiling the
        # view first and adding a thousand ports after costs several times
        # more).  Only self.vifs changes here; the engine gets it below.
        for kind, value in batch:
            if kind == "vif":
                self._vif_changed(*value)
        for i, (kind, value) in enumerate(batch):
            if kind == "stop":
                return
            if kind in ("full", "delta"):
                # (before the model changes: a failure part-way leaves the
                # engine changed, and the resolver's context must follow)
                self._nb_stale = True
            if kind == "full":
                self.stats["full_views"] += 1
                self._report_again(value.ports, self.engine.ports.keys() -
                                   {p.id for p in value.ports})
                touched |= self._sync_vifs()  # the view takes the agent's chassis
                view = value.replace(chassis=self.chassis)
                t = time.monotonic()
                if not self.have_view and self.reconciler.need_dump and i == models[-1]:
                    self.engine.load_model(view)
                    streamed = True
                else:
                    d = self.engine.update(view) if self.have_view else \
                        self.engine.load(view)
                    if not self.reconciler.need_dump:  # else install diffs everything anyway
                        touched |= diff_key_set(d)
                compiling += time.monotonic() - t
                self.have_view = True
                view_changed = True
            elif kind == "delta":
                self.stats["deltas"] += 1
                net_ports = self.engine.net_ports
                self._report_again(value.ports, [*value.removed_ports, *(
                    pid for nid in value.removed_networks for pid in net_ports.get(nid, ()))])
                t = time.monotonic()
                touched |= diff_key_set(self.engine.apply(value))
                compiling += time.monotonic() - t
                view_changed = True
                # The server sets a floating IP DOWN on any change and sends
                # its router again: report those again once installed.
                resent |= {r.id for r in value.routers}
            elif kind == "connected":
                self._count("openflow_connects")
                self.reconciler.connected(value)
                # The switch (re)started, maybe after it was down long
                # enough for another gateway host to take over: announce
                # our addresses again (the network learns where they are).
                self.announcer.forget()
            elif kind in ("resync", "disconnected"):
                self.reconciler.resync()
            elif kind == "metadata":
                self.metadata_ofport = value  # the chassis is looked at below
            # "gateways" (BFD ports or state changed), "tick": the chassis
            # is looked at below
        if view_changed:
            self._sync_gateway_tunnels()
        elif self.gw_retry:
            self._make_gateway_tunnels()  # (a transaction that failed)
        t = time.monotonic()
        if streamed:  # the engine computes with this chassis (_install)
            self.chassis = self._chassis_wanted()
        else:
            touched |= self._sync_vifs()
        compiling += time.monotonic() - t
        if compiling:
            self.last_compile_s = compiling
        if models:
            self._dns_gen += 1  # after the engine has them: zones are rebuilt
        fips = self._fips_to_report(resent)
        installed = self._install(touched, fips, streamed)
        self._neighbour_context()
        changes = [(kind, value.revision) for kind, value in batch if kind in ("full", "delta")]
        if changes:
            self._log_applied(changes, installed)
        if installed:
            self._announce()

    def _report_again(self, ports, removed) -> None:
        """Before the engine takes a change of the view (``ports`` upserted,
        the ids ``removed``): the ports whose status the server will want
        reported again once their flows are in.  A port that leaves this
        host (its binding moves: the server resets it to DOWN, flows not
        installed, and waits for a report if it comes back) or the view,
        and a port whose admin_state_up changes (the server sets ACTIVE or
        DOWN by it on an "installed" report, never on the update itself),
        as Neutron's agent reports every such port_update."""
        host, old = self.s.host, self.engine.ports
        self.reporter.forget(removed)
        self.reporter.forget([p.id for p in ports if p.host != host or (
            (was := old.get(p.id)) is not None and was.admin_state_up != p.admin_state_up)])

    def _neighbour_context(self) -> None:
        """The resolver's and announcer's view of the external networks,
        rebuilt when the view or the gateway hosts' state changed (the
        addresses this host asks from follow its gateway roles), once the
        engine has computed with the batch's chassis (_install)."""
        e = self.engine
        roles = (e.gateways_down, tuple(sorted(e.gateway_ofports)))
        if not self._nb_stale and roles == self._nb_roles:
            return
        self._nb_stale, self._nb_roles = False, roles
        self.nb_context = nb.build_context(self.s.host, e.routers.values(), e.networks,
                                           e.subnets.values(), e.ports, e.local_id,
                                           dict(self.base_chassis.physnet_ofports),
                                           e.neighbour_sources(),
                                           {e.router_zone(rid): rid for rid in e.routers})
        self.resolver.set_context(self.nb_context)

    def _log_applied(self, changes, installed):
        """One line per applied batch of the server's changes, naming the
        revision they bring the host to."""
        fulls = sum(1 for kind, _ in changes if kind == "full")
        what = (f"full view and {len(changes) - fulls} delta(s)" if fulls
                else f"{len(changes)} delta(s)")
        d = self.last_install
        if installed and d is not None:
            LOG.info("applied %s up to revision %d: %d flow(s) added, %d modified, "
                     "%d deleted", what, changes[-1][1], len(d.adds), len(d.modifies),
                     len(d.deletes))
        else:
            LOG.info("applied %s up to revision %d to the desired state; flows not "
                     "installed yet (switch not connected)", what, changes[-1][1])

    def _announce(self):
        """Gratuitous ARP / unsolicited NA for addresses that became ours
        (after their flows are in: the answers to them are then ours)."""
        try:
            self.announcer.update(nb.announcements(self.s.host, self.nb_context,
                                                   self.engine.routers.values(),
                                                   self.chassis.gateways_down),
                                  self.nb_context)
        except Exception:  # noqa: BLE001 - the switch went away: sent again next time
            LOG.debug("announcements not sent", exc_info=True)

    def _sync_vifs(self):
        """Hand the engine what changed on the switch in one change: a
        network's flows (its flood list) are recomputed once per batch, not
        once per plugged port."""
        ch = self._chassis_wanted()
        if ch == self.chassis:
            return set()
        self.chassis = ch
        return diff_key_set(self.engine.set_chassis(ch))

    def _chassis_wanted(self) -> m.Chassis:
        """The switch as the engine should see it: VIFs, tunnel and patch
        ports, the BFD tunnels to gateway hosts and which of those are down."""
        base = self.base_chassis
        gw_ofports, down = (), ()
        if self.gw_monitor is not None:
            wanted = self.gw_peers
            gw_ofports = tuple((h, o) for h, o in self.gw_monitor.ofports() if h in wanted)
            gw_hosts = gateways.gateway_hosts(self.engine.routers.values()) - {self.s.host}
            # A gateway host with no tunnel (no tunnel IP in the view) is as
            # good as down; one whose port is being made is not (yet): the
            # engine counts it alive too (Engine._gateway_role), so no host
            # behind it takes over -- for the BFD grace period from when it
            # was first wanted (a port whose transaction failed, and is
            # retried, must not keep a dead host alive for ever).  A host
            # that makes no tunnel ports at all has no BFD to tell it: it
            # never takes over (two hosts with the gateway's address would
            # break every router's SNAT; see _sync_gateway_tunnels).
            ported = set(self.gw_monitor.ports())
            overdue = ()
            if self.gw_tunnels is not None and self.gw_tunnels.makes_ports:
                now = time.monotonic()
                overdue = {h for h in wanted if h not in ported and
                           now - self.gw_wanted_since.get(h, now) >= self.gw_monitor.grace}
            down = tuple(sorted({h for h in gw_hosts if h not in wanted} |
                                {h for h in gw_hosts if h in overdue} |
                                set(self.gw_monitor.down(h for h in gw_hosts
                                                         if h in wanted and h in ported))))
        return m.Chassis(tuple(sorted(self.vifs.items())), base.tunnel_ofports,
                         base.physnet_ofports, gateway_ofports=gw_ofports,
                         gateways_down=down, neighbours=self.resolver.neighbours(),
                         metadata_ofport=self.metadata_ofport)

    def _idle_timeout(self) -> float:
        deadline = self.gw_monitor.next_deadline() if self.gw_monitor is not None else None
        if self.gw_monitor is not None and self.gw_tunnels is not None and \
                self.gw_tunnels.makes_ports:
            # (a wanted port not made yet: its grace period ends then)
            ported = self.gw_monitor.ports()
            ends = [t + self.gw_monitor.grace for h, t in self.gw_wanted_since.items()
                    if h not in ported]
            if ends:
                deadline = min(ends + ([deadline] if deadline is not None else []))
        if deadline is None:
            return 1.0
        return min(1.0, max(0.01, deadline - time.monotonic() + 0.01))

    def _sync_gateway_tunnels(self):
        """Make the BFD tunnels the view needs now (and remove the others)."""
        if self.gw_tunnels is None:
            return
        e = self.engine
        peers = gateways.gateway_peers(self.s.host, e.routers.values(), e.ports.values(),
                                       e.remote_hosts.values())
        if peers and not self.gw_tunnels.makes_ports and not self.gw_peers:
            LOG.error("this gateway host makes no tunnel ports (no tunnel type or local "
                      "IP): no BFD to the other gateway hosts (%s), so it never takes "
                      "over a router's gateway from them", ", ".join(sorted(peers)))
        now = time.monotonic()
        self.gw_wanted_since = {h: self.gw_wanted_since.get(h, now) for h in peers}
        self.gw_peers = peers
        self._make_gateway_tunnels()

    def _make_gateway_tunnels(self):
        """Make the wanted BFD tunnel ports; a failed transaction is tried
        again on the next tick (gw_retry)."""
        try:
            self.gw_tunnels.sync(self.gw_peers)
            self.gw_retry = False
        except Exception as e:  # noqa: BLE001 - tried again; the peers go down meanwhile
            LOG.warning("could not make the gateway tunnel ports (%s); will try again", e)
            self.gw_retry = True

    def _vif_changed(self, event, vif):
        """Track the VIF in self.vifs (the engine gets it in _sync_vifs)."""
        pid = vif.iface_id
        if event == "unplugged" or vif.ofport is None:
            # Only the interface the port's ofport was taken from unplugs
            # it: a VIF re-plugged in one OVSDB transaction (del-port and
            # add-port, as libvirt and os-vif do) is a new row, whose
            # "plugged" may come before the old row's "unplugged", and a
            # new row has no ofport until ovs-vswitchd gives it one.
            if pid in self.vifs and self._holds(pid, vif):
                del self.vifs[pid]
                self.vif_rows.pop(pid, None)
                self.reporter.unplugged(pid)
                if self.metrics is not None:
                    self.metrics.unplugged(pid)
            return
        self.vif_rows[pid] = vif.row
        if self.vifs.get(pid) == vif.ofport:
            return
        self.vifs[pid] = vif.ofport
        self.reporter.plugged(pid)
        if self.metrics is not None:
            self.metrics.plugged(pid)

    def _holds(self, pid, vif) -> bool:
        """Whether ``vif`` is the interface whose ofport self.vifs holds for
        ``pid`` (by its OVSDB row; a VIF without one: by its ofport, or
        None, that is any)."""
        held = self.vif_rows.get(pid)
        if held is not None and vif.row is not None:
            return held == vif.row
        return vif.ofport is None or vif.ofport == self.vifs.get(pid)

    def _fips_to_report(self, resent):
        """Floating IPs to report installed after this batch: those this
        host newly serves (or with a new value), and those of routers the
        server sent again.  What this host serves is the engine's answer
        (Engine.served_floating_ips: the rule its flows follow), not a copy
        of it here: those of ports bound here, and on the router's active
        gateway host those of ports bound nowhere and with port forwardings
        only."""
        if not self.have_view:
            return set()
        applied = frozenset((rid, f) for rid, f, _ in self.engine.served_floating_ips())
        new = {f.id for rid, f in applied if (rid, f) not in self.fips_applied or rid in resent}
        self.fips_applied = applied
        return new

    def _install(self, touched, fips=(), streamed=False) -> bool:
        """True once the switch holds the desired flows.  ``streamed``:
        the engine has a model loaded (Engine.load_model) whose flows are
        computed now, and sent as they are (the first install after a
        dump; ``touched`` is empty)."""
        # Before the first full view the desired set is empty: a dump and
        # diff now would delete every flow a previous agent left (and add
        # them back once the view arrives), which is no hitless restart.
        if not self.have_view:
            return False
        self.reporter.fips.update(fips)
        if streamed:
            before = self.engine.desired
            flows = self.engine.load_flows(self.chassis)
            spent = [0.0]
            try:
                d = self.last_install = self.reconciler.install_stream(_timed(flows, spent))
            finally:
                for _ in flows:  # (the switch went away: the engine's table is whole)
                    pass
                self.last_compile_s += spent[0]
                if self.engine.desired is before:  # a CompileError: as a failed load()
                    self.have_view = False
            if d is not None and self.engine.withdrawn:  # sent, then held back
                out = self.reconciler.install(self.engine.desired,
                                              {f.key for f in self.engine.withdrawn})
                if out is None:
                    return False
        else:
            d = self.last_install = self.reconciler.install(self.engine.desired, touched)
        if d is None:
            return False  # the switch is not connected
        if not d.empty or self.state.failed is not None:
            # (a failure is logged there: the flows are in, only the next
            # restart is not hitless; the ports are reported all the same)
            self.state.save(self.engine.alloc)
        held = self._log_held()
        local = {pid for pid, p in self.engine.ports.items()
                 if p.host == self.s.host and pid not in held}
        if self.metadata is not None:
            self.installed_ports = ({o: pid for pid, o in self.vifs.items()},
                                    {pid: self.engine.ports[pid] for pid in local})
        self.reporter.report(local, self.vifs)
        if self.metrics is not None:
            self.metrics.installed(local, self.reporter.reported)
        if not self.ready.is_set():
            self.ready.set()
            startup.resume_gc()  # (if agent.main paused it for the start)
        return True


    def _log_held(self) -> set:
        """Log the flow owners the engine holds back (and those it no
        longer does); the ports among them (not reported up)."""
        now = {o: h[1] for o, h in self.engine.desired.held.items()}
        held_owners = len(now)
        now.update(self.engine.refused)  # (items left out: logged alike)
        if now != self.held:
            for o in now.keys() - self.held.keys():
                LOG.error("flows of %s held back, the rest of the host goes on: %s", o, now[o])
            for o in self.held.keys() - now.keys():
                LOG.warning("flows of %s no longer held back: installed", o)
            self.held = now
        self.stats["held_owners"] = held_owners
        return {o[1] for o in now if o[0] in (PORT, PORT_ACL)}


def _timed(it, spent):
    """``it``'s items; ``spent[0]`` grows by the seconds taken to make them."""
    clock = time.monotonic
    it = iter(it)
    while True:
        t = clock()
        try:
            item = next(it)
        except StopIteration:
            spent[0] += clock() - t
            return
        spent[0] += clock() - t
        yield item
