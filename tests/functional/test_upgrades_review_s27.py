"""Schema upgrades of a populated database (review of session 27).

Each test puts rows at an older revision (as the code of that revision
wrote them), upgrades to head and checks what the API or an agent's host
view then says, or, for the downgrade, what is left.  Each test fails on
the current code."""

import datetime
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from quantum_ovs import wire
from quantum_ovs.db import ipam, migration
from quantum_ovs.service import build
from tests.functional.conftest import Client, make_conf
from tests.functional.test_agent_api import register, state

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0)
# fixed ids (the API describes ids as UUIDs)
ID = {k: str(uuid.uuid5(uuid.NAMESPACE_URL, "qovs-s27-" + k)) for k in (
    "ext-sub", "ext", "n1", "s1", "gw-port", "if-port", "vm", "r1", "scope-1", "pool-1",
    "n-old")}


def _insert(conn, table, *rows):
    t = sa.Table(table, sa.MetaData(), autoload_with=conn)
    for row in rows:
        conn.execute(t.insert().values(**row))


def _std(id_, project, **kw):
    """The standard attributes, as every revision wrote them."""
    return dict(id=id_, project_id=project, name=kw.pop("name", ""), description="",
                revision_number=0, created_at=NOW, updated_at=NOW, **kw)


def _app(url, **overrides):
    db, plugin, app = build(make_conf(url, **overrides))
    return Client(app, plugin, db)


# ------------------------------------------------------------------ F1
def _router_at_0007(conn):
    """What the code at 0007_routers wrote for: an external network with a
    subnet, a project network with a subnet, a router with its external
    gateway and an interface on the project subnet, and an instance port
    (the rows copied from a database populated through that code's API)."""
    _insert(conn, "networks",
            _std(ID["ext"], "admin", name="ext", admin_state_up=True, status="ACTIVE",
                 shared=False, mtu=1450, port_security_enabled=True),
            _std(ID["n1"], "p1", name="n1", admin_state_up=True, status="ACTIVE",
                 shared=False, mtu=1450, port_security_enabled=True))
    _insert(conn, "network_segments",
            dict(network_id=ID["ext"], network_type="vxlan", physical_network=None,
                 segmentation_id=7576),
            dict(network_id=ID["n1"], network_type="vxlan", physical_network=None,
                 segmentation_id=7375))
    _insert(conn, "segment_allocations",
            dict(network_type="vxlan", physical_network="", segmentation_id=7576,
                 network_id=ID["ext"]),
            dict(network_type="vxlan", physical_network="", segmentation_id=7375,
                 network_id=ID["n1"]))
    _insert(conn, "external_networks", dict(network_id=ID["ext"]))
    _insert(conn, "subnets",
            _std(ID["ext-sub"], "admin", network_id=ID["ext"], cidr="203.0.113.0/24", ip_version=4,
                 gateway_ip="203.0.113.1", enable_dhcp=True),
            _std(ID["s1"], "p1", network_id=ID["n1"], cidr="10.0.0.0/24", ip_version=4,
                 gateway_ip="10.0.0.1", enable_dhcp=True))
    for sid, first, last, free in ((ID["ext-sub"], "203.0.113.2", "203.0.113.254", "203.0.113.3"),
                                   (ID["s1"], "10.0.0.2", "10.0.0.254", "10.0.0.3")):
        _insert(conn, "allocation_pools", dict(
            subnet_id=sid, first_ip=first, last_ip=last, first_key=ipam.ip_key(first),
            last_key=ipam.ip_key(last)))
        _insert(conn, "ip_availability_ranges", dict(
            subnet_id=sid, first_key=ipam.ip_key(free), last_key=ipam.ip_key(last)))
    port = dict(admin_state_up=True, status="DOWN", port_security_enabled=True)
    _insert(conn, "ports",
            _std(ID["gw-port"], "", network_id=ID["ext"], mac_address="fa:16:3e:37:56:e2",
                 device_id=ID["r1"], device_owner="network:router_gateway",
                 **dict(port, port_security_enabled=False)),
            _std(ID["if-port"], "p1", network_id=ID["n1"], mac_address="fa:16:3e:6d:51:ad",
                 device_id=ID["r1"], device_owner="network:router_interface",
                 **dict(port, status="ACTIVE")),
            _std(ID["vm"], "p1", name="vm", network_id=ID["n1"], mac_address="fa:16:3e:45:01:f7",
                 device_id="", device_owner="", **port))
    _insert(conn, "ipallocations",
            dict(subnet_id=ID["ext-sub"], ip_address="203.0.113.2", port_id=ID["gw-port"],
                 network_id=ID["ext"], order=0),
            dict(subnet_id=ID["s1"], ip_address="10.0.0.1", port_id=ID["if-port"],
                 network_id=ID["n1"], order=0),
            dict(subnet_id=ID["s1"], ip_address="10.0.0.2", port_id=ID["vm"], network_id=ID["n1"],
                 order=0))
    for pid in (ID["if-port"], ID["vm"]):
        _insert(conn, "port_bindings", dict(port_id=pid, host="", vnic_type="normal",
                                            profile="{}", vif_type="unbound",
                                            vif_details="{}", flows_installed=False))
    _insert(conn, "routers", _std(ID["r1"], "p1", name="r1", status="ACTIVE", admin_state_up=True,
                                  gw_network_id=ID["ext"], gw_port_id=ID["gw-port"],
                                  enable_snat=True))
    _insert(conn, "routerports",
            dict(router_id=ID["r1"], port_id=ID["gw-port"], port_type="network:router_gateway",
                 order=0),
            dict(router_id=ID["r1"], port_id=ID["if-port"], port_type="network:router_interface",
                 order=1))


def test_router_gateway_made_before_0008_gets_a_redirect_key(db_url):
    """0008_floatingips adds routers.redirect_key (the tunnel key of the
    SNAT traffic that instances' hosts send to the gateway host, reserved in
    segment_allocations) as NULL for every existing router, gateway or not.
    l3.py allocates it only when a gateway is set, and setting the same
    gateway again returns early, so a router whose gateway was set at 0007
    keeps no key: its host views say redirect_key 0 and
    compiler/rules/gateway.py then emits no redirect (``if redirect_members
    and gw.redirect_key``; a non-gateway host's L3_SNAT flow is then ``()
    = drop``) -- after the upgrade, instances on every host but the gateway
    host have no way out through a router whose gateway the API shows as
    set, while a router made after the upgrade has one.  Neutron's
    migrations that add what the data plane needs to existing rows fill it
    in (e.g. 2e0d7a8a1586_add_binding_index_to_routerl3agentbinding gives
    every existing binding its index)."""
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0007_routers")
        with engine.begin() as conn:
            _router_at_0007(conn)
        migration.upgrade(engine)
    finally:
        engine.dispose()
    api = _app(db_url, service_plugins=["router"])
    try:
        register(api, "gw-1", "192.0.2.11", gateway=True)
        register(api, "hv-a", "192.0.2.1")
        api.put(f"/v2.0/ports/{ID['vm']}", {"port": {"binding:host_id": "hv-a"}}, admin=True,
                status=200)
        gw = api.get(f"/v2.0/routers/{ID['r1']}", admin=True, status=200).data["router"][
            "external_gateway_info"]
        assert gw["network_id"] == ID["ext"]
        (router,) = wire.view_from_dict(state(api, "hv-a")["view"]).routers
        assert router.gateway.hosts == ("gw-1",)
        assert router.gateway.redirect_key > 0, router.gateway
    finally:
        api.db.dispose()


# ------------------------------------------------------------------ F2
def test_pools_and_scopes_shared_before_0011_get_their_wildcard_policy(db_url):
    """0011_rbac gives the networks shared (or external) before it their
    wildcard policy, but not the subnet pools and address scopes of 0010,
    whose ``shared`` column was already there.  At head ``shared`` is "the
    wildcard access_as_shared policy exists" (subnetpools.Shareable.
    rbac_changed): the first policy an administrator then adds for one
    project recomputes it as False, and the pool (scope) shared with every
    project disappears for all the others.  Neutron's migrations
    e88badaa9591_add_rbac_support_for_subnetpool and e4e236b0e1ff_add_rbac_
    support_for_address_scope insert a '*' access_as_shared row for each
    shared pool and scope."""
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0010_subnetpools")
        with engine.begin() as conn:
            _insert(conn, "address_scopes",
                    _std(ID["scope-1"], "owner", name="scope", ip_version=4, shared=True))
            _insert(conn, "subnetpools",
                    _std(ID["pool-1"], "owner", name="pool", ip_version=4, default_prefixlen=24,
                         min_prefixlen=8, max_prefixlen=32, default_quota=None, shared=True,
                         is_default=False, address_scope_id=None))
            _insert(conn, "subnetpoolprefixes", dict(subnetpool_id=ID["pool-1"],
                                                     cidr="10.100.0.0/16",
                                                     first_key=ipam.ip_key("10.100.0.0")))
        migration.upgrade(engine)
    finally:
        engine.dispose()
    api = _app(db_url)
    try:
        for path, otype, oid in (("subnetpools", "subnetpool", ID["pool-1"]),
                                 ("address-scopes", "address_scope", ID["scope-1"])):
            key = otype
            assert api.get(f"/v2.0/{path}/{oid}", project="p3", status=200).data[key][
                "shared"] is True
            api.post("/v2.0/rbac-policies", {"rbac_policy": {
                "object_type": otype, "object_id": oid, "action": "access_as_shared",
                "target_tenant": "p2"}}, project="admin", admin=True, status=201)
            # still shared with everyone, as in Neutron
            got = api.get(f"/v2.0/{path}/{oid}", project="p3")
            assert got.status_int == 200, (otype, got.status, got.text[:300])
            assert got.data[key]["shared"] is True
            wild = api.get(f"/v2.0/rbac-policies?object_id={oid}&target_tenant=*",
                           admin=True, status=200).data["rbac_policies"]
            assert [(p["action"], p["project_id"]) for p in wild] == [
                ("access_as_shared", "owner")]
    finally:
        api.db.dispose()


# ------------------------------------------------------------------ F3
def test_db_manage_downgrade_on_sqlite_keeps_the_subnets_children(tmp_path):
    """quantum-ovs-db-manage offers ``downgrade``.  On SQLite the server's
    engine turns ``PRAGMA foreign_keys`` on (db/session.py), and
    migration.downgrade runs on it; a batch drop_column recreates the
    table (CREATE _alembic_tmp, copy, DROP TABLE, RENAME), and the DROP
    TABLE is an implicit DELETE that fires ON DELETE CASCADE.  Downgrading
    0010 (subnets.subnetpool_id) so silently deletes every subnet's
    allocation pools, DNS servers, host routes and free ranges; with a
    port on a subnet it fails instead (FOREIGN KEY constraint failed on
    DROP TABLE subnets, ipallocations), and 0009 fails on DROP TABLE
    networks as soon as a network has a port: no populated SQLite database
    goes below 0010.  Alembic's batch documentation has foreign keys turned
    off around such a rebuild.  (Neutron does not
    offer downgrade at all: neutron/db/migration/cli.py:no_downgrade.)"""
    url = f"sqlite:///{tmp_path / 'qovs.sqlite'}"
    api = _app(url)
    try:
        net = api.network()
        api.subnet(net["id"], "10.0.0.0/24", dns_nameservers=["192.0.2.53"],
                   host_routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.0.9"}])
    finally:
        api.db.dispose()
    out = subprocess.run([sys.executable, "-m", "quantum_ovs.cmd.db_manage",
                          "--database-connection", url, "downgrade",
                          "0009_dns_extra_dhcp_opts"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                      for t in ("subnets", "allocation_pools", "dns_nameservers",
                                "subnet_routes", "ip_availability_ranges")}
    finally:
        engine.dispose()
    assert counts == {"subnets": 1, "allocation_pools": 1, "dns_nameservers": 1,
                      "subnet_routes": 1, "ip_availability_ranges": 1}


# ------------------------------------------------------------------ F4
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_network_made_before_0002_gets_a_tenant_segment(db_url):
    """0002_extensions brings the provider extension (network_segments,
    segment_allocations) but gives the networks of 0001 no segment: at
    head they show provider:network_type null and their host views say
    ``local`` (db/host_view.py: ``r.network_type or "local"``), so their
    ports on two hypervisors are never connected, while a network made
    after the upgrade gets a tenant segment ([ml2] tenant_network_types,
    vxlan).  In Neutron every network has its segment (ML2's
    _create_network_db / type_manager.create_network_segments)."""
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0001_initial")
        with engine.begin() as conn:
            _insert(conn, "networks", _std(ID["n-old"], "p1", name="old", admin_state_up=True,
                                           status="ACTIVE", shared=False, mtu=1500,
                                           port_security_enabled=True))
        migration.upgrade(engine)
    finally:
        engine.dispose()
    api = _app(db_url)
    try:
        new = api.network()
        new = api.get(f"/v2.0/networks/{new['id']}", admin=True, status=200).data["network"]
        old = api.get(f"/v2.0/networks/{ID['n-old']}", admin=True, status=200).data["network"]
        assert new["provider:network_type"] == "vxlan"
        assert old["provider:network_type"] == new["provider:network_type"], old
        assert old["provider:segmentation_id"] is not None
    finally:
        api.db.dispose()


# ------------------------------------------------------------------ F5
STARTUP_MIGRATION = """
import sys
import time
from quantum_ovs import config
from quantum_ovs.db import migration
from quantum_ovs.service import make_database
conf = config.make_conf([])
conf.set_override("connection", sys.argv[1], group="database")
conf.set_override("statement_timeout", 0, group="database")  # (no timeout: the race alone)
db = make_database(conf)
migration.upgrade(db.engine)  # quantum-ovs-server's and quantum-ovs-agent-api's main()
db.dispose()
"""


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_starting_on_an_older_schema_both_start(db_url):
    """quantum-ovs-server, quantum-ovs-agent-api and quantum-ovs-agent-
    credential each run migration.upgrade when they start
    ([database] auto_migrate, on by default), and the README has any number
    of server processes share one PostgreSQL database.  Nothing serializes
    those upgrades: two processes started together on a database at an
    older revision both read the same alembic_version and both run its
    migrations; the second's CREATE TABLE waits for the first's and then
    fails (relation already exists / duplicate key in pg_type), and that
    process exits at start-up.  Here a transaction holds alembic_version
    until both have reached it, so that they start the upgrade together,
    as two services started by one package upgrade would."""
    engine = sa.create_engine(db_url)
    procs = []
    try:
        migration.upgrade(engine, "0010_subnetpools")
        with engine.connect() as holder, engine.connect() as watcher:
            tx = holder.begin()
            holder.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            procs = [subprocess.Popen([sys.executable, "-c", STARTUP_MIGRATION, db_url],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2)]
            me = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    f"AND datname = current_database() AND pid <> {me}").scalar()
                watcher.rollback()  # (a transaction sees one snapshot of the activity)
                if waiting >= 2 or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.05)
            assert waiting >= 2, [p.communicate()[1][-2000:] for p in procs]
            tx.commit()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        engine.dispose()
    errors = [[x[:200] for x in err.splitlines() if x.startswith(("oslo_db", "sqlalchemy"))]
              for p, (_, err) in zip(procs, outs) if p.returncode != 0]
    assert errors == []
    engine = sa.create_engine(db_url)
    try:
        head = ScriptDirectory.from_config(migration.alembic_config(engine.url)).get_current_head()
        assert migration.current(engine) == head
    finally:
        engine.dispose()


def test_setting_the_same_gateway_again_gives_a_missing_redirect_key(db_url):
    """(Added with the fix.)  Below 0020, which gives them one, a router
    whose gateway was set before 0008 has no redirect key; setting the
    same gateway again allocates it (l3.py), so a database upgraded only
    part of the way is mended through the API as well."""
    engine = sa.create_engine(db_url)
    try:
        migration.upgrade(engine, "0007_routers")
        with engine.begin() as conn:
            _router_at_0007(conn)
        migration.upgrade(engine, "0019_rbac_blank_targets")
        with engine.begin() as conn:  # what the code at 0019 runs on: the schema of head
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :h"), {
                "h": ScriptDirectory.from_config(
                    migration.alembic_config(engine.url)).get_current_head()})
    finally:
        engine.dispose()
    api = _app(db_url, service_plugins=["router"])
    try:
        register(api, "gw-1", "192.0.2.11", gateway=True)
        register(api, "hv-a", "192.0.2.1")
        api.put(f"/v2.0/ports/{ID['vm']}", {"port": {"binding:host_id": "hv-a"}}, admin=True,
                status=200)
        (router,) = wire.view_from_dict(state(api, "hv-a")["view"]).routers
        assert not router.gateway.redirect_key
        api.put(f"/v2.0/routers/{ID['r1']}", {"router": {"external_gateway_info": {
            "network_id": ID["ext"]}}}, admin=True, status=200)
        (router,) = wire.view_from_dict(state(api, "hv-a")["view"]).routers
        assert router.gateway.redirect_key > 0, router.gateway
    finally:
        api.db.dispose()
