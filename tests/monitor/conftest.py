"""Fixtures of the runtime monitor tests: real podman (runc, isolated storage, as DESIGN.md says
this VM needs) running the demo image (busybox-static, built with umoci), and a real `Monitor`
(its own threads, a real fanotify group) deciding from a bundle the test builds.

- `podman`: a session `Podman` whose `start()` runs a detached `sleep` container and returns its
  `WatchedContainer` (from `podman inspect`); `exec(container, *cmd, user="0")` runs
  `podman exec` and returns the CompletedProcess.
- `demo_inventory`: the demo image's executables {path: sha256} from a real scan of its layout.
- `run_monitor(group_mode=..., policies=..., ...) -> Running`: a started Monitor watching the
  given containers; `.events` collects what it emits; stopped at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from monitor_support import DEMO, Podman, Running

from helpers import images
from tidegate import demo
from tidegate.core.bundle import EnforcerGroupInfo, FailMode, build_bundle, build_image_index
from tidegate.core.policy import Mode
from tidegate.core.runtime import RuntimePolicy
from tidegate.enforcer.monitor import Monitor, WatchedContainer
from tidegate.image import open_image
from tidegate.scan import scan_image

CONTAINERS_CONF = """\
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
"""


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = images.missing_tools("podman", "runc", "skopeo", "umoci", "busybox")
    if missing:
        pytest.skip(f"the monitor tests need {', '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("the monitor tests run containers and fanotify as root")
    root = tmp_path_factory.mktemp("pm")  # podman: runroot under 50 characters
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")}
    engine = Podman(root=root, env=env)
    layout = images.cached("gate-demo-v1", demo.build) / "layout"
    ref = f"containers-storage:[overlay@{root / 'root'}+{root / 'runroot'}]{DEMO}"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{layout}:{demo.TAG}", ref],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    try:
        yield engine
    finally:
        subprocess.run([*engine.base(), "rm", "--all", "--force"], env=env, capture_output=True)
        subprocess.run([*engine.base(), "system", "reset", "--force"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_inventory() -> dict[str, str | None]:
    layout = images.cached("gate-demo-v1", demo.build) / "layout"
    result = scan_image(open_image(f"oci:{layout}:{demo.TAG}"))
    return {e.path: e.sha256 for e in result.catalogue.executables}


@pytest.fixture
def run_monitor(
    demo_inventory: dict[str, str | None],
) -> Iterator[Callable[..., Running]]:
    started: list[Monitor] = []

    def start(
        containers: Sequence[WatchedContainer],
        *,
        group_mode: Mode,
        policies: Sequence[RuntimePolicy],
        fail_mode: FailMode = FailMode.OPEN,
        budget: float = 0.25,
        **kwargs: Any,
    ) -> Running:
        bundle = build_bundle(
            group=EnforcerGroupInfo(name="monitor-tests", mode=group_mode, fail_mode=fail_mode),
            policies=policies,
            services=(),
            images=build_image_index([]),
            now=datetime.now(UTC),
        )
        events: list[dict[str, Any]] = []
        lock = threading.Lock()

        def emit(event: dict[str, Any]) -> None:
            with lock:
                events.append(event)

        monitor = Monitor(
            lambda: bundle,
            emit,
            host="test-node",
            budget=budget,
            inventory=lambda container, _bundle: demo_inventory,
            **kwargs,
        )
        for container in containers:
            monitor.watch(container)
        monitor.start()
        started.append(monitor)
        return Running(monitor, events, lock)

    yield start
    for monitor in started:
        monitor.stop()
