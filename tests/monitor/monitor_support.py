"""Helpers of the monitor tests (kept out of conftest.py so that tests can import them by a
unique module name): a podman wrapper on isolated storage, and a running monitor's event log."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tidegate.enforcer.monitor import Monitor, WatchedContainer, inspect_podman

DEMO = "localhost/tidegate-test/monitor-demo:1.0"


@dataclass
class Podman:
    root: Path
    env: dict[str, str]
    started: list[str] = field(default_factory=list)

    def base(self) -> list[str]:
        return [
            "podman", "--root", str(self.root / "root"), "--runroot", str(self.root / "runroot"),
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none",
        ]  # fmt: skip

    def start(
        self,
        image: str = DEMO,
        command: tuple[str, ...] = ("sleep", "3600"),
        options: tuple[str, ...] = (),
    ) -> WatchedContainer:
        """A detached container (the demo image's entrypoint serves httpd on 8080 and ignores
        `command`, unless `options` sets another entrypoint)."""
        out = subprocess.run(
            [*self.base(), "run", "-d", "--network", "none", *options, image, *command],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"podman run failed: {out.stderr.strip()}")
        cid = out.stdout.strip()
        self.started.append(cid)
        os.environ.setdefault("CONTAINERS_CONF", self.env["CONTAINERS_CONF"])
        (watched,) = inspect_podman(self.base(), [cid])
        return watched

    def exec(
        self, container: WatchedContainer, *cmd: str, user: str = "0"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base(), "exec", "--user", user, container.container_id, *cmd],
            env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def remove(self, container: WatchedContainer) -> None:
        subprocess.run(
            [*self.base(), "rm", "--force", "--time", "0", container.container_id],
            env=self.env, capture_output=True, timeout=120,
        )  # fmt: skip


@dataclass
class Running:
    monitor: Monitor
    events: list[dict[str, Any]]
    lock: threading.Lock

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if predicate(e)]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no such event; got {self.events}")

    def settle(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        time.sleep(seconds)
        with self.lock:
            return list(self.events)
