"""Tell nova when ports of instances go up or down.

Port status changes reported by agents become ``network-vif-plugged`` /
``network-vif-unplugged`` events, port deletions ``network-vif-deleted``,
and, as Neutron's ``notify_nova_on_port_data_changes`` (on by default)
has it, an instance port's update through the API, and a floating IP
associated with it, changed or taken from it, ``network-changed`` (nova
refreshes the instance's network information).  Only ports of an
instance are named: a ``compute:*`` owner and a ``device_id`` that is a
UUID (nova refuses a request whose events name anything else, with every
other event in it).  They are POSTed in batches to nova's
``/os-server-external-events``.  Sending happens on a background thread:
a slow or absent nova never blocks the API; failed batches are retried
with backoff and dropped after ``max_attempts``; each request (to nova or
to Keystone) is bounded by ``[nova] timeout``.  A batch nova refuses as a
whole (400) is sent again event by event, so that one event cannot cost
the others theirs; one naming no instance nova knows (404) is dropped at
once, not retried (as Neutron does).

Authentication, as Neutron's ``[nova]`` section: keystoneauth1 from
``auth_type`` (``password``: ``auth_url``, ``username``, ``password``,
``project_name``, ``user_domain_name``, ``project_domain_name``) and the
session options (``cafile``, ``insecure``, ``timeout``...).  Nova's
endpoint is found in the service catalog (service type ``compute``,
``region_name``, ``endpoint_type``) unless ``url`` names it; the token is
renewed by keystoneauth before it expires (and once more on a 401).

Without ``auth_type``: a static ``auth_token`` (deprecated: it stops
working when the token expires), or none (a noauth nova, as admin of
``project_id``).  Events are sent when ``url`` or ``auth_type`` is set.
"""

import collections
import logging
import threading
import time
import uuid

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from quantum_ovs.db.models import Port
from quantum_ovs.db.session import after_commit

LOG = logging.getLogger(__name__)

GROUP = "nova"
DEFAULT_TIMEOUT = 10  # seconds, when [nova] timeout is unset

OPTS = [(GROUP, [
    cfg.StrOpt("url", default="",
               help="Nova's compute API endpoint (e.g. http://nova:8774/v2.1). "
                    "Empty: found in the service catalog (with auth_type). "
                    "Empty and no auth_type: no events are sent."),
    cfg.StrOpt("auth_token", default="", secret=True,
               deprecated_for_removal=True,
               deprecated_reason="A static token stops working when it expires; "
                                 "set auth_type and its options (keystoneauth1) "
                                 "instead.",
               help="Without auth_type: a token sent as X-Auth-Token."),
    cfg.StrOpt("region_name",
               help="Name of nova's region in the service catalog."),
    cfg.StrOpt("endpoint_type", default="public",
               choices=["public", "admin", "internal"],
               help="Which of nova's catalog endpoints to use."),
    cfg.FloatOpt("send_events_interval", default=0.2,
                 help="Seconds to gather events into one batch."),
    cfg.IntOpt("max_attempts", default=10,
               help="Attempts to deliver a batch before it is dropped."),
]
    # the project of a token (password plugin); with no auth_type, the
    # X-Project-Id sent to a noauth nova (default: service)
    + [o for o in ks_loading.get_auth_plugin_conf_options("password")
       if o.dest == "project_id"]
    + ks_loading.get_session_conf_options()
    + ks_loading.get_auth_common_conf_options())]

# The options of the auth plugin are registered when it is loaded (they
# depend on auth_type); listed for the sample configuration only, with
# the password plugin's.
SAMPLE_OPTS = [(GROUP, [o for o in ks_loading.get_auth_plugin_conf_options("password")
                        if o.dest != "project_id"])]


class NovaRefused(Exception):
    """Nova answered an HTTP error."""

    def __init__(self, code, text):
        super().__init__(f"HTTP {code}: {text[:300]}")
        self.code = code


def is_compute(device_owner):
    return (device_owner or "").startswith("compute:")


def uuid_like(v) -> bool:
    """Whether nova takes ``v`` as an instance's UUID (its ``uuid``
    format: any case, with or without dashes, braces or a urn prefix)."""
    if not isinstance(v, str):
        return False
    try:
        u = uuid.UUID(v)
    except ValueError:
        return False
    bare = v.lower().removeprefix("urn:").removeprefix("uuid:").strip("{}").replace("-", "")
    return u.hex == bare


def is_instance_port(device_id, device_owner) -> bool:
    """A port nova's events may name: an instance's (Neutron's
    _is_compute_port)."""
    return bool(device_id) and is_compute(device_owner) and uuid_like(device_id)


class Notifier:
    """``session``: a keystoneauth1 Session (with an auth plugin that gets
    and renews tokens, or none); ``url``: nova's endpoint, or empty to
    find it in the session's catalog (``endpoint_filter``)."""

    def __init__(self, url="", token="", project_id="service", interval=0.2,
                 max_attempts=10, timeout=DEFAULT_TIMEOUT, session=None,
                 endpoint_filter=None):
        self.url = url.rstrip("/") + "/os-server-external-events" if url else \
            "/os-server-external-events"
        self.token = token
        self.project_id = project_id
        self.interval = interval
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.session = session or ks_session.Session(timeout=timeout)
        self.endpoint_filter = None if url else dict(
            endpoint_filter or {}, service_type="compute")
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
            if not is_instance_port(device_id, owner):
                continue
            name = "network-vif-plugged" if status == "ACTIVE" else "network-vif-unplugged"
            events.append({"name": name, "server_uuid": device_id, "tag": port_id,
                           "status": "completed"})
        self.queue(events)

    def port_deleted(self, port_id, device_id, device_owner):
        if is_instance_port(device_id, device_owner):
            self.queue([{"name": "network-vif-deleted", "server_uuid": device_id,
                         "tag": port_id, "status": "completed"}])

    def network_changed(self, port_id, device_id, device_owner):
        if is_instance_port(device_id, device_owner):
            self.queue([{"name": "network-changed", "server_uuid": device_id,
                         "tag": port_id}])

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
            except (OSError, ks_exc.ClientException, NovaRefused, ValueError) as e:
                status = getattr(e, "code", None)
                if status == 400 and len(batch) > 1:
                    # one event nova does not take refuses them all: each
                    # on its own, the others get through
                    LOG.warning("nova refused a batch of %d events (%s); sending them one "
                                "by one", len(batch), e)
                    for one in batch:
                        self._deliver([one])
                    return
                if status == 404:
                    # (none of the instances is nova's: retrying cannot help,
                    # and would hold up every event behind it)
                    LOG.info("nova knows none of the instances of %d events; dropping them",
                             len(batch))
                    self.failed_batches += 1
                    return
                if status is not None and 400 <= status < 500 and status != 429:
                    LOG.warning("nova refused %d events (%s); dropping them", len(batch), e)
                    self.failed_batches += 1
                    return
                LOG.info("nova events not delivered (attempt %d): %s", attempt + 1, e)
                time.sleep(min(5.0, 0.1 * 2 ** attempt))
        self.failed_batches += 1
        LOG.warning("dropping %d nova events after %d attempts", len(batch), self.max_attempts)

    def _post(self, batch):
        headers = {"Accept": "application/json"}
        if self.session.auth is None:
            if self.token:
                headers["X-Auth-Token"] = self.token
            else:
                headers["X-Project-Id"] = self.project_id
                headers["X-Roles"] = "admin"
        # keystoneauth adds the token (getting or renewing it first), finds
        # nova in the catalog and, on a 401, renews the token and retries.
        resp = self.session.post(self.url, json={"events": batch}, headers=headers,
                                 endpoint_filter=self.endpoint_filter,
                                 timeout=self.timeout, raise_exc=False,
                                 connect_retries=0, log=False)
        if resp.status_code >= 400:
            raise NovaRefused(resp.status_code, resp.text)

    def stop(self):
        self._stopped = True
        with self.cond:
            self.cond.notify_all()
        self._thread.join(2)


def make_notifier(conf):
    """The Notifier ``conf``'s [nova] section asks for, or None."""
    c = conf[GROUP]
    if not (c.url or c.auth_type):
        return None
    timeout = c.timeout or DEFAULT_TIMEOUT
    session = None
    if c.auth_type:
        auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
        # (the timeout bounds the token requests to Keystone too)
        session = ks_loading.load_session_from_conf_options(conf, GROUP, auth=auth,
                                                            timeout=timeout)
    elif c.auth_token:
        LOG.warning("[nova] auth_token is deprecated: nova events stop when the token "
                    "expires; set [nova] auth_type and its options")
    if session is None and (c.cafile or c.insecure):
        session = ks_loading.load_session_from_conf_options(conf, GROUP, timeout=timeout)
    return Notifier(c.url, c.auth_token, c.project_id or "service",
                    c.send_events_interval, c.max_attempts, timeout, session=session,
                    endpoint_filter={"interface": c.endpoint_type,
                                     "region_name": c.region_name})


def setup(plugin, conf):
    n = make_notifier(conf)
    if n is None:
        return
    plugin.nova_notifier = n
    plugin.status_listeners.append(n.port_status_changed)
    plugin.db.on_dispose.append(n.stop)

    def on_delete(s, ctx, port, a):
        after_commit(s, n.port_deleted, port.id, port.device_id, port.device_owner)
    plugin.add_hook("ports", "delete", on_delete)

    def on_update(s, ctx, port, a):
        after_commit(s, n.network_changed, port.id, port.device_id, port.device_owner)
    plugin.add_hook("ports", "update", on_update)

    # A floating IP associated with a port, moved or taken from it: both
    # ports' instances are told (Neutron's send_network_change).
    before = "qovs.nova.fip_port"

    def ports_changed(s, *port_ids):
        for pid in sorted({p for p in port_ids if p}):
            port = s.get(Port, pid)
            if port is not None:
                after_commit(s, n.network_changed, port.id, port.device_id, port.device_owner)

    def fip_before_update(s, ctx, fip, a):
        s.info.setdefault(before, {})[fip.id] = fip.fixed_port_id

    def fip_update(s, ctx, fip, a):
        old = s.info.get(before, {}).pop(fip.id, None)
        if old != fip.fixed_port_id:
            ports_changed(s, old, fip.fixed_port_id)

    plugin.add_hook("floatingips", "create", lambda s, ctx, fip, a: ports_changed(
        s, fip.fixed_port_id))
    plugin.add_hook("floatingips", "before_update", fip_before_update)
    plugin.add_hook("floatingips", "update", fip_update)
    plugin.add_hook("floatingips", "delete", lambda s, ctx, fip, a: ports_changed(
        s, fip.fixed_port_id))
