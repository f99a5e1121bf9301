"""IP availability (network-ip-availability): the HTTP handlers of
quantum_ovs/api/definitions/ip_availability.py over
quantum_ovs/db/ip_availability.py.

As Neutron with its admin-only rule: a list shows only what the caller
may see (nothing, for a non-admin); a network the caller may not see is
not found."""

from quantum_ovs import exceptions
from quantum_ovs.api import validators as v
from quantum_ovs.api.definitions import ip_availability as definition
from quantum_ovs.api.wsgi import json_response
from quantum_ovs.db import ip_availability

DEFINITION = definition
RULE = "get_network_ip_availability"
KEY = "network_ip_availability"


def _filters(req):
    out = {}
    for k in definition.FILTERS:
        values = req.GET.getall(k)
        if k == "ip_version":
            values = [v.integer(choices=(4, 6))(x, k) for x in values]
        if values:
            key = "project_id" if k == "tenant_id" else k
            out[key] = out.get(key, []) + values
    return out


def _shown(req, d):
    fields = [f for f in req.GET.getall("fields") if f]
    return {k: d[k] for k in fields if k in d} if fields else d


def routes(api):
    plugin, policy = api.plugin, api.policy

    def index(req, ctx, **kw):
        with plugin.db.reader() as s:
            rows = ip_availability.availabilities(s, _filters(req))
        return json_response({"network_ip_availabilities": [
            _shown(req, d) for d in rows if policy.check(RULE, ctx, d)]})

    def show(req, ctx, network_id, **kw):
        with plugin.db.reader() as s:
            rows = ip_availability.availabilities(s, {"network_id": [network_id]})
        if not rows or not policy.check(RULE, ctx, rows[0]):
            raise exceptions.NetworkNotFound(net_id=network_id)
        return json_response({KEY: _shown(req, rows[0])})

    fmt = "{fmt:(\\.json)?}"
    api.add_route(definition.PATH + fmt, {"GET": index})
    api.add_route(definition.PATH + "/{network_id}" + fmt, {"GET": show})
