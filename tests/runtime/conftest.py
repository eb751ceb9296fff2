"""Fixtures of the runtime tests: the console fixtures of tests/console (`db_url` over SQLite and
PostgreSQL, `database`, `clock`, `settings`, `app`, `client`, `token_for`, `headers_for`)."""

from __future__ import annotations

from console.conftest import (  # noqa: F401  (fixtures reused by name)
    app,
    client,
    clock,
    database,
    db_url,
    headers_for,
    pg_cluster,
    settings,
    token_for,
)
