"""OpenFlow for the agent: encode.py (Flow <-> os-ken messages, the only
os-ken import) and channel.py (the controller connection: bundles, dumps,
barrier, packet-in/out, reconnection events)."""

from agent.openflow.channel import (
    BundleRejected,
    Channel,
    ChannelError,
    ConnectionLost,
    CookieScope,
    NotConnected,
    OpenFlowError,
)

__all__ = [
    "BundleRejected",
    "Channel",
    "ChannelError",
    "ConnectionLost",
    "CookieScope",
    "NotConnected",
    "OpenFlowError",
]
