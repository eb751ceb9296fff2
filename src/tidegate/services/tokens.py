"""API tokens: issued once in clear, stored as a sha256 hash, revocable, with an optional expiry.

A secret is `tg_` + 43 url-safe characters (32 random bytes). Only its sha256 is stored; a lookup
finds the row by that hash and confirms it with a constant-time comparison. Script tokens carry
their own role; login tokens belong to a user and take the user's current role at each request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.errors import UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.roles import Role
from tidegate.services.events import record_event
from tidegate.store.auth_tables import ApiTokenRow, UserRow
from tidegate.store.db import NotFoundError

TOKEN_PREFIX = "tg_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per token, so reads do not all become writes."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    id: str
    name: str
    role: Role
    user: str | None
    """The owning user's name, for login tokens."""
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    info: TokenInfo
    secret: str
    """Shown once, to whoever asked for the token; never stored."""


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """Who a valid secret speaks for."""

    token_id: str
    name: str
    role: Role


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(
    session: Session,
    *,
    name: str,
    role: Role,
    now: datetime,
    actor: str | None,
    expires_at: datetime | None = None,
    user_id: str | None = None,
) -> IssuedToken:
    """Store a new token and return it with its secret; no audit event (callers record theirs)."""
    if expires_at is not None and expires_at <= now:
        raise UsageError(f"expires_at: {expires_at.isoformat()} is not in the future")
    secret = new_secret()
    row = ApiTokenRow(
        id=uuid.uuid4().hex,
        name=name,
        role=str(role),
        token_hash=hash_secret(secret),
        user_id=user_id,
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(info=_info(session, row), secret=secret)


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    now: datetime,
    actor: str | None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A script token with its own role (administrators, `tidegate admin create-token`)."""
    issued = issue_token(session, name=name, role=role, now=now, actor=actor, expires_at=expires_at)
    expiry = expires_at.isoformat() if expires_at else "never"
    record_event(
        session,
        category=EventCategory.ADMIN,
        level=EventLevel.INFO,
        action="token.create",
        message=f"API token {name!r} created with role {role} (expires: {expiry})",
        now=now,
        actor=actor,
        data={"token_id": issued.info.id, "name": name, "role": str(role), "expires_at": expiry},
    )
    return issued


def list_tokens(session: Session, *, include_login: bool = False) -> list[TokenInfo]:
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.id)
    if not include_login:
        query = query.where(ApiTokenRow.user_id.is_(None))
    return [_info(session, row) for row in session.scalars(query)]


def get_token(session: Session, *, token_id: str) -> TokenInfo:
    return _info(session, _row(session, token_id))


def revoke_token(
    session: Session, *, token_id: str, now: datetime, actor: str | None, audit: bool = True
) -> TokenInfo:
    """Revoke a token (idempotent: revoking a revoked token changes nothing and logs nothing).

    `audit=False` is for callers that record their own event (a logout).
    """
    row = _row(session, token_id)
    if row.revoked_at is not None:
        return _info(session, row)
    row.revoked_at = now
    if audit:
        record_event(
            session,
            category=EventCategory.ADMIN,
            level=EventLevel.INFO,
            action="token.revoke",
            message=f"API token {row.name!r} ({row.role}) revoked",
            now=now,
            actor=actor,
            data={"token_id": row.id, "name": row.name, "role": row.role},
        )
    session.flush()
    return _info(session, row)


def authenticate_token(session: Session, *, secret: str, now: datetime) -> TokenOwner | None:
    """Who `secret` speaks for, or None when it is unknown, revoked, expired or its user is off."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    digest = hash_secret(secret)
    row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    name, role = f"token:{row.name}", Role(row.role)
    if row.user_id is not None:
        user = session.get(UserRow, row.user_id)
        if user is None or user.disabled:
            return None
        name, role = user.username, Role(user.role)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return TokenOwner(token_id=row.id, name=name, role=role)


def _row(session: Session, token_id: str) -> ApiTokenRow:
    row = session.get(ApiTokenRow, token_id)
    if row is None:
        raise NotFoundError(f"API token {token_id!r}: no such token")
    return row


def _info(session: Session, row: ApiTokenRow) -> TokenInfo:
    user = session.get(UserRow, row.user_id) if row.user_id is not None else None
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        user=user.username if user is not None else None,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
