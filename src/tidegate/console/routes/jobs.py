"""The scan job queue over HTTP: workers claim, heartbeat, post results or failures (permission
`scan-jobs`); anyone with `images:read` lists the queue.

A worker names itself in each body; the console records the lease owner as
"<token name>/<worker>", so one scanner token can never heartbeat or finish another's job.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from tidegate.console.deps import ClockDep, Principal, SessionDep, SettingsDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES, ErrorBody
from tidegate.console.schemas.jobs import (
    ClaimBody,
    ClaimedJobPublic,
    FailBody,
    HeartbeatBody,
    HeartbeatPublic,
    JobPagePublic,
    JobPublic,
    ResultBody,
    ResultPublic,
)
from tidegate.core.policy import ImageStatus
from tidegate.core.roles import Permission
from tidegate.services import jobs, rescan
from tidegate.store.jobs import JobState

router = APIRouter(prefix="/scan-jobs", tags=["scan-jobs"], responses={**ERROR_RESPONSES})
Worker = Annotated[Principal, Depends(require(Permission.SCAN_JOBS))]
Reader = Annotated[Principal, Depends(require(Permission.IMAGES_READ))]
_LEASE_LOST: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the worker does not hold the lease"}
}


def _owner(principal: Principal, worker: str) -> str:
    return f"{principal.name}/{worker}"


@router.post(
    "/claim",
    response_model=ClaimedJobPublic,
    responses={204: {"description": "no job is due"}},
)
def claim_job(
    body: ClaimBody,
    principal: Worker,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ClaimedJobPublic | Response:
    """Claim the next due job: 200 with the job and its lease, or 204 when the queue is idle."""
    lease = body.lease_seconds or settings.job_lease_seconds
    owner = _owner(principal, body.worker)
    job = jobs.claim(
        session,
        worker=owner,
        now=clock(),
        lease_seconds=lease,
        encryption_key=settings.encryption_secret,
    )
    if job is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return ClaimedJobPublic(
        id=job.id,
        image_id=job.image_id,
        reference=job.reference,
        digest=job.digest,
        registry_name=job.registry_name,
        attempt=job.attempt,
        lease_expires=job.lease_expires,
        lease_seconds=lease,
        worker=owner,
        pull=job.pull,
        db_snapshot=rescan.vulndb_snapshot(settings.vulndb_path),
    )


@router.post("/{job_id}/heartbeat", response_model=HeartbeatPublic, responses=_LEASE_LOST)
def heartbeat_job(
    job_id: int,
    body: HeartbeatBody,
    principal: Worker,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> HeartbeatPublic:
    expires = jobs.heartbeat(
        session,
        job_id=job_id,
        worker=_owner(principal, body.worker),
        now=clock(),
        lease_seconds=body.lease_seconds or settings.job_lease_seconds,
    )
    return HeartbeatPublic(lease_expires=expires)


@router.post("/{job_id}/result", response_model=ResultPublic, responses=_LEASE_LOST)
def post_result(
    job_id: int, body: ResultBody, principal: Worker, session: SessionDep, clock: ClockDep
) -> ResultPublic:
    """Register the job's scan result (the `tidegate scan -f json` document) and evaluate."""
    image = jobs.complete(
        session,
        job_id=job_id,
        worker=_owner(principal, body.worker),
        scan_document=body.scan.model_dump(mode="json"),
        now=clock(),
    )
    return ResultPublic(
        job_id=job_id,
        image_id=image.id,
        digest=image.digest,
        status=ImageStatus(image.status),
        status_reason=image.status_reason,
    )


@router.post("/{job_id}/fail", response_model=JobPublic, responses=_LEASE_LOST)
def fail_job(
    job_id: int,
    body: FailBody,
    principal: Worker,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JobPublic:
    """Record a failed attempt: retried after a backoff, or dead-lettered after the last."""
    job = jobs.fail(
        session,
        job_id=job_id,
        worker=_owner(principal, body.worker),
        error=body.error,
        now=clock(),
        permanent=body.permanent,
        backoff=settings.job_retry_backoff,
    )
    return JobPublic.model_validate(job)


@router.get("", response_model=JobPagePublic)
def list_jobs(
    _p: Reader,
    session: SessionDep,
    state: JobState | None = None,
    image_id: int | None = None,
    cursor: Annotated[int | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobPagePublic:
    """Jobs newest first, with the number of jobs in each state."""
    page = jobs.list_jobs(session, state=state, image_id=image_id, limit=limit, cursor=cursor)
    return JobPagePublic(
        jobs=[JobPublic.model_validate(j) for j in page.jobs],
        next_cursor=page.next_cursor,
        counts=jobs.queue_counts(session),
    )


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: int, _p: Reader, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(jobs.get_job(session, job_id=job_id))
