"""The real runtime monitor (fanotify FAN_OPEN_EXEC_PERM, filesystem marks) against real podman
containers of the demo image: drift DETECTed in audit and denied (EPERM) in enforce, the image's
own binaries running in every mode, the host never blocked, the time budget's fail modes, and a
monitor that cannot decide leaving execs allowed with an alert."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from monitor_support import Podman, Running

from tidegate.core.bundle import FailMode
from tidegate.core.drift import ExecDecision, ExecRequest
from tidegate.core.policy import Mode
from tidegate.core.runtime import RuntimeControls, RuntimePolicy, RuntimePolicyId
from tidegate.enforcer.monitor import WatchedContainer

pytestmark = pytest.mark.system

DROP = "cp /bin/busybox /tmp/true && /tmp/true"  # busybox picks its applet by file name


def rules(mode: Mode, **controls: object) -> RuntimePolicy:
    return RuntimePolicy(
        id=RuntimePolicyId("drift"), name="no drift", mode=mode,
        controls=RuntimeControls(**controls),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def container(podman: Podman) -> Iterator[WatchedContainer]:
    watched = podman.start()
    yield watched
    podman.remove(watched)


@pytest.mark.parametrize(
    ("policy_mode", "group_mode", "level"),
    [
        (Mode.AUDIT, Mode.AUDIT, "detect"),
        (Mode.ENFORCE, Mode.AUDIT, "detect"),
        (Mode.AUDIT, Mode.ENFORCE, "detect"),
        (Mode.ENFORCE, Mode.ENFORCE, "block"),
    ],
)
def test_a_binary_written_into_a_running_container(
    podman: Podman,
    container: WatchedContainer,
    run_monitor: Callable[..., Running],
    policy_mode: Mode,
    group_mode: Mode,
    level: str,
) -> None:
    running = run_monitor(
        [container], group_mode=group_mode, policies=[rules(policy_mode, drift_prevention=True)]
    )
    proc = podman.exec(container, "sh", "-c", f"{DROP}; echo rc=$?")
    blocked = level == "block"
    assert proc.returncode == 0, proc.stderr
    assert ("rc=126" if blocked else "rc=0") in proc.stdout
    if blocked:
        assert "Operation not permitted" in proc.stderr
    event = running.wait_for(lambda e: e.get("data", {}).get("executable") == "/tmp/true")
    data = event["data"]
    busybox = hashlib.sha256(Path("/bin/busybox").read_bytes()).hexdigest()
    assert event["level"] == level
    assert event["allowed"] is not blocked
    assert event["control"] == "drift_prevention"
    assert (event["policy_mode"], event["enforcer_mode"]) == (policy_mode, group_mode)
    assert event["effective_mode"] == ("enforce" if blocked else "audit")
    assert event["container_id"] == container.container_id
    assert event["image_id"] == container.image_id
    assert data["sha256"] == busybox  # same bytes as the image's busybox: the path is the drift
    assert data["in_upper_layer"] is True
    assert data["parent_cmdline"][:2] == ["sh", "-c"]
    assert data["parent_exe"] == "/bin/busybox"
    assert "/tmp/true" in event["message"]
    assert "no drift" in event["message"]
    # The image's own binaries ran (sh, cp via busybox) and made no event.
    assert {e["data"]["executable"] for e in running.settle()} == {"/tmp/true"}
    assert running.monitor.stats.denied == (1 if blocked else 0)


@pytest.mark.parametrize("group_mode", [Mode.AUDIT, Mode.ENFORCE])
def test_the_images_own_binaries_keep_running(
    podman: Podman,
    container: WatchedContainer,
    run_monitor: Callable[..., Running],
    group_mode: Mode,
) -> None:
    seen: list[tuple[WatchedContainer, ExecRequest, ExecDecision]] = []
    running = run_monitor(
        [container],
        group_mode=group_mode,
        policies=[rules(Mode.ENFORCE, drift_prevention=True)],
        on_exec=lambda watched, request, decision: seen.append((watched, request, decision)),
    )
    script = "/bin/busybox true && ls / >/dev/null && cat /etc/os-release >/dev/null && echo ok"
    proc = podman.exec(container, "sh", "-c", script, user="1000")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert running.settle() == []
    # The profiler's hook saw every exec, with the image's hashes, all allowed.
    assert {r.path for _, r, _ in seen} == {"/bin/busybox"}
    assert {w.container_id for w, _, _ in seen} == {container.container_id}
    assert all(d.allowed and not d.violations and not r.in_upper_layer for _, r, d in seen)


def test_the_host_is_never_blocked(
    podman: Podman, container: WatchedContainer, run_monitor: Callable[..., Running]
) -> None:
    running = run_monitor(
        [container], group_mode=Mode.ENFORCE, policies=[rules(Mode.ENFORCE, drift_prevention=True)]
    )
    assert podman.exec(container, "sh", "-c", "cp /bin/busybox /tmp/echo").returncode == 0
    assert subprocess.run(["/bin/true"], timeout=30).returncode == 0
    # The drifted file itself, executed by a host process through the merged dir: that
    # file system carries the enforce mark, but the process is not in the container.
    host_run = subprocess.run(
        [f"{container.merged_dir}/tmp/echo", "host"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (host_run.returncode, host_run.stdout.strip()) == (0, "host")
    assert running.monitor.stats.host_execs >= 1
    # ... while the same file inside the container is denied.
    assert podman.exec(container, "/tmp/echo", "container").returncode != 0
    blocked = [e["data"]["executable"] for e in running.settle() if e.get("level") == "block"]
    assert blocked == ["/tmp/echo"]


@pytest.mark.parametrize(("fail_mode", "runs"), [(FailMode.OPEN, True), (FailMode.CLOSED, False)])
def test_a_decision_over_budget_follows_the_groups_fail_mode(
    podman: Podman,
    container: WatchedContainer,
    run_monitor: Callable[..., Running],
    fail_mode: FailMode,
    runs: bool,
) -> None:
    # A 300 MB executable is not hashed within 20 ms: the fail mode answers, whatever the policy
    # (here: none that would object).
    running = run_monitor(
        [container], group_mode=Mode.ENFORCE, policies=[], fail_mode=fail_mode, budget=0.02
    )
    grow = "mkdir /tmp/big && cp /bin/busybox /tmp/big/true && "
    grow += "dd if=/dev/zero bs=1M count=300 >>/tmp/big/true 2>/dev/null"
    assert podman.exec(container, "sh", "-c", grow).returncode == 0
    proc = podman.exec(container, "sh", "-c", "/tmp/big/true; echo rc=$?")
    assert ("rc=0" if runs else "rc=126") in proc.stdout
    alert = running.wait_for(lambda e: e.get("action") == "decision_timeout")
    assert alert["level"] == "error"
    assert ("fail-open" if runs else "fail-closed") in alert["message"]
    assert running.monitor.stats.fail_mode_answers == 1


def test_a_monitor_that_cannot_decide_leaves_execs_allowed(
    podman: Podman, container: WatchedContainer, run_monitor: Callable[..., Running]
) -> None:
    def broken_profile(_: WatchedContainer) -> None:
        raise RuntimeError("profile store unreadable")

    running = run_monitor(
        [container],
        group_mode=Mode.ENFORCE,
        policies=[rules(Mode.ENFORCE, drift_prevention=True)],
        profile_for=broken_profile,
    )
    proc = podman.exec(container, "sh", "-c", f"{DROP}; echo rc=$?")
    assert "rc=0" in proc.stdout, proc.stderr
    alert = running.wait_for(lambda e: e.get("action") == "exec_undecided")
    assert "profile store unreadable" in alert["message"]


def test_stopping_the_monitor_releases_the_container(
    podman: Podman, container: WatchedContainer, run_monitor: Callable[..., Running]
) -> None:
    running = run_monitor(
        [container], group_mode=Mode.ENFORCE, policies=[rules(Mode.ENFORCE, drift_prevention=True)]
    )
    assert podman.exec(container, "sh", "-c", f"{DROP}; echo rc=$?").stdout.strip() == "rc=126"
    running.monitor.stop()
    assert podman.exec(container, "/tmp/true", "true").returncode == 0


def test_block_list_denies_an_image_binary_in_enforce(
    podman: Podman, container: WatchedContainer, run_monitor: Callable[..., Running]
) -> None:
    running = run_monitor(
        [container],
        group_mode=Mode.ENFORCE,
        policies=[rules(Mode.ENFORCE, executable_blocklist=("/app/*.sh",))],
    )
    proc = podman.exec(container, "/app/start.sh")
    assert proc.returncode != 0
    event = running.wait_for(lambda e: e.get("control") == "executable_blocklist")
    assert (event["data"]["executable"], event["level"], event["data"]["in_upper_layer"]) == (
        "/app/start.sh",
        "block",
        False,
    )
    assert podman.exec(container, "/bin/busybox", "true").returncode == 0
