"""The conformance kit: behavioural checks of the Networking API v2.0 that
any Neutron-compatible server can be run against (quantum-ovs-conformance).

It reads the extensions the server advertises and skips the checks of
what it does not; for each resource it checks the life cycle (create,
show, list, filter, fields, paging, sorting, tags, update, delete), error
answers (NeutronError bodies with the right types and codes) and, when it
can act as a second project (noauth), tenancy.  Everything it makes is
named ``conformance-<run>-...`` and deleted at the end.

Only the standard library: it is meant to be copied next to another
implementation as well.
"""

import http.client
import json
import urllib.parse
import uuid
from dataclasses import dataclass, field

PASS, FAIL, SKIP = "pass", "FAIL", "skip"


class CheckFailed(AssertionError):
    pass


class Skip(Exception):
    pass


@dataclass
class Result:
    resource: str
    check: str
    outcome: str
    detail: str = ""


class Client:
    """One caller: a token (Keystone) or a noauth project."""

    def __init__(self, url, token=None, project=None, roles="member", timeout=30):
        u = urllib.parse.urlsplit(url)
        self.scheme, self.host = u.scheme or "http", u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["X-Auth-Token"] = token
        if project:
            self.headers["X-Project-Id"] = project
            self.headers["X-Roles"] = roles
        self.project = project

    def request(self, method, path, body=None):
        cls = http.client.HTTPSConnection if self.scheme == "https" else \
            http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def want(resp, status, what):
    code, body = resp
    expect(code == status, f"{what}: HTTP {code}, expected {status}: {str(body)[:300]}")
    return body


def want_error(resp, status, types=None, what="request"):
    code, body = resp
    expect(code == status, f"{what}: HTTP {code}, expected {status}: {str(body)[:300]}")
    expect(isinstance(body, dict) and isinstance(body.get("NeutronError"), dict),
           f"{what}: not a NeutronError body: {str(body)[:300]}")
    err = body["NeutronError"]
    for k in ("type", "message", "detail"):
        expect(k in err, f"{what}: NeutronError without {k}")
    if types:
        expect(err["type"] in types, f"{what}: error type {err['type']}, expected one of "
                                     f"{sorted(types)}")
    return err


@dataclass
class Kind:
    """A resource the kit checks: its collection path, member name, the
    alias that advertises it (None: core), how to make one (``make(run,
    deps) -> body``), what to rename, and an error its create answers to a
    bad request."""
    collection: str
    member: str
    alias: object = None
    path: str = None
    needs: tuple = ()
    make: object = None
    not_found: tuple = ("NotFound",)
    taggable: bool = True
    extra: list = field(default_factory=list)

    @property
    def url(self):
        return "/v2.0/" + (self.path or self.collection)


def _net(run, deps):
    return {"name": f"conformance-{run}-net"}


def _subnet(run, deps):
    return {"name": f"conformance-{run}-subnet", "network_id": deps["networks"]["id"],
            "cidr": "10.213.0.0/24", "ip_version": 4}


def _port(run, deps):
    return {"name": f"conformance-{run}-port", "network_id": deps["networks"]["id"]}


def _router(run, deps):
    return {"name": f"conformance-{run}-router"}


def _group(run, deps):
    return {"name": f"conformance-{run}-sg", "description": "conformance"}


KINDS = [
    Kind("networks", "network", make=_net, not_found=("NetworkNotFound",)),
    Kind("subnets", "subnet", needs=("networks",), make=_subnet,
         not_found=("SubnetNotFound",)),
    Kind("ports", "port", needs=("networks", "subnets"), make=_port,
         not_found=("PortNotFound",)),
    Kind("routers", "router", alias="router", make=_router, not_found=("RouterNotFound",)),
    Kind("security_groups", "security_group", alias="security-group",
         path="security-groups", make=_group, not_found=("SecurityGroupNotFound",)),
]


class Kit:
    def __init__(self, client, other=None, run=None):
        self.c = client
        self.other = other  # a caller of another project, or None
        self.run = run or uuid.uuid4().hex[:8]
        self.results = []
        self.aliases = set()
        self.made = []  # (url, id) to delete at the end, newest last

    # ------------------------------------------------------------ plumbing
    def record(self, resource, check, fn):
        try:
            detail = fn() or ""
            self.results.append(Result(resource, check, PASS, detail))
        except Skip as e:
            self.results.append(Result(resource, check, SKIP, str(e)))
        except CheckFailed as e:
            self.results.append(Result(resource, check, FAIL, str(e)))
        except Exception as e:  # noqa: BLE001 - a check that crashes fails
            self.results.append(Result(resource, check, FAIL, f"{type(e).__name__}: {e}"))

    def needs(self, alias):
        if alias and alias not in self.aliases:
            raise Skip(f"{alias} not advertised")

    def create(self, kind, body):
        out = want(self.c.request("POST", kind.url, {kind.member: body}), 201,
                   f"create {kind.member}")[kind.member]
        self.made.append((kind.url, out["id"]))
        return out

    def delete(self, url, id_):
        code, _ = self.c.request("DELETE", f"{url}/{id_}")
        if (url, id_) in self.made:
            self.made.remove((url, id_))
        return code

    def cleanup(self):
        for url, id_ in reversed(list(self.made)):
            if url.endswith("/routers"):
                self._detach_all(id_)
            self.c.request("DELETE", f"{url}/{id_}")
        self.made.clear()

    def _detach_all(self, router_id):
        code, body = self.c.request(
            "GET", f"/v2.0/ports?device_id={router_id}&device_owner=network:router_interface")
        for p in (body or {}).get("ports", []) if code == 200 else []:
            self.c.request("PUT", f"/v2.0/routers/{router_id}/remove_router_interface",
                           {"port_id": p["id"]})

    # ------------------------------------------------------------ the run
    def run_all(self):
        def versions():
            code, body = self.c.request("GET", "/")
            expect(code in (200, 300), f"GET /: HTTP {code}")
            ids = [v.get("id") for v in (body or {}).get("versions", [])]
            expect("v2.0" in ids, f"no v2.0 among the versions {ids}")
        self.record("api", "versions list v2.0", versions)

        def extensions():
            body = want(self.c.request("GET", "/v2.0/extensions"), 200, "list extensions")
            exts = body.get("extensions")
            expect(isinstance(exts, list), "extensions is not a list")
            for e in exts:
                for k in ("alias", "name", "description"):
                    expect(k in e, f"extension without {k}: {e}")
            self.aliases = {e["alias"] for e in exts}
            return f"{len(exts)} advertised"
        self.record("api", "extensions", extensions)

        def unknown_extension():
            want_error(self.c.request("GET", "/v2.0/extensions/no-such-alias"), 404,
                       what="an unknown extension")
        self.record("api", "unknown extension is 404", unknown_extension)

        deps = {}
        try:
            for kind in KINDS:
                self.check_kind(kind, deps)
            self.check_ports_and_networks(deps)
            self.check_router_interfaces(deps)
            self.check_security_group_rules()
        finally:
            self.cleanup()
        return self.results

    def check_kind(self, kind, deps):
        r = kind.collection
        state = {}

        def needs():
            self.needs(kind.alias)
            for d in kind.needs:
                if d not in deps:
                    raise Skip(f"no {d} to make it on")

        def create():
            needs()
            obj = self.create(kind, kind.make(self.run, deps))
            for k in ("id", "name"):
                expect(k in obj, f"created {kind.member} has no {k}")
            expect(obj["name"] == kind.make(self.run, deps)["name"], "name not kept")
            if self.c.project and "project_id" in obj:
                expect(obj["project_id"] == self.c.project,
                       f"project_id {obj['project_id']}, expected {self.c.project}")
            if "tenant_id" in obj and "project_id" in obj:
                expect(obj["tenant_id"] == obj["project_id"], "tenant_id != project_id")
            state["obj"] = obj
            deps[r] = obj
        self.record(r, "create", create)

        def have():
            needs()
            if "obj" not in state:
                raise Skip("create failed")
            return state["obj"]

        def show():
            obj = have()
            got = want(self.c.request("GET", f"{kind.url}/{obj['id']}"), 200, "show")
            expect(got[kind.member]["id"] == obj["id"], "show answers another object")
        self.record(r, "show", show)

        def listing():
            obj = have()
            body = want(self.c.request("GET", kind.url), 200, "list")
            expect(obj["id"] in [o["id"] for o in body[r]], "not in the list")
        self.record(r, "list", listing)

        def filtering():
            obj = have()
            q = urllib.parse.urlencode({"name": obj["name"]})
            body = want(self.c.request("GET", f"{kind.url}?{q}"), 200, "filter by name")
            names = {o["name"] for o in body[r]}
            expect(names == {obj["name"]}, f"name filter answered {sorted(names)[:5]}")
            q = urllib.parse.urlencode({"id": obj["id"]})
            body = want(self.c.request("GET", f"{kind.url}?{q}"), 200, "filter by id")
            expect([o["id"] for o in body[r]] == [obj["id"]], "id filter")
        self.record(r, "filter", filtering)

        def fields():
            obj = have()
            body = want(self.c.request("GET", f"{kind.url}/{obj['id']}?fields=id&fields=name"),
                        200, "show with fields")
            expect(set(body[kind.member]) == {"id", "name"},
                   f"fields=id,name showed {sorted(body[kind.member])}")
        self.record(r, "fields", fields)

        def paging():
            obj = have()
            self.needs("pagination")
            body = want(self.c.request("GET", f"{kind.url}?limit=1"), 200, "list limit=1")
            expect(len(body[r]) <= 1, f"limit=1 answered {len(body[r])}")
            links = {ln["rel"]: ln["href"] for ln in body.get(f"{r}_links", [])}
            seen, pages = [o["id"] for o in body[r]], 0
            while "next" in links and pages < 200:
                nxt = urllib.parse.urlsplit(links["next"])
                body = want(self.c.request("GET", f"{nxt.path}?{nxt.query}"), 200, "next page")
                if not body[r]:
                    break
                seen += [o["id"] for o in body[r]]
                links = {ln["rel"]: ln["href"] for ln in body.get(f"{r}_links", [])}
                pages += 1
            expect(obj["id"] in seen, "paging by one never reached the object")
            expect(len(seen) == len(set(seen)), "a page repeated an object")
        self.record(r, "pagination", paging)

        def sorting():
            have()
            self.needs("sorting")
            for d in ("asc", "desc"):
                body = want(self.c.request("GET", f"{kind.url}?sort_key=id&sort_dir={d}"), 200,
                            f"sort {d}")
                ids = [o["id"] for o in body[r]]
                expect(ids == sorted(ids, reverse=d == "desc"), f"not sorted {d}")
            want_error(self.c.request("GET", f"{kind.url}?sort_key=no_such_key"), 400,
                       what="sort_key that is no attribute")
        self.record(r, "sorting", sorting)

        def tags():
            obj = have()
            self.needs("standard-attr-tag")
            base = f"{kind.url}/{obj['id']}/tags"
            want(self.c.request("PUT", base, {"tags": ["red", "blue"]}), 200, "set tags")
            got = want(self.c.request("GET", base), 200, "get tags")
            expect(sorted(got["tags"]) == ["blue", "red"], f"tags {got['tags']}")
            code, _ = self.c.request("PUT", f"{base}/green")
            expect(code == 201, f"add a tag: HTTP {code}")
            body = want(self.c.request("GET", f"{kind.url}?tags=green&id={obj['id']}"), 200,
                        "filter by tag")
            expect([o["id"] for o in body[r]] == [obj["id"]], "tags filter")
            code, _ = self.c.request("DELETE", f"{base}/green")
            expect(code == 204, f"remove a tag: HTTP {code}")
            want_error(self.c.request("GET", f"{base}/green"), 404, what="a removed tag")
        self.record(r, "tags", tags)

        def update():
            obj = have()
            new = obj["name"] + "-renamed"
            got = want(self.c.request("PUT", f"{kind.url}/{obj['id']}",
                                      {kind.member: {"name": new}}), 200, "update")
            expect(got[kind.member]["name"] == new, "name not changed")
            if "revision-number" in self.aliases or "standard-attr-revisions" in self.aliases:
                if "revision_number" in obj:
                    expect(got[kind.member]["revision_number"] > obj["revision_number"],
                           "revision_number did not grow")
            obj["name"] = new
        self.record(r, "update", update)

        def bad_attribute():
            have()
            want_error(self.c.request("POST", kind.url,
                                      {kind.member: dict(kind.make(self.run, deps),
                                                         no_such_attribute=1)}), 400,
                       what="create with an unknown attribute")
        self.record(r, "unknown attribute is 400", bad_attribute)

        def bad_body():
            needs()
            code, body = self.c.request("POST", kind.url, {"not-" + kind.member: {}})
            want_error((code, body), 400, what="create without the resource key")
        self.record(r, "malformed body is 400", bad_body)

        def readonly():
            obj = have()
            want_error(self.c.request("PUT", f"{kind.url}/{obj['id']}",
                                      {kind.member: {"id": str(uuid.uuid4())}}), 400,
                       what="update of the id")
        self.record(r, "read-only attribute is 400", readonly)

        def not_found():
            needs()
            want_error(self.c.request("GET", f"{kind.url}/{uuid.uuid4()}"), 404,
                       set(kind.not_found) | {"NotFound", "HTTPNotFound"}, "an unknown id")
        self.record(r, "unknown id is 404", not_found)

        def tenancy():
            obj = have()
            if self.other is None:
                raise Skip("no second project (use --noauth-project)")
            want_error(self.other.request("GET", f"{kind.url}/{obj['id']}"), 404,
                       what="another project's object")
            body = want(self.other.request("GET", kind.url), 200, "the other's list")
            expect(obj["id"] not in [o["id"] for o in body[r]],
                   "another project lists it")
            code, _ = self.other.request("PUT", f"{kind.url}/{obj['id']}",
                                         {kind.member: {"name": "stolen"}})
            expect(code == 404, f"another project's update: HTTP {code}")
            code, _ = self.other.request("DELETE", f"{kind.url}/{obj['id']}")
            expect(code == 404, f"another project's delete: HTTP {code}")
        self.record(r, "tenancy", tenancy)

    def check_ports_and_networks(self, deps):
        def subnet_values():
            if "subnets" not in deps:
                raise Skip("no subnet")
            s = deps["subnets"]
            expect(s["gateway_ip"] == "10.213.0.1", f"gateway_ip {s['gateway_ip']}")
            expect(s.get("allocation_pools") == [{"start": "10.213.0.2",
                                                  "end": "10.213.0.254"}],
                   f"allocation_pools {s.get('allocation_pools')}")
        self.record("subnets", "default gateway and pool", subnet_values)

        def bad_cidr():
            if "networks" not in deps:
                raise Skip("no network")
            want_error(self.c.request("POST", "/v2.0/subnets", {"subnet": {
                "network_id": deps["networks"]["id"], "cidr": "10.213.1.0/33",
                "ip_version": 4}}), 400, what="a bad CIDR")
        self.record("subnets", "bad cidr is 400", bad_cidr)

        def port_address():
            if "ports" not in deps or "subnets" not in deps:
                raise Skip("no port")
            p = deps["ports"]
            ips = p.get("fixed_ips") or []
            expect(len(ips) == 1 and ips[0]["subnet_id"] == deps["subnets"]["id"],
                   f"fixed_ips {ips}")
            expect(ips[0]["ip_address"].startswith("10.213.0."), f"address {ips}")
            mac = p.get("mac_address", "")
            expect(len(mac) == 17 and mac == mac.lower(), f"mac_address {mac}")
        self.record("ports", "address from the subnet", port_address)

        def address_in_use():
            if "ports" not in deps:
                raise Skip("no port")
            p = deps["ports"]
            want_error(self.c.request("POST", "/v2.0/ports", {"port": {
                "network_id": p["network_id"], "fixed_ips": [
                    {"ip_address": p["fixed_ips"][0]["ip_address"]}]}}), 409,
                {"IpAddressInUse", "IpAddressAlreadyAllocated"}, "a used address")
        self.record("ports", "address in use is 409", address_in_use)

        def network_in_use():
            if "ports" not in deps:
                raise Skip("no port")
            want_error(self.c.request("DELETE", f"/v2.0/networks/{deps['networks']['id']}"),
                       409, {"NetworkInUse"}, "delete of a network with a port")
        self.record("networks", "in use is 409", network_in_use)

        def port_filter():
            if "ports" not in deps:
                raise Skip("no port")
            net = deps["networks"]["id"]
            body = want(self.c.request("GET", f"/v2.0/ports?network_id={net}"), 200,
                        "ports of the network")
            expect(deps["ports"]["id"] in [p["id"] for p in body["ports"]],
                   "network_id filter")
        self.record("ports", "network_id filter", port_filter)

    def check_router_interfaces(self, deps):
        def interface():
            self.needs("router")
            if "routers" not in deps or "subnets" not in deps:
                raise Skip("no router or subnet")
            rid, sid = deps["routers"]["id"], deps["subnets"]["id"]
            info = want(self.c.request("PUT", f"/v2.0/routers/{rid}/add_router_interface",
                                       {"subnet_id": sid}), 200, "add an interface")
            expect(info.get("subnet_id") == sid and info.get("port_id"), f"answer {info}")
            port = want(self.c.request("GET", f"/v2.0/ports/{info['port_id']}"), 200,
                        "the interface port")["port"]
            expect(port["device_id"] == rid, "the port's device_id is not the router")
            expect(port["fixed_ips"][0]["ip_address"] == "10.213.0.1",
                   f"interface address {port['fixed_ips']}")
            want_error(self.c.request("DELETE", f"/v2.0/routers/{rid}"), 409,
                       {"RouterInUse"}, "delete of a router with an interface")
            want(self.c.request("PUT", f"/v2.0/routers/{rid}/remove_router_interface",
                                {"subnet_id": sid}), 200, "remove the interface")
        self.record("routers", "interface life cycle", interface)

    def check_security_group_rules(self):
        def rules():
            self.needs("security-group")
            g = want(self.c.request("POST", "/v2.0/security-groups", {"security_group": {
                "name": f"conformance-{self.run}-rules"}}), 201, "create a group")
            g = g["security_group"]
            self.made.append(("/v2.0/security-groups", g["id"]))
            rule = want(self.c.request("POST", "/v2.0/security-group-rules", {
                "security_group_rule": {"security_group_id": g["id"], "direction": "ingress",
                                        "protocol": "tcp", "port_range_min": 22,
                                        "port_range_max": 22, "ethertype": "IPv4"}}), 201,
                "create a rule")["security_group_rule"]
            expect(rule["protocol"] == "tcp" and rule["port_range_min"] == 22, f"{rule}")
            want_error(self.c.request("POST", "/v2.0/security-group-rules", {
                "security_group_rule": {"security_group_id": g["id"], "direction": "ingress",
                                        "protocol": "tcp", "port_range_min": 22,
                                        "port_range_max": 22, "ethertype": "IPv4"}}), 409,
                {"SecurityGroupRuleExists"}, "the same rule again")
            want_error(self.c.request("POST", "/v2.0/security-group-rules", {
                "security_group_rule": {"security_group_id": g["id"], "direction": "sideways"}}),
                400, what="a bad direction")
            body = want(self.c.request(
                "GET", f"/v2.0/security-group-rules?security_group_id={g['id']}"), 200,
                "rules of the group")
            expect(rule["id"] in [x["id"] for x in body["security_group_rules"]],
                   "security_group_id filter")
            code, _ = self.c.request("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
            expect(code == 204, f"delete a rule: HTTP {code}")
        self.record("security_groups", "rules life cycle", rules)


def table(results):
    """The results as a table per resource, and the closing count line."""
    lines = []
    width = max([len(r.check) for r in results] + [10])
    order = list(dict.fromkeys(r.resource for r in results))
    for current in order:
        lines.append(f"\n{current}")
        for r in (r for r in results if r.resource == current):
            detail = f"  {r.detail}" if r.detail else ""
            lines.append(f"  {r.check:<{width}}  {r.outcome:<4}{detail[:200]}")
    n = {o: sum(1 for r in results if r.outcome == o) for o in (PASS, FAIL, SKIP)}
    lines.append(f"\n{n[PASS]} passed, {n[FAIL]} failed, {n[SKIP]} skipped")
    return "\n".join(lines)


def run(url, token=None, noauth_project=None, timeout=30):
    """Run every check; the results."""
    client = Client(url, token=token, project=noauth_project, timeout=timeout)
    other = None
    if noauth_project and not token:
        other = Client(url, project=noauth_project + "-other", timeout=timeout)
    return Kit(client, other).run_all()
