"""The logical model on the wire: HostView and Delta to JSON-able dicts
and back.  Pure (json-only) so that the server, the agent and the trace
tool share one encoding."""

from quantum_ovs import model as m

# The most entries each list of one port report (POST
# /agent-api/v1/hosts/{host}/ports: plugged, unplugged, installed,
# floatingips) may hold: far more than the ports of any host, so that
# one report costs the server a bounded amount of work.  An agent with
# more to say sends several reports (agent/reporting.py).
REPORT_MAX_ENTRIES = 10000

# What a malformed item raises when it is decoded (a key missing, one the
# model does not know, a list of another length, a value of another type).
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def item_id(kind: str, item):
    """The identity of an item of ``kind`` as sent (a remote host's
    ``name``, anything else's ``id``), or None when it has none."""
    return item.get("name" if kind == "remote_host" else "id") if isinstance(item, dict) \
        else None


def _each(items, decode, kind: str, refuse, gone=None) -> tuple:
    """``decode`` of each item; with ``refuse`` (a callable taking the
    kind, the item and the exception), an item that does not decode is
    handed to it and left out, and its id (when it has one) goes to
    ``gone``: one bad row must not make the whole answer undecodable (the
    agent would apply nothing at all while it is there).  Without
    ``refuse`` it raises, as the server's own reading wants."""
    if refuse is None:
        return tuple(decode(x) for x in items)
    out = []
    for x in items:
        try:
            out.append(decode(x))
        except MALFORMED as e:
            refuse(kind, x, e)
            ident = item_id(kind, x)
            if gone is not None and isinstance(ident, str):
                gone.append(ident)
    return tuple(out)


def _net(n):
    return {"id": n.id, "mtu": n.mtu, "admin_state_up": n.admin_state_up,
            "network_type": n.segment.network_type,
            "physical_network": n.segment.physical_network,
            "segmentation_id": n.segment.segmentation_id, "dns_domain": n.dns_domain}


def _net_from(d):
    return m.Network(id=d["id"], mtu=d.get("mtu", 1500),
                     admin_state_up=d.get("admin_state_up", True),
                     segment=m.Segment(d["network_type"], d.get("physical_network"),
                                       d.get("segmentation_id")),
                     dns_domain=d.get("dns_domain") or "")


def _subnet(s):
    return {"id": s.id, "network_id": s.network_id, "cidr": s.cidr,
            "ip_version": s.ip_version, "gateway_ip": s.gateway_ip,
            "enable_dhcp": s.enable_dhcp, "dns_nameservers": list(s.dns_nameservers),
            "host_routes": [[r.destination, r.nexthop] for r in s.host_routes],
            "ipv6_ra_mode": s.ipv6_ra_mode, "ipv6_address_mode": s.ipv6_address_mode}


def _subnet_from(d):
    return m.Subnet(id=d["id"], network_id=d["network_id"], cidr=d["cidr"],
                    ip_version=d.get("ip_version", 4), gateway_ip=d.get("gateway_ip"),
                    enable_dhcp=d.get("enable_dhcp", True),
                    dns_nameservers=tuple(d.get("dns_nameservers", ())),
                    host_routes=tuple(m.HostRoute(a, b) for a, b in d.get("host_routes", ())),
                    ipv6_ra_mode=d.get("ipv6_ra_mode"),
                    ipv6_address_mode=d.get("ipv6_address_mode"))


def port_dict(id, network_id, mac_address, fixed_ips, admin_state_up, port_security_enabled,
              security_groups, allowed_address_pairs, device_owner, device_id, host,
              project_id, dns_name, extra_dhcp_opts):
    """A port on the wire, from its fields; the lists are already in wire
    form: fixed_ips [[subnet id, address]], security_groups [id],
    allowed_address_pairs [[address, mac]], extra_dhcp_opts [[name, value,
    ip version]].  (The server's full views build ports from rows with it,
    without making model Ports first.)"""
    return {"id": id, "network_id": network_id, "mac_address": mac_address,
            "fixed_ips": fixed_ips, "admin_state_up": admin_state_up,
            "port_security_enabled": port_security_enabled,
            "security_groups": security_groups,
            "allowed_address_pairs": allowed_address_pairs,
            "device_owner": device_owner, "device_id": device_id, "host": host,
            "project_id": project_id, "dns_name": dns_name,
            "extra_dhcp_opts": extra_dhcp_opts}


def _port(p):
    return port_dict(p.id, p.network_id, p.mac_address,
                     [[f.subnet_id, f.ip_address] for f in p.fixed_ips],
                     p.admin_state_up, p.port_security_enabled, list(p.security_groups),
                     [[a.ip_address, a.mac_address] for a in p.allowed_address_pairs],
                     p.device_owner, p.device_id, p.host, p.project_id, p.dns_name,
                     [[o.opt_name, o.opt_value, o.ip_version] for o in p.extra_dhcp_opts])


def _port_from(d):
    return m.Port(id=d["id"], network_id=d["network_id"], mac_address=d["mac_address"],
                  fixed_ips=tuple(m.FixedIP(a, b) for a, b in d.get("fixed_ips", ())),
                  admin_state_up=d.get("admin_state_up", True),
                  port_security_enabled=d.get("port_security_enabled", True),
                  security_groups=tuple(d.get("security_groups", ())),
                  allowed_address_pairs=tuple(m.AddressPair(a, b) for a, b in
                                              d.get("allowed_address_pairs", ())),
                  device_owner=d.get("device_owner", ""), device_id=d.get("device_id", ""),
                  host=d.get("host"), project_id=d.get("project_id", ""),
                  dns_name=d.get("dns_name") or "",
                  extra_dhcp_opts=tuple(m.DhcpOption(a, b, int(c)) for a, b, c in
                                        d.get("extra_dhcp_opts", ())))


_RULE_FIELDS = ("id", "security_group_id", "direction", "ethertype", "protocol",
                "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id")


def _rule(r):
    d = {k: getattr(r, k) for k in _RULE_FIELDS}
    if r.remote_address_group_id is not None:  # (absent: as before address groups)
        d["remote_address_group_id"] = r.remote_address_group_id
    return d


def _group(g):
    d = {"id": g.id, "rules": [_rule(r) for r in g.rules],
         "member_ips": sorted(g.member_ips)}
    if not g.stateful:  # (absent: stateful, as before stateless groups)
        d["stateful"] = False
    return d


def _address_group(a):
    return {"id": a.id, "addresses": sorted(a.addresses)}


def _rule_from(r):
    return m.Rule(**r)


def _address_group_from(d):
    return m.AddressGroup(id=d["id"], addresses=frozenset(d.get("addresses", ())))


def _group_from(d, refuse=None):
    # (a rule that does not decode is left out alone: rules only allow)
    return m.SecurityGroup(id=d["id"], rules=_each(d.get("rules", ()), _rule_from,
                                                   "security_group_rule", refuse),
                           member_ips=frozenset(d.get("member_ips", ())),
                           stateful=d.get("stateful", True))


def _host(h):
    return {"name": h.name, "tunnel_ip": h.tunnel_ip}


def _host_from(d):
    return m.RemoteHost(d["name"], d["tunnel_ip"])


def _router(r):
    gw = r.gateway
    d = {"id": r.id, "admin_state_up": r.admin_state_up,
         "interfaces": [_interface(i) for i in r.interfaces],
         "routes": [[x.destination, x.nexthop] for x in r.routes],
         "gateway": None if gw is None else {
             "network_id": gw.network_id, "port_id": gw.port_id,
             "mac_address": gw.mac_address, "ip_addresses": list(gw.ip_addresses),
             "enable_snat": gw.enable_snat, "hosts": list(gw.hosts),
             "redirect_key": gw.redirect_key},
         "floating_ips": [{"id": f.id, "floating_ip_address": f.floating_ip_address,
                           "floating_network_id": f.floating_network_id,
                           "port_id": f.port_id, "fixed_ip_address": f.fixed_ip_address,
                           "mac_address": f.mac_address,
                           "port_forwardings": [_pf(x) for x in f.port_forwardings]}
                          for f in r.floating_ips]}
    if gw is not None:  # (each omitted when empty: older views unchanged)
        if gw.unnatted:
            d["gateway"]["unnatted"] = list(gw.unnatted)
        for k in ("address_scope_v4", "address_scope_v6"):
            if getattr(gw, k) is not None:
                d["gateway"][k] = getattr(gw, k)
    return d


def _interface(i):
    d = {"port_id": i.port_id, "network_id": i.network_id, "subnet_id": i.subnet_id,
         "ip_address": i.ip_address, "prefixlen": i.prefixlen, "mac_address": i.mac_address}
    if i.address_scope_id is not None:  # omitted when in none: older views unchanged
        d["address_scope_id"] = i.address_scope_id
    return d


def _router_from(d):
    gw = d.get("gateway")
    return m.Router(
        id=d["id"], admin_state_up=d.get("admin_state_up", True),
        interfaces=tuple(m.RouterInterface(i["port_id"], i["network_id"], i["subnet_id"],
                                           i["ip_address"], int(i["prefixlen"]),
                                           i["mac_address"], i.get("address_scope_id"))
                         for i in d.get("interfaces", ())),
        routes=tuple(m.HostRoute(a, b) for a, b in d.get("routes", ())),
        gateway=None if gw is None else m.RouterGateway(
            gw["network_id"], gw["port_id"], gw["mac_address"],
            tuple(gw.get("ip_addresses", ())), gw.get("enable_snat", True),
            tuple(gw.get("hosts", ())), int(gw.get("redirect_key", 0)),
            tuple(gw.get("unnatted", ())), gw.get("address_scope_v4"),
            gw.get("address_scope_v6")),
        floating_ips=tuple(m.FloatingIP(f["id"], f["floating_ip_address"],
                                        f["floating_network_id"], f.get("port_id"),
                                        f.get("fixed_ip_address"), f.get("mac_address"),
                                        tuple(_pf_from(x)
                                              for x in f.get("port_forwardings", ())))
                           for f in d.get("floating_ips", ())))


_PF = ("id", "protocol", "internal_port_id", "internal_ip_address", "external_port_lo",
       "external_port_hi", "internal_port_lo", "internal_port_hi")


def _pf(x):
    return [getattr(x, k) for k in _PF]


def _pf_from(x):
    return m.PortForwarding(*x)


def view_to_dict(v):
    return {"host": v.host, "tunnel_ip": v.tunnel_ip, "revision": v.revision,
            "networks": [_net(n) for n in v.networks],
            "subnets": [_subnet(s) for s in v.subnets],
            "ports": [_port(p) for p in v.ports],
            "security_groups": [_group(g) for g in v.security_groups],
            "remote_hosts": [_host(h) for h in v.remote_hosts],
            "routers": [_router(r) for r in v.routers],
            "address_groups": [_address_group(a) for a in v.address_groups]}


def view_from_dict(d, chassis=None, refuse=None):
    """The HostView of ``d``.  ``refuse``: see _each (an item left out of
    a full view is as good as removed)."""
    def group(x):
        return _group_from(x, refuse)

    return m.HostView(host=d["host"], tunnel_ip=d.get("tunnel_ip"),
                      revision=d.get("revision", 0),
                      networks=_each(d.get("networks", ()), _net_from, "network", refuse),
                      subnets=_each(d.get("subnets", ()), _subnet_from, "subnet", refuse),
                      ports=_each(d.get("ports", ()), _port_from, "port", refuse),
                      security_groups=_each(d.get("security_groups", ()), group,
                                            "security_group", refuse),
                      remote_hosts=_each(d.get("remote_hosts", ()), _host_from,
                                         "remote_host", refuse),
                      routers=_each(d.get("routers", ()), _router_from, "router", refuse),
                      address_groups=_each(d.get("address_groups", ()), _address_group_from,
                                           "address_group", refuse),
                      chassis=chassis or m.Chassis())


def delta_to_dict(dl):
    return {"revision": dl.revision,
            "networks": [_net(n) for n in dl.networks],
            "subnets": [_subnet(s) for s in dl.subnets],
            "ports": [_port(p) for p in dl.ports],
            "security_groups": [_group(g) for g in dl.security_groups],
            "remote_hosts": [_host(h) for h in dl.remote_hosts],
            "removed_networks": list(dl.removed_networks),
            "removed_subnets": list(dl.removed_subnets),
            "removed_ports": list(dl.removed_ports),
            "removed_security_groups": list(dl.removed_security_groups),
            "removed_remote_hosts": list(dl.removed_remote_hosts),
            "routers": [_router(r) for r in dl.routers],
            "removed_routers": list(dl.removed_routers),
            "group_members": [{"security_group_id": gm.security_group_id,
                               "addresses": sorted(gm.addresses),
                               "members": sorted(gm.members)} for gm in dl.group_members],
            "groups_complete": dl.groups_complete,
            "address_groups": [_address_group(a) for a in dl.address_groups],
            # Partial group updates (features=group_rules): absent when
            # unused, so that a delta without them is what it was.
            **({} if dl.groups_kept is None else {"groups_kept": list(dl.groups_kept)}),
            **({"group_rules": [{"security_group_id": gr.security_group_id,
                                 "rules": [_rule(r) for r in gr.rules]}
                                for gr in dl.group_rules]} if dl.group_rules else {})}


def _group_members_from(x):
    return m.GroupMembers(x["security_group_id"], frozenset(x.get("addresses", ())),
                          frozenset(x.get("members", ())))


def delta_from_dict(d, refuse=None):
    """The Delta of ``d``.  ``refuse``: see _each.  An upsert left out
    becomes the removal of its object (when its id can be read), so that
    the object's old flows do not stay as they were (fail closed); an
    address group left out is emptied, a group's rules left out are no
    rules."""
    gone = {k: [] for k in ("networks", "subnets", "ports", "security_groups",
                            "remote_hosts", "routers", "address_groups")}

    def items(key, decode, kind):
        return _each(d.get(key, ()), decode, kind, refuse, gone[key])

    def group(x):
        return _group_from(x, refuse)

    def group_rules(x):
        return m.GroupRules(x["security_group_id"],
                            _each(x.get("rules", ()), _rule_from, "security_group_rule", refuse))

    networks = items("networks", _net_from, "network")
    subnets = items("subnets", _subnet_from, "subnet")
    ports = items("ports", _port_from, "port")
    groups = items("security_groups", group, "security_group")
    hosts = items("remote_hosts", _host_from, "remote_host")
    routers = items("routers", _router_from, "router")
    address_groups = items("address_groups", _address_group_from, "address_group") + \
        tuple(m.AddressGroup(id=a) for a in gone["address_groups"])
    rules = _each(d.get("group_rules", ()), group_rules, "group_rules", refuse)
    decoded = {r.security_group_id for r in rules}
    for x in d.get("group_rules", ()):
        gid = x.get("security_group_id") if isinstance(x, dict) else None
        if isinstance(gid, str) and gid not in decoded:
            rules += (m.GroupRules(gid, ()),)
            decoded.add(gid)
    return m.Delta(revision=d.get("revision", 0),
                   networks=networks, subnets=subnets, ports=ports,
                   security_groups=groups, remote_hosts=hosts,
                   removed_networks=tuple(d.get("removed_networks", ())) +
                   tuple(gone["networks"]),
                   removed_subnets=tuple(d.get("removed_subnets", ())) + tuple(gone["subnets"]),
                   removed_ports=tuple(d.get("removed_ports", ())) + tuple(gone["ports"]),
                   removed_security_groups=tuple(d.get("removed_security_groups", ())) +
                   tuple(gone["security_groups"]),
                   removed_remote_hosts=tuple(d.get("removed_remote_hosts", ())) +
                   tuple(gone["remote_hosts"]),
                   routers=routers,
                   removed_routers=tuple(d.get("removed_routers", ())) + tuple(gone["routers"]),
                   group_members=_each(d.get("group_members", ()), _group_members_from,
                                       "group_members", refuse),
                   groups_complete=bool(d.get("groups_complete", False)),
                   address_groups=address_groups,
                   groups_kept=(None if d.get("groups_kept") is None
                                else tuple(d["groups_kept"])),
                   group_rules=rules)


def apply_delta(view, delta):
    """The view after a delta (pure; what the agent does with each reply)."""
    def merge(items, upserts, removed, key=lambda x: x.id):
        out = {key(x): x for x in items}
        for k in removed:
            out.pop(k, None)
        for x in upserts:
            out[key(x)] = x
        return out

    nets = merge(view.networks, delta.networks, delta.removed_networks)
    subnets = merge(view.subnets, delta.subnets, delta.removed_subnets)
    ports = merge(view.ports, delta.ports, delta.removed_ports)
    # A network that goes away takes its subnets and ports with it.
    gone = set(delta.removed_networks) - set(nets)
    if gone:
        subnets = {k: s for k, s in subnets.items() if s.network_id not in gone}
        ports = {k: p for k, p in ports.items() if p.network_id not in gone}
    kept = view.security_groups
    if delta.groups_kept is not None:
        keep = set(delta.groups_kept)
        kept = [g for g in kept if g.id in keep]
    groups = merge(() if delta.groups_complete else kept,
                   delta.security_groups, delta.removed_security_groups)
    for gr in delta.group_rules:
        g = groups.get(gr.security_group_id)
        if g is not None:
            groups[g.id] = m.SecurityGroup(g.id, gr.rules, g.member_ips, g.stateful)
    for gm in delta.group_members:
        g = groups.get(gm.security_group_id)
        if g is not None:
            groups[g.id] = m.SecurityGroup(g.id, g.rules, gm.applied_to(g.member_ips),
                                           g.stateful)
    # Whole with groups_complete or groups_kept: all the host needs.
    ag_complete = delta.groups_complete or delta.groups_kept is not None
    address_groups = merge(() if ag_complete else view.address_groups,
                           delta.address_groups, ())
    hosts = merge(view.remote_hosts, delta.remote_hosts, delta.removed_remote_hosts,
                  key=lambda h: h.name)
    routers = merge(view.routers, delta.routers, delta.removed_routers)
    return view.replace(networks=tuple(nets.values()), subnets=tuple(subnets.values()),
                        routers=tuple(routers.values()),
                        ports=tuple(ports.values()), security_groups=tuple(groups.values()),
                        remote_hosts=tuple(hosts.values()),
                        address_groups=tuple(address_groups.values()),
                        revision=max(view.revision, delta.revision))
