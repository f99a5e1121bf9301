"""A project's router interface port names a router of its own project.

A port whose ``device_owner`` is a router interface's
(``network:router_interface`` and its distributed and HA kinds) and
whose ``device_id`` is another project's router would pass for that
router's interface (Neutron: "prevent projects from replacing the device
id of router ports with a router uuid belonging to another project").
As Neutron's _enforce_device_owner_not_router_intf_or_device_id, on
every create and update by a non-admin: such a device_id is 409
DeviceIDNotOwnedByTenant; a device_id that is no router is let be; and
without the router service plugin any device_id is refused.  Ports the
server makes itself (a router's own interfaces) are not checked.
"""

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.db import models
from quantum_ovs.db.resources.subnets import ROUTER_INTERFACE_OWNERS


def setup(plugin, conf):
    def check(s, ctx, port, a):
        # (an update checks the port as it now is, whatever changed, as
        # Neutron's _validate_port_for_update does in effect)
        if ctx is None or ctx.is_admin or port.device_owner not in ROUTER_INTERFACE_OWNERS \
                or not port.device_id:
            return
        if "routers" not in plugin.collections:
            raise exceptions.DeviceIDNotOwnedByTenant(device_id=port.device_id)
        R = models.Router
        router = s.execute(sa.select(R.project_id).where(R.id == port.device_id)).first()
        if router is not None and router.project_id != port.project_id:
            raise exceptions.DeviceIDNotOwnedByTenant(device_id=port.device_id)

    plugin.add_hook("ports", "create", check)
    plugin.add_hook("ports", "update", check)
