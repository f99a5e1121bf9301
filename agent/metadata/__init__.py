"""The metadata service: one proxy per host, in the agent.

    settings    MetadataSettings (plain values, from the [metadata] options)
    namespace   the proxy's network namespace and its port on br-int
    proxy       the HTTP proxy: finds the asking port from the source
                address the flows gave it, signs the request for nova
    service     the agent's piece: plumbing, the proxy's thread, the
                supervision (re-plumb and restart when either is lost)

The flows (quantum_ovs/compiler/rules/metadata.py) steer an instance's
TCP to 169.254.169.254:80 to the proxy's port, with a source address made
of the ofport it entered by: the instance is known by its port, never by
an address it could forge.
"""
