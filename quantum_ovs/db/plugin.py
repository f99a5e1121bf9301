"""The database plugin: networks, subnets and ports on SQLAlchemy.

Every public method runs in one transaction (retried on conflicts with
concurrent writers) and returns plain dicts in the API's shape.  Policy
is the controller's job; the plugin scopes what a non-admin can see.
"""

import ipaddress
import json
import random
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs import exceptions
from quantum_ovs.db import ipam, models
from quantum_ovs.timeutils import api_time as _ts, utcnow
from quantum_ovs.db.session import NOTIFY

DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNERS = ("network:router_interface",
                           "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
# Address modes where every port derives its own address (EUI-64).
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
IPV4_MIN_MTU, IPV6_MIN_MTU = 68, 1280
# Tags one resource may carry (Neutron's tag extension has the same).
MAX_TAGS = 50

MODELS = {"networks": models.Network, "subnets": models.Subnet, "ports": models.Port}
NOT_FOUND = {"networks": (exceptions.NetworkNotFound, "net_id"),
             "subnets": (exceptions.SubnetNotFound, "subnet_id"),
             "ports": (exceptions.PortNotFound, "port_id")}




def _std(obj):
    return {
        "id": obj.id,
        "name": obj.name,
        "description": obj.description,
        "project_id": obj.project_id,
        "tenant_id": obj.project_id,
        "revision_number": obj.revision_number,
        "created_at": _ts(obj.created_at),
        "updated_at": _ts(obj.updated_at),
        "tags": [t.tag for t in obj.tags],
    }


def network_dict(net):
    d = _std(net)
    d.update(admin_state_up=net.admin_state_up, status=net.status, shared=net.shared,
             mtu=net.mtu, port_security_enabled=net.port_security_enabled,
             subnets=[s.id for s in net.subnets])
    return d


def subnet_dict(sub):
    d = _std(sub)
    d.update(network_id=sub.network_id, cidr=sub.cidr, ip_version=sub.ip_version,
             gateway_ip=sub.gateway_ip, enable_dhcp=sub.enable_dhcp,
             ipv6_ra_mode=sub.ipv6_ra_mode, ipv6_address_mode=sub.ipv6_address_mode,
             allocation_pools=[{"start": p.first_ip, "end": p.last_ip}
                               for p in sub.allocation_pools],
             dns_nameservers=[d.address for d in sub.dns_nameservers],
             host_routes=[{"destination": r.destination, "nexthop": r.nexthop}
                          for r in sub.host_routes],
             subnetpool_id=None, segment_id=None)
    return d


def port_dict(port):
    d = _std(port)
    d.update(network_id=port.network_id, admin_state_up=port.admin_state_up,
             mac_address=port.mac_address, status=port.status,
             device_id=port.device_id, device_owner=port.device_owner,
             port_security_enabled=port.port_security_enabled,
             fixed_ips=[{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                        for a in port.fixed_ips],
             allowed_address_pairs=[{"ip_address": p.ip_address,
                                     "mac_address": p.mac_address}
                                    for p in port.allowed_address_pairs])
    return d


DICT = {"networks": network_dict, "subnets": subnet_dict, "ports": port_dict}
COLLECTION_TO_RESOURCE = {"networks": "network", "subnets": "subnet", "ports": "port"}


class Collection:
    """A collection added by an extension: how its rows are made, shown,
    changed and scoped.  The Plugin wraps each call in a transaction,
    bumps revisions, records changes and runs hooks."""

    collection = None
    resource = None
    model = None
    not_found = None  # (exception class, keyword)

    def __init__(self, plugin):
        self.plugin = plugin

    def to_dict(self, obj):
        raise NotImplementedError

    def visible_clause(self, ctx):
        return self.model.project_id == ctx.project_id

    def filter_clause(self, attr, values):
        return None

    def network_of(self, obj):
        return None

    def create(self, s, ctx, a):
        raise NotImplementedError

    def update(self, s, ctx, obj, a):
        for k, v in a.items():
            setattr(obj, k, v)

    def delete(self, s, ctx, obj):
        s.delete(obj)


def port_membership(port):
    """(the port's security group ids, its addresses: fixed IPs and
    allowed address pairs), what its groups' membership depends on."""
    return ({b.security_group_id for b in port.security_group_bindings or ()},
            {a.ip_address for a in port.fixed_ips or ()} |
            {p.ip_address for p in port.allowed_address_pairs or ()})


class Plugin:
    """CRUD for the core resources.  ``conf`` is an oslo.config object."""

    def __init__(self, db, conf):
        self.db = db
        self.conf = conf
        self.base_mac = [int(x, 16) for x in conf.base_mac.split(":")]
        # Hooks that extensions register: (collection, phase) -> callables
        # called as fn(session, ctx, obj, attrs) inside the transaction.
        self.hooks = {}
        self.dict_extenders = {c: [] for c in MODELS}
        # Collections added by extensions: name -> handler (see Collection).
        self.collections = {}
        # (collection, attribute) -> fn(values) -> SQL clause, for filters
        # on attributes that extensions add to any collection.
        self.filter_hooks = {("subnets", "shared"): _subnets_by_sharing}

    # ------------------------------------------------------------ registry
    def register(self, handler):
        self.collections[handler.collection] = handler
        self.dict_extenders.setdefault(handler.collection, [])

    def model_of(self, collection):
        h = self.collections.get(collection)
        return h.model if h else MODELS[collection]

    def not_found(self, collection, id_):
        h = self.collections.get(collection)
        exc, key = h.not_found if h else NOT_FOUND[collection]
        return exc(**{key: id_})

    def create(self, ctx, collection, items):
        h = self.collections.get(collection)
        if h is None:
            return getattr(self, f"create_{collection}")(ctx, items)

        def txn(s):
            out = []
            for a in items:
                obj = h.create(s, ctx, a)
                s.flush()
                self._run_hooks(collection, "create", s, ctx, obj, a)
                self._record(s, h.resource, obj, "create", h.network_of(obj))
                out.append(obj)
            s.flush()
            return [self._to_dict(collection, o) for o in out]
        return self.db.write(txn)

    def update(self, ctx, collection, id_, a):
        h = self.collections.get(collection)
        if h is None:
            return getattr(self, f"update_{COLLECTION_TO_RESOURCE[collection]}")(ctx, id_, a)

        def txn(s):
            obj = self._get(s, ctx, collection, id_, lock=True)
            h.update(s, ctx, obj, a)
            self._run_hooks(collection, "update", s, ctx, obj, a)
            self._bump(obj)
            self._record(s, h.resource, obj, "update", h.network_of(obj))
            s.flush()
            return self._to_dict(collection, obj)
        return self.db.write(txn)

    def delete(self, ctx, collection, id_):
        h = self.collections.get(collection)
        if h is None:
            return getattr(self, f"delete_{COLLECTION_TO_RESOURCE[collection]}")(ctx, id_)

        def txn(s):
            obj = self._get(s, ctx, collection, id_, lock=True)
            self._run_hooks(collection, "delete", s, ctx, obj, None)
            self._record(s, h.resource, obj, "delete", h.network_of(obj))
            h.delete(s, ctx, obj)
        self.db.write(txn)

    # ------------------------------------------------------------ helpers
    def _to_dict(self, collection, obj):
        h = self.collections.get(collection)
        d = h.to_dict(obj) if h else DICT[collection](obj)
        for fn in self.dict_extenders.get(collection, ()):
            fn(obj, d)
        return d

    def _run_hooks(self, collection, phase, *args):
        for fn in self.hooks.get((collection, phase), ()):
            fn(*args)

    def _record(self, session, resource, obj, op, network_id=None, host=None,
                before=None, members=True):
        """A change row for ``obj``.  For a port, also one membership row
        per security group it is in (or, given ``before`` = (its groups,
        its addresses) before this write, was in) naming the addresses
        involved, unless ``members`` is false or (for an update) neither
        its groups nor its addresses changed."""
        if host is None and resource == "port":
            binding = getattr(obj, "binding", None)
            host = binding.host if binding is not None and binding.host else None
        session.info[NOTIFY] = True
        session.add(models.Change(resource=resource, resource_id=obj.id, op=op,
                                  network_id=network_id, host=host,
                                  revision_number=getattr(obj, "revision_number", 0)))
        if resource != "port" or not members:
            return
        # Hosts whose rules name the port's groups as remote groups must
        # learn of its addresses.
        groups, addresses = port_membership(obj)
        if before is not None:
            if op == "update" and before == (groups, addresses):
                return
            groups, addresses = groups | before[0], addresses | before[1]
        detail = json.dumps(sorted(addresses))
        for gid in sorted(groups):
            session.add(models.Change(resource="sg_member", op=op, host=host,
                                      resource_id=gid, detail=detail))

    @staticmethod
    def _bump(obj):
        if hasattr(obj, "revision_number"):
            obj.revision_number = (obj.revision_number or 0) + 1
        if hasattr(obj, "updated_at"):
            obj.updated_at = utcnow()

    def _visible_clause(self, ctx, collection):
        if ctx.is_admin:
            return None
        if collection in self.collections:
            return self.collections[collection].visible_clause(ctx)
        N = models.Network
        if collection == "networks":
            ext = getattr(self, "external_clause", None)
            return sa.or_(N.project_id == ctx.project_id, N.shared.is_(True),
                          *([ext()] if ext else []))
        if collection == "subnets":
            S = models.Subnet
            # (as get_subnet: those of shared, external and own networks)
            nets = sa.select(N.id).where(sa.or_(
                N.shared.is_(True), N.project_id == ctx.project_id,
                N.id.in_(sa.select(models.ExternalNetwork.network_id))))
            return sa.or_(S.project_id == ctx.project_id, S.network_id.in_(nets))
        P = models.Port
        owned = sa.select(N.id).where(N.project_id == ctx.project_id)
        return sa.or_(P.project_id == ctx.project_id, P.network_id.in_(owned))

    def _get(self, session, ctx, collection, id_, lock=False, bare=False):
        """``bare``: the row's columns only; relationships load if touched."""
        model = self.model_of(collection)
        q = sa.select(model).where(model.id == id_)
        if bare:
            q = q.options(orm.lazyload("*"))
        clause = self._visible_clause(ctx, collection) if ctx is not None else None
        if clause is not None:
            q = q.where(clause)
        if lock and not self.db.is_sqlite:
            q = q.with_for_update()
        obj = session.execute(q).scalars().first()
        if obj is None:
            raise self.not_found(collection, id_)
        return obj

    def _set_tags(self, obj, tags):
        obj.tags = [models.Tag(resource_id=obj.id, tag=t) for t in dict.fromkeys(tags)]

    # ------------------------------------------------------------ generic reads
    def get(self, ctx, collection, id_):
        with self.db.reader() as s:
            return self._to_dict(collection, self._get(s, ctx, collection, id_))

    def network_owner(self, net_id):
        """project_id, shared and external of a network, or None: what the
        policy checks of subnets and ports need, in one narrow query."""
        return self.network_owners([net_id]).get(net_id)

    def network_owners(self, net_ids):
        """network_owner of several networks: {id: {...}} (missing ones
        left out)."""
        N, X = models.Network, models.ExternalNetwork
        with self.db.reader() as s:
            rows = s.execute(sa.select(N.id, N.project_id, N.shared, X.network_id)
                             .outerjoin(X, X.network_id == N.id)
                             .where(N.id.in_(set(net_ids)))).all()
        return {r[0]: {"project_id": r[1], "shared": r[2], "external": r[3] is not None}
                for r in rows}

    def get_owner_info(self, collection, id_):
        """The raw row of a resource, unscoped (for policy targets)."""
        with self.db.reader() as s:
            obj = s.get(self.model_of(collection), id_)
            return None if obj is None else self._to_dict(collection, obj)

    def list(self, ctx, collection, filters=None, sorts=(), limit=None,
             marker=None, special_filters=None):
        """``filters``: attribute -> list of accepted values (OR);
        ``sorts``: [(attribute, ascending)]; ``marker``: an id."""
        model = self.model_of(collection)
        with self.db.reader() as s:
            q = sa.select(model)
            clause = self._visible_clause(ctx, collection)
            if clause is not None:
                q = q.where(clause)
            for attr, values in (filters or {}).items():
                q = q.where(self._filter_clause(collection, model, attr, values))
            for fn in (special_filters or ()):
                q = fn(q)
            order = [(getattr(model, "project_id" if k == "tenant_id" else k), asc)
                     for k, asc in sorts]
            if not any(col.key == "id" for col, _ in order):
                first_asc = order[0][1] if order else True
                order.append((model.id, first_asc))
            if marker is not None:
                # Looked up as the caller sees: another project's id is
                # no marker, like an id that does not exist.
                mq = sa.select(model).where(model.id == marker)
                mobj = s.execute(mq if clause is None else mq.where(clause)).scalars().first()
                if mobj is None:
                    raise self.not_found(collection, marker)
                q = q.where(_after_marker(order, mobj))
            q = q.order_by(*[c.asc() if asc else c.desc() for c, asc in order])
            if limit is not None:
                q = q.limit(limit)
            rows = s.execute(q).scalars().all()
            return [self._to_dict(collection, r) for r in rows]

    def _filter_clause(self, collection, model, attr, values):
        if attr == "tenant_id":
            attr = "project_id"
        hook = self.filter_hooks.get((collection, attr))
        if hook is not None:
            return hook(values)
        h = self.collections.get(collection)
        if h is not None:
            clause = h.filter_clause(attr, values)
            if clause is not None:
                return clause
        if attr == "subnets" and collection == "networks":
            S = models.Subnet
            return model.id.in_(sa.select(S.network_id).where(S.id.in_(values)))
        if attr == "fixed_ips" and collection == "ports":
            A = models.IPAllocation
            clauses = []
            for v in values:
                c = []
                if "ip_address" in v:
                    c.append(A.ip_address == v["ip_address"])
                if "subnet_id" in v:
                    c.append(A.subnet_id == v["subnet_id"])
                if "ip_address_substr" in v:
                    c.append(A.ip_address.contains(v["ip_address_substr"], autoescape=True))
                clauses.append(sa.and_(*c))
            return model.id.in_(sa.select(A.port_id).where(sa.or_(*clauses)))
        col = getattr(model, attr)
        non_null = [v for v in values if v is not None]
        terms = []
        if non_null:
            terms.append(col.in_(non_null))
        if len(non_null) != len(values):
            terms.append(col.is_(None))
        return sa.or_(*terms)

    # ------------------------------------------------------------ networks
    def create_networks(self, ctx, items):
        return self.db.write(lambda s: [self._create_network(s, ctx, a) for a in items])

    def _create_network(self, s, ctx, a):
        if a.get("mtu") == 0:
            a = dict(a, mtu=None)  # 0: the largest the network allows
        net = models.Network(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
            name=a["name"], description=a["description"],
            admin_state_up=a["admin_state_up"], shared=a["shared"], status="ACTIVE",
            mtu=a["mtu"] if a.get("mtu") is not None else self.conf.global_physnet_mtu,
            port_security_enabled=a["port_security_enabled"], revision_number=0)
        s.add(net)
        self._run_hooks("networks", "create", s, ctx, net, a)
        s.flush()
        self._record(s, "network", net, "create", net.id)
        net.tags = []
        s.flush()
        s.refresh(net)
        return self._to_dict("networks", net)

    def update_network(self, ctx, id_, a):
        def txn(s):
            net = self._get(s, ctx, "networks", id_, lock=True)
            if a.get("shared") is False and net.shared:
                others = s.execute(sa.select(sa.func.count()).select_from(models.Port).where(
                    models.Port.network_id == id_,
                    models.Port.project_id != net.project_id,
                    models.Port.device_owner != DHCP_OWNER)).scalar()
                if others:
                    raise exceptions.InvalidSharedSetting(network=net.name or id_)
            # 0 asks for the largest MTU the network allows, like None,
            # but (as in Neutron) no subnet lives with it.
            wanted = a.get("mtu")
            a2 = dict(a, mtu=None) if wanted == 0 else a
            for k in ("name", "description", "admin_state_up", "shared", "mtu",
                      "port_security_enabled"):
                if k in a2:
                    setattr(net, k, a2[k] if not (k == "mtu" and a2[k] is None)
                            else self.conf.global_physnet_mtu)
            self._run_hooks("networks", "update", s, ctx, net, a2)
            if "mtu" in a:
                versions = set(s.execute(sa.select(models.Subnet.ip_version).where(
                    models.Subnet.network_id == id_)).scalars())
                _check_mtu(id_, net.mtu if wanted is None else wanted, versions)
            self._bump(net)
            self._record(s, "network", net, "update", net.id)
            s.flush()
            return self._to_dict("networks", net)
        return self.db.write(txn)

    def delete_network(self, ctx, id_):
        def txn(s):
            net = self._get(s, ctx, "networks", id_, lock=True)
            ports = s.execute(sa.select(models.Port).where(
                models.Port.network_id == id_)).scalars().all()
            if any(p.device_owner != DHCP_OWNER for p in ports):
                raise exceptions.NetworkInUse(net_id=id_)
            for p in ports:
                self._record(s, "port", p, "delete", id_)
                s.delete(p)
            s.flush()
            for sub in s.execute(sa.select(models.Subnet).where(
                    models.Subnet.network_id == id_)).scalars():
                self._delete_subnet_rows(s, sub)
            s.flush()
            self._run_hooks("networks", "delete", s, ctx, net, None)
            self._record(s, "network", net, "delete", id_)
            s.delete(net)
        self.db.write(txn)

    # ------------------------------------------------------------ subnets
    def create_subnets(self, ctx, items):
        return self.db.write(lambda s: [self._create_subnet(s, ctx, a) for a in items])

    def _create_subnet(self, s, ctx, a):
        net = self._get(s, ctx, "networks", a["network_id"], lock=True)
        if net.mtu:
            _check_mtu(net.id, net.mtu, {a["ip_version"]})
        cidr = a["cidr"]
        netobj = ipaddress.ip_network(cidr)
        if netobj.version != a["ip_version"]:
            raise exceptions.InvalidInput(
                error_message=f"Cidr {cidr} does not match ip_version {a['ip_version']}")
        self._check_overlap(s, net, netobj)
        self._check_v6_modes(a)
        if "gateway_ip" in a:
            gw = a["gateway_ip"]
        else:
            gw = str(next(iter(netobj.hosts()), netobj.network_address)) \
                if netobj.num_addresses > 2 else None
        if gw is not None:
            ipam.validate_gateway(cidr, gw)
        if a.get("allocation_pools") is not None:
            pools = ipam.validate_pools(cidr, a["allocation_pools"], gw)
        else:
            pools = ipam.default_pools(cidr, gw)
        self._check_dns_routes(a, netobj.version)
        sub = models.Subnet(
            id=a.get("id") or str(uuid.uuid4()), project_id=a["project_id"],
            name=a["name"], description=a["description"], network_id=net.id, cidr=cidr,
            ip_version=a["ip_version"], gateway_ip=gw, enable_dhcp=a["enable_dhcp"],
            ipv6_ra_mode=a.get("ipv6_ra_mode"), ipv6_address_mode=a.get("ipv6_address_mode"),
            revision_number=0)
        sub.dns_nameservers = [models.DNSNameServer(address=x, order=i)
                               for i, x in enumerate(a.get("dns_nameservers") or [])]
        sub.host_routes = [models.SubnetRoute(destination=r["destination"], nexthop=r["nexthop"],
                                              order=i)
                           for i, r in enumerate(a.get("host_routes") or [])]
        s.add(sub)
        s.flush()
        self._run_hooks("subnets", "create", s, ctx, sub, a)
        ipam.set_pools(s, sub, pools)
        sub.tags = []
        self._bump(net)
        self._record(s, "subnet", sub, "create", net.id)
        s.flush()
        return self._to_dict("subnets", sub)

    def _check_overlap(self, s, net, netobj):
        q = sa.select(models.Subnet.cidr)
        if self.conf.allow_overlapping_ips:
            q = q.where(models.Subnet.network_id == net.id)
        for (other,) in s.execute(q):
            if ipaddress.ip_network(other).overlaps(netobj):
                raise exceptions.InvalidInput(
                    error_message=f"Requested subnet with cidr: {netobj} for network: "
                                  f"{net.id} overlaps with another subnet")

    def _check_v6_modes(self, a):
        ra, addr = a.get("ipv6_ra_mode"), a.get("ipv6_address_mode")
        if (ra or addr) and a["ip_version"] != 6:
            raise exceptions.InvalidInput(
                error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when "
                              "enable_dhcp is set to False or ip_version is 4")
        if ra and addr and ra != addr:
            raise exceptions.InvalidInput(
                error_message=f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                              f"'{addr}' is not valid. If both attributes are set, they "
                              "must be the same value")

    def _check_dns_routes(self, a, version):
        dns = a.get("dns_nameservers") or []
        if len(dns) > self.conf.max_dns_nameservers:
            raise exceptions.InvalidInput(
                error_message=f"Number of DNS nameservers exceeds the limit "
                              f"{self.conf.max_dns_nameservers}")
        routes = a.get("host_routes") or []
        if len(routes) > self.conf.max_subnet_host_routes:
            raise exceptions.InvalidInput(
                error_message=f"Number of host routes exceeds the limit "
                              f"{self.conf.max_subnet_host_routes}")
        for r in routes:
            if ipaddress.ip_network(r["destination"]).version != version or \
                    ipaddress.ip_address(r["nexthop"]).version != version:
                raise exceptions.InvalidInput(
                    error_message=f"Host route {r['destination']} via {r['nexthop']} "
                                  f"does not match the subnet's IP version {version}")

    def update_subnet(self, ctx, id_, a):
        def txn(s):
            sub = self._get(s, ctx, "subnets", id_, lock=True)
            net = s.get(models.Network, sub.network_id)
            a2 = dict(a, ip_version=sub.ip_version)
            self._check_dns_routes(a2, sub.ip_version)
            gw = a["gateway_ip"] if "gateway_ip" in a else sub.gateway_ip
            if "gateway_ip" in a and gw is not None:
                ipam.validate_gateway(sub.cidr, gw)
                if gw != sub.gateway_ip and "allocation_pools" not in a and ipam.in_pools(sub, gw):
                    raise exceptions.GatewayConflictWithAllocationPools(
                        ip_address=gw, pool=", ".join(
                            f"{p.first_ip}-{p.last_ip}" for p in sub.allocation_pools))
            if "allocation_pools" in a:
                pools = ipam.validate_pools(sub.cidr, a["allocation_pools"], gw)
                ipam.set_pools(s, sub, pools)
            self._run_hooks("subnets", "update", s, ctx, sub, a)
            if "gateway_ip" in a:
                sub.gateway_ip = gw
            for k in ("name", "description", "enable_dhcp"):
                if k in a:
                    setattr(sub, k, a[k])
            if "dns_nameservers" in a:
                sub.dns_nameservers = []
                s.flush()
                sub.dns_nameservers = [models.DNSNameServer(address=x, order=i)
                                       for i, x in enumerate(a["dns_nameservers"])]
            if "host_routes" in a:
                sub.host_routes = []
                s.flush()
                sub.host_routes = [models.SubnetRoute(destination=r["destination"],
                                                      nexthop=r["nexthop"], order=i)
                                   for i, r in enumerate(a["host_routes"])]
            self._bump(sub)
            self._bump(net)
            self._record(s, "subnet", sub, "update", sub.network_id)
            s.flush()
            return self._to_dict("subnets", sub)
        return self.db.write(txn)

    def _delete_subnet_rows(self, s, sub):
        s.execute(sa.delete(models.IPAllocation).where(models.IPAllocation.subnet_id == sub.id))
        s.execute(sa.delete(models.IPAvailabilityRange)
                  .where(models.IPAvailabilityRange.subnet_id == sub.id))
        self._record(s, "subnet", sub, "delete", sub.network_id)
        s.delete(sub)

    def delete_subnet(self, ctx, id_):
        def txn(s):
            sub = self._get(s, ctx, "subnets", id_, lock=True)
            A, P = models.IPAllocation, models.Port
            # Addresses a port derived itself (SLAAC, DHCPv6-stateless) go
            # with the subnet, except a router's; others keep it in use.
            q = sa.select(sa.func.count()).select_from(A).join(
                P, P.id == A.port_id).where(A.subnet_id == id_, P.device_owner != DHCP_OWNER)
            if sub.ipv6_address_mode in AUTO_ADDRESS_MODES:
                q = q.where(P.device_owner.in_(ROUTER_INTERFACE_OWNERS))
            if s.execute(q).scalar():
                raise exceptions.SubnetInUse(subnet_id=id_)
            # The ports that lose their address on it: a change of each.
            losing = s.execute(sa.select(P).join(A, A.port_id == P.id)
                               .where(A.subnet_id == id_).distinct()).scalars().all()
            before = {p.id: port_membership(p) for p in losing}
            net = s.get(models.Network, sub.network_id)
            self._bump(net)
            self._delete_subnet_rows(s, sub)
            for p in losing:
                s.expire(p, ["fixed_ips"])
                self._bump(p)
                self._record(s, "port", p, "update", p.network_id, before=before[p.id])
        self.db.write(txn)

    # ------------------------------------------------------------ ports
    def _check_port_limits(self, a):
        """Neutron's per-port limits: addresses and address pairs cost
        allocations and flows on the port's host."""
        fixed = a.get("fixed_ips")
        if fixed is not None and len(fixed) > self.conf.max_fixed_ips_per_port:
            raise exceptions.InvalidInput(
                error_message=f"A port may have at most {self.conf.max_fixed_ips_per_port} "
                              f"fixed IPs, not {len(fixed)}")
        pairs = a.get("allowed_address_pairs")
        if pairs is not None and len(pairs) > self.conf.max_allowed_address_pair:
            raise exceptions.AllowedAddressPairExhausted(
                quota=self.conf.max_allowed_address_pair)

    def create_ports(self, ctx, items):
        for a in items:
            self._check_port_limits(a)

        def txn(s):
            cache = {}  # a bulk on one network looks it up once
            ports = [self._new_port(s, ctx, a, cache) for a in items]
            # The addresses last, all subnets locked at once (the lock
            # order of ipam.py): on a busy subnet, creators wait for each
            # other only from their allocation to their commit.
            if len({p.network_id for p in ports}) > 1:
                ipam.lock_subnets(s, [p.network_id for p in ports])
            for port, a in zip(ports, items):
                subnets = cache.get(("subnets", port.network_id))
                if subnets is None:
                    subnets = cache[("subnets", port.network_id)] = self._subnets_of(
                        s, port.network_id)
                allocs = self._allocate(s, port.network_id, port, a.get("fixed_ips"),
                                        a["device_owner"], subnets=subnets)
                port.fixed_ips = [models.IPAllocation(subnet_id=sub.id, ip_address=ip,
                                                      network_id=port.network_id, order=i)
                                  for i, (sub, ip) in enumerate(allocs)]
            s.flush()
            for port in ports:
                self._record(s, "port", port, "create", port.network_id)
            return [self._to_dict("ports", p) for p in ports]
        return self.db.write(txn)

    def _generate_mac(self, s, network_id):
        for _ in range(self.conf.mac_generation_retries):
            octets = self.base_mac[:3] + [random.randint(0, 255) for _ in range(3)]
            mac = ":".join(f"{o:02x}" for o in octets)
            if not self._mac_in_use(s, network_id, mac):
                return mac
        raise exceptions.MacAddressGenerationFailure(net_id=network_id)

    @staticmethod
    def _mac_in_use(s, network_id, mac):
        return s.execute(sa.select(models.Port.id).where(
            models.Port.network_id == network_id,
            models.Port.mac_address == mac)).first() is not None

    def _subnets_of(self, s, network_id):
        """The network's subnets, locked: their addresses are about to
        change (the lock order in ipam.py)."""
        q = (sa.select(models.Subnet).where(models.Subnet.network_id == network_id)
             .order_by(models.Subnet.created_at, models.Subnet.id)
             .options(orm.lazyload("*")))
        return s.execute(ipam.locking_subnets(s, q, [network_id])).scalars().all()

    def _allocate(self, s, net_id, port, requested, device_owner, subnets=None):
        """Allocate the port's addresses; ``requested`` None = automatic."""
        if subnets is None:
            subnets = self._subnets_of(s, net_id)
        by_id = {x.id: x for x in subnets}
        allocs = []
        if requested is None:
            v4 = [x for x in subnets if x.ip_version == 4]
            v6 = [x for x in subnets if x.ip_version == 6]
            for family in (v4, v6):
                # Every SLAAC subnet gives an address; of the others, the
                # first with a free address gives one.
                auto = [x for x in family
                        if x.ipv6_address_mode in ("slaac", "dhcpv6-stateless")]
                for sub in auto:
                    allocs.append((sub, _eui64(sub.cidr, port.mac_address)))
                pooled = [x for x in family if x not in auto]
                for sub in pooled:
                    ip = ipam.allocate_next(s, sub.id, sub.ip_version)
                    if ip is not None:
                        allocs.append((sub, ip))
                        break
                else:
                    if pooled and not auto:
                        raise exceptions.IpAddressGenerationFailure(net_id=net_id)
        else:
            for req in requested:
                ip = req.get("ip_address")
                sid = req.get("subnet_id")
                if sid is not None:
                    sub = by_id.get(sid)
                    if sub is None:
                        raise exceptions.InvalidInput(
                            error_message=f"Failed to create port on network {net_id}, "
                                          f"because fixed_ips included invalid subnet {sid}")
                    if ip is not None and ipaddress.ip_address(ip) not in \
                            ipaddress.ip_network(sub.cidr):
                        raise exceptions.InvalidIpForSubnet(ip_address=ip)
                elif ip is not None:
                    sub = next((x for x in subnets
                                if ipaddress.ip_address(ip) in ipaddress.ip_network(x.cidr)), None)
                    if sub is None:
                        raise exceptions.InvalidIpForNetwork(ip_address=ip)
                else:
                    raise exceptions.InvalidInput(
                        error_message="fixed_ips entries need a subnet_id or an ip_address")
                if ip is None:
                    if sub.ipv6_address_mode in ("slaac", "dhcpv6-stateless"):
                        ip = _eui64(sub.cidr, port.mac_address)
                    else:
                        ip = ipam.allocate_next(s, sub.id, sub.ip_version)
                        if ip is None:
                            raise exceptions.IpAddressGenerationFailure(net_id=net_id)
                else:
                    self._take_specific(s, sub, ip, device_owner)
                allocs.append((sub, ip))
        seen = set()
        for sub, ip in allocs:
            if (sub.id, ip) in seen:
                raise exceptions.InvalidInput(
                    error_message=f"IP address {ip} requested twice")
            seen.add((sub.id, ip))
        return allocs

    def _take_specific(self, s, sub, ip, device_owner):
        net = ipaddress.ip_network(sub.cidr)
        addr = ipaddress.ip_address(ip)
        if net.version == 4 and net.prefixlen <= 30 and addr in (
                net.network_address, net.broadcast_address):
            raise exceptions.InvalidIpForSubnet(ip_address=ip)
        if ip == sub.gateway_ip and not device_owner.startswith("network:router"):
            raise exceptions.IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
        if not ipam.take_specific(s, sub.id, ip):
            taken = s.execute(sa.select(models.IPAllocation.port_id).where(
                models.IPAllocation.subnet_id == sub.id,
                models.IPAllocation.ip_address == ip)).first()
            if taken is not None:
                raise exceptions.IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
            if ipam.in_pools(sub, ip):
                # In a pool, neither free nor allocated: a concurrent
                # release was committing between our two reads.  Read
                # again once it has settled.
                raise exceptions.RetryRequest()
            # Outside every pool but inside the subnet: allowed, as in Neutron.

    def _new_port(self, s, ctx, a, cache):
        """The port's row and what the hooks add, without its addresses."""
        net = cache.get(("net", a["network_id"]))
        if net is None:
            net = cache[("net", a["network_id"])] = self._get(s, ctx, "networks",
                                                               a["network_id"], bare=True)
        port_id = a.get("id") or str(uuid.uuid4())
        if a.get("mac_address") is not None:
            mac = a["mac_address"]
            if self._mac_in_use(s, net.id, mac):
                raise exceptions.MacAddressInUse(net_id=net.id, mac=mac)
        else:
            mac = self._generate_mac(s, net.id)
        pse = a.get("port_security_enabled")
        if pse is None:
            pse = net.port_security_enabled
        pairs = a.get("allowed_address_pairs") or []
        if pairs and not pse:
            raise exceptions.AddressPairAndPortSecurityRequired()
        port = models.Port(
            id=port_id, project_id=a["project_id"], name=a["name"],
            description=a["description"], network_id=net.id, mac_address=mac,
            admin_state_up=a["admin_state_up"], status="DOWN", device_id=a["device_id"],
            device_owner=a["device_owner"], port_security_enabled=pse, revision_number=0)
        port.allowed_address_pairs = [
            models.AllowedAddressPair(ip_address=p["ip_address"],
                                      mac_address=p.get("mac_address") or mac, order=i)
            for i, p in enumerate(pairs)]
        port.tags = []
        port.fixed_ips = []  # set by create_ports (no load of the empty list)
        s.add(port)
        self._run_hooks("ports", "create", s, ctx, port, a)
        s.flush()
        return port

    def update_port(self, ctx, id_, a):
        self._check_port_limits(a)

        def txn(s):
            port = self._get(s, ctx, "ports", id_, lock=True)
            before = port_membership(port)
            if "mac_address" in a and a["mac_address"] != port.mac_address:
                if self._mac_in_use(s, port.network_id, a["mac_address"]):
                    raise exceptions.MacAddressInUse(net_id=port.network_id,
                                                     mac=a["mac_address"])
                port.mac_address = a["mac_address"]
            if "fixed_ips" in a:
                self._update_fixed_ips(s, port, a["fixed_ips"])
            pse = a.get("port_security_enabled", port.port_security_enabled)
            pairs = a["allowed_address_pairs"] if "allowed_address_pairs" in a else \
                [{"ip_address": p.ip_address, "mac_address": p.mac_address}
                 for p in port.allowed_address_pairs]
            if pairs and not pse:
                raise exceptions.AddressPairAndPortSecurityRequired()
            if "allowed_address_pairs" in a:
                port.allowed_address_pairs = []
                s.flush()
                port.allowed_address_pairs = [
                    models.AllowedAddressPair(ip_address=p["ip_address"],
                                              mac_address=p.get("mac_address") or port.mac_address,
                                              order=i)
                    for i, p in enumerate(pairs)]
            for k in ("name", "description", "admin_state_up", "device_id", "device_owner",
                      "port_security_enabled"):
                if k in a:
                    setattr(port, k, a[k])
            self._run_hooks("ports", "update", s, ctx, port, a)
            self._bump(port)
            self._record(s, "port", port, "update", port.network_id, before=before)
            s.flush()
            return self._to_dict("ports", port)
        return self.db.write(txn)

    def _update_fixed_ips(self, s, port, requested):
        current = {(a.subnet_id, a.ip_address) for a in port.fixed_ips}
        keep, new = [], []
        for req in requested:
            match = None
            if req.get("ip_address") is not None:
                for sid, ip in current:
                    if ip == req["ip_address"] and req.get("subnet_id", sid) == sid:
                        match = (sid, ip)
            if match is not None and match not in keep:
                keep.append(match)
            else:
                new.append(req)
        subnets = {x.id: x for x in self._subnets_of(s, port.network_id)}
        removed = [x for x in current if x not in keep]
        for sid, ip in removed:
            if sid in subnets:
                ipam.release(s, subnets[sid], ip)
        allocs = self._allocate(s, port.network_id, port, new, port.device_owner) if new else []
        port.fixed_ips = []
        s.flush()
        entries = keep + [(sub.id, ip) for sub, ip in allocs]
        port.fixed_ips = [models.IPAllocation(subnet_id=sid, ip_address=ip,
                                              network_id=port.network_id, order=i)
                          for i, (sid, ip) in enumerate(entries)]

    def delete_port(self, ctx, id_):
        def txn(s):
            port = self._get(s, ctx, "ports", id_, lock=True)
            addresses = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
            self._run_hooks("ports", "delete", s, ctx, port, None)
            self._record(s, "port", port, "delete", port.network_id)
            s.delete(port)
            s.flush()
            # The addresses last: the subnet locks are held from here to
            # the commit only.
            self._release(s, port.network_id, addresses)
        self.db.write(txn)

    def _release(self, s, network_id, addresses):
        subnets = {x.id: x for x in self._subnets_of(s, network_id)}
        for subnet_id, ip in addresses:
            if subnet_id in subnets:
                ipam.release(s, subnets[subnet_id], ip)

    # ------------------------------------------------------------ tags
    def set_tags(self, ctx, collection, id_, tags):
        if len(set(tags)) > MAX_TAGS:
            raise exceptions.BadRequest(
                resource=collection[:-1],
                msg=f"The number of tags exceeds the per-resource limit of {MAX_TAGS}")

        def txn(s):
            obj = self._get(s, ctx, collection, id_, lock=True)
            self._set_tags(obj, tags)
            self._bump(obj)
            s.flush()
            return [t.tag for t in obj.tags]
        return self.db.write(txn)


def _check_mtu(net_id, mtu, versions):
    """409 when subnets of these IP versions cannot live with the MTU."""
    if not versions:
        return
    if mtu < IPV4_MIN_MTU:
        raise exceptions.NetworkMTUSubnetConflict(net_id=net_id, mtu=IPV4_MIN_MTU)
    if mtu < IPV6_MIN_MTU and 6 in versions:
        raise exceptions.NetworkMTUSubnetConflict(net_id=net_id, mtu=IPV6_MIN_MTU)


def _subnets_by_sharing(values):
    """The ``shared`` filter of subnets: their network's sharing."""
    N, S = models.Network, models.Subnet
    return S.network_id.in_(sa.select(N.id).where(N.shared.in_(values)))


def child_filter(parent_id, child_fk, column):
    """A filter hook (see Plugin.filter_hooks) for an attribute kept in a
    child table: the parents with a child row whose ``column`` is one of
    the filter's values."""
    return lambda values: parent_id.in_(sa.select(child_fk).where(column.in_(values)))


def _after_marker(order, mobj):
    """Rows strictly after the marker row in the given ordering."""
    clauses = []
    for i, (col, asc) in enumerate(order):
        eqs = [c == getattr(mobj, c.key) for c, _ in order[:i]]
        val = getattr(mobj, col.key)
        cmp = col > val if asc else col < val
        clauses.append(sa.and_(*eqs, cmp))
    return sa.or_(*clauses)


def _eui64(cidr, mac):
    net = ipaddress.ip_network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    suffix = int.from_bytes(bytes(eui), "big")
    return str(ipaddress.IPv6Address(int(net.network_address) | suffix))
