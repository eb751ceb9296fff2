"""The enforcer's calls to the console: register, heartbeat, fetch the policy bundle, upload
event batches. All authenticated by the enforcer group's token (the client's bearer token).

Plain functions over a `ConsoleClient`; errors arrive translated (`ConsoleUnreachableError`
when the console is away, `ConsoleApiError` with the status otherwise), and the agent decides
what each means (keep the cached bundle, keep the events spooled).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.client.base import ConsoleClient
from tidegate.core.bundle import PolicyBundle, bundle_from_json
from tidegate.core.errors import ConsoleApiError

__all__ = [
    "EventUpload",
    "Registered",
    "fetch_bundle",
    "heartbeat",
    "register_enforcer",
    "upload_events",
]


@dataclass(frozen=True, slots=True)
class Registered:
    """The console's answer to a registration."""

    enforcer_id: str
    group: str


@dataclass(frozen=True, slots=True)
class EventUpload:
    """The console's answer to one batch: keys it stored now, keys it already had."""

    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]

    @property
    def answered(self) -> tuple[str, ...]:
        return self.accepted + self.duplicates


def _object(body: Any, url: str, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ConsoleApiError(f"console {url}: {what} answer is not an object", status=200)
    return body


def register_enforcer(
    client: ConsoleClient, *, hostname: str, version: str, enforcer_id: str | None = None
) -> Registered:
    """`POST /enforcer/register`: this host's enforcer in the token's group (again, if known)."""
    payload: dict[str, Any] = {"hostname": hostname, "version": version}
    if enforcer_id:
        payload["enforcer_id"] = enforcer_id
    body = _object(
        client.request("POST", "/enforcer/register", json=payload, expect=(200, 201)),
        client.url,
        "register",
    )
    enforcer = body.get("enforcer") if isinstance(body.get("enforcer"), dict) else body
    assert isinstance(enforcer, dict)
    eid = enforcer.get("id", enforcer.get("enforcer_id"))
    if eid is None:
        raise ConsoleApiError(
            f"console {client.url}: register answer has no enforcer id", status=200
        )
    group = body.get("group")
    name = group.get("name") if isinstance(group, dict) else group
    return Registered(enforcer_id=str(eid), group=str(name or enforcer.get("group") or ""))


def heartbeat(
    client: ConsoleClient,
    *,
    enforcer_id: str,
    bundle_version: str | None,
    status: str = "healthy",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """`POST /enforcer/heartbeat`: alive, with the bundle version it decides with."""
    payload = {
        "enforcer_id": enforcer_id,
        "bundle_version": bundle_version,
        "status": status,
        **dict(detail or {}),
    }
    client.request("POST", "/enforcer/heartbeat", json=payload, expect=(200, 201, 204))


def fetch_bundle(client: ConsoleClient, *, have: str | None) -> PolicyBundle | None:
    """`GET /enforcer/bundle` with `If-None-Match: have`; None when it is unchanged (304).

    A malformed bundle raises `BundleError` (the caller keeps its previous one).
    """
    headers = {"If-None-Match": f'"{have}"'} if have else None
    body = client.request("GET", "/enforcer/bundle", headers=headers, expect=(200, 304))
    if body is None:
        return None
    # The client decodes JSON; the bundle's version is checked against its canonical re-encoding.
    return bundle_from_json(json.dumps(body))


def upload_events(
    client: ConsoleClient, events: Iterable[Mapping[str, Any]], *, enforcer_id: str | None = None
) -> EventUpload:
    """`POST /enforcer/events`: one batch; the console ignores keys it already has."""
    payload = {"enforcer_id": enforcer_id, "events": [dict(e) for e in events]}
    body = _object(
        client.request("POST", "/enforcer/events", json=payload, expect=(200, 201, 202)),
        client.url,
        "events",
    )
    return EventUpload(
        accepted=tuple(str(k) for k in body.get("accepted") or ()),
        duplicates=tuple(str(k) for k in body.get("duplicates", body.get("duplicate")) or ()),
    )
