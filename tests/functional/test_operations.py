"""What operators of OpenStack services expect around the API: request ids
in the logs (oslo.log + oslo.context), oslo.middleware's health check,
proxy headers, CORS and request body limit (quantum_ovs/api/middleware.py)."""

import http.client
import io
import json
import re
import uuid

import pytest
import webtest

from quantum_ovs.api import middleware
from quantum_ovs.db.session import Database
from quantum_ovs.service import build
from quantum_ovs.testing.server import ServerProcess
from tests.functional.conftest import Client, make_conf

REQ_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def make_ops_api(db_url):
    made = []

    def factory(**grouped):
        """``grouped``: {"group": {"option": value}} set before the app is made."""
        conf = make_conf(db_url)
        middleware.register_opts(conf)
        for group, opts in grouped.items():
            for k, v in opts.items():
                conf.set_override(k, v, group=group)
        db, plugin, app = build(conf)
        made.append(db)
        return Client(app, plugin, db)
    yield factory
    for db in made:
        db.dispose()


# ------------------------------------------------------------ request ids
def test_request_log_lines_carry_the_request_id_user_and_project(tmp_path):
    """A real server (oslo.log from its configuration file): the id it
    answers in X-OpenStack-Request-Id is in the request's log lines, with
    the caller's user and project."""
    srv = ServerProcess(f"sqlite:///{tmp_path}/qovs.sqlite",
                        log_path=str(tmp_path / "server.log"))
    who = {"X-User-Id": "user-0815", "X-Project-Id": "proj-4711"}
    with srv:
        status, headers, body = _call(srv.port, "POST", "/v2.0/networks",
                                      {"network": {"name": "logged"}}, who)
        assert status == 201, body
        rid = headers["X-OpenStack-Request-Id"]
        assert REQ_ID.match(rid), rid
        status, other, _ = _call(srv.port, "GET", "/v2.0/networks/nope", None, who)
        assert status == 404
        assert other["X-OpenStack-Request-Id"] != rid
    lines = srv.log().splitlines()
    mine = [ln for ln in lines if f"{rid} user-0815 proj-4711" in ln]
    assert any("POST /v2.0/networks 201" in ln for ln in mine), "\n".join(lines[-20:])
    # oslo.log's default context format: "[<global id> req-... <user> <project> ...]"
    assert any(re.search(rf"\[\S+ {rid} user-0815 proj-4711 ", ln) for ln in mine)
    # one request's id is in its own lines only
    assert not any(rid in ln for ln in lines if "GET /v2.0/networks/nope" in ln)


def _call(port, method, path, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json", **headers})
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def test_the_callers_global_request_id_is_kept_and_ours_returned(make_ops_api):
    api = make_ops_api()
    global_id = f"req-{uuid.uuid4()}"
    r = api.get("/v2.0/networks", headers={"X-OpenStack-Request-Id": global_id}, status=200)
    assert REQ_ID.match(r.headers["X-OpenStack-Request-Id"])
    assert r.headers["X-OpenStack-Request-Id"] != global_id


# ------------------------------------------------------------ healthcheck
def test_healthcheck_simple_without_credentials_detailed_for_admins(make_ops_api):
    api = make_ops_api()
    bare = webtest.TestApp(api.app.app)
    r = bare.get("/healthcheck", status=200)  # no backend configured: 200, nothing said
    assert r.content_type == "text/plain"
    assert "database" not in r.text
    # the reasons are the backends', never the detailed ones (nor the database)
    body = bare.get("/healthcheck", headers={"Accept": "application/json"}, status=200).json
    assert body == {"detailed": False, "reasons": []}
    assert bare.head("/healthcheck", status=204).body == b""
    # with credentials: through authentication; detailed for an admin only
    denied = api.get("/healthcheck", status=403)
    assert denied.data["NeutronError"]["type"] == "HTTPForbidden"
    r = api.get("/healthcheck", admin=True, headers={"Accept": "application/json"},
                status=200)
    body = json.loads(r.text)
    assert body["detailed"] is True
    (db,) = [x for x in body["reasons"] if x["class"] == "HealthcheckResult"
             and x["reason"].startswith("database")]
    assert db["reason"] == "database OK"
    assert "SELECT 1" in db["details"]


def test_healthcheck_disabled_by_file_takes_a_server_out(make_ops_api, tmp_path):
    flag = tmp_path / "drain"
    api = make_ops_api(healthcheck={"backends": ["disable_by_file"],
                                    "disable_by_file_path": str(flag)})
    bare = webtest.TestApp(api.app.app)
    assert bare.get("/healthcheck", status=200).text.strip() == "OK"
    flag.write_text("")
    assert bare.get("/healthcheck", status=503).text.strip() == "DISABLED BY FILE"


def test_database_check_reports_an_unreachable_database(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/missing/dir/qovs.sqlite")
    try:
        result = middleware.DatabaseCheck(None, {}, db).healthcheck(9696)
    finally:
        db.dispose()
    assert not result.available
    assert result.reason == "database unavailable"


# ------------------------------------------------------------ proxy headers
def test_links_behind_a_tls_terminating_proxy(make_ops_api):
    api = make_ops_api(oslo_middleware={"enable_proxy_headers_parsing": True})
    for i in range(2):
        api.network(name=f"paged-{i}")
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "network.example.com"}
    versions = api.get("/", headers=proxied, status=200).data["versions"]
    assert versions[0]["links"][0]["href"] == "https://network.example.com/v2.0/"
    index = api.get("/v2.0/", headers=proxied, status=200).data["resources"]
    assert all(r["links"][0]["href"].startswith("https://network.example.com/v2.0/")
               for r in index)
    page = api.get("/v2.0/networks?limit=1", headers=proxied, status=200).data
    hrefs = [link["href"] for link in page["networks_links"]]
    assert hrefs and all(h.startswith("https://network.example.com/v2.0/networks?")
                         for h in hrefs)
    # RFC 7239 Forwarded works too
    versions = api.get("/", headers={"Forwarded": "proto=https;host=net.example.org:8443"},
                       status=200).data["versions"]
    assert versions[0]["links"][0]["href"] == "https://net.example.org:8443/v2.0/"


def test_proxy_headers_are_ignored_unless_enabled(make_ops_api):
    api = make_ops_api()
    r = api.get("/", headers={"X-Forwarded-Proto": "https",
                              "X-Forwarded-Host": "evil.example.com"}, status=200)
    assert r.data["versions"][0]["links"][0]["href"] == "http://localhost/v2.0/"


# ------------------------------------------------------------ CORS
def test_cors_for_the_configured_origin_only(make_ops_api):
    origin = "https://dashboard.example.com"
    api = make_ops_api(cors={"allowed_origin": [origin]})
    pre = api.request("OPTIONS", "/v2.0/networks", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Auth-Token,Content-Type"})
    assert pre.status_int == 200
    assert pre.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "x-auth-token" in pre.headers["Access-Control-Allow-Headers"].lower()
    r = api.get("/v2.0/networks", headers={"Origin": origin}, status=200)
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "X-OpenStack-Request-ID" in r.headers["Access-Control-Expose-Headers"]
    other = api.get("/v2.0/networks", headers={"Origin": "https://evil.example.com"},
                    status=200)
    assert "Access-Control-Allow-Origin" not in other.headers


# ------------------------------------------------------------ body size
def test_request_body_over_max_request_body_size_is_413_neutron_error(make_ops_api):
    api = make_ops_api(oslo_middleware={"max_request_body_size": 1024})
    big = {"network": {"name": "n", "description": "x" * 2000}}
    r = api.post("/v2.0/networks", big, status=413)
    err = r.data["NeutronError"]
    assert err["type"] == "HTTPRequestEntityTooLarge"
    assert "max_request_body_size" in err["message"]
    # chunked (no Content-Length): cut while read, a NeutronError too
    raw = json.dumps(big).encode()
    status, _headers, body = _chunked(api.app.app, "/v2.0/networks", raw)
    assert status.startswith("413"), (status, body)
    assert json.loads(body)["NeutronError"]["type"] == "HTTPRequestEntityTooLarge"
    assert api.count("networks") == 0
    api.post("/v2.0/networks", {"network": {"name": "small"}}, status=201)


def _chunked(app, path, raw):
    """The app called with a body of no Content-Length (webtest sets one)."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "localhost",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True,
               "wsgi.errors": io.StringIO(), "CONTENT_TYPE": "application/json",
               "HTTP_TRANSFER_ENCODING": "chunked", "HTTP_X_PROJECT_ID": "p1",
               "HTTP_X_ROLES": "member"}
    got = []
    body = b"".join(app(environ, lambda s, h, e=None: got.append((s, h))))
    return got[0][0], dict(got[0][1]), body
