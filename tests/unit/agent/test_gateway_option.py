"""``[agent] gateway``: read from the configuration, reported to the server
in the agent's configurations (what makes the server assign routers'
gateways to the host)."""

import types

from agent import config
from agent.daemon import Agent
from agent.settings import Settings


def _conf(tmp_path, text):
    path = tmp_path / "agent.ini"
    path.write_text(text)
    return config.make_conf(["--config-file", str(path)])


def test_gateway_defaults_to_false_and_is_read_from_the_agent_section(tmp_path):
    assert Settings.from_conf(_conf(tmp_path, "[agent]\nhost = h1\n")).gateway is False
    on = Settings.from_conf(_conf(tmp_path, "[agent]\nhost = h1\ngateway = true\n"))
    assert on.gateway is True


def test_the_report_carries_it():
    for flag in (False, True):
        s = Settings(host="h1", server_url="http://x", ovsdb="unix:/x", gateway=flag)
        fake = types.SimpleNamespace(s=s, vifs={}, channel=None)
        assert Agent._configurations(fake)["gateway"] is flag
