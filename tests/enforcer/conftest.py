"""Fixtures of the enforcer tests: real podman (runc, isolated storage, hooks dir) and a real
`tidegate enforcer` process with its unix socket.

- `podman`: a session `Podman` on its own storage root under the session's tmp dir, with
  CONTAINERS_CONF setting runtime "runc" and the ulimits this VM allows (DESIGN.md), the test
  busybox image loaded as BUSYBOX (user 1000) and the demo image as DEMO (both by skopeo from
  their OCI layouts). `podman.run(image, *args, hooks_dir=..., options=[...])` runs
  `podman run --rm --network none` and returns the CompletedProcess; `podman.image_id(name)`;
  `podman.start(...)` the same detached (the container id), `podman.exec(cid, *cmd)`,
  `podman.remove(cid)`.
- `live_console`: a `LiveConsole` (uvicorn in a thread on `app` from tests/console, SQLite and
  PostgreSQL) that a test may `stop()` and `start()` again on the same port; `clock` is the
  real time (the enforcer stamps events with it).
- `demo_db`: a vulnerability DB with the demo's OSV records (lodash 4.17.15 is high).
- `start_enforcer(console_url, token, state_dir, extra=[...], prefix=[...]) -> EnforcerProcess`:
  `tidegate enforcer` as a subprocess (extra options after its own, `prefix` before the program:
  `setpriv ...`), waited for until its socket answers; `.hooks_dir` holds the hook JSON written by
  `tidegate enforcer install-hook`; `.stop()` ends it (SIGTERM, by its own pid).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from console.conftest import (  # noqa: F401  (fixtures reused by name)
    app,
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
from tidegate.vulndb import import_paths

BUSYBOX = "localhost/tidegate-test/busybox:1.0"
DEMO = "localhost/tidegate-test/demo:1.0"
CONTAINERS_CONF = """\
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
"""
TIDEGATE = [str(Path(sys.executable).with_name("tidegate"))]


@dataclass
class Podman:
    root: Path
    env: dict[str, str]

    def base(self) -> list[str]:
        return [
            "podman", "--root", str(self.root / "root"), "--runroot", str(self.root / "runroot"),
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
        ]  # fmt: skip

    def storage_ref(self, name: str) -> str:
        return f"containers-storage:[overlay@{self.root / 'root'}+{self.root / 'runroot'}]{name}"

    def load(self, source: str, name: str) -> None:
        subprocess.run(
            ["skopeo", "copy", "--quiet", source, self.storage_ref(name)],
            check=True,
            env=self.env,
            capture_output=True,
        )

    def image_id(self, name: str) -> str:
        out = subprocess.run(
            [*self.base(), "image", "inspect", "--format", "{{.Id}}", name],
            check=True,
            env=self.env,
            capture_output=True,
            text=True,
        )
        return "sha256:" + out.stdout.strip()

    def run(
        self, image: str, *args: str, hooks_dir: Path | None = None, options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        hooks = ["--hooks-dir", str(hooks_dir)] if hooks_dir is not None else []
        # The demo image's entrypoint serves forever: every test container runs /bin/sh ARGS.
        run = ["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", *options]
        cmd = [*self.base(), *hooks, *run, image, *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)

    def start(
        self, image: str, *args: str, hooks_dir: Path | None = None, options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """`run` detached (no --rm): the container id is the stdout."""
        hooks = ["--hooks-dir", str(hooks_dir)] if hooks_dir is not None else []
        run = ["run", "-d", "--network", "none", "--entrypoint", "/bin/sh", *options]
        cmd = [*self.base(), *hooks, *run, image, *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)

    def exec(self, cid: str, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base(), "exec", "--user", "0", cid, *cmd],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def remove(self, cid: str) -> None:
        subprocess.run(
            [*self.base(), "rm", "--force", "--time", "0", cid],
            env=self.env, capture_output=True, timeout=60,
        )  # fmt: skip


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = images.missing_tools("podman", "runc", "skopeo", "umoci", "busybox")
    if missing:
        pytest.skip(f"the podman tests need {', '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("the podman tests run containers as root")
    root = tmp_path_factory.mktemp("podman")
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")}
    engine = Podman(root=root, env=env)
    engine.load(f"oci:{images.busybox_layout()}:{images.TAG}", BUSYBOX)
    demo_layout = images.cached("gate-demo-v1", demo.build) / "layout"
    engine.load(f"oci:{demo_layout}:{demo.TAG}", DEMO)
    try:
        yield engine
    finally:
        subprocess.run([*engine.base(), "rm", "--all", "--force"], env=env, capture_output=True)
        subprocess.run([*engine.base(), "system", "reset", "--force"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class EnforcerProcess:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    socket: Path
    hooks_dir: Path
    log: Path
    stopped: bool = field(default=False)

    def stop(self) -> None:
        if not self.stopped:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.stopped = True


def _wait_for_socket(proc: subprocess.Popen[bytes], path: Path, log: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.is_socket():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"tidegate enforcer did not start: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def start_enforcer(tmp_path: Path) -> Iterator[Callable[..., EnforcerProcess]]:
    started: list[EnforcerProcess] = []

    def start(
        console: str,
        token: str,
        state_dir: Path | None = None,
        *,
        extra: Sequence[str] = (),
        prefix: Sequence[str] = (),
    ) -> EnforcerProcess:
        state = state_dir or tmp_path / "enforcer-state"
        sock, hooks, log = (
            state / "enforcer.sock",
            tmp_path / "hooks.d",
            tmp_path / f"enforcer{len(started)}.log",
        )
        subprocess.run(
            [
                *TIDEGATE,
                "enforcer",
                "install-hook",
                "--hooks-dir",
                str(hooks),
                "--state-dir",
                str(state),
            ],
            check=True,
            capture_output=True,
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *prefix,
                    *TIDEGATE,
                    "enforcer",
                    "--console",
                    console,
                    "--group-token",
                    token,
                    "--state-dir",
                    str(state),
                    "--poll-interval",
                    "0.5",
                    "--hostname",
                    "test-node",
                    # The host's own podman containers are none of these tests' business.
                    *([] if "--podman" in extra else ["--podman", ""]),
                    *extra,
                ],
                stdout=out,
                stderr=out,
            )
        _wait_for_socket(proc, sock, log)
        process = EnforcerProcess(proc, state, sock, hooks, log)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# -- a live console (uvicorn in a thread) that a test can stop and start again on its port ----


class LiveConsole:
    """The app served by uvicorn on 127.0.0.1:PORT; `stop()` and `start()` again at will."""

    def __init__(self, app: FastAPI) -> None:  # noqa: F811
        self.app, self.port = app, images.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LiveConsole:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="none",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the console did not start under uvicorn")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None


@pytest.fixture
def clock() -> FakeClock:
    # The enforcer stamps events with the real time; the console must agree on "now".
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def live_console(app: FastAPI) -> Iterator[LiveConsole]:  # noqa: F811
    console = LiveConsole(app).start()
    try:
        yield console
    finally:
        console.stop()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("enforcer-db")
    path = work / "vulndb.sqlite"
    import_paths(path, [demo.write_advisories(work)], strict=True)
    return path
