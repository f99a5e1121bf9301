"""quantum-ovs-db-manage: schema migrations.

    quantum-ovs-db-manage [--config-file F | --config-dir D ...] COMMAND

    upgrade [REVISION]   migrate to REVISION (default: head); prints the revision
    downgrade REVISION   migrate down to REVISION
    current              the database's revision ("None": no schema yet)
    check                exit status 0 when the database is at this code's
                         head; 1, naming the migrations to run, when it is not
                         (or at a revision this code does not know): what a
                         deployment checks before starting servers
    stamp REVISION       record REVISION without running anything
    heads                this code's head revision (no database needed)
    history              this code's migrations, oldest first, the database's
                         marked when one is configured

The configuration is read as quantum_ovs.cmd.tool_config says (without
``--config-file``: /etc/quantum-ovs/quantum-ovs.conf and oslo.config's
other default places); a configuration error (a missing file, a value of
the wrong type, no ``[database] connection``) is one ``error:`` line and
exit status 2, as a wrong argument is.
"""

import argparse
import sys

from alembic import util as alembic_util
from oslo_config import cfg
from oslo_db import exception as db_exc

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
    sub.add_parser("check")
    st = sub.add_parser("stamp")
    st.add_argument("revision")
    sub.add_parser("heads")
    sub.add_parser("history")
    args = parser.parse_args(argv)
    if args.command == "heads":
        print("\n".join(migration.heads()))
        return 0
    db = None
    try:
        # (The values are read here, so a wrong one fails here too.)
        conf = tool_config.make_conf(args, PROG)
        log.setup(conf, PROG, stderr=True)
        db = service.make_database(conf)
        db.wait_until_reachable(conf.database.max_retries, conf.database.retry_interval)
        if args.command == "history":
            at = migration.current(db.engine)
            head = set(migration.heads())
            for rev, message in migration.history():
                marks = [m for m, on in (("current", rev == at), ("head", rev in head)) if on]
                print(f"{rev}{' (' + ', '.join(marks) + ')' if marks else ''}  {message}")
            return 0
        if args.command == "check":
            try:
                at, todo = migration.pending(db.engine)
            except ValueError as e:
                print(f"{PROG}: {e}", file=sys.stderr)
                return 1
            if todo:
                print(f"{PROG}: the database is at {at or 'no schema'}; an upgrade to head "
                      f"would run {len(todo)} migration(s): {', '.join(todo)}",
                      file=sys.stderr)
                return 1
            print(f"{at} (head): up to date")
            return 0
        if args.command == "upgrade":
            migration.upgrade(db.engine, args.revision)
        elif args.command == "downgrade":
            migration.downgrade(db.engine, args.revision)
        elif args.command == "stamp":
            migration.stamp(db.engine, args.revision)
        print(migration.current(db.engine) or "None")
    except (cfg.Error, alembic_util.CommandError) as e:
        # (a configuration error, or a revision no migration has)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except db_exc.DBConnectionError as e:
        # ([database] max_retries attempts made)
        print(f"{PROG}: error: the database cannot be reached: "
              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 1
    finally:
        if db is not None:
            db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
