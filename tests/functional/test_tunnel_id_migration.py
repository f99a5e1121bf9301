"""Migration 0018_tunnel_id_space: a tunnel network's id takes a row of
each tunnel type (VXLAN and GRE share one id space); the networks made
before it get the twin row, two networks already sharing an id are left
as they are, a gateway's redirect key keeps its rows."""

import datetime

import sqlalchemy as sa

from quantum_ovs.db import migration

BEFORE = "0017_credential_gateway"


def _rows(conn):
    return sorted(tuple(r) for r in conn.execute(sa.text(
        "SELECT network_type, segmentation_id, network_id FROM segment_allocations "
        "WHERE physical_network = ''")))


def test_tunnel_networks_made_before_get_their_twin_row(db_url):
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, BEFORE)
        now = datetime.datetime(2026, 12, 6)
        nets = (("n-vx", "vxlan", 5), ("n-gre", "gre", 7), ("n-vx9", "vxlan", 9),
                ("n-gre9", "gre", 9), ("n-ext", "vlan", 100))
        with engine.begin() as conn:
            for id_, ntype, segid in nets:
                conn.execute(sa.text(
                    "INSERT INTO networks (id, project_id, name, description, "
                    "revision_number, created_at, updated_at, admin_state_up, status, "
                    "shared, mtu, port_security_enabled, dns_domain) VALUES (:id, 'p1', '', "
                    "'', 0, :now, :now, :t, 'ACTIVE', :f, 1450, :t, '')"),
                    dict(id=id_, now=now, t=True, f=False))
                physnet = "physnet1" if ntype == "vlan" else ""
                conn.execute(sa.text(
                    "INSERT INTO network_segments (network_id, network_type, "
                    "physical_network, segmentation_id) VALUES (:id, :t, :p, :s)"),
                    dict(id=id_, t=ntype, p=physnet or None, s=segid))
                conn.execute(sa.text(
                    "INSERT INTO segment_allocations (network_type, physical_network, "
                    "segmentation_id, network_id) VALUES (:t, :p, :s, :id)"),
                    dict(id=id_, t=ntype, p=physnet, s=segid))
            # the external network's redirect key, reserved in both types
            for t in ("vxlan", "gre"):
                conn.execute(sa.text(
                    "INSERT INTO segment_allocations (network_type, physical_network, "
                    "segmentation_id, network_id) VALUES (:t, '', 3, 'n-ext')"), dict(t=t))
        with engine.connect() as conn:
            before = _rows(conn)
        migration.upgrade(engine)
        with engine.connect() as conn:
            assert _rows(conn) == sorted(before + [("gre", 5, "n-vx"), ("vxlan", 7, "n-gre")])
        migration.downgrade(engine, BEFORE)
        with engine.connect() as conn:
            assert _rows(conn) == before
    finally:
        engine.dispose()
