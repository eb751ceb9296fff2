"""Acknowledgements over the API, on both databases: create, filters, revoke, requester rules,
roles, expiry on time (once), and bad bodies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inventory_data import CRITICAL, digest

from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]


def _ack(**extra: Any) -> dict[str, Any]:
    return {"vulnerability": CRITICAL, "justification": "mitigated by config", **extra}


def test_create_filter_revoke_expire(client: TestClient, headers_for: Headers, clock: Any) -> None:
    h = headers_for(Role.SECURITY_ANALYST)
    soon = (clock() + timedelta(days=1)).isoformat()
    a = client.post("/api/v1/acknowledgements", json=_ack(expires=soon), headers=h).json()
    b = client.post(
        "/api/v1/acknowledgements",
        json=_ack(vulnerability="CVE-2024-0727", scope="image", scope_value=digest(1)),
        headers=h,
    ).json()
    assert (a["state"], b["state"]) == ("active", "active")

    def ids(**params: Any) -> list[str]:
        found = client.get("/api/v1/acknowledgements", params=params, headers=h).json()
        return sorted(x["id"] for x in found)

    assert ids(vulnerability=CRITICAL) == [a["id"]]
    assert ids(scope="image") == [b["id"]]
    revoked = client.post(f"/api/v1/acknowledgements/{b['id']}/revoke", headers=h)
    assert revoked.json()["state"] == "revoked"
    assert client.post(f"/api/v1/acknowledgements/{b['id']}/revoke", headers=h).status_code == 409
    assert ids(state="revoked") == [b["id"]]
    clock.advance(timedelta(days=1))
    assert ids(state="expired") == [a["id"]]
    assert ids(state="active") == []
    ids(state="expired")  # looked at again: the expiry is recorded once
    events = client.get("/api/v1/events", params={"category": "acknowledgement"}, headers=h).json()[
        "items"
    ]
    actions = [e["action"] for e in events]
    assert actions == [
        "acknowledgement.expired",
        "acknowledgement.revoked",
        "acknowledgement.created",
        "acknowledgement.created",
    ]


def test_requester_only_administrators_name_someone_else(
    client: TestClient, headers_for: Headers
) -> None:
    analyst = client.post(
        "/api/v1/acknowledgements",
        json=_ack(requester="alice"),
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert analyst.status_code == 403
    admin = client.post(
        "/api/v1/acknowledgements",
        json=_ack(requester="alice", approver="bob"),
        headers=headers_for(Role.ADMINISTRATOR),
    )
    assert admin.status_code == 201
    assert admin.json()["requester"] == "alice"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.ADMINISTRATOR, 200, 201),
        (Role.SECURITY_ANALYST, 200, 201),
        (Role.AUDITOR, 200, 403),
        (Role.CI, 200, 403),
        (Role.SCANNER, 403, 403),
    ],
)
def test_roles(client: TestClient, headers_for: Headers, role: Role, read: int, write: int) -> None:
    assert client.get("/api/v1/acknowledgements", headers=headers_for(role)).status_code == read
    answer = client.post("/api/v1/acknowledgements", json=_ack(), headers=headers_for(role))
    assert answer.status_code == write
    assert client.get("/api/v1/acknowledgements").status_code == 401


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"vulnerability": CRITICAL}, ["body", "justification"]),
        (_ack(scope="planet", scope_value="x"), ["body", "scope"]),
        (_ack(expires="2030-01-01T00:00:00"), ["body", "expires"]),
        (_ack(colour="red"), ["body", "colour"]),
        (_ack(scope="image", scope_value="latest"), ["body"]),
        (_ack(scope="registry"), ["body"]),
    ],
)
def test_bad_bodies(
    client: TestClient, headers_for: Headers, body: dict[str, Any], loc: list[str]
) -> None:
    answer = client.post(
        "/api/v1/acknowledgements", json=body, headers=headers_for(Role.SECURITY_ANALYST)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == loc


def test_expiry_in_the_past_is_refused(
    client: TestClient, headers_for: Headers, clock: Any
) -> None:
    past = (clock() - timedelta(days=1)).isoformat()
    answer = client.post(
        "/api/v1/acknowledgements",
        json=_ack(expires=past),
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert answer.status_code == 409
    assert "past" in answer.json()["error"]["message"]
