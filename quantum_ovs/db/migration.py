"""Schema migrations with alembic, driven from code (no alembic.ini).

Each run (upgrade, downgrade) has a connection of its own, prepared
outside its transaction:

- serialized across processes: every server process runs the upgrade at
  start ([database] auto_migrate), and several may share one database.
  PostgreSQL: a session advisory lock on MIGRATE_LOCK_KEY; MySQL/MariaDB:
  GET_LOCK(MIGRATE_LOCK_NAME); SQLite (one host's processes, e.g. the
  server and the agent API side by side): an flock on a file next to the
  database, ``<database>.migrate.lock`` (a deferred transaction that reads
  the revision and then writes would fail with "database is locked" when
  another process wrote first).  The transaction that reads the current
  revision begins once the lock is held, so a process that waited for
  another's upgrade finds nothing left to do.
- without the request limits of the service's engine: PostgreSQL's
  statement_timeout (SET to 0 for the session) and the client's wait
  deadline (session.unhurried); MySQL/MariaDB's innodb_lock_wait_timeout
  (back to the server's global value) and the driver's read timeout.
  A long migration statement is not cut.
- SQLite: with foreign keys off (``PRAGMA foreign_keys``, which SQLite
  ignores inside a transaction; the service's engine turns them on), as
  alembic's batch mode documentation advises: a batch operation rebuilds
  the table (copy, DROP TABLE, rename) and the DROP would otherwise cascade
  to, or be refused by, the rows that refer to it.  They are turned back
  on afterwards, and ``PRAGMA foreign_key_check`` is logged if it finds
  anything.
"""

import contextlib
import logging
import os
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

from alembic import command
from alembic.config import Config

from quantum_ovs.db import session as db_session

LOG = logging.getLogger(__name__)

# PostgreSQL advisory lock key (a fixed bigint: "qovsmig" in ASCII) and
# MySQL/MariaDB named lock of the migrations.
MIGRATE_LOCK_KEY = 0x716f76736d6967
MIGRATE_LOCK_NAME = "quantum_ovs_migrate"
# MySQL/MariaDB: GET_LOCK waits this long per call (under the driver's
# read timeout), in a loop; a process waits for another's migration for
# at most MIGRATE_LOCK_WAIT seconds (PostgreSQL: as long as it runs; the
# lock goes with its holder's session).
MYSQL_LOCK_STEP = 1
MIGRATE_LOCK_WAIT = 3600
SQLITE_LOCK_POLL = 0.1

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(url):
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") \
        else str(url)
    cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return cfg


# MySQL/MariaDB: every table in utf8mb4 with a binary collation, so that
# strings compare as on PostgreSQL and SQLite -- case and accents count:
# tags "Red" and "red" are two tags, ?name=Net does not find "net" (a
# server's default collation, utf8mb4_general_ci on Debian, would make
# them equal: a duplicate key, or a filter matching too much) -- and
# trailing blanks count too: the NO PAD binary collation where the server
# has one (MariaDB 10.2+, MySQL 8.0), since utf8mb4_bin is PAD SPACE there
# ('red' = 'red ': two tags a duplicate key retried until 409, ?name=web
# finding "web ", /networks/<id>%20 the network).  utf8mb4_bin otherwise.
MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")
MYSQL_COLLATION = MYSQL_COLLATIONS[-1]


def mysql_collation(conn):
    """The collation this server's tables get (MYSQL_COLLATIONS' first it
    has)."""
    have = set(conn.exec_driver_sql(
        "SELECT collation_name FROM information_schema.collations WHERE collation_name IN "
        f"({', '.join(['%s'] * len(MYSQL_COLLATIONS))})", MYSQL_COLLATIONS).scalars())
    return next(c for c in MYSQL_COLLATIONS if c in have or c == MYSQL_COLLATION)


def _is_mysql(conn):
    return conn.dialect.name in ("mysql", "mariadb")


def _mysql_collation_before(conn):
    """The database's default: tables created from now on get it."""
    conn.exec_driver_sql(
        f"ALTER DATABASE CHARACTER SET {MYSQL_CHARSET} COLLATE {mysql_collation(conn)}")


def _mysql_collation_after(conn):
    """Tables made before (by an older release, or with the server's
    default) converted; foreign keys between them are checked again only
    when they all agree."""
    collation = mysql_collation(conn)
    rows = conn.exec_driver_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE' AND table_collation <> %s",
        (collation,)).scalars().all()
    if not rows:
        return
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        for name in rows:
            conn.exec_driver_sql(f"ALTER TABLE `{name}` CONVERT TO CHARACTER SET "
                                 f"{MYSQL_CHARSET} COLLATE {collation}")
    finally:
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")


def _sqlite_foreign_keys(conn, on):
    """Set PRAGMA foreign_keys outside any transaction (the driver's
    connection: SQLAlchemy's would begin one); returns what it was."""
    raw = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        was = bool(cur.execute("PRAGMA foreign_keys").fetchone()[0])
        cur.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cur.close()
    return was


def _pg_prepare(conn):
    conn.exec_driver_sql("SET statement_timeout = 0")
    got = conn.exec_driver_sql("SELECT pg_try_advisory_lock(%(k)s)",
                               {"k": MIGRATE_LOCK_KEY}).scalar()
    if not got:
        LOG.info("waiting for another process's schema migration")
        conn.exec_driver_sql("SELECT pg_advisory_lock(%(k)s)", {"k": MIGRATE_LOCK_KEY})
    conn.commit()

    def restore():
        conn.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": MIGRATE_LOCK_KEY})
        conn.exec_driver_sql("RESET statement_timeout")
        conn.commit()
    return restore


def _mysql_prepare(conn):
    raw = conn.connection.dbapi_connection
    read_timeout = getattr(raw, "_read_timeout", None)
    lock_wait = conn.exec_driver_sql("SELECT @@SESSION.innodb_lock_wait_timeout").scalar()
    conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = @@GLOBAL.innodb_lock_wait_timeout")
    deadline = time.monotonic() + MIGRATE_LOCK_WAIT
    told = False
    while not conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)",
                                   (MIGRATE_LOCK_NAME, MYSQL_LOCK_STEP)).scalar():
        if time.monotonic() > deadline:
            conn.rollback()
            raise RuntimeError(f"another process's schema migration held the lock "
                               f"{MIGRATE_LOCK_NAME} for more than {MIGRATE_LOCK_WAIT} s")
        if not told:
            LOG.info("waiting for another process's schema migration")
            told = True
    conn.commit()
    if read_timeout is not None:
        raw._read_timeout = None  # PyMySQL's: the migration's statements may take long

    def restore():
        if read_timeout is not None:
            raw._read_timeout = read_timeout
        conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (MIGRATE_LOCK_NAME,))
        conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = %s", (int(lock_wait),))
        conn.commit()
    return restore


def _sqlite_file_lock(conn):
    """An exclusive flock on ``<database>.migrate.lock`` (a file of its own:
    SQLite's own locks are fcntl locks on the database, which flock may
    share on some file systems); returns the open file, or None for a
    database in memory."""
    path = conn.engine.url.database
    if not path or path == ":memory:" or path.startswith("file:") or fcntl is None:
        return None
    lock = open(os.path.abspath(path) + ".migrate.lock", "a+")  # noqa: SIM115 - held until restore
    deadline = time.monotonic() + MIGRATE_LOCK_WAIT
    told = False
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise RuntimeError(f"another process's schema migration held {lock.name} for "
                                   f"more than {MIGRATE_LOCK_WAIT} s") from None
            if not told:
                LOG.info("waiting for another process's schema migration")
                told = True
            time.sleep(SQLITE_LOCK_POLL)


def _sqlite_prepare(conn):
    lock = _sqlite_file_lock(conn)
    try:
        was = _sqlite_foreign_keys(conn, False)
    except BaseException:
        if lock is not None:
            lock.close()
        raise

    def restore():
        try:
            if was:
                _sqlite_foreign_keys(conn, True)
        finally:
            if lock is not None:
                lock.close()  # (releases the flock)
    return restore


@contextlib.contextmanager
def _migrating(engine):
    """A connection prepared for a migration (see the module's doc), no
    transaction begun."""
    with engine.connect() as conn, db_session.unhurried():
        name = conn.dialect.name
        prepare = _pg_prepare if name == "postgresql" else \
            _mysql_prepare if _is_mysql(conn) else \
            _sqlite_prepare if name == "sqlite" else (lambda conn: lambda: None)
        try:
            restore = prepare(conn)
        except BaseException:
            conn.invalidate()  # (not back to the pool half prepared)
            raise
        try:
            yield conn
        finally:
            try:
                if conn.in_transaction():
                    conn.rollback()
                restore()
            except Exception:  # noqa: BLE001 - closing the connection ends the session
                LOG.warning("could not restore the migration connection's settings",
                            exc_info=True)
                conn.invalidate()


def _check_sqlite(conn):
    if conn.dialect.name != "sqlite":
        return
    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    for row in bad[:20]:
        LOG.warning("after the migration, a row of %s refers to a missing row of %s "
                    "(rowid %s)", row[0], row[2], row[1])


def upgrade(engine, revision="head"):
    cfg = alembic_config(engine.url)
    with _migrating(engine) as conn, conn.begin():
        if _is_mysql(conn):
            _mysql_collation_before(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if _is_mysql(conn):
            _mysql_collation_after(conn)
        _check_sqlite(conn)


def downgrade(engine, revision):
    cfg = alembic_config(engine.url)
    with _migrating(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        _check_sqlite(conn)


def stamp(engine, revision):
    """Record ``revision`` as the schema's without running anything (a
    database restored, or one whose schema was made by hand), whatever
    revision was recorded (one this code does not know included)."""
    cfg = alembic_config(engine.url)
    with _migrating(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.stamp(cfg, revision, purge=True)


def current(engine):
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _scripts():
    from alembic.script import ScriptDirectory
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    return ScriptDirectory.from_config(cfg)


def heads():
    """The head revision(s) of this code's migrations (one: no branches)."""
    return list(_scripts().get_heads())


def history():
    """This code's migrations, oldest first: (revision, message)."""
    revs = list(_scripts().walk_revisions())  # (newest first)
    return [(r.revision, (r.doc or "").strip().splitlines()[0] if r.doc else "")
            for r in reversed(revs)]


def pending(engine):
    """(current revision, the revisions an upgrade to head would run, oldest
    first); ValueError when the database is at a revision this code does
    not know (a newer release's schema)."""
    known = [r for r, _ in history()]
    at = current(engine)
    if at is None:
        return None, known
    if at not in known:
        raise ValueError(f"the database is at revision {at}, which this code does not "
                         f"know (a newer release's schema?)")
    return at, known[known.index(at) + 1:]
