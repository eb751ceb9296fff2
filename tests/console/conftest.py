"""Fixtures of the console tests: both databases, the app, a fake clock, and tokens per role.

- `db_url`: parametrized over "sqlite" and "postgresql": the URL of a fresh, EMPTY database
  (SQLite: a file in tmp_path; PostgreSQL: a new database in one throwaway cluster started once
  per session, see tests/helpers/postgres.py, dropped after the test).
- `database`: a `Database` on `db_url`, migrated to head; disposed after the test.
- `clock`: a `FakeClock` (tests/helpers/clock.py): call it for "now", `.advance(timedelta)`,
  `.set(datetime)`.
- `settings`, `app` (`create_app(settings, clock=clock)` on the migrated database), `client`
  (a started `TestClient`).
- `token_for(role) -> str`: a bearer secret of a script token with that role (one per role);
  `headers_for(role) -> {"Authorization": "Bearer ..."}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from helpers import postgres
from helpers.clock import FakeClock
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.services.tokens import issue_token
from tidegate.store.db import Database


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.PostgresCluster]:
    reason = postgres.available()
    if reason is not None:
        pytest.skip(reason)
    cluster = postgres.PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'console.sqlite'}"
        return
    cluster: postgres.PostgresCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(environment="development", data_dir=tmp_path, database_url=database.url)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def token_for(database: Database, clock: FakeClock) -> Callable[[Role], str]:
    issued: dict[Role, str] = {}

    def token(role: Role) -> str:
        if role not in issued:
            with database.session() as session:
                secret = issue_token(
                    session, name=f"test-{role}", role=role, now=clock(), actor="tests"
                ).secret
            issued[role] = secret
        return issued[role]

    return token


@pytest.fixture
def headers_for(token_for: Callable[[Role], str]) -> Callable[[Role], dict[str, str]]:
    def headers(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(role)}"}

    return headers
