"""Image profiling over the console API: the CLI's calls (sessions, profiles, mode, readiness,
YAML export; a user token) and the enforcer's (env-started sessions, observation batches,
container exits; the group token).

Plain functions over a `ConsoleClient` returning the console's JSON (the API schemas in
`console.schemas.profiles`), except the enforcer's calls, which return small typed answers the
agent acts on. Errors arrive translated (`ConsoleUnreachableError`, `ConsoleApiError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tidegate.client.base import ConsoleClient
from tidegate.core.errors import ConsoleApiError
from tidegate.core.policy import Mode
from tidegate.core.profile import profile_from_json, profile_to_document

__all__ = [
    "EnvSession",
    "ObservationUpload",
    "container_exited",
    "export_profile",
    "get_profile",
    "join_env_session",
    "list_profiles",
    "list_sessions",
    "readiness",
    "set_mode",
    "start_session",
    "stop_session",
    "upload_observations",
]

JSON = dict[str, Any]


def _object(body: Any, client: ConsoleClient, what: str) -> JSON:
    if not isinstance(body, dict):
        raise ConsoleApiError(f"console {client.url}: {what} answer is not an object", status=200)
    return body


def _list(body: Any, client: ConsoleClient, what: str) -> list[JSON]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ConsoleApiError(f"console {client.url}: {what} answer is not a list", status=200)
    return body


def _name(name: str) -> str:
    return quote(name, safe="")


# --- the CLI's calls ---------------------------------------------------------------------------


def start_session(
    client: ConsoleClient,
    *,
    image: str,
    profile: str,
    append: bool = False,
    duration_seconds: int | None = None,
) -> JSON:
    payload: JSON = {"image": image, "profile": profile, "append": append}
    if duration_seconds is not None:
        payload["duration_seconds"] = duration_seconds
    body = client.request("POST", "/profiles/sessions", json=payload, expect=(201,))
    return _object(body, client, "start session")


def list_sessions(
    client: ConsoleClient, *, state: str | None = None, profile: str | None = None
) -> list[JSON]:
    params = {k: v for k, v in (("state", state), ("profile", profile)) if v is not None}
    return _list(client.request("GET", "/profiles/sessions", params=params), client, "sessions")


def stop_session(client: ConsoleClient, *, session_id: str) -> JSON:
    body = client.request("POST", f"/profiles/sessions/{_name(session_id)}/stop")
    return _object(body, client, "stop session")


def list_profiles(client: ConsoleClient) -> list[JSON]:
    return _list(client.request("GET", "/profiles"), client, "profiles")


def get_profile(client: ConsoleClient, *, name: str) -> JSON:
    return _object(client.request("GET", f"/profiles/{_name(name)}"), client, "profile")


def set_mode(client: ConsoleClient, *, name: str, mode: Mode) -> JSON:
    body = client.request("POST", f"/profiles/{_name(name)}/mode", json={"mode": mode.value})
    return _object(body, client, "mode")


def readiness(client: ConsoleClient, *, name: str, latest: int = 20) -> JSON:
    body = client.request("GET", f"/profiles/{_name(name)}/readiness", params={"latest": latest})
    return _object(body, client, "readiness")


def export_profile(client: ConsoleClient, *, name: str) -> JSON:
    """The profile's `kind: RuntimeProfile` document (from its JSON form, so no YAML parsing of
    the console's answer is needed here)."""
    return profile_to_document(profile_from_json(get_profile(client, name=name), "console profile"))


# --- the enforcer's calls ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvSession:
    """The session a TIDEGATE_PROFILE container records into."""

    session_id: str
    profile: str
    started: bool
    """Started by this container (else it joined the active one)."""


@dataclass(frozen=True, slots=True)
class ObservationUpload:
    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]
    ignored: tuple[str, ...]
    """Keys of sessions no longer active: the console dropped them (do not resend)."""

    @property
    def answered(self) -> tuple[str, ...]:
        return self.accepted + self.duplicates + self.ignored


def join_env_session(
    client: ConsoleClient,
    *,
    profile: str,
    image_ref: str,
    container_id: str,
    digest: str | None = None,
    append: bool = False,
) -> EnvSession:
    """`POST /enforcer/profiling/sessions`: a container started with TIDEGATE_PROFILE."""
    payload = {
        "profile": profile,
        "image_ref": image_ref,
        "digest": digest,
        "container_id": container_id,
        "append": append,
    }
    body = _object(
        client.request("POST", "/enforcer/profiling/sessions", json=payload),
        client,
        "profiling session",
    )
    session = body.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("id"), str):
        raise ConsoleApiError(f"console {client.url}: session answer has no id", status=200)
    return EnvSession(
        session_id=session["id"],
        profile=str(session.get("profile", profile)),
        started=bool(body.get("started")),
    )


def upload_observations(
    client: ConsoleClient, observations: Iterable[Mapping[str, Any]]
) -> ObservationUpload:
    """`POST /enforcer/profiling/observations`: one batch, each with `key` and `session_id`."""
    payload = {"observations": [dict(o) for o in observations]}
    body = _object(
        client.request("POST", "/enforcer/profiling/observations", json=payload),
        client,
        "observations",
    )
    return ObservationUpload(
        accepted=tuple(str(k) for k in body.get("accepted") or ()),
        duplicates=tuple(str(k) for k in body.get("duplicates") or ()),
        ignored=tuple(str(k) for k in body.get("ignored") or ()),
    )


def container_exited(client: ConsoleClient, *, container_id: str) -> list[str]:
    """`POST /enforcer/profiling/containers/{id}/exited`; the ids of the sessions it stopped."""
    body = _object(
        client.request(
            "POST", f"/enforcer/profiling/containers/{_name(container_id)}/exited", json={}
        ),
        client,
        "container exited",
    )
    stopped = body.get("stopped") or []
    return [
        str(s["session"]["id"])
        for s in stopped
        if isinstance(s, dict) and isinstance(s.get("session"), dict)
    ]
