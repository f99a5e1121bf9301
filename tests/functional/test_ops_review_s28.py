"""Operator tools and day-2 operations (review of session 28).

The console scripts run for real, as an operator runs them (subprocesses,
SQLite databases in temporary directories).  Each test fails on the
current code."""

import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from quantum_ovs import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A MariaDB socket nobody listens on: the database is unreachable at once
# (DBConnectionError), as in tests/functional/test_db_errors.py.
UNREACHABLE = "mysql+pymysql://root@localhost/x?unix_socket={}/none.sock&charset=utf8mb4"


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def _run(module, *args, cwd=None, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=_env(**env))


def _tables(path):
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# ------------------------------------------------------------------ F1
@pytest.mark.parametrize("module", ["quantum_ovs.cmd.server", "quantum_ovs.cmd.agent_api"])
def test_server_start_waits_for_an_unreachable_database_before_migrating(tmp_path, module):
    """README ("Scaling out"): ``[database] max_retries``/``retry_interval``
    "are connection retries when the server starts", as oslo.db's (Neutron's
    engine, oslo_db.sqlalchemy.engines.create_engine -> _test_connection,
    retries the first connection max_retries times).  quantum-ovs-server's
    main() runs the start-up migration ([database] auto_migrate, on by
    default) on a fresh engine *before* service.build() calls
    Database.wait_until_reachable: a database that is not up yet when the
    server starts (a reboot, systemd ordering, a failover) kills the server
    on the first attempt, whatever max_retries says.  quantum-ovs-agent-api's
    main() does the same (migration.upgrade before make_server -> build)."""
    conf = tmp_path / "quantum-ovs.conf"
    conf.write_text("[DEFAULT]\nbind_port = 0\n"
                    "[database]\n"
                    f"connection = {UNREACHABLE.format(tmp_path)}\n"
                    "max_retries = 2\nretry_interval = 0\n")
    out = _run(module, "--config-file", str(conf), timeout=60)
    log = out.stdout + out.stderr
    retries = [line for line in log.splitlines() if "database not reachable" in line]
    assert out.returncode != 0
    critical = [line for line in log.splitlines() if " CRITICAL " in line]
    assert len(retries) == 2, critical


# ------------------------------------------------------------------ F2
def test_db_manage_and_agent_credential_accept_config_dir(tmp_path):
    """Every OpenStack tool parses its configuration with oslo.config, so
    ``--config-dir`` works as ``--config-file`` does (neutron-db-manage:
    neutron/db/migration/cli.py:main, CONF(project='neutron')).
    quantum-ovs-server and the agent accept it (oslo.config command line),
    the uWSGI application reads QUANTUM_OVS_CONFIG_DIR, but
    quantum-ovs-db-manage and quantum-ovs-agent-credential parse their
    command line with argparse and know ``--config-file`` only: a
    deployment that keeps ``[database] connection`` in a conf.d directory
    (secrets apart, as kolla and OSA do) cannot run them at all (exit 2,
    "invalid choice")."""
    confd = tmp_path / "quantum-ovs.conf.d"
    confd.mkdir()
    db = tmp_path / "q.sqlite"
    (confd / "50-database.conf").write_text(f"[database]\nconnection = sqlite:///{db}\n")
    out = _run("quantum_ovs.cmd.db_manage", "--config-dir", str(confd), "upgrade", "head",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
    assert "agent_credentials" in _tables(db)
    out = _run("quantum_ovs.cmd.agent_credential", "--config-dir", str(confd),
               "create", "--host", "compute-1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]


# ------------------------------------------------------------------ F3
def test_tools_without_configuration_do_not_act_on_a_made_up_database(
        tmp_path):
    """Without ``--config-file`` the tools read no configuration at all
    (config.make_conf passes default_config_files=[]; the uWSGI app, by
    contrast, reads /etc/quantum-ovs/quantum-ovs.conf by default) and fall
    back to ``[database] connection = sqlite:///quantum-ovs.sqlite``, a path
    relative to the current directory.  ``quantum-ovs-agent-credential
    create --host compute-1`` then creates and migrates a brand-new SQLite
    file wherever the operator stands, prints a token and exits 0: the
    agent given that token is refused (401) by the real server, and
    ``list``/``revoke`` (revoking a leaked token!) likewise act on the wrong
    database and report success.  Neutron's tools find
    /etc/neutron/neutron.conf (oslo.config's default files) and oslo.db's
    ``connection`` has no default, so neutron-db-manage without a
    configuration fails instead of inventing a database.  The README's
    uWSGI row says "Run `quantum-ovs-db-manage upgrade head` first": run
    so, it migrates ./quantum-ovs.sqlite, prints the head revision and exits
    0 while the database the workers use is left unmigrated."""
    home = tmp_path / "home"
    home.mkdir()
    for n, cmd in enumerate((("quantum_ovs.cmd.db_manage", "upgrade", "head"),
                             ("quantum_ovs.cmd.agent_credential", "create", "--host",
                              "compute-1"))):
        cwd = tmp_path / f"somewhere-{n}"
        cwd.mkdir()
        out = _run(*cmd, cwd=cwd, HOME=str(home))
        made = sorted(p.name for p in cwd.iterdir())
        assert out.returncode != 0 and made == [], (cmd[0], out.returncode, made)


# ------------------------------------------------------------------ F4
def test_db_manage_configuration_errors_are_a_clear_error_not_a_traceback(tmp_path):
    """quantum-ovs-db-manage means to answer a configuration error with
    ``error: ...`` and exit status 2 (its ``except cfg.Error``), but the
    configuration is parsed (config.make_conf) and its values read
    (service.make_database) before that ``try``: a missing or misspelt
    ``--config-file``, or a value of the wrong type, ends in a raw Python
    traceback and exit status 1 (the oslo_config exception is the last
    line of ~20)."""
    missing = tmp_path / "nope.conf"
    out = _run("quantum_ovs.cmd.db_manage", "--config-file", str(missing), "current",
               cwd=tmp_path)
    assert (out.returncode, "Traceback" in out.stderr) == (2, False), \
        out.stderr.strip().splitlines()[-1:]
    bad = tmp_path / "bad.conf"
    bad.write_text(f"[database]\nconnection = sqlite:///{tmp_path}/x.sqlite\n"
                   "max_pool_size = ten\n")
    out = _run("quantum_ovs.cmd.db_manage", "--config-file", str(bad), "current",
               cwd=tmp_path)
    assert (out.returncode, "Traceback" in out.stderr) == (2, False), \
        out.stderr.strip().splitlines()[-1:]


# ------------------------------------------------------------------ F5
def test_agent_reads_host_from_default_section_as_neutron_agents_do(tmp_path):
    """Neutron's agents take their host name from ``[DEFAULT] host``
    (neutron/conf/common.py core_opts: HostAddressOpt('host'); the OVS agent
    uses self.conf.host), the value nova's [DEFAULT] host puts in
    binding:host_id.  agent/config.py says it keeps "Neutron's names where
    they exist" but registers ``host`` in ``[agent]`` with no deprecated
    group: an agent configuration carried over from Neutron with
    ``[DEFAULT] host = compute-1.example`` is ignored without a word and
    the agent registers as the machine's hostname (a per-host credential
    for compute-1.example is then refused with 403; with the shared token
    the ports nova binds to compute-1.example are never wired)."""
    ini = tmp_path / "agent.ini"
    ini.write_text("[DEFAULT]\nhost = compute-1.example\n")
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "from agent import config\n"
         "from agent.settings import Settings\n"
         "print(Settings.from_conf(config.make_conf(['--config-file', sys.argv[1]])).host)\n",
         str(ini)], capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "compute-1.example"


# ------------------------------------------------------------------ F6
def test_agent_credential_refuses_host_names_no_agent_can_use(tmp_path):
    """``create --host`` accepts any 1-255 characters.  A host name with a
    ``/`` can never poll (its agent's GET /agent-api/v1/hosts/a/b/state
    does not match the route), and one with blanks around it can never be
    an agent's host (oslo.config strips option values): the tool prints a
    token and exits 0 for a credential that cannot work, and the agent is
    refused later with nothing pointing at the typo.  Neutron validates
    the host name where it is set (neutron/conf/common.py: HostAddressOpt
    'host': a hostname or an address)."""
    db = tmp_path / "q.sqlite"
    for host in ("compute/1", " compute-1", "compute-1\n"):
        out = _run("quantum_ovs.cmd.agent_credential", "--database-connection",
                   f"sqlite:///{db}", "create", "--host", host, cwd=tmp_path)
        assert out.returncode == 2, (host, out.returncode, out.stdout)


# ------------------------------------------------------------------ F7
def test_shipped_example_configuration_names_only_real_options():
    """etc/quantum-ovs.conf (the example the README's commands use) sets
    ``[DEFAULT] policy_file = policy.json``: no such option exists (the
    policy file is ``[oslo_policy] policy_file``, policy.yaml by default,
    as the README says), so oslo.config ignores it silently and an operator
    who edits policy.json next to it changes nothing."""
    registered = {}
    for group, opts in config.list_opts():
        for o in opts:
            registered.setdefault(group, set()).add(o.dest)
    unknown = []
    section = None
    with open(os.path.join(ROOT, "etc", "quantum-ovs.conf")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif line and not line.startswith("#") and "=" in line:
                name = line.split("=", 1)[0].strip()
                if name not in registered.get(section, set()):
                    unknown.append(f"[{section}] {name}")
    assert unknown == []


# ------------------------------------------------------------------ F8
@pytest.mark.postgresql
def test_agent_credential_long_description_is_refused_cleanly_on_postgresql(postgres_server):
    """``create --description`` has no length check (``--host`` has one:
    1-255 characters) while the column is String(255): on SQLite a longer
    description is stored, on PostgreSQL (and MySQL's TRADITIONAL mode)
    the INSERT fails and the tool dies with a DataError traceback (exit 1)
    as its only message -- the same command works or crashes depending on
    the backend."""
    name = "t" + uuid.uuid4().hex[:12]
    url = postgres_server.create_database(name)
    try:
        out = _run("quantum_ovs.cmd.agent_credential", "--database-connection", url,
                   "create", "--host", "compute-1", "--description", "d" * 300)
    finally:
        postgres_server.drop_database(name)
    critical = [line for line in out.stderr.splitlines() if " CRITICAL " in line]
    assert "Traceback" not in out.stderr and out.returncode in (0, 2), \
        (out.returncode, critical)
