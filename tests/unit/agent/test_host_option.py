"""The agent's host name: ``[agent] host``, else Neutron's ``[DEFAULT]
host``, else the machine's hostname."""

import socket

from agent import config
from agent.settings import Settings


def _host(tmp_path, text):
    path = tmp_path / "agent.ini"
    path.write_text(text)
    return Settings.from_conf(config.make_conf(["--config-file", str(path)])).host


def test_agent_section_wins_over_neutrons_default_section(tmp_path):
    assert _host(tmp_path, "[DEFAULT]\nhost = neutron-name\n"
                           "[agent]\nhost = ours\n") == "ours"
    assert _host(tmp_path, "[DEFAULT]\nhost = neutron-name\n") == "neutron-name"
    assert _host(tmp_path, "") == socket.gethostname()
