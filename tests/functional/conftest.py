"""API tests through webtest against a real database.

Every test that takes ``api`` (or ``db_url``) runs on SQLite and on
PostgreSQL, and the tests of MYSQL_MODULES on MariaDB too (servers the
tests start themselves, see tests/fixtures/postgres.py and
tests/fixtures/mariadb.py).

Which tests run on MariaDB: a fresh database with its schema costs about
2.5 s there (DDL is slow in InnoDB) against a fraction of a second on the
others, and the whole ``api`` suite on a third backend would add a quarter
of an hour to ``make test``.  The rule: the modules whose tests exercise
what differs between databases -- writes, unique allocations, locking,
quotas, errors, migrations, string comparison -- run on all three (subnets,
security groups, routers and segment concurrency only with
QOVS_TEST_MYSQL=all: the time budget); the
modules that test the API's own logic above the database (validation,
policy, tenancy, the agent API) run on SQLite and PostgreSQL.
QOVS_TEST_MYSQL=all runs every module on MariaDB too.
"""

import os
import shutil
import uuid

import pytest
import sqlalchemy as sa
import webtest

from quantum_ovs import config
from quantum_ovs.db import migration
from quantum_ovs.service import build
from tests.fixtures.mariadb import mariadb_server  # noqa: F401 - a fixture
from tests.fixtures import openapi_check
from tests.fixtures.postgres import postgres_server  # noqa: F401 - a fixture

BACKENDS = ["sqlite", "postgresql", "mysql"]
SERVER_FIXTURES = {"postgresql": "postgres_server", "mysql": "mariadb_server"}
# The modules (tests/functional/test_<name>.py) that run on MariaDB too.
MYSQL_MODULES = {"networks", "ports", "quotas", "concurrency", "migrations", "db_errors",
                 "backend_semantics", "queries", "mariadb_launcher", "rbac_migration",
                 "lists_review_s25", "mysql_review_s29"}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("QOVS_TEST_MYSQL") == "all":
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_mysql = callspec is not None and "mysql" in (
            callspec.params.get("db_url"), callspec.params.get("world"))
        module = item.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        (drop if on_mysql and module not in MYSQL_MODULES else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
# The shared agent token the API under test accepts for every host (the
# confinement tests clear it and use per-host credentials).
SHARED_AGENT_TOKEN = "functional-tests-shared-agent-token"


class Client:
    """webtest with per-call project/roles; returns parsed JSON."""

    def __init__(self, app, plugin, db):
        self.app = webtest.TestApp(app)
        self.plugin = plugin
        self.db = db

    def _headers(self, project, admin, headers):
        h = {"X-Project-Id": project, "X-Auth-Token": "notused",
             "X-Agent-Token": SHARED_AGENT_TOKEN}
        if admin:
            h["X-Roles"] = "admin,member"
        else:
            h["X-Roles"] = "member"
        h.update(headers or {})
        return h

    def request(self, method, path, body=None, status=None, project="p1", admin=False,
                headers=None, raw=None):
        h = self._headers(project, admin, headers)
        kwargs = dict(headers=h, status="*", expect_errors=True)
        if raw is not None:
            h.setdefault("Content-Type", "application/json")
            resp = self.app.request(path, method=method, body=raw, **kwargs)
        elif body is not None:
            resp = getattr(self.app, method.lower() + "_json")(path, body, **kwargs)
        else:
            resp = getattr(self.app, method.lower())(path, **kwargs)
        if status is not None:
            assert resp.status_int == status, (resp.status, resp.text[:2000])
        if resp.status_int >= 500 and status != resp.status_int:
            raise AssertionError(f"server error {resp.status}: {resp.text[:2000]}")
        resp.data = resp.json if resp.body and resp.content_type == "application/json" \
            else None
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # shortcuts ------------------------------------------------------
    def network(self, project="p1", admin=False, **attrs):
        attrs.setdefault("name", "net-" + uuid.uuid4().hex[:6])
        return self.post("/v2.0/networks", {"network": attrs}, project=project,
                         admin=admin, status=201).data["network"]

    def subnet(self, network_id, cidr="10.0.0.0/24", project="p1", admin=False, **attrs):
        attrs.update(network_id=network_id, cidr=cidr)
        attrs.setdefault("ip_version", 6 if ":" in cidr else 4)
        return self.post("/v2.0/subnets", {"subnet": attrs}, project=project,
                         admin=admin, status=201).data["subnet"]

    def port(self, network_id, project="p1", admin=False, **attrs):
        attrs["network_id"] = network_id
        return self.post("/v2.0/ports", {"port": attrs}, project=project, admin=admin,
                         status=201).data["port"]

    def count(self, collection):
        return len(self.get(f"/v2.0/{collection}", admin=True, status=200).data[collection])


def make_conf(db_url, **overrides):
    conf = config.make_conf([])
    conf.set_override("connection", db_url, group="database")
    conf.set_override("token", SHARED_AGENT_TOKEN, group="agent_api")
    for k, v in overrides.items():
        conf.set_override(k, v)
    if overrides.get("auth_strategy") == "keystone":
        # where 401 answers send clients (required): no Keystone is needed
        # to refuse a request that has no token
        from keystonemiddleware import auth_token
        for group, opts in auth_token.list_opts():
            conf.register_opts(opts, group=group)
        conf.set_override("www_authenticate_uri", "http://127.0.0.1:1/v3",
                          group="keystone_authtoken")
    return conf


@pytest.fixture(autouse=True, scope="session")
def _openapi_checked():
    """Every exchange checked against the API's description
    (tests/fixtures/openapi_check.py)."""
    with openapi_check.installed():
        yield


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A database: an SQLite file, or a database of its own on the
    session's PostgreSQL or MariaDB server (dropped afterwards); empty
    unless the test uses make_api."""
    # (a test that builds apps with make_api gets the schema migrated once
    # per session instead: a copy of sqlite_schema, or a database made
    # from postgres_schema; mariadb_schema's tables are copied by make_api)
    schema = "make_api" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "qovs.sqlite"
        if schema:
            shutil.copyfile(request.getfixturevalue("sqlite_schema"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue(SERVER_FIXTURES[request.param])
    name = "t" + uuid.uuid4().hex[:12]
    if request.param == "postgresql" and schema:
        url = server.create_database(name, template=request.getfixturevalue("postgres_schema"))
    else:
        url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


def _migrate(url):
    engine = sa.create_engine(url)
    try:
        migration.upgrade(engine)
    finally:
        engine.dispose()


def _schema_database(request, server_fixture):
    """The name of a database on the session's server, migrated once."""
    name = "qovs_schema_" + uuid.uuid4().hex[:8]
    _migrate(request.getfixturevalue(server_fixture).create_database(name))
    return name


@pytest.fixture(scope="session")
def mariadb_schema(request):
    """A database on the session's MariaDB migrated once: the ``api``
    tests' databases get a copy of its tables (copy_schema) instead of a
    migration run each -- 1 s instead of 2.5 s of DDL per test; the
    migration itself is tested by test_migrations on an empty database."""
    return _schema_database(request, "mariadb_server")


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory):
    """An SQLite file migrated once: the ``api`` tests' databases are
    copies of it (a file copy instead of 0.3 s of migration per test)."""
    path = tmp_path_factory.mktemp("schema") / "qovs.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_schema(request):
    """A database on the session's PostgreSQL migrated once, the template
    of the ``api`` tests' databases (CREATE DATABASE ... TEMPLATE)."""
    return _schema_database(request, "postgres_server")


@pytest.fixture
def make_api(request, db_url):
    """Apps on ``db_url``, which starts with the schema migrated once per
    session (the server's start-up migration then finds it up to date);
    the migrations themselves are tested by test_migrations on empty
    databases."""
    made = []
    if request.node.callspec.params.get("db_url") == "mysql":
        server = request.getfixturevalue("mariadb_server")
        server.copy_schema(request.getfixturevalue("mariadb_schema"),
                           sa.engine.make_url(db_url).database)

    def factory(**overrides):
        conf = make_conf(db_url, **overrides)
        db, plugin, app = build(conf)
        made.append(db)
        return Client(app, plugin, db)
    yield factory
    for db in made:
        db.dispose()


@pytest.fixture
def api(make_api):
    return make_api()
