"""The agent's OVSDB vocabulary on top of a :class:`Connection`.

Every method runs one transaction and blocks until the server answers.
To make several changes atomically, build the commands and pass them
together::

    api.execute([api.cmd.EnsureBridge("br-ex"), api.cmd.EnsurePort(...)])
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

from agent.ovsdb import commands as cmd
from agent.ovsdb.commands import _ofport
from agent.ovsdb.connection import Connection


class Ovsdb:
    cmd = cmd

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, commands, timeout: Optional[float] = None):
        return self.conn.execute(commands, timeout)

    # ------------------------------------------------------------ bridges
    def ensure_bridge(
        self,
        name: str,
        datapath_type: Optional[str] = None,
        fail_mode: Optional[str] = "secure",
        protocols: Optional[Iterable[str]] = ("OpenFlow13",),
        controller: Optional[str] = None,
        connection_mode: Optional[str] = None,
        inactivity_probe: Optional[int] = None,
        other_config: Optional[Mapping[str, str]] = None,
        external_ids: Optional[Mapping[str, str]] = None,
    ):
        """Create or fix up a bridge; ``controller`` is one target
        (``tcp:127.0.0.1:6633``), replacing any other controller."""
        return self.execute(
            cmd.EnsureBridge(
                name,
                datapath_type=datapath_type,
                fail_mode=fail_mode,
                protocols=protocols,
                controllers=None if controller is None else [controller],
                connection_mode=connection_mode,
                inactivity_probe=inactivity_probe,
                other_config=other_config,
                external_ids=external_ids,
            )
        )

    def del_bridge(self, name: str, if_exists: bool = True) -> None:
        self.execute(cmd.DelBridge(name, if_exists))

    def get_bridge(self, name: str) -> Optional[dict]:
        return self.execute(cmd.GetBridge(name))

    # ------------------------------------------------------------ ports
    def ensure_port(self, bridge: str, name: str, type: str = "", options=None, external_ids=None):
        return self.execute(cmd.EnsurePort(bridge, name, type, options, external_ids))

    def ensure_tunnel_port(
        self,
        bridge: str,
        name: str,
        tunnel_type: str,
        local_ip: str,
        remote_ip: str = "flow",
        key: str = "flow",
        options: Optional[Mapping[str, str]] = None,
    ):
        """A flow-based tunnel port: remote end and key are set per packet
        by flows (``tun_ipv4_dst``, ``tunnel_id``)."""
        if tunnel_type not in ("vxlan", "gre", "geneve"):
            raise ValueError(f"unsupported tunnel type {tunnel_type!r}")
        opts = {"remote_ip": remote_ip, "key": key, "local_ip": local_ip}
        opts.update(options or {})
        return self.execute(cmd.EnsurePort(bridge, name, tunnel_type, opts))

    def ensure_patch_ports(self, bridge: str, peer_bridge: str, port: str, peer_port: str):
        """A patch port pair joining ``bridge`` and ``peer_bridge``, in one
        transaction.  Returns the two Port UUIDs."""
        return self.execute(
            [
                cmd.EnsurePort(bridge, port, "patch", {"peer": peer_port}),
                cmd.EnsurePort(peer_bridge, peer_port, "patch", {"peer": port}),
            ]
        )

    def del_port(self, name: str, bridge: Optional[str] = None, if_exists: bool = True) -> None:
        self.execute(cmd.DelPort(name, bridge, if_exists))

    def list_ports(self, bridge: str) -> list[str]:
        return self.execute(cmd.ListPorts(bridge))

    def set_external_ids(
        self, table: str, name: str, mapping: Mapping[str, str], replace: bool = False
    ) -> None:
        self.execute(cmd.SetExternalIds(table, name, mapping, replace))

    # ------------------------------------------------------------ ofports
    def get_ofport(self, iface: str) -> Optional[int]:
        return self.execute(cmd.GetOfport(iface))

    def wait_ofport(self, iface: str, timeout: Optional[float] = None) -> int:
        """Block until ovs-vswitchd has given ``iface`` an OpenFlow port."""

        def ready(idl):
            for row in idl.tables["Interface"].rows.values():
                if row.name == iface:
                    return _ofport(row)
            return None

        return self.conn.wait_for(ready, timeout)
