"""What extensions may add to the plugin, declared in one place.

An extension's ``setup(plugin, conf)`` uses only what this class
declares: it registers resource handlers (see db/resource.py), hooks at
the named hook points, dict extenders, filter and visibility clauses,
and sets the services it provides.  Other parts (the API, the agent API,
the nova notifier) read those services from here.  Setting an attribute
that is not declared below raises AttributeError: a new extension point
is added to this file, not invented at run time.

Every callable named here runs inside the caller's transaction (its
``session``) unless its docstring says otherwise.  A write an agent
must learn of records a change with db/changelog.py's ``record``.
"""

from __future__ import annotations

import collections
import functools
import logging
import typing
from typing import Any, Callable, Optional

if typing.TYPE_CHECKING:  # pragma: no cover - types only
    from quantum_ovs.db.resource import Collection

LOG = logging.getLogger(__name__)

# The hook points: a hook fn(session, ctx, obj, attrs) runs inside the
# transaction of a write of its collection, once the row is in the
# session (create), after the handler's own changes (update) or before
# the row goes (delete, attrs None).  Raising aborts the write.
# "before_update" (ports): the row as it was, before the handler's changes
# (a hook that must compare before and after keeps what it needs).
PHASES = ("create", "before_update", "update", "delete")

Hook = Callable[[Any, Any, Any, "dict | None"], None]
# fn(obj, d): adds the extension's attributes to the API dict d of row obj.
DictExtender = Callable[[Any, dict], None]
# fn(values) -> SQL clause: the rows whose attribute is one of the values.
FilterClause = Callable[[list], Any]
# fn(ctx) -> SQL clause: more rows a non-admin ctx sees (OR'ed in).
VisibilityClause = Callable[[Any], Any]
# fn(session, host, ofports, installed, unplugged, handled) ->
#   (rows updated, status events): see binding.on_report.
ReportHook = Callable[..., tuple]
# fn([(port_id, device_id, device_owner, status), ...]), after the commit.
StatusListener = Callable[[list], None]


class ExtensionPoints:
    """The plugin's extension interface (the Plugin inherits it)."""

    db: Any
    """The database (db/session.py): ``reader()``, ``write(fn)``."""
    conf: Any
    """The oslo.config object."""

    # ------------------------------------------------------------- registries
    collections: dict[str, "Collection"]
    """Every resource handler by collection name (core ones included)."""
    hooks: dict[tuple[str, str], list[Hook]]
    """(collection, phase) -> hooks, run in order (see PHASES)."""
    dict_extenders: dict[str, list[DictExtender]]
    """collection -> fns adding attributes to its API dicts."""
    filter_hooks: dict[tuple[str, str], FilterClause]
    """(collection, attribute) -> the clause of a list filter on an
    attribute an extension adds (it wins over the handler's own)."""
    visibility: dict[str, list[VisibilityClause]]
    """collection -> clauses of more rows a non-admin sees (the provider's:
    every project sees the external networks)."""
    rbac_types: dict[str, Any]
    """object_type -> db/rbac.py ObjectType: what /v2.0/rbac-policies may
    name (register with db/rbac.py's ``register``)."""
    extensions_set_up: bool
    """True once make_app ran every extension's setup on this plugin."""

    # ------------------------------------------------------------- services
    agents: Any = None
    """The agents handler (extensions/agents.py: Agents): ``down_time``,
    ``alive(row)``, ``to_dict(row)``."""
    live_agent: Callable[[Any, str], Any] | None = None
    """fn(session, host) -> the host's agent row if it is up and enabled,
    else None (extensions/agents.py)."""
    segments: Any = None
    """The segment allocator (extensions/provider.py: Segments)."""
    quotas: Any = None
    """The quota engine (extensions/quotas.py: Quotas)."""
    ensure_default_for_listing: Callable[[Any, str], None] | None = None
    """fn(ctx, project_id): the same in a transaction of its own, before
    a list of security groups (extensions/securitygroups.py)."""
    subnet_allocator: Callable[[Any, Any, Any, dict], tuple] | None = None
    """fn(session, ctx, network row (locked), create attrs) -> (cidr,
    ip_version, subnetpool id or None) of a subnet being created: from its
    subnet pool (extensions/subnetpools.py)."""
    nova_notifier: Any = None
    """The nova notifier (nova/notifier.py: Notifier) when configured."""
    sg_rule_templates: Optional[Callable[[Any, bool], list[dict]]] = None
    """fn(session, default) -> the default security group rules a new
    group (``default``: a project's default group) starts with, as the API
    shows them (extensions/default_sg_rules.py, always enabled; the
    security groups extension calls it for every new group)."""
    status_listeners: list[StatusListener]
    """Told of port status changes after their commit."""
    report_hooks: list[ReportHook]
    """Run inside an agent's port report (see api/agent_api.py)."""
    fip_report_hooks: list[Callable[[str, list], int]]
    """fn(host, floating IP ids): the host's agent reported these floating
    IPs installed (api/agent_api.py; extensions/floatingips.py)."""
    network_cleanups: list[Callable[[Any, Any, Any], None]]
    """fn(session, ctx, network row): run first in a network's deletion,
    before its ports are checked; removes what goes with the network (its
    floating IPs, extensions/floatingips.py)."""
    register_hooks: list[Callable[[Any, Any], None]]
    """fn(session, agent row): run inside every registration and heartbeat
    of an agent (db/agents.py; extensions/floatingips.py: gateway hosts)."""

    def __init__(self, db, conf):
        self.db = db
        self.conf = conf
        self.collections = {}
        self.hooks = {}
        self.dict_extenders = collections.defaultdict(list)
        self.filter_hooks = {}
        self.visibility = collections.defaultdict(list)
        self.rbac_types = {}
        self.extensions_set_up = False
        self.status_listeners = []
        self.report_hooks = []
        self.fip_report_hooks = []
        self.register_hooks = []
        self.network_cleanups = []

    def __setattr__(self, name, value):
        if name not in _declared(type(self)):
            raise AttributeError(f"{type(self).__name__} declares no attribute {name!r} "
                                 "(add it to db/interface.py)")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------- registering
    def register(self, handler: "Collection") -> None:
        """Serve ``handler.collection`` with this handler."""
        self.collections[handler.collection] = handler

    def add_hook(self, collection: str, phase: str, fn: Hook, first: bool = False) -> None:
        """Run ``fn`` on every ``phase`` write of ``collection`` (last, or
        before the others with ``first``)."""
        if phase not in PHASES:
            raise ValueError(f"no hook point {phase!r}; known: {PHASES}")
        hooks = self.hooks.setdefault((collection, phase), [])
        hooks.insert(0, fn) if first else hooks.append(fn)

    def add_dict_extender(self, collection: str, fn: DictExtender) -> None:
        self.dict_extenders[collection].append(fn)

    def add_filter(self, collection: str, attr: str, fn: FilterClause) -> None:
        self.filter_hooks[(collection, attr)] = fn

    def add_visibility(self, collection: str, fn: VisibilityClause) -> None:
        self.visibility[collection].append(fn)

    # ------------------------------------------------------------- used by handlers
    def notify_status(self, changes: list) -> None:
        """Tell the status listeners of committed port status changes,
        ``[(port_id, device_id, device_owner, status), ...]`` (none: nothing
        is said).  A listener's failure is logged: it never fails the write
        that made the change."""
        for fn in self.status_listeners if changes else ():
            try:
                fn(list(changes))
            except Exception:  # noqa: BLE001 - a listener never fails a write
                LOG.exception("port status listener failed")

    def run_hooks(self, collection: str, phase: str, session, ctx, obj, attrs) -> None:
        for fn in self.hooks.get((collection, phase), ()):
            fn(session, ctx, obj, attrs)

    def row(self, session, ctx, collection: str, id_: str, lock=False, bare=False,
            share=False):
        """The row of ``collection`` that ``ctx`` sees (ctx None: any), or
        its not-found error.  ``lock``: for update; ``share``: share-locked
        first (resource.hold: a write that uses it); ``bare``: its columns,
        relationships loaded when touched."""
        return self.collections[collection].row(session, ctx, id_, lock=lock, bare=bare,
                                                share=share)

    def to_dict(self, collection: str, obj) -> dict:
        """The API dict of a row: its handler's view and the extenders'."""
        d = self.collections[collection].to_dict(obj)
        for fn in self.dict_extenders.get(collection, ()):
            fn(obj, d)
        return d

    def to_dicts(self, collection: str, objs) -> list:
        """to_dict of many rows (a listing), the view and the extenders
        looked up once."""
        make = self.collections[collection].to_dict
        extenders = tuple(self.dict_extenders.get(collection, ()))
        out = []
        for obj in objs:
            d = make(obj)
            for fn in extenders:
                fn(obj, d)
            out.append(d)
        return out


@functools.cache
def _declared(cls):
    """The attribute names ``cls`` and its bases declare."""
    return frozenset(name for k in cls.__mro__ if k is not object
                     for name in (*k.__dict__.get("__annotations__", {}), *vars(k)))
