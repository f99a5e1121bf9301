"""Synthetic but realistic host views, for tests and benchmarks.

``make_host_view(networks=2, ports_per_net=3)`` gives a small view;
every knob has a default so scenarios stay short.  Ids, MACs, IPs and
ofports are deterministic: network n is 10.<n//250>.<n%250>.0/24 (n from
0), its ports take .10, .11, ... ; local port i has ofport 100 + i.
"""

from __future__ import annotations

import random

from quantum_ovs.model import (
    Chassis,
    as_remote,
    FixedIP,
    FloatingIP,
    HostView,
    Neighbour,
    Network,
    Port,
    PortForwarding,
    RemoteHost,
    Router,
    RouterGateway,
    RouterInterface,
    Rule,
    Segment,
    SecurityGroup,
    Subnet,
)

HOST = "host-a"
TUNNEL_OFPORTS = (("gre", 2), ("vxlan", 1))
PHYSNET_OFPORTS = (("physnet1", 3),)


def net_id(n: int) -> str:
    return f"net-{n}"


def port_ip(n: int, i: int) -> str:
    return f"10.{n // 250}.{n % 250}.{10 + i % 240}" if i < 240 else \
        f"10.{100 + n // 250}.{n % 250}.{10 + (i - 240) % 240}"


def port_mac(n: int, i: int) -> str:
    return "fa:16:3e:%02x:%02x:%02x" % ((n >> 8) & 0xFF, n & 0xFF, i & 0xFF) if i < 256 else \
        "fa:16:3f:%02x:%02x:%02x" % (n & 0xFF, (i >> 8) & 0xFF, i & 0xFF)


def make_network(n: int, network_type: str = "vxlan", local_id: int = 0) -> Network:
    if network_type == "vlan":
        seg = Segment("vlan", "physnet1", 100 + n)
    elif network_type == "flat":
        seg = Segment("flat", "physnet1")
    elif network_type == "local":
        seg = Segment("local")
    else:
        seg = Segment(network_type, None, 1000 + n)
    return Network(net_id(n), seg, local_id=local_id)


def make_subnet(n: int) -> Subnet:
    return Subnet(f"sub-{n}", net_id(n), f"10.{n // 250}.{n % 250}.0/24",
                  gateway_ip=f"10.{n // 250}.{n % 250}.1")


def router_mac(n: int) -> str:
    """The MAC of the router interface on network n."""
    return "fa:16:3d:%02x:%02x:01" % ((n >> 8) & 0xFF, n & 0xFF)


def make_router_interface(n: int) -> RouterInterface:
    """The interface on network n's subnet, at its gateway address (.1)."""
    return RouterInterface(f"rif-{n}", net_id(n), f"sub-{n}",
                           f"10.{n // 250}.{n % 250}.1", 24, router_mac(n))


def make_router(rid: str, networks, routes=(), **kw) -> Router:
    return Router(rid, interfaces=tuple(make_router_interface(n) for n in networks),
                  routes=tuple(routes), **kw)


def make_port(n: int, i: int, host: str = HOST, groups=("sg-default",), **kw) -> Port:
    return Port(
        id=f"port-{n}-{i}", network_id=net_id(n), mac_address=port_mac(n, i),
        fixed_ips=(FixedIP(f"sub-{n}", port_ip(n, i)),), security_groups=tuple(groups),
        host=host, **kw,
    )


def default_group(gid: str = "sg-default", members=()) -> SecurityGroup:
    """Neutron's default group: all egress, ingress only from the group."""
    return SecurityGroup(gid, (
        Rule(f"{gid}-eg4", gid, "egress", "IPv4"),
        Rule(f"{gid}-eg6", gid, "egress", "IPv6"),
        Rule(f"{gid}-in4", gid, "ingress", "IPv4", remote_group_id=gid),
        Rule(f"{gid}-in6", gid, "ingress", "IPv6", remote_group_id=gid),
    ), frozenset(members))


def make_host_view(
    networks: int = 2,
    ports_per_net: int = 3,
    remote_hosts: int = 0,
    remote_ports_per_net: int = 0,
    network_type: str = "vxlan",
    groups=None,
    host: str = HOST,
    local_ids: bool = True,
) -> HostView:
    """Local ports are ``port-<n>-<i>`` for i < ports_per_net; remote ports
    follow (i >= ports_per_net), spread round-robin over the remote hosts
    ``host-r<k>`` (tunnel IP 192.168.0.<k+2>).  Every port is in
    ``sg-default`` unless ``groups`` (a list of SecurityGroup) is given, in
    which case ports keep the default group id but the groups are yours."""
    nets = [make_network(n, network_type, n + 1 if local_ids else 0) for n in range(networks)]
    subnets = [make_subnet(n) for n in range(networks)]
    rhosts = [RemoteHost(f"host-r{k}", f"192.168.0.{k + 2}") for k in range(remote_hosts)]
    ports, vif = [], []
    ofport = 100
    for n in range(networks):
        for i in range(ports_per_net):
            ports.append(make_port(n, i, host))
            vif.append((ports[-1].id, ofport))
            ofport += 1
        for j in range(remote_ports_per_net if remote_hosts else 0):
            ports.append(make_port(n, ports_per_net + j, rhosts[(n + j) % remote_hosts].name))
    if groups is None:
        groups = [default_group(members=[ip for p in ports for ip in p.ips])]
    return HostView(
        host=host, tunnel_ip="192.168.0.1", networks=tuple(nets), subnets=tuple(subnets),
        ports=tuple(ports), security_groups=tuple(groups), remote_hosts=tuple(rhosts),
        chassis=Chassis(tuple(vif), TUNNEL_OFPORTS, PHYSNET_OFPORTS),
    )


def make_large_view(
    local_ports: int = 1000,
    networks: int = 100,
    remote_hosts: int = 100,
    remote_ports: int = 10000,
    n_groups: int = 50,
    rules_per_group: int = 5,
    max_members: int = 1000,
    seed: int = 1,
    routers: int = 0,
) -> HostView:
    """The benchmark view: ports spread evenly over networks; each port in
    one or two of ``n_groups`` groups; each group has ``rules_per_group``
    rules, about half of them referencing a remote group; group sizes up
    to ``max_members`` addresses.  ``routers`` > 0: the networks are split
    evenly between that many routers (``router-<k>``), one interface per
    network at its gateway address."""
    rnd = random.Random(seed)
    lpn = max(1, local_ports // networks)
    rpn = remote_ports // networks
    view = make_host_view(networks, lpn, remote_hosts, rpn, groups=[])
    gids = [f"sg-{g}" for g in range(n_groups)]
    # group g has about max_members * (g + 1) / n_groups member ports (the
    # last one max_members), drawn from all ports; a local port outside
    # every group joins one at random.
    all_ports = list(view.ports)
    member_of: dict[str, list] = {p.id: [] for p in all_ports}
    members: dict[str, set] = {g: set() for g in gids}
    for g_i, g in enumerate(gids):
        size = min(len(all_ports), max(10, max_members * (g_i + 1) // n_groups))
        for p in rnd.sample(all_ports, size):
            member_of[p.id].append(g)
    ports = []
    for p in all_ports:
        mine = member_of[p.id]
        if not mine and p.host == view.host:
            mine.append(rnd.choice(gids))
        for g in mine:
            members[g].update(p.ips)
        ports.append(Port(p.id, p.network_id, p.mac_address, p.fixed_ips,
                          security_groups=tuple(mine), host=p.host))
    groups = []
    for g_i, g in enumerate(gids):
        rules = []
        for r in range(rules_per_group):
            rid = f"{g}-r{r}"
            remote = gids[(g_i + r) % n_groups] if r % 2 == 1 else None
            if r == 0:
                rules.append(Rule(rid, g, "egress", "IPv4"))
            elif r == 2:
                rules.append(Rule(rid, g, "ingress", "IPv4", 6, 22, 22,
                                  remote_ip_prefix="10.0.0.0/8"))
            elif r == 4:
                rules.append(Rule(rid, g, "ingress", "IPv4", 17, 1000, 1999))
            else:
                rules.append(Rule(rid, g, "ingress", "IPv4", 6 if r == 1 else 1,
                                  80 if r == 1 else None, 443 if r == 1 else None,
                                  remote_group_id=remote))
        groups.append(SecurityGroup(g, tuple(rules), frozenset(members[g])))
    rts = []
    if routers:
        per = max(1, networks // routers)
        rts = [make_router(f"router-{k}", range(k * per, min(networks, (k + 1) * per)))
               for k in range(routers)]
    return view.replace(ports=tuple(ports), security_groups=tuple(groups), routers=tuple(rts))


def slice_for_host(host: str, tunnel_ips: dict, networks, subnets, ports, groups=(),
                   routers=(), chassis: Chassis | None = None) -> HostView:
    """One host's view of a whole model, as the server must cut it (the
    reference for the host view with routers):

    - the networks of the ports bound to ``host``;
    - the routers with an interface on one of those networks, and every
      other network those routers have an interface on (the destinations
      this host routes to);
    - the subnets and every port of all these networks (remote ones with
      their host, for the L2 and L3 lookups, as model.as_remote has them),
      the remote hosts holding them, and the groups given.
    ``chassis`` defaults to the local ports on ofports 10, 11, ... in
    order, VXLAN on ofport 1, physnet1 on 3."""
    mine = [p for p in ports if p.host == host]
    nets = {p.network_id for p in mine}
    my_routers = [r for r in routers if r.network_ids & nets]
    for r in my_routers:
        nets |= r.network_ids
    seen = [p if p.host == host else as_remote(p) for p in ports if p.network_id in nets]
    remote = sorted({p.host for p in seen if p.host not in (None, host)})
    if chassis is None:
        chassis = Chassis(tuple((p.id, 10 + i) for i, p in enumerate(mine)), (("vxlan", 1),),
                          (("physnet1", 3),))
    return HostView(
        host=host, tunnel_ip=tunnel_ips.get(host),
        networks=tuple(n for n in networks if n.id in nets),
        subnets=tuple(s for s in subnets if s.network_id in nets),
        ports=tuple(seen), security_groups=tuple(groups),
        remote_hosts=tuple(RemoteHost(h, tunnel_ips[h]) for h in remote if h in tunnel_ips),
        chassis=chassis, routers=tuple(my_routers),
    )


EXT_NET = "ext-net"
EXT_SUBNET = "ext-sub"
EXT_GATEWAY_IP = "172.24.0.1"
EXT_NEIGHBOUR_MAC = "52:54:00:00:00:01"
GATEWAY_HOSTS = ("gw-1", "gw-2")


def fip_address(i: int) -> str:
    return f"172.24.{1 + i // 250}.{i % 250 + 2}"


def add_external(view: HostView, fips: int | None = None, forwardings: bool = True,
                 hosts=GATEWAY_HOSTS, gateways_down=()) -> HostView:
    """``view`` with external connectivity (issue 14): a flat external
    network on physnet1 (172.24.0.0/16, gateway .0.1, resolved as a
    neighbour), every router given a gateway (address 172.24.0.<10+k>,
    gateway ``hosts``, redirect key 0x100000 + k), a floating IP for the
    first ``fips`` local ports on a routed network (all if None), and,
    with ``forwardings``, a floating IP with a TCP port forwarding to the
    first such port on the first router.  Gateway hosts get BFD tunnel
    ports 20, 21, ... in the chassis."""
    ext = Network(EXT_NET, Segment("flat", "physnet1"))
    sub = Subnet(EXT_SUBNET, EXT_NET, "172.24.0.0/16", 4, EXT_GATEWAY_IP, enable_dhcp=False)
    routers = list(view.routers)
    n_fip = 0
    out = []
    for k, r in enumerate(routers):
        mac = f"fa:16:3e:ee:{k // 256:02x}:{k % 256:02x}"
        gw = RouterGateway(EXT_NET, f"gwport-{r.id}", mac, (f"172.24.0.{10 + k}",), True,
                           tuple(hosts), 0x100000 + k)
        fl = []
        for p in view.ports:
            if fips is not None and n_fip >= fips:
                break
            if p.host != view.host or p.network_id not in r.network_ids or not p.ips:
                continue
            fl.append(FloatingIP(f"fip-{p.id}", fip_address(n_fip), EXT_NET, p.id, None,
                                 p.mac_address))
            n_fip += 1
        if forwardings and k == 0:
            target = next((p for p in view.ports if p.network_id in r.network_ids and p.ips),
                          None)
            if target is not None:
                pf = PortForwarding(f"pf-{r.id}", "tcp", target.id, target.ips[0], 2222, 2222,
                                    22, 22)
                fl.append(FloatingIP(f"fip-pf-{r.id}", "172.24.0.250", EXT_NET, None, None,
                                     mac, (pf,)))
        out.append(Router(r.id, r.admin_state_up, r.interfaces, r.routes, gw, tuple(fl)))
    ch = view.chassis
    ch = Chassis(ch.vif_ofports, ch.tunnel_ofports, ch.physnet_ofports,
                 tuple((h, 20 + i) for i, h in enumerate(hosts)), tuple(gateways_down),
                 (Neighbour(EXT_NET, EXT_GATEWAY_IP, EXT_NEIGHBOUR_MAC),))
    return view.replace(networks=view.networks + (ext,), subnets=view.subnets + (sub,),
                        routers=tuple(out), chassis=ch)
