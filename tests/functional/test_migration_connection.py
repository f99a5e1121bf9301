"""The connection migrations run on (db/migration.py): serialized between
processes, without the service's request limits, and on SQLite with
foreign keys off only while they run."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from quantum_ovs.db import migration
from quantum_ovs.service import make_database
from tests.functional.conftest import make_conf
from tests.functional.test_upgrades_review_s27 import STARTUP_MIGRATION


@pytest.mark.parametrize("db_url", ["postgresql", "mysql"], indirect=True)
def test_a_migration_is_not_cut_by_the_request_limits(db_url):
    """statement_timeout 1 s (PostgreSQL's statement_timeout and the
    client's wait deadline; MariaDB's lock wait and read timeout): a
    migration's statement may take longer, and the connection has its
    limits back afterwards, its lock released."""
    conf = make_conf(db_url)
    conf.set_override("statement_timeout", 1, group="database")
    db = make_database(conf)
    pg = db_url.startswith("postgresql")
    slow = "SELECT pg_sleep(2.5)" if pg else "SELECT SLEEP(3.5)"
    try:
        with migration._migrating(db.engine) as conn, conn.begin():
            conn.exec_driver_sql(slow)
        with db.engine.connect() as conn:
            if pg:
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "1s"
                assert conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").scalar() == 0
            else:
                assert conn.exec_driver_sql(
                    "SELECT @@SESSION.innodb_lock_wait_timeout").scalar() == 1
                assert conn.exec_driver_sql(
                    f"SELECT IS_USED_LOCK('{migration.MIGRATE_LOCK_NAME}')").scalar() is None
            with pytest.raises(Exception):  # noqa: B017 - the driver's error, cut as a request's
                conn.exec_driver_sql(slow)
    finally:
        db.dispose()


def test_sqlite_foreign_keys_are_as_before_after_a_migration(tmp_path):
    url = f"sqlite:///{tmp_path / 'qovs.sqlite'}"
    db = make_database(make_conf(url))
    try:
        migration.upgrade(db.engine)
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()
    engine = sa.create_engine(url)  # (SQLite's default: off)
    try:
        migration.downgrade(engine, "0010_subnetpools")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_three_processes_upgrading_at_once_all_start(db_url):
    """Without the lock each backend lost one: PostgreSQL and MariaDB a
    duplicate table, SQLite "database is locked"."""
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0010_subnetpools")
    finally:
        engine.dispose()
    procs = [subprocess.Popen([sys.executable, "-c", STARTUP_MIGRATION, db_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _, err in outs]
