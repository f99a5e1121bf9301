"""Which agent rows can carry a segment (db/bindings.py), whatever shape
their configurations were stored in."""

import json
import types

import pytest

from quantum_ovs.db.bindings import _vif_details

VXLAN = types.SimpleNamespace(network_type="vxlan", physical_network=None)
VLAN = types.SimpleNamespace(network_type="vlan", physical_network="physnet1")


def _agent(conf):
    return types.SimpleNamespace(configurations=conf if isinstance(conf, str)
                                 else json.dumps(conf))


@pytest.mark.parametrize("conf", [
    [], "3", {"tunnel_types": "vxlan"}, {"tunnel_types": ["gre"]},
    {"tunnel_types": ["vxlan"], "integration_bridge": 7},
    {"tunnel_types": ["vxlan"], "datapath_type": ["netdev"]}])
def test_a_configuration_of_the_wrong_shape_carries_nothing(conf):
    assert _vif_details(_agent(conf), VXLAN) is None


def test_a_configuration_that_is_not_json_is_an_error_bind_turns_into_binding_failed():
    with pytest.raises(ValueError):
        _vif_details(_agent("{not json"), VXLAN)
    with pytest.raises(RecursionError):
        _vif_details(_agent("[" * 200000 + "]" * 200000), VXLAN)


def test_what_an_agent_that_carries_the_segment_gets():
    d = json.loads(_vif_details(_agent({"bridge_mappings": {"physnet1": "br-ex"},
                                        "datapath_type": "netdev"}), VLAN))
    assert d == {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int",
                 "datapath_type": "netdev", "ovs_hybrid_plug": False}
    assert _vif_details(_agent({"bridge_mappings": {"physnet2": "br-ex"}}), VLAN) is None
