"""The migrations build exactly the schema the models describe."""

import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from quantum_ovs.db import migration, models


def test_migrations_match_models(db_url):
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
        assert diff == [], diff
        assert migration.current(engine) is not None
        migration.downgrade(engine, "base")
        with engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert left == set()
    finally:
        engine.dispose()


def test_db_manage_cli(db_url):
    out = subprocess.run([sys.executable, "-m", "quantum_ovs.cmd.db_manage",
                          "--database-connection", db_url, "upgrade", "head"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    head = out.stdout.strip().splitlines()[-1]
    assert head.startswith("0")
    out = subprocess.run([sys.executable, "-m", "quantum_ovs.cmd.db_manage",
                          "--database-connection", db_url, "current"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == head


def test_db_manage_check_history_heads_stamp(db_url, capsys, monkeypatch):
    """What a deployment asks before starting servers (check: 0 at head, 1
    with the migrations to run, or at a revision this code does not know),
    this code's migrations (history, heads), and stamp; as Neutron's
    neutron-db-manage current/history/heads/stamp."""
    from quantum_ovs.cmd import db_manage
    monkeypatch.setattr(db_manage.log, "setup", lambda *a, **k: None)

    def run(*args):
        capsys.readouterr()
        try:
            rc = db_manage.main(["--database-connection", db_url, *args])
        except SystemExit as e:  # (argparse)
            rc = e.code
        out = capsys.readouterr()
        return rc, out.out, out.err

    revisions = [r for r, _ in migration.history()]
    head = revisions[-1]
    assert revisions[0].startswith("0001") and len(set(revisions)) == len(revisions)
    assert run("heads") == (0, head + "\n", "")
    rc, _, err = run("check")  # no schema yet
    assert rc == 1 and f"would run {len(revisions)} migration(s)" in err
    assert run("upgrade", revisions[2])[0] == 0
    rc, _, err = run("check")
    assert rc == 1 and err.count(", ") == len(revisions) - 4 and revisions[3] in err, err
    rc, out, _ = run("history")
    lines = out.splitlines()
    assert rc == 0 and [ln.split()[0] for ln in lines] == revisions
    assert "(current)" in lines[2] and "(head)" in lines[-1] and "(current" not in lines[-1]
    assert run("upgrade")[0] == 0
    assert run("check")[:2] == (0, f"{head} (head): up to date\n")
    # A database a newer release migrated: this code does not know its revision.
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    rc, _, err = run("check")
    assert rc == 1 and "9999_future, which this code does not know" in err
    # stamp: recorded, nothing run
    assert run("stamp", head)[:2] == (0, head + "\n")
    assert run("check")[0] == 0
    rc, _, err = run("stamp", "0999_nothing")  # no such migration: an error, not a traceback
    assert rc == 2 and "error:" in err and "0999_nothing" in err
    engine.dispose()
