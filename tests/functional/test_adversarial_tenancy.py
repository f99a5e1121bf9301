"""An adversarial tenancy suite (issue 11), generated from what the API serves.

Two projects share one server: the *victim* (``adv-a``) owns one object of
every served collection (tagged, with a port binding, a quota and an agent
on its host); the *attacker* (``adv-b``, as a member and as a reader) owns
its own.  The cases are generated at import time from the application
itself (``make_app`` with every extension: its controllers, their
attribute maps and every route of its mapper, Essex v1.x included), so a
collection or route registered tomorrow gets cases without editing this
file; ``test_every_served_route_has_cases`` fails when the generator cannot
cover one (a route without a request body sample, a collection without a
maker, an ``*_id`` attribute it cannot resolve).

What is asserted, for every route and method, and for every collection:

- a request naming the victim's objects (ids, tags, hosts, projects in the
  path) answers exactly as the same request naming objects that do not
  exist: same status, same body once the names are swapped (so nothing is
  revealed through the status, the error type, its message or extra
  fields), always a 4xx, and the victim's objects are unchanged;
- listings never contain the victim's objects, whatever the filter (each
  filterable attribute, set to each victim object's value, tags and
  ``fixed_ips`` included), ``fields``, ``sort_key`` or ``marker``; a marker
  of the victim's answers as a marker that does not exist; the attacker's
  listings, pages and pagination links are the same before and after the
  victim's objects exist;
- creates and updates that smuggle a victim's id into a reference
  attribute answer as with an id that does not exist, and make nothing;
- filtering on an attribute the caller cannot see reveals nothing of it;
- on a network of the victim's shared with every project, the victim's
  ports and the addresses they hold stay hidden, and the victim (the
  network's owner) cannot change, plug, unplug or rebind the attacker's
  port on it, nor delete the network under it (v2.0 and v1.x);
- with ``auth_strategy = keystone`` a request without a token is 401 on
  every route.
"""

import copy
import json
import re
import statistics
import time
import types
import urllib.parse
import uuid

import pytest
import sqlalchemy as sa
import webtest

from quantum_ovs import config, extensions
from quantum_ovs.api.router import make_app
from quantum_ovs.db import models
from quantum_ovs.service import build
from tests.functional.conftest import BACKENDS, SERVER_FIXTURES, Client, make_conf

VICTIM, ATTACKER, ADMIN = "adv-a", "adv-b", "adv-admin"
NOBODY = "adv-z"  # a project that owns nothing
ROLES = ("member", "reader")
SECRET_TAG, ABSENT_TAG = "a-secret", "z-absent"
VICTIM_HOST, ABSENT_HOST, ATTACKER_HOST = "host-a", "host-z", "host-b"
FMT = re.compile(r"\{fmt:[^}]*\}")
# The path parameters World.param_values fills.
KNOWN_PARAMS = {"tenant_id", "project_id", "tag", "host", "network_id", "port_id", "id",
                "router_id", "fip_id", "pf_id", "agent_id", "group_id", "pool_id"}
# Every service plugin on: what it serves gets cases too.
SERVICE_PLUGINS = ["router"]
PARAM = re.compile(r"\{(\w+)\}")

# Routes that are no project's: the version documents, the extension list,
# and the agent API (agents present per-host credentials; confinement is
# tests/functional/test_agent_confinement.py).
UNSCOPED = re.compile(r"^/$|^/openapi\.json$|^/v2\.0/?$|^/v2\.0/extensions|^/agent-api/"
                      r"|^/v2\.0/default[-_]security[-_]group[-_]rules")
# Collections that are no project's: the default security group rules, the
# templates of every project's new groups (administrators write them, every
# reader reads them: tests/functional/test_default_sg_rules.py).
GLOBAL_COLLECTIONS = {"default_security_group_rules"}

# Attributes ending in _id (or named like a collection) that name no
# object of another project.
NOT_REFERENCES = {"project_id", "tenant_id", "device_id", "segment_id",
                  "provider:segmentation_id", "binding:host_id"}
# References whose name does not say the collection.
REFERENCE_ALIASES = {"remote_group_id": "security_groups",
                     "remote_address_group_id": "address_groups",
                     "floating_network_id": "networks",
                     "object_id": "networks"}  # (of the rbac_policies MAKERS makes)
# References inside list values: (collection, attribute) -> (key, target).
NESTED_REFERENCES = {("ports", "fixed_ips"): ("subnet_id", "subnets")}
# Values for required attributes that are not references.
SAMPLES = {"cidr": "10.77.0.0/24", "ip_version": 4, "direction": "ingress",
           "name": "adv", "object_type": "network", "action": "access_as_shared",
           "target_tenant": NOBODY, "prefixes": ["10.78.0.0/24"]}

# Request bodies of the write routes that are not the generic collections:
# (regex on the route's path, method) -> body.  A new write route without
# one fails test_every_served_route_has_cases.
BODIES = [
    (r"/tags$", "PUT", {"tags": ["pwned"]}),
    (r"/tags/\{tag\}$", "PUT", None),
    (r"/bindings$", "POST", {"binding": {"host": ABSENT_HOST}}),
    (r"/bindings/\{host\}$", "PUT", {"binding": {"vnic_type": "normal"}}),
    (r"/activate$", "PUT", None),
    (r"^/v2\.0/quotas/\{project_id\}$", "PUT", {"quota": {"network": 1}}),
    (r"^/v1\.\d/tenants/\{tenant_id\}/networks$", "POST", {"network": {"name": "pwned"}}),
    (r"/networks/\{network_id\}$", "PUT", {"network": {"name": "pwned"}}),
    (r"/ports$", "POST", {"port": {"state": "DOWN"}}),
    (r"/ports/\{port_id\}$", "PUT", {"port": {"state": "DOWN"}}),
    (r"/attachment$", "PUT", {"attachment": {"id": "vm-pwned"}}),
    (r"/(add|remove)_router_interface$", "PUT",
     {"subnet_id": "00000000-0000-4000-8000-000000000000"}),
    (r"/(add|remove)_extraroutes$", "PUT", {"router": {"routes": []}}),
    (r"/port_forwardings$", "POST", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": "00000000-0000-4000-8000-000000000000",
        "internal_ip_address": "10.1.0.9", "internal_port": 80, "external_port": 8080}}),
    (r"/port_forwardings/\{pf_id\}$", "PUT", {"port_forwarding": {"description": "pwned"}}),
    (r"/(add|remove)_addresses$", "PUT", {"addresses": ["10.66.0.1/32"]}),
    (r"/(add|remove)_prefixes$", "PUT", {"prefixes": ["10.89.0.0/24"]}),
    (r"/onboard_network_subnets$", "PUT",
     {"network_id": "00000000-0000-4000-8000-000000000000"}),
]

# The methods the generic dispatcher serves for each kind of route.
ACTION_METHODS = {"collection": ("GET", "HEAD", "POST"),
                  "member": ("GET", "HEAD", "PUT", "DELETE"),
                  "tags": ("GET", "PUT", "DELETE"), "tag": ("GET", "PUT", "DELETE")}


# ------------------------------------------------------------------ the routes served
def _inner_api(app):
    while not hasattr(app, "controllers"):
        app = app.app
    return app


def _served(conf=None, plugin=None):
    """The API object make_app builds (without a database when no plugin
    is given: the routes and attribute maps only)."""
    if conf is None:
        conf = config.make_conf([])
        conf.set_override("service_plugins", SERVICE_PLUGINS)
    plugin = plugin or types.SimpleNamespace(extensions_set_up=True, db=None)
    return _inner_api(make_app(conf, plugin, extensions.load()))


def route_cases(api):
    """[(path template, method, collection or None, action)] of every
    route the application serves to projects."""
    extra = dict((f"extra{i}", h) for i, (_, h) in enumerate(api.extra_routes))
    out = []
    for r in api.mapper.matchlist:
        path = FMT.sub("", r.routepath)
        if UNSCOPED.search(path):
            continue
        action = r.defaults.get("action")
        if action == "extra":
            methods = sorted(extra[r.defaults["extra"]])
        else:
            methods = ACTION_METHODS[action]
        for m in methods:
            out.append((path, m, r.defaults.get("collection"), action))
    return out


_API = _served()
COLLECTIONS = sorted(c for c in _API.controllers if c not in GLOBAL_COLLECTIONS)
ROUTES = route_cases(_API)
PARAM_ROUTES = [c for c in ROUTES if PARAM.search(c[0])]
CREATE_ROUTES = [c for c in ROUTES if c[3] == "collection"]


def _route_id(case):
    return f"{case[1]} {case[0]}"


def body_for(path, method, collection=None):
    """The request body of a write route (KeyError: none known)."""
    if method not in ("PUT", "POST"):
        return None
    if collection is not None and method == "PUT" and PARAM.sub("", path).endswith("/"):
        attrs = _API.controllers[collection].attrs
        name = next(k for k in ("name", "description", "admin_state_up", "target_tenant")
                    if k in attrs and attrs[k].allow_put)
        value = True if name == "admin_state_up" else "pwned"
        return {_API.schema.singular[collection]: {name: value}}
    for pattern, m, body in BODIES:
        if m == method and re.search(pattern, path):
            return body
    raise KeyError(f"no request body for {method} {path}: add one to BODIES")


def reference_of(collection, name):
    """The collection an attribute names objects of, or None."""
    if name in NOT_REFERENCES:
        return None
    if name in REFERENCE_ALIASES:
        return REFERENCE_ALIASES[name]
    if name in COLLECTIONS and name != collection:
        return name
    if name.endswith("_id"):
        for c, singular in _API.schema.singular.items():
            if singular == name[:-3] and c in COLLECTIONS:
                return c
    return None


def references(collection):
    """[(attribute, nested key or None, target collection)]."""
    out = []
    for name in _API.controllers[collection].attrs:
        if (collection, name) in NESTED_REFERENCES:
            key, target = NESTED_REFERENCES[(collection, name)]
            out.append((name, key, target))
        else:
            target = reference_of(collection, name)
            if target:
                out.append((name, None, target))
    return out


def unresolved_references():
    bad = []
    for c in COLLECTIONS:
        for name in _API.controllers[c].attrs:
            looks = name.endswith("_id") or name in COLLECTIONS
            if looks and name not in NOT_REFERENCES and name != "id" and \
                    (c, name) not in NESTED_REFERENCES and reference_of(c, name) is None:
                bad.append(f"{c}.{name}")
    return bad


# ------------------------------------------------------------------ the world
def _make_network(api, project, objs):
    return api.network(project=project, name=f"net-{project}")


def _make_subnet(api, project, objs):
    cidr = "10.2.0.0/24" if project == VICTIM else "10.1.0.0/24"
    return api.subnet(objs["networks"]["id"], cidr=cidr, project=project)


def _make_port(api, project, objs):
    host = VICTIM_HOST if project == VICTIM else ATTACKER_HOST
    port = api.port(objs["networks"]["id"], project=project, device_owner="compute:nova",
                    device_id=f"vm-{project}", name=f"port-{project}",
                    security_groups=[objs["security_groups"]["id"]])
    return api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": host}},
                   project=ADMIN, admin=True, status=200).data["port"]


def _make_security_group(api, project, objs):
    return api.post("/v2.0/security-groups", {"security_group": {"name": f"sg-{project}"}},
                    project=project, status=201).data["security_group"]


def _make_security_group_rule(api, project, objs):
    sg = objs["security_groups"]["id"]
    return api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_group_id": sg}},
        project=project, status=201).data["security_group_rule"]


def _make_router(api, project, objs):
    router = api.post("/v2.0/routers", {"router": {"name": f"router-{project}"}},
                      project=project, status=201).data["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface",
            {"subnet_id": objs["subnets"]["id"]}, project=project, status=200)
    return api.put(f"/v2.0/routers/{router['id']}", {"router": {"routes": [
        {"destination": "192.168.7.0/24", "nexthop": objs["subnets"]["cidr"][:-4] + "77"}]}},
        project=project, status=200).data["router"]


def _make_floatingip(api, project, objs):
    """A floating IP with a port forwarding to the project's port, through
    its router's gateway on an external network (an administrator's)."""
    ext = getattr(api, "adv_external", None)
    if ext is None:
        # (the cloud's, not in a project whose name holds the victim's)
        ext = api.adv_external = api.post("/v2.0/networks", {"network": {
            "name": "public", "router:external": True, "tenant_id": "cloud-ops"}},
            project=ADMIN, admin=True, status=201).data["network"]
        api.subnet(ext["id"], cidr="172.24.4.0/24", project=ADMIN, admin=True,
                   tenant_id="cloud-ops")
    router = objs["routers"]["id"]
    api.put(f"/v2.0/routers/{router}", {"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}, project=project, status=200)
    fip = api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}},
                   project=project, status=201).data["floatingip"]
    port = objs["ports"]
    api.post(f"/v2.0/floatingips/{fip['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": port["id"], "internal_port": 22,
        "internal_ip_address": port["fixed_ips"][0]["ip_address"], "external_port": 2222}},
        project=project, status=201)
    return api.get(f"/v2.0/floatingips/{fip['id']}", project=project,
                   status=200).data["floatingip"]


def _make_agent(api, project, objs):
    if project != VICTIM:
        return None  # agents belong to no project; the attacker has none
    from quantum_ovs.db import agents
    api.db.write(lambda s: agents.register(s, 75, VICTIM_HOST, {"tunnel_types": ["vxlan"]},
                                           tunnel_ip="192.0.2.10"))
    return api.get("/v2.0/agents", project=ADMIN, admin=True, status=200).data["agents"][0]


def _make_rbac_policy(api, project, objs):
    """The project's network shared with a third project (neither the
    attacker nor the victim)."""
    return api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": objs["networks"]["id"],
        "action": "access_as_shared", "target_tenant": f"third-of-{project}"}},
        project=project, status=201).data["rbac_policy"]


# In creation order; a served collection without a maker fails
# test_every_served_route_has_cases.
def _make_address_group(api, project, objs):
    return api.post("/v2.0/address-groups", {"address_group": {
        "name": f"ag-{project}", "addresses": ["10.66.0.1/32"]}},
        project=project, status=201).data["address_group"]


def _make_address_scope(api, project, objs):
    return api.post("/v2.0/address-scopes", {"address_scope": {
        "name": f"as-{project}", "ip_version": 4}},
        project=project, status=201).data["address_scope"]


def _make_subnetpool(api, project, objs):
    return api.post("/v2.0/subnetpools", {"subnetpool": {
        "name": f"pool-{project}", "prefixes": ["10.88.0.0/16"],
        "address_scope_id": objs["address_scopes"]["id"]}},
        project=project, status=201).data["subnetpool"]


MAKERS = {"networks": _make_network, "security_groups": _make_security_group,
          "address_groups": _make_address_group, "address_scopes": _make_address_scope,
          "subnetpools": _make_subnetpool,
          "subnets": _make_subnet, "ports": _make_port,
          "security_group_rules": _make_security_group_rule, "agents": _make_agent,
          "routers": _make_router, "floatingips": _make_floatingip,
          "rbac_policies": _make_rbac_policy}


def _make(api, project):
    objs = {}
    for c, maker in MAKERS.items():
        if c not in COLLECTIONS:
            continue
        objs[c] = maker(api, project, objs)
    return objs


def _fill(path, values):
    return PARAM.sub(lambda m: urllib.parse.quote(str(values[m.group(1)]), safe=""), path)


class World:
    def __init__(self, api, keystone_app):
        self.api = api
        self.keystone = keystone_app
        self.served = _inner_api(api.app.app)
        # collection -> the path of one of its tags
        self.taggable = {c: p for p, m, c, a in ROUTES if a == "tag" and m == "PUT"}
        # Phase 1: the attacker's objects, and what it sees of them.
        self.mine = _make(api, ATTACKER)
        for c, path in self.taggable.items():
            api.put(_fill(path, {"id": self.mine[c]["id"], "tag": "b-tag"}),
                    project=ATTACKER, status=201)
        # a second port, so that listings page
        self.mine_port2 = api.port(self.mine["networks"]["id"], project=ATTACKER,
                                   name="port2")
        # A network of the victim's shared with every project, and the
        # attacker's port on it: the one thing of the victim's the attacker
        # sees, and the attacker's port its owner sees but may not change.
        self.shared = api.post("/v2.0/networks", {"network": {
            "name": "shared-a", "shared": True, "tenant_id": VICTIM}}, project=ADMIN,
            admin=True, status=201).data["network"]
        self.shared_subnet = api.post("/v2.0/subnets", {"subnet": {
            "network_id": self.shared["id"], "cidr": "10.9.0.0/24", "ip_version": 4,
            "tenant_id": VICTIM}}, project=ADMIN, admin=True, status=201).data["subnet"]
        self.port_on_shared = api.port(self.shared["id"], project=ATTACKER,
                                       device_owner="compute:nova", device_id="vm-on-shared")
        self.seen = {self.shared["id"], self.shared_subnet["id"]}
        self.before = {(c, r): self.listings(c, r) for c in COLLECTIONS for r in ROLES}
        self.usage_before = self.usage()
        # Phase 2: the victim's.
        self.theirs = _make(api, VICTIM)
        for c, path in self.taggable.items():
            api.put(_fill(path, {"id": self.theirs[c]["id"], "tag": SECRET_TAG}),
                    project=VICTIM, status=201)
        api.put(f"/v2.0/quotas/{VICTIM}", {"quota": {"network": 37}}, project=ADMIN,
                admin=True, status=200)
        # the victim's own port on its shared network, which the attacker sees
        self.theirs_on_shared = api.port(self.shared["id"], project=VICTIM,
                                         device_owner="compute:nova", device_id="vm-a2")
        self.theirs = {c: (self.admin_get(c, o["id"]) if o else None)
                       for c, o in self.theirs.items()}
        self.baseline = self.snapshot()

    # -------------------------------------------------------------- helpers
    def as_(self, role, method, path, body=None, project=ATTACKER, **kw):
        return self.api.request(method, path, body, project=project,
                                headers={"X-Roles": role}, **kw)

    def admin_get(self, c, id_):
        return self.api.get(f"{self.path(c)}/{id_}", project=ADMIN, admin=True,
                            status=200).data[_API.schema.singular[c]]

    @staticmethod
    def path(c):
        return f"/v2.0/{c}"

    def victim_ids(self, c):
        q = "" if c == "agents" else f"?project_id={VICTIM}"
        return {o["id"] for o in self.api.get(f"{self.path(c)}{q}", project=ADMIN,
                                              admin=True, status=200).data[c]} - self.seen

    def listings(self, c, role):
        """Everything the attacker sees of a collection: the listing, and
        its pages of one (forward) and two (backwards) with their links."""
        out = {"all": self.as_(role, "GET", self.path(c), status=200).json}
        pages, url = [], f"{self.path(c)}?limit=1"
        for _ in range(20):
            r = self.as_(role, "GET", url, status=200).json
            pages.append(r)
            nxt = [lk["href"] for lk in r.get(f"{c}_links", []) if lk["rel"] == "next"]
            if not nxt or not r[c]:
                break
            url = nxt[0].split("http://localhost", 1)[-1]
        out["pages"] = pages
        out["reverse"] = self.as_(role, "GET", f"{self.path(c)}?limit=2&page_reverse=True",
                                  status=200).json
        return out

    def usage(self):
        return self.as_("reader", "GET", f"/v2.0/quotas/{ATTACKER}/details",
                        status=200).data["quota"]

    def snapshot(self):
        """Every row of every table (a refused request changes nothing,
        anywhere)."""
        snap = {}
        with self.api.db.reader() as s:
            for name, table in sorted(models.Base.metadata.tables.items()):
                rows = [tuple(map(repr, r)) for r in s.execute(sa.select(table)).all()]
                snap[name] = sorted(rows)
        return snap

    def assert_unchanged(self, what):
        now = self.snapshot()
        changed = [k for k in now if now[k] != self.baseline.get(k)]
        if changed:
            self.baseline = now  # one failure, not every later case's
            raise AssertionError(f"{what} changed the tables {changed}")

    def param_values(self, collection):
        """(victim's, absent) values of every path parameter."""
        victim = {"tenant_id": VICTIM, "project_id": VICTIM, "tag": SECRET_TAG,
                  "host": VICTIM_HOST}
        absent = {"tenant_id": NOBODY, "project_id": NOBODY, "tag": ABSENT_TAG,
                  "host": ABSENT_HOST}
        for name, c in (("network_id", "networks"), ("port_id", "ports"),
                        ("router_id", "routers"), ("fip_id", "floatingips"),
                        ("agent_id", "agents"), ("group_id", "address_groups"),
                        ("pool_id", "subnetpools"),
                        ("id", collection)):
            if c in self.theirs and self.theirs[c]:
                victim[name] = self.theirs[c]["id"]
                absent[name] = str(uuid.uuid4())
        if self.theirs.get("floatingips"):
            victim["pf_id"] = self.theirs["floatingips"]["port_forwardings"][0]["id"]
            absent["pf_id"] = str(uuid.uuid4())
        return victim, absent


def same_answer(r1, r2, swaps):
    """Two answers are indistinguishable once the names in ``swaps``
    (victim's -> absent) are swapped in the first."""
    text = r1.text
    for a, b in swaps:
        text = text.replace(str(a), str(b))
    body1 = json.loads(text) if r1.content_type == "application/json" and text else text
    body2 = r2.json if r2.content_type == "application/json" and r2.text else r2.text
    return (r1.status_int, body1) == (r2.status_int, body2), \
        f"victim's: {r1.status} {r1.text[:400]}\nabsent: {r2.status} {r2.text[:400]}"


@pytest.fixture(scope="module", params=BACKENDS)
def world(request):
    if request.param == "sqlite":
        import os
        import tempfile
        d = tempfile.mkdtemp(prefix="qovs-adv-")
        url, drop = f"sqlite:///{os.path.join(d, 'test.sqlite')}", None
    else:
        server = request.getfixturevalue(SERVER_FIXTURES[request.param])
        name = "t" + uuid.uuid4().hex[:12]
        server.create_database(name)
        url, drop = server.url(name), (lambda: server.drop_database(name))
    conf = make_conf(url, service_plugins=SERVICE_PLUGINS)
    db, plugin, app = build(conf)
    api = Client(app, plugin, db)
    keystone = None
    try:
        import keystonemiddleware  # noqa: F401
        # (make_conf points 401 answers at a Keystone that need not run)
        kconf = make_conf(url, auth_strategy="keystone", service_plugins=SERVICE_PLUGINS)
        keystone = webtest.TestApp(make_app(kconf, plugin, extensions.load()))
    except ImportError:
        pass
    yield World(api, keystone)
    db.dispose()
    if drop:
        drop()


# ------------------------------------------------------------------ coverage
def test_every_served_route_has_cases():
    """Every collection and route the application serves is one the
    generator can make requests of (no database needed: a new collection
    or route fails here with what to add)."""
    missing = [c for c in COLLECTIONS if c not in MAKERS]
    assert not missing, f"no maker for the served collections {missing}: add one to MAKERS"
    for path, method, collection, _ in PARAM_ROUTES:
        body_for(path, method, collection)  # KeyError: add a body sample to BODIES
        unknown = set(PARAM.findall(path)) - KNOWN_PARAMS
        assert not unknown, f"{method} {path}: no victim's value for {unknown} " \
                            f"(World.param_values)"
    assert not unresolved_references(), "add to REFERENCE_ALIASES or NOT_REFERENCES"
    for c in COLLECTIONS:
        assert (f"/v2.0/{c}", "GET", c, "collection") in ROUTES


def test_generated_cases_are_those_of_the_running_app(world):
    real = world.served
    assert sorted(c for c in real.controllers if c not in GLOBAL_COLLECTIONS) == COLLECTIONS
    assert route_cases(real) == ROUTES
    for c in COLLECTIONS:
        victim, _ = world.param_values(c)
        assert set(victim) == KNOWN_PARAMS
    # everything the victim made is there, as another project's
    for c, o in world.theirs.items():
        if o is not None and "project_id" in o:
            assert o["project_id"] == VICTIM


# ------------------------------------------------------------------ every route by id
@pytest.mark.parametrize("case", PARAM_ROUTES, ids=_route_id)
def test_route_naming_victims_objects_reveals_and_changes_nothing(world, case):
    path, method, collection, _ = case
    body = body_for(path, method, collection)
    victim, absent = world.param_values(collection)
    variants = [(victim, absent)]
    project_params = {"tenant_id", "project_id"} & set(PARAM.findall(path))
    if project_params and set(PARAM.findall(path)) - project_params:
        # the attacker's own project in the path, the victim's objects below it
        v2, a2 = dict(victim), dict(absent)
        for p in project_params:
            v2[p] = a2[p] = ATTACKER
        variants.append((v2, a2))
    for role in ROLES:
        for vals, absent_vals in variants:
            swaps = [(vals[k], absent_vals[k]) for k in PARAM.findall(path)
                     if vals[k] != absent_vals[k]]
            r1 = world.as_(role, method, _fill(path, vals), copy.deepcopy(body))
            r2 = world.as_(role, method, _fill(path, absent_vals), copy.deepcopy(body))
            assert 400 <= r1.status_int < 500, (role, r1.status, r1.text[:500])
            ok, why = same_answer(r1, r2, swaps)
            assert ok, f"{role}: {why}"
    if method != "GET":
        world.assert_unchanged(f"{method} {path} as the attacker")


@pytest.mark.parametrize("c", COLLECTIONS)
def test_member_fields_of_victims_object_are_not_found(world, c):
    if world.theirs.get(c) is None:
        pytest.skip("no victim's object")
    victim = world.theirs[c]["id"]
    absent = str(uuid.uuid4())
    for suffix in (".json", "/", ".json?fields=id"):
        r1 = world.as_("member", "GET", f"{world.path(c)}/{victim}{suffix}")
        r2 = world.as_("member", "GET", f"{world.path(c)}/{absent}{suffix}")
        assert r1.status_int == 404, (suffix, r1.status)
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, why
    for name in world.served.controllers[c].attrs:
        q = f"?fields={urllib.parse.quote(name)}"
        r1 = world.as_("member", "GET", f"{world.path(c)}/{victim}{q}")
        r2 = world.as_("member", "GET", f"{world.path(c)}/{absent}{q}")
        assert r1.status_int == 404
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, why


@pytest.mark.parametrize("c", COLLECTIONS)
def test_conditional_write_on_victims_object_is_not_found(world, c):
    """If-Match: revision_number=N on another project's object answers
    as on an absent one, right revision or wrong (a 412 would say it
    exists, and its revision)."""
    if world.theirs.get(c) is None:
        pytest.skip("no victim's object")
    o = world.theirs[c]
    victim, absent = o["id"], str(uuid.uuid4())
    body = body_for(f"{world.path(c)}/{{id}}", "PUT", c)
    for rev in (o.get("revision_number", 0), o.get("revision_number", 0) + 7):
        h = {"If-Match": f"revision_number={rev}", "X-Roles": "member"}
        for method in ("PUT", "DELETE"):
            b = body if method == "PUT" else None
            r1 = world.api.request(method, f"{world.path(c)}/{victim}", b, project=ATTACKER,
                                   headers=h)
            r2 = world.api.request(method, f"{world.path(c)}/{absent}", b, project=ATTACKER,
                                   headers=h)
            assert r1.status_int == 404, (method, rev, r1.status, r1.text[:300])
            ok, why = same_answer(r1, r2, [(victim, absent)])
            assert ok, why
    world.assert_unchanged(f"conditional writes on {c}")


def test_quota_usage_counts_only_own_objects(world):
    """The attacker's usage is what it owns (its port on the victim's
    shared network included), the same before and after the victim's
    objects exist."""
    usage = world.usage()
    assert usage == world.usage_before
    for name, d in usage.items():
        c = name + "s"
        if c in COLLECTIONS:
            own = world.api.get(f"{world.path(c)}?project_id={ATTACKER}", project=ADMIN,
                                admin=True, status=200).data[c]
            assert d["used"] == len(own), (name, d, len(own))


# ------------------------------------------------------------------ listings
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("c", COLLECTIONS)
def test_listings_and_pages_unchanged_by_victims_objects(world, c, role):
    assert world.listings(c, role) == world.before[(c, role)]


def _filter_values(name, value):
    """Query values that match ``value`` of attribute ``name``."""
    if value is None or value == "" or isinstance(value, dict):
        return []
    if isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (int, str)):
        return [str(value)]
    out = []
    for item in value:
        if isinstance(item, dict):
            out += [f"{k}={val}" for k, val in item.items() if isinstance(val, str)]
            if isinstance(item.get("ip_address"), str):
                out.append(f"ip_address_substr={item['ip_address'].rsplit('.', 1)[0]}.")
        else:
            out += _filter_values(name, item)
    return out


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("c", COLLECTIONS)
def test_listing_filters_fields_sorts_never_show_victims_objects(world, c, role):
    attrs = world.served.controllers[c].attrs
    hidden = world.victim_ids(c)
    assert hidden
    mine = sorted(o["id"] for o in world.as_(role, "GET", world.path(c), status=200).data[c])
    assert not hidden & set(mine)
    theirs = world.theirs.get(c) or {}
    queries = []
    for name, a in attrs.items():
        if a.is_filter:
            for val in _filter_values(name, theirs.get(name)):
                queries.append([(name, val)])
                if name == "tags":
                    queries.append([("tags-any", val)])
        if a.is_visible:
            queries.append([("fields", "id"), ("fields", name)])
        if a.is_sort_key:
            for d in ("asc", "desc"):
                queries.append([("sort_key", name), ("sort_dir", d)])
    leaks = []
    for q in queries:
        r = world.as_(role, "GET", world.path(c) + "?" + urllib.parse.urlencode(q))
        if r.status_int != 200:
            assert r.status_int == 400, (q, r.status, r.text[:300])
            continue
        got = [o.get("id") for o in r.data[c]]
        if hidden & set(got):
            leaks.append(q)
        if q[0][0] in ("fields", "sort_key"):
            # as many objects as the plain listing, no more
            assert sorted(got) == mine, (q, got, mine)
    assert not leaks, f"victim's objects listed for {leaks}"
    world.assert_unchanged(f"listing {c}")  # reads write nothing


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("c", COLLECTIONS)
def test_victims_marker_is_a_marker_that_does_not_exist(world, c, role):
    if world.theirs.get(c) is None:
        pytest.skip("no victim's object")
    victim, absent = world.theirs[c]["id"], str(uuid.uuid4())
    for extra in ("", "&sort_key=id&sort_dir=desc", "&page_reverse=True"):
        r1 = world.as_(role, "GET", f"{world.path(c)}?limit=1&marker={victim}{extra}")
        r2 = world.as_(role, "GET", f"{world.path(c)}?limit=1&marker={absent}{extra}")
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, why


@pytest.mark.parametrize("c", COLLECTIONS)
def test_filters_on_attributes_hidden_from_the_caller_reveal_nothing(world, c):
    """On the attacker's own objects, an attribute only an admin sees
    (binding:host_id, provider:*) is not shown when asked for by name, and
    filters alike whatever the value asked."""
    attrs = world.served.controllers[c].attrs
    checked = 0
    for o in world.as_("member", "GET", world.path(c), status=200).data[c]:
        full = world.admin_get(c, o["id"])
        for name in sorted(set(full) - set(o)):
            # asked for by name, still not shown (in the listing and the object)
            q = urllib.parse.quote(name)
            for url in (f"{world.path(c)}?fields=id&fields={q}",
                        f"{world.path(c)}/{o['id']}?fields=id&fields={q}"):
                assert name not in world.as_("member", "GET", url, status=200).text, url
            a = attrs.get(name)
            if a is None or not a.is_filter or full[name] in (None, "") or \
                    isinstance(full[name], (dict, list)):
                continue
            true = str(full[name])
            wrong = str(full[name] + 1) if isinstance(full[name], int) and \
                not isinstance(full[name], bool) else true + "-x"
            q = urllib.parse.quote(name)
            r1 = world.as_("member", "GET", f"{world.path(c)}?{q}={urllib.parse.quote(true)}")
            r2 = world.as_("member", "GET", f"{world.path(c)}?{q}={urllib.parse.quote(wrong)}")
            ok, why = same_answer(r1, r2, [])
            assert ok, f"{name}: {why}"
            checked += 1
    if c == "ports":
        assert checked  # binding:host_id at least


@pytest.mark.parametrize("role", ROLES)
def test_others_ports_on_a_network_the_caller_sees(world, role):
    """A shared network is visible; its owner's ports on it are not."""
    theirs, shared = world.theirs_on_shared, world.shared["id"]
    absent = str(uuid.uuid4())
    got = world.as_(role, "GET", f"/v2.0/ports?network_id={shared}", status=200).data
    assert [p["id"] for p in got["ports"]] == [world.port_on_shared["id"]]
    for q in (f"device_id={theirs['device_id']}", f"mac_address={theirs['mac_address']}"):
        got = world.as_(role, "GET", f"/v2.0/ports?{q}", status=200).data["ports"]
        assert theirs["id"] not in {p["id"] for p in got}
    for method in ("GET", "PUT", "DELETE"):
        body = {"port": {"name": "pwned"}} if method == "PUT" else None
        r1 = world.as_(role, method, f"/v2.0/ports/{theirs['id']}", body)
        r2 = world.as_(role, method, f"/v2.0/ports/{absent}", body)
        assert r1.status_int == 404
        ok, why = same_answer(r1, r2, [(theirs["id"], absent)])
        assert ok, why
    # a network the caller sees and may use, but whose ports are not its own
    r = world.as_(role, "GET", f"/v2.0/networks/{shared}", status=200)
    assert theirs["id"] not in r.text
    world.assert_unchanged("reaching the victim's port on its shared network")


@pytest.mark.parametrize("role", ROLES)
def test_addresses_in_use_on_a_shared_network_are_not_revealed(world, role):
    """Asking for the address another project's port holds on a shared
    subnet answers as asking for a free one (the policy refuses both
    before any allocation is tried)."""
    sub = world.shared_subnet["id"]
    taken = world.theirs_on_shared["fixed_ips"][0]["ip_address"]
    free = "10.9.0.200"
    mine = world.port_on_shared["id"]
    for method, path, wrap in (
            ("POST", "/v2.0/ports", lambda ips: {"port": {"network_id": world.shared["id"],
                                                          "fixed_ips": ips}}),
            ("PUT", f"/v2.0/ports/{mine}", lambda ips: {"port": {"fixed_ips": ips}})):
        for ips in ([{"subnet_id": sub, "ip_address": "%s"}], [{"ip_address": "%s"}]):
            def body(ip):
                return wrap([{k: (ip if val == "%s" else val) for k, val in d.items()}
                             for d in ips])
            r1 = world.as_(role, method, path, body(taken))
            r2 = world.as_(role, method, path, body(free))
            assert 400 <= r1.status_int < 500, (r1.status, r1.text[:300])
            ok, why = same_answer(r1, r2, [(taken, free)])
            assert ok, why
    world.assert_unchanged("asking for addresses on the shared subnet")


# ------------------------------------------------------------------ smuggled ids
def _minimal_body(world, c):
    attrs = world.served.controllers[c].attrs
    body = {}
    refs = {n: t for n, k, t in references(c) if k is None}
    for name, a in attrs.items():
        if not a.required or (c, name) in _API.schema.server_defaults:
            continue
        if name in refs:
            body[name] = world.mine[refs[name]]["id"]
        else:
            assert name in SAMPLES, f"{c}.{name}: add a sample value to SAMPLES"
            body[name] = SAMPLES[name]
    return body


def _with_ref(body, name, key, value, attr):
    body = copy.deepcopy(body)
    if key is not None:
        body[name] = [{key: value}]
    elif attr.validate is not None and name in COLLECTIONS:
        body[name] = [value]  # a list of references (a port's security_groups)
    else:
        body[name] = value
    return body


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("c", [c for c in COLLECTIONS if any(
    _API.controllers[c].attrs[n].allow_post for n, _, _ in references(c))])
def test_create_with_victims_ids_in_body(world, c, role):
    attrs = world.served.controllers[c].attrs
    base = _minimal_body(world, c)
    singular = _API.schema.singular[c]
    before = world.api.count(c)
    for name, key, target in references(c):
        if not attrs[name].allow_post:
            continue
        victim, absent = world.theirs[target]["id"], str(uuid.uuid4())
        r1 = world.as_(role, "POST", world.path(c),
                       {singular: _with_ref(base, name, key, victim, attrs[name])})
        r2 = world.as_(role, "POST", world.path(c),
                       {singular: _with_ref(base, name, key, absent, attrs[name])})
        assert 400 <= r1.status_int < 500, (name, r1.status, r1.text[:400])
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, f"{name}: {why}"
    # the same inside a bulk, after a valid item: all or nothing, alike
    for name, key, target in references(c):
        if not attrs[name].allow_post:
            continue
        victim, absent = world.theirs[target]["id"], str(uuid.uuid4())
        r1 = world.as_(role, "POST", world.path(c), {c: [
            base, _with_ref(base, name, key, victim, attrs[name])]})
        r2 = world.as_(role, "POST", world.path(c), {c: [
            base, _with_ref(base, name, key, absent, attrs[name])]})
        assert 400 <= r1.status_int < 500, (name, r1.status, r1.text[:400])
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, f"bulk {name}: {why}"
    # naming the victim's project as a non-admin
    r1 = world.as_(role, "POST", world.path(c), {singular: dict(base, project_id=VICTIM)})
    r2 = world.as_(role, "POST", world.path(c), {singular: dict(base, project_id=NOBODY)})
    assert 400 <= r1.status_int < 500
    ok, why = same_answer(r1, r2, [(VICTIM, NOBODY)])
    assert ok, why
    assert world.api.count(c) == before
    world.assert_unchanged(f"POST {c} as the attacker's {role}")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("c", [c for c in COLLECTIONS if any(
    _API.controllers[c].attrs[n].allow_put for n, _, _ in references(c))])
def test_update_with_victims_ids_in_body(world, c, role):
    attrs = world.served.controllers[c].attrs
    singular = _API.schema.singular[c]
    mine = world.mine[c]["id"]
    before = world.admin_get(c, mine)
    for name, key, target in references(c):
        if not attrs[name].allow_put:
            continue
        victim, absent = world.theirs[target]["id"], str(uuid.uuid4())
        r1 = world.as_(role, "PUT", f"{world.path(c)}/{mine}",
                       {singular: _with_ref({}, name, key, victim, attrs[name])})
        r2 = world.as_(role, "PUT", f"{world.path(c)}/{mine}",
                       {singular: _with_ref({}, name, key, absent, attrs[name])})
        assert 400 <= r1.status_int < 500, (name, r1.status, r1.text[:400])
        ok, why = same_answer(r1, r2, [(victim, absent)])
        assert ok, f"{name}: {why}"
    assert world.admin_get(c, mine) == before
    world.assert_unchanged(f"PUT {c} as the attacker's {role}")


# ------------------------------------------------------------------ other routes
OTHER_ROUTES = [c for c in ROUTES if not PARAM.search(c[0]) and c[2] is None]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", OTHER_ROUTES, ids=_route_id)
def test_routes_without_ids_reveal_nothing_of_the_victim(world, case, role):
    """Routes that name nothing (the quota listing): refused, or nothing
    of the victim's in the answer."""
    path, method, _, _ = case
    r = world.as_(role, method, path, body_for(path, method))
    assert r.status_int < 500
    secrets = {VICTIM, SECRET_TAG} | {o["id"] for o in world.theirs.values() if o}
    assert not any(x in r.text for x in secrets), r.text[:500]
    if method != "GET":
        world.assert_unchanged(f"{method} {path} as the attacker")


# What Neutron's policy lets a network's owner do to other projects' ports
# on it: delete them (delete_port) and remove their tags (delete_port:tags).
NET_OWNER_MAY = re.compile(r"^DELETE (/v2\.0/ports/\{id\}(/tags(/\{tag\})?)?|"
                           r"/v1\.\d/tenants/\{tenant_id\}/networks/\{network_id\}/ports/"
                           r"\{port_id\})$")
# Write routes that name a port (or a network with ports) in their path.
PORT_WRITES = [c for c in PARAM_ROUTES if c[1] in ("PUT", "POST", "DELETE") and (
    "port_id" in PARAM.findall(c[0]) or c[2] == "ports" or
    (c[0].endswith("{network_id}") and c[1] == "DELETE"))
    and not NET_OWNER_MAY.match(_route_id(c))]


@pytest.mark.parametrize("case", PORT_WRITES, ids=_route_id)
def test_shared_network_owner_cannot_change_tenants_port(world, case):
    """The victim owns a shared network; the attacker's port on it is
    visible to the victim (as in Neutron) but not the victim's to change,
    plug, unplug, rebind or delete, through v2.0 or v1.x (the network's
    deletion included)."""
    path, method, collection, _ = case
    port = world.port_on_shared
    vals = {"tenant_id": VICTIM, "project_id": VICTIM, "network_id": world.shared["id"],
            "port_id": port["id"], "id": port["id"], "tag": "b-tag", "host": ATTACKER_HOST}
    if collection is not None and collection != "ports":
        pytest.skip("names no port")
    if collection == "ports":
        world.api.get(_fill("/v2.0/ports/{id}", vals), project=VICTIM, status=200)
    body = body_for(path, method, collection)
    for role in ROLES:
        r = world.as_(role, method, _fill(path, vals), copy.deepcopy(body), project=VICTIM)
        assert 400 <= r.status_int < 500, (role, r.status, r.text[:500])
    world.assert_unchanged(f"{method} {path} by the shared network's owner")


# ------------------------------------------------------------------ Essex v1.x
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_essex_listings_of_own_tenant_show_no_victims_objects(world, version):
    api, theirs = world.api, world.theirs
    hidden = {theirs["networks"]["id"], theirs["ports"]["id"]}
    for suffix in ("", "/detail"):
        r = api.get(f"/v{version}/tenants/{ATTACKER}/networks{suffix}", project=ATTACKER,
                    status=200)
        assert not any(h in r.text for h in hidden), r.text
    net = world.mine["networks"]["id"]
    for suffix in ("", "/detail"):
        r = api.get(f"/v{version}/tenants/{ATTACKER}/networks/{net}/ports{suffix}",
                    project=ATTACKER, status=200)
        assert not any(h in r.text for h in hidden), r.text
    # an attachment id the victim uses neither blocks a plug nor shows
    port = world.mine_port2["id"]
    r = api.put(f"/v{version}/tenants/{ATTACKER}/networks/{net}/ports/{port}/attachment",
                {"attachment": {"id": theirs["ports"]["device_id"]}}, project=ATTACKER)
    assert r.status_int == 204, r.text
    api.delete(f"/v{version}/tenants/{ATTACKER}/networks/{net}/ports/{port}/attachment",
               project=ATTACKER, status=204)
    assert api.get(f"/v2.0/ports/{theirs['ports']['id']}", project=ADMIN, admin=True,
                   status=200).data["port"]["device_id"] == theirs["ports"]["device_id"]
    world.baseline = world.snapshot()  # the attacker's own port changed, and back


# ------------------------------------------------------------------ no credentials
@pytest.mark.parametrize("case", ROUTES, ids=_route_id)
def test_unauthenticated_caller_gets_401(world, case):
    if world.keystone is None:
        pytest.skip("keystonemiddleware is not installed")
    path, method, collection, _ = case
    victim, _ = world.param_values(collection)
    body = body_for(path, method, collection) if PARAM.search(path) else \
        ({_API.schema.singular[collection]: {}} if method == "POST" else None)
    # identity headers a client sends itself count for nothing
    kw = dict(status="*", expect_errors=True, headers={
        "X-Project-Id": VICTIM, "X-Roles": "admin", "X-Identity-Status": "Confirmed",
        "X-Service-Roles": "service", "X-User-Id": "admin"})
    url = _fill(path, victim)
    if body is not None:
        r = world.keystone.request(url, method=method, body=json.dumps(body).encode(),
                                   content_type="application/json", **kw)
    else:
        r = world.keystone.request(url, method=method, **kw)
    assert r.status_int == 401, (r.status, r.text[:300])
    assert not any(str(val) in r.text for val in victim.values()), r.text[:300]
    if method != "GET":
        world.assert_unchanged(f"unauthenticated {method} {path}")


@pytest.mark.parametrize("path", [
    "/agent-api/../v2.0/networks", "/agent-api/%2e%2e/v2.0/networks",
    "/agent-api/v1/../../v2.0/networks", "/agent-api//../v2.0/ports",
    "//v2.0/networks", "/v2.0//networks", "/v2.0/networks/", "/v2.0/networks.json"])
def test_unauthenticated_path_tricks_reach_nothing(world, path):
    """The agent API's prefix skips Keystone (agents have their own
    credentials): a path that starts with it must not reach the REST API."""
    if world.keystone is None:
        pytest.skip("keystonemiddleware is not installed")
    r = world.keystone.get(path, status="*", expect_errors=True, headers={
        "X-Project-Id": VICTIM, "X-Roles": "admin", "X-Identity-Status": "Confirmed"})
    assert r.status_int in (401, 404), (r.status, r.text[:300])
    assert world.theirs["networks"]["id"] not in r.text


# ------------------------------------------------------------------ timing
def test_not_yours_and_not_there_take_alike(world):
    """A lenient bound (the machine is shared): the median answer for the
    victim's network is within 2x + 5 ms of that for an absent one."""
    victim, absent = world.theirs["networks"]["id"], str(uuid.uuid4())
    times = {victim: [], absent: []}
    for _ in range(25):
        for id_ in (victim, absent):
            t = time.perf_counter()
            world.as_("member", "GET", f"/v2.0/networks/{id_}", status=404)
            times[id_].append(time.perf_counter() - t)
    mv, ma = statistics.median(times[victim]), statistics.median(times[absent])
    assert mv <= 2 * ma + 0.005 and ma <= 2 * mv + 0.005, (mv, ma)
