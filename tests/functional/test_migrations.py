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
