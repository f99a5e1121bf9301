"""The nova notifier's configuration ([nova], keystoneauth1) and its
bounded requests, without nova or Keystone."""

import socket
import threading
import time

from quantum_ovs import config
from quantum_ovs.nova import notifier


def _conf(tmp_path, text):
    path = tmp_path / "q.conf"
    path.write_text(text)
    return config.make_conf(["--config-file", str(path)])


def test_no_url_and_no_auth_type_sends_nothing(tmp_path):
    assert notifier.make_notifier(_conf(tmp_path, "[nova]\n")) is None


def test_password_auth_finds_nova_in_the_catalog(tmp_path):
    conf = _conf(tmp_path, "[nova]\nauth_type = password\nauth_url = http://127.0.0.1:9/v3\n"
                           "username = quantum\npassword = secret\nproject_name = service\n"
                           "user_domain_name = Default\nproject_domain_name = Default\n"
                           "region_name = R2\nendpoint_type = internal\n")
    n = notifier.make_notifier(conf)
    try:
        assert n is not None and n.session.auth is not None
        assert n.session.auth.auth_url == "http://127.0.0.1:9/v3"
        assert n.endpoint_filter == {"service_type": "compute", "interface": "internal",
                                     "region_name": "R2"}
        assert n.url == "/os-server-external-events"  # relative: the catalog's nova
        assert n.timeout == notifier.DEFAULT_TIMEOUT == n.session.timeout
    finally:
        n.stop()


def test_a_nova_that_never_answers_costs_one_timeout(tmp_path):
    """[nova] timeout bounds each request: a nova that accepts and never
    answers fails the attempt after it, and the batch is dropped after
    max_attempts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    port = listener.getsockname()[1]
    conf = _conf(tmp_path, f"[nova]\nurl = http://127.0.0.1:{port}/v2.1\ntimeout = 1\n"
                           "max_attempts = 1\nsend_events_interval = 0.01\n")
    n = notifier.make_notifier(conf)
    try:
        t0 = time.monotonic()
        n.queue([{"name": "network-vif-plugged", "server_uuid": "x", "tag": "p"}])
        while n.failed_batches == 0 and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        assert n.failed_batches == 1 and n.sent == 0
        assert held  # it did connect
        assert time.monotonic() - t0 < 5
    finally:
        n.stop()
        stop.set()
        t.join(2)
        for s in held:
            s.close()
        listener.close()
