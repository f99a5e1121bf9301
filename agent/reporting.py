"""Port-status reporting: tells the server which plugged ports have their
flows installed (it sets them ACTIVE and tells nova) and which were
unplugged, and which floating IPs this host applies are installed (the
server sets them ACTIVE); a failed report is retried."""

from __future__ import annotations

import logging
import threading

from agent import sync_client
from quantum_ovs.wire import REPORT_MAX_ENTRIES

LOG = logging.getLogger(__name__)

RETRY_AFTER = 1.0  # seconds


class PortReporter:
    def __init__(self, client, stop_event: threading.Event, retry):
        """``retry()`` is called (from a timer thread) when a report failed:
        it should make the agent call ``report`` again."""
        self.client = client
        self.stop_event = stop_event
        self.retry = retry
        self.reported = set()  # port ids reported as installed
        self.to_unplug = set()  # port ids unplugged, not yet reported
        self.fips = set()  # floating IP ids installed here, not yet reported
        # Entries in each list of one report: the server's most, halved
        # for each report refused as too large (413: an operator's
        # [oslo_middleware] max_request_body_size below what that many
        # take, ~100 bytes each).
        self.chunk = REPORT_MAX_ENTRIES

    def plugged(self, port_id) -> None:
        """(Re)plugged or moved to another ofport: report it again."""
        self.to_unplug.discard(port_id)
        self.reported.discard(port_id)

    def forget(self, port_ids) -> None:
        """Report these ports again once their flows are in (if plugged
        here and bound here then): the server reset their status, or must
        set it anew."""
        self.reported.difference_update(port_ids)

    def unplugged(self, port_id) -> None:
        self.reported.discard(port_id)
        self.to_unplug.add(port_id)

    def report(self, local, vifs) -> None:
        """Report the VIFs (port id -> ofport) of ports bound here
        (``local``) not reported yet, and the unplugged ones."""
        installed = [pid for pid in vifs if pid in local and pid not in self.reported]
        unplugged = sorted(self.to_unplug)
        fips = sorted(self.fips)
        # The server takes at most REPORT_MAX_ENTRIES in each list of one
        # report (400 beyond): an agent starting on a host with more ports
        # than that sends several, each kept as done once it is answered.
        try:
            while installed or unplugged or fips:
                n = self.chunk
                done, gone, applied = installed[:n], unplugged[:n], fips[:n]
                extra = {"floatingips": applied} if applied else {}
                try:
                    self.client.report(plugged=[(pid, vifs[pid]) for pid in done],
                                       unplugged=gone, installed=done, **extra)
                except sync_client.ServerError as e:
                    if e.status != 413 or n == 1:
                        raise
                    self.chunk = n // 2
                    LOG.warning("the server refused a report of %d entries as too large; "
                                "sending at most %d in each from now on", n, self.chunk)
                    continue
                self.reported.update(done)
                self.to_unplug.difference_update(gone)
                self.fips.difference_update(applied)
                installed, unplugged, fips = installed[n:], unplugged[n:], fips[n:]
        except (sync_client.ServerUnavailable, sync_client.ServerError) as e:
            if self.stop_event.is_set():
                return  # stopping: the next agent reports them
            LOG.info("could not report ports (%s); will retry", e)
            timer = threading.Timer(RETRY_AFTER, self.retry)
            timer.daemon = True  # never holds up the process's exit
            timer.start()
