"""Fixtures for tests that run a private Open vSwitch (quantum_ovs/testing/ovs.py)."""

from __future__ import annotations

import pytest

from quantum_ovs.testing.ovs import PrivateOVS, missing_prerequisites


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


class Switch:
    """A private OVS whose br-int is driven by the agent's own clients:
    ``api`` (agent.ovsdb) and ``channel`` (agent.openflow), the channel
    listening inside the OVS namespace on 127.0.0.1."""

    def __init__(self, ovs, conn, api, channel):
        self.ovs = ovs
        self.conn = conn
        self.api = api
        self.channel = channel


@pytest.fixture
def switch(ovs):
    from agent.openflow import Channel, CookieScope
    from agent.ovsdb import Connection, Ovsdb
    from tests.fixtures.flow_samples import COOKIE_BASE, COOKIE_MASK

    conn = Connection(ovs.db_remote).start()
    channel = Channel(
        CookieScope(COOKIE_BASE, COOKIE_MASK), sock=ovs.listen_socket(), echo_interval=2
    )
    channel.start()
    try:
        api = Ovsdb(conn)
        api.ensure_bridge(
            "br-int",
            datapath_type="netdev",
            controller=channel.target,
            connection_mode="out-of-band",
        )
        channel.wait_connected(timeout=10)
        yield Switch(ovs, conn, api, channel)
    finally:
        channel.stop()
        conn.stop()
