"""Runtime policies and services: create, replace, delete, read, with versions and audit events.

A runtime policy arrives in its canonical document form (`console.schemas.runtime`), already
validated. A change that alters the document bumps the version, stores it in
`runtime_policy_versions` and records an event in the same transaction; the same document again
is no change at all. The default global policy (migration 0005) can be changed but not deleted,
and its scope cannot be narrowed: it covers everything an enforcer group sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.bundle import runtime_policy_from_json, service_from_json
from tidegate.core.errors import UsageError
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import Mode
from tidegate.core.runtime import RuntimePolicy, Service
from tidegate.services.events import record_event
from tidegate.store.db import ConflictError, NotFoundError
from tidegate.store.runtime import RuntimePolicyRow, RuntimePolicyVersionRow, RuntimeServiceRow

__all__ = [
    "RuntimeChange",
    "active_policies",
    "all_services",
    "create_runtime_policy",
    "delete_runtime_policy",
    "delete_service",
    "get_runtime_policy",
    "get_service",
    "list_runtime_policies",
    "list_services",
    "put_service",
    "replace_runtime_policy",
    "runtime_policy_document",
    "runtime_policy_history",
    "service_document",
    "service_to_domain",
    "to_domain",
]


@dataclass(frozen=True, slots=True)
class RuntimeChange:
    row: RuntimePolicyRow
    changed: bool


def runtime_policy_document(row: RuntimePolicyRow) -> dict[str, Any]:
    """The canonical body form (stored in the history, compared by apply)."""
    return {
        "name": row.name,
        "description": row.description,
        "mode": row.mode,
        "enabled": row.enabled,
        "enforce_after": row.enforce_after.isoformat() if row.enforce_after else None,
        "scope": row.scope,
        "controls": row.controls,
    }


def to_domain(row: RuntimePolicyRow) -> RuntimePolicy:
    document = {
        **runtime_policy_document(row),
        "id": row.id,
        "version": row.version,
        "is_default": row.is_default,
    }
    return runtime_policy_from_json(document, f"runtime policy {row.name!r}")


def list_runtime_policies(session: Session) -> list[RuntimePolicyRow]:
    query = (
        select(RuntimePolicyRow)
        .where(RuntimePolicyRow.deleted.is_(None))
        .order_by(RuntimePolicyRow.is_default.desc(), RuntimePolicyRow.name)
    )
    return list(session.scalars(query))


def active_policies(session: Session) -> list[RuntimePolicy]:
    """Every live runtime policy as a domain value (disabled ones included: `decide` skips them)."""
    return [to_domain(row) for row in list_runtime_policies(session)]


def _by_name(session: Session, name: str) -> RuntimePolicyRow | None:
    query = select(RuntimePolicyRow).where(
        RuntimePolicyRow.name == name, RuntimePolicyRow.deleted.is_(None)
    )
    return session.scalars(query).first()


def get_runtime_policy(session: Session, *, key: str) -> RuntimePolicyRow:
    """A live runtime policy by id or by name."""
    row = session.get(RuntimePolicyRow, key)
    if row is None or row.deleted is not None:
        row = _by_name(session, key)
    if row is None:
        raise NotFoundError(f"runtime policy {key!r} not found")
    return row


def _check_name_free(session: Session, name: str, own_id: str | None) -> None:
    other = _by_name(session, name)
    if other is not None and other.id != own_id:
        raise ConflictError(f"a runtime policy named {name!r} already exists (id {other.id})")


def _apply(row: RuntimePolicyRow, document: Mapping[str, Any]) -> None:
    enforce_after = document.get("enforce_after")
    row.name = document["name"]
    row.description = document.get("description", "")
    row.mode = Mode(document.get("mode", "audit")).value
    row.enabled = bool(document.get("enabled", True))
    row.enforce_after = (
        datetime.fromisoformat(enforce_after) if isinstance(enforce_after, str) else None
    )
    row.scope = dict(document.get("scope") or {})
    row.controls = dict(document.get("controls") or {})
    if row.is_default and row.scope:
        raise UsageError("scope: the default runtime policy covers every container; it has none")


def _history(
    session: Session, row: RuntimePolicyRow, change: str, actor: str | None, now: datetime
) -> None:
    session.add(
        RuntimePolicyVersionRow(
            policy_id=row.id,
            version=row.version,
            document=runtime_policy_document(row),
            changed=now,
            changed_by=actor,
            change=change,
        )
    )


def _event(
    session: Session,
    row: RuntimePolicyRow,
    action: str,
    message: str,
    actor: str | None,
    now: datetime,
) -> None:
    record_event(
        session,
        category=EventCategory.POLICY,
        level=EventLevel.INFO,
        action=action,
        message=message,
        now=now,
        actor=actor,
        policy=row.name,
        data={
            "runtime_policy_id": row.id,
            "version": row.version,
            "document": runtime_policy_document(row),
        },
    )


def create_runtime_policy(
    session: Session, *, document: Mapping[str, Any], actor: str | None, now: datetime
) -> RuntimePolicyRow:
    _check_name_free(session, document["name"], None)
    row = RuntimePolicyRow(
        id=uuid.uuid4().hex,
        version=1,
        is_default=False,
        created=now,
        updated=now,
        updated_by=actor,
    )
    _apply(row, document)
    session.add(row)
    session.flush()
    _history(session, row, "created", actor, now)
    message = f"runtime policy {row.name!r} created ({row.mode})"
    _event(session, row, "runtime_policy.created", message, actor, now)
    return row


def replace_runtime_policy(
    session: Session, *, key: str, document: Mapping[str, Any], actor: str | None, now: datetime
) -> RuntimeChange:
    row = get_runtime_policy(session, key=key)
    before = runtime_policy_document(row)
    _check_name_free(session, document["name"], row.id)
    _apply(row, document)
    after = runtime_policy_document(row)
    changes = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changes:
        return RuntimeChange(row, changed=False)
    row.version += 1
    row.updated, row.updated_by = now, actor
    session.flush()
    _history(session, row, "updated", actor, now)
    message = f"runtime policy {row.name!r} updated to v{row.version}: {', '.join(changes)} changed"
    if "mode" in changes:
        message += f" (mode {before['mode']} -> {row.mode})"
    _event(session, row, "runtime_policy.updated", message, actor, now)
    return RuntimeChange(row, changed=True)


def delete_runtime_policy(
    session: Session, *, key: str, actor: str | None, now: datetime
) -> RuntimePolicyRow:
    row = get_runtime_policy(session, key=key)
    if row.is_default:
        raise ConflictError(
            "the default runtime policy cannot be deleted: set it to audit or disable it"
        )
    row.deleted, row.updated, row.updated_by = now, now, actor
    row.version += 1
    session.flush()
    _history(session, row, "deleted", actor, now)
    _event(
        session, row, "runtime_policy.deleted", f"runtime policy {row.name!r} deleted", actor, now
    )
    return row


def runtime_policy_history(session: Session, *, key: str) -> list[RuntimePolicyVersionRow]:
    row = get_runtime_policy(session, key=key)
    query = (
        select(RuntimePolicyVersionRow)
        .where(RuntimePolicyVersionRow.policy_id == row.id)
        .order_by(RuntimePolicyVersionRow.version)
    )
    return list(session.scalars(query))


# ---------------------------------------------------------------------------------------------
# Services


def service_document(row: RuntimeServiceRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "priority": row.priority,
        "rules": row.rules,
    }


def service_to_domain(row: RuntimeServiceRow) -> Service:
    return service_from_json(service_document(row), f"service {row.name!r}")


def list_services(session: Session) -> list[RuntimeServiceRow]:
    query = select(RuntimeServiceRow).order_by(RuntimeServiceRow.priority, RuntimeServiceRow.name)
    return list(session.scalars(query))


def all_services(session: Session) -> list[Service]:
    return [service_to_domain(row) for row in list_services(session)]


def get_service(session: Session, *, name: str) -> RuntimeServiceRow:
    row = session.scalars(select(RuntimeServiceRow).where(RuntimeServiceRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"service {name!r} not found")
    return row


def put_service(
    session: Session,
    *,
    name: str,
    document: Mapping[str, Any],
    actor: str | None,
    now: datetime,
) -> tuple[RuntimeServiceRow, bool]:
    """Create or replace the service `name`; returns (row, created)."""
    existing = session.scalars(
        select(RuntimeServiceRow).where(RuntimeServiceRow.name == name)
    ).first()
    created = existing is None
    row = existing or RuntimeServiceRow(name=name, created=now)
    before = None if created else service_document(row)
    row.description = document.get("description", "")
    row.priority = int(document.get("priority", 100))
    row.rules = list(document.get("rules") or [])
    if before == service_document(row):
        return row, False
    row.updated, row.updated_by = now, actor
    session.add(row)
    session.flush()
    record_event(
        session,
        category=EventCategory.POLICY,
        level=EventLevel.INFO,
        action="service.created" if created else "service.updated",
        message=f"service {name!r} {'created' if created else 'updated'}",
        now=now,
        actor=actor,
        data={"document": service_document(row)},
    )
    return row, created


def delete_service(session: Session, *, name: str, actor: str | None, now: datetime) -> None:
    row = get_service(session, name=name)
    session.delete(row)
    record_event(
        session,
        category=EventCategory.POLICY,
        level=EventLevel.INFO,
        action="service.deleted",
        message=f"service {name!r} deleted",
        now=now,
        actor=actor,
    )
