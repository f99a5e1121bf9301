"""DNS integration, review of session 29: what the API shows of a port's
names (dns_assignment) against what the hosts' agents answer for them
(agent/responders/dns.py build_zone over the host view), and which ports'
addresses the agents answer for at all."""

from agent.responders import dns as R
from agent.responders import dns_wire as W
from quantum_ovs.db import host_view
from tests.functional.test_floatingips import _fip, _topology
from tests.functional.test_floatingips import l3  # noqa: F401 - the fixture

HOST = {"binding:host_id": "h1"}


def _zones(api, host="h1", default="openstacklocal."):
    """{network id: the Zone an agent on ``host`` answers from}, built as
    agent/daemon.py does (build_zone over the host view's ports)."""
    with api.db.reader() as s:
        view = host_view.full(s, host, 1)
    return {n.id: R.build_zone(n, view.ports, view.subnets, default) for n in view.networks}


def _ask(zone, name, qtype):
    import dns.message
    q = dns.message.make_query(name, qtype)
    out = R.answer(W.parse_query(q.to_wire()), zone)
    return None if out is None else dns.message.from_wire(out)


# ------------------------------------------------------------------ F1
def test_dns_assignment_of_a_long_name_is_what_the_agent_answers(make_api):
    """A name of 254 or 255 characters (with its trailing dot) passes the
    API's checks (FQDN_MAX_LEN 255 counts the dotted text) and shows in
    dns_assignment, but DNS carries at most 255 octets on the wire, i.e.
    253 characters plus the final dot: build_zone finds it not encodable
    and publishes host-<address>.<domain> instead, a name the API shows
    nowhere; the name the API shows does not resolve.  (quantum_ovs/
    dnsnames.py promises one rule for both.)  Either the API refuses the
    name (400) or dns_assignment shows what is published."""
    api = make_api()
    domain = "example.org."
    net = api.network(dns_domain=domain)
    api.subnet(net["id"], "10.0.0.0/24")
    # 3 labels of 63 + one of 50 = 242 characters, + "." + "example.org." = 255
    name = ".".join(["a" * 63] * 3 + ["b" * 50])
    assert len(name) + 1 + len(domain) == 255
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_name": name,
                                          **HOST}}, project="p1", admin=True)
    if r.status_int == 400:
        return  # refused: fine
    assert r.status_int == 201, r.data
    p = r.data["port"]
    [a] = p["dns_assignment"]
    zone = _zones(api)[net["id"]]
    assert zone.names.get(a["fqdn"]) == (a["ip_address"],), (
        a["fqdn"], sorted(zone.names))


# ------------------------------------------------------------------ F2
def test_floating_ip_addresses_are_not_published_by_the_agent(l3):  # noqa: F811
    """Neutron's DHCP agent writes no name for the ports of
    DHCP_CONFIG_NOT_REQUIRED_OWNERS (network:floatingip among them:
    neutron/agent/linux/dhcp.py port_requires_dhcp_configuration, used by
    _iter_hosts for the addn_hosts file): an instance on the external
    network asking the PTR of a floating IP gets what the operator's DNS
    says (dnsmasq forwards it; with an external DNS driver, the name the
    floating IP was published under).  Here the floating IP's port is one
    of the network's ports like any other: the agent answers, with
    authority, host-<floating ip>.openstacklocal. for its PTR and A."""
    api = l3
    ext_net, ext_sub, router, net, sub, port = _topology(api)
    # An instance on the external (provider) network, on host h1.
    api.port(ext_net["id"], project="admin-p", admin=True, **HOST)
    f = _fip(api, floating_network_id=ext_net["id"], port_id=port["id"])
    ip = f["floating_ip_address"]
    zone = _zones(api)[ext_net["id"]]
    published = sorted(n for n, ips in zone.names.items() if ip in ips)
    assert published == [], published
    rev = R.reverse_name(ip)
    assert rev not in zone.reverse, zone.reverse.get(rev)
    r = _ask(zone, rev, "PTR")
    assert r is None or not r.answer, r


def _assigned_and_published(api, port_id, net_id):
    """(the port's dns_assignment, {address: the fully qualified names an
    agent answers for it (not the single label it also answers)}, the
    zone)."""
    p = api.get(f"/v2.0/ports/{port_id}", status=200).data["port"]
    zone = _zones(api)[net_id]
    names = {ip: sorted(n for n, ips in zone.names.items() if ip in ips and n.count(".") > 1)
             for ip in (a["ip_address"] for a in p["dns_assignment"])}
    return p["dns_assignment"], names, zone


def test_dns_assignment_follows_a_domain_that_grows_too_long(make_api):
    """A network's dns_domain can grow after its ports are named (Neutron
    checks names on port writes only): a name that no longer fits the
    wire is published as host-<address>, and dns_assignment says so; a
    domain of 253 characters (the longest Neutron takes) leaves room for
    no name at all: the address has none, in dns_assignment (fqdn "") as
    in the agent's zone (no name, no PTR)."""
    api = make_api()
    net = api.network(dns_domain="example.org.")
    api.subnet(net["id"], "10.0.0.0/24")
    port = api.port(net["id"], admin=True, dns_name="w" * 60, **HOST)
    [a], names, _ = _assigned_and_published(api, port["id"], net["id"])
    assert a["fqdn"] == "w" * 60 + ".example.org." and names[a["ip_address"]] == [a["fqdn"]]
    # 3 labels of 63 + "org." = 196 characters: the name would make 257
    longer = ".".join(["d" * 63] * 3) + ".org."
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": longer}}, status=200)
    [a], names, zone = _assigned_and_published(api, port["id"], net["id"])
    ip = a["ip_address"]
    assert a["hostname"] == "host-" + ip.replace(".", "-"), a
    assert a["fqdn"] == a["hostname"] + "." + longer, a
    assert names[ip] == [a["fqdn"]], names
    assert zone.reverse[R.reverse_name(ip)] == (a["fqdn"],)
    # The longest domain Neutron takes: no name fits in front of it.
    longest = "a." * 125 + "bc."
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": longest}}, status=200)
    [a], names, zone = _assigned_and_published(api, port["id"], net["id"])
    assert a["fqdn"] == "" and names[a["ip_address"]] == [], (a, names)
    assert R.reverse_name(a["ip_address"]) not in zone.reverse


def test_a_fully_qualified_name_too_long_for_the_wire_is_not_shown(make_api):
    """A fully qualified dns_name of 255 characters passes Neutron's limit
    (255 of text) but not the wire's (253 and the final dot): shown and
    published as host-<address>, the same name in both."""
    api = make_api()
    domain = "example.org."
    net = api.network(dns_domain=domain)
    api.subnet(net["id"], "10.0.0.0/24")
    name = ".".join(["a" * 63] * 3 + ["b" * 50]) + "." + domain
    assert len(name) == 255
    port = api.port(net["id"], admin=True, dns_name=name, **HOST)
    assert port["dns_name"] == name  # (kept, as Neutron keeps it)
    [a], names, _ = _assigned_and_published(api, port["id"], net["id"])
    assert a["fqdn"].startswith("host-") and names[a["ip_address"]] == [a["fqdn"]], (a, names)


# ------------------------------------------------------------------ F-null
def test_null_names_are_refused_like_neutron(make_api):
    """neutron-lib converts dns_name and dns_domain with
    convert_string_to_case_insensitive, which refuses what is not a
    string (None.lower() raises): null is a 400 InvalidInput on ports and
    networks, on create and update, and nothing is written; "" is no
    name."""
    api = make_api()
    net = api.network(dns_domain="example.org.")
    api.subnet(net["id"], "10.0.0.0/24")
    port = api.port(net["id"], dns_name="web", dns_domain="example.org.")
    for body in ({"dns_name": None}, {"dns_domain": None}):
        r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], **body}})
        assert r.status_int == 400, (body, r.data)
        err = r.data["NeutronError"]
        assert err["type"] == "InvalidInput" and "null" in err["message"], err
        r = api.put(f"/v2.0/ports/{port['id']}", {"port": body})
        assert r.status_int == 400, (body, r.data)
        assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.count("ports") == 1
    shown = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert (shown["dns_name"], shown["dns_domain"]) == ("web", "example.org.")
    r = api.post("/v2.0/networks", {"network": {"dns_domain": None}})
    assert r.status_int == 400 and r.data["NeutronError"]["type"] == "InvalidInput", r.data
    r = api.put(f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": None}})
    assert r.status_int == 400 and r.data["NeutronError"]["type"] == "InvalidInput", r.data
    assert api.count("networks") == 1
    assert api.get(f"/v2.0/networks/{net['id']}",
                   status=200).data["network"]["dns_domain"] == "example.org."
    # "" is no name
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"dns_name": ""}}, status=200)
    assert r.data["port"]["dns_name"] == ""


def test_null_names_of_a_floating_ip_are_refused_like_neutron(l3):  # noqa: F811
    """The same converter on a floating IP's dns_name and dns_domain."""
    api = l3
    ext_net, *_ = _topology(api)
    for body in ({"dns_name": None}, {"dns_domain": None}):
        r = api.post("/v2.0/floatingips", {"floatingip": {
            "floating_network_id": ext_net["id"], **body}}, project="p1")
        assert r.status_int == 400, (body, r.data)
        assert r.data["NeutronError"]["type"] == "InvalidInput"
    assert api.get("/v2.0/floatingips", status=200, admin=True).data["floatingips"] == []
