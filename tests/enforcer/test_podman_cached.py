"""Real podman containers (runc, hooks dir) through the installed hook and a real `tidegate
enforcer` process deciding from its cached bundle (its console is unreachable here; the tests
with a live console are in test_podman_console.py).

The bundle registers the demo image (by the image ID podman reports) as DISALLOWED and does not
know the busybox image; the `strict` policy blocks unregistered and disallowed images and root.
Each case runs in all four policy-mode x group-mode combinations: the container starts unless
both enforce, and the spooled event says BLOCK or DETECT with the modes behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import NOW, UNREACHABLE, strict_policy

from conftest import BUSYBOX, DEMO, EnforcerProcess, Podman
from tidegate.core.bundle import (
    EnforcerGroupInfo,
    ImageRecord,
    build_bundle,
    build_image_index,
    bundle_to_json,
)
from tidegate.core.policy import Mode
from tidegate.core.runtime import ImageStateKind, default_runtime_policy
from tidegate.enforcer.spool import Spool
from tidegate.enforcer.state import StateDir

MODES = [(p, g) for p in (Mode.AUDIT, Mode.ENFORCE) for g in (Mode.AUDIT, Mode.ENFORCE)]


def _enforcer(
    podman: Podman, start: Callable[..., EnforcerProcess], tmp: Path, policy: Mode, group: Mode
) -> EnforcerProcess:
    index = build_image_index(
        [ImageRecord(ImageStateKind.REGISTERED_DISALLOWED, config_digest=podman.image_id(DEMO),
                     names=(DEMO,), reason="assurance policy 'prod' failed: severity")]
    )  # fmt: skip
    bundle = build_bundle(
        group=EnforcerGroupInfo(name="podman-hosts", mode=group),
        policies=[default_runtime_policy(), strict_policy(policy)],
        services=(),
        images=index,
        now=NOW,
    )
    state = StateDir(tmp / "state").create()
    state.bundle.write_bytes(bundle_to_json(bundle))
    return start(UNREACHABLE, "group-token", state.root)


def _events(enforcer: EnforcerProcess) -> list[dict[str, object]]:
    spool = Spool(enforcer.state_dir / "spool.sqlite")
    try:
        return [e.body for e in spool.pending()]
    finally:
        spool.close()


@pytest.mark.parametrize(
    ("policy_mode", "group_mode"), MODES, ids=[f"{p}-policy/{g}-group" for p, g in MODES]
)
@pytest.mark.parametrize(
    ("image", "options", "control"),
    [
        (BUSYBOX, (), "block_unregistered"),
        (DEMO, (), "block_disallowed"),
        (DEMO, ("--user", "0"), "block_root"),
    ],
    ids=["unregistered", "disallowed", "root-user"],
)
def test_container_start_in_every_mode(
    podman: Podman,
    start_enforcer: Callable[..., EnforcerProcess],
    tmp_path: Path,
    image: str,
    options: tuple[str, ...],
    control: str,
    policy_mode: Mode,
    group_mode: Mode,
) -> None:
    enforcer = _enforcer(podman, start_enforcer, tmp_path, policy_mode, group_mode)
    run = podman.run(image, "-c", "echo started", hooks_dir=enforcer.hooks_dir, options=options)
    blocked = policy_mode is Mode.ENFORCE and group_mode is Mode.ENFORCE
    if blocked:
        assert run.returncode != 0
        assert "started" not in run.stdout
        assert "runtime policy 'strict'" in run.stderr
        assert f"control {control}" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "started"  # podman shows a hook's stderr only on failure
    events = [e for e in _events(enforcer) if e["control"] == control]
    assert len(events) == 1
    (event,) = events
    assert event["level"] == ("block" if blocked else "detect")
    assert (event["policy_mode"], event["enforcer_mode"], event["effective_mode"]) == (
        policy_mode.value,
        group_mode.value,
        "enforce" if blocked else "audit",
    )
    assert event["image"] == image
    assert event["image_id"] == podman.image_id(image)
    assert event["host"] == "test-node"
    assert event["enforcer_group"] == "podman-hosts"
    assert event["source"] == "oci-hook"


def test_blacklisted_volume_and_clean_start(
    podman: Podman, start_enforcer: Callable[..., EnforcerProcess], tmp_path: Path
) -> None:
    enforcer = _enforcer(podman, start_enforcer, tmp_path, Mode.ENFORCE, Mode.ENFORCE)
    # The default policy is audit: the /etc mount is detected; strict blocks the disallowed image.
    run = podman.run(
        DEMO, "-c", "true", hooks_dir=enforcer.hooks_dir, options=("-v", "/etc:/host-etc")
    )
    assert run.returncode != 0
    assert "DETECT: runtime policy 'Default runtime policy', control volume_blacklist" in run.stderr
    assert "/etc -> /host-etc" in run.stderr
    levels = {(e["control"], e["level"]) for e in _events(enforcer)}
    assert ("volume_blacklist", "detect") in levels
    assert ("block_disallowed", "block") in levels


def test_enforcer_away_fail_open_then_closed(
    podman: Podman, start_enforcer: Callable[..., EnforcerProcess], tmp_path: Path
) -> None:
    enforcer = _enforcer(podman, start_enforcer, tmp_path, Mode.ENFORCE, Mode.ENFORCE)
    enforcer.stop()
    run = podman.run(BUSYBOX, "-c", "echo up", hooks_dir=enforcer.hooks_dir)
    assert run.returncode == 0
    assert run.stdout.strip() == "up"
    (enforcer.state_dir / "hook-fail-mode").write_text("closed")
    run = podman.run(BUSYBOX, "-c", "echo up", hooks_dir=enforcer.hooks_dir)
    assert run.returncode != 0
    assert "fail-closed" in run.stderr
