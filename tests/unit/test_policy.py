"""quantum_ovs.policy: oslo.policy with Neutron's rules, the =~ field
check, the per-request memo, and the generated sample."""

import os
import subprocess
import sys

import pytest

from quantum_ovs import config, exceptions, extensions
from quantum_ovs.policy import Policy, extension_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def make_policy(tmp_path):
    def factory(text=None):
        conf = config.make_conf([])
        if text is not None:
            path = tmp_path / "policy.yaml"
            path.write_text(text)
            conf.set_override("policy_file", str(path), group="oslo_policy")
        return Policy(conf, extension_rules(extensions.load()))
    return factory


def test_personas(make_policy):
    p = make_policy()
    reader = p.context("p1", roles=["reader"])
    member = p.context("p1", roles=["member", "reader"])
    admin = p.context("p9", roles=["admin", "member", "reader"])
    mine = {"project_id": "p1", "shared": False}
    theirs = {"project_id": "p2", "shared": False}
    assert p.check("get_network", reader, mine)
    assert not p.check("update_network", reader, mine)
    assert p.check("update_network", member, mine)
    assert not p.check("update_network", member, theirs)
    assert p.check("update_network", admin, theirs)
    assert p.check("get_network", member, dict(theirs, shared=True))
    assert p.check("get_network", member, dict(theirs, **{"router:external": True}))
    assert not p.check("get_network", member, theirs)
    assert (reader.is_admin, member.is_admin, admin.is_admin) == (False, False, True)


def test_is_admin_comes_from_context_is_admin(make_policy):
    p = make_policy('"context_is_admin": "role:cloud_admin or user_id:root"\n')
    assert not p.context("p1", roles=["admin"]).is_admin
    assert p.context("p1", roles=["cloud_admin"]).is_admin
    assert p.context("p1", user_id="root").is_admin
    # and admin_only, which many rules name, follows it
    ctx = p.context("p1", roles=["admin"])
    assert not p.check("create_network:shared", ctx, {"project_id": "p1"})


@pytest.mark.parametrize("owner, allowed", [
    ("network:dhcp", False), ("network:router_interface", False), ("compute:nova", True),
    ("", True), ("xnetwork:dhcp", True), ("Network:dhcp", True)])
def test_device_owner_regex_field_check(make_policy, owner, allowed):
    p = make_policy()
    ctx = p.context("p2", roles=["member", "reader"])
    target = {"project_id": "p2", "network:project_id": "p1", "device_owner": owner}
    assert p.check("create_port:device_owner", ctx, target) is allowed
    # the network's owner may
    assert p.check("create_port:device_owner", ctx, dict(target, **{"network:project_id": "p2"}))


def test_field_check_forms(make_policy):
    p = make_policy('"a": "field:ports:name=~^web-[0-9]+$"\n'
                    '"b": "field:networks:shared=True"\n'
                    '"c": "field:networks:mtu=1500"\n')
    ctx = p.context("p1", roles=["member"])
    assert p.check("a", ctx, {"name": "web-12"})
    assert not p.check("a", ctx, {"name": "web-12x"})
    assert not p.check("a", ctx, {"name": 12})
    assert not p.check("a", ctx, {})
    assert p.check("b", ctx, {"shared": True}) and not p.check("b", ctx, {"shared": False})
    assert not p.check("b", ctx, {"shared": "True"}) and not p.check("b", ctx, {})
    assert p.check("c", ctx, {"mtu": 1500}) and not p.check("c", ctx, {"mtu": 9000})


def test_unknown_action_uses_default_rule(make_policy):
    p = make_policy()
    ctx = p.context("p1", roles=["member"])
    assert p.check("frobnicate_port", ctx, {"project_id": "p1"})
    assert not p.check("frobnicate_port", ctx, {"project_id": "p2"})
    with pytest.raises(exceptions.PolicyNotAuthorized):
        p.enforce("frobnicate_port", ctx, {"project_id": "p2"})


def test_memo_answers_like_a_fresh_evaluation(make_policy):
    """The per-request memo keys on the target values a rule read: every
    combination, asked in any order, answers as a fresh context would."""
    import itertools
    import random
    p = make_policy('"get_port": "(role:reader and project_id:%(project_id)s) or '
                    '(rule:network_owner and field:ports:device_owner=~^compute:) or '
                    'rule:shared"\n')
    values = {"project_id": ["p1", "p2", None], "network:project_id": ["p1", "p2"],
              "device_owner": ["compute:x", "network:dhcp", ""], "shared": [True, False]}
    targets = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    for roles in (["reader"], []):
        fresh = [p.check("get_port", p.context("p1", roles=roles), t) for t in targets]
        ctx = p.context("p1", roles=roles)
        order = list(range(len(targets))) * 2
        random.Random(7).shuffle(order)
        for i in order:
            assert p.check("get_port", ctx, targets[i]) == fresh[i], (roles, targets[i])
    assert any(fresh) and not all(fresh)


def test_answers_for_many_targets_are_each_ones(make_policy):
    """checker().all(targets) answers as asking each target in turn: a
    rule reading one key, then several (the memo's first key set does not
    fit them all), targets lacking a key, unhashable values; and
    reads_target says whether the answer depends on the target."""
    import itertools
    import random
    p = make_policy('"get_port": "project_id:%(project_id)s or '
                    '(rule:network_owner and field:ports:device_owner=~^compute:)"\n'
                    '"r": "field:ports:fixed_ips=x or project_id:%(project_id)s"\n')
    values = {"project_id": ["p1", "p2", None], "network:project_id": ["p1", "p2"],
              "device_owner": ["compute:x", ""]}
    targets = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    targets += [{"network:project_id": "p1"}, {"project_id": "p1", "fixed_ips": [{"a": 1}]}]
    random.Random(3).shuffle(targets)
    for rule in ("get_port", "r"):
        fresh = [p.check(rule, p.context("p1", roles=["member"]), t) for t in targets]
        checker = p.checker(rule, p.context("p1", roles=["member"]))
        assert checker.reads_target(targets[0])
        assert checker.all(targets) == fresh, rule
        assert checker.all(targets[::-1]) == fresh[::-1], rule
        assert any(fresh) and not all(fresh)
    default = make_policy()  # (an admin may see every port)
    admin = default.checker("get_port", default.context("p1", roles=["admin"]))
    assert not admin.reads_target(targets[0])
    assert admin.all(targets) == [True] * len(targets)


def test_unhashable_target_values(make_policy):
    p = make_policy('"r": "field:ports:fixed_ips=x or project_id:%(project_id)s"\n')
    ctx = p.context("p1", roles=[])
    assert p.check("r", ctx, {"fixed_ips": [{"a": 1}], "project_id": "p1"})
    assert not p.check("r", ctx, {"fixed_ips": [{"a": 1}], "project_id": "p2"})


def test_scope_is_checked_only_when_asked(make_policy):
    p = make_policy()
    system = p.context("p1", roles=["admin"], system_scope="all")
    assert p.check("get_network", system, {"project_id": "p2"})
    p.conf.set_override("enforce_scope", True, group="oslo_policy")
    system = p.context("p1", roles=["admin"], system_scope="all")
    assert not p.check("get_network", system, {"project_id": "p2"})
    project = p.context("p1", roles=["admin"])
    assert p.check("get_network", project, {"project_id": "p2"})


def test_policy_sample_is_current(tmp_path):
    out = tmp_path / "policy.yaml.sample"
    gen = os.path.join(os.path.dirname(sys.executable), "oslopolicy-sample-generator")
    subprocess.run([gen, "--namespace", "quantum_ovs", "--output-file", str(out)],
                   check=True, timeout=60)
    with open(os.path.join(ROOT, "etc", "policy.yaml.sample")) as f:
        committed = f.read()
    assert out.read_text() == committed, "etc/policy.yaml.sample is stale: run `make genpolicy`"


def test_no_shipped_policy_file_overrides_the_defaults():
    assert not os.path.exists(os.path.join(ROOT, "etc", "policy.json"))
    assert not os.path.exists(os.path.join(ROOT, "etc", "policy.yaml"))
