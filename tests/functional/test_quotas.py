"""Quotas: the API, enforcement on every create (bulk too), and concurrent
creators against real server processes on SQLite and PostgreSQL."""

import http.client
import json
import threading

import pytest

from quantum_ovs.testing.server import ServerProcess

DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "security_group": 10,
            "security_group_rule": 100, "router": 10, "router_route": 30,
            "floatingip": 50,  # (the L3 plugin is on by default)
            "rbac_policy": 10,
            "subnetpool": -1}  # ([quotas] default_quota: it has no option of its own)


def test_defaults_and_show(api):
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"] == DEFAULTS
    assert api.get("/v2.0/quotas/p1/default", status=200).data["quota"] == DEFAULTS
    assert api.get("/v2.0/quotas/p2", admin=True, status=200).data["quota"] == DEFAULTS
    # Nobody else's.
    r = api.get("/v2.0/quotas/p2", project="p1", status=403)
    assert r.data["NeutronError"]["type"] == "NotAuthorized"
    api.get("/v2.0/quotas/p2/default", project="p1", status=403)
    api.get("/v2.0/quotas/p2/details", project="p1", status=403)


def test_configured_defaults(make_api):
    api = make_api()
    api.plugin.conf.set_override("quota_network", 3, group="quotas")
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"]["network"] == 3


def test_admin_sets_lists_and_resets(api):
    r = api.put("/v2.0/quotas/p1", {"quota": {"network": 20, "port": -1}}, status=403)
    assert r.data["NeutronError"]["type"] == "AdminRequired"
    api.get("/v2.0/quotas", status=403)
    api.delete("/v2.0/quotas/p1", status=403)
    q = api.put("/v2.0/quotas/p1", {"quota": {"network": 20, "port": -1}}, admin=True,
                status=200).data["quota"]
    assert q == dict(DEFAULTS, network=20, port=-1)
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"] == q
    api.put("/v2.0/quotas/p2", {"quota": {"subnet": "7"}}, admin=True, status=200)
    listed = api.get("/v2.0/quotas", admin=True, status=200).data["quotas"]
    assert listed == [dict(q, project_id="p1", tenant_id="p1"),
                      dict(DEFAULTS, subnet=7, project_id="p2", tenant_id="p2")]
    api.delete("/v2.0/quotas/p1", admin=True, status=204)
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"] == DEFAULTS
    assert [x["project_id"] for x in api.get("/v2.0/quotas", admin=True,
                                             status=200).data["quotas"]] == ["p2"]


@pytest.mark.parametrize("body", [
    {"quota": {"network": -2}},
    {"quota": {"network": "ten"}},
    {"quota": {"network": 1.5}},
    {"quota": {"network": True}},
    {"quota": {"network": 2 ** 40}},
    {"quota": {"loadbalancer": 5}},  # (a resource not served)
    {"quota": {}},
    {"quota": 5},
    {"network": 5},
])
def test_bad_quota_values(api, body):
    r = api.put("/v2.0/quotas/p1", body, admin=True, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"] == DEFAULTS


def test_over_quota_networks(api):
    api.put("/v2.0/quotas/p1", {"quota": {"network": 2}}, admin=True, status=200)
    api.network()
    api.network()
    r = api.post("/v2.0/networks", {"network": {"name": "x"}}, status=409)
    assert r.data["NeutronError"] == {
        "type": "OverQuota", "message": "Quota exceeded for resources: ['network'].",
        "detail": ""}
    # Another project is not affected; the admin raises the limit.
    api.network(project="p2")
    api.put("/v2.0/quotas/p1", {"quota": {"network": 3}}, admin=True, status=200)
    api.network()
    assert api.get("/v2.0/quotas/p1/details", status=200).data["quota"]["network"] == {
        "limit": 3, "used": 3, "reserved": 0}
    api.put("/v2.0/quotas/p1", {"quota": {"network": -1}}, admin=True, status=200)
    for _ in range(3):
        api.network()
    assert len(api.get("/v2.0/networks", status=200).data["networks"]) == 6


def test_a_new_groups_egress_rules_count_against_the_rule_quota(api):
    api.post("/v2.0/security-groups", {"security_group": {"name": "first"}}, status=201)
    used = api.get("/v2.0/quotas/p1/details", status=200).data["quota"][
        "security_group_rule"]["used"]
    groups = len(api.get("/v2.0/security-groups", status=200).data["security_groups"])
    # Room for one rule: a group brings two.
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": used + 1}}, admin=True,
            status=200)
    r = api.post("/v2.0/security-groups", {"security_group": {"name": "x"}}, status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"
    assert "security_group_rule" in r.data["NeutronError"]["message"]
    assert len(api.get("/v2.0/security-groups", status=200).data["security_groups"]) == groups
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": used + 2}}, admin=True,
            status=200)
    api.post("/v2.0/security-groups", {"security_group": {"name": "y"}}, status=201)


def test_bulk_create_counts_every_item(api):
    api.put("/v2.0/quotas/p1", {"quota": {"network": 3}}, admin=True, status=200)
    api.network()
    body = {"networks": [{"name": f"n{i}"} for i in range(3)]}
    r = api.post("/v2.0/networks", body, status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"
    assert len(api.get("/v2.0/networks", status=200).data["networks"]) == 1
    body["networks"].pop()
    assert len(api.post("/v2.0/networks", body, status=201).data["networks"]) == 2


def _counting(monkeypatch, handler, name):
    """The calls of ``handler.<name>`` (a per-item create) from now."""
    calls = []
    real = getattr(handler, name)

    def counted(*args, **kw):
        calls.append(args)
        return real(*args, **kw)
    monkeypatch.setattr(handler, name, counted)
    return calls


def test_a_bulk_past_the_quota_is_refused_before_its_work(api, monkeypatch):
    """As Neutron reserves a bulk's items first (QuotaEnforcementHook.before):
    a bulk that would take its project past the limit is the commit-time
    count's 409 before any item is made (it made them all, then refused:
    a 1.5 KB body of 500 networks cost seconds of work); one exactly at
    the limit passes.  Counted in the project of each item."""
    api.put("/v2.0/quotas/p1", {"quota": {"network": 5}}, admin=True, status=200)
    api.network()
    made = _counting(monkeypatch, api.plugin.collections["networks"], "_create")
    r = api.post("/v2.0/networks", {"networks": [{}] * 500}, status=409)
    assert r.data["NeutronError"] == {
        "type": "OverQuota", "message": "Quota exceeded for resources: ['network'].",
        "detail": ""}
    r = api.post("/v2.0/networks", {"networks": [{"name": f"n{i}"} for i in range(5)]},
                 status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"
    assert made == []
    assert api.count("networks") == 1
    # An admin's bulk for two projects: the one past its limit refuses it.
    api.put("/v2.0/quotas/p2", {"quota": {"network": 1}}, admin=True, status=200)
    r = api.post("/v2.0/networks", {"networks": [
        {"project_id": "p1"}, {"project_id": "p2"}, {"project_id": "p2"}]},
        admin=True, project="admin-p", status=409)
    assert r.data["NeutronError"]["message"] == "Quota exceeded for resources: ['network']."
    assert made == [] and api.count("networks") == 1
    # Exactly at the limit.
    assert len(api.post("/v2.0/networks", {"networks": [{"name": f"n{i}"} for i in range(4)]},
                        status=201).data["networks"]) == 4
    assert len(made) == 4
    assert api.get("/v2.0/quotas/p1/details", status=200).data["quota"]["network"] == {
        "limit": 5, "used": 5, "reserved": 0}


def test_a_bulk_of_rules_is_counted_in_its_groups_project(api, monkeypatch):
    """Rules count in their group's project (the project their rows get):
    a bulk past that limit is refused before any rule is made, one at it
    passes."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "s"}},
                  status=201).data["security_group"]
    used = api.get("/v2.0/quotas/p1/details", status=200).data["quota"][
        "security_group_rule"]["used"]
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": used + 60}}, admin=True,
            status=200)
    rules = [{"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
              "port_range_min": i + 1, "port_range_max": i + 1} for i in range(100)]
    made = _counting(monkeypatch, api.plugin.collections["security_group_rules"], "create")
    # An admin's bulk (in a project of its own, room for 100) is counted in
    # p1's too.
    for project, admin in (("p1", False), ("admin-p", True)):
        r = api.post("/v2.0/security-group-rules", {"security_group_rules": rules[:61]},
                     project=project, admin=admin, status=409)
        assert r.data["NeutronError"]["message"] == \
            "Quota exceeded for resources: ['security_group_rule']."
    assert made == []
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": used + 100}}, admin=True,
            status=200)
    assert len(api.post("/v2.0/security-group-rules", {"security_group_rules": rules},
                        status=201).data["security_group_rules"]) == 100
    assert len(made) == 100
    assert api.get("/v2.0/quotas/p1/details", status=200).data["quota"][
        "security_group_rule"]["used"] == used + 100


def test_subnets_ports_and_security_groups(api):
    api.put("/v2.0/quotas/p1", {"quota": {"subnet": 1, "port": 2, "security_group": 2,
                                          "security_group_rule": 6}},
            admin=True, status=200)
    net = api.network()
    api.subnet(net["id"], "10.0.0.0/24")
    r = api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                              "cidr": "10.0.1.0/24"}}, status=409)
    assert r.data["NeutronError"]["message"] == "Quota exceeded for resources: ['subnet']."
    api.port(net["id"])
    api.port(net["id"])
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409)
    assert r.data["NeutronError"]["message"] == "Quota exceeded for resources: ['port']."
    # The default group (made by the first port) counts: one more fits.
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "a"}},
                  status=201).data["security_group"]
    r = api.post("/v2.0/security-groups", {"security_group": {"name": "b"}}, status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"
    # 4 rules of the default group (made for it, not counted when made) and
    # the 2 of "a" (counted, as in Neutron: "a" fitted in 6) exist, so none
    # more fits.
    r = api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp"}},
        status=409)
    assert "security_group_rule" in r.data["NeutronError"]["message"]
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": 7}}, admin=True,
            status=200)
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp"}},
        status=201)
    details = api.get("/v2.0/quotas/p1/details", status=200).data["quota"]
    assert details["security_group"]["used"] == 2
    assert details["security_group_rule"]["used"] == 7
    assert details["port"] == {"limit": 2, "used": 2, "reserved": 0}


def test_quotas_extension_advertised(api):
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200)
               .data["extensions"]}
    assert {"quotas", "quota_details", "quota-check-limit"} <= aliases


# ------------------------------------------------------------------ concurrency
LIMIT = 5
CLIENTS = 8
ATTEMPTS = 4  # per client: 32 attempts for 5 places


def _request(port, method, path, body=None, project="quota-race"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", "X-Project-Id": project})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.fixture
def quota_server(db_url):
    srv = ServerProcess(db_url, workers=2,
                        extra_conf=f"[quotas]\nquota_network = {LIMIT}\n"
                                   f"quota_port = {LIMIT}\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        print(srv.log()[-20000:])


def _race(port, make):
    statuses = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client():
        start.wait()
        for _ in range(ATTEMPTS):
            status, body = make()
            with lock:
                statuses.append((status, body))
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return statuses


def test_concurrent_creates_never_pass_the_limit(quota_server):
    port = quota_server.port
    statuses = _race(port, lambda: _request(port, "POST", "/v2.0/networks",
                                            {"network": {"name": "race"}}))
    codes = sorted(s for s, _ in statuses)
    assert codes.count(201) == LIMIT, statuses
    assert codes.count(409) == CLIENTS * ATTEMPTS - LIMIT, statuses
    assert all(b["NeutronError"]["type"] == "OverQuota" for s, b in statuses if s == 409)
    status, body = _request(port, "GET", "/v2.0/networks")
    assert status == 200 and len(body["networks"]) == LIMIT
    # Ports too (with IPAM and the default security group in the same
    # transactions).
    net = body["networks"][0]["id"]
    status, _ = _request(port, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net, "ip_version": 4, "cidr": "10.9.0.0/24"}})
    assert status == 201
    statuses = _race(port, lambda: _request(port, "POST", "/v2.0/ports",
                                            {"port": {"network_id": net}}))
    codes = [s for s, _ in statuses]
    assert codes.count(201) == LIMIT and codes.count(409) == len(codes) - LIMIT, statuses
    status, body = _request(port, "GET", "/v2.0/ports")
    assert len(body["ports"]) == LIMIT
    status, body = _request(port, "GET", "/v2.0/security-groups")
    assert [g["name"] for g in body["security_groups"]] == ["default"]


def test_a_limit_below_the_usage_is_refused_by_default(api):
    """quota-check-limit-default (Neutron since 2025.1): the usage is
    checked whatever check_limit says; only force skips it."""
    api.network()
    api.network()
    for extra in ({}, {"check_limit": True}, {"check_limit": False}):
        r = api.put("/v2.0/quotas/p1", {"quota": {"network": 1, **extra}},
                    admin=True, status=400)
        assert r.data["NeutronError"]["type"] == "InvalidQuotaValue"
        assert "the limit 1 of network is below its current usage 2" in \
            r.data["NeutronError"]["message"]
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"]["network"] == 100
    q = api.put("/v2.0/quotas/p1", {"quota": {"network": 2, "check_limit": True}},
                admin=True, status=200).data["quota"]
    assert q["network"] == 2 and "check_limit" not in q
    # -1 (unlimited) and a limit at the usage are taken
    api.put("/v2.0/quotas/p1", {"quota": {"network": -1}}, admin=True, status=200)
    api.put("/v2.0/quotas/p1", {"quota": {"network": 2}}, admin=True, status=200)
    # Forced, a limit below the usage is taken (nothing is deleted).
    q = api.put("/v2.0/quotas/p1", {"quota": {"network": 1, "force": True}},
                admin=True, status=200).data["quota"]
    assert q["network"] == 1
    assert len(api.get("/v2.0/networks", status=200).data["networks"]) == 2
    api.put("/v2.0/quotas/p1", {"quota": {"check_limit": True}}, admin=True, status=400)
    api.put("/v2.0/quotas/p1", {"quota": {"network": 3, "check_limit": "maybe"}},
            admin=True, status=400)


def test_force_key_is_taken_and_skips_the_usage_check(api):
    """`openstack quota set --force` sends force: Neutron takes it."""
    api.network()
    api.network()
    q = api.put("/v2.0/quotas/p1", {"quota": {"network": 1, "check_limit": True,
                                              "force": True}},
                admin=True, status=200).data["quota"]
    assert q["network"] == 1 and "force" not in q
    q = api.put("/v2.0/quotas/p1", {"quota": {"network": 3, "force": False}},
                admin=True, status=200).data["quota"]
    assert q["network"] == 3
    # only a JSON boolean: Neutron forces on true alone, so what it would
    # not force on ("true", 1) is refused rather than taken either way
    for word in ("true", "yes", 1, "false", None):
        r = api.put("/v2.0/quotas/p1", {"quota": {"network": 1, "force": word}},
                    admin=True, status=400)
        assert "force must be true or false" in r.data["NeutronError"]["message"], word
    r = api.put("/v2.0/quotas/p1", {"quota": {"network": 1, "check_limit": True,
                                              "force": False}}, admin=True, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidQuotaValue"
    api.put("/v2.0/quotas/p1", {"quota": {"network": 5, "force": "maybe"}}, admin=True,
            status=400)
    api.put("/v2.0/quotas/p1", {"quota": {"force": True}}, admin=True, status=400)
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"]["network"] == 3


@pytest.mark.parametrize("value, want", [("7", 7), (" 12 ", 12), ("-1", -1), (9.0, 9)])
def test_quota_limits_given_as_strings_are_converted(api, value, want):
    q = api.put("/v2.0/quotas/p1", {"quota": {"port": value}}, admin=True,
                status=200).data["quota"]
    assert q["port"] == want


def test_quota_limit_beyond_64_bits_is_400(api):
    r = api.put("/v2.0/quotas/p1", {"quota": {"port": 2 ** 64}}, admin=True, status=400)
    assert r.data["NeutronError"]["message"]
    assert api.get("/v2.0/quotas/p1", status=200).data["quota"] == DEFAULTS


def test_quota_of_a_project_id_too_long_for_the_database(api):
    """(Found by the fuzzer on PostgreSQL: value too long, a 500.)"""
    r = api.put("/v2.0/quotas/" + "x" * 256, {"quota": {"network": 1}}, admin=True,
                status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    api.put("/v2.0/quotas/" + "x" * 255, {"quota": {"network": 1}}, admin=True, status=200)
