"""The networking REST API as a module-level WSGI ``application``, for an
application server (uWSGI, mod_wsgi, gunicorn), as Neutron's
``neutron.wsgi.api:application``; see etc/quantum-ovs-api-uwsgi.ini.

Configuration: the files ``QUANTUM_OVS_CONFIG_FILES`` (or
``OS_QUANTUM_OVS_CONFIG_FILES``) names, separated by ``;`` or ``,``, and
the directory ``QUANTUM_OVS_CONFIG_DIR`` (or ``OS_QUANTUM_OVS_CONFIG_DIR``)
names; else /etc/quantum-ovs/quantum-ovs.conf when it exists.

The application is built when the module is imported, in the process
that serves it (uWSGI with ``lazy-apps``: each worker opens its own
database connections; uWSGI reads ``application`` from the module's
namespace, so it is made at import).  The schema is not migrated here (several
workers would race): run ``quantum-ovs-db-manage upgrade`` first.
``[DEFAULT] bind_host/bind_port/api_workers`` and the connection caps are
quantum-ovs-server's; the application server has its own.

The agent API (``/agent-api/``, one long poll parked per agent) is
served too, but each parked poll holds a worker (or thread) for up to
``[agent_api] max_wait``: point the agents at quantum-ovs-server (green
threads) or at the standalone agent API server instead.
"""

import os
import re

from quantum_ovs import config, log, service

DEFAULT_CONFIG_FILES = ("/etc/quantum-ovs/quantum-ovs.conf",)
FILES_ENV = ("QUANTUM_OVS_CONFIG_FILES", "OS_QUANTUM_OVS_CONFIG_FILES")
DIR_ENV = ("QUANTUM_OVS_CONFIG_DIR", "OS_QUANTUM_OVS_CONFIG_DIR")


def _env(names, environ):
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def config_args(environ=None):
    """The command-line arguments the environment stands for."""
    environ = os.environ if environ is None else environ
    files = _env(FILES_ENV, environ)
    paths = [p.strip() for p in re.split(r"[;,]", files) if p.strip()] if files else \
        [p for p in DEFAULT_CONFIG_FILES if os.path.exists(p)]
    args = [a for p in paths for a in ("--config-file", p)]
    conf_dir = _env(DIR_ENV, environ)
    if conf_dir:
        args += ["--config-dir", conf_dir]
    return args


def init_application(environ=None):
    """The WSGI app built from the configuration the environment names."""
    conf = config.make_conf(config_args(environ))
    log.setup(conf, "quantum-ovs-api")
    _db, _plugin, app = service.build(conf, migrate=False)
    return app


application = init_application()
