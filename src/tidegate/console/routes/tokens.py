"""API tokens for scripts: list, create (the secret is in the answer, once), read, revoke.

Administrators only (`users:admin`). Login tokens are listed with `?include_login=true`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.users import TokenCreate, TokenCreated, TokenPublic
from tidegate.core.roles import Permission
from tidegate.services import tokens

router = APIRouter(prefix="/tokens", tags=["tokens"], responses={**ERROR_RESPONSES})
Admin = Annotated[Principal, Depends(require(Permission.USERS_ADMIN))]


@router.get("", response_model=list[TokenPublic])
def list_tokens(
    _admin: Admin, session: SessionDep, include_login: bool = False
) -> list[TokenPublic]:
    found = tokens.list_tokens(session, include_login=include_login)
    return [TokenPublic.model_validate(t) for t in found]


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, admin: Admin, session: SessionDep, clock: ClockDep
) -> TokenCreated:
    issued = tokens.create_token(
        session,
        name=body.name,
        role=body.role,
        now=clock(),
        actor=admin.name,
        expires_at=body.expires_at,
    )
    return TokenCreated(**asdict(issued.info), token=issued.secret)


@router.get("/{token_id}", response_model=TokenPublic)
def get_token(token_id: str, _admin: Admin, session: SessionDep) -> TokenPublic:
    return TokenPublic.model_validate(tokens.get_token(session, token_id=token_id))


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, admin: Admin, session: SessionDep, clock: ClockDep) -> Response:
    tokens.revoke_token(session, token_id=token_id, now=clock(), actor=admin.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
