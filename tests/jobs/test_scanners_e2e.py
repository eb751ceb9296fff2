"""Two remote scanners, one queue, real parts: a console served by uvicorn on PostgreSQL (no
embedded worker, the scheduler on), a real docker-registry holding six real images (distinct
digests), and two `tidegate scanner` processes. Each image is scanned once; a scanner killed
with SIGKILL in the middle of a job loses it when its lease expires, and the other finishes it.

The scanners run with the test hook TIDEGATE_TEST_SCAN_HOLD (see cli/scanner_cmd.py): each job
waits, heartbeating, between its scan and its result, so there is a "mid-scan" to kill in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from helpers import images
from jobs.variants import variants
from tidegate.console.app import create_app
from tidegate.console.settings import Settings
from tidegate.core.roles import Role
from tidegate.store.db import Database
from tidegate.store.inventory import ScanResultRow
from tidegate.store.jobs import ScanJobRow

COUNT = 6
HOLD = "2.5"
LEASE = 3.0

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def serve(settings: Settings) -> Iterator[str]:
    app = create_app(settings, clock=lambda: datetime.now(UTC))
    port = images.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def console(database: Database, tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        environment="development",
        data_dir=tmp_path / "console",
        database_url=database.url,
        embedded_workers=0,
        scheduler_interval=0.3,
        job_lease_seconds=LEASE,
        job_retry_backoff=timedelta(seconds=0.5),
    )
    yield from serve(settings)


def scanner(console: str, token: str, tmp_path: Path, name: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TIDEGATE_TEST_SCAN_HOLD": HOLD,
        "TIDEGATE_DATA_DIR": str(tmp_path / name),
    }
    env.pop("TIDEGATE_DB", None)
    code = "import sys; from tidegate.cli.main import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "scanner", "--console", console, "--token", token,
         "--poll-interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _jobs(console: str, headers: dict[str, str]) -> list[dict[str, object]]:
    body = httpx.get(f"{console}/api/v1/scan-jobs", params={"limit": 100}, headers=headers)
    assert body.status_code == 200, body.text
    jobs: list[dict[str, object]] = body.json()["jobs"]
    return jobs


def _wait(what: str, check: Callable[[], object], limit: float) -> object:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_two_scanners_one_queue_one_killed_mid_scan(
    console: str,
    registry: images.Registry,
    push_image: Callable[..., str],
    token_for: Callable[[Role], str],
    headers_for: Callable[[Role], dict[str, str]],
    database: Database,
    tmp_path: Path,
) -> None:
    layout = variants(COUNT)
    refs = [push_image(f"oci:{layout}:v{n}", registry, f"jobs-e2e/app:v{n}") for n in range(COUNT)]
    for ref in refs:
        answer = httpx.post(
            f"{console}/api/v1/images", json={"reference": ref}, headers=headers_for(Role.CI)
        )
        assert answer.status_code == 202, answer.text
    reader = headers_for(Role.AUDITOR)
    assert Counter(j["state"] for j in _jobs(console, reader)) == {"queued": COUNT}

    token = token_for(Role.SCANNER)
    victim = scanner(console, token, tmp_path, "a")
    survivor = None
    try:
        # The victim takes its first job and is killed while it holds it.
        held = _wait(
            "scanner a to hold a job",
            lambda: [
                j for j in _jobs(console, reader)
                if j["state"] == "running" and f":{victim.pid}:" in str(j["lease_owner"])
            ],
            60,
        )  # fmt: skip
        killed_job = held[0]["id"]  # type: ignore[index]
        survivor = scanner(console, token, tmp_path, "b")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)  # reaps it and closes its pipes

        try:
            _wait(
                "every job done",
                lambda: all(j["state"] == "done" for j in _jobs(console, reader)),
                90,
            )
        except BaseException:
            survivor.kill()
            _out, err = survivor.communicate(timeout=10)
            print(_jobs(console, reader), err[-3000:])
            raise
        survivor.send_signal(signal.SIGTERM)  # graceful: exits 0 with its summary
        out, err = survivor.communicate(timeout=30)
        assert survivor.returncode == 0, err
        assert "job(s) done" in out
    finally:
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)

    with database.session() as session:
        rows = session.query(ScanJobRow).all()
        results = Counter(r.image_id for r in session.query(ScanResultRow).all())
    assert len(rows) == COUNT
    # No image scanned twice: one registered result per image, one job per image.
    assert sorted(results.values()) == [1] * COUNT
    assert {r.image_id for r in rows} == set(results)
    by_id = {r.id: r for r in rows}
    killed = by_id[killed_job]  # type: ignore[index]
    assert killed.attempts == 2
    assert f":{survivor.pid}:" in (killed.lease_owner or "")
    assert killed.last_error is not None
    assert f":{victim.pid}:" in killed.last_error
    assert "lease expired" in killed.last_error
    assert all(r.attempts == 1 for r in rows if r.id != killed_job)
    # Every image has its verdict and its digest from the registry.
    images_seen = httpx.get(f"{console}/api/v1/images", headers=reader).json()
    assert {i["status"] for i in images_seen} <= {"approved", "disallowed"}
    assert len({i["digest"] for i in images_seen}) == COUNT
