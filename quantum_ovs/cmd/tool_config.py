"""The configuration of the operator tools (quantum-ovs-db-manage,
quantum-ovs-agent-credential).

They act on the database the servers use, so they read the configuration
the way Neutron's tools read neutron.conf (oslo.config, project
``quantum-ovs``): ``--config-file`` and ``--config-dir`` in command-line
order, and without ``--config-file`` the project's default files
(``quantum-ovs.conf`` and ``<tool>.conf`` in ~/.quantum-ovs/, ~/,
/etc/quantum-ovs/, /etc/; the first of each found), so a tool run on the
server host finds /etc/quantum-ovs/quantum-ovs.conf as the uWSGI
application does.  And unlike the server (whose embedded default,
./quantum-ovs.sqlite, lets a bare ``quantum-ovs-server`` run), a tool has
no default ``[database] connection``: a tool that found no database in
its configuration would migrate, or issue a token into, a new file
wherever the operator stands, and report success; it stops instead.
"""

import argparse

from oslo_config import cfg

from quantum_ovs import config


class _InOrder(argparse.Action):
    """``--config-file F`` and ``--config-dir D`` kept as they were given, in
    one list: oslo.config reads them in command-line order (a later one's
    values win)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest,
                list(getattr(namespace, self.dest) or []) + [option_string, values])


def add_arguments(parser):
    """The configuration's command-line options, on the tool's parser."""
    parser.add_argument("--config-file", dest="config_args", action=_InOrder, default=[],
                        metavar="PATH",
                        help="a configuration file (may be repeated; default: "
                             "quantum-ovs.conf in ~/.quantum-ovs/, ~/, "
                             "/etc/quantum-ovs/ or /etc/)")
    parser.add_argument("--config-dir", dest="config_args", action=_InOrder, default=[],
                        metavar="DIR",
                        help="a directory of *.conf files, read in name order "
                             "after the files before it (may be repeated)")
    parser.add_argument("--database-connection", metavar="URL",
                        help="overrides [database] connection")


def make_conf(args, prog):
    """The tool's configuration from its parsed ``args`` (add_arguments);
    cfg.Error when a file is missing or unreadable, or when no database is
    configured."""
    conf = config.make_conf(args.config_args, prog=prog,
                            default_config_files=cfg.find_config_files("quantum-ovs", prog))
    conf.set_default("connection", None, group="database")
    if args.database_connection:
        conf.set_override("connection", args.database_connection, group="database")
    if not conf.database.connection:
        read = ", ".join(list(conf.config_file) + list(conf.config_dir or [])) or \
            "none found"
        raise cfg.Error(
            f"no database: [database] connection is not set (configuration read: {read}); "
            f"give --config-file with the servers' configuration (default: "
            f"/etc/quantum-ovs/quantum-ovs.conf), --config-dir, or --database-connection")
    return conf
