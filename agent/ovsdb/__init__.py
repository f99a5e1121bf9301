"""OVSDB client for the agent: one thread owns the ``ovs`` IDL.

conn = Connection("unix:/run/openvswitch/db.sock").start()
api = Ovsdb(conn)
api.ensure_bridge("br-int", datapath_type="netdev",
                  controllers=["tcp:127.0.0.1:6633"])
watcher = InterfaceWatcher(conn, on_vif)
"""

from agent.ovsdb.api import Ovsdb
from agent.ovsdb.commands import NotFound
from agent.ovsdb.connection import Command, Connection, NotConnected, OVSDBError
from agent.ovsdb.events import InterfaceWatcher, Vif

__all__ = [
    "Command",
    "Connection",
    "InterfaceWatcher",
    "NotConnected",
    "NotFound",
    "OVSDBError",
    "Ovsdb",
    "Vif",
]
