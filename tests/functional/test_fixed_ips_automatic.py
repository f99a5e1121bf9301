"""Review s25 (today's commits): automatic-address subnets, found by a
read-only review; each test fails on the reviewed code."""

import pytest

from quantum_ovs.db.addresses import eui64

MODES = [{"ipv6_ra_mode": "slaac"}, {"ipv6_ra_mode": "dhcpv6-stateless"},
         {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}]


@pytest.mark.parametrize("modes", MODES)
def test_a_fixed_ips_update_keeps_the_ports_automatic_address(api, modes):
    """Neutron's _get_changed_ips_for_port: an address on an automatic
    subnet (is_auto_address_subnet) that a fixed_ips update does not name
    stays (_is_ip_required_by_subnet is False for it, a router's port
    aside); only {"subnet_id": ..., "delete_subnet": true} removes it.  The
    instance keeps using its EUI-64 address (the RA still tells it to), so
    a port that loses it has its traffic from it dropped by port security."""
    net = api.network()
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    v6 = api.subnet(net["id"], "2001:db8:90::/64", **modes)
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:21")
    mine = eui64("2001:db8:90::/64", "fa:16:3e:00:00:21")
    assert {x["subnet_id"]: x["ip_address"] for x in port["fixed_ips"]}[v6["id"]] == mine
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": v4["id"], "ip_address": "10.0.0.77"}]}}, status=200).data["port"]
    got = {x["subnet_id"]: x["ip_address"] for x in upd["fixed_ips"]}
    assert got == {v4["id"]: "10.0.0.77", v6["id"]: mine}
