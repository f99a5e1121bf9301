"""dns-integration, dns-domain-ports and extra_dhcp_opt through the API,
and what the hosts get of them (the host view)."""

import pytest

from quantum_ovs.db import host_view


def _net(api, cidr="10.0.0.0/24", **kw):
    net = api.network(**kw)
    return net, api.subnet(net["id"], cidr)


def _aliases(api):
    return {e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}


def test_aliases_advertised(api):
    assert {"dns-integration", "dns-domain-ports", "extra_dhcp_opt"} <= _aliases(api)


def test_dns_name_and_assignment(api):
    net, sub = _net(api)
    assert net["dns_domain"] == ""
    p = api.port(net["id"], dns_name="VM-One")
    assert p["dns_name"] == "vm-one"
    assert p["dns_assignment"] == [{"hostname": "vm-one", "ip_address": "10.0.0.2",
                                    "fqdn": "vm-one.openstacklocal."}]
    q = api.port(net["id"])
    assert q["dns_name"] == "" and q["dns_domain"] == ""
    assert q["dns_assignment"] == [{"hostname": "host-10-0-0-3", "ip_address": "10.0.0.3",
                                    "fqdn": "host-10-0-0-3.openstacklocal."}]
    # Rename, clear.
    r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"dns_name": "vm-two"}}, status=200)
    assert r.data["port"]["dns_assignment"][0]["fqdn"] == "vm-two.openstacklocal."
    r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"dns_name": ""}}, status=200)
    assert r.data["port"]["dns_assignment"][0]["hostname"] == "host-10-0-0-2"
    got = api.get("/v2.0/ports?dns_name=vm-two", status=200).data["ports"]
    assert got == []
    api.put(f"/v2.0/ports/{p['id']}", {"port": {"dns_name": "vm-two"}}, status=200)
    got = api.get("/v2.0/ports?dns_name=vm-two", status=200).data["ports"]
    assert [x["id"] for x in got] == [p["id"]]


def test_network_domain_and_fqdn_names(api):
    net, sub = _net(api, dns_domain="Example.ORG.")
    assert net["dns_domain"] == "example.org."
    p = api.port(net["id"], dns_name="web.example.org.")
    # As Neutron, the hostname of a fully qualified name is the name whole.
    assert p["dns_assignment"] == [{"hostname": "web.example.org.", "ip_address": "10.0.0.2",
                                    "fqdn": "web.example.org."}]
    q = api.port(net["id"], dns_name="db")
    assert q["dns_assignment"][0]["fqdn"] == "db.example.org."
    # An FQDN outside the domain, or the domain itself: 400, no port.
    for bad in ("web.example.com.", "example.org."):
        r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_name": bad}},
                     status=400)
        assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("ports") == 2
    n = api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": "other.net."}},
                status=200).data["network"]
    assert n["dns_domain"] == "other.net."
    q = api.get(f"/v2.0/ports/{q['id']}", status=200).data["port"]
    assert q["dns_assignment"][0]["fqdn"] == "db.other.net."
    # The port's own dns_domain (dns-domain-ports) is kept and shown.
    r = api.put(f"/v2.0/ports/{q['id']}", {"port": {"dns_domain": "ext.example.com."}},
                status=200)
    assert r.data["port"]["dns_domain"] == "ext.example.com."


def test_fqdn_names_under_the_default_domain(api):
    """With the default domain (openstacklocal.) a fully qualified dns_name
    is accepted as in Neutron, but no agent publishes a name outside the
    network's domain: dns_assignment shows the name that resolves,
    host-<address>, as Neutron's does under the default domain."""
    net, _ = _net(api)
    p = api.port(net["id"], dns_name="vm.example.com.")
    assert p["dns_name"] == "vm.example.com."
    assert p["dns_assignment"] == [{"hostname": "host-10-0-0-2", "ip_address": "10.0.0.2",
                                    "fqdn": "host-10-0-0-2.openstacklocal."}]


def test_default_domain_option(make_api):
    api = make_api(dns_domain="cloud.test")
    net, _ = _net(api)
    p = api.port(net["id"], dns_name="a")
    assert p["dns_assignment"][0]["fqdn"] == "a.cloud.test."
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "dns_name": "vm.example.com."}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    p = api.port(net["id"], dns_name="b.cloud.test.")
    assert p["dns_assignment"][0] == {"hostname": "b.cloud.test.", "ip_address": "10.0.0.3",
                                      "fqdn": "b.cloud.test."}


@pytest.mark.parametrize("bad", [
    "-abc", "abc-", "a_b", "a..b", "a" * 64, ".", "a.123", "with space", "é",
    ".".join(["a" * 63] * 5), 12, ["x"], {"a": 1},
])
def test_bad_dns_names(api, bad):
    net, _ = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_name": bad}},
                 status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    p = api.port(net["id"])
    r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"dns_name": bad}}, status=400)
    assert api.get(f"/v2.0/ports/{p['id']}", status=200).data["port"]["dns_name"] == ""
    r = api.post("/v2.0/networks", {"network": {"dns_domain": bad}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"


def test_name_too_long_for_domain(make_api):
    api = make_api(dns_domain=".".join(["d" * 60] * 3))  # 184 characters with the dot
    net, _ = _net(api)
    name = ".".join(["a" * 40] * 2)  # 81: 81 + 1 + 184 > 255
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_name": name}},
                 status=400)
    assert "longer than 255" in r.data["NeutronError"]["message"]
    api.port(net["id"], dns_name="a" * 60)


def test_extra_dhcp_opts_create_update_clear(api):
    net, _ = _net(api)
    opts = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
            {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4},
            {"opt_name": "bootfile-url", "opt_value": "tftp://[fd00::9]/boot",
             "ip_version": 6},
            {"opt_name": "ntp-server", "opt_value": None}]
    p = api.port(net["id"], extra_dhcp_opts=opts)
    got = sorted(p["extra_dhcp_opts"], key=lambda o: o["opt_name"])
    assert got == [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
        {"opt_name": "bootfile-url", "opt_value": "tftp://[fd00::9]/boot", "ip_version": 6},
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": 4}]
    url = f"/v2.0/ports/{p['id']}"
    # Change one, remove one (null), add one; the others stay.
    r = api.put(url, {"port": {"extra_dhcp_opts": [
        {"opt_name": "bootfile-name", "opt_value": "ipxe.efi"},
        {"opt_name": "tftp-server", "opt_value": None},
        {"opt_name": "67", "opt_value": "x", "ip_version": 6}]}}, status=200)
    got = {(o["opt_name"], o["ip_version"]): o["opt_value"]
           for o in r.data["port"]["extra_dhcp_opts"]}
    assert got == {("bootfile-name", 4): "ipxe.efi", ("bootfile-url", 6): "tftp://[fd00::9]/boot",
                   ("67", 6): "x"}
    # [] changes nothing (as Neutron).
    r = api.put(url, {"port": {"extra_dhcp_opts": []}}, status=200)
    assert len(r.data["port"]["extra_dhcp_opts"]) == 3
    r = api.put(url, {"port": {"extra_dhcp_opts": [
        {"opt_name": n, "opt_value": None, "ip_version": v}
        for (n, v) in got]}}, status=200)
    assert r.data["port"]["extra_dhcp_opts"] == []
    assert api.get(url, status=200).data["port"]["extra_dhcp_opts"] == []


@pytest.mark.parametrize("bad", [
    "x", {"opt_name": "a"}, [{"opt_value": "v"}], [{"opt_name": "", "opt_value": "v"}],
    [{"opt_name": "a", "opt_value": "v", "ip_version": 5}],
    [{"opt_name": "a", "opt_value": "v", "bogus": 1}],
    [{"opt_name": "a", "opt_value": "v"}, {"opt_name": "a", "opt_value": "w"}],
    [{"opt_name": "a b", "opt_value": "v"}], [{"opt_name": "a", "opt_value": "v\n"}],
    [{"opt_name": "a" * 65, "opt_value": "v"}], [{"opt_name": "a", "opt_value": "v" * 256}],
    [{"opt_name": "a", "opt_value": ["v"]}], ["a"],
])
def test_bad_extra_dhcp_opts(api, bad):
    net, _ = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": bad}},
                 status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("ports") == 0


def test_host_view_carries_names_domains_and_options(api):
    net, _ = _net(api, dns_domain="example.org.")
    p = api.port(net["id"], admin=True, dns_name="vm1", **{"binding:host_id": "h1"},
                 extra_dhcp_opts=[{"opt_name": "bootfile-name", "opt_value": "pxe.0"}])
    plugin, db = api.plugin, api.db
    with db.reader() as s:
        view = host_view.full(s, "h1", 1)
    port = next(x for x in view.ports if x.id == p["id"])
    assert port.dns_name == "vm1"
    assert [(o.opt_name, o.opt_value, o.ip_version) for o in port.extra_dhcp_opts] == [
        ("bootfile-name", "pxe.0", 4)]
    assert view.networks[0].dns_domain == "example.org."
    from quantum_ovs import wire
    again = wire.view_from_dict(wire.view_to_dict(view))
    assert again.ports == view.ports and again.networks == view.networks
    assert plugin is not None


def test_changes_wake_the_hosts_of_the_network(api):
    """A rename, a network's dns_domain and an option change reach the
    hosts of the network as deltas (the agent API), not the others."""
    from tests.functional.test_agent_api import HOST_A, HOST_B, bound_port, register, state
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net, _ = _net(api)
    other, _ = _net(api, "10.9.0.0/24")
    p = bound_port(api, net["id"], HOST_A, dns_name="one")
    bound_port(api, other["id"], HOST_B)
    rev_a, rev_b = state(api, HOST_A)["revision"], state(api, HOST_B)["revision"]
    api.put(f"/v2.0/ports/{p['id']}", {"port": {"dns_name": "two", "extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9"}]}}, admin=True, status=200)
    d = state(api, HOST_A, since=rev_a)["delta"]
    [got] = d["ports"]
    assert got["dns_name"] == "two" and got["extra_dhcp_opts"] == [["tftp-server", "10.0.0.9", 4]]
    assert state(api, HOST_B, since=rev_b)["delta"]["ports"] == []
    rev_a = state(api, HOST_A)["revision"]
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": "x.test."}}, status=200)
    d = state(api, HOST_A, since=rev_a)["delta"]
    assert [n["dns_domain"] for n in d["networks"]] == ["x.test."]


def _opts(n, start=0, value="x"):
    return [{"opt_name": f"tag:ipxe,{i:04d}", "opt_value": value} for i in range(start, start + n)]


def test_extra_dhcp_opts_per_port_are_capped(api):
    """[DEFAULT] max_extra_dhcp_opts_per_port (64): one more is a 400 that
    changes nothing, on a create, a bulk, and an update's result (review
    18b: 11,500 options were taken, each change of the port sent them all
    to its host and the agent walked them on every DHCP request)."""
    net, _ = _net(api)
    cap = 64  # the default
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "extra_dhcp_opts": _opts(cap + 1)}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert f"at most {cap} extra DHCP options" in r.data["NeutronError"]["message"]
    r = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"]},
        {"network_id": net["id"], "extra_dhcp_opts": _opts(cap + 1)}]}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("ports") == 0
    p = api.port(net["id"], extra_dhcp_opts=_opts(cap))
    assert len(p["extra_dhcp_opts"]) == cap
    url = f"/v2.0/ports/{p['id']}"
    rev = api.get(url, status=200).data["port"]["revision_number"]
    # one more (with a change of one it has): 400, the port as it was
    body = _opts(1, cap) + [{"opt_name": "tag:ipxe,0000", "opt_value": "changed"}]
    r = api.put(url, {"port": {"extra_dhcp_opts": body, "name": "renamed"}}, status=400)
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    after = api.get(url, status=200).data["port"]
    assert after["revision_number"] == rev and after["name"] == p["name"]
    assert after["extra_dhcp_opts"] == p["extra_dhcp_opts"]
    # one removed and one added at the cap: taken
    body = [{"opt_name": "tag:ipxe,0000", "opt_value": None}] + _opts(1, cap)
    r = api.put(url, {"port": {"extra_dhcp_opts": body}}, status=200)
    assert len(r.data["port"]["extra_dhcp_opts"]) == cap


def test_a_port_past_a_lowered_cap_may_keep_or_shed_options(make_api):
    api = make_api(max_extra_dhcp_opts_per_port=4)
    net, _ = _net(api)
    p = api.port(net["id"], extra_dhcp_opts=_opts(4))
    api.plugin.conf.set_override("max_extra_dhcp_opts_per_port", 2)
    url = f"/v2.0/ports/{p['id']}"
    r = api.put(url, {"port": {"extra_dhcp_opts": _opts(1, value="y")}}, status=200)
    assert len(r.data["port"]["extra_dhcp_opts"]) == 4
    r = api.put(url, {"port": {"extra_dhcp_opts": [
        {"opt_name": "tag:ipxe,0003", "opt_value": None}]}}, status=200)
    assert len(r.data["port"]["extra_dhcp_opts"]) == 3
    api.put(url, {"port": {"extra_dhcp_opts": _opts(1, 9)}}, status=400)
    assert len(api.get(url, status=200).data["port"]["extra_dhcp_opts"]) == 3
    api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                      "extra_dhcp_opts": _opts(3)}}, status=400)
