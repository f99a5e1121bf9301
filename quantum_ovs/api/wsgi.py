"""Request/response plumbing: JSON in and out, faults as NeutronError."""

import json
import logging
import time
import uuid

import webob
import webob.dec
import webob.exc
from sqlalchemy import exc as sa_exc

from quantum_ovs import exceptions

LOG = logging.getLogger(__name__)
ACCESS_LOG = logging.getLogger("quantum_ovs.access")

STATUS_TITLES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
                 404: "HTTPNotFound", 405: "HTTPMethodNotAllowed",
                 406: "HTTPNotAcceptable", 409: "HTTPConflict",
                 412: "HTTPPreconditionFailed", 413: "HTTPRequestEntityTooLarge",
                 415: "HTTPUnsupportedMediaType", 500: "HTTPInternalServerError",
                 503: "HTTPServiceUnavailable"}

MAX_BODY = 4 * 1024 * 1024


def json_response(body, status=200, headers=None):
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    if body is not None:
        resp.body = json.dumps(body, separators=(",", ":")).encode()
    else:
        resp.body = b""
        resp.content_type = None
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def fault(code, type_, message, detail=""):
    return json_response({"NeutronError": {"type": type_, "message": message,
                                           "detail": detail}}, status=code)


def error_response(err):
    """Map any exception to a NeutronError response; never leaks a trace."""
    if isinstance(err, exceptions.QuantumError):
        return fault(err.code, err.type, err.msg)
    if isinstance(err, webob.exc.HTTPException):
        return fault(err.code, STATUS_TITLES.get(err.code, type(err).__name__),
                     err.detail or err.explanation or err.title)
    if isinstance(err, sa_exc.IntegrityError):
        # A conflict a concurrent writer won and the retries could not
        # get around: a conflict, not a server fault.
        LOG.warning("integrity conflict: %s", err)
        return fault(409, "Conflict", "The request conflicts with the current state "
                                      "of the resource; retry it.")
    if isinstance(err, exceptions.RetryRequest):
        return fault(503, "ServiceUnavailable", "Too many concurrent changes; retry the "
                                                "request.")
    if isinstance(err, sa_exc.OperationalError):
        LOG.warning("database busy: %s", err)
        return fault(503, "ServiceUnavailable", "The database is busy; retry the request.")
    LOG.exception("internal error")
    return fault(500, "HTTPInternalServerError",
                 "Request Failed: internal server error while processing your request.")


def read_json(req, required=True):
    """The request's JSON body as a dict (400 on anything else)."""
    if req.content_length and req.content_length > MAX_BODY:
        raise webob.exc.HTTPRequestEntityTooLarge(detail="Request body is too large")
    raw = req.body
    if not raw:
        if required:
            raise exceptions.MalformedRequestBody(reason="no request body")
        return None
    ctype = (req.content_type or "").lower()
    if ctype and ctype not in ("application/json", "text/plain") and not ctype.endswith("+json"):
        raise webob.exc.HTTPUnsupportedMediaType(
            detail=f"Unsupported Content-Type {req.content_type}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise exceptions.MalformedRequestBody(reason=f"Cannot understand JSON: {e}") from None
    if not isinstance(data, dict):
        raise exceptions.MalformedRequestBody(reason="the body must be a JSON object")
    return data


class AccessLog:
    """One line per request: method, path, status, milliseconds."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status_holder = []

        def _start(status, headers, exc_info=None):
            status_holder.append(status.split(" ", 1)[0])
            rid = "req-" + str(uuid.uuid4())
            headers.append(("X-Openstack-Request-Id", rid))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, _start)
        finally:
            ACCESS_LOG.info("%s %s%s %s %.1fms", environ.get("REQUEST_METHOD"),
                            environ.get("PATH_INFO", ""),
                            ("?" + environ["QUERY_STRING"]) if environ.get("QUERY_STRING") else "",
                            status_holder[0] if status_holder else "-",
                            (time.monotonic() - started) * 1000)
