"""Enforcer groups, the enforcers registered in them, and the runtime events they upload.

A group has a token (shown once, stored as its sha256), a mode (new groups: audit), admission
settings and a fail mode. A mode switch is an audit event. Enforcers register and heartbeat with
the group token; the console lists them with their health (from the last heartbeat) and the
bundle version they run. Uploaded events carry idempotency keys: a batch sent twice (a retry
after a lost answer, a restarted enforcer) stores each event once.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.bundle import EnforcerGroupInfo, FailMode
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import Mode
from tidegate.services.events import record_event
from tidegate.services.tokens import hash_secret
from tidegate.store.db import ConflictError, NotFoundError
from tidegate.store.runtime import EnforcerGroupRow, EnforcerRow, RuntimeEventKeyRow

__all__ = [
    "GROUP_TOKEN_PREFIX",
    "HEARTBEAT_INTERVAL",
    "CreatedGroup",
    "EnforcerHealth",
    "EventBatchResult",
    "RuntimeEventIn",
    "authenticate_group",
    "create_group",
    "delete_group",
    "get_group",
    "group_info",
    "health_of",
    "heartbeat",
    "ingest_events",
    "list_enforcers",
    "list_groups",
    "register_enforcer",
    "rotate_group_token",
    "update_group",
]

GROUP_TOKEN_PREFIX = "tge_"
HEARTBEAT_INTERVAL = timedelta(seconds=10)
"""How often enforcers are asked to heartbeat (and poll their bundle)."""
STALE_AFTER = HEARTBEAT_INTERVAL * 3
OFFLINE_AFTER = timedelta(minutes=5)


class EnforcerHealth(StrEnum):
    HEALTHY = "healthy"
    """Heartbeat within three intervals."""
    STALE = "stale"
    """Missed a few heartbeats."""
    OFFLINE = "offline"
    """Silent for more than five minutes."""


@dataclass(frozen=True, slots=True)
class CreatedGroup:
    row: EnforcerGroupRow
    token: str
    """Shown once; only its hash is stored."""


def _new_token() -> str:
    return GROUP_TOKEN_PREFIX + secrets.token_urlsafe(32)


def group_info(row: EnforcerGroupRow) -> EnforcerGroupInfo:
    return EnforcerGroupInfo(
        name=row.name,
        mode=Mode(row.mode),
        admission_enabled=row.admission_enabled,
        fail_mode=FailMode(row.fail_mode),
        audit_all=row.audit_all,
    )


def _group_event(
    session: Session,
    row: EnforcerGroupRow,
    action: str,
    message: str,
    actor: str | None,
    now: datetime,
) -> None:
    record_event(
        session,
        category=EventCategory.RUNTIME,
        level=EventLevel.INFO,
        action=action,
        message=message,
        now=now,
        actor=actor,
        data={
            "enforcer_group": row.name,
            "mode": row.mode,
            "admission_enabled": row.admission_enabled,
            "fail_mode": row.fail_mode,
            "audit_all": row.audit_all,
        },
    )


def list_groups(session: Session) -> list[EnforcerGroupRow]:
    return list(session.scalars(select(EnforcerGroupRow).order_by(EnforcerGroupRow.name)))


def get_group(session: Session, *, name: str) -> EnforcerGroupRow:
    row = session.scalars(select(EnforcerGroupRow).where(EnforcerGroupRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"enforcer group {name!r} not found")
    return row


def create_group(
    session: Session, *, settings: Mapping[str, Any], actor: str | None, now: datetime
) -> CreatedGroup:
    """A new group (audit unless `settings` says otherwise) and its token, shown this once."""
    name = settings["name"]
    if session.scalars(select(EnforcerGroupRow.id).where(EnforcerGroupRow.name == name)).first():
        raise ConflictError(f"an enforcer group named {name!r} already exists")
    token = _new_token()
    row = EnforcerGroupRow(
        name=name,
        description=settings.get("description", ""),
        token_hash=hash_secret(token),
        mode=Mode(settings.get("mode", Mode.AUDIT)).value,
        mode_since=now,
        admission_enabled=bool(settings.get("admission_enabled", True)),
        fail_mode=FailMode(settings.get("fail_mode", FailMode.OPEN)).value,
        audit_all=bool(settings.get("audit_all", False)),
        created=now,
        updated=now,
        updated_by=actor,
    )
    session.add(row)
    session.flush()
    _group_event(
        session,
        row,
        "enforcer_group.created",
        f"enforcer group {name!r} created ({row.mode})",
        actor,
        now,
    )
    return CreatedGroup(row=row, token=token)


_SETTINGS = ("description", "mode", "admission_enabled", "fail_mode", "audit_all")


def update_group(
    session: Session, *, name: str, changes: Mapping[str, Any], actor: str | None, now: datetime
) -> EnforcerGroupRow:
    """Change a group's settings; a mode switch is its own audit event (level warning)."""
    row = get_group(session, name=name)
    before = {key: getattr(row, key) for key in _SETTINGS}
    for key in _SETTINGS:
        if key in changes and changes[key] is not None:
            value = changes[key]
            if key == "mode":
                value = Mode(value).value
            elif key == "fail_mode":
                value = FailMode(value).value
            setattr(row, key, value)
    changed = [key for key in _SETTINGS if getattr(row, key) != before[key]]
    if not changed:
        return row
    row.updated, row.updated_by = now, actor
    if "mode" in changed:
        row.mode_since = now
        record_event(
            session,
            category=EventCategory.RUNTIME,
            level=EventLevel.WARNING,
            action="enforcer_group.mode_changed",
            message=f"enforcer group {name!r} switched from {before['mode']} to {row.mode}",
            now=now,
            actor=actor,
            data={"enforcer_group": name, "from": before["mode"], "to": row.mode},
        )
    other = [key for key in changed if key != "mode"]
    if other:
        message = f"enforcer group {name!r} updated: {', '.join(other)} changed"
        _group_event(session, row, "enforcer_group.updated", message, actor, now)
    session.flush()
    return row


def rotate_group_token(
    session: Session, *, name: str, actor: str | None, now: datetime
) -> CreatedGroup:
    """A new token for the group; the old one stops working at once."""
    row = get_group(session, name=name)
    token = _new_token()
    row.token_hash = hash_secret(token)
    row.updated, row.updated_by = now, actor
    _group_event(
        session,
        row,
        "enforcer_group.token_rotated",
        f"enforcer group {name!r}: token rotated",
        actor,
        now,
    )
    return CreatedGroup(row=row, token=token)


def delete_group(session: Session, *, name: str, actor: str | None, now: datetime) -> None:
    row = get_group(session, name=name)
    _group_event(
        session, row, "enforcer_group.deleted", f"enforcer group {name!r} deleted", actor, now
    )
    session.delete(row)


def authenticate_group(session: Session, *, secret: str) -> EnforcerGroupRow | None:
    """The group of a token, or None."""
    if not secret.startswith(GROUP_TOKEN_PREFIX):
        return None
    digest = hash_secret(secret)
    row = session.scalars(
        select(EnforcerGroupRow).where(EnforcerGroupRow.token_hash == digest)
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


# ---------------------------------------------------------------------------------------------
# Enforcers


def register_enforcer(
    session: Session,
    *,
    group: EnforcerGroupRow,
    hostname: str,
    version: str,
    now: datetime,
) -> EnforcerRow:
    """Register (or re-register after a restart) the enforcer of `hostname` in `group`."""
    row = session.scalars(
        select(EnforcerRow).where(
            EnforcerRow.group_id == group.id, EnforcerRow.hostname == hostname
        )
    ).first()
    if row is None:
        row = EnforcerRow(
            id=uuid.uuid4().hex,
            group_id=group.id,
            hostname=hostname,
            registered=now,
            version=version,
            last_heartbeat=now,
            bundle_version=None,
            status={},
        )
        session.add(row)
        record_event(
            session,
            category=EventCategory.RUNTIME,
            level=EventLevel.INFO,
            action="enforcer.registered",
            message=f"enforcer on {hostname!r} registered in group {group.name!r} ({group.mode})",
            now=now,
            actor=f"enforcer:{hostname}",
            data={"enforcer_group": group.name, "host": hostname, "version": version},
        )
    row.version = version
    row.last_heartbeat = now
    session.flush()
    return row


def heartbeat(
    session: Session,
    *,
    group: EnforcerGroupRow,
    enforcer_id: str,
    bundle_version: str | None,
    status: Mapping[str, Any],
    now: datetime,
) -> EnforcerRow:
    row = session.get(EnforcerRow, enforcer_id)
    if row is None or row.group_id != group.id:
        raise NotFoundError(f"enforcer {enforcer_id!r} is not registered in group {group.name!r}")
    row.last_heartbeat = now
    row.bundle_version = bundle_version
    row.status = dict(status)
    return row


def health_of(row: EnforcerRow, now: datetime) -> EnforcerHealth:
    age = now - row.last_heartbeat
    if age <= STALE_AFTER:
        return EnforcerHealth.HEALTHY
    if age <= OFFLINE_AFTER:
        return EnforcerHealth.STALE
    return EnforcerHealth.OFFLINE


def list_enforcers(
    session: Session, *, group: str | None = None
) -> list[tuple[EnforcerRow, EnforcerGroupRow]]:
    query = select(EnforcerRow, EnforcerGroupRow).join(
        EnforcerGroupRow, EnforcerRow.group_id == EnforcerGroupRow.id
    )
    if group is not None:
        query = query.where(EnforcerGroupRow.name == group)
    query = query.order_by(EnforcerGroupRow.name, EnforcerRow.hostname)
    return [(e, g) for e, g in session.execute(query)]


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class RuntimeEventIn:
    """One event as an enforcer uploads it (validated by the API schema)."""

    idempotency_key: str
    ts: datetime
    level: EventLevel
    action: str
    message: str
    image_digest: str | None = None
    policy: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventBatchResult:
    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]


def _known_keys(session: Session, group_id: int, keys: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), 500):  # bounded IN lists
        chunk = keys[start : start + 500]
        query = select(RuntimeEventKeyRow.idempotency_key).where(
            RuntimeEventKeyRow.group_id == group_id,
            RuntimeEventKeyRow.idempotency_key.in_(chunk),
        )
        known.update(session.scalars(query))
    return known


def ingest_events(
    session: Session,
    *,
    group: EnforcerGroupRow,
    enforcer: EnforcerRow | None,
    events: Sequence[RuntimeEventIn],
    now: datetime,
) -> EventBatchResult:
    """Store the batch's new events (category runtime), skip the keys already stored.

    The group comes from the token, never from the body: an enforcer cannot speak for another.
    """
    known = _known_keys(session, group.id, [e.idempotency_key for e in events])
    accepted: list[str] = []
    duplicates: list[str] = []
    host = enforcer.hostname if enforcer is not None else None
    for event in events:
        if event.idempotency_key in known:
            duplicates.append(event.idempotency_key)
            continue
        known.add(event.idempotency_key)
        data = {
            **event.data,
            "enforcer_group": group.name,
            "idempotency_key": event.idempotency_key,
        }
        if host is not None:
            data.setdefault("host", host)
        event_id = record_event(
            session,
            category=EventCategory.RUNTIME,
            level=event.level,
            action=event.action,
            message=event.message,
            now=event.ts,
            actor=f"enforcer:{host}" if host else f"enforcer-group:{group.name}",
            image_digest=event.image_digest,
            policy=event.policy,
            data=data,
        )
        session.add(
            RuntimeEventKeyRow(
                group_id=group.id,
                idempotency_key=event.idempotency_key,
                event_id=event_id,
                received=now,
            )
        )
        accepted.append(event.idempotency_key)
    session.flush()
    return EventBatchResult(accepted=tuple(accepted), duplicates=tuple(duplicates))
