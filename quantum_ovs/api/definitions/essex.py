"""The Essex API (Quantum v1.0 and v1.1) served from the v2.0 data: its
versions, errors and fault table.  It advertises no v2.0 alias and adds no
v2.0 attribute; its paths are
``/v1.{0,1}/tenants/{tenant_id}/networks[/{id}[/ports[/{id}[/attachment]]]]``
(see quantum_ovs.extensions.essex)."""

from quantum_ovs import exceptions

ALIASES = []

VERSIONS = ("1.0", "1.1")

# The v1.1 list filters (query parameters), and the other names Quantum's
# clients used for some of them.
NETWORK_FILTERS = ("name", "op-status", "port-op-status", "port-state", "has-attachment",
                   "attachment", "port")
NETWORK_FILTER_ALIASES = {"has-operational-port": "port-op-status",
                          "has-active-port": "port-state", "has-interface": "has-attachment",
                          "with-interface": "attachment", "with-port": "port"}
PORT_FILTERS = ("state", "op-status", "has-attachment", "attachment")
PORT_FILTER_ALIASES = {"has-interface": "has-attachment", "with-interface": "attachment"}


# ------------------------------------------------------------------ errors
class StateInvalid(exceptions.BadRequest):
    message = "Unsupported port state: %(port_state)s."


class AlreadyAttached(exceptions.Conflict):
    message = ("Unable to plug the attachment %(att_id)s into port %(port_id)s for "
               "network %(net_id)s. The attachment is already plugged into port "
               "%(att_port_id)s.")


class MalformedRequest(exceptions.BadRequest):
    message = "%(reason)s"


class TenantMismatch(exceptions.NotAuthorized):
    message = "Tenant %(tenant_id)s is not the caller's project."


# kind -> (v1.0 code, v1.0 name, v1.1 code, v1.1 type, what it means)
FAULTS = {
    exceptions.NetworkNotFound: (420, "networkNotFound", 404, "NetworkNotFound",
                                 "No network with this identifier exists."),
    exceptions.NetworkInUse: (421, "networkInUse", 409, "NetworkInUse",
                              "The network cannot be removed while attachments are "
                              "plugged into its ports."),
    exceptions.PortNotFound: (430, "portNotFound", 404, "PortNotFound",
                              "No port with this identifier exists on the network."),
    StateInvalid: (431, "requestedStateInvalid", 400, "RequestedStateInvalid",
                   "The port cannot be put in the requested state."),
    exceptions.PortInUse: (432, "portInUse", 409, "PortInUse",
                           "An attachment is plugged into the port."),
    AlreadyAttached: (440, "alreadyAttached", 409, "AlreadyAttached",
                      "The attachment is plugged into another port."),
}
V10_NAMES = {400: "malformedRequest", 401: "unauthorized", 403: "forbidden",
             404: "itemNotFound", 405: "notAllowed", 409: "conflict",
             503: "serviceUnavailable"}
