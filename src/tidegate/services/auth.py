"""Logging in and out: a username and password become a login token with an expiry.

Every attempt is an audit event (category `auth`), success or failure, with the reason of a
failure kept in the event but never told to the client. An unknown user costs the same argon2
verification as a wrong password, so timing does not reveal which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from tidegate.core.events import EventCategory, EventLevel
from tidegate.services.events import record_event
from tidegate.services.tokens import issue_token, revoke_token
from tidegate.services.users import UserInfo, find_user, to_info

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    expires_at: datetime
    user: UserInfo


@cache
def _dummy_hash() -> str:
    return _hasher.hash("tidegate: no such user")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def login(
    session: Session,
    *,
    username: str,
    password: str,
    now: datetime,
    ttl: timedelta,
    source: str | None = None,
) -> Login | None:
    """A login token for good credentials of an enabled user; None (and a failure event) else."""
    row = find_user(session, username=username)
    good = _verify(row.password_hash if row else _dummy_hash(), password)
    reason = (
        "unknown user"
        if row is None
        else "wrong password"
        if not good
        else "user disabled"
        if row.disabled
        else None
    )
    data = {"username": username, "source": source}
    if row is None or reason is not None:
        record_event(
            session,
            category=EventCategory.AUTH,
            level=EventLevel.WARNING,
            action="login.failure",
            message=f"failed login as {username!r}: {reason}",
            now=now,
            actor=username,
            data={**data, "reason": reason},
        )
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    row.last_login_at = now
    issued = issue_token(
        session,
        name=f"login:{row.username}",
        role=to_info(row).role,
        now=now,
        actor=row.username,
        expires_at=now + ttl,
        user_id=row.id,
    )
    record_event(
        session,
        category=EventCategory.AUTH,
        level=EventLevel.INFO,
        action="login.success",
        message=f"{row.username!r} logged in",
        now=now,
        actor=row.username,
        data={**data, "token_id": issued.info.id},
    )
    return Login(token=issued.secret, expires_at=now + ttl, user=to_info(row))


def logout(session: Session, *, token_id: str, now: datetime, actor: str) -> None:
    """End the token the request came with (a login token, or a script token ending itself)."""
    token = revoke_token(session, token_id=token_id, now=now, actor=actor, audit=False)
    record_event(
        session,
        category=EventCategory.AUTH,
        level=EventLevel.INFO,
        action="logout",
        message=f"{actor!r} logged out (token {token.name!r} revoked)",
        now=now,
        actor=actor,
        data={"token_id": token.id},
    )
