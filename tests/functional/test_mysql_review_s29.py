"""MariaDB/MySQL behaviour that differs from SQLite and PostgreSQL
(review of session 29).  Each test runs on every backend (``api``) and
failed on MariaDB only (utf8mb4_bin is PAD SPACE there), with the code it
was written against.  (The review's TEXT-size and deadlock findings are
not here: not fixed yet, see the session's note.)"""

import urllib.parse

N = "/v2.0/networks"
P = "/v2.0/ports"


def _q(value):
    return urllib.parse.quote(value, safe="")


# ---------------------------------------------------------------- PAD SPACE
# utf8mb4_bin is a PAD SPACE collation on MariaDB (and MySQL): 'red' =
# 'red ' in comparisons and unique keys (migration.MYSQL_COLLATIONS).

def test_tags_differing_by_trailing_blank_are_two_tags(api):
    """PUT .../tags {"tags": ["red", "red "]}: two tags on PostgreSQL and
    SQLite (validators.tag accepts both, set_tags dedups them in Python as
    different), but tags.(resource_id, tag) is a primary key under a PAD
    SPACE collation on MariaDB: the second row is a duplicate key, retried
    db_max_retries times and answered 409 "retry it" -- a request that can
    never succeed."""
    net = api.network()
    r = api.put(f"{N}/{net['id']}/tags", {"tags": ["red", "red "]})
    assert r.status_int == 200, (r.status, r.text[:300])
    assert sorted(r.data["tags"]) == ["red", "red "]


def test_tag_added_next_to_one_differing_by_trailing_blank(api):
    """PUT .../tags/red%20 on a resource tagged "red": change_tag sees
    "red " not in ["red"] (Python) and inserts it; on MariaDB the primary
    key compares them equal: 409 instead of 201."""
    net = api.network()
    api.put(f"{N}/{net['id']}/tags/red", status=201)
    r = api.put(f"{N}/{net['id']}/tags/{_q('red ')}")
    assert r.status_int == 201, (r.status, r.text[:300])
    tags = api.get(f"{N}/{net['id']}/tags", status=200).data["tags"]
    assert sorted(tags) == ["red", "red "]


def test_tag_filter_matches_exact_tag_only(api):
    """?tags=red finds the networks tagged "red", not one tagged "red "
    (query.tag_filter: T.tag IN (...) -- PAD SPACE on MariaDB matches
    both, so a tag filter returns resources that do not carry the tag)."""
    tagged = api.network(name="exact")
    other = api.network(name="padded")
    api.put(f"{N}/{tagged['id']}/tags/red", status=201)
    api.put(f"{N}/{other['id']}/tags/{_q('red ')}", status=201)
    got = {n["id"] for n in api.get(f"{N}?tags=red", status=200).data["networks"]}
    assert got == {tagged["id"]}


def test_name_filter_is_exact(api):
    """?name=web finds the network named "web" and not "web " (an exact
    match on PostgreSQL and SQLite; column_filter's IN on MariaDB's PAD
    SPACE collation matches both)."""
    web = api.network(name="web")
    api.network(name="web ")
    got = [n["id"] for n in api.get(f"{N}?name=web", status=200).data["networks"]]
    assert got == [web["id"]]



def test_id_with_trailing_blank_is_not_found(api):
    """GET /v2.0/networks/<id>%20: 404 on PostgreSQL and SQLite (no such
    id); on MariaDB ``Network.id == '<id> '`` finds the network (PAD SPACE):
    a lookup by a key that is not the resource's answers with it."""
    net = api.network()
    r = api.get(f"{N}/{net['id']}%20")
    assert r.status_int == 404, (r.status, r.text[:200])
