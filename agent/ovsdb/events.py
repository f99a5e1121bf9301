"""Watch VIFs: Interface rows that carry ``external_ids:iface-id``.

Driven by the IDL monitor (row notifications on the IDL thread), not by
polling.  The callback receives ``(event, vif, old)`` where ``event`` is
"plugged" (an iface-id appeared), "changed" (ofport, MAC, name, status
changed) or "unplugged" (the row went away or lost its iface-id); ``vif``
is the new :class:`Vif` (the old one for "unplugged") and ``old`` the
previous one (None for "plugged").  A VIF is reported as soon as its row
exists; its ``ofport`` is None until ovs-vswitchd assigns one, and a
"changed" event follows when it does.

The callback runs on the IDL thread: keep it short (hand work to a
queue) and never call Connection.execute() from it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from agent.ovsdb.connection import Connection


@dataclass(frozen=True, slots=True)
class Vif:
    name: str
    iface_id: str
    ofport: Optional[int] = None
    attached_mac: Optional[str] = None
    iface_status: Optional[str] = None
    vm_uuid: Optional[str] = None
    # The Interface row's uuid: a VIF re-plugged (del-port and add-port in
    # one transaction, as libvirt and os-vif do) is a new row with the same
    # iface-id, and the old row's "unplugged" may come after the new one's
    # "plugged" (the rows of one update come in the server's order).
    row: Optional[str] = None

    @property
    def ready(self) -> bool:
        return self.ofport is not None


def vif_from_row(row) -> Optional[Vif]:
    ext = row.external_ids
    iface_id = ext.get("iface-id")
    if not iface_id:
        return None
    ofport = row.ofport
    if isinstance(ofport, list):
        ofport = ofport[0] if ofport else None
    mac = ext.get("attached-mac")
    return Vif(
        name=row.name,
        iface_id=iface_id,
        ofport=ofport if ofport is not None and ofport > 0 else None,
        attached_mac=mac.lower() if mac else None,
        iface_status=ext.get("iface-status"),
        vm_uuid=ext.get("vm-uuid"),
        row=str(row.uuid),
    )


VifCallback = Callable[[str, Vif, Optional[Vif]], None]


class InterfaceWatcher:
    """Keeps a picture of the VIFs on the switch and reports its changes.

    Register it before or after ``conn.start()``; either way it first
    reports every existing VIF as "plugged".
    """

    def __init__(self, conn: Connection, callback: VifCallback):
        self.conn = conn
        self.callback = callback
        self._vifs: dict = {}  # row uuid -> Vif; touched only on the IDL thread
        self._snapshot_lock = threading.Lock()
        self._snapshot: dict[str, Vif] = {}
        conn.add_row_handler(self._on_row, table="Interface")
        conn.add_reconnect_handler(self._resync)
        if conn.idl is not None and conn._ready.is_set():
            conn.call(lambda idl: self._resync())

    def vifs(self) -> dict[str, Vif]:
        """The current VIFs by iface-id (a copy, safe from any thread)."""
        with self._snapshot_lock:
            return dict(self._snapshot)

    # ------------------------------------------------------- IDL thread only
    def _on_row(self, event, row, old) -> None:
        new = None if event == "delete" else vif_from_row(row)
        self._update(row.uuid, new)

    def _resync(self) -> None:
        rows = self.conn.idl.tables["Interface"].rows
        for uuid in list(self._vifs):
            if uuid not in rows:
                self._update(uuid, None)
        for uuid, row in rows.items():
            self._update(uuid, vif_from_row(row))

    def _update(self, uuid, new: Optional[Vif]) -> None:
        old = self._vifs.get(uuid)
        if old == new:
            return
        if new is None:
            del self._vifs[uuid]
        else:
            self._vifs[uuid] = new
        with self._snapshot_lock:
            if old is not None and self._snapshot.get(old.iface_id) == old:
                del self._snapshot[old.iface_id]
            if new is not None:
                self._snapshot[new.iface_id] = new
        if old is None:
            self.callback("plugged", new, None)
        elif new is None:
            self.callback("unplugged", old, old)
        elif old.iface_id != new.iface_id:
            self.callback("unplugged", old, old)
            self.callback("plugged", new, None)
        else:
            self.callback("changed", new, old)
