"""Schema migrations with alembic, driven from code (no alembic.ini)."""

import os

from alembic import command
from alembic.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(url):
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") \
        else str(url)
    cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return cfg


def upgrade(engine, revision="head"):
    cfg = alembic_config(engine.url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine, revision):
    cfg = alembic_config(engine.url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(engine):
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
