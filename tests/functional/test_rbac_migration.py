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
