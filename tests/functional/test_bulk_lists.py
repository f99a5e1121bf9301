"""Bulk port creates (all or nothing, addresses as one by one) and the
listings' row reading and policy (db/rowload.py, Controller._views)."""

import ipaddress
import json

import pytest
import sqlalchemy as sa

from quantum_ovs.db import models, rowload


def _ports(api, project="p1", admin=False, query=""):
    return api.get(f"/v2.0/ports{query}", project=project, admin=admin,
                   status=200).data["ports"]


@pytest.fixture
def net(api):
    n = api.network()
    api.subnet(n["id"], "10.0.0.0/24")
    return n


def test_bulk_ports_get_distinct_addresses_in_item_order(api, net):
    """Automatic addresses are the lowest free ones in item order around
    the items that ask for one (as a create per item gives); MACs are
    distinct; the answer and a listing agree with a show of each port."""
    items = [{"network_id": net["id"]} for _ in range(40)]
    items[1] = {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.3"}]}
    items[5] = {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}
    made = api.post("/v2.0/ports", {"ports": items}, status=201).data["ports"]
    assert len(made) == 40
    ips = [p["fixed_ips"][0]["ip_address"] for p in made]
    assert ips[:4] == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    assert len(set(ips)) == 40
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/24")
               for ip in ips)
    macs = [p["mac_address"] for p in made]
    assert len(set(macs)) == 40 and macs[5] == "fa:16:3e:00:00:01"
    listed = {p["id"]: p for p in _ports(api)}
    for p in made:
        shown = api.get(f"/v2.0/ports/{p['id']}", status=200).data["port"]
        assert listed[p["id"]] == shown
        assert p == shown
    # A second bulk continues after them, with new MACs.
    more = api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]}] * 3},
                    status=201).data["ports"]
    assert [p["fixed_ips"][0]["ip_address"] for p in more] == \
        ["10.0.0.42", "10.0.0.43", "10.0.0.44"]
    assert not {p["mac_address"] for p in more} & set(macs)


def test_bulk_change_rows_are_numbered_in_item_order(api, net):
    """A bulk create's change rows (inserted at once) are those a create
    per item makes, numbered in item order: each port's row, then one per
    security group it is in with its addresses, host and revision as one
    by one; the next write's rows come after them."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "w"}},
                  status=201).data["security_group"]
    before = _last_seq(api)
    items = [{"network_id": net["id"]} for _ in range(6)]
    items[2] = {"network_id": net["id"], "security_groups": [sg["id"]]}
    items[4] = {"network_id": net["id"], "security_groups": []}
    made = api.post("/v2.0/ports", {"ports": items}, status=201).data["ports"]
    rows = _changes(api, before)
    expected = []
    for p in made:
        expected.append(("port", p["id"], "create", net["id"], None, 0, None))
        for gid in sorted(p["security_groups"]):
            addresses = json.dumps(sorted(a["ip_address"] for a in p["fixed_ips"]))
            expected.append(("sg_member", gid, "create", None, None, 0, addresses))
    assert [r[1:] for r in rows] == expected
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    one = api.port(net["id"])
    assert _changes(api, rows[-1][0])[0][1:3] == ("port", one["id"])


def _changes(api, after):
    with api.db.reader() as s:
        return [(c.seq, c.resource, c.resource_id, c.op, c.network_id, c.host,
                 c.revision_number, c.detail) for c in s.execute(
            sa.select(models.Change).where(models.Change.seq > after)
            .order_by(models.Change.seq)).scalars()]


def _last_seq(api):
    with api.db.reader() as s:
        return s.execute(sa.select(sa.func.max(models.Change.seq))).scalar() or 0


@pytest.mark.parametrize("bad, status", [
    ({"mac_address": "not-a-mac"}, 400),  # refused before the database
    ({"fixed_ips": [{"ip_address": "10.0.0.2"}]}, 409),  # an earlier item's address
    ({"mac_address": "fa:16:3e:00:00:07"}, 409),  # the same MAC as another item
    ({"fixed_ips": [{"subnet_id": "b0b0b0b0-0000-4000-8000-000000000000"}]}, 404),
])
def test_a_bad_item_leaves_no_row(api, net, bad, status):
    items = [{"network_id": net["id"]} for _ in range(20)]
    items[3] = {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:07"}
    items[15] = dict(bad, network_id=net["id"])
    r = api.post("/v2.0/ports", {"ports": items}, status=status)
    assert "NeutronError" in r.data
    assert _ports(api, admin=True) == []
    # Nothing held: the addresses and MACs are free for the next one.
    p = api.port(net["id"], mac_address="fa:16:3e:00:00:07")
    assert p["fixed_ips"][0]["ip_address"] == "10.0.0.2"


def test_bulk_over_quota_leaves_no_row(api, net):
    api.put("/v2.0/quotas/p1", {"quota": {"port": 12}}, admin=True, status=200)
    api.port(net["id"])
    body = {"ports": [{"network_id": net["id"]} for _ in range(12)]}
    r = api.post("/v2.0/ports", body, status=409)
    assert r.data["NeutronError"]["type"] == "OverQuota"
    assert len(_ports(api)) == 1
    body["ports"].pop()
    assert len(api.post("/v2.0/ports", body, status=201).data["ports"]) == 11


def test_listings_keep_fields_paging_and_extension_attributes(api, net):
    """The listing's rows are read without the ORM: every attribute the
    extensions add is there, ``fields`` and paging as before."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "w"}},
                  status=201).data["security_group"]
    api.port(net["id"], name="a", security_groups=[sg["id"]],
             allowed_address_pairs=[{"ip_address": "10.9.9.9"}],
             extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}],
             dns_name="web")
    api.put(f"/v2.0/ports/{_ports(api)[0]['id']}/tags/red", status=201)
    for i in range(4):
        api.port(net["id"], name=f"n{i}")
    ports = _ports(api)
    for p in ports:
        assert api.get(f"/v2.0/ports/{p['id']}", status=200).data["port"] == p
    a = next(p for p in ports if p["name"] == "a")
    assert a["security_groups"] == [sg["id"]] and a["tags"] == ["red"]
    assert a["extra_dhcp_opts"][0]["opt_value"] == "1400"
    assert a["dns_assignment"][0]["hostname"] == "web"
    assert a["allowed_address_pairs"][0]["ip_address"] == "10.9.9.9"
    only = _ports(api, query="?fields=id&fields=fixed_ips")
    assert all(set(p) == {"id", "fixed_ips"} for p in only)
    page = api.get("/v2.0/ports?limit=2&sort_key=name&sort_dir=desc", status=200).data
    assert [p["name"] for p in page["ports"]] == ["n3", "n2"]
    assert [x["rel"] for x in page["ports_links"]] == ["next", "previous"]
    ext = api.network(project="admin-p", admin=True, **{"router:external": True})
    api.subnet(ext["id"], "192.0.2.0/24", project="admin-p", admin=True,
               dns_nameservers=["192.0.2.53"],
               host_routes=[{"destination": "10.50.0.0/16", "nexthop": "192.0.2.9"}])
    for admin in (False, True):
        for coll in ("networks", "subnets", "ports"):
            listed = api.get(f"/v2.0/{coll}", admin=admin, status=200).data[coll]
            assert listed
            for o in listed:
                assert api.get(f"/v2.0/{coll}/{o['id']}", admin=admin,
                               status=200).data[coll[:-1]] == o


def test_list_policy_per_caller(api):
    """What a listing shows is decided per caller and, where a rule reads
    the row, per row: admin-only attributes stay hidden from a tenant
    however many rows share the answer, and another tenant's ports on a
    shared network are not listed to a tenant with their attributes."""
    shared = api.network(project="admin-p", admin=True, shared=True)
    api.subnet(shared["id"], "10.1.0.0/24", project="admin-p", admin=True)
    mine = [api.port(shared["id"], project="p1") for _ in range(3)]
    theirs = [api.port(shared["id"], project="p2") for _ in range(3)]
    admin_ports = _ports(api, project="admin-p", admin=True)
    assert {p["id"] for p in admin_ports} >= {p["id"] for p in mine + theirs}
    assert all("binding:host_id" in p for p in admin_ports)
    for project, own, other in (("p1", mine, theirs), ("p2", theirs, mine)):
        listed = _ports(api, project=project)
        assert {p["id"] for p in listed} == {p["id"] for p in own}
        assert all(p["project_id"] == project for p in listed)
        assert all("binding:host_id" not in p and "binding:vif_type" not in p
                   for p in listed)
    # An admin listing between two tenant listings changes neither.
    assert {p["id"] for p in _ports(api, project="p1")} == {p["id"] for p in mine}


def test_listings_of_most_of_a_table_read_children_whole(api, net, monkeypatch):
    """A listing of most of its table reads its children's tables whole
    (rowload._most, from MOST_FROM rows: one here): every listed row
    equals its show, for an admin and for tenants seeing more or less
    than half of the ports, and the children of the rows a listing leaves
    out (another project's tags, addresses) do not leak into it."""
    monkeypatch.setattr(rowload, "MOST_FROM", 1)
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "w"}},
                  status=201).data["security_group"]
    api.subnet(net["id"], "10.0.1.0/24")
    a = api.port(net["id"], name="a", security_groups=[sg["id"]],
                 fixed_ips=[{"subnet_id": s["id"]} for s in api.get(
                     f"/v2.0/subnets?network_id={net['id']}&sort_key=cidr&sort_dir=asc",
                     status=200).data["subnets"]],
                 allowed_address_pairs=[{"ip_address": "10.9.9.9"},
                                        {"ip_address": "10.9.8.0/24"}],
                 extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"},
                                  {"opt_name": "domain-name", "opt_value": "x.org"}])
    api.put(f"/v2.0/ports/{a['id']}/tags", {"tags": ["red", "blue"]}, status=200)
    mine = [a] + [api.port(net["id"], name=f"m{i}") for i in range(3)]
    shared = api.network(project="admin-p", admin=True, shared=True)
    api.subnet(shared["id"], "10.1.0.0/24", project="admin-p", admin=True)
    theirs = [api.port(shared["id"], project="p2", name=f"t{i}") for i in range(3)]
    for p in theirs:
        api.put(f"/v2.0/ports/{p['id']}/tags", {"tags": ["p2-only"]}, project="p2",
                status=200)
    for project, admin, want in (("admin-p", True, mine + theirs), ("p1", False, mine),
                                 ("p2", False, theirs)):
        for query in ("", "?name=a", "?sort_key=name&sort_dir=asc&limit=3"):
            listed = _ports(api, project=project, admin=admin, query=query)
            expected = [p for p in want if query != "?name=a" or p["name"] == "a"]
            if "limit" not in query:
                assert {p["id"] for p in listed} == {p["id"] for p in expected}
            for p in listed:
                assert api.get(f"/v2.0/ports/{p['id']}", project=project, admin=admin,
                               status=200).data["port"] == p
    listed = {p["name"]: p for p in _ports(api)}
    assert listed["a"]["tags"] == ["blue", "red"]
    assert [f["ip_address"] for f in listed["a"]["fixed_ips"]] == ["10.0.0.2", "10.0.1.2"]
    assert [o["opt_name"] for o in listed["a"]["extra_dhcp_opts"]] == ["mtu", "domain-name"]
    assert all(p["tags"] == [] for name, p in listed.items() if name != "a")
    for coll in ("networks", "subnets"):
        for o in api.get(f"/v2.0/{coll}", admin=True, status=200).data[coll]:
            assert api.get(f"/v2.0/{coll}/{o['id']}", admin=True,
                           status=200).data[coll[:-1]] == o
