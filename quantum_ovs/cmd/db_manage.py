"""quantum-ovs-db-manage: schema migrations (upgrade, downgrade, current)."""

import argparse
import sys

from oslo_config import cfg

from quantum_ovs import config, log, service
from quantum_ovs.db import migration


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="quantum-ovs-db-manage")
    parser.add_argument("--config-file", action="append", default=[])
    parser.add_argument("--database-connection", help="overrides [database] connection")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade")
    down.add_argument("revision")
    sub.add_parser("current")
    args = parser.parse_args(argv)
    conf = config.make_conf([a for f in args.config_file for a in ("--config-file", f)])
    log.setup(conf, "quantum-ovs-db-manage", stderr=True)
    if args.database_connection:
        conf.set_override("connection", args.database_connection, group="database")
    db = service.make_database(conf)
    try:
        if args.command == "upgrade":
            migration.upgrade(db.engine, args.revision)
        elif args.command == "downgrade":
            migration.downgrade(db.engine, args.revision)
        print(migration.current(db.engine) or "None")
    except cfg.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
