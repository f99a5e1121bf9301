"""Ports: MACs, fixed IPs, allocation errors, updates."""

import ipaddress

import pytest


def _net(api, cidr="10.0.0.0/24", **kw):
    net = api.network()
    return net, api.subnet(net["id"], cidr, **kw)


def test_port_defaults(api):
    net, sub = _net(api)
    port = api.port(net["id"], name="p")
    assert port["mac_address"].startswith("fa:16:3e:")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
    assert port["status"] == "DOWN" and port["admin_state_up"] is True
    assert port["device_id"] == "" and port["device_owner"] == ""
    assert port["allowed_address_pairs"] == [] and port["port_security_enabled"] is True
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"] == port


@pytest.mark.parametrize("ip", ["10.0.0.50", "10.0.0.250"])  # in the pool, outside it
def test_a_bulk_asking_one_address_twice_is_refused_whole(api, ip):
    """Two ports of one bulk (each with its groups and options) asking for
    the same address: IpAddressAlreadyAllocated, and no port made; the
    address is then free for one port.  (A bulk's addresses are taken
    without autoflush: the second port's check must still see the
    first's.)"""
    net, sub = _net(api, allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.200"}])
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                  status=201).data["security_group"]["id"]
    port = {"network_id": net["id"], "security_groups": [sg],
            "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxe.0"}],
            "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}]}
    r = api.post("/v2.0/ports", {"ports": [dict(port, name="a"), {"network_id": net["id"]},
                                           dict(port, name="b")]}, status=409)
    assert r.data["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
    assert api.count("ports") == 0
    made = api.post("/v2.0/ports", {"ports": [dict(port, name="a"), {"network_id": net["id"]}]},
                    status=201).data["ports"]
    assert made[0]["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": ip}]
    assert made[0]["security_groups"] == [sg]
    assert [o["opt_name"] for o in made[0]["extra_dhcp_opts"]] == ["bootfile-name"]


def test_bulks_taking_addresses_from_the_middle_of_free_ranges(api):
    """A specific address taken from the middle of a free range splits it;
    the rest of the same bulk (or the same port) then takes addresses from
    the upper part, asked for or not."""
    net, sub = _net(api, allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.10"}])
    two = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.0.0.4"},
        {"subnet_id": sub["id"], "ip_address": "10.0.0.8"}]}}, status=201).data["port"]
    assert [f["ip_address"] for f in two["fixed_ips"]] == ["10.0.0.4", "10.0.0.8"]
    spec = [{"network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"],
                                                      "ip_address": ip}]}
            for ip in ("10.0.0.6", "10.0.0.9")]
    made = api.post("/v2.0/ports", {"ports": spec + [{"network_id": net["id"]}] * 4},
                    status=201).data["ports"]
    got = [f["ip_address"] for p in made for f in p["fixed_ips"]]
    assert got == ["10.0.0.6", "10.0.0.9", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.7"]
    last = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=201).data["port"]
    assert last["fixed_ips"][0]["ip_address"] == "10.0.0.10"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409)
    assert r.data["NeutronError"]["type"] == "IpAddressGenerationFailure"
    # An address given back (between two taken) is taken again by a bulk.
    api.delete(f"/v2.0/ports/{made[2]['id']}", status=204)
    again = api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]}]},
                     status=201).data["ports"]
    assert again[0]["fixed_ips"][0]["ip_address"] == "10.0.0.2"


def test_base_mac_is_used(make_api):
    api = make_api(base_mac="fa:16:3f:00:00:00")
    net, _ = _net(api)
    assert api.port(net["id"])["mac_address"].startswith("fa:16:3f:")


def test_specific_ip_and_conflict(api):
    net, sub = _net(api)
    p = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
    assert p["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.50"}]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "fixed_ips": [{"subnet_id": sub["id"],
                                                         "ip_address": "10.0.0.50"}]}},
                 status=409)
    assert r.data["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
    # the gateway's address, which no router holds: a port may take it, as
    # in Neutron (whose IPAM only keeps it out of the pools)
    gw = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                           "fixed_ips": [{"ip_address": "10.0.0.1"}]}},
                  status=201).data["port"]
    assert gw["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]
    assert api.count("ports") == 2


def test_an_address_given_twice_in_one_request_is_a_400(api):
    """Neutron's InvalidInput (Duplicate IP address), on a create and an
    update, whatever subnet_id the entries give; nothing changes.  (It was
    taken as a concurrent change and retried until a 503.)"""
    net, sub = _net(api)
    for twice in ([{"subnet_id": sub["id"], "ip_address": "10.0.0.5"}] * 2,
                  [{"subnet_id": sub["id"], "ip_address": "10.0.0.5"},
                   {"ip_address": "10.0.0.5"}]):
        err = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": twice}},
                       status=400).data["NeutronError"]
        assert err["type"] == "InvalidInput" and \
            "Duplicate IP address '10.0.0.5'" in err["message"], err
    assert api.count("ports") == 0
    port = api.port(net["id"])
    own = port["fixed_ips"][0]
    for twice in ([own, own], [{"ip_address": "10.0.0.6"}, {"ip_address": "10.0.0.6"}]):
        err = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": twice}},
                      status=400).data["NeutronError"]
        assert err["type"] == "InvalidInput" and "Duplicate IP address" in err["message"]
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["fixed_ips"] == \
        [own]
    # The addresses stayed free.
    assert api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.6"}])


def test_a_subnet_given_twice_gives_two_addresses_the_given_ones_first(api):
    """Entries with a subnet alone may repeat (two addresses from it); an
    address another entry asks for is not the one a subnet-only entry
    takes, whatever their order (Neutron allocates the given ones first)."""
    net, sub = _net(api)
    p = api.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]}, {"subnet_id": sub["id"]}])
    assert [x["ip_address"] for x in p["fixed_ips"]] == ["10.0.0.2", "10.0.0.3"]
    # 10.0.0.4 is the next free one, and asked for after it.
    q = api.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]},
                                       {"subnet_id": sub["id"], "ip_address": "10.0.0.4"}])
    assert [x["ip_address"] for x in q["fixed_ips"]] == ["10.0.0.5", "10.0.0.4"]
    # An update: 10.0.0.2 given back, then asked for after a subnet-only
    # entry (the lowest free address once the port's others are released).
    api.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.3"}]}},
            status=200)
    upd = api.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"]}, {"ip_address": "10.0.0.2"}]}}, status=200).data["port"]
    assert [x["ip_address"] for x in upd["fixed_ips"]] == ["10.0.0.3", "10.0.0.2"]


def test_an_address_pair_given_twice_is_neutrons_400(api):
    """DuplicateAddressPairInRequest (Neutron's 400), also for a pair
    without a MAC and the same one with the port's MAC (which had been a
    duplicate key, retried, then 409); pairs whose MACs differ are two."""
    net, sub = _net(api)
    mac = "fa:16:3e:00:00:01"
    for pairs in ([{"ip_address": "10.0.0.7"}] * 2,
                  [{"ip_address": "10.0.0.7", "mac_address": mac},
                   {"ip_address": "10.0.0.7", "mac_address": mac.upper()}],
                  [{"ip_address": "10.0.0.7", "mac_address": mac}, {"ip_address": "10.0.0.7"}]):
        err = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": mac,
                                                "allowed_address_pairs": pairs}},
                       status=400).data["NeutronError"]
        assert err["type"] == "DuplicateAddressPairInRequest", err
        assert "10.0.0.7" in err["message"]
    assert api.count("ports") == 0
    p = api.port(net["id"], mac_address=mac, allowed_address_pairs=[
        {"ip_address": "10.0.0.7"}, {"ip_address": "10.0.0.7", "mac_address": "fa:16:3e:00:00:02"}])
    assert len(p["allowed_address_pairs"]) == 2
    err = api.put(f"/v2.0/ports/{p['id']}", {"port": {"allowed_address_pairs": [
        {"ip_address": "10.0.0.8"}, {"ip_address": "10.0.0.8", "mac_address": mac}]}},
        status=400).data["NeutronError"]
    assert err["type"] == "DuplicateAddressPairInRequest" and mac in err["message"]
    assert api.get(f"/v2.0/ports/{p['id']}", status=200).data["port"][
        "allowed_address_pairs"] == p["allowed_address_pairs"]


def test_ip_outside_subnet(api):
    net, sub = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "fixed_ips": [{"ip_address": "10.9.0.5"}]}},
                 status=400)
    assert r.data["NeutronError"]["type"] == "InvalidIpForNetwork"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.9.0.5"}]}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidIpForSubnet"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": "9a3f5c2e-0000-4000-8000-000000000000"}]}}, status=404)
    assert r.data["NeutronError"]["type"] == "SubnetNotFound"  # (as Neutron)
    api.post("/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "bogus"}]}}, status=400)
    assert api.count("ports") == 0


def test_mac_in_use(api):
    net, _ = _net(api)
    api.port(net["id"], mac_address="fa:16:3e:aa:bb:cc")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "mac_address": "FA:16:3E:AA:BB:CC"}}, status=409)
    assert r.data["NeutronError"]["type"] == "MacAddressInUse"
    other, _ = _net(api)
    api.port(other["id"], mac_address="fa:16:3e:aa:bb:cc")  # unique per network only
    for bad in ("01:00:5e:00:00:01", "zz:16:3e:aa:bb:cc", "fa:16:3e:aa:bb"):
        api.post("/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": bad}},
                 status=400)


def test_exhaustion_and_reuse(api):
    net, sub = _net(api, "10.0.0.0/29")  # 10.0.0.2 - 10.0.0.6
    ports = [api.port(net["id"]) for _ in range(5)]
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert ips == [f"10.0.0.{i}" for i in range(2, 7)]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409)
    assert r.data["NeutronError"]["type"] == "IpAddressGenerationFailure"
    api.delete(f"/v2.0/ports/{ports[2]['id']}", status=204)
    again = api.port(net["id"])
    assert again["fixed_ips"][0]["ip_address"] == "10.0.0.4"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409)


def test_no_subnet_means_no_ip_and_empty_fixed_ips(api):
    net = api.network()
    assert api.port(net["id"])["fixed_ips"] == []
    api.subnet(net["id"])
    assert api.port(net["id"], fixed_ips=[])["fixed_ips"] == []


def test_update_fixed_ips(api):
    net, sub = _net(api)
    port = api.port(net["id"])
    old_ip = port["fixed_ips"][0]["ip_address"]
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"ip_address": old_ip}, {"ip_address": "10.0.0.77"}]}}, status=200).data["port"]
    assert [f["ip_address"] for f in upd["fixed_ips"]] == [old_ip, "10.0.0.77"]
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.0.0.77"}]}}, status=200).data["port"]
    assert [f["ip_address"] for f in upd["fixed_ips"]] == ["10.0.0.77"]
    # the released address is free again
    assert api.port(net["id"], fixed_ips=[{"ip_address": old_ip}])
    other = api.port(net["id"])
    r = api.put(f"/v2.0/ports/{other['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.0.0.77"}]}}, status=409)
    assert r.data["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
    assert api.get(f"/v2.0/ports/{other['id']}", status=200).data["port"]["fixed_ips"] == \
        other["fixed_ips"]


def test_a_subnet_named_alone_keeps_the_address_the_port_has_there(api):
    """As Neutron (_get_changed_ips_for_port): an entry naming only a
    subnet keeps an address the port has there that no entry names, the
    last one; a subnet it has none on gives a new one (Tempest's
    test_router_interface_port_update_with_fixed_ip relies on it)."""
    net, sub = _net(api)
    port = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.5"},
                                          {"ip_address": "10.0.0.6"}])
    path = f"/v2.0/ports/{port['id']}"

    def ips(body):
        return [f["ip_address"] for f in api.put(path, {"port": body},
                                                 status=200).data["port"]["fixed_ips"]]
    assert ips({"fixed_ips": [{"subnet_id": sub["id"]}]}) == ["10.0.0.6"]
    assert ips({"fixed_ips": [{"subnet_id": sub["id"]}, {"subnet_id": sub["id"]}]})[0] == \
        "10.0.0.6"
    before = ips({"fixed_ips": [{"subnet_id": sub["id"]}, {"ip_address": "10.0.0.6"}]})
    assert before[0] == "10.0.0.6"  # the named one kept, the subnet's entry the other
    sub2 = api.subnet(net["id"], "10.9.0.0/24")
    got = ips({"fixed_ips": [{"subnet_id": sub["id"]}, {"subnet_id": sub2["id"]}]})
    assert got[0] == before[-1] and got[1].startswith("10.9.0.")  # (the last kept)


def test_port_update_fields(api):
    net, _ = _net(api)
    port = api.port(net["id"])
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {
        "name": "x", "device_id": "vm-1", "device_owner": "compute:nova",
        "admin_state_up": False}}, status=200).data["port"]
    assert (upd["name"], upd["device_id"], upd["device_owner"], upd["admin_state_up"]) == \
        ("x", "vm-1", "compute:nova", False)
    for body in ({"network_id": net["id"]}, {"status": "ACTIVE"}, {"mac_address": "x"}):
        api.put(f"/v2.0/ports/{port['id']}", {"port": body}, status=400)
    # a non-admin may not change a MAC (Neutron's default policy)
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:00:00:01"}},
            status=403)
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:00:00:01"}},
                  admin=True, status=200).data["port"]
    assert upd["mac_address"] == "fa:16:3e:00:00:01"


ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")


def test_a_router_interface_port_names_a_router_of_its_own_project(api):
    """Neutron's _enforce_device_owner_not_router_intf_or_device_id: a
    non-admin's port with a router interface's device_owner may not name
    another project's router in device_id (409 DeviceIDNotOwnedByTenant),
    on a create, a bulk create, or an update that gives it the owner or
    the id; its own router, or an id that is no router, is fine, and an
    admin may.  Without the router service plugin any device_id is
    refused."""
    theirs = api.post("/v2.0/routers", {"router": {"name": "r1"}}, project="p1",
                      status=201).data["router"]
    mine = api.post("/v2.0/routers", {"router": {"name": "r2"}}, project="p2",
                    status=201).data["router"]
    net = api.network(project="p2")
    api.subnet(net["id"], project="p2")

    def port(status, project="p2", admin=False, **kw):
        r = api.post("/v2.0/ports", {"port": dict(network_id=net["id"], **kw)},
                     project=project, admin=admin, status=status)
        return r.data["port"] if status == 201 else r.data["NeutronError"]
    for owner in ROUTER_INTERFACE_OWNERS:
        err = port(409, device_id=theirs["id"], device_owner=owner)
        assert err["type"] == "DeviceIDNotOwnedByTenant"
        assert theirs["id"] in err["message"]
    r = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"]},
        {"network_id": net["id"], "device_id": theirs["id"],
         "device_owner": "network:router_interface"}]}, project="p2", status=409)
    assert r.data["NeutronError"]["type"] == "DeviceIDNotOwnedByTenant"
    assert api.get(f"/v2.0/ports?network_id={net['id']}", project="p2",
                   status=200).data["ports"] == []
    port(201, device_id=mine["id"], device_owner="network:router_interface")
    port(201, device_id="11111111-1111-4111-8111-111111111111",
         device_owner="network:router_interface")
    port(201, project="admin-p", admin=True, project_id="p2", device_id=theirs["id"],
         device_owner="network:router_interface")
    # Updates: the owner given to a port naming the router, the router
    # named by a router interface port.
    named = port(201, device_id=theirs["id"], device_owner="compute:nova")
    intf = port(201, device_owner="network:router_interface")
    for p, body in ((named, {"device_owner": "network:router_interface"}),
                    (intf, {"device_id": theirs["id"]})):
        r = api.put(f"/v2.0/ports/{p['id']}", {"port": body}, project="p2", status=409)
        assert r.data["NeutronError"]["type"] == "DeviceIDNotOwnedByTenant"
        assert api.get(f"/v2.0/ports/{p['id']}", project="p2", status=200).data["port"] == p
    api.put(f"/v2.0/ports/{intf['id']}", {"port": {"device_id": mine["id"]}}, project="p2",
            status=200)


def test_without_routers_a_router_interface_port_names_no_device(make_api):
    """Neutron without an L3 plugin: a non-admin's router interface port
    with any device_id is 409 DeviceIDNotOwnedByTenant (none can be
    checked); without one it is made."""
    api = make_api(service_plugins=[])
    net = api.network()
    api.subnet(net["id"])
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "device_id": "r-1",
                                          "device_owner": "network:router_interface"}},
                 status=409)
    assert r.data["NeutronError"]["type"] == "DeviceIDNotOwnedByTenant"
    api.port(net["id"], device_owner="network:router_interface")
    api.port(net["id"], device_id="r-1", device_owner="network:router_interface",
             admin=True)


def test_port_security_and_address_pairs(api):
    net, _ = _net(api)
    p = api.port(net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.200"},
                                                   {"ip_address": "10.1.0.0/24",
                                                    "mac_address": "fa:16:3e:01:02:03"}])
    assert p["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.200", "mac_address": p["mac_address"]},
        {"ip_address": "10.1.0.0/24", "mac_address": "fa:16:3e:01:02:03"}]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "port_security_enabled": False,
                                          "allowed_address_pairs": [{"ip_address": "1.2.3.4"}]}},
                 status=409)
    assert r.data["NeutronError"]["type"] == "AddressPairAndPortSecurityRequired"
    assert "Port Security" in r.data["NeutronError"]["message"]
    r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"port_security_enabled": False,
                                                    "security_groups": []}}, status=409)
    assert r.data["NeutronError"]["type"] == "AddressPairAndPortSecurityRequired"
    upd = api.put(f"/v2.0/ports/{p['id']}", {"port": {"port_security_enabled": False,
                                                      "allowed_address_pairs": [],
                                                      "security_groups": []}},
                  status=200).data["port"]
    assert upd["port_security_enabled"] is False and upd["allowed_address_pairs"] == []


def test_port_on_unknown_network(api):
    r = api.post("/v2.0/ports", {"port": {
        "network_id": "5e0b1b4a-1111-4222-8333-944455556666"}}, status=404)
    assert r.data["NeutronError"]["type"] == "NetworkNotFound"


def test_ips_are_in_subnet_on_a_big_subnet(api):
    net, sub = _net(api, "10.8.0.0/16")
    cidr = ipaddress.ip_network(sub["cidr"])
    r = api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]} for _ in range(50)]},
                 status=201)
    ips = [ipaddress.ip_address(p["fixed_ips"][0]["ip_address"]) for p in r.data["ports"]]
    assert len(set(ips)) == 50 and all(ip in cidr for ip in ips)


def test_tags_given_when_ports_are_created(api):
    """tag-ports-during-bulk-creation: a port's tags in its create body,
    one port or a bulk; a refused bulk leaves no port."""
    net, _ = _net(api)
    port = api.port(net["id"], tags=["red", "blue"])
    assert sorted(port["tags"]) == ["blue", "red"]
    assert sorted(api.get(f"/v2.0/ports/{port['id']}").data["port"]["tags"]) == \
        ["blue", "red"]
    assert [p["id"] for p in api.get("/v2.0/ports?tags=red").data["ports"]] == [port["id"]]
    bulk = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"], "name": "a", "tags": ["x"]},
        {"network_id": net["id"], "name": "b"}]}, status=201).data["ports"]
    assert [(p["name"], p["tags"]) for p in bulk] == [("a", ["x"]), ("b", [])]
    before = api.count("ports")
    r = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"]},
        {"network_id": net["id"], "tags": [f"t{i}" for i in range(51)]}]}, status=400)
    assert "per-resource limit of 50" in r.data["NeutronError"]["message"]
    for bad in (["x", "x"], ["y" * 256], "x", [1]):
        api.post("/v2.0/ports", {"port": {"network_id": net["id"], "tags": bad}}, status=400)
    assert api.count("ports") == before


def test_a_null_mac_address_gives_a_new_one_and_a_bound_port_keeps_its_own(api):
    """port-mac-address-regenerate, and Neutron's PortBound: the MAC of a
    port bound to a host (its instance's NIC) does not change."""
    from tests.functional.test_agent_api import register
    net, _ = _net(api)
    port = api.port(net["id"])
    url = f"/v2.0/ports/{port['id']}"
    new = api.put(url, {"port": {"mac_address": None}}, admin=True,
                  status=200).data["port"]["mac_address"]
    assert new != port["mac_address"] and new.startswith("fa:16:3e:")
    register(api, "h1", "192.0.2.1")
    bound = api.put(url, {"port": {"binding:host_id": "h1"}}, admin=True,
                    status=200).data["port"]
    assert bound["binding:vif_type"] == "ovs"
    for mac in (None, "fa:16:3e:00:00:99"):
        r = api.put(url, {"port": {"mac_address": mac}}, admin=True, status=409)
        err = r.data["NeutronError"]
        assert err["type"] == "PortBound" and f"old_mac {new}" in err["message"], err
    # another port's MAC: still PortBound first (Neutron checks the binding,
    # then the owner, then whether the MAC is in use)
    other = api.port(net["id"])
    r = api.put(url, {"port": {"mac_address": other["mac_address"]}}, admin=True, status=409)
    assert r.data["NeutronError"]["type"] == "PortBound"
    # the same MAC again is no change
    api.put(url, {"port": {"mac_address": new}}, admin=True, status=200)
    assert api.get(url).data["port"]["mac_address"] == new
    api.put(url, {"port": {"binding:host_id": ""}}, admin=True, status=200)
    assert api.put(url, {"port": {"mac_address": "fa:16:3e:00:00:99"}}, admin=True,
                   status=200).data["port"]["mac_address"] == "fa:16:3e:00:00:99"
    # a network:* port's MAC is its service's (409), whatever the binding
    svc = api.port(net["id"], device_owner="network:router_interface", admin=True)
    r = api.put(f"/v2.0/ports/{svc['id']}", {"port": {"mac_address": None}}, admin=True,
                status=409)
    assert r.data["NeutronError"]["type"] == "UnsupportedPortDeviceOwner"
    r = api.put(f"/v2.0/ports/{svc['id']}", {"port": {"mac_address": other["mac_address"]}},
                admin=True, status=409)
    assert r.data["NeutronError"]["type"] == "UnsupportedPortDeviceOwner"
    assert api.get(f"/v2.0/ports/{svc['id']}").data["port"]["mac_address"] == \
        svc["mac_address"]


def test_a_new_mac_moves_the_addresses_made_from_it(api):
    """An address a SLAAC subnet made from the MAC follows a new MAC
    (the instance makes its own from the NIC's); pooled ones stay."""
    net, v4 = _net(api)
    slaac = api.subnet(net["id"], cidr="2001:db8:5::/64", ipv6_ra_mode="slaac",
                       ipv6_address_mode="slaac")
    port = api.port(net["id"], mac_address="fa:16:3e:00:00:01")
    assert {x["subnet_id"]: x["ip_address"] for x in port["fixed_ips"]}[slaac["id"]] == \
        "2001:db8:5:0:f816:3eff:fe00:1"
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:00:00:02"}},
                  admin=True, status=200).data["port"]
    got = {x["subnet_id"]: x["ip_address"] for x in upd["fixed_ips"]}
    assert got == {v4["id"]: port["fixed_ips"][0]["ip_address"],
                   slaac["id"]: "2001:db8:5:0:f816:3eff:fe00:2"}
    # the old one is free for another port with the old MAC that asks for
    # it (a port may name no other on a SLAAC subnet, as Neutron:
    # test_tenancy_review_s24.py)
    other = api.port(net["id"], mac_address="fa:16:3e:00:00:01",
                     fixed_ips=[{"subnet_id": slaac["id"],
                                 "ip_address": "2001:db8:5:0:f816:3eff:fe00:1"}])
    assert other["fixed_ips"][0]["ip_address"] == "2001:db8:5:0:f816:3eff:fe00:1"


def test_trusted_is_the_administrators_and_shows_in_the_binding_profile(api):
    """port-trusted-vif: null until an admin sets it; then in
    binding:profile too (what nova reads); hidden from and refused to
    others, as Neutron's admin-only rules."""
    net, _ = _net(api)
    admin = {"admin": True, "project": "p1"}
    port = api.port(net["id"], **admin)
    assert port["trusted"] is None and "trusted" not in port["binding:profile"]
    url = f"/v2.0/ports/{port['id']}"
    for value in (True, False):
        upd = api.put(url, {"port": {"trusted": value}}, status=200, **admin).data["port"]
        assert upd["trusted"] is value and upd["binding:profile"] == {"trusted": value}
    made = api.port(net["id"], trusted=True, **admin)
    assert made["trusted"] is True and made["binding:profile"]["trusted"] is True
    # a profile nova gives beside it keeps its own keys
    upd = api.put(f"/v2.0/ports/{made['id']}", {"port": {
        "binding:profile": {"pci_slot": "0000:05:00.1"}}}, status=200,
        headers={"X-Roles": "admin,service"}).data["port"]
    assert upd["binding:profile"] == {"pci_slot": "0000:05:00.1", "trusted": True}
    # ... and the bindings API's active binding shows it too
    from tests.functional.test_agent_api import register
    register(api, "h1", "192.0.2.1")
    api.put(f"/v2.0/ports/{made['id']}", {"port": {"binding:host_id": "h1",
                                                    "device_owner": "compute:nova"}},
            status=200, **admin)
    [b] = api.get(f"/v2.0/ports/{made['id']}/bindings", **admin).data["bindings"]
    assert b["profile"] == {"pci_slot": "0000:05:00.1", "trusted": True}
    # the project's member: not shown, not given
    assert "trusted" not in api.get(url).data["port"]
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "trusted": True}},
                 status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
    api.put(url, {"port": {"trusted": True}}, status=403)
    for bad in ("maybe", None):  # (null: Neutron's 400 too; it is unset only until set)
        api.put(url, {"port": {"trusted": bad}}, status=400, **admin)
    api.post("/v2.0/ports", {"port": {"network_id": net["id"], "trusted": None}}, status=400,
             **admin)
    assert api.get(url, **admin).data["port"]["trusted"] is False
