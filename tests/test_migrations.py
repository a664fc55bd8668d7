"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pledges.extensions import db

from .conftest import BOTH_BACKENDS

TABLES = {
    "campaigns",
    "neighborhoods",
    "pledges",
    "neighborhood_counts",
    "hourly_counts",
    "api_keys",
    "audit_log",
    "shared_places",
    "web_sessions",
    "alembic_version",
}


@BOTH_BACKENDS
def test_flask_db_upgrade_on_an_empty_database_matches_the_models(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output

    with empty_app.app_context(), db.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == TABLES
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


@BOTH_BACKENDS
def test_upgrade_twice_is_harmless(empty_app):
    runner = empty_app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
