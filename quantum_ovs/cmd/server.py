"""quantum-ovs-server: the API server.

The only module that imports eventlet.  With api_workers > 1 the parent
binds the socket, forks the workers and supervises them; each worker
opens its own database connections after the fork.
"""

import eventlet

eventlet.monkey_patch()

import ctypes  # noqa: E402
import errno  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import ssl  # noqa: E402 (green: eventlet patched it)
import sys  # noqa: E402
import time  # noqa: E402

import eventlet.wsgi  # noqa: E402

from quantum_ovs import config, service  # noqa: E402
from quantum_ovs.db import migration  # noqa: E402

LOG = logging.getLogger("quantum_ovs.server")


class _WsgiLog:
    """eventlet.wsgi writes its own access lines; we log ours instead."""

    def write(self, msg):
        msg = msg.rstrip()
        if msg and "Traceback" in msg:
            LOG.error(msg)

    def flush(self):
        pass


class _Protocol(eventlet.wsgi.HttpProtocol):
    """A client that fails the TLS handshake (wrong CA, plain HTTP on the
    HTTPS port) is one log line, not a traceback from the hub."""

    def handle(self):
        try:
            super().handle()
        except ssl.SSLError as e:
            LOG.info("TLS connection from %s failed: %s", self.client_address[0], e)


def _chunked_input(app):
    """eventlet's server decodes chunked request bodies: say so, as the
    WSGI convention has it, so that they are read (webob otherwise takes a
    body without Content-Length for none)."""
    def wrapped(environ, start_response):
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and \
                "CONTENT_LENGTH" not in environ:
            environ["wsgi.input_terminated"] = True
        return app(environ, start_response)
    return wrapped


def serve(conf, sock):
    _db, _plugin, app = service.build(conf, migrate=False)
    pool = eventlet.GreenPool(conf.wsgi_green_threads)
    # debug=False: an error that escapes the app is a bare 500, never a
    # traceback sent to the client.
    eventlet.wsgi.server(sock, _chunked_input(app), custom_pool=pool, log=_WsgiLog(),
                         log_output=False, keepalive=True, socket_timeout=900,
                         max_size=conf.wsgi_green_threads, debug=False,
                         protocol=_Protocol)


def _loopback_only(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def warn_unsafe(conf):
    """A loud warning when anyone who can reach the port is admin."""
    if conf.auth_strategy != "noauth" or _loopback_only(conf.bind_host):
        return False
    for line in (
            "*" * 72,
            f"auth_strategy = noauth and bind_host = {conf.bind_host}: ANY client that "
            "can reach",
            f"port {conf.bind_port} may act as ANY project, or as admin (X-Roles: admin), "
            "without",
            "credentials. Use auth_strategy = keystone, or bind_host = 127.0.0.1.",
            "*" * 72):
        LOG.warning(line)
    return True


PR_SET_PDEATHSIG = 1


def _pdeathsig():
    """prctl(2) from libc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    return prctl


def _die_with_parent(prctl, parent):
    """In a forked worker: SIGTERM when the parent dies, even by SIGKILL,
    so that no worker keeps serving (and holding the socket) on its own."""
    if prctl is None:
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        LOG.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # it died before we asked
        os._exit(0)


def setup_logging(debug=False):
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)


def main(argv=None):
    conf = config.make_conf(sys.argv[1:] if argv is None else argv)
    setup_logging()
    warn_unsafe(conf)
    db = service.make_database(conf)
    if conf.database.auto_migrate:
        migration.upgrade(db.engine)
    db.dispose()
    sock = eventlet.listen((conf.bind_host, conf.bind_port), backlog=4096)
    if conf.ssl_cert_file:
        # Each connection's handshake runs in its own green thread (on its
        # first read), never in the accept loop.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(conf.ssl_cert_file, conf.ssl_key_file or None)
        sock = tls.wrap_socket(sock, server_side=True)
        LOG.info("serving HTTPS with %s", conf.ssl_cert_file)
    LOG.info("quantum-ovs-server listening on %s:%s with %d worker(s)",
             conf.bind_host, sock.getsockname()[1], conf.api_workers)
    sys.stdout.flush()
    if conf.api_workers <= 1:
        try:
            serve(conf, sock)
        except KeyboardInterrupt:
            pass
        return 0
    children = set()
    prctl = _pdeathsig()
    parent = os.getpid()

    def spawn():
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with_parent(prctl, parent)
            try:
                serve(conf, sock)
            finally:
                os._exit(0)
        children.add(pid)

    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(conf.api_workers):
        spawn()
    while children:
        try:
            pid, _status = os.wait()
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            break
        children.discard(pid)
        if not stopping:
            LOG.warning("worker %d exited; starting another", pid)
            time.sleep(0.1)
            spawn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
