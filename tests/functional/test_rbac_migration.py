"""Migration 0011_rbac: the networks that were shared or external before
it get the wildcard policies Neutron makes for ``shared`` and
``router:external``."""

import datetime

import sqlalchemy as sa

from quantum_ovs.db import migration


def test_existing_shared_and_external_networks_get_wildcard_policies(db_url):
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0010_subnetpools")
        now = datetime.datetime(2026, 12, 1)
        with engine.begin() as conn:
            for id_, shared in (("n-shared", True), ("n-ext", False), ("n-own", False)):
                conn.execute(sa.text(
                    "INSERT INTO networks (id, project_id, name, description, "
                    "revision_number, created_at, updated_at, admin_state_up, status, "
                    "shared, mtu, port_security_enabled, dns_domain) VALUES (:id, 'p1', '', "
                    "'', 0, :now, :now, :t, 'ACTIVE', :shared, 1500, :t, '')"),
                    dict(id=id_, now=now, shared=shared, t=True))
            conn.execute(sa.text("INSERT INTO external_networks (network_id) "
                                 "VALUES ('n-ext')"))
        migration.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT project_id, object_type, object_id, action, target_tenant "
                "FROM rbac_policies ORDER BY object_id")).all()
        assert [tuple(r) for r in rows] == [
            ("p1", "network", "n-ext", "access_as_external", "*"),
            ("p1", "network", "n-shared", "access_as_shared", "*")]
        migration.downgrade(engine, "0010_subnetpools")
    finally:
        engine.dispose()


def test_policies_with_blank_or_control_targets_are_deleted(db_url, caplog):
    """0019: a target the API refuses since 40b452b ("* " was the wildcard
    on MariaDB) is gone after the upgrade; well-formed ones stay."""
    engine = sa.create_engine(db_url)
    targets = {"r-star-blank": "* ", "r-lead": " p2", "r-tab": "p2\t", "r-nul": "p\x7f3",
               "r-p2": "p2", "r-star": "*", "r-inner": "p 4"}
    try:
        migration.upgrade(engine, "0018_tunnel_id_space")
        with engine.begin() as conn:
            for i, (id_, target) in enumerate(targets.items()):
                conn.execute(sa.text(
                    "INSERT INTO rbac_policies (id, project_id, object_type, object_id, "
                    "action, target_tenant) VALUES (:id, 'p1', 'network', :obj, "
                    "'access_as_shared', :t)"), dict(id=id_, obj=f"n{i}", t=target))
        with caplog.at_level("WARNING"):
            migration.upgrade(engine)
        with engine.connect() as conn:
            left = {r[0]: r[1] for r in conn.execute(sa.text(
                "SELECT id, target_tenant FROM rbac_policies"))}
        assert left == {"r-p2": "p2", "r-star": "*", "r-inner": "p 4"}
        assert sum("deleting RBAC policy" in m for m in caplog.messages) == 4
        migration.downgrade(engine, "0018_tunnel_id_space")
    finally:
        engine.dispose()
