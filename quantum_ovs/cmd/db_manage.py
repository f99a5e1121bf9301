"""quantum-ovs-db-manage: schema migrations (upgrade, downgrade, current).

    quantum-ovs-db-manage [--config-file F | --config-dir D ...] upgrade [REVISION]

The configuration is read as quantum_ovs.cmd.tool_config says (without
``--config-file``: /etc/quantum-ovs/quantum-ovs.conf and oslo.config's
other default places); a configuration error (a missing file, a value of
the wrong type, no ``[database] connection``) is one ``error:`` line and
exit status 2, as a wrong argument is.
"""

import argparse
import sys

from oslo_config import cfg

from quantum_ovs import log, service
from quantum_ovs.cmd import tool_config
from quantum_ovs.db import migration

PROG = "quantum-ovs-db-manage"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=PROG)
    tool_config.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade")
    down.add_argument("revision")
    sub.add_parser("current")
    args = parser.parse_args(argv)
    db = None
    try:
        # (The values are read here, so a wrong one fails here too.)
        conf = tool_config.make_conf(args, PROG)
        log.setup(conf, PROG, stderr=True)
        db = service.make_database(conf)
        if args.command == "upgrade":
            migration.upgrade(db.engine, args.revision)
        elif args.command == "downgrade":
            migration.downgrade(db.engine, args.revision)
        print(migration.current(db.engine) or "None")
    except cfg.Error as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    finally:
        if db is not None:
            db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
