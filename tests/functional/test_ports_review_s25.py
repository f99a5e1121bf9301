"""Review s25: ports and networks, adversarial (each test failed on the
code it was written against, but the un-sharing one we keep stricter)."""

import uuid

from tests.functional.test_agent_api import register


def _net(api, cidr="10.0.0.0/24", **kw):
    net = api.network()
    return net, api.subnet(net["id"], cidr, **kw)


def _err(r):
    return r.data["NeutronError"]["type"]


# --------------------------------------------------------------- SLAAC kept
def test_a_fixed_ips_update_keeps_the_slaac_address(api):
    """Neutron's _get_changed_ips_for_port / _is_ip_required_by_subnet: an
    address on an auto-address subnet that the update does not name is
    kept (it is the instance's own, from its MAC), for a non-router port."""
    net, v4 = _net(api)
    slaac = api.subnet(net["id"], "2001:db8:5::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:01")
    v6 = {x["subnet_id"]: x["ip_address"] for x in port["fixed_ips"]}[slaac["id"]]
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": v4["id"], "ip_address": "10.0.0.50"}]}}, status=200).data["port"]
    got = {x["subnet_id"]: x["ip_address"] for x in upd["fixed_ips"]}
    assert got == {v4["id"]: "10.0.0.50", slaac["id"]: v6}


# ------------------------------------------------------------ vnic on bound
def test_vnic_type_of_a_bound_port_does_not_change(api):
    """ML2's _validate_port_update: a new binding:vnic_type on a port whose
    vif_type is not unbound is 409 PortInUse (here a project member may
    ask it: update_port:binding:vnic_type)."""
    register(api, "h1", "192.0.2.1")
    net, _ = _net(api)
    port = api.port(net["id"], admin=True, device_owner="compute:nova",
                    **{"binding:host_id": "h1"})
    assert port["binding:vif_type"] == "ovs"
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:vnic_type": "direct"}},
                status=409)
    assert _err(r) == "PortInUse"
    got = api.get(f"/v2.0/ports/{port['id']}", admin=True).data["port"]
    assert got["binding:vnic_type"] == "normal" and got["binding:vif_type"] == "ovs"


# --------------------------------------------------- IPv6 subnet-router any
def test_the_ipv6_subnet_router_anycast_address_is_not_a_compute_ports(api):
    """ipam_utils.check_subnet_ip: on IPv6 the subnet's network address
    (the subnet-router anycast address) is for router ports (and ports
    of no owner) only: InvalidIpForSubnet for a compute port."""
    net = api.network()
    sub = api.subnet(net["id"], "2001:db8:7::/64", ipv6_address_mode="dhcpv6-stateful",
                     ipv6_ra_mode="dhcpv6-stateful")
    r = api.post("/v2.0/ports", {"port": {
        "network_id": net["id"], "device_owner": "compute:nova",
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "2001:db8:7::"}]}},
        status=400)
    assert _err(r) == "InvalidIpForSubnet"
    assert api.count("ports") == 0


# ------------------------------------------------------- extra dhcp opt ""
def test_an_empty_extra_dhcp_opt_value_is_a_400(api):
    """neutron-lib's EXTRA_DHCP_OPT_KEY_SPECS: opt_value is
    oneline_not_empty_string_or_none (only router and
    classless-static-route may be blank): "" is a 400, not silently
    dropped."""
    net, _ = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "bootfile-name", "opt_value": ""}]}}, status=400)
    assert _err(r) == "InvalidInput"


# ----------------------------------------------------- unknown subnet: 404
def test_fixed_ips_naming_an_unknown_subnet_is_subnet_not_found(api):
    """ipam_backend_mixin._get_subnet_for_fixed_ip: a subnet not on the
    network is looked up first (_get_subnet_object): one that does not
    exist is 404 SubnetNotFound."""
    net, _ = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": str(uuid.uuid4())}]}}, status=404)
    assert _err(r) == "SubnetNotFound"


def test_a_port_given_a_v4_subnet_gets_its_slaac_address_too(api):
    """ipam_pluggable_backend.allocate_ips_for_port: with fixed_ips given,
    _get_auto_address_ips still adds an address on every SLAAC /
    DHCPv6-stateless subnet of the network (not a router port's)."""
    net, v4 = _net(api)
    slaac = api.subnet(net["id"], "2001:db8:6::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:01",
                    fixed_ips=[{"subnet_id": v4["id"]}])
    got = {x["subnet_id"] for x in port["fixed_ips"]}
    assert got == {v4["id"], slaac["id"]}


# ------------------------------------------------------------- un-sharing
def test_unsharing_is_refused_while_another_projects_router_is_on_it(api):
    """Stricter than Neutron on purpose (its _validate_shared_update
    ignores every network:* port): another project's router interface
    keeps the network shared (409), else that project's router would stay
    on a network it can no longer see.  Its DHCP port does not."""
    net = api.network(admin=True, shared=True)
    api.subnet(net["id"], "10.0.0.0/24", admin=True)
    api.port(net["id"], project="p2", admin=True, tenant_id="p2", device_owner="network:dhcp")
    rif = api.port(net["id"], project="p2", admin=True, tenant_id="p2",
                   device_owner="network:router_interface")
    r = api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, admin=True,
                status=409)
    assert _err(r) == "InvalidSharedSetting"
    api.delete(f"/v2.0/ports/{rif['id']}", admin=True, status=204)
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, admin=True,
            status=200)


def test_unsharing_is_refused_while_another_project_has_a_subnet_there(api):
    """db_base_plugin_v2._validate_shared_update: the projects of the
    network's subnets count too: a subnet of another project (made by an
    admin) keeps the network shared (409 InvalidSharedSetting)."""
    net = api.network(admin=True, shared=True)
    api.subnet(net["id"], "10.0.0.0/24", admin=True, tenant_id="p2")
    r = api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}, admin=True,
                status=409)
    assert _err(r) == "InvalidSharedSetting"


# ------------------------------------------------------- network deletion
def test_a_network_delete_takes_its_distributed_ports_along(api):
    """AUTO_DELETE_PORT_OWNERS (neutron/common/_constants.py): network:dhcp,
    network:distributed (OVN metadata) and
    network:floatingip_agent_gateway ports go with their network."""
    net, _ = _net(api)
    api.port(net["id"], admin=True, device_owner="network:distributed")
    api.delete(f"/v2.0/networks/{net['id']}", admin=True, status=204)


# ------------------------------------------------------------ null lists
def test_null_security_groups_and_address_pairs_clear_them(api):
    """neutron-lib: a port's allowed_address_pairs and security_groups
    take converters.convert_none_to_empty_list: null is [], not a 400
    (``openstack port set --no-security-group`` style clients send it)."""
    net, _ = _net(api)
    port = api.port(net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.99"}])
    assert port["security_groups"]
    url = f"/v2.0/ports/{port['id']}"
    got = api.put(url, {"port": {"security_groups": None}}, status=200).data["port"]
    assert got["security_groups"] == []
    got = api.put(url, {"port": {"allowed_address_pairs": None}}, status=200).data["port"]
    assert got["allowed_address_pairs"] == []


# ---------------------------------------------------------- gateway address
def test_the_network_owner_may_give_a_port_the_gateway_address(api):
    """Neutron's IPAM does not allocate a subnet's gateway_ip (neutrondb_ipam
    driver: pools around it, no allocation row): a port of no owner may be
    made with it -- the usual ``port create --fixed-ip ip-address=<gw>``
    then ``router add port`` workflow."""
    net, sub = _net(api)
    port = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": sub["gateway_ip"]}]}}, status=201).data["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]


def test_a_broadcast_address_alone_is_invalid_for_the_network(api):
    """_get_subnet_for_fixed_ip: an ip_address alone is matched against
    the subnets with check_subnet_ip, which never takes an IPv4 subnet's
    network or broadcast address: InvalidIpForNetwork."""
    net, _ = _net(api)
    for ip in ("10.0.0.0", "10.0.0.255"):
        r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
            {"ip_address": ip}]}}, status=400)
        assert _err(r) == "InvalidIpForNetwork", r.data
