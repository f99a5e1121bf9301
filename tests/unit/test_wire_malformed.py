"""A malformed item of a host view on the wire is left out (decoded
with ``refuse``), the rest decodes; in a delta it becomes a removal, so
that the old flows of its object do not stay (fail closed)."""

from __future__ import annotations

import pytest

from quantum_ovs import wire
from quantum_ovs.compiler.synth import make_host_view
from quantum_ovs.model import Delta


def _delta_dict(view, **kw):
    return wire.delta_to_dict(Delta(revision=4, **kw))


def test_a_malformed_upsert_in_a_delta_becomes_its_removal():
    view = make_host_view(networks=1, ports_per_net=2)
    d = _delta_dict(view, ports=view.ports)
    del d["ports"][0]["mac_address"]
    refused = []
    got = wire.delta_from_dict(d, refuse=lambda *a: refused.append(a[:2]))
    assert [p.id for p in got.ports] == [p.id for p in view.ports[1:]]
    assert got.removed_ports == (view.ports[0].id,)  # its old flows go (fail closed)
    assert [k for k, _ in refused] == ["port"]
    with pytest.raises(KeyError):  # the server's own reading still raises
        wire.delta_from_dict(d)


def test_a_malformed_rule_is_left_out_of_its_group_alone():
    view = make_host_view(networks=1, ports_per_net=2)
    d = wire.view_to_dict(view)
    rules = d["security_groups"][0]["rules"]
    n = len(rules)
    rules.append({**rules[0], "id": "odd", "no_such_key": 1})
    got = wire.view_from_dict(d, refuse=lambda *a: None)
    assert len(got.security_groups[0].rules) == n
    delta = wire.delta_to_dict(Delta(revision=5, security_groups=view.security_groups))
    delta["group_rules"] = [{"security_group_id": view.security_groups[0].id,
                             "rules": "not a list of rules"}]
    got = wire.delta_from_dict(delta, refuse=lambda *a: None)
    assert [(gr.security_group_id, gr.rules) for gr in got.group_rules] == \
        [(view.security_groups[0].id, ())]  # no rules rather than stale ones
