"""Errors with Neutron's type names, messages and HTTP codes.

The API turns every QuantumError into the NeutronError body
``{"NeutronError": {"type": <class name>, "message": ..., "detail": ""}}``.
"""


class QuantumError(Exception):
    code = 500
    message = "An unknown exception occurred."

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message % kwargs
            except (KeyError, TypeError, ValueError):
                message = self.message
        self.msg = message
        super().__init__(message)

    @property
    def type(self):
        return type(self).__name__


class BadRequest(QuantumError):
    code = 400
    message = "Bad %(resource)s request: %(msg)s."


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


def over_cap(cap, count, before=0, given=False):
    """Whether ``count`` breaks a per-object cap: a count a request names
    (``given``) whenever it is over ``cap``; an object's count after a
    change only when it is over ``cap`` and grew past ``before`` (an object
    that has more, from before a lowered cap, keeps them and may shed)."""
    return count > cap and (given or count > before)


def check_cap(owner, noun, cap, count, before=0, given=False):
    """400 InvalidInput "<owner> may have at most <cap> <noun>, ..." when
    ``count`` breaks the cap (over_cap)."""
    if over_cap(cap, count, before, given):
        told = f"{count} given" if given else f"not {count}"
        raise InvalidInput(error_message=f"{owner} may have at most {cap} {noun}, {told}")


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pairs exceeds the maximum of %(quota)s."


class DuplicateAddressPairInRequest(InvalidInput):
    message = ("The address pair of MAC address %(mac_address)s and IP address "
               "%(ip_address)s is given more than once.")


class MalformedRequestBody(BadRequest):
    message = "Malformed request body: %(reason)s."


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OverlappingAllocationPools(BadRequest):
    message = ("Found overlapping allocation pools: %(pool_1)s %(pool_2)s "
               "for subnet %(subnet_cidr)s.")


class OutOfBoundsAllocationPool(BadRequest):
    message = ("The allocation pool %(pool)s spans beyond the subnet cidr "
               "%(subnet_cidr)s.")


class GatewayConflictWithAllocationPools(InvalidInput):
    message = ("Gateway ip %(ip_address)s conflicts with allocation pool "
               "%(pool)s.")


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class AllocationOnAutoAddressSubnet(BadRequest):
    message = ("IPv6 address %(ip)s cannot be directly assigned to a port on subnet "
               "%(subnet_id)s as the subnet is configured for automatic addresses")


class InvalidIpForNetwork(BadRequest):
    message = ("IP address %(ip_address)s is not a valid IP for any of the subnets on "
               "the specified network.")


class InvalidSharedSetting(QuantumError):
    code = 409
    message = ("Unable to reconfigure sharing settings for network %(network)s. "
               "Multiple tenants are using it.")


class NotAuthorized(QuantumError):
    code = 403
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    message = "(rule:%(action)s) is disallowed by policy"


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges: %(reason)s."


class NotFound(QuantumError):
    code = 404
    message = "An unknown exception occurred."


class ResourceNotFound(NotFound):
    message = "The resource could not be found."


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class PortNotFound(NotFound):
    message = "Port %(port_id)s could not be found."


class ExtensionNotFound(NotFound):
    message = "Extension with alias %(alias)s does not exist."


class Conflict(QuantumError):
    code = 409
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class NetworkInUse(InUse):
    message = ("Unable to complete operation on network %(net_id)s. "
               "There are one or more ports still in use on the network.")


class SubnetInUse(InUse):
    message = ("Unable to complete operation on subnet %(subnet_id)s: "
               "One or more ports have an IP allocation from this subnet.")


class PortInUse(InUse):
    message = ("Unable to complete operation on port %(port_id)s for network "
               "%(net_id)s. Port already has an attached device %(device_id)s.")


class UnsupportedPortDeviceOwner(Conflict):
    message = ("Operation %(op)s is not supported for device_owner %(device_owner)s on "
               "port %(port_id)s.")


class DeviceIDNotOwnedByTenant(Conflict):
    message = ("The following device_id %(device_id)s is not owned by your tenant or "
               "matches another tenants router.")


class PortBound(InUse):
    message = ("Unable to complete operation on port %(port_id)s, port is already bound, "
               "port type: %(vif_type)s, old_mac %(old_mac)s, new_mac %(new_mac)s.")


class MacAddressInUse(InUse):
    message = ("Unable to complete operation for network %(net_id)s. "
               "The mac address %(mac)s is in use.")


class IpAddressInUse(InUse):
    message = ("Unable to complete operation for network %(net_id)s. "
               "The IP address %(ip_address)s is in use.")


class AddressPairAndPortSecurityRequired(Conflict):
    message = ("Port Security must be enabled in order to have allowed address pairs "
               "on a port.")


class NetworkMTUSubnetConflict(Conflict):
    message = "MTU of %(net_id)s is not valid, subnet requires a minimum of %(mtu)s"


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found."


class IpAddressAlreadyAllocated(Conflict):
    message = ("IP address %(ip)s already allocated in subnet %(subnet_id)s")


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class IpAddressGenerationFailureNoMatchingSubnet(IpAddressGenerationFailure):
    # (subnet-service-types: every subnet of the network serves other owners)
    message = ("No valid service subnet for the given device owner, network %(net_id)s, "
               "service type %(service_type)s.")


class MacAddressGenerationFailure(QuantumError):
    code = 503
    message = "Unable to generate unique mac on network %(net_id)s."


class ServiceUnavailable(QuantumError):
    code = 503
    message = "The service is unavailable."


class PreconditionFailed(QuantumError):
    code = 412
    message = "Precondition failed: %(reason)s."


class RequestTimeout(QuantumError):
    """A request body that did not come in time (the server's deadline
    for the whole body: see quantum_ovs.cmd.server)."""
    code = 408
    message = "The request body did not arrive in time."


class RetryRequest(Exception):
    """Raised inside a DB transaction to ask for it to be retried."""
