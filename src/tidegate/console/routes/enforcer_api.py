"""The enforcer-facing API, authenticated by the group token: register, heartbeat, the policy
bundle (ETag = bundle version, 304 when unchanged), and event batches with idempotency keys.
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Response, status

from tidegate.console.deps import BundleCacheDep, ClockDep, CurrentEnforcerGroup, SessionDep
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.runtime import (
    EnforcerRegister,
    EnforcerRegistered,
    EventBatchAnswer,
    EventBatchBody,
    GroupSettings,
    HeartbeatAnswer,
    HeartbeatBody,
)
from tidegate.core.bundle import FailMode
from tidegate.core.policy import Mode
from tidegate.services import enforcers
from tidegate.store.db import NotFoundError
from tidegate.store.runtime import EnforcerGroupRow, EnforcerRow

router = APIRouter(prefix="/enforcer", tags=["enforcer API"], responses={**ERROR_RESPONSES})
POLL_SECONDS = 5.0


def _settings(group: EnforcerGroupRow) -> GroupSettings:
    return GroupSettings(
        name=group.name,
        mode=Mode(group.mode),
        admission_enabled=group.admission_enabled,
        fail_mode=FailMode(group.fail_mode),
        audit_all=group.audit_all,
    )


@router.post("/register", response_model=EnforcerRegistered)
def register(
    body: EnforcerRegister, group: CurrentEnforcerGroup, session: SessionDep, clock: ClockDep
) -> EnforcerRegistered:
    """Register the enforcer of a host (again after a restart: the same id)."""
    row = enforcers.register_enforcer(
        session, group=group, hostname=body.hostname, version=body.version, now=clock()
    )
    return EnforcerRegistered(
        enforcer_id=row.id,
        group=_settings(group),
        heartbeat_seconds=enforcers.HEARTBEAT_INTERVAL.total_seconds(),
        poll_seconds=POLL_SECONDS,
    )


@router.post("/heartbeat", response_model=HeartbeatAnswer)
def heartbeat(
    body: HeartbeatBody,
    group: CurrentEnforcerGroup,
    session: SessionDep,
    clock: ClockDep,
    cache: BundleCacheDep,
) -> HeartbeatAnswer:
    now = clock()
    enforcers.heartbeat(
        session,
        group=group,
        enforcer_id=body.enforcer_id,
        bundle_version=body.bundle_version,
        status=body.report(),
        now=now,
    )
    version = cache.get(session, group=group, now=now).version
    return HeartbeatAnswer(group=_settings(group), bundle_version=version)


def _etag_matches(header: str | None, version: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or version in tags


@router.get(
    "/bundle",
    responses={
        200: {"content": {"application/json": {}}, "description": "the bundle"},
        304: {"description": "unchanged since If-None-Match"},
    },
)
def bundle(
    group: CurrentEnforcerGroup,
    session: SessionDep,
    clock: ClockDep,
    cache: BundleCacheDep,
    if_none_match: str | None = Header(default=None),
) -> Response:
    """The group's policy bundle (core.bundle JSON); 304 when If-None-Match names its version."""
    built = cache.get(session, group=group, now=clock())
    headers = {"ETag": f'"{built.version}"', "Cache-Control": "no-cache"}
    if _etag_matches(if_none_match, built.version):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=built.body, media_type="application/json", headers=headers)


def _enforcer(
    session: SessionDep, group: EnforcerGroupRow, enforcer_id: str | None
) -> EnforcerRow | None:
    if enforcer_id is None:
        return None
    row = session.get(EnforcerRow, enforcer_id)
    if row is None or row.group_id != group.id:
        raise NotFoundError(f"enforcer {enforcer_id!r} is not registered in group {group.name!r}")
    return row


@router.post("/events", response_model=EventBatchAnswer)
def post_events(
    body: EventBatchBody, group: CurrentEnforcerGroup, session: SessionDep, clock: ClockDep
) -> EventBatchAnswer:
    """Store a batch; keys already stored are answered as duplicates and not stored again."""
    events = [
        enforcers.RuntimeEventIn(
            idempotency_key=e.idempotency_key,
            ts=e.ts,
            level=e.level,
            action=e.action,
            message=e.message,
            image_digest=e.manifest_digest or e.image_id,
            policy=e.policy_name,
            data=e.event_data(),
        )
        for e in body.events
    ]
    result = enforcers.ingest_events(
        session,
        group=group,
        enforcer=_enforcer(session, group, body.enforcer_id),
        events=events,
        now=clock(),
    )
    return EventBatchAnswer(accepted=list(result.accepted), duplicates=list(result.duplicates))
