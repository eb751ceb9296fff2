"""Users API: administrators only; every change audited; the last administrator is kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.core.roles import Role
from tidegate.services import users
from tidegate.store.auth_tables import UserRow
from tidegate.store.db import ConflictError, Database

Headers = Callable[[Role], dict[str, str]]
PASSWORD = "a-good-long-password"
REFUSED = [r for r in Role if r is not Role.ADMINISTRATOR]


def _create(client: TestClient, headers: Headers, **body: Any) -> Any:
    body = {"username": "bob", "password": PASSWORD, "role": "auditor", **body}
    return client.post("/api/v1/users", json=body, headers=headers(Role.ADMINISTRATOR))


def _admin_events(client: TestClient, headers: Headers) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/events?category=admin", headers=headers(Role.ADMINISTRATOR))
    return [e for e in answer.json()["items"] if e["action"].startswith("user.")]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "eve", "password": PASSWORD, "role": "auditor"}),
        ("GET", "/api/v1/users/{id}", None),
        ("PATCH", "/api/v1/users/{id}", {"role": "ci"}),
        ("DELETE", "/api/v1/users/{id}", None),
    ],
)
def test_only_administrators_manage_users(
    client: TestClient, headers_for: Headers, method: str, path: str, body: Any
) -> None:
    user_id = _create(client, headers_for).json()["id"]
    url = path.format(id=user_id)
    for role in REFUSED:
        answer = client.request(method, url, json=body, headers=headers_for(role))
        assert answer.status_code == 403, role
        assert answer.json()["error"]["code"] == "forbidden"
        assert "permission users:admin required" in answer.json()["error"]["message"]
    assert client.request(method, url, json=body).status_code == 401
    allowed = client.request(method, url, json=body, headers=headers_for(Role.ADMINISTRATOR))
    assert allowed.status_code in (200, 201, 204)


def test_user_lifecycle_is_audited(client: TestClient, headers_for: Headers) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    created = _create(client, headers_for)
    assert created.status_code == 201
    user = created.json()
    assert "password" not in user
    assert "password_hash" not in user
    assert user["role"] == "auditor"
    assert [u["username"] for u in client.get("/api/v1/users", headers=admin).json()] == ["bob"]
    changed = client.patch(
        f"/api/v1/users/{user['id']}", json={"role": "ci", "disabled": True}, headers=admin
    )
    assert changed.json()["role"] == "ci"
    assert changed.json()["disabled"] is True
    assert client.delete(f"/api/v1/users/{user['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/users/{user['id']}", headers=admin).status_code == 404
    events = _admin_events(client, headers_for)
    assert [e["action"] for e in events] == ["user.delete", "user.update", "user.create"]
    assert {e["actor"] for e in events} == {"token:test-administrator"}
    assert events[1]["data"]["changes"] == ["role auditor -> ci", "disabled"]


def test_password_change_lets_the_new_password_in(client: TestClient, headers_for: Headers) -> None:
    user_id = _create(client, headers_for).json()["id"]
    new = "another-long-password"
    patched = client.patch(
        f"/api/v1/users/{user_id}", json={"password": new}, headers=headers_for(Role.ADMINISTRATOR)
    )
    assert patched.status_code == 200
    login = {"username": "bob", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=login).status_code == 401
    login["password"] = new
    assert client.post("/api/v1/auth/login", json=login).status_code == 200


def test_duplicate_username_is_409(client: TestClient, headers_for: Headers) -> None:
    assert _create(client, headers_for).status_code == 201
    again = _create(client, headers_for)
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "conflict", "message": "user 'bob' already exists"}


@pytest.mark.parametrize(
    ("change", "verb"),
    [
        ({"role": "auditor"}, "change the role of"),
        ({"disabled": True}, "disable"),
        (None, "delete"),
    ],
)
def test_the_last_enabled_administrator_is_kept(
    client: TestClient, headers_for: Headers, change: dict[str, Any] | None, verb: str
) -> None:
    admin = headers_for(Role.ADMINISTRATOR)
    root = _create(client, headers_for, username="root", role="administrator").json()["id"]
    url = f"/api/v1/users/{root}"
    answer = (
        client.delete(url, headers=admin)
        if change is None
        else client.patch(url, json=change, headers=admin)
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["message"] == (
        f"cannot {verb} 'root': it is the last enabled administrator"
    )
    # With a second administrator, the first may go.
    _create(client, headers_for, username="root2", role="administrator")
    answer = (
        client.delete(url, headers=admin)
        if change is None
        else client.patch(url, json=change, headers=admin)
    )
    assert answer.status_code in (200, 204)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "Bob!", "password": PASSWORD, "role": "auditor"}, "username"),
        ({"username": "bob", "password": "short", "role": "auditor"}, "password"),
        ({"username": "bob", "password": PASSWORD, "role": "root"}, "role"),
        ({"username": "bob", "password": PASSWORD}, "role"),
        ({"username": "bob", "password": PASSWORD, "role": "ci", "admin": True}, "admin"),
    ],
)
def test_bad_user_bodies_are_422_naming_the_field(
    client: TestClient, headers_for: Headers, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/api/v1/users", json=body, headers=headers_for(Role.ADMINISTRATOR))
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"role": "root"}, "role"), ({"password": "short"}, "password"), ({"name": "x"}, "name")],
)
def test_bad_user_updates_are_422_naming_the_field(
    client: TestClient, headers_for: Headers, body: dict[str, Any], field: str
) -> None:
    user_id = _create(client, headers_for).json()["id"]
    answer = client.patch(
        f"/api/v1/users/{user_id}", json=body, headers=headers_for(Role.ADMINISTRATOR)
    )
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", field]]


def test_unknown_user_is_404(client: TestClient, headers_for: Headers) -> None:
    answer = client.patch(
        "/api/v1/users/nobody", json={"role": "ci"}, headers=headers_for(Role.ADMINISTRATOR)
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "user 'nobody': no such user"


def test_a_uniqueness_race_lost_at_commit_is_a_conflict(database: Database) -> None:
    """Two writers passing the duplicate check at once: the loser gets ConflictError, not a 500."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = {"password_hash": "x", "role": "auditor", "created_at": now, "updated_at": now}
    with database.session() as session:
        session.add(UserRow(id="a", username="carol", **row))
    with pytest.raises(ConflictError, match="conflicting change"), database.session() as session:
        session.add(UserRow(id="b", username="carol", **row))
    with database.session() as session:
        assert [u.id for u in users.list_users(session)] == ["a"]
