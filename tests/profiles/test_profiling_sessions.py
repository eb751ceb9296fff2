"""Profiling sessions on SQLite and PostgreSQL: the automatic profiler stopped by the console's
scheduler when its time is up (injected clock; audit mode only, even over an enforced profile),
sessions started by containers with TIDEGATE_PROFILE (start, join, stop when the last container
exits), one active session per profile, and the bundle's view (profiles, active sessions,
fingerprint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from helpers.clock import FakeClock
from tidegate.console.scheduler import Scheduler
from tidegate.console.settings import Settings
from tidegate.core.profile import SessionOrigin, SessionState
from tidegate.core.roles import Role
from tidegate.services import profiles
from tidegate.store.db import Database

Headers = Callable[[Role], dict[str, str]]
API = "/api/v1"
IMAGE = "localhost:5000/shop/worker:2.1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _exec(session_id: str, key: str, path: str, container: str, now: datetime) -> dict[str, Any]:
    return {
        "key": key,
        "session_id": session_id,
        "container_id": container,
        "observed_at": now.isoformat(),
        "kind": "exec",
        "path": path,
    }


def _upload(client: TestClient, token: str, *items: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(
        f"{API}/enforcer/profiling/observations",
        json={"observations": list(items)},
        headers=_bearer(token),
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _env_start(
    client: TestClient, token: str, container: str, *, append: bool = False, image: str = IMAGE
) -> dict[str, Any]:
    answer = client.post(
        f"{API}/enforcer/profiling/sessions",
        json={
            "profile": "worker",
            "image_ref": image,
            "digest": None,
            "container_id": container,
            "append": append,
        },
        headers=_bearer(token),
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _exited(client: TestClient, token: str, container: str) -> list[dict[str, Any]]:
    answer = client.post(
        f"{API}/enforcer/profiling/containers/{container}/exited", headers=_bearer(token)
    )
    assert answer.status_code == 200, answer.text
    stopped: list[dict[str, Any]] = answer.json()["stopped"]
    return stopped


def test_the_automatic_profiler_is_stopped_by_the_scheduler_and_applies_in_audit(
    client: TestClient,
    headers_for: Headers,
    group_token: str,
    clock: FakeClock,
    database: Database,
    settings: Settings,
) -> None:
    writer = headers_for(Role.SECURITY_ANALYST)
    # An enforced profile exists; the automatic profiler relearns it (appending).
    put = client.put(
        f"{API}/profiles/worker",
        json={
            "repository": "localhost:5000/shop/worker",
            "mode": "enforce",
            "executables": [{"path": "/bin/sh"}],
        },
        headers=writer,
    )
    assert put.status_code == 201, put.text
    started = client.post(
        f"{API}/profiles/sessions",
        json={"image": IMAGE, "profile": "worker", "append": True, "duration_seconds": 7200},
        headers=writer,
    )
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["origin"] == "automatic"
    assert session["ends_at"] is not None
    _upload(
        client, group_token, _exec(session["id"], "auto-0001", "/usr/bin/worker", "c9", clock())
    )

    scheduler = Scheduler(database, settings, clock)
    clock.advance(timedelta(hours=1, minutes=59))
    assert scheduler.tick() is True
    assert scheduler.due_profilers() == []
    assert client.get(f"{API}/profiles/worker", headers=writer).json()["mode"] == "enforce"

    clock.advance(timedelta(minutes=1))
    assert scheduler.tick() is True
    profile = client.get(f"{API}/profiles/worker", headers=writer).json()
    assert (profile["mode"], profile["source"], profile["version"]) == ("audit", "automatic", 2)
    assert [e["path"] for e in profile["executables"]] == ["/bin/sh", "/usr/bin/worker"]
    stopped = client.get(f"{API}/profiles/sessions/{session['id']}", headers=writer).json()
    assert (stopped["state"], stopped["stopped_by"]) == ("stopped", "profiler")
    events = client.get(
        f"{API}/events", params={"policy": "worker"}, headers=headers_for(Role.AUDITOR)
    ).json()["items"]
    assert events[0]["action"] == "profile.applied"
    assert "in audit mode" in events[0]["message"]
    assert scheduler.due_profilers() == []  # nothing stopped twice


def test_a_due_session_that_cannot_be_applied_ends_with_an_error_event(
    client: TestClient,
    headers_for: Headers,
    clock: FakeClock,
    database: Database,
    settings: Settings,
) -> None:
    writer = headers_for(Role.SECURITY_ANALYST)
    started = client.post(
        f"{API}/profiles/sessions",
        json={"image": IMAGE, "profile": "worker", "duration_seconds": 60},
        headers=writer,
    ).json()
    # Meanwhile someone wrote another profile for the same repository.
    other = client.put(
        f"{API}/profiles/worker-manual",
        json={"repository": "localhost:5000/shop/worker"},
        headers=writer,
    )
    assert other.status_code == 201
    clock.advance(timedelta(minutes=2))
    assert profiles.stop_due_sessions(database, now=clock()) == []
    ended = client.get(f"{API}/profiles/sessions/{started['id']}", headers=writer).json()
    assert ended["state"] == "stopped"
    events = client.get(
        f"{API}/events", params={"policy": "worker"}, headers=headers_for(Role.AUDITOR)
    ).json()["items"]
    assert (events[0]["action"], events[0]["level"]) == ("profiling.failed", "error")
    assert "worker-manual" in events[0]["message"]
    assert client.get(f"{API}/profiles/worker", headers=writer).status_code == 404


def test_env_sessions_start_join_and_stop_when_the_last_container_exits(
    client: TestClient, headers_for: Headers, group_token: str, clock: FakeClock
) -> None:
    first = _env_start(client, group_token, "c1")
    assert first["started"] is True
    session = first["session"]
    assert (session["origin"], session["containers"]) == ("env", ["c1"])
    assert session["started_by"] == "enforcer-group:prod"
    assert _env_start(client, group_token, "c1")["started"] is False  # a retry changes nothing
    joined = _env_start(client, group_token, "c2")
    assert (joined["started"], joined["session"]["id"]) == (False, session["id"])
    assert joined["session"]["containers"] == ["c1", "c2"]
    _upload(
        client,
        group_token,
        _exec(session["id"], "env-00001", "/usr/bin/worker", "c1", clock()),
        _exec(session["id"], "env-00002", "/usr/bin/helper", "c2", clock()),
    )
    # Another repository cannot join the profile's session.
    wrong = client.post(
        f"{API}/enforcer/profiling/sessions",
        json={"profile": "worker", "image_ref": "docker.io/library/alpine:3", "container_id": "c3"},
        headers=_bearer(group_token),
    )
    assert wrong.status_code == 409
    assert _exited(client, group_token, "c1") == []
    assert _exited(client, group_token, "unknown-container") == []
    (stopped,) = _exited(client, group_token, "c2")
    assert stopped["session"]["id"] == session["id"]
    assert stopped["profile"]["mode"] == "audit"
    assert [e["path"] for e in stopped["profile"]["executables"]] == [
        "/usr/bin/helper",
        "/usr/bin/worker",
    ]
    # The next TIDEGATE_PROFILE container with TIDEGATE_PROFILE_APPEND=1 starts a new session.
    second = _env_start(client, group_token, "c4", append=True)
    assert second["started"] is True
    assert second["session"]["id"] != session["id"]
    _upload(
        client, group_token, _exec(second["session"]["id"], "env-00003", "/bin/cron", "c4", clock())
    )
    # Stopped by the API instead of by its container's exit.
    answer = client.post(
        f"{API}/profiles/sessions/{second['session']['id']}/stop",
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert answer.status_code == 200, answer.text
    assert [e["path"] for e in answer.json()["profile"]["executables"]] == [
        "/bin/cron",
        "/usr/bin/helper",
        "/usr/bin/worker",
    ]
    assert _exited(client, group_token, "c4") == []  # already stopped: nothing to do


def test_api_sessions_record_containers_but_only_a_stop_ends_them(
    client: TestClient, headers_for: Headers, group_token: str, clock: FakeClock
) -> None:
    session = client.post(
        f"{API}/profiles/sessions",
        json={"image": IMAGE, "profile": "worker"},
        headers=headers_for(Role.SECURITY_ANALYST),
    ).json()
    _upload(client, group_token, _exec(session["id"], "api-00001", "/bin/sh", "c1", clock()))
    assert _exited(client, group_token, "c1") == []
    listed = client.get(
        f"{API}/profiles/sessions", params={"state": "active"}, headers=headers_for(Role.AUDITOR)
    ).json()
    assert [(s["id"], s["containers"]) for s in listed] == [(session["id"], ["c1"])]


def test_the_bundle_view_and_its_fingerprint(
    client: TestClient, headers_for: Headers, group_token: str, database: Database
) -> None:
    def fingerprint() -> str:
        with database.session() as session:
            return profiles.profiles_fingerprint(session)

    empty = fingerprint()
    assert fingerprint() == empty
    started = _env_start(client, group_token, "c1")["session"]
    with_session = fingerprint()
    assert with_session != empty
    with database.session() as session:
        (active,) = profiles.active_sessions(session)
        assert (active.id, active.origin, active.state) == (
            started["id"],
            SessionOrigin.ENV,
            SessionState.ACTIVE,
        )
        assert profiles.profiles_for_bundle(session) == ()
    _exited(client, group_token, "c1")
    applied = fingerprint()
    assert applied not in (empty, with_session)
    with database.session() as session:
        (profile,) = profiles.profiles_for_bundle(session)
        assert profiles.active_sessions(session) == ()
    client.post(
        f"{API}/profiles/{profile.name}/mode",
        json={"mode": "enforce"},
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert fingerprint() != applied


def test_one_repository_is_profiled_for_one_profile_at_a_time(
    client: TestClient, headers_for: Headers, group_token: str
) -> None:
    writer = headers_for(Role.SECURITY_ANALYST)
    first = client.post(
        f"{API}/profiles/sessions", json={"image": IMAGE, "profile": "worker"}, headers=writer
    )
    assert first.status_code == 201
    other = client.post(
        f"{API}/profiles/sessions",
        json={"image": "localhost:5000/shop/worker:3.0", "profile": "worker-2"},
        headers=writer,
    )
    assert other.status_code == 409
    assert "'worker'" in other.json()["error"]["message"]
    env = client.post(
        f"{API}/enforcer/profiling/sessions",
        json={"profile": "worker-3", "image_ref": IMAGE, "container_id": "c1"},
        headers=_bearer(group_token),
    )
    assert env.status_code == 409
    listed = client.get(f"{API}/profiles/sessions", headers=writer).json()
    assert [s["profile"] for s in listed] == ["worker"]
