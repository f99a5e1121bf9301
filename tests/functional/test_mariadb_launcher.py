"""quantum_ovs/testing/mariadb.py: the throwaway MariaDB stops leaving no
process and no directory behind, and the schema copy the ``api`` tests
get (copy_schema) is the migrated schema, table for table."""

import os
import uuid

import sqlalchemy as sa

from quantum_ovs.db import migration
from quantum_ovs.testing.mariadb import MariaDBServer
from quantum_ovs.testing.procs import alive


def test_stop_leaves_no_process_and_no_directory():
    server = MariaDBServer().start()
    try:
        pid, directory = server.pid, server.dir
        conn = server.connect(server.default_db)  # a client still connected
        assert alive(pid)
    finally:
        server.stop()
    conn.close()
    assert not alive(pid)
    assert not os.path.exists(directory)


def _tables(server, name):
    conn = server.connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            out = {}
            for (table,) in cur.fetchall():
                cur.execute(f"SHOW CREATE TABLE `{table}`")
                create = cur.fetchone()[1]
                # and how many rows the migrations wrote (the default
                # security group rules' templates: 4)
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                out[table] = (create, cur.fetchone()[0])
            cur.execute("SELECT version_num FROM alembic_version")
            out["version"] = cur.fetchall()
            return out
    finally:
        conn.close()


def test_copied_schema_is_the_migrated_one(mariadb_server, mariadb_schema):
    migrated, copied = ("t" + uuid.uuid4().hex[:12] for _ in range(2))
    engine = sa.create_engine(mariadb_server.create_database(migrated))
    try:
        migration.upgrade(engine)
        mariadb_server.create_database(copied)
        mariadb_server.copy_schema(mariadb_schema, copied)
        want, got = _tables(mariadb_server, migrated), _tables(mariadb_server, copied)
        assert len(want) > 20 and got == want
        assert want["default_security_group_rules"][1] == 4
    finally:
        engine.dispose()
        mariadb_server.drop_database(migrated)
        mariadb_server.drop_database(copied)
