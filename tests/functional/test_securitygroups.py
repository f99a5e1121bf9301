"""Security groups: the default group, rules and their validation, ports'
membership, and the change records agents read."""

import datetime
import threading

import sqlalchemy as sa
from sqlalchemy import orm

from quantum_ovs.db import models

SG = "/v2.0/security-groups"
RULES = "/v2.0/security-group-rules"


def _group(api, project="p1", **attrs):
    attrs.setdefault("name", "web")
    return api.post(SG, {"security_group": attrs}, project=project,
                    status=201).data["security_group"]


def _rule(api, group_id, status=201, project="p1", **attrs):
    attrs["security_group_id"] = group_id
    attrs.setdefault("direction", "ingress")
    r = api.post(RULES, {"security_group_rule": attrs}, project=project, status=status)
    return r.data["security_group_rule"] if status == 201 else r.data["NeutronError"]


def _groups(api, project="p1", **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return api.get(f"{SG}?{q}", project=project, status=200).data["security_groups"]


def _rule_shape(r):
    return (r["direction"], r["ethertype"], r["protocol"], r["port_range_min"],
            r["port_range_max"], r["remote_ip_prefix"], r["remote_group_id"])


def test_listing_makes_the_default_group_once(api):
    first = _groups(api)
    assert [g["name"] for g in first] == ["default"]
    default = first[0]
    assert default["project_id"] == default["tenant_id"] == "p1"
    assert default["stateful"] is True
    shapes = sorted(_rule_shape(r) for r in default["security_group_rules"])
    assert shapes == sorted([
        ("egress", "IPv4", None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, default["id"]),
        ("ingress", "IPv6", None, None, None, None, default["id"]),
    ])
    for r in default["security_group_rules"]:
        assert r["security_group_id"] == default["id"]
        assert r["normalized_cidr"] is None
        assert r["remote_address_group_id"] is None
    # Listed again, by another project, or shown: still exactly one each.
    assert _groups(api) == first
    assert [g["name"] for g in _groups(api, project="p2")] == ["default"]
    assert _groups(api, project="p2")[0]["id"] != default["id"]
    assert api.get(f"{SG}/{default['id']}", status=200).data["security_group"] == default
    # Another project cannot see it.
    api.get(f"{SG}/{default['id']}", project="p2", status=404)


def test_default_group_is_made_once_under_concurrency(api):
    errors = []

    def lister():
        try:
            api.get(SG, project="racer", status=200)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=lister) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    groups = _groups(api, project="racer")
    assert [g["name"] for g in groups] == ["default"]
    with api.db.reader() as s:
        n = s.execute(sa.select(sa.func.count()).select_from(models.SecurityGroup).where(
            models.SecurityGroup.project_id == "racer")).scalar()
    assert n == 1


def test_create_group_gets_egress_rules_and_default_exists(api):
    g = _group(api, name="web", description="front")
    assert g["name"] == "web" and g["description"] == "front" and g["stateful"] is True
    assert g["revision_number"] == 0 and g["tags"] == []
    assert sorted(_rule_shape(r) for r in g["security_group_rules"]) == [
        ("egress", "IPv4", None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None)]
    names = sorted(x["name"] for x in _groups(api))
    assert names == ["default", "web"]
    r = api.post(SG, {"security_group": {"name": "Default"}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupDefaultAlreadyExists"
    upd = api.put(f"{SG}/{g['id']}", {"security_group": {"name": "web2",
                                                         "stateful": False}},
                  status=200).data["security_group"]
    assert upd["name"] == "web2" and upd["stateful"] is False
    assert upd["revision_number"] == 1
    r = api.put(f"{SG}/{g['id']}", {"security_group": {"name": "default"}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupDefaultAlreadyExists"


def test_rule_attributes_and_normalization(api):
    g = _group(api)
    r = _rule(api, g["id"], protocol="TCP", port_range_min=22, port_range_max=22,
              remote_ip_prefix="10.1.2.3/16", description="ssh")
    assert r["protocol"] == "tcp" and r["ethertype"] == "IPv4"
    assert r["remote_ip_prefix"] == "10.1.2.3/16" and r["normalized_cidr"] == "10.1.0.0/16"
    assert r["project_id"] == "p1" and r["description"] == "ssh"
    assert r["revision_number"] == 0 and r["created_at"] and r["updated_at"]
    r2 = _rule(api, g["id"], protocol=17, port_range_min=53, port_range_max=53,
               remote_ip_prefix="192.0.2.1")
    assert r2["protocol"] == "17" and r2["remote_ip_prefix"] == "192.0.2.1/32"
    r3 = _rule(api, g["id"], ethertype="ipv6", protocol="icmpv6", port_range_min=128,
               port_range_max=0, remote_ip_prefix="2001:db8::/64")
    assert r3["ethertype"] == "IPv6" and r3["normalized_cidr"] == "2001:db8::/64"
    r4 = _rule(api, g["id"], protocol="any", direction="egress", remote_group_id=g["id"])
    assert r4["protocol"] is None and r4["remote_group_id"] == g["id"]
    shown = api.get(f"{RULES}/{r['id']}", status=200).data["security_group_rule"]
    assert shown == r
    group = api.get(f"{SG}/{g['id']}", status=200).data["security_group"]
    assert {x["id"] for x in group["security_group_rules"]} >= {r["id"], r2["id"],
                                                                r3["id"], r4["id"]}
    listed = api.get(f"{RULES}?security_group_id={g['id']}&protocol=tcp",
                     status=200).data["security_group_rules"]
    assert [x["id"] for x in listed] == [r["id"]]
    upd = api.put(f"{RULES}/{r['id']}", {"security_group_rule": {"description": "x"}},
                  status=200).data["security_group_rule"]
    assert upd["description"] == "x"
    api.put(f"{RULES}/{r['id']}", {"security_group_rule": {"port_range_min": 1}},
            status=400)


def test_rule_validation_errors(api):
    g = _group(api)
    gid = g["id"]
    cases = [
        (dict(protocol="tcp", port_range_min=80, port_range_max=79),
         400, "SecurityGroupInvalidPortRange"),
        (dict(protocol="tcp", port_range_min=80), 400, "SecurityGroupInvalidPortRange"),
        (dict(protocol="tcp", port_range_min=0, port_range_max=10),
         400, "SecurityGroupInvalidPortValue"),
        (dict(protocol="tcp", port_range_min=1, port_range_max=70000),
         400, "SecurityGroupInvalidPortValue"),
        (dict(protocol="tcp", port_range_min="abc", port_range_max=10),
         400, "SecurityGroupInvalidPortValue"),
        (dict(port_range_min=1, port_range_max=2), 400,
         "SecurityGroupProtocolRequiredWithPorts"),
        (dict(protocol="gre", port_range_min=1, port_range_max=2), 400,
         "SecurityGroupInvalidProtocolForPort"),
        (dict(protocol="icmp", port_range_min=300), 400, "SecurityGroupInvalidIcmpValue"),
        (dict(protocol="icmp", port_range_max=3), 400, "SecurityGroupMissingIcmpType"),
        (dict(protocol="bogus"), 400, "SecurityGroupRuleInvalidProtocol"),
        (dict(protocol=256), 400, "SecurityGroupRuleInvalidProtocol"),
        (dict(protocol=-1), 400, "SecurityGroupRuleInvalidProtocol"),
        (dict(ethertype="IPv5"), 400, "SecurityGroupRuleInvalidEtherType"),
        (dict(direction="sideways"), 400, "SecurityGroupRuleInvalidDirection"),
        (dict(remote_ip_prefix="::/0"), 400, "SecurityGroupRuleParameterConflict"),
        (dict(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8"), 400,
         "SecurityGroupRuleParameterConflict"),
        (dict(remote_ip_prefix="10.0.0.0/8", remote_group_id=gid), 400,
         "SecurityGroupMultipleRemoteEntites"),
        (dict(remote_ip_prefix="10.0.0.300/8"), 400, "InvalidInput"),
        (dict(protocol="icmpv6"), 400, "SecurityGroupEthertypeConflictWithProtocol"),
        (dict(remote_group_id="6f2b0ad5-0000-4000-8000-000000000000"), 404,
         "SecurityGroupNotFound"),
        (dict(remote_address_group_id="6f2b0ad5-0000-4000-8000-000000000000"), 404,
         "AddressGroupNotFound"),
    ]
    for attrs, status, kind in cases:
        err = _rule(api, gid, status=status, **attrs)
        assert err["type"] == kind, (attrs, err)
    missing = api.post(RULES, {"security_group_rule": {
        "security_group_id": "6f2b0ad5-0000-4000-8000-000000000000",
        "direction": "ingress"}}, status=404)
    assert missing.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    api.post(RULES, {"security_group_rule": {"security_group_id": gid}}, status=400)
    # Nothing was left behind by the failures.
    group = api.get(f"{SG}/{gid}", status=200).data["security_group"]
    assert len(group["security_group_rules"]) == 2 and group["revision_number"] == 0


def test_duplicate_rules(api):
    g = _group(api)
    first = _rule(api, g["id"], protocol="tcp", port_range_min=80, port_range_max=80,
                  remote_ip_prefix="10.0.0.0/8")
    for same in (dict(protocol="6", port_range_min=80, port_range_max=80,
                      remote_ip_prefix="10.0.0.0/8"),
                 dict(protocol="tcp", port_range_min=80, port_range_max=80,
                      remote_ip_prefix="10.1.2.3/8")):
        err = _rule(api, g["id"], status=409, **same)
        assert err["type"] == "SecurityGroupRuleExists"
        assert first["id"] in err["message"]
    # An egress rule to anywhere exists already (the new group's own).
    err = _rule(api, g["id"], status=409, direction="egress", remote_ip_prefix="0.0.0.0/0")
    assert err["type"] == "SecurityGroupRuleExists"
    body = {"security_group_rules": [
        {"security_group_id": g["id"], "direction": "ingress", "protocol": "udp",
         "port_range_min": 5, "port_range_max": 6},
        {"security_group_id": g["id"], "direction": "ingress", "protocol": "udp",
         "port_range_min": 5, "port_range_max": 6}]}
    r = api.post(RULES, body, status=409)  # Neutron's code (InUse)
    assert r.data["NeutronError"]["type"] == "DuplicateSecurityGroupRuleInPost"
    body["security_group_rules"].pop()
    made = api.post(RULES, body, status=201).data["security_group_rules"]
    assert len(made) == 1


def test_a_bulk_of_rules_does_not_reload_its_group_per_rule(api):
    """The default quota's 100 rules in one request: each rule's create
    loaded its group with every rule made before it (a group's rules load
    with it), 600 rules cost 5 s and 2,000 25 s.  The group's rules are
    loaded at most once, not once a rule."""
    g = _group(api)
    used = api.get("/v2.0/quotas/p1/details", status=200).data["quota"][
        "security_group_rule"]["used"]
    api.put("/v2.0/quotas/p1", {"quota": {"security_group_rule": used + 100}}, admin=True,
            status=200)
    rules = [{"security_group_id": g["id"], "direction": "ingress", "protocol": "tcp",
              "port_range_min": i + 1, "port_range_max": i + 1} for i in range(100)]
    rules_of_a_group = models.SecurityGroup.rules.property
    loads = []

    def on_execute(state):
        if state.is_relationship_load and \
                getattr(state.loader_strategy_path, "prop", None) is rules_of_a_group:
            loads.append(state)
    sa.event.listen(orm.Session, "do_orm_execute", on_execute)
    try:
        made = api.post(RULES, {"security_group_rules": rules},
                        status=201).data["security_group_rules"]
    finally:
        sa.event.remove(orm.Session, "do_orm_execute", on_execute)
    assert len(loads) <= 1, f"the group's rules loaded {len(loads)} times"
    assert [(r["port_range_min"], r["security_group_id"]) for r in made] == [
        (i + 1, g["id"]) for i in range(100)]
    group = api.get(f"{SG}/{g['id']}", status=200).data["security_group"]
    assert len(group["security_group_rules"]) == 102  # with its two egress rules
    assert group["revision_number"] > g["revision_number"]


def test_rules_of_another_projects_group(api):
    g = _group(api, project="p1")
    err = _rule(api, g["id"], status=404, project="p2")
    assert err["type"] == "SecurityGroupNotFound"
    mine = _group(api, project="p2")
    err = _rule(api, mine["id"], status=404, project="p2", remote_group_id=g["id"])
    assert err["type"] == "SecurityGroupNotFound"
    rule = _rule(api, g["id"], protocol="tcp")
    api.get(f"{RULES}/{rule['id']}", project="p2", status=404)
    api.delete(f"{RULES}/{rule['id']}", project="p2", status=404)
    assert rule["id"] not in [x["id"] for x in api.get(
        RULES, project="p2", status=200).data["security_group_rules"]]
    # The admin may add a rule to anyone's group; it belongs to the group's owner.
    r = api.post(RULES, {"security_group_rule": {"security_group_id": g["id"],
                                                 "direction": "ingress",
                                                 "protocol": "udp"}},
                 project="admin-project", admin=True, status=201).data
    assert r["security_group_rule"]["project_id"] == "p1"


def test_delete_rules_and_groups(api):
    g = _group(api)
    rule = _rule(api, g["id"], protocol="tcp")
    api.delete(f"{RULES}/{rule['id']}", status=204)
    r = api.get(f"{RULES}/{rule['id']}", status=404)
    assert r.data["NeutronError"]["type"] == "SecurityGroupRuleNotFound"
    other = _group(api, name="other")
    ref = _rule(api, other["id"], remote_group_id=g["id"])
    api.delete(f"{SG}/{g['id']}", status=204)
    r = api.get(f"{SG}/{g['id']}", status=404)
    assert r.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    # The rule that named the deleted group as its remote is gone with it.
    api.get(f"{RULES}/{ref['id']}", status=404)
    left = api.get(f"{SG}/{other['id']}", status=200).data["security_group"]
    assert ref["id"] not in [x["id"] for x in left["security_group_rules"]]


def test_default_group_cannot_be_removed_or_renamed_by_its_owner(api):
    default = _groups(api)[0]
    r = api.delete(f"{SG}/{default['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupCannotRemoveDefault"
    r = api.put(f"{SG}/{default['id']}", {"security_group": {"name": "x"}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupCannotUpdateDefault"
    api.put(f"{SG}/{default['id']}", {"security_group": {"description": "mine"}},
            status=200)
    # The admin may delete it; the next listing makes a new one.
    api.delete(f"{SG}/{default['id']}", admin=True, status=204)
    again = _groups(api)
    assert [g["name"] for g in again] == ["default"] and again[0]["id"] != default["id"]


def _net(api, project="p1", **kw):
    net = api.network(project=project, **kw)
    api.subnet(net["id"], "10.0.0.0/24", project=project)
    return net


def test_ports_get_the_default_group(api):
    net = _net(api)
    port = api.port(net["id"])
    default = _groups(api)[0]
    assert port["security_groups"] == [default["id"]]
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"] == port
    # Ports of the network's own services get none.
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    assert dhcp["security_groups"] == []
    # Nor do ports without port security.
    off = api.port(net["id"], port_security_enabled=False)
    assert off["security_groups"] == []
    net_off = api.network(port_security_enabled=False)
    assert api.port(net_off["id"])["security_groups"] == []


def test_first_port_makes_the_default_group(api):
    net = _net(api, project="fresh")
    port = api.port(net["id"], project="fresh")
    groups = _groups(api, project="fresh")
    assert [g["id"] for g in groups] == port["security_groups"]


def test_port_security_groups_validation(api):
    net = _net(api)
    web = _group(api)
    db = _group(api, name="db")
    port = api.port(net["id"], security_groups=[web["id"], db["id"]])
    assert port["security_groups"] == sorted([web["id"], db["id"]])
    empty = api.port(net["id"], security_groups=[])
    assert empty["security_groups"] == []
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "port_security_enabled": False,
                                          "security_groups": [web["id"]]}}, status=400)
    assert r.data["NeutronError"]["type"] == "PortSecurityAndIPRequiredForSecurityGroups"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "security_groups": [
        "6f2b0ad5-0000-4000-8000-000000000000"]}}, status=404)
    assert r.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                      "security_groups": ["not-a-uuid"]}}, status=400)
    # Another project's group is not there for p1's ports.
    theirs = _group(api, project="p2")
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "security_groups": [theirs["id"]]}}, status=404)
    assert r.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    assert api.count("ports") == 2


def test_port_membership_updates_and_port_security(api):
    net = _net(api)
    web = _group(api)
    port = api.port(net["id"])
    rev = port["revision_number"]
    upd = api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [web["id"]]}},
                  status=200).data["port"]
    assert upd["security_groups"] == [web["id"]] and upd["revision_number"] == rev + 1
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"port_security_enabled": False}},
                status=409)
    assert r.data["NeutronError"]["type"] == "PortSecurityPortHasSecurityGroup"
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"port_security_enabled": False,
                                                       "security_groups": [web["id"]]}},
                status=400)
    assert r.data["NeutronError"]["type"] == "PortSecurityAndIPRequiredForSecurityGroups"
    off = api.put(f"/v2.0/ports/{port['id']}", {"port": {"port_security_enabled": False,
                                                         "security_groups": []}},
                  status=200).data["port"]
    assert off["security_groups"] == [] and off["port_security_enabled"] is False
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [web["id"]]}},
                status=400)
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["security_groups"] \
        == []


def test_group_in_use_and_port_filter(api):
    net = _net(api)
    web = _group(api)
    a = api.port(net["id"], security_groups=[web["id"]])
    b = api.port(net["id"])
    r = api.delete(f"{SG}/{web['id']}", status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupInUse"
    r = api.put(f"{SG}/{web['id']}", {"security_group": {"stateful": False}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupInUse"
    listed = api.get(f"/v2.0/ports?security_groups={web['id']}",
                     status=200).data["ports"]
    assert [p["id"] for p in listed] == [a["id"]]
    default = b["security_groups"][0]
    listed = api.get(f"/v2.0/ports?security_groups={default}", status=200).data["ports"]
    assert [p["id"] for p in listed] == [b["id"]]
    api.delete(f"/v2.0/ports/{a['id']}", status=204)
    api.delete(f"{SG}/{web['id']}", status=204)


def _changes(api, resource, resource_id):
    C = models.Change
    with api.db.reader() as s:
        return s.execute(sa.select(C.op, C.revision_number).where(
            C.resource == resource, C.resource_id == resource_id).order_by(C.seq)).all()


def test_rule_changes_bump_the_group_and_are_recorded(api):
    g = _group(api)
    assert [op for op, _ in _changes(api, "security_group", g["id"])] == ["create"]
    rule = _rule(api, g["id"], protocol="tcp")
    after_add = api.get(f"{SG}/{g['id']}", status=200).data["security_group"]
    assert after_add["revision_number"] == 1
    api.delete(f"{RULES}/{rule['id']}", status=204)
    after_del = api.get(f"{SG}/{g['id']}", status=200).data["security_group"]
    assert after_del["revision_number"] == 2
    assert _changes(api, "security_group", g["id"]) == [("create", 0), ("update", 1),
                                                        ("update", 2)]
    # A failed rule records nothing.
    _rule(api, g["id"], status=400, protocol="bogus")
    assert len(_changes(api, "security_group", g["id"])) == 3


def test_membership_change_is_the_ports_change(api):
    net = _net(api)
    web = _group(api)
    port = api.port(net["id"])
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [web["id"]]}},
            status=200)
    assert [op for op, _ in _changes(api, "port", port["id"])] == ["create", "update"]


def test_extension_is_advertised(api):
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200)
               .data["extensions"]}
    assert {"security-group", "port-security", "allowed-address-pairs"} <= aliases


# ------------------------------------------------------------------ Neutron fidelity
IPV6_ONLY = ["ipv6-encap", "ipv6-frag", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ipv6-icmp",
             "icmpv6", "41", "44", "59", "60", "43", "58", 41, 58]


def test_ipv6_only_protocols_are_refused_on_ipv4_rules(api):
    g = _group(api)
    for proto in IPV6_ONLY:
        err = _rule(api, g["id"], status=400, protocol=proto)
        assert err["type"] == "SecurityGroupEthertypeConflictWithProtocol", (proto, err)
        assert err["message"].startswith("Invalid ethertype IPv4 for protocol"), err
    made = {str(p): _rule(api, g["id"], ethertype="IPv6", protocol=p)["protocol"]
            for p in ("ipv6-encap", "ipv6-frag", "ipv6-nonxt", "ipv6-opts", "ipv6-route")}
    assert made == {p: p for p in made}


def test_rules_show_the_protocol_as_given(api):
    g = _group(api)
    shown = [_rule(api, g["id"], protocol=p, remote_ip_prefix=f"10.0.{i}.0/24")["protocol"]
             for i, p in enumerate(["ipip", "HOPOPT", "ggp", "4", 3, "0", "ip", "any"])]
    assert shown == ["ipip", "hopopt", "ggp", "4", "3", "0", "ip", None]
    # As in Neutron, ICMP on an IPv6 rule is IPv6-ICMP, and the whole port
    # range is no range.
    assert _rule(api, g["id"], ethertype="IPv6", protocol="icmp")["protocol"] == "ipv6-icmp"
    assert _rule(api, g["id"], ethertype="IPv6", protocol="1",
                 remote_ip_prefix="2001:db8::/64")["protocol"] == "58"
    r = _rule(api, g["id"], protocol="tcp", port_range_min=1, port_range_max=65535)
    assert (r["port_range_min"], r["port_range_max"]) == (None, None)
    # The same protocol by name and by number is the same rule.
    err = _rule(api, g["id"], status=409, protocol="4", remote_ip_prefix="10.0.0.0/24")
    assert err["type"] == "SecurityGroupRuleExists"


def test_remote_group_id_that_is_no_uuid_is_not_found(api):
    g = _group(api)
    for bad in ("not-a-uuid", "6F2B0AD5-0000-4000-8000-00000000000Z", "x" * 300):
        err = _rule(api, g["id"], status=404, remote_group_id=bad)
        assert err["type"] == "SecurityGroupNotFound", err
        assert err["message"] == f"Security group {bad} does not exist"
    # A UUID in capitals names the same group.
    r = _rule(api, g["id"], remote_group_id=g["id"].upper())
    assert r["remote_group_id"] == g["id"]
    # The same for the rule's own group (Neutron: a string of up to 36).
    for bad in ("not-a-uuid", "6F2B0AD5-0000-4000-8000-00000000000Z"):
        r = api.post(RULES, {"security_group_rule": {"security_group_id": bad,
                                                     "direction": "ingress"}}, status=404)
        assert r.data["NeutronError"]["type"] == "SecurityGroupNotFound"
    api.post(RULES, {"security_group_rule": {"security_group_id": "x" * 37,
                                             "direction": "ingress"}}, status=400)
    r = _rule(api, g["id"].upper(), protocol="udp")
    assert r["security_group_id"] == g["id"]


def test_ethertype_and_cidr_conflict_reads_like_neutrons(api):
    g = _group(api)
    err = _rule(api, g["id"], status=400, ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")
    assert err["type"] == "SecurityGroupRuleParameterConflict"
    assert err["message"] == "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/8"
    err = _rule(api, g["id"], status=400, remote_ip_prefix="2001:db8::1")
    assert err["message"] == "Conflicting value ethertype IPv4 for CIDR 2001:db8::1/128"


def test_a_port_cannot_mix_stateful_and_stateless_groups(api):
    net = _net(api)
    stateful = _group(api, name="tracked")
    stateless = _group(api, name="untracked", stateful=False)
    other_stateless = _group(api, name="untracked2", stateful=False)
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "security_groups": [
        stateful["id"], stateless["id"]]}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupConflict"
    assert "both stateful and stateless" in r.data["NeutronError"]["message"]
    port = api.port(net["id"], security_groups=[stateless["id"], other_stateless["id"]])
    r = api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [
        stateless["id"], stateful["id"]]}}, status=409)
    assert r.data["NeutronError"]["type"] == "SecurityGroupConflict"
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"][
        "security_groups"] == sorted([stateless["id"], other_stateless["id"]])
    api.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [stateful["id"]]}},
            status=200)
    assert api.count("ports") == 1


def test_address_pairs_need_port_security(api):
    net = _net(api)
    off = api.port(net["id"], port_security_enabled=False)
    r = api.put(f"/v2.0/ports/{off['id']}", {"port": {
        "allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}}, status=409)
    assert r.data["NeutronError"]["type"] == "AddressPairAndPortSecurityRequired"
    r = api.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                          "port_security_enabled": False,
                                          "allowed_address_pairs": [
                                              {"ip_address": "10.0.0.98"}]}}, status=409)
    assert r.data["NeutronError"]["type"] == "AddressPairAndPortSecurityRequired"
    assert api.count("ports") == 1


def test_remote_address_group_attribute(api):
    """(Address groups themselves: tests/functional/test_address_groups.py.)"""
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", status=200)
               .data["extensions"]}
    assert "security-groups-remote-address-group" in aliases
    g = _group(api)
    r = _rule(api, g["id"], protocol="tcp", remote_address_group_id=None)
    assert r["remote_address_group_id"] is None
    rules = api.get(RULES, status=200).data["security_group_rules"]
    assert rules and all(r["remote_address_group_id"] is None for r in rules)


def test_migration_fills_in_protocol_numbers(db_url):
    from quantum_ovs.db import migration
    engine = sa.create_engine(db_url)
    rules = sa.table("securitygrouprules", *(sa.column(c) for c in (
        "id", "project_id", "security_group_id", "direction", "ethertype", "protocol",
        "description", "revision_number", "protocol_number")))
    given = {"r-ipip": ("IPv4", "ipip", 4), "r-hop": ("IPv4", "hopopt", 0),
             "r-ggp": ("IPv4", "ggp", 3), "r-47": ("IPv4", "47", 47),
             "r-any": ("IPv4", None, None), "r-icmp6": ("IPv6", "icmp", 58),
             "r-legacy": ("IPv6", "icmpv6", 58), "r-tcp": ("IPv6", "tcp", 6)}
    try:
        migration.upgrade(engine, "0004_agent_credentials")
        with engine.begin() as conn:
            now = datetime.datetime(2026, 1, 1)
            conn.execute(sa.insert(sa.table("securitygroups", *(sa.column(c) for c in (
                "id", "project_id", "name", "description", "stateful", "revision_number",
                "created_at", "updated_at")))).values(
                id="g", project_id="p", name="g", description="", stateful=True,
                revision_number=0, created_at=now, updated_at=now))
            conn.execute(sa.insert(sa.table("securitygrouprules", *(sa.column(c) for c in (
                "id", "project_id", "security_group_id", "direction", "ethertype",
                "protocol", "description", "revision_number", "created_at",
                "updated_at")))), [
                dict(id=k, project_id="p", security_group_id="g", direction="ingress",
                     ethertype=e, protocol=p, description="", revision_number=0,
                     created_at=now, updated_at=now)
                for k, (e, p, _) in given.items()])
        migration.upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.execute(sa.select(rules.c.id, rules.c.protocol_number)).all())
        assert got == {k: n for k, (_, _, n) in given.items()}
    finally:
        migration.downgrade(engine, "base")
        engine.dispose()
