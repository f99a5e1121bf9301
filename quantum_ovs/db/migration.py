"""Schema migrations with alembic, driven from code (no alembic.ini)."""

import os

from alembic import command
from alembic.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(url):
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") \
        else str(url)
    cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return cfg


# MySQL/MariaDB: every table in utf8mb4 with the binary collation, so
# that strings compare as on PostgreSQL and SQLite -- case and accents
# count: tags "Red" and "red" are two tags, ?name=Net does not find "net"
# (a server's default collation, utf8mb4_general_ci on Debian, would
# make them equal: a duplicate key, or a filter matching too much).
MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATION = "utf8mb4_bin"


def _is_mysql(conn):
    return conn.dialect.name in ("mysql", "mariadb")


def _mysql_collation_before(conn):
    """The database's default: tables created from now on get it."""
    conn.exec_driver_sql(
        f"ALTER DATABASE CHARACTER SET {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}")


def _mysql_collation_after(conn):
    """Tables made before (by an older release, or with the server's
    default) converted; foreign keys between them are checked again only
    when they all agree."""
    rows = conn.exec_driver_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE' AND table_collation <> %s",
        (MYSQL_COLLATION,)).scalars().all()
    if not rows:
        return
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        for name in rows:
            conn.exec_driver_sql(f"ALTER TABLE `{name}` CONVERT TO CHARACTER SET "
                                 f"{MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}")
    finally:
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")


def upgrade(engine, revision="head"):
    cfg = alembic_config(engine.url)
    with engine.begin() as conn:
        if _is_mysql(conn):
            _mysql_collation_before(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if _is_mysql(conn):
            _mysql_collation_after(conn)


def downgrade(engine, revision):
    cfg = alembic_config(engine.url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(engine):
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
