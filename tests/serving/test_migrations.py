"""The Alembic migrations build exactly the tables the ORM describes, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from medcode.serving.db import Database, migrate
from medcode.serving.orm import Base


def test_migrations_match_the_models_and_run_twice(db_url: str) -> None:
    database = Database.connect(db_url)
    try:
        migrate(database.engine)  # a second run is a no-op
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() == "0005"
        tables = set(inspect(database.engine).get_table_names())
        assert {"api_keys", "encounters", "encounter_revisions", "review_items", "decisions"} <= tables
        assert {"final_codes", "audit_events"} <= tables
    finally:
        database.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    database = Database.connect(sqlite_url)
    try:
        with database.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        database.dispose()
