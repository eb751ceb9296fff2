"""Policies over the API, on both databases: CRUD with versions and history, the default policy,
each role's rights, and bad bodies answered 422 with the field named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]
BODY = {"name": "gate", "controls": {"severity": {"max_severity": "high"}}}


def test_default_policy_out_of_the_box(client: TestClient, headers_for: Headers) -> None:
    [policy] = client.get("/api/v1/policies", headers=headers_for(Role.AUDITOR)).json()
    assert (policy["name"], policy["mode"], policy["enabled"]) == ("default", "audit", True)
    assert policy["controls"]["severity"] == {"max_severity": "high", "only_fixable": True}
    assert policy["explanation"]


def test_crud_versions_history_and_events(client: TestClient, headers_for: Headers) -> None:
    h = headers_for(Role.SECURITY_ANALYST)
    made = client.post("/api/v1/policies", json=BODY, headers=h)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert client.post("/api/v1/policies", json=BODY, headers=h).status_code == 409
    same = client.put(f"/api/v1/policies/{pid}", json=BODY, headers=h)
    assert same.json()["version"] == 1  # nothing changed: no new version
    changed = client.patch(
        "/api/v1/policies/gate", json={"controls": {"block_root": True}}, headers=h
    )
    assert changed.json()["version"] == 2
    assert changed.json()["controls"]["block_root"] is True
    versions = client.get("/api/v1/policies/gate/versions", headers=h).json()
    assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "updated")]
    assert client.delete("/api/v1/policies/gate", headers=h).status_code == 204
    assert client.get(f"/api/v1/policies/{pid}", headers=h).status_code == 404
    events = client.get(
        "/api/v1/events", params={"category": "policy"}, headers=headers_for(Role.AUDITOR)
    ).json()["items"]
    assert [e["action"] for e in events] == ["policy.deleted", "policy.updated", "policy.created"]
    assert all(e["policy"] == "gate" for e in events)


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.ADMINISTRATOR, 200, 201),
        (Role.SECURITY_ANALYST, 200, 201),
        (Role.AUDITOR, 200, 403),
        (Role.CI, 200, 403),
        (Role.SCANNER, 403, 403),
        (Role.ENFORCER, 403, 403),
    ],
)
def test_roles(client: TestClient, headers_for: Headers, role: Role, read: int, write: int) -> None:
    assert client.get("/api/v1/policies", headers=headers_for(role)).status_code == read
    answer = client.post("/api/v1/policies", json=BODY, headers=headers_for(role))
    assert answer.status_code == write
    if write == 403:
        assert "policies:write" in answer.json()["error"]["message"]


def test_no_token_is_401(client: TestClient) -> None:
    answer = client.get("/api/v1/policies")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("controls", "loc"),
    [
        ({"severity": {"max_severity": "apocalyptic"}}, ["controls", "severity", "max_severity"]),
        ({"no_such_control": True}, ["controls", "no_such_control"]),
        ({"score": {"max_score": 11}}, ["controls", "score", "max_score"]),
        (
            {"package_denylist": [{"name": "openssl", "versions": ">=1.0 <<2", "type": "deb"}]},
            ["controls", "package_denylist", 0],
        ),
        (
            {"package_denylist": [{"name": "x", "versions": "<1.0", "type": "cargo"}]},
            ["controls", "package_denylist", 0, "type"],
        ),
        ({"max_image_age_days": -1}, ["controls", "max_image_age_days"]),
    ],
)
def test_bad_bodies_name_the_field(
    client: TestClient, headers_for: Headers, controls: dict[str, Any], loc: list[Any]
) -> None:
    answer = client.post(
        "/api/v1/policies",
        json={"name": "bad", "controls": controls},
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert answer.status_code == 422, answer.text
    locs = [e["loc"][1:] for e in answer.json()["detail"]]
    assert any(found[: len(loc)] == loc for found in locs), locs


def test_bad_mode_and_naive_enforce_after(client: TestClient, headers_for: Headers) -> None:
    h = headers_for(Role.SECURITY_ANALYST)
    answer = client.post("/api/v1/policies", json={"name": "x", "mode": "block"}, headers=h)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "mode"]
    naive = {"name": "x", "enforce_after": "2026-05-01T00:00:00"}
    answer = client.post("/api/v1/policies", json=naive, headers=h)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "enforce_after"]
