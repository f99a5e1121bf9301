"""make_app(conf, plugin): the WSGI application.  No globals."""

import logging

import routes
import webob
import webob.dec
import webob.exc

from quantum_ovs import exceptions
from quantum_ovs.api import attributes, metrics
from quantum_ovs.api import policy as policy_mod
from quantum_ovs.api.controller import Controller
from quantum_ovs.api.definitions import core
from quantum_ovs.api import middleware
from quantum_ovs.api.wsgi import check_url, error_response, json_response
from quantum_ovs.context import Context

LOG = logging.getLogger(__name__)

COLLECTIONS = ("networks", "subnets", "ports")
_UNKNOWN = object()
TAGGABLE = ("networks", "subnets", "ports")


class API:
    def __init__(self, conf, plugin, policy, schema):
        self.conf = conf
        self.plugin = plugin
        self.policy = policy
        self.schema = schema
        self.extensions = schema.advertised()
        self.controllers = {c: Controller(c, schema, plugin, policy, conf)
                            for c in schema.resources}
        self.extra_routes = []  # (path, {method: handler(req, ctx, **kw)})
        self._openapi = None
        self._matched = {}  # path -> what the mapper answers for it (see _route)
        self._routes_seen = 0  # len(mapper.matchlist) when _matched was filled
        m = routes.Mapper()
        m.connect("/", action="versions")
        m.connect("/openapi.json", action="openapi")
        m.connect("/v2.0", action="v2_index")
        m.connect("/v2.0/", action="v2_index")
        m.connect("/v2.0/extensions{fmt:(\\.json)?}", action="extensions")
        m.connect("/v2.0/extensions/{alias}{fmt:(\\.json)?}", action="extension")
        for c in self.controllers:
            m.connect(f"/v2.0/{c}" "{fmt:(\\.json)?}", collection=c, action="collection")
            m.connect(f"/v2.0/{c}/" "{id}{fmt:(\\.json)?}", collection=c, action="member",
                      requirements={"id": "[^/]+?"})
            if c in TAGGABLE:
                m.connect(f"/v2.0/{c}/" "{id}/tags", collection=c, action="tags")
                m.connect(f"/v2.0/{c}/" "{id}/tags/{tag}", collection=c, action="tag")
        self.mapper = m

    def add_route(self, path, handlers):
        key = f"extra{len(self.extra_routes)}"
        self.extra_routes.append((path, handlers))
        self.mapper.connect(path, action="extra", extra=key)

    ROUTE_CACHE_SIZE = 4096  # paths

    def _route(self, path):
        """The mapper's (match, route) for ``path``, or None; remembered
        (matching runs every route's regex: ~4% of the server's CPU when a
        change wakes 1,000 agents, each polling its own path).  The
        answers are forgotten when a route is added (extensions add theirs
        on api.mapper)."""
        found = self._matched.get(path, _UNKNOWN)
        if found is _UNKNOWN or self._routes_seen != len(self.mapper.matchlist):
            found = self.mapper.routematch(path)
            if len(self._matched) >= self.ROUTE_CACHE_SIZE or \
                    self._routes_seen != len(self.mapper.matchlist):
                self._matched.clear()
                self._routes_seen = len(self.mapper.matchlist)
            self._matched[path] = found
        return found

    # ------------------------------------------------------------------
    @webob.dec.wsgify
    def __call__(self, req):
        try:
            return self._dispatch(req)
        except Exception as e:  # noqa: BLE001 - every error becomes a fault
            return error_response(e)

    def _dispatch(self, req):
        check_url(req)
        path = req.path_info.rstrip("/") or "/"
        if path == "/v2.0":
            path = "/v2.0/"
        found = self._route(path)
        if found is None:
            raise webob.exc.HTTPNotFound(detail="The resource could not be found.")
        match, route = found
        req.environ["quantum.route"] = metrics.route_template(route)  # a bounded label
        action = match["action"]
        method = req.method
        if action == "versions":
            self._allow(method, "GET", "HEAD")
            return self.versions(req)
        if action == "openapi":
            self._allow(method, "GET", "HEAD")
            return json_response(self.openapi())
        ctx = req.environ.get("quantum.context")
        if ctx is None:
            raise webob.exc.HTTPUnauthorized(detail="No credentials")
        if action == "v2_index":
            self._allow(method, "GET", "HEAD")
            # (application_url: the mount point or proxy prefix kept, as
            # in versions())
            return json_response({"resources": [
                {"name": self.schema.singular[c], "collection": c,
                 "links": [{"rel": "self", "href": f"{req.application_url}/v2.0/{c}"}]}
                for c in self.controllers]})
        if action == "extensions":
            self._allow(method, "GET", "HEAD")
            return json_response({"extensions": self.extensions})
        if action == "extension":
            self._allow(method, "GET", "HEAD")
            for e in self.extensions:
                if e["alias"] == match["alias"]:
                    return json_response({"extension": e})
            raise exceptions.ExtensionNotFound(alias=match["alias"])
        if action == "extra":
            handlers = self.extra_routes[int(match["extra"][5:])][1]
            handler = handlers.get(method)
            if handler is None:
                raise webob.exc.HTTPMethodNotAllowed(detail=f"Method {method} not allowed")
            kwargs = {k: val for k, val in match.items() if k not in ("action", "extra")}
            return handler(req, ctx, **kwargs)
        ctl = self.controllers[match["collection"]]
        if action == "collection":
            if method in ("GET", "HEAD"):
                return ctl.index(req, ctx)
            if method == "POST":
                return ctl.create(req, ctx)
            raise webob.exc.HTTPMethodNotAllowed(detail=f"Method {method} not allowed")
        if action == "member":
            id_ = match["id"]
            if method in ("GET", "HEAD"):
                return ctl.show(req, ctx, id_)
            if method == "PUT":
                return ctl.update(req, ctx, id_)
            if method == "DELETE":
                return ctl.delete(req, ctx, id_)
            raise webob.exc.HTTPMethodNotAllowed(detail=f"Method {method} not allowed")
        if action in ("tags", "tag"):
            self._allow(method, "GET", "PUT", "DELETE")
            return ctl.tags(req, ctx, match["id"], match.get("tag"))
        raise webob.exc.HTTPNotFound()

    def openapi(self):
        """The OpenAPI description of what this app serves (made once)."""
        if self._openapi is None:
            from quantum_ovs.api import openapi
            self._openapi = openapi.document(self.schema, openapi.routes_of(self))
        return self._openapi

    @staticmethod
    def _allow(method, *allowed):
        if method not in allowed:
            raise webob.exc.HTTPMethodNotAllowed(detail=f"Method {method} not allowed")

    def versions(self, req):
        """The version document.  Its link is made of the application's
        URL (SCRIPT_NAME kept: the app mounted at /networking under
        uWSGI, or a proxy's X-Forwarded-Prefix that HTTPProxyToWSGI makes
        SCRIPT_NAME), as Neutron's: clients' version discovery follows it."""
        return json_response({"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{req.application_url}/v2.0/"}]}]})


# Keystone's default implied roles: a token carries the roles its roles
# imply.  noauth does the same for the roles named in X-Roles.
IMPLIED_ROLES = {"admin": ("manager", "member", "reader"), "manager": ("member", "reader"),
                 "member": ("reader",)}


def with_implied_roles(roles):
    out = {r.strip().lower() for r in roles if r and r.strip()}
    for r in list(out):
        out.update(IMPLIED_ROLES.get(r, ()))
    return frozenset(out)


# The longest project id a caller may claim under noauth: the length of
# the project_id columns (Keystone's ids are 64 characters at most).
PROJECT_ID_MAX = 255


class NoAuth:
    """Takes the caller's project and roles from request headers (no
    X-Roles header: a member of the project)."""

    def __init__(self, app, default_project, policy):
        self.app = app
        self.default_project = default_project
        self.policy = policy

    def __call__(self, environ, start_response):
        h = environ.get
        if h("PATH_INFO", "").startswith("/agent-api/"):
            # Agents present their own token (see agent_api), as under
            # keystone: no project, no policy (a policy context checks the
            # policy files on every request: ~13% of the server's CPU when
            # a change wakes 1,000 agents).
            environ["quantum.context"] = Context(project_id=None, roles=frozenset(),
                                                 **_ids(environ))
            return self.app(environ, start_response)
        project = (h("HTTP_X_PROJECT_ID") or h("HTTP_X_TENANT_ID")
                   or h("HTTP_X_TENANT") or self.default_project)
        project = project.strip() or self.default_project
        if len(project) > PROJECT_ID_MAX:
            # (It would not fit the database's project_id columns.)
            resp = error_response(webob.exc.HTTPBadRequest(
                detail=f"X-Project-Id is longer than {PROJECT_ID_MAX} characters"))
            return resp(environ, start_response)
        header = h("HTTP_X_ROLES")
        if header is None:
            header = h("HTTP_X_ROLE", "member")
        environ["quantum.context"] = self.policy.context(
            project_id=project,
            user_id=h("HTTP_X_USER_ID"), roles=with_implied_roles(header.split(",")),
            **_ids(environ)).bind()
        return self.app(environ, start_response)


def _ids(environ):
    """The request id RequestId made and the caller's global request id."""
    early = environ.get("quantum.request_context")
    if early is None:
        return {}
    return {"request_id": early.request_id, "global_request_id": early.global_request_id}


def _enabled(mod, conf):
    """A module naming ``SERVICE_PLUGIN`` (its names) is served only when
    ``[DEFAULT] service_plugins`` names it, as Neutron's service plugins."""
    names = getattr(mod, "SERVICE_PLUGIN", None)
    return names is None or bool(set(names) & set(conf.service_plugins or ()))


def make_app(conf, plugin, ext_modules=(), policy=None):
    """Build the WSGI app with the given extension modules (see
    quantum_ovs.extensions): the schema it serves is built from the core's
    definition and the enabled modules' ``DEFINITION`` (a module naming
    ``SERVICE_PLUGIN`` is enabled by ``[DEFAULT] service_plugins``)."""
    ext_modules = [m for m in ext_modules if _enabled(m, conf)]
    schema = attributes.build(
        [core] + [m.DEFINITION for m in ext_modules
                  if getattr(m, "DEFINITION", None) is not None])
    if not plugin.extensions_set_up:
        for m in ext_modules:
            if hasattr(m, "setup"):
                m.setup(plugin, conf)
        plugin.extensions_set_up = True
    policy = policy or policy_mod.Policy(conf, schema.policy_rules)
    api = API(conf, plugin, policy, schema)
    for m in ext_modules:
        if hasattr(m, "routes"):
            m.routes(api)
    health = _DetailedHealth(api)
    app = health
    if conf.auth_strategy == "noauth":
        app = NoAuth(app, conf.default_project_id, policy)
    else:
        app = _keystone(app, conf, policy)
    app, health.check = middleware.wrap(app, conf, plugin.db)
    if getattr(api, "agent_api", None) is not None:
        # Agents' long polls in front of the middleware (see FastPolls).
        app = api.agent_api.front(app)
    return metrics.instrument(app, api, conf)


class _DetailedHealth:
    """``/healthcheck`` with credentials (the simple one needs none, see
    quantum_ovs.api.middleware): detailed, database included, for an
    admin (``context_is_admin``); 403 for anyone else."""

    def __init__(self, app):
        self.app = app
        self.check = None

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").rstrip("/") != middleware.HEALTHCHECK_PATH:
            return self.app(environ, start_response)
        ctx = environ.get("quantum.context")
        if ctx is None or not ctx.is_admin:
            resp = error_response(webob.exc.HTTPForbidden(
                detail="The detailed health check is for admins"))
            return resp(environ, start_response)
        return self.check(environ, start_response)


def _keystone(app, conf, policy):
    try:
        from keystonemiddleware import auth_token
    except ImportError as e:  # pragma: no cover - configuration error
        raise RuntimeError("auth_strategy=keystone needs keystonemiddleware") from e
    inner = _KeystoneContext(app, policy)
    protected = auth_token.AuthProtocol(inner, {"oslo_config_config": conf})
    group = conf.keystone_authtoken  # registered by AuthProtocol
    if not group.www_authenticate_uri:
        # Without it the middleware looks the URL up in the catalog at the
        # first unauthenticated request, and answers 500 when it cannot.
        raise RuntimeError("auth_strategy = keystone needs [keystone_authtoken] "
                           "www_authenticate_uri: the Keystone URL that 401 answers "
                           "send clients to")

    def dispatch(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path in ("/", ""):
            return app(environ, start_response)
        if path.startswith("/agent-api/"):
            # Agents present their own shared secret (see agent_api).
            environ["quantum.context"] = Context(project_id=None, roles=frozenset(),
                                                 **_ids(environ))
            return app(environ, start_response)
        return protected(environ, start_response)
    return dispatch


class _KeystoneContext:
    def __init__(self, app, policy):
        self.app = app
        self.policy = policy

    def __call__(self, environ, start_response):
        h = environ.get
        if h("HTTP_X_IDENTITY_STATUS", "Confirmed") != "Confirmed":
            resp = error_response(webob.exc.HTTPUnauthorized(detail="Authentication required"))
            return resp(environ, start_response)
        environ["quantum.context"] = self.policy.context(
            project_id=h("HTTP_X_PROJECT_ID") or h("HTTP_X_TENANT_ID"),
            user_id=h("HTTP_X_USER_ID"),
            roles=(h("HTTP_X_ROLES") or "").split(","),
            system_scope=h("HTTP_OPENSTACK_SYSTEM_SCOPE") or None,
            domain_id=h("HTTP_X_DOMAIN_ID") or None, **_ids(environ)).bind()
        return self.app(environ, start_response)
