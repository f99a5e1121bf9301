"""Native responders: the agent answers DHCP itself (no dnsmasq, no DHCP port).

The flow pipeline punts DHCP client packets of local ports to the controller;
the agent passes the raw frame and the ingress port's logical data to a
responder and sends the reply it returns back out of that port.  Responders
are pure: bytes and model values in, bytes (or None) out, no I/O.
"""

from agent.responders.dhcp import DhcpResponder
from agent.responders.dhcp6 import Dhcp6Responder

__all__ = ["DhcpResponder", "Dhcp6Responder"]
