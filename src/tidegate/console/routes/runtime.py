"""Runtime policies (list, create, read, replace, change, delete, history) and services.

Reading needs `policies:read`; every change needs `policies:write`, bumps the version and is an
audit event (services.runtime). The default global policy exists out of the box, in audit mode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.runtime import (
    RuntimePolicyBody,
    RuntimePolicyPatch,
    RuntimePolicyPublic,
    RuntimePolicyVersionPublic,
    ServiceBody,
    ServicePublic,
    ServiceRuleBody,
)
from tidegate.core.roles import Permission
from tidegate.services import runtime
from tidegate.store.runtime import RuntimePolicyRow, RuntimeServiceRow

router = APIRouter(tags=["runtime policies"], responses={**ERROR_RESPONSES})
Reader = Annotated[Principal, Depends(require(Permission.POLICIES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.POLICIES_WRITE))]


def _public(row: RuntimePolicyRow, now: datetime) -> RuntimePolicyPublic:
    return RuntimePolicyPublic.from_domain(
        runtime.to_domain(row),
        created=row.created,
        updated=row.updated,
        updated_by=row.updated_by,
        now=now,
    )


@router.get("/runtime-policies", response_model=list[RuntimePolicyPublic])
def list_runtime_policies(
    _p: Reader, session: SessionDep, clock: ClockDep
) -> list[RuntimePolicyPublic]:
    now = clock()
    return [_public(row, now) for row in runtime.list_runtime_policies(session)]


@router.post(
    "/runtime-policies", response_model=RuntimePolicyPublic, status_code=status.HTTP_201_CREATED
)
def create_runtime_policy(
    body: RuntimePolicyBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> RuntimePolicyPublic:
    now = clock()
    row = runtime.create_runtime_policy(
        session, document=body.document(), actor=principal.name, now=now
    )
    return _public(row, now)


@router.get("/runtime-policies/{key}", response_model=RuntimePolicyPublic)
def get_runtime_policy(
    key: str, _p: Reader, session: SessionDep, clock: ClockDep
) -> RuntimePolicyPublic:
    return _public(runtime.get_runtime_policy(session, key=key), clock())


@router.put("/runtime-policies/{key}", response_model=RuntimePolicyPublic)
def replace_runtime_policy(
    key: str, body: RuntimePolicyBody, principal: Writer, session: SessionDep, clock: ClockDep
) -> RuntimePolicyPublic:
    """Replace the whole policy; the same document again changes nothing (no new version)."""
    now = clock()
    change = runtime.replace_runtime_policy(
        session, key=key, document=body.document(), actor=principal.name, now=now
    )
    return _public(change.row, now)


@router.patch("/runtime-policies/{key}", response_model=RuntimePolicyPublic)
def patch_runtime_policy(
    key: str, body: RuntimePolicyPatch, principal: Writer, session: SessionDep, clock: ClockDep
) -> RuntimePolicyPublic:
    now = clock()
    current = runtime.runtime_policy_document(runtime.get_runtime_policy(session, key=key))
    merged = {**current, **body.model_dump(mode="json", exclude_unset=True)}
    try:
        document = RuntimePolicyBody.model_validate(merged).document()
    except ValidationError as exc:  # the merge is re-validated as a whole policy
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    change = runtime.replace_runtime_policy(
        session, key=key, document=document, actor=principal.name, now=now
    )
    return _public(change.row, now)


@router.delete("/runtime-policies/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_runtime_policy(
    key: str, principal: Writer, session: SessionDep, clock: ClockDep
) -> Response:
    runtime.delete_runtime_policy(session, key=key, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/runtime-policies/{key}/versions", response_model=list[RuntimePolicyVersionPublic])
def runtime_policy_versions(
    key: str, _p: Reader, session: SessionDep
) -> list[RuntimePolicyVersionPublic]:
    return [
        RuntimePolicyVersionPublic(
            version=v.version,
            change=v.change,  # type: ignore[arg-type]
            changed=v.changed,
            changed_by=v.changed_by,
            document=v.document,
        )
        for v in runtime.runtime_policy_history(session, key=key)
    ]


def _service(row: RuntimeServiceRow) -> ServicePublic:
    return ServicePublic(
        name=row.name,
        description=row.description,
        priority=row.priority,
        rules=[ServiceRuleBody.model_validate(r) for r in row.rules],
        created=row.created,
        updated=row.updated,
        updated_by=row.updated_by,
    )


@router.get("/services", response_model=list[ServicePublic])
def list_services(_p: Reader, session: SessionDep) -> list[ServicePublic]:
    return [_service(row) for row in runtime.list_services(session)]


@router.get("/services/{name}", response_model=ServicePublic)
def get_service(name: str, _p: Reader, session: SessionDep) -> ServicePublic:
    return _service(runtime.get_service(session, name=name))


@router.put("/services/{name}", response_model=ServicePublic)
def put_service(
    name: str,
    body: ServiceBody,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
) -> ServicePublic:
    """Create or replace a service (201 when created)."""
    row, created = runtime.put_service(
        session, name=name, document=body.document(), actor=principal.name, now=clock()
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _service(row)


@router.delete("/services/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_service(name: str, principal: Writer, session: SessionDep, clock: ClockDep) -> Response:
    runtime.delete_service(session, name=name, actor=principal.name, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
