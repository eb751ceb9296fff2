"""The enforcer's parts on their own: the event spool, the OCI request reader, the hook's
fail modes, the state directory."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tidegate.enforcer import hook
from tidegate.enforcer.errors import EnforcerError, StateDirError
from tidegate.enforcer.oci import read_container, request_from_oci
from tidegate.enforcer.spool import Spool
from tidegate.enforcer.state import StateDir

CID = "5d49739d9bffd39d5199bd9b8a912f7795b12fe83fb1a89a75f5a34d30f3100f"
IMAGE_ID = "f30aa0ef2c88d25d10e4ef0d5fb47f470964c99293ca7352be859d158a9b8260"


def test_spool_keeps_keys_until_the_console_answers(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    keys = [spool.append({"n": i}) for i in range(7)]
    sent: list[list[str]] = []

    def flaky(batch: list[dict[str, Any]]) -> list[str]:
        sent.append([e["idempotency_key"] for e in batch])
        if len(sent) == 2:
            raise ConnectionError("console away")
        return [e["idempotency_key"] for e in batch]

    with pytest.raises(ConnectionError):
        spool.upload(flaky, batch=3)
    assert spool.count() == 4  # the first batch was confirmed, the second kept
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite")  # an enforcer restart
    assert [e.key for e in reopened.pending()] == keys[3:]
    result = reopened.upload(lambda b: [e["idempotency_key"] for e in b], batch=3)
    assert (result.sent, result.confirmed, reopened.count()) == (4, 4, 0)
    assert sent[1] == keys[3:6]  # the retried batch carried the same keys
    reopened.close()


def test_spool_appends_from_many_threads(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    threads = [
        threading.Thread(target=lambda: [spool.append({}) for _ in range(50)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spool.count() == 400
    assert len({e.key for e in spool.pending(1000)}) == 400
    spool.close()


def _podman_layout(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    bundle = tmp_path / "overlay-containers" / CID / "userdata"
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(config))
    meta = {"image-name": "localhost/team/app:1.0", "image-id": IMAGE_ID, "name": "web"}
    record = {"id": CID, "names": ["web"], "image": IMAGE_ID, "metadata": json.dumps(meta)}
    (tmp_path / "overlay-containers" / "containers.json").write_text(json.dumps([record]))
    return {"ociVersion": "1.0.2", "id": CID, "pid": 1, "bundle": str(bundle), "annotations": {}}


CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"]


@pytest.mark.parametrize(
    ("config", "expect"),
    [
        (
            {
                "process": {
                    "user": {"uid": 1000, "gid": 1000},
                    "args": ["/bin/sh"],
                    "env": ["A=secret"],
                },
                "linux": {
                    "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "mount")],
                    "seccomp": {},
                },
            },
            {
                "user_uid": 1000,
                "host_network": False,
                "host_pid": False,
                "env_names": ("A",),
                "added_capabilities": (),
                "seccomp_unconfined": False,
            },
        ),
        (
            {
                "process": {
                    "user": {"uid": 0},
                    "capabilities": {"bounding": CAPS},
                    "noNewPrivileges": True,
                },
                "linux": {"namespaces": [{"type": "mount"}]},
                "mounts": [
                    {
                        "source": "/etc",
                        "destination": "/host-etc",
                        "type": "bind",
                        "options": ["rbind"],
                    }
                ],
                "annotations": {"io.podman.annotations.privileged": "TRUE"},
            },
            {
                "user_uid": 0,
                "host_network": True,
                "host_pid": True,
                "host_ipc": True,
                "privileged": True,
                "added_capabilities": ("NET_ADMIN", "SYS_ADMIN"),
                "no_new_privileges": True,
                "seccomp_unconfined": True,
            },
        ),
        (
            {"process": {"user": {"uid": "0"}, "capabilities": "all"}, "linux": [], "mounts": "x"},
            {"user_uid": None, "added_capabilities": (), "mounts": ()},
        ),
    ],
    ids=["unprivileged", "privileged-host-namespaces", "hostile-types"],
)
def test_request_from_podman_bundle(
    tmp_path: Path, config: dict[str, Any], expect: dict[str, Any]
) -> None:
    state = _podman_layout(tmp_path, config)
    read_config, metadata = read_container(state)
    request = request_from_oci(state, read_config, metadata, host="h", enforcer_group="g")
    assert request.image_ref == "localhost/team/app:1.0"
    assert request.image_id == f"sha256:{IMAGE_ID}"
    assert request.name == "web"
    for key, value in expect.items():
        assert getattr(request, key) == value, key
    if config.get("mounts") and isinstance(config["mounts"], list):
        assert request.mounts[0].source == "/etc"
        assert request.mounts[0].is_bind


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"id": CID}, "no container id or bundle"),
        (
            {"id": CID, "bundle": "/nonexistent/bundle"},
            "cannot read /nonexistent/bundle/config.json",
        ),
    ],
)
def test_unreadable_state_is_an_error(state: dict[str, Any], says: str) -> None:
    with pytest.raises(EnforcerError, match=re.escape(says)):
        read_container(state)


@pytest.mark.parametrize(
    ("fail_mode_file", "stdin", "code"),
    [
        (None, b'{"id": "x"}', 0),
        ("open", b'{"id": "x"}', 0),
        ("closed", b'{"id": "x"}', 1),
        ("closed", b"", 1),
    ],
    ids=["no-agent-ever", "open", "closed", "closed-empty-state"],
)
def test_hook_without_enforcer_follows_fail_mode(
    tmp_path: Path,
    fail_mode_file: str | None,
    stdin: bytes,
    code: int,
    capfd: pytest.CaptureFixture[str],
) -> None:
    if fail_mode_file:
        (tmp_path / hook.FAIL_MODE_FILE).write_text(fail_mode_file)
    argv = ["--socket", str(tmp_path / "missing.sock"), "--state-dir", str(tmp_path)]
    assert hook.run(argv, io.BytesIO(stdin)) == code
    assert ("fail-closed" if code else "fail-open") in capfd.readouterr().err


@pytest.mark.parametrize("argv", [["--socket"], ["--colour", "x"], ["--timeout", "soon"]])
def test_hook_bad_options(argv: list[str]) -> None:
    assert hook.run(argv, io.BytesIO(b"{}")) == 2


def test_state_dir_damage_is_named(tmp_path: Path) -> None:
    state = StateDir(tmp_path).create()
    state.identity.write_text("{not json")
    with pytest.raises(StateDirError, match=r"identity\.json is not JSON"):
        state.read_json(state.identity)
    state.write_json(state.identity, {"enforcer_id": "e1"})
    assert state.read_json(state.identity) == {"enforcer_id": "e1"}
    assert state.identity.stat().st_mode & 0o777 == 0o600
