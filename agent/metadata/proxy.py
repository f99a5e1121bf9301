"""The metadata proxy: an HTTP server on a socket it is given (opened in
the proxy's namespace), one thread per request, forwarding to nova's
metadata API with the headers nova's handler checks when
``[neutron] service_metadata_proxy = True``:

    X-Instance-ID             the asking port's device_id
    X-Tenant-ID               the port's project
    X-Instance-ID-Signature   HMAC-SHA256(shared secret, instance id), hex
    X-Forwarded-For           the instance's fixed IP

The asking instance is ``lookup(peer address)``: the address is the one
the flows wrote (the port's ofport and fixed IP index), never one the
instance chose.  Headers of the request that could claim another identity
are not forwarded; only the method, the path and query, a body (POST,
e.g. the password) and its Content-Type are.

nova down answers 502 at once, nova slower than ``timeout`` 504 after it,
a nova 5xx 500; more than ``max_requests`` requests in flight are refused
with 503, and more than twice as many connections (idle ones included,
each closed after 10 s without a request) are closed at once.  Nothing
here takes a lock of the agent: ``lookup`` reads snapshots the agent
publishes.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable, Optional

from agent.metadata.settings import MetadataSettings

LOG = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
FORWARDED_HEADERS = ("Content-Type", "Accept")


@dataclass(frozen=True)
class Requester:
    """Who asks: from the port the request entered by."""

    port_id: str
    instance_id: str
    project_id: str
    ip: str


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, handler, proxy: "MetadataProxy"):
        socketserver.TCPServer.__init__(self, sock.getsockname()[:2], handler,
                                        bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family
        self.proxy = proxy
        # Connections (threads) at once, idle ones included: an instance
        # opening many and sending nothing must not exhaust the agent.
        self._conns = threading.BoundedSemaphore(2 * proxy.s.max_requests)

    def process_request(self, request, client_address):
        if not self._conns.acquire(blocking=False):
            self.proxy.stats["busy"] += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._conns.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._conns.release()

    def handle_error(self, request, client_address):
        LOG.debug("metadata request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "quantum-ovs-metadata"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = 10  # seconds an instance may take to send its request

    def log_message(self, fmt, *args):  # the access log at debug, not stderr
        LOG.debug("metadata %s: " + fmt, self.client_address[0], *args)

    def do_GET(self):
        self.server.proxy.serve(self, with_body=False)

    def do_HEAD(self):
        self.server.proxy.serve(self, with_body=False)

    def do_POST(self):
        self.server.proxy.serve(self, with_body=True)


class MetadataProxy:
    def __init__(self, settings: MetadataSettings,
                 lookup: Callable[[str], Optional[Requester]]):
        self.s = settings
        self.lookup = lookup
        self.stats = {"requests": 0, "unknown": 0, "upstream_errors": 0, "timeouts": 0,
                      "busy": 0}
        self._slots = threading.BoundedSemaphore(settings.max_requests)
        self._ssl = self._ssl_context() if settings.nova_protocol == "https" else None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ life
    def start(self, sock: socket.socket) -> "MetadataProxy":
        """Serve on ``sock`` (bound and listening) from a thread of its own."""
        self._server = _Server(sock, _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="metadata-proxy", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # ------------------------------------------------------------ requests
    def serve(self, h: BaseHTTPRequestHandler, with_body: bool) -> None:
        self.stats["requests"] += 1
        if not self._slots.acquire(blocking=False):
            self.stats["busy"] += 1
            return self._answer(h, 503, b"Too many metadata requests in flight\n")
        try:
            who = self.lookup(h.client_address[0])
            if who is None or not who.instance_id:
                self.stats["unknown"] += 1
                LOG.info("metadata request from %s: no instance on that port",
                         h.client_address[0])
                return self._answer(h, 404, b"Not Found\n")
            body = None
            if with_body:
                n = int(h.headers.get("Content-Length") or 0)
                if not 0 <= n <= MAX_BODY:
                    return self._answer(h, 413, b"Request body too large\n")
                body = h.rfile.read(n)
            status, ctype, data = self._forward(h.command, h.path, who, body, h.headers)
            return self._answer(h, status, data, ctype, head=h.command == "HEAD")
        finally:
            self._slots.release()

    def headers_for(self, who: Requester) -> dict:
        return {"X-Forwarded-For": who.ip, "X-Instance-ID": who.instance_id,
                "X-Tenant-ID": who.project_id,
                "X-Instance-ID-Signature": sign(self.s.shared_secret, who.instance_id)}

    def _forward(self, method, path, who, body, in_headers):
        if not path.startswith("/"):
            return 400, "text/plain", b"Bad Request\n"
        headers = self.headers_for(who)
        for name in FORWARDED_HEADERS:
            if in_headers.get(name):
                headers[name] = in_headers[name]
        s = self.s
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(s.nova_host, s.nova_port, timeout=s.timeout,
                                               context=self._ssl)
        else:
            conn = http.client.HTTPConnection(s.nova_host, s.nova_port, timeout=s.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "text/plain")
            status = resp.status
        except (socket.timeout, TimeoutError):
            self.stats["timeouts"] += 1
            LOG.warning("nova metadata API at %s:%s timed out (%ss)", s.nova_host, s.nova_port,
                        s.timeout)
            return 504, "text/plain", b"Metadata server timed out\n"
        except (OSError, http.client.HTTPException) as e:
            self.stats["upstream_errors"] += 1
            LOG.warning("nova metadata API at %s:%s unreachable: %s", s.nova_host, s.nova_port, e)
            return 502, "text/plain", b"Metadata server unreachable\n"
        finally:
            conn.close()
        if status >= 500:
            self.stats["upstream_errors"] += 1
            LOG.warning("nova metadata API answered %s for instance %s", status, who.instance_id)
            return 500, "text/plain", b"Remote metadata server error\n"
        if status == 403:
            LOG.warning("nova refused the signature for instance %s: check "
                        "[metadata] metadata_proxy_shared_secret", who.instance_id)
        return status, ctype, data

    @staticmethod
    def _answer(h, status, data, ctype="text/plain", head=False):
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Connection", "close")
            h.end_headers()
            if not head:
                h.wfile.write(data)
        except OSError:
            pass  # the instance went away

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.s
        ctx = ssl.create_default_context(cafile=s.ca_cert or None)
        if s.nova_insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.client_cert:
            ctx.load_cert_chain(s.client_cert, s.client_key or None)
        return ctx
