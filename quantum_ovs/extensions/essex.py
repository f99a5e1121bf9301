"""The Essex API: Quantum v1.0 and v1.1, served from the v2.0 data.

``/v1.{0,1}/tenants/{tenant_id}/networks[/{id}[/ports[/{id}[/attachment]]]]``
with Essex's semantics:

- a network shows ``id``, ``name`` and (v1.1) ``op-status``; a port ``id``,
  ``state`` (ACTIVE/DOWN, the v2.0 admin_state_up) and (v1.1)
  ``op-status``; the attachment is the id of the interface plugged into
  the port, kept as the v2.0 port's device_id (a record only: the agent
  wires an interface whose ``external_ids:iface-id`` is the *port's* id,
  as for v2.0, not the attachment id Essex's plugins matched);
- lists give ids only, ``/detail`` (or ``?detail=true``) gives details;
  v1.1 lists take filters;
- v1.0 answers faults with its own status codes (networkNotFound 420,
  networkInUse 421, portNotFound 430, requestedStateInvalid 431,
  portInUse 432, alreadyAttached 440) and ``{<name>: {code, message,
  detail}}``; v1.1 with 404/409/400 and ``{"QuantumError": {type, message,
  detail}}``;
- create answers 200 (v1.0) or 202 (v1.1) with the new id; update,
  delete, plug and unplug answer 204.

A v1.x network is a v2.0 network of the tenant (and the other way round).
The tenant in the path must be the caller's project unless the caller is
an admin.  Every read and change goes through the v2.0 policy and
visibility: the ports of other projects on a tenant's (shared) network
are seen as v2.0 shows them to the network's owner, but not changed,
plugged or deleted (a network with such ports is in use), and an
attachment id is unique among the ports of one project only.
"""

import json

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.api import definitions, wsgi
from quantum_ovs.api.definitions.essex import (  # noqa: F401 (the contract's names)
    FAULTS,
    NETWORK_FILTER_ALIASES,
    PORT_FILTER_ALIASES,
    V10_NAMES,
    VERSIONS,
    AlreadyAttached,
    MalformedRequest,
    StateInvalid,
    TenantMismatch,
)
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import models
from quantum_ovs.db.session import transaction_lock

PLUG = "essex:plug"
UNPLUG = "essex:unplug"

DEFINITION = definitions.essex


def _fault(version, code, name, type_, message, detail):
    if version == "1.0":
        body = {name: {"code": code, "message": message, "detail": detail}}
    else:
        body = {"QuantumError": {"type": type_, "message": message, "detail": detail}}
    resp = json_response(body)
    resp.status = f"{code} {name if version == '1.0' else type_}"
    return resp


def fault_response(version, err):
    for kind, (c10, n10, c11, t11, meaning) in FAULTS.items():
        if isinstance(err, kind):
            code = c10 if version == "1.0" else c11
            return _fault(version, code, n10, t11, meaning, err.msg)
    # Anything else: what the v2.0 API would answer, in this version's body.
    v2 = wsgi.error_response(err)
    info = json.loads(v2.body)["NeutronError"]
    code = v2.status_int
    name = V10_NAMES.get(code, "quantumServiceFault")
    return _fault(version, code, name, info["type"], info["message"], info["detail"])


# ------------------------------------------------------------------ views
def _op_status(status):
    return {"ACTIVE": "UP", "DOWN": "DOWN", "ERROR": "DOWN",
            "BUILD": "PROVISIONING"}.get(status, "UNKNOWN")


def _state(port):
    return "ACTIVE" if port["admin_state_up"] else "DOWN"


def port_view(version, port, details=True, attachment=False):
    out = {"id": port["id"]}
    if details:
        out["state"] = _state(port)
        if version == "1.1":
            out["op-status"] = _op_status(port["status"])
    if attachment and port["device_id"]:
        out["attachment"] = {"id": port["device_id"]}
    return out


def network_view(version, net, details=True, ports=None):
    out = {"id": net["id"]}
    if details:
        out["name"] = net["name"]
        if version == "1.1":
            out["op-status"] = _op_status(net["status"])
    if ports is not None:
        out["ports"] = [port_view(version, p, attachment=True) for p in ports]
    return out


def _truthy(value):
    return str(value).strip().lower() in ("true", "1", "yes")


# ------------------------------------------------------------------ filters (v1.1)
def _network_filters(params):
    """v1.1 network filters: name -> (ports needed?, predicate(net, ports))."""
    aliases = NETWORK_FILTER_ALIASES
    out = []
    for key, value in params.items():
        key = aliases.get(key, key)
        if key == "name":
            out.append(lambda n, ps, v=value: n["name"] == v)
        elif key == "op-status":
            out.append(lambda n, ps, v=value.upper(): _op_status(n["status"]) == v)
        elif key == "port-op-status":
            out.append(lambda n, ps, v=value.upper(): any(
                _op_status(p["status"]) == v for p in ps))
        elif key == "port-state":
            out.append(lambda n, ps, v=value.upper(): any(_state(p) == v for p in ps))
        elif key == "has-attachment":
            out.append(lambda n, ps, v=_truthy(value): any(p["device_id"] for p in ps) == v)
        elif key == "attachment":
            out.append(lambda n, ps, v=value: any(p["device_id"] == v for p in ps))
        elif key == "port":
            out.append(lambda n, ps, v=value: any(p["id"] == v for p in ps))
    return out


def _port_filters(params):
    aliases = PORT_FILTER_ALIASES
    out = []
    for key, value in params.items():
        key = aliases.get(key, key)
        if key == "state":
            out.append(lambda p, v=value.upper(): _state(p) == v)
        elif key == "op-status":
            out.append(lambda p, v=value.upper(): _op_status(p["status"]) == v)
        elif key == "has-attachment":
            out.append(lambda p, v=_truthy(value): bool(p["device_id"]) == v)
        elif key == "attachment":
            out.append(lambda p, v=value: p["device_id"] == v)
    return out


# ------------------------------------------------------------------ the API
class EssexAPI:
    def __init__(self, api):
        self.api = api
        self.plugin = api.plugin
        self.policy = api.policy

    def _port_target(self, port, **changes):
        target = dict(self.api.controllers["ports"]._target(port))
        target.update(changes)
        return target

    # helpers -------------------------------------------------------
    @staticmethod
    def _check_tenant(ctx, tenant_id):
        if not ctx.is_admin and ctx.project_id != tenant_id:
            raise TenantMismatch(tenant_id=tenant_id)

    def _network(self, ctx, tenant_id, net_id):
        net = self.plugin.get(ctx, "networks", net_id)
        if net["project_id"] != tenant_id or not self.policy.check("get_network", ctx, net):
            raise exceptions.NetworkNotFound(net_id=net_id)
        return net

    def _ports(self, ctx, net_ids):
        if not net_ids:
            return []
        ports = self.plugin.list(ctx, "ports", filters={"network_id": list(net_ids)},
                                 sorts=[("created_at", True)])
        visible = self.policy.checker("get_port", ctx)
        targets = self.api.controllers["ports"]._targets(ports)
        return [p for p, t in zip(ports, targets) if visible(t)]

    def _port(self, ctx, tenant_id, net_id, port_id):
        self._network(ctx, tenant_id, net_id)
        try:
            port = self.plugin.get(ctx, "ports", port_id)
        except exceptions.PortNotFound:
            raise exceptions.PortNotFound(port_id=port_id) from None
        if port["network_id"] != net_id or \
                not self.policy.check("get_port", ctx, self._port_target(port)):
            raise exceptions.PortNotFound(port_id=port_id)
        return port

    @staticmethod
    def _body(req, resource, required=True):
        try:
            body = read_json(req, required=required)
        except exceptions.MalformedRequestBody as e:
            raise MalformedRequest(reason=e.msg) from None
        if body is None:
            return {}
        data = body.get(resource)
        if not isinstance(data, dict):
            raise MalformedRequest(reason=f"Unable to find '{resource}' in request body")
        return data

    @staticmethod
    def _name(data):
        name = data.get("name")
        if name is None:
            raise MalformedRequest(reason="Failed to parse request. Parameter: name not "
                                          "specified")
        if not isinstance(name, str) or len(name) > 255:
            raise MalformedRequest(reason=f"Invalid network name {name!r}")
        return name

    @staticmethod
    def _state_of(data, required=False):
        """ACTIVE or DOWN (any case) as a boolean; when not ``required``,
        none given is DOWN.  Anything else, an empty value or object
        included, is 431/400 StateInvalid."""
        if required and "state" not in data:
            raise MalformedRequest(reason="Failed to parse request. Parameter: state not "
                                          "specified")
        state = data.get("state", "DOWN")
        if not isinstance(state, str) or state.upper() not in ("ACTIVE", "DOWN"):
            raise StateInvalid(port_state=state)
        return state.upper() == "ACTIVE"

    @staticmethod
    def _wants_detail(req):
        return _truthy(req.GET.get("detail", "false"))

    # networks -------------------------------------------------------
    def list_networks(self, version, req, ctx, tenant_id, detail=False):
        self._check_tenant(ctx, tenant_id)
        detail = detail or self._wants_detail(req)
        nets = self.plugin.list(ctx, "networks", filters={"project_id": [tenant_id]},
                                sorts=[("created_at", True)])
        # Those get_network gives the caller, as v2.0 and show_network.
        visible = self.policy.checker("get_network", ctx)
        nets = [n for n in nets if visible(n)]
        if version == "1.1":
            preds = _network_filters(req.GET)
            if preds:
                ports = self._ports(ctx, [n["id"] for n in nets])
                by_net = {}
                for p in ports:
                    by_net.setdefault(p["network_id"], []).append(p)
                nets = [n for n in nets if all(f(n, by_net.get(n["id"], []))
                                               for f in preds)]
        return json_response({"networks": [network_view(version, n, details=detail)
                                           for n in nets]})

    def show_network(self, version, req, ctx, tenant_id, network_id, detail=False):
        self._check_tenant(ctx, tenant_id)
        net = self._network(ctx, tenant_id, network_id)
        ports = None
        if detail or self._wants_detail(req):
            ports = self._ports(ctx, [net["id"]])
        return json_response({"network": network_view(version, net, ports=ports)})

    def create_network(self, version, req, ctx, tenant_id):
        self._check_tenant(ctx, tenant_id)
        name = self._name(self._body(req, "network"))
        ctl = self.api.controllers["networks"]
        prepared = ctl._prepare_post(ctx, {"name": name, "project_id": tenant_id})
        net = self.plugin.create(ctx, "networks", [prepared])[0]
        return json_response({"network": {"id": net["id"]}},
                             status=200 if version == "1.0" else 202)

    def update_network(self, version, req, ctx, tenant_id, network_id):
        self._check_tenant(ctx, tenant_id)
        name = self._name(self._body(req, "network"))
        net = self._network(ctx, tenant_id, network_id)
        self.policy.enforce("update_network", ctx, dict(net, name=name))
        self.plugin.update(ctx, "networks", network_id, {"name": name})
        return json_response(None, status=204)

    def delete_network(self, version, req, ctx, tenant_id, network_id):
        self._check_tenant(ctx, tenant_id)
        net = self._network(ctx, tenant_id, network_id)
        self.policy.enforce("delete_network", ctx, net)
        ports = [p for p in self._ports(ctx, [network_id])
                 if not p["device_owner"].startswith("network:")]
        if any(p["device_id"] for p in ports):
            raise exceptions.NetworkInUse(net_id=network_id)
        # Only ports the caller may delete go with the network; another
        # project's port (on a shared network) keeps it in use.
        if not all(self.policy.check("update_port", ctx, self._port_target(p)) and
                   self.policy.check("delete_port", ctx, self._port_target(p))
                   for p in ports):
            raise exceptions.NetworkInUse(net_id=network_id)
        handlers = self.plugin.collections

        def txn(s):
            # One transaction: a network that stays in use (a router's
            # port, another project's) keeps every port (the network's
            # lock first, as every write takes it: db/ipam.py).
            net_row = handlers["networks"].row(s, ctx, network_id, lock=True)
            for p in ports:
                try:
                    row = handlers["ports"].row(s, ctx, p["id"], lock=True)
                except exceptions.PortNotFound:
                    continue
                if row.device_id:  # (attached since the check above)
                    raise exceptions.NetworkInUse(net_id=network_id)
                handlers["ports"].delete_row(s, ctx, row)
            handlers["networks"].delete_row(s, ctx, net_row)
        self.plugin.db.write(txn)
        return json_response(None, status=204)

    # ports ----------------------------------------------------------
    def list_ports(self, version, req, ctx, tenant_id, network_id, detail=False):
        self._check_tenant(ctx, tenant_id)
        detail = detail or self._wants_detail(req)
        self._network(ctx, tenant_id, network_id)
        ports = self._ports(ctx, [network_id])
        if version == "1.1":
            preds = _port_filters(req.GET)
            ports = [p for p in ports if all(f(p) for f in preds)]
        return json_response({"ports": [port_view(version, p, details=detail)
                                        for p in ports]})

    def show_port(self, version, req, ctx, tenant_id, network_id, port_id, detail=False):
        self._check_tenant(ctx, tenant_id)
        port = self._port(ctx, tenant_id, network_id, port_id)
        detail = detail or self._wants_detail(req)
        return json_response({"port": port_view(version, port, attachment=detail)})

    def create_port(self, version, req, ctx, tenant_id, network_id):
        self._check_tenant(ctx, tenant_id)
        self._network(ctx, tenant_id, network_id)
        data = self._body(req, "port", required=False)
        up = self._state_of(data)
        ctl = self.api.controllers["ports"]
        prepared = ctl._prepare_post(ctx, {"network_id": network_id, "admin_state_up": up,
                                           "project_id": tenant_id})
        port = self.plugin.create(ctx, "ports", [prepared])[0]
        return json_response({"port": {"id": port["id"]}},
                             status=200 if version == "1.0" else 202)

    def update_port(self, version, req, ctx, tenant_id, network_id, port_id):
        self._check_tenant(ctx, tenant_id)
        data = self._body(req, "port")
        up = self._state_of(data, required=True)
        port = self._port(ctx, tenant_id, network_id, port_id)
        self.policy.enforce("update_port", ctx, self._port_target(port, admin_state_up=up))
        self.plugin.update(ctx, "ports", port_id, {"admin_state_up": up})
        return json_response(None, status=204)

    def delete_port(self, version, req, ctx, tenant_id, network_id, port_id):
        self._check_tenant(ctx, tenant_id)
        port = self._port(ctx, tenant_id, network_id, port_id)
        if port["device_id"]:
            raise exceptions.PortInUse(port_id=port_id, net_id=network_id,
                                       device_id=port["device_id"])
        self.policy.enforce("delete_port", ctx, self._port_target(port))
        ports = self.plugin.collections["ports"]

        def txn(s):
            row = ports.row(s, ctx, port_id, lock=True)
            if row.device_id:  # (attached since the check above)
                raise exceptions.PortInUse(port_id=port_id, net_id=network_id,
                                           device_id=row.device_id)
            ports.delete_row(s, ctx, row)
        self.plugin.db.write(txn)
        return json_response(None, status=204)

    # attachments ------------------------------------------------------
    def show_attachment(self, version, req, ctx, tenant_id, network_id, port_id):
        self._check_tenant(ctx, tenant_id)
        port = self._port(ctx, tenant_id, network_id, port_id)
        att = {"id": port["device_id"]} if port["device_id"] else {}
        return json_response({"attachment": att})

    def plug(self, version, req, ctx, tenant_id, network_id, port_id):
        self._check_tenant(ctx, tenant_id)
        data = self._body(req, "attachment")
        vif = data.get("id")
        if not isinstance(vif, str) or not vif.strip() or len(vif) > 255:
            raise MalformedRequest(reason="Failed to parse request. Parameter: id not "
                                          "specified")
        port = self._port(ctx, tenant_id, network_id, port_id)
        self._may_set_device(ctx, port, vif)
        self.plugin.update(ctx, "ports", port_id, {PLUG: vif})
        return json_response(None, status=204)

    def _may_set_device(self, ctx, port, device_id):
        """Plugging and unplugging change the port's device_id: the v2.0
        rules of that change."""
        target = self._port_target(port, device_id=device_id)
        self.policy.enforce("update_port", ctx, target)
        if device_id != port["device_id"]:
            self.policy.enforce("update_port:device_id", ctx, target)

    def unplug(self, version, req, ctx, tenant_id, network_id, port_id):
        self._check_tenant(ctx, tenant_id)
        port = self._port(ctx, tenant_id, network_id, port_id)
        self._may_set_device(ctx, port, "")
        self.plugin.update(ctx, "ports", port_id, {UNPLUG: True})
        return json_response(None, status=204)


def _handler(version, fn, **fixed):
    def handle(req, ctx, **kw):
        kw.pop("fmt", None)
        try:
            return fn(version, req, ctx, **kw, **fixed)
        except Exception as e:  # noqa: BLE001 - every error becomes a v1 fault
            return fault_response(version, e)
    return handle


def routes(api):
    essex = EssexAPI(api)
    fmt = "{fmt:(\\.json)?}"
    for version in VERSIONS:
        base = f"/v{version}/tenants/{{tenant_id}}/networks"
        net = base + "/{network_id}"
        port = net + "/ports/{port_id}"

        def h(fn, **fixed):
            return _handler(version, fn, **fixed)
        api.add_route(base + "/detail" + fmt, {"GET": h(essex.list_networks, detail=True)})
        api.add_route(base + fmt, {"GET": h(essex.list_networks),
                                   "POST": h(essex.create_network)})
        api.add_route(net + "/detail" + fmt,
                      {"GET": h(essex.show_network, detail=True)})
        api.add_route(net + "/ports/detail" + fmt,
                      {"GET": h(essex.list_ports, detail=True)})
        api.add_route(net + "/ports" + fmt, {"GET": h(essex.list_ports),
                                             "POST": h(essex.create_port)})
        api.add_route(port + "/attachment" + fmt, {"GET": h(essex.show_attachment),
                                                   "PUT": h(essex.plug),
                                                   "DELETE": h(essex.unplug)})
        api.add_route(port + "/detail" + fmt, {"GET": h(essex.show_port, detail=True)})
        api.add_route(port + fmt, {"GET": h(essex.show_port), "PUT": h(essex.update_port),
                                   "DELETE": h(essex.delete_port)})
        api.add_route(net + fmt, {"GET": h(essex.show_network),
                                  "PUT": h(essex.update_network),
                                  "DELETE": h(essex.delete_network)})


# ------------------------------------------------------------------ plugin side
def setup(plugin, conf):
    def before_port_update(s, ctx, port, a):
        # Plugging and unplugging name the port's device_id in the update
        # (``a``) before the handler applies it: every check of a
        # device_id change (a router's interface, another project's
        # router) sees it as it sees a v2.0 update of device_id.
        if PLUG in a:
            vif = a[PLUG]
            if port.device_id:
                raise exceptions.PortInUse(port_id=port.id, net_id=port.network_id,
                                           device_id=port.device_id)
            # Two ports plugging the same interface at once: one wins
            # (PostgreSQL and MariaDB; SQLite has one writer).
            transaction_lock(s, f"essex-attachment:{port.project_id}:{vif}")
            P = models.Port
            # Attachment ids are the project's own: another project's
            # interface of the same id neither blocks nor is revealed.
            other = s.execute(sa.select(P.id).where(
                P.device_id == vif, P.id != port.id, P.project_id == port.project_id)
            ).scalar()
            if other is not None:
                raise AlreadyAttached(att_id=vif, port_id=port.id, net_id=port.network_id,
                                      att_port_id=other)
            a["device_id"] = vif
        if a.get(UNPLUG):
            a["device_id"] = ""

    plugin.add_hook("ports", "before_update", before_port_update)
