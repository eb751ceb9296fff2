"""End to end: real podman containers (runc, hooks dir), a real `tidegate enforcer` process and
a real console (uvicorn; SQLite and PostgreSQL).

The console holds an enforcer group (its mode under test) and a runtime policy `strict` (its
mode under test) blocking unregistered and disallowed images. The demo image is registered by
the CI gate (`tidegate scan --console`) under an enforce-mode assurance policy that it fails
(lodash is high, the policy allows medium), so the console holds it DISALLOWED; the busybox
image is never registered. Every start ends as BLOCK (refused) or DETECT (started) in the
console's events with policy mode, enforcer mode and effective mode.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import BUSYBOX, DEMO, EnforcerProcess, LiveConsole, Podman
from helpers import images
from tidegate import demo
from tidegate.cli.main import main
from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]
MODES = [(p, g) for p in ("audit", "enforce") for g in ("audit", "enforce")]


def _api(console: LiveConsole, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"{console.url}/api/v1", headers=headers, timeout=30)


def _setup(console: LiveConsole, headers_for: Headers, *, policy_mode: str, group_mode: str) -> str:
    """The group (its token), the runtime policy; the group token."""
    with _api(console, headers_for(Role.SECURITY_ANALYST)) as api:
        group = api.post("/enforcer-groups", json={"name": "podman-hosts", "mode": group_mode})
        assert group.status_code == 201, group.text
        strict = {
            "name": "strict",
            "mode": policy_mode,
            "controls": {"block_unregistered": True, "block_disallowed": True, "block_root": True},
        }
        created = api.post("/runtime-policies", json=strict)
        assert created.status_code == 201, created.text
        return str(group.json()["token"])


def _register_disallowed_demo(
    console: LiveConsole, headers_for: Headers, token_for: Callable[[Role], str], db: Path
) -> None:
    policy = {
        "name": "prod",
        "mode": "enforce",
        "controls": {"severity": {"max_severity": "medium"}},
    }
    with _api(console, headers_for(Role.SECURITY_ANALYST)) as api:
        assert api.post("/policies", json=policy).status_code == 201
    layout = images.cached("gate-demo-v1", demo.build) / "layout"
    err = io.StringIO()
    code = main(
        ["scan", f"oci:{layout}:{demo.TAG}", "--db", str(db), "-q", "-f", "json",
         "--console", console.url, "--token", token_for(Role.CI), "--image-name", DEMO],
        stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    assert code == 0, err.getvalue()


def _runtime_events(console: LiveConsole, headers_for: Headers) -> list[dict[str, Any]]:
    with _api(console, headers_for(Role.AUDITOR)) as api:
        answer = api.get("/events", params={"category": "runtime", "limit": 500})
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["items"] if "idempotency_key" in e["data"]]


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("policy_mode", "group_mode"), MODES, ids=[f"{p}-policy/{g}-group" for p, g in MODES]
)
@pytest.mark.parametrize(
    ("image", "control"), [(BUSYBOX, "block_unregistered"), (DEMO, "block_disallowed")],
    ids=["unregistered", "disallowed"],
)  # fmt: skip
def test_start_decided_and_reported_in_every_mode(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    live_console: LiveConsole,
    headers_for: Headers,
    token_for: Callable[[Role], str],
    demo_db: Path,
    image: str,
    control: str,
    policy_mode: str,
    group_mode: str,
) -> None:
    token = _setup(live_console, headers_for, policy_mode=policy_mode, group_mode=group_mode)
    if image == DEMO:
        _register_disallowed_demo(live_console, headers_for, token_for, demo_db)
    enforcer = start_enforcer(live_console.url, token)
    _wait_for(lambda: (enforcer.state_dir / "bundle.json").exists(), "the bundle")
    run = podman.run(image, "-c", "echo started", hooks_dir=enforcer.hooks_dir)
    blocked = policy_mode == "enforce" and group_mode == "enforce"
    if blocked:
        assert run.returncode != 0
        assert "started" not in run.stdout
        assert f"runtime policy 'strict', control {control}" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "started"

    def arrived() -> list[dict[str, Any]]:
        return [
            e
            for e in _runtime_events(live_console, headers_for)
            if e["data"].get("control") == control
        ]

    (event,) = _wait_for(arrived, f"the {control} event in the console")
    assert event["level"] == ("block" if blocked else "detect")
    data = event["data"]
    assert (data["policy_mode"], data["enforcer_mode"], data["effective_mode"]) == (
        policy_mode,
        group_mode,
        "enforce" if blocked else "audit",
    )
    assert data["enforcer_group"] == "podman-hosts"
    assert data["host"] == "test-node"
    assert data["image_ref"] == image
    assert data["image_id"] == podman.image_id(image)
    assert event["policy"] == "strict"


def test_console_away_decisions_from_cache_events_delivered_once(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    live_console: LiveConsole,
    headers_for: Headers,
) -> None:
    token = _setup(live_console, headers_for, policy_mode="enforce", group_mode="enforce")
    enforcer = start_enforcer(live_console.url, token)
    _wait_for(lambda: (enforcer.state_dir / "bundle.json").exists(), "the bundle")
    live_console.stop()
    starts = [
        (BUSYBOX, ()),  # unregistered: refused
        (BUSYBOX, ("--user", "0")),  # unregistered and root: refused, two events
        (DEMO, ()),  # unregistered here too (not scanned in this test): refused
    ]
    for image, options in starts:
        run = podman.run(image, "-c", "echo started", hooks_dir=enforcer.hooks_dir, options=options)
        assert run.returncode != 0
        assert "control block_unregistered" in run.stderr
    # An enforcer restart while the console is away: the bundle and the spool are on disk.
    enforcer.stop()
    enforcer = start_enforcer(live_console.url, token, enforcer.state_dir)
    run = podman.run(BUSYBOX, "-c", "echo started", hooks_dir=enforcer.hooks_dir)
    assert run.returncode != 0
    assert "control block_unregistered" in run.stderr
    expected = 5  # 4 unregistered + 1 root
    live_console.start()

    def delivered() -> list[dict[str, Any]] | None:
        events = _runtime_events(live_console, headers_for)
        return events if len(events) >= expected else None

    _wait_for(delivered, f"{expected} delivered events", timeout=60)
    time.sleep(2)  # a few more upload rounds: a double would show now
    events = _runtime_events(live_console, headers_for)
    keys = [e["data"]["idempotency_key"] for e in events]
    assert len(keys) == len(set(keys)) == expected
    assert (
        sorted(e["data"]["control"] for e in events) == ["block_root"] + ["block_unregistered"] * 4
    )
    assert all(e["level"] == "block" for e in events)


def test_exec_drift_reaches_the_console_with_the_consoles_inventory(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    live_console: LiveConsole,
    headers_for: Headers,
    token_for: Callable[[Role], str],
    demo_db: Path,
) -> None:
    """The default runtime policy (audit, drift prevention on) against the demo image's
    executables as the CI scan sent them: the image's own binaries match their hashes and make
    no event; a binary written into the running container is a DETECT in the console."""
    token = _setup(live_console, headers_for, policy_mode="audit", group_mode="audit")
    _register_disallowed_demo(live_console, headers_for, token_for, demo_db)
    enforcer = start_enforcer(live_console.url, token)
    _wait_for(lambda: (enforcer.state_dir / "bundle.json").exists(), "the bundle")
    run = podman.start(DEMO, "-c", "sleep 3600", hooks_dir=enforcer.hooks_dir)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        script = "ls /app >/dev/null && cp /bin/busybox /tmp/true && /tmp/true; echo rc=$?"
        proc = podman.exec(cid, "sh", "-c", script)
        assert proc.stdout.strip() == "rc=0", proc.stderr

        def arrived() -> list[dict[str, Any]]:
            return [
                e
                for e in _runtime_events(live_console, headers_for)
                if e["data"].get("source") == "monitor"
            ]

        (event,) = _wait_for(arrived, "the monitor's event in the console")
        time.sleep(1)  # nothing else follows (sh, ls, cp are the image's own)
        assert len(arrived()) == 1
    finally:
        podman.remove(cid)
    data = event["data"]
    assert event["level"] == "detect"
    assert event["policy"] == "Default runtime policy"
    assert data["control"] == "drift_prevention"
    assert (data["policy_mode"], data["enforcer_mode"], data["effective_mode"]) == (
        "audit", "audit", "audit",
    )  # fmt: skip
    assert (data["container_id"], data["image_ref"]) == (cid, DEMO)
    assert data["executable"] == "/tmp/true"
    assert data["in_upper_layer"] is True
    assert len(data["sha256"]) == 64
    assert data["parent_exe"] == "/bin/busybox"
    assert data["parent_cmdline"] == ["sh", "-c", script]
