"""core.profile: merging observations (replace vs append, conflicting hashes, audit mode), what
the monitor enforces, JSON and document round trips, and hostile input refused naming the
field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tidegate.core.drift import ExecRequest, decide_exec
from tidegate.core.errors import ProfileError, UsageError
from tidegate.core.policy import Mode
from tidegate.core.profile import (
    NetEndpoint,
    Observation,
    ObservationKind,
    ProfileExecutable,
    ProfileSource,
    ProfileVolume,
    ProfilingSession,
    RuntimeProfile,
    SessionOrigin,
    merge,
    observation_from_json,
    observation_to_json,
    profile_from_document,
    profile_from_json,
    profile_to_document,
    profile_to_json,
    repository_of,
    session_from_json,
    session_to_json,
    to_image_profile,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A, B = "aa" * 32, "bb" * 32
DIGEST = "sha256:" + "cd" * 32


def _session(append: bool, origin: SessionOrigin = SessionOrigin.API) -> ProfilingSession:
    return ProfilingSession(
        id="s1",
        profile="api",
        repository="localhost:5000/shop/api",
        digest=DIGEST,
        append=append,
        origin=origin,
        started_at=NOW,
        started_by="alice",
    )


def _exec(path: str, sha: str | None = None) -> Observation:
    return Observation(ObservationKind.EXEC, "c1", NOW, path=path, sha256=sha)


BASE = RuntimeProfile(
    name="api",
    repository="localhost:5000/shop/api",
    mode=Mode.ENFORCE,
    version=4,
    executables=(ProfileExecutable("/bin/sh", A), ProfileExecutable("/usr/bin/old", None)),
    listeners=(NetEndpoint("tcp", 80),),
    learned_from=("sha256:" + "01" * 32,),
)
SEEN = [
    _exec("/bin/sh", B),
    _exec("/usr/bin/app", A),
    _exec("/usr/bin/app", A),
    Observation(ObservationKind.VOLUME, "c1", NOW, destination="/data", source="/srv"),
    Observation(ObservationKind.LISTEN, "c1", NOW, endpoint=NetEndpoint("tcp", 8080)),
    Observation(ObservationKind.CONNECT, "c2", NOW, endpoint=NetEndpoint("udp", 53, "10.0.0.2")),
]


def test_append_keeps_the_profile_and_adds_what_was_seen_in_audit_mode() -> None:
    merged = merge(BASE, SEEN, append=True, session=_session(True), now=NOW)
    assert merged.mode is Mode.AUDIT
    assert merged.version == 5
    assert merged.executables == (
        ProfileExecutable("/bin/sh", None),  # two contents learned: any content
        ProfileExecutable("/usr/bin/app", A),
        ProfileExecutable("/usr/bin/old", None),
    )
    assert merged.volumes == (ProfileVolume("/data", "/srv"),)
    assert merged.listeners == (NetEndpoint("tcp", 80), NetEndpoint("tcp", 8080))
    assert merged.outbound == (NetEndpoint("udp", 53, "10.0.0.2"),)
    assert merged.learned_from == (*BASE.learned_from, DIGEST)
    assert (merged.applied_at, merged.source) == (NOW, ProfileSource.MANUAL)


def test_replace_forgets_the_old_content_but_keeps_counting_versions() -> None:
    merged = merge(BASE, SEEN, append=False, session=_session(False), now=NOW)
    assert [e.path for e in merged.executables] == ["/bin/sh", "/usr/bin/app"]
    assert merged.executables[0].sha256 == B
    assert merged.listeners == (NetEndpoint("tcp", 8080),)
    assert (merged.version, merged.learned_from) == (5, (DIGEST,))


def test_a_first_profile_from_the_automatic_profiler() -> None:
    merged = merge(
        None, SEEN[:2], append=True, session=_session(True, SessionOrigin.AUTOMATIC), now=NOW
    )
    assert (merged.version, merged.source, merged.mode) == (1, ProfileSource.AUTOMATIC, Mode.AUDIT)


@pytest.mark.parametrize(
    ("path", "sha", "mode", "allowed", "violations"),
    [
        ("/bin/sh", A, Mode.ENFORCE, True, 0),
        ("/bin/sh", B, Mode.ENFORCE, False, 1),  # learned with another content
        ("/usr/bin/old", B, Mode.ENFORCE, True, 0),  # any content
        ("/tmp/x", A, Mode.ENFORCE, False, 1),
        ("/tmp/x", A, Mode.AUDIT, True, 1),  # DETECT
    ],
)
def test_the_monitor_enforces_the_profile(
    path: str, sha: str, mode: Mode, allowed: bool, violations: int
) -> None:
    profile = to_image_profile(RuntimeProfile(**{**_fields(BASE), "mode": mode}))
    request = ExecRequest("c1", None, path, sha, in_upper_layer=False, pid=1)
    decision = decide_exec(request, None, (), group_mode=Mode.ENFORCE, now=NOW, profile=profile)
    assert decision.allowed is allowed
    assert len(decision.violations) == violations
    assert all(v.policy_name == "api" and v.control == "profile" for v in decision.violations)


def _fields(profile: RuntimeProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in RuntimeProfile.__dataclass_fields__}


def test_json_and_document_round_trips() -> None:
    merged = merge(BASE, SEEN, append=True, session=_session(True), now=NOW)
    assert profile_from_json(profile_to_json(merged)) == merged
    document = profile_to_document(merged)
    assert document["kind"] == "RuntimeProfile"
    back = profile_from_document(document)
    assert profile_to_document(back) == document
    session = _session(True)
    assert session_from_json(session_to_json(session)) == session
    for seen in SEEN:
        assert observation_from_json(observation_to_json(seen)) == seen


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.27", "docker.io/library/nginx"),
        ("localhost:5000/shop/api:1.0", "localhost:5000/shop/api"),
        ("localhost:5000/shop/api@" + DIGEST, "localhost:5000/shop/api"),
        ("quay.io/team/app", "quay.io/team/app"),
    ],
)
def test_repository_of(ref: str, repository: str) -> None:
    assert repository_of(ref) == repository


def _doc(**changes: Any) -> dict[str, Any]:
    return {"kind": "RuntimeProfile", "name": "api", "repository": "r.io/a", **changes}


HOSTILE = [
    ("a list", [], "expected an object"),
    ("wrong kind", _doc(kind="Policy"), "kind"),
    ("unknown field", _doc(executablez=[]), "executablez"),
    ("bad name", _doc(name="a b"), "name"),
    ("reserved name", _doc(name="sessions"), "reserved"),
    ("tagged repository", _doc(repository="r.io/a:1"), "repository"),
    ("relative path", _doc(executables=[{"path": "bin/sh"}]), "executables[0].path"),
    ("dot-dot path", _doc(executables=[{"path": "/bin/../sh"}]), "executables[0].path"),
    ("double slash", _doc(executables=[{"path": "//bin/sh"}]), "executables[0].path"),
    ("NUL in path", _doc(executables=[{"path": "/bin/\x00sh"}]), "executables[0].path"),
    ("bad hash", _doc(executables=[{"path": "/x", "sha256": "12"}]), "executables[0].sha256"),
    ("hash as int", _doc(executables=[{"path": "/x", "sha256": 12}]), "sha256"),
    ("path twice", _doc(executables=[{"path": "/x"}, {"path": "/x", "sha256": A}]), "twice"),
    ("bad port", _doc(listeners=[{"protocol": "tcp", "port": 0}]), "listeners[0].port"),
    ("bool port", _doc(listeners=[{"protocol": "tcp", "port": True}]), "listeners[0].port"),
    ("bad protocol", _doc(outbound=[{"protocol": "icmp", "port": 1}]), "outbound[0].protocol"),
    ("bad address", _doc(outbound=[{"protocol": "tcp", "port": 1, "address": "x"}]), "address"),
    ("bad mode", _doc(mode="block"), "mode"),
    ("volume path", _doc(volumes=[{"destination": "data"}]), "volumes[0].destination"),
    ("not a list", _doc(volumes={"destination": "/d"}), "volumes"),
]


@pytest.mark.parametrize(("case", "document", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_name_the_field(case: str, document: Any, field: str) -> None:
    with pytest.raises(ProfileError, match=field.replace("[", r"\[").replace("]", r"\]")):
        profile_from_document(document, "doc")


def test_profile_errors_are_usage_errors() -> None:
    assert issubclass(ProfileError, UsageError)


@pytest.mark.parametrize(
    ("observation", "field"),
    [
        ({"kind": "exec", "container_id": "c", "observed_at": NOW.isoformat()}, "path"),
        (
            {"kind": "exec", "path": "/x", "container_id": "", "observed_at": NOW.isoformat()},
            "container_id",
        ),
        (
            {"kind": "exec", "path": "/x", "container_id": "c", "observed_at": "yesterday"},
            "observed_at",
        ),
        (
            {
                "kind": "listen",
                "port": 1,
                "protocol": "tcp",
                "path": "/x",
                "container_id": "c",
                "observed_at": NOW.isoformat(),
            },
            "path",
        ),
        ({"kind": "teleport", "container_id": "c", "observed_at": NOW.isoformat()}, "kind"),
    ],
)
def test_hostile_observations_name_the_field(observation: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError, match=field):
        observation_from_json(observation, "obs")
