"""Image assurance policies: create, replace, delete, read, with their version history.

A policy arrives in its canonical document form (`console.schemas.policies.PolicyBody.document`),
already validated. Every change that alters the document bumps the version, stores the new
document in `policy_versions`, records an audit event in the same transaction and re-evaluates the
images; a change that alters nothing is no change at all (no version, no event), which makes
`tidegate apply` idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.policy import AssurancePolicy, Mode, PolicyId
from tidegate.services.events import record_event
from tidegate.services.serialize import controls_from_json, scope_from_json
from tidegate.store.db import ConflictError, NotFoundError
from tidegate.store.inventory import PolicyRow, PolicyVersionRow

__all__ = [
    "DEFAULT_POLICY",
    "PolicyChange",
    "create_policy",
    "delete_policy",
    "ensure_default_policy",
    "get_policy",
    "list_policies",
    "policy_document",
    "policy_history",
    "replace_policy",
    "to_domain",
]

DEFAULT_POLICY: dict[str, Any] = {
    "name": "default",
    "description": (
        "Out-of-the-box policy, in audit mode: reports critical vulnerabilities that have a fix. "
        "It blocks nothing until its mode is set to enforce."
    ),
    "mode": "audit",
    "enabled": True,
    "enforce_after": None,
    "scope": {"registries": [], "repositories": [], "labels": []},
    "controls": {"severity": {"max_severity": "high", "only_fixable": True}},
}
"""The default policy's document (migration 0002 inserts it too)."""


@dataclass(frozen=True, slots=True)
class PolicyChange:
    row: PolicyRow
    changed: bool
    """False when the document asked for is the one already stored."""


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def policy_document(row: PolicyRow) -> dict[str, Any]:
    """The policy in its canonical body form (what apply compares and export writes)."""
    return {
        "name": row.name,
        "description": row.description,
        "mode": row.mode,
        "enabled": row.enabled,
        "enforce_after": row.enforce_after.isoformat() if row.enforce_after else None,
        "scope": row.scope,
        "controls": row.controls,
    }


def to_domain(row: PolicyRow) -> AssurancePolicy:
    return AssurancePolicy(
        id=PolicyId(row.id),
        name=row.name,
        mode=Mode(row.mode),
        scope=scope_from_json(row.scope),
        controls=controls_from_json(row.controls),
        enforce_after=row.enforce_after,
        enabled=row.enabled,
        version=row.version,
        description=row.description,
    )


def list_policies(session: Session) -> list[PolicyRow]:
    query = select(PolicyRow).where(PolicyRow.deleted.is_(None)).order_by(PolicyRow.name)
    return list(session.scalars(query))


def get_policy(session: Session, *, key: str) -> PolicyRow:
    """A live policy by id or by name."""
    row = session.get(PolicyRow, key)
    if row is None or row.deleted is not None:
        row = _by_name(session, key)
    if row is None:
        raise NotFoundError(f"policy {key!r} not found")
    return row


def _by_name(session: Session, name: str) -> PolicyRow | None:
    query = select(PolicyRow).where(PolicyRow.name == name, PolicyRow.deleted.is_(None))
    return session.scalars(query).first()


def _check_name_free(session: Session, name: str, own_id: str | None) -> None:
    other = _by_name(session, name)
    if other is not None and other.id != own_id:
        raise ConflictError(f"a policy named {name!r} already exists (id {other.id})")


def _apply(row: PolicyRow, document: Mapping[str, Any]) -> None:
    row.name = document["name"]
    row.description = document.get("description", "")
    row.mode = Mode(document.get("mode", "audit")).value
    row.enabled = bool(document.get("enabled", True))
    row.enforce_after = _parse_dt(document.get("enforce_after"))
    row.scope = dict(document.get("scope") or {})
    row.controls = dict(document.get("controls") or {})
    row.enforce_after_applied = False


def _history(
    session: Session, row: PolicyRow, change: str, actor: str | None, now: datetime
) -> None:
    session.add(
        PolicyVersionRow(
            policy_id=row.id,
            version=row.version,
            document=policy_document(row),
            changed=now,
            changed_by=actor,
            change=change,
        )
    )


def _event(
    session: Session, row: PolicyRow, action: str, message: str, actor: str | None, now: datetime
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
        data={"policy_id": row.id, "version": row.version, "document": policy_document(row)},
    )


def insert_policy(
    session: Session, *, document: Mapping[str, Any], actor: str | None, now: datetime
) -> PolicyRow:
    """Insert a policy with its first version and event, without re-evaluating images."""
    _check_name_free(session, document["name"], None)
    row = PolicyRow(id=uuid.uuid4().hex, version=1, created=now, updated=now, updated_by=actor)
    _apply(row, document)
    session.add(row)
    session.flush()
    _history(session, row, "created", actor, now)
    _event(session, row, "policy.created", f"policy {row.name!r} created ({row.mode})", actor, now)
    return row


def create_policy(
    session: Session, *, document: Mapping[str, Any], actor: str | None, now: datetime
) -> PolicyRow:
    from tidegate.services.assurance import reevaluate  # assurance imports this module

    row = insert_policy(session, document=document, actor=actor, now=now)
    reevaluate(session, now=now, reason=f"policy {row.name!r} v{row.version} created")
    return row


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def replace_policy(
    session: Session, *, key: str, document: Mapping[str, Any], actor: str | None, now: datetime
) -> PolicyChange:
    """Replace a policy's document; nothing happens when it is the stored one already."""
    from tidegate.services.assurance import reevaluate

    row = get_policy(session, key=key)
    before = policy_document(row)
    _check_name_free(session, document["name"], row.id)
    _apply(row, document)
    changes = _changes(before, policy_document(row))
    if not changes:
        return PolicyChange(row, changed=False)
    row.version += 1
    row.updated, row.updated_by = now, actor
    session.flush()
    _history(session, row, "updated", actor, now)
    message = f"policy {row.name!r} updated to v{row.version}: {', '.join(changes)} changed"
    if "mode" in changes:
        message += f" (mode {before['mode']} -> {row.mode})"
    _event(session, row, "policy.updated", message, actor, now)
    reevaluate(session, now=now, reason=f"policy {row.name!r} v{row.version} updated")
    return PolicyChange(row, changed=True)


def delete_policy(session: Session, *, key: str, actor: str | None, now: datetime) -> PolicyRow:
    from tidegate.services.assurance import reevaluate

    row = get_policy(session, key=key)
    row.deleted, row.updated, row.updated_by = now, now, actor
    row.version += 1
    session.flush()
    _history(session, row, "deleted", actor, now)
    _event(session, row, "policy.deleted", f"policy {row.name!r} deleted", actor, now)
    reevaluate(session, now=now, reason=f"policy {row.name!r} deleted")
    return row


def policy_history(session: Session, *, key: str) -> list[PolicyVersionRow]:
    row = get_policy(session, key=key)
    query = (
        select(PolicyVersionRow)
        .where(PolicyVersionRow.policy_id == row.id)
        .order_by(PolicyVersionRow.version)
    )
    return list(session.scalars(query))


def ensure_default_policy(session: Session, *, now: datetime) -> PolicyRow | None:
    """Create the default policy when no policy was ever created (a fresh install)."""
    if session.scalars(select(PolicyRow.id).limit(1)).first() is not None:
        return None
    return insert_policy(session, document=DEFAULT_POLICY, actor="system", now=now)
