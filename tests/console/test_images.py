"""The image inventory over the API, on both databases: registration with a scan result and by
reference, lookups by every identity, filters, detail, roles and bad bodies."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inventory_data import digest, scan_document

from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]


def _register(client: TestClient, headers: Headers, n: int, **kwargs: Any) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/images", json={"scan": scan_document(n, **kwargs)}, headers=headers(Role.CI)
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_lookup_by_every_identity(client: TestClient, headers_for: Headers) -> None:
    image = _register(client, headers_for, 1)
    assert image["status"] == "approved"
    assert image["tags"] == ["registry.example.com/team-a/web:1.0"]
    h = headers_for(Role.ENFORCER)
    keys = [
        str(image["id"]),
        digest(1),
        digest(1, "c"),
        digest(1, "c").removeprefix("sha256:"),  # a bare image ID, as runtimes print it
        "registry.example.com/team-a/web:1.0",
        f"registry.example.com/team-a/web@{digest(1)}",
    ]
    for key in keys:
        answer = client.get(f"/api/v1/images/{key}", headers=h)
        assert answer.status_code == 200, (key, answer.text)
        assert answer.json()["id"] == image["id"]
    assert (
        client.get("/api/v1/images/registry.example.com/team-a/web:2.0", headers=h).status_code
        == 404
    )


def test_tag_moves_to_the_newer_image(client: TestClient, headers_for: Headers, clock: Any) -> None:
    from datetime import timedelta

    _register(client, headers_for, 1)
    clock.advance(timedelta(minutes=5))
    newer = _register(client, headers_for, 2, vulnerable=False)
    found = client.get(
        "/api/v1/images/registry.example.com/team-a/web:1.0", headers=headers_for(Role.AUDITOR)
    ).json()
    assert found["id"] == newer["id"]


def test_detail_has_packages_findings_facts_verdict(
    client: TestClient, headers_for: Headers
) -> None:
    _register(client, headers_for, 1, packages=3)
    detail = client.get(f"/api/v1/images/{digest(1)}", headers=headers_for(Role.AUDITOR)).json()
    scan = detail["scan"]
    assert len(scan["packages"]) == 4
    assert {f["id"] for f in scan["findings"]} == {"CVE-2023-5363", "CVE-2024-0727"}
    assert scan["facts"]["user"] == "app"
    assert scan["db_snapshot"] == "snap-1"
    [result] = detail["verdict"]["results"]
    assert (result["policy_name"], result["mode"], result["passed"]) == ("default", "audit", False)
    assert result["failures"][0]["control"] == "severity"


def test_filters(client: TestClient, headers_for: Headers) -> None:
    _register(client, headers_for, 1)
    _register(client, headers_for, 2, repository="team-b/api", labels=(("owner", "b"),))
    _register(client, headers_for, 3, registry="other.example.com", repository="team-b/api")
    h = headers_for(Role.AUDITOR)

    def found(**params: Any) -> list[str]:
        answer = client.get("/api/v1/images", params=params, headers=h)
        assert answer.status_code == 200, answer.text
        return [i["digest"] for i in answer.json()]

    assert found() == [digest(1), digest(2), digest(3)]
    assert found(repository="team-b/api") == [digest(2), digest(3)]
    assert found(registry="other.example.com") == [digest(3)]
    assert found(label="owner=b") == [digest(2)]
    assert found(label="owner") == [digest(2)]
    assert found(status="disallowed") == []
    assert found(limit=2) == [digest(1), digest(2)]
    first = client.get("/api/v1/images", params={"limit": 2}, headers=h).json()
    assert found(after=first[-1]["id"]) == [digest(3)]


def test_register_by_reference_queues_one_scan_job(
    client: TestClient, headers_for: Headers
) -> None:
    # Nothing listens on port 9: the embedded worker's pull fails, the job records why and waits
    # for its retry; the image stays unscanned meanwhile.
    body = {"reference": "127.0.0.1:9/team/app:1"}
    answer = client.post("/api/v1/images", json=body, headers=headers_for(Role.CI))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "unscanned"
    again = client.post("/api/v1/images", json=body, headers=headers_for(Role.CI))
    assert again.status_code == 202, again.text
    auditor = headers_for(Role.AUDITOR)
    deadline = time.monotonic() + 20
    while True:
        page = client.get("/api/v1/scan-jobs", headers=auditor).json()
        jobs = [j for j in page["jobs"] if j["reference"].endswith("127.0.0.1:9/team/app:1")]
        assert len(jobs) == 1, page  # registered twice: one image, one job
        if jobs[0]["last_error"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert jobs[0]["attempts"] >= 1
    assert jobs[0]["state"] in ("queued", "failed", "dead")
    assert "127.0.0.1:9" in jobs[0]["last_error"]
    detail = client.get("/api/v1/images/127.0.0.1:9/team/app:1", headers=auditor).json()
    assert detail["status"] in ("unscanned", "failed"), detail["status_reason"]
    assert "127.0.0.1:9" in detail["status_reason"]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"reference": "oci:/etc:latest"}, 400, "registry images only"),
        ({"reference": "UPPER/Case::"}, 400, "reference"),
        ({}, 422, "exactly one"),
        ({"scan": {"schema_version": "1.1"}}, 422, "scan"),
        ({"reference": "r.example.com/a:1", "scan": scan_document(1)}, 422, "exactly one"),
    ],
)
def test_bad_registrations(
    client: TestClient, headers_for: Headers, body: dict[str, Any], status: int, text: str
) -> None:
    answer = client.post("/api/v1/images", json=body, headers=headers_for(Role.CI))
    assert answer.status_code == status, answer.text
    assert text in answer.text


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.ADMINISTRATOR, 200, 201),
        (Role.CI, 200, 201),
        (Role.AUDITOR, 200, 403),
        (Role.SCANNER, 200, 403),
        (Role.ENFORCER, 200, 403),
    ],
)
def test_roles(client: TestClient, headers_for: Headers, role: Role, read: int, write: int) -> None:
    assert client.get("/api/v1/images", headers=headers_for(role)).status_code == read
    answer = client.post(
        "/api/v1/images", json={"scan": scan_document(1)}, headers=headers_for(role)
    )
    assert answer.status_code == write
    assert client.get("/api/v1/images").status_code == 401
