"""The logical model as plain immutable values.

This is the line between the database (and the agent API) and the flow
compiler: nothing here knows about SQLAlchemy, HTTP or Open vSwitch.
MACs are lower-case ``aa:bb:cc:dd:ee:ff``; IP addresses are canonical
strings as produced by :mod:`ipaddress` (normalized once, at the edge).

Collections are tuples (ordered, hashable) or frozensets; mappings are
given as tuples of pairs and exposed through helper properties, so that
every value is hashable and can be compared for equality.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Optional

NETWORK_TYPES = ("local", "flat", "vlan", "vxlan", "gre")
TUNNEL_TYPES = ("vxlan", "gre")


@dataclass(frozen=True, slots=True)
class Segment:
    network_type: str  # one of NETWORK_TYPES
    physical_network: Optional[str] = None  # flat, vlan
    segmentation_id: Optional[int] = None  # VLAN id, VNI, GRE key

    @property
    def is_tunnel(self) -> bool:
        return self.network_type in TUNNEL_TYPES


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    segment: Segment
    mtu: int = 1500
    admin_state_up: bool = True
    # A small integer unique per network on a host, assigned by the agent
    # or by whoever builds the HostView; used as the register value that
    # identifies the network inside the pipeline.  0 means "unassigned":
    # the compiler then assigns its own stable number.
    local_id: int = 0
    # dns-integration: the network's own DNS domain ("" when unset: the
    # agent's [DEFAULT] dns_domain applies), e.g. "example.org."
    dns_domain: str = ""


@dataclass(frozen=True, slots=True)
class HostRoute:
    destination: str  # CIDR
    nexthop: str


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    network_id: str
    cidr: str
    ip_version: int = 4
    gateway_ip: Optional[str] = None
    enable_dhcp: bool = True
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    ipv6_ra_mode: Optional[str] = None
    ipv6_address_mode: Optional[str] = None


@dataclass(frozen=True, slots=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True, slots=True)
class AddressPair:
    ip_address: str  # an address or a CIDR
    mac_address: str


@dataclass(frozen=True, slots=True)
class DhcpOption:
    """An extra DHCP option of a port (extra_dhcp_opt): a name (dnsmasq's,
    or a number, optionally behind ``tag:...,`` prefixes) and its value as
    the API took it."""

    opt_name: str
    opt_value: str
    ip_version: int = 4


@dataclass(frozen=True, slots=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...] = ()
    admin_state_up: bool = True
    port_security_enabled: bool = True
    security_groups: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    device_owner: str = ""
    device_id: str = ""
    host: Optional[str] = None  # binding:host_id
    project_id: str = ""  # the metadata proxy's X-Tenant-ID
    # dns-integration: the port's dns_name ("" when unset: its addresses
    # are named host-<address>), and extra_dhcp_opt's options.
    dns_name: str = ""
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(f.ip_address for f in self.fixed_ips)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    security_group_id: str
    direction: str  # "ingress" | "egress"
    ethertype: str = "IPv4"  # "IPv4" | "IPv6"
    protocol: Optional[int] = None  # IP protocol number; None = any
    port_range_min: Optional[int] = None
    port_range_max: Optional[int] = None
    remote_ip_prefix: Optional[str] = None
    remote_group_id: Optional[str] = None
    remote_address_group_id: Optional[str] = None


def as_remote(p: "Port") -> "Port":
    """``p`` as a host other than its own sees it: what that host's flows
    need (addresses, MACs, groups, its name for DNS) and nothing more.  Its
    device_id (an instance, maybe another project's), project_id and extra
    DHCP options (a boot URL may hold a password) are for the metadata
    proxy and the DHCP responder of the port's own host only: a compromised
    hypervisor learns no more (found by review)."""
    if not (p.device_id or p.project_id or p.extra_dhcp_opts):
        return p
    return dataclasses.replace(p, device_id="", project_id="", extra_dhcp_opts=())


def member_address(address: str, mac: str | None = None) -> str:
    """The one spelling of a security group member's address (a fixed IP,
    an allowed address pair): a lone address as an address (an allowed
    address pair of ``10.0.0.5/32`` is the member ``10.0.0.5``, the same
    as a fixed IP ``10.0.0.5``), a prefix as its network.

    An allowed address pair of a whole family (``0.0.0.0/0``, ``::/0``),
    given its ``mac``, is the member ``0.0.0.0/0@<mac>``: such a port may
    send from any address, so it is known by its MAC, as Neutron's fix of
    bug 1867119 does (its address would make every rule naming its group
    admit every source).  An address already spelled so stays as it is."""
    if "@" in address:
        address, _, mac = address.partition("@")
    if "/" not in address:
        return str(ipaddress.ip_address(address))
    net = ipaddress.ip_network(address, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    if net.prefixlen == 0 and mac:
        return f"{net}@{mac.lower()}"
    return str(net)


def member_mac(address: str) -> tuple[int, str] | None:
    """(IP version, MAC) of a member spelled ``<cidr>@<mac>``
    (member_address), None for any other."""
    if "@" not in address:
        return None
    cidr, _, mac = address.partition("@")
    return (6 if ":" in cidr else 4), mac


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    id: str
    rules: tuple[Rule, ...] = ()
    # Addresses of every port (on any host) that is a member of the group,
    # spelled as member_address does; what remote_group_id rules of other
    # groups match against.
    member_ips: frozenset[str] = frozenset()
    # False: a stateless group (stateful-security-group): its ports' packets
    # are checked against its rules in both directions, replies included,
    # with no connection tracking.  (Shown for the groups of the host's own
    # ports; a group the host needs only for its members is True.)
    stateful: bool = True


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """A membership change of a group, without its whole member list:
    exactly which of ``addresses`` are members now (the others of them are
    not, whatever the receiver had)."""

    security_group_id: str
    addresses: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()

    def applied_to(self, member_ips: frozenset[str]) -> frozenset[str]:
        return (member_ips - self.addresses) | self.members


@dataclass(frozen=True, slots=True)
class AddressGroup:
    """An address group some rule of the host's groups names as its
    remote: canonical CIDRs (``10.0.0.5/32``, ``2001:db8::/64``)."""

    id: str
    addresses: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GroupRules:
    """A rule change of a group the receiver has: its rules now (its
    member addresses are kept)."""

    security_group_id: str
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteHost:
    name: str
    tunnel_ip: str


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour on an external network (an upstream router, a host of
    the outside world) that the agent resolved; not in the model's ports."""

    network_id: str
    ip_address: str
    mac_address: str


@dataclass(frozen=True, slots=True)
class Chassis:
    """What the agent knows of its own switch: OpenFlow port numbers."""

    # port id -> ofport of the VIF plugged on this host's br-int
    vif_ofports: tuple[tuple[str, int], ...] = ()
    # tunnel type ("vxlan", "gre") -> ofport of the flow-based tunnel port
    tunnel_ofports: tuple[tuple[str, int], ...] = ()
    # physical network name -> ofport of br-int's patch port to its bridge
    physnet_ofports: tuple[tuple[str, int], ...] = ()
    # remote host name -> ofport of this host's own tunnel port to that
    # host, with BFD on (issue 14: made for gateway hosts; the SNAT
    # redirect picks the first live one, in the data plane)
    gateway_ofports: tuple[tuple[str, int], ...] = ()
    # gateway hosts whose tunnel BFD says down, as this agent sees them
    # (a gateway host answers for a router's gateway address only when no
    # gateway before it in RouterGateway.hosts is alive)
    gateways_down: tuple[str, ...] = ()
    # addresses resolved by the agent (ARP / ND) on external networks
    neighbours: tuple["Neighbour", ...] = ()
    # br-int's port to this host's metadata proxy (agent/metadata); 0 = none
    metadata_ofport: int = 0

    def vif_ofport(self, port_id: str) -> Optional[int]:
        return dict(self.vif_ofports).get(port_id)


# Device owners of the ports a router owns on a network: the router's own
# flows stand for them (ARP, neighbour discovery, routing), so the compiler
# gives these ports no port flows of their own.
ROUTER_DEVICE_OWNERS = frozenset({
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
    "network:router_gateway",
    "network:router_centralized_snat",
})


def is_router_port(port: Port) -> bool:
    return port.device_owner in ROUTER_DEVICE_OWNERS


@dataclass(frozen=True, slots=True)
class RouterInterface:
    """One address of a router on a subnet (a ``network:router_interface``
    port; a port with addresses on several subnets is one interface per
    subnet, with the same port id and MAC)."""

    port_id: str
    network_id: str
    subnet_id: str
    ip_address: str  # canonical address (the subnet's gateway IP, usually)
    prefixlen: int  # of the subnet's CIDR
    mac_address: str
    # The address scope of the subnet (its subnet pool's), None: in none.
    # A router does not route between interfaces of different scopes of
    # one IP version ("no scope" being one more), as in Neutron.
    address_scope_id: Optional[str] = None

    @property
    def ip_version(self) -> int:
        return 6 if ":" in self.ip_address else 4

    @property
    def cidr(self) -> str:
        return str(ipaddress.ip_interface(f"{self.ip_address}/{self.prefixlen}").network)


@dataclass(frozen=True, slots=True)
class RouterGateway:
    """The router's external gateway: its ``network:router_gateway`` port
    on a ``router:external`` network."""

    network_id: str
    port_id: str
    mac_address: str
    ip_addresses: tuple[str, ...] = ()
    enable_snat: bool = True
    # Gateway hosts, highest priority first, as the server assigned them.
    hosts: tuple[str, ...] = ()
    # Tunnel key (VNI) of SNAT traffic redirected to a gateway host,
    # allocated by the server per router gateway; 0 = none.
    redirect_key: int = 0
    # IPv4 CIDRs of the router's internal subnets in the address scope of
    # the gateway's subnet: routed to and from the outside untranslated
    # (Neutron's rule: no NAT within one address scope).
    unnatted: tuple[str, ...] = ()
    # The address scopes of the gateway's IPv4 and IPv6 subnets (None: in
    # none).  What goes out or comes in untranslated (IPv6; IPv4 with SNAT
    # off) does so only for internal subnets of the same scope, as Neutron.
    address_scope_v4: Optional[str] = None
    address_scope_v6: Optional[str] = None


@dataclass(frozen=True, slots=True)
class PortForwarding:
    """``floating IP:external port(s)`` -> ``internal IP:internal port(s)``
    (ranges of equal length, or a range to one port; a single port is
    lo == hi)."""

    id: str
    protocol: str  # "tcp" | "udp"
    internal_port_id: str
    internal_ip_address: str
    external_port_lo: int
    external_port_hi: int
    internal_port_lo: int
    internal_port_hi: int


@dataclass(frozen=True, slots=True)
class FloatingIP:
    """A floating IP of a router: associated with ``port_id`` (DNAT/SNAT
    on that port's host), or carrying port forwardings (then no port)."""

    id: str
    floating_ip_address: str
    floating_network_id: str
    port_id: Optional[str] = None
    fixed_ip_address: Optional[str] = None
    # The floating IP's own MAC on the external network: the associated
    # port's MAC (it moves with the port), or the gateway port's for one
    # with port forwardings only.
    mac_address: Optional[str] = None
    port_forwardings: tuple[PortForwarding, ...] = ()


@dataclass(frozen=True, slots=True)
class Router:
    """A router as a host compiles it: routing between the subnets of its
    interfaces, in flows on every host with a port on one of its networks.

    ``routes`` are Neutron's extra routes (destination CIDR, next hop on a
    connected subnet).  ``gateway`` and ``floating_ips`` belong to issue
    14 (external connectivity): part of the value today so that its
    changes arrive through the same deltas, ignored by the compiler."""

    id: str
    admin_state_up: bool = True
    interfaces: tuple[RouterInterface, ...] = ()
    routes: tuple[HostRoute, ...] = ()
    gateway: Optional[RouterGateway] = None
    floating_ips: tuple[FloatingIP, ...] = ()

    @property
    def network_ids(self) -> frozenset[str]:
        return frozenset(i.network_id for i in self.interfaces)


@dataclass(frozen=True, slots=True)
class HostView:
    """Everything one host needs to compile its integration bridge.

    ``ports`` holds the ports bound to this host *and* the ports of the
    same networks bound elsewhere (their ``host`` names a RemoteHost), so
    that L2 lookup can reach them over a tunnel.
    """

    host: str
    tunnel_ip: Optional[str] = None
    networks: tuple[Network, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    ports: tuple[Port, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    remote_hosts: tuple[RemoteHost, ...] = ()
    chassis: Chassis = field(default_factory=Chassis)
    revision: int = 0
    # Routers with an interface on a network of a port bound here; the
    # view then holds all their networks, subnets and ports too.
    routers: tuple[Router, ...] = ()
    # The address groups the rules of the host's groups name.
    address_groups: tuple[AddressGroup, ...] = ()

    def replace(self, **changes) -> "HostView":
        return dataclasses.replace(self, **changes)

    def local_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.host == self.host)


@dataclass(frozen=True, slots=True)
class Delta:
    """A change to a HostView: objects upserted and ids removed."""

    revision: int
    networks: tuple[Network, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    ports: tuple[Port, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    remote_hosts: tuple[RemoteHost, ...] = ()
    removed_networks: tuple[str, ...] = ()
    removed_subnets: tuple[str, ...] = ()
    removed_ports: tuple[str, ...] = ()
    removed_security_groups: tuple[str, ...] = ()
    removed_remote_hosts: tuple[str, ...] = ()
    routers: tuple[Router, ...] = ()  # upserted whole (interfaces, routes)
    removed_routers: tuple[str, ...] = ()
    # Applied after the upserts, to groups the view has (others: ignored).
    group_members: tuple[GroupMembers, ...] = ()
    # True: ``security_groups`` is every group the host needs now; drop
    # the others (sent when what it needs may have changed), and likewise
    # ``address_groups``.
    groups_complete: bool = False
    # upserted whole; all the host needs when groups_complete or groups_kept
    address_groups: tuple[AddressGroup, ...] = ()
    # Partial group updates (issue 17).  ``groups_kept`` (None: not sent)
    # is the ids of every group the host needs now: drop the others
    # first.  ``group_rules`` replace the rules of groups the view has,
    # keeping their members (applied after the upserts, before
    # ``group_members``; others: ignored).
    groups_kept: Optional[tuple[str, ...]] = None
    group_rules: tuple[GroupRules, ...] = ()
