"""quantum-ovs-agent options (oslo.config), with Neutron's names where
they exist.  Registered on a ConfigOpts the caller makes (no globals)."""

from oslo_config import cfg

from agent.settings import DHCP_PACKET_BURST, DHCP_PACKET_RATE, PACKET_IN_QUEUE
from quantum_ovs import log

ovs_opts = [
    cfg.StrOpt("integration_bridge", default="br-int",
               help="The integration bridge every VIF is plugged into."),
    cfg.StrOpt("datapath_type", default="system", choices=["system", "netdev"],
               help="OVS datapath type of the bridges the agent creates."),
    cfg.HostAddressOpt("local_ip",
                       help="This host's tunnel endpoint address (VXLAN/GRE)."),
    cfg.ListOpt("bridge_mappings", default=[],
                help="<physical_network>:<bridge> pairs for flat and VLAN "
                     "networks."),
    cfg.StrOpt("ovsdb_connection", default="unix:/var/run/openvswitch/db.sock",
               help="The OVSDB server to manage."),
    cfg.HostAddressOpt("of_listen_address", default="127.0.0.1",
                       help="Where the agent listens for br-int's OpenFlow "
                            "connection."),
    cfg.PortOpt("of_listen_port", default=6633,
                help="OpenFlow listening port (0 picks a free one)."),
    cfg.StrOpt("of_listen_unix", default="",
               help="Listen on this unix socket instead of TCP (reaches a "
                    "switch in another network namespace)."),
    cfg.StrOpt("of_connect_unix", default="",
               help="Instead of listening for br-int's OpenFlow connection, "
                    "connect to the bridge's management socket at this path "
                    "(e.g. /var/run/openvswitch/br-int.mgmt). A restarted "
                    "agent reaches the switch at once, where a listening one "
                    "waits until ovs-vswitchd tries again (a second or more "
                    "after its controller went away). The bridge's "
                    "Controller rows are left as they are: ovs-vswitchd "
                    "flushes the flows of a bridge that gains its first or "
                    "loses its last controller."),
]

agent_opts = [
    cfg.ListOpt("tunnel_types", default=["vxlan"],
                help="Tunnel types this host terminates (vxlan, gre)."),
    cfg.IntOpt("bfd_interval", default=100, min=10,
               help="Milliseconds between BFD control packets on the tunnels "
                    "to gateway hosts (the first of tunnel_types; and the "
                    "shortest interval accepted): a gateway host is declared "
                    "down after three are missed."),
    cfg.FloatOpt("bfd_grace_period", default=5.0, min=0,
                 help="Seconds a new tunnel to a gateway host counts as alive "
                      "before its BFD session first comes up."),
    cfg.FloatOpt("report_interval", default=30.0,
                 help="Seconds between heartbeats to the server."),
    cfg.FloatOpt("polling_interval", default=25.0,
                 help="Longest wait of one long-poll for changes."),
    cfg.StrOpt("host", default=None,
               help="This hypervisor's name (binding:host_id); when unset, "
                    "[DEFAULT] host, then the machine's hostname."),
    cfg.StrOpt("state_path", default="/var/lib/quantum-ovs",
               help="Where the agent keeps its allocation state across "
                    "restarts."),
    cfg.IntOpt("dhcp_lease_time", default=86400,
               help="Lease time of the native DHCP responder, in seconds."),
    cfg.IntOpt("dhcp_packet_rate", default=DHCP_PACKET_RATE, min=1,
               help="DHCP requests per second one port may send to the agent "
                    "(an OpenFlow meter per port drops the rest in the switch)."),
    cfg.IntOpt("dhcp_packet_burst", default=DHCP_PACKET_BURST, min=1,
               help="Requests a port may send at once above dhcp_packet_rate."),
    cfg.IntOpt("packet_in_queue", default=PACKET_IN_QUEUE, min=1,
               help="Punted packets waiting for the agent; more are dropped "
                    "and counted."),
    cfg.BoolOpt("gateway", default=False,
                help="This host is a gateway host: the server assigns routers' "
                     "external gateways (SNAT) to it.  It needs the external "
                     "networks' physical networks in bridge_mappings, and a "
                     "credential issued for a gateway host "
                     "(quantum-ovs-agent-credential create --gateway)."),
    cfg.ListOpt("dns_resolvers", default=[],
                help="Upstream DNS resolvers (address or address:port) the agent "
                     "forwards instances' queries for names that are not of their "
                     "network to; none: such queries are refused.  The agent asks "
                     "them from the hypervisor's network namespace: a subnet's "
                     "dns_nameservers (its owner's choice) are never asked by the "
                     "agent, DHCP hands them to the instances instead."),
    cfg.PortOpt("metrics_port", default=0,
                help="Serve the agent's Prometheus metrics (flows installed, "
                     "compile and install times, flow-mods, resyncs, port-ready "
                     "latency, OpenFlow and OVSDB reconnects) on this port, "
                     "plain HTTP without authentication; 0 (the default): not "
                     "served."),
    cfg.HostAddressOpt("metrics_bind_host", default="127.0.0.1",
                       help="Address of the metrics listener (metrics_port)."),
]

default_opts = [
    # Where Neutron's agents read the host name (neutron/conf/common.py): an
    # agent configuration carried over from Neutron names its host here.
    # [agent] host, ours, wins when both are set.
    cfg.HostAddressOpt("host",
                       help="This hypervisor's name (binding:host_id), as Neutron's "
                            "agents read it: the name nova's [DEFAULT] host gives "
                            "this compute host. [agent] host, when set, wins; "
                            "neither set: the machine's hostname."),
    cfg.StrOpt("dns_domain", default="openstacklocal.",
               help="The DNS domain of ports' names on networks without a "
                    "dns_domain (what the agent answers DNS for and DHCP hands "
                    "out); keep it equal to the server's [DEFAULT] dns_domain."),
]

server_opts = [
    cfg.StrOpt("url", default="http://127.0.0.1:9696",
               help="The quantum-ovs-server to follow."),
    cfg.StrOpt("token", default="", secret=True,
               help="This host's agent credential (issued on the server by "
                    "quantum-ovs-agent-credential create --host <this "
                    "host>), or a shared [agent_api] token."),
    cfg.StrOpt("ca_file", default="",
               help="With an https url: the PEM CA bundle that signed the "
                    "server's certificate (empty: the system's CAs)."),
    cfg.BoolOpt("insecure", default=False,
                help="With an https url: do not verify the server's "
                     "certificate (tokens and views can then be read by "
                     "anyone on the path; tests only)."),
]


metadata_opts = [
    cfg.BoolOpt("enable_metadata_proxy", default=False,
                help="Serve the metadata service (169.254.169.254 and "
                     "fe80::a9fe:a9fe, port 80) to the instances of this host: one "
                     "proxy in the agent, in a network namespace of its own behind "
                     "one port of the integration bridge, forwarding to nova's "
                     "metadata API.  Nova needs [neutron] "
                     "service_metadata_proxy = True and the same shared secret."),
    cfg.HostAddressOpt("nova_metadata_host", default="127.0.0.1",
                       help="Where nova's metadata API listens."),
    cfg.PortOpt("nova_metadata_port", default=8775,
                help="TCP port of nova's metadata API."),
    cfg.StrOpt("nova_metadata_protocol", default="http", choices=["http", "https"],
               help="Protocol to reach nova's metadata API."),
    cfg.StrOpt("metadata_proxy_shared_secret", default="", secret=True,
               help="The secret nova's [neutron] metadata_proxy_shared_secret "
                    "holds: the proxy signs each request's X-Instance-ID with it "
                    "(HMAC-SHA256)."),
    cfg.BoolOpt("nova_metadata_insecure", default=False,
                help="With https: do not verify nova's certificate."),
    cfg.StrOpt("auth_ca_cert", default="",
               help="With https: the PEM CA bundle that signed nova's "
                    "certificate (empty: the system's CAs)."),
    cfg.StrOpt("nova_client_cert", default="",
               help="With https: a client certificate for nova's metadata API."),
    cfg.StrOpt("nova_client_priv_key", default="",
               help="With https: the private key of nova_client_cert."),
    cfg.FloatOpt("nova_metadata_timeout", default=5.0, min=0.1,
                 help="Seconds the proxy waits for nova's answer; slower (or "
                      "no) answers reach the instance as 504 (502 when nova "
                      "refuses the connection)."),
    cfg.IntOpt("metadata_max_requests", default=128, min=1,
               help="Metadata requests of this host's instances handled at "
                    "once; more are answered 503."),
    cfg.StrOpt("metadata_namespace", default="",
               help="Network namespace of the proxy (empty: qovs-meta- and a "
                    "digest of the host name)."),
    cfg.StrOpt("integration_bridge_netns", default="",
               help="The network namespace holding the integration bridge's "
                    "devices when it is not the agent's own (Open vSwitch in a "
                    "container or a namespace of its own): the proxy's veth end "
                    "on br-int is made there.  Empty: the agent's namespace."),
]


securitygroup_opts = [
    cfg.ListOpt("permitted_ethertypes", default=[],
                help="Ethertypes, in hexadecimal (e.g. 0x4008), that ports with "
                     "port security may send and receive besides IP and ARP, "
                     "whatever their security groups (Neutron's option of the "
                     "same name). The frames must come from one of the port's "
                     "MAC addresses. IPv4, IPv6, ARP and VLAN tags cannot be "
                     "permitted this way."),
]


def _own_opts():
    return [("DEFAULT", default_opts), ("ovs", ovs_opts), ("agent", agent_opts),
            ("server", server_opts), ("metadata", metadata_opts),
            ("securitygroup", securitygroup_opts)]


def list_opts():
    """Ours and oslo.log's (for the configuration sample)."""
    own = _own_opts()
    return [(own[0][0], own[0][1] + log.list_opts()[0][1])] + own[1:]


def make_conf(args=None):
    conf = cfg.ConfigOpts()
    log.register_options(conf)  # oslo.log's (command-line ones among them)
    for group, opts in _own_opts():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
    conf(args=list(args or []), project="quantum-ovs", prog="quantum-ovs-agent",
         default_config_files=[])
    return conf
