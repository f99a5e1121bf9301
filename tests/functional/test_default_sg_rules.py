"""Default security group rules (security-groups-default-rules): the
templates of new groups' rules, administered through
/v2.0/default-security-group-rules, and what new groups get from them."""

DSGR = "/v2.0/default-security-group-rules"
SG = "/v2.0/security-groups"
ADMIN = dict(admin=True, project="admin-p")
SHAPE = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
         "remote_ip_prefix", "remote_group_id", "remote_address_group_id")


def _templates(api, **kw):
    return api.get(DSGR, status=200, **kw).data["default_security_group_rules"]


def _template(api, status=201, **attrs):
    attrs.setdefault("direction", "ingress")
    r = api.post(DSGR, {"default_security_group_rule": attrs}, status=status, **ADMIN)
    return r.data["default_security_group_rule"] if status == 201 else \
        r.data["NeutronError"]["type"]


def _shapes(rules, group_id=None):
    return sorted((tuple("SELF" if k == "remote_group_id" and r[k] and r[k] == group_id
                         else r[k] for k in SHAPE) for r in rules), key=repr)


def _default_group(api, project):
    groups = api.get(f"{SG}?name=default", project=project, status=200).data["security_groups"]
    (g,) = groups
    return g


def _new_group(api, project, name="web"):
    return api.post(SG, {"security_group": {"name": name}}, project=project,
                    status=201).data["security_group"]


LEGACY = [
    ("egress", "IPv4", None, True, True, "Legacy default SG rule for egress traffic"),
    ("egress", "IPv6", None, True, True, "Legacy default SG rule for egress traffic"),
    ("ingress", "IPv4", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
    ("ingress", "IPv6", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
]


def test_the_legacy_templates_make_neutrons_groups(api):
    assert "security-groups-default-rules" in {
        e["alias"] for e in api.get("/v2.0/extensions", status=200).data["extensions"]}
    got = _templates(api)  # (a member reads them too)
    assert sorted((t["direction"], t["ethertype"], t["remote_group_id"], t["used_in_default_sg"],
                   t["used_in_non_default_sg"], t["description"]) for t in got) == LEGACY
    assert all(t[k] is None for t in got for k in ("protocol", "port_range_min",
                                                    "port_range_max", "remote_ip_prefix",
                                                    "remote_address_group_id"))
    assert set(got[0]) == {"id", "description", "used_in_default_sg",
                           "used_in_non_default_sg", *SHAPE}
    d = _default_group(api, "p1")
    assert _shapes(d["security_group_rules"], d["id"]) == sorted([
        ("egress", "IPv4", None, None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, "SELF", None),
        ("ingress", "IPv6", None, None, None, None, "SELF", None)], key=repr)
    g = _new_group(api, "p1")
    assert _shapes(g["security_group_rules"]) == [
        ("egress", "IPv4", None, None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None, None)]
    one = api.get(f"{DSGR}/{got[0]['id']}", status=200).data["default_security_group_rule"]
    assert one == got[0]
    filtered = api.get(f"{DSGR}?used_in_non_default_sg=false", status=200).data[
        "default_security_group_rules"]
    assert {t["direction"] for t in filtered} == {"ingress"} and len(filtered) == 2


def test_templates_shape_new_groups_only(api):
    ssh = _template(api, protocol="tcp", port_range_min=22, port_range_max=22,
                    used_in_default_sg=False, used_in_non_default_sg=True,
                    description="ssh for every new group")
    assert (ssh["protocol"], ssh["port_range_min"], ssh["used_in_default_sg"],
            ssh["used_in_non_default_sg"], ssh["remote_group_id"]) == ("tcp", 22, False, True, None)
    icmp = _template(api, protocol="icmp", remote_ip_prefix="10.0.0.0/8",
                     used_in_default_sg=True, used_in_non_default_sg=False)
    before = _default_group(api, "p1")  # made now: it has the icmp rule
    g = _new_group(api, "p1")
    shapes = _shapes(g["security_group_rules"])
    assert ("ingress", "IPv4", "tcp", 22, 22, None, None, None) in shapes
    assert not any(s[2] == "icmp" for s in shapes)
    assert ("ingress", "IPv4", "icmp", None, None, "10.0.0.0/8", None, None) in \
        _shapes(before["security_group_rules"])
    # rule numbers follow: the rules of the new group filter as any rule
    rules = api.get(f"/v2.0/security-group-rules?security_group_id={g['id']}&protocol=tcp",
                    status=200).data["security_group_rules"]
    assert [(r["port_range_min"], r["protocol"]) for r in rules] == [(22, "tcp")]
    # gone: new groups do not get it, existing ones keep theirs
    api.delete(f"{DSGR}/{ssh['id']}", status=204, **ADMIN)
    r = api.get(f"{DSGR}/{ssh['id']}", status=404)
    assert r.data["NeutronError"]["type"] == "DefaultSecurityGroupRuleNotFound"
    assert not any(s[2] == "tcp" for s in _shapes(_new_group(api, "p1", "w2")[
        "security_group_rules"]))
    assert any(s[2] == "tcp" for s in _shapes(api.get(f"{SG}/{g['id']}", status=200).data[
        "security_group"]["security_group_rules"]))
    # the default group of a project made from now on: the legacy four and icmp
    d = _default_group(api, "p9")
    assert len(d["security_group_rules"]) == 5
    api.delete(f"{DSGR}/{icmp['id']}", status=204, **ADMIN)
    # no templates at all: new groups without rules
    for t in _templates(api):
        api.delete(f"{DSGR}/{t['id']}", status=204, **ADMIN)
    assert _new_group(api, "p1", "bare")["security_group_rules"] == []
    assert _default_group(api, "p8")["security_group_rules"] == []


def test_duplicates_policy_and_validation(api):
    base = dict(protocol="tcp", port_range_min=8080, port_range_max=8080)
    first = _template(api, used_in_default_sg=True, used_in_non_default_sg=True, **base)
    for kinds in ((True, False), (False, True)):
        assert _template(api, 409, used_in_default_sg=kinds[0],
                         used_in_non_default_sg=kinds[1], **base) == \
            "DefaultSecurityGroupRuleExists"
    # the same rule for each kind of group, separately: two templates
    other = dict(protocol="tcp", port_range_min=8081, port_range_max=8081)
    _template(api, used_in_default_sg=True, used_in_non_default_sg=False, **other)
    _template(api, used_in_default_sg=False, used_in_non_default_sg=True, **other)
    # the same rule spelled otherwise is the same (protocol number, the whole prefix)
    assert _template(api, 409, protocol="6", port_range_min=8080, port_range_max=8080,
                     used_in_default_sg=True) == "DefaultSecurityGroupRuleExists"
    # "anywhere" is no prefix: the legacy egress template is that rule
    assert _template(api, 409, direction="egress", remote_ip_prefix="0.0.0.0/0",
                     used_in_default_sg=True) == "DefaultSecurityGroupRuleExists"
    # an address group a template names stays while it does
    ag = api.post("/v2.0/address-groups", {"address_group": {
        "name": "admins", "addresses": ["10.9.0.0/16"]}}, status=201,
        **ADMIN).data["address_group"]
    named = _template(api, remote_address_group_id=ag["id"])
    r = api.delete(f"/v2.0/address-groups/{ag['id']}", status=409, **ADMIN)
    assert r.data["NeutronError"]["type"] == "AddressGroupInUse"
    api.delete(f"{DSGR}/{named['id']}", status=204, **ADMIN)
    api.delete(f"/v2.0/address-groups/{ag['id']}", status=204, **ADMIN)
    n = len(_templates(api))
    for bad, err in (({"remote_group_id": "8a3c9a44-0000-4000-8000-000000000000"},
                      "InvalidInput"),
                     ({"port_range_min": 22}, "SecurityGroupProtocolRequiredWithPorts"),
                     ({"remote_ip_prefix": "2001:db8::/64"},
                      "SecurityGroupRuleParameterConflict"),
                     ({"direction": "sideways"}, "SecurityGroupRuleInvalidDirection"),
                     ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20},
                      "SecurityGroupInvalidPortRange"),
                     ({"remote_address_group_id": "8a3c9a44-0000-4000-8000-000000000000"},
                      "AddressGroupNotFound")):
        assert _template(api, 400 if err != "AddressGroupNotFound" else 404, **bad) == err, bad
    assert len(_templates(api)) == n
    # administrators only, but for reading
    r = api.post(DSGR, {"default_security_group_rule": {"direction": "ingress"}},
                 project="p1", status=403)
    assert r.data["NeutronError"]["type"] == "PolicyNotAuthorized"
    api.delete(f"{DSGR}/{first['id']}", project="p1", status=403)
    # a project in the body is taken and dropped, as Neutron does (the
    # templates are no project's), but it must still be a string
    given = _template(api, protocol="udp", port_range_min=53, port_range_max=53,
                      tenant_id="admin-p", project_id="someone-else")
    assert "tenant_id" not in given and "project_id" not in given
    assert _template(api, 400, protocol="udp", port_range_min=54, port_range_max=54,
                     tenant_id=["x"]) == "InvalidInput"
    # sorted as Neutron sorts them: not by description or used_in_*
    for key in ("used_in_default_sg", "used_in_non_default_sg", "description"):
        r = api.get(f"{DSGR}?sort_key={key}&sort_dir=asc", status=400)
        assert "invalid attribute for sort_key" in r.data["NeutronError"]["message"]
    got = [t["port_range_min"] for t in api.get(
        f"{DSGR}?sort_key=port_range_min&sort_dir=desc&protocol=udp&protocol=tcp",
        status=200).data["default_security_group_rules"]]
    assert got == sorted(got, reverse=True) and len(got) >= 3
    # no update, as in Neutron (its API reference has none: 405)
    r = api.put(f"{DSGR}/{first['id']}", {"default_security_group_rule": {"description": "x"}},
                status=405, **ADMIN)
    assert r.data["NeutronError"]["type"] == "HTTPMethodNotAllowed"
    assert api.get(f"{DSGR}/{first['id']}", status=200).data[
        "default_security_group_rule"]["description"] == ""
