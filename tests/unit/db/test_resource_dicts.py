"""port_dict writes the standard attributes itself (one dict display, for
listings): they must be std_dict's, in its order, with the same values."""

import datetime
import types

from quantum_ovs.db.resource import std_dict
from quantum_ovs.db.resources.ports import port_dict


def _port(**kw):
    when = datetime.datetime(2026, 12, 5, 5, 30, 1)
    attrs = dict(id="p", name="n", description="d", project_id="t", revision_number=3,
                 created_at=when, updated_at=when + datetime.timedelta(seconds=1),
                 tags=[types.SimpleNamespace(tag="b"), types.SimpleNamespace(tag="a")],
                 network_id="net", admin_state_up=True, mac_address="fa:16:3e:00:00:01",
                 status="DOWN", device_id="", device_owner="", port_security_enabled=True,
                 fixed_ips=[types.SimpleNamespace(subnet_id="s", ip_address="10.0.0.2")],
                 allowed_address_pairs=[])
    attrs.update(kw)
    return types.SimpleNamespace(**attrs)


def test_port_dict_starts_with_std_dict():
    for port in (_port(), _port(tags=[], fixed_ips=[])):
        d = port_dict(port)
        std = std_dict(port)
        assert list(d.items())[:len(std)] == list(std.items())
        assert list(d)[len(std):] == [
            "network_id", "admin_state_up", "mac_address", "status", "device_id",
            "device_owner", "port_security_enabled", "fixed_ips", "allowed_address_pairs"]
    assert port_dict(_port())["fixed_ips"] == [{"subnet_id": "s", "ip_address": "10.0.0.2"}]
