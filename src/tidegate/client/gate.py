"""The CI gate's calls to the console: fetch what to evaluate with, register the image and its
scan, record the CI scan event.

Plain functions over a `ConsoleClient`: errors arrive already translated by the client
(`ConsoleUnreachableError`, `ConsoleApiError` with the status), so the CLI decides what each
means for the build. Policies and acknowledgements come back in their API form; the CLI validates
them with the same schemas as `tidegate apply` and turns them into domain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.client.base import ConsoleClient
from tidegate.core.errors import ConsoleApiError
from tidegate.core.models import ScanResult
from tidegate.core.policy import PolicyResult, Verdict
from tidegate.report.interface import ReportOptions
from tidegate.report.json_doc import build_document

__all__ = [
    "GateBundle",
    "ImageIdentity",
    "Registration",
    "fetch_gate_policies",
    "record_ci_scan",
    "register_scan",
]


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    """How the console finds the policies and acknowledgements of an image."""

    manifest_digest: str | None
    config_digest: str | None
    registry: str | None = None
    repository: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        return self.manifest_digest or self.config_digest or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
            "registry": self.registry,
            "repository": self.repository,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True, slots=True)
class GateBundle:
    """What the console says applies to an image, in the API form."""

    policies: tuple[Mapping[str, Any], ...]
    acknowledgements: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Registration:
    """The console's answer to a registration: its own status of the image."""

    image_id: int
    status: str
    status_reason: str


def _list_of_objects(value: Any, what: str, url: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConsoleApiError(
            f"console {url}: gate answer has no list of {what} objects", status=200
        )
    return tuple(value)


def fetch_gate_policies(client: ConsoleClient, identity: ImageIdentity) -> GateBundle:
    """`POST /gate/policies`: the applicable policies and active acknowledgements."""
    body = client.request("POST", "/gate/policies", json=identity.to_json(), expect=(200,))
    if not isinstance(body, dict):
        raise ConsoleApiError(f"console {client.url}: gate answer is not an object", status=200)
    return GateBundle(
        policies=_list_of_objects(body.get("policies"), "policy", client.url),
        acknowledgements=_list_of_objects(
            body.get("acknowledgements"), "acknowledgement", client.url
        ),
    )


def register_scan(
    client: ConsoleClient,
    result: ScanResult,
    *,
    registry: str | None = None,
    repository: str | None = None,
    tag: str | None = None,
) -> Registration:
    """`POST /images` with the scan document; the console evaluates it with its own policies."""
    document = build_document(result, ReportOptions(include_executables=True))
    payload: dict[str, Any] = {"scan": document.model_dump(mode="json")}
    for key, value in (("registry", registry), ("repository", repository), ("tag", tag)):
        if value:
            payload[key] = value
    body = client.request("POST", "/images", json=payload, expect=(200, 201))
    if not isinstance(body, dict) or not isinstance(body.get("id"), int):
        raise ConsoleApiError(f"console {client.url}: registration answer has no id", status=201)
    return Registration(
        image_id=body["id"],
        status=str(body.get("status", "")),
        status_reason=str(body.get("status_reason", "")),
    )


def _policy_json(result: PolicyResult) -> dict[str, Any]:
    return {
        "policy": result.policy_name,
        "mode": result.mode.value,
        "failed_controls": [f.control for f in result.failures],
    }


def record_ci_scan(
    client: ConsoleClient,
    *,
    digest: str,
    reference: str | None,
    verdict: Verdict,
    enforce: bool,
    pipeline: Mapping[str, Any],
) -> int:
    """`POST /gate/events`: the CI scan as an audit event; the event's id."""
    payload = {
        "digest": digest,
        "reference": reference,
        "verdict": verdict.status.value,
        "enforce": enforce,
        "pipeline": dict(pipeline),
        "policies": [_policy_json(r) for r in verdict.results],
    }
    body = client.request("POST", "/gate/events", json=payload, expect=(201,))
    if not isinstance(body, dict) or not isinstance(body.get("event_id"), int):
        raise ConsoleApiError(f"console {client.url}: event answer has no event_id", status=201)
    return int(body["event_id"])
