"""SQLAlchemy models: the only state of the system.

IP addresses are stored as text for display and, where ranges are
compared, as a 32-digit hex key (``ipam.ip_key``) so that IPv4 and IPv6
order the same way in every database.
"""

import datetime

from sqlalchemy import (Boolean, DateTime, ForeignKey, Integer, String, Text,
                        UniqueConstraint, Index, BigInteger)
from quantum_ovs.timeutils import utcnow
from sqlalchemy import false as sa_false, select
from sqlalchemy.orm import (DeclarativeBase, Mapped, column_property, foreign, mapped_column,
                            relationship, remote)




class Base(DeclarativeBase):
    pass


class StandardAttrs:
    """Columns every top-level resource has."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class Tag(Base):
    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


def _tags_rel(cls_name):
    return relationship(
        Tag, primaryjoin=f"foreign(Tag.resource_id) == {cls_name}.id",
        lazy="selectin", cascade="all, delete-orphan", order_by=Tag.tag,
        overlaps="tags")


class Network(StandardAttrs, Base):
    __tablename__ = "networks"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # dns-integration ("" when unset)
    dns_domain: Mapped[str] = mapped_column(String(255), default="", server_default="")
    tags = _tags_rel("Network")
    subnets = relationship("Subnet", lazy="selectin", order_by="Subnet.created_at, Subnet.id",
                           viewonly=True)


class Subnet(StandardAttrs, Base):
    __tablename__ = "subnets"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # subnet_allocation: the pool the cidr was taken from (no foreign key,
    # as in Neutron: the pool refuses its own delete while in use)
    subnetpool_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # (loaded when touched: a network's address scopes, extensions/address_scopes.py)
    subnetpool = relationship("SubnetPool", primaryjoin="foreign(Subnet.subnetpool_id) == "
                              "SubnetPool.id", lazy="select", viewonly=True)
    tags = _tags_rel("Subnet")
    allocation_pools = relationship("AllocationPool", lazy="selectin",
                                    cascade="all, delete-orphan",
                                    order_by="AllocationPool.first_key")
    dns_nameservers = relationship("DNSNameServer", lazy="selectin",
                                   cascade="all, delete-orphan",
                                   order_by="DNSNameServer.order")
    host_routes = relationship("SubnetRoute", lazy="selectin",
                               cascade="all, delete-orphan",
                               order_by="SubnetRoute.order")
    # subnet-service-types: the device owners whose ports take addresses
    # here (none: any port's)
    service_types = relationship("SubnetServiceType", lazy="selectin",
                                 cascade="all, delete-orphan",
                                 order_by="SubnetServiceType.service_type")


class SubnetServiceType(Base):
    __tablename__ = "subnet_service_types"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"),
                                           primary_key=True)
    service_type: Mapped[str] = mapped_column(String(255), primary_key=True)


class AllocationPool(Base):
    __tablename__ = "allocation_pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), index=True)
    first_ip: Mapped[str] = mapped_column(String(64))
    last_ip: Mapped[str] = mapped_column(String(64))
    first_key: Mapped[str] = mapped_column(String(32))
    last_key: Mapped[str] = mapped_column(String(32))


class IPAvailabilityRange(Base):
    """Free addresses of a subnet, as disjoint [first, last] ranges.

    Taking the next free address reads one row through an index, instead
    of scanning what is allocated.
    """

    __tablename__ = "ip_availability_ranges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"))
    first_key: Mapped[str] = mapped_column(String(32))
    last_key: Mapped[str] = mapped_column(String(32))
    __table_args__ = (Index("ix_avail_subnet_first", "subnet_id", "first_key"),)


class DNSNameServer(Base):
    __tablename__ = "dns_nameservers"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"),
                                           primary_key=True)
    address: Mapped[str] = mapped_column(String(128), primary_key=True)
    order: Mapped[int] = mapped_column(Integer, default=0)


class SubnetRoute(Base):
    __tablename__ = "subnet_routes"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"),
                                           primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)
    order: Mapped[int] = mapped_column(Integer, default=0)


class Port(StandardAttrs, Base):
    __tablename__ = "ports"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # dns-integration, dns-domain-ports ("" when unset)
    dns_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="", server_default="")
    tags = _tags_rel("Port")
    fixed_ips = relationship("IPAllocation", lazy="selectin",
                             cascade="all, delete-orphan",
                             order_by="IPAllocation.order")
    allowed_address_pairs = relationship("AllowedAddressPair", lazy="selectin",
                                         cascade="all, delete-orphan",
                                         order_by="AllowedAddressPair.order")
    __table_args__ = (UniqueConstraint("network_id", "mac_address",
                                       name="uniq_ports0network_id0mac_address"),)


class IPAllocation(Base):
    __tablename__ = "ipallocations"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)
    order: Mapped[int] = mapped_column(Integer, default=0)


class AllowedAddressPair(Base):
    __tablename__ = "allowed_address_pairs"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    order: Mapped[int] = mapped_column(Integer, default=0)


class Change(Base):
    """The global change sequence: one row per committed change.

    Agents ask for what changed since a sequence number.
    """

    __tablename__ = "changes"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    resource: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(36))
    network_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # For ports: the host the port is (or, for a move, was) bound to.
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    op: Mapped[str] = mapped_column(String(8))
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    # sg_member rows: the port's addresses before and after the change (a
    # JSON list), so that hosts get which of them are members now instead
    # of the group's whole member list.  NULL: unknown, send the group.
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


# --------------------------------------------------------------- provider
class NetworkSegment(Base):
    """The network's segment (provider:* attributes)."""

    __tablename__ = "network_segments"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            primary_key=True)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SegmentAllocation(Base):
    """One row per segment in use: (type, physical network, id) is unique.

    Physical network '' for tunnels; segmentation id 0 for flat.  Local
    networks take no row.
    """

    __tablename__ = "segment_allocations"
    network_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)
    segmentation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)


class ExternalNetwork(Base):
    __tablename__ = "external_networks"
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            primary_key=True)
    # The deployment's default external network (auto-allocated-topology):
    # at most one is.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False,
                                             server_default=sa_false())


Network.segment = relationship(NetworkSegment, uselist=False, lazy="selectin",
                               cascade="all, delete-orphan")
Network.external = relationship(ExternalNetwork, uselist=False, lazy="selectin",
                                cascade="all, delete-orphan")
# A subnet's network's row here, if any (subnet-external-network).
Subnet.external = relationship(
    ExternalNetwork, uselist=False, lazy="selectin", viewonly=True,
    primaryjoin=lambda: foreign(Subnet.network_id) == remote(ExternalNetwork.network_id))


# --------------------------------------------------------------- binding
class PortBinding(Base):
    __tablename__ = "port_bindings"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="", index=True)
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    profile: Mapped[str] = mapped_column(String(4095), default="{}")
    vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    vif_details: Mapped[str] = mapped_column(String(4095), default="{}")
    # port-trusted-vif: None until an admin says (shown in the profile too)
    trusted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # What the host's agent reported: plugged on an ofport, flows installed.
    ofport: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flows_installed: Mapped[bool] = mapped_column(Boolean, default=False)


Port.binding = relationship(PortBinding, uselist=False, lazy="selectin",
                            cascade="all, delete-orphan")


# --------------------------------------------------------------- security groups
class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "securitygroups"
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)
    tags = _tags_rel("SecurityGroup")
    rules = relationship("SecurityGroupRule", lazy="selectin", cascade="all, delete-orphan",
                         order_by="SecurityGroupRule.created_at, SecurityGroupRule.id",
                         foreign_keys="SecurityGroupRule.security_group_id")


class DefaultSecurityGroup(Base):
    """The project's default group; the primary key makes it one per project."""

    __tablename__ = "default_security_groups"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), unique=True)


class SecurityGroupRule(Base):
    __tablename__ = "securitygrouprules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), index=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The IP protocol number ``protocol`` names (None: any), from the one
    # table in quantum_ovs.constants, computed once when the rule is made.
    protocol_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # address-group: an address group in use cannot be deleted (409).
    remote_address_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("address_groups.id"), nullable=True, index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class DefaultSecurityGroupRule(Base):
    """A template of the rules new security groups get
    (security-groups-default-rules); remote_group_id "PARENT" is the new
    group itself."""

    __tablename__ = "default_security_group_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(255), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("address_groups.id"), nullable=True, index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    used_in_default_sg: Mapped[bool] = mapped_column(Boolean, default=False)
    used_in_non_default_sg: Mapped[bool] = mapped_column(Boolean, default=True)


class AddressGroup(StandardAttrs, Base):
    """A project's named set of CIDRs, the remote of security group rules."""

    __tablename__ = "address_groups"
    addresses = relationship("AddressAssociation", lazy="selectin",
                             cascade="all, delete-orphan", passive_deletes=True,
                             order_by="AddressAssociation.address")


class AddressAssociation(Base):
    """One CIDR of an address group, canonical (``10.0.0.5/32``)."""

    __tablename__ = "address_associations"
    address_group_id: Mapped[str] = mapped_column(
        ForeignKey("address_groups.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)


class SecurityGroupPortBinding(Base):
    __tablename__ = "securitygroupportbindings"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id"), primary_key=True, index=True)


Port.security_group_bindings = relationship(SecurityGroupPortBinding, lazy="selectin",
                                            cascade="all, delete-orphan")


# --------------------------------------------------------------- agents
class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), default="N/A")
    host: Mapped[str] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_timestamp: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    configurations: Mapped[str] = mapped_column(String(8191), default="{}")
    tunnel_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (UniqueConstraint("agent_type", "host",
                                       name="uniq_agents0agent_type0host"),)


# --------------------------------------------------------------- quotas
class Quota(Base):
    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


# --------------------------------------------------------------- agent credentials
class AgentCredential(Base):
    """A token that lets one hypervisor's agent act as its host (and only it).

    Only the SHA-256 digest of the token is kept: tokens are 256 random bits,
    so a fast hash is enough and a database dump does not hand out
    credentials. A revoked credential keeps its row (``revoked_at`` set) for
    the audit trail.
    """
    __tablename__ = "agent_credentials"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    # The operator grants the gateway role (create --gateway): an agent may
    # register as a gateway host (see routed networks, serve SNAT) only so.
    gateway: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    __table_args__ = (UniqueConstraint("token_hash",
                                       name="uniq_agent_credentials0token_hash"),)


# --------------------------------------------------------------- port bindings (binding-extended)
class InactivePortBinding(Base):
    """A port's bindings other than its active one (which stays in
    ``port_bindings``, one row per port).

    ``pending``: made for a host the port is to move to (nova's live
    migration): that host's agent prepares the port before activation.
    Otherwise the binding was active until another one was activated, and
    is kept until deleted (nova deletes it, or activates it again to roll
    a migration back).  ``ofport`` and ``flows_installed``: what the host's
    agent reported for the port, carried into ``port_bindings`` on
    activation.
    """

    __tablename__ = "port_inactive_bindings"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    profile: Mapped[str] = mapped_column(String(4095), default="{}")
    vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    vif_details: Mapped[str] = mapped_column(String(4095), default="{}")
    pending: Mapped[bool] = mapped_column(Boolean, default=True)
    ofport: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flows_installed: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_port_inactive_bindings_host", "host"),)


# Loaded only when touched (port listings never read it); the database
# removes the rows with their port.
Port.inactive_bindings = relationship(InactivePortBinding, lazy="select",
                                      cascade="all, delete-orphan", passive_deletes=True,
                                      order_by=InactivePortBinding.host)


# --------------------------------------------------------------- extra_dhcp_opt
class ExtraDhcpOpt(Base):
    """An extra DHCP option of a port: one per (name, IP version)."""

    __tablename__ = "extradhcpopts"
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    opt_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    opt_value: Mapped[str] = mapped_column(String(255), default="")
    order: Mapped[int] = mapped_column(Integer, default=0)


# The port's network's dns_domain (what its dns_assignment is built with),
# read with the port.
Port.network_dns_domain = column_property(
    select(Network.dns_domain).where(Network.id == Port.network_id)
    .correlate_except(Network).scalar_subquery())

Port.extra_dhcp_opts = relationship(ExtraDhcpOpt, lazy="selectin",
                                    cascade="all, delete-orphan", passive_deletes=True,
                                    order_by=ExtraDhcpOpt.order)


# --------------------------------------------------------------- routers (l3)
class AutoAllocatedTopology(Base):
    """A project's auto-allocated topology (auto-allocated-topology): the
    network made for it and the router that links it to the default
    external network.  Gone with the network; a router deleted by hand
    leaves the network as the project's."""

    __tablename__ = "auto_allocated_topologies"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), unique=True)
    router_id: Mapped[str | None] = mapped_column(
        ForeignKey("routers.id", ondelete="SET NULL"), nullable=True)


class Router(StandardAttrs, Base):
    """A router (aliases router, extraroute).

    Its external gateway: the external network, the gateway port on it
    (``network:router_gateway``, also a row of ``routerports``) and whether
    SNAT is on.  What they do in the data plane comes with external
    connectivity.
    """

    __tablename__ = "routers"
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    gw_network_id: Mapped[str | None] = mapped_column(
        ForeignKey("networks.id"), nullable=True, index=True)
    gw_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    # The tunnel key of SNAT traffic redirected to the gateway hosts (a
    # row of segment_allocations, so that no network takes it); None
    # without a gateway.
    redirect_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tags = _tags_rel("Router")
    gw_port = relationship(Port, lazy="selectin", viewonly=True,
                           primaryjoin="foreign(Router.gw_port_id) == Port.id")
    attached = relationship("RouterPort", lazy="selectin", cascade="all, delete-orphan",
                            passive_deletes=True, order_by="RouterPort.order")
    routes = relationship("RouterRoute", lazy="selectin", cascade="all, delete-orphan",
                          passive_deletes=True,
                          order_by="RouterRoute.destination, RouterRoute.nexthop")


class RouterPort(Base):
    """A port of a router: ``port_type`` is its device_owner when attached
    (``network:router_interface``; ``network:router_gateway`` later).  A
    port is on one router at most."""

    __tablename__ = "routerports"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True, unique=True)
    port_type: Mapped[str] = mapped_column(String(255))
    # Attachment order (what the router shows its interfaces in).
    order: Mapped[int] = mapped_column(Integer, default=0)


class RouterRoute(Base):
    """An extra route of a router (extraroute): next hop on a connected
    subnet."""

    __tablename__ = "routerroutes"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class RouterGatewayHost(Base):
    """A gateway host of a router's external gateway (agent option
    ``[agent] gateway``): ``priority`` 0 is the first choice."""

    __tablename__ = "router_gateway_hosts"
    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------- floating IPs
class FloatingIP(StandardAttrs, Base):
    """A floating IP: an address of an external network held by its own
    port (``network:floatingip``), associated with a fixed IP of a port
    reached from that network through ``router_id``.  ``status``: ACTIVE
    once the agent of the host that holds it reported it installed."""

    __tablename__ = "floatingips"
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    fixed_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(
        ForeignKey("routers.id", ondelete="SET NULL"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    tags = _tags_rel("FloatingIP")
    fixed_port = relationship(Port, lazy="selectin", viewonly=True,
                              primaryjoin="foreign(FloatingIP.fixed_port_id) == Port.id")
    forwardings = relationship("PortForwarding", lazy="selectin",
                               cascade="all, delete-orphan", passive_deletes=True,
                               order_by="PortForwarding.external_port_lo, "
                                        "PortForwarding.protocol")
    __table_args__ = (UniqueConstraint("floating_network_id", "fixed_port_id",
                                       "fixed_ip_address",
                                       name="uniq_floatingips0net0port0fixed_ip"),)


class PortForwarding(Base):
    """``floating IP:external_port_lo..hi/protocol`` -> ``internal_ip_address:
    internal_port_lo..hi`` of ``internal_port_id`` (ranges of one length)."""

    __tablename__ = "portforwardings"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    floatingip_id: Mapped[str] = mapped_column(
        ForeignKey("floatingips.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(40))
    internal_port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    internal_ip_address: Mapped[str] = mapped_column(String(64))
    external_port_lo: Mapped[int] = mapped_column(Integer)
    external_port_hi: Mapped[int] = mapped_column(Integer)
    internal_port_lo: Mapped[int] = mapped_column(Integer)
    internal_port_hi: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255), default="")


class AddressScope(StandardAttrs, Base):
    """address-scope: a set of subnet pools whose prefixes never overlap,
    so that addresses within it are routed without NAT."""

    __tablename__ = "address_scopes"
    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    tags = _tags_rel("AddressScope")


class SubnetPool(StandardAttrs, Base):
    """subnet_allocation: prefixes subnets are carved out of.  What is
    allocated is the cidrs of the subnets that name the pool."""

    __tablename__ = "subnetpools"
    ip_version: Mapped[int] = mapped_column(Integer)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    default_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    address_scope_id: Mapped[str | None] = mapped_column(
        ForeignKey("address_scopes.id"), nullable=True, index=True)
    tags = _tags_rel("SubnetPool")
    prefixes = relationship("SubnetPoolPrefix", lazy="selectin",
                            cascade="all, delete-orphan",
                            order_by="SubnetPoolPrefix.first_key")


class SubnetPoolPrefix(Base):
    __tablename__ = "subnetpoolprefixes"
    subnetpool_id: Mapped[str] = mapped_column(
        ForeignKey("subnetpools.id", ondelete="CASCADE"), primary_key=True)
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)
    # ipam.ip_key of the first address: orders IPv4 and IPv6 alike
    first_key: Mapped[str] = mapped_column(String(32))


# --------------------------------------------------------------- rbac
class RbacPolicy(Base):
    """An RBAC policy (rbac-policies): ``project_id`` (the object's owner
    or an administrator) gives ``target_tenant`` (a project or ``*``) the
    ``action`` on the object (``object_type``, ``object_id``).  One table
    for every object type (db/rbac.py registers them); a network's
    wildcard ``access_as_shared`` policy is also its ``shared`` flag."""

    __tablename__ = "rbac_policies"
    __table_args__ = (
        UniqueConstraint("object_type", "object_id", "action", "target_tenant",
                         name="uniq_rbac_policies0object0action0target"),
        # The visibility subquery: the objects of a type an action gives a project.
        Index("ix_rbac_policies_grant", "object_type", "action", "target_tenant",
              "object_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(32))
    target_tenant: Mapped[str] = mapped_column(String(255))
