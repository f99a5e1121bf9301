"""Logging as every OpenStack service does it: oslo.log.

The server, the agent and the tools register oslo.log's options on their
ConfigOpts before parsing it (``register_options``: ``--debug``,
``--log-file``, ``--log-dir``, ``use_journal``, ``use_json``,
``log_config_append``, ``default_log_levels``...) and set logging up from
them (``setup``).  A request's lines carry its context (quantum_ovs.context):
``[<global id> req-<id> <user> <project> ...]`` with oslo.log's default
``logging_context_format_string``.
"""

from oslo_log import log as oslo_log

# Library loggers quieter than ours by default, on top of oslo.log's own
# list (keystonemiddleware, stevedore, urllib3, sqlalchemy...); an
# operator's [DEFAULT] default_log_levels replaces the whole list.
LIBRARY_LEVELS = ["os_ken=WARN", "ovs=WARN", "alembic.runtime.migration=INFO",
                  "eventlet.wsgi.server=WARN", "oslo_middleware=WARN"]


def default_log_levels():
    return oslo_log.get_default_log_levels() + [
        lvl for lvl in LIBRARY_LEVELS
        if lvl not in oslo_log.get_default_log_levels()]


def register_options(conf):
    """oslo.log's options (some are command-line ones: call it before the
    ConfigOpts parses its arguments)."""
    oslo_log.register_options(conf)
    oslo_log.set_defaults(default_log_levels=default_log_levels())


def list_opts():
    """oslo.log's options, for the configuration sample."""
    oslo_log.set_defaults(default_log_levels=default_log_levels())
    from oslo_log import _options
    return [("DEFAULT", _options.list_opts()[0][1])]


def setup(conf, program, stderr=False):
    """Logging from ``conf`` for ``program``.  ``stderr``: by default to
    standard error rather than standard output (tools whose output is
    their answer)."""
    if stderr:
        conf.set_default("use_stderr", True)
    oslo_log.setup(conf, program)
