"""A list in a request holds at most validators.LIST_MAX items, counted
before any item is checked: a long list is refused at once, not after
its items were parsed one by one (a 4 MiB body of 50,000 address pairs or
host routes took the API worker 0.3-1 s of CPU each, 20,000 allocation
pools 3.9 s and were stored)."""

import time

import pytest

from quantum_ovs.api.validators import LIST_MAX


def _refused(resp, name):
    assert resp.status_int == 400, resp.text[:300]
    err = resp.data["NeutronError"]
    assert err["type"] == "InvalidInput", err
    assert f"'{name}' holds" in err["message"] and str(LIST_MAX) in err["message"], err


def _junk(n):
    # items no validator takes: a list refused for its items would say so
    return [{"bogus": i} for i in range(n)]


@pytest.mark.parametrize("path, collection, attr, extra", [
    ("/v2.0/ports", "port", "allowed_address_pairs", {}),
    ("/v2.0/ports", "port", "fixed_ips", {}),
    ("/v2.0/ports", "port", "security_groups", {}),
    ("/v2.0/ports", "port", "extra_dhcp_opts", {}),
    ("/v2.0/subnets", "subnet", "allocation_pools", {"cidr": "10.0.0.0/8", "ip_version": 4}),
    ("/v2.0/subnets", "subnet", "host_routes", {"cidr": "10.0.0.0/8", "ip_version": 4}),
    ("/v2.0/subnets", "subnet", "dns_nameservers", {"cidr": "10.0.0.0/8", "ip_version": 4}),
])
def test_a_list_too_long_is_refused_before_its_items_are_read(api, path, collection, attr,
                                                               extra):
    net = api.network()
    body = {collection: {"network_id": net["id"], attr: _junk(50_000), **extra}}
    started = time.perf_counter()
    _refused(api.post(path, body), attr)
    took = time.perf_counter() - started
    print(f"\n{attr}: 50,000 items refused in {took * 1000:.0f} ms")
    # one more than the bound: refused as long; at the bound: the items
    # are read (and these are refused for what they are)
    _refused(api.post(path, {collection: {"network_id": net["id"], attr: _junk(LIST_MAX + 1),
                                          **extra}}), attr)
    resp = api.post(path, {collection: {"network_id": net["id"], attr: _junk(LIST_MAX),
                                        **extra}})
    assert resp.status_int in (400, 404), resp.text[:300]
    assert "holds" not in resp.text


def test_other_lists_too(api):
    net = api.network()
    router = api.post("/v2.0/routers", {"router": {"name": "r"}}, status=201).data["router"]
    _refused(api.put(f"/v2.0/routers/{router['id']}", {"router": {"routes": _junk(2_000)}}),
             "routes")
    _refused(api.put(f"/v2.0/networks/{net['id']}/tags", {"tags": [str(i) for i in range(2_000)]}),
             "tags")
    pool = {"name": "p", "prefixes": [f"10.{i // 256}.{i % 256}.0/24" for i in range(2_000)]}
    _refused(api.post("/v2.0/subnetpools", {"subnetpool": pool}), "prefixes")
    group = {"name": "g", "addresses": [f"10.0.{i // 256}.{i % 256}/32" for i in range(2_000)]}
    _refused(api.post("/v2.0/address-groups", {"address_group": group}), "addresses")
    ag = api.post("/v2.0/address-groups", {"address_group": {"name": "g2"}},
                  status=201).data["address_group"]
    _refused(api.put(f"/v2.0/address-groups/{ag['id']}/add_addresses",
                     {"addresses": [f"10.1.{i // 256}.{i % 256}" for i in range(2_000)]}),
             "addresses")


def test_a_bulk_create_holds_at_most_as_many_items(api):
    """Neutron's bulk body ({"ports": [...]}): 1,000 items are taken (a
    project's quota decides), more are refused before any item is read
    (50,000 took 0.87 s before the quota refused them)."""
    net = api.network()
    _refused(api.post("/v2.0/ports", {"ports": _junk(LIST_MAX + 1)}), "ports")
    _refused(api.post("/v2.0/networks", {"networks": _junk(50_000)}), "networks")
    resp = api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]}] * LIST_MAX})
    assert resp.status_int in (201, 409), resp.text[:300]  # (409: the project's quota)
    assert "holds" not in resp.text
