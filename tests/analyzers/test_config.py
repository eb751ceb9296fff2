"""Image facts from the image config: user resolution, fields, redaction, hostile documents."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tidegate.analyzers.config import (
    config_analyzer_version,
    facts_from_config,
    parse_rfc3339,
    resolve_user,
)
from tidegate.core.models import GroupEntry, UserEntry

USERS = (
    UserEntry("root", 0, 0, "/root", "/bin/sh"),
    UserEntry("daemon", 1, 1),
    UserEntry("nobody", 65534, 65534),
    UserEntry("app", 1000, 1000, "/home/app", "/bin/sh"),
    UserEntry("toor", 0, 0),
)
GROUPS = (
    GroupEntry("root", 0),
    GroupEntry("nogroup", 65534),
    GroupEntry("app", 1000),
    GroupEntry("staff", 50),
)
FAKE_TOKEN = "gh" + "p_" + "Q7x" * 12


@pytest.mark.parametrize(
    ("user", "uid", "gid", "unresolved"),
    [
        ("", 0, 0, None),
        ("root", 0, 0, None),
        ("0", 0, 0, None),
        ("toor", 0, 0, None),  # another name for uid 0 is still root
        ("app", 1000, 1000, None),
        ("1000", 1000, 1000, None),
        ("1000:1000", 1000, 1000, None),
        ("app:staff", 1000, 50, None),
        ("nobody:nogroup", 65534, 65534, None),
        ("4242", 4242, 0, None),  # not in /etc/passwd: runs as that uid, gid 0 (runc)
        ("4242:4242", 4242, 4242, None),
        ("0:1000", 0, 1000, None),
        ("ghost", None, None, "user 'ghost' of config.User is not in the image's /etc/passwd"),
        ("ghost:staff", None, 50, "user 'ghost'"),
        (
            "app:ghosts",
            1000,
            None,
            "group 'ghosts' of config.User is not in the image's /etc/group",
        ),
        (":1000", None, 1000, "names no user"),
        ("99999999999", None, None, "not in the image's /etc/passwd"),  # beyond 32 bits
        ("１０００", None, None, "not in the image's /etc/passwd"),  # non-ASCII digits
    ],
)
def test_resolve_user(user: str, uid: int | None, gid: int | None, unresolved: str | None) -> None:
    got_uid, got_gid, why = resolve_user(user, USERS, GROUPS)
    assert (got_uid, got_gid) == (uid, gid)
    if unresolved is None:
        assert why is None
    else:
        assert why is not None
        assert unresolved in why


@pytest.mark.parametrize(
    ("user", "runs_as_root"),
    [("", True), ("root", True), ("0:0", True), ("app", False), ("65534", False), ("ghost", None)],
)
def test_runs_as_root(user: str, runs_as_root: bool | None) -> None:
    facts, unknowns = facts_from_config({"config": {"User": user}}, USERS, GROUPS)
    assert facts.user == user
    assert facts.runs_as_root is runs_as_root
    assert bool(unknowns) == (runs_as_root is None)
    for unknown in unknowns:
        assert (unknown.where, unknown.analyzer) == ("config", "config")


def test_user_name_without_passwd_file_is_unknown_not_root() -> None:
    facts, unknowns = facts_from_config({"config": {"User": "root"}}, [], [])
    assert facts.runs_as_root is None
    assert len(unknowns) == 1


FULL_CONFIG: dict[str, Any] = {
    "created": "2024-03-01T12:34:56.123456789Z",
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "config": {
        "User": "app:staff",
        "Env": [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "GITHUB_TOKEN=" + FAKE_TOKEN,
            "DB_PASSWORD=Zq8vN3pK5wLm",
            "EMPTY=",
            "NOEQUALS",
            "WITH_EQUALS=a=b",
        ],
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Entrypoint": ["/usr/bin/tini", "--"],
        "Cmd": ["python", "-m", "app"],
        "WorkingDir": "/app",
        "Labels": {
            "org.opencontainers.image.source": "https://example.org/app",
            "maintainer": "team@example.org",
            "org.opencontainers.image.base.name": "docker.io/library/python:3.12-slim",
        },
        "StopSignal": "SIGTERM",
        "Volumes": {"/data": {}, "/cache": {}},
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
    "history": [
        {"created": "2024-03-01T12:00:00+02:00", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
        {
            "created": "2024-03-01T12:30:00Z",
            "created_by": "/bin/sh -c #(nop)  ENV DB_PASSWORD=Zq8vN3pK5wLm",
            "empty_layer": True,
        },
        {"created_by": "RUN pip install app", "comment": "buildkit.dockerfile.v0"},
    ],
}


def test_full_config() -> None:
    facts, unknowns = facts_from_config(FULL_CONFIG, USERS, GROUPS)
    assert unknowns == []
    assert (facts.uid, facts.gid, facts.runs_as_root) == (1000, 50, False)
    assert facts.created == datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC)
    assert (facts.architecture, facts.os, facts.variant) == ("arm64", "linux", "v8")
    assert facts.exposed_ports == ("53/udp", "8080/tcp")
    assert facts.entrypoint == ("/usr/bin/tini", "--")
    assert facts.cmd == ("python", "-m", "app")
    assert facts.working_dir == "/app"
    assert facts.stop_signal == "SIGTERM"
    assert facts.volumes == ("/cache", "/data")
    assert facts.labels[0] == ("maintainer", "team@example.org")
    assert facts.base_image == "docker.io/library/python:3.12-slim"
    env = {e.name: e for e in facts.env}
    assert env["PATH"].value == "/usr/local/bin:/usr/bin:/bin"
    assert not env["PATH"].looks_secret
    assert (env["GITHUB_TOKEN"].value, env["GITHUB_TOKEN"].rule_id) == ("<redacted>", "github-pat")
    assert (env["DB_PASSWORD"].value, env["DB_PASSWORD"].rule_id) == ("<redacted>", "env-secret")
    assert env["DB_PASSWORD"].looks_secret
    assert env["EMPTY"].value == ""
    assert env["NOEQUALS"].value == ""
    assert env["WITH_EQUALS"].value == "a=b"
    assert [h.empty_layer for h in facts.history] == [False, True, False]
    assert facts.history[0].created == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert facts.history[2].created is None
    assert facts.history[2].comment == "buildkit.dockerfile.v0"
    # The ENV step of the history repeats the value: it is redacted there too.
    assert facts.history[1].created_by == "/bin/sh -c #(nop)  ENV DB_PASSWORD=<redacted>"
    dumped = repr(facts)
    assert FAKE_TOKEN[4:] not in dumped
    assert "Zq8vN3pK5wLm" not in dumped


@pytest.mark.parametrize(
    ("annotations", "labels", "expected"),
    [
        ({}, {}, None),
        ({"org.opencontainers.image.base.name": "debian:12"}, {}, "debian:12"),
        (
            {
                "org.opencontainers.image.base.name": "docker.io/library/debian:12",
                "org.opencontainers.image.base.digest": "sha256:" + "a" * 64,
            },
            {"org.opencontainers.image.base.name": "alpine:3"},
            "docker.io/library/debian:12@sha256:" + "a" * 64,
        ),
        ({}, {"org.opencontainers.image.base.name": "alpine:3"}, "alpine:3"),
        ({"org.opencontainers.image.base.digest": "sha256:" + "b" * 64}, {}, "sha256:" + "b" * 64),
    ],
)
def test_base_image(
    annotations: dict[str, str], labels: dict[str, str], expected: str | None
) -> None:
    facts, _ = facts_from_config({"config": {"Labels": labels}}, USERS, GROUPS, annotations)
    assert facts.base_image == expected


HOSTILE: list[tuple[Any, str]] = [
    ([], "the image config is a list"),
    ("x", "the image config is a string"),
    (None, "the image config is null"),
    ({"config": []}, "config is a list, expected an object"),
    ({"config": {"User": ["root"]}}, "config.User is a list, expected a string"),
    ({"config": {"User": 0}}, "config.User is a number"),
    ({"config": {"Env": "A=B"}}, "config.Env is a string"),
    ({"config": {"Env": ["A=B", 3, None, {"x": 1}]}}, "config.Env[1] is a number"),
    ({"config": {"Labels": ["a"]}}, "config.Labels is a list"),
    ({"config": {"Labels": {"a": 1}}}, "config.Labels['a'] is a number"),
    ({"config": {"ExposedPorts": ["80/tcp"]}}, "config.ExposedPorts is a list"),
    ({"config": {"Entrypoint": "/bin/sh -c x"}}, "config.Entrypoint is a string"),
    ({"config": {"Cmd": ["a", 1]}}, "config.Cmd is a list, expected a list of strings"),
    ({"config": {"WorkingDir": {"a": 1}}}, "config.WorkingDir is an object"),
    ({"config": {"Volumes": "/data"}}, "config.Volumes is a string"),
    ({"config": {"StopSignal": 9}}, "config.StopSignal is a number"),
    ({"created": "yesterday"}, "created 'yesterday' is not an RFC 3339 timestamp"),
    ({"created": 1700000000}, "created is a number"),
    ({"created": "2024-02-30T00:00:00Z"}, "not an RFC 3339 timestamp"),
    ({"created": "2024-01-01T00:00:00"}, "not an RFC 3339 timestamp"),  # no offset
    ({"created": "x" * 10_000}, "is not an RFC 3339 timestamp"),
    ({"architecture": True}, "architecture is a boolean"),
    ({"history": {"a": 1}}, "history is an object"),
    ({"history": ["x"]}, "history[0] is a string"),
    ({"history": [{"created": "never"}]}, "history[0].created 'never'"),
    ({"history": [{"empty_layer": "yes"}]}, "history[0].empty_layer is a string"),
    ({"history": [{"created_by": ["sh"]}]}, "history[0].created_by is a list"),
]


@pytest.mark.parametrize(("config", "reason"), HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_configs_give_unknowns_not_crashes(config: Any, reason: str) -> None:
    facts, unknowns = facts_from_config(config, USERS, GROUPS)
    reasons = [u.reason for u in unknowns]
    assert any(reason in r for r in reasons), reasons
    assert all(u.where == "config" and u.analyzer == "config" for u in unknowns)
    # What could be read still is: an empty User with a broken rest is still root.
    if isinstance(config, dict) and not isinstance(config.get("config"), list):
        user = config.get("config", {}).get("User", "")
        if user == "":
            assert facts.runs_as_root is True


def test_hostile_config_keeps_the_good_fields() -> None:
    config = {
        "created": "garbage",
        "os": "linux",
        "config": {"User": ["x"], "Env": ["A=1", 2], "Cmd": ["sh"], "Labels": {"a": "b", "c": 3}},
    }
    facts, unknowns = facts_from_config(config, USERS, GROUPS)
    assert len(unknowns) == 4
    assert facts.os == "linux"
    assert facts.cmd == ("sh",)
    assert [e.name for e in facts.env] == ["A"]
    assert facts.labels == (("a", "b"),)
    assert facts.created is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T12:34:56Z", datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01t12:34:56z", datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01 12:34:56Z", datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01T12:34:56.5Z", datetime(2024, 3, 1, 12, 34, 56, 500000, tzinfo=UTC)),
        (
            "2024-03-01T12:34:56.987654321-05:30",
            datetime(
                2024, 3, 1, 12, 34, 56, 987654, tzinfo=timezone(-timedelta(hours=5, minutes=30))
            ),
        ),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("2024-03-01", None),
        ("2024-03-01T25:00:00Z", None),
        ("2024-03-01T12:00:00+24:00", None),
        ("", None),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime | None) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_analyzer_version_is_an_int() -> None:
    assert isinstance(config_analyzer_version, int)
    assert config_analyzer_version >= 1


def test_config_written_by_umoci(tmp_path: Path) -> None:
    """A config as a real image tool writes it (umoci config), read back from the OCI layout."""
    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed")
    layout = tmp_path / "oci"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:t")
    umoci(
        "config",
        "--image",
        f"{layout}:t",
        "--config.user",
        "app:staff",
        "--config.env",
        "API_TOKEN=" + FAKE_TOKEN,
        "--config.env",
        "LANG=C.UTF-8",
        "--config.exposedports",
        "8443/tcp",
        "--config.entrypoint",
        "/bin/app",
        "--config.workingdir",
        "/srv",
        "--config.label",
        "org.opencontainers.image.base.name=busybox:1.36",
        "--history.created_by",
        "umoci config",
    )
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    config_digest = manifest["config"]["digest"].split(":", 1)[1]
    config = json.loads((layout / "blobs" / "sha256" / config_digest).read_text())

    facts, unknowns = facts_from_config(config, USERS, GROUPS, manifest.get("annotations"))
    assert unknowns == []
    assert (facts.user, facts.uid, facts.gid, facts.runs_as_root) == ("app:staff", 1000, 50, False)
    assert facts.exposed_ports == ("8443/tcp",)
    assert facts.entrypoint == ("/bin/app",)
    assert facts.working_dir == "/srv"
    assert facts.base_image == "busybox:1.36"
    assert facts.created is not None
    assert facts.created.tzinfo is not None
    assert abs(datetime.now(UTC) - facts.created) < timedelta(hours=1)
    env = {e.name: e for e in facts.env}
    assert env["API_TOKEN"].looks_secret
    assert env["API_TOKEN"].value == "<redacted>"
    assert env["LANG"].value == "C.UTF-8"
    assert facts.history[-1].created_by == "umoci config"
    assert FAKE_TOKEN not in repr(facts)
