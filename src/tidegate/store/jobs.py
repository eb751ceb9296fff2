"""The scan job queue table (Alembic revision 0003).

One row per scan to do: which image, the reference to pull, its state in the queue, its lease
(which worker holds it until when, last heartbeat), its attempts and the last error. Two indexes
serve the queue: claiming reads `(state, next_attempt_at)`, reclaiming dead leases reads
`(state, lease_expires)`. A partial unique index keeps at most one OPEN job (queued, running, or
failed and waiting for its retry) per image, so the same digest pushed twice is one scan.
Only services/ reads and writes this table; routes never do.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tidegate.store.base import Base, UTCDateTime

_TS = UTCDateTime()


class JobState(StrEnum):
    QUEUED = "queued"
    """Waiting for a worker."""
    RUNNING = "running"
    """Claimed: a worker holds its lease."""
    DONE = "done"
    """The scan result was registered."""
    FAILED = "failed"
    """An attempt failed (or its worker died); retried from `next_attempt_at`."""
    DEAD = "dead"
    """Dead-lettered after `max_attempts` failures, or a failure that no retry can fix."""


OPEN_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING, JobState.FAILED)
"""States of a job that is not finished: at most one per image."""

CLAIMABLE_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.FAILED)

OPEN_JOB_PREDICATE = "state IN ('queued', 'running', 'failed')"
"""The WHERE of the one-open-job-per-image index (the same text in the migration)."""


class ScanJobRow(Base):
    __tablename__ = "scan_jobs"
    __table_args__ = (
        Index("ix_scan_jobs_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_scan_jobs_state_lease_expires", "state", "lease_expires"),
        Index(
            "uq_scan_jobs_open_image_id",
            "image_id",
            unique=True,
            postgresql_where=text(OPEN_JOB_PREDICATE),
            sqlite_where=text(OPEN_JOB_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str | None] = mapped_column(String(200))
    """The manifest digest when known at enqueue time (a tag reference has none yet)."""
    reference: Mapped[str] = mapped_column(Text)
    """What the worker pulls: host/repository[:tag][@digest]."""
    registry_name: Mapped[str | None] = mapped_column(String(255))
    """The configured registry whose pull options (credentials, TLS) apply; None: anonymous."""
    reason: Mapped[str] = mapped_column(Text)
    """Why the job exists: "registered by reference", "webhook push", "analyzers changed"..."""
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    """Higher first."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Claims so far (a claim starts an attempt)."""
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires: Mapped[datetime | None] = mapped_column(_TS)
    heartbeat_at: Mapped[datetime | None] = mapped_column(_TS)
    next_attempt_at: Mapped[datetime] = mapped_column(_TS)
    last_error: Mapped[str | None] = mapped_column(Text)
    scan_id: Mapped[int | None] = mapped_column(Integer)
    """The scan_results row the job produced (no FK: scan results are pruned independently)."""
    created: Mapped[datetime] = mapped_column(_TS)
    updated: Mapped[datetime] = mapped_column(_TS)
    finished: Mapped[datetime | None] = mapped_column(_TS)
