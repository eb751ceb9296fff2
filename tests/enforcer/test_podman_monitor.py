"""The runtime monitor inside the real agent: real podman containers (runc, hooks dir) started
through the installed hook, and a real `tidegate enforcer` process deciding every exec in them
from its cached bundle (the console is unreachable here, so events stay in its spool).

The bundle registers the demo image with its executable inventory (path -> sha256 from a real
scan of its layout) and one runtime policy, `no drift`, in the mode under test.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from support import NOW, UNREACHABLE

from conftest import DEMO, EnforcerProcess, Podman
from helpers import images
from tidegate import demo
from tidegate.core.bundle import (
    EnforcerGroupInfo,
    ImageRecord,
    build_bundle,
    build_image_index,
    bundle_to_json,
)
from tidegate.core.policy import Mode
from tidegate.core.runtime import ImageStateKind, RuntimeControls, RuntimePolicy, RuntimePolicyId
from tidegate.enforcer.spool import Spool
from tidegate.enforcer.state import StateDir
from tidegate.image import open_image
from tidegate.scan import scan_image

pytestmark = pytest.mark.system

DROP = "cp /bin/busybox /tmp/true && /tmp/true; echo rc=$?"  # busybox runs `true` by its name


@pytest.fixture(scope="session")
def inventory() -> dict[str, str]:
    layout = images.cached("gate-demo-v1", demo.build) / "layout"
    result = scan_image(open_image(f"oci:{layout}:{demo.TAG}"))
    return {e.path: e.sha256 for e in result.catalogue.executables}


def _policy(mode: Mode, **controls: Any) -> RuntimePolicy:
    return RuntimePolicy(
        id=RuntimePolicyId("drift"), name="no drift", mode=mode,
        controls=RuntimeControls(drift_prevention=True, **controls),
    )  # fmt: skip


def _enforcer(
    podman: Podman,
    start: Callable[..., EnforcerProcess],
    tmp: Path,
    *,
    policy: RuntimePolicy,
    group_mode: Mode,
    inventory: Mapping[str, str],
    **options: Any,
) -> EnforcerProcess:
    index = build_image_index(
        [ImageRecord(ImageStateKind.REGISTERED_APPROVED, config_digest=podman.image_id(DEMO),
                     names=(DEMO,), executables=dict(inventory))]
    )  # fmt: skip
    bundle = build_bundle(
        group=EnforcerGroupInfo(name="podman-hosts", mode=group_mode),
        policies=[policy],
        services=(),
        images=index,
        now=NOW,
    )
    state = StateDir(tmp / "state").create()
    state.bundle.write_bytes(bundle_to_json(bundle))
    return start(UNREACHABLE, "group-token", state.root, **options)


def _events(enforcer: EnforcerProcess) -> list[dict[str, Any]]:
    spool = Spool(enforcer.state_dir / "spool.sqlite")
    try:
        return [e.body for e in spool.pending()]
    finally:
        spool.close()


def _wait_for(
    enforcer: EnforcerProcess, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in _events(enforcer) if predicate(e)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no such event in the spool: {_events(enforcer)}")
        time.sleep(0.1)


def _executable(event: dict[str, Any]) -> str | None:
    data = event.get("data")
    return data.get("executable") if isinstance(data, dict) else None


@pytest.fixture
def containers(podman: Podman) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for cid in started:
        podman.remove(cid)


def _start(podman: Podman, started: list[str], hooks_dir: Path | None) -> str:
    run = podman.start(DEMO, "-c", "sleep 3600", hooks_dir=hooks_dir)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    started.append(cid)
    return cid


@pytest.mark.parametrize(
    ("policy_mode", "group_mode"),
    [(Mode.ENFORCE, Mode.ENFORCE), (Mode.AUDIT, Mode.ENFORCE), (Mode.ENFORCE, Mode.AUDIT)],
    ids=[
        "enforce-policy/enforce-group",
        "audit-policy/enforce-group",
        "enforce-policy/audit-group",
    ],
)
def test_a_binary_written_into_a_running_container(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    containers: list[str],
    inventory: dict[str, str],
    policy_mode: Mode,
    group_mode: Mode,
) -> None:
    enforcer = _enforcer(
        podman, start_enforcer, tmp_path,
        policy=_policy(policy_mode), group_mode=group_mode, inventory=inventory,
    )  # fmt: skip
    cid = _start(podman, containers, enforcer.hooks_dir)
    blocked = policy_mode is Mode.ENFORCE and group_mode is Mode.ENFORCE

    proc = podman.exec(cid, "sh", "-c", DROP)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("rc=126" if blocked else "rc=0")
    if blocked:
        assert "Operation not permitted" in proc.stderr

    event = _wait_for(enforcer, lambda e: _executable(e) == "/tmp/true")
    data = event["data"]
    assert event["source"] == "monitor"
    assert event["level"] == ("block" if blocked else "detect")
    assert event["allowed"] is not blocked
    assert (event["policy_name"], event["control"]) == ("no drift", "drift_prevention")
    assert (event["policy_mode"], event["enforcer_mode"], event["effective_mode"]) == (
        policy_mode.value,
        group_mode.value,
        "enforce" if blocked else "audit",
    )
    assert (event["container_id"], event["image"]) == (cid, DEMO)
    assert event["image_id"] == podman.image_id(DEMO)
    assert event["host"] == "test-node"
    # The same bytes as the image's busybox: the path is what drifted, and the upper layer.
    assert data["sha256"] == inventory["/bin/busybox"]
    assert data["in_upper_layer"] is True
    assert data["parent_exe"] == "/bin/busybox"
    assert data["parent_cmdline"] == ["sh", "-c", DROP]
    assert "/tmp/true" in event["message"]

    # The image's own binaries keep running, and make no event.
    ok = podman.exec(
        cid, "sh", "-c", "ls /app >/dev/null && cat /app/start.sh >/dev/null && echo ok"
    )
    assert ok.stdout.strip() == "ok", ok.stderr
    time.sleep(0.5)
    monitored = [e for e in _events(enforcer) if e["source"] == "monitor"]
    assert [_executable(e) for e in monitored] == ["/tmp/true"]
    log = enforcer.log.read_text()
    assert f"watching container {cid[:12]}" in log


def test_a_container_running_before_the_agent_starts_is_watched(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    containers: list[str],
    inventory: dict[str, str],
) -> None:
    cid = _start(podman, containers, hooks_dir=None)
    enforcer = _enforcer(
        podman, start_enforcer, tmp_path,
        policy=_policy(Mode.ENFORCE), group_mode=Mode.ENFORCE, inventory=inventory,
        extra=["--podman", shlex.join(podman.base())],
    )  # fmt: skip
    assert f"watching container {cid[:12]}" in enforcer.log.read_text()
    assert podman.exec(cid, "sh", "-c", DROP).stdout.strip() == "rc=126"
    event = _wait_for(enforcer, lambda e: _executable(e) == "/tmp/true")
    assert (event["level"], event["container_id"], event["image"]) == ("block", cid, DEMO)
    assert podman.exec(cid, "busybox", "true").returncode == 0

    # A container that exits is no longer watched (the agent polls /proc every 2 s).
    podman.remove(cid)
    deadline = time.monotonic() + 15
    while f"container {cid[:12]} stopped" not in enforcer.log.read_text():
        assert time.monotonic() < deadline, enforcer.log.read_text()
        time.sleep(0.2)


def test_an_image_file_whose_hash_differs_from_the_inventory_is_drift(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    containers: list[str],
    inventory: dict[str, str],
) -> None:
    # The console's inventory says /app/start.sh held other bytes than the file the image has.
    tampered = {**inventory, "/app/start.sh": hashlib.sha256(b"another start.sh").hexdigest()}
    enforcer = _enforcer(
        podman, start_enforcer, tmp_path,
        policy=_policy(Mode.ENFORCE), group_mode=Mode.ENFORCE, inventory=tampered,
    )  # fmt: skip
    cid = _start(podman, containers, enforcer.hooks_dir)
    proc = podman.exec(cid, "sh", "-c", "/app/start.sh; echo rc=$?")
    assert proc.stdout.strip() == "rc=126", proc.stderr
    event = _wait_for(enforcer, lambda e: _executable(e) == "/app/start.sh")
    assert event["level"] == "block"
    assert "its hash differs from the image inventory" in event["message"]
    assert event["data"]["in_upper_layer"] is False
    assert event["data"]["sha256"] == inventory["/app/start.sh"]
    assert podman.exec(cid, "busybox", "true").returncode == 0


def test_without_fanotify_the_agent_says_so_and_keeps_deciding(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    containers: list[str],
    inventory: dict[str, str],
) -> None:
    # Root without CAP_SYS_ADMIN: fanotify_init(FAN_CLASS_CONTENT) is refused with EPERM.
    enforcer = _enforcer(
        podman, start_enforcer, tmp_path,
        policy=_policy(Mode.ENFORCE, block_root=True), group_mode=Mode.ENFORCE,
        inventory=inventory,
        prefix=["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"],
    )  # fmt: skip
    log = enforcer.log.read_text()
    assert log.count("runtime monitor unavailable") == 1
    assert "EPERM" in log
    alert = _wait_for(enforcer, lambda e: e["action"] == "monitor_unavailable")
    assert (alert["level"], alert["source"]) == ("error", "monitor")
    # Starts are still decided: root is refused, the image's user starts, and is not watched.
    refused = podman.run(DEMO, "-c", "true", hooks_dir=enforcer.hooks_dir, options=("--user", "0"))
    assert refused.returncode != 0
    assert "control block_root" in refused.stderr
    cid = _start(podman, containers, enforcer.hooks_dir)
    assert podman.exec(cid, "sh", "-c", DROP).stdout.strip() == "rc=0"


def test_a_host_process_running_a_containers_file_is_not_the_containers_exec(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    containers: list[str],
    inventory: dict[str, str],
) -> None:
    # The monitor never blocks the host: a drifted file run from the host by its path under the
    # container's overlay mount is the host's exec (allowed, no event); the same file run
    # inside the container is denied.
    enforcer = _enforcer(
        podman, start_enforcer, tmp_path,
        policy=_policy(Mode.ENFORCE), group_mode=Mode.ENFORCE, inventory=inventory,
    )  # fmt: skip
    cid = _start(podman, containers, enforcer.hooks_dir)
    assert podman.exec(cid, "busybox", "cp", "/bin/busybox", "/tmp/true").returncode == 0
    inspect = subprocess.run(
        [*podman.base(), "inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", cid],
        env=podman.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    merged = Path(inspect.stdout.strip())
    host = subprocess.run([str(merged / "tmp" / "true")], capture_output=True, timeout=30)
    assert host.returncode == 0, host.stderr
    assert podman.exec(cid, "sh", "-c", "/tmp/true; echo rc=$?").stdout.strip() == "rc=126"
    _wait_for(enforcer, lambda e: _executable(e) == "/tmp/true")
    time.sleep(0.5)
    monitored = [e for e in _events(enforcer) if e["source"] == "monitor"]
    assert [(_executable(e), e["level"]) for e in monitored] == [("/tmp/true", "block")]
