"""Standard attributes as Neutron has them (review of session 27): tags,
revision numbers and If-Match preconditions, timestamps and the
changed_since filter.  Each test fails on the code it was written
against; the docstrings cite the Neutron code that behaves otherwise."""

from tests.functional.test_floatingips import ADMIN, F, _fip, _topology
from tests.functional.test_floatingips import l3  # noqa: F401 - the fixture

N = "/v2.0/networks"


def _rev(api, path, key):
    return api.get(path, status=200, **ADMIN).data[key]["revision_number"]


def _after_the_first_read(api, monkeypatch, write):
    """``write(ctx, collection, id_)`` commits right after the request's
    first read of the resource (another client, in between)."""
    real_get = api.plugin.get
    calls = []

    def get(ctx, collection, id_):
        obj = real_get(ctx, collection, id_)
        if not calls:
            calls.append(1)
            write(ctx, collection, id_)
        return obj
    monkeypatch.setattr(api.plugin, "get", get)


def test_if_match_is_checked_in_the_write_not_before_it(api, monkeypatch):
    """If-Match: revision_number=N is optimistic concurrency control: the
    write happens only if nobody changed the resource since revision N.
    Neutron checks it in the write's own flush (revision_plugin.py:
    _enforce_if_match_constraints from bump_revisions / before_flush, and
    the compare-and-swap of StandardAttribute's version_id_col; see
    test_revision_plugin.py: test_constrained_port_update_handles_db_retries).
    Here Controller._check_revision compares against a copy read in an
    earlier transaction (_get_visible), then plugin.update writes without
    looking again: a writer that commits in between is overwritten (a lost
    update) although the client asked for exactly that to be refused."""
    net = api.network(name="original")
    seen = _rev(api, f"{N}/{net['id']}", "network")
    real_update = api.plugin.update
    _after_the_first_read(api, monkeypatch, lambda ctx, collection, id_: real_update(
        ctx, collection, id_, {"name": "concurrent"}))
    r = api.put(f"{N}/{net['id']}", {"network": {"name": "mine"}},
                headers={"If-Match": f"revision_number={seen}"})
    monkeypatch.undo()
    after = api.get(f"{N}/{net['id']}", status=200).data["network"]
    assert r.status_int == 412, (r.status, after["name"], after["revision_number"])
    assert after["name"] == "concurrent"


def test_quoted_if_match_etag_is_a_precondition_too(api):
    """An entity tag is a quoted string (RFC 9110 8.8.3): If-Match:
    "revision_number=N".  Neutron reads the header through webob's
    request.if_match.etags (api_common.py:
    check_request_for_revision_constraint), which unquotes it, so a stale
    quoted revision is 412 there.  Here _check_revision only looks for parts
    starting with ``revision_number=``: the quoted form is silently ignored
    and the update goes through unconditionally."""
    net = api.network(name="original")
    stale = _rev(api, f"{N}/{net['id']}", "network") + 1
    r = api.put(f"{N}/{net['id']}", {"network": {"name": "mine"}},
                headers={"If-Match": f'"revision_number={stale}"'})
    assert r.status_int == 412, (r.status, r.text[:300])
    assert api.get(f"{N}/{net['id']}", status=200).data["network"]["name"] == "original"


def test_changed_since_out_of_range_is_400_not_500(api):
    """A changed_since that parses but cannot be brought to UTC
    (0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00) makes
    Controller._changed_since's astimezone raise OverflowError: a 500.
    Neutron answers any changed_since it cannot use with InvalidInput, a
    400 (services/timestamp/timestamp_db.py:
    _change_since_result_filter_hook wraps the parse and normalisation)."""
    api.network()
    for value in ("0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"):
        api.get(f"{N}?changed_since={value}", status=400)


def test_concurrent_single_tag_additions_are_not_lost(api, monkeypatch):
    """PUT /{resources}/{id}/tags/{tag} adds one tag.  Neutron inserts that
    one row (services/tag/tag_plugin.py: update_tag), so two clients adding
    different tags at the same time both keep theirs.  Here Controller.tags
    reads the current list in one transaction and writes back the whole
    list plus the new tag in another (plugin.set_tags replaces every
    row): a tag another client added in between is silently dropped."""
    net = api.network()
    real_set = api.plugin.set_tags
    # (another client's PUT .../tags/other)
    _after_the_first_read(api, monkeypatch, lambda ctx, collection, id_: real_set(
        ctx, collection, id_, ["other"]))
    api.put(f"{N}/{net['id']}/tags/mine", status=201)
    monkeypatch.undo()
    tags = api.get(f"{N}/{net['id']}/tags", status=200).data["tags"]
    assert sorted(tags) == ["mine", "other"]


def test_replacing_tags_with_the_same_tags_keeps_the_revision(api):
    """Neutron's tag plugin writes only the difference (tag_plugin.py:
    update_tags adds tags_added and deletes tags_removed, delete_tags
    deletes the rows there are), and a revision is bumped only by a row
    that changes (revision_plugin.py: bump_revisions, Tag.revises_on_change).
    PUT /tags with the tags the resource already has, or DELETE /tags on a
    resource with none, changes nothing and keeps revision_number (and
    with it every client's If-Match).  Here plugin.set_tags always bumps."""
    net = api.network()
    path = f"{N}/{net['id']}"
    api.put(f"{path}/tags", {"tags": ["a", "b"]}, status=200)
    rev = _rev(api, path, "network")
    api.put(f"{path}/tags", {"tags": ["b", "a"]}, status=200)
    assert _rev(api, path, "network") == rev
    bare = api.network()
    rev = _rev(api, f"{N}/{bare['id']}", "network")
    api.delete(f"{N}/{bare['id']}/tags", status=204)
    assert _rev(api, f"{N}/{bare['id']}", "network") == rev


def test_port_forwarding_bumps_its_internal_port(l3):  # noqa: F811
    """Neutron's PortForwarding model revises_on_change = ('floating_ip',
    'port') (db/models/port_forwarding.py): creating a forwarding bumps the
    revision of the floating IP and of the internal port it points at.
    Here only the floating IP's moves."""
    ext_net, _, _, _, _, port = _topology(l3)
    f = _fip(l3, floating_network_id=ext_net["id"])
    before = _rev(l3, f"/v2.0/ports/{port['id']}", "port")
    pf = l3.post(f"{F}/{f['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": port["id"],
        "internal_ip_address": port["fixed_ips"][0]["ip_address"],
        "internal_port": 22, "external_port": 2222}}, status=201).data["port_forwarding"]
    after_create = _rev(l3, f"/v2.0/ports/{port['id']}", "port")
    assert after_create > before
    # moved to another port: both revised; deleted: the port revised
    other = l3.post("/v2.0/ports", {"port": {"network_id": port["network_id"],
                                             "project_id": port["project_id"]}},
                    status=201, **ADMIN).data["port"]
    was = _rev(l3, f"/v2.0/ports/{other['id']}", "port")
    l3.put(f"{F}/{f['id']}/port_forwardings/{pf['id']}", {"port_forwarding": {
        "internal_port_id": other["id"],
        "internal_ip_address": other["fixed_ips"][0]["ip_address"]}}, status=200, **ADMIN)
    assert _rev(l3, f"/v2.0/ports/{port['id']}", "port") > after_create
    assert _rev(l3, f"/v2.0/ports/{other['id']}", "port") > was
    was = _rev(l3, f"/v2.0/ports/{other['id']}", "port")
    l3.delete(f"{F}/{f['id']}/port_forwardings/{pf['id']}", status=204, **ADMIN)
    assert _rev(l3, f"/v2.0/ports/{other['id']}", "port") > was


def test_policy_refusal_comes_before_the_revision_precondition(api):
    """A project that may read a resource but not change it (a shared
    network of another project, or a reader of its own) gets 403 for an
    update whatever If-Match says: Neutron's PolicyHook.before enforces
    update_network before the plugin runs, and the revision constraint
    (set by QueryParametersHook._process_if_match_headers) is only checked
    in the plugin's flush (revision_plugin.py: _enforce_if_match_constraints).
    Here Controller.update runs _check_revision before policy: the caller
    who may not write at all is told 412, and only the right revision
    reaches the 403."""
    shared = api.network(shared=True, project_id="p1", **ADMIN)
    stale = _rev(api, f"{N}/{shared['id']}", "network") + 3
    r = api.put(f"{N}/{shared['id']}", {"network": {"name": "mine"}}, project="p2",
                headers={"If-Match": f"revision_number={stale}"})
    assert r.status_int == 403, (r.status, r.text[:300])
    r = api.delete(f"{N}/{shared['id']}", project="p2",
                   headers={"If-Match": f"revision_number={stale}"})
    assert r.status_int == 403, (r.status, r.text[:300])
