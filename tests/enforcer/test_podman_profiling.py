"""Image profiling end to end: real podman containers (runc, hooks dir), a real `tidegate
enforcer` process (fanotify monitor, profiler) and a real console (uvicorn; SQLite and
PostgreSQL).

The app image (built here with umoci) holds busybox and four scripts under /app/bin; the CI gate
registers it with its executables. Profiling is started by REST, a scripted "test phase" runs in
a container (two scripts, a listener), the session is stopped: the profile is applied in audit.
A second phase appends one more script. Then the script no phase used: DETECT against the profile
while it is in audit (and in the readiness view), EPERM once it is in enforce (the group
enforces), while the learned scripts still run. A container started with TIDEGATE_PROFILE learns
a profile of its own that the console applies when the container exits.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import BUSYBOX, EnforcerProcess, LiveConsole, Podman
from helpers import images
from helpers.clock import FakeClock
from tidegate.cli.main import main
from tidegate.core.bundle import PolicyBundle, bundle_from_json
from tidegate.core.errors import BundleError
from tidegate.core.profile import repository_of
from tidegate.core.roles import Role
from tidegate.enforcer.spool import Spool

pytestmark = pytest.mark.system

Headers = Callable[[Role], dict[str, str]]
APP = "localhost/tidegate-test/profiled-app:1.0"
TAG = "1.0"
SCRIPTS = ("migrate", "serve", "report", "weekly")


def _build_app(out: Path) -> None:
    layout, work = out / "layout", out / "work"
    image = f"{layout}:{TAG}"
    images.run("umoci", "init", "--layout", layout)
    images.run("umoci", "new", "--image", image)
    images.run("umoci", "unpack", "--image", image, work)
    rootfs = work / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    busybox = shutil.which("busybox")
    assert busybox is not None
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    for name in SCRIPTS:
        script = rootfs / "app" / "bin" / name
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f"#!/bin/sh\necho {name}-ok\n")
        script.chmod(0o755)
    images.run("umoci", "repack", "--image", image, work)
    shutil.rmtree(work)


@pytest.fixture(scope="session")
def app_image(podman: Podman) -> str:
    layout = images.cached("profiled-app-v1", _build_app) / "layout"
    podman.load(f"oci:{layout}:{TAG}", APP)
    return f"oci:{layout}:{TAG}"


def _api(console: LiveConsole, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"{console.url}/api/v1", headers=headers, timeout=30)


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _bundle(enforcer: EnforcerProcess) -> PolicyBundle | None:
    try:
        return bundle_from_json((enforcer.state_dir / "bundle.json").read_bytes())
    except (OSError, BundleError):
        return None


def _wait_bundle(
    enforcer: EnforcerProcess, predicate: Callable[[PolicyBundle], bool], what: str
) -> PolicyBundle:
    return _wait_for(lambda: (b := _bundle(enforcer)) is not None and predicate(b) and b, what)


def _spool_empty(enforcer: EnforcerProcess) -> bool:
    spool = Spool(enforcer.state_dir / "observations.sqlite")
    try:
        return spool.count() == 0
    finally:
        spool.close()


def _runtime_events(console: LiveConsole, headers_for: Headers) -> list[dict[str, Any]]:
    with _api(console, headers_for(Role.AUDITOR)) as api:
        answer = api.get("/events", params={"category": "runtime", "limit": 500})
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["items"] if e["data"].get("source") == "monitor"]


@pytest.fixture
def containers(podman: Podman) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for cid in started:
        podman.remove(cid)


def _start(podman: Podman, started: list[str], enforcer: EnforcerProcess, *opts: str) -> str:
    run = podman.start(APP, "-c", "sleep 3600", hooks_dir=enforcer.hooks_dir, options=opts)
    assert run.returncode == 0, run.stderr
    started.append(run.stdout.strip())
    return started[-1]


def _learn(
    api: httpx.Client,
    podman: Podman,
    enforcer: EnforcerProcess,
    started: list[str],
    script: str,
    *,
    append: bool,
    clock: FakeClock,
) -> dict[str, Any]:
    """One profiling session around one scripted test phase; the stop answer."""
    clock.set(datetime.now(UTC))  # the console's "now" follows the real time
    answer = api.post("/profiles/sessions", json={"image": APP, "profile": "app", "append": append})
    assert answer.status_code == 201, answer.text
    session = answer.json()
    _wait_bundle(enforcer, lambda b: any(t.id == session["id"] for t in b.profiling), "the session")
    cid = _start(podman, started, enforcer)
    phase = podman.exec(cid, "sh", "-c", script)
    assert phase.returncode == 0, phase.stderr

    def delivered() -> bool:
        got = api.get(f"/profiles/sessions/{session['id']}").json()
        return cid in got["containers"] and _spool_empty(enforcer)

    _wait_for(delivered, "the phase's observations in the console")
    time.sleep(1.0)  # the monitor batches exec observations every 50 ms, the spool wakes the sync
    _wait_for(lambda: _spool_empty(enforcer), "an empty observation spool")
    clock.set(datetime.now(UTC))
    stopped = api.post(f"/profiles/sessions/{session['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    podman.remove(cid)
    return dict(stopped.json())


def test_learn_twice_then_detect_then_deny(
    podman: Podman,
    app_image: str,
    start_enforcer: Callable[..., EnforcerProcess],
    live_console: LiveConsole,
    headers_for: Headers,
    token_for: Callable[[Role], str],
    demo_db: Path,
    containers: list[str],
    clock: FakeClock,
) -> None:
    repository = repository_of(APP)
    with _api(live_console, headers_for(Role.SECURITY_ANALYST)) as api:
        group = api.post("/enforcer-groups", json={"name": "podman-hosts", "mode": "enforce"})
        assert group.status_code == 201, group.text
        code = main(
            ["scan", app_image, "--db", str(demo_db), "-q", "-f", "json",
             "--console", live_console.url, "--token", token_for(Role.CI), "--image-name", APP],
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
        assert code == 0
        enforcer = start_enforcer(live_console.url, group.json()["token"])
        _wait_bundle(enforcer, lambda b: b.group.name == "podman-hosts", "the bundle")

        # Phase 1: two scripts and a listener (polled every second while it listens).
        phase1 = (
            "/app/bin/migrate && /app/bin/serve && "
            "(busybox httpd -f -p 8080 & pid=$!; sleep 2.5; kill $pid)"
        )
        first = _learn(api, podman, enforcer, containers, phase1, append=False, clock=clock)
        profile = first["profile"]
        assert (profile["mode"], profile["version"]) == ("audit", 1)
        paths = {e["path"] for e in profile["executables"]}
        assert {"/app/bin/migrate", "/app/bin/serve", "/bin/busybox"} <= paths
        assert not paths & {"/app/bin/report", "/app/bin/weekly"}
        assert {"protocol": "tcp", "port": 8080, "address": ""} in profile["listeners"]

        # Phase 2, appended: one more script; the profile keeps what phase 1 learned.
        second = _learn(
            api, podman, enforcer, containers, "/app/bin/report", append=True, clock=clock
        )
        profile = second["profile"]
        paths = {e["path"] for e in profile["executables"]}
        assert {"/app/bin/migrate", "/app/bin/serve", "/app/bin/report"} <= paths
        assert "/app/bin/weekly" not in paths
        assert profile["listeners"], "appending keeps phase 1's listener"
        version = profile["version"]

        # The unexpected script while the profile is in audit: runs, and is a DETECT.
        _wait_bundle(
            enforcer,
            lambda b: not b.profiling and (p := b.profile_for(repository)) is not None
            and p.version == version,
            "the applied profile",
        )  # fmt: skip
        cid = _start(podman, containers, enforcer)
        ran = podman.exec(cid, "sh", "-c", "/app/bin/weekly; echo rc=$?")
        assert ran.stdout.split() == ["weekly-ok", "rc=0"], ran.stderr

        def detected() -> list[dict[str, Any]]:
            return [
                e
                for e in _runtime_events(live_console, headers_for)
                if e["data"].get("control") == "profile"
            ]

        (event,) = _wait_for(detected, "the profile's DETECT event")
        assert (event["level"], event["policy"]) == ("detect", "app")
        assert event["data"]["executable"] == "/app/bin/weekly"
        assert (event["data"]["policy_mode"], event["data"]["enforcer_mode"]) == (
            "audit", "enforce",
        )  # fmt: skip
        ready = api.get("/profiles/app/readiness").json()
        assert ready["total"] == 1
        assert [(e["path"], e["count"]) for e in ready["executables"]] == [("/app/bin/weekly", 1)]
        assert len(ready["sessions"]) == 2

        # Enforce: the unexpected script is refused (EPERM), the learned ones still run.
        clock.set(datetime.now(UTC))
        switched = api.post("/profiles/app/mode", json={"mode": "enforce"})
        assert switched.status_code == 200, switched.text
        _wait_bundle(
            enforcer,
            lambda b: (p := b.profile_for(repository)) is not None and p.mode == "enforce",
            "the enforced profile",
        )
        denied = podman.exec(cid, "sh", "-c", "/app/bin/weekly; echo rc=$?")
        assert denied.stdout.strip().endswith("rc=126"), denied.stdout
        assert "Operation not permitted" in denied.stderr or "denied" in denied.stderr
        learned = podman.exec(cid, "sh", "-c", "/app/bin/migrate && /app/bin/report")
        assert learned.returncode == 0, learned.stderr
        assert learned.stdout.split() == ["migrate-ok", "report-ok"]
        blocked = _wait_for(
            lambda: [e for e in detected() if e["level"] == "block"], "the profile's BLOCK event"
        )
        assert blocked[0]["data"]["executable"] == "/app/bin/weekly"


def test_a_container_started_with_tidegate_profile_learns_a_profile(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    live_console: LiveConsole,
    headers_for: Headers,
    tmp_path: Path,
) -> None:
    with _api(live_console, headers_for(Role.SECURITY_ANALYST)) as api:
        group = api.post("/enforcer-groups", json={"name": "podman-hosts", "mode": "audit"})
        assert group.status_code == 201, group.text
        enforcer = start_enforcer(live_console.url, group.json()["token"])
        _wait_bundle(enforcer, lambda b: b.group.name == "podman-hosts", "the bundle")
        data = tmp_path / "data"
        data.mkdir()
        run = podman.run(
            BUSYBOX,
            "-c",
            "ls /data >/dev/null && echo learned",
            hooks_dir=enforcer.hooks_dir,
            options=("-e", "TIDEGATE_PROFILE=batch", "-v", f"{data}:/data:ro"),
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "learned"

        # The container exited: its env session stops and the profile is applied in audit.
        found = _wait_for(
            lambda: (r := api.get("/profiles/batch")).status_code == 200 and r.json(),
            "the env-learned profile",
        )
        assert (found["mode"], found["repository"]) == ("audit", repository_of(BUSYBOX))
        assert "/bin/busybox" in {e["path"] for e in found["executables"]}
        assert {"destination": "/data", "source": str(data)} in found["volumes"]
        sessions = api.get("/profiles/sessions", params={"profile": "batch"}).json()
        assert [(s["origin"], s["state"]) for s in sessions] == [("env", "stopped")]
    assert "started profiling session" in enforcer.log.read_text()
