"""Findings of an attacker's pass (issue 11): malformed requests answered
400 (never 500), unsafe defaults, per-port limits, small leaks through
markers and filters.  Each test failed on the code before its fix."""

import json
import uuid

import pytest

NT, SID = "provider:network_type", "provider:segmentation_id"
HOST = "binding:host_id"
JSON = {"Content-Type": "application/json"}


def _err(r, status, type_=None):
    assert r.status_int == status, (r.status, r.text[:500])
    err = r.json["NeutronError"]
    assert set(err) == {"type", "message", "detail"} and err["message"]
    if type_:
        assert err["type"] == type_, err
    return err


def _raw(api, method, path, body, headers=None, project="p1", admin=False):
    h = {"X-Project-Id": project, "X-Roles": "admin" if admin else "member"}
    h.update(JSON if headers is None else headers)
    return api.app.request(path, method=method, body=body, headers=h, expect_errors=True)


# ---------------------------------------------------------------- 500 -> 400
@pytest.mark.parametrize("path", [
    "/v2.0/networks/%ff%fe",             # path not UTF-8
    "/v2.0/networks?name=%ff",           # query value not UTF-8
    "/v2.0/networks?%c3%28=1",           # query key not UTF-8
    "/v2.0/networks?name=%ed%a0%80",     # an encoded surrogate
    "/v2.0/networks/%00",                # NUL: no column holds it
    "/v2.0/networks?name=a%00b",
    "/v2.0/ports?device_id=%00",
])
def test_bad_url_is_400(api, path):
    r = api.app.get(path, headers={"X-Project-Id": "p1"}, expect_errors=True)
    _err(r, 400)


@pytest.mark.parametrize("depth", [33, 100, 100000])
def test_deeply_nested_json_is_400(api, depth):
    for body in ("[" * depth + "]" * depth,
                 '{"network": {"name": ' + "[" * depth + "]" * depth + "}}",
                 '{"network": ' + '{"a": ' * depth + "1" + "}" * depth + "}"):
        _err(_raw(api, "POST", "/v2.0/networks", body.encode()), 400, "MalformedRequestBody")
    assert api.count("networks") == 0


def test_nesting_as_deep_as_requests_need_is_accepted(api):
    net = api.network()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    r = api.post("/v2.0/ports", {"ports": [{
        "network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"]}],
        "allowed_address_pairs": [{"ip_address": "10.9.0.0/24"}]}]}, status=201)
    assert r.data["ports"][0]["allowed_address_pairs"][0]["ip_address"] == "10.9.0.0/24"


@pytest.mark.parametrize("body", [
    '{"network": {"name": "\\ud800"}}',
    '{"network": {"name": "a\\udfffb"}}',
    '{"network": {"\\ud800": 1}}',
    '{"network": {"name": "ok", "description": "x\\udc80"}}',
])
def test_lone_surrogates_are_400(api, body):
    _err(_raw(api, "POST", "/v2.0/networks", body.encode()), 400, "MalformedRequestBody")
    assert api.count("networks") == 0


def test_lone_surrogates_in_port_and_profile_are_400(api):
    net = api.network()
    for body in ('{"port": {"network_id": "%s", "device_id": "\\ud83d"}}',
                 '{"port": {"network_id": "%s", "binding:profile": {"k": "\\udc00"}}}'):
        r = _raw(api, "POST", "/v2.0/ports", (body % net["id"]).encode(), admin=True)
        _err(r, 400, "MalformedRequestBody")
    r = _raw(api, "PUT", f"/v2.0/networks/{net['id']}", b'{"network": {"name": "\\ud800"}}')
    _err(r, 400)
    assert api.count("ports") == 0
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["name"] == \
        net["name"]
    # A real astral character (a surrogate pair in JSON) is fine.
    r = _raw(api, "POST", "/v2.0/networks", b'{"network": {"name": "\\ud83d\\ude00"}}')
    assert r.status_int == 201 and r.json["network"]["name"] == "\U0001f600"


@pytest.mark.parametrize("query", [
    f"limit={2 ** 63}", f"limit={2 ** 64}", f"mtu={2 ** 63}", f"mtu={-2 ** 63 - 1}",
    f"revision_number={2 ** 63}", f"revision_number={10 ** 19}",
])
def test_huge_integers_in_queries_are_400(api, query):
    api.network()
    _err(api.get(f"/v2.0/networks?{query}"), 400)


def test_huge_integers_in_filters_of_extensions_are_400(api):
    api.network(admin=True)
    _err(api.get(f"/v2.0/networks?{SID}={2 ** 63}", admin=True), 400)


@pytest.mark.parametrize("value", [2 ** 63, -2 ** 63 - 1, 10 ** 30])
def test_huge_integers_in_bodies_are_400(api, value):
    net = api.network()
    for path, body in [("/v2.0/networks", {"network": {"mtu": value}}),
                       ("/v2.0/networks", {"network": {"name": "n", "x": [value]}}),
                       ("/v2.0/ports", {"port": {"network_id": net["id"],
                                                 "binding:profile": {"n": value}}})]:
        r = _raw(api, "POST", path, json.dumps(body).encode(), admin=True)
        _err(r, 400)
    r = _raw(api, "PUT", "/v2.0/quotas/p1", json.dumps({"quota": {"port": value}}).encode(),
             admin=True)
    _err(r, 400)
    assert api.count("networks") == 1 and api.count("ports") == 0


@pytest.mark.parametrize("raw", [b'{"network": {"name": NaN}}',
                                 b'{"network": {"name": Infinity}}',
                                 b'{"network": {"mtu": 1e999}}'])
def test_non_finite_numbers_are_400(api, raw):
    _err(_raw(api, "POST", "/v2.0/networks", raw), 400)


@pytest.mark.parametrize("ofport", ["abc", 2 ** 63, 2 ** 31, 1.5, True, [], {"a": 1}, -2])
def test_mistyped_ofport_from_an_agent_is_400(api, ofport):
    net = api.network()
    api.post("/agent-api/v1/agents", {"host": "hv-a", "tunnel_ip": "192.0.2.1",
                                      "configurations": {"tunnel_types": ["vxlan"],
                                                         "bridge_mappings": {}}},
             status=200)
    port = api.post("/v2.0/ports", {"port": {"network_id": net["id"], HOST: "hv-a"}},
                    admin=True, status=201).data["port"]
    body = {"plugged": [{"port_id": port["id"], "ofport": ofport}],
            "installed": [port["id"]]}
    r = _raw(api, "POST", "/agent-api/v1/hosts/hv-a/ports", json.dumps(body).encode(),
             headers=dict(JSON, **_agent_headers(api)))
    _err(r, 400)
    # Nothing was applied: the port is not ACTIVE, and a good report works.
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["status"] == "DOWN"
    body["plugged"][0]["ofport"] = 7
    r = _raw(api, "POST", "/agent-api/v1/hosts/hv-a/ports", json.dumps(body).encode(),
             headers=dict(JSON, **_agent_headers(api)))
    assert r.status_int == 200, r.text
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["status"] == "ACTIVE"


def _agent_headers(api):
    """What the test client sends to the agent API (its shared token)."""
    return {k: v for k, v in api._headers("p1", False, None).items()
            if k.lower().startswith("x-agent")}


def test_unexpected_error_is_a_neutron_error_500(api, monkeypatch, caplog):
    def boom(*a, **kw):
        raise RuntimeError("a bug")
    monkeypatch.setattr(api.plugin, "list", boom)
    r = api.get("/v2.0/networks", status=500)
    err = _err(r, 500, "HTTPInternalServerError")
    assert "a bug" not in r.text and "Traceback" not in r.text and err["detail"] == ""


def test_error_escaping_the_middleware_is_a_neutron_error_500():
    import webtest

    from quantum_ovs.api.wsgi import AccessLog

    def broken(environ, start_response):  # e.g. an authentication middleware bug
        raise KeyError("secret internals")
    r = webtest.TestApp(AccessLog(broken)).get("/v2.0/networks", expect_errors=True)
    _err(r, 500, "HTTPInternalServerError")
    assert "secret" not in r.text and r.headers["X-Openstack-Request-Id"].startswith("req-")


# ---------------------------------------------------------------- unsafe defaults
@pytest.mark.parametrize("ctype", ["text/plain", "text/plain; charset=utf-8",
                                   "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/xml",
                                   "application/vnd.api+json", None])
def test_only_application_json_bodies_are_read(api, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    body = json.dumps({"network": {"name": "csrf"}}).encode()
    r = _raw(api, "POST", "/v2.0/networks", body, headers=headers)
    _err(r, 415, "HTTPUnsupportedMediaType")
    assert api.count("networks") == 0
    net = api.network()
    r = _raw(api, "PUT", f"/v2.0/networks/{net['id']}", body, headers=headers)
    _err(r, 415)
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["name"] != "csrf"


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON"])
def test_application_json_bodies_are_read(api, ctype):
    r = _raw(api, "POST", "/v2.0/networks", b'{"network": {"name": "ok"}}',
             headers={"Content-Type": ctype})
    assert r.status_int == 201, r.text


def test_default_bind_host_is_loopback():
    from quantum_ovs import config
    assert config.make_conf([]).bind_host == "127.0.0.1"


# ---------------------------------------------------------------- limits
def test_fixed_ips_per_port_are_limited(make_api):
    api = make_api()
    net = api.network()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    five = [{"subnet_id": sub["id"]}] * 5
    port = api.port(net["id"], fixed_ips=five)
    assert len(port["fixed_ips"]) == 5
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "fixed_ips": five + [{"subnet_id": sub["id"]}]}})
    err = _err(r, 400, "InvalidInput")
    assert "5" in err["message"]
    r = api.put(f"/v2.0/ports/{port['id']}",
                {"port": {"fixed_ips": port["fixed_ips"] + [{"subnet_id": sub["id"]}]}},
                admin=True)
    _err(r, 400, "InvalidInput")
    assert api.count("ports") == 1
    used = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["fixed_ips"]
    assert used == port["fixed_ips"]
    # A bulk request is limited per port: no address of it is allocated.
    r = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"]}, {"network_id": net["id"], "fixed_ips": five * 100}]})
    _err(r, 400, "InvalidInput")
    assert api.count("ports") == 1


def test_fixed_ips_limit_is_an_option(make_api):
    api = make_api(max_fixed_ips_per_port=2)
    net = api.network()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    api.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]}] * 2)
    _err(api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                           "fixed_ips": [{"subnet_id": sub["id"]}] * 3}}),
         400, "InvalidInput")


def test_allowed_address_pairs_are_limited(make_api):
    api = make_api()
    net = api.network()
    api.subnet(net["id"], "10.0.0.0/24")
    ten = [{"ip_address": f"10.1.0.{i}"} for i in range(10)]
    port = api.port(net["id"], allowed_address_pairs=ten)
    assert len(port["allowed_address_pairs"]) == 10
    eleven = ten + [{"ip_address": "10.1.0.99"}]
    err = _err(api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                                 "allowed_address_pairs": eleven}}),
               400, "AllowedAddressPairExhausted")
    assert "10" in err["message"]
    _err(api.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": eleven}}),
         400, "AllowedAddressPairExhausted")
    assert len(api.get(f"/v2.0/ports/{port['id']}", status=200)
               .data["port"]["allowed_address_pairs"]) == 10
    api2 = make_api(max_allowed_address_pair=1)
    _err(api2.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                            "allowed_address_pairs": ten[:2]}}),
         400, "AllowedAddressPairExhausted")


def test_tags_per_resource_are_limited(api):
    net = api.network()
    fifty = [f"t{i}" for i in range(50)]
    api.put(f"/v2.0/networks/{net['id']}/tags", {"tags": fifty}, status=200)
    _err(api.put(f"/v2.0/networks/{net['id']}/tags/one-more"), 400, "BadRequest")
    _err(api.put(f"/v2.0/networks/{net['id']}/tags", {"tags": fifty + ["x"]}), 400,
         "BadRequest")
    tags = api.get(f"/v2.0/networks/{net['id']}/tags", status=200).data["tags"]
    assert sorted(tags) == sorted(fifty)
    api.put(f"/v2.0/networks/{net['id']}/tags/t0", status=201)  # already there: still 50
    port = api.port(net["id"])
    _err(api.put(f"/v2.0/ports/{port['id']}/tags", {"tags": [f"p{i}" for i in range(51)]}),
         400, "BadRequest")


# ---------------------------------------------------------------- small leaks
def _same_error(a, b, a_id, b_id):
    assert a.status_int == b.status_int
    ea, eb = a.json["NeutronError"], b.json["NeutronError"]
    assert ea["type"] == eb["type"]
    assert ea["message"].replace(a_id, "ID") == eb["message"].replace(b_id, "ID")


@pytest.mark.parametrize("collection", ["networks", "ports", "subnets",
                                        "security-groups"])
def test_marker_of_another_project_is_like_a_random_id(api, collection):
    theirs_net = api.network(project="p2")
    mine_net = api.network(project="p1")
    if collection == "networks":
        theirs, mine = theirs_net, mine_net
    elif collection == "subnets":
        theirs = api.subnet(theirs_net["id"], project="p2")
        mine = api.subnet(mine_net["id"], project="p1")
    elif collection == "ports":
        theirs = api.port(theirs_net["id"], project="p2")
        mine = api.port(mine_net["id"], project="p1")
    else:
        theirs = api.post("/v2.0/security-groups", {"security_group": {"name": "a"}},
                          project="p2", status=201).data["security_group"]
        mine = api.post("/v2.0/security-groups", {"security_group": {"name": "b"}},
                        project="p1", status=201).data["security_group"]
    assert api.get(f"/v2.0/{collection}?limit=1&marker={mine['id']}", status=200)
    random_id = str(uuid.uuid4())
    other = api.get(f"/v2.0/{collection}?limit=1&marker={theirs['id']}")
    unknown = api.get(f"/v2.0/{collection}?limit=1&marker={random_id}")
    assert unknown.status_int == 404
    _same_error(other, unknown, theirs["id"], random_id)
    # The admin sees it, so it is a marker for the admin.
    api.get(f"/v2.0/{collection}?limit=1&marker={theirs['id']}", admin=True, status=200)


def test_marker_of_another_projects_port_on_my_network_is_a_marker(api):
    """A port on my network (another project's) is one I see: its id is a
    marker like any other."""
    net = api.network(project="p1", shared=True, admin=True)
    port = api.port(net["id"], project="p2")
    api.get(f"/v2.0/ports?limit=1&marker={port['id']}", project="p1", status=200)


def _hidden_port(api):
    net = api.network(project="p1")
    api.subnet(net["id"], "10.0.0.0/24")
    port = api.post("/v2.0/ports", {"port": {"network_id": net["id"], HOST: "hv-secret"}},
                    admin=True, status=201).data["port"]
    return net, port


def test_filters_on_hidden_port_attributes_tell_nothing(api):
    net, port = _hidden_port(api)
    assert HOST not in api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    right = api.get(f"/v2.0/ports?{HOST}=hv-secret")
    wrong = api.get(f"/v2.0/ports?{HOST}=hv-other")
    unknown = api.get("/v2.0/ports?no_such_attribute=hv-secret")
    for r in (right, wrong):
        assert (r.status_int, r.json) == (unknown.status_int, unknown.json) or \
            r.json["NeutronError"]["message"].replace(HOST, "X") == \
            unknown.json["NeutronError"]["message"].replace("no_such_attribute", "X")
        _err(r, 400)
    assert right.json == wrong.json
    # The admin filters on it.
    ports = api.get(f"/v2.0/ports?{HOST}=hv-secret", admin=True, status=200).data["ports"]
    assert [p["id"] for p in ports] == [port["id"]]
    assert api.get(f"/v2.0/ports?{HOST}=hv-other", admin=True, status=200).data["ports"] == []


@pytest.mark.parametrize("attr", [NT, SID, "provider:physical_network"])
def test_filters_on_hidden_network_attributes_tell_nothing(api, attr):
    net = api.network(project="p1")
    seen = api.get(f"/v2.0/networks/{net['id']}", admin=True, status=200).data["network"]
    assert attr not in api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]
    value = seen[attr]
    other = "vlan" if attr == NT else ("4000" if attr == SID else "nowhere")
    answers = [api.get(f"/v2.0/networks?{attr}={x}") for x in (value, other)]
    assert answers[0].status_int == answers[1].status_int == 400
    assert answers[0].json == answers[1].json
    if value is not None:
        hits = api.get(f"/v2.0/networks?{attr}={value}", admin=True, status=200).data
        assert net["id"] in [n["id"] for n in hits["networks"]]


# ---------------------------------------------------------------- a real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.fixtures.server import ServerProcess
    path = tmp_path_factory.mktemp("hardening")
    with ServerProcess(f"sqlite:///{path}/s.sqlite") as s:
        yield s


def _http(server, method, path, body=None, headers=None, chunks=None, timeout=10):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        h = {"X-Project-Id": "p1", "X-Roles": "member"}
        h.update(headers or {})
        if chunks is not None:
            conn.request(method, path, body=iter(chunks), headers=h, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def test_chunked_request_bodies_are_read(server):
    body = json.dumps({"network": {"name": "chunked"}}).encode()
    chunks = [body[i:i + 7] for i in range(0, len(body), 7)]
    status, _h, raw = _http(server, "POST", "/v2.0/networks", headers=JSON, chunks=chunks)
    assert status == 201, raw
    net = json.loads(raw)["network"]
    assert net["name"] == "chunked"
    status, _h, raw = _http(server, "PUT", f"/v2.0/networks/{net['id']}", headers=JSON,
                            chunks=[b'{"network": ', b'{"name": "renamed"}}'])
    assert status == 200 and json.loads(raw)["network"]["name"] == "renamed", raw
    # An empty chunked body is still no body.
    status, _h, raw = _http(server, "POST", "/v2.0/networks", headers=JSON, chunks=[])
    assert status == 400 and b"no request body" in raw
    # Chunked or not, a body beyond the limit is refused.
    from quantum_ovs.api.wsgi import MAX_BODY
    big = [b" " * 65536] * (MAX_BODY // 65536 + 1)
    status, _h, raw = _http(server, "POST", "/v2.0/networks", headers=JSON,
                            chunks=[b'{"network": {}'] + big + [b"}"])
    assert status == 413 and json.loads(raw)["NeutronError"]
    assert _http(server, "GET", "/v2.0/networks?name=chunked")[0] == 200


def test_bad_requests_over_http_are_neutron_errors(server):
    for path in ("/v2.0/networks/%ff", "/v2.0/networks?name=%ff%00"):
        status, headers, raw = _http(server, "GET", path)
        assert status == 400, raw
        assert json.loads(raw)["NeutronError"]["type"] == "HTTPBadRequest"
    status, _h, raw = _http(server, "POST", "/v2.0/networks", body=b"[" * 200000,
                            headers=JSON)
    assert status == 400 and b"Traceback" not in raw
    status, _h, raw = _http(server, "POST", "/v2.0/networks",
                            body=b'{"network": {"name": "x"}}',
                            headers={"Content-Type": "text/plain"})
    assert status == 415 and json.loads(raw)["NeutronError"]


WARN_CASES = [("0.0.0.0", "noauth", True), ("::", "noauth", True),
              ("192.0.2.10", "noauth", True), ("cloud.example", "noauth", True),
              ("127.0.0.1", "noauth", False), ("::1", "noauth", False),
              ("localhost", "noauth", False), ("0.0.0.0", "keystone", False)]


def test_noauth_beyond_loopback_is_warned_at_start(tmp_path):
    """The check quantum-ovs-server runs before it listens (run in a child:
    the server module patches the standard library with eventlet)."""
    import subprocess
    import sys
    code = ("import logging, sys\n"
            "from quantum_ovs import config\n"
            "from quantum_ovs.cmd import server\n"
            "logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='%(message)s')\n"
            "for path in sys.argv[1:]:\n"
            "    print('== ' + path, file=sys.stderr)\n"
            "    server.warn_unsafe(config.make_conf(['--config-file', path]))\n")
    paths = []
    for i, (host, auth, _warned) in enumerate(WARN_CASES):
        paths.append(tmp_path / f"q{i}.conf")
        paths[-1].write_text(f"[DEFAULT]\nbind_host = {host}\nauth_strategy = {auth}\n")
    out = subprocess.run([sys.executable, "-c", code, *map(str, paths)],
                         capture_output=True, text=True, timeout=60, check=True).stderr
    parts = out.split("== ")[1:]
    assert len(parts) == len(WARN_CASES), out
    for part, (host, auth, warned) in zip(parts, WARN_CASES):
        assert ("ANY project" in part) == warned, (host, auth, part)
