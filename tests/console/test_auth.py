"""Login, logout, "who am I", and the 401 answers of every kind of bad credential."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from helpers.clock import FakeClock
from tidegate.core.roles import ROLE_PERMISSIONS, Role
from tidegate.services.users import create_user, update_user
from tidegate.store.db import Database

Headers = Callable[[Role], dict[str, str]]
PASSWORD = "correct horse battery"


@pytest.fixture
def alice(database: Database, clock: FakeClock) -> str:
    with database.session() as session:
        user = create_user(
            session,
            username="alice",
            password=PASSWORD,
            role=Role.SECURITY_ANALYST,
            now=clock(),
            actor="tests",
        )
    return user.id


def _events(client: TestClient, headers: Headers, category: str) -> list[dict[str, object]]:
    answer = client.get(
        "/api/v1/events", params={"category": category}, headers=headers(Role.AUDITOR)
    )
    assert answer.status_code == 200
    items: list[dict[str, object]] = answer.json()["items"]
    return items


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_gives_an_expiring_token_of_the_users_role(
    client: TestClient, alice: str, clock: FakeClock, headers_for: Headers
) -> None:
    answer = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["role"] == "security-analyst"
    me = client.get("/api/v1/auth/me", headers=_bearer(body["access_token"])).json()
    assert me["name"] == "alice"
    assert set(me["permissions"]) == set(ROLE_PERMISSIONS[Role.SECURITY_ANALYST])
    [event] = [e for e in _events(client, headers_for, "auth") if e["action"] == "login.success"]
    assert event["actor"] == "alice"
    clock.advance(timedelta(hours=12))
    expired = client.get("/api/v1/auth/me", headers=_bearer(body["access_token"]))
    assert expired.status_code == 401


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("alice", "wrong password!", "wrong password"),
        ("mallory", PASSWORD, "unknown user"),
    ],
)
def test_failed_logins_are_401_and_audited_with_their_reason(
    client: TestClient, alice: str, headers_for: Headers, username: str, password: str, reason: str
) -> None:
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"] == {
        "code": "unauthorized",
        "message": "invalid username or password",  # the reason is never told to the client
    }
    [event] = _events(client, headers_for, "auth")
    assert event["action"] == "login.failure"
    assert event["level"] == "warning"
    assert event["data"]["reason"] == reason  # type: ignore[index]


def test_a_disabled_user_cannot_log_in_and_loses_its_tokens(
    client: TestClient, alice: str, database: Database, clock: FakeClock
) -> None:
    login = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    token = login.json()["access_token"]
    with database.session() as session:
        update_user(session, user_id=alice, now=clock(), actor="tests", disabled=True)
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 401
    again = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert again.status_code == 401


def test_a_login_token_follows_the_users_current_role(
    client: TestClient, alice: str, database: Database, clock: FakeClock
) -> None:
    token = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    ).json()["access_token"]
    with database.session() as session:
        update_user(session, user_id=alice, now=clock(), actor="tests", role=Role.AUDITOR)
    # A demotion ends the login: the old token does not keep the old role.
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 401
    token = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    ).json()["access_token"]
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).json()["role"] == "auditor"


def test_logout_revokes_the_token_and_is_audited(
    client: TestClient, alice: str, headers_for: Headers
) -> None:
    token = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    ).json()["access_token"]
    assert client.post("/api/v1/auth/logout", headers=_bearer(token)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 401
    actions = [e["action"] for e in _events(client, headers_for, "auth")]
    assert actions == ["logout", "login.success"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "Bearer tg_not-a-real-token"},
        {"Authorization": "Bearer something-else"},
    ],
    ids=["none", "empty-bearer", "basic", "unknown-token", "foreign-token"],
)
@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/users", "/api/v1/events"])
def test_missing_or_bad_credentials_are_401_with_a_bearer_challenge(
    client: TestClient, headers: dict[str, str], path: str
) -> None:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "alice"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "alice", "password": PASSWORD, "otp": "1"}, "otp"),
    ],
)
def test_bad_login_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    answer = client.post("/api/v1/auth/login", json=body)
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_may_ask_who_it_is_and_log_out(
    client: TestClient, headers_for: Headers, role: Role
) -> None:
    me = client.get("/api/v1/auth/me", headers=headers_for(role))
    assert me.status_code == 200
    assert me.json()["role"] == role
    assert set(me.json()["permissions"]) == set(ROLE_PERMISSIONS[role])
    assert client.post("/api/v1/auth/logout", headers=headers_for(role)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers_for(role)).status_code == 401
