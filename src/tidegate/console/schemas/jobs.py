"""API bodies of the scan job queue: what workers send (claim, heartbeat, result, failure) and
how jobs are shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tidegate.console.schemas.common import PublicModel, RequestBody
from tidegate.core.policy import ImageStatus
from tidegate.report.json_doc import ReportDocument
from tidegate.store.jobs import JobState

__all__ = [
    "ClaimBody",
    "ClaimedJobPublic",
    "FailBody",
    "HeartbeatBody",
    "HeartbeatPublic",
    "JobPagePublic",
    "JobPublic",
    "ResultBody",
    "ResultPublic",
]

_WORKER = Field(
    min_length=1,
    max_length=120,
    pattern=r"^[A-Za-z0-9._:@/-]+$",
    description="The worker's name (host:pid:n); the console prefixes it with the token's name.",
)


class ClaimBody(RequestBody):
    worker: str = _WORKER
    lease_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Default: the console's job_lease_seconds."
    )


class HeartbeatBody(RequestBody):
    worker: str = _WORKER
    lease_seconds: float | None = Field(default=None, gt=0, le=3600)


class ResultBody(RequestBody):
    worker: str = _WORKER
    scan: ReportDocument


class FailBody(RequestBody):
    worker: str = _WORKER
    error: str = Field(min_length=1, max_length=10_000)
    permanent: bool = Field(
        default=False, description="A failure no retry can fix: dead-letter the job at once."
    )


class ClaimedJobPublic(PublicModel):
    id: int
    image_id: int
    reference: str
    digest: str | None
    registry_name: str | None
    attempt: int
    lease_expires: datetime
    lease_seconds: float
    worker: str
    """The lease owner's name as the console knows it."""
    pull: dict[str, Any] | None
    db_snapshot: str | None
    """The console's vulnerability DB snapshot: the worker's DB should be the same."""


class HeartbeatPublic(PublicModel):
    lease_expires: datetime


class ResultPublic(PublicModel):
    job_id: int
    image_id: int
    digest: str | None
    status: ImageStatus
    status_reason: str


class JobPublic(PublicModel):
    id: int
    image_id: int
    digest: str | None
    reference: str
    registry_name: str | None
    reason: str
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires: datetime | None
    heartbeat_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    scan_id: int | None
    created: datetime
    updated: datetime
    finished: datetime | None


class JobPagePublic(PublicModel):
    jobs: list[JobPublic]
    next_cursor: int | None
    counts: dict[str, int]
    """Jobs per state in the whole queue."""
