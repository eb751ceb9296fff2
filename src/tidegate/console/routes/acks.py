"""Acknowledgements: list (with filters), create, read, change, revoke.

Reading needs `acks:read`, changing `acks:write`. The requester is the caller, unless an
administrator names someone else. Create, change, revoke and expiry are audit events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.errors import ForbiddenError
from tidegate.console.schemas.acks import AckBody, AckPatch, AckPublic
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.core.policy import AckScopeKind
from tidegate.core.roles import Permission, Role
from tidegate.services import acks
from tidegate.store.inventory import AcknowledgementRow

router = APIRouter(
    prefix="/acknowledgements", tags=["acknowledgements"], responses={**ERROR_RESPONSES}
)
Reader = Annotated[Principal, Depends(require(Permission.ACKS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.ACKS_WRITE))]


def public(row: AcknowledgementRow, now: datetime) -> AckPublic:
    return AckPublic(
        id=row.id,
        vulnerability=row.vulnerability,
        scope=AckScopeKind(row.scope_kind),
        scope_value=row.scope_value,
        package_name=row.package_name,
        package_version=row.package_version,
        path=row.path,
        requester=row.requester,
        justification=row.justification,
        ticket=row.ticket,
        approver=row.approver,
        created=row.created,
        created_by=row.created_by,
        expires=row.expires,
        revoked=row.revoked,
        revoked_by=row.revoked_by,
        state=acks.state_of(row, now).value,
    )


def requester_for(principal: Principal, asked: str | None) -> str:
    """The caller, or whoever an administrator names."""
    if asked is None or asked == principal.name:
        return principal.name
    if principal.role is not Role.ADMINISTRATOR:
        raise ForbiddenError(
            f"requester {asked!r}: only an administrator may request on someone else's behalf"
        )
    return asked


@router.get("", response_model=list[AckPublic])
def list_acknowledgements(
    _p: Reader,
    session: SessionDep,
    clock: ClockDep,
    state: acks.AckState | None = None,
    vulnerability: str | None = None,
    scope: AckScopeKind | None = None,
    scope_value: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AckPublic]:
    now = clock()
    rows = acks.list_acknowledgements(
        session,
        now=now,
        state=state,
        vulnerability=vulnerability,
        scope=scope,
        scope_value=scope_value,
        limit=limit,
        offset=offset,
    )
    return [public(row, now) for row in rows]


@router.post("", response_model=AckPublic, status_code=status.HTTP_201_CREATED)
def create_acknowledgement(
    body: AckBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> AckPublic:
    now = clock()
    document = body.document(requester_for(principal, body.requester))
    row = acks.create_acknowledgement(session, document=document, actor=principal.name, now=now)
    return public(row, now)


@router.get("/{ack_id}", response_model=AckPublic)
def get_acknowledgement(ack_id: str, _p: Reader, session: SessionDep, clock: ClockDep) -> AckPublic:
    now = clock()
    acks.expire_acknowledgements(session, now=now)
    return public(acks.get_acknowledgement(session, ack_id=ack_id), now)


@router.patch("/{ack_id}", response_model=AckPublic)
def update_acknowledgement(
    ack_id: str, body: AckPatch, principal: Writer, session: SessionDep, clock: ClockDep
) -> AckPublic:
    now = clock()
    changes = body.model_dump(exclude_unset=True)
    if "requester" in changes:
        changes["requester"] = requester_for(principal, changes["requester"])
    change = acks.update_acknowledgement(
        session, ack_id=ack_id, changes=changes, actor=principal.name, now=now
    )
    return public(change.row, now)


@router.post("/{ack_id}/revoke", response_model=AckPublic)
def revoke_acknowledgement(
    ack_id: str, principal: Writer, session: SessionDep, clock: ClockDep
) -> AckPublic:
    now = clock()
    row = acks.revoke_acknowledgement(session, ack_id=ack_id, actor=principal.name, now=now)
    return public(row, now)
