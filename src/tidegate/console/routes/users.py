"""Users: list, create, read, change, delete (administrators: `users:admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tidegate.console.deps import ClockDep, Principal, SessionDep, require
from tidegate.console.schemas.common import ERROR_RESPONSES
from tidegate.console.schemas.users import UserCreate, UserPublic, UserUpdate
from tidegate.core.roles import Permission
from tidegate.services import users

router = APIRouter(prefix="/users", tags=["users"], responses={**ERROR_RESPONSES})
Admin = Annotated[Principal, Depends(require(Permission.USERS_ADMIN))]


@router.get("", response_model=list[UserPublic])
def list_users(_admin: Admin, session: SessionDep) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in users.list_users(session)]


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, admin: Admin, session: SessionDep, clock: ClockDep) -> UserPublic:
    user = users.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        now=clock(),
        actor=admin.name,
    )
    return UserPublic.model_validate(user)


@router.get("/{user_id}", response_model=UserPublic)
def get_user(user_id: str, _admin: Admin, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(users.get_user(session, user_id=user_id))


@router.patch("/{user_id}", response_model=UserPublic)
def update_user(
    user_id: str, body: UserUpdate, admin: Admin, session: SessionDep, clock: ClockDep
) -> UserPublic:
    user = users.update_user(
        session,
        user_id=user_id,
        now=clock(),
        actor=admin.name,
        role=body.role,
        password=body.password,
        disabled=body.disabled,
    )
    return UserPublic.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user_id: str, admin: Admin, session: SessionDep, clock: ClockDep) -> Response:
    users.delete_user(session, user_id=user_id, now=clock(), actor=admin.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
