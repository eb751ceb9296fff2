"""Fixtures of the CI/CD gate tests: a real console served by uvicorn, a real demo image and a
vulnerability DB with records about its packages, and the CLI run in-process.

- The console fixtures of tests/console (`db_url` over SQLite and PostgreSQL, `database`,
  `settings`, `app`, `token_for`, `headers_for`) are reused; `clock` is overridden with the real
  time, because the CLI evaluates at the real time too and both must agree on what is active.
- `live_console`: the app served by uvicorn on 127.0.0.1 in a thread; its base URL.
- `demo_image`: "oci:LAYOUT:demo", `tidegate.demo`'s image (umoci + busybox; cached).
- `demo_db`: a vulnerability DB imported from the demo's OSV records (lodash 4.17.15 is high,
  fixed in 4.17.21; requests and openssl are medium).
- `scan(*args, env=...)`: runs `tidegate scan DEMO --db DEMO_DB -q ARGS` in-process; a
  `ScanRun(code, out, err)`.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from gate_support import ScanFn, ScanRun

from console.conftest import (  # noqa: F401  (fixtures reused by name)
    app,
    client,
    database,
    db_url,
    headers_for,
    pg_cluster,
    settings,
    token_for,
)
from helpers import images
from helpers.clock import FakeClock
from tidegate import demo
from tidegate.cli.main import main
from tidegate.vulndb import import_paths

GATE_ENV = (
    "TIDEGATE_CONSOLE",
    "TIDEGATE_TOKEN",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "JENKINS_URL",
    "BUILD_URL",
    "TIDEGATE_CI_SYSTEM",
    "TIDEGATE_CI_JOB_URL",
    "TIDEGATE_CI_COMMIT",
    "TIDEGATE_CI_BRANCH",
    "TIDEGATE_CI_PIPELINE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests' own CI (GitHub Actions, GitLab) must not leak into what they assert.
    for name in GATE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def live_console(app: FastAPI) -> Iterator[str]:  # noqa: F811
    port = images.free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the console did not start under uvicorn")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _build_demo(tmp: Path) -> None:
    demo.build(tmp)


@pytest.fixture(scope="session")
def demo_image() -> str:
    missing = images.missing_tools("umoci")
    if missing or not demo.BUSYBOX.exists():
        pytest.skip("the demo image needs umoci and busybox-static")
    out = images.cached("gate-demo-v1", _build_demo)
    return f"oci:{out / 'layout'}:{demo.TAG}"


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("gate-db")
    path = work / "vulndb.sqlite"
    report = import_paths(path, [demo.write_advisories(work)], strict=True)
    assert report.imported == len(demo.DEMO_ADVISORIES)
    return path


@pytest.fixture
def scan(demo_image: str, demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> ScanFn:
    def run(*args: str, env: Mapping[str, str] | None = None) -> ScanRun:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        argv = ["scan", demo_image, "--db", str(demo_db), "-q", *args]
        code = main(argv, stdout=out, stderr=err)
        return ScanRun(code, out.getvalue(), err.getvalue())

    return run
