"""The agent: keeps one host's Open vSwitch in line with the model.

Threads (native; no eventlet):
    sync        long-polls the server for the host's state (full view or
                delta) and queues it;
    heartbeat   registers and reports liveness every report_interval;
    reconcile   the only owner of the compiler Engine and of our picture of
                the installed flows: drains its queue (model changes, VIF
                plug/unplug from OVSDB, switch (re)connections), lets the
                engine recompute what changed, and sends the difference to
                the switch in one bundle; then reports ports whose flows are
                in;
plus the OVSDB IDL thread and the OpenFlow channel's threads.

Hitless restarts: on every (re)connection the installed flows are dumped
(only ours, by cookie) and only the difference to the desired set is
sent; network local ids and conjunction ids are kept in a state file so a
restarted agent compiles exactly the same flows.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time

from agent import sync_client
from agent.openflow.channel import Channel, CookieScope
from agent.ovsdb.api import Ovsdb
from agent.ovsdb.connection import Connection
from agent.ovsdb.events import InterfaceWatcher
from agent.responders.dhcp import DhcpResponder
from agent.responders.dhcp6 import Dhcp6Responder
from quantum_ovs import model as m
from quantum_ovs.compiler.engine import Allocations, Engine
from quantum_ovs.compiler.flow import FlowDiff, Output

LOG = logging.getLogger(__name__)

TUNNEL_PORT = {"vxlan": "qovs-vxlan", "gre": "qovs-gre"}
# What the agent replicates: all of the small tables, and of Interface only
# what it reads or writes (not the statistics ovs-vswitchd keeps rewriting:
# a first sync with 1,000 VIFs takes a quarter of the time).
AGENT_TABLES = ("Open_vSwitch", "Bridge", "Port", "Controller",
                ("Interface", ("name", "type", "options", "ofport", "ofport_request",
                               "external_ids", "error", "mac_in_use")))


class Settings:
    """Everything the agent needs, as plain values (from oslo.config or a
    test)."""

    def __init__(self, host, server_url, ovsdb, integration_bridge="br-int",
                 datapath_type="system", local_ip=None, tunnel_types=("vxlan",),
                 bridge_mappings=None, of_listen=("127.0.0.1", 6633), token="",
                 report_interval=30.0, polling_interval=25.0, state_path=None,
                 dhcp_lease_time=86400, of_socket=None, dhcp_packet_rate=50,
                 dhcp_packet_burst=20, packet_in_queue=256, ca_file="", insecure=False):
        self.host = host
        self.server_url = server_url
        self.ovsdb = ovsdb
        self.integration_bridge = integration_bridge
        self.datapath_type = datapath_type
        self.local_ip = local_ip
        self.tunnel_types = tuple(tunnel_types) if local_ip else ()
        self.bridge_mappings = dict(bridge_mappings or {})
        self.of_listen = of_listen
        self.of_socket = of_socket
        self.token = token
        self.ca_file = ca_file  # TLS to the server (https url)
        self.insecure = insecure
        self.report_interval = report_interval
        self.polling_interval = polling_interval
        self.state_path = state_path
        self.dhcp_lease_time = dhcp_lease_time
        self.dhcp_packet_rate = dhcp_packet_rate
        self.dhcp_packet_burst = dhcp_packet_burst
        self.packet_in_queue = packet_in_queue

    @classmethod
    def from_conf(cls, conf):
        mappings = {}
        for item in conf.ovs.bridge_mappings:
            physnet, _, bridge = item.partition(":")
            if not physnet or not bridge:
                raise ValueError(f"bad bridge_mappings entry {item!r}")
            mappings[physnet.strip()] = bridge.strip()
        return cls(host=conf.agent.host or socket.gethostname(), server_url=conf.server.url,
                   ovsdb=conf.ovs.ovsdb_connection,
                   integration_bridge=conf.ovs.integration_bridge,
                   datapath_type=conf.ovs.datapath_type, local_ip=conf.ovs.local_ip,
                   tunnel_types=conf.agent.tunnel_types, bridge_mappings=mappings,
                   of_listen=(f"unix:{conf.ovs.of_listen_unix}" if conf.ovs.of_listen_unix
                              else (conf.ovs.of_listen_address, conf.ovs.of_listen_port)),
                   token=conf.server.token, ca_file=conf.server.ca_file,
                   insecure=conf.server.insecure, report_interval=conf.agent.report_interval,
                   polling_interval=conf.agent.polling_interval,
                   state_path=conf.agent.state_path,
                   dhcp_lease_time=conf.agent.dhcp_lease_time,
                   dhcp_packet_rate=conf.agent.dhcp_packet_rate,
                   dhcp_packet_burst=conf.agent.dhcp_packet_burst,
                   packet_in_queue=conf.agent.packet_in_queue)


class Agent:
    def __init__(self, settings: Settings):
        self.s = settings
        self.client = sync_client.SyncClient(settings.server_url, settings.host,
                                             settings.token, ca_file=settings.ca_file,
                                             insecure=settings.insecure)
        self.events: "queue.Queue" = queue.Queue()
        self.stop_event = threading.Event()
        self.conn = None
        self.ovsdb = None
        self.channel = None
        self.watcher = None
        self.engine = Engine(settings.host, self._load_allocations())
        self.installed = {}  # FlowKey -> Flow: what we believe the switch has
        self.need_dump = True
        self.dumped_generation = 0  # the switch connection whose flows we dumped
        self.have_view = False  # a full view from the server is loaded
        self.revision = -1  # -1: no view yet (0 is a real revision of an empty cloud)
        self.vifs = {}  # port id -> ofport (plugged here, with an ofport)
        self.reported = set()  # port ids reported as installed
        self.to_unplug = set()
        self.threads = []
        self.ready = threading.Event()  # first full sync installed
        self.stats = {"applies": 0, "flow_mods": 0, "resyncs": 0, "full_views": 0,
                      "deltas": 0}
        self.dhcp4 = DhcpResponder(lease_time=settings.dhcp_lease_time)
        self.dhcp6 = Dhcp6Responder(lease_time=settings.dhcp_lease_time)
        self.last_apply_ms = None

    # ------------------------------------------------------------ state file
    def _state_file(self):
        if not self.s.state_path:
            return None
        return os.path.join(self.s.state_path, f"agent-{self.s.host}.json")

    def _load_allocations(self):
        path = self._state_file()
        if not path or not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                raw = json.load(f)
            return Allocations(local_ids=dict(raw.get("local_ids", {})),
                               conj_ids={_tuple(k): v for k, v in raw.get("conj_ids", [])},
                               next_conj=raw.get("next_conj", 1))
        except (OSError, ValueError, TypeError) as e:
            LOG.warning("ignoring unreadable state file %s: %s", path, e)
            return None

    def _save_allocations(self):
        path = self._state_file()
        if not path:
            return
        a = self.engine.alloc
        data = {"local_ids": a.local_ids,
                "conj_ids": [[list(k) if isinstance(k, tuple) else k, v]
                             for k, v in a.conj_ids.items()],
                "next_conj": a.next_conj}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    # ------------------------------------------------------------ start/stop
    def start(self):
        s = self.s
        self.conn = Connection(s.ovsdb, tables=AGENT_TABLES).start()
        self.ovsdb = Ovsdb(self.conn)
        sock = s.of_socket
        if sock is None and isinstance(s.of_listen, str) and s.of_listen.startswith("unix:"):
            sock = _unix_listener(s.of_listen[5:])
        self.channel = Channel(CookieScope.ours(), listen=s.of_listen, sock=sock,
                               meter_rate=s.dhcp_packet_rate, meter_burst=s.dhcp_packet_burst,
                               packet_in_queue=s.packet_in_queue)
        self.channel.on_connect(lambda dpid, gen: self.events.put(("connected", gen)))
        self.channel.on_disconnect(lambda gen: self.events.put(("disconnected", gen)))
        self.channel.on_packet_in(self._packet_in)
        self.channel.start()
        self.ovsdb.ensure_bridge(s.integration_bridge, datapath_type=s.datapath_type,
                                 fail_mode="secure", protocols=("OpenFlow13",),
                                 controller=self.channel.target,
                                 connection_mode="out-of-band")
        chassis = self._plumb()
        self.engine.set_chassis(chassis)
        self.watcher = InterfaceWatcher(self.conn, self._on_vif)
        for name, target in (("reconcile", self._reconcile_loop), ("sync", self._sync_loop),
                             ("heartbeat", self._heartbeat_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _plumb(self):
        """Tunnel ports and physical bridges; returns the Chassis."""
        s = self.s
        tunnels = {}
        for ttype in s.tunnel_types:
            name = TUNNEL_PORT[ttype]
            self.ovsdb.ensure_tunnel_port(s.integration_bridge, name, ttype, s.local_ip)
            tunnels[ttype] = self.ovsdb.wait_ofport(name, 10)
        physnets = {}
        for physnet, bridge in sorted(s.bridge_mappings.items()):
            self.ovsdb.ensure_bridge(bridge, datapath_type=s.datapath_type,
                                     fail_mode="standalone", protocols=("OpenFlow13",))
            int_port = f"int-{bridge}"[:15]
            phy_port = f"phy-{bridge}"[:15]
            self.ovsdb.ensure_patch_ports(s.integration_bridge, bridge, int_port, phy_port)
            physnets[physnet] = self.ovsdb.wait_ofport(int_port, 10)
        return m.Chassis(tunnel_ofports=tuple(sorted(tunnels.items())),
                         physnet_ofports=tuple(sorted(physnets.items())))

    def stop(self):
        """Stop the agent's threads promptly; the flows stay installed (a
        restarted agent takes them over without a dropped packet)."""
        self.stop_event.set()
        self.events.put(("stop", None))
        # Wakes the sync thread out of its long poll (and a heartbeat or a
        # report in flight) instead of waiting the poll out.
        self.client.close()
        for t in self.threads:
            t.join(5)
            if t.is_alive():
                LOG.warning("agent thread %s did not stop within 5 s", t.name)
        if self.channel is not None:
            self.channel.stop()
        if self.conn is not None:
            self.conn.stop()

    # ------------------------------------------------------------ inputs
    def _on_vif(self, event, vif, old):
        # On the IDL thread: only queue.
        self.events.put(("vif", (event, vif)))

    def _packet_in(self, pin):
        try:
            self._answer_dhcp(pin)
        except Exception:  # noqa: BLE001 - a bad packet never stops the agent
            LOG.exception("packet-in handler failed")

    def _answer_dhcp(self, pin):
        """DHCP from a local VIF (the pipeline punts it): answer from the
        port's own data, out of the port it came in on."""
        if pin.in_port is None or len(pin.data) < 14:
            return
        pid = next((p for p, o in list(self.vifs.items()) if o == pin.in_port), None)
        port = self.engine.ports.get(pid) if pid else None
        if port is None:
            return
        network = self.engine.networks.get(port.network_id)
        if network is None:
            return
        ethertype = int.from_bytes(pin.data[12:14], "big")
        responder = self.dhcp4 if ethertype == 0x0800 else \
            self.dhcp6 if ethertype == 0x86DD else None
        if responder is None:
            return
        reply = responder.handle(pin.data, port, self.engine.subnets, network)
        if reply is not None:
            self.channel.packet_out(reply, [Output(pin.in_port)])
            self.stats["dhcp_replies"] = self.stats.get("dhcp_replies", 0) + 1

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
                "of_listen": list(self.channel.listen_addr) if self.channel else None}

    def _sync_loop(self):
        attempt = 0
        while not self.stop_event.is_set():
            try:
                kind, value, rev = self.client.poll(self.revision,
                                                    0 if self.revision < 0 else
                                                    self.s.polling_interval)
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
                first = self.events.get(timeout=1.0)
            except queue.Empty:
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
                self.need_dump = True
                time.sleep(0.2)
                self.events.put(("resync", None))

    def _handle(self, batch):
        touched = set()
        for kind, value in batch:
            if kind == "stop":
                return
            if kind == "full":
                self.stats["full_views"] += 1
                touched |= self._sync_vifs()  # the view takes the engine's chassis
                view = value.replace(chassis=self.engine.chassis())
                d = self.engine.update(view) if self.have_view else \
                    self.engine.load(view)
                self.have_view = True
                if not self.need_dump:  # else _install diffs everything anyway
                    touched |= _keys(d)
            elif kind == "delta":
                self.stats["deltas"] += 1
                touched |= _keys(self.engine.apply(value))
            elif kind == "vif":
                event, vif = value
                self._vif_changed(event, vif)
            elif kind == "connected":
                # The dump may have been done on this very connection
                # already (the switch connected before the view came in).
                if value != self.dumped_generation:
                    self.need_dump = True
            elif kind == "resync":
                self.need_dump = True
            elif kind == "disconnected":
                self.need_dump = True
        touched |= self._sync_vifs()
        self._install(touched)

    def _sync_vifs(self):
        """Hand the engine the VIFs' ofports in one change: a network's
        flows (its flood list) are recomputed once per batch, not once per
        plugged port."""
        if self.engine.vif_ofports == self.vifs:
            return set()
        ch = self.engine.chassis()
        return _keys(self.engine.set_chassis(m.Chassis(
            tuple(sorted(self.vifs.items())), ch.tunnel_ofports, ch.physnet_ofports)))

    def _vif_changed(self, event, vif):
        """Track the VIF in self.vifs (the engine gets it in _sync_vifs)."""
        pid = vif.iface_id
        if event == "unplugged" or vif.ofport is None:
            if pid in self.vifs:
                del self.vifs[pid]
                self.reported.discard(pid)
                self.to_unplug.add(pid)
            return
        if self.vifs.get(pid) == vif.ofport:
            return
        self.vifs[pid] = vif.ofport
        self.to_unplug.discard(pid)
        self.reported.discard(pid)

    def _install(self, touched):
        # Before the first full view the desired set is empty: a dump and
        # diff now would delete every flow a previous agent left (and add
        # them back once the view arrives), which is no hitless restart.
        if not self.channel.connected or not self.have_view:
            return
        started = time.monotonic()
        desired = self.engine.desired
        if self.need_dump:
            self.stats["resyncs"] += 1
            generation = self.channel.generation
            self.installed = {f.key: f for f in self.channel.dump_flows()}
            self.dumped_generation = generation
            self.need_dump = False
            d = _diff_all(self.installed, desired)
        else:
            d = _diff_keys(touched, self.installed, desired)
        if not d.empty:
            self.channel.apply(d)
            for f in d.deletes:
                self.installed.pop(f.key, None)
            for f in (*d.modifies, *d.adds):
                self.installed[f.key] = f
            self.stats["applies"] += 1
            self.stats["flow_mods"] += len(d)
            self._save_allocations()
        self.last_apply_ms = (time.monotonic() - started) * 1000
        self._report()
        if self.have_view:
            self.ready.set()

    def _report(self):
        local = {pid for pid, p in self.engine.ports.items() if p.host == self.s.host}
        installed = [pid for pid in self.vifs if pid in local and pid not in self.reported]
        plugged = [(pid, self.vifs[pid]) for pid in installed]
        unplugged = sorted(self.to_unplug)
        if not (installed or unplugged):
            return
        try:
            self.client.report(plugged=plugged, unplugged=unplugged, installed=installed)
            self.reported.update(installed)
            self.to_unplug.clear()
        except (sync_client.ServerUnavailable, sync_client.ServerError) as e:
            if self.stop_event.is_set():
                return  # stopping: the next agent reports them
            LOG.info("could not report ports (%s); will retry", e)
            retry = threading.Timer(1.0, lambda: self.events.put(("resync-report", None)))
            retry.daemon = True  # never holds up the process's exit
            retry.start()


def _unix_listener(path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    return s


def _tuple(x):
    return tuple(_tuple(i) for i in x) if isinstance(x, list) else x


def _diff_keys(keys, installed, desired):
    """What turns ``installed`` into ``desired`` for these keys."""
    deletes, modifies, adds = [], [], []
    for k in keys:
        want = desired.get(k)
        have = installed.get(k)
        if want is None:
            if have is not None:
                deletes.append(have)
        elif have is None:
            adds.append(want)
        elif have.actions != want.actions or have.cookie != want.cookie:
            modifies.append(want)
    return FlowDiff(tuple(deletes), tuple(modifies), tuple(adds))


def _diff_all(installed, desired):
    """What turns ``installed`` into ``desired`` (after a dump): one lookup
    per desired flow, and a search for deletes only if some installed
    flow was not desired (each FlowKey hash walks the whole match)."""
    modifies, adds = [], []
    found = 0
    have_get = installed.get
    for want in desired:
        have = have_get(want.key)
        if have is None:
            adds.append(want)
            continue
        found += 1
        if have.actions != want.actions or have.cookie != want.cookie:
            modifies.append(want)
    deletes = ()
    if found != len(installed):
        deletes = tuple(f for k, f in installed.items() if k not in desired)
    return FlowDiff(deletes, tuple(modifies), tuple(adds))


def _keys(d):
    return {f.key for f in d.deletes} | {f.key for f in d.modifies} | {f.key for f in d.adds}
