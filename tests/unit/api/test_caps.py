"""The per-object caps' one rule (exceptions.over_cap and check_cap),
which extra DHCP options, subnet pool prefixes, address groups' addresses
port forwardings' shifted ports and a network's auto-address subnets
all follow."""

import pytest

from quantum_ovs import exceptions
from quantum_ovs.exceptions import check_cap, over_cap


@pytest.mark.parametrize("count, before, given, over", [
    (3, 0, False, False),   # at the cap
    (4, 0, False, True),    # past it
    (4, 5, False, False),   # an object over a lowered cap sheds one
    (5, 5, False, False),   # ... or keeps what it had
    (6, 5, False, True),    # ... but may not grow
    (4, 9, True, True),     # a count a request names is over it whatever was before
    (3, 9, True, False),
])
def test_over_cap(count, before, given, over):
    assert over_cap(3, count, before, given) is over


def test_check_cap_says_what_and_how_many():
    check_cap("A port", "extra DHCP options", 3, 3)
    with pytest.raises(exceptions.InvalidInput) as e:
        check_cap("A port", "extra DHCP options", 3, 4)
    assert "A port may have at most 3 extra DHCP options, not 4" in str(e.value)
    with pytest.raises(exceptions.InvalidInput) as e:
        check_cap("A subnet pool", "prefixes", 3, 7, given=True)
    assert "A subnet pool may have at most 3 prefixes, 7 given" in str(e.value)
