"""The oslo.middleware pieces around the API, composed in code (no paste).

From the outside in:

- ``CORS`` ([cors]): answers preflight requests and adds the CORS headers
  for the origins an operator allows;
- ``HTTPProxyToWSGI`` ([oslo_middleware] enable_proxy_headers_parsing):
  behind a TLS-terminating proxy, the scheme and host the client used
  (``X-Forwarded-Proto``/``X-Forwarded-Host`` or ``Forwarded``) are the
  ones links are made of;
- ``RequestId``: a ``req-<uuid>`` per request, in the environment and in
  the ``X-OpenStack-Request-Id`` answer header; ``BindRequestId`` then
  makes it the running thread's oslo.context (so oslo.log's lines carry
  it from the first one on, the user and project once authenticated);
- ``AccessLog`` (quantum_ovs.api.wsgi): one line per request, last guard;
- ``/healthcheck`` (oslo.middleware's ``Healthcheck``, [healthcheck]):
  unauthenticated and simple for load balancers; a request that carries
  credentials goes through authentication to the API instead, which
  answers an admin in detailed mode, with the database checked;
- ``BodySizeLimit`` ([oslo_middleware] max_request_body_size): oslo's
  limiter, its 413 answered as a NeutronError.
"""

import logging
import time

import webob
import webob.dec
import webob.exc
from oslo_middleware import cors, healthcheck, http_proxy_to_wsgi, request_id, sizelimit
from oslo_middleware import opts as oslo_opts
from oslo_middleware.healthcheck import pluginbase
from stevedore import extension

from quantum_ovs.api.wsgi import BODY_LIMIT, MAX_BODY, AccessLog, error_response
from quantum_ovs.context import Context

LOG = logging.getLogger(__name__)

HEALTHCHECK_PATH = "/healthcheck"

# A request body larger than this is refused (413) before it is read:
# 4 MiB holds any bulk request we serve (oslo's default is 112 KiB).  The
# option is the one limit: the API reads up to what it says (BODY_LIMIT).
DEFAULT_MAX_BODY = MAX_BODY

# What a browser page on an allowed origin may send and read (Neutron's
# choice of headers).
CORS_DEFAULTS = dict(
    allow_headers=["X-Auth-Token", "X-Identity-Status", "X-Roles", "X-Service-Catalog",
                   "X-User-Id", "X-Tenant-Id", "X-Project-Id", "X-OpenStack-Request-ID"],
    expose_headers=["X-Auth-Token", "X-Subject-Token", "X-Service-Token",
                    "X-OpenStack-Request-ID", "OpenStack-Volume-microversion"],
    allow_methods=["GET", "PUT", "POST", "DELETE", "PATCH"])


def list_opts():
    """The oslo.middleware options the server reads (for the sample)."""
    set_defaults()
    merged = {}
    for group, opts in (oslo_opts.list_opts_cors() + oslo_opts.list_opts_http_proxy_to_wsgi()
                        + oslo_opts.list_opts_sizelimit()
                        + oslo_opts.list_opts_healthcheck()):
        merged.setdefault(group, []).extend(opts)
    return list(merged.items())


def set_defaults():
    cors.set_defaults(**CORS_DEFAULTS)
    for o in sizelimit.OPTS:
        if o.name == "max_request_body_size":
            o.default = DEFAULT_MAX_BODY


def register_opts(conf):
    set_defaults()
    for group, opts in list_opts():
        conf.register_opts(opts, group=group)


# ------------------------------------------------------------ healthcheck
class DatabaseCheck(pluginbase.HealthcheckBaseExtension):
    """A healthcheck backend: the database answers ``SELECT 1``."""

    def __init__(self, oslo_conf, conf, db):
        super().__init__(oslo_conf, conf)
        self.db = db

    def healthcheck(self, server_port):
        started = time.monotonic()
        try:
            with self.db.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as e:  # noqa: BLE001 - any failure: not available
            return pluginbase.HealthcheckResult(
                available=False, reason="database unavailable",
                details=str(e).splitlines()[0] if str(e) else type(e).__name__)
        return pluginbase.HealthcheckResult(
            available=True, reason="database OK",
            details=f"{self.db.engine.dialect.name}: SELECT 1 in "
                    f"{(time.monotonic() - started) * 1000:.1f} ms")


class Healthcheck(healthcheck.Healthcheck):
    """oslo.middleware's healthcheck with the backends [healthcheck]
    backends names (e.g. disable_by_file, to drain a server) and ours,
    in simple or detailed mode whatever [healthcheck] detailed says."""

    def __init__(self, application, conf, checks=(), detailed=False):
        super().__init__(application, conf)
        self._show_details = detailed
        self._backends = list(self._backends) + [
            extension.Extension(type(c).__name__, None, type(c), c) for c in checks]


# ------------------------------------------------------------ request ids
class BindRequestId:
    """Each request's oslo.context holds the id RequestId made (and the
    caller's global request id), from the request's first log line on."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        ctx = Context(request_id=environ.get(request_id.ENV_REQUEST_ID),
                      global_request_id=environ.get(request_id.GLOBAL_REQ_ID)).bind()
        environ["quantum.request_context"] = ctx
        return self.app(environ, start_response)


class BodySizeLimit(sizelimit.RequestBodySizeLimiter):
    """oslo's limiter; its 413 (a body declared too large) as a
    NeutronError.  A body without Content-Length is cut by oslo's
    LimitingReader while read: that 413 is answered by the API's own
    error handling, a NeutronError too.  A request without a body (most
    of them, agents' long polls among them) goes straight through."""

    def __call__(self, environ, start_response):
        if environ.get("CONTENT_LENGTH", "0") in ("0", "") and \
                "HTTP_TRANSFER_ENCODING" not in environ:
            return self.application(environ, start_response)
        # (the API reads a body up to this limit, and no further)
        environ[BODY_LIMIT] = self._conf_get("max_request_body_size")
        return self._limited(environ, start_response)

    @webob.dec.wsgify
    def _limited(self, req):
        resp = req.get_response(super().__call__)
        if resp.status_int == 413 and resp.content_type != "application/json":
            return error_response(webob.exc.HTTPRequestEntityTooLarge(
                detail="Request is too large: larger than max_request_body_size "
                       f"({self._conf_get('max_request_body_size')} bytes)"))
        return resp


class _HealthOrApi:
    """``/healthcheck`` without credentials to the simple check, anything
    else (a detailed check asked with credentials too) to the API."""

    def __init__(self, app, simple, credentials):
        self.app, self.simple, self.credentials = app, simple, credentials

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").rstrip("/") == HEALTHCHECK_PATH and \
                not any(k in environ for k in self.credentials):
            return self.simple(environ, start_response)
        return self.app(environ, start_response)


def _layer(mw):
    """oslo's middleware names what it wraps ``application``; ours and
    the code that looks through them (openapi.find_api) say ``app``."""
    mw.app = mw.application
    return mw


def wrap(app, conf, db):
    """The API app inside the middleware operators expect; returns the
    outer app and the detailed healthcheck (for the API's admin route)."""
    register_opts(conf)
    detailed = Healthcheck(_not_found, conf, checks=[DatabaseCheck(conf, {}, db)],
                           detailed=True)
    inner = _layer(BodySizeLimit(app, conf))
    simple = Healthcheck(inner, conf, detailed=conf.healthcheck.detailed)
    # What makes a request authenticated: a token, or under noauth the
    # headers that name the caller's roles.
    credentials = ("HTTP_X_AUTH_TOKEN",) if conf.auth_strategy == "keystone" else \
        ("HTTP_X_AUTH_TOKEN", "HTTP_X_ROLES", "HTTP_X_ROLE")
    outer = AccessLog(_HealthOrApi(inner, simple, credentials))
    outer = BindRequestId(outer)
    outer = _layer(request_id.RequestId(outer, conf))
    # (Left out when off: each layer parses every request, agents' long
    # polls included, and these options are read at start only.)
    if conf.oslo_middleware.enable_proxy_headers_parsing:
        outer = _layer(http_proxy_to_wsgi.HTTPProxyToWSGI(outer, conf))
    if conf.cors.allowed_origin:
        outer = _layer(cors.CORS(outer, conf))
    return outer, detailed


def _not_found(environ, start_response):
    """Where a healthcheck sends a request it ignores
    ([healthcheck] allowed_source_ranges, ignore_proxied_requests)."""
    resp = error_response(webob.exc.HTTPNotFound(detail="The resource could not be found."))
    return resp(environ, start_response)
