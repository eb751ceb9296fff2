"""Re-scans without pulling, in a console with its embedded worker and scheduler running: an
image scanned by reference (no vulnerability DB yet) is re-matched from its stored packages when
a DB appears, while its registry is STOPPED (so no pull could have happened, and no scan job is
queued); a stored scan made by other analyzers is queued for a real re-scan (a pull), which then
fails against the stopped registry and says so."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import images
from tidegate import demo
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.services import rescan
from tidegate.store.db import Database
from tidegate.store.inventory import ScanResultRow
from tidegate.vulndb import import_paths

Headers = Callable[[Role], dict[str, str]]


def _build_demo(out: Path) -> None:
    demo.build(out)


@pytest.fixture(scope="module")
def demo_layout() -> Path:
    if images.missing_tools("umoci") or not demo.BUSYBOX.exists():
        pytest.skip("the demo image needs umoci and busybox-static")
    return images.cached("gate-demo-v1", _build_demo) / "layout"


@pytest.fixture
def live(database: Database, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(
        environment="development",
        data_dir=tmp_path / "console",
        database_url=database.url,
        embedded_workers=1,
        scheduler_interval=0.2,
        rescan_interval=timedelta(seconds=1),
        job_retry_backoff=timedelta(seconds=0.2),
        job_max_attempts=2,
    )
    app = create_app(settings, clock=lambda: datetime.now(UTC))
    with TestClient(app) as client:
        yield client, settings


def _until(what: str, check: Callable[[], Any], limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _publish_db(settings: Settings, work: Path) -> str:
    """Build the demo advisories DB aside and move it into place at once, as `db update` does."""
    fresh = work / "fresh.sqlite"
    import_paths(fresh, [demo.write_advisories(work)], strict=True)
    settings.vulndb_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(fresh, settings.vulndb_path)
    snapshot = rescan.vulndb_snapshot(settings.vulndb_path)
    assert snapshot
    return snapshot


def test_db_update_rematches_without_pulling_and_analyzer_change_repulls(
    live: tuple[TestClient, Settings],
    headers_for: Headers,
    database: Database,
    demo_layout: Path,
    tmp_path: Path,
) -> None:
    client, settings = live
    reader = headers_for(Role.AUDITOR)
    proc, registry = images.start_registry(tmp_path / "registry")
    try:
        ref = registry.push(f"oci:{demo_layout}:{demo.TAG}", "demo/app:1")
        answer = client.post(
            "/api/v1/images", json={"reference": ref}, headers=headers_for(Role.CI)
        )
        assert answer.status_code == 202, answer.text
        digest = images.manifest_digest(registry, "demo/app:1")

        def scanned() -> dict[str, Any] | None:
            r = client.get(f"/api/v1/images/{digest}", headers=reader)
            return r.json() if r.status_code == 200 and r.json()["scan"] else None

        first = _until("the embedded worker's scan", scanned)
    finally:
        proc.kill()  # from here on, nothing can be pulled
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    assert first["scan"]["db_snapshot"] is None
    assert first["scan"]["findings"] == []
    assert first["scan"]["packages"]

    snapshot = _publish_db(settings, tmp_path)

    def rematched() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/images/{digest}", headers=reader).json()
        return body if body["scan"]["db_snapshot"] == snapshot else None

    after = _until("the re-match against the new snapshot", rematched)
    assert after["scan"]["findings"]
    assert "GHSA-35jh-r3h4-6jhm" in str(after["scan"]["findings"])  # lodash 4.17.15 in the image
    assert after["scan"]["packages"] == first["scan"]["packages"]
    assert after["verdict"]["db_snapshot"] == snapshot
    queue = client.get("/api/v1/scan-jobs", headers=reader).json()
    assert queue["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 0, "dead": 0}

    # Re-matching again (the scheduler's next passes) keeps one copy of each finding.
    time.sleep(1.5)
    again = client.get(f"/api/v1/images/{digest}", headers=reader).json()
    assert len(again["scan"]["findings"]) == len(after["scan"]["findings"])

    # Other analyzers read the stored scan: a re-scan (a pull) is queued, and fails for real.
    with database.session() as session:
        for row in session.query(ScanResultRow).all():
            row.analyzers = [["dpkg", 0]]

    def repulled() -> list[dict[str, Any]]:
        jobs = client.get("/api/v1/scan-jobs", headers=reader).json()["jobs"]
        return [j for j in jobs if "analyzers changed" in j["reason"] and j["state"] == "dead"]

    dead = _until("the analyzer re-scan to fail against the stopped registry", repulled)
    assert dead[0]["attempts"] == 2, dead[0]["last_error"]
    assert registry.host in dead[0]["last_error"] or "connect" in dead[0]["last_error"].lower()
    # The stored scan and its verdict stay: a failed re-scan does not forget the image.
    kept = client.get(f"/api/v1/images/{digest}", headers=reader).json()
    assert kept["status"] in ("approved", "disallowed")
    assert kept["scan"]["db_snapshot"] == snapshot
