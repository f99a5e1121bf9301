"""Review s28 (address groups, default security group rules, stateless
groups, remote_address_group_id): API behaviour that differs from
Neutron's.  Each test fails on the code reviewed."""

import pytest

from tests.functional.test_securitygroups import RULES, _group

AG = "/v2.0/address-groups"


def _ag(api, project="p1", **kw):
    body = {"address_group": dict({"name": "ag"}, **kw)}
    return api.post(AG, body, project=project)


# ---------------------------------------------------------------- F1
@pytest.mark.parametrize("address", ["2001:db8::5%x/128", "fe80::1%eth0/128",
                                     "2001:db8:1::%1/64"])
def test_an_address_group_refuses_an_ipv6_scope_id_on_create(api, address):
    """F1: Neutron validates addresses with netaddr (neutron-lib
    validators.validate_subnet, type:subnet_list), which has no IPv6
    scope ids: 400.  Here Python's ipaddress takes "<addr>%<scope>" and the
    scope is stored and sent to the agents: the engine then makes a flow
    that is the same switch flow as another project's member address."""
    r = _ag(api, addresses=[address])
    assert r.status_int == 400, (r.status, r.data)
    assert api.get(AG, status=200).data["address_groups"] == []


def test_add_addresses_refuses_an_ipv6_scope_id(api):
    g = _ag(api, addresses=["2001:db8:9::/64"]).data["address_group"]
    r = api.put(f"{AG}/{g['id']}/add_addresses", {"addresses": ["2001:db8::5%x"]})
    assert r.status_int == 400, (r.status, r.data)
    got = api.get(f"{AG}/{g['id']}", status=200).data["address_group"]
    assert got["addresses"] == ["2001:db8:9::/64"]


def test_a_rule_refuses_a_remote_ip_prefix_with_a_scope_id(api):
    """F1 (rules): Neutron's convert_ip_prefix_to_cidr (netaddr.IPNetwork)
    raises InvalidCIDR (400) for "2001:db8::5%x/128"; here the rule is
    made (201) with the scope in remote_ip_prefix and normalized_cidr."""
    g = _group(api)
    r = api.post(RULES, {"security_group_rule": {
        "security_group_id": g["id"], "direction": "ingress", "ethertype": "IPv6",
        "remote_ip_prefix": "2001:db8::5%x/128"}})
    assert r.status_int == 400, (r.status, r.data)


def test_a_default_rule_template_refuses_a_remote_ip_prefix_with_a_scope_id(api):
    """F1 (templates): the same prefix in a default security group rule
    (Neutron validates templates with the rules' converter and
    _validate_base_security_group_rule_attributes) is copied into every
    project's new groups."""
    r = api.post("/v2.0/default-security-group-rules", {"default_security_group_rule": {
        "direction": "ingress", "ethertype": "IPv6",
        "remote_ip_prefix": "2001:db8::5%x/128"}}, admin=True)
    assert r.status_int == 400, (r.status, r.data)


@pytest.mark.parametrize("pair", ["2001:db8::5%x", "2001:db8::5%x/128"])
def test_an_allowed_address_pair_refuses_a_scope_id(api, pair):
    """F1 (members): an allowed address pair is a member address of the
    port's groups (the clause-2 flow of every rule naming them as remote
    group).  neutron-lib's allowed-address-pairs validator
    (validate_ip_address / validate_subnet, netaddr) refuses a scope id;
    here the port is made with it (fixed IPs do refuse it)."""
    n = api.network()
    api.subnet(n["id"], cidr="2001:db8::/64", ip_version=6)
    r = api.post("/v2.0/ports", {"port": {"network_id": n["id"],
                                          "allowed_address_pairs": [{"ip_address": pair}]}})
    assert r.status_int == 400, (r.status, r.data)
