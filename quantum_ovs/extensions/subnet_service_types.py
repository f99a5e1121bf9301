"""Subnet service types (subnet-service-types): what a subnet's
``service_types`` are (rows of subnet_service_types, set on create and
replaced on update); which subnets a port's addresses come from is
db/addresses.py's service_subnets, on every allocation path (ports one by
one and in bulk, router gateways and interfaces, floating IPs)."""

from quantum_ovs.api.definitions import subnet_service_types as definition
from quantum_ovs.db import models

DEFINITION = definition
SERVICE_TYPES = definition.SERVICE_TYPES


def _set(sub, kinds):
    have = {x.service_type: x for x in sub.service_types}
    sub.service_types = [
        have.get(k) or models.SubnetServiceType(subnet_id=sub.id, service_type=k)
        for k in sorted(set(kinds))]


def _on_create(s, ctx, sub, a):
    _set(sub, a.get(SERVICE_TYPES) or ())


def _on_update(s, ctx, sub, a):
    if SERVICE_TYPES in a:
        _set(sub, a[SERVICE_TYPES])
        s.flush()


def _extend(sub, d):
    d[SERVICE_TYPES] = [x.service_type for x in sub.service_types]


def setup(plugin, conf):
    plugin.add_hook("subnets", "create", _on_create)
    plugin.add_hook("subnets", "update", _on_update)
    plugin.add_dict_extender("subnets", _extend)
