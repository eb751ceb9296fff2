"""Re-assurance: evaluate stored images against the current policies and acknowledgements.

Owns the batch loop every trigger shares (a policy change, an acknowledgement created, revoked or
expired, a DB update, a newly scanned image, a policy's `enforce_after` passing): images are read
in chunks with their latest scan document, turned into `ImageSubject`s, evaluated by the one pure
`core.assurance.evaluate`, and their verdicts and statuses written back in bulk. Each status change
is an audit event that says why: which policy, which control, which vulnerabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from tidegate.core.assurance import evaluate
from tidegate.core.events import EventCategory, EventLevel
from tidegate.core.models import ScanResult
from tidegate.core.policy import (
    Acknowledgement,
    AssurancePolicy,
    ImageStatus,
    ImageSubject,
    Mode,
    Verdict,
)
from tidegate.services.events import record_event
from tidegate.services.policies import list_policies, to_domain
from tidegate.services.serialize import (
    document_from_result,
    result_from_document,
    verdict_to_json,
)
from tidegate.store.inventory import (
    AcknowledgementRow,
    ImageRow,
    PolicyRow,
    RegistryRow,
    RepositoryRow,
    ScanResultRow,
    VerdictRow,
)

__all__ = [
    "ReevaluationSummary",
    "active_acknowledgements",
    "apply_due_enforcement",
    "reevaluate",
    "status_change_message",
]

CHUNK = 500
"""Images per batch: large enough to amortise queries, small enough to bound memory."""

_EVALUATED = (ImageStatus.APPROVED.value, ImageStatus.DISALLOWED.value)
MAX_FINDINGS_IN_MESSAGE = 5


@dataclass(frozen=True, slots=True)
class ReevaluationSummary:
    evaluated: int = 0
    changed: tuple[int, ...] = ()
    """Ids of the images whose status changed."""
    events: tuple[int, ...] = field(default=())


def active_acknowledgements(session: Session, now: datetime) -> list[Acknowledgement]:
    """Acknowledgements neither revoked nor expired at `now`, as domain values."""
    from tidegate.services.acks import to_domain as ack_domain  # acks imports this module

    query = select(AcknowledgementRow).where(
        AcknowledgementRow.revoked.is_(None),
        (AcknowledgementRow.expires.is_(None)) | (AcknowledgementRow.expires > now),
    )
    return [ack_domain(row) for row in session.scalars(query)]


def _image_ids(session: Session, images: Sequence[int] | None) -> list[int]:
    query = select(ImageRow.id).where(
        ImageRow.latest_scan_id.is_not(None), ImageRow.retired.is_(False)
    )
    if images is not None:
        query = query.where(ImageRow.id.in_(list(images)))
    return list(session.scalars(query.order_by(ImageRow.id)))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@dataclass(slots=True)
class _Loaded:
    image: ImageRow
    registry: str | None
    repository: str | None
    scan_id: int
    result: ScanResult


def _load(session: Session, ids: list[int]) -> list[_Loaded]:
    query = (
        select(
            ImageRow, RegistryRow.host, RepositoryRow.name, ScanResultRow.id, ScanResultRow.document
        )
        .join(ScanResultRow, ScanResultRow.id == ImageRow.latest_scan_id)
        .outerjoin(RegistryRow, RegistryRow.id == ImageRow.registry_id)
        .outerjoin(RepositoryRow, RepositoryRow.id == ImageRow.repository_id)
        .where(ImageRow.id.in_(ids))
        .order_by(ImageRow.id)
    )
    return [
        _Loaded(image, host, repo, scan_id, result_from_document(doc))
        for image, host, repo, scan_id, doc in session.execute(query)
    ]


def subject_for(loaded: _Loaded) -> ImageSubject:
    """The image as the gate sees it: inventory identity and labels, content from its scan."""
    image, result = loaded.image, loaded.result
    return ImageSubject(
        digest=image.digest or "",
        registry=loaded.registry,
        repository=loaded.repository,
        labels=tuple(sorted(image.labels.items())),
        facts=result.facts,
        packages=result.catalogue.packages,
        findings=result.findings,
        secrets=result.catalogue.secrets,
    )


def status_change_message(digest: str, old: str, verdict: Verdict) -> str:
    """Why an image's status changed: the enforcing policies, controls and vulnerabilities."""
    head = f"image {digest}: {old} -> {verdict.status.value}"
    if verdict.status is ImageStatus.DISALLOWED:
        parts = []
        for result in verdict.results:
            if result.passed or result.mode is not Mode.ENFORCE:
                continue
            for failure in result.failures:
                shown = ", ".join(failure.findings[:MAX_FINDINGS_IN_MESSAGE])
                more = len(failure.findings) - MAX_FINDINGS_IN_MESSAGE
                shown += f" and {more} more" if more > 0 else ""
                detail = f" ({shown})" if shown else ""
                parts.append(
                    f"policy {result.policy_name!r} v{result.policy_version} (enforce), "
                    f"control {failure.control}: {failure.message}{detail}"
                )
        return f"{head}: " + "; ".join(parts)
    return f"{head}: {verdict.reason}"


def _status_event(
    session: Session, image: ImageRow, old: str, verdict: Verdict, reason: str, now: datetime
) -> int:
    disallowed = verdict.status is ImageStatus.DISALLOWED
    enforcing = [r for r in verdict.results if not r.passed and r.mode is Mode.ENFORCE]
    return record_event(
        session,
        category=EventCategory.IMAGE,
        level=EventLevel.WARNING if disallowed else EventLevel.INFO,
        action="image.status_changed",
        message=status_change_message(image.digest or "", old, verdict),
        now=now,
        image_digest=image.digest,
        policy=enforcing[0].policy_name if enforcing else None,
        data={
            "old_status": old,
            "new_status": verdict.status.value,
            "trigger": reason,
            "reason": verdict.reason,
            "failures": [
                {
                    "policy": r.policy_name,
                    "version": r.policy_version,
                    "control": f.control,
                    "findings": list(f.findings[:MAX_FINDINGS_IN_MESSAGE]),
                }
                for r in enforcing
                for f in r.failures
            ],
        },
    )


def reevaluate(
    session: Session,
    *,
    now: datetime,
    images: Sequence[int] | None = None,
    reason: str,
    transform: Callable[[ScanResult], ScanResult] | None = None,
) -> ReevaluationSummary:
    """Evaluate `images` (ids; None: every scanned image) and store verdicts and statuses.

    `transform` rewrites each stored scan result first (re-matching after a DB update); the
    rewritten document is stored back. Events are recorded for status changes only.
    """
    session.flush()
    policies = [to_domain(row) for row in list_policies(session)]
    acks = active_acknowledgements(session, now)
    evaluated, changed, events = 0, [], []
    for ids in _chunks(_image_ids(session, images)):
        batch = _load(session, ids)
        if transform is not None:
            _transform(session, batch, transform)
        out = _evaluate_batch(session, batch, policies, acks, now=now, reason=reason)
        evaluated += len(batch)
        changed.extend(out[0])
        events.extend(out[1])
    return ReevaluationSummary(evaluated=evaluated, changed=tuple(changed), events=tuple(events))


def _transform(
    session: Session, batch: list[_Loaded], transform: Callable[[ScanResult], ScanResult]
) -> None:
    rows = []
    for item in batch:
        item.result = transform(item.result)
        rows.append(
            {
                "id": item.scan_id,
                "document": document_from_result(item.result),
                "db_snapshot": item.result.db_snapshot,
            }
        )
    if rows:
        session.execute(update(ScanResultRow), rows)


def _evaluate_batch(
    session: Session,
    batch: list[_Loaded],
    policies: list[AssurancePolicy],
    acks: list[Acknowledgement],
    *,
    now: datetime,
    reason: str,
) -> tuple[list[int], list[int]]:
    verdict_rows: list[dict[str, Any]] = []
    status_rows: list[dict[str, Any]] = []
    changed: list[int] = []
    events: list[int] = []
    for item in batch:
        subject = subject_for(item)
        verdict = evaluate(subject, policies, acks, now=now, db_snapshot=item.result.db_snapshot)
        document = verdict_to_json(verdict)
        verdict_rows.append(
            {
                "image_id": item.image.id,
                "status": verdict.status.value,
                "verdict": document,
                "db_snapshot": verdict.db_snapshot,
                "evaluated_at": now,
            }
        )
        old = item.image.status
        if old != verdict.status.value or item.image.status_reason != verdict.reason:
            status_rows.append(
                {
                    "id": item.image.id,
                    "status": verdict.status.value,
                    "status_reason": verdict.reason,
                }
            )
        if old != verdict.status.value:
            changed.append(item.image.id)
            # An image's first verdict (after a scan) is reported by the scan's own event.
            if old in _EVALUATED:
                events.append(_status_event(session, item.image, old, verdict, reason, now))
    ids = [row["image_id"] for row in verdict_rows]
    session.execute(delete(VerdictRow).where(VerdictRow.image_id.in_(ids)))
    if verdict_rows:
        session.execute(insert(VerdictRow), verdict_rows)
    if status_rows:
        session.execute(update(ImageRow), status_rows)
    # The bulk UPDATE bypasses the identity map: refresh what callers may read next.
    for item in batch:
        session.expire(item.image)
    return changed, events


def apply_due_enforcement(session: Session, *, now: datetime) -> list[str]:
    """Re-evaluate once for each policy whose `enforce_after` has passed since the last run."""
    query = select(PolicyRow).where(
        PolicyRow.deleted.is_(None),
        PolicyRow.enforce_after.is_not(None),
        PolicyRow.enforce_after <= now,
        PolicyRow.enforce_after_applied.is_(False),
    )
    due = list(session.scalars(query))
    if not due:
        return []
    names = []
    for row in due:
        row.enforce_after_applied = True
        names.append(row.name)
        record_event(
            session,
            category=EventCategory.POLICY,
            level=EventLevel.INFO,
            action="policy.enforcing",
            message=f"policy {row.name!r} enforces from {row.enforce_after} (enforce_after)",
            now=now,
            actor="system",
            policy=row.name,
            data={"policy_id": row.id, "version": row.version},
        )
    reevaluate(session, now=now, reason="enforce_after reached: " + ", ".join(names))
    return names
