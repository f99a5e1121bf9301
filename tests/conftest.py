"""Run order: the longest modules first.

``make test`` runs the suite on two xdist workers, a module at a time
each (``--dist loadfile``); a module of minutes started last would run
alone at the end.  The order within a module, and of every other module,
stays as collected."""

import pytest

# Modules of a minute or more (tools/run-tests.sh prints the slowest tests).
SLOW_FIRST = ("test_tempest", "test_schemathesis", "test_keystone", "test_fuzz_api",
              "test_scale_out", "test_host_view_fips", "test_demo", "test_floatingip_cli",
              "test_router_cli", "test_openstack_cli")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def key(item):
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return rank.get(module, len(rank))
    items.sort(key=key)  # stable: the rest keep their order
