"""Tell nova when ports of instances go up or down.

With ``[nova] url`` set, port status changes reported by agents become
``network-vif-plugged`` / ``network-vif-unplugged`` events, and port
deletions ``network-vif-deleted``, POSTed in batches to nova's
``/os-server-external-events``.  Sending happens on a background thread:
a slow or absent nova never blocks the API; failed batches are retried
with backoff and dropped after ``max_attempts``.
"""

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request

from oslo_config import cfg
from sqlalchemy import event as sa_event

LOG = logging.getLogger(__name__)

OPTS = [("nova", [
    cfg.StrOpt("url", default="",
               help="Nova's compute API endpoint (e.g. http://nova:8774/v2.1). "
                    "Empty: no events are sent."),
    cfg.StrOpt("auth_token", default="", secret=True,
               help="Token sent as X-Auth-Token (a service token)."),
    cfg.StrOpt("project_id", default="service",
               help="With no token: the X-Project-Id header for a noauth nova."),
    cfg.FloatOpt("send_events_interval", default=0.2,
                 help="Seconds to gather events into one batch."),
    cfg.IntOpt("max_attempts", default=10,
               help="Attempts to deliver a batch before it is dropped."),
    cfg.FloatOpt("timeout", default=10.0, help="HTTP timeout for nova calls."),
])]


def is_compute(device_owner):
    return (device_owner or "").startswith("compute:")


class Notifier:
    def __init__(self, url, token="", project_id="service", interval=0.2,
                 max_attempts=10, timeout=10.0):
        self.url = url.rstrip("/") + "/os-server-external-events"
        self.token = token
        self.project_id = project_id
        self.interval = interval
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.pending = collections.deque()
        self.cond = threading.Condition()
        self.sent = 0
        self.failed_batches = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="nova-notifier", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ events
    def port_status_changed(self, changes):
        """``changes``: (port_id, device_id, device_owner, status) tuples."""
        events = []
        for port_id, device_id, owner, status in changes:
            if not device_id or not is_compute(owner):
                continue
            name = "network-vif-plugged" if status == "ACTIVE" else "network-vif-unplugged"
            events.append({"name": name, "server_uuid": device_id, "tag": port_id,
                           "status": "completed"})
        self.queue(events)

    def port_deleted(self, port_id, device_id, device_owner):
        if device_id and is_compute(device_owner):
            self.queue([{"name": "network-vif-deleted", "server_uuid": device_id,
                         "tag": port_id, "status": "completed"}])

    def queue(self, events):
        if not events:
            return
        with self.cond:
            self.pending.extend(events)
            self.cond.notify()

    # ------------------------------------------------------------ sending
    def _run(self):
        while not self._stopped:
            with self.cond:
                while not self.pending and not self._stopped:
                    self.cond.wait(1.0)
                if self._stopped:
                    return
            time.sleep(self.interval)  # gather a batch
            with self.cond:
                batch = list(self.pending)
                self.pending.clear()
            self._deliver(batch)

    def _deliver(self, batch):
        for attempt in range(self.max_attempts):
            if self._stopped:
                return
            try:
                self._post(batch)
                self.sent += len(batch)
                return
            except (OSError, urllib.error.URLError, ValueError) as e:
                status = getattr(e, "code", None)
                if status is not None and 400 <= status < 500 and status not in (404, 429):
                    LOG.warning("nova refused %d events (%s); dropping them", len(batch), e)
                    self.failed_batches += 1
                    return
                LOG.info("nova events not delivered (attempt %d): %s", attempt + 1, e)
                time.sleep(min(5.0, 0.1 * 2 ** attempt))
        self.failed_batches += 1
        LOG.warning("dropping %d nova events after %d attempts", len(batch), self.max_attempts)

    def _post(self, batch):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        else:
            headers["X-Project-Id"] = self.project_id
            headers["X-Roles"] = "admin"
        req = urllib.request.Request(self.url, data=json.dumps({"events": batch}).encode(),
                                     headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            resp.read()

    def stop(self):
        self._stopped = True
        with self.cond:
            self.cond.notify_all()
        self._thread.join(2)


def setup(plugin, conf):
    if not conf.nova.url:
        return
    n = Notifier(conf.nova.url, conf.nova.auth_token, conf.nova.project_id,
                 conf.nova.send_events_interval, conf.nova.max_attempts, conf.nova.timeout)
    plugin.nova_notifier = n
    plugin.status_listeners.append(n.port_status_changed)
    plugin.db.on_dispose.append(n.stop)

    def on_delete(s, ctx, port, a):
        info = (port.id, port.device_id, port.device_owner)
        # Only once the deletion is committed (the transaction may retry).
        sa_event.listen(s, "after_commit", lambda _s: n.port_deleted(*info), once=True)
    plugin.add_hook("ports", "delete", on_delete)
