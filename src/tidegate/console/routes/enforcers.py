"""Enforcer groups (create: the token is in the answer, once; settings; mode switch; token
rotation; delete) and the enforcers registered in them, with health and bundle version.

Reading needs `policies:read`; changing a group needs `policies:write`. A mode switch is an
audit event and reaches the group's enforcers at their next bundle poll (seconds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tidegate.console.deps import BundleCacheDep, ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.runtime import (
    EnforcerGroupCreate,
    EnforcerGroupCreated,
    EnforcerGroupPatch,
    EnforcerGroupPublic,
    EnforcerPublic,
)
from tidegate.core.bundle import FailMode
from tidegate.core.policy import Mode
from tidegate.core.roles import Permission
from tidegate.services import enforcers
from tidegate.store.runtime import EnforcerGroupRow, EnforcerRow

router = APIRouter(tags=["enforcers"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.POLICIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.POLICIES_WRITE))]


def _count(session: Session, group: EnforcerGroupRow) -> int:
    query = select(func.count()).select_from(EnforcerRow).where(EnforcerRow.group_id == group.id)
    return int(session.scalar(query) or 0)


def _group(session: Session, row: EnforcerGroupRow) -> EnforcerGroupPublic:
    return EnforcerGroupPublic(
        name=row.name,
        description=row.description,
        mode=Mode(row.mode),
        mode_since=row.mode_since,
        admission_enabled=row.admission_enabled,
        fail_mode=FailMode(row.fail_mode),
        audit_all=row.audit_all,
        enforcers=_count(session, row),
        created=row.created,
        updated=row.updated,
        updated_by=row.updated_by,
    )


@router.get("/enforcer-groups", response_model=list[EnforcerGroupPublic])
def list_groups(_p: Reader, session: SessionDep) -> list[EnforcerGroupPublic]:
    return [_group(session, row) for row in enforcers.list_groups(session)]


@router.post(
    "/enforcer-groups", response_model=EnforcerGroupCreated, status_code=status.HTTP_201_CREATED
)
def create_group(
    body: EnforcerGroupCreate, principal: Writer, session: SessionDep, clock: ClockDep
) -> EnforcerGroupCreated:
    """Create a group; the answer holds its token, which is never shown again."""
    created = enforcers.create_group(
        session, settings=body.model_dump(mode="json"), actor=principal.name, now=clock()
    )
    public = _group(session, created.row)
    return EnforcerGroupCreated(**public.model_dump(), token=created.token)


@router.get("/enforcer-groups/{name}", response_model=EnforcerGroupPublic)
def get_group(name: str, _p: Reader, session: SessionDep) -> EnforcerGroupPublic:
    return _group(session, enforcers.get_group(session, name=name))


@router.patch("/enforcer-groups/{name}", response_model=EnforcerGroupPublic)
def patch_group(
    name: str, body: EnforcerGroupPatch, principal: Writer, session: SessionDep, clock: ClockDep
) -> EnforcerGroupPublic:
    """Change settings; a mode switch is an audit event and reaches enforcers within seconds."""
    row = enforcers.update_group(
        session,
        name=name,
        changes=body.model_dump(mode="json", exclude_unset=True),
        actor=principal.name,
        now=clock(),
    )
    return _group(session, row)


@router.post("/enforcer-groups/{name}/token", response_model=EnforcerGroupCreated)
def rotate_token(
    name: str, principal: Writer, session: SessionDep, clock: ClockDep
) -> EnforcerGroupCreated:
    """A new token (shown once); the old one stops working at once."""
    rotated = enforcers.rotate_group_token(session, name=name, actor=principal.name, now=clock())
    public = _group(session, rotated.row)
    return EnforcerGroupCreated(**public.model_dump(), token=rotated.token)


@router.delete("/enforcer-groups/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(name: str, principal: Writer, session: SessionDep, clock: ClockDep) -> Response:
    enforcers.delete_group(session, name=name, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _current_versions(
    session: Session, cache: BundleCacheDep, groups: list[EnforcerGroupRow], now: datetime
) -> dict[int, str]:
    return {g.id: cache.get(session, group=g, now=now).version for g in groups}


@router.get("/enforcers", response_model=list[EnforcerPublic])
def list_enforcers(
    _p: Reader,
    session: SessionDep,
    clock: ClockDep,
    cache: BundleCacheDep,
    group: str | None = None,
) -> list[EnforcerPublic]:
    """Every registered enforcer with its health (last heartbeat) and the bundle it runs."""
    now = clock()
    found = enforcers.list_enforcers(session, group=group)
    groups = list({g.id: g for _e, g in found}.values())
    current = _current_versions(session, cache, groups, now)
    return [
        EnforcerPublic(
            id=e.id,
            group=g.name,
            hostname=e.hostname,
            version=e.version,
            registered=e.registered,
            last_heartbeat=e.last_heartbeat,
            health=enforcers.health_of(e, now).value,
            bundle_version=e.bundle_version,
            bundle_current=None if e.bundle_version is None else e.bundle_version == current[g.id],
            status=e.status,
        )
        for e, g in found
    ]
