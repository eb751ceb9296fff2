"""The console's gate endpoints: who may call them, what they answer, what they refuse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.core.roles import Role

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
IMAGE = {
    "manifest_digest": DIGEST,
    "registry": "registry.example.com",
    "repository": "team/app",
    "labels": {"tier": "frontend"},
}


def _seed(client: TestClient, headers: dict[str, str]) -> None:
    policies = [
        {"name": "team", "scope": {"repositories": ["team/*"]}},
        {"name": "frontend", "scope": {"labels": [{"key": "tier", "value": "front*"}]}},
        {"name": "elsewhere", "scope": {"registries": ["other.example.com"]}},
        {"name": "off", "enabled": False},
    ]
    for body in policies:
        assert client.post("/api/v1/policies", json=body, headers=headers).status_code == 201
    acks: list[dict[str, Any]] = [
        {"vulnerability": "CVE-1", "scope": "global"},
        {"vulnerability": "CVE-2", "scope": "registry", "scope_value": "registry.example.com"},
        {"vulnerability": "CVE-3", "scope": "repository", "scope_value": "team/app"},
        {
            "vulnerability": "CVE-4",
            "scope": "repository",
            "scope_value": "registry.example.com/team/app",
        },
        {"vulnerability": "CVE-5", "scope": "image", "scope_value": DIGEST},
        {"vulnerability": "CVE-6", "scope": "image", "scope_value": OTHER},
        {"vulnerability": "CVE-7", "scope": "repository", "scope_value": "other/app"},
    ]
    for body in acks:
        answer = client.post(
            "/api/v1/acknowledgements", json={**body, "justification": "test"}, headers=headers
        )
        assert answer.status_code == 201, answer.text


def test_gate_policies_answers_what_applies(
    client: TestClient, headers_for: Callable[[Role], dict[str, str]]
) -> None:
    _seed(client, headers_for(Role.SECURITY_ANALYST))
    answer = client.post("/api/v1/gate/policies", json=IMAGE, headers=headers_for(Role.CI))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["name"] for p in body["policies"]] == ["default", "frontend", "team"]
    assert all({"id", "version", "mode", "controls"} <= p.keys() for p in body["policies"])
    vulns = sorted(a["vulnerability"] for a in body["acknowledgements"])
    assert vulns == ["CVE-1", "CVE-2", "CVE-3", "CVE-4", "CVE-5"]


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.CI, "/api/v1/gate/policies", 200),
        (Role.AUDITOR, "/api/v1/gate/policies", 200),
        (Role.SCANNER, "/api/v1/gate/policies", 403),
        (Role.ENFORCER, "/api/v1/gate/policies", 403),
        (Role.CI, "/api/v1/gate/events", 201),
        (Role.ENFORCER, "/api/v1/gate/events", 201),
        (Role.AUDITOR, "/api/v1/gate/events", 403),
        (Role.SCANNER, "/api/v1/gate/events", 403),
    ],
)
def test_permissions(
    client: TestClient,
    headers_for: Callable[[Role], dict[str, str]],
    role: Role,
    path: str,
    status: int,
) -> None:
    body = (
        IMAGE
        if path.endswith("policies")
        else {"digest": DIGEST, "verdict": "approved", "enforce": False}
    )
    assert client.post(path, json=body, headers=headers_for(role)).status_code == status


@pytest.mark.parametrize("path", ["/api/v1/gate/policies", "/api/v1/gate/events"])
def test_no_token_is_401(client: TestClient, path: str) -> None:
    assert client.post(path, json={}).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/gate/policies", {**IMAGE, "manifest_digest": "latest"}, "manifest_digest"),
        ("/api/v1/gate/policies", {**IMAGE, "colour": "blue"}, "colour"),
        (
            "/api/v1/gate/events",
            {"digest": DIGEST, "verdict": "maybe", "enforce": False},
            "verdict",
        ),
        (
            "/api/v1/gate/events",
            {
                "digest": DIGEST,
                "verdict": "approved",
                "enforce": True,
                "policies": [{"policy": "p", "mode": "sometimes"}],
            },
            "mode",
        ),
        (
            "/api/v1/gate/events",
            {
                "digest": DIGEST,
                "verdict": "approved",
                "enforce": True,
                "pipeline": {"system": "x", "job_url": "u" * 5000},
            },
            "job_url",
        ),
    ],
    ids=["bad-digest", "unknown-field", "bad-verdict", "bad-mode", "huge-url"],
)
def test_bad_bodies_are_422_naming_the_field(
    client: TestClient,
    headers_for: Callable[[Role], dict[str, str]],
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    answer = client.post(path, json=body, headers=headers_for(Role.CI))
    assert answer.status_code == 422
    assert any(field in detail["loc"] for detail in answer.json()["detail"])


@pytest.mark.parametrize(
    ("enforce", "mode", "failed", "level", "action", "effective"),
    [
        (True, "enforce", ["severity"], "block", "block", "enforce"),
        (False, "enforce", ["severity"], "detect", "detect", "audit"),
        (True, "audit", ["severity"], "detect", "detect", "audit"),
        (True, "enforce", [], "info", "allow", "enforce"),
    ],
)
def test_ci_event_modes_are_the_consoles_decision(
    client: TestClient,
    headers_for: Callable[[Role], dict[str, str]],
    enforce: bool,
    mode: str,
    failed: list[str],
    level: str,
    action: str,
    effective: str,
) -> None:
    body = {
        "digest": DIGEST,
        "reference": "registry.example.com/team/app:1",
        "verdict": "disallowed" if failed and mode == "enforce" else "approved",
        "enforce": enforce,
        "pipeline": {"system": "jenkins", "job_url": "https://j/job/app/1/", "commit": "c0ffee"},
        "policies": [{"policy": "p", "mode": mode, "failed_controls": failed}],
    }
    answer = client.post("/api/v1/gate/events", json=body, headers=headers_for(Role.CI))
    assert answer.status_code == 201, answer.text
    events = client.get(
        "/api/v1/events", params={"category": "ci"}, headers=headers_for(Role.AUDITOR)
    ).json()["items"]
    assert len(events) == 1
    event = events[0]
    assert event["id"] == answer.json()["event_id"]
    assert event["level"] == level
    assert event["action"] == "ci.scan"
    assert event["data"]["policies"][0]["action"] == action
    assert event["data"]["policies"][0]["effective_mode"] == effective
    assert event["data"]["enforce"] is enforce
    assert event["data"]["system"] == "jenkins"
    assert event["data"]["commit"] == "c0ffee"
