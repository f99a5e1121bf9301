"""The agent's settings as plain values (from oslo.config or a test)."""

from __future__ import annotations

import socket

from agent.metadata.settings import MetadataSettings

# The per-port DHCP punt's limits and the packet-in queue: the defaults of
# the options (agent/config.py), of Settings and of the OpenFlow channel.
DHCP_PACKET_RATE = 50  # requests per second a port's meter lets through
DHCP_PACKET_BURST = 20  # ... and at once above that rate
PACKET_IN_QUEUE = 256  # punted packets waiting for the agent


def parse_ethertypes(items) -> tuple:
    """[securitygroup] permitted_ethertypes: hexadecimal "0x..." strings,
    as Neutron spells them, to ints (which ones may be permitted, the
    compiler checks: quantum_ovs.compiler.rules.port.check_ethertypes)."""
    out = []
    for item in items:
        text = item.strip().lower()
        digits = text[2:]
        if not text.startswith("0x") or not digits or digits.strip("0123456789abcdef"):
            raise ValueError(f"permitted_ethertypes: {item!r} is not a hexadecimal "
                             "Ethertype such as 0x4008")
        out.append(int(digits, 16))
    return tuple(out)


class Settings:
    """Everything the agent needs, as plain values (from oslo.config or a
    test)."""

    # BFD on the tunnels to gateway hosts (issue 14; [agent] bfd_interval,
    # bfd_grace_period): ms between control packets, s a new one counts as up
    bfd_interval_ms = 100
    bfd_grace = 5.0
    metrics_port = None  # the agent's Prometheus listener (None: none; 0: any free port)
    metrics_host = "127.0.0.1"

    def __init__(self, host, server_url, ovsdb, integration_bridge="br-int",
                 datapath_type="system", local_ip=None, tunnel_types=("vxlan",),
                 bridge_mappings=None, of_listen=("127.0.0.1", 6633), token="",
                 report_interval=30.0, polling_interval=25.0, state_path=None,
                 dhcp_lease_time=86400, of_socket=None, dhcp_packet_rate=DHCP_PACKET_RATE,
                 dhcp_packet_burst=DHCP_PACKET_BURST, packet_in_queue=PACKET_IN_QUEUE,
                 ca_file="", insecure=False, gateway=False, metadata=None,
                 dns_domain="openstacklocal.", dns_resolvers=(), of_connect=None,
                 permitted_ethertypes=()):
        self.host = host
        self.server_url = server_url
        self.ovsdb = ovsdb
        self.integration_bridge = integration_bridge
        self.datapath_type = datapath_type
        self.local_ip = local_ip
        self.tunnel_types = tuple(tunnel_types) if local_ip else ()
        self.bridge_mappings = dict(bridge_mappings or {})
        self.of_listen = of_listen
        self.of_socket = of_socket
        self.of_connect = of_connect  # unix:<bridge's .mgmt socket>: the agent connects
        self.token = token
        self.ca_file = ca_file  # TLS to the server (https url)
        self.insecure = insecure
        self.report_interval = report_interval
        self.polling_interval = polling_interval
        self.state_path = state_path
        self.dhcp_lease_time = dhcp_lease_time
        self.dhcp_packet_rate = dhcp_packet_rate
        self.dhcp_packet_burst = dhcp_packet_burst
        self.packet_in_queue = packet_in_queue
        self.gateway = bool(gateway)  # [agent] gateway: serves routers' gateways
        # agent.metadata.settings.MetadataSettings, or None: no metadata proxy
        self.metadata = metadata
        self.dns_domain = dns_domain  # of networks without a dns_domain
        self.dns_resolvers = tuple(dns_resolvers)  # the DNS responder's upstreams
        # [securitygroup] permitted_ethertypes, as ints
        self.permitted_ethertypes = tuple(permitted_ethertypes)

    @classmethod
    def from_conf(cls, conf):
        s = cls._from_conf(conf)
        s.bfd_interval_ms = conf.agent.bfd_interval
        s.bfd_grace = conf.agent.bfd_grace_period
        s.metrics_port = conf.agent.metrics_port or None
        s.metrics_host = conf.agent.metrics_bind_host
        return s

    @classmethod
    def _from_conf(cls, conf):
        mappings = {}
        for item in conf.ovs.bridge_mappings:
            physnet, _, bridge = item.partition(":")
            if not physnet or not bridge:
                raise ValueError(f"bad bridge_mappings entry {item!r}")
            mappings[physnet.strip()] = bridge.strip()
        # [agent] host, else Neutron's [DEFAULT] host (agent/config.py).
        host = conf.agent.host or conf.host or socket.gethostname()
        return cls(host=host, server_url=conf.server.url,
                   ovsdb=conf.ovs.ovsdb_connection,
                   integration_bridge=conf.ovs.integration_bridge,
                   datapath_type=conf.ovs.datapath_type, local_ip=conf.ovs.local_ip,
                   tunnel_types=conf.agent.tunnel_types, bridge_mappings=mappings,
                   of_listen=(f"unix:{conf.ovs.of_listen_unix}" if conf.ovs.of_listen_unix
                              else (conf.ovs.of_listen_address, conf.ovs.of_listen_port)),
                   token=conf.server.token, ca_file=conf.server.ca_file,
                   insecure=conf.server.insecure, report_interval=conf.agent.report_interval,
                   polling_interval=conf.agent.polling_interval,
                   state_path=conf.agent.state_path,
                   dhcp_lease_time=conf.agent.dhcp_lease_time,
                   dhcp_packet_rate=conf.agent.dhcp_packet_rate,
                   dhcp_packet_burst=conf.agent.dhcp_packet_burst,
                   packet_in_queue=conf.agent.packet_in_queue,
                   gateway=conf.agent.gateway,
                   metadata=MetadataSettings.from_conf(conf),
                   dns_domain=conf.dns_domain, dns_resolvers=conf.agent.dns_resolvers,
                   of_connect=(f"unix:{conf.ovs.of_connect_unix}"
                               if conf.ovs.of_connect_unix else None),
                   permitted_ethertypes=parse_ethertypes(
                       conf.securitygroup.permitted_ethertypes))
