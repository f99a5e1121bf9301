"""What MySQL/MariaDB would do differently, held the same on every
backend: strings compare case-sensitively (a server's default collation,
utf8mb4_general_ci, would not), text outside the BMP is stored, and
timestamps keep their order."""

import sqlalchemy as sa

from quantum_ovs.db import migration


def test_tags_differing_in_case_are_two_tags(api):
    net = api.network()
    api.put(f"/v2.0/networks/{net['id']}/tags", {"tags": ["Red", "red"]}, status=200)
    assert api.get(f"/v2.0/networks/{net['id']}/tags", status=200).data["tags"] == \
        ["Red", "red"]
    api.put(f"/v2.0/networks/{net['id']}/tags/RED", status=201)
    api.get(f"/v2.0/networks/{net['id']}/tags/rEd", status=404)


def test_filters_are_case_sensitive(api):
    api.network(name="Net")
    api.network(name="net")
    got = api.get("/v2.0/networks?name=Net", status=200).data["networks"]
    assert [n["name"] for n in got] == ["Net"]


def test_names_outside_the_bmp_are_stored(api):
    net = api.network(name="net-\U0001F600")
    assert api.get(f"/v2.0/networks/{net['id']}", status=200).data["network"]["name"] == \
        "net-\U0001F600"


def test_mysql_tables_made_with_another_collation_are_converted(db_url):
    """A database whose tables were made with the server's collation (an
    older release) is converted by the next upgrade."""
    engine = sa.create_engine(db_url)
    try:
        if engine.dialect.name not in ("mysql", "mariadb"):
            migration.upgrade(engine)  # nothing to convert elsewhere
            return
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER DATABASE CHARACTER SET utf8mb4 "
                                 "COLLATE utf8mb4_general_ci")
            conn.exec_driver_sql("CREATE TABLE old_one (name VARCHAR(20) PRIMARY KEY)")
        migration.upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.exec_driver_sql(
                "SELECT table_name, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE()").all())
        with engine.connect() as conn:
            want = migration.mysql_collation(conn)
        assert want in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"), want  # (Debian's MariaDB)
        assert set(got.values()) == {want}, got
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO old_one VALUES ('a'), ('A')")
    finally:
        engine.dispose()
