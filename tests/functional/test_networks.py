"""Networks: attributes, defaults, updates, deletes."""

import time


def test_create_network_defaults(api):
    net = api.network(name="n1")
    assert net["name"] == "n1"
    assert net["admin_state_up"] is True
    assert net["status"] == "ACTIVE"
    assert net["shared"] is False
    assert net["mtu"] == 1450  # a VXLAN tenant network: 1500 less 50
    assert net["port_security_enabled"] is True
    assert net["project_id"] == net["tenant_id"] == "p1"
    assert net["subnets"] == [] and net["tags"] == []
    assert net["revision_number"] == 0
    assert net["created_at"].endswith("Z") and net["updated_at"].endswith("Z")
    shown = api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]
    assert shown == net


def test_update_bumps_revision_and_keeps_other_fields(api):
    net = api.network(name="before", description="d")
    time.sleep(1.05)
    upd = api.put(f"/v2.0/networks/{net['id']}",
                  {"network": {"name": "after", "admin_state_up": False}},
                  status=200).data["network"]
    assert upd["name"] == "after" and upd["admin_state_up"] is False
    assert upd["description"] == "d"
    assert upd["revision_number"] > net["revision_number"]
    assert upd["updated_at"] > net["updated_at"]
    assert upd["created_at"] == net["created_at"]


def test_update_rejects_read_only_and_unknown(api):
    net = api.network()
    for body in ({"status": "DOWN"}, {"id": net["id"]}, {"project_id": "p2"},
                 {"nope": 1}, {"name": ["x"]}):
        api.put(f"/v2.0/networks/{net['id']}", {"network": body}, status=400)
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"] == net


def test_if_match_revision(api):
    net = api.network()
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}},
            headers={"If-Match": "revision_number=99"}, status=412)
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}},
            headers={"If-Match": f"revision_number={net['revision_number']}"}, status=200)


def test_delete_network(api):
    net = api.network()
    r = api.delete(f"/v2.0/networks/{net['id']}", status=204)
    assert r.body == b""
    api.get(f"/v2.0/networks/{net['id']}", status=404)
    api.delete(f"/v2.0/networks/{net['id']}", status=404)


def test_delete_network_with_ports_is_409_and_keeps_everything(api):
    net = api.network()
    sub = api.subnet(net["id"])
    port = api.port(net["id"], device_owner="compute:nova")
    r = api.delete(f"/v2.0/networks/{net['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "NetworkInUse"
    api.get(f"/v2.0/subnets/{sub['id']}", status=200)
    api.get(f"/v2.0/ports/{port['id']}", status=200)
    api.delete(f"/v2.0/ports/{port['id']}", status=204)
    api.delete(f"/v2.0/networks/{net['id']}", status=204)
    api.get(f"/v2.0/subnets/{sub['id']}", status=404)


def test_delete_network_removes_dhcp_ports_and_subnets(api):
    net = api.network()
    api.subnet(net["id"])
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    api.delete(f"/v2.0/networks/{net['id']}", status=204)
    api.get(f"/v2.0/ports/{dhcp['id']}", admin=True, status=404)
    assert api.count("subnets") == 0


def test_mtu_and_port_security_writable(api):
    net = api.network(mtu=1400, port_security_enabled=False)
    assert net["mtu"] == 1400 and net["port_security_enabled"] is False
    upd = api.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1450}},
                  status=200).data["network"]
    assert upd["mtu"] == 1450
    api.subnet(net["id"])
    port = api.port(net["id"])
    assert port["port_security_enabled"] is False  # inherited


def test_tags_subresource_and_filters(api):
    a = api.network(name="a")
    b = api.network(name="b")
    api.put(f"/v2.0/networks/{a['id']}/tags", {"tags": ["red", "blue"]}, status=200)
    api.put(f"/v2.0/networks/{b['id']}/tags/red", status=201)
    assert api.get(f"/v2.0/networks/{a['id']}/tags", status=200).data["tags"] == \
        ["blue", "red"]
    api.get(f"/v2.0/networks/{b['id']}/tags/red", status=204)
    api.get(f"/v2.0/networks/{b['id']}/tags/blue", status=404)

    def names(q):
        return sorted(n["name"] for n in api.get("/v2.0/networks?" + q,
                                                 status=200).data["networks"])
    assert names("tags=red") == ["a", "b"]
    assert names("tags=red,blue") == ["a"]
    assert names("tags-any=blue") == ["a"]
    assert names("not-tags=blue") == ["b"]
    assert names("not-tags-any=red") == []
    api.delete(f"/v2.0/networks/{a['id']}/tags/blue", status=204)
    assert names("tags=blue") == []
    api.delete(f"/v2.0/networks/{b['id']}/tags", status=204)
    assert names("tags=red") == ["a"]
    api.put(f"/v2.0/networks/{a['id']}/tags", {"tags": "red"}, status=400)
    api.put(f"/v2.0/networks/{a['id']}/tags/a,b", status=400)


def test_tag_and_tag_ext_aliases_and_tags_on_subnets_and_ports(api):
    """tag (networks) and tag-ext (subnets, ports) are advertised, and the
    whole tags sub-resource works on each."""
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200)
               .data["extensions"]}
    assert {"tag", "tag-ext", "standard-attr-tag"} <= aliases
    net = api.network()
    sub = api.subnet(net["id"], "10.70.0.0/24")
    port = api.port(net["id"])
    for collection, obj in (("networks", net), ("subnets", sub), ("ports", port)):
        base = f"/v2.0/{collection}/{obj['id']}/tags"
        api.put(base + "/red", status=201)
        api.put(base + "/red", status=201)  # again: no change
        assert api.get(base, status=200).data["tags"] == ["red"]
        api.get(base + "/red", status=204)
        r = api.get(base + "/green", status=404)
        assert r.data["NeutronError"]["type"] == "TagNotFound"
        assert sorted(api.put(base, {"tags": ["a", "b", "c"]}, status=200)
                      .data["tags"]) == ["a", "b", "c"]
        api.get(base + "/red", status=404)
        assert [o["id"] for o in api.get(f"/v2.0/{collection}?tags=a,b",
                                         status=200).data[collection]] == [obj["id"]]
        assert api.get(f"/v2.0/{collection}?not-tags-any=c",
                       status=200).data[collection] == []
        api.delete(base + "/a", status=204)
        r = api.delete(base + "/a", status=404)
        assert r.data["NeutronError"]["type"] == "TagNotFound"
        api.delete(base, status=204)
        assert api.get(base, status=200).data["tags"] == []
        assert api.get(f"/v2.0/{collection}/{obj['id']}",
                       status=200).data[collection[:-1]]["tags"] == []
        # A tag of up to 255 characters; the list replacing them all names
        # each once.
        api.put(base + "/" + "x" * 255, status=201)
        api.put(base + "/" + "x" * 256, status=400)
        api.put(base, {"tags": ["d", "d"]}, status=400)
        assert api.get(base, status=200).data["tags"] == ["x" * 255]
        api.delete(base, status=204)
    # someone else's resource: not found, whatever the tag call
    api.put(f"/v2.0/networks/{net['id']}/tags/x", project="p2", status=404)


def test_at_most_50_tags_per_resource(api):
    net = api.network()
    base = f"/v2.0/networks/{net['id']}/tags"
    api.put(base, {"tags": [f"t{i}" for i in range(51)]}, status=400)
    assert api.get(base, status=200).data["tags"] == []
    api.put(base, {"tags": [f"t{i}" for i in range(50)]}, status=200)
    api.put(base + "/t7", status=201)  # already there: still 50
    r = api.put(base + "/one-more", status=400)
    assert "50" in r.data["NeutronError"]["message"]
    assert len(api.get(base, status=200).data["tags"]) == 50
