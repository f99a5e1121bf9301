"""Auto-allocated topology ("get me a network"): the HTTP handlers and
hooks of quantum_ovs/api/definitions/auto_allocate.py.

Enabled by Neutron's switch, ``[DEFAULT] service_plugins = auto_allocate``
(with ``router``; both are the default here).

The first ``GET /v2.0/auto-allocated-topology/{project_id}`` makes, in one
transaction, what a project needs to boot an instance that reaches out: a
network, a subnet from each default subnet pool (IPv4, IPv6 or both) and
a router whose gateway is on the default external network, with an
interface on each subnet; the network's id is the answer, then and on
every later call.  The resources are made as the project's own (its
quotas count them; its requests may change or delete them) and through
the same handlers as the API's, but without the API's per-attribute
policy: the deployment's defaults decide what they are.  Whatever fails on
the way leaves nothing behind (Neutron makes them one by one and deletes
what it made; here the transaction does).  ``DELETE`` removes the router,
its interfaces on the network and the network, in one transaction too: a
network still in use (an instance's port) is a 409 and nothing goes.

``is_default`` on an external network marks the deployment's default (at
most one; 409 DefaultExternalNetworkExists otherwise).  It is kept with
the network's externality (external_networks.is_default): it goes when the
network stops being external, and the wildcard access_as_external policy
of the default network cannot be deleted (db/rbac.py,
network_keeps_wildcard).

Where it answers otherwise than Neutron, on purpose: the project's quotas
count what is made (Neutron's plugin calls skip them: 409 OverQuota here);
a DELETE with no topology is 204 whatever the deployment (Neutron's first
makes one through its GET, so it answers the GET's 409 where defaults are
missing); the policy is checked before anything is made, and its refusal
is the 403 it is everywhere here (Neutron makes the topology, then hides
it: 404); a router step refused for any reason of the deployment (a
NotFound included) is AutoAllocationFailure; a project id the API would
not take as a network's project_id is a 400 in the dry run and the real
call alike (Neutron's dry run does not look at it).
"""

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.api.definitions import auto_allocate as definition
from quantum_ovs.api.definitions.subnetpools import SubnetAllocationError
from quantum_ovs.api.wsgi import json_response
from quantum_ovs.db import models, query
from quantum_ovs.db.session import transaction_lock

DEFINITION = definition
SERVICE_PLUGIN = ("auto_allocate", "neutron.services.auto_allocate.plugin.Plugin")
IS_DEFAULT = definition.IS_DEFAULT

_NO_EXTERNAL = "No default router:external network"
_NO_POOLS = "No default subnetpools defined"
_NO_NETWORK = "Unable to provide project private network"
_NO_UPLINK = "Unable to provide external connectivity"


# ------------------------------------------------------------------ is_default
def default_external(s):
    """The id of the default external network, or None."""
    X = models.ExternalNetwork
    return s.execute(sa.select(X.network_id).where(X.is_default.is_(True))
                     .order_by(X.network_id).limit(1)).scalar()


def _set_default(s, net, value):
    if value:
        # (two admins making two networks the default at once: one waits
        # and sees the other's)
        transaction_lock(s, "default-external-network")
        other = default_external(s)
        if other is not None and other != net.id:
            raise definition.DefaultExternalNetworkExists(net_id=other)
    net.external.is_default = value


def _on_network_create(s, ctx, net, a):
    # (after the provider extension's hook made the network external)
    if a.get(IS_DEFAULT) and net.external is not None:
        _set_default(s, net, True)


def _on_network_update(s, ctx, net, a):
    # As Neutron: is_default on a network that is not external is ignored.
    if IS_DEFAULT in a and net.external is not None:
        _set_default(s, net, a[IS_DEFAULT])


def _extend_network(net, d):
    if net.external is not None:
        d[IS_DEFAULT] = net.external.is_default


def _is_default_filter(values):
    X = models.ExternalNetwork
    return query.flag_filter(
        models.Network.id.in_(sa.select(X.network_id).where(X.is_default.is_(True))), values)


def setup(plugin, conf):
    plugin.add_hook("networks", "create", _on_network_create)
    plugin.add_hook("networks", "update", _on_network_update)
    plugin.add_dict_extender("networks", _extend_network)
    plugin.add_filter("networks", IS_DEFAULT, _is_default_filter)


# ------------------------------------------------------------------ the topology
def _default_pools(s, plugin, ctx):
    """[(ip_version, pool id)] of the default subnet pools ``ctx`` sees
    (as Neutron: a default pool the project may not use is no default of
    its topology)."""
    P = models.SubnetPool
    q = sa.select(P.ip_version, P.id).where(P.is_default.is_(True))
    visible = plugin.collections["subnetpools"].visible(ctx)
    if visible is not None:
        q = q.where(visible)
    out = {}
    for version, pool_id in s.execute(q.order_by(P.ip_version, P.id)):
        out.setdefault(version, pool_id)
    return sorted(out.items())


def _refused(err):
    """A refusal of the request that made a resource of the topology (a
    missing or unusable default, an address space used up): the
    deployment's, not the caller's."""
    return isinstance(err, (exceptions.BadRequest, exceptions.NotFound,
                            SubnetAllocationError))


class Topologies:
    """Make, find and remove auto-allocated topologies (``api``: the
    app's API, whose controllers fill the defaults of what is made)."""

    def __init__(self, api):
        self.plugin = api.plugin
        self.controllers = api.controllers

    def _made(self, s, ctx, collection, body):
        handler = self.plugin.collections[collection]
        a = self.controllers[collection].filled(body)
        handler.check(a)
        return handler.create_all(s, ctx, [a])[0]

    def get(self, ctx, project):
        """The network id of ``project``'s topology, made if need be."""
        return self.plugin.db.write(self._get, ctx, project)

    def _get(self, s, ctx, project):
        T = models.AutoAllocatedTopology
        topo = s.get(T, project)
        if topo is not None:
            return topo.network_id
        external = default_external(s)
        if external is None:
            raise definition.AutoAllocationFailure(reason=_NO_EXTERNAL)
        pools = _default_pools(s, self.plugin, ctx)
        if not pools:
            raise definition.AutoAllocationFailure(reason=_NO_NETWORK)
        try:
            net = self._made(s, ctx, "networks", {
                "name": definition.NETWORK_NAME, "project_id": project,
                "admin_state_up": True, "shared": False})
            subnets = [self._made(s, ctx, "subnets", {
                "name": definition.SUBNET_NAME % version, "network_id": net.id,
                "project_id": project, "ip_version": version, "subnetpool_id": pool_id})
                for version, pool_id in pools]
        except exceptions.QuantumError as e:
            if not _refused(e):
                raise
            raise definition.AutoAllocationFailure(reason=_NO_NETWORK) from e
        try:
            router = self._made(s, ctx, "routers", {
                "name": definition.ROUTER_NAME, "project_id": project,
                "admin_state_up": True, "external_gateway_info": {"network_id": external}})
            routers = self.plugin.collections["routers"]
            for sub in subnets:
                routers.add_interface_in(s, ctx, router.id, {"subnet_id": sub.id})
        except exceptions.QuantumError as e:
            if not _refused(e):
                raise
            raise definition.AutoAllocationFailure(reason=_NO_UPLINK) from e
        # (a concurrent first call that saved its own first: the unique
        # key fails, the transaction is retried and finds that one)
        s.add(T(project_id=project, network_id=net.id, router_id=router.id))
        s.flush()
        return net.id

    def check(self, ctx, project):
        """The dry run: 409 naming the first default missing."""
        with self.plugin.db.reader() as s:
            if default_external(s) is None:
                raise definition.AutoAllocationFailure(reason=_NO_EXTERNAL)
            if not _default_pools(s, self.plugin, ctx):
                raise definition.AutoAllocationFailure(reason=_NO_POOLS)

    def delete(self, ctx, project):
        self.plugin.db.write(self._delete, ctx, project)

    def _delete(self, s, ctx, project):
        # Locked as read: a concurrent DELETE waits, then finds it gone
        # (204, nothing done), and a new topology cannot be recorded for
        # the project until this one's record is gone -- so what this
        # DELETE removes is the topology it read, never a newer one.
        topo = s.get(models.AutoAllocatedTopology, project, with_for_update=True)
        if topo is None:
            return
        network_id, router_id = topo.network_id, topo.router_id
        s.delete(topo)
        s.flush()
        routers = self.plugin.collections["routers"]
        if router_id is not None and s.get(models.Router, router_id) is not None:
            S = models.Subnet
            for sub_id in s.execute(sa.select(S.id).where(S.network_id == network_id)
                                    .order_by(S.id)).scalars().all():
                try:
                    routers.remove_interface_in(s, ctx, router_id, {"subnet_id": sub_id})
                except exceptions.NotFound:
                    pass  # (removed by hand)
            routers.delete_row(s, ctx, routers.row(s, ctx, router_id, lock=True))
        nets = self.plugin.collections["networks"]
        if s.get(models.Network, network_id) is not None:
            nets.delete_row(s, ctx, nets.row(s, ctx, network_id, lock=True))


# ------------------------------------------------------------------ HTTP
def routes(api):
    policy = api.policy
    topologies = Topologies(api)
    # The project id as the API takes a network's project_id (length,
    # NUL): an id the topology's network could not be made for is the
    # caller's error (400) in the dry run too, not a 409 of the
    # deployment from the real call.
    valid_project = api.schema.resources["networks"]["project_id"].validate

    def project_of(ctx, project_id, action):
        # "None": what a client sends for "the caller's" (Neutron's word).
        project = ctx.project_id if project_id == "None" else project_id
        if not project:
            raise exceptions.BadRequest(resource="auto_allocate",
                                        msg="A project is required")
        valid_project(project, "project_id")
        if not ctx.is_admin and project != ctx.project_id:
            raise exceptions.NotAuthorized()
        policy.enforce(action, ctx, {"project_id": project, "tenant_id": project})
        return project

    def answer(id_, project):
        return json_response({definition.RESOURCE: {
            "id": id_, "project_id": project, "tenant_id": project}})

    def show(req, ctx, project_id, **kw):
        project = project_of(ctx, project_id, "get_auto_allocated_topology")
        fields = [f for f in req.GET.getall("fields") if f]
        if definition.DRY_RUN in fields:
            topologies.check(ctx, project)
            return answer("dry-run=pass", project)
        if fields:
            raise exceptions.BadRequest(resource="auto_allocate", msg="Unrecognized field")
        return answer(topologies.get(ctx, project), project)

    def delete(req, ctx, project_id, **kw):
        project = project_of(ctx, project_id, "delete_auto_allocated_topology")
        topologies.delete(ctx, project)
        return json_response(None, status=204)

    api.add_route(definition.PATH + "/{project_id}{fmt:(\\.json)?}",
                  {"GET": show, "DELETE": delete})
