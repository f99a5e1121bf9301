"""Ports: their addresses come from db/addresses.py."""

import uuid

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from quantum_ovs import exceptions
from quantum_ovs.db import addresses, changelog, ipam, models
from quantum_ovs.db.bindings import UNPLUGGED_VIF_TYPES
from quantum_ovs.db.resource import TAG, Collection, check_tags, hold
from quantum_ovs.timeutils import api_time


def port_dict(port):
    """std_dict's items, then the port's, as one dict display (a listing
    makes thousands: a third cheaper than adding to std_dict's, and a
    list comprehension costs a call even over an empty list)."""
    fixed_ips = []
    for a in port.fixed_ips:
        fixed_ips.append({"subnet_id": a.subnet_id, "ip_address": a.ip_address})
    pairs = []
    for p in port.allowed_address_pairs:
        pairs.append({"ip_address": p.ip_address, "mac_address": p.mac_address})
    return {
        "id": port.id,
        "name": port.name,
        "description": port.description,
        "project_id": port.project_id,
        "tenant_id": port.project_id,
        "revision_number": port.revision_number,
        "created_at": api_time(port.created_at),
        "updated_at": api_time(port.updated_at),
        "tags": list(map(TAG, port.tags)),
        "network_id": port.network_id,
        "admin_state_up": port.admin_state_up,
        "mac_address": port.mac_address,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "port_security_enabled": port.port_security_enabled,
        "fixed_ips": fixed_ips,
        "allowed_address_pairs": pairs,
    }


def _pair_rows(pairs, port_mac):
    """The rows of a port's allowed address pairs (one without a MAC has
    the port's).  A pair given twice (also: once without a MAC, once with
    the port's) is Neutron's 400, not a duplicate key to retry."""
    rows, seen = [], set()
    for i, p in enumerate(pairs):
        k = (p.get("mac_address") or port_mac, p["ip_address"])
        if k in seen:
            raise exceptions.DuplicateAddressPairInRequest(mac_address=k[0], ip_address=k[1])
        seen.add(k)
        rows.append(models.AllowedAddressPair(mac_address=k[0], ip_address=k[1], order=i))
    return rows


class Ports(Collection):
    collection, resource, model = "ports", "port", models.Port
    not_found = (exceptions.PortNotFound, "port_id")

    def __init__(self, plugin):
        super().__init__(plugin)
        self.base_mac = [int(x, 16) for x in plugin.conf.base_mac.split(":")]

    to_dict = staticmethod(port_dict)

    def network_of(self, obj):
        return obj.network_id

    def visible_clause(self, ctx):
        N, P = models.Network, models.Port
        owned = sa.select(N.id).where(N.project_id == ctx.project_id)
        return sa.or_(P.project_id == ctx.project_id, P.network_id.in_(owned))

    def filter_clause(self, attr, values):
        if attr != "fixed_ips":
            return None
        # As Neutron's _get_ports_query: the values of one key are OR'ed,
        # the keys AND'ed (each a port with such an address, not
        # necessarily the same one).
        A = models.IPAllocation
        by_key: dict = {}
        for v in values:
            for k, val in v.items():
                by_key.setdefault(k, []).append(val)
        clauses = []
        if "ip_address" in by_key:
            clauses.append(A.ip_address.in_(by_key["ip_address"]))
        if "subnet_id" in by_key:
            clauses.append(A.subnet_id.in_(by_key["subnet_id"]))
        if "ip_address_substr" in by_key:
            clauses.append(sa.or_(*[A.ip_address.contains(x, autoescape=True)
                                    for x in by_key["ip_address_substr"]]))
        P = models.Port
        return sa.and_(*[P.id.in_(sa.select(A.port_id).where(c)) for c in clauses])

    def check(self, a):
        """Neutron's per-port limits: addresses and address pairs cost
        allocations and flows on the port's host."""
        conf = self.plugin.conf
        fixed = a.get("fixed_ips")
        if fixed is not None and len(fixed) > conf.max_fixed_ips_per_port:
            raise exceptions.InvalidInput(
                error_message=f"A port may have at most {conf.max_fixed_ips_per_port} "
                              f"fixed IPs, not {len(fixed)}")
        pairs = a.get("allowed_address_pairs")
        if pairs is not None and len(pairs) > conf.max_allowed_address_pair:
            raise exceptions.AllowedAddressPairExhausted(quota=conf.max_allowed_address_pair)

    # ------------------------------------------------------------ create
    def create_all(self, s, ctx, items):
        """The ports of a create (one, or a bulk's all or none).  What can
        be done for the whole bulk is done once: the networks' rows, the
        MAC addresses (a few queries), the addresses of consecutive ports
        that ask for none in particular (a few statements per subnet), one
        flush at the end."""
        nets = {}  # a bulk on one network looks it up once
        # Held first (a share lock each, in id order): an un-sharing of a
        # network or a new SLAAC subnet on it waits for this create, or
        # this create for it, and then reads what it committed.
        hold(s, models.Network, [a["network_id"] for a in items])
        for a in items:
            if a["network_id"] not in nets:
                nets[a["network_id"]] = self.plugin.collections["networks"].row(
                    s, ctx, a["network_id"], bare=True)
        for a in items:
            self._check_named_subnets(s, ctx, a["network_id"], a.get("fixed_ips"))
        macs = self._macs(s, items)
        ports = [self._make_port(s, ctx, a, nets[a["network_id"]], mac)
                 for a, mac in zip(items, macs)]
        # The addresses last, all subnets locked at once (the lock order
        # of ipam.py): on a busy subnet, creators wait for each other only
        # from their allocation to their commit.
        if len(nets) > 1:
            ipam.lock_subnets(s, list(nets))
        with s.no_autoflush:  # (see _allocate)
            self._allocate(s, items, ports)
        s.flush()
        changelog.record_all(s, [("port", port, "create", port.network_id) for port in ports])
        for port in ports:
            # Known already: not read again, port by port, for the answer.
            set_committed_value(port, "network_dns_domain", nets[port.network_id].dns_domain)
        return ports

    @staticmethod
    def _allocate(s, items, ports):
        """The bulk's addresses.  Run without autoflush: the free ranges
        they are taken from change by statements, not by rows waiting in
        the session, so nothing here needs the ports and addresses made so
        far written first (but take_specific's check of an address already
        allocated, which writes them itself).  With autoflush, each port's
        first read wrote the previous port's rows, one flush per port."""
        subnets = {}
        served = {}  # (network, device owner) -> the subnets it takes addresses from
        i = 0
        while i < len(ports):
            net_id = ports[i].network_id
            if net_id not in subnets:
                subnets[net_id] = addresses.subnets_of(s, net_id)
            if items[i].get("fixed_ips") is None:
                # A run of ports of one network and owner asking for any
                # address: the lowest free ones, in order, as one by one.
                owner = items[i]["device_owner"]
                j = i + 1
                while j < len(ports) and items[j].get("fixed_ips") is None and \
                        ports[j].network_id == net_id and items[j]["device_owner"] == owner:
                    j += 1
                if (net_id, owner) not in served:
                    served[net_id, owner] = addresses.service_subnets(
                        s, net_id, subnets[net_id], owner)
                runs = addresses.allocate_auto(s, net_id, ports[i:j], served[net_id, owner])
            else:
                j = i + 1
                runs = [addresses.allocate(s, net_id, ports[i], items[i]["fixed_ips"],
                                           items[i]["device_owner"],
                                           subnets=subnets[net_id], auto=True)]
            for port, allocs in zip(ports[i:j], runs):
                port.fixed_ips = [models.IPAllocation(subnet_id=sub.id, ip_address=ip,
                                                      network_id=net_id, order=k)
                                  for k, (sub, ip) in enumerate(allocs)]
            i = j

    def _macs(self, s, items):
        """The MAC address of each item: the one asked for (in use on its
        network, or twice in the bulk: MacAddressInUse) or a new one free
        on its network and distinct from the bulk's others."""
        macs = [a.get("mac_address") for a in items]
        asked = {}  # network -> MACs asked for
        for a, mac in zip(items, macs):
            if mac is None:
                continue
            mine = asked.setdefault(a["network_id"], set())
            if mac in mine:
                raise exceptions.MacAddressInUse(net_id=a["network_id"], mac=mac)
            mine.add(mac)
        for net_id, mine in asked.items():
            used = addresses.macs_in_use(s, net_id, sorted(mine))
            if used:
                raise exceptions.MacAddressInUse(net_id=net_id, mac=min(used))
        wanted = {}  # network -> how many to generate
        for a, mac in zip(items, macs):
            if mac is None:
                wanted[a["network_id"]] = wanted.get(a["network_id"], 0) + 1
        made = {net_id: iter(addresses.generate_macs(
                    s, net_id, self.base_mac, n, self.plugin.conf.mac_generation_retries,
                    taken=asked.get(net_id, ())))
                for net_id, n in wanted.items()}
        return [mac if mac is not None else next(made[a["network_id"]])
                for a, mac in zip(items, macs)]

    def _new_port(self, s, ctx, a, cache):
        """One port's row and what the hooks add, without its addresses,
        flushed (for the l3 extension's router interfaces)."""
        net = cache.get(("net", a["network_id"]))
        if net is None:
            net = cache[("net", a["network_id"])] = self.plugin.collections["networks"].row(
                s, ctx, a["network_id"], bare=True, share=True)
        port = self._make_port(s, ctx, a, net, self._macs(s, [a])[0])
        s.flush()
        return port

    def _make_port(self, s, ctx, a, net, mac):
        """The port's row and what the hooks add, without its addresses
        (flushed with the bulk's others)."""
        port_id = a.get("id") or str(uuid.uuid4())
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
        port.allowed_address_pairs = _pair_rows(pairs, mac)
        tags = a.get("tags") or ()  # (tag-ports-during-bulk-creation)
        check_tags("ports", tags)
        port.tags = [models.Tag(resource_id=port_id, tag=t) for t in tags]
        port.fixed_ips = []  # set by create_all (no load of the empty list)
        s.add(port)
        # The hooks' reads (groups, agents, networks) never need the bulk's
        # new rows: without autoflush each of their queries no longer
        # writes the ports made so far one by one, and a port still new
        # takes its relationships (groups, options) without loading them
        # first.  (A hook that writes rows others must see flushes them
        # itself, as ensure_default does.)
        with s.no_autoflush:
            self.plugin.run_hooks("ports", "create", s, ctx, port, a)
        return port

    # ------------------------------------------------------------ update
    def _check_named_subnets(self, s, ctx, network_id, fixed_ips):
        """A fixed_ips entry naming a subnet that is not the network's: 404
        SubnetNotFound when the caller does not see it (as Neutron, which
        looks it up first), else addresses.allocate's 400."""
        named = {req["subnet_id"] for req in fixed_ips or () if req.get("subnet_id")}
        if not named:
            return
        S = models.Subnet
        mine = set(s.execute(sa.select(S.id).where(S.network_id == network_id,
                                                   S.id.in_(named))).scalars())
        for sid in sorted(named - mine):
            self.plugin.row(s, ctx, "subnets", sid, bare=True)

    def update_row(self, s, ctx, port, a):
        self.plugin.run_hooks("ports", "before_update", s, ctx, port, a)
        before = changelog.port_membership(port)
        if "mac_address" in a and a["mac_address"] != port.mac_address:
            mac = a["mac_address"]
            if mac is None:  # a new one (port-mac-address-regenerate)
                mac = addresses.generate_mac(s, port.network_id, self.base_mac,
                                             self.plugin.conf.mac_generation_retries)
            # A bound port's MAC is its instance's NIC's, a network:*
            # port's the service's; then a MAC in use (as Neutron, in this
            # order: 409).
            b = port.binding
            if b is not None and b.vif_type not in UNPLUGGED_VIF_TYPES:
                raise exceptions.PortBound(port_id=port.id, vif_type=b.vif_type,
                                           old_mac=port.mac_address, new_mac=mac)
            owner = a.get("device_owner") or port.device_owner
            if owner.startswith("network:"):
                raise exceptions.UnsupportedPortDeviceOwner(
                    op="mac address update", device_owner=owner, port_id=port.id)
            if a["mac_address"] is not None and addresses.mac_in_use(s, port.network_id, mac):
                raise exceptions.MacAddressInUse(net_id=port.network_id, mac=mac)
            if "fixed_ips" in a:  # (echoing the old MAC's SLAAC addresses)
                a = dict(a, fixed_ips=addresses.echoed_as_automatic(
                    a["fixed_ips"], addresses.held_automatic(s, port)))
            port.mac_address = mac
            # Its addresses made from the MAC (SLAAC) follow it.
            for alloc in port.fixed_ips:
                sub = s.get(models.Subnet, alloc.subnet_id)
                if addresses.automatic(sub):
                    alloc.ip_address = addresses.eui64(sub.cidr, mac)
        if "fixed_ips" in a:
            self._check_named_subnets(s, ctx, port.network_id, a["fixed_ips"])
            addresses.reallocate(s, port, a["fixed_ips"])
        pse = a.get("port_security_enabled", port.port_security_enabled)
        pairs = a["allowed_address_pairs"] if "allowed_address_pairs" in a else \
            [{"ip_address": p.ip_address, "mac_address": p.mac_address}
             for p in port.allowed_address_pairs]
        if pairs and not pse:
            raise exceptions.AddressPairAndPortSecurityRequired()
        if "allowed_address_pairs" in a:
            port.allowed_address_pairs = []
            s.flush()
            port.allowed_address_pairs = _pair_rows(pairs, port.mac_address)
        for k in ("name", "description", "admin_state_up", "device_id", "device_owner",
                  "port_security_enabled"):
            if k in a:
                setattr(port, k, a[k])
        self.plugin.run_hooks("ports", "update", s, ctx, port, a)
        changelog.bump(port)
        if changelog.seen_by_agents(a):
            changelog.record(s, "port", port, "update", port.network_id, before=before)
        s.flush()

    # ------------------------------------------------------------ delete
    def delete_row(self, s, ctx, port):
        held = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
        self.plugin.run_hooks("ports", "delete", s, ctx, port, None)
        changelog.record(s, "port", port, "delete", port.network_id)
        s.delete(port)
        s.flush()
        # The addresses last: the subnet locks are held from here to the
        # commit only.
        addresses.release(s, port.network_id, held)
