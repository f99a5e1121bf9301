"""Review s25: listings (filters, sorting, pagination) as Neutron has
them; each test failed before its fix."""

import urllib.parse
import uuid


def _walk(api, path, query, key, rel="next", **kw):
    """Follow ``rel`` links to the end: the ids in order."""
    url = f"{path}?{query}"
    seen = []
    for _ in range(50):
        data = api.get(url, status=200, **kw).data
        items = data[key]
        seen += [o["id"] for o in items]
        links = {link["rel"]: link["href"] for link in data.get(f"{key}_links", [])}
        if rel not in links or not items:
            break
        parsed = urllib.parse.urlsplit(links[rel])
        url = parsed.path + "?" + parsed.query
    return seen


def test_f1_fixed_ips_filters_of_different_keys_are_anded(api):
    """Neutron (db_base_plugin_v2._get_ports_query): fixed_ips=ip_address=
    and fixed_ips=subnet_id= each filter (values of one key OR'ed, keys
    AND'ed): a port on subnet A with 10.0.0.10 is not listed for
    ip_address=10.0.0.10 AND subnet_id=B."""
    net = api.network()
    a = api.subnet(net["id"], "10.0.0.0/24")
    b = api.subnet(net["id"], "10.1.0.0/24")
    pa = api.port(net["id"], fixed_ips=[{"subnet_id": a["id"], "ip_address": "10.0.0.10"}])
    pb = api.port(net["id"], fixed_ips=[{"subnet_id": b["id"], "ip_address": "10.1.0.10"}])
    q = urllib.parse.urlencode([("fixed_ips", "ip_address=10.0.0.10"),
                                ("fixed_ips", f"subnet_id={b['id']}")])
    got = {p["id"] for p in api.get(f"/v2.0/ports?{q}", status=200).data["ports"]}
    assert pa["id"] not in got and pb["id"] not in got, got
    # and both keys on the one port that has both
    q = urllib.parse.urlencode([("fixed_ips", "ip_address=10.0.0.10"),
                                ("fixed_ips", f"subnet_id={a['id']}")])
    got = [p["id"] for p in api.get(f"/v2.0/ports?{q}", status=200).data["ports"]]
    assert got == [pa["id"]]


def test_f2_pages_sorted_on_a_nullable_attribute_list_every_row(api):
    """Paging a listing sorted on gateway_ip (null for subnets without a
    gateway) must list every subnet once."""
    net = api.network()
    ids = set()
    for i in range(3):
        ids.add(api.subnet(net["id"], f"10.{i}.0.0/24", gateway_ip=None)["id"])
    for i in range(3, 6):
        ids.add(api.subnet(net["id"], f"10.{i}.0.0/24")["id"])
    everything = {}
    for d in ("asc", "desc"):
        seen = _walk(api, "/v2.0/subnets", f"limit=2&sort_key=gateway_ip&sort_dir={d}",
                     "subnets")
        assert sorted(seen) == sorted(ids), (d, len(seen))
        whole = [s["id"] for s in api.get(
            f"/v2.0/subnets?sort_key=gateway_ip&sort_dir={d}", status=200).data["subnets"]]
        assert seen == whole, d  # the pages in the listing's order
        everything[d] = whole
        # and backwards, from the last page
        back = _walk(api, "/v2.0/subnets",
                     f"limit=2&sort_key=gateway_ip&sort_dir={d}&page_reverse=True",
                     "subnets", rel="previous")
        assert sorted(back) == sorted(ids) and len(back) == len(ids), (d, back)
    # NULL below every value on every backend: first going up, last going down
    assert everything["asc"] == everything["desc"][::-1]
    first = api.get(f"/v2.0/subnets/{everything['asc'][0]}", status=200).data["subnet"]
    assert first["gateway_ip"] is None, first


def test_f2b_marker_with_a_null_sort_value_is_no_500(api):
    """Any project's own security group has egress rules of no protocol:
    the next page of its rules sorted on protocol is a 500."""
    sg = api.post("/v2.0/security-groups", {"security_group": {"name": "g"}},
                  status=201).data["security_group"]
    rules = api.get(f"/v2.0/security-group-rules?security_group_id={sg['id']}",
                    status=200).data["security_group_rules"]
    null = next(r for r in rules if r["protocol"] is None)
    api.get(f"/v2.0/security-group-rules?limit=1&sort_key=protocol&sort_dir=asc"
            f"&marker={null['id']}", status=200)


def test_f3_a_marker_without_limit_is_ignored(api):
    """Neutron (api_common.get_limit_and_marker): no limit (and no
    pagination_max_limit), no marker -- every item is listed, and a
    marker that names nothing is no 404."""
    nets = [api.network(name=f"n{i}")["id"] for i in range(3)]
    everything = sorted(nets)
    got = [n["id"] for n in api.get(f"/v2.0/networks?sort_key=id&sort_dir=asc"
                                    f"&marker={everything[0]}",
                                    status=200).data["networks"]]
    assert got == everything
    api.get(f"/v2.0/networks?marker={uuid.uuid4()}", status=200)
    api.get(f"/v2.0/networks?limit=0&marker={uuid.uuid4()}", status=200)


def test_f4_network_owner_sees_tags_of_others_port_on_show_as_in_listing(api):
    """get_port:tags lets the network's owner read them (network_owner):
    the port's show must show what its listing shows (Neutron's policy
    engine reads network:tenant_id of the port's network for both)."""
    net = api.network(project="owner")
    port = api.port(net["id"], project="tenant", admin=True, name="theirs")
    api.put(f"/v2.0/ports/{port['id']}/tags", {"tags": ["red"]}, project="tenant",
            status=200)
    listed = api.get(f"/v2.0/ports?id={port['id']}", project="owner",
                     status=200).data["ports"]
    assert listed and listed[0]["tags"] == ["red"]
    shown = api.get(f"/v2.0/ports/{port['id']}", project="owner", status=200).data["port"]
    assert shown.get("tags") == ["red"], shown


def test_f4b_tags_of_a_shared_networks_subnet_on_show_as_in_listing(api):
    net = api.network(project="admin", admin=True, shared=True)
    sub = api.subnet(net["id"], project="admin", admin=True)
    api.put(f"/v2.0/subnets/{sub['id']}/tags", {"tags": ["blue"]}, project="admin",
            admin=True, status=200)
    listed = api.get(f"/v2.0/subnets?id={sub['id']}", project="p2",
                     status=200).data["subnets"]
    assert listed and listed[0]["tags"] == ["blue"]
    api.get(f"/v2.0/subnets/{sub['id']}/tags", project="p2", status=200)
    shown = api.get(f"/v2.0/subnets/{sub['id']}", project="p2", status=200).data["subnet"]
    assert shown.get("tags") == ["blue"], shown


def test_f5_tag_filters_on_a_collection_without_tags_are_400(api):
    """Neutron: tags/tags-any/not-tags/not-tags-any are filters of the
    resources the tag extension extends only; elsewhere filter validation
    answers 400 ("[...] is invalid attribute for filtering"), as this API
    does for any other unknown filter."""
    net = api.network()
    api.post("/v2.0/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": "p2"}}, status=201)
    for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
        r = api.get(f"/v2.0/rbac-policies?{key}=x", status=None)
        assert r.status_int == 400, (key, r.status, r.text[:200])


def test_f6_sort_key_without_sort_dir_is_400(api):
    """Neutron (api_common.get_sorts; test_base.test_sort_without_direction):
    as many sort_dir as sort_key, else 400."""
    api.network()
    r = api.get("/v2.0/networks?sort_key=name", status=None)
    assert r.status_int == 400, (r.status, r.text[:200])
