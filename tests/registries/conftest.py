"""Fixtures of the registry tests: the console fixtures of tests/console (SQLite and PostgreSQL)
with an encryption key and no background work, real registries, and a live console.

- `settings`: the console settings with `encryption_key` = KEY, no embedded workers, no scheduler
  (tests that want workers build their own app; see test_webhook_e2e.py).
- `dated_layout`: an OCI layout with the busybox image under tags whose config `created` dates
  are DATED[tag] (umoci config --created), so age and "newest N" rules have something to sort.
- `onboard_registry`: a docker-registry pre-filled by skopeo with ONBOARD (repo -> tags).
- `serve(app)`: serves an app with uvicorn on 127.0.0.1; returns its base URL (stopped after).
- `ingested(client, headers, accepted)`: the delivery of a webhook's 202 answer, once the app's
  ingester ingested it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
from helpers import images
from helpers.clock import START
from tidegate.console.settings import Settings
from tidegate.store.db import Database

KEY = "operator-key-for-tests-0123456789"

DATED = {
    "v1": START - timedelta(days=40),
    "v2": START - timedelta(days=20),
    "v3": START - timedelta(days=10),
    "v4": START - timedelta(days=2),
    "dev-1": START - timedelta(days=1),
    "0.1": START - timedelta(days=400),
    "x": START - timedelta(days=1),
}
ONBOARD = {
    "team/app": ("v1", "v2", "v3", "v4", "dev-1"),
    "team/api": ("v2",),
    "legacy/old": ("0.1",),
    "scratch/tmp": ("x",),
}


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:  # noqa: F811
    return Settings(
        environment="development",
        data_dir=tmp_path,
        database_url=database.url,
        encryption_key=KEY,
        embedded_workers=0,
        scheduler=False,
    )


@pytest.fixture(scope="session")
def dated_layout(busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = tmp_path_factory.mktemp("dated") / "layout"
    shutil.copytree(busybox_layout, layout)
    for tag, created in DATED.items():
        images.run(
            "umoci", "config", "--image", f"{layout}:{images.TAG}",
            "--created", created.strftime("%Y-%m-%dT%H:%M:%SZ"), "--tag", tag,
        )  # fmt: skip
    return layout


def _serve_registry(workdir: Path, **kwargs: object) -> Iterator[images.Registry]:
    missing = images.missing_tools("docker-registry", "skopeo", "htpasswd")
    if missing:
        pytest.skip(f"system tools missing: {', '.join(missing)}")
    proc, registry = images.start_registry(workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield registry
    finally:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def onboard_registry(
    tmp_path_factory: pytest.TempPathFactory, dated_layout: Path
) -> Iterator[images.Registry]:
    for registry in _serve_registry(tmp_path_factory.mktemp("onboard")):
        for repo, tags in ONBOARD.items():
            for tag in tags:
                registry.push(f"oci:{dated_layout}:{tag}", f"{repo}:{tag}")
        yield registry


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., images.Registry]]:
    """Start docker-registry instances for one test (`notify=`, `htpasswd=`); all killed after."""
    stack = contextlib.ExitStack()
    started: list[Path] = []

    def start(**kwargs: object) -> images.Registry:
        workdir = tmp_path / f"registry-{len(started)}"
        started.append(workdir)
        return stack.enter_context(contextlib.contextmanager(_serve_registry)(workdir, **kwargs))

    with stack:
        yield start


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], str]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(application: FastAPI) -> str:
        port = images.free_port()
        config = uvicorn.Config(
            application, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="live-console", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the console did not start under uvicorn")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=30)


def ingested(api: TestClient, headers: dict[str, str], accepted: dict[str, Any],
             registry: str = "hub") -> dict[str, Any]:  # fmt: skip
    """The delivery of a 202 answer once the app's ingester ingested it (woken by the POST)."""
    url = f"/api/v1/registries/{registry}/deliveries/{accepted['delivery']}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        delivery: dict[str, Any] = api.get(url, headers=headers).json()
        if delivery["status"] != "pending":
            return delivery
        time.sleep(0.02)
    pytest.fail(f"delivery {accepted['delivery']} still pending after 20 s")
