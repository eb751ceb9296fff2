"""Scheduled pulls on-boarding a real docker-registry (pre-filled by skopeo) under scoping and
retention rules, through the API on SQLite and PostgreSQL: exactly which images are added, kept
and retired; a second run changes nothing; the cron schedule; catalog pages followed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from helpers import images
from helpers.clock import FakeClock
from registries.conftest import KEY, ONBOARD, ingested
from tidegate.core.roles import Role
from tidegate.integrations.registries import RegistryConnection, distribution
from tidegate.services import registries
from tidegate.store.db import Database
from tidegate.store.inventory import ImageRow
from tidegate.store.jobs import ScanJobRow

Headers = Callable[[Role], dict[str, str]]
SECRET = "pull-test-webhook-secret"
RULES: dict[str, Any] = {
    "scoping": {
        "include": ["team/*", "legacy/*"],
        "exclude": ["team/api"],
        "tags": ["v*", "0.*"],
        "max_age_days": 30,
        "max_tags_per_repo": 3,
    },
    "retention": {"keep_last": 2},
}
"""team/app: v1 is 40 days old, dev-1 is not a v* tag; of v4, v3, v2 (newest first, at most 3)
the last 2 are kept. legacy/old:0.1 is 400 days old. team/api is excluded, scratch/ not included."""
EXISTING = ("team/app:v1", "team/app:v3", "legacy/old:0.1", "team/api:v2", "scratch/tmp:x")


def _jobs(database: Database) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(ScanJobRow)) or 0


def _live(client: TestClient, headers: dict[str, str]) -> set[str]:
    listed = client.get("/api/v1/images", headers=headers).json()
    return {tag.split("/", 1)[1] for image in listed for tag in image["tags"]}


def test_onboard_with_scoping_and_retention(
    client: TestClient, headers_for: Headers, database: Database,
    onboard_registry: images.Registry,
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    host = onboard_registry.host
    digest = {f"{r}:{t}": images.manifest_digest(onboard_registry, f"{r}:{t}")
              for r, tags in ONBOARD.items() for t in tags}  # fmt: skip
    body = {"name": "local", "url": f"http://{host}", "webhook_secret": SECRET, **RULES}
    assert client.post("/api/v1/registries", json=body, headers=admin).status_code == 201
    # The inventory knew some images before on-boarding (pushed earlier, through the webhook).
    events = [{"action": "push", "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": name.split(":")[0],
        "tag": name.split(":")[1], "digest": digest[name]}} for name in EXISTING]  # fmt: skip
    r = client.post("/api/v1/registries/local/webhook", json={"events": events},
                    headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip
    assert r.status_code == 202, r.text
    assert ingested(client, admin, r.json(), registry="local")["new_images"] == len(EXISTING)
    jobs_before = _jobs(database)

    run = client.post("/api/v1/registries/local/pull", headers=admin).json()
    print(f"\nfirst run: {run}")
    assert run["state"] == "done"
    assert run["errors"] == []
    assert run["added"] == [f"team/app:v4@{digest['team/app:v4']}"]
    assert run["kept"] == [f"team/app:v3@{digest['team/app:v3']}"]
    assert sorted(run["retired"]) == sorted(
        [f"team/app@{digest['team/app:v1']}", f"legacy/old@{digest['legacy/old:0.1']}"]
    )
    assert _jobs(database) == jobs_before + 1  # the one new digest is queued
    live = _live(client, headers_for(Role.AUDITOR))
    assert live == {"team/app:v4", "team/app:v3", "team/api:v2", "scratch/tmp:x"}
    retired = client.get(f"/api/v1/images/{digest['team/app:v1']}", headers=admin).json()
    assert retired["retired"] is True

    again = client.post("/api/v1/registries/local/pull", headers=admin).json()
    assert (again["added"], again["retired"], again["errors"]) == ([], [], [])
    assert again["kept"] == [f"team/app:v4@{digest['team/app:v4']}", run["kept"][0]]
    assert _jobs(database) == jobs_before + 1
    assert _live(client, headers_for(Role.AUDITOR)) == live
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(ImageRow)) == len(EXISTING) + 1

    runs = client.get("/api/v1/registries/local/runs", headers=headers_for(Role.AUDITOR)).json()
    assert [x["id"] for x in runs] == [again["id"], run["id"]]
    assert runs[1]["added"] == run["added"]


@pytest.mark.parametrize(
    ("retention", "kept"),
    [
        ({"keep_tags": ["v2", "dev-*"]}, {"team/app:v2", "team/app:dev-1"}),
        ({"keep_last": 1}, {"team/app:dev-1"}),
        ({}, {"team/app:" + t for t in ONBOARD["team/app"]}),
    ],
    ids=["named tags", "keep last 1", "no retention"],
)
def test_retention_rules(
    client: TestClient, headers_for: Headers, onboard_registry: images.Registry,
    retention: dict[str, Any], kept: set[str],
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    body = {"name": "r", "url": f"http://{onboard_registry.host}",
            "scoping": {"include": ["team/app"]}, "retention": retention}  # fmt: skip
    assert client.post("/api/v1/registries", json=body, headers=admin).status_code == 201
    run = client.post("/api/v1/registries/r/pull", headers=admin).json()
    assert {entry.split("@")[0] for entry in run["added"]} == kept


def test_schedule_runs_when_due(
    client: TestClient, headers_for: Headers, database: Database, clock: FakeClock,
    onboard_registry: images.Registry,
) -> None:  # fmt: skip
    admin = headers_for(Role.ADMINISTRATOR)
    body = {"name": "cron", "url": f"http://{onboard_registry.host}", "schedule": "*/10 * * * *",
            "scoping": {"include": ["legacy/*"]}}  # fmt: skip
    created = client.post("/api/v1/registries", json=body, headers=admin).json()
    assert created["next_run"] == "2026-03-01T12:10:00Z"
    assert registries.run_due_pulls(database, now=clock(), key=KEY) == []
    clock.advance(timedelta(minutes=10))
    (run,) = registries.run_due_pulls(database, now=clock(), key=KEY)
    old = images.manifest_digest(onboard_registry, "legacy/old:0.1")
    assert (run.registry, run.state, run.added) == ("cron", "done", (f"legacy/old:0.1@{old}",))
    assert registries.run_due_pulls(database, now=clock(), key=KEY) == []  # moved to 12:20
    after = client.get("/api/v1/registries/cron", headers=admin).json()
    assert after["next_run"] == "2026-03-01T12:20:00Z"
    runs = client.get("/api/v1/registries/cron/runs", headers=admin).json()
    assert [x["trigger"] for x in runs] == ["schedule"]


def test_catalog_and_tags_follow_link_pages(
    onboard_registry: images.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distribution, "PAGE_SIZE", 1)
    adapter = distribution.DistributionRegistry(
        RegistryConnection(f"http://{onboard_registry.host}")
    )
    try:
        assert sorted(adapter.repositories()) == sorted(ONBOARD)
        assert sorted(adapter.tags("team/app")) == sorted(ONBOARD["team/app"])
        info = adapter.describe("team/app", "v3")
    finally:
        adapter.close()
    assert info.created is not None
    assert info.created.isoformat() == "2026-02-19T12:00:00+00:00"
