"""Review s25 (security-group rules): API behaviour that differed from
Neutron's (each test failed before the fix)."""

from tests.functional.test_securitygroups import RULES, _group


def test_a_bulk_of_rules_of_two_groups_is_refused_as_neutron_does(api):
    """F2: Neutron's ML2 bulk create (create_security_group_rule_bulk_native,
    _validate_single_project_and_group) refuses rules of more than one
    group in one POST: 400 SecurityGroupNotSingleGroupRules.  Here both
    are made (201)."""
    g1, g2 = _group(api, name="one"), _group(api, name="two")
    body = {"security_group_rules": [
        {"security_group_id": g1["id"], "direction": "ingress", "protocol": "udp"},
        {"security_group_id": g2["id"], "direction": "ingress", "protocol": "udp"}]}
    r = api.post(RULES, body)
    assert r.status_int == 400, r.status
    assert r.data["NeutronError"]["type"] == "SecurityGroupNotSingleGroupRules"
    before = api.count("security_group_rules")
    api.post(RULES, body, status=400)
    assert api.count("security_group_rules") == before  # nothing made


def test_a_bulk_of_rules_for_two_projects_is_refused(api):
    """(the same check's other half: an administrator naming two projects)"""
    g = _group(api)
    body = {"security_group_rules": [
        {"security_group_id": g["id"], "direction": "ingress", "protocol": "udp",
         "project_id": project} for project in ("p1", "p2")]}
    r = api.post(RULES, body, admin=True, status=400)
    assert r.data["NeutronError"]["type"] == "SecurityGroupRulesNotSingleProject"


def test_an_empty_remote_ip_prefix_is_no_prefix_as_in_neutron(api):
    """F3: Neutron's convert_ip_prefix_to_cidr turns a false value ("")
    into None: the rule has no prefix (201).  Here: 400 "'' is not a valid
    IP prefix"."""
    g = _group(api)
    r = api.post(RULES, {"security_group_rule": {
        "security_group_id": g["id"], "direction": "ingress", "protocol": "udp",
        "remote_ip_prefix": ""}})
    assert r.status_int == 201, r.data
    assert r.data["security_group_rule"]["remote_ip_prefix"] is None
