"""The push webhook through the API on SQLite and PostgreSQL: authentication by the registry's
secret (401 and an audit event without the secret), malformed bodies refused with nothing
stored (no delivery either), Distribution envelopes and Harbor PUSH_ARTIFACT events recorded as
deliveries (202) and ingested by the app's ingester: one image and one job per digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from registries.conftest import ingested
from tidegate.core.roles import Role
from tidegate.store.db import Database
from tidegate.store.deliveries import WebhookDeliveryRow
from tidegate.store.event_tables import EventRow
from tidegate.store.inventory import ImageRow, ImageTagRow
from tidegate.store.jobs import ScanJobRow

SECRET = "webhook-secret-0123456789"
URL = "/api/v1/registries/hub/webhook"
OCI = "application/vnd.oci.image.manifest.v1+json"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64

Headers = Callable[[Role], dict[str, str]]


def push(repo: str, tag: str | None, digest: str | None, media_type: str = OCI,
         action: str = "push") -> dict[str, Any]:  # fmt: skip
    """One event as CNCF Distribution 2.8 sends it (fields trimmed to those it always has)."""
    target: dict[str, Any] = {
        "mediaType": media_type, "size": 708, "length": 708,
        "repository": repo, "url": f"http://r/v2/{repo}/manifests/x",
    }  # fmt: skip
    if digest:
        target["digest"] = digest
    if tag:
        target["tag"] = tag
    return {
        "id": "e1", "timestamp": "2026-03-01T12:00:00Z", "action": action, "target": target,
        "request": {"id": "r1", "addr": "127.0.0.1", "host": "r", "method": "PUT",
                    "useragent": "skopeo"},
        "actor": {}, "source": {"addr": "r:5000", "instanceID": "i1"},
    }  # fmt: skip


def envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


HARBOR_PUSH = {  # as Harbor's webhook documentation shows PUSH_ARTIFACT
    "type": "PUSH_ARTIFACT",
    "occur_at": 1680501893,
    "operator": "harbor-jobservice",
    "event_data": {
        "resources": [
            {
                "digest": D2,
                "tag": "1.0",
                "resource_url": "harbor.example.com/library/busybox:1.0",
            }
        ],
        "repository": {
            "date_created": 1680501893,
            "name": "busybox",
            "namespace": "library",
            "repo_full_name": "library/busybox",
            "repo_type": "private",
        },
    },
}


@pytest.fixture
def hub(client: TestClient, headers_for: Headers) -> None:
    body = {"name": "hub", "url": "http://127.0.0.1:5999", "webhook_secret": SECRET}
    assert client.post("/api/v1/registries", json=body, headers=headers_for(Role.ADMINISTRATOR)
                       ).status_code == 201  # fmt: skip


def counts(database: Database) -> tuple[int, int, int, int, int]:
    """Images, tags, jobs, events, deliveries."""
    with database.session() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (ImageRow, ImageTagRow, ScanJobRow, EventRow, WebhookDeliveryRow)
        )


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no Authorization header"),
        ("Bearer nope", "wrong secret"),
        ("nope", "wrong secret"),
        (f"Basic {SECRET}", "wrong secret"),
    ],
)
def test_bad_secret_is_401_and_logged(
    client: TestClient, database: Database, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    before = counts(database)
    r = client.post(URL, content=envelope(push("a", "1", D1)), headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    after = counts(database)
    assert after[:3] == before[:3]  # no image, tag or job
    assert after[4] == before[4]  # no delivery
    with database.session() as s:
        event = s.scalars(select(EventRow).order_by(EventRow.id.desc())).first()
    assert event is not None
    assert event.action == "registry.webhook_refused"
    assert event.data["reason"] == reason
    assert event.data["registry"] == "hub"
    assert SECRET not in json.dumps(event.data) + event.message
    assert "nope" not in json.dumps(event.data) + event.message


@pytest.mark.usefixtures("hub")
def test_unknown_registry_is_401(client: TestClient) -> None:
    r = client.post("/api/v1/registries/nope/webhook", content=b"{}",
                    headers={"Authorization": SECRET})  # fmt: skip
    assert r.status_code == 401


@pytest.mark.usefixtures("hub")
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"[1, 2]", 422, "neither a Distribution"),
        (b'{"foo": 1}', 422, "neither a Distribution"),
        (b'{"events": {}}', 422, "events is not a list"),
        (b'{"events": [1]}', 422, "events[0] is not an event"),
        (envelope(push("a", "1", None)), 422, "events[0].target.digest is missing"),
        (envelope(push("a", "1", D1), push("b", "1", "md5:x")), 422, "is not a digest"),
        (envelope(push("a", "1", D1), push("", "1", D1)), 422, "events[1].target.repository"),
        (
            json.dumps({"type": "PUSH_ARTIFACT", "event_data": {}}).encode(),
            422,
            "event_data.repository",
        ),
        (
            json.dumps(
                {
                    **HARBOR_PUSH,
                    "event_data": {
                        **HARBOR_PUSH["event_data"],  # type: ignore[dict-item]
                        "resources": [{"tag": "x"}],
                    },
                }
            ).encode(),
            422,
            "resources[0].digest",
        ),
        (b'{"events": [' + b'{"a": "' + b"x" * (1024 * 1024) + b'"}]}', 413, "larger than"),
        (envelope(push("a", "1", D1), push("Team/App", "1", D1)), 422, "events[1]: invalid image"),
        (envelope(push("a", "bad tag!", D1)), 422, "events[0]: invalid image reference"),
    ],
)
def test_malformed_bodies_store_nothing(
    client: TestClient, database: Database, body: bytes, status: int, message: str
) -> None:
    before = counts(database)
    r = client.post(URL, content=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == "invalid_webhook"
    assert message in r.json()["error"]["message"]
    assert counts(database) == before  # not even an event, nor a delivery


@pytest.mark.usefixtures("hub")
def test_same_digest_twice_is_one_image_one_job(
    client: TestClient, database: Database, headers_for: Headers
) -> None:
    auth, reader = {"Authorization": f"Bearer {SECRET}"}, headers_for(Role.AUDITOR)
    blob = push("team/app", None, "sha256:" + "9" * 64, "application/octet-stream")
    pull = push("team/app", "1", D1, action="pull")
    r = client.post(URL, content=envelope(blob, push("team/app", "1", D1), pull), headers=auth)
    assert r.status_code == 202, r.text
    first = r.json()
    assert first == {"delivery": first["delivery"], "status": "pending", "events": 1, "ignored": 2}
    done = ingested(client, reader, first)
    assert (done["status"], done["new_images"], done["queued"]) == ("ingested", 1, 1)
    assert done["events"] == [{"repository": "team/app", "digest": D1, "tag": "1"}]
    assert done["source"] == "testclient"
    r = client.post(URL, content=envelope(push("team/app", "latest", D1)), headers=auth)
    again = ingested(client, reader, r.json())
    assert (again["status"], again["new_images"], again["queued"], again["error"]) == (
        "ingested", 0, 0, None,
    )  # fmt: skip
    images, tags, jobs, _, deliveries = counts(database)
    assert (images, tags, jobs, deliveries) == (1, 2, 1, 2)
    with database.session() as s:
        job = s.scalars(select(ScanJobRow)).one()
        assert job.registry_name == "hub"
        assert job.digest == D1
        assert job.reference == f"127.0.0.1:5999/team/app:1@{D1}"
    listed = client.get("/api/v1/registries/hub/deliveries", headers=reader).json()
    assert [d["id"] for d in listed] == [again["id"], done["id"]]  # newest first
    assert client.get("/api/v1/registries/hub/deliveries?status=pending",
                      headers=reader).json() == []  # fmt: skip


@pytest.mark.usefixtures("hub")
def test_harbor_push_artifact(client: TestClient, database: Database, headers_for: Headers) -> None:
    reader = headers_for(Role.AUDITOR)
    # Harbor sends the auth_header of its webhook policy as the raw Authorization value.
    r = client.post(URL, content=json.dumps(HARBOR_PUSH), headers={"Authorization": SECRET})
    assert r.status_code == 202
    assert ingested(client, reader, r.json())["new_images"] == 1
    other = {**HARBOR_PUSH, "type": "PULL_ARTIFACT"}
    r = client.post(URL, content=json.dumps(other), headers={"Authorization": SECRET})
    assert (r.json()["events"], r.json()["ignored"]) == (0, 1)
    assert ingested(client, reader, r.json())["new_images"] == 0
    image = client.get(f"/api/v1/images/{D2}", headers=reader).json()
    assert image["tags"] == ["127.0.0.1:5999/library/busybox:1.0"]
    assert image["status"] == "unscanned"
