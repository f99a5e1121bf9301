"""Routers: storage, hooks and the member actions of the routers contract
(``quantum_ovs/api/definitions/l3.py``).

Enabled by Neutron's switch, ``[DEFAULT] service_plugins = router``.

A router's interfaces are ports (``device_owner`` ``network:router_interface``,
``device_id`` the router's id) listed in ``routerports`` with their type;
one made from a subnet holds the subnet's gateway address; a further IPv6
subnet of a network the router has an IPv6 port on joins that port, and
removing it by subnet takes that prefix alone (Neutron's multi-prefix
ports).  Such a port is
the router's: it cannot be deleted, nor its owner changed, through the
ports API (409), and its subnet cannot be deleted while it is attached
(SubnetInUse).  Extra routes need a next hop on a connected subnet.
An interface's subnets are none the router has an address on and overlap
none it is connected to, every subnet of its gateway network included; a
new gateway network's subnets overlap no interface's; an update of an
interface port's fixed IPs is held to the same (400, Neutron's words).

The external gateway is a port on the external network
(``network:router_gateway``, no project's, guarded as interfaces are),
``enable_snat`` (ext-gw-mode; default ``[DEFAULT] enable_snat_by_default``),
a tunnel key for the SNAT redirect and an ordered list of gateway hosts
(quantum_ovs/db/gateways.py).  A gateway or an interface that floating IPs
depend on cannot be removed (409, as Neutron).  A subnet added to an
external network gives the gateway ports there an address on it, by
Neutron's rule (``Routers.address_gateways``); a SLAAC one goes with its
subnet (the router's change is recorded either way).

An interface port is bound to no host (the router is everywhere its
networks are): it is ACTIVE from its attachment, whatever the router's
admin state, as ML2/OVN shows logical router ports (clients such as
Tempest wait for it before removing an interface).

Every change of a router is recorded in the change log once per network
it touches (its interfaces' networks and its gateway network), so that the
hosts of those networks learn of it; its interface ports are recorded as
ports.
"""

import ipaddress
import uuid

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api.controller import Controller
from quantum_ovs.api.definitions import l3 as definition
from quantum_ovs.api.definitions.floatingips import (
    RouterExternalGatewayInUseByFloatingIp,
    RouterInterfaceInUseByFloatingIP,
)
from quantum_ovs.api.definitions.provider import NoNetworkAvailable
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import addresses, changelog, gateways, ipam, models, rbac
from quantum_ovs.db.resource import Collection, hold
from quantum_ovs.db.session import is_sqlite
from quantum_ovs.timeutils import api_time as _ts

DEFINITION = definition
# The names of [DEFAULT] service_plugins that enable it (Neutron's entry
# point and class).
SERVICE_PLUGIN = ("router", "neutron.services.l3_router.l3_router_plugin.L3RouterPlugin")

OPTS = [("quotas", [cfg.IntOpt("quota_router", default=10,
                               help="Number of routers allowed per project; -1 for "
                                    "unlimited."),
                    cfg.IntOpt("quota_router_route", default=definition.DEFAULT_ROUTES,
                               help="Number of extra routes one router may have (per "
                                    "project: a router's owner's limit); -1 for "
                                    "unlimited.")]),
        ("DEFAULT", [cfg.BoolOpt("enable_snat_by_default", default=True,
                                 help="The enable_snat of a router's external gateway "
                                      "when the request does not give it.")])]

ROUTER = definition.ROUTER
GATEWAY_OWNER = definition.GATEWAY_OWNER
ROUTERS = definition.ROUTERS
INTERFACE = definition.INTERFACE_OWNER
bad_router = definition.bad_router
INTERFACE_STATUS = "ACTIVE"


# ------------------------------------------------------------------ the core's storage
# Every call this module makes into the core plugin's storage, in one
# place, on issue 12's interface: changelog.record and bump,
# addresses.allocate, release and generate_mac, plugin.row, run_hooks and
# to_dict, the ports handler's _new_port.
def _row(plugin, s, ctx, collection, id_, lock=False, bare=False, share=False):
    return plugin.row(s, ctx, collection, id_, lock=lock, bare=bare, share=share)


def _record(plugin, s, resource, obj, op, network_id=None):
    changelog.record(s, resource, obj, op, network_id)


def _bump(plugin, obj):
    changelog.bump(obj)


def _new_port(plugin, s, ctx, a, cache):
    return plugin.collections["ports"]._new_port(s, ctx, a, cache)


def _allocate(plugin, s, net_id, port, requested, device_owner, subnets=None, auto=False):
    return addresses.allocate(s, net_id, port, requested, device_owner, subnets, auto=auto)


def _release(plugin, s, network_id, held):
    addresses.release(s, network_id, held)


def _run_hooks(plugin, collection, phase, *args):
    plugin.run_hooks(collection, phase, *args)


def _to_dict(plugin, collection, obj):
    return plugin.to_dict(collection, obj)


def _generate_mac(plugin, s, network_id):
    return addresses.generate_mac(s, network_id, plugin.collections["ports"].base_mac,
                                  plugin.conf.mac_generation_retries)


# ------------------------------------------------------------------ dicts
def router_dict(r):
    gw = None
    if r.gw_network_id is not None:
        ips = r.gw_port.fixed_ips if r.gw_port is not None else ()
        gw = {"network_id": r.gw_network_id, "enable_snat": r.enable_snat,
              "external_fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                     for a in ips]}
    return {
        "id": r.id, "name": r.name, "description": r.description,
        "project_id": r.project_id, "tenant_id": r.project_id,
        "admin_state_up": r.admin_state_up, "status": r.status,
        "external_gateway_info": gw,
        "routes": [{"destination": x.destination, "nexthop": x.nexthop} for x in r.routes],
        "revision_number": r.revision_number, "created_at": _ts(r.created_at),
        "updated_at": _ts(r.updated_at), "tags": [t.tag for t in r.tags],
    }


# ------------------------------------------------------------------ storage
def _check_address_mode(subnets):
    """An IPv6 subnet with an address mode and no RA mode has its
    advertisements from a router outside: no router of ours serves it (as
    Neutron's _validate_subnet_address_mode)."""
    for sub in subnets:
        if sub.ip_version == 6 and sub.ipv6_address_mode and not sub.ipv6_ra_mode:
            raise bad_router(f"IPv6 subnet {sub.id} configured to receive RAs from an "
                             "external router cannot be added to a router")


def _check_in_pools(ctx, port, subnets):
    """A port's address outside the allocation pools of another project's
    subnet (its owner's reserved addresses, or one an administrator gave)
    does not become a router interface of the caller's: 400, as in Neutron
    (LP 1757482); the subnet's owner and an administrator may."""
    for a, sub in zip(port.fixed_ips, subnets):
        if sub.project_id == ctx.project_id:
            continue
        if not ipam.in_pools(sub, a.ip_address):
            raise bad_router(f"Cannot add interface to router because the address "
                             f"{a.ip_address} of port {port.id} is outside the allocation "
                             f"pools of subnet {sub.id}, which is not owned by the project "
                             "making the request")


class Routers(Collection):
    collection = ROUTERS
    resource = ROUTER
    model = models.Router
    not_found = (definition.RouterNotFound, "router_id")

    def to_dict(self, obj):
        return router_dict(obj)

    # -- the change log
    def networks_of(self, s, router):
        """The networks a router touches: its ports' and its gateway's."""
        P, RP = models.Port, models.RouterPort
        nets = set(s.execute(sa.select(P.network_id).join(RP, RP.port_id == P.id)
                             .where(RP.router_id == router.id)).scalars())
        if router.gw_network_id:
            nets.add(router.gw_network_id)
        return nets

    def record(self, s, router, op, extra_networks=(), hosts=()):
        """One change row per network the router touches (and
        ``extra_networks``), and one per gateway host in ``hosts`` (those
        whose assignment changed: their views gain or lose the router)."""
        for net_id in sorted(self.networks_of(s, router) | set(extra_networks)):
            _record(self.plugin, s, ROUTER, router, op, net_id)
        for h in sorted(set(hosts)):
            changelog.record(s, ROUTER, router, op, None, host=h)

    # -- create, update, delete
    def create(self, s, ctx, a):
        router = models.Router(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
            name=a["name"], description=a["description"],
            admin_state_up=a["admin_state_up"], status="ACTIVE",
            enable_snat=self.plugin.conf.enable_snat_by_default, revision_number=0)
        router.tags = []
        router.routes = []
        router.attached = []
        s.add(router)
        s.flush()
        hosts = self._set_gateway(s, ctx, router, a.get("external_gateway_info"))
        s.flush()
        if router.gw_network_id:
            _record(self.plugin, s, ROUTER, router, "create", router.gw_network_id)
        for h in hosts:
            changelog.record(s, ROUTER, router, "create", None, host=h)
        return router

    def update(self, s, ctx, router, a):
        before = self.networks_of(s, router)
        for k in ("name", "description", "admin_state_up"):
            if k in a:
                setattr(router, k, a[k])

        hosts = ()
        if "external_gateway_info" in a:
            hosts = self._set_gateway(s, ctx, router, a["external_gateway_info"])
        if "routes" in a:
            self.set_routes(s, router, a["routes"])
        s.flush()
        if changelog.seen_by_agents(a):
            self.record(s, router, "update", before, hosts)

    def delete(self, s, ctx, router):
        RP = models.RouterPort
        if s.execute(sa.select(RP.port_id).where(RP.router_id == router.id,
                                                 RP.port_type == INTERFACE)).first():
            raise definition.RouterInUse(router_id=router.id)
        hosts = gateways.hosts_of(s, router.id)
        self.record(s, router, "delete", hosts=hosts)
        self._set_gateway(s, ctx, router, None)
        s.delete(router)

    # -- the gateway: a port on the external network (what it does in the
    # data plane comes with external connectivity)
    def _check_fips(self, s, router, net_id):
        """409 when floating IPs of the router need its gateway on its
        current network and it is to be removed or moved to ``net_id``."""
        if router.gw_network_id is None or router.gw_network_id == net_id:
            return
        F = models.FloatingIP
        if s.execute(sa.select(F.id).where(F.router_id == router.id,
                                           F.floating_network_id == router.gw_network_id)
                     ).first():
            raise RouterExternalGatewayInUseByFloatingIp(router_id=router.id,
                                                         net_id=router.gw_network_id)

    def _set_gateway(self, s, ctx, router, info):
        """Set (``info``) or remove (None) the router's gateway; returns the
        gateway hosts whose assignment changed (old and new)."""
        old = s.get(models.Port, router.gw_port_id) if router.gw_port_id else None
        if info is None:
            self._check_fips(s, router, None)
            if old is not None:
                self._drop_gateway_port(s, ctx, router, old)
            gone = gateways.clear(s, router.id)
            gateways.free_redirect_key(s, router.redirect_key)
            router.gw_network_id, router.gw_port_id, router.redirect_key = None, None, None
            router.enable_snat = self.plugin.conf.enable_snat_by_default
            return gone
        # (held: turning it internal waits for this write, or this for it)
        net = _row(self.plugin, s, ctx, "networks", info["network_id"], bare=True, share=True)
        if s.get(models.ExternalNetwork, net.id) is None:
            raise bad_router(f"Network {net.id} is not an external network")
        subnets = {x.id: x for x in s.execute(sa.select(models.Subnet).where(
            models.Subnet.network_id == net.id)).scalars()}
        fixed = info.get("external_fixed_ips")
        for f in fixed or ():
            sid, ip = f.get("subnet_id"), f.get("ip_address")
            if sid is not None and sid not in subnets:
                raise bad_router(f"Subnet {sid} is not a subnet of the external network "
                                 f"{net.id}")
            if ip is not None and not any(
                    ipaddress.ip_address(ip) in ipaddress.ip_network(x.cidr)
                    for x in subnets.values() if sid in (None, x.id)):
                raise exceptions.InvalidIpForNetwork(ip_address=ip)
        self._check_fips(s, router, net.id)
        if old is None or old.network_id != net.id:
            # A new gateway network: none of its subnets may be one of the
            # router's interfaces' or overlap one (Neutron checks this
            # when it makes the gateway port, not when its addresses change).
            self._check_new_subnets(s, router, list(subnets.values()),
                                    skip_port=old.id if old is not None else None)
        router.enable_snat = info.get("enable_snat", self.plugin.conf.enable_snat_by_default)
        if old is not None and old.network_id == net.id:
            # (a gateway set before 0008_floatingips may have none: the
            # migration 0020 gives it one; so does setting it again)
            self._redirect_key(s, router, net.id)
        if old is not None and old.network_id == net.id and not fixed:
            return ()  # the same gateway (SNAT aside)
        if old is not None and old.network_id == net.id:
            # Only its addresses change: the same port takes them (its id
            # and MAC kept), as Neutron's _update_current_gw_port.
            addresses.reallocate(s, old, fixed)
            if not old.fixed_ips:
                raise exceptions.IpAddressGenerationFailure(net_id=net.id)
            _bump(self.plugin, old)
            s.flush()
            _record(self.plugin, s, "port", old, "update", net.id)
            s.expire(router, ["gw_port"])
            return ()
        if old is not None:
            self._drop_gateway_port(s, ctx, router, old)
        port = self._new_gateway_port(s, router, net, fixed or None, bool(subnets))
        router.gw_network_id, router.gw_port_id = net.id, port.id
        self._redirect_key(s, router, net.id)
        s.flush()
        s.expire(router, ["gw_port"])
        before = gateways.hosts_of(s, router.id)
        after = gateways.assign(s, router.id, self.plugin.agents.down_time)
        return set(before) ^ set(after) if before != after else ()

    def _redirect_key(self, s, router, net_id):
        """The gateway's SNAT redirect key, allocated if it has none."""
        if router.redirect_key is None:
            router.redirect_key = gateways.allocate_redirect_key(
                s, self.plugin.segments, net_id)
            if router.redirect_key is None:
                raise NoNetworkAvailable()

    def _new_gateway_port(self, s, router, net, requested, addressed=True):
        """The gateway port: no project's (as in Neutron), no security
        groups, no quota; on the external network's subnets, or, on an
        external network without any (``addressed`` false), without an
        address, as Neutron makes it (no NAT, no floating IPs through it
        until it has one)."""
        plugin = self.plugin
        port = models.Port(
            id=str(uuid.uuid4()), project_id="", name="", description="",
            network_id=net.id, mac_address=_generate_mac(plugin, s, net.id),
            admin_state_up=True, status="DOWN", device_id=router.id,
            device_owner=definition.GATEWAY_OWNER, port_security_enabled=False,
            revision_number=0)
        port.allowed_address_pairs, port.tags, port.fixed_ips = [], [], []
        s.add(port)
        s.flush()
        # (given addresses: its EUI-64 ones on the automatic subnets too,
        # as any port's, Neutron's _get_auto_address_ips)
        allocs = _allocate(plugin, s, net.id, port, requested, definition.GATEWAY_OWNER,
                           auto=True) if addressed else []
        if addressed and not allocs:
            raise exceptions.IpAddressGenerationFailure(net_id=net.id)
        port.fixed_ips = [models.IPAllocation(subnet_id=x.id, ip_address=ip,
                                              network_id=net.id, order=i)
                          for i, (x, ip) in enumerate(allocs)]
        s.add(models.RouterPort(router_id=router.id, port_id=port.id,
                                port_type=definition.GATEWAY_OWNER, order=0))
        s.flush()
        _record(plugin, s, "port", port, "create", net.id)
        return port

    def address_gateways(self, s, sub, kinds):
        """A new subnet of an external network (service types ``kinds``)
        gives the routers' gateway ports there an address on it, as
        Neutron's update_router_gw_ports: an IPv6 subnet a gateway may use,
        an IPv4 one only when its service types name gateways; a gateway
        that has two stateful addresses (not SLAAC / DHCPv6-stateless), or
        one of the subnet's version, is left as it is, and so are those the
        subnet's pools have no address left for."""
        if GATEWAY_OWNER not in kinds and (sub.ip_version == 4 or kinds):
            return
        P, S = models.Port, models.Subnet
        auto = set(s.execute(sa.select(S.id).where(
            S.network_id == sub.network_id, addresses.automatic_clause(S))).scalars())
        q = sa.select(P).where(P.network_id == sub.network_id,
                               P.device_owner == GATEWAY_OWNER).order_by(P.id)
        if not is_sqlite(s):
            # (locked: a gateway cleared meanwhile is waited for, then gone)
            q = q.with_for_update()
        for port in s.execute(q).scalars().all():
            stateful = [x.ip_address for x in port.fixed_ips
                        if x.subnet_id not in auto and x.subnet_id != sub.id]
            if len(stateful) > 1 or any(
                    ipaddress.ip_address(ip).version == sub.ip_version for ip in stateful):
                continue
            try:
                (_, ip), = _allocate(self.plugin, s, sub.network_id, port,
                                     [{"subnet_id": sub.id}], GATEWAY_OWNER, [sub])
            except exceptions.IpAddressGenerationFailure:
                break  # (the pools are full: the later gateways go without)
            addresses.append(port, sub.id, ip)  # (flushed by the subnet create)
            _bump(self.plugin, port)
            _record(self.plugin, s, "port", port, "update", port.network_id)
            # The router's change recorded, its row not written (no
            # revision bump: a router update locks the router, then holds
            # this network, which this subnet create has locked: review 19)
            router = s.get(models.Router, port.device_id)
            if router is not None and router.gw_port_id == port.id:
                self.record(s, router, "update")

    def _drop_gateway_port(self, s, ctx, router, port):
        s.execute(sa.delete(models.RouterPort).where(models.RouterPort.port_id == port.id))
        s.expire(router, ["attached"])  # (or deleting the router deletes it again)
        router.gw_port_id = None
        s.flush()
        _delete_port(self.plugin, s, ctx, port)

    # -- routes
    def _connected(self, s, router):
        """[(subnet network, the router's address on it)] of its interfaces."""
        A, S, RP = models.IPAllocation, models.Subnet, models.RouterPort
        rows = s.execute(sa.select(S.cidr, A.ip_address, S.id)
                         .join(A, A.subnet_id == S.id)
                         .join(RP, RP.port_id == A.port_id)
                         .where(RP.router_id == router.id, RP.port_type == INTERFACE)).all()
        return [(ipaddress.ip_network(c), ipaddress.ip_address(ip), sid)
                for c, ip, sid in rows]

    def check_routes(self, s, router, routes, connected=None):
        connected = self._connected(s, router) if connected is None else connected
        own = {ip for _, ip, _ in connected}
        for r in routes:
            hop = ipaddress.ip_address(r["nexthop"])
            if hop in own:
                raise definition.InvalidRoutes(routes=routes,
                                               reason="the nexthop is used by router")
            if not any(hop in net for net, _, _ in connected):
                raise definition.InvalidRoutes(
                    routes=routes, reason="the nexthop is not connected with router")

    def set_routes(self, s, router, routes):
        wanted = {(r["destination"], r["nexthop"]) for r in routes}
        self.check_routes(s, router, routes)
        quotas = getattr(self.plugin, "quotas", None)
        if quotas is not None and len(wanted) > len(router.routes):
            # (Neutron 2026.2's router_route quota, which replaced its
            # max_routes: a limit per router, of the router's project;
            # only a router gaining routes meets it, so one past a
            # lowered limit may still shed them)
            quotas.check_limit(s, router.project_id, "router_route", len(wanted))
        router.routes = [x for x in router.routes if (x.destination, x.nexthop) in wanted]
        have = {(x.destination, x.nexthop) for x in router.routes}
        s.flush()
        for d, n in sorted(wanted - have):
            router.routes.append(models.RouterRoute(router_id=router.id, destination=d,
                                                    nexthop=n))
        s.flush()
        s.expire(router, ["routes"])

    # -- interfaces
    def _interfaces(self, s, router):
        """{port_id: [(subnet, ip)]} of the router's interface ports."""
        A, RP = models.IPAllocation, models.RouterPort
        out = {}
        for port_id, sid, ip in s.execute(
                sa.select(RP.port_id, A.subnet_id, A.ip_address)
                .join(A, A.port_id == RP.port_id, isouter=True)
                .where(RP.router_id == router.id, RP.port_type == INTERFACE)):
            out.setdefault(port_id, [])
            if sid is not None:
                out[port_id].append((s.get(models.Subnet, sid), ip))
        return out

    def _subnet_conflict(self, s, router, subnets, skip_port=None):
        """The first reason (new subnet, message) why the router cannot
        take ``subnets``, or None: one it has an address on already, or one
        overlapping a subnet it is connected to, as Neutron's
        _check_for_dup_router_subnets sees them: its interfaces' subnets
        and, once its gateway port has an address, every subnet of the
        gateway's network.  ``skip_port``: a port of the router left out
        (its gateway being replaced, an interface being updated)."""
        A, P, RP, S = models.IPAllocation, models.Port, models.RouterPort, models.Subnet
        new_ids = {x.id for x in subnets}
        connected = {}  # subnet id -> None, in the order met
        for port_id, port_type, sid, net_id in s.execute(
                sa.select(RP.port_id, RP.port_type, A.subnet_id, P.network_id)
                .join(A, A.port_id == RP.port_id).join(P, P.id == RP.port_id)
                .where(RP.router_id == router.id)
                .order_by(RP.order, RP.port_id, A.order)):
            if port_id == skip_port:
                continue
            if sid in new_ids:
                return (next(x for x in subnets if x.id == sid),
                        f"Router already has a port on subnet {sid}")
            if port_type == definition.GATEWAY_OWNER:
                for gsid in s.execute(sa.select(S.id).where(S.network_id == net_id)
                                      .order_by(S.id)).scalars():
                    connected.setdefault(gsid)
            else:
                connected.setdefault(sid)
        for sid in connected:
            old = s.get(S, sid)
            for new in subnets:
                if ipaddress.ip_network(old.cidr).overlaps(ipaddress.ip_network(new.cidr)):
                    return new, (f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr "
                                 f"{old.cidr} of subnet {old.id}")
        return None

    def _check_new_subnets(self, s, router, subnets, skip_port=None):
        """400 when a subnet is on the router already or overlaps one of
        its subnets, its gateway network's included (Neutron's words)."""
        conflict = self._subnet_conflict(s, router, subnets, skip_port)
        if conflict is not None:
            raise bad_router(conflict[1])

    def check_interface_port(self, s, router_id, port, v4_before):
        """An update of the fixed IPs of the router's interface ``port``
        (the hook sees them as they now are; ``v4_before``: its IPv4
        (subnet, address) pairs before).  As Neutron's router plugin, any
        change of its IPv4 addresses is refused (400 "IP updates for port
        ... are not allowed"); an IPv6 address on a subnet the router has
        or overlaps (Neutron lets it be) is refused as add_router_interface
        refuses it."""
        router = s.get(models.Router, router_id)
        subnets = [s.get(models.Subnet, x.subnet_id) for x in port.fixed_ips]
        refused = exceptions.BadRequest(
            resource="ports", msg=f"IP updates for port {port.id} are not allowed")
        if _v4_pairs(port) != v4_before:
            raise refused
        # (its IPv4 subnets are the ones it had: only its IPv6 ones are checked)
        conflict = self._subnet_conflict(s, router, [x for x in subnets if x.ip_version == 6],
                                         skip_port=port.id)
        if conflict is not None:
            raise bad_router(conflict[1])

    def _attach(self, s, router, port):
        RP = models.RouterPort
        last = s.execute(sa.select(sa.func.max(RP.order)).where(
            RP.router_id == router.id)).scalar()
        s.add(RP(router_id=router.id, port_id=port.id, port_type=INTERFACE,
                 order=(last or 0) + 1))

    def add_interface(self, ctx, router_id, info):
        return self.plugin.db.write(lambda s: self.add_interface_in(s, ctx, router_id, info))

    def add_interface_in(self, s, ctx, router_id, info):
        """add_interface, inside the caller's transaction."""
        plugin = self.plugin
        router = _row(plugin, s, ctx, ROUTERS, router_id, lock=True)
        if "subnet_id" in info:
            sub = _row(plugin, s, ctx, "subnets", info["subnet_id"])
            if not sub.gateway_ip:
                raise bad_router("Subnet for router interface must have a gateway IP")
            # (the network held before its policies are read: a policy
            # deleted meanwhile waits, then finds this interface in use)
            hold(s, models.Network, [sub.network_id])
            if not ctx.is_admin and sub.project_id != ctx.project_id and \
                    ctx.project_id not in rbac.targets(s, "network", sub.network_id,
                                                       rbac.SHARED):
                # Another project's subnet, seen through the network being
                # shared with everyone (shared, or a '*' policy) or external:
                # the router would take its gateway address and the traffic
                # of everyone on it. Only a policy naming the caller's
                # project lets it in, as in Neutron (LP 1757482, 1975603).
                raise bad_router(f"Cannot add interface to router because subnet {sub.id} "
                                 "is not owned by project making the request")
            _check_address_mode([sub])
            self._check_new_subnets(s, router, [sub])
            subnets = [sub]
            port = self._ipv6_port_on(s, router, sub.network_id) \
                if sub.ip_version == 6 else None
            if port is not None:
                # Another IPv6 prefix of a network the router has an IPv6
                # port on joins that port, as Neutron's
                # _add_interface_by_subnet (one port per network and family)
                self._add_prefix(s, port, sub)
                _bump(plugin, router)
                s.flush()
                self.record(s, router, "update")
                return _interface_info(router, port, subnets)
            port = self._new_interface_port(s, ctx, router, sub)
        else:
            port = _row(plugin, s, ctx, "ports", info["port_id"], lock=True)
            if not ctx.is_admin and port.project_id != ctx.project_id:
                # (another project's port on the caller's network)
                raise exceptions.PortNotFound(port_id=port.id)
            if port.device_id:
                # (only the device: a port made beforehand with an owner
                # and no device is taken, its owner set, as Neutron's
                # _check_router_port)
                raise exceptions.PortInUse(port_id=port.id, net_id=port.network_id,
                                           device_id=port.device_id)
            if not port.fixed_ips:
                raise bad_router("Router port must have at least one fixed IP")
            subnets = [s.get(models.Subnet, a.subnet_id) for a in port.fixed_ips]
            if sum(1 for x in subnets if x.ip_version == 4) > 1:
                raise bad_router("Cannot have multiple IPv4 subnets on router port")
            _check_address_mode(subnets)
            if not ctx.is_admin:
                _check_in_pools(ctx, port, subnets)
            self._check_new_subnets(s, router, subnets)
            port.device_id, port.device_owner = router.id, INTERFACE
            port.status = INTERFACE_STATUS
            _bump(plugin, port)
            _record(plugin, s, "port", port, "update", port.network_id)
        self._attach(s, router, port)
        _bump(plugin, router)
        s.flush()
        self.record(s, router, "update")
        return _interface_info(router, port, subnets)

    def _ipv6_port_on(self, s, router, network_id):
        """The router's interface port on ``network_id`` with an IPv6
        address, or None."""
        for port_id, entries in self._interfaces(s, router).items():
            if any(x.ip_version == 6 and x.network_id == network_id for x, _ in entries):
                return _row(self.plugin, s, None, "ports", port_id, lock=True)
        return None

    def _add_prefix(self, s, port, sub):
        (_, ip), = _allocate(self.plugin, s, sub.network_id, port,
                             [{"subnet_id": sub.id, "ip_address": sub.gateway_ip}],
                             INTERFACE, [sub])
        addresses.append(port, sub.id, ip)
        _bump(self.plugin, port)
        s.flush()
        _record(self.plugin, s, "port", port, "update", port.network_id)

    def _new_interface_port(self, s, ctx, router, sub):
        plugin = self.plugin
        a = {"project_id": router.project_id, "name": "", "description": "",
             "network_id": sub.network_id, "admin_state_up": True, "device_id": router.id,
             "device_owner": INTERFACE, "mac_address": None,
             "fixed_ips": [{"subnet_id": sub.id, "ip_address": sub.gateway_ip}],
             "allowed_address_pairs": []}
        port = _new_port(plugin, s, None, a, {})
        port.status = INTERFACE_STATUS
        allocs = _allocate(plugin, s, sub.network_id, port, a["fixed_ips"], INTERFACE)
        port.fixed_ips = [models.IPAllocation(subnet_id=x.id, ip_address=ip,
                                              network_id=port.network_id, order=i)
                          for i, (x, ip) in enumerate(allocs)]
        s.flush()
        _record(plugin, s, "port", port, "create", port.network_id)
        return port

    def remove_interface(self, ctx, router_id, info):
        return self.plugin.db.write(
            lambda s: self.remove_interface_in(s, ctx, router_id, info))

    def remove_interface_in(self, s, ctx, router_id, info):
        """remove_interface, inside the caller's transaction."""
        plugin = self.plugin
        router = _row(plugin, s, ctx, ROUTERS, router_id, lock=True)
        ifaces = self._interfaces(s, router)
        if "port_id" in info:
            port_id = info["port_id"]
            if port_id not in ifaces:
                raise definition.RouterInterfaceNotFound(router_id=router.id,
                                                         port_id=port_id)
            if "subnet_id" in info and info["subnet_id"] not in {
                    x.id for x, _ in ifaces[port_id]}:
                # (the port is the interface named: a request that does
                # not match it, a 400 as Neutron's _remove_interface_by_port)
                raise definition.SubnetMismatchForPort(port_id=port_id,
                                                       subnet_id=info["subnet_id"])
        else:
            port_id = next((p for p, entries in ifaces.items()
                            if info["subnet_id"] in {x.id for x, _ in entries}), None)
            if port_id is None:
                # (a subnet the caller cannot see is no interface either)
                raise definition.RouterInterfaceNotFoundForSubnet(
                    router_id=router.id, subnet_id=info["subnet_id"])
        leaving = ifaces[port_id]
        # By subnet, from a port with other prefixes too: that prefix
        # alone leaves, the port stays (Neutron's _remove_interface_by_subnet).
        one_prefix = "port_id" not in info and len(leaving) > 1
        if one_prefix:
            leaving = [x for x in leaving if x[0].id == info["subnet_id"]]
        self._check_interface_fips(s, router, leaving)
        remaining = [(ipaddress.ip_network(x.cidr), ipaddress.ip_address(ip), x.id)
                     for p, entries in ifaces.items()
                     for x, ip in entries if (x, ip) not in leaving]
        for r in router.routes:
            hop = ipaddress.ip_address(r.nexthop)
            if not any(hop in net for net, _, _ in remaining):
                sid = next((x.id for x, _ in leaving
                            if hop in ipaddress.ip_network(x.cidr)), None)
                if sid is not None:
                    raise definition.RouterInterfaceInUseByRoute(router_id=router.id,
                                                                 subnet_id=sid)
        port = _row(plugin, s, None, "ports", port_id, lock=True)
        out = _interface_info(router, port, [x for x, _ in leaving])
        if one_prefix:
            held = [(a.subnet_id, a.ip_address) for a in port.fixed_ips
                    if a.subnet_id == info["subnet_id"]]
            port.fixed_ips = [a for a in port.fixed_ips if a.subnet_id != info["subnet_id"]]
            _bump(plugin, port)
            _bump(plugin, router)
            s.flush()
            _release(plugin, s, port.network_id, held)
            _record(plugin, s, "port", port, "update", port.network_id)
            self.record(s, router, "update")
            return out
        s.execute(sa.delete(models.RouterPort).where(
            models.RouterPort.port_id == port_id))
        s.flush()
        s.expire(router, ["attached"])  # (a delete later in this transaction)
        _bump(plugin, router)
        self.record(s, router, "update", {port.network_id})
        _delete_port(plugin, s, ctx, port)
        return out

    def _check_interface_fips(self, s, router, leaving):
        """409 when a floating IP (or a port forwarding) of the router
        translates to an address of a subnet whose interface is leaving."""
        F, PF = models.FloatingIP, models.PortForwarding
        used = set(s.execute(sa.select(F.fixed_ip_address).where(
            F.router_id == router.id, F.fixed_ip_address.is_not(None))).scalars())
        used |= set(s.execute(sa.select(PF.internal_ip_address).join(
            F, F.id == PF.floatingip_id).where(F.router_id == router.id)).scalars())
        for sub, _ip in leaving:
            cidr = ipaddress.ip_network(sub.cidr)
            if any(ipaddress.ip_address(x) in cidr for x in used):
                raise RouterInterfaceInUseByFloatingIP(router_id=router.id,
                                                       subnet_id=sub.id)

    def change_routes(self, ctx, router_id, routes, add):
        plugin = self.plugin

        def txn(s):
            router = _row(plugin, s, ctx, ROUTERS, router_id, lock=True)
            have = [{"destination": x.destination, "nexthop": x.nexthop}
                    for x in router.routes]
            if add:
                self.check_routes(s, router, routes)
                wanted = have + [r for r in routes if r not in have]
            else:
                wanted = [r for r in have if r not in routes]
            self.set_routes(s, router, wanted)
            _bump(plugin, router)
            s.flush()
            self.record(s, router, "update")
            return _to_dict(plugin, ROUTERS, router)
        return plugin.db.write(txn)


def _interface_info(router, port, subnets):
    return {"id": router.id, "tenant_id": router.project_id,
            "project_id": router.project_id, "port_id": port.id,
            "network_id": port.network_id,
            "subnet_id": subnets[0].id if subnets else None,
            "subnet_ids": [x.id for x in subnets]}


def _delete_port(plugin, s, ctx, port):
    """What delete_port does, inside the caller's transaction."""
    held = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
    _run_hooks(plugin, "ports", "delete", s, ctx, port, None)
    _record(plugin, s, "port", port, "delete", port.network_id)
    s.delete(port)
    s.flush()
    _release(plugin, s, port.network_id, held)


# ------------------------------------------------------------------ hooks
# Session.info key: {port id: its IPv4 (subnet, address) pairs} from
# before a port update that names fixed_ips, to the update hook.
_V4_BEFORE = "l3.interface_v4_before"


def _v4_pairs(port):
    return frozenset((x.subnet_id, x.ip_address) for x in port.fixed_ips
                     if ":" not in x.ip_address)


def _router_port(s, port_id):
    RP = models.RouterPort
    return s.execute(sa.select(RP).where(RP.port_id == port_id)).scalars().first()


def setup(plugin, conf):
    routers = Routers(plugin)
    plugin.register(routers)

    quotas = getattr(plugin, "quotas", None)
    if quotas is not None and hasattr(quotas, "add_resource"):
        quotas.add_resource(ROUTER, ROUTERS, models.Router)
        quotas.add_limit("router_route")

    def before_port_update(s, ctx, port, a):
        if "fixed_ips" in a:  # (an interface port's IPv4 addresses, for the check below)
            s.info.setdefault(_V4_BEFORE, {})[port.id] = _v4_pairs(port)

    def on_port_update(s, ctx, port, a):
        v4_before = s.info.get(_V4_BEFORE, {}).pop(port.id, None)
        rp = _router_port(s, port.id)
        if rp is None:
            return
        if ("device_owner" in a and a["device_owner"] != rp.port_type) or \
                ("device_id" in a and a["device_id"] != rp.router_id):
            raise definition.RouterPortOwnerChange(port_id=port.id, router_id=rp.router_id)
        if "fixed_ips" in a and rp.port_type == INTERFACE:
            routers.check_interface_port(s, rp.router_id, port, v4_before)

    def on_port_delete(s, ctx, port, a):
        rp = _router_port(s, port.id)
        if rp is not None:
            raise definition.L3PortInUse(port_id=port.id, device_owner=rp.port_type)

    def on_subnet_update(s, ctx, sub, a):
        if "gateway_ip" not in a or a["gateway_ip"] == sub.gateway_ip or not sub.gateway_ip:
            return
        A, RP = models.IPAllocation, models.RouterPort
        used = s.execute(sa.select(A.port_id).join(RP, RP.port_id == A.port_id).where(
            A.subnet_id == sub.id, A.ip_address == sub.gateway_ip)).scalar()
        if used is not None:
            raise definition.GatewayIpInUse(ip_address=sub.gateway_ip, port_id=used)

    def on_subnet_create(s, ctx, sub, a):
        if s.get(models.ExternalNetwork, sub.network_id) is not None:
            routers.address_gateways(s, sub, set(a.get("service_types") or ()))

    def on_subnet_delete(s, ctx, sub, a):
        # (a gateway's SLAAC address goes with its subnet: its router's
        # change is recorded, its row not written, as in address_gateways)
        A, R = models.IPAllocation, models.Router
        for router in s.execute(sa.select(R).join(A, A.port_id == R.gw_port_id).where(
                A.subnet_id == sub.id).order_by(R.id)).scalars():
            routers.record(s, router, "update")

    def on_network_delete(s, ctx, net, a):
        R = models.Router
        if s.execute(sa.select(R.id).where(R.gw_network_id == net.id)).first():
            raise exceptions.NetworkInUse(net_id=net.id)

    def on_network_update(s, ctx, net, a):
        if a.get("router:external") is False:
            R = models.Router
            if s.execute(sa.select(R.id).where(R.gw_network_id == net.id)).first():
                raise definition.ExternalNetworkInUse(net_id=net.id)

    plugin.add_hook("ports", "before_update", before_port_update)
    plugin.add_hook("ports", "update", on_port_update)
    plugin.add_hook("networks", "update", on_network_update)
    plugin.add_hook("ports", "delete", on_port_delete)
    plugin.add_hook("subnets", "update", on_subnet_update)
    plugin.add_hook("subnets", "create", on_subnet_create)
    plugin.add_hook("subnets", "delete", on_subnet_delete)
    plugin.add_hook("networks", "delete", on_network_delete)


# ------------------------------------------------------------------ HTTP
class RouterController(Controller):
    """Policy on the keys of ``external_gateway_info`` too
    (``create_router:external_gateway_info:enable_snat``), as Neutron."""

    def _check_attrs(self, ctx, action, target, names):
        super()._check_attrs(ctx, action, target, names)
        for name in names:
            value = target.get(name)
            if not isinstance(value, dict):
                continue
            for k in sorted(value):
                rule = f"{action}:{name}:{k}"
                if self.policy.has(rule):
                    self.policy.enforce(rule, ctx, target)


def routes(api):
    old = api.controllers[ROUTERS]
    ctl = api.controllers[ROUTERS] = RouterController(ROUTERS, old.schema, old.plugin,
                                                      old.policy, old.conf)
    plugin, policy = api.plugin, api.policy
    m = api.mapper
    m.connect("/v2.0/routers/{id}/tags", collection=ROUTERS, action="tags")
    m.connect("/v2.0/routers/{id}/tags/{tag}", collection=ROUTERS, action="tag")

    def target(ctx, router_id, action):
        """The router as the caller sees it (404 when it cannot), and the
        action allowed on it (403)."""
        current = ctl._get_visible(ctx, router_id)
        policy.enforce(action, ctx, current)
        return current

    def body_of(req, key=None):
        body = read_json(req)
        if key is not None:
            if not isinstance(body, dict) or set(body) != {key} or \
                    not isinstance(body[key], dict):
                raise exceptions.InvalidInput(
                    error_message=f"the body must be {{\"{key}\": {{...}}}}")
            return body[key]
        return body

    def add_interface(req, ctx, router_id, **kw):
        target(ctx, router_id, "add_router_interface")
        info = definition.interface_info(body_of(req))
        return json_response(plugin.collections[ROUTERS].add_interface(ctx, router_id, info))

    def remove_interface(req, ctx, router_id, **kw):
        target(ctx, router_id, "remove_router_interface")
        body = body_of(req)
        if isinstance(body, dict) and body.get("port_id") and body.get("subnet_id"):
            info = definition.interface_info({"port_id": body["port_id"]})
            info["subnet_id"] = definition.interface_info(
                {"subnet_id": body["subnet_id"]})["subnet_id"]
        else:
            info = definition.interface_info(body)
        return json_response(plugin.collections[ROUTERS].remove_interface(ctx, router_id, info))

    def extraroutes(add):
        def handler(req, ctx, router_id, **kw):
            target(ctx, router_id, "add_extraroutes" if add else "remove_extraroutes")
            router = body_of(req, ROUTER)
            if set(router) != {"routes"}:
                raise exceptions.InvalidInput(
                    error_message="the body must be {\"router\": {\"routes\": [...]}}")
            wanted = definition.routes(router["routes"], "routes")
            obj = plugin.collections[ROUTERS].change_routes(ctx, router_id, wanted, add)
            return json_response({ROUTER: ctl._visible(ctx, obj)})
        return handler

    fmt = "{fmt:(\\.json)?}"
    for action, fn in (("add_router_interface", add_interface),
                       ("remove_router_interface", remove_interface),
                       ("add_extraroutes", extraroutes(True)),
                       ("remove_extraroutes", extraroutes(False))):
        method = definition.ACTIONS[ROUTERS][action]
        api.add_route(f"/v2.0/routers/{{router_id}}/{action}" + fmt, {method: fn})
