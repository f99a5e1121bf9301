"""Fixtures for tests that run a private Open vSwitch (see ovs_fixture)."""

from __future__ import annotations

import pytest

from tests.integration.ovs_fixture import PrivateOVS, missing_prerequisites


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs root and a private Open vSwitch")


def _require_ovs():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def ovs():
    """A fresh private OVS (own netns, run dir, ovsdb-server, ovs-vswitchd)."""
    _require_ovs()
    o = PrivateOVS()
    try:
        o.start()
        yield o
    finally:
        o.stop()


@pytest.fixture(scope="module")
def module_ovs():
    """One private OVS shared by a test module (tests must clean up bridges)."""
    _require_ovs()
    o = PrivateOVS()
    try:
        o.start()
        yield o
    finally:
        o.stop()
