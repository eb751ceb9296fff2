"""API tokens: created by administrators, shown once, stored hashed, revocable, expiring."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from helpers.clock import FakeClock
from tidegate.core.roles import Role
from tidegate.store.auth_tables import ApiTokenRow
from tidegate.store.db import Database

Headers = Callable[[Role], dict[str, str]]
REFUSED = [r for r in Role if r is not Role.ADMINISTRATOR]


def _create(client: TestClient, headers: Headers, **body: Any) -> Any:
    body = {"name": "pipeline", "role": "ci", **body}
    return client.post("/api/v1/tokens", json=body, headers=headers(Role.ADMINISTRATOR))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "x", "role": "scanner"}),
        ("GET", "/api/v1/tokens/{id}", None),
        ("DELETE", "/api/v1/tokens/{id}", None),
    ],
)
def test_only_administrators_manage_tokens(
    client: TestClient, headers_for: Headers, method: str, path: str, body: Any
) -> None:
    url = path.format(id=_create(client, headers_for).json()["id"])
    for role in REFUSED:
        answer = client.request(method, url, json=body, headers=headers_for(role))
        assert answer.status_code == 403, role
        assert "permission users:admin required" in answer.json()["error"]["message"]
    assert client.request(method, url, json=body).status_code == 401
    allowed = client.request(method, url, json=body, headers=headers_for(Role.ADMINISTRATOR))
    assert allowed.status_code in (200, 201, 204)


def test_a_token_is_shown_once_stored_hashed_and_speaks_for_its_role(
    client: TestClient, headers_for: Headers, database: Database
) -> None:
    created = _create(client, headers_for, role="auditor").json()
    secret = created["token"]
    me = client.get("/api/v1/auth/me", headers=_bearer(secret)).json()
    assert me == {"name": "token:pipeline", "role": "auditor", "permissions": me["permissions"]}
    listed = client.get("/api/v1/tokens", headers=headers_for(Role.ADMINISTRATOR)).json()
    mine = [t for t in listed if t["id"] == created["id"]]
    assert len(mine) == 1
    assert "token" not in mine[0]
    assert mine[0]["last_used_at"] is not None
    assert mine[0]["created_by"] == "token:test-administrator"
    with database.session() as session:
        row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.id == created["id"])).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {row.token_hash, row.name, row.id}


def test_a_revoked_token_is_refused_and_the_revocation_audited(
    client: TestClient, headers_for: Headers
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    created = _create(client, headers_for).json()
    assert client.get("/api/v1/auth/me", headers=_bearer(created["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/auth/me", headers=_bearer(created["token"])).status_code == 401
    shown = client.get(f"/api/v1/tokens/{created['id']}", headers=admin).json()
    assert shown["revoked_at"] is not None
    events = client.get("/api/v1/events?category=admin", headers=admin).json()["items"]
    actions = [e["action"] for e in events if e["data"].get("token_id") == created["id"]]
    assert actions == ["token.revoke", "token.create"]


def test_a_token_expires_on_time(
    client: TestClient, headers_for: Headers, clock: FakeClock
) -> None:
    expires = clock() + timedelta(hours=1)
    secret = _create(client, headers_for, expires_at=expires.isoformat()).json()["token"]
    clock.advance(timedelta(minutes=59))
    assert client.get("/api/v1/auth/me", headers=_bearer(secret)).status_code == 200
    clock.advance(timedelta(minutes=1))
    assert client.get("/api/v1/auth/me", headers=_bearer(secret)).status_code == 401


def test_an_expiry_in_the_past_is_refused(
    client: TestClient, headers_for: Headers, clock: FakeClock
) -> None:
    answer = _create(client, headers_for, expires_at=(clock() - timedelta(seconds=1)).isoformat())
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("expires_at:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "role": "ci"}, "name"),
        ({"name": "a b", "role": "ci"}, "name"),
        ({"name": "x", "role": "god"}, "role"),
        ({"name": "x"}, "role"),
        ({"name": "x", "role": "ci", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "role": "ci", "secret": "mine"}, "secret"),
    ],
)
def test_bad_token_bodies_are_422_naming_the_field(
    client: TestClient, headers_for: Headers, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/api/v1/tokens", json=body, headers=headers_for(Role.ADMINISTRATOR))
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", field]]


def test_unknown_token_is_404(client: TestClient, headers_for: Headers) -> None:
    answer = client.delete("/api/v1/tokens/nothing", headers=headers_for(Role.ADMINISTRATOR))
    assert answer.status_code == 404
