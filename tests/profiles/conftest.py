"""Fixtures of the image profiling tests: the console fixtures of tests/console (`db_url` over
SQLite and PostgreSQL, `database`, `clock`, `settings`, `app`, `client`, `token_for`,
`headers_for`), and `group_token`: the token of a fresh enforcer group "prod"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

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
from tidegate.core.roles import Role


@pytest.fixture
def group_token(request: pytest.FixtureRequest) -> str:
    # By name: parameters called `client` would shadow the imports that register the fixtures.
    test_client: TestClient = request.getfixturevalue("client")
    headers: Callable[[Role], dict[str, str]] = request.getfixturevalue("headers_for")
    answer = test_client.post(
        "/api/v1/enforcer-groups", json={"name": "prod"}, headers=headers(Role.ADMINISTRATOR)
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token
