"""Alembic environment: runs migrations on the connection `Database.migrate` hands over.

Run from the `alembic` command line instead, it connects to `sqlalchemy.url` itself. SQLite
migrations run in batch mode, since SQLite alters tables by copying them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from tidegate.store.db import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


run_migrations_online()
