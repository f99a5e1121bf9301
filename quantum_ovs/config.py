"""Configuration options (oslo.config).

Options are registered on a ConfigOpts object that the caller creates
(``make_conf``); nothing is registered at import time.  ``list_opts`` feeds
oslo-config-generator, which writes ``etc/quantum-ovs.conf.sample``.
"""

from oslo_config import cfg

from quantum_ovs import log

core_opts = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1",
                       help="The host IP to bind the API server to. The "
                            "default serves this host only; 0.0.0.0 (or ::) "
                            "serves every address: do that with "
                            "auth_strategy = keystone."),
    cfg.PortOpt("bind_port", default=9696,
                help="The port the API server listens on."),
    cfg.IntOpt("api_workers", default=1, min=1,
               help="Number of API server processes. 1 serves from the "
                    "main process; more fork workers sharing the socket."),
    cfg.IntOpt("max_connections", default=4000, min=1,
               deprecated_name="wsgi_green_threads",
               help="Client connections one API process serves at once (each "
                    "holds a green thread while open, idle or not); one more "
                    "is answered 503 at once and closed."),
    cfg.IntOpt("max_connections_per_client", default=100, min=0,
               help="Connections one client address may hold open in one "
                    "API process; more are answered 503. 0: no cap (set it "
                    "behind a proxy that makes every client one address)."),
    cfg.IntOpt("max_long_polls", default=2000, min=1,
               help="Agent long polls waiting at once in one API process; one "
                    "more is answered 503 (agents retry), so that waiting "
                    "agents leave room for other requests."),
    cfg.FloatOpt("client_header_timeout", default=20.0, min=0.1,
                 help="Seconds a client has to send a request's line and "
                      "headers, counted from its connection or from the end "
                      "of its previous request: idle keep-alive connections "
                      "and clients that trickle bytes are closed after it."),
    cfg.FloatOpt("client_socket_timeout", default=60.0, min=0.1,
                 help="Seconds one read of a request body or one write of a "
                      "response may wait for the client; a whole body has "
                      "these seconds and the time it takes at 64 KiB/s.  A "
                      "stopping quantum-ovs-server (SIGTERM) waits up to these "
                      "seconds for the requests in progress."),
    cfg.StrOpt("auth_strategy", default="noauth",
               choices=["noauth", "keystone"],
               help="noauth takes the project and roles from the "
                    "X-Project-Id and X-Roles headers; keystone validates "
                    "tokens with keystonemiddleware."),
    cfg.StrOpt("default_project_id", default="default",
               help="With noauth, the project of requests that name none."),
    cfg.StrOpt("base_mac", default="fa:16:3e:00:00:00",
               help="The base MAC address; the last three octets are "
                    "random."),
    cfg.BoolOpt("allow_overlapping_ips", default=True,
                help="Allow subnets of different networks to overlap."),
    cfg.IntOpt("max_dns_nameservers", default=5,
               help="Maximum number of DNS nameservers per subnet."),
    cfg.IntOpt("max_subnet_host_routes", default=20,
               help="Maximum number of host routes per subnet."),
    cfg.IntOpt("max_auto_address_subnets_per_network", default=16, min=1,
               help="Maximum number of SLAAC / DHCPv6-stateless subnets on one network: "
                    "each gives every port of the network an address, and each address "
                    "is a member of the port's security groups on every host."),
    cfg.IntOpt("max_fixed_ips_per_port", default=5, min=1,
               help="Maximum number of fixed IPs a port may request."),
    cfg.IntOpt("max_allowed_address_pair", default=10, min=0,
               help="Maximum number of allowed address pairs per port."),
    cfg.IntOpt("mac_generation_retries", default=16,
               help="How many random MACs to try before giving up."),
    cfg.IntOpt("pagination_max_limit", default=-1,
               help="The maximum number of items returned in a single "
                    "response; -1 means no limit."),
    cfg.IntOpt("global_physnet_mtu", default=1500,
               help="MTU of the underlying physical network."),
    cfg.ListOpt("service_plugins", default=["router", "auto_allocate"],
                help="Service plugins to enable, as in Neutron: 'router' serves "
                     "the L3 API (routers, extra routes, floating IPs), "
                     "'auto_allocate' the auto-allocated topology (needs "
                     "'router')."),
]

database_opts = [
    cfg.StrOpt("connection", default="sqlite:///quantum-ovs.sqlite",
               secret=True,
               help="SQLAlchemy URL of the database, e.g. "
                    "postgresql+psycopg2://user:pw@host/db or "
                    "mysql+pymysql://user:pw@host/db. The default (a SQLite file "
                    "in the server's working directory) is for trying the server "
                    "out; quantum-ovs-db-manage and quantum-ovs-agent-credential "
                    "have none and stop when it is not set."),
    cfg.IntOpt("max_pool_size", default=10,
               help="Connections kept open per API process."),
    cfg.IntOpt("max_overflow", default=20,
               help="Extra connections allowed under load."),
    cfg.IntOpt("max_retries", default=10, min=-1,
               help="Maximum number of database connection retries when the "
                    "server starts (-1: retry for ever), as oslo.db's option of "
                    "the same name. DEPRECATED MEANING: before this release this "
                    "option was the number of retries of a transaction that hit a "
                    "deadlock or a concurrent allocation; that is now "
                    "db_max_retries. A value set for the old meaning now only "
                    "changes how long the server waits for its database at start."),
    cfg.IntOpt("retry_interval", default=10, min=0,
               help="Seconds between database connection retries when the "
                    "server starts (oslo.db's option of the same name)."),
    cfg.IntOpt("db_max_retries", default=20, min=0,
               help="Retries of a write transaction that hit a deadlock or "
                    "lost the race for a unique allocation (an address, a MAC, a "
                    "segment) to a concurrent one. Foreign key and NOT NULL "
                    "violations are never retried. (Formerly max_retries.)"),
    cfg.IntOpt("connection_recycle_time", default=3600,
               help="Seconds after which a pooled connection is replaced by a "
                    "new one on its next use; -1 never (oslo.db's option). Keep it "
                    "below the server's idle limit (MySQL wait_timeout)."),
    cfg.StrOpt("mysql_sql_mode", default="TRADITIONAL",
               help="The SQL mode of every MySQL/MariaDB connection, as oslo.db's "
                    "option (TRADITIONAL: a value the column cannot hold is "
                    "refused, not cut); empty keeps the server's."),
    cfg.BoolOpt("auto_migrate", default=True,
                help="Upgrade the schema to head when the server starts."),
    cfg.FloatOpt("connect_timeout", default=5.0, min=0,
                 help="Seconds a new database connection may take (PostgreSQL, MySQL); "
                      "0 waits for ever."),
    cfg.FloatOpt("statement_timeout", default=5.0, min=0,
                 help="Seconds one statement may take (PostgreSQL: the database "
                      "cancels it then; MySQL: how long a row lock is waited for), "
                      "and a database that does not answer at all "
                      "(hung, or gone without closing its connections) is given up "
                      "one second later; the request fails with 503, and requests "
                      "fail at once for a second before the database is tried "
                      "again. 0 waits for ever."),
]

OPT_GROUPS = (
    ("DEFAULT", core_opts),
    ("database", database_opts),
)


def _all_groups(extra=()):
    from quantum_ovs import extensions
    from quantum_ovs.api import metrics, policy
    merged = {}
    for group, opts in (list(OPT_GROUPS) + extensions.opts() + policy.list_opts() +
                        metrics.list_opts() + list(extra)):
        merged.setdefault(group, []).extend(opts)
    return merged


def list_opts():
    from quantum_ovs import extensions
    from quantum_ovs.api import middleware
    groups = _all_groups(log.list_opts() + middleware.list_opts())
    # Options registered at run time (an auth plugin's): in the sample too.
    for m in extensions.load():
        for group, opts in getattr(m, "SAMPLE_OPTS", ()):
            groups.setdefault(group, []).extend(opts)
    return [(group, list(opts)) for group, opts in groups.items()]


def make_conf(args=None, default_config_files=None, extra=(), prog=None):
    """Options registered and ``args`` parsed.  No configuration file is
    read unless ``args`` or ``default_config_files`` name it (the servers
    and the tests; the operator tools look for the project's default files:
    quantum_ovs.cmd.tool_config)."""
    conf = cfg.ConfigOpts()
    log.register_options(conf)  # oslo.log's (command-line ones among them)
    for group, opts in _all_groups(extra).items():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
    conf(args=list(args or []), project="quantum-ovs", prog=prog,
         default_config_files=default_config_files or [])
    return conf
