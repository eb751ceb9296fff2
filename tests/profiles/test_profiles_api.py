"""Image profiling through the console API, on SQLite and PostgreSQL: a profile learned twice
(the second time appending), stopped into audit mode, edited, exported as YAML and applied back,
switched to enforce, and its readiness counted from the monitor's DETECT events; hostile bodies
refused with the field named and nothing stored; roles (401/403)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from helpers.clock import FakeClock
from tidegate.cli.apply_cmd import HttpBackend, apply_documents, load_apply_documents
from tidegate.core.drift import ExecRequest, decide_exec
from tidegate.core.policy import Mode
from tidegate.core.profile import profile_from_json, to_image_profile
from tidegate.core.roles import Role

Headers = Callable[[Role], dict[str, str]]
API = "/api/v1"
IMAGE = "localhost:5000/shop/api:1.0"
REPOSITORY = "localhost:5000/shop/api"
DIGEST = "sha256:" + "ab" * 32
SHA_PY = "11" * 32
SHA_SH = "22" * 32
SHA_CURL = "33" * 32


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _start(client: TestClient, headers: Headers, **body: Any) -> dict[str, Any]:
    payload = {"image": IMAGE, "profile": "shop-api", **body}
    answer = client.post(
        f"{API}/profiles/sessions", json=payload, headers=headers(Role.SECURITY_ANALYST)
    )
    assert answer.status_code == 201, answer.text
    session: dict[str, Any] = answer.json()
    return session


def _observe(
    client: TestClient, token: str, session_id: str, items: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    batch = [
        {
            "key": f"obs-{session_id[:8]}-{i}",
            "session_id": session_id,
            "container_id": "c" * 64,
            "observed_at": now.isoformat(),
            **item,
        }
        for i, item in enumerate(items)
    ]
    answer = client.post(
        f"{API}/enforcer/profiling/observations",
        json={"observations": batch},
        headers=_bearer(token),
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _stop(client: TestClient, headers: Headers, session_id: str) -> dict[str, Any]:
    answer = client.post(
        f"{API}/profiles/sessions/{session_id}/stop", headers=headers(Role.SECURITY_ANALYST)
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


FIRST_RUN = [
    {"kind": "exec", "path": "/usr/bin/python3", "sha256": SHA_PY},
    {"kind": "exec", "path": "/bin/sh", "sha256": SHA_SH},
    {"kind": "exec", "path": "/usr/bin/python3", "sha256": SHA_PY},
    {"kind": "volume", "destination": "/data", "source": "/srv/shop"},
    {"kind": "listen", "protocol": "tcp", "port": 8080},
    {"kind": "connect", "protocol": "tcp", "port": 5432, "address": "10.0.0.5"},
]


def _monitor_event(profile: dict[str, Any], path: str, ts: datetime) -> dict[str, Any]:
    """A DETECT event exactly as the runtime monitor decides it (profile in its mode, group in
    audit), in the upload form of the enforcer's spool."""
    image_profile = to_image_profile(profile_from_json(profile))
    request = ExecRequest(
        container_id="d" * 64,
        image_digest=DIGEST,
        path=path,
        sha256="44" * 32,
        in_upper_layer=False,
        pid=4242,
        image_ref=IMAGE,
    )
    decision = decide_exec(request, None, (), group_mode=Mode.AUDIT, now=ts, profile=image_profile)
    (violation,) = decision.violations
    return {
        "idempotency_key": f"mon-{uuid.uuid4()}",
        "occurred_at": ts.isoformat(),
        "source": "monitor",
        "level": "block" if violation.blocks else "detect",
        "action": violation.decision.action.value,
        "message": violation.describe(),
        "container_id": request.container_id,
        "image": IMAGE,
        "policy_name": violation.policy_name,
        "policy_version": violation.policy_version,
        "control": violation.control.value,
        "policy_mode": violation.decision.policy_mode.value,
        "enforcer_mode": violation.decision.point_mode.value,
        "effective_mode": violation.decision.effective_mode.value,
        "data": {"executable": path, "sha256": request.sha256, "pid": request.pid},
    }


def _post_events(client: TestClient, token: str, events: list[dict[str, Any]]) -> None:
    answer = client.post(f"{API}/enforcer/events", json={"events": events}, headers=_bearer(token))
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["accepted"]) == len(events)


def _profile(client: TestClient, headers: Headers, name: str = "shop-api") -> dict[str, Any]:
    answer = client.get(f"{API}/profiles/{name}", headers=headers(Role.AUDITOR))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_learn_twice_with_append_edit_export_apply_enforce_and_readiness(
    client: TestClient, headers_for: Headers, group_token: str, clock: FakeClock
) -> None:
    first = _start(client, headers_for)
    assert (first["repository"], first["state"], first["origin"]) == (REPOSITORY, "active", "api")
    again = client.post(
        f"{API}/profiles/sessions",
        json={"image": IMAGE, "profile": "shop-api"},
        headers=headers_for(Role.SECURITY_ANALYST),
    )
    assert again.status_code == 409
    assert first["id"] in again.json()["error"]["message"]

    sent = _observe(client, group_token, first["id"], FIRST_RUN, clock())
    assert len(sent["accepted"]) == len(FIRST_RUN)
    resent = _observe(client, group_token, first["id"], FIRST_RUN, clock())
    assert (resent["accepted"], len(resent["duplicates"])) == ([], len(FIRST_RUN))
    clock.advance(timedelta(minutes=10))
    stopped = _stop(client, headers_for, first["id"])
    assert stopped["observations"] == len(FIRST_RUN)
    v1 = stopped["profile"]
    assert (v1["mode"], v1["version"], v1["source"]) == ("audit", 1, "manual")
    assert v1["executables"] == [
        {"path": "/bin/sh", "sha256": SHA_SH},
        {"path": "/usr/bin/python3", "sha256": SHA_PY},
    ]
    assert v1["volumes"] == [{"destination": "/data", "source": "/srv/shop"}]
    assert v1["listeners"] == [{"protocol": "tcp", "port": 8080, "address": ""}]
    assert v1["outbound"] == [{"protocol": "tcp", "port": 5432, "address": "10.0.0.5"}]
    assert stopped["session"]["containers"] == ["c" * 64]
    twice = client.post(
        f"{API}/profiles/sessions/{first['id']}/stop", headers=headers_for(Role.SECURITY_ANALYST)
    )
    assert twice.status_code == 409

    # The second test phase, appended, for a build named by digest.
    second = _start(client, headers_for, image=f"{REPOSITORY}@{DIGEST}", append=True)
    assert second["digest"] == DIGEST
    _observe(
        client, group_token, second["id"], [{"kind": "exec", "path": "/usr/bin/curl"}], clock()
    )
    v2 = _stop(client, headers_for, second["id"])["profile"]
    assert (v2["mode"], v2["version"], v2["learned_from"]) == ("audit", 2, [DIGEST])
    assert [e["path"] for e in v2["executables"]] == [
        "/bin/sh",
        "/usr/bin/curl",
        "/usr/bin/python3",
    ]
    assert v2["listeners"] == v1["listeners"]

    # Reviewed and edited: curl goes, a weekly job's binary is added.
    edit = {
        "repository": REPOSITORY,
        "executables": [
            {"path": "/bin/sh", "sha256": SHA_SH},
            {"path": "/usr/bin/python3", "sha256": SHA_PY},
            {"path": "/usr/local/bin/weekly-report"},
        ],
        "volumes": v2["volumes"],
        "listeners": v2["listeners"],
        "outbound": v2["outbound"],
    }
    writer = headers_for(Role.SECURITY_ANALYST)
    edited = client.put(f"{API}/profiles/shop-api", json=edit, headers=writer)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["version"], edited.json()["mode"]) == (3, "audit")
    same = client.put(f"{API}/profiles/shop-api", json=edit, headers=writer)
    assert same.json()["version"] == 3

    # Exported as YAML, deleted, applied back: the same profile; applied again: unchanged.
    exported = client.get(f"{API}/profiles/shop-api/export", headers=headers_for(Role.AUDITOR))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    (document,) = yaml.safe_load(exported.text)
    assert document["kind"] == "RuntimeProfile"
    assert document["executables"][2] == {"path": "/usr/local/bin/weekly-report", "sha256": None}
    deleted = client.delete(f"{API}/profiles/shop-api", headers=writer)
    assert deleted.status_code == 204
    assert client.get(f"{API}/profiles/shop-api", headers=writer).status_code == 404
    client.headers.update(writer)
    backend = HttpBackend(client)
    outcomes = apply_documents(backend, load_apply_documents(exported.text, "shop-api.yaml"))
    assert [(o.kind, o.name, o.action) for o in outcomes] == [
        ("RuntimeProfile", "shop-api", "created")
    ]
    restored = _profile(client, headers_for)
    assert {k: restored[k] for k in edit} == {k: edited.json()[k] for k in edit}
    again_outcomes = apply_documents(backend, load_apply_documents(exported.text, "shop-api.yaml"))
    assert [o.action for o in again_outcomes] == ["unchanged"]

    # Events from before the switch to enforce do not count in readiness.
    _post_events(client, group_token, [_monitor_event(restored, "/usr/bin/wget", clock())])
    clock.advance(timedelta(hours=1))
    switched = client.post(
        f"{API}/profiles/shop-api/mode", json={"mode": "enforce"}, headers=writer
    )
    assert switched.status_code == 200, switched.text
    enforced = switched.json()
    assert (enforced["mode"], enforced["version"]) == ("enforce", restored["version"] + 1)
    events = client.get(
        f"{API}/events", params={"policy": "shop-api"}, headers=headers_for(Role.AUDITOR)
    ).json()["items"]
    assert events[0]["action"] == "profile.mode_changed"
    assert "audit to enforce" in events[0]["message"]

    base = clock()
    _post_events(
        client,
        group_token,
        [
            _monitor_event(enforced, "/usr/bin/wget", base + timedelta(minutes=1)),
            _monitor_event(enforced, "/tmp/payload", base + timedelta(minutes=2)),
            _monitor_event(enforced, "/usr/bin/wget", base + timedelta(minutes=3)),
        ],
    )
    answer = client.get(f"{API}/profiles/shop-api/readiness", headers=headers_for(Role.AUDITOR))
    assert answer.status_code == 200, answer.text
    ready = answer.json()
    assert (ready["mode"], ready["total"]) == ("enforce", 3)
    assert [(e["path"], e["count"]) for e in ready["executables"]] == [
        ("/usr/bin/wget", 2),
        ("/tmp/payload", 1),
    ]
    wget = ready["executables"][0]
    assert wget["first_seen"] < wget["last_seen"]
    assert [e["data"]["executable"] for e in ready["latest"]] == [
        "/usr/bin/wget",
        "/tmp/payload",
        "/usr/bin/wget",
    ]
    assert all(e["level"] == "detect" for e in ready["latest"])
    # The profile was re-created by apply: no session fed this one.
    assert ready["sessions"] == []
    versions = client.get(f"{API}/profiles/shop-api/versions", headers=writer).json()
    assert [v["change"] for v in versions] == ["created", "mode"]


def test_readiness_lists_the_sessions_the_profile_was_learned_from(
    client: TestClient, headers_for: Headers, group_token: str, clock: FakeClock
) -> None:
    ids = []
    for append in (False, False, True):
        session = _start(client, headers_for, append=append)
        _observe(client, group_token, session["id"], FIRST_RUN[:1], clock())
        _stop(client, headers_for, session["id"])
        ids.append(session["id"])
        clock.advance(timedelta(minutes=1))
    ready = client.get(
        f"{API}/profiles/shop-api/readiness", headers=headers_for(Role.AUDITOR)
    ).json()
    # The first session's profile was replaced by the second; the third appended to it.
    assert [s["id"] for s in ready["sessions"]] == [ids[2], ids[1]]
    assert ready["total"] == 0


HOSTILE_PUTS = [
    (
        {"repository": REPOSITORY, "executables": [{"path": "usr/bin/x"}]},
        400,
        "executables[0].path",
    ),
    ({"repository": REPOSITORY, "executables": [{"path": "/usr/../etc/x"}]}, 400, "path"),
    (
        {"repository": REPOSITORY, "executables": [{"path": "/x"}, {"path": "/x"}]},
        400,
        "executables",
    ),
    ({"repository": REPOSITORY, "executables": [{"path": "/x", "sha256": "zz"}]}, 422, "sha256"),
    ({"repository": "shop/api:1.0"}, 400, "repository"),
    ({"repository": "bad repo"}, 400, "repository"),
    ({"repository": REPOSITORY, "listeners": [{"protocol": "sctp", "port": 1}]}, 422, "protocol"),
    ({"repository": REPOSITORY, "listeners": [{"protocol": "tcp", "port": 70000}]}, 422, "port"),
    (
        {"repository": REPOSITORY, "outbound": [{"protocol": "tcp", "port": 1, "address": "x"}]},
        400,
        "address",
    ),
    ({"repository": REPOSITORY, "mode": "block"}, 422, "mode"),
    ({"repository": REPOSITORY, "executable": []}, 422, "executable"),
    ({"repository": REPOSITORY, "volumes": [{"destination": "/d", "src": "/x"}]}, 422, "src"),
]


@pytest.mark.parametrize(("body", "status", "field"), HOSTILE_PUTS)
def test_hostile_profiles_are_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient, headers_for: Headers, body: dict[str, Any], status: int, field: str
) -> None:
    answer = client.put(
        f"{API}/profiles/shop-api", json=body, headers=headers_for(Role.SECURITY_ANALYST)
    )
    assert answer.status_code == status, answer.text
    if status == 422:
        locations = [".".join(str(p) for p in d["loc"]) for d in answer.json()["detail"]]
        assert any(field in loc for loc in locations), locations
    else:
        assert field in answer.json()["error"]["message"]
    assert client.get(f"{API}/profiles", headers=headers_for(Role.AUDITOR)).json() == []
    events = client.get(
        f"{API}/events", params={"policy": "shop-api"}, headers=headers_for(Role.AUDITOR)
    )
    assert events.json()["items"] == []


HOSTILE_STARTS = [
    ({"image": "oci:/tmp/layout", "profile": "p"}, 400, "image"),
    ({"image": "Not A Ref", "profile": "p"}, 400, "image"),
    ({"image": IMAGE, "profile": "../etc"}, 422, "profile"),
    ({"image": IMAGE, "profile": "sessions"}, 400, "reserved"),
    ({"image": IMAGE, "profile": "p", "duration_seconds": 0}, 422, "duration_seconds"),
    ({"image": IMAGE, "profile": "p", "append": "sometimes"}, 422, "append"),
    ({"image": IMAGE}, 422, "profile"),
]


@pytest.mark.parametrize(("body", "status", "field"), HOSTILE_STARTS)
def test_hostile_session_starts_are_refused_and_nothing_is_stored(
    client: TestClient, headers_for: Headers, body: dict[str, Any], status: int, field: str
) -> None:
    answer = client.post(
        f"{API}/profiles/sessions", json=body, headers=headers_for(Role.SECURITY_ANALYST)
    )
    assert answer.status_code == status, answer.text
    assert field in answer.text
    assert client.get(f"{API}/profiles/sessions", headers=headers_for(Role.AUDITOR)).json() == []


HOSTILE_OBSERVATIONS = [
    ({"kind": "exec", "path": "relative/x"}, 400, "observations[1].path"),
    ({"kind": "exec", "path": "/a//b"}, 400, "observations[1].path"),
    ({"kind": "exec", "path": "/x", "port": 80}, 400, "port"),
    ({"kind": "listen", "protocol": "tcp"}, 400, "observations[1].port"),
    ({"kind": "spawn", "path": "/x"}, 422, "kind"),
    ({"kind": "exec", "path": "/x", "observed_at": "2026-03-01T12:00:00"}, 400, "time zone"),
    ({"kind": "volume", "source": "/srv"}, 400, "destination"),
    ({"kind": "exec", "path": "/x", "key": "k"}, 422, "key"),
]


@pytest.mark.parametrize(("item", "status", "field"), HOSTILE_OBSERVATIONS)
def test_hostile_observations_refuse_the_whole_batch(
    client: TestClient,
    headers_for: Headers,
    group_token: str,
    clock: FakeClock,
    item: dict[str, Any],
    status: int,
    field: str,
) -> None:
    session = _start(client, headers_for)
    good = {
        "key": "good-key-1",
        "session_id": session["id"],
        "container_id": "c1",
        "observed_at": clock().isoformat(),
        "kind": "exec",
        "path": "/bin/sh",
    }
    bad = {**good, "key": "bad-key-1", "path": None, **item}
    bad = {k: v for k, v in bad.items() if v is not None}
    answer = client.post(
        f"{API}/enforcer/profiling/observations",
        json={"observations": [good, bad]},
        headers=_bearer(group_token),
    )
    assert answer.status_code == status, answer.text
    assert field in answer.text
    profile = _stop(client, headers_for, session["id"])
    assert profile["observations"] == 0
    assert profile["session"]["containers"] == []


def test_observations_for_an_unknown_session_are_refused_and_a_stopped_one_ignored(
    client: TestClient, headers_for: Headers, group_token: str, clock: FakeClock
) -> None:
    session = _start(client, headers_for)
    _stop(client, headers_for, session["id"])
    late = _observe(client, group_token, session["id"], FIRST_RUN[:2], clock())
    assert (late["accepted"], len(late["ignored"])) == ([], 2)
    answer = client.post(
        f"{API}/enforcer/profiling/observations",
        json={
            "observations": [
                {
                    "key": "unknown-1",
                    "session_id": "nope",
                    "container_id": "c1",
                    "observed_at": clock().isoformat(),
                    "kind": "exec",
                    "path": "/bin/sh",
                }
            ]
        },
        headers=_bearer(group_token),
    )
    assert answer.status_code == 404
    assert "'nope' not found" in answer.json()["error"]["message"]


ROUTES = [
    ("GET", "/profiles", None, Role.AUDITOR),
    ("GET", "/profiles/sessions", None, Role.AUDITOR),
    ("GET", "/profiles/shop-api/readiness", None, Role.AUDITOR),
    ("POST", "/profiles/sessions", {"image": IMAGE, "profile": "p"}, Role.SECURITY_ANALYST),
    ("PUT", "/profiles/p", {"repository": REPOSITORY}, Role.SECURITY_ANALYST),
    ("POST", "/profiles/p/mode", {"mode": "enforce"}, Role.SECURITY_ANALYST),
    ("DELETE", "/profiles/p", None, Role.SECURITY_ANALYST),
]


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES)
def test_roles(
    client: TestClient,
    headers_for: Headers,
    method: str,
    path: str,
    body: Any,
    least: Role,
) -> None:
    anonymous = client.request(method, API + path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    denied = Role.SCANNER if least is Role.AUDITOR else Role.AUDITOR
    refused = client.request(method, API + path, json=body, headers=headers_for(denied))
    assert refused.status_code == 403
    allowed = client.request(method, API + path, json=body, headers=headers_for(least))
    assert allowed.status_code not in (401, 403), allowed.text


@pytest.mark.parametrize(
    "path",
    [
        "/enforcer/profiling/sessions",
        "/enforcer/profiling/observations",
        "/enforcer/profiling/containers/c1/exited",
    ],
)
def test_enforcer_routes_take_only_a_group_token(
    client: TestClient, headers_for: Headers, path: str
) -> None:
    assert client.post(API + path, json={}).status_code == 401
    user = client.post(API + path, json={}, headers=headers_for(Role.ADMINISTRATOR))
    assert user.status_code == 401
    assert client.post(API + path, json={}, headers=_bearer("tge_forged")).status_code == 401
