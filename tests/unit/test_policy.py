import pytest

from quantum_ovs import exceptions
from quantum_ovs.context import Context
from quantum_ovs.policy import Enforcer


def test_rule_language():
    e = Enforcer(rules={
        "a": "role:x and not role:y",
        "b": "(rule:a or project_id:%(project_id)s) and field:networks:shared=True",
        "never": "!", "always": "@",
        "net_owner": "project_id:%(network:project_id)s",
    })
    x = Context("p1", roles=["x"])
    xy = Context("p1", roles=["x", "Y"])
    assert e.check("a", x, {}) and not e.check("a", xy, {})
    assert e.check("b", xy, {"project_id": "p1", "shared": True})
    assert not e.check("b", xy, {"project_id": "p2", "shared": True})
    assert not e.check("b", x, {"project_id": "p2", "shared": False})
    assert e.check("always", xy, {}) and not e.check("never", x, {})
    assert e.check("net_owner", x, {"network:project_id": "p1"})
    assert not e.check("net_owner", x, {"network:project_id": "p2"})


def test_unknown_action_uses_default_rule():
    e = Enforcer()
    assert e.check("frobnicate_port", Context("p1"), {"project_id": "p1"})
    assert not e.check("frobnicate_port", Context("p1"), {"project_id": "p2"})
    with pytest.raises(exceptions.PolicyNotAuthorized):
        e.enforce("frobnicate_port", Context("p1"), {"project_id": "p2"})


@pytest.mark.parametrize("bad", ["role:x or", "(role:x", "role:x )", "and"])
def test_bad_rules_raise(bad):
    with pytest.raises(ValueError):
        Enforcer(rules={"r": bad})


def test_self_reference_raises():
    with pytest.raises(ValueError):
        Enforcer(rules={"r": "rule:r"})
