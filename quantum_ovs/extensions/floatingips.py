"""Floating IPs, their port forwardings, floating IP pools and the routers'
gateway hosts as Neutron's l3_agent_scheduler shows them: storage, hooks
and HTTP handlers of ``quantum_ovs/api/definitions/floatingips.py``.

Enabled with routers (``[DEFAULT] service_plugins = router``).

A floating IP's address is held by a port of the external network
(``network:floatingip``, no project's, ``device_id`` the floating IP's id),
as in Neutron; that port cannot be deleted through the ports API.
Associated with a fixed IPv4 address of a port, the floating IP belongs
to the router that has a gateway on the floating IP's network and an
interface on the fixed IP's subnet (its ``router_id``); a floating IP
with port forwardings belongs to the router that reaches their internal
addresses.  Every change of a floating IP or of its forwardings is
recorded as a change of the routers concerned (the old one and the new
one): the hosts that hold those routers get them again, whole, with their
floating IPs (quantum_ovs/db/host_view.py).

``status``: DOWN until the agent of the host that applies the floating
IP reports it installed (``"floatingips": [ids]`` in its port report,
POST /agent-api/v1/hosts/{host}/ports): the host of the associated port,
or for a floating IP with forwardings only or one of a port bound to no
host (an Octavia or keepalived VIP, whose address another port holds as
an allowed address pair), the active gateway host of its router (the
first of its gateway hosts whose agent is alive).  Any change
of its association, and a move of its port, sets it DOWN again until the
new host reports.
"""

import ipaddress
import uuid

import sqlalchemy as sa
from oslo_config import cfg

from quantum_ovs import constants, exceptions
from quantum_ovs.api.definitions import floatingips as definition
from quantum_ovs.api.definitions import l3 as l3_definition
from quantum_ovs.api.wsgi import json_response, read_json
from quantum_ovs.db import addresses, changelog, gateways, ipam, models
from quantum_ovs.db.query import chunks
from quantum_ovs.db.resource import Collection, hold
from quantum_ovs.db.session import is_sqlite
from quantum_ovs.timeutils import api_time as _ts

DEFINITION = definition
SERVICE_PLUGIN = ("router", "neutron.services.l3_router.l3_router_plugin.L3RouterPlugin")

OPTS = [("quotas", [cfg.IntOpt("quota_floatingip", default=50,
                               help="Number of floating IPs allowed per project; -1 "
                                    "for unlimited.")]),
        ("DEFAULT", [cfg.IntOpt("max_port_forwarding_shifted_ports", default=256, min=0,
                                help="How many external ports the port forwardings of one "
                                     "floating IP may send to other internal ports (a "
                                     "range whose internal ports are not its external "
                                     "ones, counted over its forwardings). Each is one "
                                     "flow on the router's active gateway host; a range "
                                     "kept to the same ports costs at most 30.")])]

FLOATINGIP, FLOATINGIPS = definition.FLOATINGIP, definition.FLOATINGIPS
OWNER = definition.FLOATINGIP_OWNER
INTERFACE = l3_definition.INTERFACE_OWNER
ROUTER_OWNERS = (INTERFACE, l3_definition.GATEWAY_OWNER, OWNER)
DHCP_OWNER = constants.DEVICE_OWNER_DHCP
ACTIVE, DOWN = "ACTIVE", "DOWN"
bad_fip, bad_pf = definition.bad_fip, definition.bad_pf


def _shifted(lo, hi, ilo, ihi):
    """How many external ports a forwarding sends to other internal ports
    (the compiler's one flow each: rules.gateway.forwarded_ports)."""
    return 0 if ilo == ihi or (ilo, ihi) == (lo, hi) else hi - lo + 1


# ------------------------------------------------------------------ dicts
def _pf_dict(pf):
    single = pf.external_port_lo == pf.external_port_hi and \
        pf.internal_port_lo == pf.internal_port_hi
    return {
        "id": pf.id, "protocol": pf.protocol, "internal_port_id": pf.internal_port_id,
        "internal_ip_address": pf.internal_ip_address, "description": pf.description,
        "external_port": pf.external_port_lo if single else None,
        "internal_port": pf.internal_port_lo if single else None,
        "external_port_range": f"{pf.external_port_lo}:{pf.external_port_hi}",
        "internal_port_range": f"{pf.internal_port_lo}:{pf.internal_port_hi}",
    }


def _fip_pf_dict(pf):
    """A forwarding as the floating IP shows it (expose-port-forwarding-in-fip,
    with id and internal_port_id: floating-ip-port-forwarding-detail; no
    description, as in Neutron)."""
    d = _pf_dict(pf)
    out = {"id": d["id"], "protocol": d["protocol"],
           "internal_ip_address": d["internal_ip_address"],
           "internal_port_id": d["internal_port_id"]}
    if d["external_port"] is not None:
        out.update(internal_port=d["internal_port"], external_port=d["external_port"])
    else:
        out.update(internal_port_range=d["internal_port_range"],
                   external_port_range=d["external_port_range"])
    return out


def fip_dict(f):
    p = f.fixed_port
    details = None
    if p is not None:
        details = {"name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
                   "admin_state_up": p.admin_state_up, "status": p.status,
                   "device_id": p.device_id, "device_owner": p.device_owner}
    return {
        "id": f.id, "project_id": f.project_id, "tenant_id": f.project_id,
        "description": f.description, "floating_ip_address": f.floating_ip_address,
        "floating_network_id": f.floating_network_id, "router_id": f.router_id,
        "port_id": f.fixed_port_id, "fixed_ip_address": f.fixed_ip_address,
        "status": f.status, "port_details": details,
        "port_forwardings": [_fip_pf_dict(x) for x in f.forwardings],
        "revision_number": f.revision_number, "created_at": _ts(f.created_at),
        "updated_at": _ts(f.updated_at), "tags": [t.tag for t in f.tags],
        "dns_name": "", "dns_domain": "",
    }


# ------------------------------------------------------------------ storage
def find_router(s, ext_net_id, subnet_id):
    """The router with a gateway on ``ext_net_id`` and an interface on
    ``subnet_id``, or None: when several, the one whose interface holds
    the subnet's gateway address, else the first by id (as Neutron's
    get_router_for_floatingip: another project's router on a shared
    network, attached by a port of its own, never takes a floating IP
    from the router that serves the subnet's gateway)."""
    RT, RP, A, SN = models.Router, models.RouterPort, models.IPAllocation, models.Subnet
    holds_gateway = sa.case((A.ip_address == SN.gateway_ip, 0), else_=1)
    return s.execute(sa.select(RT.id).join(RP, RP.router_id == RT.id)
                     .join(A, A.port_id == RP.port_id)
                     .join(SN, SN.id == A.subnet_id)
                     .where(RT.gw_network_id == ext_net_id, RP.port_type == INTERFACE,
                            A.subnet_id == subnet_id)
                     .order_by(holds_gateway, RT.id)).scalars().first()


def held_router(s, ext_net_id, subnet_id):
    """find_router, the router held (resource.hold) and found again: a
    removal of the interface or of the gateway it was found by, which
    locks the router, waits for this write, or this write for it and then
    finds what it left (None: no router now)."""
    router_id = find_router(s, ext_net_id, subnet_id)
    for _ in range(3):
        if router_id is None:
            return None
        hold(s, models.Router, [router_id])
        again = find_router(s, ext_net_id, subnet_id)
        if again == router_id:
            return router_id
        router_id = again
    raise exceptions.RetryRequest()


class FloatingIPs(Collection):
    collection = FLOATINGIPS
    resource = FLOATINGIP
    model = models.FloatingIP
    not_found = (definition.FloatingIPNotFound, "floatingip_id")

    def to_dict(self, obj):
        return fip_dict(obj)

    def filter_clause(self, attr, values):
        if attr == "port_id":
            col = models.FloatingIP.fixed_port_id
            want = [x for x in values if x is not None]
            clause = col.in_(want)
            return sa.or_(clause, col.is_(None)) if None in values else clause
        return None

    # -- the routers' change rows
    def touch_routers(self, s, *router_ids):
        routers = self.plugin.collections["routers"]
        for rid in sorted({r for r in router_ids if r}):
            router = s.get(models.Router, rid)
            if router is not None:
                routers.record(s, router, "update")

    # -- create, update, delete
    def check(self, a):
        if a.get("fixed_ip_address") and not a.get("port_id"):
            raise bad_fip("fixed_ip_address cannot be specified without a port_id")

    def create(self, s, ctx, a):
        plugin = self.plugin
        # (held: turning it internal waits for this create, or this for it)
        net = plugin.row(s, ctx, "networks", a["floating_network_id"], bare=True, share=True)
        if s.get(models.ExternalNetwork, net.id) is None:
            raise bad_fip(f"Network {net.id} is not a valid external network")
        subnets = [x for x in addresses.subnets_of(s, net.id)]
        v4 = [x for x in subnets if x.ip_version == 4]
        ip, sid = a.get("floating_ip_address"), a.get("subnet_id")
        if sid is not None:
            sub = next((x for x in subnets if x.id == sid), None)
            if sub is None:
                raise bad_fip(f"Subnet {sid} is not a subnet of the external network "
                              f"{net.id}")
            if sub.ip_version != 4:
                raise bad_fip(f"Subnet {sid} is not an IPv4 subnet")
            requested = {"subnet_id": sid}
        elif ip is not None:
            sub = next((x for x in v4 if ipaddress.ip_address(ip) in
                        ipaddress.ip_network(x.cidr)), None)
            if sub is None:
                raise exceptions.InvalidIpForNetwork(ip_address=ip)
            requested = {"subnet_id": sub.id}
        else:
            # (those whose service types take floating IPs, first)
            v4 = [x for x in addresses.service_subnets(s, net.id, subnets, OWNER)
                  if x.ip_version == 4]
            if not v4:
                raise bad_fip(f"Network {net.id} has no IPv4 subnet for floating IPs")
            requested = None
        if ip is not None:
            requested = dict(requested, ip_address=ip)
            if ip in {x.gateway_ip for x in subnets}:
                raise exceptions.IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
        fip_id = a.get("id") or str(uuid.uuid4())
        port = models.Port(
            id=str(uuid.uuid4()), project_id="", name="", description="",
            network_id=net.id,
            mac_address=addresses.generate_mac(s, net.id, plugin.collections["ports"].base_mac,
                                               plugin.conf.mac_generation_retries),
            admin_state_up=True, status="N/A", device_id=fip_id, device_owner=OWNER,
            port_security_enabled=False, revision_number=0)
        port.allowed_address_pairs, port.tags, port.fixed_ips = [], [], []
        s.add(port)
        s.flush()
        if requested is None:
            allocs = None
            for x in v4:  # the first IPv4 subnet with a free address
                got = ipam.allocate_next(s, x.id, 4)
                if got is not None:
                    allocs = [(x, got)]
                    break
            if allocs is None:
                raise exceptions.IpAddressGenerationFailure(net_id=net.id)
        else:
            allocs = addresses.allocate(s, net.id, port, [requested], OWNER, subnets=subnets)
        sub, address = allocs[0]
        port.fixed_ips = [models.IPAllocation(subnet_id=sub.id, ip_address=address,
                                              network_id=net.id, order=0)]
        s.flush()
        changelog.record(s, "port", port, "create", net.id)
        fip = models.FloatingIP(
            id=fip_id, project_id=a["project_id"], name="", description=a["description"],
            floating_ip_address=address, floating_network_id=net.id,
            floating_port_id=port.id, status=DOWN, revision_number=0)
        fip.tags = []
        fip.forwardings = []
        s.add(fip)
        s.flush()
        if a.get("port_id"):
            self.associate(s, ctx, fip, a["port_id"], a.get("fixed_ip_address"))
        return fip

    def update(self, s, ctx, fip, a):
        if not a:
            # An empty update clears the association (Neutron's behaviour
            # from when the association was a floating IP's only attribute).
            a = {"port_id": None}
        if "description" in a:
            fip.description = a["description"]
        if "port_id" not in a and "fixed_ip_address" not in a:
            return
        port_id = a.get("port_id", fip.fixed_port_id)
        fixed = a.get("fixed_ip_address")
        if port_id is None:
            if fixed is not None:
                raise bad_fip("fixed_ip_address cannot be specified without a port_id")
            self.disassociate(s, fip)
        else:
            self.associate(s, ctx, fip, port_id, fixed)

    def delete(self, s, ctx, fip):
        if fip.forwardings:
            raise definition.FipInUseByPortForwarding(id=fip.id)
        old_router = fip.router_id
        port = s.get(models.Port, fip.floating_port_id)
        s.delete(fip)
        s.flush()
        self.touch_routers(s, old_router)
        if port is not None:
            held = [(x.subnet_id, x.ip_address) for x in port.fixed_ips]
            changelog.record(s, "port", port, "delete", port.network_id)
            s.delete(port)
            s.flush()
            addresses.release(s, port.network_id, held)

    # -- association
    def associate(self, s, ctx, fip, port_id, fixed_ip):
        plugin = self.plugin
        port = plugin.row(s, ctx, "ports", port_id, bare=True)
        if port.project_id != fip.project_id:
            raise bad_fip(f"Cannot create floating IP and bind it to Port {port.id}, since "
                          "that port is owned by a different tenant")
        if port.network_id == fip.floating_network_id:
            raise bad_fip(f"Port {port.id} is on the external network "
                          f"{fip.floating_network_id} of the floating IP")
        if port.device_owner in ROUTER_OWNERS:
            raise bad_fip(f"Port {port.id} has owner {port.device_owner} and cannot be "
                          "associated with a floating IP")
        if port.device_owner == DHCP_OWNER:
            # (Neutron's is_fip_serviced)
            raise bad_fip(f"Port {port.id} is unable to be assigned a floating IP")
        v4 = [x for x in port.fixed_ips if ":" not in x.ip_address]
        if fixed_ip is not None:
            chosen = next((x for x in v4 if x.ip_address == fixed_ip), None)
            if chosen is None:
                raise bad_fip(f"Port {port.id} does not have fixed ip {fixed_ip}")
        elif not v4:
            raise bad_fip(f"Cannot add floating IP to port {port.id} that has no fixed "
                          "IPv4 addresses")
        elif len(v4) > 1:
            raise bad_fip(f"Port {port.id} has multiple fixed IPv4 addresses.  Must "
                          "provide a specific IPv4 address when assigning a floating IP")
        else:
            chosen = v4[0]
        if fip.forwardings:
            raise definition.FipInUseByPortForwarding(id=fip.id)
        F = models.FloatingIP
        other = s.execute(sa.select(F).where(
            F.floating_network_id == fip.floating_network_id, F.fixed_port_id == port.id,
            F.fixed_ip_address == chosen.ip_address, F.id != fip.id)).scalars().first()
        if other is not None:
            raise definition.FloatingIPPortAlreadyAssociated(
                floating_ip_address=fip.floating_ip_address, fip_id=fip.id,
                port_id=port.id, fixed_ip=chosen.ip_address, net_id=fip.floating_network_id)
        router_id = held_router(s, fip.floating_network_id, chosen.subnet_id)
        if router_id is None:
            raise definition.ExternalGatewayForFloatingIPNotFound(
                subnet_id=chosen.subnet_id, external_network_id=fip.floating_network_id,
                port_id=port.id)
        if (fip.fixed_port_id, fip.fixed_ip_address, fip.router_id) == \
                (port.id, chosen.ip_address, router_id):
            return
        old_router = fip.router_id
        fip.fixed_port_id, fip.fixed_ip_address = port.id, chosen.ip_address
        fip.router_id, fip.status = router_id, DOWN
        s.flush()
        s.expire(fip, ["fixed_port"])
        self.touch_routers(s, old_router, router_id)

    def disassociate(self, s, fip):
        if fip.fixed_port_id is None:
            return
        old_router = fip.router_id
        fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = DOWN
        s.flush()
        s.expire(fip, ["fixed_port"])
        self.touch_routers(s, old_router)

    # -- port forwardings
    def pf_check(self, s, ctx, fip, pf_id, a):
        """Validate a forwarding (``a``: its fields, merged with the stored
        ones for an update) on ``fip`` (locked); returns its router."""
        if fip.fixed_port_id is not None:
            raise definition.PortHasBindingFloatingIP(
                floating_ip_address=fip.floating_ip_address, fip_id=fip.id,
                port_id=fip.fixed_port_id, fixed_ip=fip.fixed_ip_address)
        # (locked: a concurrent update of the port's addresses either sees
        # this forwarding, and deletes it if it takes the address away, or
        # is seen by it)
        port = self.plugin.row(s, ctx, "ports", a["internal_port_id"], lock=True, bare=True)
        if port.project_id != fip.project_id:
            # As for an association: the owner of a shared network sees
            # other projects' ports on it, but may not publish them.
            raise bad_pf(f"Cannot forward floating IP {fip.id} to port {port.id}: that port "
                         "is owned by a different project")
        F = models.FloatingIP
        bound = s.execute(sa.select(F).where(
            F.fixed_port_id == port.id,
            F.fixed_ip_address == a["internal_ip_address"])).scalars().first()
        if bound is not None:
            # That address already has a floating IP of its own.
            raise definition.PortHasBindingFloatingIP(
                floating_ip_address=bound.floating_ip_address, fip_id=bound.id,
                port_id=port.id, fixed_ip=bound.fixed_ip_address)
        if port.network_id == fip.floating_network_id:
            raise bad_pf(f"Port {port.id} is on the external network of the floating IP")
        alloc = next((x for x in port.fixed_ips
                      if x.ip_address == a["internal_ip_address"]), None)
        if alloc is None:
            raise bad_pf(f"The internal IP {a['internal_ip_address']} does not correspond "
                         f"to the port {port.id}")
        definition.check_range_lengths(a["external"], a["internal"])
        router_id = held_router(s, fip.floating_network_id, alloc.subnet_id)
        if router_id is None:
            raise definition.ExternalGatewayForFloatingIPNotFound(
                subnet_id=alloc.subnet_id, external_network_id=fip.floating_network_id,
                port_id=port.id)
        others = [x for x in fip.forwardings if x.id != pf_id]
        if others and fip.router_id not in (None, router_id):
            raise bad_pf(f"The internal address {a['internal_ip_address']} is reached "
                         f"through router {router_id}, not through the router "
                         f"{fip.router_id} of the floating IP's other port forwardings")
        lo, hi = a["external"]
        cap = self.plugin.conf.max_port_forwarding_shifted_ports
        before = sum(_shifted(x.external_port_lo, x.external_port_hi, x.internal_port_lo,
                              x.internal_port_hi) for x in fip.forwardings)
        shifted = sum(_shifted(x.external_port_lo, x.external_port_hi, x.internal_port_lo,
                               x.internal_port_hi) for x in others) + _shifted(
            lo, hi, *a["internal"])
        if exceptions.over_cap(cap, shifted, before):
            raise bad_pf(f"The port forwardings of floating IP {fip.id} would send {shifted} "
                         f"external ports to other internal ports; at most {cap} may be "
                         "(a range kept to the same ports has no such limit)")
        for x in others:
            if x.protocol == a["protocol"] and lo <= x.external_port_hi and \
                    x.external_port_lo <= hi:
                raise definition.pf_overlap(
                    fip.id, a["protocol"], "external ports",
                    f"{x.external_port_lo}:{x.external_port_hi}")
        ilo, ihi = a["internal"]
        PF = models.PortForwarding
        for x, owner in s.execute(sa.select(PF, F.project_id).join(F, F.id == PF.floatingip_id)
                                  .where(PF.internal_port_id == port.id,
                                         PF.protocol == a["protocol"],
                                         PF.internal_ip_address == a["internal_ip_address"])):
            if x.id != pf_id and ilo <= x.internal_port_hi and x.internal_port_lo <= ihi:
                # (another project's floating IP is not named: the port's
                # network may be shared, the forwarding is not)
                raise definition.pf_overlap(
                    x.floatingip_id if ctx.is_admin or owner == ctx.project_id else None,
                    a["protocol"], f"internal ports of {a['internal_ip_address']}",
                    f"{x.internal_port_lo}:{x.internal_port_hi}")
        return router_id

    def _pf_row(self, fip, pf_id, port_id=None):
        """The forwarding, read after the floating IP's lock; ``port_id``:
        the internal port locked before it (another writer moved the
        forwarding meanwhile: the transaction is tried again)."""
        pf = next((x for x in fip.forwardings if x.id == pf_id), None)
        if pf is None:
            raise definition.PortForwardingNotFound(id=pf_id)
        if port_id is not None and pf.internal_port_id != port_id:
            raise exceptions.RetryRequest()
        return pf

    @staticmethod
    def _pf_port(s, pf_id):
        """The forwarding's internal port, read as a value (the row itself
        is read after the locks: one kept in the session from before them
        would not be refreshed)."""
        PF = models.PortForwarding
        return s.execute(sa.select(PF.internal_port_id).where(PF.id == pf_id)).scalar()

    def _after_pf(self, s, fip, old_router):
        s.flush()
        s.expire(fip, ["forwardings"])
        if not fip.forwardings:
            fip.router_id = None
        changelog.bump(fip)
        fip.status = DOWN
        s.flush()
        self.touch_routers(s, old_router, fip.router_id)

    @staticmethod
    def _lock_ports(s, ids):
        """The internal ports a port-forwarding write revises, locked
        before the floating IP (a port update that drops forwardings
        locks the port, then bumps its floating IPs: the same order)."""
        P = models.Port
        q = sa.select(P).where(P.id.in_(sorted({x for x in ids if x}))).order_by(P.id)
        if not is_sqlite(s):
            q = q.with_for_update()
        return s.execute(q).scalars().all()

    @staticmethod
    def _revise(ports):
        # (Neutron's PortForwarding revises_on_change: the floating IP and
        # the internal port)
        for port in ports:
            changelog.bump(port)

    def create_pf(self, ctx, fip_id, a):
        def txn(s):
            ports = self._lock_ports(s, [a["internal_port_id"]])
            fip = self.row(s, ctx, fip_id, lock=True)
            router_id = self.pf_check(s, ctx, fip, None, a)
            old_router = fip.router_id
            pf = models.PortForwarding(
                id=str(uuid.uuid4()), floatingip_id=fip.id, protocol=a["protocol"],
                internal_port_id=a["internal_port_id"],
                internal_ip_address=a["internal_ip_address"],
                external_port_lo=a["external"][0], external_port_hi=a["external"][1],
                internal_port_lo=a["internal"][0], internal_port_hi=a["internal"][1],
                description=a.get("description", ""))
            s.add(pf)
            fip.router_id = router_id
            self._revise(ports)
            self._after_pf(s, fip, old_router)
            return _pf_dict(pf)
        return self.plugin.db.write(txn)

    def update_pf(self, ctx, fip_id, pf_id, a):
        def txn(s):
            old_port = self._pf_port(s, pf_id)
            ports = self._lock_ports(s, [a.get("internal_port_id"), old_port])
            fip = self.row(s, ctx, fip_id, lock=True)
            pf = self._pf_row(fip, pf_id, old_port)
            merged = {"protocol": pf.protocol, "internal_port_id": pf.internal_port_id,
                      "internal_ip_address": pf.internal_ip_address,
                      "external": (pf.external_port_lo, pf.external_port_hi),
                      "internal": (pf.internal_port_lo, pf.internal_port_hi)}
            merged.update(a)
            router_id = self.pf_check(s, ctx, fip, pf.id, merged)
            old_router = fip.router_id
            pf.protocol, pf.internal_port_id = merged["protocol"], merged["internal_port_id"]
            pf.internal_ip_address = merged["internal_ip_address"]
            pf.external_port_lo, pf.external_port_hi = merged["external"]
            pf.internal_port_lo, pf.internal_port_hi = merged["internal"]
            if "description" in a:
                pf.description = a["description"]
            fip.router_id = router_id
            self._revise(p for p in ports if p.id in (pf.internal_port_id, old_port))
            self._after_pf(s, fip, old_router)
            return _pf_dict(pf)
        return self.plugin.db.write(txn)

    def delete_pf(self, ctx, fip_id, pf_id):
        def txn(s):
            old_port = self._pf_port(s, pf_id)
            ports = self._lock_ports(s, [old_port])
            fip = self.row(s, ctx, fip_id, lock=True)
            pf = self._pf_row(fip, pf_id, old_port)
            old_router = fip.router_id
            self._revise(p for p in ports if p.id == pf.internal_port_id)
            fip.forwardings.remove(pf)
            self._after_pf(s, fip, old_router)
        self.plugin.db.write(txn)

    def list_pfs(self, ctx, fip_id):
        with self.plugin.db.reader() as s:
            return [_pf_dict(x) for x in self.row(s, ctx, fip_id).forwardings]

    # -- status reports
    def _active_gateway(self, s, router_id):
        """The first of the router's gateway hosts whose agent is alive (as
        the server sees it), or None."""
        alive = {a.host for a in gateways.gateway_agents(s, self.plugin.agents.down_time)}
        return next((h for h in gateways.hosts_of(s, router_id) if h in alive), None)

    def report(self, host, fip_ids):
        """The agent of ``host`` installed these floating IPs: ACTIVE those
        it applies (see the module's doc); returns how many changed."""
        if not fip_ids:
            return 0

        def txn(s):
            F, B = models.FloatingIP, models.PortBinding
            n = 0
            rows = [f for chunk in chunks(sorted(set(fip_ids))) for f in s.execute(
                sa.select(F).where(F.id.in_(chunk), F.status != ACTIVE)).scalars().all()]
            for f in rows:
                if f.fixed_port_id is not None:
                    held = s.execute(sa.select(B.host).where(
                        B.port_id == f.fixed_port_id)).scalar()
                    # (a port bound nowhere, a VIP: the active gateway host)
                    ok = held == host if held else (
                        f.router_id is not None and self._active_gateway(s, f.router_id) == host)
                elif f.router_id is not None and f.forwardings:
                    ok = self._active_gateway(s, f.router_id) == host
                else:
                    ok = False
                if ok:
                    f.status = ACTIVE
                    changelog.bump(f)
                    n += 1
            return n
        return self.plugin.db.write(txn)


# ------------------------------------------------------------------ hooks
def setup(plugin, conf):
    fips = FloatingIPs(plugin)
    plugin.register(fips)
    quotas = getattr(plugin, "quotas", None)
    if quotas is not None and hasattr(quotas, "add_resource"):
        quotas.add_resource(FLOATINGIP, FLOATINGIPS, models.FloatingIP)
    F, PF = models.FloatingIP, models.PortForwarding

    def drop_forwardings(s, port, keep=frozenset()):
        """Delete the forwardings to ``port`` whose internal address is not
        in ``keep`` (as deleting them one by one does: their floating IPs'
        routers hear of it, and a floating IP left with none leaves its
        router)."""
        for f in s.execute(sa.select(F).join(PF, PF.floatingip_id == F.id).where(
                PF.internal_port_id == port.id, PF.internal_ip_address.not_in(keep))
                .distinct().order_by(F.id)).scalars().all():
            old = f.router_id
            for x in [x for x in f.forwardings if x.internal_port_id == port.id
                      and x.internal_ip_address not in keep]:
                f.forwardings.remove(x)
            fips._after_pf(s, f, old)

    def on_port_delete(s, ctx, port, a):
        if port.device_owner == OWNER and s.execute(
                sa.select(F.id).where(F.floating_port_id == port.id)).first():
            raise l3_definition.L3PortInUse(port_id=port.id, device_owner=OWNER)
        # Deleting a port disassociates its floating IPs (and drops the
        # forwardings to it).
        for f in s.execute(sa.select(F).where(F.fixed_port_id == port.id)).scalars():
            fips.disassociate(s, f)
        drop_forwardings(s, port)

    def on_port_update(s, ctx, port, a):
        if "binding:host_id" in a:
            # The port moves: its floating IPs wait for the new host.
            for f in s.execute(sa.select(F).where(F.fixed_port_id == port.id,
                                                  F.status == ACTIVE)).scalars():
                f.status = DOWN
                changelog.bump(f)
        if "fixed_ips" in a or "mac_address" in a:
            ips = {x.ip_address for x in port.fixed_ips}
            for f in s.execute(sa.select(F).where(F.fixed_port_id == port.id)).scalars():
                if f.fixed_ip_address not in ips:
                    fips.disassociate(s, f)
                else:  # (its MAC is the floating IP's)
                    fips.touch_routers(s, f.router_id)
            # A forwarding to an address the port no longer has is deleted
            # (as Neutron does), in the same transaction: the address may go
            # to another port, which must not receive the forwarded traffic.
            drop_forwardings(s, port, keep=ips)

    plugin.add_hook("ports", "delete", on_port_delete, first=True)
    plugin.add_hook("ports", "update", on_port_update)
    plugin.fip_report_hooks.append(fips.report)
    plugin.register_hooks.append(_on_register(plugin))

    def on_agent_delete(s, ctx, agent, a):
        """A (dead) gateway agent deleted: its host leaves every gateway."""
        gateways.leave_all(s, agent.host)

    def on_agent_update(s, ctx, agent, a):
        """A gateway agent set admin_state_up false leaves every router
        gateway, and joins them again (last) when set true: Neutron gives
        an admin-down L3 agent no routers (l3_agentschedulers_db), so the
        next host takes their SNAT, and the drained host reads no network
        behind them.  The hosts are told as for any change of a router's
        gateway hosts."""
        if "admin_state_up" not in a or not gateways.is_gateway(agent):
            return
        if agent.admin_state_up:
            gateways.join_all(s, agent.host)
        else:
            gateways.leave_all(s, agent.host)

    plugin.add_hook("agents", "delete", on_agent_delete)
    plugin.add_hook("agents", "update", on_agent_update)

    def on_network_delete(s, ctx, net):
        """Deleting an external network deletes its floating IPs, as
        Neutron does (those a router's gateway there serves keep the
        network in use: the routers' hook refuses)."""
        for f in s.execute(sa.select(F).where(F.floating_network_id == net.id)
                           .order_by(F.id)).scalars().all():
            changelog.record(s, FLOATINGIP, f, "delete")
            fips.delete(s, ctx, f)
        s.flush()

    plugin.network_cleanups.append(on_network_delete)


def _on_register(plugin):
    def hook(s, agent):
        """A gateway agent that registers joins every router gateway that
        lacks it (a router that had no gateway host gets it first); an agent
        that says it is no gateway (any more) leaves them all."""
        if not gateways.is_gateway(agent):
            # (no longer one: it leaves the gateways it served)
            gateways.leave_all(s, agent.host)
            return
        if not agent.admin_state_up:
            return  # (drained: see on_agent_update)
        gateways.join_all(s, agent.host)
    return hook


# ------------------------------------------------------------------ HTTP
def routes(api):
    plugin, policy = api.plugin, api.policy
    ctl = api.controllers[FLOATINGIPS]
    m = api.mapper

    class _Lazy:  # the handler, looked up when a request comes
        def __getattr__(self, name):
            return getattr(plugin.collections[FLOATINGIPS], name)
    fips = _Lazy()
    m.connect("/v2.0/floatingips/{id}/tags", collection=FLOATINGIPS, action="tags")
    m.connect("/v2.0/floatingips/{id}/tags/{tag}", collection=FLOATINGIPS, action="tag")
    fmt = "{fmt:(\\.json)?}"

    def fip_target(ctx, fip_id, action):
        current = ctl._get_visible(ctx, fip_id)
        policy.enforce(action, ctx, current)
        return current

    def fields_of(req):
        return set(req.GET.getall("fields")) - {""}

    def only(d, fields):
        return {k: v for k, v in d.items() if not fields or k in fields}

    # -- port forwardings
    PF_FILTERS = {"protocol": str, "internal_port_id": str, "internal_ip_address": str,
                  "external_port": int, "internal_port": int, "description": str,
                  "id": str, "external_port_range": str, "internal_port_range": str}

    def pf_collection(req, ctx, fip_id, **kw):
        if req.method == "POST":
            fip_target(ctx, fip_id, "create_floatingip_port_forwarding")
            a = definition.port_forwarding_body(read_json(req), create=True)
            return json_response({"port_forwarding": fips.create_pf(ctx, fip_id, a)},
                                 status=201)
        fip_target(ctx, fip_id, "get_floatingip_port_forwarding")
        items = fips.list_pfs(ctx, fip_id)
        for key in set(req.GET.keys()) - {"fields", "sort_key", "sort_dir", "limit",
                                          "marker", "page_reverse"}:
            if key not in PF_FILTERS:
                raise exceptions.BadRequest(resource="port_forwarding",
                                            msg=f"[{key}] is invalid attribute for filtering")
            want = set(req.GET.getall(key))
            items = [x for x in items if str(x[key]) in want]
        # Sorted and paged as the collections are (a floating IP has few
        # forwardings: in memory), NULL below every value.
        sorts = ctl._parse_sorts_of(req.GET, PF_FILTERS) or [("id", True)]
        for key, asc in reversed(sorts + [("id", True)]):
            items.sort(key=lambda x, k=key: (x[k] is not None,
                                             x[k] if x[k] is not None else 0),
                       reverse=not asc)
        limit, marker, page_reverse = ctl._parse_paging(req.GET)
        body = {}
        if limit:
            at = next((i for i, x in enumerate(items) if x["id"] == marker), None)
            if page_reverse:
                end = len(items) if at is None else at
                items = items[max(0, end - limit):end]
            else:
                items = items[(0 if at is None else at + 1):][:limit]
            body["port_forwardings_links"] = ctl._links(req, items, limit, marker,
                                                        page_reverse)
        fields = fields_of(req)
        body["port_forwardings"] = [only(x, fields) for x in items]
        return json_response(body)

    def pf_member(req, ctx, fip_id, pf_id, **kw):
        if req.method == "GET":
            fip_target(ctx, fip_id, "get_floatingip_port_forwarding")
            pf = next((x for x in fips.list_pfs(ctx, fip_id) if x["id"] == pf_id), None)
            if pf is None:
                raise definition.PortForwardingNotFound(id=pf_id)
            return json_response({"port_forwarding": only(pf, fields_of(req))})
        if req.method == "PUT":
            fip_target(ctx, fip_id, "update_floatingip_port_forwarding")
            a = definition.port_forwarding_body(read_json(req), create=False)
            return json_response({"port_forwarding": fips.update_pf(ctx, fip_id, pf_id, a)})
        fip_target(ctx, fip_id, "delete_floatingip_port_forwarding")
        fips.delete_pf(ctx, fip_id, pf_id)
        return json_response(None, status=204)

    api.add_route("/v2.0/floatingips/{fip_id}/port_forwardings" + fmt,
                  {"GET": pf_collection, "POST": pf_collection})
    api.add_route("/v2.0/floatingips/{fip_id}/port_forwardings/{pf_id}" + fmt,
                  {"GET": pf_member, "PUT": pf_member, "DELETE": pf_member})

    # -- floating IP pools: the IPv4 subnets of the external networks the
    # caller sees (an external network given to other projects only is
    # not listed: Neutron lists every one, found by review), each in the
    # caller's project, as Neutron labels them (not their owners', which
    # another project need not learn)
    def pools(req, ctx, **kw):
        policy.enforce("get_floatingip_pool", ctx, {"project_id": ctx.project_id})
        S, E = models.Subnet, models.ExternalNetwork
        q = (sa.select(S.id, S.name, S.network_id, S.cidr)
             .join(E, E.network_id == S.network_id).where(S.ip_version == 4))
        visible = plugin.collections["networks"].visible(ctx)
        if visible is not None:
            q = q.where(S.network_id.in_(sa.select(models.Network.id).where(visible)))
        with plugin.db.reader() as s:
            rows = s.execute(q.order_by(S.id)).all()
        fields = fields_of(req)
        out = [only({"subnet_id": r.id, "subnet_name": r.name, "network_id": r.network_id,
                     "cidr": r.cidr, "project_id": ctx.project_id,
                     "tenant_id": ctx.project_id},
                    fields) for r in rows]
        return json_response({"floatingip_pools": out})

    # Neutron's path has a hyphen (its extension paths do); the underscore
    # one, served before, stays for clients written against it.
    api.add_route("/v2.0/floatingip-pools" + fmt, {"GET": pools})
    api.add_route("/v2.0/floatingip_pools" + fmt, {"GET": pools})

    # -- gateway hosts (l3_agent_scheduler's shape)
    def l3_agents(req, ctx, router_id, **kw):
        policy.enforce("get_l3-agents", ctx, {"project_id": ctx.project_id})
        agents = plugin.agents
        with plugin.db.reader() as s:
            plugin.row(s, None, "routers", router_id)
            hosts = gateways.hosts_of(s, router_id)
            AG = models.Agent
            rows = {a.host: a for a in s.execute(sa.select(AG).where(
                AG.host.in_(hosts), AG.agent_type == gateways.AGENT_TYPE)).scalars()} \
                if hosts else {}
            out, active = [], False
            for h in hosts:
                a = rows.get(h)
                if a is None:
                    continue
                d = agents.to_dict(a)
                if not active and d["alive"] and a.admin_state_up:
                    d["ha_state"], active = "active", True
                else:
                    d["ha_state"] = "standby"
                out.append(d)
        return json_response({"agents": out})

    def l3_routers(req, ctx, agent_id, **kw):
        policy.enforce("get_l3-routers", ctx, {"project_id": ctx.project_id})
        with plugin.db.reader() as s:
            agent = plugin.row(s, None, "agents", agent_id)
            ids = sorted(gateways.routers_of_host(s, agent.host))
            rows = s.execute(sa.select(models.Router).where(models.Router.id.in_(ids))
                             .order_by(models.Router.id)).scalars().all() if ids else []
            out = [plugin.to_dict("routers", r) for r in rows]
        return json_response({"routers": out})

    api.add_route("/v2.0/routers/{router_id}/l3-agents" + fmt, {"GET": l3_agents})
    api.add_route("/v2.0/agents/{agent_id}/l3-routers" + fmt, {"GET": l3_routers})
