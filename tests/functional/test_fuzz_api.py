"""A bounded random fuzzer of the REST API (issue 11: "0 answers of 5xx,
0 hangs, and a consistency check of the database afterwards").

Every route make_app serves (read from its mapper, as the adversarial
tenancy suite does, so a new route is fuzzed by construction) gets
requests built from a valid one and then mutated: bodies (wrong types,
huge and negative integers, nested objects, unicode and lone surrogates,
empty, extra keys, lists where objects go, bulk forms, malformed JSON and
bytes), query strings (filters, fields, sort_key/sort_dir, limit, marker,
page_reverse, undecodable bytes) and headers (Content-Type, X-Roles,
X-Project-Id, If-Match).  The generator is seeded: a run is repeatable,
and a failure names the request that caused it.

Asserted: no status of 500 or more; every error body is a NeutronError
object; every request ends within a generous bound (webtest runs in
process: a hang is a slow call); and the database is consistent
afterwards (tests/fixtures/consistency.py).
"""

import collections
import copy
import json
import os
import random
import re
import time
import urllib.parse
import uuid

import pytest

from tests.fixtures import consistency
from tests.functional.conftest import SHARED_AGENT_TOKEN
from tests.functional.test_adversarial_tenancy import (ACTION_METHODS, BODIES, FMT, PARAM,
                                                       SERVICE_PLUGINS, _API)

# Fixed, so that a run is repeatable; QOVS_FUZZ_SEED and QOVS_FUZZ_REQUESTS
# make longer or other runs by hand.
SEED = int(os.environ.get("QOVS_FUZZ_SEED", 11))
REQUESTS = int(os.environ.get("QOVS_FUZZ_REQUESTS", 8000))  # per backend: < 30 s
PER_REQUEST = 5.0  # seconds; a request slower than this counts as a hang
HOST = "fuzz-host"
PROJECTS = ("p1", "p2", "")

# Methods of the routes that are not collections, members or extras.
OTHER_METHODS = {"versions": ("GET",), "v2_index": ("GET",), "extensions": ("GET",),
                 "extension": ("GET",), "openapi": ("GET",)}
ODD_METHODS = ("PATCH", "OPTIONS", "POST", "PUT", "DELETE", "GET", "HEAD")


def served_routes():
    """[(path template, method, collection, action)] of every route."""
    extra = dict((f"extra{i}", h) for i, (_, h) in enumerate(_API.extra_routes))
    out = []
    for r in _API.mapper.matchlist:
        path = FMT.sub("", r.routepath)
        action = r.defaults.get("action")
        if action == "extra":
            methods = sorted(extra[r.defaults["extra"]])
        else:
            methods = ACTION_METHODS.get(action) or OTHER_METHODS[action]
        for m in methods:
            out.append((path, m, r.defaults.get("collection"), action))
    return out


ROUTES = served_routes()
# Writes of the v2.0 resources, drawn more often: creates, updates and
# deletes that succeed are what the consistency check is about.
WRITES = [r for r in ROUTES if r[0].startswith("/v2.0/") and r[3] in ("collection", "member")
          and r[1] in ("POST", "PUT", "DELETE")]

# ------------------------------------------------------------------ junk
HUGE = (2 ** 63, 2 ** 63 - 1, -2 ** 63 - 1, 2 ** 64, 10 ** 30, -1, 0, 65536, 4096)


def _deep(n):
    v = "x"
    for _ in range(n):
        v = {"a": v} if n % 2 else [v]
    return v


JUNK_VALUES = [None, True, False, "", " ", "x" * 5000, "\ud800", "a\udfffb", "\x00",
               "é中𝄞", "‮rtl", "%ff", "../../etc", "'; DROP TABLE ports; --",
               1.5, -0.0, 1e308, [], {}, [{}], [[]], {"a": {"b": [1, {"c": None}]}},
               ["x"], [None], "10.0.0.0/33", "10.0.0.1", "::1", "fe80::/10", "256.1.1.1",
               "00:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", "true", "null", "ingress", "IPv4",
               "tcp", "ACTIVE", str(uuid.UUID(int=0)), _deep(40), _deep(5)] + list(HUGE)
RAW_BODIES = [b"", b"{", b"[", b"null", b"0", b"\"x\"", b"[]", b"{}", b"\xff\xfe\x00",
              b"{\"network\": \"\xc3\x28\"}", b"{\"a\": NaN}", b"{\"a\": Infinity}",
              b"[" * 5000 + b"]" * 5000, b"{\"a\":" * 3000 + b"1" + b"}" * 3000,
              b"{\"network\": {\"name\": \"\\ud800\"}}", b"{\"x\": 1, \"x\": 2}",
              b"{\"port\": {\"name\": \"a\\u0000b\"}}", b"\xef\xbb\xbf{}", b" " * 10000,
              b"{\"network\": {}}" + b"garbage", b"1" * 5000]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/json; charset=latin-1", "application/json; charset=utf-16",
                 "", "application/JSON", "*/*", "application/xml", "json"]
ROLES = ["admin", "member", "reader", "", "admin,member", " , ,", "ADMIN", "service",
         "x" * 300, "member,reader,admin,admin", "\xe9"]
IF_MATCH = ["revision_number=1", "revision_number=-1", "revision_number=abc",
            "revision_number=99999999999999999999999", "revision_number=", "*", "\"x\"",
            "revision_number=1, revision_number=2", "junk"]
QUERY_KEYS = ["fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse",
              "tenant_id", "project_id", "id", "name", "tags", "tags-any", "not-tags",
              "not-tags-any", "shared", "admin_state_up", "network_id", "device_id",
              "fixed_ips", "ip_address", "ip_address_substr", "binding:host_id",
              "provider:segmentation_id", "mac_address", "cidr", "status", "verbose",
              "revision_number", "created_at", "unknown_filter", "", "fields[]"]
QUERY_VALUES = ["", "asc", "desc", "ASC", "sideways", "id", "name", "-1", "0", "1", "1.5",
                "abc", str(2 ** 63), str(2 ** 64), str(-2 ** 63 - 1), "true", "false",
                "True", "yes", "%ff", "%00", "%ff%fe", "\u00e9", "ip_address=10.0.0.1",
                "subnet_id=x", "x" * 3000, str(uuid.uuid4()), "None", "null", "[]"]


class Fuzzer:
    def __init__(self, api, rng):
        self.api = api
        self.rng = rng
        self.app = api.app
        self.ids = collections.defaultdict(list)  # collection -> ids seen
        self.statuses = collections.Counter()
        self.count = 0
        self.slowest = (0.0, None)
        self.failures = []

    # -------------------------------------------------------------- world
    def setup(self):
        api = self.api
        api.post("/agent-api/v1/agents", {"host": HOST, "tunnel_ip": "192.0.2.7",
                                          "configurations": {"tunnel_types": ["vxlan"]},
                                          "started": True}, status=200)
        for project in ("p1", "p2"):
            net = api.network(project=project)
            sub = api.subnet(net["id"], cidr="10.9.0.0/24", project=project)
            sg = api.post("/v2.0/security-groups", {"security_group": {"name": "f"}},
                          project=project, status=201).data["security_group"]
            rule = api.post("/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22}},
                project=project, status=201).data["security_group_rule"]
            port = api.port(net["id"], project=project, device_owner="compute:nova",
                            device_id="vm-" + project)
            api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": HOST}},
                    admin=True, status=200)
            router = api.post("/v2.0/routers", {"router": {"name": "f"}}, project=project,
                              status=201).data["router"]
            api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                    {"subnet_id": sub["id"]}, project=project, status=200)
            ag = api.post("/v2.0/address-groups", {"address_group": {
                "name": "f", "addresses": ["10.9.9.0/24"]}}, project=project,
                status=201).data["address_group"]
            self.ids["address_groups"].append(ag["id"])
            for c, obj in (("networks", net), ("subnets", sub), ("ports", port),
                           ("security_groups", sg), ("security_group_rules", rule),
                           ("routers", router)):
                self.ids[c].append(obj["id"])
        self.ids["agents"] += [a["id"] for a in api.get("/v2.0/agents", admin=True,
                                                          status=200).data["agents"]]
        # An external network, the routers' gateways on it, a floating IP
        # with a port forwarding and one associated, per project.
        ext = api.post("/v2.0/networks", {"network": {"name": "ext", "router:external": True}},
                       admin=True, status=201).data["network"]
        api.subnet(ext["id"], cidr="172.24.4.0/24", admin=True)
        self.ids["networks"].append(ext["id"])
        self.external = ext["id"]
        for i, project in enumerate(("p1", "p2")):
            api.put(f"/v2.0/routers/{self.ids['routers'][i]}", {"router": {
                "external_gateway_info": {"network_id": ext["id"]}}}, project=project,
                status=200)
            port = api.get(f"/v2.0/ports/{self.ids['ports'][i]}", project=project,
                           status=200).data["port"]
            fip = api.post("/v2.0/floatingips", {"floatingip": {
                "floating_network_id": ext["id"], "port_id": port["id"]}}, project=project,
                status=201).data["floatingip"]
            pf_fip = api.post("/v2.0/floatingips", {"floatingip": {
                "floating_network_id": ext["id"]}}, project=project,
                status=201).data["floatingip"]
            # (A fixed IP with a floating IP of its own takes no forwarding:
            # another port of the network.)
            pf_port = api.port(port["network_id"], project=project,
                               device_owner="compute:nova", device_id="vm2-" + project)
            pf = api.post(f"/v2.0/floatingips/{pf_fip['id']}/port_forwardings", {
                "port_forwarding": {"protocol": "tcp", "internal_port_id": pf_port["id"],
                                    "internal_ip_address":
                                        pf_port["fixed_ips"][0]["ip_address"],
                                    "internal_port": 22, "external_port": 2222}},
                project=project, status=201).data["port_forwarding"]
            self.ids["floatingips"] += [fip["id"], pf_fip["id"]]
            self.ids["port_forwardings"].append(pf["id"])

    # -------------------------------------------------------------- values
    def junk(self):
        return copy.deepcopy(self.rng.choice(JUNK_VALUES))

    def some_id(self, collection):
        r = self.rng.random()
        if collection and self.ids[collection] and r < 0.7:
            return self.rng.choice(self.ids[collection])
        if r < 0.85:
            return str(uuid.uuid4())
        return self.rng.choice(["%ff", "x" * 300, "é", "..", "%2e%2e", "0", "-1",
                                str(2 ** 64), "a%00b", "%c3%28", "%ed%a0%80", "~"])

    def param(self, name, collection):
        if name in ("tenant_id", "project_id"):
            return self.rng.choice(["p1", "p2", "nobody", "%ff", "x" * 300, ""])
        if name == "host":
            return self.rng.choice([HOST, "other-host", "%ff", "x" * 300, "é"])
        if name == "tag":
            return self.rng.choice(["red", "", "x" * 300, "%ff", "a,b", "é", "%00"])
        target = {"network_id": "networks", "port_id": "ports",
                  "router_id": "routers", "fip_id": "floatingips",
                  "pf_id": "port_forwardings", "agent_id": "agents",
                  "group_id": "address_groups",
                  "pool_id": "subnetpools"}.get(name, collection)
        return self.some_id(target)

    def fill(self, template, collection):
        # Percent-encoded (a raw "%ff" stays: undecodable bytes in the path).
        return PARAM.sub(lambda m: urllib.parse.quote(self.param(m.group(1), collection),
                                                      safe="%~"), template)

    def valid_body(self, path, method, collection, action):
        rng = self.rng
        if method not in ("POST", "PUT"):
            return None
        if path.startswith("/agent-api/v1/agents"):
            return {"host": rng.choice([HOST, "fuzz-2"]), "tunnel_ip": "192.0.2.8",
                    "configurations": {"tunnel_types": ["vxlan"]}, "started": True}
        if path.endswith("/ports") and path.startswith("/agent-api"):
            pid = self.some_id("ports")
            return rng.choice([{"plugged": [{"port_id": pid, "ofport": 7}], "installed": [pid]},
                               {"unplugged": [pid]}])
        net = self.some_id("networks")
        if action == "collection" and method == "POST":
            return {
                "networks": {"network": {"name": "fz", "admin_state_up": True}},
                "subnets": {"subnet": {"network_id": net, "ip_version": 4,
                                       "cidr": f"10.{rng.randrange(10, 250)}.0.0/24"}},
                "ports": {"port": {"network_id": net, "name": "fz",
                                   "fixed_ips": [{"subnet_id": self.some_id("subnets")}]}},
                "security_groups": {"security_group": {"name": "fz"}},
                "default_security_group_rules": {"default_security_group_rule": {
                    "direction": rng.choice(["ingress", "egress"]), "protocol": "tcp",
                    "port_range_min": (p := rng.randrange(1, 65535)), "port_range_max": p,
                    "used_in_default_sg": rng.choice([True, False])}},
                "security_group_rules": {"security_group_rule": {
                    "security_group_id": self.some_id("security_groups"),
                    "direction": "egress", "protocol": "udp", "port_range_min": 53,
                    "port_range_max": 53, "remote_ip_prefix": "10.0.0.0/8"}},
                "agents": {"agent": {"admin_state_up": False}},
                "routers": {"router": {"name": "fz", "admin_state_up": True}},
                "floatingips": {"floatingip": {
                    "floating_network_id": rng.choice([self.external, net]),
                    "port_id": rng.choice([None, self.some_id("ports")])}},
                "address_groups": {"address_group": {
                    "name": "fz", "addresses": ["10.9.8.0/24", "2001:db8::1/128"]}},
                "subnetpools": {"subnetpool": {
                    "name": "fz", "prefixes": [f"10.{rng.randrange(100, 250)}.0.0/16"],
                    "default_prefixlen": 24,
                    "address_scope_id": rng.choice([None, self.some_id("address_scopes")])}},
                "address_scopes": {"address_scope": {"name": "fz", "ip_version": 4}},
                "rbac_policies": {"rbac_policy": {
                    "object_type": rng.choice(["network", "security_group"]),
                    "object_id": rng.choice([net, self.some_id("security_groups")]),
                    "action": "access_as_shared", "target_tenant": rng.choice(["p2", "*"])}},
            }[collection]
        if action == "member":
            singular = collection[:-1] if collection != "security_group_rules" \
                else "security_group_rule"
            singular = {"security_groups": "security_group",
                        "security_group_rules": "security_group_rule",
                        "agents": "agent", "routers": "router",
                        "floatingips": "floatingip",
                        "address_groups": "address_group",
                        "rbac_policies": "rbac_policy"}.get(collection, singular)
            return {singular: rng.choice([{"name": "fz2"}, {"admin_state_up": False},
                                          {"description": "d"}, {"tags": ["a"]},
                                          {"port_id": self.some_id("ports")},
                                          {"port_id": None}])}
        if path.endswith("_router_interface"):
            return rng.choice([{"subnet_id": self.some_id("subnets")},
                               {"port_id": self.some_id("ports")}])
        if path.endswith("_addresses"):
            return {"addresses": rng.choice([["10.9.9.0/24"], ["10.9.7.7"], ["::1/128"]])}
        if path.endswith("_extraroutes"):
            return {"router": {"routes": [{"destination": "10.200.0.0/24",
                                           "nexthop": "10.9.0.7"}]}}
        for pattern, m, body in BODIES:
            if m == method and re.search(pattern, path):
                return json.loads(json.dumps(body)) if body is not None else None
        return {"x": 1}

    # -------------------------------------------------------------- mutation
    def _containers(self, value, out):
        if isinstance(value, (dict, list)):
            out.append(value)
            for v in (value.values() if isinstance(value, dict) else value):
                self._containers(v, out)
        return out

    def mutate(self, body):
        rng = self.rng
        if body is None or rng.random() < 0.08:
            return rng.choice([None, self.junk(), {}, []])
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            kind = rng.randrange(7)
            boxes = self._containers(body, [])
            box = rng.choice(boxes) if boxes else None
            if kind == 0 and isinstance(box, dict) and box:  # a value of the wrong kind
                box[rng.choice(list(box))] = self.junk()
            elif kind == 1 and isinstance(box, dict):  # an extra key
                box[rng.choice(["extra", "id", "tenant_id", "project_id", "status",
                                "revision_number", "\ud800", "", "x" * 300,
                                "binding:host_id", "provider:network_type",
                                "provider:segmentation_id", "shared", "router:external",
                                "mac_address", "port_security_enabled",
                                "allowed_address_pairs", "fixed_ips", "security_groups",
                                "tags", "dns_name", "ofport"])] = self.junk()
            elif kind == 2 and isinstance(box, dict) and box:  # a key missing
                box.pop(rng.choice(list(box)))
            elif kind == 3 and isinstance(box, dict) and box:  # a list where an object goes
                k = rng.choice(list(box))
                box[k] = rng.choice([[box[k]], [box[k], box[k]], []])
            elif kind == 4 and isinstance(body, dict) and len(body) == 1:  # bulk forms
                (k, v), = body.items()
                plural = {"network": "networks", "subnet": "subnets", "port": "ports",
                          "security_group": "security_groups",
                          "security_group_rule": "security_group_rules"}.get(k, k + "s")
                body = rng.choice([{plural: [v, v]}, {plural: []}, {plural: v},
                                   {plural: [v, self.junk()]}, {k: [v]}, {k: v, plural: [v]}])
            elif kind == 5 and isinstance(box, list):
                box.append(self.junk())
            elif kind == 6 and isinstance(box, dict) and box:  # a nested object
                box[rng.choice(list(box))] = {"a": self.junk(), "b": [self.junk()]}
        return body

    def query(self):
        rng = self.rng
        if rng.random() < 0.4:
            return ""
        parts = []
        for _ in range(rng.randrange(1, 6)):
            key = rng.choice(QUERY_KEYS)
            value = rng.choice(QUERY_VALUES) if rng.random() < 0.8 else self.some_id(None)
            if value.startswith("%") or rng.random() < 0.1:
                parts.append(f"{key}={value}")  # raw: undecodable escapes stay
            else:
                parts.append(urllib.parse.urlencode({key: value}))
        return "?" + "&".join(parts)

    def headers(self):
        rng = self.rng
        if rng.random() < 0.4:
            # A well-formed caller: the request reaches the resource code.
            return {"X-Project-Id": rng.choice(("p1", "p2")),
                    "X-Roles": rng.choice(("member", "admin,member")),
                    "X-Agent-Token": SHARED_AGENT_TOKEN, "Content-Type": "application/json"}
        h = {"X-Project-Id": rng.choice(PROJECTS), "X-Roles": rng.choice(ROLES),
             "X-Agent-Token": rng.choice([SHARED_AGENT_TOKEN] * 4 + ["", "junk"])}
        if rng.random() < 0.3:
            h["X-Project-Id"] = rng.choice(["x" * 300, "\xe9", "p1,p2", " p1 ", "%ff"])
        if rng.random() < 0.15:
            h["If-Match"] = rng.choice(IF_MATCH)
        if rng.random() < 0.8:
            h["Content-Type"] = rng.choice(CONTENT_TYPES[:2] * 4 + CONTENT_TYPES)
        for k in list(h):
            if rng.random() < 0.05:
                del h[k]
        return h

    # -------------------------------------------------------------- run
    def one(self):
        rng = self.rng
        template, method, collection, action = rng.choice(
            WRITES if rng.random() < 0.25 else ROUTES)
        if rng.random() < 0.05:
            method = rng.choice(ODD_METHODS)
        path = self.fill(template, collection)
        if rng.random() < 0.03:
            path += rng.choice(["/", "//", "/%ff", "/extra", ".json", ".xml", "/.."])
        path += self.query()
        headers = self.headers()
        if method in ("POST", "PUT", "PATCH") or rng.random() < 0.05:
            if rng.random() < 0.12:
                raw = rng.choice(RAW_BODIES)
            else:
                body = self.mutate(self.valid_body(template, method, collection, action)) \
                    if rng.random() < 0.7 else self.valid_body(template, method, collection,
                                                               action)
                raw = json.dumps(body).encode() if rng.random() < 0.95 else b""
        else:
            raw = b""
        self.send(method, path, headers, raw)

    def send(self, method, path, headers, raw):
        start = time.monotonic()
        try:
            resp = self.app.request(path, method=method, headers=headers, body=raw,
                                    status="*", expect_errors=True)
        except Exception as err:  # noqa: BLE001 - the app itself raised: a failure
            self.failures.append(f"{method} {path[:200]} raised {err!r}"[:600])
            return
        took = time.monotonic() - start
        self.count += 1
        status = resp.status_int
        self.statuses[status] += 1
        where = f"{method} {path[:200]} {headers} {raw[:300]!r}"
        if took > self.slowest[0]:
            self.slowest = (took, f"{method} {path[:120]}")
        if took > PER_REQUEST:
            self.failures.append(f"{took:.1f} s: {where}")
        if status >= 500:
            self.failures.append(f"{resp.status}: {where} -> {resp.text[:300]}")
        elif status >= 400 and method != "HEAD" and resp.body:
            try:
                if path.startswith("/v1."):
                    # The Essex API's faults: {"networkNotFound": {"code": 420,
                    # "message": ..., "detail": ...}} and the like.
                    (name, err), = json.loads(resp.body).items()
                else:
                    err = json.loads(resp.body)["NeutronError"]
                    assert isinstance(err["type"], str)
                assert isinstance(err["message"], str)
            except Exception:  # noqa: BLE001
                self.failures.append(f"not a NeutronError: {where} -> {resp.text[:300]}")
        elif status in (200, 201) and resp.body and \
                resp.content_type == "application/json":
            self._learn(resp.json)

    def _learn(self, data):
        # Objects created on the way become targets of later requests.
        if not isinstance(data, dict):
            return
        for key, value in data.items():
            plural = {"network": "networks", "subnet": "subnets", "port": "ports",
                      "security_group": "security_groups",
                      "security_group_rule": "security_group_rules",
                      "router": "routers", "floatingip": "floatingips",
                      "port_forwarding": "port_forwardings",
                      "address_group": "address_groups", "subnetpool": "subnetpools",
                      "address_scope": "address_scopes",
                      "rbac_policy": "rbac_policies"}.get(key)
            if plural and isinstance(value, dict) and isinstance(value.get("id"), str):
                if len(self.ids[plural]) < 50:
                    self.ids[plural].append(value["id"])


@pytest.fixture
def api(make_api):
    """The application of the routes fuzzed: every service plugin on."""
    return make_api(service_plugins=SERVICE_PLUGINS)


def test_fuzzed_requests_get_no_5xx_and_leave_the_database_consistent(api, db_url):
    backend = db_url.split(":", 1)[0].split("+")[0]
    rng = random.Random(f"{SEED}-{backend}")
    fuzzer = Fuzzer(api, rng)
    fuzzer.setup()
    start = time.monotonic()
    for _ in range(REQUESTS):
        fuzzer.one()
    took = time.monotonic() - start
    hist = ", ".join(f"{k}: {v}" for k, v in sorted(fuzzer.statuses.items()))
    print(f"\nfuzz {backend} (seed {SEED}): {fuzzer.count} requests over {len(ROUTES)} "
          f"route/method pairs in {took:.1f} s; statuses {{{hist}}}; slowest "
          f"{fuzzer.slowest[0]:.2f} s ({fuzzer.slowest[1]}); failures {len(fuzzer.failures)}")
    assert not fuzzer.failures, "\n".join(fuzzer.failures[:30])
    consistency.assert_consistent(api.db.engine)
