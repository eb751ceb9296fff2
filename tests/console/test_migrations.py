"""Migrations: head equals the ORM metadata, and every older revision upgrades in place, data kept.

Generic over the revision list, so each new revision is checked by the same tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from tidegate.store.db import Database, DatabaseUnavailableError, metadata


def _revisions(db: Database) -> list[str]:
    """Revision ids from the first to head."""
    script = ScriptDirectory.from_config(db._alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _diffs(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata()))


@pytest.fixture
def empty(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()


def test_upgrade_head_on_an_empty_database_equals_the_orm_metadata(empty: Database) -> None:
    empty.migrate()
    assert _diffs(empty) == []
    assert empty.current_revisions() == empty.head_revisions()
    assert {"users", "api_tokens", "events", "leases"} <= set(
        inspect(empty.engine).get_table_names()
    )


def test_migrating_twice_changes_nothing(empty: Database) -> None:
    empty.migrate()
    empty.migrate()
    assert _diffs(empty) == []


def test_each_revision_upgrades_in_place_keeping_the_data(empty: Database) -> None:
    revisions = _revisions(empty)
    assert revisions[0] == "0001"
    empty.migrate(revisions[0])
    assert empty.current_revisions() == {"0001"}
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with empty.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, password_hash, role, disabled, created_at,"
                " updated_at) VALUES ('u1', 'alice', 'x', 'auditor', false, :t, :t)"
            ),
            {"t": when},
        )
        connection.execute(
            text(
                "INSERT INTO events (ts, category, level, action, message, data)"
                " VALUES (:t, 'admin', 'info', 'user.create', 'made alice', '{}')"
            ),
            {"t": when},
        )
    for revision in revisions[1:]:
        empty.migrate(revision)
        assert empty.current_revisions() == {revision}
    assert _diffs(empty) == []
    with empty.engine.connect() as connection:
        assert connection.execute(text("SELECT username FROM users")).scalars().all() == ["alice"]
        assert connection.execute(text("SELECT action FROM events")).scalars().all() == [
            "user.create"
        ]


def test_readiness_names_the_revision_gap(empty: Database) -> None:
    with pytest.raises(DatabaseUnavailableError, match="revision none"):
        empty.check_ready()
    empty.migrate("0001")
    if empty.head_revisions() != {"0001"}:
        with pytest.raises(DatabaseUnavailableError, match=r"revision \['0001'\]"):
            empty.check_ready()
    empty.migrate()
    empty.check_ready()
