"""Bodies of users, API tokens and logins."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from tidegate.console.schemas.common import PublicModel, RequestBody
from tidegate.core.roles import Permission, Role
from tidegate.services.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, USERNAME_PATTERN


class UserCreate(RequestBody):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    role: Role


class UserUpdate(RequestBody):
    role: Role | None = None
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH
    )
    disabled: bool | None = None


class UserPublic(PublicModel):
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class TokenCreate(RequestBody):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$")
    role: Role
    expires_at: AwareDatetime | None = None
    """None: the token never expires (revoke it instead)."""


class TokenPublic(PublicModel):
    id: str
    name: str
    role: Role
    user: str | None
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str
    """The secret, shown this once: send it as `Authorization: Bearer <token>`."""


class LoginRequest(RequestBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginResponse(PublicModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserPublic


class PrincipalPublic(PublicModel):
    name: str
    role: Role
    permissions: list[Permission]
