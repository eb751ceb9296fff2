"""Acknowledgements (exceptions): create, update, revoke, list, and expire them on time.

Every create, update, revoke and expiry is an audit event in the same transaction, followed by the
re-evaluation of the images the acknowledgement's scope covers. `expire_acknowledgements` is
called by the console's periodic task and at each listing and evaluation, so an expiry takes effect
on time even where no scheduler runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import AckId, Acknowledgement, AckScopeKind
from tidegate.services.assurance import reevaluate
from tidegate.services.events import record_event
from tidegate.store.db import ConflictError, NotFoundError
from tidegate.store.inventory import AcknowledgementRow, ImageRow, RegistryRow, RepositoryRow

__all__ = [
    "AckState",
    "create_acknowledgement",
    "expire_acknowledgements",
    "find_same",
    "get_acknowledgement",
    "list_acknowledgements",
    "revoke_acknowledgement",
    "to_domain",
    "update_acknowledgement",
]

KEY_FIELDS = ("vulnerability", "scope", "scope_value", "package_name", "package_version", "path")
"""What an acknowledgement covers: its identity for `tidegate apply`."""
MUTABLE_FIELDS = ("requester", "justification", "ticket", "approver", "expires")


class AckState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class AckChange:
    row: AcknowledgementRow
    changed: bool


def to_domain(row: AcknowledgementRow) -> Acknowledgement:
    return Acknowledgement(
        id=AckId(row.id),
        vulnerability=row.vulnerability,
        scope=AckScopeKind(row.scope_kind),
        scope_value=row.scope_value,
        requester=row.requester,
        justification=row.justification,
        created=row.created,
        expires=row.expires,
        package_name=row.package_name,
        package_version=row.package_version,
        path=row.path,
        ticket=row.ticket,
        approver=row.approver,
        revoked=row.revoked,
        revoked_by=row.revoked_by,
    )


def state_of(row: AcknowledgementRow, now: datetime) -> AckState:
    if row.revoked is not None:
        return AckState.REVOKED
    if row.expires is not None and row.expires <= now:
        return AckState.EXPIRED
    return AckState.ACTIVE


def ack_document(row: AcknowledgementRow) -> dict[str, Any]:
    """The acknowledgement in its canonical body form (what apply compares, export writes)."""
    return {
        "vulnerability": row.vulnerability,
        "scope": row.scope_kind,
        "scope_value": row.scope_value,
        "package_name": row.package_name,
        "package_version": row.package_version,
        "path": row.path,
        "requester": row.requester,
        "justification": row.justification,
        "ticket": row.ticket,
        "approver": row.approver,
        "expires": row.expires.isoformat() if row.expires else None,
    }


def affected_images(session: Session, row: AcknowledgementRow) -> list[int] | None:
    """Ids of the images the acknowledgement's scope covers (None: every image)."""
    kind, value = AckScopeKind(row.scope_kind), row.scope_value or ""
    query = select(ImageRow.id)
    match kind:
        case AckScopeKind.GLOBAL:
            return None
        case AckScopeKind.REGISTRY:
            query = query.join(RegistryRow, RegistryRow.id == ImageRow.registry_id).where(
                RegistryRow.host == value
            )
        case AckScopeKind.REPOSITORY:
            host, _, repo = value.partition("/")
            query = query.join(RepositoryRow, RepositoryRow.id == ImageRow.repository_id)
            # "repo" or "registry/repo": the repository path may itself hold slashes.
            clauses = [RepositoryRow.name == value]
            if repo:
                query = query.join(RegistryRow, RegistryRow.id == ImageRow.registry_id)
                clauses.append((RegistryRow.host == host) & (RepositoryRow.name == repo))
            query = query.where(or_(*clauses))
        case AckScopeKind.IMAGE:
            query = query.where(
                or_(
                    ImageRow.digest == value,
                    ImageRow.manifest_digest == value,
                    ImageRow.config_digest == value,
                )
            )
        case _:
            assert_never(kind)
    return list(session.scalars(query))


def _event(
    session: Session,
    row: AcknowledgementRow,
    action: str,
    message: str,
    actor: str | None,
    now: datetime,
    level: EventLevel = EventLevel.INFO,
) -> None:
    record_event(
        session,
        category=EventCategory.ACKNOWLEDGEMENT,
        level=level,
        action=action,
        message=message,
        now=now,
        actor=actor,
        image_digest=row.scope_value if row.scope_kind == AckScopeKind.IMAGE else None,
        data={"acknowledgement_id": row.id, **ack_document(row)},
    )


def _describe(row: AcknowledgementRow) -> str:
    scope = row.scope_kind + (f" {row.scope_value}" if row.scope_value else "")
    package = f" in {row.package_name}" if row.package_name else ""
    return f"{row.vulnerability}{package} ({scope})"


def _reevaluate(session: Session, row: AcknowledgementRow, now: datetime, reason: str) -> None:
    images = affected_images(session, row)
    if images is None or images:
        reevaluate(session, now=now, images=images, reason=reason)


def create_acknowledgement(
    session: Session, *, document: Mapping[str, Any], actor: str | None, now: datetime
) -> AcknowledgementRow:
    """Create from the canonical body form (`requester` already resolved by the caller)."""
    expires = _dt(document.get("expires"))
    if expires is not None and expires <= now:
        raise ConflictError(f"acknowledgement expires {expires.isoformat()}: already in the past")
    row = AcknowledgementRow(
        id=uuid.uuid4().hex,
        vulnerability=document["vulnerability"],
        scope_kind=AckScopeKind(document["scope"]).value,
        scope_value=document.get("scope_value"),
        package_name=document.get("package_name"),
        package_version=document.get("package_version"),
        path=document.get("path"),
        requester=document["requester"],
        justification=document["justification"],
        ticket=document.get("ticket"),
        approver=document.get("approver"),
        created=now,
        created_by=actor,
        expires=expires,
    )
    session.add(row)
    session.flush()
    until = f" until {expires.isoformat()}" if expires else " without expiry"
    _event(
        session,
        row,
        "acknowledgement.created",
        f"{_describe(row)} acknowledged{until} by {row.requester}: {row.justification}",
        actor,
        now,
    )
    _reevaluate(session, row, now, f"acknowledgement {row.id} created")
    return row


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def update_acknowledgement(
    session: Session, *, ack_id: str, changes: Mapping[str, Any], actor: str | None, now: datetime
) -> AckChange:
    """Change requester, justification, ticket, approver or expiry; no-op when all equal."""
    row = get_acknowledgement(session, ack_id=ack_id)
    if row.revoked is not None:
        raise ConflictError(f"acknowledgement {ack_id} is revoked: create a new one")
    unknown = set(changes) - set(MUTABLE_FIELDS)
    if unknown:
        raise ConflictError(
            f"acknowledgement {ack_id}: {', '.join(sorted(unknown))} cannot change "
            "(what an acknowledgement covers is fixed; revoke it and create another)"
        )
    before = ack_document(row)
    for name, value in changes.items():
        setattr(row, name, _dt(value) if name == "expires" else value)
    after = ack_document(row)
    changed = sorted(k for k in after if after[k] != before[k])
    if not changed:
        return AckChange(row, changed=False)
    if "expires" in changed:
        row.expiry_recorded = None
    session.flush()
    _event(
        session,
        row,
        "acknowledgement.updated",
        f"{_describe(row)}: {', '.join(changed)} changed",
        actor,
        now,
    )
    _reevaluate(session, row, now, f"acknowledgement {row.id} updated")
    return AckChange(row, changed=True)


def revoke_acknowledgement(
    session: Session, *, ack_id: str, actor: str | None, now: datetime
) -> AcknowledgementRow:
    row = get_acknowledgement(session, ack_id=ack_id)
    if row.revoked is not None:
        raise ConflictError(f"acknowledgement {ack_id} was already revoked at {row.revoked}")
    row.revoked, row.revoked_by = now, actor
    session.flush()
    _event(
        session,
        row,
        "acknowledgement.revoked",
        f"{_describe(row)}: revoked by {actor}",
        actor,
        now,
        EventLevel.WARNING,
    )
    _reevaluate(session, row, now, f"acknowledgement {row.id} revoked")
    return row


def get_acknowledgement(session: Session, *, ack_id: str) -> AcknowledgementRow:
    row = session.get(AcknowledgementRow, ack_id)
    if row is None:
        raise NotFoundError(f"acknowledgement {ack_id!r} not found")
    return row


def find_same(session: Session, document: Mapping[str, Any]) -> AcknowledgementRow | None:
    """The unrevoked acknowledgement covering exactly what `document` covers, if any."""
    query = select(AcknowledgementRow).where(AcknowledgementRow.revoked.is_(None))
    columns = {
        "vulnerability": AcknowledgementRow.vulnerability,
        "scope": AcknowledgementRow.scope_kind,
        "scope_value": AcknowledgementRow.scope_value,
        "package_name": AcknowledgementRow.package_name,
        "package_version": AcknowledgementRow.package_version,
        "path": AcknowledgementRow.path,
    }
    for name, column in columns.items():
        value = document.get(name)
        query = query.where(column.is_(None) if value is None else column == value)
    return session.scalars(query.order_by(AcknowledgementRow.created.desc())).first()


def list_acknowledgements(
    session: Session,
    *,
    now: datetime,
    state: AckState | None = None,
    vulnerability: str | None = None,
    scope: AckScopeKind | None = None,
    scope_value: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[AcknowledgementRow]:
    expire_acknowledgements(session, now=now)
    query: Select[tuple[AcknowledgementRow]] = select(AcknowledgementRow)
    if state is AckState.REVOKED:
        query = query.where(AcknowledgementRow.revoked.is_not(None))
    elif state is AckState.EXPIRED:
        query = query.where(AcknowledgementRow.revoked.is_(None), AcknowledgementRow.expires <= now)
    elif state is AckState.ACTIVE:
        query = query.where(
            AcknowledgementRow.revoked.is_(None),
            AcknowledgementRow.expires.is_(None) | (AcknowledgementRow.expires > now),
        )
    if vulnerability is not None:
        query = query.where(AcknowledgementRow.vulnerability == vulnerability)
    if scope is not None:
        query = query.where(AcknowledgementRow.scope_kind == scope.value)
    if scope_value is not None:
        query = query.where(AcknowledgementRow.scope_value == scope_value)
    query = query.order_by(AcknowledgementRow.created.desc(), AcknowledgementRow.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def expire_acknowledgements(session: Session, *, now: datetime) -> list[str]:
    """Record each expiry since the last run and re-evaluate the images it covered."""
    query = select(AcknowledgementRow).where(
        AcknowledgementRow.revoked.is_(None),
        AcknowledgementRow.expires.is_not(None),
        AcknowledgementRow.expires <= now,
        AcknowledgementRow.expiry_recorded.is_(None),
    )
    expired = list(session.scalars(query.with_for_update(skip_locked=True)))
    if not expired:
        return []
    images: set[int] = set()
    everything = False
    for row in expired:
        row.expiry_recorded = now
        _event(
            session,
            row,
            "acknowledgement.expired",
            f"{_describe(row)}: expired at {row.expires}",
            "system",
            now,
            EventLevel.WARNING,
        )
        covered = affected_images(session, row)
        if covered is None:
            everything = True
        else:
            images.update(covered)
    if everything or images:
        reevaluate(
            session,
            now=now,
            images=None if everything else sorted(images),
            reason="acknowledgement expired: " + ", ".join(r.id for r in expired),
        )
    return [r.id for r in expired]
