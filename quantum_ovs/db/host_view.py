"""What one host needs of the logical model, read from the database.

``full(s, host)`` builds the whole HostView; ``delta(s, host, changes)``
builds the Delta that brings an agent from revision R to now, given the
change rows after R.  Both read with Core queries (no ORM objects): a
host view can hold tens of thousands of ports.  A view holds the host's
own networks and, for the routers on them, the routers and their other
networks (see routed; compiler/synth.py slice_for_host is the reference).
"""

import dataclasses
import ipaddress
import json

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs import model as m
from quantum_ovs import wire
from quantum_ovs.db import models
from quantum_ovs.db.address_scopes import same_scope, scopes_of_subnets
from quantum_ovs.db.query import chunks as _chunks

P, B, A = models.Port, models.PortBinding, models.IPAllocation
N, SEG, S = models.Network, models.NetworkSegment, models.Subnet
AAP, SGB = models.AllowedAddressPair, models.SecurityGroupPortBinding
R, AG, SG = models.SecurityGroupRule, models.Agent, models.SecurityGroup
IB = models.InactivePortBinding
RT, RP, RR = models.Router, models.RouterPort, models.RouterRoute
GH, FIP, PF = models.RouterGatewayHost, models.FloatingIP, models.PortForwarding
EDO = models.ExtraDhcpOpt
AGA = models.AddressAssociation
# RouterPort.port_type of a router's interface (the port's device_owner).
INTERFACE = "network:router_interface"

class RuleWithoutProtocolNumber(RuntimeError):
    """A stored rule names a protocol but has no number for it: never read
    as "every protocol"."""


def rule_protocol(rule):
    """The IP protocol number a stored rule matches (None: every protocol),
    as the API computed it from quantum_ovs.constants when the rule was
    made; a rule with a protocol and no number is an error, not "any"."""
    if rule.protocol_number is None and rule.protocol is not None:
        raise RuleWithoutProtocolNumber(
            f"security group rule {rule.id} has protocol {rule.protocol!r} but no "
            "protocol number")
    return rule.protocol_number


def local_networks(s, host, exclude_ports=()):
    """The networks of the ports bound to ``host`` or pending there."""
    q = sa.select(P.network_id).join(B, B.port_id == P.id).where(B.host == host)
    q2 = sa.select(P.network_id).join(IB, IB.port_id == P.id).where(IB.host == host,
                                                                    IB.pending.is_(True))
    if exclude_ports:
        q = q.where(P.id.not_in(list(exclude_ports)))
        q2 = q2.where(P.id.not_in(list(exclude_ports)))
    return {r[0] for r in s.execute(sa.union(q, q2))}


# ------------------------------------------------------------ pending bindings
# A port with a pending binding on a host (the destination of a move, see
# quantum_ovs/extensions/binding.py) belongs to that host's view too: its
# network, subnets, security groups (with their members) and peers are
# there before the move.  The port itself shows as local there only until
# the host's agent has reported its VIF plugged and its flows installed
# (the agent reports local ports only, and nova waits for that report):
# from then until activation the host sees it where it is active, so that
# its other ports keep reaching the VM on its current host while nova
# copies it; activation then only adds the port's own flows.  Every other
# host sees the port where its active binding is.
def _local_pending(q):
    return q.where(IB.pending.is_(True), IB.flows_installed.is_(False))


def pending_ports(s, host):
    """The ids of the ports shown as local on ``host`` before activation."""
    return set(s.execute(_local_pending(sa.select(IB.port_id).where(IB.host == host))
                         ).scalars())


def _all_pending(s):
    """{host: ids of the ports shown as local there before activation}
    (a small table: the ports being moved)."""
    out = {}
    for r in s.execute(_local_pending(sa.select(IB.port_id, IB.host))):
        out.setdefault(r.host, set()).add(r.port_id)
    return out


def as_seen_by(host, ports, pending):
    """``ports`` as ``host`` sees them (``pending``: see pending_ports):
    a port pending here is bound here; a port of another host (or of none)
    comes as model.as_remote has it."""
    pending = pending or ()
    remote = m.as_remote
    return [dataclasses.replace(p, host=host) if p.id in pending
            else p if p.host == host else remote(p) for p in ports]


def load_networks(s, ids):
    out = []
    for chunk in _chunks(ids):
        for r in s.execute(sa.select(N.id, N.mtu, N.admin_state_up, SEG.network_type,
                                     SEG.physical_network, SEG.segmentation_id, N.dns_domain)
                           .outerjoin(SEG, SEG.network_id == N.id).where(N.id.in_(chunk))):
            out.append(m.Network(id=r.id, mtu=r.mtu, admin_state_up=r.admin_state_up,
                                 segment=m.Segment(r.network_type or "local",
                                                   r.physical_network, r.segmentation_id),
                                 dns_domain=r.dns_domain or ""))
    return out


def load_subnets(s, where):
    # (a subnet's service types are no host's business)
    rows = s.execute(sa.select(S).where(where).options(
        orm.noload(S.service_types))).scalars().all()
    return [m.Subnet(id=x.id, network_id=x.network_id, cidr=x.cidr, ip_version=x.ip_version,
                     gateway_ip=x.gateway_ip, enable_dhcp=x.enable_dhcp,
                     dns_nameservers=tuple(d.address for d in x.dns_nameservers),
                     host_routes=tuple(m.HostRoute(r.destination, r.nexthop)
                                       for r in x.host_routes),
                     ipv6_ra_mode=x.ipv6_ra_mode, ipv6_address_mode=x.ipv6_address_mode)
            for x in rows]


def _port_rows(s, where):
    """The ports matching ``where`` (a clause on Port) as rows, and
    {port id: [rows]} of their fixed IPs, allowed address pairs, security
    group ids and extra DHCP options, each in the order the port holds
    them (security group ids: in no order)."""
    # (Core, not ORM, execution: the ORM's row processing cost as much as
    # the reads, for plain columns it has nothing to add.)
    run = s.connection().execute
    rows = run(sa.select(P.id, P.network_id, P.mac_address, P.admin_state_up,
                         P.port_security_enabled, P.device_owner, P.device_id,
                         P.project_id, B.host, P.dns_name)
               .outerjoin(B, B.port_id == P.id).where(where)).all()
    ips, pairs, groups, dhcp_opts = {}, {}, {}, {}
    if not rows:
        return rows, ips, pairs, groups, dhcp_opts
    # Each related table read once, joined to the same ports (not by lists
    # of ids: expanding thousands of bound parameters cost more than the
    # reads themselves).
    for r in run(sa.select(A.port_id, A.subnet_id, A.ip_address)
                 .join(P, P.id == A.port_id).where(where).order_by(A.port_id, A.order)).all():
        ips.setdefault(r[0], []).append(r)
    for r in run(sa.select(AAP.port_id, AAP.ip_address, AAP.mac_address)
                 .join(P, P.id == AAP.port_id).where(where).order_by(AAP.port_id, AAP.order)).all():
        pairs.setdefault(r[0], []).append(r)
    for r in run(sa.select(SGB.port_id, SGB.security_group_id)
                 .join(P, P.id == SGB.port_id).where(where)).all():
        groups.setdefault(r[0], []).append(r[1])
    for r in run(sa.select(EDO.port_id, EDO.opt_name, EDO.opt_value, EDO.ip_version)
                 .join(P, P.id == EDO.port_id).where(where).order_by(EDO.port_id, EDO.order)).all():
        dhcp_opts.setdefault(r[0], []).append(r)
    return rows, ips, pairs, groups, dhcp_opts


def load_ports(s, where):
    """Ports matching ``where`` (a clause on Port), as model values."""
    rows, ips, pairs, groups, dhcp_opts = _port_rows(s, where)
    # (rows unpacked: a Row's attributes by name cost a microsecond each)
    return [m.Port(id=pid, network_id=net, mac_address=mac,
                   fixed_ips=tuple(m.FixedIP(x[1], x[2]) for x in ips.get(pid, ())),
                   admin_state_up=up, port_security_enabled=secured,
                   security_groups=tuple(sorted(groups.get(pid, ()))),
                   allowed_address_pairs=tuple(m.AddressPair(x[1], x[2])
                                               for x in pairs.get(pid, ())),
                   device_owner=owner, device_id=device, host=bound or None,
                   project_id=project or "", dns_name=dns or "",
                   extra_dhcp_opts=tuple(m.DhcpOption(x[1], x[2], x[3])
                                         for x in dhcp_opts.get(pid, ())))
            for pid, net, mac, up, secured, owner, device, project, bound, dns in rows]


def port_dicts(s, where, host, pending):
    """What wire.view_to_dict writes for load_ports(s, where) as seen by
    ``host`` (as_seen_by with ``pending``), built from the rows directly:
    a full view of 10,000 ports without making 10,000 model Ports (and
    their addresses) only to write them out again."""
    rows, ips, pairs, groups, dhcp_opts = _port_rows(s, where)
    port = wire.port_dict
    pending = pending or ()
    out = []
    for pid, net, mac, up, secured, owner, device, project, bound, dns in rows:
        # (else: as model.as_remote has it; test_the_wire_full_view_equals_the_model_one
        # fails if the two ever differ)
        mine = pid in pending or bound == host
        out.append(port(pid, net, mac, [[x[1], x[2]] for x in ips.get(pid, ())],
                        up, secured, sorted(groups.get(pid, ())),
                        [[x[1], x[2]] for x in pairs.get(pid, ())], owner,
                        device if mine else "",
                        host if pid in pending else (bound or None),
                        (project or "") if mine else "", dns or "",
                        [[x[1], x[2], x[3]] for x in dhcp_opts.get(pid, ())] if mine else []))
    return out


def load_groups(s, local_group_ids):
    """The local ports' groups with their rules, and the groups their
    rules name as remote groups, with member addresses."""
    return load_some_groups(s, local_group_ids)


def load_rules(s, group_ids):
    """{group id: its Rule values} (groups without rules: absent)."""
    rules = {}
    for chunk in _chunks(group_ids):
        for r in s.execute(sa.select(R).where(R.security_group_id.in_(chunk))).scalars():
            rules.setdefault(r.security_group_id, []).append(m.Rule(
                id=r.id, security_group_id=r.security_group_id, direction=r.direction,
                ethertype=r.ethertype, protocol=rule_protocol(r),
                port_range_min=r.port_range_min, port_range_max=r.port_range_max,
                remote_ip_prefix=r.remote_ip_prefix, remote_group_id=r.remote_group_id,
                remote_address_group_id=r.remote_address_group_id))
    return {g: tuple(sorted(rs, key=lambda r: r.id)) for g, rs in rules.items()}


def load_members(s, group_ids):
    """{group id: its member addresses} (fixed IPs and allowed address
    pairs of its ports, as m.member_address spells them: a pair of
    10.0.0.5/32 and a fixed IP 10.0.0.5 are one member)."""
    members = {g: set() for g in group_ids}
    for chunk in _chunks(group_ids):
        for r in s.execute(sa.select(SGB.security_group_id, A.ip_address)
                           .join(A, A.port_id == SGB.port_id)
                           .where(SGB.security_group_id.in_(chunk))):
            members[r.security_group_id].add(r.ip_address)  # (stored canonical)
        for r in s.execute(sa.select(SGB.security_group_id, AAP.ip_address, AAP.mac_address)
                           .join(AAP, AAP.port_id == SGB.port_id)
                           .where(SGB.security_group_id.in_(chunk))):
            members[r.security_group_id].add(m.member_address(r.ip_address, r.mac_address))
    return {g: frozenset(a) for g, a in members.items()}


def load_some_groups(s, local_group_ids, only=None, rules=None):
    """Of the groups a host needs (``local_group_ids``: its ports' groups,
    shown with their rules; and the groups their rules name as remote
    groups, shown with their member addresses), those in ``only`` (None:
    all), as the full view has them.  ``rules``: load_rules of the local
    groups, when the caller has it."""
    local = set(local_group_ids)
    if rules is None:
        rules = load_rules(s, local)
    remote = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
    ids = local | remote
    if only is not None:
        ids &= set(only)
    members = load_members(s, remote & ids)
    stateless = set()
    for chunk in _chunks(sorted(local & ids)):
        stateless.update(s.execute(sa.select(SG.id).where(
            SG.id.in_(chunk), SG.stateful == sa.false())).scalars())
    return [m.SecurityGroup(id=g, rules=rules.get(g, ()) if g in local else (),
                            member_ips=members.get(g, frozenset()),
                            stateful=g not in stateless) for g in sorted(ids)]


def load_address_groups(s, ids):
    """The address groups ``ids`` with their addresses (those that exist)."""
    found = {}
    for chunk in _chunks(ids):
        for r in s.execute(sa.select(models.AddressGroup.id)
                           .where(models.AddressGroup.id.in_(chunk))):
            found[r.id] = set()
        for r in s.execute(sa.select(AGA.address_group_id, AGA.address)
                           .where(AGA.address_group_id.in_(chunk))):
            found[r.address_group_id].add(r.address)
    return [m.AddressGroup(id=g, addresses=frozenset(a)) for g, a in sorted(found.items())]


def address_group_ids(s, group_ids):
    """The address groups that the rules of these groups name."""
    out = set()
    for chunk in _chunks(group_ids):
        out.update(r[0] for r in s.execute(
            sa.select(R.remote_address_group_id)
            .where(R.security_group_id.in_(chunk),
                   R.remote_address_group_id.is_not(None)).distinct()))
    return out


def _net_hosts(s, network_ids, memo):
    """The hosts with ports on these networks (each network read once per
    memo)."""
    missing = [n for n in network_ids if ("net_hosts", n) not in memo]
    for n in missing:
        memo[("net_hosts", n)] = set()
    for chunk in _chunks(missing):
        for r in s.execute(sa.select(P.network_id, B.host).join(P, P.id == B.port_id)
                           .where(P.network_id.in_(chunk), B.host != "").distinct()):
            memo[("net_hosts", r.network_id)].add(r.host)
        for r in s.execute(sa.select(P.network_id, IB.host).join(P, P.id == IB.port_id)
                           .where(P.network_id.in_(chunk), IB.pending.is_(True)).distinct()):
            memo[("net_hosts", r.network_id)].add(r.host)
    return set().union(*(memo[("net_hosts", n)] for n in network_ids))


def _host_networks(s, hosts, memo):
    """{host: the networks it has ports on} (each host read once per memo)."""
    missing = [h for h in hosts if ("host_nets", h) not in memo]
    for h in missing:
        memo[("host_nets", h)] = set()
    for chunk in _chunks(missing):
        for r in s.execute(sa.select(B.host, P.network_id).join(P, P.id == B.port_id)
                           .where(B.host.in_(chunk)).distinct()):
            memo[("host_nets", r.host)].add(r.network_id)
        for r in s.execute(sa.select(IB.host, P.network_id).join(P, P.id == IB.port_id)
                           .where(IB.host.in_(chunk), IB.pending.is_(True)).distinct()):
            memo[("host_nets", r.host)].add(r.network_id)
    return {h: memo[("host_nets", h)] for h in hosts}


def remote_hosts(s, host, network_ids, memo=None, routers=()):
    """The other hosts with ports on these networks, and the gateway hosts
    of ``routers``, with their tunnel IPs.

    ``memo`` (see delta) keeps each network's hosts and each agent's
    tunnel IP, so that the deltas of many hosts read them once."""
    memo = {} if memo is None else memo
    hosts = _net_hosts(s, network_ids, memo) | gateway_hosts(s, routers, memo)
    return _with_tunnel_ips(s, hosts - {host}, memo)


def _address(value):
    """``value`` as a canonical IP address, or None: a row registered
    before the agent API checked configurations' tunnel_ip is never passed
    on to other hosts as it was sent."""
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _with_tunnel_ips(s, hosts, memo):
    """RemoteHost values for the hosts that have a tunnel IP, by name."""
    unknown = [h for h in hosts if ("tunnel_ip", h) not in memo]
    for h in unknown:
        memo[("tunnel_ip", h)] = None
    for chunk in _chunks(unknown):
        for r in s.execute(sa.select(AG.host, AG.tunnel_ip, AG.configurations)
                           .where(AG.host.in_(chunk))):
            memo[("tunnel_ip", r.host)] = _address(
                r.tunnel_ip or json.loads(r.configurations or "{}").get("tunnel_ip"))
    return sorted((m.RemoteHost(h, memo[("tunnel_ip", h)]) for h in hosts
                   if memo[("tunnel_ip", h)]), key=lambda h: h.name)


def local_groups(s, host, exclude_ports=()):
    """The security groups of the ports bound to ``host`` or pending there
    (but ``exclude_ports``)."""
    q = sa.select(SGB.security_group_id).join(B, B.port_id == SGB.port_id).where(B.host == host)
    q2 = (sa.select(SGB.security_group_id).join(IB, IB.port_id == SGB.port_id)
          .where(IB.host == host, IB.pending.is_(True)))
    if exclude_ports:
        q = q.where(SGB.port_id.not_in(list(exclude_ports)))
        q2 = q2.where(SGB.port_id.not_in(list(exclude_ports)))
    return {r[0] for r in s.execute(sa.union(q, q2))}


def remote_group_ids(s, group_ids):
    """The groups that the rules of these groups name as remote groups."""
    out = set()
    for chunk in _chunks(group_ids):
        out.update(r[0] for r in s.execute(
            sa.select(R.remote_group_id)
            .where(R.security_group_id.in_(chunk), R.remote_group_id.is_not(None)).distinct()))
    return out


def relevant_groups(s, host, local=None):
    """The host's groups (``local``, read when not given), the groups
    their rules name as remote groups and the address groups they name:
    a change of any of them concerns the host."""
    if local is None:
        local = local_groups(s, host)
    return set(local) | remote_group_ids(s, local) | address_group_ids(s, local)


# ------------------------------------------------------------ routers
# A host's view holds its own networks (those of its bound or pending
# ports), every router with an interface on one of them, and all of those
# routers' other networks (with their subnets, ports and remote hosts):
# the destinations it routes to.  One level only: a network reached
# through a router the host does not hold is not in its view
# (compiler/synth.py slice_for_host is the reference).
#
# External connectivity (issue 14): a router's networks include its
# gateway's external network (with its subnets and ports: the gateway
# ports and floating IPs' ports among them), and a gateway host's view
# holds every router whose gateway it serves, as if it had a port on one
# of the router's networks.  The gateway hosts of the view's routers are
# among its remote hosts (their tunnel IPs).
def routed(s, own, memo=None, host=None):
    """({router id: its networks (interfaces' and gateway's)} of the
    routers with an interface on one of the networks ``own`` (and, given
    ``host``, the routers whose gateway it serves), the view's networks:
    ``own`` and theirs).  ``memo`` (see delta) keeps each network's
    routers and each router's networks, so that the deltas of many hosts
    read them once."""
    memo = {} if memo is None else memo
    missing = [n for n in own if ("net_routers", n) not in memo]
    for n in missing:
        memo[("net_routers", n)] = set()
    for chunk in _chunks(missing):
        for r in s.execute(sa.select(RP.router_id, P.network_id).join(P, P.id == RP.port_id)
                           .where(RP.port_type == INTERFACE, P.network_id.in_(chunk))):
            memo[("net_routers", r.network_id)].add(r.router_id)
    ids = set().union(*(memo[("net_routers", n)] for n in own))
    if host is not None:
        ids |= gateway_routers(s, host, memo)
    missing = [r for r in ids if ("router_nets", r) not in memo]
    for r in missing:
        memo[("router_nets", r)] = set()
    for chunk in _chunks(missing):
        for r in s.execute(sa.select(RP.router_id, P.network_id).join(P, P.id == RP.port_id)
                           .where(RP.port_type == INTERFACE, RP.router_id.in_(chunk))):
            memo[("router_nets", r.router_id)].add(r.network_id)
        for r in s.execute(sa.select(RT.id, RT.gw_network_id).where(
                RT.id.in_(chunk), RT.gw_network_id.is_not(None))):
            memo[("router_nets", r.id)].add(r.gw_network_id)
    routers = {r: memo[("router_nets", r)] for r in ids}
    return routers, set(own).union(*routers.values())


def gateway_routers(s, host, memo=None):
    """The routers whose gateway ``host`` serves."""
    if memo is None:
        return set(s.execute(sa.select(GH.router_id).where(GH.host == host)).scalars())
    # For the deltas of many hosts: the whole (small) table, read once.
    key = ("gateway_routers",)
    if key not in memo:
        found = {}
        for r in s.execute(sa.select(GH.host, GH.router_id)):
            found.setdefault(r.host, set()).add(r.router_id)
        memo[key] = found
    return set(memo[key].get(host, ()))


def gateway_hosts(s, router_ids, memo=None):
    """The gateway hosts of these routers."""
    memo = {} if memo is None else memo
    missing = [r for r in router_ids if ("gateway_hosts", r) not in memo]
    for r in missing:
        memo[("gateway_hosts", r)] = set()
    for chunk in _chunks(missing):
        for r in s.execute(sa.select(GH.router_id, GH.host).where(GH.router_id.in_(chunk))):
            memo[("gateway_hosts", r.router_id)].add(r.host)
    return set().union(*(memo[("gateway_hosts", r)] for r in router_ids))


def view_networks(s, host):
    """The networks of ``host``'s view (see routed)."""
    return routed(s, local_networks(s, host), host=host)[1]


def load_routers(s, ids):
    """The routers ``ids`` (those that exist), as model values: one
    interface per address of each interface port, in attachment order."""
    ids = sorted(ids)
    if not ids:
        return []
    base, ifaces, routes, gws, hosts, gw_subnets, gw_subnets6 = {}, {}, {}, {}, {}, {}, {}
    for chunk in _chunks(ids):
        for r in s.execute(sa.select(RT.id, RT.admin_state_up, RT.gw_network_id, RT.gw_port_id,
                                     RT.enable_snat, RT.redirect_key)
                           .where(RT.id.in_(chunk))):
            base[r.id] = r
        for r in s.execute(sa.select(GH.router_id, GH.host).where(GH.router_id.in_(chunk))
                           .order_by(GH.router_id, GH.priority, GH.host)):
            hosts.setdefault(r.router_id, []).append(r.host)
        for r in s.execute(sa.select(RP.router_id, P.id, P.network_id, P.mac_address,
                                     A.subnet_id, A.ip_address, S.cidr)
                           .join(P, P.id == RP.port_id).join(A, A.port_id == P.id)
                           .join(S, S.id == A.subnet_id)
                           .where(RP.router_id.in_(chunk), RP.port_type == INTERFACE)
                           .order_by(RP.router_id, RP.order, P.id, A.order)):
            ifaces.setdefault(r.router_id, []).append(m.RouterInterface(
                port_id=r.id, network_id=r.network_id, subnet_id=r.subnet_id,
                ip_address=r.ip_address, prefixlen=int(r.cidr.split("/")[1]),
                mac_address=r.mac_address))
        for r in s.execute(sa.select(RR.router_id, RR.destination, RR.nexthop)
                           .where(RR.router_id.in_(chunk))
                           .order_by(RR.router_id, RR.destination, RR.nexthop)):
            routes.setdefault(r.router_id, []).append(m.HostRoute(r.destination, r.nexthop))
    gw_ports = [b.gw_port_id for b in base.values() if b.gw_port_id]
    for chunk in _chunks(gw_ports):
        for r in s.execute(sa.select(P.id, P.mac_address, A.ip_address, A.subnet_id)
                           .outerjoin(A, A.port_id == P.id).where(P.id.in_(chunk))
                           .order_by(P.id, A.order)):
            mac, ips = gws.setdefault(r.id, (r.mac_address, []))
            if r.ip_address is not None:
                ips.append(r.ip_address)
                (gw_subnets6 if ":" in r.ip_address else gw_subnets).setdefault(
                    r.id, r.subnet_id)
    # the address scopes of the gateways' subnets and of the interfaces':
    # an interface subnet in its gateway's scope is not NATed, and a router
    # routes nothing untranslated between subnets of different scopes
    scopes = {}
    for chunk in _chunks(sorted(set(gw_subnets.values()) | set(gw_subnets6.values()) | {
            i.subnet_id for x in ifaces.values() for i in x})):
        scopes.update(scopes_of_subnets(s, chunk))
    for rid, x in ifaces.items():
        ifaces[rid] = [dataclasses.replace(i, address_scope_id=scopes.get(i.subnet_id))
                       for i in x]
    fips = load_floating_ips(s, list(base), {
        rid: gws[b.gw_port_id][0] for rid, b in base.items() if b.gw_port_id in gws})
    out = []
    for rid in ids:
        b = base.get(rid)
        if b is None:
            continue
        gw = None
        if b.gw_network_id and b.gw_port_id in gws:
            mac, ips = gws[b.gw_port_id]
            scope = scopes.get(gw_subnets.get(b.gw_port_id))
            unnatted = sorted({i.cidr for i in ifaces.get(rid, ()) if ":" not in i.ip_address
                               and same_scope(scopes.get(i.subnet_id), scope)})
            gw = m.RouterGateway(network_id=b.gw_network_id, port_id=b.gw_port_id,
                                 mac_address=mac, ip_addresses=tuple(ips),
                                 enable_snat=b.enable_snat,
                                 hosts=tuple(hosts.get(rid, ())),
                                 redirect_key=b.redirect_key or 0,
                                 unnatted=tuple(unnatted), address_scope_v4=scope,
                                 address_scope_v6=scopes.get(gw_subnets6.get(b.gw_port_id)))
        out.append(m.Router(id=rid, admin_state_up=b.admin_state_up,
                            interfaces=tuple(ifaces.get(rid, ())),
                            routes=tuple(routes.get(rid, ())), gateway=gw,
                            floating_ips=tuple(fips.get(rid, ()))))
    return out


def load_floating_ips(s, router_ids, gw_macs):
    """{router id: its FloatingIP values} (by address): those associated
    with a port (its MAC) and those with port forwardings (the gateway
    port's MAC, ``gw_macs``: router id -> MAC)."""
    rows, pfs = [], {}
    for chunk in _chunks(router_ids):
        rows += s.execute(sa.select(FIP.id, FIP.router_id, FIP.floating_ip_address,
                                    FIP.floating_network_id, FIP.fixed_port_id,
                                    FIP.fixed_ip_address, P.mac_address)
                          .outerjoin(P, P.id == FIP.fixed_port_id)
                          .where(FIP.router_id.in_(chunk))).all()
    for chunk in _chunks([r.id for r in rows]):
        for x in s.execute(sa.select(PF).where(PF.floatingip_id.in_(chunk))
                           .order_by(PF.floatingip_id, PF.protocol, PF.external_port_lo)
                           ).scalars():
            pfs.setdefault(x.floatingip_id, []).append(m.PortForwarding(
                id=x.id, protocol=x.protocol, internal_port_id=x.internal_port_id,
                internal_ip_address=x.internal_ip_address,
                external_port_lo=x.external_port_lo, external_port_hi=x.external_port_hi,
                internal_port_lo=x.internal_port_lo, internal_port_hi=x.internal_port_hi))
    out = {}
    for r in sorted(rows, key=lambda r: (r.router_id, r.floating_ip_address, r.id)):
        fwd = tuple(pfs.get(r.id, ()))
        if r.fixed_port_id is None and not fwd:
            continue
        out.setdefault(r.router_id, []).append(m.FloatingIP(
            id=r.id, floating_ip_address=r.floating_ip_address,
            floating_network_id=r.floating_network_id, port_id=r.fixed_port_id,
            fixed_ip_address=r.fixed_ip_address,
            mac_address=r.mac_address if r.fixed_port_id else gw_macs.get(r.router_id),
            port_forwardings=fwd))
    return out


def _tunnel_ip(s, host):
    r = s.execute(sa.select(AG.tunnel_ip).where(AG.host == host)).first()
    return r.tunnel_ip if r else None


def _full(s, host, revision, ports):
    """A host's whole view; its ports by ``ports(where, pending)``."""
    routers, nets = routed(s, local_networks(s, host), host=host)
    ports = ports(P.network_id.in_(nets), pending_ports(s, host)) if nets else []
    # The groups of the host's ports and of those pending there (shown
    # local or not: see pending_ports).
    mine = local_groups(s, host)
    return m.HostView(
        host=host, tunnel_ip=_tunnel_ip(s, host), revision=revision,
        networks=tuple(load_networks(s, nets)),
        subnets=tuple(load_subnets(s, S.network_id.in_(nets))) if nets else (),
        ports=ports, security_groups=tuple(load_groups(s, mine)),
        remote_hosts=tuple(remote_hosts(s, host, nets, routers=routers)),
        routers=tuple(load_routers(s, routers)),
        address_groups=tuple(load_address_groups(s, address_group_ids(s, mine))))


def full(s, host, revision):
    """``host``'s whole view (a model HostView)."""
    return _full(s, host, revision,
                 lambda where, pending: tuple(as_seen_by(host, load_ports(s, where), pending)))


def full_dict(s, host, revision):
    """wire.view_to_dict(full(s, host, revision)), built faster: the ports
    go from rows to the wire without becoming model values."""
    view = _full(s, host, revision, lambda where, pending: port_dicts(s, where, host, pending))
    d = wire.view_to_dict(dataclasses.replace(view, ports=()))
    d["ports"] = view.ports
    return d


# Change rows about a security group: its rules, or its members' addresses;
# and about an address group's addresses (ids: UUIDs, never a group's).
GROUP_RESOURCES = ("security_group", "sg_member", "address_group")


def relevant(change, host, networks, groups):
    """Could this change row matter to ``host``, whose view holds
    ``networks`` (its own and those its routers route to: see routed) and
    whose ports use or name ``groups``?  (A router's change is recorded
    once per network it has or had an interface on.)"""
    if change.host == host:
        return True
    if change.network_id is not None and change.network_id in networks:
        return True
    if change.resource in GROUP_RESOURCES and change.resource_id in groups:
        return True
    if change.resource == "agent":  # a host's tunnel address (None: an admin edit)
        return bool(change.host)
    return False


def with_router_rows(mine, changes):
    """``mine`` (the changes relevant to a host) and every other row of the
    routers among them: a router's rows name each network it has or had an
    interface on (or its gateway on), and those the host's view may lose
    are among them (a network detached from one of its routers, a router
    no longer served by a gateway host); with the port rows of those
    networks (the hosts a port left there may leave the view too)."""
    routers = {c.resource_id for c in mine if c.resource == "router"}
    have = {c.seq for c in mine}
    extra = [c for c in changes if c.resource == "router" and c.resource_id in routers
             and c.seq not in have]
    nets = {c.network_id for c in mine + extra if c.resource == "router" and c.network_id}
    extra += [c for c in changes if c.resource == "port" and c.network_id in nets
              and c.seq not in have]
    return sorted(mine + extra, key=lambda c: c.seq) if extra else mine


def _memo(memo, key, fn):
    if memo is None:
        return fn()
    if key not in memo:
        memo[key] = fn()
    return memo[key]


def delta(s, host, changes, revision, memo=None, nets_now=None, local=None,
          member_deltas=True, partial_groups=False):
    """The Delta for ``changes`` (rows after the agent's revision).

    ``memo``: a dict shared by the deltas built for the same changes at the
    same revision (for many hosts): what does not depend on the host is
    read once.  ``nets_now`` and ``local``: the host's own networks (see
    local_networks) and its ports' groups when the caller knows them (none
    of the changes is one of the host's own ports).  Routers: those that
    changed or are new to the view are sent whole, with the networks they
    bring; those no longer in the view are removed, with the networks only
    they brought.  ``member_deltas``: the agent applies
    ``group_members`` (else membership changes send whole groups).
    ``partial_groups``: the agent applies ``groups_kept`` and
    ``group_rules`` too (else a rule change or a change of one of the
    host's own ports sends every group it needs, complete)."""
    memo = {} if memo is None else memo
    port_ids = {c.resource_id for c in changes if c.resource == "port"}
    own_now = local_networks(s, host) if nets_now is None else set(nets_now)
    local_changed = {c.resource_id for c in changes if c.resource == "port" and c.host == host}
    # Own networks the agent already had: those with a local port
    # unchanged since its revision.
    stable_own = (local_networks(s, host, exclude_ports=local_changed) if local_changed
                  else own_now)
    # Routers that changed: their rows, and those of their interface ports.
    router_ids = {c.resource_id for c in changes if c.resource == "router"}
    if port_ids:
        router_ids |= _memo(memo, ("port_routers", frozenset(port_ids)),
                            lambda: _routers_of_ports(s, port_ids))
    routers_now, nets_now = routed(s, own_now, memo, host=host)
    # The view the agent had (or less of it): its stable own networks and
    # the networks of the unchanged routers on them.  What is not in it is
    # new to the agent: sent whole.
    stable_routers = {r: n for r, n in routed(s, stable_own, memo, host=host)[0].items()
                      if r not in router_ids}
    stable = set(stable_own).union(*stable_routers.values())
    new_nets = nets_now - stable
    # Networks it may have had and has no more: those of its own ports'
    # changes and of router changes, and those routed from own networks
    # it lost.
    gone_own = {c.network_id for c in changes if c.network_id and c.host == host} - own_now
    lost_routers, lost_nets = routed(s, gone_own, memo) if gone_own else ({}, set())
    gone_nets = ({c.network_id for c in changes if c.network_id and
                  (c.host == host or c.resource == "router")} | lost_nets) - nets_now
    changed_nets = {c.resource_id for c in changes if c.resource == "network"} & nets_now
    subnet_ids = {c.resource_id for c in changes if c.resource == "subnet"}
    # Routers sent whole: those that changed, and those new to the view.
    send_routers = {r for r in routers_now if r in router_ids or r not in stable_routers}
    removed_routers = (router_ids | set(lost_routers)) - set(routers_now)

    ports = []
    if new_nets:
        ports.extend(load_ports(s, P.network_id.in_(new_nets)))
    old_port_ids = port_ids - {p.id for p in ports}
    updated = _memo(memo, ("ports", frozenset(old_port_ids)),
                    lambda: load_ports(s, P.id.in_(old_port_ids))) if old_port_ids else []
    kept = [p for p in updated if p.network_id in nets_now]
    ports.extend(kept)
    removed_ports = old_port_ids - {p.id for p in kept}
    ports = as_seen_by(host, ports, _memo(memo, ("pending",), lambda: _all_pending(s))
                       .get(host))

    subnets = []
    if new_nets:
        subnets.extend(load_subnets(s, S.network_id.in_(new_nets)))
    if subnet_ids:
        subnets.extend(x for x in _memo(memo, ("subnets", frozenset(subnet_ids)),
                                        lambda: load_subnets(s, S.id.in_(subnet_ids)))
                       if x.network_id in nets_now and x.network_id not in new_nets)
    removed_subnets = subnet_ids - {x.id for x in subnets}

    groups, members, complete, address_groups = (), (), False, ()
    kept, group_rules = None, ()
    sg_changed = any(c.resource in GROUP_RESOURCES for c in changes)
    if partial_groups and member_deltas and (port_ids or sg_changed):
        mine = local_groups(s, host) if local is None else local
        groups, members, kept, group_rules = _group_changes(
            s, host, changes, mine, local_changed, memo)
        changed_ags = {c.resource_id for c in changes if c.resource == "address_group"}
        if kept is not None or changed_ags:
            named = _memo(memo, ("named_ags", frozenset(mine)),
                          lambda: address_group_ids(s, mine))
            if kept is None:
                # Address groups named by the host's rules that changed:
                # whole.  (A new set: the memoized one serves other hosts.)
                named = named & changed_ags
            # (else: every one the host needs, whole, as groups_kept says)
            if named or kept is not None:
                address_groups = _memo(memo, ("ags", frozenset(named)),
                                       lambda: load_address_groups(s, named))
    elif port_ids or sg_changed or new_nets:
        mine = local_groups(s, host) if local is None else local
        rules_changed = any(c.resource == "security_group" for c in changes)
        if member_deltas and not (local_changed or new_nets or gone_nets or rules_changed):
            # The groups the host needs are those it had: send what changed
            # of their members (exactly which of the addresses involved are
            # members now), not the groups.
            groups, members = _member_changes(s, changes, mine, memo)
            # Address groups named by the host's rules that changed: whole.
            changed_ags = {c.resource_id for c in changes if c.resource == "address_group"}
            if changed_ags:
                named = _memo(memo, ("named_ags", frozenset(mine)),
                              lambda: address_group_ids(s, mine)) & changed_ags
                address_groups = _memo(memo, ("ags", frozenset(named)),
                                       lambda: load_address_groups(s, named))
        else:
            groups = _memo(memo, ("groups", frozenset(mine)), lambda: load_groups(s, mine))
            named = _memo(memo, ("named_ags", frozenset(mine)),
                          lambda: address_group_ids(s, mine))
            address_groups = _memo(memo, ("ags", frozenset(named)),
                                   lambda: load_address_groups(s, named))
            # What the host needs may have changed, and which groups it had
            # is not known here: these are all of them, the agent drops the
            # rest.
            complete = True

    # Remote hosts: only those whose presence may have changed (hosts of
    # changed ports on the host's networks, and of networks it gained or
    # lost: sent again when still needed, removed otherwise) or whose
    # tunnel IP may have (agent changes: sent when needed).
    mine = nets_now | gone_nets
    candidates = {c.host for c in changes
                  if c.host and c.resource == "port" and c.network_id in mine}
    if new_nets or gone_nets:
        candidates |= _net_hosts(s, new_nets | gone_nets, memo)
    # Gateway hosts: those whose assignment changed (router rows naming a
    # host), and those of the routers sent or removed.
    candidates |= {c.host for c in changes if c.host and c.resource == "router"}
    candidates |= gateway_hosts(s, send_routers | removed_routers, memo)
    gateways_now = gateway_hosts(s, set(routers_now), memo)
    readdressed = {c.host for c in changes if c.resource == "agent"}
    candidates.discard(host)
    readdressed.discard(host)
    present = {h for h, nets in _host_networks(s, candidates | readdressed, memo).items()
               if nets & nets_now or h in gateways_now}
    remote = _with_tunnel_ips(s, present, memo)
    # (A readdressed host left without a tunnel IP is removed too.)
    gone_hosts = (candidates | (readdressed & present)) - {h.name for h in remote}
    return m.Delta(
        revision=revision,
        networks=tuple(_memo(memo, ("nets", frozenset(new_nets | changed_nets)),
                             lambda: load_networks(s, new_nets | changed_nets))),
        subnets=tuple(subnets), ports=tuple(ports), security_groups=tuple(groups),
        remote_hosts=tuple(remote),
        removed_remote_hosts=tuple(sorted(gone_hosts)),
        removed_networks=tuple(sorted(gone_nets)),
        removed_subnets=tuple(sorted(removed_subnets)),
        removed_ports=tuple(sorted(removed_ports)),
        group_members=members, groups_complete=complete,
        address_groups=tuple(address_groups),
        groups_kept=kept, group_rules=group_rules,
        routers=tuple(_memo(memo, ("routers", frozenset(send_routers)),
                            lambda: load_routers(s, send_routers))),
        removed_routers=tuple(sorted(removed_routers)))


def _routers_of_ports(s, port_ids):
    """The routers these ports are interfaces of."""
    out = set()
    for chunk in _chunks(port_ids):
        out.update(s.execute(sa.select(RP.router_id).where(
            RP.port_id.in_(chunk), RP.port_type == INTERFACE)).scalars())
    return out


def _group_changes(s, host, changes, local, local_changed, memo):
    """(groups sent whole, GroupMembers, groups_kept, GroupRules): the
    partial group update for ``changes`` of a host whose ports' groups are
    ``local`` now (``local_changed``: its own ports among the changes).

    What the agent had is known only for what no change touched: the
    groups of its unchanged ports (``stable``) were local, and the groups
    named by the rules of those of them whose rules did not change were
    named (with their members).  A group whose standing may have changed
    (newly local or named, or possibly no longer one of them) is sent
    whole; a local group whose rules changed, its rules only; membership
    rows, the addresses they involve; and the ids of every group needed,
    so that the agent drops the others."""
    rules_changed = {c.resource_id for c in changes if c.resource == "security_group"}
    if not local_changed and not rules_changed & local:
        # The groups it needs and their rules are those it had.
        groups, members = _member_changes(s, changes, local, memo)
        return groups, members, None, ()
    local = frozenset(local)
    rules = _memo(memo, ("rules", local), lambda: load_rules(s, local))
    named = frozenset(r.remote_group_id for rs in rules.values() for r in rs
                      if r.remote_group_id)
    memo.setdefault(("named", local), named)
    stable = (local_groups(s, host, exclude_ports=local_changed) if local_changed
              else local)
    # What the stable groups named at the agent's revision: by their rules
    # now when unchanged, else as the first of their rule change rows
    # recorded it (rows without it: unknown).
    before, unknown = {}, set()
    for c in changes:
        if c.resource == "security_group" and c.resource_id not in before:
            if c.detail is None:
                unknown.add(c.resource_id)
            before[c.resource_id] = set(json.loads(c.detail)) if c.detail else set()
    stable_named = {r.remote_group_id for g in stable - rules_changed
                    for r in rules.get(g, ()) if r.remote_group_id}
    stable_named.update(*(before[g] for g in stable & rules_changed))
    if not local_changed and not unknown & stable:
        # Exactly what it named: send the groups named now and not then,
        # and those named then and not now (without their members).
        whole = (named - stable_named) | ((local - named) & stable_named)
    else:
        whole = (local - stable) | (named - stable_named) | (local - named)
        if local_changed:
            # Possibly local before (rules shown): the groups the changed
            # ports are in, or were in (their membership rows).
            was = {c.resource_id for c in changes
                   if c.resource == "sg_member" and c.host == host}
            was |= _port_groups(s, local_changed)
            whole |= (named - local) & was
    whole = frozenset(whole)
    groups = tuple(_memo(memo, ("some_groups", local, whole),
                         lambda: load_some_groups(s, local, whole, rules)))
    group_rules = tuple(m.GroupRules(g, rules.get(g, ()))
                        for g in sorted((rules_changed & local) - whole))
    more, members = _member_changes(s, changes, local, memo, skip=whole)
    return groups + more, members, tuple(sorted(local | named)), group_rules


def _port_groups(s, port_ids):
    """The groups these ports are in."""
    out = set()
    for chunk in _chunks(port_ids):
        out.update(s.execute(sa.select(SGB.security_group_id)
                             .where(SGB.port_id.in_(chunk))).scalars())
    return out


def _member_changes(s, changes, local, memo, skip=frozenset()):
    """(groups to send whole, GroupMembers) for the membership rows among
    ``changes`` of the groups the host needs (but ``skip``).  A row without
    the addresses it involves (written before they were recorded) sends its
    group whole."""
    # Members matter (and the full view has them) only for the groups the
    # host's rules name as remote groups.
    named = _memo(memo, ("named", frozenset(local)), lambda: remote_group_ids(s, local))
    involved, whole = {}, set()
    for c in changes:
        if c.resource != "sg_member" or c.resource_id not in named or c.resource_id in skip:
            continue
        if c.detail is None:
            whole.add(c.resource_id)
        else:  # (rows written before the addresses were canonical too)
            involved.setdefault(c.resource_id, set()).update(
                m.member_address(a) for a in json.loads(c.detail))
    groups = ()
    if whole:
        whole = frozenset(whole)
        groups = tuple(_memo(memo, ("some_groups", frozenset(local), whole),
                             lambda: load_some_groups(s, local, whole)))
    members = tuple(
        m.GroupMembers(gid, frozenset(addrs), _members_among(s, gid, addrs, memo))
        for gid, addrs in sorted(involved.items()) if gid not in whole)
    return groups, members


def _members_among(s, group_id, addresses, memo):
    """Which of ``addresses`` (member addresses, m.member_address) are
    members of the group now (a fixed IP or an allowed address pair of one
    of its ports; a pair of a lone address may be stored with /32 or
    /128)."""
    key = ("members_among", group_id, frozenset(addresses))
    if key not in memo:
        found = set()
        for chunk in _chunks(addresses):
            found.update(s.execute(
                sa.select(A.ip_address).join(SGB, SGB.port_id == A.port_id)
                .where(SGB.security_group_id == group_id, A.ip_address.in_(chunk))).scalars())
            # (a whole-family pair, known by its MAC: its address may be
            # stored as any address of the family with /0)
            wanted = set(chunk)
            macs = [mac for _v, mac in filter(None, map(m.member_mac, chunk))]
            spelled = list(chunk) + [a + ("/128" if ":" in a else "/32")
                                     for a in chunk if "/" not in a]
            found.update(a for a in (
                m.member_address(r.ip_address, r.mac_address) for r in s.execute(
                    sa.select(AAP.ip_address, AAP.mac_address)
                    .join(SGB, SGB.port_id == AAP.port_id)
                    .where(SGB.security_group_id == group_id,
                           sa.or_(AAP.ip_address.in_(spelled), AAP.mac_address.in_(macs)))))
                if a in wanted)
        memo[key] = frozenset(found)
    return memo[key]
