"""Port-status reporting: tells the server which plugged ports have their
flows installed (it sets them ACTIVE and tells nova) and which were
unplugged, and which floating IPs this host applies are installed (the
server sets them ACTIVE); a failed report is retried."""

from __future__ import annotations

import logging
import threading

from agent import sync_client

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

    def plugged(self, port_id) -> None:
        """(Re)plugged or moved to another ofport: report it again."""
        self.to_unplug.discard(port_id)
        self.reported.discard(port_id)

    def unplugged(self, port_id) -> None:
        self.reported.discard(port_id)
        self.to_unplug.add(port_id)

    def report(self, local, vifs) -> None:
        """Report the VIFs (port id -> ofport) of ports bound here
        (``local``) not reported yet, and the unplugged ones."""
        installed = [pid for pid in vifs if pid in local and pid not in self.reported]
        plugged = [(pid, vifs[pid]) for pid in installed]
        unplugged = sorted(self.to_unplug)
        fips = sorted(self.fips)
        if not (installed or unplugged or fips):
            return
        try:
            extra = {"floatingips": fips} if fips else {}
            self.client.report(plugged=plugged, unplugged=unplugged, installed=installed,
                               **extra)
            self.reported.update(installed)
            self.to_unplug.clear()
            self.fips.difference_update(fips)
        except (sync_client.ServerUnavailable, sync_client.ServerError) as e:
            if self.stop_event.is_set():
                return  # stopping: the next agent reports them
            LOG.info("could not report ports (%s); will retry", e)
            timer = threading.Timer(RETRY_AFTER, self.retry)
            timer.daemon = True  # never holds up the process's exit
            timer.start()
