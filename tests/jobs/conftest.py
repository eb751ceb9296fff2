"""Fixtures of the scan job tests: the console fixtures of tests/console (SQLite and PostgreSQL),
with no background work unless a test builds its own app.

- `settings`: embedded_workers=0 and no scheduler, so a test drives the queue itself.
- `session_of(database)`: `with session_of() as s:` a committed session on the test database.
- `place_image(database, n)`: an image registered by reference (127.0.0.1:1/team/app-N:1) with
  its queued job; returns (image_id, job_id).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console.conftest import (  # noqa: F401  (fixtures reused by name)
    app,
    client,
    clock,
    database,
    db_url,
    headers_for,
    pg_cluster,
    token_for,
)
from helpers.clock import FakeClock
from tidegate.console.settings import Settings
from tidegate.services import images, jobs
from tidegate.store.db import Database


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:  # noqa: F811
    return Settings(
        environment="development",
        data_dir=tmp_path,
        database_url=database.url,
        embedded_workers=0,
        scheduler=False,
    )


PlaceImage = Callable[[int], tuple[int, int]]


@pytest.fixture
def place_image(database: Database, clock: FakeClock) -> PlaceImage:  # noqa: F811
    def place(n: int) -> tuple[int, int]:
        with database.session() as session:
            image, _ = images.register_reference(
                session, reference=f"127.0.0.1:1/team/app-{n}:1", actor="tests", now=clock()
            )
            page = jobs.list_jobs(session, image_id=image.id)
            return image.id, page.jobs[0].id

    return place
