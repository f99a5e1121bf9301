"""quantum-ovs-agent-credential: per-host agent credentials.

    quantum-ovs-agent-credential --config-file quantum-ovs.conf create --host H [--[no-]gateway]
    quantum-ovs-agent-credential --config-file quantum-ovs.conf list [--host H] [--all]
    quantum-ovs-agent-credential --config-file quantum-ovs.conf revoke (--host H | --id ID)

The configuration is read as quantum_ovs.cmd.tool_config says
(``--config-file``, ``--config-dir``; without ``--config-file``,
/etc/quantum-ovs/quantum-ovs.conf and oslo.config's other default places);
without a ``[database] connection`` the tool stops (exit status 2).

``create`` prints the new token alone on stdout (it is not stored and
cannot be shown again; put it in the agent's ``[server] token``) and what
was issued on stderr.  ``--gateway`` grants the gateway role: only then may
the agent register with ``[agent] gateway = true`` (a gateway host serves
routers' SNAT and sees the networks behind them).  Without ``--gateway``
or ``--no-gateway`` a new credential has the role if a live credential of
the host has it: rotating a gateway host's credential keeps its role.  A
revocation holds for the next request to any server process.  The command
talks to the database directly: whoever may run it can already read every
host's view there.
"""

import argparse
import json
import sys

from oslo_config import cfg
from oslo_db import exception as db_exc

from quantum_ovs import log, service
from quantum_ovs.cmd import tool_config
from quantum_ovs.db import agent_auth, migration

PROG = "quantum-ovs-agent-credential"


def _table(rows):
    cols = ["id", "host", "gateway", "created_at", "revoked_at", "description"]
    cells = [cols] + [[str(r[c] if r[c] is not None else "-") for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                     for row in cells)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=PROG,
                                     description="Issue, list and revoke per-host agent "
                                                 "credentials.")
    tool_config.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="issue a credential for one host")
    create.add_argument("--host", required=True)
    create.add_argument("--description", default="")
    role = create.add_mutually_exclusive_group()
    role.add_argument("--gateway", action="store_const", const=True, default=None,
                      help="the host is a gateway host (its agent may register as one)")
    role.add_argument("--no-gateway", dest="gateway", action="store_const", const=False,
                      help="it is not (default: as the host's live credentials are)")
    lst = sub.add_parser("list", help="list credentials (live ones unless --all)")
    lst.add_argument("--host")
    lst.add_argument("--all", action="store_true", help="include revoked credentials")
    rev = sub.add_parser("revoke", help="revoke a host's credentials, or one by id")
    rev.add_argument("--host")
    rev.add_argument("--id", dest="credential_id")
    args = parser.parse_args(argv)
    if args.command == "revoke" and not (args.host or args.credential_id):
        parser.error("revoke needs --host or --id")
    if args.command == "create":
        # Before the database is touched: a credential that cannot work is
        # not issued (nor a schema migrated for it).
        try:
            agent_auth.check_new(args.host, args.description)
        except ValueError as e:
            parser.error(str(e))
    db = None
    try:
        conf = tool_config.make_conf(args, PROG)
        log.setup(conf, PROG, stderr=True)
        db = service.make_database(conf)
        db.wait_until_reachable(conf.database.max_retries, conf.database.retry_interval)
        if conf.database.auto_migrate:
            migration.upgrade(db.engine)  # as the server would at start
        if args.command == "create":
            cred, token = agent_auth.create(db, args.host, args.description, args.gateway)
            if args.json:
                print(json.dumps(dict(cred, token=token)))
            else:
                print(token)
                role = " (a gateway host's)" if cred["gateway"] else ""
                print(f"issued credential {cred['id']} for host {cred['host']}{role}; "
                      f"set it as [server] token in that host's agent configuration "
                      f"(it cannot be shown again)", file=sys.stderr)
        elif args.command == "list":
            rows = agent_auth.list_credentials(db, args.host, include_revoked=args.all)
            print(json.dumps(rows) if args.json else _table(rows))
        else:
            rows = agent_auth.revoke(db, args.host, args.credential_id)
            if args.json:
                print(json.dumps(rows))
            else:
                for r in rows:
                    print(f"revoked {r['id']} (host {r['host']})")
            if not rows:
                print("no live credential matched", file=sys.stderr)
                return 1
    except cfg.Error as e:
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
