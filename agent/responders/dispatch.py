"""Packet-ins to the DHCP responders: a DHCP request from a local VIF (the
pipeline punts it) is answered from the port's own data, out of the port
it came in on."""

from __future__ import annotations

import logging

from agent.responders.dhcp import DhcpResponder
from agent.responders.dhcp6 import Dhcp6Responder
from quantum_ovs.compiler.flow import Output

LOG = logging.getLogger(__name__)


class DhcpDispatcher:
    def __init__(self, lease_time, lookup, send, stats: dict):
        """``lookup(ofport)`` answers (port, network, subnets by id) of the
        local port on that ofport, or None; ``send(data, actions)`` sends a
        packet-out; replies are counted in ``stats["dhcp_replies"]``."""
        self.dhcp4 = DhcpResponder(lease_time=lease_time)
        self.dhcp6 = Dhcp6Responder(lease_time=lease_time)
        self.lookup = lookup
        self.send = send
        self.stats = stats

    def packet_in(self, pin) -> None:
        try:
            self._answer(pin)
        except Exception:  # noqa: BLE001 - a bad packet never stops the agent
            LOG.exception("packet-in handler failed")

    def _answer(self, pin):
        if pin.in_port is None or len(pin.data) < 14:
            return
        found = self.lookup(pin.in_port)
        if found is None:
            return
        port, network, subnets = found
        ethertype = int.from_bytes(pin.data[12:14], "big")
        responder = self.dhcp4 if ethertype == 0x0800 else \
            self.dhcp6 if ethertype == 0x86DD else None
        if responder is None:
            return
        reply = responder.handle(pin.data, port, subnets, network)
        if reply is not None:
            self.send(reply, [Output(pin.in_port)])
            self.stats["dhcp_replies"] = self.stats.get("dhcp_replies", 0) + 1
