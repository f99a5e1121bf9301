"""Subnets whose hosts make their own IPv6 address (Neutron's
is_auto_address_subnet): either ``ipv6_address_mode`` or ``ipv6_ra_mode``
of slaac / dhcpv6-stateless.  With the RA mode alone our router
advertisement tells instances to make an EUI-64 address, so their ports
must hold it (port security lets only a port's own addresses out)."""

import pytest

from quantum_ovs.db.addresses import eui64

MODES = ["slaac", "dhcpv6-stateless"]


@pytest.mark.parametrize("mode", MODES)
def test_ra_mode_alone_gives_ports_their_eui64_address(api, mode):
    net = api.network()
    port0 = api.port(net["id"], mac_address="fa:16:3e:00:00:01")
    sub = api.subnet(net["id"], "2001:db8:70::/64", ipv6_ra_mode=mode)
    assert sub["ipv6_address_mode"] is None
    # the port already there gets its address, as with the address mode
    got = api.get(f"/v2.0/ports/{port0['id']}", status=200).data["port"]["fixed_ips"]
    assert got == [{"subnet_id": sub["id"],
                    "ip_address": eui64("2001:db8:70::/64", "fa:16:3e:00:00:01")}]
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:02")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"],
                                  "ip_address": eui64("2001:db8:70::/64", "fa:16:3e:00:00:02")}]
    # a MAC change moves it
    moved = api.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:00:00:03"}},
                    admin=True, status=200).data["port"]
    assert moved["fixed_ips"][0]["ip_address"] == eui64("2001:db8:70::/64", "fa:16:3e:00:00:03")
    # no address of choice there
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "2001:db8:70::99"}]}}, status=400)
    assert r.data["NeutronError"]["type"] == "AllocationOnAutoAddressSubnet"
    # and the subnet is not in use by the addresses ports made themselves
    api.delete(f"/v2.0/subnets/{sub['id']}", status=204)
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["fixed_ips"] == []


@pytest.mark.parametrize("modes", [{"ipv6_ra_mode": "slaac"},
                                   {"ipv6_address_mode": "slaac"},
                                   {"ipv6_ra_mode": "dhcpv6-stateless",
                                    "ipv6_address_mode": "dhcpv6-stateless"}])
@pytest.mark.parametrize("cidr", ["2001:db8:71::/80", "2001:db8:71::/56"])
def test_an_automatic_subnet_needs_a_64_prefix(api, modes, cidr):
    """As Neutron: an EUI-64 address fills 64 bits (on a /80 ours was
    outside the subnet)."""
    net = api.network()
    r = api.post("/v2.0/subnets", {"subnet": dict(
        network_id=net["id"], ip_version=6, cidr=cidr, **modes)}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert "/64" in r.data["NeutronError"]["message"]
    assert api.count("subnets") == 0


def test_a_stateful_subnet_may_have_any_prefix(api):
    net = api.network()
    api.subnet(net["id"], "2001:db8:72::/80", ipv6_ra_mode="dhcpv6-stateful",
               ipv6_address_mode="dhcpv6-stateful")
    api.subnet(net["id"], "2001:db8:73::/120")
