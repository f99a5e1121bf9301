"""Port binding (binding:*): which host serves a port, and how; and the
port bindings API (alias ``binding-extended``) that nova's live migration
uses.

``binding:vif_type`` is ``unbound`` without a host, ``ovs`` when a live
agent on the host can serve the port's network (its tunnel types or
bridge mappings cover the segment), ``binding_failed`` otherwise.  Ports
are bound again when an agent on their host registers.

Bindings API (admin only by default)::

    GET    /v2.0/ports/{id}/bindings                  the port's bindings
    POST   /v2.0/ports/{id}/bindings                  {"binding": {"host": ...}}
    GET    /v2.0/ports/{id}/bindings/{host}
    PUT    /v2.0/ports/{id}/bindings/{host}           {"binding": {"vnic_type", "profile"}}
    DELETE /v2.0/ports/{id}/bindings/{host}           not the active one (409)
    PUT    /v2.0/ports/{id}/bindings/{host}/activate

A port has one ACTIVE binding (``port_bindings``: what ``binding:*`` of the
port show, what agents and host views follow) and any number of INACTIVE
ones (``port_inactive_bindings``), one per host; only compute ports
(``device_owner`` ``compute:*``) have this API, as in Neutron.  A binding
made for an unbound port binds it (ACTIVE); on a bound port it is INACTIVE
and *pending*: the destination of a move.  Its host's view gets the port's
network, subnets, security groups (with members) and peers at once, and
the port itself as local until the host's agent has installed its flows
for the plugged VIF and reported it (which tells nova the VIF is plugged,
as nova waits for before a live migration); from then until activation
the port shows on its active host again there, so that the destination's
other ports keep reaching the VM where it runs while nova copies it.
Other hosts see the port where it is active.  Activation swaps the rows:
the pending binding becomes the active one (with what its agent reported:
a port whose flows were installed there stays ACTIVE), the old active one
becomes an INACTIVE, no longer pending binding (nova deletes it, or
activates it again to roll back); every host then only recompiles the
port's own flows.
"""

import functools
import json

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from quantum_ovs import exceptions
from quantum_ovs.api import definitions, validators as v
from quantum_ovs.api.definitions.binding import (  # noqa: F401 (the contract's names)
    HOST,
    PROFILE,
    TRUSTED,
    VIF_DETAILS,
    VIF_TYPE,
    VNIC,
    VNIC_TYPES,
    PortBindingActive,
    PortBindingAlreadyActive,
    PortBindingAlreadyExists,
    PortBindingError,
    PortBindingNotFound,
    _host,
    _profile,
)
from quantum_ovs.api.controller import RESERVED_PARAMS
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import bindings as bindings_db, changelog, models, session as db_session
from quantum_ovs.db.bindings import (  # noqa: F401
    ACTIVE,
    COMPUTE_PREFIX,
    UNPLUGGED_VIF_TYPES,
    bind,
)
from quantum_ovs.db.query import child_filter

DEFINITION = definitions.binding

INACTIVE = "INACTIVE"


def setup(plugin, conf):
    def status_after_commit(s, port, before):
        """The status listeners (nova's events) hear of a change of the
        port's status by this write, once it is committed: a port moved
        off its host is an unplugged VIF (Neutron's listener on the status
        column)."""
        change = []

        def read(_s):  # (the row as committed: read before the commit expires it)
            if port.status != before:
                change.append((port.id, port.device_id, port.device_owner, port.status))

        sa_event.listen(s, "before_commit", read, once=True)
        db_session.after_commit(s, plugin.notify_status, change)

    def on_create(s, ctx, port, a):
        port.binding = models.PortBinding(
            host=a.get(HOST) or "", vnic_type=a.get(VNIC) or "normal",
            profile=json.dumps(a.get(PROFILE) or {}), trusted=a.get(TRUSTED))
        bind(s, plugin, port, port.binding)

    def on_update(s, ctx, port, a):
        b = port.binding
        if b is None:
            b = port.binding = models.PortBinding(host="", vnic_type="normal", profile="{}")
        if HOST in a:
            status_after_commit(s, port, port.status)
        changed = False
        if VNIC in a and a[VNIC] != b.vnic_type and b.vif_type not in (None, "unbound"):
            # (as ML2's _validate_port_update: a bound port keeps its VNIC
            # type; binding_failed counts as bound there too)
            raise exceptions.PortInUse(port_id=port.id, net_id=port.network_id,
                                       device_id=port.device_id)
        if HOST in a and a[HOST] != b.host:
            if b.host:
                # The old host must learn that the port left it.
                changelog.record(s, "port", port, "update", port.network_id, host=b.host,
                                 members=False)
            b.host = a[HOST]
            b.flows_installed = False
            b.ofport = None
            port.status = "DOWN"
            changed = True
            # An inactive binding on the new host is superseded by the
            # active one (one binding per host); what its agent reported
            # holds (it reports a port once).
            gone = s.get(models.InactivePortBinding, (port.id, b.host)) if b.host else None
            if gone is not None:
                b.ofport, b.flows_installed = gone.ofport, gone.flows_installed
                if b.flows_installed and port.admin_state_up:
                    port.status = ACTIVE
                s.delete(gone)
        if VNIC in a and a[VNIC] != b.vnic_type:
            b.vnic_type = a[VNIC]
            changed = True
        if PROFILE in a:
            b.profile = json.dumps(a[PROFILE] or {})
        if TRUSTED in a:
            b.trusted = a[TRUSTED]
        if changed or b.vif_type in UNPLUGGED_VIF_TYPES:
            bind(s, plugin, port, b)
        # Hosts preparing the port for a move see it as theirs: they must
        # learn of its changes as its own host does.
        _record_pending(s, plugin, port, "update")

    def on_delete(s, ctx, port, a):
        _record_pending(s, plugin, port, "delete")

    def extend_dict(port, d):
        b = port.binding
        if b is None:
            d.update({HOST: "", VNIC: "normal", PROFILE: {}, VIF_TYPE: "unbound",
                      VIF_DETAILS: {}, TRUSTED: None})
            return
        d[HOST] = b.host
        d[VNIC] = b.vnic_type
        d[PROFILE] = profile_of(b)
        d[TRUSTED] = b.trusted
        d[VIF_TYPE] = b.vif_type
        d[VIF_DETAILS] = json.loads(b.vif_details) \
            if b.vif_details not in ("", "{}", None) else {}

    plugin.add_hook("ports", "create", on_create)
    plugin.add_hook("ports", "update", on_update)
    plugin.add_hook("ports", "delete", on_delete)
    plugin.add_dict_extender("ports", extend_dict)
    P, B = models.Port, models.PortBinding

    for attr, column in ((VNIC, B.vnic_type), (VIF_TYPE, B.vif_type)):
        plugin.add_filter("ports", attr, child_filter(P.id, B.port_id, column))
    # As Neutron: a host filter matches any binding of the port (a port
    # being moved is listed for both hosts).
    IB = models.InactivePortBinding
    active_on = child_filter(P.id, B.port_id, B.host)
    inactive_on = child_filter(P.id, IB.port_id, IB.host)
    plugin.add_filter("ports", HOST, lambda values: sa.or_(active_on(values),
                                                           inactive_on(values)))
    plugin.report_hooks.append(functools.partial(bindings_db.on_report, plugin))


# ------------------------------------------------------------------ storage side
# What a binding is: moved as a whole between port_bindings (the active
# one) and port_inactive_bindings.
_FIELDS = ("host", "vnic_type", "profile", "vif_type", "vif_details", "ofport",
           "flows_installed")


def _record_pending(s, plugin, port, op):
    """A change of ``port`` for each host that has a pending binding of it."""
    IB = models.InactivePortBinding
    for host in s.execute(sa.select(IB.host).where(IB.port_id == port.id,
                                                   IB.pending.is_(True))).scalars():
        changelog.record(s, "port", port, op, port.network_id, host=host, members=False)


def profile_of(b):
    """A binding's ``binding:profile``, with the port's ``trusted`` in it
    once an admin has set it (what nova reads, as Neutron shows it).  Only
    the active binding has ``trusted``; an inactive one shows its profile
    as stored."""
    # (most are empty: not parsed, a listing has thousands)
    profile = json.loads(b.profile) if b.profile not in ("", "{}", None) else {}
    trusted = getattr(b, "trusted", None)
    if trusted is not None:
        profile[TRUSTED] = trusted
    return profile


def binding_dict(b, status):
    """Neutron's body of one binding (the active one's profile with the
    port's ``trusted``, as the port shows it)."""
    return {"host": b.host, "vif_type": b.vif_type, "vnic_type": b.vnic_type,
            "status": status, "profile": profile_of(b),
            "vif_details": json.loads(b.vif_details or "{}")}


def bindings_of(s, port):
    """The port's bindings: the active one first (none while the port has
    no host), then the others by host."""
    out = []
    if port.binding is not None and port.binding.host:
        out.append(binding_dict(port.binding, ACTIVE))
    IB = models.InactivePortBinding
    for row in s.execute(sa.select(IB).where(IB.port_id == port.id).order_by(IB.host)
                         ).scalars():
        out.append(binding_dict(row, INACTIVE))
    return out


BINDING_FILTERS = ("host", "vif_type", "vnic_type", "status")
POST_ATTRS = ("host", "vnic_type", "profile", "project_id", "tenant_id")


def parse_binding(body):
    """The attributes of a POST .../bindings body (400 on anything wrong)."""
    b = body.get("binding")
    if not isinstance(b, dict):
        raise exceptions.BadRequest(resource="binding",
                                    msg="Resource body required: {'binding': {'host': ...}}")
    unknown = sorted(k for k in b if k not in POST_ATTRS)
    if unknown:
        raise exceptions.BadRequest(
            resource="binding",
            msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    if "host" not in b:
        raise exceptions.BadRequest(
            resource="binding",
            msg="Failed to parse request. Required attribute 'host' not specified")
    host = v.string(255)(b["host"], "host")
    if not host.strip():
        raise v.bad("'host' must be a host name, not empty")
    for k in ("project_id", "tenant_id"):
        if k in b:
            v.string(255)(b[k], k)
    vnic = v.choices(*VNIC_TYPES, allow_none=False)(b.get("vnic_type", "normal"), VNIC)
    return {"host": host, "vnic_type": vnic, "profile": _profile(b.get("profile"))}


def _query(req):
    """(fields, filters) of a bindings read; 400 on an unknown filter."""
    fields = set(req.GET.getall("fields")) - {""}
    filters = {}
    for key in req.GET:
        if key in RESERVED_PARAMS:
            continue
        if key not in BINDING_FILTERS:
            raise exceptions.BadRequest(resource="binding",
                                        msg=f"[{key}] is invalid attribute for filtering")
        filters[key] = set(req.GET.getall(key))
    return fields, filters


def _shown(d, fields):
    return {k: val for k, val in d.items() if not fields or k in fields}


# ------------------------------------------------------------------ routes
def routes(api):
    plugin, db = api.plugin, api.plugin.db
    IB = models.InactivePortBinding

    def port_for(s, ctx, port_id, action, lock=False):
        """The port (404 unless the caller sees it), the caller allowed to
        ``action`` it (403), a compute port (400)."""
        port = plugin.row(s, ctx, "ports", port_id, lock=lock)
        api.policy.enforce(action, ctx, {"id": port.id, "port_id": port.id,
                                         "project_id": port.project_id,
                                         "tenant_id": port.project_id,
                                         "network_id": port.network_id})
        if not (port.device_owner or "").startswith(COMPUTE_PREFIX):
            raise exceptions.BadRequest(
                resource="port",
                msg=f"Invalid port {port_id}. Operation only valid on compute ports")
        return port

    def active_of(port):
        """The port's active binding (made, unbound, if it has none)."""
        if port.binding is None:
            port.binding = models.PortBinding(host="", vnic_type="normal", profile="{}",
                                              vif_type="unbound", vif_details="{}")
        return port.binding

    def index(req, ctx, port_id, **kw):
        fields, filters = _query(req)
        with db.reader() as s:
            found = bindings_of(s, port_for(s, ctx, port_id, "get_port_binding"))
        found = [d for d in found if all(str(d[k]) in vals for k, vals in filters.items())]
        return json_response({"bindings": [_shown(d, fields) for d in found]})

    def show(req, ctx, port_id, host, **kw):
        fields = set(req.GET.getall("fields")) - {""}
        with db.reader() as s:
            found = bindings_of(s, port_for(s, ctx, port_id, "get_port_binding"))
        for d in found:
            if d["host"] == host:
                return json_response({"binding": _shown(d, fields)})
        raise PortBindingNotFound(port_id=port_id, host=host)

    def create(req, ctx, port_id, **kw):
        a = parse_binding(read_json(req))
        host = a["host"]

        def txn(s):
            port = port_for(s, ctx, port_id, "create_port_binding", lock=True)
            b = active_of(port)
            if b.host == host or s.get(IB, (port.id, host)) is not None:
                raise PortBindingAlreadyExists(port_id=port.id, host=host)
            if not b.host:
                # The port's first binding: it binds the port.
                b.host, b.vnic_type, b.profile = host, a["vnic_type"], json.dumps(a["profile"])
                b.ofport, b.flows_installed = None, False
                port.status = "DOWN"
                bind(s, plugin, port, b)
                if b.vif_type != "ovs":
                    raise PortBindingError(port_id=port.id, host=host)
                changelog.bump(port)
                changelog.record(s, "port", port, "update", port.network_id, members=False)
                s.flush()
                return binding_dict(b, ACTIVE)
            row = IB(port_id=port.id, host=host, vnic_type=a["vnic_type"],
                     profile=json.dumps(a["profile"]), pending=True, flows_installed=False)
            bind(s, plugin, port, row)
            if row.vif_type != "ovs":
                raise PortBindingError(port_id=port.id, host=host)
            s.add(row)
            changelog.bump(port)
            # The destination host prepares the port.
            changelog.record(s, "port", port, "update", port.network_id, host=host,
                             members=False)
            s.flush()
            return binding_dict(row, INACTIVE)
        return json_response({"binding": db.write(txn)}, status=201)

    def update(req, ctx, port_id, host, **kw):
        """Neutron's update of a binding: its vnic type and profile (the
        host is the binding's name).  Allowed by create_port_binding's rule
        (Neutron registers none for it)."""
        body = read_json(req).get("binding")
        if not isinstance(body, dict):
            raise exceptions.BadRequest(resource="binding",
                                        msg="Resource body required: {'binding': {...}}")
        unknown = sorted(k for k in body if k not in ("host", "vnic_type", "profile"))
        if unknown:
            raise exceptions.BadRequest(
                resource="binding", msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        if "host" in body and body["host"] != host:
            raise v.bad("the host of a binding cannot change: create one on the other host")
        a = {}
        if "vnic_type" in body:
            a["vnic_type"] = v.choices(*VNIC_TYPES, allow_none=False)(body["vnic_type"], VNIC)
        if "profile" in body:
            a["profile"] = json.dumps(_profile(body["profile"]))

        def txn(s):
            port = port_for(s, ctx, port_id, "create_port_binding", lock=True)
            if port.binding is not None and port.binding.host == host:
                target, status = port.binding, ACTIVE
            else:
                target, status = s.get(IB, (port.id, host)), INACTIVE
                if target is None:
                    raise PortBindingNotFound(port_id=port.id, host=host)
            rebind = a.get("vnic_type", target.vnic_type) != target.vnic_type
            for k, val in a.items():
                setattr(target, k, val)
            if rebind:
                bind(s, plugin, port, target)
                if target.vif_type != "ovs":
                    raise PortBindingError(port_id=port.id, host=host)
            if status == ACTIVE:
                changelog.bump(port)
                changelog.record(s, "port", port, "update", port.network_id, members=False)
            s.flush()
            return binding_dict(target, status)
        return json_response({"binding": db.write(txn)})

    def delete(req, ctx, port_id, host, **kw):
        def txn(s):
            port = port_for(s, ctx, port_id, "delete_port_binding", lock=True)
            if port.binding is not None and port.binding.host == host:
                raise PortBindingActive(port_id=port.id, host=host)
            row = s.get(IB, (port.id, host))
            if row is None:
                raise PortBindingNotFound(port_id=port.id, host=host)
            pending = row.pending
            s.delete(row)
            changelog.bump(port)
            if pending:  # the host drops what it prepared
                changelog.record(s, "port", port, "update", port.network_id, host=host,
                                 members=False)
        db.write(txn)
        return json_response(None, status=204)

    def activate(req, ctx, port_id, host, **kw):
        changed = []

        def txn(s):
            changed.clear()
            port = port_for(s, ctx, port_id, "activate", lock=True)
            b = active_of(port)
            if b.host == host:
                raise PortBindingAlreadyActive(port_id=port.id, host=host)
            row = s.get(IB, (port.id, host))
            if row is None:
                raise PortBindingNotFound(port_id=port.id, host=host)
            old = {f: getattr(b, f) for f in _FIELDS}
            for f in _FIELDS:
                setattr(b, f, getattr(row, f))
            s.delete(row)
            s.flush()
            if old["host"]:
                # Kept (no longer pending) until deleted or activated again.
                s.add(IB(port_id=port.id, pending=False, **old))
            before = port.status
            # What the new host's agent reported while the binding was
            # pending holds: flows installed there, the port stays up.
            port.status = ACTIVE if b.flows_installed and port.admin_state_up else "DOWN"
            changelog.bump(port)
            if old["host"]:
                changelog.record(s, "port", port, "update", port.network_id, host=old["host"],
                                 members=False)
            changelog.record(s, "port", port, "update", port.network_id, members=False)
            if port.status != before:
                changed.append((port.id, port.device_id, port.device_owner, port.status))
            s.flush()
            return binding_dict(b, ACTIVE)
        out = db.write(txn)
        plugin.notify_status(changed)
        return json_response({"binding": out})

    fmt = "{fmt:(\\.json)?}"
    base = "/v2.0/ports/{port_id}/bindings"
    api.add_route(base + fmt, {"GET": index, "POST": create})
    api.add_route(base + "/{host}/activate" + fmt, {"PUT": activate})
    api.add_route(base + "/{host}" + fmt, {"GET": show, "PUT": update, "DELETE": delete})
