"""The operator tools' configuration (quantum_ovs.cmd.tool_config):
``--config-file`` and ``--config-dir`` read in command-line order, no
default database."""

import argparse

import pytest
from oslo_config import cfg

from quantum_ovs.cmd import tool_config


def _args(*argv):
    parser = argparse.ArgumentParser()
    tool_config.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_files_and_directories_are_read_in_command_line_order(tmp_path):
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "50-db.conf").write_text("[database]\nconnection = sqlite:///from-dir\n")
    first = tmp_path / "first.conf"
    first.write_text("[database]\nconnection = sqlite:///from-first\n")
    conf = tool_config.make_conf(_args("--config-file", str(first), "--config-dir", str(confd)),
                                 "quantum-ovs-db-manage")
    assert conf.database.connection == "sqlite:///from-dir"
    conf = tool_config.make_conf(_args("--config-dir", str(confd), "--config-file", str(first)),
                                 "quantum-ovs-db-manage")
    assert conf.database.connection == "sqlite:///from-first"
    conf = tool_config.make_conf(_args("--config-file", str(first), "--database-connection",
                                       "sqlite:///given"), "quantum-ovs-db-manage")
    assert conf.database.connection == "sqlite:///given"


def test_no_database_configured_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(cfg, "find_config_files", lambda *a, **k: [])
    empty = tmp_path / "empty.conf"
    empty.write_text("[DEFAULT]\n")
    with pytest.raises(cfg.Error, match=r"\[database\] connection is not set"):
        tool_config.make_conf(_args("--config-file", str(empty)), "quantum-ovs-db-manage")
