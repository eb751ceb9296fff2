"""Image assurance policies: list, create, read, replace (PUT), change (PATCH), delete, history.

Reading needs `policies:read`; every change needs `policies:write`, bumps the version, is an
audit event and re-evaluates the images (services.policies).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.policies import (
    PolicyBody,
    PolicyPatch,
    PolicyPublic,
    PolicyVersionPublic,
)
from tidegate.core.assurance import explain_controls
from tidegate.core.roles import Permission
from tidegate.services import policies
from tidegate.store.inventory import PolicyRow

router = APIRouter(prefix="/policies", tags=["policies"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.POLICIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.POLICIES_WRITE))]


def _public(row: PolicyRow, now: Any) -> PolicyPublic:
    policy = policies.to_domain(row)
    return PolicyPublic.from_domain(
        policy,
        created=row.created,
        updated=row.updated,
        updated_by=row.updated_by,
        explanation=explain_controls(policy.controls),
        now=now,
    )


@router.get("", response_model=list[PolicyPublic])
def list_policies(_p: Reader, session: SessionDep, clock: ClockDep) -> list[PolicyPublic]:
    now = clock()
    return [_public(row, now) for row in policies.list_policies(session)]


@router.post("", response_model=PolicyPublic, status_code=status.HTTP_201_CREATED)
def create_policy(
    body: PolicyBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> PolicyPublic:
    now = clock()
    row = policies.create_policy(session, document=body.document(), actor=principal.name, now=now)
    return _public(row, now)


@router.get("/{key}", response_model=PolicyPublic)
def get_policy(key: str, _p: Reader, session: SessionDep, clock: ClockDep) -> PolicyPublic:
    return _public(policies.get_policy(session, key=key), clock())


@router.put("/{key}", response_model=PolicyPublic)
def replace_policy(
    key: str, body: PolicyBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> PolicyPublic:
    """Replace the whole policy; the same document again changes nothing (no new version)."""
    now = clock()
    change = policies.replace_policy(
        session, key=key, document=body.document(), actor=principal.name, now=now
    )
    return _public(change.row, now)


@router.patch("/{key}", response_model=PolicyPublic)
def patch_policy(
    key: str, body: PolicyPatch, principal: Writer, session: SessionDep, clock: ClockDep
) -> PolicyPublic:
    now = clock()
    current = policies.policy_document(policies.get_policy(session, key=key))
    merged = {**current, **body.model_dump(mode="json", exclude_unset=True)}
    try:
        document = PolicyBody.model_validate(merged).document()
    except ValidationError as exc:  # the merge is re-validated as a whole policy
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    change = policies.replace_policy(
        session, key=key, document=document, actor=principal.name, now=now
    )
    return _public(change.row, now)


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(key: str, principal: Writer, session: SessionDep, clock: ClockDep) -> Response:
    policies.delete_policy(session, key=key, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{key}/versions", response_model=list[PolicyVersionPublic])
def policy_versions(key: str, _p: Reader, session: SessionDep) -> list[PolicyVersionPublic]:
    return [
        PolicyVersionPublic(
            version=v.version,
            change=v.change,  # type: ignore[arg-type]
            changed=v.changed,
            changed_by=v.changed_by,
            document=v.document,
        )
        for v in policies.policy_history(session, key=key)
    ]
