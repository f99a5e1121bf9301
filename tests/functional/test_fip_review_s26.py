"""Floating IPs and their port forwardings as Neutron has them (review of
session 26): a forwarding to another project's port, N-to-1 port ranges,
the forwardings listing's sorting and paging, a DHCP port, the DNS
attributes.  Each test failed before its fix."""

from quantum_ovs.db import models
from tests.functional.test_floatingips import ADMIN, F, R, _count, _fip, _put, _topology
from tests.functional.test_floatingips import l3  # noqa: F401 - the fixture


def _pf_post(api, fid, project="p1", **attrs):
    return api.post(f"{F}/{fid}/port_forwardings", {"port_forwarding": attrs},
                    project=project)


def test_port_forwarding_cannot_expose_another_projects_port(l3):  # noqa: F811
    """The owner of a shared network sees the ports other projects make on
    it (Neutron's get_port: network owner reader) -- but a floating IP of
    its own must not be pointed at them.  Association refuses it (as
    Neutron's l3_db._internal_fip_assoc_data does); a port forwarding
    creates it (201): p1 publishes p2's VM on p1's floating IP."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    shared = l3.network(shared=True, project_id="p1", **ADMIN)
    ssub = l3.subnet(shared["id"], cidr="10.9.0.0/24", project="p1")
    l3.put(f"{R}/{router['id']}/add_router_interface", {"subnet_id": ssub["id"]},
           status=200)
    victim = l3.port(shared["id"], project="p2")
    vip = victim["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    # the floating IP itself cannot take it
    _put(l3, f["id"], 400, port_id=victim["id"])
    r = _pf_post(l3, f["id"], protocol="tcp", internal_port_id=victim["id"],
                 internal_ip_address=vip, internal_port=22, external_port=2222)
    assert r.status_int in (400, 403, 404), (r.status, r.text[:300])
    assert _count(l3, models.PortForwarding) == 0
    # ... nor moved onto it by an update of a forwarding of p1's own port
    ok = _pf_post(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
                  internal_ip_address=port["fixed_ips"][0]["ip_address"],
                  internal_port=80, external_port=8080)
    assert ok.status_int == 201
    pf = ok.data["port_forwarding"]
    r = l3.put(f"{F}/{f['id']}/port_forwardings/{pf['id']}", {"port_forwarding": {
        "internal_port_id": victim["id"], "internal_ip_address": vip}})
    assert r.status_int in (400, 403, 404), (r.status, r.text[:300])


def test_port_forwarding_one_internal_port_for_a_range_of_external_ports(l3):  # noqa: F811
    """Neutron's pf_plugin._validate_ranges: 'The relation between internal
    and external ports must be N-N or 1-N' -- an external range sent to
    one internal port is valid (and the compiler's forwarded_ports handles
    it: internal_port_lo == internal_port_hi); here it is a 400."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    r = _pf_post(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
                 internal_ip_address=ip, internal_port_range="22:22",
                 external_port_range="2000:2010")
    assert r.status_int == 201, (r.status, r.text[:300])
    assert (r.data["port_forwarding"]["internal_port_range"],
            r.data["port_forwarding"]["external_port_range"]) == ("22:22", "2000:2010")


def test_port_forwarding_list_honours_limit_and_sort(l3):  # noqa: F811
    """Neutron's get_floatingip_port_forwardings pages and sorts
    (base_obj.Pager(sorts, limit, page_reverse, marker)); here limit and
    sort_key/sort_dir are dropped: every forwarding comes back, unsorted."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    ip = port["fixed_ips"][0]["ip_address"]
    f = _fip(l3, floating_network_id=ext_net["id"])
    for i in range(3):
        assert _pf_post(l3, f["id"], protocol="tcp", internal_port_id=port["id"],
                        internal_ip_address=ip, internal_port=100 + i,
                        external_port=200 + i).status_int == 201
    got = l3.get(f"{F}/{f['id']}/port_forwardings?limit=1&sort_key=external_port"
                 "&sort_dir=desc", status=200).data["port_forwardings"]
    assert [x["external_port"] for x in got] == [202]
    # The next page, by the marker of the first; and back from the last.
    base = f"{F}/{f['id']}/port_forwardings?sort_key=external_port&sort_dir=desc"
    body = l3.get(f"{base}&limit=2&marker={got[0]['id']}", status=200).data
    assert [x["external_port"] for x in body["port_forwardings"]] == [201, 200]
    assert {ln["rel"] for ln in body["port_forwardings_links"]} == {"next", "previous"}
    last = body["port_forwardings"][-1]["id"]
    back = l3.get(f"{base}&limit=1&marker={last}&page_reverse=True",
                  status=200).data["port_forwardings"]
    assert [x["external_port"] for x in back] == [201]
    asc = l3.get(f"{F}/{f['id']}/port_forwardings?sort_key=internal_port&sort_dir=asc",
                 status=200).data["port_forwardings"]
    assert [x["internal_port"] for x in asc] == [100, 101, 102]
    for bad in ("sort_key=bogus&sort_dir=asc", "sort_key=external_port",
                "sort_key=id&sort_dir=up", "limit=x"):
        r = l3.get(f"{F}/{f['id']}/port_forwardings?{bad}")
        assert r.status_int == 400, (bad, r.status)


def test_floating_ip_cannot_be_associated_with_a_dhcp_port(l3):  # noqa: F811
    """Neutron's l3_db._internal_fip_assoc_data refuses a port that
    utils.is_fip_serviced() rejects (device_owner network:dhcp): 400.
    Here the network owner makes a network:dhcp port and puts its
    floating IP on it."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    dhcp = l3.port(net["id"], device_owner="network:dhcp")
    f = _fip(l3, floating_network_id=ext_net["id"])
    err = _put(l3, f["id"], 400, port_id=dhcp["id"])
    assert err["type"] == "BadRequest"
    err = _fip(l3, 400, floating_network_id=ext_net["id"], port_id=dhcp["id"])
    assert _count(l3, models.FloatingIP) == 1


def test_floating_ips_carry_dns_attributes_with_dns_integration(l3):  # noqa: F811
    """With dns-integration advertised, Neutron's floating IPs have
    dns_name and dns_domain (neutron-lib api/definitions/dns.py extends
    l3.FLOATINGIPS; neutron/db/dns_db.py _extend_floatingip_dict_dns shows
    '' when unset); `openstack floating ip create --dns-name` sends them."""
    aliases = {e["alias"] for e in l3.get("/v2.0/extensions", status=200)
               .data["extensions"]}
    assert "dns-integration" in aliases
    ext_net, *_ = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    assert (f.get("dns_name"), f.get("dns_domain")) == ("", ""), sorted(f)
