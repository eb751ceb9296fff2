"""Local users: create, change, delete, and the first administrator of a fresh install.

Passwords are hashed with argon2id (argon2-cffi's defaults, parameters kept in the hash). The last
enabled administrator can be neither demoted, disabled nor deleted, so a console never locks its
administrators out. A password change, a demotion or a disabling ends the user's login tokens.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tidegate.core.errors import UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.roles import Role
from tidegate.services.events import record_event
from tidegate.store.auth_tables import ApiTokenRow, UserRow
from tidegate.store.db import ConflictError, NotFoundError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
INITIAL_ADMIN = "admin"

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UsageError(
            f"password: must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long"
        )


def create_user(
    session: Session, *, username: str, password: str, role: Role, now: datetime, actor: str | None
) -> UserInfo:
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise UsageError(f"username: {username!r} does not match {USERNAME_PATTERN}")
    check_password(password)
    if session.scalars(select(UserRow.id).where(UserRow.username == username)).first():
        raise ConflictError(f"user {username!r} already exists")
    row = UserRow(
        id=uuid.uuid4().hex,
        username=username,
        password_hash=hash_password(password),
        role=str(role),
        disabled=False,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _audit(session, "user.create", f"user {username!r} created with role {role}", row, now, actor)
    return to_info(row)


def list_users(session: Session) -> list[UserInfo]:
    return [to_info(row) for row in session.scalars(select(UserRow).order_by(UserRow.username))]


def get_user(session: Session, *, user_id: str) -> UserInfo:
    return to_info(_row(session, user_id))


def update_user(
    session: Session,
    *,
    user_id: str,
    now: datetime,
    actor: str | None,
    role: Role | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> UserInfo:
    """Change what is given; each change is named in one audit event."""
    row = _row(session, user_id)
    changes: list[str] = []
    if role is not None and role != row.role:
        _keep_an_administrator(session, row, "change the role of")
        changes.append(f"role {row.role} -> {role}")
        row.role = str(role)
    if disabled is not None and disabled != row.disabled:
        if disabled:
            _keep_an_administrator(session, row, "disable")
        changes.append("disabled" if disabled else "enabled")
        row.disabled = disabled
    if password is not None:
        check_password(password)
        row.password_hash = hash_password(password)
        changes.append("password changed")
    if changes:
        row.updated_at = now
        if password is not None or role is not None or disabled:
            _end_logins(session, row.id, now)
        message = f"user {row.username!r} changed: {', '.join(changes)}"
        _audit(session, "user.update", message, row, now, actor, changes=changes)
    session.flush()
    return to_info(row)


def delete_user(session: Session, *, user_id: str, now: datetime, actor: str | None) -> None:
    row = _row(session, user_id)
    _keep_an_administrator(session, row, "delete")
    _audit(session, "user.delete", f"user {row.username!r} deleted", row, now, actor)
    session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == row.id))
    session.delete(row)
    session.flush()


def ensure_initial_admin(
    session: Session, *, now: datetime, password: str | None = None
) -> str | None:
    """On a console without users, create `admin`; return its password (None if users exist)."""
    if session.scalar(select(func.count()).select_from(UserRow)):
        return None
    password = password or secrets.token_urlsafe(18)
    create_user(
        session,
        username=INITIAL_ADMIN,
        password=password,
        role=Role.ADMINISTRATOR,
        now=now,
        actor=None,
    )
    return password


def find_user(session: Session, *, username: str) -> UserRow | None:
    return session.scalars(select(UserRow).where(UserRow.username == username)).first()


def _keep_an_administrator(session: Session, row: UserRow, verb: str) -> None:
    if row.role != Role.ADMINISTRATOR or row.disabled:
        return
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.role == str(Role.ADMINISTRATOR), ~UserRow.disabled, UserRow.id != row.id)
    )
    if not others:
        raise ConflictError(f"cannot {verb} {row.username!r}: it is the last enabled administrator")


def _end_logins(session: Session, user_id: str, now: datetime) -> None:
    session.execute(
        update(ApiTokenRow)
        .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _row(session: Session, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None:
        raise NotFoundError(f"user {user_id!r}: no such user")
    return row


def _audit(
    session: Session,
    action: str,
    message: str,
    row: UserRow,
    now: datetime,
    actor: str | None,
    changes: list[str] | None = None,
) -> None:
    data: dict[str, object] = {"user_id": row.id, "username": row.username, "role": row.role}
    if changes is not None:
        data["changes"] = changes
    record_event(
        session,
        category=EventCategory.ADMIN,
        level=EventLevel.INFO,
        action=action,
        message=message,
        now=now,
        actor=actor,
        data=data,
    )


def to_info(row: UserRow) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_login_at=row.last_login_at,
    )
