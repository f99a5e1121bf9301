"""Idempotent OVSDB commands (may_exist / if_exists), run on the IDL thread.

Each command compares what is in the replica with what is wanted and
writes only the difference, so running it again is a no-op transaction
(the IDL reports UNCHANGED and sends nothing).  Set columns are changed
with mutations (``addvalue`` / ``delvalue``) so that concurrent writers
(nova plugging a VIF while we add a tunnel port) do not clobber each other.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

from agent.ovsdb.connection import Command, OVSDBError, TxnContext


class NotFound(OVSDBError):
    pass


def _get(row, column: str, default=None):
    """A column's value; a row inserted in this transaction has no value
    for the columns not yet written."""
    try:
        return getattr(row, column)
    except AttributeError:
        return default


def _ensure_map(row, column: str, wanted: Mapping[str, str], replace: bool = False) -> None:
    """Make ``row.column`` contain ``wanted`` (or equal it, if ``replace``)."""
    current = dict(_get(row, column, {}))
    target = dict(wanted) if replace else {**current, **wanted}
    target = {str(k): str(v) for k, v in target.items()}
    if target != current:
        setattr(row, column, target)


def _set_if_changed(row, column: str, value) -> None:
    if _get(row, column, object()) != value:
        setattr(row, column, value)


def _optional(value) -> list:
    """An optional (0..1) column's value as the IDL represents it."""
    return [] if value is None else [value]


def _ofport(iface) -> Optional[int]:
    v = iface.ofport
    if isinstance(v, list):
        v = v[0] if v else None
    return v if v is not None and v > 0 else None


class EnsureBridge(Command):
    """The bridge exists with these settings (like ``add-br --may-exist`` + set).

    ``controllers``: the exact set of controller targets wanted (e.g.
    ``["tcp:127.0.0.1:6633"]``); None leaves controllers alone.
    ``other_config`` / ``external_ids`` keys are merged, not replaced.
    Result: the bridge's UUID.
    """

    def __init__(
        self,
        name: str,
        datapath_type: Optional[str] = None,
        fail_mode: Optional[str] = "secure",
        protocols: Optional[Iterable[str]] = ("OpenFlow13",),
        controllers: Optional[Iterable[str]] = None,
        connection_mode: Optional[str] = None,
        inactivity_probe: Optional[int] = None,
        other_config: Optional[Mapping[str, str]] = None,
        external_ids: Optional[Mapping[str, str]] = None,
    ):
        self.name = name
        self.datapath_type = datapath_type
        self.fail_mode = fail_mode
        self.protocols = None if protocols is None else sorted(protocols)
        self.controllers = None if controllers is None else list(controllers)
        self.connection_mode = connection_mode
        self.inactivity_probe = inactivity_probe
        self.other_config = other_config or {}
        self.external_ids = external_ids or {}
        self._new = None

    def run(self, ctx: TxnContext) -> None:
        br = ctx.by_name("Bridge", self.name)
        self._new = None
        if br is None:
            iface = ctx.txn.insert(ctx.idl.tables["Interface"])
            iface.name = self.name
            iface.type = "internal"
            port = ctx.txn.insert(ctx.idl.tables["Port"])
            port.name = self.name
            port.interfaces = [iface]
            br = ctx.txn.insert(ctx.idl.tables["Bridge"])
            br.name = self.name
            br.ports = [port]
            ctx.root().addvalue("bridges", br)
            self._new = br.uuid
        if self.datapath_type is not None:
            _set_if_changed(br, "datapath_type", self.datapath_type)
        _set_if_changed(br, "fail_mode", _optional(self.fail_mode))
        if self.protocols is not None and sorted(_get(br, "protocols", [])) != self.protocols:
            br.protocols = self.protocols
        if self.other_config:
            _ensure_map(br, "other_config", self.other_config)
        if self.external_ids:
            _ensure_map(br, "external_ids", self.external_ids)
        if self.controllers is not None:
            self._ensure_controllers(ctx, br)
        self.result = br.uuid

    def _ensure_controllers(self, ctx: TxnContext, br) -> None:
        have = {c.target: c for c in _get(br, "controller", [])}
        rows = []
        for target in self.controllers:
            c = have.get(target)
            if c is None:
                c = ctx.txn.insert(ctx.idl.tables["Controller"])
                c.target = target
            if self.connection_mode is not None:
                _set_if_changed(c, "connection_mode", [self.connection_mode])
            if self.inactivity_probe is not None:
                _set_if_changed(c, "inactivity_probe", [self.inactivity_probe])
            rows.append(c)
        if sorted(have) != sorted(self.controllers):
            br.controller = rows

    def post_commit(self, txn) -> None:
        if self._new is not None:
            self.result = txn.get_insert_uuid(self._new)


class DelBridge(Command):
    def __init__(self, name: str, if_exists: bool = True):
        self.name = name
        self.if_exists = if_exists

    def run(self, ctx: TxnContext) -> None:
        br = ctx.by_name("Bridge", self.name)
        if br is None:
            if self.if_exists:
                return
            raise NotFound(f"no bridge {self.name}")
        ctx.root().delvalue("bridges", br)
        br.delete()


class EnsurePort(Command):
    """A single-interface port on ``bridge`` with this type and options.

    If the port already exists on ``bridge`` its interface is brought to
    the wanted type/options (options replaced, external_ids merged); if it
    exists on another bridge that is an error.  Result: the Port's UUID.
    """

    def __init__(
        self,
        bridge: str,
        name: str,
        type: str = "",
        options: Optional[Mapping[str, str]] = None,
        external_ids: Optional[Mapping[str, str]] = None,
        port_external_ids: Optional[Mapping[str, str]] = None,
        bfd: Optional[Mapping[str, str]] = None,
    ):
        self.bridge = bridge
        self.name = name
        self.type = type
        self.options = {k: str(v) for k, v in (options or {}).items()}
        self.external_ids = external_ids or {}
        self.port_external_ids = port_external_ids or {}
        # the interface's ``bfd`` column (replaced), None: left alone
        self.bfd = None if bfd is None else {k: str(v) for k, v in bfd.items()}
        self._new = None

    def run(self, ctx: TxnContext) -> None:
        br = ctx.by_name("Bridge", self.bridge)
        if br is None:
            raise NotFound(f"no bridge {self.bridge}")
        self._new = None
        port = ctx.by_name("Port", self.name)
        if port is not None and port not in br.ports:
            raise OVSDBError(f"port {self.name} exists on another bridge")
        if port is None:
            iface = ctx.by_name("Interface", self.name)
            if iface is None:
                iface = ctx.txn.insert(ctx.idl.tables["Interface"])
                iface.name = self.name
            port = ctx.txn.insert(ctx.idl.tables["Port"])
            port.name = self.name
            port.interfaces = [iface]
            br.addvalue("ports", port)
            self._new = port.uuid
        else:
            ifaces = port.interfaces
            if len(ifaces) != 1:
                raise OVSDBError(f"port {self.name} has {len(ifaces)} interfaces")
            iface = ifaces[0]
        _set_if_changed(iface, "type", self.type)
        _ensure_map(iface, "options", self.options, replace=True)
        if self.external_ids:
            _ensure_map(iface, "external_ids", self.external_ids)
        if self.port_external_ids:
            _ensure_map(port, "external_ids", self.port_external_ids)
        if self.bfd is not None:
            _ensure_map(iface, "bfd", self.bfd, replace=True)
        self.result = port.uuid

    def post_commit(self, txn) -> None:
        if self._new is not None:
            self.result = txn.get_insert_uuid(self._new)


class DelPort(Command):
    """Remove a port (from ``bridge`` if given, else from whichever has it)."""

    def __init__(self, name: str, bridge: Optional[str] = None, if_exists: bool = True):
        self.name = name
        self.bridge = bridge
        self.if_exists = if_exists

    def run(self, ctx: TxnContext) -> None:
        port = ctx.by_name("Port", self.name)
        owner = None
        if port is not None:
            for br in ctx.rows("Bridge"):
                if port in br.ports and (self.bridge is None or br.name == self.bridge):
                    owner = br
                    break
        if owner is None:
            if self.if_exists:
                return
            raise NotFound(f"no port {self.name}" + (f" on {self.bridge}" if self.bridge else ""))
        owner.delvalue("ports", port)
        port.delete()


class SetExternalIds(Command):
    """Merge (or, with ``replace``, set) external_ids of a named row."""

    def __init__(
        self,
        table: str,
        name: str,
        mapping: Mapping[str, str],
        replace: bool = False,
        if_exists: bool = False,
    ):
        self.table = table
        self.name = name
        self.mapping = mapping
        self.replace = replace
        self.if_exists = if_exists

    def run(self, ctx: TxnContext) -> None:
        row = ctx.by_name(self.table, self.name)
        if row is None:
            if self.if_exists:
                return
            raise NotFound(f"no {self.table} {self.name}")
        _ensure_map(row, "external_ids", self.mapping, replace=self.replace)


class GetOfport(Command):
    """Result: the interface's OpenFlow port number, or None (none yet / failed)."""

    def __init__(self, iface: str):
        self.iface = iface

    def run(self, ctx: TxnContext) -> None:
        row = ctx.by_name("Interface", self.iface)
        self.result = None if row is None else _ofport(row)


class ListPorts(Command):
    """Result: sorted names of the ports of ``bridge`` (without its own port)."""

    def __init__(self, bridge: str):
        self.bridge = bridge

    def run(self, ctx: TxnContext) -> None:
        br = ctx.by_name("Bridge", self.bridge)
        if br is None:
            raise NotFound(f"no bridge {self.bridge}")
        self.result = sorted(p.name for p in br.ports if p.name != self.bridge)


class GetBridge(Command):
    """Result: a dict of a bridge's settings (None if it does not exist)."""

    def __init__(self, name: str):
        self.name = name

    def run(self, ctx: TxnContext) -> None:
        br = ctx.by_name("Bridge", self.name)
        if br is None:
            self.result = None
            return
        self.result = {
            "uuid": br.uuid,
            "datapath_type": br.datapath_type,
            "fail_mode": (br.fail_mode or [None])[0],
            "protocols": sorted(br.protocols),
            "controllers": sorted(c.target for c in br.controller),
            "other_config": dict(br.other_config),
            "external_ids": dict(br.external_ids),
            "datapath_id": int(br.datapath_id[0], 16) if br.datapath_id else None,
            "ports": sorted(p.name for p in br.ports),
        }
