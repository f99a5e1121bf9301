"""Request/response plumbing: JSON in and out, faults as NeutronError."""

import json
import logging
import math
import re
import time
import uuid

import orjson
import webob
import webob.dec
import webob.exc
from oslo_db import exception as db_exc
from sqlalchemy import exc as sa_exc

from quantum_ovs import exceptions

LOG = logging.getLogger(__name__)
ACCESS_LOG = logging.getLogger("quantum_ovs.access")
_AGENT_POLL = re.compile(r"/agent-api/v1/hosts/[^/]+/state/?$")

STATUS_TITLES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
                 404: "HTTPNotFound", 405: "HTTPMethodNotAllowed",
                 406: "HTTPNotAcceptable", 409: "HTTPConflict",
                 412: "HTTPPreconditionFailed", 413: "HTTPRequestEntityTooLarge",
                 415: "HTTPUnsupportedMediaType", 500: "HTTPInternalServerError",
                 503: "HTTPServiceUnavailable"}

# The body limit, [oslo_middleware] max_request_body_size, by default
# (quantum_ovs.api.middleware): 4 MiB holds any bulk request we serve.
MAX_BODY = 4 * 1024 * 1024
# Where BodySizeLimit puts the limit it applies, for _read_body.
BODY_LIMIT = "quantum.max_body"


# json.dumps(body, separators=(",", ":")) without the check for circular
# references (a body is a tree of fresh dicts and lists): what dumps()
# falls back to.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)

_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(body):
    """``body`` as compact JSON in UTF-8 bytes.  orjson writes a 10,000-port
    listing (8 MB) in a sixth of the standard library's time; it refuses
    what JSON cannot carry the same way everywhere (integers beyond 64 bits,
    keys that are not strings), which the standard encoder then writes as
    before.  Non-ASCII text is written as UTF-8, not as \\u escapes (the
    same JSON value); a float that JSON has no number for (NaN, infinities)
    is null.  Datetimes and dataclasses are refused as the standard encoder
    refuses them (a body carries the API's own texts, never such objects)."""
    try:
        return orjson.dumps(body, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODER.encode(body).encode()


def json_response(body, status=200, headers=None):
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    if body is not None:
        resp.body = dumps(body)
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
    if isinstance(err, (db_exc.DBConnectionError, db_exc.DBDeadlock)):
        # oslo.db's classification (quantum_ovs/db/session.py): not
        # reachable, or a lock held too long / deadlocks past the retries
        LOG.warning("database busy or unreachable: %s", str(err).splitlines()[0])
        return fault(503, "ServiceUnavailable", "The database is busy; retry the request.")
    if isinstance(err, db_exc.DBError) and isinstance(err.inner_exception,
                                                      sa_exc.SQLAlchemyError):
        err = err.inner_exception  # what oslo.db does not name: SQLAlchemy's
    if isinstance(err, sa_exc.IntegrityError):
        # A conflict a concurrent writer won and the retries could not
        # get around: a conflict, not a server fault.
        LOG.warning("integrity conflict: %s", err)
        return fault(409, "Conflict", "The request conflicts with the current state "
                                      "of the resource; retry it.")
    if isinstance(err, exceptions.RetryRequest):
        return fault(503, "ServiceUnavailable", "Too many concurrent changes; retry the "
                                                "request.")
    if isinstance(err, sa_exc.TimeoutError):
        LOG.warning("no database connection free: %s", err)
        return fault(503, "ServiceUnavailable", "The database is busy; retry the request.")
    if isinstance(err, sa_exc.OperationalError):
        LOG.warning("database busy: %s", err)
        return fault(503, "ServiceUnavailable", "The database is busy; retry the request.")
    LOG.exception("internal error")
    return fault(500, "HTTPInternalServerError",
                 "Request Failed: internal server error while processing your request.")


# What a JSON body may hold: nesting no deeper than any request we serve
# needs, integers that fit a 64-bit column, strings that can be stored.
MAX_DEPTH = 32
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _check_tree(data):
    """Refuse what parses as JSON but cannot be stored or answered:
    deep nesting, integers beyond 64 bits, non-finite numbers, strings
    with NUL characters or lone surrogates (walked without recursion)."""
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise exceptions.MalformedRequestBody(
                    reason=f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(node, dict):
                for k, val in node.items():
                    _check_str(k)
                    stack.append((val, depth + 1))
            else:
                stack.extend((val, depth + 1) for val in node)
        elif isinstance(node, str):
            _check_str(node)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not INT_MIN <= node <= INT_MAX:
                raise exceptions.MalformedRequestBody(
                    reason=f"integer {node} is out of range [{INT_MIN}, {INT_MAX}]")
        elif isinstance(node, float) and not math.isfinite(node):
            raise exceptions.MalformedRequestBody(reason=f"number {node} is out of range")


def _check_str(value):
    if "\x00" in value:
        raise exceptions.MalformedRequestBody(reason="strings may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise exceptions.MalformedRequestBody(
            reason="strings may not contain lone surrogates (\\ud800-\\udfff)") from None


def _read_body(req):
    """The raw body, at most the configured limit (BodySizeLimit's, that
    is [oslo_middleware] max_request_body_size; MAX_BODY without it).  A
    chunked body (no Content-Length) is read when the server has decoded
    the chunks and says so (``wsgi.input_terminated``, as eventlet's
    server does through quantum-ovs-server and gunicorn does itself)."""
    limit = req.environ.get(BODY_LIMIT, MAX_BODY)
    clen = req.content_length
    if clen is not None:
        if clen > limit:
            raise webob.exc.HTTPRequestEntityTooLarge(detail="Request body is too large")
        return req.body
    if not req.is_body_readable:
        return b""
    raw = req.body_file_raw.read(limit + 1)
    if len(raw) > limit:
        raise webob.exc.HTTPRequestEntityTooLarge(detail="Request body is too large")
    return raw


# Headers a browser page cannot put on a request to another site without
# that site's consent (a CORS preflight): a request carrying one is no
# cross-site form post, whatever its Content-Type says.
_CREDENTIAL_HEADERS = ("X-Auth-Token", "X-Project-Id", "X-Tenant-Id", "X-Roles")


def read_json(req, required=True):
    """The request's JSON body as a dict: 400 on anything else.

    application/json is always read.  Like Neutron, a JSON body labelled
    text/plain, or not labelled, is read too (urllib3 2 labels a str body
    text/plain, and neutron-tempest-plugin's updates are sent so) -- but
    only with a credential header: a page on another site can post a
    text/plain form to us without our consent, never with such a header.
    Anything else (form encodings, XML) is a 415."""
    raw = _read_body(req)
    if not raw:
        if required:
            raise exceptions.MalformedRequestBody(reason="no request body")
        return None
    ctype = (req.content_type or "").lower()
    if ctype != "application/json" and not (
            ctype in ("", "text/plain")
            and any(h in req.headers for h in _CREDENTIAL_HEADERS)):
        raise webob.exc.HTTPUnsupportedMediaType(
            detail=f"Unsupported Content-Type '{req.content_type}': send application/json")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise exceptions.MalformedRequestBody(reason=f"Cannot understand JSON: {e}") from None
    except RecursionError:
        raise exceptions.MalformedRequestBody(
            reason=f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise exceptions.MalformedRequestBody(reason="the body must be a JSON object")
    _check_tree(data)
    return data


def check_url(req):
    """400 unless the path and query string decode as UTF-8 without NUL
    characters (which no database column can hold)."""
    try:
        path = req.path_info
        items = req.GET.items()
    except UnicodeDecodeError:
        raise webob.exc.HTTPBadRequest(
            detail="The request URL is not valid UTF-8 once percent-decoded") from None
    if "\x00" in path or any("\x00" in k or "\x00" in val for k, val in items):
        raise webob.exc.HTTPBadRequest(detail="The request URL may not contain NUL characters")


# What must not reach a log line as it is: control characters (CR and LF
# above all) and what str.splitlines() and log readers also take for the
# end of a line (C1 controls such as NEL, U+2028, U+2029).
_UNLOGGABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(m):
    c = ord(m.group())
    return "%%%02X" % c if c < 0x100 else "\\u%04x" % c


def loggable(text):
    """``text`` (a path or query, as the client sent it or percent-decoded)
    for a log line: its control characters percent-encoded again, so that
    a request is one line and no client can write a line of its own
    (``/v2.0/networks%0d%0a<a forged line>``)."""
    return _UNLOGGABLE.sub(_escaped, text) if _UNLOGGABLE.search(text) else text


def log_access(environ, status, started, routine=False):
    """The access-log line of a request (``status``: its three digits;
    ``started``: its time.monotonic() at arrival); ``routine`` (an agent's
    answered long poll) at debug level, anything else at info."""
    qs = environ.get("QUERY_STRING")
    ACCESS_LOG.log(logging.DEBUG if routine else logging.INFO, "%s %s%s %s %.1fms",
                   loggable(environ.get("REQUEST_METHOD") or "-"),
                   loggable(environ.get("PATH_INFO", "")),
                   ("?" + loggable(qs)) if qs else "", status,
                   (time.monotonic() - started) * 1000)


class AccessLog:
    """One line per request: method, path, status, milliseconds (with the
    request's id, user and project: see quantum_ovs.context).  Also the
    last guard: whatever escapes the layers below (authentication
    middleware included) is answered as a NeutronError 500, never with a
    traceback page."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status_holder = []

        def _start(status, headers, exc_info=None):
            status_holder.append(status.split(" ", 1)[0])
            if not any(k.lower() == "x-openstack-request-id" for k, _v in headers):
                # oslo.middleware's RequestId (in front) made the id; alone,
                # one of our own
                headers.append(("X-OpenStack-Request-Id",
                                environ.get("openstack.request_id")
                                or "req-" + str(uuid.uuid4())))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, _start)
        except Exception as e:  # noqa: BLE001 - the last guard
            if status_holder:  # the answer has begun: nothing else can be sent
                raise
            return error_response(e)(environ, _start)
        finally:
            status = status_holder[0] if status_holder else "-"
            # An agent's answered long poll is routine (a change in a group
            # every host uses answers every agent: 1,000 lines, ~9% of the
            # server's CPU): logged at debug level; refusals and errors not.
            log_access(environ, status, started,
                       status == "200" and _AGENT_POLL.match(environ.get("PATH_INFO", "")))
