"""What the agent sets up on the switch besides flows: the integration
bridge with us as its controller, tunnel ports, physical bridges and the
patch ports to them, and the controller's unix socket."""

from __future__ import annotations

import os
import socket

from quantum_ovs import model as m

TUNNEL_PORT = {"vxlan": "qovs-vxlan", "gre": "qovs-gre"}
# What the agent replicates: Open_vSwitch and Controller whole, and of
# Bridge, Port and Interface only the columns it reads or writes
# (agent/ovsdb/commands.py; not the statistics and status ovs-vswitchd keeps
# rewriting): a populated host's first OVSDB sync is that much shorter.
AGENT_TABLES = ("Open_vSwitch",
                ("Bridge", ("name", "ports", "controller", "datapath_type", "fail_mode",
                            "protocols", "datapath_id", "other_config", "external_ids")),
                ("Port", ("name", "interfaces", "external_ids")), "Controller",
                ("Interface", ("name", "type", "options", "ofport", "ofport_request",
                               "external_ids", "error", "mac_in_use", "bfd", "bfd_status")))


def controller_socket(settings):
    """The listening socket the OpenFlow channel takes: the one given, a
    unix socket for ``unix:<path>``, or None (the channel listens on TCP)."""
    sock = settings.of_socket
    if sock is None and isinstance(settings.of_listen, str) \
            and settings.of_listen.startswith("unix:"):
        sock = unix_listener(settings.of_listen[5:])
    return sock


def ensure_integration_bridge(ovsdb, settings, controller_target):
    """The integration bridge; ``controller_target`` None: the agent
    connects to the bridge's management socket, and the bridge's Controller
    rows are left as they are (ovs-vswitchd flushes every flow of a bridge
    that gains its first or loses its last controller: adding or removing
    one would make a restart that changes the mode lose the data plane)."""
    ovsdb.ensure_bridge(settings.integration_bridge, datapath_type=settings.datapath_type,
                        fail_mode="secure", protocols=("OpenFlow13",),
                        controller=controller_target, connection_mode="out-of-band")


def plumb(ovsdb, settings) -> m.Chassis:
    """Tunnel ports and physical bridges; returns the Chassis (their
    ofports on the integration bridge)."""
    s = settings
    tunnels = {}
    for ttype in s.tunnel_types:
        name = TUNNEL_PORT[ttype]
        ovsdb.ensure_tunnel_port(s.integration_bridge, name, ttype, s.local_ip)
        tunnels[ttype] = ovsdb.wait_ofport(name, 10)
    physnets = {}
    for physnet, bridge in sorted(s.bridge_mappings.items()):
        ovsdb.ensure_bridge(bridge, datapath_type=s.datapath_type,
                            fail_mode="standalone", protocols=("OpenFlow13",))
        int_port = f"int-{bridge}"[:15]
        phy_port = f"phy-{bridge}"[:15]
        ovsdb.ensure_patch_ports(s.integration_bridge, bridge, int_port, phy_port)
        physnets[physnet] = ovsdb.wait_ofport(int_port, 10)
    return m.Chassis(tunnel_ofports=tuple(sorted(tunnels.items())),
                     physnet_ofports=tuple(sorted(physnets.items())))


def unix_listener(path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    return s
