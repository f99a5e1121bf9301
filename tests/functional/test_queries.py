"""Filters, fields, sorting, pagination and bulk create."""

import urllib.parse

import pytest


@pytest.fixture
def nets(api):
    names = ["delta", "alpha", "echo", "bravo", "charlie", "foxtrot", "golf"]
    out = []
    for i, n in enumerate(names):
        out.append(api.network(name=n, admin_state_up=(i % 2 == 0), mtu=1400 + i))
    return out


def _names(api, query, **kw):
    data = api.get("/v2.0/networks?" + query, status=200, **kw).data
    return [n["name"] for n in data["networks"]]


def test_filters(api, nets):
    assert _names(api, "name=alpha") == ["alpha"]
    assert sorted(_names(api, "name=alpha&name=echo")) == ["alpha", "echo"]  # OR
    assert sorted(_names(api, "admin_state_up=false")) == ["alpha", "bravo", "foxtrot"]
    assert sorted(_names(api, "admin_state_up=True&name=alpha&name=delta")) == ["delta"]
    assert _names(api, "mtu=1402") == ["echo"]
    assert _names(api, f"id={nets[3]['id']}") == ["bravo"]
    assert _names(api, "name=nobody") == []
    assert len(_names(api, "tenant_id=p1")) == 7
    assert len(_names(api, "project_id=p1&shared=false")) == 7
    assert _names(api, "description=") != []  # empty-string filtering


@pytest.mark.parametrize("query", ["bogus=1", "admin_state_up=perhaps", "mtu=big",
                                   "sort_key=bogus", "sort_key=name&sort_dir=sideways",
                                   "sort_key=name&sort_key=id&sort_dir=asc",
                                   "limit=-1", "limit=x", "page_reverse=maybe",
                                   "sort_key=tags&sort_dir=asc", "sort_key=name"])
def test_bad_queries_are_400(api, nets, query):
    r = api.get("/v2.0/networks?" + query, status=400)
    assert r.data["NeutronError"]["message"]


def test_fields(api, nets):
    data = api.get("/v2.0/networks?fields=id&fields=name", status=200).data["networks"]
    assert all(set(n) == {"id", "name"} for n in data) and len(data) == 7
    one = api.get(f"/v2.0/networks/{nets[0]['id']}?fields=mtu", status=200).data["network"]
    assert one == {"mtu": 1400}


def test_sorting(api, nets):
    assert _names(api, "sort_key=name&sort_dir=asc") == sorted(n["name"] for n in nets)
    assert _names(api, "sort_key=name&sort_dir=desc") == sorted(
        (n["name"] for n in nets), reverse=True)
    by_state = _names(api, "sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc")
    assert by_state == ["foxtrot", "bravo", "alpha", "golf", "echo", "delta", "charlie"]


def _walk(api, query, reverse=False):
    """Follow next (or previous) links to the end; return names in order."""
    url = "/v2.0/networks?" + query
    seen, pages = [], 0
    while url and pages < 20:
        data = api.get(url, status=200).data
        names = [n["name"] for n in data["networks"]]
        seen = names + seen if reverse else seen + names
        rel = "previous" if reverse else "next"
        links = {link["rel"]: link["href"] for link in data.get("networks_links", [])}
        url = None
        if rel in links and names:
            parsed = urllib.parse.urlsplit(links[rel])
            assert parsed.path == "/v2.0/networks"
            url = parsed.path + "?" + parsed.query
        pages += 1
    return seen, pages


def test_pagination_forward_and_back(api, nets):
    everything = sorted(n["name"] for n in nets)
    names, pages = _walk(api, "limit=3&sort_key=name&sort_dir=asc")
    assert names == everything and pages >= 3
    first = api.get("/v2.0/networks?limit=3&sort_key=name&sort_dir=asc", status=200).data
    assert [n["name"] for n in first["networks"]] == everything[:3]
    nxt = {link["rel"]: link["href"] for link in first["networks_links"]}["next"]
    assert "marker=" in nxt and "sort_key=name" in nxt
    # backwards from the last element
    last_id = next(n["id"] for n in nets if n["name"] == everything[-1])
    back, _ = _walk(api, f"limit=2&sort_key=name&sort_dir=asc&marker={last_id}&page_reverse=True",
                    reverse=True)
    assert back == everything[:-1]


def test_pagination_unknown_marker_is_404(api, nets):
    api.get("/v2.0/networks?limit=2&marker=0d9c9b8e-1111-4111-8111-111111111111",
            status=404)


def test_bulk_create_all_or_nothing(api):
    r = api.post("/v2.0/networks", {"networks": [{"name": "a"}, {"name": "b"}]}, status=201)
    assert [n["name"] for n in r.data["networks"]] == ["a", "b"]
    api.post("/v2.0/networks", {"networks": [{"name": "c"}, {"name": 7}]}, status=400)
    api.post("/v2.0/networks", {"networks": []}, status=400)
    assert sorted(_names(api, "")) == ["a", "b"]
    net = r.data["networks"][0]
    api.subnet(net["id"], "10.0.0.0/29")
    # the third port cannot get its address: none of the three is created
    api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]},
                                       {"network_id": net["id"],
                                        "fixed_ips": [{"ip_address": "10.0.0.2"}]}]},
             status=409)
    assert api.count("ports") == 0
    r = api.post("/v2.0/ports", {"ports": [{"network_id": net["id"]}] * 5}, status=201)
    assert len({p["fixed_ips"][0]["ip_address"] for p in r.data["ports"]}) == 5


def test_port_filters(api):
    net = api.network()
    sub = api.subnet(net["id"])
    a = api.port(net["id"], device_id="vm-a", fixed_ips=[{"ip_address": "10.0.0.10"}])
    api.port(net["id"], device_id="vm-b", fixed_ips=[{"ip_address": "10.0.0.11"}])

    def ids(q):
        return [p["id"] for p in api.get("/v2.0/ports?" + q, status=200).data["ports"]]
    assert ids("fixed_ips=ip_address%3D10.0.0.10") == [a["id"]]
    assert ids("device_id=vm-a") == [a["id"]]
    assert len(ids(f"fixed_ips=subnet_id%3D{sub['id']}")) == 2
    assert len(ids("fixed_ips=ip_address_substr%3D10.0.0.1")) == 2
    assert ids(f"network_id={net['id']}&device_id=vm-a&device_id=vm-c") == [a["id"]]
    api.get("/v2.0/ports?fixed_ips=mac%3Dx", status=400)
    assert [n["id"] for n in api.get(f"/v2.0/networks?subnets={sub['id']}",
                                     status=200).data["networks"]] == [net["id"]]


def test_changed_since(api):
    import time
    old = api.network(name="old")
    time.sleep(1.1)
    mark = api.network(name="new")["created_at"]
    names = [n["name"] for n in api.get(f"/v2.0/networks?changed_since={mark}",
                                        status=200).data["networks"]]
    assert names == ["new"]
    api.put(f"/v2.0/networks/{old['id']}", {"network": {"description": "x"}}, status=200)
    names = sorted(n["name"] for n in api.get(f"/v2.0/networks?changed_since={mark}",
                                              status=200).data["networks"])
    assert names == ["new", "old"]
    api.get("/v2.0/networks?changed_since=yesterday", status=400)
    assert "standard-attr-timestamp" in {
        e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}


def test_every_forward_page_links_back_even_an_empty_one(api, nets):
    """Neutron's links: a forward page always has a previous link (a
    marker sent or not, items or none); a short one has no next link."""
    everything = sorted(n["name"] for n in nets)
    last_id = next(n["id"] for n in nets if n["name"] == everything[-1])
    data = api.get(f"/v2.0/networks?limit=3&sort_key=name&sort_dir=asc&marker={last_id}",
                   status=200).data
    assert data["networks"] == []
    links = {link["rel"]: link["href"] for link in data["networks_links"]}
    assert set(links) == {"previous"}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(links["previous"]).query)
    assert "marker" not in query and query["page_reverse"] == ["True"]
    # Followed, it gives the last page.
    back = api.get("/v2.0/networks?" + urllib.parse.urlsplit(links["previous"]).query,
                   status=200).data
    assert [n["name"] for n in back["networks"]] == everything[-3:]
    first = api.get("/v2.0/networks?limit=3&sort_key=name&sort_dir=asc", status=200).data
    assert {link["rel"] for link in first["networks_links"]} == {"next", "previous"}
    short = api.get("/v2.0/networks?limit=30&sort_key=name&sort_dir=asc", status=200).data
    assert {link["rel"] for link in short["networks_links"]} == {"previous"}
    # Backwards it is the other way round.
    rev = api.get(f"/v2.0/networks?limit=30&sort_key=name&sort_dir=asc&marker={last_id}"
                  "&page_reverse=True", status=200).data
    assert [n["name"] for n in rev["networks"]] == everything[:-1]
    assert {link["rel"] for link in rev["networks_links"]} == {"next"}


@pytest.mark.parametrize("query", ["mtu=9223372036854775808", "revision_number=-" + "9" * 20,
                                   "mtu=99999999999999999999"])
def test_filter_integers_beyond_64_bits_are_400(api, query):
    r = api.get("/v2.0/networks?" + query, status=400)
    assert "out of range" in r.data["NeutronError"]["message"]
