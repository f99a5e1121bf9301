"""Database errors classified by oslo.db's exception filters, the same on
SQLite, PostgreSQL and MariaDB (quantum_ovs/db/session.py): deadlocks and
lost races on unique keys are retried; foreign key and NOT NULL
violations and values a column cannot hold are never retried and become
4xx QuantumErrors (never a 500); [database] options with oslo.db's
meanings."""

import threading
import uuid

import pytest
import sqlalchemy as sa
from oslo_db import exception as db_exc

from quantum_ovs import exceptions
from quantum_ovs.api import wsgi
from quantum_ovs.db import migration, models
from quantum_ovs.db.session import Database, transaction_lock
from quantum_ovs.service import make_database
from tests.functional.conftest import make_conf


@pytest.fixture
def db(db_url):
    database = Database(db_url, db_max_retries=3)
    migration.upgrade(database.engine)
    yield database
    database.dispose()


def _network(session, net_id=None):
    net = models.Network(id=net_id or str(uuid.uuid4()), project_id="p1", name="n")
    session.add(net)
    session.flush()
    return net


class Counting:
    """fn(session) for Database.write that counts its attempts."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def __call__(self, session):
        self.calls += 1
        return self.fn(session)


def test_duplicate_key_is_retried_then_409(db):
    net_id = db.write(lambda s: _network(s).id)
    fn = Counting(lambda s: _network(s, net_id))
    with pytest.raises(exceptions.Conflict) as info:
        db.write(fn)
    assert fn.calls == 1 + 3  # a lost race: tried again, db_max_retries times
    assert isinstance(info.value.__cause__, db_exc.DBDuplicateEntry)
    assert wsgi.error_response(info.value).status_int == 409


def test_duplicate_key_lost_race_succeeds_on_retry(db):
    net_id = db.write(lambda s: _network(s).id)

    def fn(session):
        # the first attempt collides; the next one reads what is taken
        if session.get(models.Network, net_id) is not None and fn.first:
            fn.first = False
            return _network(session, net_id)
        return _network(session).id
    fn.first = True
    assert db.write(fn) != net_id


def test_foreign_key_violation_is_not_retried_and_is_409(db):
    fn = Counting(lambda s: s.add(models.Subnet(
        id=str(uuid.uuid4()), project_id="p1", network_id=str(uuid.uuid4()),
        cidr="10.0.0.0/24", ip_version=4)) or s.flush())
    with pytest.raises(exceptions.Conflict) as info:
        db.write(fn)
    assert fn.calls == 1
    assert isinstance(info.value.__cause__, db_exc.DBReferenceError)
    resp = wsgi.error_response(info.value)
    assert resp.status_int == 409 and resp.json["NeutronError"]["type"] == "Conflict"


def test_delete_of_a_referenced_row_is_409(db):
    net_id = db.write(lambda s: _network(s).id)
    db.write(lambda s: s.add(models.Subnet(
        id=str(uuid.uuid4()), project_id="p1", network_id=net_id,
        cidr="10.0.0.0/24", ip_version=4)))
    fn = Counting(lambda s: s.execute(sa.delete(models.Network).where(
        models.Network.id == net_id)))
    with pytest.raises(exceptions.Conflict):
        db.write(fn)
    assert fn.calls == 1


def test_not_null_violation_is_not_retried_and_is_400(db):
    fn = Counting(lambda s: s.execute(sa.insert(models.Network.__table__).values(
        id=str(uuid.uuid4()), project_id=None, name="n", description="",
        revision_number=0)))
    with pytest.raises(exceptions.BadRequest) as info:
        db.write(fn)
    assert fn.calls == 1
    resp = wsgi.error_response(info.value)
    assert resp.status_int == 400 and "NeutronError" in resp.json


def test_value_too_long_is_400_where_the_database_checks_it(db):
    if db.is_sqlite:
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    fn = Counting(lambda s: _network(s, "x" * 37))
    with pytest.raises(exceptions.BadRequest):
        db.write(fn)
    assert fn.calls == 1


def test_not_null_violation_in_a_read_is_400_too(db):
    with pytest.raises(exceptions.BadRequest):
        with db.reader() as s:
            s.execute(sa.insert(models.Network.__table__).values(
                id=str(uuid.uuid4()), project_id=None))


def test_deadlock_is_retried(db):
    if db.is_sqlite:
        pytest.skip("SQLite serializes writers: no deadlock")
    a, b = (db.write(lambda s: _network(s).id) for _ in range(2))
    barrier = threading.Barrier(2, timeout=20)
    calls = []

    def crosswise(first, second):
        def fn(session):
            calls.append(first)
            session.execute(sa.update(models.Network).where(
                models.Network.id == first).values(name="x"))
            if calls.count(first) == 1:
                barrier.wait()  # both hold their first row
            session.execute(sa.update(models.Network).where(
                models.Network.id == second).values(name="y"))
        return fn

    errors = []

    def run(fn):
        try:
            db.write(fn)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(crosswise(a, b),)),
               threading.Thread(target=run, args=(crosswise(b, a),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(calls) == 3  # the deadlock victim tried once more


def test_deadlock_past_the_retries_is_503_not_500():
    err = db_exc.DBDeadlock(sa.exc.OperationalError("UPDATE", {}, Exception("deadlock")))
    assert wsgi.error_response(err).status_int == 503
    err = db_exc.DBConnectionError(sa.exc.OperationalError("SELECT", {}, Exception("gone")))
    assert wsgi.error_response(err).status_int == 503


def test_oslo_db_option_meanings(db_url):
    conf = make_conf(db_url)
    assert conf.database.max_retries == 10  # connection retries at start
    assert conf.database.retry_interval == 10
    assert conf.database.db_max_retries == 20  # transaction retries
    conf.set_override("db_max_retries", 2, group="database")
    conf.set_override("connection_recycle_time", 77, group="database")
    database = make_database(conf)
    try:
        assert database.max_retries == 2
        if not database.is_sqlite:
            assert database.engine.pool._recycle == 77
        fn = Counting(lambda s: (_ for _ in ()).throw(exceptions.RetryRequest()))
        with pytest.raises(exceptions.RetryRequest):
            database.write(fn)
        assert fn.calls == 3
    finally:
        database.dispose()


def test_max_retries_is_connection_retries_at_start(tmp_path, caplog):
    # a MariaDB socket nobody listens on: unreachable, DBConnectionError
    url = (f"mysql+pymysql://root@localhost/x?unix_socket={tmp_path}/none.sock"
           "&charset=utf8mb4")
    database = Database(url)
    try:
        with caplog.at_level("WARNING", logger="quantum_ovs.db.session"):
            with pytest.raises(db_exc.DBConnectionError):
                database.wait_until_reachable(max_retries=2, retry_interval=0)
    finally:
        database.dispose()
    retries = [r for r in caplog.records if "database not reachable" in r.getMessage()]
    assert len(retries) == 2


def test_transaction_lock_excludes_until_the_transaction_ends(db):
    """The quota lock (transaction_lock): a second transaction waits for
    the first to end though no row exists to lock, and a MySQL named lock
    does not outlive its transaction on the pooled connection."""
    if db.is_sqlite:
        pytest.skip("SQLite: the write transaction holds the database's lock")
    taken, release = threading.Event(), threading.Event()
    order = []

    def first(session):
        transaction_lock(session, "quota:p:network")
        taken.set()
        release.wait(20)
        order.append("first ends")

    def second(session):
        transaction_lock(session, "quota:p:network")
        order.append("second has it")

    t1 = threading.Thread(target=db.write, args=(first,))
    t1.start()
    assert taken.wait(20)
    t2 = threading.Thread(target=db.write, args=(second,))
    t2.start()
    t2.join(1.0)
    assert order == []  # waiting
    release.set()
    t1.join(20)
    t2.join(20)
    assert order == ["first ends", "second has it"]
    # the connections that held it idle in the pool; a new one takes it
    with db.engine.connect(), db.engine.connect():
        db.write(lambda s: transaction_lock(s, "quota:p:network"))


def test_a_count_after_the_lock_sees_what_committed_meanwhile(db):
    """The quota check counts after it takes its lock, in a transaction
    that has read before: the count must see what a concurrent transaction
    committed meanwhile (READ COMMITTED, PostgreSQL's default; MySQL's
    REPEATABLE READ would count from the transaction's first read, and a
    project could pass its quota)."""
    if db.is_sqlite:
        pytest.skip("SQLite: one writer at a time")
    read, committed = threading.Event(), threading.Event()
    counts = []

    def checker(session):
        session.execute(sa.select(sa.func.count()).select_from(models.Network)).scalar()
        read.set()
        assert committed.wait(20)
        transaction_lock(session, "quota:p1:network")
        counts.append(session.execute(
            sa.select(sa.func.count()).select_from(models.Network)).scalar())

    t = threading.Thread(target=db.write, args=(checker,))
    t.start()
    assert read.wait(20)
    db.write(_network)
    committed.set()
    t.join(20)
    assert counts == [1]


def test_mysql_lock_wait_timeout_is_503_not_retried(db):
    """MySQL's lock wait timeout (1205), which oslo.db files as a
    deadlock, is a lock held too long: not waited for again."""
    if not db.is_mysql:
        pytest.skip("MySQL's error 1205")
    net_id = db.write(lambda s: _network(s).id)
    held, done = threading.Event(), threading.Event()

    def holder(session):
        session.execute(sa.select(models.Network).where(
            models.Network.id == net_id).with_for_update())
        held.set()
        done.wait(30)
    t = threading.Thread(target=db.write, args=(holder,))
    t.start()
    assert held.wait(20)

    def waiter(session):
        session.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
        session.execute(sa.update(models.Network).where(
            models.Network.id == net_id).values(name="w"))
    fn = Counting(waiter)
    try:
        with pytest.raises(db_exc.DBDeadlock) as info:
            db.write(fn)
    finally:
        done.set()
        t.join(20)
    assert fn.calls == 1
    assert wsgi.error_response(info.value).status_int == 503
