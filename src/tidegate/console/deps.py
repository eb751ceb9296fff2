"""Request dependencies as `Annotated` aliases: the session, the clock, the settings, and who asks.

`require(permission)` is the one gate of every route: no or bad credentials -> 401 with
`WWW-Authenticate: Bearer`; a role without the permission -> 403 naming the permission.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tidegate.console.errors import ForbiddenError, UnauthorizedError
from tidegate.console.recorder import WebhookRecorder
from tidegate.console.settings import Settings
from tidegate.core.roles import Permission, Role, allows
from tidegate.services.bundle import BundleCache
from tidegate.services.enforcers import authenticate_group
from tidegate.services.tokens import authenticate_token
from tidegate.store.db import Database
from tidegate.store.runtime import EnforcerGroupRow


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for."""

    name: str
    role: Role
    token_id: str | None


@dataclass
class ConsoleState:
    """What one app instance holds; the database is made on first use, never at import.

    An app may be served by more than one server at once (a test client and a uvicorn, two
    lifespans): each lifespan `open()`s the state and `close()`s it, and the database is
    disposed when the last one closes, not under the background work of another."""

    settings: Settings
    clock: Callable[[], datetime]
    _database: Database | None = None
    _recorder: WebhookRecorder | None = None
    _users: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        with self._lock:
            self._users += 1

    @property
    def database(self) -> Database:
        with self._lock:
            if self._database is None:
                self._database = Database(self.settings.database_url)
            return self._database

    @property
    def recorder(self) -> WebhookRecorder:
        """The webhook's group-commit writer (console/recorder.py) on this state's database."""
        database = self.database
        with self._lock:
            if self._recorder is None:
                self._recorder = WebhookRecorder(database)
            return self._recorder

    def close(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users > 0:
                return
            recorder, self._recorder = self._recorder, None
            database, self._database = self._database, None
        if recorder is not None:
            recorder.close()  # what is queued is recorded before the database goes
        if database is not None:
            database.dispose()


def get_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def get_database(request: Request) -> Database:
    return get_state(request).database


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back if it raises."""
    with get_database(request).session() as session:
        yield session


def get_clock(request: Request) -> Callable[[], datetime]:
    return get_state(request).clock


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


# scope="function": the commit happens before the response is sent, so a client never reads
# an answer whose change did not commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer tg_...`")
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticated(session: SessionDep, clock: ClockDep, credentials: CredentialsDep) -> Principal:
    """The Principal of a valid bearer token, or 401."""
    if credentials is None:
        raise UnauthorizedError("authentication required: send Authorization: Bearer <token>")
    owner = authenticate_token(session, secret=credentials.credentials, now=clock())
    if owner is None:
        raise UnauthorizedError("invalid, expired or revoked token")
    return Principal(name=owner.name, role=owner.role, token_id=owner.token_id)


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency yielding the Principal when its role has `permission`, else 401/403."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not allows(principal.role, permission):
            raise ForbiddenError(
                f"permission {permission} required; role {principal.role} does not have it"
            )
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('-', '_')}"
    return dependency


# Enforcers speak with their group's token (`Authorization: Bearer tge_...`), not a user token.


def enforcer_group(session: SessionDep, credentials: CredentialsDep) -> EnforcerGroupRow:
    """The enforcer group whose token the request carries, or 401."""
    if credentials is None:
        raise UnauthorizedError("authentication required: send Authorization: Bearer <group token>")
    group = authenticate_group(session, secret=credentials.credentials)
    if group is None:
        raise UnauthorizedError("invalid or rotated enforcer group token")
    return group


CurrentEnforcerGroup = Annotated[EnforcerGroupRow, Depends(enforcer_group)]


def get_bundle_cache(request: Request) -> BundleCache:
    """The app's cache of built policy bundles (made on first use)."""
    cache: BundleCache | None = getattr(request.app.state, "runtime_bundles", None)
    if cache is None:
        cache = BundleCache()
        request.app.state.runtime_bundles = cache
    return cache


BundleCacheDep = Annotated[BundleCache, Depends(get_bundle_cache)]
