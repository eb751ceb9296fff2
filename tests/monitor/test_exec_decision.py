"""Decision tables of `core.drift.decide_exec` and the monitor's pure helpers (cgroup -> container,
podman inspect -> watched container)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tidegate.core.drift import (
    ExecControl,
    ExecRequest,
    ImageProfile,
    decide_exec,
    path_matches,
)
from tidegate.core.modes import Action
from tidegate.core.policy import Mode
from tidegate.core.runtime import RuntimeControls, RuntimePolicy, RuntimePolicyId
from tidegate.enforcer.monitor import MonitorError, container_id_of_cgroup, watched_from_inspect

NOW = datetime(2025, 3, 1, tzinfo=UTC)
BUSYBOX = "a" * 64
OTHER = "b" * 64
INVENTORY = {"/bin/busybox": BUSYBOX, "/app/start.sh": "c" * 64, "/usr/bin/nc": None}
CID = "1" * 64


def request(path: str, sha: str | None = BUSYBOX, upper: bool = False) -> ExecRequest:
    return ExecRequest(
        container_id=CID, image_digest="sha256:" + "f" * 64, path=path, sha256=sha,
        in_upper_layer=upper, pid=42,
    )  # fmt: skip


def policy(mode: Mode = Mode.ENFORCE, **controls: Any) -> RuntimePolicy:
    return RuntimePolicy(
        id=RuntimePolicyId("p1"), name="exec rules", mode=mode, controls=RuntimeControls(**controls)
    )


DRIFT = policy(drift_prevention=True)


@pytest.mark.parametrize(
    ("req", "inventory", "violated"),
    [
        (request("/bin/busybox"), INVENTORY, False),
        (request("/tmp/x"), INVENTORY, True),  # not shipped, even with the same content
        (request("/bin/busybox", upper=True), INVENTORY, True),  # changed after start
        (request("/bin/busybox", sha=OTHER), INVENTORY, True),  # hash differs from the image
        (request("/bin/busybox", sha=None), INVENTORY, False),  # hash unknown: path decides
        (request("/usr/bin/nc", sha=OTHER), INVENTORY, False),  # inventory without a hash
        (request("/tmp/x"), None, False),  # no inventory: only the upper layer can tell
        (request("/tmp/x", upper=True), None, True),
    ],
)
def test_drift(req: ExecRequest, inventory: dict[str, str | None] | None, violated: bool) -> None:
    decision = decide_exec(req, inventory, [DRIFT], group_mode=Mode.ENFORCE, now=NOW)
    assert decision.allowed is not violated
    assert [v.control for v in decision.violations] == (
        [ExecControl.DRIFT_PREVENTION] if violated else []
    )
    if inventory is None:
        assert any("no executable inventory" in note for note in decision.notes)


@pytest.mark.parametrize(
    ("policy_mode", "group_mode", "action"),
    [
        (Mode.AUDIT, Mode.AUDIT, Action.DETECT),
        (Mode.AUDIT, Mode.ENFORCE, Action.DETECT),
        (Mode.ENFORCE, Mode.AUDIT, Action.DETECT),
        (Mode.ENFORCE, Mode.ENFORCE, Action.BLOCK),
    ],
)
def test_modes(policy_mode: Mode, group_mode: Mode, action: Action) -> None:
    rules = policy(policy_mode, drift_prevention=True)
    decision = decide_exec(request("/tmp/x"), INVENTORY, [rules], group_mode=group_mode, now=NOW)
    (violation,) = decision.violations
    assert violation.decision.action is action
    assert violation.decision.policy_mode == policy_mode
    assert violation.decision.point_mode == group_mode
    assert decision.allowed is (action is Action.DETECT)
    assert "exec rules" in decision.message
    assert "drift_prevention" in decision.message


def test_enforce_after_switches_a_policy_to_enforce() -> None:
    rules = RuntimePolicy(
        id=RuntimePolicyId("p"), name="later", mode=Mode.AUDIT, enforce_after=NOW,
        controls=RuntimeControls(drift_prevention=True),
    )  # fmt: skip
    decision = decide_exec(request("/tmp/x"), INVENTORY, [rules], group_mode=Mode.ENFORCE, now=NOW)
    assert not decision.allowed


@pytest.mark.parametrize(
    ("controls", "path", "controls_hit"),
    [
        ({"executable_blocklist": ("nc",)}, "/usr/bin/nc", [ExecControl.EXECUTABLE_BLOCKLIST]),
        ({"executable_blocklist": ("/usr/bin/*",)}, "/usr/bin/nc", [ExecControl.EXECUTABLE_BLOCKLIST]),  # noqa: E501
        ({"executable_blocklist": ("/usr/*",)}, "/bin/busybox", []),
        ({"allowed_executables": ("/bin/*",)}, "/bin/busybox", []),
        ({"allowed_executables": ("/bin/*",)}, "/usr/bin/nc", [ExecControl.ALLOWED_EXECUTABLES]),
        ({"allowed_executables": ("busybox",)}, "/opt/busybox", []),
        (
            {"drift_prevention": True, "executable_blocklist": ("x",)},
            "/tmp/x",
            [ExecControl.DRIFT_PREVENTION, ExecControl.EXECUTABLE_BLOCKLIST],
        ),
    ],
)  # fmt: skip
def test_executable_lists(
    controls: dict[str, Any], path: str, controls_hit: list[ExecControl]
) -> None:
    decision = decide_exec(
        request(path), INVENTORY, [policy(**controls)], group_mode=Mode.ENFORCE, now=NOW
    )
    assert [v.control for v in decision.violations] == controls_hit
    assert decision.allowed is (not controls_hit)


def test_every_policy_in_scope_yields_its_own_violation_and_disabled_ones_none() -> None:
    audit = RuntimePolicy(
        id=RuntimePolicyId("default"), name="Default", is_default=True,
        controls=RuntimeControls(drift_prevention=True),
    )  # fmt: skip
    off = RuntimePolicy(
        id=RuntimePolicyId("off"), name="off", enabled=False, mode=Mode.ENFORCE,
        controls=RuntimeControls(drift_prevention=True),
    )  # fmt: skip
    decision = decide_exec(
        request("/tmp/x"), INVENTORY, [audit, DRIFT, off], group_mode=Mode.ENFORCE, now=NOW
    )
    assert [(v.policy_name, v.decision.action) for v in decision.violations] == [
        ("Default", Action.DETECT),
        ("exec rules", Action.BLOCK),
    ]
    assert not decision.allowed
    assert len(decision.blocking) == 1
    assert len(decision.detections) == 1


@pytest.mark.parametrize(
    ("profile_mode", "path", "sha", "action"),
    [
        (Mode.AUDIT, "/bin/busybox", BUSYBOX, None),
        (Mode.AUDIT, "/app/start.sh", "c" * 64, Action.DETECT),
        (Mode.ENFORCE, "/app/start.sh", "c" * 64, Action.BLOCK),
        (Mode.ENFORCE, "/bin/busybox", OTHER, Action.BLOCK),
    ],
)
def test_profile(profile_mode: Mode, path: str, sha: str, action: Action | None) -> None:
    profile = ImageProfile(
        name="app-tests", mode=profile_mode, executables={"/bin/busybox": BUSYBOX}
    )
    decision = decide_exec(
        request(path, sha=sha), INVENTORY, [], group_mode=Mode.ENFORCE, now=NOW, profile=profile
    )
    assert [v.decision.action for v in decision.violations] == ([action] if action else [])
    if action is not None:
        (violation,) = decision.violations
        assert violation.control is ExecControl.PROFILE
        assert violation.policy_id is None
        assert violation.describe().startswith("image profile 'app-tests'")


def test_path_matches_names_the_glob() -> None:
    assert path_matches("/usr/bin/curl", ["wget", "cu*"]) == "cu*"
    assert path_matches("/usr/bin/curl", ["/bin/*"]) is None


LIBPOD = "9957" + "0" * 60
CGROUPS = [
    (f"0::/libpod_parent/libpod-{LIBPOD}\n", LIBPOD),
    (f"9:name=systemd:/libpod_parent/libpod-{LIBPOD}\n0::/libpod_parent/libpod-{LIBPOD}\n", LIBPOD),
    (f"0::/machine.slice/libpod-{LIBPOD}.scope/container\n", LIBPOD),
    (f"0::/system.slice/docker-{LIBPOD}.scope\n", LIBPOD),
    (f"12:memory:/docker/{LIBPOD}\n", LIBPOD),
    (f"0::/kubepods/besteffort/pod1/crio-{LIBPOD}.scope\n", LIBPOD),
    (f"0::/libpod_parent/libpod-conmon-{LIBPOD}\n", None),
    ("0::/\n", None),
    ("0::/user.slice/user-1000.slice/session-2.scope\n", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "cid"), CGROUPS)
def test_container_id_of_cgroup(text: str, cid: str | None) -> None:
    assert container_id_of_cgroup(text) == cid


def test_watched_from_inspect() -> None:
    doc = {
        "Id": CID,
        "Name": "web",
        "Image": "f" * 64,
        "ImageName": "localhost/demo:1",
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": "/m", "UpperDir": "/u"}},
        "Config": {"Labels": {"team": "a"}},
    }
    watched = watched_from_inspect(doc)
    assert (watched.merged_dir, watched.upper_dir, watched.image_id) == (
        "/m",
        "/u",
        "sha256:" + "f" * 64,
    )
    assert watched.labels == (("team", "a"),)
    assert watched.image_ref == "localhost/demo:1"


@pytest.mark.parametrize(
    "doc",
    [[], {"Id": CID}, {"Id": CID, "GraphDriver": {"Name": "vfs", "Data": {}}}, {"GraphDriver": 3}],
)
def test_watched_from_inspect_refuses_what_it_cannot_watch(doc: object) -> None:
    with pytest.raises(MonitorError, match="podman inspect"):
        watched_from_inspect(doc)
