"""IPv4 values are checked and packed by the C library (issue 17: a cold
start encodes thousands): the same spellings refused as before, the same
bytes as os-ken's for the others."""

from __future__ import annotations

import pytest

from agent.openflow import encode as E
from quantum_ovs.compiler.flow import Field, Flow, Match, Output, SetField

COOKIE = 0x5157000000000001


@pytest.mark.parametrize("bad", ["10.0.0.01", "10.0.0", "10.0.0.1 ", "010.0.0.1", "10.0.0.256",
                                 "::1", "1.2.3.4/32", ""])
def test_a_non_canonical_ipv4_address_is_refused(bad):
    E.FAST = E.new_fast_encoder()
    E.flow_mod_bytes.cache_clear()
    for flow in (Flow(5, 10, Match(eth_type=0x0800, ipv4_dst=bad), (Output(1),), COOKIE),
                 Flow(5, 10, Match(eth_type=0x0806), (SetField("arp_spa", bad),), COOKIE),
                 Flow(5, 10, Match(Field("ipv4_src", "10.0.0.0", bad), eth_type=0x0800),
                      (Output(1),), COOKIE)):
        with pytest.raises(ValueError):
            E.flow_mod_bytes(flow)


def test_canonical_ipv4_values_encode_as_os_ken_does():
    E.FAST = E.new_fast_encoder()
    E.flow_mod_bytes.cache_clear()
    flows = [Flow(5, 10, Match(eth_type=0x0800, ipv4_dst=ip), (Output(1),), COOKIE)
             for ip in ("0.0.0.0", "10.1.2.3", "255.255.255.255", "192.168.100.10")]
    flows += [Flow(5, 10, Match(Field("ipv4_src", "10.8.0.0", "255.255.0.0"), eth_type=0x0800),
                   (SetField("ipv4_dst", "10.0.0.9"), Output(1)), COOKIE)]
    for f in flows:
        assert E.flow_mod_bytes(f) == E.flow_mod_bytes_osken(f)
        assert E.parse_flow_mod(E.flow_mod_bytes(f)) == f
