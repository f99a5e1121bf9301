"""The metadata proxy's settings as plain values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional


@dataclass
class MetadataSettings:
    """``nova_*`` and ``shared_secret`` as Neutron's [metadata] options;
    ``namespace`` None: one named after the host; ``bridge_netns``: the
    network namespace of br-int's devices when it is not the agent's own
    (tests run Open vSwitch in a namespace of its own)."""

    shared_secret: str = ""
    nova_host: str = "127.0.0.1"
    nova_port: int = 8775
    nova_protocol: str = "http"
    nova_insecure: bool = False
    ca_cert: str = ""
    client_cert: str = ""
    client_key: str = ""
    timeout: float = 5.0
    max_requests: int = 128
    # One port's share (each at most half the host's): connections, idle
    # ones included (the host's: 2 x max_requests), and requests in flight.
    port_max_connections: int = 8
    port_max_requests: int = 4
    listen_port: int = 80
    namespace: Optional[str] = None
    bridge_netns: Optional[str] = None

    def namespace_for(self, host: str) -> str:
        return self.namespace or "qovs-meta-" + _digest(host)

    def device_for(self, host: str) -> str:
        """br-int's end of the veth to the namespace (<= 15 characters)."""
        return "qmd" + _digest(host)

    @classmethod
    def from_conf(cls, conf) -> Optional["MetadataSettings"]:
        c = conf.metadata
        if not c.enable_metadata_proxy:
            return None
        return cls(shared_secret=c.metadata_proxy_shared_secret or "",
                   nova_host=c.nova_metadata_host, nova_port=c.nova_metadata_port,
                   nova_protocol=c.nova_metadata_protocol,
                   nova_insecure=c.nova_metadata_insecure, ca_cert=c.auth_ca_cert or "",
                   client_cert=c.nova_client_cert or "", client_key=c.nova_client_priv_key or "",
                   timeout=c.nova_metadata_timeout, max_requests=c.metadata_max_requests,
                   namespace=c.metadata_namespace or None,
                   bridge_netns=c.integration_bridge_netns or None)


def _digest(host: str) -> str:
    return hashlib.blake2b(host.encode(), digest_size=4).hexdigest()
