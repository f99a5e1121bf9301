"""DNS integration as Neutron has it (review of session 25): floating IPs
take dns_name and dns_domain; dns_assignment is what the agents publish;
a dns_domain is fully qualified; names are not trimmed; filters on names
are not validated."""

import pytest

from agent.responders.dns import build_zone
from quantum_ovs.db import host_view
from quantum_ovs.dnsnames import published_name
from tests.functional.test_floatingips import F, _fip, _topology
from tests.functional.test_floatingips import l3  # noqa: F401 - the fixture


def _net(api, cidr="10.0.0.0/24", **kw):
    net = api.network(**kw)
    return net, api.subnet(net["id"], cidr)


def test_a_floating_ip_takes_dns_name_and_dns_domain(l3):  # noqa: F811
    """neutron-lib's dns definition puts both on floating IPs (create only);
    without an external DNS driver Neutron shows them empty."""
    api = l3
    ext_net, *_ = _topology(api)
    r = api.post(F, {"floatingip": {"floating_network_id": ext_net["id"], "dns_name": "a",
                                    "dns_domain": "example.org."}}, project="p1")
    assert r.status_int == 201, r.data
    assert (r.data["floatingip"]["dns_name"], r.data["floatingip"]["dns_domain"]) == ("", "")
    f = _fip(api, floating_network_id=ext_net["id"])
    assert f["dns_name"] == "" and f["dns_domain"] == ""
    shown = api.get(f"{F}/{f['id']}", status=200).data["floatingip"]
    assert shown["dns_name"] == "" and shown["dns_domain"] == ""
    # Validated as neutron-lib's: a relative name, a fully qualified domain.
    for bad in ({"dns_name": "a.example.org."}, {"dns_domain": "example.org"},
                {"dns_name": "a_b"}, {"dns_name": 5}):
        r = api.post(F, {"floatingip": {"floating_network_id": ext_net["id"], **bad}},
                     project="p1")
        assert r.status_int == 400, (bad, r.data)
        assert r.data["NeutronError"]["type"] in ("InvalidInput", "BadRequest")
    # Not updatable (allow_put False).
    r = api.put(f"{F}/{f['id']}", {"floatingip": {"dns_name": "b"}}, project="p1")
    assert r.status_int == 400, r.data
    assert api.count("floatingips") == 2


def _published(p, domain):
    return [published_name(p["dns_name"], a["ip_address"], domain)[0]
            for a in p["dns_assignment"]]


def _zone(api, host="h1", default="openstacklocal."):
    """What an agent on ``host`` answers (agent/responders/dns.py), from
    the host view the server sends it."""
    with api.db.reader() as s:
        view = host_view.full(s, host, 1)
    [net] = view.networks
    return build_zone(net, view.ports, view.subnets, default)


def test_dns_assignment_is_what_the_agent_publishes_for_an_out_of_domain_fqdn(api):
    net, _ = _net(api)
    p = api.port(net["id"], dns_name="vm.example.com.")
    a = p["dns_assignment"][0]
    assert [a["fqdn"]] == _published(p, "openstacklocal.")
    assert a == {"hostname": "host-10-0-0-2", "ip_address": "10.0.0.2",
                 "fqdn": "host-10-0-0-2.openstacklocal."}


@pytest.mark.parametrize("name", ["web", "web.example.org.", "www.example", ""])
def test_dns_assignment_follows_the_network_domain(api, name):
    net, _ = _net(api, dns_domain="example.org.")
    p = api.port(net["id"], dns_name=name, admin=True, **{"binding:host_id": "h1"})
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": "other.net."}},
            status=200)
    p = api.get(f"/v2.0/ports/{p['id']}", status=200).data["port"]
    assert [a["fqdn"] for a in p["dns_assignment"]] == _published(p, "other.net.")
    fqdn = p["dns_assignment"][0]["fqdn"]
    assert fqdn.endswith(".other.net.")
    assert _zone(api).names[fqdn] == (p["fixed_ips"][0]["ip_address"],)


@pytest.mark.parametrize("dom", ["example.org", "a." * 127, " example.org.", "example..org."])
def test_network_dns_domain_rejected_like_neutron(api, dom):
    r = api.post("/v2.0/networks", {"network": {"dns_domain": dom}}, project="p1")
    assert r.status_int == 400, r.data
    assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("networks") == 0


def test_the_longest_dns_domain_neutron_takes(api):
    dom = "a." * 126 + "b."                      # 254 characters: too long
    assert api.post("/v2.0/networks", {"network": {"dns_domain": dom}},
                    project="p1").status_int == 400
    dom = "a." * 125 + "bc."                     # 253 characters
    r = api.post("/v2.0/networks", {"network": {"dns_domain": dom}}, project="p1")
    assert r.status_int == 201, r.data
    assert r.data["network"]["dns_domain"] == dom


@pytest.mark.parametrize("name", [" a ", "a ", "\ta"])
def test_dns_name_with_blanks_rejected_like_neutron(api, name):
    net, _ = _net(api)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_name": name}})
    assert r.status_int == 400, r.data
    assert api.count("ports") == 0


def test_dns_names_are_lower_cased(api):
    net, _ = _net(api, dns_domain="Example.ORG.")
    p = api.port(net["id"], dns_name="Web")
    assert p["dns_name"] == "web" and net["dns_domain"] == "example.org."


def test_filters_on_names_are_not_validated(api):
    """Neutron converts filter values (lower case) and does not check them:
    an invalid name matches nothing."""
    net, _ = _net(api, dns_domain="example.org.")
    p = api.port(net["id"], dns_name="web")
    assert api.get("/v2.0/ports?dns_name=a_b", status=200).data["ports"] == []
    assert [x["id"] for x in api.get("/v2.0/ports?dns_name=WEB",
                                     status=200).data["ports"]] == [p["id"]]
    assert api.get("/v2.0/networks?dns_domain=example.org", status=200).data["networks"] == []
    got = api.get("/v2.0/networks?dns_domain=EXAMPLE.org.", status=200).data["networks"]
    assert [x["id"] for x in got] == [net["id"]]
