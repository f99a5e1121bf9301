"""API tests through webtest against a real database.

Every test that takes ``api`` runs on SQLite and on PostgreSQL (a server
the tests start themselves, see tests/fixtures/postgres.py).
"""

import uuid

import pytest
import webtest

from quantum_ovs import config
from quantum_ovs.service import build
from tests.fixtures import openapi_check
from tests.fixtures.postgres import postgres_server  # noqa: F401 - a fixture

BACKENDS = ["sqlite", "postgresql"]
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
    return conf


@pytest.fixture(autouse=True, scope="session")
def _openapi_checked():
    """Every exchange checked against the API's description
    (tests/fixtures/openapi_check.py)."""
    with openapi_check.installed():
        yield


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """An empty database: an SQLite file, or a database of its own on the
    session's PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/qovs.sqlite"
        return
    server = request.getfixturevalue("postgres_server")
    name = "t" + uuid.uuid4().hex[:12]
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def make_api(db_url):
    made = []

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
