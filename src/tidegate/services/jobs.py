"""The scan job queue: enqueue, claim, heartbeat, complete, fail, reclaim dead leases, list.

A job moves queued -> running (claimed: a worker holds a lease it renews by heartbeat) -> done
(its result registered and the image evaluated). A failed attempt, or a worker that stops
heartbeating (its lease expires), puts the job in `failed` until `next_attempt_at`
(exponential backoff), after which any worker may claim it again; after `max_attempts` attempts,
or on a failure that no retry can fix, the job is `dead` with the reason, and its image `failed`.
Also owns the named leases (`leases` table) that keep a singleton, the scheduler, on one replica.

Claiming is atomic on both databases: PostgreSQL locks the chosen row with
`FOR UPDATE SKIP LOCKED` (concurrent claimers skip it instead of waiting for it); SQLite runs
one guarded `UPDATE ... WHERE state IN (claimable) ... RETURNING` (SQLite serializes writers, and
the guard makes a lost race update nothing). Only the lease holder may heartbeat, complete or
fail a job: a worker whose lease was reclaimed gets a ConflictError, and its late result is not
registered twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tidegate.core.errors import UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import ImageStatus
from tidegate.services.events import record_event
from tidegate.services.serialize import result_from_document
from tidegate.store.auth_tables import LeaseRow
from tidegate.store.db import ConflictError, NotFoundError
from tidegate.store.inventory import ImageRow
from tidegate.store.jobs import (
    CLAIMABLE_STATES,
    OPEN_JOB_PREDICATE,
    JobState,
    ScanJobRow,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_ATTEMPTS",
    "ClaimedJob",
    "JobPage",
    "ScanRequest",
    "acquire_lease",
    "claim",
    "complete",
    "enqueue_scan",
    "enqueue_scans",
    "fail",
    "get_job",
    "heartbeat",
    "list_jobs",
    "queue_counts",
    "reclaim_expired",
    "release_lease",
    "retry_delay",
]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF = timedelta(seconds=30)
"""Delay before the first retry; doubled for each further attempt."""
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """What a worker needs to run one job."""

    id: int
    image_id: int
    reference: str
    """What to pull: host/repository[:tag][@digest]."""
    digest: str | None
    registry_name: str | None
    attempt: int
    """1 for the first attempt."""
    lease_expires: datetime
    pull: dict[str, Any] | None
    """Pull options of the registry (username, password, token, insecure, ca_pem); None:
    anonymous, or no registry configured under `registry_name`."""


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: tuple[ScanJobRow, ...]
    next_cursor: int | None
    """Pass as `cursor` for the next (older) page; None on the last page."""


def retry_delay(attempts: int, base: timedelta = DEFAULT_BACKOFF) -> timedelta:
    """Exponential backoff: base, 2 base, 4 base... capped at MAX_BACKOFF."""
    delay: timedelta = base * (2 ** max(0, attempts - 1))
    return min(MAX_BACKOFF, delay)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(ScanJobRow)


def enqueue_scan(
    session: Session,
    *,
    image_id: int,
    reference: str,
    registry: str | None,
    now: datetime,
    reason: str,
    digest: str | None = None,
    priority: int = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int | None:
    """Queue a scan of an image; its job id, or None when the image has an open job already.

    One INSERT ... ON CONFLICT DO NOTHING against the one-open-job-per-image index: concurrent
    enqueuers of the same digest (a webhook retried, two pushes of one image) make one job.
    """
    if max_attempts < 1:
        raise UsageError(f"max_attempts: {max_attempts} is not a positive number")
    statement = (
        _insert(session)
        .values(
            image_id=image_id,
            digest=digest,
            reference=reference,
            registry_name=registry,
            reason=reason,
            state=JobState.QUEUED.value,
            priority=priority,
            attempts=0,
            max_attempts=max_attempts,
            next_attempt_at=now,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing(index_elements=["image_id"], index_where=_open_predicate())
        .returning(ScanJobRow.id)
    )
    job_id: int | None = session.execute(statement).scalar_one_or_none()
    return job_id


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One scan for `enqueue_scans`."""

    image_id: int
    reference: str
    registry: str | None
    reason: str
    digest: str | None = None


def enqueue_scans(
    session: Session,
    *,
    scans: Sequence[ScanRequest],
    now: datetime,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> set[int]:
    """Queue many scans as `enqueue_scan` queues one, with INSERT ... ON CONFLICT DO NOTHING
    (webhook batches); the ids of the images that got a job (the others had an open
    one already)."""
    if max_attempts < 1:
        raise UsageError(f"max_attempts: {max_attempts} is not a positive number")
    if not scans:
        return set()
    rows = [
        {"image_id": s.image_id, "digest": s.digest, "reference": s.reference,
         "registry_name": s.registry, "reason": s.reason, "state": JobState.QUEUED.value,
         "priority": 0, "attempts": 0, "max_attempts": max_attempts, "next_attempt_at": now,
         "created": now, "updated": now}
        for s in scans
    ]  # fmt: skip
    # Parameters apart from the statement: one compiled form, cached, sent in batches
    # (SQLAlchemy's insertmanyvalues), not a statement compiled anew for every batch size.
    statement = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=["image_id"], index_where=_open_predicate())
        .returning(ScanJobRow.image_id)
    )
    return set(session.execute(statement, rows).scalars())


def _open_predicate() -> Any:
    return text(OPEN_JOB_PREDICATE)


def _claimable(now: datetime) -> Any:
    return (
        select(ScanJobRow.id)
        .where(
            ScanJobRow.state.in_([s.value for s in CLAIMABLE_STATES]),
            ScanJobRow.next_attempt_at <= now,
        )
        .order_by(ScanJobRow.priority.desc(), ScanJobRow.next_attempt_at, ScanJobRow.id)
        .limit(1)
    )


def claim(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    encryption_key: str | None = None,
) -> ClaimedJob | None:
    """Claim the next due job for `worker` with a lease of `lease_seconds`; None when idle.

    `encryption_key` opens the registry's stored credentials for the worker's pull."""
    if not worker:
        raise UsageError("worker: a worker name is required to claim a job")
    lease = now + timedelta(seconds=lease_seconds)
    if session.get_bind().dialect.name == "postgresql":
        chosen = _claimable(now).with_for_update(skip_locked=True).scalar_subquery()
        guard = ScanJobRow.id == chosen
    else:
        guard = (ScanJobRow.id == _claimable(now).scalar_subquery()) & ScanJobRow.state.in_(
            [s.value for s in CLAIMABLE_STATES]
        )
    statement = (
        update(ScanJobRow)
        .where(guard)
        .values(
            state=JobState.RUNNING.value,
            attempts=ScanJobRow.attempts + 1,
            lease_owner=worker,
            lease_expires=lease,
            heartbeat_at=now,
            updated=now,
        )
        .returning(ScanJobRow.id)
        .execution_options(synchronize_session=False)
    )
    job_id = session.execute(statement).scalar_one_or_none()
    if job_id is None:
        return None
    job = session.get(ScanJobRow, job_id, populate_existing=True)
    assert job is not None
    image = session.get(ImageRow, job.image_id)
    if image is not None and image.latest_scan_id is None:
        image.status, image.status_reason = ImageStatus.SCANNING.value, f"scanning ({worker})"
    return ClaimedJob(
        id=job.id,
        image_id=job.image_id,
        reference=job.reference,
        digest=job.digest,
        registry_name=job.registry_name,
        attempt=job.attempts,
        lease_expires=lease,
        pull=_pull_options(session, job.registry_name, encryption_key),
    )


def _pull_options(
    session: Session, registry_name: str | None, key: str | None
) -> dict[str, Any] | None:
    """How to pull from the job's registry, when it is a managed one."""
    if registry_name is None:
        return None
    # Imported here: services.registries queues scans through this module.
    from tidegate.services.registries import pull_options

    try:
        return asdict(pull_options(session, registry_name, key=key))
    except NotFoundError:
        return None  # not a managed registry (or removed since): pull anonymously


def _held(session: Session, job_id: int, worker: str) -> ScanJobRow:
    """The job, locked, when `worker` holds its lease; else NotFoundError / ConflictError."""
    query = select(ScanJobRow).where(ScanJobRow.id == job_id).with_for_update()
    job = session.scalars(query.execution_options(populate_existing=True)).first()
    if job is None:
        raise NotFoundError(f"scan job {job_id} not found")
    if job.state != JobState.RUNNING or job.lease_owner != worker:
        raise ConflictError(
            f"scan job {job_id}: worker {worker!r} does not hold its lease (state {job.state},"
            f" lease owner {job.lease_owner!r}): the lease expired and the job was taken back"
        )
    return job


def heartbeat(
    session: Session, *, job_id: int, worker: str, now: datetime, lease_seconds: float
) -> datetime:
    """Renew the lease of a running job; the new expiry."""
    job = _held(session, job_id, worker)
    job.heartbeat_at, job.updated = now, now
    job.lease_expires = now + timedelta(seconds=lease_seconds)
    return job.lease_expires


def complete(
    session: Session,
    *,
    job_id: int,
    worker: str,
    scan_document: dict[str, Any],
    now: datetime,
) -> ImageRow:
    """Register the job's scan result (the `tidegate scan -f json` document), evaluate the
    image, and mark the job done; the image row."""
    from tidegate.services.images import register_scan  # images enqueues through this module

    job = _held(session, job_id, worker)
    try:
        result = result_from_document(scan_document)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"scan job {job_id}: the result is not a scan document: {exc}") from exc
    placeholder = session.get(ImageRow, job.image_id)
    image = register_scan(
        session, result=result, actor=f"scanner:{worker}", now=now, placeholder=placeholder
    )
    job.state, job.finished, job.updated = JobState.DONE.value, now, now
    job.lease_expires = None  # lease_owner stays: which worker finished the job
    job.scan_id = image.latest_scan_id
    job.digest = job.digest or image.digest
    if image.id != job.image_id:
        job.image_id = image.id  # the placeholder merged into an image known by digest
    return image


def fail(
    session: Session,
    *,
    job_id: int,
    worker: str,
    error: str,
    now: datetime,
    permanent: bool = False,
    backoff: timedelta = DEFAULT_BACKOFF,
) -> ScanJobRow:
    """Record a failed attempt: retried after a backoff, or dead-lettered after the last one
    (or at once when `permanent`: an error no retry can fix)."""
    job = _held(session, job_id, worker)
    _attempt_failed(session, job, error or "no reason given", now, permanent, backoff, worker)
    return job


def _attempt_failed(
    session: Session,
    job: ScanJobRow,
    error: str,
    now: datetime,
    permanent: bool,
    backoff: timedelta,
    worker: str | None,
) -> None:
    error = error[:MAX_ERROR_CHARS]
    job.last_error, job.updated = error, now
    job.lease_owner, job.lease_expires = None, None
    if permanent or job.attempts >= job.max_attempts:
        _dead_letter(session, job, error, now, worker)
        return
    job.state = JobState.FAILED.value
    job.next_attempt_at = now + retry_delay(job.attempts, backoff)
    image = session.get(ImageRow, job.image_id)
    if image is not None and image.latest_scan_id is None:
        # No longer "scanning": waiting for the retry, and saying why.
        image.status = ImageStatus.UNSCANNED.value
        image.status_reason = (
            f"scan attempt {job.attempts} of {job.max_attempts} failed: {error}; "
            f"retried from {job.next_attempt_at.isoformat()}"
        )
    record_event(
        session,
        category=EventCategory.SCAN,
        level=EventLevel.WARNING,
        action="scan.retry",
        message=f"scan of {job.reference} failed (attempt {job.attempts} of "
        f"{job.max_attempts}): {error}; retried from {job.next_attempt_at.isoformat()}",
        now=now,
        actor=f"scanner:{worker}" if worker else None,
        image_digest=job.digest,
        data={"job_id": job.id, "attempt": job.attempts, "reference": job.reference},
    )


def _dead_letter(
    session: Session, job: ScanJobRow, error: str, now: datetime, worker: str | None
) -> None:
    job.state, job.finished = JobState.DEAD.value, now
    image = session.get(ImageRow, job.image_id)
    if image is not None and image.latest_scan_id is None:
        image.status = ImageStatus.FAILED.value
        image.status_reason = f"scan failed after {job.attempts} attempt(s): {error}"
    record_event(
        session,
        category=EventCategory.SCAN,
        level=EventLevel.ERROR,
        action="scan.failed",
        message=f"scan of {job.reference} dead-lettered after {job.attempts} attempt(s) "
        f"of {job.max_attempts}: {error}",
        now=now,
        actor=f"scanner:{worker}" if worker else None,
        image_digest=job.digest,
        data={"job_id": job.id, "attempts": job.attempts, "reference": job.reference},
    )


def reclaim_expired(
    session: Session, *, now: datetime, backoff: timedelta = DEFAULT_BACKOFF
) -> list[int]:
    """Take back the jobs of workers whose lease expired (they died or hang): each counts as a
    failed attempt. Returns the ids taken back."""
    query = (
        select(ScanJobRow)
        .where(ScanJobRow.state == JobState.RUNNING.value, ScanJobRow.lease_expires < now)
        .order_by(ScanJobRow.id)
        .with_for_update(skip_locked=True)
    )
    taken = []
    for job in session.scalars(query):
        owner, expired = job.lease_owner, job.lease_expires
        assert expired is not None
        why = f"worker {owner!r} stopped heartbeating: its lease expired at {expired.isoformat()}"
        _attempt_failed(session, job, why, now, False, backoff, None)
        taken.append(job.id)
    return taken


def get_job(session: Session, *, job_id: int) -> ScanJobRow:
    job = session.get(ScanJobRow, job_id)
    if job is None:
        raise NotFoundError(f"scan job {job_id} not found")
    return job


def list_jobs(
    session: Session,
    *,
    state: JobState | None = None,
    image_id: int | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> JobPage:
    """Jobs newest first (keyset on id: pass the page's `next_cursor` as `cursor`)."""
    query = select(ScanJobRow)
    if state is not None:
        query = query.where(ScanJobRow.state == state.value)
    if image_id is not None:
        query = query.where(ScanJobRow.image_id == image_id)
    if cursor is not None:
        query = query.where(ScanJobRow.id < cursor)
    rows = tuple(session.scalars(query.order_by(ScanJobRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return JobPage(rows, rows[-1].id if more and rows else None)


def queue_counts(session: Session) -> dict[str, int]:
    """Jobs per state (every state present, zero included)."""
    query = select(ScanJobRow.state, func.count()).group_by(ScanJobRow.state)
    counts = {state.value: 0 for state in JobState}
    counts.update({state: int(n) for state, n in session.execute(query)})
    return counts


# --- the scheduler's lease ---------------------------------------------------------------------


def acquire_lease(
    session: Session, *, name: str, holder: str, now: datetime, seconds: float
) -> bool:
    """Take or renew the named lease for `holder` until now + seconds; False when another
    holder's lease is still valid. One replica at a time runs what the lease guards."""
    expires = now + timedelta(seconds=seconds)
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(LeaseRow)
    created = session.execute(
        insert.values(name=name, holder=holder, acquired_at=now, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(LeaseRow.name)
    ).scalar_one_or_none()
    if created is not None:
        return True
    taken = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, (LeaseRow.holder == holder) | (LeaseRow.expires_at < now))
        .values(holder=holder, acquired_at=now, expires_at=expires)
        .returning(LeaseRow.name)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return taken is not None


def release_lease(session: Session, *, name: str, holder: str) -> None:
    """Give the lease up (on shutdown), so another replica takes over at once."""
    session.execute(
        delete(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .execution_options(synchronize_session=False)
    )
